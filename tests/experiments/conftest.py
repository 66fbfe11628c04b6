"""Shared fixtures of tests/experiments: tiny configs and temporary MLflow stores.

The training-path fixtures go above the sweeps & CLI section at the end of this file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

# ---------------------------------------------------------------------------------------------------
# Training-path fixtures: a temporary MLflow store, tiny configs (offline and mini_data: tests/conftest.py).
# ---------------------------------------------------------------------------------------------------

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


@pytest.fixture
def lab(tmp_path, monkeypatch) -> Path:
    """For sweeps and searches on Ray's engine: a store, checkpoint and oracle folder of this
    test's own, a short claim settle time, no Ray cluster in the environment."""
    import mlflow

    for key, value in {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
                       "RNNLAB_CHECKPOINT_DIR": str(tmp_path / "ck"),
                       "RNNLAB_TUNING_DIR": str(tmp_path / "wd"),
                       "RNNLAB_CLAIM_SETTLE_S": "0.3"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    yield tmp_path
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)


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

    from experiments.orchestration import launch
    from experiments.orchestration import plan as sweep
    from experiments.recording import store
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
        built.parent_id = store.find_parent_run("sweep", built.plan.name)
    rnnlab = Path(sys.executable).with_name("rnnlab")
    done = subprocess.run([str(rnnlab), "sweep", str(built.file)], capture_output=True, text=True,
                          check=False,
                          env={**os.environ, "MLFLOW_TRACKING_URI": built.uri}, timeout=300)
    built.console_output = done.stdout + done.stderr
    assert done.returncode == 0, built.console_output
    return built


@pytest.fixture
def tiny_sweep_store(tiny_sweep, monkeypatch):
    """Point MLflow (through experiments.recording.store) at the tiny sweep's store for one test."""
    from experiments.recording import store

    monkeypatch.setenv("MLFLOW_TRACKING_URI", tiny_sweep.uri)
    store.configure()
    return tiny_sweep.uri


# ---------------------------------------------------------------------------------------------------
# Report & UI fixtures: a small store written with MLflow's API alone (no training, a second or two).
# ---------------------------------------------------------------------------------------------------

FAKE_RUNS = [  # task, cell, T, seed, test metric, solved
    ("adding", "lstm", 50, 0, 0.004, 1.0), ("adding", "lstm", 50, 1, 0.012, 0.0),
    ("adding", "gru", 50, 0, 0.166, 0.0), ("multi30k", "gru", None, 0, 0.4, None),
]
COLLAPSED_SAMPLES = "BLEU 0.40\n\n" + "".join(
    f"SRC: satz {i}\nREF: sentence {i}\nHYP: a a a a\n\n" for i in range(5))


@pytest.fixture(scope="session")
def fake_store(tmp_path_factory):
    """A store with a sweep "demo": a parent and four finished children (adding T=50: lstm × 2
    seeds, gru × 1 at chance; multi30k: gru with collapsed sample translations and BLEU 0.4),
    logged as experiments.run logs them. Returns (uri, experiment_id, {run name: run_id})."""
    import mlflow

    folder = tmp_path_factory.mktemp("fake_store")
    uri = f"sqlite:///{folder}/mlflow.db"
    client = mlflow.MlflowClient(uri)
    experiment_id = client.create_experiment("rnn-cell-lab", artifact_location=str(folder / "mlruns"))
    parent = client.create_run(experiment_id, run_name="demo", tags={
        "rnnlab.sweep": "demo", "rnnlab.role": "sweep"})
    ids = {}
    for i, (task, cell, length, seed, value, solved) in enumerate(FAKE_RUNS):
        metric = "mse" if task == "adding" else "bleu"
        name = f"{task}-{cell}-{seed}"
        run = client.create_run(experiment_id, run_name=name, tags={
            "mlflow.parentRunId": parent.info.run_id, "rnnlab.sweep": "demo",
            "rnnlab.task": task, "rnnlab.cell": cell, "rnnlab.config_hash": f"hash{i}",
            "rnnlab.status": "FINISHED", "rnnlab.git_commit": "0123456789abcdef",
            "rnnlab.backend": "tensorflow", "rnnlab.device": "CPU",
            **({"rnnlab.solved_metric": "mse", "rnnlab.baseline_metric": "mse"}
               if task == "adding" else {})})
        run_id = ids[name] = run.info.run_id
        params = {"data.name": task, "model.cell": cell, "train.seed": seed, "data.length": length,
                  "data.source_lang": "de", "data.target_lang": "en", "model.attention": None}
        for key, v in params.items():
            client.log_param(run_id, key, "None" if v is None else v)
        for key, v in {f"test_{metric}": value, "test_loss": value, "param_count": 1234,
                       "train_time_s": 3.5, **({"baseline": 0.167, "solved": solved}
                                               if task == "adding" else {})}.items():
            client.log_metric(run_id, key, v)
        for epoch in range(3):
            loss = value * (3 - epoch)
            for key, v in {"train_loss": loss * 1.1, "val_loss": loss,
                           f"val_{metric}": loss if metric == "mse" else 10 * epoch}.items():
                client.log_metric(run_id, key, v, step=epoch)
        if task == "multi30k":
            client.log_text(run_id, COLLAPSED_SAMPLES, "samples/translations.txt")
        client.set_terminated(run_id)
    client.set_terminated(parent.info.run_id)
    return uri, experiment_id, ids
