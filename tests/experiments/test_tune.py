"""Tuning: search-space validation, a real tiny keras-tuner search through run(), resume, export,
the report's functional ANOVA on functions whose importances are known."""

from __future__ import annotations

import socket
import sys
from types import SimpleNamespace

import mlflow
import numpy as np
import pytest
import yaml

from experiments import cli
from experiments.analysis.tuning_report import (
    Dim,
    functional_anova,
    importance_table,
    tuning_report,
)
from experiments.config import config_hash
from experiments.orchestration import plan as sweep
from experiments.orchestration import tune
from experiments.recording import store

BASE = {
    "data": {"name": "adding", "length": 10, "num_train": 32, "num_val": 16, "num_test": 16,
             "batch_size": 16},
    "model": {"units": 4},
    "train": {"epochs": 1, "early_stopping_patience": None, "run_eagerly": True},
    "tracking": {"log_model": False},
}
SPACE = {
    "name": "tiny-tune",
    "base": BASE,
    "cells": ["lstm"],
    "max_trials": 3,
    "seed": 1,
    "space": {"train.lr": {"type": "float", "min": 1e-3, "max": 1e-1, "sampling": "log"},
              "model.units": {"type": "int", "min": 2, "max": 6},
              "train.clipnorm": {"type": "choice", "values": [0.5, 1.0]}},
}


def parse(**changes):
    raw = yaml.safe_load(yaml.safe_dump(SPACE))
    for key, value in changes.items():
        if key.startswith("space."):
            raw["space"][key.removeprefix("space.")] = value
        else:
            raw[key] = value
    return tune.parse_space(raw, source="s.yaml")


# --- the search-space file -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "needles"),
    [
        ({"trials": 3}, ["s.yaml", "'trials'", "max_trials"]),
        ({"space.train.lr": {"type": "float", "min": 0.1, "max": 0.01}},
         ["s.yaml", "train.lr", "min 0.1 > max 0.01"]),
        ({"space.train.lr": {"type": "float", "min": 0.0, "max": 0.1, "sampling": "log"}},
         ["s.yaml", "train.lr", "log", "min > 0", "0.0"]),
        ({"space.train.lr": {"type": "float", "min": 1e-3, "max": 0.1, "scale": "log"}},
         ["s.yaml", "train.lr", "'scale'", "sampling"]),
        ({"space.train.lr": {"type": "real", "min": 1e-3, "max": 0.1}},
         ["s.yaml", "train.lr", "'real'", "int, float, choice, bool"]),
        ({"space.model.colour": {"type": "int", "min": 1, "max": 2}},
         ["s.yaml", "model.colour", "train.lr"]),
        ({"space.model.cell": {"type": "choice", "values": ["lstm"]}}, ["s.yaml", "model.cell"]),
        ({"space.model.dropout": {"type": "float", "min": 0.0, "max": 1.0}},
         ["s.yaml", "model.dropout", "[0, 1)", "1.0"]),
        ({"space.model.units": {"type": "int", "min": 1.5, "max": 4}},
         ["s.yaml", "model.units.min'", "1.5"]),
        ({"tuner": "grid"}, ["s.yaml", "'grid'", "random, bayesian, hyperband"]),
        ({"cells": ["lstm", "lsmt"]}, ["s.yaml", "'lsmt'", "gru"]),
        ({"objective": {"name": "loss"}}, ["s.yaml", "'loss'", "val_"]),
        ({"space": {}}, ["s.yaml", "'space'", "non-empty"]),
    ],
)
def test_bad_space_is_one_clear_message(changes, needles):
    with pytest.raises(ValueError) as err:
        parse(**changes)
    for needle in needles:
        assert needle in str(err.value), (needle, str(err.value))


def test_bundled_spaces_parse():
    for path in sorted(tune.SPACES_DIR.glob("*.yaml")):
        space = tune.load_space(path, task="adding")
        assert space.params and space.cells


