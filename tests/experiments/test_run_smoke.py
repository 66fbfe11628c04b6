"""run(config): every task x every cell for one tiny epoch, what a logged run holds, skipped runs,
validation before training, a reloaded model, and determinism."""

from __future__ import annotations

import math
import time

import mlflow
import numpy as np
import pytest
from experiment_fixtures import REAL_TASKS, TOY_TASKS, logged_model_names

import cells
from experiments.run import run

CELLS = ("vanilla", "lstm", "peephole", "coupled", "gru")


@pytest.fixture
def real_data(mini_data, monkeypatch, offline):
    monkeypatch.setenv("RNNLAB_DATA_DIR", str(mini_data))
    return mini_data


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("task", TOY_TASKS + REAL_TASKS)
def test_every_task_with_every_cell(task, cell, tiny_config, real_data):
    result = run(tiny_config(task, cell))
    assert result.status == "FINISHED"
    assert (result.task, result.cell, result.epochs) == (task, cell, 1)
    assert result.param_count > 0
    assert math.isfinite(result.metrics["loss"])
    assert result.tracking_time_s is None and result.gc_time_s is None  # tracking is off
    if task == "multi30k":
        assert 0.0 <= result.metrics["bleu"] <= 100.0
        assert result.metrics["perplexity"] == pytest.approx(math.exp(result.metrics["loss"]))
        assert 0.0 <= result.metrics["token_accuracy"] <= 1.0
    if task in TOY_TASKS:
        assert isinstance(result.solved, bool)
        assert result.baseline is not None


def test_translation_learns_a_tiny_corpus_by_heart(tiny_config, real_data):
    """Decoding, detokenising and BLEU end to end: 4 sentence pairs, learnt until BLEU ~ 100."""
    result = run(tiny_config(
        "multi30k", "gru",
        data={"batch_size": 8, "subset": None, "test_subset": None},
        model={"units": 32, "embedding_dim": 16, "attention": "luong"},
        train={"epochs": 40, "lr": 1e-2, "run_eagerly": False, "max_decode_length": 10},
    ))
    assert result.metrics["bleu"] > 90.0 and result.metrics["token_accuracy"] > 0.95


def _run_data(run_id):
    client = mlflow.MlflowClient()
    found = client.get_run(run_id)
    artifacts = set()
    folders = [""]
    while folders:
        for item in client.list_artifacts(run_id, folders.pop()):
            (folders.append if item.is_dir else artifacts.add)(item.path)
    return found, artifacts


@pytest.mark.parametrize(
    ("task", "attention", "extra"),
    [("adding", None, set()), ("temporal_order", None, {"plots/confusion_matrix.png"}),
     ("imdb", None, {"plots/confusion_matrix.png", "preprocess/vocabulary.txt",
                     "preprocess/text.json"}),
     ("multi30k", "bahdanau", {"samples/translations.txt"})],
)
def test_logged_run_holds_the_contract(task, attention, extra, tiny_config, real_data,
                                       mlflow_store):
    config = tiny_config(task, "gru", tracking={"enabled": True}, train={"epochs": 2},
                         model={"attention": attention})
    start = time.perf_counter()
    result = run(config, tags={"rnnlab.sweep": "smoke"})
    wall = time.perf_counter() - start
    found, artifacts = _run_data(result.run_id)
    params, tags, metrics = found.data.params, found.data.tags, found.data.metrics
    assert params["data.name"] == task and params["model.cell"] == "gru"
    assert params["train.lr"] == str(config.train.lr)
    assert tags["rnnlab.task"] == task and tags["rnnlab.cell"] == "gru"
    assert tags["rnnlab.status"] == "FINISHED" and tags["rnnlab.sweep"] == "smoke"
    assert tags["rnnlab.config_hash"] == result.config_hash
    assert tags["rnnlab.backend"] == "tensorflow" and tags["rnnlab.device"] in ("CPU", "GPU")
    assert tags["rnnlab.git_commit"]
    for name in ("train_loss", "val_loss", "epoch_time_s", "step_time_ms", "test_loss",
                 "param_count", "train_time_s"):
        assert name in metrics, name
    history = mlflow.MlflowClient().get_metric_history(result.run_id, "val_loss")
    assert [m.step for m in history] == [0, 1]
    assert metrics["param_count"] == result.param_count
    if task == "multi30k":
        assert {"test_bleu", "test_perplexity", "test_token_accuracy"} <= set(metrics)
    else:
        assert metrics["baseline"] == result.baseline
        assert tags["rnnlab.baseline_metric"] == result.baseline_metric
    if task in TOY_TASKS:
        assert metrics["solved"] in (0.0, 1.0) and "rnnlab.solved_metric" in tags
    assert {"config.yaml", "plots/learning_curves.png", *extra} <= artifacts
    assert logged_model_names(result.run_id) == ["model"]
    contexts = {inp.tags[0].value for inp in found.inputs.dataset_inputs}
    assert contexts == {"training", "validation", "testing"}
    # what tracking cost: logged up to the last artifact, returned including end_run
    assert 0 < metrics["tracking_time_s"] <= result.tracking_time_s < wall
    assert 0 <= metrics["gc_time_s"] <= result.gc_time_s < wall


