"""Fixtures and helpers of the run-reliability fault tests (claims, signals, divergence, the store).

Import the fixtures by name into a test module (`from reliability_fixtures import lab`). Every test
gets its own sweep name / experiment in one SQLite store per session, its own checkpoint folder, and
short leases, claim settle and retry times.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import keras
import pytest

REPO = Path(__file__).resolve().parents[2]
TINY = {
    "data": {"name": "adding", "length": 8, "num_train": 32, "num_val": 16, "num_test": 16,
             "batch_size": 16},
    "model": {"cell": "lstm", "units": 4},
    "train": {"epochs": 3, "early_stopping_patience": None, "run_eagerly": True},
    "tracking": {"log_model": False},
}
FAST_ENV = {"RNNLAB_LEASE_S": "4", "RNNLAB_CLAIM_SETTLE_S": "0.3",
            "RNNLAB_TRACKING_RETRY_FIRST_S": "0.05"}


@pytest.fixture(scope="session")
def _store(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("faults_store")


@dataclass
class Lab:
    """One test's corner: the store URI, a unique name, the checkpoint root, a scratch folder."""

    uri: str
    name: str
    checkpoints: Path
    folder: Path

    def config(self, **sections):
        """The tiny adding config, tracked in this test's experiment; `sections` update sections."""
        from experiments.config import Config

        d = {k: dict(v) for k, v in TINY.items()}
        d["tracking"]["experiment"] = self.name
        for section, values in sections.items():
            d[section].update(values)
        return Config.from_dict(d, source="faults")

    def sweep(self, grid: dict | None = None, **sections):
        """A planned sweep called `self.name` over the tiny config."""
        from experiments.orchestration import plan as sweep

        base = {k: dict(v) for k, v in TINY.items()}
        for section, values in sections.items():
            base[section].update(values)
        return sweep.parse_sweep({"name": self.name, "base": base, "grid": grid or {}},
                                 source=f"{self.name}.yaml")

    def sweep_file(self, grid: dict | None = None, **sections) -> Path:
        import yaml

        base = {k: dict(v) for k, v in TINY.items()}
        for section, values in sections.items():
            base[section].update(values)
        path = self.folder / f"{self.name}.yaml"
        path.write_text(yaml.safe_dump({"name": self.name, "base": base, "grid": grid or {}}))
        return path

    def env(self, **extra) -> dict[str, str]:
        """The environment of an `rnnlab` subprocess working in this lab."""
        return {**os.environ, **FAST_ENV, "MLFLOW_TRACKING_URI": self.uri, "PYTHONPATH": str(REPO),
                "RNNLAB_CHECKPOINT_DIR": str(self.checkpoints), "TF_CPP_MIN_LOG_LEVEL": "2",
                **extra}


@pytest.fixture
def lab(_store, tmp_path, monkeypatch) -> Lab:
    """This test's store, names and checkpoint folder, with short leases and retries."""
    import mlflow

    made = Lab(uri=f"sqlite:///{_store}/mlflow.db", name=f"faults-{uuid.uuid4().hex[:8]}",
               checkpoints=tmp_path / "checkpoints", folder=tmp_path)
    for key, value in {**FAST_ENV, "MLFLOW_TRACKING_URI": made.uri,
                       "RNNLAB_CHECKPOINT_DIR": str(made.checkpoints)}.items():
        monkeypatch.setenv(key, value)
    yield made
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)


def children(parent_id: str) -> list:
    """Every (not deleted) child run of `parent_id`."""
    import mlflow

    return mlflow.search_runs(search_all_experiments=True, output_format="list",
                              filter_string=f"tags.mlflow.parentRunId = '{parent_id}'")


def runs_of(experiment: str) -> list:
    import mlflow

    return mlflow.search_runs(experiment_names=[experiment], output_format="list")


def steps(run_id: str, key: str = "train_loss") -> list[int]:
    import mlflow

    return sorted(m.step for m in mlflow.MlflowClient().get_metric_history(run_id, key))


class SignalAt(keras.callbacks.Callback):
    """Sends `signum` to this process at the end of epoch `epoch` (after the checkpoint is saved)."""

    def __init__(self, signum: int, epoch: int):
        super().__init__()
        self.signum, self.epoch = signum, epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            os.kill(os.getpid(), self.signum)
            time.sleep(1)  # the handler runs here, as it would during the next batches


def inject(monkeypatch, *callbacks) -> None:
    """Append `callbacks` to the training callbacks of every `run()` in this test."""
    from experiments import guards, run

    monkeypatch.setattr(run, "training_callbacks",
                        lambda checkpoint: [*guards.training_callbacks(checkpoint), *callbacks])


def rnnlab(lab: Lab, *args: str, **popen) -> subprocess.Popen:
    """`rnnlab <args>` in a subprocess working in `lab` (stdout and stderr captured as text)."""
    return subprocess.Popen([sys.executable, "-m", "experiments.cli", *args], cwd=REPO,
                            env=lab.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **popen)


def wait_for_epoch(lab: Lab, proc: subprocess.Popen, epoch: int, timeout: float = 240) -> str:
    """Wait until a RUNNING run of `lab` (its sweep, or named after it) has logged `train_loss` at step `epoch`; its id."""
    import mlflow

    mlflow.set_tracking_uri(lab.uri)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        found = mlflow.search_runs(search_all_experiments=True, output_format="list",
                                   filter_string="attributes.status = 'RUNNING'")
        for run in found:
            ours = lab.name in (run.data.tags.get("rnnlab.sweep"), run.info.run_name)
            if ours and "rnnlab.config_hash" in run.data.tags and epoch in steps(run.info.run_id):
                return run.info.run_id
        time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    raise AssertionError(f"no run reached epoch {epoch}: {proc.communicate()}")