def test_trial_values_become_the_config_and_hyperband_sets_epochs():
    space = parse()
    config = space.config_for("gru", {"train.lr": 0.01, "model.units": 5, "tuner/epochs": 3,
                                      "tuner/initial_epoch": 1, "tuner/trial_id": "00"}, "07")
    assert (config.model.cell, config.train.lr, config.model.units, config.train.epochs) == (
        "gru", 0.01, 5, 3)
    assert config.tracking.run_name == "tiny-tune-gru-t07"
    assert space.fingerprint() == parse().fingerprint() != parse(seed=2).fingerprint()


def test_declared_space_samples_inside_its_bounds():
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    for p in parse().params:
        p.declare(hp)
    oracle = keras_tuner.oracles.RandomSearchOracle(
        objective=keras_tuner.Objective("val_loss", "min"), max_trials=20, hyperparameters=hp,
        seed=0)
    values = [oracle.populate_space(str(i))["values"] for i in range(20)]
    assert all(1e-3 <= v["train.lr"] <= 1e-1 and 2 <= v["model.units"] <= 6 for v in values)
    assert {v["train.clipnorm"] for v in values} == {0.5, 1.0}


def test_bad_space_exits_2_before_any_mlflow_run(tmp_path, mlflow_store, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**SPACE, "name": "never-runs",
                                   "space": {"train.lr": {"type": "float", "min": -1.0,
                                                          "max": 0.1, "sampling": "log"}}}))
    assert cli.main(["tune", str(bad), "--workdir", str(tmp_path / "wd")]) == 2
    message = capsys.readouterr().err
    assert str(bad) in message and "train.lr" in message and "-1.0" in message
    tune.check_tracking()
    assert store.find_parent_run("tuning", "never-runs") is None
    assert not (tmp_path / "wd").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_tracking_server_fails_before_training(tmp_path, monkeypatch, capsys):
    space = tmp_path / "s.yaml"
    space.write_text(yaml.safe_dump(SPACE))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{_free_port()}")
    assert cli.main(["tune", str(space), "--workdir", str(tmp_path / "wd")]) == 1  # as run, sweep
    err = capsys.readouterr().err
    assert "does not answer" in err and "127.0.0.1" in err
    assert not (tmp_path / "wd").exists()
    mlflow.set_tracking_uri(None)


def test_worker_without_chief_fails_after_a_bounded_wait(tmp_path, mlflow_store, monkeypatch,
                                                         capsys):
    for var in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        monkeypatch.setenv(var, "unset-by-teardown")  # cli_tune sets them; the test restores them
    space = tmp_path / "s.yaml"
    space.write_text(yaml.safe_dump(SPACE))
    port = _free_port()
    code = cli.main(["tune", str(space), "--worker", f"127.0.0.1:{port}", "--connect-timeout",
                     "1", "--workdir", str(tmp_path / "wd")])
    assert code == 1
    assert f"no keras-tuner chief answers at 127.0.0.1:{port} after 1 s" in capsys.readouterr().err


# --- a real tiny search -----------------------------------------------------------------------------


class Interrupted(KeyboardInterrupt):
    """Ctrl-C after a trial's run() finished, before keras-tuner recorded the trial."""


@pytest.fixture(scope="module")
def tiny_search(tmp_path_factory):
    """Search 3 trials, killed after the 2nd trial's MLflow run finished; then resume it. Trials run
    with tensorboard unimportable (keras-tuner 1.4.8 imports it in `Tuner.run_trial` on TF)."""
    from experiments.run import run

    folder = tmp_path_factory.mktemp("tune")
    space = tune.parse_space(SPACE, source="tiny.yaml")
    calls = {"first": [], "resume": []}
    lines: list[str] = []

    def killed_at_second(config, **kwargs):
        calls["first"].append(config)
        result = run(config, **kwargs)
        if len(calls["first"]) == 2:
            raise Interrupted
        return result

    def counting(config, **kwargs):
        calls["resume"].append(config)
        return run(config, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder}/mlflow.db")
        patch.setitem(sys.modules, "tensorboard", None)
        with pytest.raises(Interrupted):
            tune.tune(space, workdir=folder / "wd", run_fn=killed_at_second, out=lines.append)
        outcome = tune.tune(space, workdir=folder / "wd", run_fn=counting, out=lines.append,
                            export=folder / "best.yaml")
        children = mlflow.search_runs(
            search_all_experiments=True, output_format="list",
            filter_string=f"tags.mlflow.parentRunId = '{outcome.parent_run_id}'")
    return SimpleNamespace(space=space, folder=folder, calls=calls, outcome=outcome,
                           children=children, lines=lines, uri=f"sqlite:///{folder}/mlflow.db")


