"""Copy memory (Arjovsky, Shah & Bengio 2016, "Unitary evolution recurrent neural networks").

Encoding: token ids of shape ``(n, T + 20)`` (one-hot, ``input_dim = 11``; id 0 is padding and never
occurs). Positions ``0 … 9`` hold 10 symbols drawn uniformly from 8 categories (ids 1 … 8),
positions ``10 … T + 8`` the blank (id 9, T - 1 of them), position ``T + 9`` the delimiter
(id 10), and positions ``T + 10 … T + 19`` blanks again.

Targets: class ids of shape ``(n, T + 20)`` (``sequence_categorical``, 9 classes): 0 ("blank")
at positions ``0 … T + 9``, then the 10 input symbols (ids 1 … 8, the same ids as in the input) at
positions ``T + 10 … T + 19``. No sample weights: as in the paper, every one of the ``T + 20``
outputs is trained and scored, the blanks included.

Loss: cross-entropy per step, averaged over all ``T + 20`` steps. Chance baseline (the
memoryless strategy: blanks certain, then uniform over the 8 symbols): ``10 ln 8 / (T + 20)``
in ``loss``. Metrics: the head's ``accuracy`` over all steps, and ``recall_accuracy``
(:func:`recall_accuracy`, a scorer over the test predictions), the accuracy over the 10
recalled symbols only, chance 1/8.
Solved: ``recall_accuracy > 0.99``.

Held out: ``8^10 ≈ 1.07e9`` distinct inputs; test inputs never occur in training.
"""

from __future__ import annotations

import math

import numpy as np

from datasets import synthetic
from datasets.base import DataConfig, DataSpec, Goal, Reads, Scorer

NAME = "copy"
READS = Reads(data=synthetic.GENERATED, outputs=("sequence_categorical",), inputs="one_hot",
              defines=synthetic.DEFINED_BY)
NUM_SYMBOLS = 10  # symbols to remember
NUM_CATEGORIES = 8  # ids 1 … 8
BLANK, DELIMITER = 9, 10
INPUT_DIM = 11  # ids 0 (padding, unused) … 10
NUM_CLASSES = 9  # targets: 0 = blank, 1 … 8 = symbols


def baseline(length: int) -> float:
    """Cross-entropy per step of the memoryless strategy: ``10 ln 8 / (T + 20)``."""
    return NUM_SYMBOLS * math.log(NUM_CATEGORIES) / (length + 2 * NUM_SYMBOLS)


def generate(n: int, length: int, rng: np.random.Generator):
    """``(x, y)``: ids ``x`` int32 and class ids ``y`` int32, both ``(n, length + 20)``."""
    synthetic.check_length(NAME, length, 1)
    total = length + 2 * NUM_SYMBOLS
    symbols = rng.integers(1, NUM_CATEGORIES + 1, (n, NUM_SYMBOLS), dtype=np.int32)
    x = np.full((n, total), BLANK, np.int32)
    x[:, :NUM_SYMBOLS] = symbols
    x[:, length + NUM_SYMBOLS - 1] = DELIMITER
    y = np.zeros((n, total), np.int32)
    y[:, -NUM_SYMBOLS:] = symbols
    return x, y


def recall_accuracy(y_true, y_pred):
    """Per sequence: the share of the recalled symbols (the steps whose target is not the blank,
    0) whose largest logit is the right symbol."""
    y_true = np.asarray(y_true)
    recalled = y_true > 0
    right = (np.asarray(y_pred).argmax(-1) == y_true) & recalled
    return right.sum(-1) / np.maximum(recalled.sum(-1), 1)


def spec(config: DataConfig) -> DataSpec:
    return DataSpec(
        name=NAME,
        output="sequence_categorical",
        input_encoding="one_hot",
        sequence_length=config.length + 2 * NUM_SYMBOLS,
        input_dim=INPUT_DIM,
        num_classes=NUM_CLASSES,
        output_size=NUM_CLASSES,
        scorers=(Scorer("recall_accuracy", recall_accuracy, chance=1.0 / NUM_CATEGORIES),),
        goal=Goal("recall_accuracy", threshold=0.99, mode="max",
                  baseline=baseline(config.length), baseline_metric="loss"),
        extras={"distinct_inputs": NUM_CATEGORIES**NUM_SYMBOLS},
    )


def load(config: DataConfig):
    return synthetic.load_task(config, generate, spec(config))


def info(config: DataConfig) -> dict:
    return synthetic.info_task(config, spec(config))
