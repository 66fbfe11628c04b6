"""Task families: heads per output kind, unit matching, reports (translation: test_translation.py)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import cells
from datasets.base import DataSpec
from experiments.config import ModelConfig
from experiments.tasks import BY_OUTPUT, family_for
from experiments.tasks.common import (
    OneHot,
    classification_report,
    count_params,
    match_units,
    recurrent_layer,
    use_projected,
)


def spec(output, **kw):
    base = {"name": "toy", "output": output, "input_encoding": "one_hot", "sequence_length": 6,
            "input_dim": 5, "num_classes": 3}
    return DataSpec(**{**base, **kw})


def test_recurrent_layer_is_an_rnn_of_the_named_cell():
    layer = recurrent_layer(ModelConfig(cell="coupled", dropout=0.25), 7, return_sequences=True,
                            name="x")
    assert isinstance(layer, keras.layers.RNN)
    assert type(layer.cell) is type(cells.get("coupled", units=1))
    assert layer.cell.units == 7 and layer.cell.dropout == 0.25 and layer.return_sequences


@pytest.mark.parametrize(("cell", "setting", "forget_bias"),
                         [("lstm", None, 1.0), ("lstm", False, 0.0), ("coupled", False, 0.0),
                          ("peephole", True, 1.0)])
def test_recurrent_layer_passes_unit_forget_bias_to_the_lstm_family(cell, setting, forget_bias):
    layer = recurrent_layer(ModelConfig(cell=cell, unit_forget_bias=setting), 3,
                            return_sequences=False)
    layer.build((None, 5, 2))
    blocks = np.asarray(layer.cell.bias).reshape(-1, 3)  # one row of `units` per gate
    assert np.allclose(blocks[layer.cell.forget_gate], forget_bias)
    assert np.allclose(np.delete(blocks, layer.cell.forget_gate, axis=0), 0.0)


def test_recurrent_layer_leaves_unit_forget_bias_out_for_cells_without_one():
    layer = recurrent_layer(ModelConfig(cell="gru", unit_forget_bias=False), 3,
                            return_sequences=False)  # a ModelConfig made directly: no from_dict
    assert not hasattr(layer.cell, "unit_forget_bias")


@pytest.mark.parametrize(
    ("setting", "device", "backend", "expected"),
    [("auto", "GPU", "jax", True), ("auto", "GPU", "tensorflow", True),
     ("auto", "CPU", "torch", True), ("auto", "CPU", "tensorflow", False),
     ("auto", "CPU", "jax", False), (True, "CPU", "tensorflow", True),
     (False, "GPU", "jax", False)],
)
def test_projected_auto_follows_the_measurements(setting, device, backend, expected,
                                                 monkeypatch):
    monkeypatch.setattr("experiments.recording.store.device", lambda: device)
    monkeypatch.setattr(keras.backend, "backend", lambda: backend)
    assert use_projected(setting) is expected
    layer = recurrent_layer(ModelConfig(cell="gru", projected=setting), 3, return_sequences=False)
    assert isinstance(layer, cells.ProjectedRNN) is expected


@pytest.mark.parametrize(
    ("output", "shape"),
    [("regression", (2, 1)), ("categorical", (2, 3)), ("sequence_categorical", (2, 6, 3)),
     ("sequence_multilabel", (2, 6, 3)), ("binary", (2, 1))],
)
def test_heads_give_one_output_per_sequence_or_per_step(output, shape):
    s = spec(output, input_encoding="features" if output == "regression" else "one_hot")
    per_step = output.startswith("sequence")  # bidirectional would leak the answer there
    model = family_for(s).build(s, ModelConfig(cell="gru", layers=2, bidirectional=not per_step), 4)
    x = np.random.default_rng(0).integers(1, 5, (2, 6))
    x = x[..., None].repeat(5, -1).astype("float32") if output == "regression" else x
    assert model(x).shape == shape


def test_unknown_output_kind_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown output kind 'ranking'") as err:
        family_for(spec("ranking"))
    assert all(kind in str(err.value) for kind in BY_OUTPUT)


def test_match_units_picks_the_closest_count():
    def build(units):
        inputs = keras.Input((None, 3))
        x = keras.layers.RNN(cells.get("lstm", units=units))(inputs)
        return keras.Model(inputs, keras.layers.Dense(2)(x))

    for target in (50, 5000):
        chosen = match_units(build, target)
        counts = {u: count_params(build(u)) for u in range(max(chosen - 3, 1), chosen + 4)}
        best = min(counts, key=lambda u: abs(counts[u] - target))
        assert abs(counts[chosen] - target) == abs(counts[best] - target)


def test_one_hot_layer_round_trips():
    layer = OneHot(4)
    again = OneHot.from_config(layer.get_config())
    out = again(np.array([[0, 3]]))
    np.testing.assert_array_equal(out, [[[1, 0, 0, 0], [0, 0, 0, 1]]])


def test_confusion_matrix_counts_true_rows_and_predicted_columns(monkeypatch):
    from experiments.tasks import common

    seen = {}
    monkeypatch.setattr(common, "confusion_figure", lambda m, labels=None: seen.setdefault("m", m))
    report = classification_report(np.array([0, 1, 2, 2, 2]), np.eye(3)[[0, 2, 2, 1, 2]], 3)
    assert list(report.figures) == ["plots/confusion_matrix.png"]
    np.testing.assert_array_equal(seen["m"], [[1, 0, 0], [0, 0, 1], [0, 1, 2]])
    binary = classification_report(np.array([1.0, 1.0, 0.0]), np.array([[0.9], [0.2], [0.7]]), 2)
    assert binary.figures
    np.testing.assert_array_equal(seen["m"], [[1, 0, 0], [0, 0, 1], [0, 1, 2]])  # first kept
    monkeypatch.undo()
    figure = common.confusion_figure(np.eye(2, dtype=int), ["neg", "pos"])  # IMDB's label names
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["neg", "pos"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["neg", "pos"]
