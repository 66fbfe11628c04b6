"""Dropout as in Keras: one input and one recurrent mask per sequence, only when training.

The probes read the masks off a linear vanilla cell: with kernel = I, recurrent kernel = 0 and
all-ones inputs, h_t is the input mask; with kernel = 0, recurrent kernel = I and bias 1,
h_t = m ⊙ h_{t-1} + 1 reveals the recurrent mask m.
"""

import keras
import numpy as np
import pytest
import reference as ref

import cells

B, T, D = 4, 5, 8


def probe(**kwargs):
    cell = cells.VanillaRNNCell(D, activation="linear", seed=11, **kwargs)
    layer = keras.layers.RNN(cell, return_sequences=True)
    layer.build((B, T, D))
    return layer


def run(layer, x, training=True):
    return keras.ops.convert_to_numpy(layer(x, training=training))


def input_masks(layer):
    layer.set_weights([np.eye(D), np.zeros((D, D)), np.zeros(D)])
    return run(layer, np.ones((B, T, D), "float32"))


def recurrent_masks(layer):
    layer.set_weights([np.zeros((D, D)), np.eye(D), np.ones(D)])
    h = run(layer, np.ones((B, T, D), "float32"))
    mask = h[:, 1] - 1.0
    for t in range(2, T):  # the same mask at every step
        np.testing.assert_allclose(h[:, t], mask * h[:, t - 1] + 1.0, atol=1e-5)
    return mask


def test_input_mask_is_the_same_at_every_step_and_new_for_each_batch():
    layer = probe(dropout=0.5)
    first, second = input_masks(layer), input_masks(layer)
    for masks in (first, second):
        assert set(np.unique(masks)) == {0.0, 2.0}
        for t in range(1, T):
            np.testing.assert_array_equal(masks[:, t], masks[:, 0])
    assert not np.array_equal(first[:, 0], second[:, 0])


def test_recurrent_mask_is_the_same_at_every_step_and_new_for_each_batch():
    layer = probe(recurrent_dropout=0.5)
    first, second = recurrent_masks(layer), recurrent_masks(layer)
    assert set(np.unique(first)) == {0.0, 2.0}
    assert not np.array_equal(first, second)


def test_input_and_recurrent_masks_differ():
    cell = cells.LSTMCell(D, dropout=0.5, recurrent_dropout=0.5, seed=3)
    ones = keras.ops.ones((B, D))
    np.testing.assert_raises(
        AssertionError, np.testing.assert_array_equal,
        *[keras.ops.convert_to_numpy(cell.dropout_mask(ones, 0.5, s)) for s in (0, 1)],
    )


def test_a_stepped_cell_keeps_its_mask_until_told():
    cell = cells.GRUCell(D, dropout=0.5, seed=5)
    x = keras.ops.ones((B, D))
    masks = [keras.ops.convert_to_numpy(cell.dropout_mask(x, 0.5, 0)) for _ in range(3)]
    np.testing.assert_array_equal(masks[0], masks[2])
    cell.new_dropout_masks()
    assert not np.array_equal(masks[0], keras.ops.convert_to_numpy(cell.dropout_mask(x, 0.5, 0)))


@pytest.mark.parametrize("name", cells.names())
def test_no_dropout_without_training(name):
    x = ref.sequence()
    plain = keras.layers.RNN(cells.get(name, units=D))
    dropped = keras.layers.RNN(cells.get(name, units=D, dropout=0.5, recurrent_dropout=0.5, seed=1))
    plain.build(x.shape)
    dropped.build(x.shape)
    dropped.set_weights(list(ref.randomize(plain).values()))
    want = run(plain, x, training=False)
    np.testing.assert_allclose(run(dropped, x, training=False), want, atol=1e-6)
    np.testing.assert_allclose(run(dropped, x, training=False), want, atol=1e-6)
    assert not np.allclose(run(dropped, x, training=True), want, atol=1e-3)


@pytest.mark.parametrize("name", cells.names())
def test_gradients_flow_through_dropout(name):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("uses tf.GradientTape")
    import tensorflow as tf

    layer = keras.layers.RNN(cells.get(name, units=D, dropout=0.3, recurrent_dropout=0.3, seed=2))
    x = tf.constant(ref.sequence())
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x, training=True) ** 2)
    for weight, grad in zip(layer.trainable_weights, tape.gradient(loss, layer.trainable_weights)):
        assert grad is not None and np.all(np.isfinite(grad)), weight.path
        assert np.any(grad.numpy() != 0), weight.path


def test_fit_draws_new_masks_for_every_batch():
    layer = probe(dropout=0.5)
    model = keras.Sequential([keras.Input((T, D)), layer, keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    before = keras.ops.convert_to_numpy(layer.cell.seed_generator.state)
    model.fit(np.ones((2 * B, T, D)), np.zeros((2 * B, 1)), batch_size=B, epochs=1, verbose=0)
    after = keras.ops.convert_to_numpy(layer.cell.seed_generator.state)
    assert after[1] - before[1] == 2  # one new pair of masks per batch
