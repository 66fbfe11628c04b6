"""Compiled inference: the one place that decides whether evaluation and `predict` run with
`jit_compile=True`, and a helper that switches a trained model to it.

Keras's ``jit_compile="auto"`` leaves XLA off on a CPU with TensorFlow, for training and
inference alike. The training step keeps Keras's default unless a run asks for XLA
(`train.jit_compile: true`, experiments/run.py: at the study's sizes, 40 units and one thread,
it trains with ≈ 1.8× less CPU per epoch; at 128 units it was within the noise,
docs/performance.md); the test / predict functions are compiled where `inference_jit` says it
pays:

>>> model.compile(...)                                # as the user compiles it
>>> cells.compile_inference(model, batches=n)         # evaluate / predict / predict_on_batch

Two measurements decide it (`python -m benchmarks.inference`, docs/performance.md, 2-core AMD
EPYC shared with a background sweep, 2026-11-28):

* per batch, XLA is faster for every cell (`XLA_INFERENCE`, below);
* per run, it pays only over enough batches: XLA compiles once per function (test, predict)
  and batch shape (a split's last, partial batch is a second shape), ≈ 0.3–1 s each on that
  machine. A quick-sweep adding run (units 32, 156 inference batches) took 0.93–2.5× *longer*
  with XLA, compilations included (`--phase`), and was still level at 656 batches: hence
  `MIN_BATCHES`, which keeps XLA off for the sweeps' short runs;
* Keras refuses XLA under TensorFlow's op determinism, which `train.deterministic` (on by
  default) turns on for the process: runs then evaluate uncompiled whatever the amount.

`RNNLAB_INFERENCE_JIT=off` (or ``on``) in the environment overrides the decision everywhere
(``auto``, the default, is what is described here); `rnnlab predict/evaluate --jit` likewise.
"""

from __future__ import annotations

import os

import keras

__all__ = ["ENV", "MIN_BATCHES", "XLA_INFERENCE", "compile_inference", "inference_jit",
           "model_cells"]

ENV = "RNNLAB_INFERENCE_JIT"
SETTINGS = ("auto", "on", "off")

# XLA-compiled ÷ uncompiled `predict_on_batch` of `keras.layers.RNN(cell)` → Dense(1), TensorFlow
# on the 2-core CPU, B=64, T=100, D=32, median (min–max) of interleaved rounds in one process
# (`python -m benchmarks.inference`, 2026-11-28: 7 rounds at 09:14 UTC, load 3.4–4.4; again, 9
# rounds at 09:57, load 2.7–3.5; units 40, 7 rounds at 09:15; benchmarks/inference.md). A cell is
# compiled only where the ratio is below 1; a cell not listed is not compiled.
XLA_INFERENCE = {
    #          units 128, 09:14     again (09:57)       units 40
    "vanilla": (0.74, 0.65, 3.91),  # 0.62 (0.39–1.98)  0.56 (0.30–1.70)
    "lstm": (0.56, 0.30, 2.87),  # 0.36 (0.26–0.45)     0.47 (0.08–0.85)
    "peephole": (0.43, 0.30, 0.57),  # 0.37 (0.28–2.02) 0.52 (0.32–1.12)
    "coupled": (0.38, 0.35, 0.87),  # 0.40 (0.28–0.82)  0.56 (0.41–1.01)
    "gru": (0.33, 0.22, 0.57),  # 0.36 (0.30–1.10)      0.43 (0.36–0.52)
}
# `cells.ProjectedRNN` is not compiled: XLA left its inference at 1.02× (benchmarks/variants.md).

# A run's inference batches from which XLA's compilations (≈ 5 per run: test and predict
# functions × the full and the partial batch shapes) are paid back. Measured on quick.yaml's
# adding run (units 32, T = 100, 20 epochs; `python -m benchmarks.inference --phase`, XLA on ÷
# off, compilations included, median (min–max) of 3 alternating rounds, load 4–5): at its 156
# inference batches 0.93–2.48 across the cells (GRU 0.93, the others 1.45–2.48); with 2,000
# validation sequences (656 batches) vanilla 1.08 (1.04–1.41), LSTM 0.99 (0.57–1.22). So no
# run of quick.yaml or study.yaml (≤ 320 batches each) compiles; larger ones (bigger models pay
# sooner: ≈ 10–130 batches per compilation at units 128) and long `predict`s do.
MIN_BATCHES = 1000


