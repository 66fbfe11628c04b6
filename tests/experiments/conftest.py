"""Shared fixtures of tests/experiments: tiny configs and temporary MLflow stores.

The training-path fixtures go above the sweeps & CLI section at the end of this file.
"""

from __future__ import annotations

import pytest

# ---------------------------------------------------------------------------------------------------
# Sweeps & CLI fixtures (owned by the sweeps & CLI engineer): one real tiny sweep, built once per
# session in its own temporary MLflow store and shared by test_sweep.py and test_report.py.
# ---------------------------------------------------------------------------------------------------

TINY_SWEEP = {
    "name": "tiny",
    "base": {
        "data": {"name": "adding", "num_train": 64, "num_val": 32, "num_test": 32, "batch_size": 32},
        "model": {"units": 4},
        "train": {"epochs": 2, "early_stopping_patience": None},
    },
    "tasks": [{"data.name": "adding", "data.length": 8}, {"data.name": "adding", "data.length": 12}],
    "grid": {"model.cell": ["lstm", "gru"]},
}


class TinySweep:
    """What building the tiny sweep left: its plan, parent run, each pass's outcomes and output."""

    def __init__(self, folder):
        self.folder = folder
        self.uri = f"sqlite:///{folder}/mlflow.db"
        self.file = folder / "tiny.yaml"
        self.plan = None
        self.parent_id = None
        self.passes = []
        self.outputs = []
        self.real_calls = []
        self.console_output = ""


def _flaky_run(real_run, calls):
    """run() that fails the T=12 lstm before it starts and the T=12 gru inside its MLflow run."""
    import mlflow

    from experiments.config import config_hash

    def flaky(config, *, parent_run_id=None, tags=None):
        if config.data.length == 12 and config.model.cell == "lstm":
            raise RuntimeError("boom before the run started")
        if config.data.length == 12 and config.model.cell == "gru":
            experiment_id = mlflow.get_run(parent_run_id).info.experiment_id
            with mlflow.start_run(experiment_id=experiment_id, nested=True, tags={
                    **tags, "rnnlab.config_hash": config_hash(config), "rnnlab.task": "adding",
                    "rnnlab.cell": "gru"}):
                raise RuntimeError("boom inside the run")
        calls.append(config)
        return real_run(config, parent_run_id=parent_run_id, tags=tags)

    return flaky


def _counting_run(real_run, calls):
    def counting(config, **kwargs):
        calls.append(config)
        return real_run(config, **kwargs)

    return counting


@pytest.fixture(scope="session")
def tiny_sweep(tmp_path_factory):
    """Run the tiny sweep three times: with two runs failing, again (only those two run), and once
    more through the `rnnlab` console script in a subprocess (nothing runs)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    from experiments import sweep
    from experiments.run import run

    built = TinySweep(tmp_path_factory.mktemp("tiny_sweep"))
    built.file.write_text(yaml.safe_dump(TINY_SWEEP))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", built.uri)
        built.plan = sweep.load_sweep(built.file)
        for runner in (_flaky_run, _counting_run):
            calls, lines = [], []
            built.passes.append(sweep.run_sweep(built.plan, run_fn=runner(run, calls),
                                                out=lines.append))
            built.outputs.append("\n".join(lines))
            built.real_calls.append(len(calls))
        built.parent_id = sweep.find_parent_run(built.plan.name)
    rnnlab = Path(sys.executable).with_name("rnnlab")
    done = subprocess.run([str(rnnlab), "sweep", str(built.file)], capture_output=True, text=True,
                          check=False,
                          env={**os.environ, "MLFLOW_TRACKING_URI": built.uri}, timeout=300)
    built.console_output = done.stdout + done.stderr
    assert done.returncode == 0, built.console_output
    return built


@pytest.fixture
def tiny_sweep_store(tiny_sweep, monkeypatch):
    """Point MLflow (through experiments.tracking) at the tiny sweep's store for one test."""
    from experiments import tracking

    monkeypatch.setenv("MLFLOW_TRACKING_URI", tiny_sweep.uri)
    tracking.configure()
    return tiny_sweep.uri