def test_each_trial_ran_once_and_resume_retrained_nothing_finished(tiny_search):
    assert len(tiny_search.calls["first"]) == 2
    assert len(tiny_search.calls["resume"]) == 1  # only trial 3: trial 2 was read back from MLflow
    trial_ids = sorted(r.data.tags["rnnlab.trial_id"] for r in tiny_search.children)
    assert len(trial_ids) == 3 == len(set(trial_ids))
    assert all(r.info.status == "FINISHED" for r in tiny_search.children)
    assert any("finished before" in line for line in tiny_search.lines)
    assert list((tiny_search.folder / "wd").glob("tiny-tune-*/lstm/oracle.json"))


def test_trial_runs_carry_params_and_the_score_is_the_best_val_loss(tiny_search):
    client = mlflow.MlflowClient(tiny_search.uri)
    for child in tiny_search.children:
        history = [m.value for m in client.get_metric_history(child.info.run_id, "val_loss")]
        assert child.data.metrics["tuner_score"] == pytest.approx(min(history))
        assert child.data.tags["rnnlab.tuning"] == "tiny-tune"
        assert {"train.lr", "model.units", "train.clipnorm"} <= set(child.data.params)
    values = {(c.data.params["train.lr"], c.data.params["model.units"])
              for c in tiny_search.children}
    assert len(values) == 3


def test_best_config_is_logged_and_exported_as_a_sweep(tiny_search):
    (cell,) = tiny_search.outcome.cells
    scores = {c.info.run_id: c.data.metrics["tuner_score"] for c in tiny_search.children}
    assert cell.best_run_id == min(scores, key=scores.get)
    assert cell.trials == 3
    assert cell.median_score == pytest.approx(float(np.median(list(scores.values()))))
    parent = mlflow.MlflowClient(tiny_search.uri).get_run(tiny_search.outcome.parent_run_id)
    assert parent.data.tags["rnnlab.best_run.lstm"] == cell.best_run_id
    assert parent.data.metrics["best_score.lstm"] == pytest.approx(scores[cell.best_run_id])
    plan = sweep.load_sweep(tiny_search.folder / "best.yaml")
    best_child = next(c for c in tiny_search.children if c.info.run_id == cell.best_run_id)
    assert [r.hash for r in plan.runs] == [best_child.data.tags["rnnlab.config_hash"]]
    assert config_hash(cell.best_config) == plan.runs[0].hash


def test_report_shows_best_and_median_per_cell(tiny_search, monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tiny_search.uri)
    result = tuning_report("tiny-tune", tmp_path / "report")
    (cell,) = tiny_search.outcome.cells
    assert cell.best_run_id[:12] in result["markdown"]
    assert f"{cell.median_score:.4g}" in result["markdown"]
    assert (tmp_path / "report" / "tuning.md").is_file()
    with pytest.raises(LookupError, match="no tuning called 'nope'"):
        tuning_report("nope", tmp_path / "nope")


# --- functional ANOVA -------------------------------------------------------------------------------


def _uniform(n=240, d=3, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, d))


def test_fanova_additive_function_shares_follow_the_variances():
    x = _uniform()
    shares = functional_anova(x, 3 * x[:, 0] + x[:, 1], [Dim("a"), Dim("b"), Dim("c")])
    # Var(3 x0) : Var(x1) : 0 = 9 : 1 : 0
    assert shares == pytest.approx([0.9, 0.1, 0.0], abs=0.06)


def test_fanova_pure_interaction_leaves_the_rest_unexplained():
    x = _uniform()
    shares = functional_anova(x, x[:, 0] * x[:, 1], [Dim("a"), Dim("b"), Dim("c")])
    # f = x0 x1 on U(0,1)^2: each main effect 3/7 of the variance, the interaction 1/7
    assert shares == pytest.approx([3 / 7, 3 / 7, 0.0], abs=0.07)
    assert shares.sum() < 0.97


