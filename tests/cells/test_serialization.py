"""Configs round-trip; a saved `.keras` model reloads in a fresh process with safe_mode=True."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import reference as ref

import cells

REPO = Path(__file__).resolve().parents[2]
NON_DEFAULT = {
    "units": 3, "activation": "relu", "use_bias": False, "kernel_initializer": "he_normal",
    "kernel_regularizer": keras.regularizers.L2(0.01), "recurrent_constraint": "non_neg",
    "dropout": 0.25, "recurrent_dropout": 0.5, "seed": 42,
}
EXTRA = {"lstm": {"unit_forget_bias": False}, "peephole": {"unit_forget_bias": False},
         "coupled": {"unit_forget_bias": False}, "gru": {"reset_after": False}}


@pytest.mark.parametrize("name", cells.names())
def test_config_round_trip_is_stable(name):
    cell = cells.get(name, **NON_DEFAULT, **EXTRA.get(name, {}))
    config = cell.get_config()
    clone = type(cell).from_config(config)
    assert clone.get_config() == config
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(cell))
    assert type(revived) is type(cell) and revived.get_config() == config
    assert config["units"] == 3 and config["seed"] == 42


def all_cells_model(steps=4, dim=3):
    """One model holding each cell plain, inside Bidirectional and stacked."""
    inputs = keras.Input((steps, dim))
    branches = []
    for name in cells.names():
        branches.append(keras.layers.RNN(cells.get(name, units=2))(inputs))
        branches.append(keras.layers.Bidirectional(keras.layers.RNN(cells.get(name, units=2)))(inputs))
        stacked = [cells.get(name, units=2), cells.get(name, units=3)]
        branches.append(keras.layers.RNN(stacked)(inputs))
    return keras.Model(inputs, keras.layers.Concatenate()(branches))


RELOAD = textwrap.dedent("""
    import sys
    import numpy as np
    import keras
    import cells  # registers the cells with Keras, as any user of a saved model must
    model = keras.saving.load_model(sys.argv[1], safe_mode=True)
    np.save(sys.argv[3], keras.ops.convert_to_numpy(model(np.load(sys.argv[2]))))
""")


def test_saved_model_predicts_identically_in_a_fresh_process(tmp_path):
    model = all_cells_model()
    x = ref.sequence(steps=4, dim=3)
    for i, layer in enumerate(model.layers):
        if layer.weights:
            ref.randomize(layer, seed=i)
    model.save(tmp_path / "model.keras")
    np.save(tmp_path / "x.npy", x)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run(
        [sys.executable, "-c", RELOAD, str(tmp_path / "model.keras"), str(tmp_path / "x.npy"),
         str(tmp_path / "y.npy")],
        check=True, env=env, cwd=tmp_path, timeout=300,
    )
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), keras.ops.convert_to_numpy(model(x)), atol=1e-6)
