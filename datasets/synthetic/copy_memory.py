"""Copy memory (Arjovsky, Shah & Bengio 2016, "Unitary evolution recurrent neural networks").

Encoding: token ids of shape ``(n, T + 20)`` (one-hot, ``input_dim = 11``; id 0 is padding and never
occurs). Positions ``0 … 9`` hold 10 symbols drawn uniformly from 8 categories (ids 1 … 8),
positions ``10 … T + 8`` the blank (id 9, T - 1 of them), position ``T + 9`` the delimiter
(id 10), and positions ``T + 10 … T + 19`` blanks again.

Targets: class ids of shape ``(n, T + 20)`` (``sequence_categorical``, 9 classes): 0 ("blank")
at positions ``0 … T + 9``, then the 10 input symbols (ids 1 … 8, the same ids as in the input) at
positions ``T + 10 … T + 19``.

Sample weights ``(n, T + 20)``: 1 at the 10 recalled positions ``T + 10 … T + 19``, 0 elsewhere.
Keras's default ``sum_over_batch_size`` reduction divides the weighted loss by all ``T + 20``
positions, so the weighted cross-entropy equals the paper's per-step loss of a model that gets
the blanks right. Accuracy (compile it among ``weighted_metrics``) is per-symbol accuracy over
those 10 recalled positions only.

Loss: cross-entropy per step. Chance baseline (blanks predicted, then uniform over the 8
symbols): ``10 ln 8 / (T + 20)``; chance accuracy on the recalled symbols 1/8.
Solved: accuracy > 0.99.
"""

from __future__ import annotations

import math

import numpy as np

from datasets import synthetic
from datasets.base import DataConfig, DataSpec

NAME = "copy"
NUM_SYMBOLS = 10  # symbols to remember
NUM_CATEGORIES = 8  # ids 1 … 8
BLANK, DELIMITER = 9, 10
INPUT_DIM = 11  # ids 0 (padding, unused) … 10
NUM_CLASSES = 9  # targets: 0 = blank, 1 … 8 = symbols


def baseline(length: int) -> float:
    """Cross-entropy per step of the memoryless strategy: ``10 ln 8 / (T + 20)``."""
    return NUM_SYMBOLS * math.log(NUM_CATEGORIES) / (length + 2 * NUM_SYMBOLS)


def generate(n: int, length: int, rng: np.random.Generator):
    """``(x, y, w)``: ids ``x`` int32, class ids ``y`` int32, weights ``w`` float32, all
    ``(n, length + 20)``."""
    synthetic.check_length(NAME, length, 1)
    total = length + 2 * NUM_SYMBOLS
    symbols = rng.integers(1, NUM_CATEGORIES + 1, (n, NUM_SYMBOLS), dtype=np.int32)
    x = np.full((n, total), BLANK, np.int32)
    x[:, :NUM_SYMBOLS] = symbols
    x[:, length + NUM_SYMBOLS - 1] = DELIMITER
    y = np.zeros((n, total), np.int32)
    y[:, -NUM_SYMBOLS:] = symbols
    w = np.zeros((n, total), np.float32)
    w[:, -NUM_SYMBOLS:] = 1.0
    return x, y, w


def spec(config: DataConfig) -> DataSpec:
    return DataSpec(
        name=NAME,
        output="sequence_categorical",
        input_encoding="one_hot",
        sequence_length=config.length + 2 * NUM_SYMBOLS,
        input_dim=INPUT_DIM,
        num_classes=NUM_CLASSES,
        output_size=NUM_CLASSES,
        baseline=baseline(config.length),
        baseline_metric="loss",
        solved_metric="accuracy",
        solved_threshold=0.99,
        solved_mode="max",
        extras={
            "sample_weights": "1 at the 10 recalled positions T+10 … T+19, else 0",
            "baseline_accuracy": 1.0 / NUM_CATEGORIES,
        },
    )


def load(config: DataConfig):
    return synthetic.load_task(config, generate, spec(config))


def info(config: DataConfig) -> dict:
    return synthetic.info_task(config, spec(config))