def test_fanova_categorical_dimension():
    rng = np.random.default_rng(3)
    x = np.column_stack([rng.integers(0, 3, 150), rng.uniform(0, 1, 150)])
    y = np.array([0.0, 2.0, 4.0])[x[:, 0].astype(int)]
    shares = functional_anova(x, y, [Dim("k", levels=3), Dim("u")])
    assert shares[0] > 0.9 and shares[1] < 0.05


def test_importance_table_from_logged_params():
    params = [{"key": "train.lr", "type": "float", "min": 1e-4, "max": 1e-1, "log": True},
              {"key": "data.batch_size", "type": "choice", "values": [16, 32]}]
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(60):
        lr, batch = 10 ** rng.uniform(-4, -1), int(rng.choice([16, 32]))
        rows.append(SimpleNamespace(data=SimpleNamespace(
            params={"train.lr": str(lr), "data.batch_size": str(batch)},
            metrics={"tuner_score": float(np.log10(lr)) ** 2})))
    table = importance_table({"lstm": rows, "gru": rows[:3]}, params)
    assert list(table.columns) == ["lstm"]  # gru has too few trials
    assert table.loc["train.lr", "lstm"] > 0.8 > table.loc["data.batch_size", "lstm"]


# --- --all-cells through the CLI, with a stand-in for run() (no training) ----------------------------


def fake_run(config, *, parent_run_id=None, tags=None):
    """Logs what run() logs that tuning reads: a child run with params and a val_loss history
    that depends on the learning rate (strongly), units (weakly) and the cell (a constant)."""
    from experiments.recording import store

    experiment_id = mlflow.get_run(parent_run_id).info.experiment_id
    loss = np.log10(config.train.lr) + 3 + 0.01 * config.model.units
    loss += 0.5 if config.model.cell == "vanilla" else 0.0
    with mlflow.start_run(experiment_id=experiment_id, nested=True, tags={
            **tags, "rnnlab.config_hash": config_hash(config), "rnnlab.status": "FINISHED",
            "rnnlab.cell": config.model.cell, "rnnlab.task": config.data.name}) as active:
        mlflow.log_params(config.flat())
        for epoch, value in enumerate((loss + 1, loss)):
            mlflow.log_metric("val_loss", value, step=epoch)
    assert store.tracking_uri()
    return {"status": "FINISHED", "run_id": active.info.run_id}


def test_all_cells_same_budget_same_draws_then_report_importance(tmp_path, mlflow_store,
                                                                 monkeypatch, capsys):
    import cells
    from experiments import run as run_module

    monkeypatch.setattr(run_module, "run", fake_run)
    space = tmp_path / "s.yaml"
    # seed 0, as the study's spaces: keras-tuner alone would read it as "draw a random seed"
    space.write_text(yaml.safe_dump({**SPACE, "name": "all-cells", "seed": 0}))
    args = ["tune", str(space), "--all-cells", "--max-trials", "4", "--workdir", str(tmp_path / "wd"),
            "--export", str(tmp_path / "tuned" / "best.yaml")]  # a folder not made yet
    assert cli.main(args) == 0
    tune.check_tracking()
    runs = tune.trial_runs(store.find_parent_run("tuning", "all-cells"))
    by_cell = {}
    for r in runs:
        by_cell.setdefault(r.data.tags["rnnlab.tuning_cell"], []).append(r)
    assert sorted(by_cell) == sorted(cells.names())
    draws = {cell: sorted((r.data.params["train.lr"], r.data.params["model.units"]) for r in rows)
             for cell, rows in by_cell.items()}
    assert all(len(d) == 4 for d in draws.values())
    assert len({tuple(d) for d in draws.values()}) == 1  # the same seeded draws for every cell
    plan = sweep.load_sweep(tmp_path / "tuned" / "best.yaml")
    assert sorted(r.config.model.cell for r in plan.runs) == sorted(cells.names())
    # a study reads each cell's tuned values from the export (`tuned:`), the best trial's values
    assert (tmp_path / "tuned" / "best.yaml").read_text().startswith("# Written by `rnnlab tune")
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump({
        "name": "fair", "base": {**SPACE["base"], "train": {**SPACE["base"]["train"], "lr": 0.5}},
        "grid": {"model.cell": cells.names(), "train.seed": [0, 1]},
        "tuned": {"adding": {"space": "s.yaml", "best": "tuned/best.yaml"}}}))
    parent = mlflow.get_run(store.find_parent_run("tuning", "all-cells"))
    planned = sweep.load_sweep(study).runs
    assert len(planned) == 2 * len(cells.names())
    for run in planned:
        best = mlflow.get_run(parent.data.tags[f"rnnlab.best_run.{run.config.model.cell}"])
        for key in ("train.lr", "model.units", "train.clipnorm"):
            assert str(run.config.flat()[key]) == best.data.params[key], (run.label, key)
    capsys.readouterr()
    assert cli.main(["report", "--tuning", "all-cells", "--output", str(tmp_path / "rep")]) == 0
    printed = capsys.readouterr().out
    assert "Hyperparameter importance" in printed and (tmp_path / "rep" / "importance.png").is_file()
    rows = {x.split("|")[1].strip(): [float(v) for v in x.strip("|").split("|")[1:]]
            for x in printed.splitlines() if x.startswith(("| train.", "| model."))}
    assert sorted(rows) == ["model.units", "train.clipnorm", "train.lr"]
    assert all(len(v) == len(cells.names()) and all(0 <= s <= 1 for s in v) for v in rows.values())
    assert sum(rows["train.lr"]) > sum(rows["train.clipnorm"]), (printed, draws)


