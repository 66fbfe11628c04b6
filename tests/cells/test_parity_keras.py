"""Same weights in, same outputs, states and gradients out as Keras's own cells (TensorFlow)."""

import keras
import numpy as np
import pytest
import reference as ref

import cells

tf = pytest.importorskip("tensorflow")
pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="uses tf.GradientTape")

UNITS = 4
PAIRS = {
    "vanilla": (keras.layers.SimpleRNNCell, {}),
    "lstm": (keras.layers.LSTMCell, {}),
    "gru-reset_after": (keras.layers.GRUCell, {"reset_after": True}),
    "gru-reset_before": (keras.layers.GRUCell, {"reset_after": False}),
}


def twin_layers(key, x):
    keras_cls, kwargs = PAIRS[key]
    ours = keras.layers.RNN(cells.get(key.split("-")[0], units=UNITS, **kwargs),
                            return_sequences=True, return_state=True)
    theirs = keras.layers.RNN(keras_cls(UNITS, **kwargs), return_sequences=True, return_state=True)
    ours.build(x.shape)
    theirs.build(x.shape)
    assert [w.shape for w in ours.weights] == [w.shape for w in theirs.weights]
    theirs.set_weights(list(ref.randomize(ours).values()))
    return ours, theirs


def forward_and_gradients(layer, x, mask):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = layer(x, mask=mask)
        loss = sum(tf.reduce_sum(o * tf.cast(tf.range(1, o.shape[-1] + 1), o.dtype)) for o in outputs)
    grads = tape.gradient(loss, [x, *layer.trainable_weights])
    return [o.numpy() for o in outputs], [g.numpy() for g in grads]


@pytest.mark.parametrize("masked", [False, True], ids=["full", "masked"])
@pytest.mark.parametrize("key", list(PAIRS))
def test_outputs_states_and_gradients_match_keras(key, masked):
    x = ref.sequence(dim=3)
    mask = ref.ragged_mask() if masked else None
    ours, theirs = twin_layers(key, x)
    got_out, got_grad = forward_and_gradients(ours, x, mask)
    want_out, want_grad = forward_and_gradients(theirs, x, mask)
    for got, want in zip(got_out + got_grad, want_out + want_grad, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("bias_initializer", ["zeros", keras.initializers.RandomNormal(seed=3)])
def test_forget_bias_starts_as_in_keras(bias_initializer):
    ours = cells.LSTMCell(UNITS, bias_initializer=bias_initializer)
    theirs = keras.layers.LSTMCell(UNITS, bias_initializer=bias_initializer)
    ours.build((None, 3))
    theirs.build((None, 3))
    np.testing.assert_allclose(ours.bias.numpy(), theirs.bias.numpy())
    np.testing.assert_array_equal(ours.bias.numpy()[UNITS : 2 * UNITS], 1.0)


def test_coupled_forget_bias_is_its_first_block():
    cell = cells.CoupledLSTMCell(UNITS)
    cell.build((None, 3))
    np.testing.assert_array_equal(cell.bias.numpy(), np.repeat([1.0, 0.0, 0.0], UNITS))
