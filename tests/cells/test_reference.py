"""The cells against NumPy references written from their equations (any Keras backend)."""

import functools

import keras
import numpy as np
import pytest
import reference as ref

import cells

UNITS = 5
CASES = [("vanilla", {}), ("lstm", {}), ("peephole", {}), ("coupled", {}),
         ("gru", {"reset_after": True}), ("gru", {"reset_after": False}),
         ("lstm", {"use_bias": False}), ("gru", {"use_bias": False})]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for name, kw in CASES]


def numpy_step(name, kwargs):
    step = ref.STEPS[name]
    return functools.partial(step, reset_after=kwargs["reset_after"]) if "reset_after" in kwargs \
        else step


def as_numpy(tensors):
    return [keras.ops.convert_to_numpy(t) for t in tensors]


@pytest.mark.parametrize("masked", [False, True], ids=["full", "masked"])
@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=IDS)
def test_cell_matches_numpy_reference(name, kwargs, masked):
    x = ref.sequence()
    mask = ref.ragged_mask() if masked else None
    layer = keras.layers.RNN(cells.get(name, units=UNITS, **kwargs),
                             return_sequences=True, return_state=True)
    layer.build(x.shape)
    weights = ref.randomize(layer)
    outputs, *states = as_numpy(layer(x, mask=mask))
    zeros = [np.zeros((x.shape[0], UNITS), "float32")] * len(states)
    want_outputs, want_states = ref.run(numpy_step(name, kwargs), x, zeros, weights, mask)
    np.testing.assert_allclose(outputs, want_outputs, atol=1e-5)
    for got, want in zip(states, want_states, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5)


def built_cell(name, dim=4, **kwargs):
    cell = cells.get(name, units=UNITS, **kwargs)
    cell.build((None, dim))
    return cell


def step(cell, x, states):
    h, new_states = cell(keras.ops.convert_to_tensor(x), [keras.ops.convert_to_tensor(s) for s in states])
    return as_numpy([h, *new_states])


def test_peephole_with_zero_peepholes_is_the_lstm():
    x = ref.sequence(steps=1)[:, 0]
    h, c = (np.random.default_rng(s).normal(size=(3, UNITS)).astype("float32") for s in (2, 3))
    lstm, peephole = built_cell("lstm"), built_cell("peephole")
    weights = ref.randomize(lstm)
    peephole.set_weights([*weights.values(), *[np.zeros(UNITS, "float32")] * 3])
    for got, want in zip(step(peephole, x, [h, c]), step(lstm, x, [h, c]), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_peepholes_change_the_lstm():
    x = ref.sequence(steps=1)[:, 0]
    c = np.ones((3, UNITS), "float32")
    lstm, peephole = built_cell("lstm"), built_cell("peephole")
    weights = ref.randomize(lstm)
    peephole.set_weights([*weights.values(), *[np.ones(UNITS, "float32")] * 3])
    assert not np.allclose(step(peephole, x, [c, c])[2], step(lstm, x, [c, c])[2], atol=1e-3)


def test_coupled_is_an_lstm_step_with_input_gate_one_minus_forget():
    x = ref.sequence(steps=1)[:, 0]
    h, c = (np.random.default_rng(s).normal(size=(3, UNITS)).astype("float32") for s in (2, 3))
    cell = built_cell("coupled")
    w = ref.randomize(cell)

    def with_input_block(a):  # any input-gate block will do: i = 1 - f ignores it
        return np.concatenate([np.full((*a.shape[:-1], UNITS), 99.0, "float32"), a], axis=-1)

    lstm_w = {key: with_input_block(w[key]) for key in ("kernel", "recurrent_kernel", "bias")}
    want_h, (_, want_c) = ref.lstm(x, [h, c], lstm_w, input_gate=lambda f: 1.0 - f)
    got_h, _, got_c = step(cell, x, [h, c])
    np.testing.assert_allclose(got_h, want_h, atol=1e-5)
    np.testing.assert_allclose(got_c, want_c, atol=1e-5)


@pytest.mark.parametrize("name", cells.names())
def test_input_projection_accepts_a_whole_sequence(name):
    x = ref.sequence()
    cell = built_cell(name)
    ref.randomize(cell)
    whole = keras.ops.convert_to_numpy(cell.input_projection(keras.ops.convert_to_tensor(x)))
    for t in range(x.shape[1]):
        one = keras.ops.convert_to_numpy(cell.input_projection(keras.ops.convert_to_tensor(x[:, t])))
        np.testing.assert_allclose(whole[:, t], one, atol=1e-6)
