"""Stopped runs are never left RUNNING: SIGTERM / SIGINT end the child and the parent KILLED with
the signal as reason; after kill -9 the next sweep marks the orphan KILLED and resumes the
configuration from its checkpoint, each epoch logged once."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import mlflow
import pytest
import yaml
from reliability_fixtures import (
    REPO,
    SignalAt,
    children,
    inject,
    rnnlab,
    runs_of,
    steps,
    wait_for_epoch,
)

from experiments.analysis import provenance, report
from experiments.config import config_hash
from experiments.guards import Stopped, stop_on_signals
from experiments.orchestration import launch
from experiments.recording import claims, store
from experiments.recording.tags import LEASE_TAG
from experiments.run import run


def _checkpoints(where, chash: str) -> list:
    return list(where.checkpoints.glob(f"*/{chash}/*"))


def test_ctrl_c_ends_the_run_killed_with_the_signal_and_keeps_its_checkpoint(lab, monkeypatch):
    inject(monkeypatch, SignalAt(signal.SIGINT, 0))
    config = lab.config()
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(Stopped) as stop, stop_on_signals():
        run(config)
    assert stop.value.exit_code == 130
    [found] = runs_of(lab.name)
    assert found.info.status == "KILLED"
    assert found.data.tags["rnnlab.status"] == "KILLED"
    assert found.data.tags["rnnlab.reason"] == "stopped by SIGINT"
    assert _checkpoints(lab, config_hash(config))
    assert signal.getsignal(signal.SIGINT) is before  # the handlers are restored


def test_sigterm_kills_child_and_parent_and_the_rerun_resumes_logging_each_epoch_once(
        lab, monkeypatch):
    plan = lab.sweep(train={"epochs": 4})
    inject(monkeypatch, SignalAt(signal.SIGTERM, 1))
    lines = []
    with pytest.raises(Stopped) as stop, stop_on_signals():
        launch.run_sweep(plan, out=lines.append)
    assert stop.value.exit_code == 143
    assert "interrupted (stopped by SIGTERM)" in lines[-1]
    parent_id = store.find_parent_run("sweep", plan.name)
    parent = mlflow.get_run(parent_id)
    assert parent.info.status == "KILLED" and parent.data.tags["rnnlab.status"] == "KILLED"
    assert parent.data.tags["rnnlab.reason"] == "stopped by SIGTERM"
    [killed] = children(parent_id)
    assert killed.info.status == "KILLED" and killed.data.tags["rnnlab.status"] == "KILLED"
    assert killed.data.tags["rnnlab.reason"] == "stopped by SIGTERM"
    assert steps(killed.info.run_id) == [0, 1]

    inject(monkeypatch)  # no more signals
    [outcome] = launch.run_sweep(plan, out=lines.append)
    assert outcome.status == "FINISHED"
    assert outcome.result.epochs == 4 and not any("early stopping" in line for line in lines)  # not 2
    resumed = mlflow.get_run(outcome.run_id)
    assert resumed.data.tags["rnnlab.resumed_from"] == killed.info.run_id
    assert resumed.data.tags["rnnlab.resumed_epoch"] == "2"
    assert steps(outcome.run_id) == [0, 1, 2, 3]
    assert steps(outcome.run_id, "val_loss") == [0, 1, 2, 3]
    epoch_times = mlflow.MlflowClient().get_metric_history(outcome.run_id, "epoch_time_s")
    assert outcome.result.train_time_s >= sum(m.value for m in epoch_times)  # both sittings'
    assert resumed.data.metrics["train_time_s"] == pytest.approx(outcome.result.train_time_s)
    killed = mlflow.get_run(killed.info.run_id)
    [wall] = provenance.wall_seconds(report.load_runs(plan.name))
    sittings = [(r.info.end_time - r.info.start_time) / 1000 for r in (killed, resumed)]
    assert wall == pytest.approx(sum(sittings)) and min(sittings) > 0
    parent = mlflow.get_run(parent_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["rnnlab.status"] == "FINISHED"
    assert not _checkpoints(lab, plan.runs[0].hash)  # Keras removes it when training ends


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_rnnlab_run_stopped_prints_one_line_and_exits_128_plus_the_signal(lab, signum):
    config = lab.folder / "run.yaml"
    config.write_text(yaml.safe_dump({"data": {"num_train": 32, "num_val": 16, "num_test": 16,
                                               "batch_size": 16, "length": 8},
                                      "model": {"units": 4},
                                      "train": {"epochs": 500, "early_stopping_patience": None},
                                      "tracking": {"run_name": lab.name, "log_model": False}}))
    proc = rnnlab(lab, "run", "--task", "adding", "--cell", "lstm", "--config", str(config))
    run_id = wait_for_epoch(lab, proc, 1)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err
    said = [line for line in err.splitlines() if line.startswith("rnnlab run:")]
    assert said == [line for line in said if f"stopped by {signal.Signals(signum).name}" in line]
    assert len(said) == 1
    found = mlflow.get_run(run_id)
    assert found.info.status == "KILLED" and found.data.tags["rnnlab.status"] == "KILLED"


@pytest.mark.slow
def test_after_kill_9_the_next_sweep_kills_the_orphan_and_resumes_its_epochs(lab):
    file = lab.sweep_file(train={"epochs": 6})
    proc = rnnlab(lab, "sweep", str(file))
    orphan_id = wait_for_epoch(lab, proc, 2)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    killed_at = time.time() * 1000
    assert mlflow.get_run(orphan_id).info.status == "RUNNING"  # what kill -9 leaves
    while not claims.lease_expired(mlflow.get_run(orphan_id)):
        time.sleep(0.5)

    from experiments.orchestration import plan as sweep

    [outcome] = launch.run_sweep(sweep.load_sweep(file), out=lambda line: None)
    orphan = mlflow.get_run(orphan_id)
    assert orphan.info.status == "KILLED" and orphan.data.tags["rnnlab.status"] == "KILLED"
    assert " gone: its process stopped" in orphan.data.tags["rnnlab.reason"]  # this host's pid
    assert orphan.info.start_time <= orphan.info.end_time <= killed_at  # not when it was found
    assert outcome.status == "FINISHED"
    resumed = mlflow.get_run(outcome.run_id)
    assert resumed.data.tags["rnnlab.resumed_from"] == orphan_id
    assert int(resumed.data.tags["rnnlab.resumed_epoch"]) >= 2  # not from epoch 0
    assert steps(outcome.run_id) == list(range(6))


@pytest.mark.slow
def test_kill_9_then_an_immediate_rerun_takes_the_killed_configuration_over_and_resumes_it(
        lab, monkeypatch):
    """The issue's user: `rnnlab sweep` killed with kill -9 while a configuration trains, the same
    sweep run again at once. Its claim's lease (10 minutes here) has not expired, but its holder
    is provably gone from this host: the re-run takes it over at once and resumes it from its
    checkpoint, and the sweep ends FINISHED with every configuration finished once."""
    monkeypatch.setenv("RNNLAB_LEASE_S", "600")
    file = lab.sweep_file(grid={"model.cell": ["lstm", "gru"]}, train={"epochs": 6})
    proc = subprocess.Popen([sys.executable, "-m", "experiments.cli", "sweep", str(file)],
                            cwd=REPO, env=lab.env(RNNLAB_LEASE_S="600"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    orphan_id = wait_for_epoch(lab, proc, 2)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    rerun_at = time.time() * 1000

    from experiments.orchestration import plan

    outcomes = launch.run_sweep(plan.load_sweep(file), out=lambda line: None)
    assert [o.status for o in outcomes] == ["FINISHED", "FINISHED"]
    orphan = mlflow.get_run(orphan_id)
    assert orphan.info.status == "KILLED" and " gone" in orphan.data.tags["rnnlab.reason"]
    assert int(orphan.data.tags[LEASE_TAG]) > rerun_at  # taken over before its lease ran out
    resumed = mlflow.get_run(outcomes[0].run_id)
    assert resumed.data.tags["rnnlab.resumed_from"] == orphan_id
    assert int(resumed.data.tags["rnnlab.resumed_epoch"]) >= 2  # from its checkpoint
    assert steps(outcomes[0].run_id) == list(range(6))
    parent = mlflow.get_run(store.find_parent_run("sweep", lab.name))
    assert parent.info.status == "FINISHED"
    finished = [r.data.tags["rnnlab.config_hash"] for r in children(parent.info.run_id)
                if r.info.status == "FINISHED"]
    assert sorted(finished) == sorted(p.hash for p in plan.load_sweep(file).runs)
