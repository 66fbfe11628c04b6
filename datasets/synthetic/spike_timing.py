"""Spike timing — measuring spike delays (adapted from Gers, Schraudolph & Schmidhuber 2002,
"Learning precise timing with LSTM recurrent networks", JMLR 3, the MSD task).

Encoding: inputs ``x`` of shape ``(n, T, 1)`` float32, zero except two spikes of height 1 a delay
``d`` apart: ``d ~ U{1 … D}`` with ``D = T // 2``, the first spike at ``t0 ~ U{0 … T - 1 - d}``,
the second at ``t0 + d``. The network reads the whole sequence and answers after the last step,
so it has to time the gap between the spikes and hold that measurement (peepholes, which let the
gates see the cell state, are expected to help).

Metric ``on_time`` (:func:`on_time`, both variants): the share of answers within half a time
step, ``|y·D − d| < 0.5`` (regression) or the right class (classes), i.e. rounding the answer
recovers the delay. Solved: ``on_time >= 1.0`` — every test answer within half a step, as Gers
et al. (2002) require of a solution; an average such as the MSE can pass while many answers are
a step off. Chance baseline: ``on_time = 1/D`` (a constant or random answer hits one delay in D).

Variant ``"regression"`` (default): target ``y = d / D`` in ``(0, 1]``, shape ``(n, 1)``;
loss MSE, chance MSE ``Var(d) / D² = (D² − 1) / (12 D²) ≈ 1/12`` (:func:`chance_mse`).
Variant ``"classes"``: target the class ``d − 1`` (``D`` classes, int32 ``(n,)``); loss
categorical cross-entropy, ``accuracy`` (equal to ``on_time``).

Held out: there are only ``Σ_{d=1..D} (T − d)`` distinct inputs (925 at T = 50, 3,725 at T = 100,
14,950 at T = 200; ``extras["distinct_inputs"]``); test and validation inputs never occur in
training, and sizes that would leave training too few inputs are refused with an error.
"""

from __future__ import annotations

import numpy as np

from datasets import synthetic
from datasets.base import DataConfig, DataSpec, Goal, Reads, Scorer, check_choice

NAME = "spike_timing"
READS = Reads(data=(*synthetic.GENERATED, "variant"), outputs=("regression", "categorical"),
              inputs="features", defines=(*synthetic.DEFINED_BY, "variant"))
VARIANTS = ("regression", "classes")


def max_delay(length: int) -> int:
    return length // 2


def distinct_inputs(length: int) -> int:
    """How many different inputs (first spike, delay) a length has: ``Σ_{d=1..D} (T − d)``."""
    top = max_delay(length)
    return top * length - top * (top + 1) // 2


def chance_mse(length: int) -> float:
    """MSE of predicting the mean delay: ``(D² − 1) / (12 D²)``."""
    top = max_delay(length)
    return (top**2 - 1) / (12 * top**2)


def on_time(top: int):
    """The scorer of ``D = top``: per answer 1.0 when rounding it recovers the delay.

    Regression (``y_pred`` of shape ``(n, 1)``, ``y_true = d / D``): ``|y_pred − y_true| · D < 0.5``.
    Classes (``y_pred`` logits ``(n, D)``, ``y_true`` the class ``d − 1``): the argmax is right.
    """

    def score(y_true, y_pred):
        y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
        if y_pred.shape[-1] == 1:
            return (np.abs(y_pred[:, 0] - y_true.reshape(-1)) * top < 0.5).astype(np.float32)
        return (y_pred.argmax(-1) == y_true.reshape(-1)).astype(np.float32)

    return score


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
    variant = variant_of(config)
    classes = variant == "classes"
    return DataSpec(
        name=NAME,
        output="categorical" if classes else "regression",
        input_encoding="features",
        sequence_length=config.length,
        input_dim=1,
        num_classes=top if classes else None,
        output_size=top if classes else 1,
        scorers=(Scorer("on_time", on_time(top), chance=1.0 / top),),
        goal=Goal("on_time", threshold=1.0, mode="at_least", baseline=1.0 / top),
        extras={"variant": variant, "max_delay": top,
                "distinct_inputs": distinct_inputs(config.length),
                "chance_mse": None if classes else chance_mse(config.length)},
    )


def load(config: DataConfig):
    return synthetic.load_task(config, generate, spec(config), variant=variant_of(config))


def info(config: DataConfig) -> dict:
    return synthetic.info_task(config, spec(config))
