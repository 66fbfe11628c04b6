"""ProjectedRNN gives what keras.layers.RNN(cell) gives: outputs, states, gradients.

Every case builds the same cell twice with the same weights (and dropout seed),
runs one through `keras.layers.RNN` and one through `ProjectedRNN`, and compares.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

import cells
from cells.fast import ProjectedRNN

B, T, D, UNITS = 3, 6, 4, 5
NAMES = ("vanilla", "lstm", "peephole", "coupled", "gru")


def make_cell(name, **kwargs):
    return cells.get(name, units=UNITS, **kwargs)


def twin_layers(name, cell_kwargs=None, **rnn_kwargs):
    """A plain RNN and a ProjectedRNN over equal cells with equal weights."""
    cell_kwargs = {"seed": 7, **(cell_kwargs or {})}
    plain = keras.layers.RNN(make_cell(name, **cell_kwargs), **rnn_kwargs)
    fast = ProjectedRNN(make_cell(name, **cell_kwargs), **rnn_kwargs)
    batch = B if rnn_kwargs.get("stateful") else None
    plain.build((batch, T, D))
    fast.build((batch, T, D))
    rng = np.random.default_rng(0)
    weights = [rng.normal(0, 0.5, w.shape).astype("float32") for w in plain.get_weights()]
    plain.set_weights(weights)
    fast.set_weights(weights)
    return plain, fast


def inputs(seed=1):
    return np.random.default_rng(seed).normal(size=(B, T, D)).astype("float32")


def ragged_mask():
    lengths = np.array([T, T - 2, 1])
    return np.arange(T)[None, :] < lengths[:, None]


def assert_same(a, b):
    for x, y in zip(keras.tree.flatten(a), keras.tree.flatten(b), strict=True):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(x), keras.ops.convert_to_numpy(y), rtol=1e-5, atol=1e-6
        )


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "options",
    [
        {"return_sequences": True, "return_state": True},
        {"go_backwards": True, "return_state": True},
        {"return_sequences": True, "unroll": True},
        {"return_sequences": True, "zero_output_for_mask": True},
    ],
    ids=["seq-state", "backwards", "unroll", "zero-masked"],
)
def test_outputs_and_states_match_plain_rnn_with_a_mask(name, options):
    plain, fast = twin_layers(name, **options)
    x, mask = inputs(), ragged_mask()
    assert_same(fast(x, mask=mask), plain(x, mask=mask))


@pytest.mark.parametrize("name", NAMES)
def test_gradients_match_plain_rnn(name):
    import tensorflow as tf

    plain, fast = twin_layers(name, return_sequences=True, go_backwards=True)
    x, mask = tf.constant(inputs()), ragged_mask()

    def grads(layer):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x, mask=mask) ** 2)
        return tape.gradient(loss, [x, *layer.trainable_variables])

    assert_same(grads(fast), grads(plain))


@pytest.mark.parametrize("name", NAMES)
def test_dropout_masks_match_plain_rnn_in_training(name):
    dropout = {"dropout": 0.3, "recurrent_dropout": 0.2}
    plain, fast = twin_layers(name, cell_kwargs=dropout, return_sequences=True)
    x = inputs()
    out_fast = fast(x, training=True)
    assert_same(out_fast, plain(x, training=True))
    assert not np.allclose(out_fast, fast(x, training=False)), "dropout did nothing"


def test_initial_state_and_stateful_carry_over():
    plain, fast = twin_layers("lstm", stateful=True, return_state=True)
    x = inputs()
    start = [np.full((B, UNITS), 0.1, "float32"), np.full((B, UNITS), -0.2, "float32")]
    assert_same(fast(x, initial_state=start), plain(x, initial_state=start))
    assert_same(fast(x), plain(x))  # second call starts from the stored state
    fast.reset_state()
    plain.reset_state()
    assert_same(fast(x), plain(x))


def test_bidirectional_and_stacked_model_match_plain_rnn():
    def model(layer_cls):
        keras.utils.set_random_seed(3)
        seq = keras.Input((T, D))
        h = keras.layers.Masking()(seq)
        h = keras.layers.Bidirectional(layer_cls(make_cell("gru"), return_sequences=True))(h)
        h = layer_cls(make_cell("lstm"))(h)
        return keras.Model(seq, h)

    plain, fast = model(keras.layers.RNN), model(ProjectedRNN)
    fast.set_weights(plain.get_weights())
    x = inputs()
    x[2, 3:] = 0.0  # masked tail
    assert_same(fast(x), plain(x))


def test_keras_file_round_trip_in_safe_mode(tmp_path):
    seq = keras.Input((T, D))
    model = keras.Model(seq, ProjectedRNN(make_cell("peephole"), go_backwards=True)(seq))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded.layers[-1], ProjectedRNN)
    assert_same(loaded(inputs()), model(inputs()))


def test_cell_without_the_split_interface_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="input_projection.*keras.layers.RNN"):
        ProjectedRNN(keras.layers.SimpleRNNCell(4))


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_matches_plain_rnn_on_other_backends(backend):
    script = textwrap.dedent(
        f"""
        import numpy as np, keras
        from tests.cells.test_fast import twin_layers, inputs, ragged_mask, assert_same
        assert keras.backend.backend() == "{backend}"
        drop = {{"dropout": 0.3, "recurrent_dropout": 0.2}}
        for name in ("lstm", "gru"):  # one cell per state layout; TF above covers all five
            plain, fast = twin_layers(name, drop, return_sequences=True, go_backwards=True)
            x, mask = inputs(), ragged_mask()
            assert_same(fast(x, mask=mask, training=True), plain(x, mask=mask, training=True))
        """
    )
    env = {**os.environ, "KERAS_BACKEND": backend}
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
