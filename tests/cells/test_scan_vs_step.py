"""`keras.layers.RNN(cell)` equals calling the cell step by step in a Python loop (any backend)."""

import keras
import numpy as np
import pytest
import reference as ref

import cells

UNITS = 4


@pytest.mark.parametrize("name", cells.names())
def test_scanning_equals_stepping(name):
    x = ref.sequence()
    cell = cells.get(name, units=UNITS)
    layer = keras.layers.RNN(cell, return_sequences=True, return_state=True)
    layer.build(x.shape)
    ref.randomize(layer)
    outputs, *states = layer(x)

    stepped = [keras.ops.zeros((x.shape[0], UNITS))] * len(states)
    for t in range(x.shape[1]):
        h, stepped = cell(keras.ops.convert_to_tensor(x[:, t]), stepped)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(outputs[:, t]), keras.ops.convert_to_numpy(h), atol=1e-6
        )
    for got, want in zip(stepped, states, strict=True):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(want), atol=1e-6
        )