def test_saved_model_reloads_and_predicts_identically(tiny_config, mlflow_store):
    import mlflow.keras
    import tensorflow as tf

    import datasets

    config = tiny_config("temporal_order", "peephole", tracking={"enabled": True},
                         model={"bidirectional": True, "layers": 2})
    result = run(config)
    model = mlflow.keras.load_model(f"runs:/{result.run_id}/model")
    _, _, test, _ = datasets.load(config.data)
    x = next(iter(test))[0]
    again = mlflow.keras.load_model(f"runs:/{result.run_id}/model")
    np.testing.assert_array_equal(model.predict_on_batch(x), again.predict_on_batch(x))
    assert model.evaluate(test, return_dict=True, verbose=0)["loss"] == pytest.approx(
        result.metrics["loss"], rel=1e-5)
    cell = model.get_layer("birnn_1").forward_layer.cell
    assert isinstance(cell, cells.get("peephole", units=1).__class__)
    assert tf.reduce_all(tf.math.is_finite(model.predict_on_batch(x)))


def test_same_seed_gives_same_metrics(tiny_config):
    config = tiny_config("adding", "lstm", train={"epochs": 2, "run_eagerly": False},
                         model={"dropout": 0.1, "recurrent_dropout": 0.1})
    first, second = run(config), run(config)
    assert first.metrics and first.metrics == second.metrics
    other = run(config.with_overrides(["train.seed=1"]))
    assert other.metrics["loss"] != first.metrics["loss"]


@pytest.mark.parametrize("task", REAL_TASKS)
def test_missing_data_is_skipped_with_the_instruction(task, tiny_config, tmp_path, monkeypatch,
                                                      offline, mlflow_store):
    monkeypatch.setenv("RNNLAB_DATA_DIR", str(tmp_path / "empty"))
    result = run(tiny_config(task, "lstm", tracking={"enabled": True}))
    assert result.status == "SKIPPED"
    assert "RNNLAB_DATA_DIR" in result.reason and "\n" not in result.reason
    tags = mlflow.MlflowClient().get_run(result.run_id).data.tags
    assert tags["rnnlab.status"] == "SKIPPED" and tags["rnnlab.reason"] == result.reason


@pytest.mark.parametrize(
    ("overrides", "words"),
    [(["model.cell=lstmm"], ["lstmm", "gru"]), (["data.name=addng"], ["addng", "adding"])],
)
def test_names_are_validated_before_anything_loads(overrides, words, tiny_config, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets, "load", lambda config: pytest.fail("data loaded"))
    with pytest.raises(ValueError) as err:
        run(tiny_config().with_overrides(overrides))
    for word in words:
        assert word in str(err.value)


def test_attention_outside_translation_is_refused():
    """A run asked for by hand (`rnnlab run`: strict) refuses a key its task does not read, naming
    the tasks that do; the declaration (experiments/tasks/settings.py) is the one rule."""
    from experiments.config import Config

    with pytest.raises(ValueError, match=r"model\.attention.*multi30k"):
        Config.from_dict({"data": {"name": "adding"}, "model": {"attention": "luong"}},
                         source="test", strict=True)


def test_matched_parameter_counts_are_close(tiny_config):
    counts = {}
    for cell in ("vanilla", "lstm"):
        result = run(tiny_config("adding", cell, model={"match_params": 600}, train={"epochs": 1}))
        counts[cell] = (result.units, result.param_count)
    assert counts["vanilla"][0] > counts["lstm"][0]
    for units, params in counts.values():
        assert abs(params - 600) / 600 < 0.15


@pytest.mark.parametrize("task", ["adding", "multi30k"])
def test_projected_path_trains_and_gives_the_plain_paths_metrics(task, tiny_config, real_data):
    """`model.projected` swaps in cells.ProjectedRNN: same math, so the same metrics for one seed."""
    plain = run(tiny_config(task, "lstm", model={"projected": False}))
    projected = run(tiny_config(task, "lstm", model={"projected": True}))
    assert projected.status == "FINISHED"
    assert (plain.projected, projected.projected) == (False, True)
    assert projected.metrics["loss"] == pytest.approx(plain.metrics["loss"], rel=1e-4)
