"""The cells work with every option of `keras.layers.RNN`, in Bidirectional and stacked."""

import keras
import numpy as np
import pytest
import reference as ref

import cells

UNITS, B, T, D = 3, 3, 5, 4


def layer_with_weights(name, x_shape=(B, T, D), **rnn_kwargs):
    layer = keras.layers.RNN(cells.get(name, units=UNITS), **rnn_kwargs)
    layer.build(x_shape)
    return layer, ref.randomize(layer)


def npy(tensors):
    return [keras.ops.convert_to_numpy(t) for t in keras.tree.flatten(tensors)]


def zeros(name):
    return [np.zeros((B, UNITS), "float32")] * (2 if name in ("lstm", "peephole", "coupled") else 1)


def expected(name, x, weights, states=None, mask=None):
    return ref.run(ref.STEPS[name], x, states or zeros(name), weights, mask)


def assert_all_close(got, want, atol=1e-5):
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, atol=atol)


@pytest.mark.parametrize("name", cells.names())
def test_return_sequences_and_state_shapes(name):
    layer, _ = layer_with_weights(name, return_sequences=True, return_state=True)
    outputs, *states = layer(ref.sequence())
    assert outputs.shape == (B, T, UNITS)
    assert [s.shape for s in states] == [(B, UNITS)] * len(zeros(name))


@pytest.mark.parametrize("name", cells.names())
def test_go_backwards_reads_the_sequence_reversed(name):
    x = ref.sequence()
    layer, weights = layer_with_weights(name, go_backwards=True, return_state=True)
    outputs, states = expected(name, x[:, ::-1], weights)
    assert_all_close(npy(layer(x)), [outputs[:, -1], *states])


@pytest.mark.parametrize("name", cells.names())
def test_initial_state_is_used(name):
    x = ref.sequence()
    init = [np.random.default_rng(i).normal(size=(B, UNITS)).astype("float32") for i, _ in
            enumerate(zeros(name))]
    layer, weights = layer_with_weights(name, return_sequences=True)
    outputs, _ = expected(name, x, weights, states=init)
    assert_all_close(npy(layer(x, initial_state=init)), [outputs])


@pytest.mark.parametrize("name", cells.names())
def test_unroll_equals_the_loop(name):
    x = ref.sequence()
    looped, weights = layer_with_weights(name, return_sequences=True)
    unrolled, _ = layer_with_weights(name, return_sequences=True, unroll=True)
    unrolled.set_weights(list(weights.values()))
    assert_all_close(npy(unrolled(x)), npy(looped(x)), atol=1e-6)


@pytest.mark.parametrize("name", cells.names())
def test_stateful_continues_where_it_stopped(name):
    x = ref.sequence(steps=2 * T)
    whole, weights = layer_with_weights(name, x_shape=x.shape, return_sequences=True)
    halves, _ = layer_with_weights(name, return_sequences=True, stateful=True)
    halves.set_weights(list(weights.values()))
    got = np.concatenate(npy(halves(x[:, :T])) + npy(halves(x[:, T:])), axis=1)
    assert_all_close([got], npy(whole(x)))
    halves.reset_state()
    assert_all_close(npy(halves(x[:, :T])), [npy(whole(x))[0][:, :T]])


@pytest.mark.parametrize("name", cells.names())
def test_embedding_mask_skips_padding(name):
    tokens = np.array([[1, 2, 3, 4, 5], [6, 7, 8, 0, 0], [9, 0, 0, 0, 0]])
    embedding = keras.layers.Embedding(10, D, mask_zero=True)
    layer, weights = layer_with_weights(name, return_state=True)
    model = keras.Sequential([keras.Input((T,), dtype="int32"), embedding, layer])
    x = keras.ops.convert_to_numpy(embedding(tokens))
    outputs, states = expected(name, x, weights, mask=tokens != 0)
    assert_all_close(npy(model(tokens)), [outputs[:, -1], *states])


@pytest.mark.parametrize("name", cells.names())
def test_bidirectional_concatenates_forward_and_backward(name):
    x = ref.sequence()
    layer = keras.layers.Bidirectional(keras.layers.RNN(cells.get(name, units=UNITS)))
    layer.build(x.shape)
    forward = ref.randomize(layer.forward_layer, seed=0)
    backward = ref.randomize(layer.backward_layer, seed=1)
    want_fwd, _ = expected(name, x, forward)
    want_bwd, _ = expected(name, x[:, ::-1], backward)
    assert_all_close(npy(layer(x)), [np.concatenate([want_fwd[:, -1], want_bwd[:, -1]], -1)])


@pytest.mark.parametrize("name", cells.names())
def test_stacked_cells_equal_two_layers(name):
    x = ref.sequence()
    stacked = keras.layers.RNN([cells.get(name, units=UNITS), cells.get(name, units=UNITS)])
    stacked.build(x.shape)
    ref.randomize(stacked)
    w = stacked.get_weights()
    first, second = w[: len(w) // 2], w[len(w) // 2 :]
    lower = keras.layers.RNN(cells.get(name, units=UNITS), return_sequences=True)
    upper = keras.layers.RNN(cells.get(name, units=UNITS))
    lower.build(x.shape)
    upper.build((B, T, UNITS))
    lower.set_weights(first)
    upper.set_weights(second)
    assert_all_close(npy(stacked(x)), npy(upper(lower(x))))
