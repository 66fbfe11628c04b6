"""`rnnlab tune --workers 2`: the driver serves the oracle, Ray runs two keras-tuner workers whose
trials go through run(); a re-run resumes the search and trains nothing finished."""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path

import mlflow
import pytest
import yaml
from experiment_fixtures import kill_a_worker_at_epoch_2, signal_once_saved

from experiments import cli
from experiments.recording import store

REPO = Path(__file__).resolve().parents[2]
SPACE = {
    "name": "ray-tune",
    "base": {
        "data": {"name": "adding", "length": 10, "num_train": 64, "num_val": 32, "num_test": 32,
                 "batch_size": 32},
        "model": {"units": 4},
        "train": {"epochs": 1, "early_stopping_patience": None},
        "tracking": {"log_model": False},
    },
    "cells": ["lstm", "gru"],
    "max_trials": 2,
    "seed": 1,
    "space": {"train.lr": {"type": "float", "min": 1e-3, "max": 1e-1, "sampling": "log"},
              "model.units": {"type": "int", "min": 2, "max": 6}},
}


@pytest.fixture
def lab(lab):
    """The Ray lab of conftest.py, with the tiny search-space file in it."""
    (lab / "space.yaml").write_text(yaml.safe_dump(SPACE))
    return lab


def trials(parent_id: str) -> list:
    return mlflow.search_runs(search_all_experiments=True, output_format="list",
                              filter_string=f"tags.mlflow.parentRunId = '{parent_id}'")


def test_workers_2_run_each_trial_once_in_ray_and_a_rerun_trains_nothing(lab, capsys):
    tune = ["tune", str(lab / "space.yaml"), "--workers", "2", "--export", str(lab / "best.yaml")]
    assert cli.main(tune) == 0
    lines = capsys.readouterr().out.splitlines()
    parent_id = store.find_parent_run("tuning", "ray-tune")
    runs = trials(parent_id)
    keys = Counter((r.data.tags["rnnlab.tuning_cell"], r.data.tags["rnnlab.trial_id"])
                   for r in runs)
    assert sorted(keys) == [(c, t) for c in ("gru", "lstm") for t in ("0", "1")]
    assert set(keys.values()) == {1}  # each trial recorded once
    assert all(r.info.status == "FINISHED" and "tuner_score" in r.data.metrics for r in runs), [
        (r.data.tags["rnnlab.tuning_cell"], r.data.tags["rnnlab.trial_id"], r.info.status,
         sorted(r.data.metrics), {k: v for k, v in r.data.tags.items() if k.startswith("rnnlab.")})
        for r in runs if r.info.status != "FINISHED" or "tuner_score" not in r.data.metrics]
    assert str(os.getpid()) not in {r.data.tags["rnnlab.holder_pid"] for r in runs}
    assert {r.data.tags["rnnlab.tuner_id"] for r in runs} <= \
        {f"ray-{c}-{i}" for c in ("lstm", "gru") for i in (0, 1)}  # trained in Ray's workers
    assert sum(" done on ray-" in line for line in lines) == 4, lines  # a line per trial, here
    assert mlflow.get_run(parent_id).info.status == "FINISHED"
    best = yaml.safe_load((lab / "best.yaml").read_text())
    assert sorted(t["model.cell"] for t in best["tasks"]) == ["gru", "lstm"]

    assert cli.main(tune) == 0  # the same command again: the search is resumed, nothing retrained
    out = capsys.readouterr().out
    assert "0 trial(s) trained now" in out, out
    assert sorted(r.info.run_id for r in trials(parent_id)) == sorted(r.info.run_id for r in runs)