@pytest.mark.parametrize("tuner", ["bayesian", "hyperband"])
def test_bayesian_and_hyperband_search_through_run(tuner, tmp_path, mlflow_store):
    raw = {**SPACE, "name": f"fake-{tuner}", "max_trials": 4,
           "base": {**BASE, "train": {**BASE["train"], "epochs": 3}}}
    space = tune.parse_space(raw, source="s.yaml", tuner=tuner)
    outcome = tune.tune(space, workdir=tmp_path, run_fn=fake_run, out=lambda line: None)
    runs = tune.trial_runs(outcome.parent_run_id)
    assert outcome.trained == len(runs) >= 2
    epochs = {int(r.data.params["train.epochs"]) for r in runs}
    assert epochs == ({1, 3} if tuner == "hyperband" else {3})  # hyperband: 1 epoch, then 3
    assert outcome.cells[0].best_score == min(r.data.metrics["tuner_score"] for r in runs)


def test_a_trial_that_raised_once_runs_again_with_its_values_so_every_cell_keeps_its_budget(
        tmp_path, mlflow_store):
    calls = []

    def flaky(config, **kwargs):
        calls.append(config.train.lr)
        if len(calls) == 2:  # the second trial's first attempt
            raise RuntimeError("MlflowException: UNIQUE constraint failed: datasets.digest")
        return fake_run(config, **kwargs)

    space = tune.parse_space({**SPACE, "name": "flaky", "max_trials": 3}, source="s.yaml")
    outcome = tune.tune(space, workdir=tmp_path, run_fn=flaky, out=lambda line: None)
    runs = tune.trial_runs(outcome.parent_run_id)
    assert len(calls) == 4 and calls[1] == calls[2]  # the same values, once more
    assert sorted(r.data.params["train.lr"] for r in runs) == sorted(str(v) for v in {*calls})
    assert len(runs) == 3 and all("tuner_score" in r.data.metrics for r in runs)


def test_failing_trials_stop_the_search_with_exit_1(tmp_path, mlflow_store, monkeypatch, capsys):
    from experiments import run as run_module

    def broken(config, **kwargs):
        raise RuntimeError("boom in run()")

    monkeypatch.setattr(run_module, "run", broken)
    space = tmp_path / "s.yaml"
    space.write_text(yaml.safe_dump({**SPACE, "name": "broken", "max_trials": 5}))
    assert cli.main(["tune", str(space), "--workdir", str(tmp_path / "wd")]) == 1
    assert "consecutive" in capsys.readouterr().err
