"""Benchmarks of the five cells against Keras's fused layers: `python -m benchmarks.run`."""
