"""cells.inference: which backends and cells compile inference, and switching a trained model
to it with the same predictions."""

import keras
import numpy as np
import pytest

import cells
from cells.inference import ENV, MIN_BATCHES, XLA_INFERENCE


def test_inference_jit_decides_per_backend_and_amount_of_inference(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setattr(cells.inference, "op_determinism", lambda: False)
    few, many = MIN_BATCHES - 1, MIN_BATCHES
    assert cells.inference_jit(backend="tensorflow") is True  # amount unknown: compile
    assert cells.inference_jit(many, backend="tensorflow") is True
    assert cells.inference_jit(few, backend="tensorflow") is False  # XLA would not pay back
    assert cells.inference_jit(few, backend="jax") is True  # JAX re-traces without jit
    assert cells.inference_jit(many, backend="torch") is False  # torch.compile of a T-step loop
    assert cells.inference_jit() is cells.inference_jit(backend=keras.backend.backend())
    monkeypatch.setattr(cells.inference, "op_determinism", lambda: True)  # Keras refuses XLA then
    assert cells.inference_jit(many, backend="tensorflow") is False
    assert cells.inference_jit(backend="numpy") is False
    monkeypatch.setattr(cells.inference, "gpu", lambda: True)  # Keras's "auto" compiles there
    assert cells.inference_jit(few, backend="tensorflow") is False  # ... unless deterministic
    monkeypatch.setattr(cells.inference, "op_determinism", lambda: False)
    assert cells.inference_jit(few, backend="tensorflow", cells={"MyOwnCell"}) is True


def test_inference_jit_follows_the_measured_table_per_cell(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setattr(cells.inference, "op_determinism", lambda: False)
    faster = {cell for cell, (ratio, *_) in XLA_INFERENCE.items() if ratio < 1}
    for cell in cells.names():
        assert cells.inference_jit(None, "tensorflow", {cell}) is (cell in faster)
    assert cells.inference_jit(None, "tensorflow", {"lstm", "ProjectedRNN"}) is False
    assert cells.inference_jit(None, "tensorflow", {"MyOwnCell"}) is False  # not measured
    monkeypatch.setattr(cells.inference, "XLA_INFERENCE", {**XLA_INFERENCE, "gru": (1.2,)})
    assert cells.inference_jit(None, "tensorflow", {"lstm", "gru"}) is False  # slower for one


def test_the_switch_overrides_the_decision_and_refuses_other_values(monkeypatch):
    monkeypatch.setenv(ENV, "off")
    assert cells.inference_jit(backend="jax") is False
    assert cells.inference_jit(backend="tensorflow", override="on") is True
    monkeypatch.setenv(ENV, "ON")
    assert cells.inference_jit(1, backend="tensorflow") is True
    monkeypatch.setenv(ENV, "maybe")
    with pytest.raises(ValueError, match="RNNLAB_INFERENCE_JIT='maybe': valid values are auto, on, off"):
        cells.inference_jit()


def test_model_cells_finds_cells_inside_wrappers_and_projected_layers():
    seq = keras.Input((5, 3))
    x = keras.layers.Bidirectional(keras.layers.RNN(cells.get("peephole", units=4),
                                                    return_sequences=True))(seq)
    x = cells.ProjectedRNN(cells.get("gru", units=4), return_sequences=True)(x)
    x = keras.layers.LSTM(4)(x)
    model = keras.Model(seq, keras.layers.Dense(1)(x))
    assert cells.inference.model_cells(model) == {"peephole", "gru", "ProjectedRNN", "LSTMCell"}


def every_cell_model():
    """One output per cell, so one XLA compilation covers all five."""
    seq = keras.Input((5, 3))
    outs = [keras.layers.Dense(1, name=f"{cell}_out")(keras.layers.RNN(cells.get(cell, units=4))(seq))
            for cell in cells.names()]
    model = keras.Model(seq, outs)
    model.compile(optimizer="adam", loss=["mse"] * len(outs), jit_compile=False)
    return model


@pytest.fixture
def without_op_determinism():
    """Keras refuses XLA under TensorFlow's op determinism, which any earlier `run()` in this
    process turns on for the process (`train.deterministic`): off for the test, then restored,
    so the test does not depend on which tests ran before it."""
    if keras.backend.backend() != "tensorflow":
        yield
        return
    from tensorflow.python.framework import config as tf_config

    was = tf_config.is_op_determinism_enabled()
    tf_config.disable_op_determinism()
    yield
    if was:
        tf_config.enable_op_determinism()


def test_compiled_and_uncompiled_predictions_agree_for_every_cell(without_op_determinism):
    if keras.backend.backend() == "torch":
        pytest.skip("inference is not compiled under PyTorch (inference_jit)")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 5, 3)).astype("float32"), rng.normal(size=(4, 1)).astype("float32")
    ys = [y] * len(cells.names())
    model = every_cell_model()
    model.make_train_function()
    train_function, plain = model.train_function, model.predict_on_batch(x)
    plain_loss = model.evaluate(x, ys, verbose=0)

    def agree(found):
        for cell, got, want in zip(cells.names(), found, plain):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=cell)

    assert cells.compile_inference(model, jit=True) is True
    assert model.train_function is train_function  # training is left as it was compiled
    agree(model.predict_on_batch(x))
    agree(model.predict(x, verbose=0))
    np.testing.assert_allclose(model.evaluate(x, ys, verbose=0), plain_loss, rtol=1e-5)
    assert cells.compile_inference(model, jit=False) is False
    agree(model.predict_on_batch(x))


def test_compile_inference_on_a_model_that_only_predicts(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    seq = keras.Input((5, 3))
    model = keras.Model(seq, keras.layers.RNN(cells.get("gru", units=4))(seq))
    assert cells.compile_inference(model, batches=10) is cells.inference_jit(10, cells={"gru"})
    assert model.predict_on_batch(np.zeros((2, 5, 3), "float32")).shape == (2, 4)
    assert cells.compile_inference(model, override="off") is False
