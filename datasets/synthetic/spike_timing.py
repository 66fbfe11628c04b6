"""Spike timing — measuring spike delays (adapted from Gers, Schraudolph & Schmidhuber 2002,
"Learning precise timing with LSTM recurrent networks", JMLR 3, the MSD task).

Encoding: inputs ``x`` of shape ``(n, T, 1)`` float32, zero except two spikes of height 1 a delay
``d`` apart: ``d ~ U{1 … D}`` with ``D = T // 2``, the first spike at ``t0 ~ U{0 … T - 1 - d}``,
the second at ``t0 + d``. The network reads the whole sequence and answers after the last step,
so it has to time the gap between the spikes and hold that measurement (peepholes, which let the
gates see the cell state, are expected to help).

Variant ``"regression"`` (default): target ``y = d / D`` in ``(0, 1]``, shape ``(n, 1)``.
Loss MSE; chance baseline (predicting the mean) ``Var(d) / D² = (D² - 1) / (12 D²) ≈ 1/12``.
Solved: MSE < ``(0.5 / D)²``, i.e. a root-mean-square error under half a time step, so rounding
``y · D`` recovers the delay.

Variant ``"classes"``: target the class ``d - 1`` (``D`` classes, int32 ``(n,)``).
Loss categorical cross-entropy; chance baseline accuracy ``1 / D``. Solved: accuracy > 0.95.
"""

from __future__ import annotations

import numpy as np

from datasets import synthetic
from datasets.base import DataConfig, DataSpec, check_choice

NAME = "spike_timing"
VARIANTS = ("regression", "classes")


def max_delay(length: int) -> int:
    return length // 2


def variant_of(config: DataConfig) -> str:
    variant = config.variant or "regression"
    check_choice(NAME, "variant", variant, VARIANTS)
    return variant


def generate(n: int, length: int, rng: np.random.Generator, variant: str = "regression"):
    """``(x, y)``: ``x`` float32 ``(n, length, 1)``; ``y`` float32 ``(n, 1)`` or int32 ``(n,)``."""
    check_choice(NAME, "variant", variant, VARIANTS)
    synthetic.check_length(NAME, length, 4)
    top = max_delay(length)
    delay = rng.integers(1, top + 1, n)
    first = (rng.random(n) * (length - delay)).astype(np.int64)  # U{0 … T - 1 - d}
    rows = np.arange(n)
    x = np.zeros((n, length, 1), np.float32)
    x[rows, first, 0] = 1.0
    x[rows, first + delay, 0] = 1.0
    if variant == "classes":
        return x, (delay - 1).astype(np.int32)
    return x, (delay / top).astype(np.float32)[:, None]


def spec(config: DataConfig) -> DataSpec:
    top = max_delay(config.length)
    common = {
        "name": NAME,
        "input_encoding": "features",
        "sequence_length": config.length,
        "input_dim": 1,
    }
    if variant_of(config) == "classes":
        return DataSpec(
            **common,
            output="categorical",
            num_classes=top,
            output_size=top,
            baseline=1.0 / top,
            baseline_metric="accuracy",
            solved_metric="accuracy",
            solved_threshold=0.95,
            solved_mode="max",
            extras={"variant": "classes", "max_delay": top},
        )
    return DataSpec(
        **common,
        output="regression",
        output_size=1,
        baseline=(top**2 - 1) / (12 * top**2),
        baseline_metric="mse",
        solved_metric="mse",
        solved_threshold=(0.5 / top) ** 2,
        solved_mode="min",
        extras={"variant": "regression", "max_delay": top},
    )


def load(config: DataConfig):
    return synthetic.load_task(config, generate, spec(config), variant=variant_of(config))


def info(config: DataConfig) -> dict:
    return synthetic.info_task(config, spec(config))
