"""`rnnlab gradients`: ‖∂L/∂x_t‖ against the lag, on tiny models (T = 10, 4 units).

The known answer: a linear RNN h_t = x_t W + h_{t-1} (a·I) gives ∂L/∂x_t = a^(T-1-t) ∂L/∂x_{T-1}
for every sequence, so the batch mean is exactly proportional to a^lag.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import keras
import mlflow
import numpy as np
import pytest
from experiment_fixtures import logged_model_names

import cells
import datasets
from experiments import cli
from experiments.analysis import gradients
from experiments.config import Config
from experiments.tasks import family_for

REPO = Path(__file__).resolve().parents[2]
T = 10
TINY_SETS = ["data.length=10", "data.num_train=32", "data.num_val=16", "data.num_test=16",
             "data.batch_size=16", "model.units=4", "train.epochs=1",
             "train.early_stopping_patience=null", "train.run_eagerly=true"]


def linear_rnn(a: float) -> keras.Model:
    """Vanilla cell with identity activation, no bias, recurrent kernel a·I, and a Dense head."""
    cell = cells.VanillaRNNCell(4, activation="linear", use_bias=False,
                                recurrent_initializer=keras.initializers.Identity(gain=a))
    inputs = keras.Input((T, 3))
    outputs = keras.layers.Dense(1)(keras.layers.RNN(cell)(inputs))
    return keras.Model(inputs, outputs)


def regression_batch(rng, n: int = 5):
    return rng.normal(size=(n, T, 3)).astype("float32"), rng.normal(size=(n, 1)).astype("float32")


@pytest.mark.parametrize("a", [0.5, 1.5])
def test_known_answer_linear_rnn_gradient_is_proportional_to_a_to_the_lag(a):
    keras.utils.set_random_seed(1)
    mean, std = gradients.gradient_norms(linear_rnn(a), keras.losses.MeanSquaredError(),
                                         regression_batch(np.random.default_rng(0)))
    assert mean.shape == std.shape == (T,)
    np.testing.assert_allclose(mean / mean[0], a ** np.arange(T), rtol=1e-4)


def project_model(task: str, cell: str, length: int = T):
    config = Config.from_dict({"data": {"name": task, "length": length, "num_train": 16,
                                        "num_val": 16, "num_test": 16, "batch_size": 8},
                               "model": {"cell": cell, "units": 4}})
    _, _, test, spec = datasets.load(config.data)
    model = gradients.initial_model(config, spec, 4)
    return model, family_for(spec).compile_args(spec)["loss"], gradients.take_samples(test, 12)


@pytest.mark.parametrize(("task", "steps"), [("adding", T), ("copy", T + 20)])
def test_shapes_on_the_projects_models(task, steps):
    model, loss, batch = project_model(task, "lstm")
    assert len(batch[0]) == 12  # two batches of 8, cut to 12
    mean, std = gradients.gradient_norms(model, loss, batch)
    assert mean.shape == std.shape == (steps,)
    assert np.all(np.isfinite(mean)) and np.all(mean > 0) and np.all(std >= 0)


def test_vanilla_gradient_decays_faster_when_its_recurrent_kernel_is_scaled_down():
    model, loss, batch = project_model("adding", "vanilla")
    kernel = model.get_layer("rnn_0").cell.recurrent_kernel
    original = keras.ops.convert_to_numpy(kernel)
    ratios = {}
    for scale in (0.2, 1.0):
        kernel.assign(original * scale)
        mean, _ = gradients.gradient_norms(model, loss, batch)
        ratios[scale] = mean[0] / mean[-1]
    assert ratios[0.2] > 1e3 * ratios[1.0]  # each step multiplies by about 0.2 more: 0.2^9 ≈ 5e-7
    assert ratios[0.2] > 1e4


def curves_in(path: Path) -> dict[tuple[str, str], np.ndarray]:
    rows = list(csv.DictReader(path.open()))
    found: dict[tuple[str, str], list] = {}
    for row in rows:
        found.setdefault((row["cell"], row["stage"]), []).append(
            (int(row["lag"]), float(row["grad_norm_mean"])))
    return {key: np.array([v for _, v in sorted(values)]) for key, values in found.items()}


def gradient_runs() -> list:
    return mlflow.search_runs(search_all_experiments=True, output_format="list",
                              filter_string="tags.`rnnlab.role` = 'gradients'")


def test_cli_trains_measures_and_writes_plot_csv_and_mlflow_run(mlflow_store, tmp_path, capsys):
    before = len(gradient_runs())
    argv = ["gradients", "--task", "adding", "--cell", "gru", "--samples", "8",
            "--output", str(tmp_path / "out"), *[a for s in TINY_SETS for a in ("--set", s)]]
    assert cli.main(argv) == 0
    folder = tmp_path / "out"
    png, csv_path = folder / "gradients_adding_T10.png", folder / "gradients_adding_T10.csv"
    assert png.stat().st_size > 10_000
    curves = curves_in(csv_path)
    assert set(curves) == {("gru", "init"), ("gru", "trained")}
    assert all(len(v) == T for v in curves.values())
    assert not np.allclose(curves["gru", "init"], curves["gru", "trained"], rtol=1e-7, atol=0)

    runs = gradient_runs()
    assert len(runs) == before + 1
    run = max(runs, key=lambda r: r.info.start_time)
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "gradients")}
    assert artifacts == {"gradients/gradients_adding_T10.png", "gradients/gradients_adding_T10.csv"}
    assert run.data.metrics["ratio_adding_gru_init"] == pytest.approx(
        curves["gru", "init"][0] / curves["gru", "init"][-1], rel=1e-4)
    children = mlflow.search_runs(search_all_experiments=True, output_format="list",
                                  filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'")
    assert [c.data.tags["rnnlab.cell"] for c in children] == ["gru"]

    # the trained run, loaded by id: the same curves (the load path and the config read back)
    gru_run = children[0].info.run_id
    assert logged_model_names(gru_run) == ["model"]  # loaded back through MLflow's Keras flavor
    again = tmp_path / "again"
    assert cli.main(["gradients", "--run-id", gru_run, "--samples", "8", "--output", str(again)]) == 0
    reloaded = curves_in(again / "gradients_adding_T10.csv")
    assert set(reloaded) == {("gru", "init"), ("gru", "trained")}
    for stage in ("init", "trained"):
        np.testing.assert_allclose(reloaded["gru", stage], curves["gru", stage], rtol=1e-5)


def test_cli_no_train_writes_init_curves_for_two_tasks_and_cells(mlflow_store, tmp_path):
    out = tmp_path / "out"
    assert cli.main(["gradients", "--task", "adding", "copy", "--cell", "lstm", "vanilla", "--no-train",
                     "--samples", "4", "--output", str(out),
                     *[a for s in TINY_SETS for a in ("--set", s)]]) == 0
    rows = list(csv.DictReader((out / "gradients_adding_copy_T10.csv").open()))
    assert {(r["task"], r["cell"], r["stage"]) for r in rows} == {
        (task, cell, "init") for task in ("adding", "copy") for cell in ("lstm", "vanilla")}
    assert len(rows) == 2 * (T + (T + 20))
    assert (out / "gradients_adding_copy_T10.png").is_file()


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["--cell", "lsmt"], ["model.cell", "'lsmt'", "peephole"]),
        (["--task", "adder"], ["data.name", "'adder'", "adding"]),
        (["--task", "imdb"], ["'imdb'", "long-dependency", "copy"]),
        (["--samples", "0"], ["--samples", "0"]),
        (["--set", "data.lenght=5"], ["data.lenght", "length"]),
        (["--run-id", "0123456789abcdef"], ["--run-id 0123456789abcdef", "not found"]),
    ],
)
def test_bad_input_exits_2_with_a_clear_message_and_no_run(argv, needles, mlflow_store, tmp_path,
                                                          capsys):
    before = len(mlflow.search_runs(search_all_experiments=True, output_format="list"))
    assert cli.main(["gradients", "--output", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("rnnlab")]  # not MLflow's logs
    assert len(lines) == 1 and lines[0].startswith("rnnlab gradients: "), err
    for needle in needles:
        assert needle in lines[0]
    assert len(mlflow.search_runs(search_all_experiments=True, output_format="list")) == before
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_known_answers_hold_under_backend(backend):
    pytest.importorskip(backend)
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k",
         "known_answer_linear or scaled_down or shapes", str(Path(__file__))],
        check=False, env=env, cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "5 passed" in done.stdout
