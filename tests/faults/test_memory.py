"""Memory over many runs in one process (issue 12 §7); see experiments/memory.py for the leak.

The slow test measures the RSS slope over tiny `run()` calls in a fresh process
(benchmarks/memory_runs.py); the fast ones pin the mechanism that keeps it flat.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import weakref
from pathlib import Path

import pytest
import tensorflow as tf

from experiments import memory

ROOT = Path(__file__).parents[2]


def trace_with_custom_gradient():
    """Trace (graph mode) a function whose body uses tf.custom_gradient, as Keras's train step does
    through ReplicaContext.all_reduce; return a weak reference to the traced graph."""

    @tf.custom_gradient
    def double(x):
        return 2.0 * x, lambda dy: 2.0 * dy

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = double(x)
        return tape.gradient(y, x)

    concrete = step.get_concrete_function(tf.TensorSpec([], tf.float32))
    assert float(concrete(tf.constant(1.0))) == 2.0
    return weakref.ref(concrete.graph)


def custom_gradient_names() -> set[str]:
    return {n for n in memory._gradient_registry() if n.startswith(memory.PREFIX)}


def test_tensorflow_still_keeps_custom_gradient_graphs_alive():
    """The leak the workaround exists for. If this fails, TensorFlow fixed it: drop memory.py."""
    before = custom_gradient_names()
    graph = trace_with_custom_gradient()
    gc.collect()
    assert custom_gradient_names() - before and graph() is not None


def test_released_block_unregisters_its_custom_gradients_and_frees_the_graph():
    kept = custom_gradient_names()
    with memory.custom_gradients_released():
        graph = trace_with_custom_gradient()
        assert custom_gradient_names() - kept  # registered while the block runs
    gc.collect()
    assert custom_gradient_names() == kept  # others' registrations untouched
    assert graph() is None


class Stop(Exception):
    pass


def test_run_trains_inside_the_released_block(monkeypatch):
    import experiments.run
    from experiments.config import Config

    events = []

    class Spy:
        def __enter__(self):
            events.append("enter")

        def __exit__(self, *exc):
            events.append("exit")

    def train(*args):
        events.append("train")
        raise Stop

    monkeypatch.setattr(experiments.run, "custom_gradients_released", Spy)
    monkeypatch.setattr(experiments.run, "_train_and_test", train)
    with pytest.raises(Stop):
        experiments.run.run(Config.from_dict({"tracking": {"enabled": False}}, source="test"))
    assert events == ["enter", "train", "exit"]


@pytest.mark.slow
@pytest.mark.parametrize("tracking", ["off", "on"])
def test_rss_stays_flat_over_many_tiny_runs(tmp_path, tracking):
    """Before the fix: ~11 MB a run (2-core shared EPYC); the bound leaves room for noise."""
    out = tmp_path / "memory.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2",
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    subprocess.run(
        [sys.executable, "-m", "benchmarks.memory_runs", "--runs", "25", "--warmup", "5",
         "--tracking", tracking, "--json", str(out)],
        cwd=ROOT, env=env, check=True, capture_output=True, timeout=3600,
    )
    result = json.loads(out.read_text())
    assert len(result["rss_mb"]) == 25
    assert result["slope_mb_per_run"] < 2.0, result
