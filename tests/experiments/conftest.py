"""Shared fixtures of tests/experiments: tiny configs and temporary MLflow stores.

The training-path fixtures go above the sweeps & CLI section at the end of this file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

# ---------------------------------------------------------------------------------------------------
# Training-path fixtures: a temporary MLflow store, tiny configs (offline and mini_data: tests/conftest.py).
# ---------------------------------------------------------------------------------------------------

TOY_TASKS = ("adding", "copy", "temporal_order", "reber", "spike_timing")
REAL_TASKS = ("imdb", "multi30k")
TINY = {
    "data": {"num_train": 32, "num_val": 16, "num_test": 16, "batch_size": 16, "length": 20,
             "subset": 16, "test_subset": 8, "max_length": 12, "vocab_size": 200, "min_freq": 1},
    "model": {"units": 4, "embedding_dim": 4},
    "train": {"epochs": 1, "early_stopping_patience": None, "max_decode_length": 6},
}


@pytest.fixture(scope="session")
def _session_store(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mlflow")


@pytest.fixture
def mlflow_store(_session_store, monkeypatch) -> Path:
    """A temporary SQLite MLflow store (artifacts beside it, in <store>/mlruns); returns its folder.

    One store serves the session (creating one takes seconds); tests find their runs by id.
    """
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{_session_store}/mlflow.db")
    yield _session_store
    mlflow.set_tracking_uri(None)


def logged_model_names(run_id: str) -> list[str]:
    """The names of the MLflow models (MLflow 3 LoggedModels) that run `run_id` logged."""
    import mlflow

    experiment_id = mlflow.get_run(run_id).info.experiment_id
    found = mlflow.search_logged_models(experiment_ids=[experiment_id], output_format="list",
                                        filter_string=f"source_run_id = '{run_id}'")
    return [m.name for m in found]


@pytest.fixture
def tiny_config():
    """`tiny_config(task, cell, **sections)`: a Config for one tiny epoch, tracking off unless
    `tracking={...}` says otherwise; `sections` are dicts merged into each section."""
    from experiments.config import Config

    def make(task="adding", cell="lstm", **sections):
        d = {k: dict(v) for k, v in TINY.items()}
        d["data"]["name"] = task
        d["model"]["cell"] = cell
        d["train"]["run_eagerly"] = True
        d["tracking"] = {"enabled": False}
        for section, values in sections.items():
            d.setdefault(section, {}).update(values)
        return Config.from_dict(d, source="tiny_config")

    return make


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

    from experiments import launch, sweep
    from experiments.run import run

    built = TinySweep(tmp_path_factory.mktemp("tiny_sweep"))
    built.file.write_text(yaml.safe_dump(TINY_SWEEP))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", built.uri)
        built.plan = sweep.load_sweep(built.file)
        for runner in (_flaky_run, _counting_run):
            calls, lines = [], []
            built.passes.append(launch.run_sweep(built.plan, run_fn=runner(run, calls),
                                                out=lines.append))
            built.outputs.append("\n".join(lines))
            built.real_calls.append(len(calls))
        built.parent_id = launch.find_parent_run(built.plan.name)
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
