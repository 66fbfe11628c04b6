"""Evaluation's compiled inference: a run counts its inference batches and lets
cells.inference decide (tests/cells/test_inference.py covers the decision and exactness)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import cells
from cells.inference import ENV, MIN_BATCHES
from experiments.tasks import compile_for_test


def lstm_model():
    seq = keras.Input((5, 3))
    model = keras.Model(seq, keras.layers.Dense(1)(keras.layers.RNN(cells.get("lstm", units=4))(seq)))
    model.compile(optimizer="adam", loss="mse")
    return model


def test_a_run_counts_validation_every_epoch_and_the_test_split_twice(monkeypatch):
    asked = []
    monkeypatch.setattr(cells.inference, "inference_jit",
                        lambda batches, cells=None, override=None: asked.append((batches, cells)))
    ten = tf.data.Dataset.from_tensor_slices(np.zeros((10 * 64 - 3, 5, 3), "float32")).batch(64)
    unknown = ten.filter(lambda x: True)  # cardinality unknown: counted 0
    compile_for_test(lstm_model(), 7, ten, ten)
    compile_for_test(lstm_model(), 7, None, unknown)
    assert asked == [(7 * 10 + 2 * 10, {"lstm"}), (0, {"lstm"})]


def test_short_runs_stay_uncompiled_and_long_ones_compile_on_tensorflow(monkeypatch):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the batch threshold is TensorFlow's (JAX always jits, PyTorch never)")
    monkeypatch.delenv(ENV, raising=False)
    one = tf.data.Dataset.from_tensor_slices(np.zeros((64, 5, 3), "float32")).batch(64)
    assert compile_for_test(lstm_model(), 20, one, one) is False
    # op determinism (on for the process once a run with train.deterministic ran) rules XLA out
    deterministic = cells.inference.op_determinism()
    assert compile_for_test(lstm_model(), MIN_BATCHES, one, one) is not deterministic
    monkeypatch.setenv(ENV, "off")
    assert compile_for_test(lstm_model(), MIN_BATCHES, one, one) is False
