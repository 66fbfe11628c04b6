"""cells.inference: which backends compile inference, and switching a trained model to it."""

import keras
import numpy as np
import pytest

import cells


def test_inference_jit_decides_per_backend_and_amount_of_inference():
    few, many = cells.inference.MIN_BATCHES - 1, cells.inference.MIN_BATCHES
    assert cells.inference_jit(backend="tensorflow") is True  # amount unknown: compile
    assert cells.inference_jit(many, backend="tensorflow") is True
    assert cells.inference_jit(few, backend="tensorflow") is False  # XLA would not pay back
    assert cells.inference_jit(few, backend="jax") is True  # JAX re-traces without jit
    assert cells.inference_jit(many, backend="torch") is False  # torch.compile of a T-step loop
    assert cells.inference_jit() is cells.inference_jit(backend=keras.backend.backend())


def tiny_model():
    seq = keras.Input((5, 3))
    out = keras.layers.Dense(1)(keras.layers.RNN(cells.get("peephole", units=4))(seq))
    model = keras.Model(seq, out)
    model.compile(optimizer="adam", loss="mse", jit_compile=False)
    return model


def test_compile_inference_keeps_training_as_compiled_and_predictions_equal():
    if keras.backend.backend() == "torch":
        pytest.skip("inference is not compiled under PyTorch (inference_jit)")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 5, 3)).astype("float32"), rng.normal(size=(4, 1)).astype("float32")
    model = tiny_model()
    model.train_on_batch(x, y)
    train_function, plain = model.train_function, model.predict_on_batch(x)
    assert cells.compile_inference(model, jit=True) is True
    assert model.train_function is train_function  # training is left as it was compiled
    np.testing.assert_allclose(model.predict_on_batch(x), plain, rtol=1e-5, atol=1e-6)
    loss = model.evaluate(x, y, verbose=0)
    assert np.isfinite(loss)
    assert cells.compile_inference(model, jit=False) is False
    np.testing.assert_allclose(model.predict_on_batch(x), plain, rtol=1e-5, atol=1e-6)


def test_compile_inference_on_a_model_that_only_predicts():
    seq = keras.Input((5, 3))
    model = keras.Model(seq, keras.layers.RNN(cells.get("gru", units=4))(seq))
    assert cells.compile_inference(model, batches=10) is cells.inference_jit(10)
    assert model.predict_on_batch(np.zeros((2, 5, 3), "float32")).shape == (2, 4)
