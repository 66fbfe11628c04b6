"""Long-dependency toy tasks: one head per output kind of the task's DataSpec.

- ``regression`` (adding, spike regression): ``y = W h_T + b``; mean squared error; metric ``mse``.
- ``categorical`` (temporal order, spike classes): ``p = softmax(W h_T + b)``; sparse
  cross-entropy; ``accuracy``.
- ``sequence_categorical`` (copy memory): ``p_t = softmax(W h_t + b)`` at every step; sparse
  cross-entropy averaged over every step; ``accuracy`` over every step.
- ``sequence_multilabel`` (embedded Reber grammar): ``p_t = sigmoid(W h_t + b)``, one independent
  probability per symbol that may come next; binary cross-entropy averaged over the string's
  steps (``mean_with_sample_weight``: padding weighs 0); per-symbol ``accuracy`` compiled as a
  weighted metric, so padding is not counted.

Per-step heads refuse ``model.bidirectional`` (the backward direction would see the answer).
Task-specific metrics (copy's ``recall_accuracy``, spike timing's ``on_time``, Reber's
``reber_success``), the chance baseline and the "solved" rule come typed with the task's
DataSpec (``scorers`` over the test predictions, ``goal``).
"""

from __future__ import annotations

import keras

from experiments.tasks.common import Head, head_family


def _classes(spec) -> int:
    return spec.num_classes


def _sparse_ce():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _sparse_accuracy():
    return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]


def _per_step_bce():
    return keras.losses.BinaryCrossentropy(reduction="mean_with_sample_weight")


HEADS: dict[str, Head] = {
    "regression": Head(
        per_step=False,
        size=lambda spec: spec.output_size,
        activation=None,
        loss=keras.losses.MeanSquaredError,
        metrics=lambda: [keras.metrics.MeanSquaredError(name="mse")],
    ),
    "categorical": Head(
        per_step=False, size=_classes, activation=None, loss=_sparse_ce,
        metrics=_sparse_accuracy, confusion=True,
    ),
    "sequence_categorical": Head(
        per_step=True, size=_classes, activation=None, loss=_sparse_ce, metrics=_sparse_accuracy,
    ),
    "sequence_multilabel": Head(
        per_step=True,
        size=_classes,
        activation="sigmoid",
        loss=_per_step_bce,
        metrics=list,
        weighted_metrics=lambda: [keras.metrics.BinaryAccuracy(name="accuracy")],
    ),
}

FAMILY = head_family("long_dependency", HEADS)
