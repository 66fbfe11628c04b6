"""Temporal order (Hochreiter & Schmidhuber 1997, "Long short-term memory", exp. 6a and 6b).

Encoding: token ids of shape ``(n, T)`` (one-hot, ``input_dim = 9``; id 0 is padding and never
occurs): ``a b c d`` = 1 … 4 (distractors), ``B`` = 5 (first step), ``E`` = 6 (last step),
``X`` = 7 and ``Y`` = 8 (the relevant symbols). Every other step is a random distractor.

Variant ``"2"`` (exp. 6a, 4 classes): X or Y at ``t1 ∈ [10, 20]`` and ``t2 ∈ [50, 60]``.
Variant ``"3"`` (exp. 6b, 8 classes): X or Y at ``t1 ∈ [10, 20]``, ``t2 ∈ [33, 43]``,
``t3 ∈ [66, 76]``. The paper's positions are for length ~100 (1-based); here they are scaled by
``T / 100`` (for T = 100 they are the paper's). Unlike the paper (lengths 100 … 110) every
sequence has exactly length T.

Target: the class index read after the last step (``categorical``): the relevant symbols read
as a binary number, X = 0 and Y = 1, first symbol most significant (XX = 0, XY = 1, YX = 2, YY = 3).

Loss: categorical cross-entropy. Chance baseline: accuracy 1/4 (variant "2") or 1/8
(variant "3"), cross-entropy ln 4 or ln 8 (``extras["chance_loss"]``). Solved: the head's
``accuracy`` > 0.95.

Held out: the distractors alone give ``4^(T − 2 − k)`` inputs per placement of the k relevant
symbols (``extras["distinct_inputs"]``); test inputs never occur in training.
"""

from __future__ import annotations

import math

import numpy as np

from datasets import synthetic
from datasets.base import DataConfig, DataSpec, Goal, Reads, check_choice

NAME = "temporal_order"
READS = Reads(data=(*synthetic.GENERATED, "variant"), outputs=("categorical",), inputs="one_hot",
              defines=(*synthetic.DEFINED_BY, "variant"))
DISTRACTORS = (1, 2, 3, 4)
B, E, X, Y = 5, 6, 7, 8
INPUT_DIM = 9
# 1-based windows of the relevant symbols at T = 100, per variant (paper, exp. 6a / 6b)
WINDOWS = {
    "2": ((10, 20), (50, 60)),
    "3": ((10, 20), (33, 43), (66, 76)),
}


def distinct_inputs(length: int, variant: str) -> int:
    """Placements × symbols × distractors: ``Π window sizes · 2^k · 4^(T − 2 − k)``."""
    count = 1
    for lo, hi in WINDOWS[variant]:
        start, stop = round(lo * length / 100) - 1, round(hi * length / 100) - 1
        count *= min(stop, length - 2) + 1 - max(start, 1)
    k = len(WINDOWS[variant])
    return count * 2**k * len(DISTRACTORS) ** (length - 2 - k)


def variant_of(config: DataConfig) -> str:
    variant = config.variant or "2"
    check_choice(NAME, "variant", variant, tuple(WINDOWS))
    return variant


def generate(n: int, length: int, rng: np.random.Generator, variant: str = "2"):
    """``(x, y)``: ids ``x`` int32 ``(n, length)``, class ``y`` int32 ``(n,)``."""
    check_choice(NAME, "variant", variant, tuple(WINDOWS))
    synthetic.check_length(NAME, length, 20)
    x = rng.integers(DISTRACTORS[0], DISTRACTORS[-1] + 1, (n, length), dtype=np.int32)
    x[:, 0], x[:, -1] = B, E
    rows = np.arange(n)
    y = np.zeros(n, np.int32)
    for lo, hi in WINDOWS[variant]:
        start, stop = round(lo * length / 100) - 1, round(hi * length / 100) - 1
        position = rng.integers(max(start, 1), min(stop, length - 2) + 1, n)
        bit = rng.integers(0, 2, n, dtype=np.int32)
        x[rows, position] = X + bit
        y = 2 * y + bit
    return x, y


def spec(config: DataConfig) -> DataSpec:
    classes = 2 ** len(WINDOWS[variant_of(config)])
    return DataSpec(
        name=NAME,
        output="categorical",
        input_encoding="one_hot",
        sequence_length=config.length,
        input_dim=INPUT_DIM,
        num_classes=classes,
        output_size=classes,
        goal=Goal("accuracy", threshold=0.95, mode="max", baseline=1.0 / classes),
        extras={"variant": variant_of(config), "chance_loss": math.log(classes),
                "distinct_inputs": synthetic.approx(
                    distinct_inputs(config.length, variant_of(config)))},
    )


def load(config: DataConfig):
    return synthetic.load_task(config, generate, spec(config), variant=variant_of(config))


def info(config: DataConfig) -> dict:
    return synthetic.info_task(config, spec(config))
