"""Sentiment (many-to-one): Embedding(mask_zero) -> RNN(cell) (stacked, optionally bidirectional)
-> Dense(1, sigmoid).

    p(positive | x_1..x_T) = sigmoid(w · h_T + b),   loss = binary cross-entropy,   metric = accuracy

The goal (chance 0.5, solved at accuracy >= 0.88) comes with the dataset's DataSpec (``datasets/imdb.py``).
After the test, the spec's ``extras["preprocess"]`` (vocabulary and text settings) are returned
as texts and logged under ``preprocess/``, so ``rnnlab predict RUN_ID`` classifies raw reviews.
"""

from __future__ import annotations

import keras

from experiments.tasks.common import Head, head_family

HEADS = {
    "binary": Head(
        per_step=False,
        size=lambda spec: 1,
        activation="sigmoid",
        loss=keras.losses.BinaryCrossentropy,
        metrics=lambda: [keras.metrics.BinaryAccuracy(name="accuracy")],
        confusion=True,
    ),
}

FAMILY = head_family("sentiment", HEADS)
