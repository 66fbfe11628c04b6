"""One benchmark case: a one-layer recurrent model, and how to time it.

A case is a recurrent layer on random inputs (B, T, D) with a Dense(1) head and MSE loss.
"Training step" is one `train_on_batch` (forward, backward, Adam update); "inference" is one
`predict_on_batch`. Both run the model's compiled function, so Python overhead is one call.

Layers (`impl`):

* ``ours``  — `cells.fast.ProjectedRNN(cells.get(cell))` (where `model.projected: auto` picks it:
  docs/performance.md);
* ``plain`` — `keras.layers.RNN(cells.get(cell))`, the step-by-step path;
* ``keras`` — Keras's built-in layer of the same math (`SimpleRNN`, `LSTM`, `GRU`);
* ``torch`` — PyTorch's own `torch.nn.RNN` / `LSTM` / `GRU` (its fused CPU kernels, or cuDNN),
  with the same head, loss and optimizer, in plain PyTorch (no Keras). PyTorch has no peephole
  or coupled (CIFG) layer: the tables compare those two cells to `torch.nn.LSTM`.

Timing is interleaved: every round times each case once, so slow drifts of a shared machine
spread over all cases instead of landing on one. Each measurement repeats the call until it
has run at least `min_seconds`, and reports seconds per call.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
from dataclasses import dataclass

import numpy as np

KERAS_LAYERS = {"vanilla": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}  # same math as ours
TORCH_LAYERS = {"vanilla": "RNN", "lstm": "LSTM", "gru": "GRU"}  # torch.nn, same math as ours
# the torch case each cell is compared to: no peephole or CIFG layer in PyTorch, so its LSTM
TORCH_PEER = {"vanilla": "vanilla", "lstm": "lstm", "peephole": "lstm", "coupled": "lstm",
              "gru": "gru"}
IMPLS = ("ours", "plain", "keras", "torch")
LIBRARY_LAYERS = {"keras": KERAS_LAYERS, "torch": TORCH_LAYERS}


@dataclass(frozen=True)
class Case:
    impl: str = "ours"
    cell: str = "lstm"
    batch: int = 64
    steps: int = 100  # T
    units: int = 128
    features: int = 32  # D
    jit: bool = False
    unroll: bool = False

    def __post_init__(self):
        if self.impl not in IMPLS:
            raise ValueError(f"Unknown impl {self.impl!r}. Valid impls: {', '.join(IMPLS)}.")
        layers = LIBRARY_LAYERS.get(self.impl, {self.cell: None})
        if self.cell not in layers:
            raise ValueError(
                f"{self.impl} has no built-in layer for cell {self.cell!r}. "
                f"Valid cells for impl={self.impl!r}: {', '.join(layers)}."
            )

    @property
    def label(self) -> str:
        return f"{self.impl}/{self.cell}"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def recurrent_layer(case: Case):
    import keras

    import cells
    from cells.fast import ProjectedRNN

    if case.impl == "keras":
        return getattr(keras.layers, KERAS_LAYERS[case.cell])(case.units, unroll=case.unroll)
    layer_cls = ProjectedRNN if case.impl == "ours" else keras.layers.RNN
    return layer_cls(cells.get(case.cell, units=case.units), unroll=case.unroll)


def build(case: Case):
    """The compiled model and one batch (x, y) for it."""
    import keras

    seq = keras.Input((case.steps, case.features), batch_size=case.batch)
    model = keras.Model(seq, keras.layers.Dense(1)(recurrent_layer(case)(seq)))
    model.compile(optimizer="adam", loss="mse", jit_compile=case.jit)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(case.batch, case.steps, case.features)).astype("float32")
    y = rng.normal(size=(case.batch, 1)).astype("float32")
    return model, x, y


def torch_step_functions(case: Case, device: str = "cpu"):
    """`{"train": f, "infer": g}` for `torch.nn.RNN/LSTM/GRU` → Linear(1), MSE, Adam: the same
    model as `build`, in plain PyTorch. On a CPU PyTorch gets as many threads as there are
    cores (2 here), as TensorFlow's pools do."""
    import torch

    if device == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    rnn = getattr(torch.nn, TORCH_LAYERS[case.cell])(case.features, case.units, batch_first=True)
    head = torch.nn.Linear(case.units, 1)
    rnn, head = rnn.to(device), head.to(device)
    optimizer = torch.optim.Adam([*rnn.parameters(), *head.parameters()])
    x = torch.randn(case.batch, case.steps, case.features, device=device)
    y = torch.randn(case.batch, 1, device=device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def forward():
        return head(rnn(x)[0][:, -1])

    def train():
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(forward(), y).backward()
        optimizer.step()
        sync()

    def infer():
        with torch.no_grad():
            forward()
        sync()

    return {"train": train, "infer": infer}


def step_functions(case: Case):
    """`{"train": f, "infer": g}`, each running one compiled step on the case's batch."""
    if case.impl == "torch":
        return torch_step_functions(case)
    model, x, y = build(case)
    return {
        "train": lambda: model.train_on_batch(x, y),
        "infer": lambda: model.predict_on_batch(x),
    }


def seconds_per_call(fn, min_seconds: float) -> float:
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / calls


def summarize(samples: list[float]) -> dict:
    if len(samples) == 1:  # a one-round smoke run
        return {"median_s": samples[0], "iqr_s": 0.0, "n": 1}
    q1, median, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return {"median_s": median, "iqr_s": q3 - q1, "n": len(samples)}


def time_interleaved(cases, rounds=5, min_seconds=0.3, warmup=2, kinds=("train", "infer")):
    """Median and IQR of seconds per call for each case and kind, measured round-robin.

    Returns a list of `{**case fields, "kind", "median_s", "iqr_s", "n", "compile_s"}`.
    """
    functions, compile_s = {}, {}
    for case in cases:
        start = time.perf_counter()
        functions[case] = step_functions(case)
        for kind in kinds:
            for _ in range(warmup):  # the first call traces and compiles
                functions[case][kind]()
        compile_s[case] = time.perf_counter() - start
    samples = {(case, kind): [] for case in cases for kind in kinds}
    for _ in range(rounds):
        for case in cases:
            for kind in kinds:
                samples[case, kind].append(seconds_per_call(functions[case][kind], min_seconds))
    return [
        {**case.to_dict(), "kind": kind, "compile_s": compile_s[case], **summarize(found)}
        for (case, kind), found in samples.items()
    ]
