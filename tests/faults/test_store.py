"""The tracking store: unreachable at start -> one clear error, nothing trained; a transient outage
or lock during a run -> retried with back-off and the run goes on; a lasting one -> the run ends
with its checkpoint kept and a re-run resumes; status tags never contradict the run's status."""

from __future__ import annotations

import sqlite3
import threading
import time

import keras
import mlflow
import pytest
from mlflow.exceptions import MlflowException
from reliability_fixtures import inject, runs_of, steps

from experiments import cli
from experiments.config import config_hash
from experiments.recording import store
from experiments.run import run

DOWN = "http://127.0.0.1:9"  # the discard port: nothing listens there


def test_an_unreachable_store_is_one_clear_error_naming_the_uri(lab, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", DOWN)
    assert cli.main(["run", "--task", "adding", "--cell", "lstm", "--set", "data.num_train=32",
                     "--set", "train.epochs=1"]) == 1
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("rnnlab run: MLflow tracking store")
    assert DOWN in err and "nothing was trained" in err
    assert "Epoch" not in out and not lab.checkpoints.exists()


def test_an_unreachable_store_stops_a_sweep_before_any_run(lab, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", DOWN)
    file = lab.sweep_file(grid={"model.cell": ["lstm", "gru"]})
    assert cli.main(["sweep", str(file)]) == 1
    out, err = capsys.readouterr()
    assert err.startswith("rnnlab sweep: MLflow tracking store") and DOWN in err
    assert "[1/2]" not in out


class LockedFor:
    """`mlflow.log_metrics` fails with SQLite's "database is locked" `times` times, then works."""

    def __init__(self, times: float):
        self.times, self.calls, self.real = times, 0, mlflow.log_metrics

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls <= self.times:
            raise MlflowException("(sqlite3.OperationalError) database is locked")
        return self.real(*args, **kwargs)


def test_a_transient_lock_is_retried_and_the_run_goes_on(lab, monkeypatch):
    locked = LockedFor(3)
    monkeypatch.setattr(store.mlflow, "log_metrics", locked)
    with pytest.warns(UserWarning, match="database is locked; retrying"):
        result = run(lab.config())
    assert result.status == "FINISHED" and locked.calls > 3
    found = mlflow.get_run(result.run_id)
    assert found.info.status == "FINISHED" and found.data.tags["rnnlab.status"] == "FINISHED"
    assert steps(result.run_id) == [0, 1, 2]


def test_a_lock_while_ending_a_sweeps_child_is_retried_on_that_child_not_its_parent(lab, monkeypatch):
    """`mlflow.end_run` pops the run before it writes the status: a retry must end the child,
    not the sweep's parent run below it on the stack."""
    real, calls = mlflow.MlflowClient.set_terminated, []

    def locked_once(client, run_id, status=None, *args, **kwargs):
        calls.append((run_id, status))
        if len(calls) == 1:
            raise MlflowException("(sqlite3.OperationalError) database is locked")
        return real(client, run_id, status, *args, **kwargs)

    parent = mlflow.start_run(experiment_id=store.ensure_experiment(lab.name), run_name="parent")
    try:
        monkeypatch.setattr(mlflow.MlflowClient, "set_terminated", locked_once)
        with pytest.warns(UserWarning, match="database is locked; retrying"):
            result = run(lab.config(), parent_run_id=parent.info.run_id)
        monkeypatch.undo()
        assert mlflow.active_run().info.run_id == parent.info.run_id  # still the active one
        assert mlflow.get_run(parent.info.run_id).info.status == "RUNNING"
        assert mlflow.get_run(result.run_id).info.status == "FINISHED"
        assert {run_id for run_id, _ in calls} == {result.run_id}
    finally:
        mlflow.end_run()


def test_a_lasting_outage_ends_the_run_with_its_checkpoint_and_a_rerun_resumes(lab, monkeypatch):
    class FailFrom(keras.callbacks.Callback):  # the store goes away after epoch 1 is saved
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                monkeypatch.setattr(store.mlflow, "log_metrics", LockedFor(float("inf")))

    monkeypatch.setenv("RNNLAB_TRACKING_RETRY_S", "0.3")
    inject(monkeypatch, FailFrom())
    config = lab.config(train={"epochs": 4})
    with pytest.warns(UserWarning), pytest.raises(store.TrackingUnavailable, match="during"):
        run(config)
    [lost] = runs_of(lab.name)
    assert lost.info.status == "RUNNING" and lost.data.tags["rnnlab.status"] == "RUNNING"
    assert list(lab.checkpoints.glob(f"*/{config_hash(config)}/*"))  # kept

    monkeypatch.undo()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", lab.uri)
    monkeypatch.setenv("RNNLAB_CHECKPOINT_DIR", str(lab.checkpoints))
    while mlflow.active_run() is not None:  # the process goes on after the error
        mlflow.end_run("KILLED")
    result = run(config)
    assert result.status == "FINISHED"
    assert steps(result.run_id) == [2, 3]  # resumed after the two epochs the checkpoint holds


@pytest.mark.slow
def test_a_real_sqlite_lock_longer_than_mlflows_busy_timeout_is_outlasted(lab, monkeypatch):
    """A second connection holds an exclusive lock on the store for 25 s (MLflow's SQLite busy
    timeout is 20 s) from the end of epoch 0."""
    db = lab.uri.removeprefix("sqlite:///")
    started = threading.Event()

    def hold():
        con = sqlite3.connect(db, timeout=60, isolation_level=None)
        con.execute("BEGIN EXCLUSIVE")
        started.set()
        time.sleep(25)
        con.execute("ROLLBACK")
        con.close()

    class LockAt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                threading.Thread(target=hold, daemon=True).start()
                started.wait(30)

    inject(monkeypatch, LockAt())
    result = run(lab.config())
    found = mlflow.get_run(result.run_id)
    assert found.info.status == "FINISHED" and found.data.tags["rnnlab.status"] == "FINISHED"
    assert steps(result.run_id) == [0, 1, 2]


def test_a_dataset_another_run_inserted_meanwhile_is_linked_not_a_failed_run(lab, monkeypatch):
    """Two runs of one experiment that log the same new dataset at once (a tuning's Ray workers):
    MLflow looks the dataset up, then inserts it, and the slower run's insert breaks the unique
    constraint. Simulated here: the other run logs the same inputs first, then this run's call
    fails as SQLite fails it; the run goes on and links to the other run's dataset rows."""
    import sqlalchemy

    real, calls = mlflow.log_inputs, []

    def raced(datasets, contexts=None, tags_list=None):
        calls.append(len(datasets))
        if len(calls) == 1:
            # A new run in this experiment, not start_run(run_id=...): that one refuses when an
            # earlier test of the session left another experiment set as the active one.
            with mlflow.start_run(experiment_id=mlflow.active_run().info.experiment_id,
                                  nested=True):
                real(datasets, contexts=contexts, tags_list=tags_list)
            cause = sqlalchemy.exc.IntegrityError(
                "INSERT INTO datasets", {}, sqlite3.IntegrityError(
                    "UNIQUE constraint failed: datasets.experiment_id, datasets.name, "
                    "datasets.digest"))
            raise MlflowException(str(cause)) from cause
        return real(datasets, contexts=contexts, tags_list=tags_list)

    monkeypatch.setattr(mlflow, "log_inputs", raced)
    result = run(lab.config())
    found = mlflow.get_run(result.run_id)
    assert found.info.status == "FINISHED" and calls == [3, 3]
    assert sorted(i.tags[0].value for i in found.inputs.dataset_inputs) == [
        "testing", "training", "validation"]


def test_another_store_error_while_logging_datasets_still_fails_the_run(lab, monkeypatch):
    def broken(*args, **kwargs):
        raise MlflowException("INVALID_PARAMETER_VALUE: a dataset's schema is malformed")

    monkeypatch.setattr(mlflow, "log_inputs", broken)
    with pytest.raises(MlflowException, match="schema is malformed"):
        run(lab.config())