def setting() -> str:
    """`$RNNLAB_INFERENCE_JIT`: auto (default), on or off."""
    value = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if value not in SETTINGS:
        raise ValueError(f"{ENV}={value!r}: valid values are {', '.join(SETTINGS)}")
    return value


def inference_jit(batches: int | None = None, backend: str | None = None,
                  cells=None, *, override: str | None = None) -> bool:
    """Whether inference (evaluate, predict) should be compiled on `backend` (default: Keras's
    backend), for about `batches` inference calls in all (None: unknown, taken as many), of a
    model whose recurrent cells are `cells` (names; None: not known, not checked).

    `override` ("auto", "on", "off"; default `$RNNLAB_INFERENCE_JIT`, else "auto") forces it.

    * TensorFlow on a GPU: yes, as Keras's "auto" (unless op determinism is on).
    * TensorFlow on a CPU: yes from `MIN_BATCHES` batches on, when every cell is one XLA
      measured faster for (`XLA_INFERENCE`), no `ProjectedRNN` is in the model (see
      `model_cells`) and op determinism is off (Keras does not combine it with XLA).
    * JAX: yes, always; Keras's "auto" does too (without jit every call re-traces the loop).
    * PyTorch: no. `jit_compile=True` there is `torch.compile` of a Python loop of T steps,
      minutes of compilation per shape.
    """
    choice = setting() if override is None else override
    if choice not in SETTINGS:
        raise ValueError(f"jit setting {choice!r}: valid values are {', '.join(SETTINGS)}")
    if choice != "auto":
        return choice == "on"
    backend = backend or keras.backend.backend()
    if backend == "torch":
        return False
    if backend == "jax":
        return True
    if backend != "tensorflow":  # e.g. numpy: nothing to compile with
        return False
    if gpu():  # Keras's "auto" compiles on a GPU; only the CPU was measured here: keep it
        return not op_determinism()
    if cells is not None and not all(XLA_INFERENCE.get(c, (1.0,))[0] < 1.0 for c in cells):
        return False
    if op_determinism():
        return False
    return batches is None or batches >= MIN_BATCHES


def gpu() -> bool:
    """Whether TensorFlow sees a GPU."""
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def op_determinism() -> bool:
    """Whether TensorFlow's op determinism is on (`train.deterministic`, the default of every
    run): Keras then refuses XLA (`jit_compile=True` falls back, with a warning)."""
    try:
        from tensorflow.python.framework.config import is_op_determinism_enabled
    except ImportError:  # no TensorFlow, or it moved: let Keras decide
        return False
    return bool(is_op_determinism_enabled())


def model_cells(model) -> set[str]:
    """Names of the recurrent cells in `model` (`cell_name` of registered cells, else the class
    name), "ProjectedRNN" for a projected layer; nested models, wrappers and stacks included."""
    from cells.fast import ProjectedRNN

    found, seen, todo = set(), set(), [model]
    while todo:
        layer = todo.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if isinstance(layer, ProjectedRNN):
            found.add("ProjectedRNN")
        if hasattr(layer, "state_size") and not hasattr(layer, "cell"):  # a cell, not its RNN
            found.add(getattr(layer, "cell_name", type(layer).__name__))
        for name in ("layers", "cells"):
            todo += list(getattr(layer, name, None) or [])
        for name in ("cell", "layer", "forward_layer", "backward_layer"):
            if isinstance(getattr(layer, name, None), keras.layers.Layer):
                todo.append(getattr(layer, name))
    return found


def compile_inference(model, jit: bool | None = None, *, batches: int | None = None,
                      override: str | None = None) -> bool:
    """Make `model`'s test and predict functions (`evaluate`, `predict`, `predict_on_batch`,
    `test_on_batch`, and `fit`'s validation) run with `jit_compile=jit` (default
    `inference_jit(batches, cells=model_cells(model), override=override)`), keeping the training
    function it has or would get from its `compile(...)`: call it right after `compile`, or
    after `fit`.

    Works on compiled and uncompiled models (e.g. models loaded only to predict). A model Keras
    cannot compile (a layer with `supports_jit = False`) stays uncompiled, with Keras's
    warning. Returns the setting in effect. Call it again, or `model.compile(...)`, to change it
    back.
    """
    if jit is None:
        jit = inference_jit(batches, cells=model_cells(model), override=override)
    if getattr(model, "compiled", False):
        model.make_train_function()  # built now, so it keeps the training jit setting
    model.jit_compile = bool(jit)  # Keras falls back to False (with a warning) where it must
    model.make_test_function(force=True)
    model.make_predict_function(force=True)
    return model.jit_compile
