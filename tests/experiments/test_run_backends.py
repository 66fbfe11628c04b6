"""One `rnnlab run` end to end under the JAX and PyTorch backends: the path the throughput
benchmark measures with KERAS_BACKEND=jax (fit, test evaluation, the task's own predictions, the
MLflow record). Keras picks its backend at import, so each runs as its own process."""

import os
import subprocess
import sys
from pathlib import Path

import keras
import mlflow
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_a_classification_run_finishes_under_backend(backend, tmp_path):
    """Temporal order scores its test split through `predict_on_batch` on tf.data batches, which
    JAX refused as TensorFlow tensors until the batches went in as NumPy arrays."""
    if backend == keras.backend.backend():
        pytest.skip(f"{backend} is this process's backend")
    pytest.importorskip(backend)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(REPO),
           "MLFLOW_TRACKING_URI": uri, "RNNLAB_CHECKPOINT_DIR": str(tmp_path / "ck")}
    sizes = ["data.length=20", "data.num_train=64", "data.num_val=32", "data.num_test=32",
             "train.epochs=1", "model.units=4"]
    result = subprocess.run(
        [sys.executable, "-m", "experiments.cli", "run", "--task", "temporal_order", "--cell",
         "lstm", *[arg for s in sizes for arg in ("--set", s)]],
        check=False, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    [run] = mlflow.MlflowClient(uri).search_runs(
        [e.experiment_id for e in mlflow.MlflowClient(uri).search_experiments()])
    assert run.info.status == "FINISHED" and run.data.tags["rnnlab.backend"] == backend
    assert 0.0 <= run.data.metrics["test_accuracy"] <= 1.0
