"""Adding problem (Hochreiter & Schmidhuber 1997, exp. 4; modern form of Le et al. 2015 and
Arjovsky et al. 2016).

Encoding: inputs ``x`` of shape ``(n, T, 2)`` float32. Channel 0 holds values ``v_t ~ U[0, 1]``,
channel 1 a marker that is 1 at exactly two positions, ``i ~ U{0 … T/2 - 1}`` in the first half
and ``j ~ U{T/2 … T - 1}`` in the second half, 0 elsewhere.

Target: ``y = v_i + v_j`` of shape ``(n, 1)``, read after the last step (output ``regression``).

Loss: mean squared error. Chance baseline: always predicting 1 (the mean of the target) gives
``MSE = Var(v_i + v_j) = 2 / 12 = 1/6 ≈ 0.167``. Solved: test MSE < 0.01 (the head's ``mse``).
Held out: the values are real, so a test input repeating a training one is practically
impossible; the loader checks anyway (:func:`datasets.synthetic.disjoint_splits`).

T is the whole sequence length (the lag between the first marker and the end is up to T);
the usual range is T = 50 … 1000.
"""

from __future__ import annotations

import numpy as np

from datasets import synthetic
from datasets.base import DataConfig, DataSpec, Goal, Reads

NAME = "adding"
READS = Reads(data=synthetic.GENERATED, outputs=("regression",), inputs="features",
              defines=synthetic.DEFINED_BY)
BASELINE_MSE = 1.0 / 6.0


def generate(n: int, length: int, rng: np.random.Generator):
    """``(x, y)``: ``x`` float32 ``(n, length, 2)``, ``y`` float32 ``(n, 1)``."""
    synthetic.check_length(NAME, length, 2)
    half = length // 2
    rows = np.arange(n)
    x = np.zeros((n, length, 2), np.float32)
    x[..., 0] = rng.random((n, length), dtype=np.float32)
    first = rng.integers(0, half, n)
    second = rng.integers(half, length, n)
    x[rows, first, 1] = 1.0
    x[rows, second, 1] = 1.0
    y = (x[rows, first, 0] + x[rows, second, 0])[:, None]
    return x, y


def spec(config: DataConfig) -> DataSpec:
    return DataSpec(
        name=NAME,
        output="regression",
        input_encoding="features",
        sequence_length=config.length,
        input_dim=2,
        output_size=1,
        goal=Goal("mse", threshold=0.01, mode="min", baseline=BASELINE_MSE),
        extras={"distinct_inputs": "unbounded (real-valued inputs)"},
    )


def load(config: DataConfig):
    return synthetic.load_task(config, generate, spec(config))


def info(config: DataConfig) -> dict:
    return synthetic.info_task(config, spec(config))
