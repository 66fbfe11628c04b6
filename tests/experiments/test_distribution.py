"""`train.distribution`: validation, the batch against the replica count, a tracked run inside the
strategy, and (slow: fresh processes with the CPU split into two logical devices, see
distributed_runs.py) the same metrics on 1 and 2 replicas, resume and divergence under the strategy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from datasets.errors import ConfigError
from experiments import distribution
from experiments.config import Config, config_hash
from experiments.run import run

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("distributed_runs.py")
# Replicas add their gradients in another order than one device does: float rounding only.
RELATIVE_TOLERANCE = 1e-4


def test_an_unknown_distribution_names_the_key_the_value_and_the_choices():
    with pytest.raises(ConfigError) as err:
        Config.from_dict({"train": {"distribution": "horovod"}}, source="my.yaml")
    message = str(err.value)
    assert message.startswith("my.yaml: 'train.distribution'")
    for needle in ("'horovod'", "null", "mirrored", "data_parallel"):
        assert needle in message


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_backends_with_a_distribution_accept_both_names(backend):
    for value in distribution.CHOICES:
        distribution.check_backend(value, "x", backend=backend)


def test_a_backend_without_a_distribution_is_refused_before_anything_runs():
    with pytest.raises(ConfigError, match=r"'train.distribution' is not supported on the torch "
                                          r"backend.*valid: backends tensorflow, jax"):
        distribution.check_backend("mirrored", "run", backend="torch")
    distribution.check_backend(None, "run", backend="torch")  # one device: every backend


def test_the_global_batch_must_split_evenly_over_the_replicas():
    with pytest.raises(ConfigError, match=r"'data.batch_size' must be a multiple of the 3 "
                                          r"replicas.*global batch.*got 16"):
        distribution._placement("mirrored", 3, "tf.distribute.MirroredStrategy", 16, "run")
    placed = distribution._placement("mirrored", 2, "tf.distribute.MirroredStrategy", 16, "run")
    assert placed.tags == {"rnnlab.distribution": "tf.distribute.MirroredStrategy",
                           "rnnlab.replicas": "2"}


def test_a_distributed_run_is_the_same_configuration_for_claims_and_resume():
    plain = Config.from_dict({"data": {"name": "adding"}})
    assert config_hash(plain.with_overrides(["train.distribution=mirrored"])) == config_hash(plain)


def test_cpu_devices_from_the_environment_must_be_a_positive_integer(monkeypatch):
    monkeypatch.setenv("RNNLAB_CPU_DEVICES", "two")
    with pytest.raises(ConfigError, match=r"RNNLAB_CPU_DEVICES.*integer >= 1.*'two'"):
        distribution._cpu_devices_from_env()
    monkeypatch.setenv("RNNLAB_CPU_DEVICES", "2")
    assert distribution._cpu_devices_from_env() == 2


def test_a_tracked_run_inside_the_strategy_records_its_replicas_and_model(tiny_config,
                                                                         mlflow_store):
    """In this process TensorFlow has one CPU device: one replica, but the whole path (build,
    compile, fit, evaluate, tracking, checkpoints, model logging) inside MirroredStrategy's scope."""
    config = tiny_config("adding", "gru", train={"distribution": "mirrored", "run_eagerly": False},
                         tracking={"enabled": True})
    result = run(config)
    assert result.status == "FINISHED"
    found = mlflow.get_run(result.run_id)
    assert found.data.tags["rnnlab.distribution"] == "tf.distribute.MirroredStrategy"
    assert found.data.tags["rnnlab.replicas"] == "1"
    assert found.data.params["train.distribution"] == "mirrored"
    assert [a.path for a in mlflow.MlflowClient().list_artifacts(result.run_id, "model")]


def _child(tmp_path: Path, store: Path, *cases: str, backend: str = "tensorflow") -> dict:
    """Run `cases` of distributed_runs.py in a process with two logical CPU devices."""
    out = tmp_path / f"{backend}.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2",
           "KERAS_BACKEND": backend, "RNNLAB_CPU_DEVICES": "2",
           "MLFLOW_TRACKING_URI": f"sqlite:///{store}/mlflow.db",
           "RNNLAB_CHECKPOINT_DIR": str(tmp_path / "checkpoints")}
    done = subprocess.run([sys.executable, str(CHILD), str(out), *cases], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def two_devices(tmp_path_factory, _session_store):
    """The five cases of distributed_runs.py on TensorFlow, in one process, tracked in the
    session's store (about 2 min on the loaded 2-core machine, 40 s of it the process start)."""
    return _child(tmp_path_factory.mktemp("distributed"), _session_store, "single", "mirrored",
                  "killed", "resumed", "diverged")


@pytest.mark.slow
def test_two_mirrored_replicas_match_one_device(two_devices, mlflow_store):
    single, mirrored = two_devices["single"], two_devices["mirrored"]
    assert single["status"] == mirrored["status"] == "FINISHED"
    assert single["epochs"] == mirrored["epochs"] == 2
    assert set(single["metrics"]) == set(mirrored["metrics"]) == {"loss", "mse"}
    for key, value in single["metrics"].items():
        assert mirrored["metrics"][key] == pytest.approx(value, rel=RELATIVE_TOLERANCE), key
    found = mlflow.get_run(mirrored["run_id"])
    assert found.data.tags["rnnlab.replicas"] == "2"
    assert found.data.tags["rnnlab.distribution"] == "tf.distribute.MirroredStrategy"
    assert found.data.params["train.distribution"] == "mirrored"
    assert "rnnlab.replicas" not in mlflow.get_run(single["run_id"]).data.tags
    history = mlflow.MlflowClient().get_metric_history(mirrored["run_id"], "val_loss")
    assert sorted(m.step for m in history) == [0, 1]
    import cells  # noqa: F401 - registers the cells for loading

    model = mlflow.keras.load_model(f"runs:/{mirrored['run_id']}/model")  # saved under the strategy
    assert model.count_params() > 0


@pytest.mark.slow
def test_under_two_replicas_a_killed_run_resumes_and_a_nan_loss_fails_the_run(two_devices,
                                                                            mlflow_store):
    assert two_devices["killed"]["error"] == "KeyboardInterrupt"
    resumed = two_devices["resumed"]
    assert resumed["status"] == "FINISHED"
    assert resumed["epochs"] == 1  # BackupAndRestore: epoch 1 came from the killed run's checkpoint
    assert two_devices["diverged"]["error"] == "Diverged"
    assert two_devices["diverged"]["message"].startswith("diverged at epoch ")


@pytest.mark.slow
def test_jax_data_parallel_on_two_devices_matches_one_device(tmp_path, mlflow_store):
    got = _child(tmp_path, mlflow_store, "single", "mirrored", backend="jax")
    single, parallel = got["single"], got["mirrored"]
    assert single["metrics"]["loss"] == pytest.approx(parallel["metrics"]["loss"],
                                                      rel=RELATIVE_TOLERANCE)
    found = mlflow.get_run(parallel["run_id"])
    assert found.data.tags["rnnlab.distribution"] == "keras.distribution.DataParallel"
    assert found.data.tags["rnnlab.replicas"] == "2"
