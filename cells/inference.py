"""Compiled inference: the one place that decides whether evaluation, `predict` and decoding
run with `jit_compile=True`, and a helper that switches a trained model to it.

Keras's ``jit_compile="auto"`` leaves XLA off on a CPU with TensorFlow, for training and
inference alike. Measured side by side on the project's 2-core CPU at low load
(docs/performance.md, benchmarks/variants.md), XLA runs the inference of a recurrent model in
0.54–0.59× the time of the uncompiled graph, while it does not speed up the training step. XLA compiles once per function and input shape (seconds), so it pays
only over enough batches. So training keeps Keras's default and only the test / predict
functions are compiled, where there is enough inference to pay for it:

>>> model.compile(...)                                # as the user compiles it
>>> cells.compile_inference(model, batches=n)         # evaluate / predict / predict_on_batch
"""

from __future__ import annotations

import keras

__all__ = ["MIN_BATCHES", "compile_inference", "inference_jit"]

# XLA's compilation (≈ 1–3 s per function and input shape on the 2-core CPU) against what it
# saves per batch (≈ 5–20 ms at B=64, T=100, units=128): it pays from a few hundred batches on.
MIN_BATCHES = 500


def inference_jit(batches: int | None = None, backend: str | None = None) -> bool:
    """Whether inference (evaluate, predict, decoding) should be compiled on `backend`
    (default: Keras's backend), for about `batches` inference calls in all (None: unknown,
    taken as many).

    * TensorFlow: yes from `MIN_BATCHES` batches on. XLA inference measured 0.54–0.59× the
      uncompiled time (LSTM, GRU; benchmarks/variants.md, load ≈ 1–1.6); below that many
      batches its compilation costs more than it saves. On a heavily loaded machine it was not
      faster (docs/performance.md): this is the one place to change if it measures otherwise.
      (Keras's "auto" already compiles on a GPU.)
    * JAX: yes, always; Keras's "auto" does too (without jit every call re-traces the loop).
    * PyTorch: no. `jit_compile=True` there is `torch.compile` of a Python loop of T steps,
      minutes of compilation per shape.
    """
    backend = backend or keras.backend.backend()
    if backend == "torch":
        return False
    return backend == "jax" or batches is None or batches >= MIN_BATCHES


def compile_inference(model, jit: bool | None = None, *, batches: int | None = None) -> bool:
    """Make `model`'s test and predict functions (`evaluate`, `predict`, `predict_on_batch`,
    `test_on_batch`) run with `jit_compile=jit` (default `inference_jit(batches)`), keeping the
    training function it has or would get from its `compile(...)`: call it right after
    `compile`, or after `fit`.

    Works on compiled and uncompiled models (e.g. decoder step models that only predict). A
    model Keras cannot compile (a layer with `supports_jit = False`) stays uncompiled, with
    Keras's warning. Returns the setting in effect. Call it again, or `model.compile(...)`,
    to change it back.
    """
    jit = inference_jit(batches) if jit is None else bool(jit)
    if getattr(model, "compiled", False):
        model.make_train_function()  # built now, so it keeps the training jit setting
    model.jit_compile = jit  # Keras falls back to False (with a warning) where it must
    model.make_test_function(force=True)
    model.make_predict_function(force=True)
    return model.jit_compile