@pytest.mark.slow
def test_sigterm_to_the_driver_ends_the_trials_killed_and_the_rerun_resumes_them(lab):
    """SIGTERM to a real `rnnlab tune --workers 2` while both workers train: exit 143, both trial
    runs and the parent KILLED; the same command again resumes both trials from their checkpoints
    (every epoch logged once) and ends with each trial FINISHED once."""
    longer = {**SPACE, "name": "ray-tune-stop", "cells": ["lstm"]}
    longer["base"] = {**SPACE["base"], "data": {**SPACE["base"]["data"], "length": 50,
                                                "num_train": 2000},
                      "train": {**SPACE["base"]["train"], "epochs": 10}}
    (lab / "space.yaml").write_text(yaml.safe_dump(longer))
    tune = ["tune", str(lab / "space.yaml"), "--workers", "2"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    code, output = signal_once_saved(tune, lab / "ck", 2, signal.SIGTERM, env, REPO)
    assert code == 143, output
    parent_id = store.find_parent_run("tuning", "ray-tune-stop")
    killed = trials(parent_id)
    assert sorted((r.info.status, r.data.tags["rnnlab.reason"]) for r in killed) == \
        [("KILLED", "stopped by SIGTERM")] * 2, output
    assert mlflow.get_run(parent_id).info.status == "KILLED"

    assert cli.main(tune) == 0
    done = [r for r in trials(parent_id) if r.info.status == "FINISHED"]
    assert sorted(r.data.tags["rnnlab.trial_id"] for r in done) == ["0", "1"]
    assert {r.data.tags["rnnlab.resumed_from"] for r in done} == {r.info.run_id for r in killed}
    for r in done:  # resumed, not from scratch: every epoch once
        assert int(r.data.tags["rnnlab.resumed_epoch"]) >= 1
        history = mlflow.MlflowClient().get_metric_history(r.info.run_id, "train_loss")
        assert sorted(m.step for m in history) == list(range(10))
    assert mlflow.get_run(parent_id).info.status == "FINISHED"


@pytest.mark.parametrize("flags, says", [
    (["--workers", "999"], "'--workers' is more than this machine can hold"),
    (["--workers", "2", "--chief", "127.0.0.1:8000"], "exclude each other"),
    (["--address", "127.0.0.1:9"], "'--address' does not answer"),
])
def test_bad_engine_input_is_one_line_exit_2_and_nothing_recorded(lab, capsys, flags, says):
    assert cli.main(["tune", str(lab / "space.yaml"), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rnnlab tune: ") and says in err[0], err
    assert not (lab / "mlflow.db").exists()  # no MLflow run, not even a store


def longer_search(lab, name: str, trials: int, epochs: int) -> None:
    """One cell's search of `trials` trials long enough to be stopped mid-way, in the lab."""
    one = {**SPACE, "name": name, "cells": ["lstm"], "max_trials": trials}
    one["base"] = {**SPACE["base"], "data": {**SPACE["base"]["data"], "length": 50,
                                             "num_train": 2000},
                   "train": {**SPACE["base"]["train"], "epochs": epochs}}
    (lab / "space.yaml").write_text(yaml.safe_dump(one))


def kill_a_trial_worker_at_epoch_2(name: str) -> list[str]:
    """`kill_a_worker_at_epoch_2` for the first trial run of tuning `name`."""
    return kill_a_worker_at_epoch_2(f"tags.`rnnlab.tuning` = '{name}' and "
                                    "tags.`rnnlab.trial_id` != ''")


@pytest.mark.slow
def test_a_worker_killed_mid_trial_is_retried_and_the_trial_resumes_from_its_checkpoint(lab):
    """SIGKILL to the Ray worker training a trial: Ray retries the task under the same tuner id,
    the oracle hands it the same trial, whose dead run is ended KILLED and resumed from its
    checkpoint; the trial finishes once with every epoch logged once."""
    longer_search(lab, "ray-tune-kill", trials=1, epochs=8)
    killed = kill_a_trial_worker_at_epoch_2("ray-tune-kill")
    assert cli.main(["tune", str(lab / "space.yaml"), "--workers", "1"]) == 0
    assert killed
    runs = {r.info.run_id: r for r in trials(store.find_parent_run("tuning", "ray-tune-kill"))}
    assert runs[killed[0]].info.status == "KILLED"
    [done] = [r for r in runs.values() if r.info.status == "FINISHED"]
    assert done.data.tags["rnnlab.resumed_from"] == killed[0]
    assert int(done.data.tags["rnnlab.resumed_epoch"]) >= 1  # not from scratch
    history = mlflow.MlflowClient().get_metric_history(done.info.run_id, "train_loss")
    assert sorted(m.step for m in history) == list(range(8))


@pytest.mark.slow
def test_a_worker_that_fails_for_good_leaves_its_trial_for_the_rerun_and_exits_1(lab, capsys):
    """--max-retries 0 and the worker killed: the other trial is searched on, the command lists
    the open trial and exits 1, the parent FAILED; the same command then finishes it, resumed."""
    longer_search(lab, "ray-tune-gone", trials=2, epochs=6)
    killed = kill_a_trial_worker_at_epoch_2("ray-tune-gone")
    tune = ["tune", str(lab / "space.yaml"), "--workers", "2", "--max-retries", "0"]
    assert cli.main(tune) == 1
    out = capsys.readouterr().out
    parent_id = store.find_parent_run("tuning", "ray-tune-gone")
    assert mlflow.get_run(parent_id).info.status == "FAILED"
    [left] = [r for r in trials(parent_id) if r.info.run_id == killed[0]]
    assert f"left unfinished (their workers failed; run the same command again to resume them): " \
        f"lstm trial {left.data.tags['rnnlab.trial_id']}" in out, out

    assert cli.main(tune) == 0
    done = [r for r in trials(parent_id) if r.info.status == "FINISHED"]
    assert sorted(r.data.tags["rnnlab.trial_id"] for r in done) == ["0", "1"]
    assert [r.data.tags.get("rnnlab.resumed_from") for r in done
            if r.data.tags["rnnlab.trial_id"] == left.data.tags["rnnlab.trial_id"]] == [killed[0]]
    assert mlflow.get_run(parent_id).info.status == "FINISHED"


def test_a_search_whose_every_worker_failed_is_unfinished_not_done(tmp_path):
    """No worker got the oracle's "stop": the cell's search is listed unfinished (exit 1), even
    with no trial open."""
    from experiments.orchestration import engine, tune, tune_workers

    class FailingEngine:
        settings, cpus = engine.EngineSettings(workers=2), 1

        def run(self, job, todo, starting):
            for planned in todo:
                yield planned, RuntimeError("its node is gone")

    space = tune.parse_space({**SPACE, "cells": ["lstm"]}, source="s.yaml")
    lines = []
    outcome = tune_workers.search_on_engine(space, "parent-id", tmp_path, FailingEngine(),
                                            lines.append)
    assert outcome.unfinished == ["lstm (every worker failed before its search ended)"]
    assert sum("failed: RuntimeError: its node is gone" in line for line in lines) == 2
