"""Gradient flow through time (`rnnlab gradients`): ‖∂L/∂x_t‖ against the lag T − 1 − t.

For each cell, at initialisation and after training, on a long-dependency task (adding, copy, ...):

    L          the task's loss as the model is trained (the family's compiled loss, sample weights
               included), on `samples` test sequences;
    x_t        the input of the first recurrent layer at step t (after the one-hot / feature
               encoding), t = 0 … S − 1 with S the model's input length (adding: T; copy: T + 20);
    g_t        B · ‖∂L/∂x_t^(b)‖₂ averaged over the batch's B sequences b: since x^(b) reaches only
               its own loss term, B · ∂L/∂x^(b) is the gradient of sequence b's own loss;
    lag        S − 1 − t, steps between x_t and the end of the sequence.

Why ∂L/∂x_t and not ‖∂h_T/∂h_t‖: it is one well-defined quantity for every cell. By the chain rule
it is ∂L/∂s_T · ∏_{k=t+1}^{T} ∂s_k/∂s_{k−1} · ∂s_t/∂x_t, over the cell's *whole* state s (h for the
vanilla cell and GRU, (h, c) for the LSTM family), so it carries the product of Jacobians whose
decay Hochreiter (1991) and Bengio et al. (1994) analyse, including the LSTM's cell-state path
(∂h_T/∂h_t alone, with c_t held fixed, leaves that path out, and a Jacobian over the whole state
compares states of different sizes across cells). It is measured on the models the suite trains,
exactly as built by `family.build(spec, model_cfg, units)`, in the same input space for all cells,
with no access to the layer's time loop. For tasks with a loss at every step (copy) it sums the
losses at all steps ≥ t, so there the lag is the distance to the end, not to one target.

The trained model comes from the project's one training path (`experiments.run.run(config)`, a
child MLflow run of the gradients run) or from a finished run given by id; both are loaded back
from the run's "model" artifact, so what is measured is what was logged. The initial model is the
one that run started from: same builder, same `train.seed` set just before building.

Outputs: `<output>/gradients_<tasks>_T<length>.csv` (one row per task, cell, stage, lag) and `.png`
(one panel per task, log scale, a line per cell: init dashed, trained solid), both also logged to
an MLflow run of their own (tag `rnnlab.role=gradients`) with metrics `ratio_<task>_<cell>_<stage>`
= g at lag 0 / g at lag S − 1 (> 1: the gradient vanishes with the lag, < 1: it grows).
"""

from __future__ import annotations

import csv
import dataclasses
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from experiments.recording.tags import ROLE_TAG, TASK_TAG

STAGES = ("init", "trained")
FAMILY = "long_dependency"


@dataclass
class Curve:
    """Mean (and std) over the batch of each sequence's ‖∂L_b/∂x_t‖, indexed by lag."""

    task: str
    length: int  # data.length (T); the model's input has `len(mean)` steps
    cell: str
    stage: str  # "init" | "trained"
    mean: np.ndarray
    std: np.ndarray
    samples: int
    run_id: str | None = None  # the trained run (for both stages)

    @property
    def ratio(self) -> float:
        """g(lag 0) / g(lag S − 1): how many times weaker the gradient is at the start."""
        return float(self.mean[0] / self.mean[-1]) if self.mean[-1] > 0 else float("inf")


# ------------------------------------------------------------------------------------------------
# the measurement


def input_gradient(fn, x: np.ndarray) -> np.ndarray:
    """∂fn/∂x at `x` for a scalar `fn` written with Keras ops: the one backend-specific piece."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = fn(x)
        return tape.gradient(value, x).numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(fn)(jax.numpy.asarray(x)))
    if backend == "torch":
        x = keras.ops.convert_to_tensor(x).detach().requires_grad_(True)
        fn(x).backward()
        return x.grad.detach().cpu().numpy()
    raise ValueError(f"backend {backend!r} is not supported; "
                     "valid: tensorflow, jax, torch")


def split_at_recurrence(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """`(encoder, rest)`: inputs → x (the first recurrent layer's input) and x → outputs."""
    for layer in model.layers:
        if isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional)):
            return keras.Model(model.input, layer.input), keras.Model(layer.input, model.output)
    raise ValueError(f"model {model.name!r} has no recurrent layer")


def gradient_norms(model: keras.Model, loss, batch) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std over the batch of ‖∂L_b/∂x_t‖, indexed by lag (0 = the last step).

    `batch` is `(inputs, targets)` or `(inputs, targets, sample_weights)` as NumPy arrays;
    `loss(y, pred, sample_weight)` reduces over the batch by its mean (Keras's default).
    """
    inputs, targets, *weights = batch
    encoder, rest = split_at_recurrence(model)
    x = np.asarray(keras.ops.convert_to_numpy(encoder(inputs, training=False)), np.float32)
    weight = weights[0] if weights else None

    def batch_loss(x):
        return loss(targets, rest(x, training=False), sample_weight=weight)

    grads = input_gradient(batch_loss, x) * len(x)  # (B, S, D): each sequence's own loss
    norms = np.linalg.norm(grads, axis=-1)[:, ::-1]  # (B, S), column k = lag k
    return norms.mean(axis=0), norms.std(axis=0)


def take_samples(split, samples: int) -> tuple[np.ndarray, ...]:
    """The first `samples` sequences of a batched split, as NumPy `(x, y[, w])`."""
    parts, count = [], 0
    for batch in split:
        parts.append([np.asarray(t) for t in batch])
        count += len(parts[-1][0])
        if count >= samples:
            break
    return tuple(np.concatenate(column)[:samples] for column in zip(*parts))


# ------------------------------------------------------------------------------------------------
# models: initial (built here) and trained (through run(), loaded from MLflow)


def family_and_units(config, spec):
    """The task family and the units `run(config)` uses (matched by parameter count if asked)."""
    from experiments.tasks import family_for
    from experiments.tasks.common import units_for

    family = family_for(spec)
    return family, units_for(config, family, spec)


def initial_model(config, spec, units: int) -> keras.Model:
    """The model `run(config)` starts from: its builder, `train.seed` set just before building."""
    from experiments.tasks import family_for

    keras.utils.set_random_seed(config.train.seed)
    return family_for(spec).build(spec, config.model, units)


def train(config, parent_run_id: str | None) -> str:
    """Train `config` through the project's one training path; the run's id."""
    from experiments.run import run

    return finished_run_id(run(config, parent_run_id=parent_run_id,
                               tags={ROLE_TAG: "gradients-training"}), config)


def finished_run_id(result, config) -> str:
    """The run id of a `run()` result (`experiments.results.RunResult`), if it finished."""
    if result.status != "FINISHED" or not result.run_id:
        raise RuntimeError(f"rnnlab gradients: training {config.model.cell} on {config.data.name} "
                           f"did not finish: {result.status} {result.reason or ''}")
    return result.run_id


def load_trained(run_id: str) -> keras.Model:
    """The model a run logged as "model", through the one loader (`predict.load_run_model`)."""
    from experiments.serving.predict import load_run_model

    with tempfile.TemporaryDirectory() as tmp:
        return load_run_model(run_id, Path(tmp))


def run_config(run_id: str):
    """`(config, units)` of a finished run, read back from its config.yaml and params."""
    import mlflow
    import yaml

    from experiments.config import Config

    try:
        found = mlflow.MlflowClient().get_run(run_id)
        text = mlflow.artifacts.load_text(f"runs:/{run_id}/config.yaml")
    except mlflow.exceptions.MlflowException as err:
        raise ValueError(f"--run-id {run_id}: not found or without config.yaml in "
                         f"{mlflow.get_tracking_uri()} ({str(err).splitlines()[0]})") from None
    config = Config.from_dict(yaml.safe_load(text), source=f"run {run_id} config.yaml")
    return config, int(found.data.params.get("model.units_used", config.model.units))


# ------------------------------------------------------------------------------------------------
# the study: tasks × cells × stages


@dataclass
class Job:
    """One cell on one task: its config, and the finished run to load (None: train it here)."""

    config: object
    run_id: str | None = None
    units: int | None = None


def check_task(config, where: str = "--task/--cell") -> None:
    """Known cell and task names, and a task of the long-dependency family (one input sequence,
    no padding mask)."""
    from experiments.config import validate_names

    validate_names(config, where)
    valid = valid_tasks()
    if config.data.name not in valid:
        raise ValueError(f"{where}: task {config.data.name!r} is not a long-dependency task; "
                         f"valid: {', '.join(valid)}")


def valid_tasks() -> list[str]:
    """The tasks whose DataSpec the long-dependency family serves."""
    import datasets
    from experiments.tasks import family_for

    found = []
    for name in datasets.names():
        module = datasets.get(name)
        if hasattr(module, "spec") and family_for(
                module.spec(datasets.DataConfig(name=name))).name == FAMILY:
            found.append(name)
    return found


def measure(jobs: list[Job], *, samples: int, train_models: bool,
            parent_run_id: str | None = None, out=print) -> list[Curve]:
    """Init (and trained) curves of every job; jobs without `run_id` are trained when asked."""
    import datasets

    curves, data = [], {}
    for job in jobs:
        config = job.config
        key = repr(sorted(vars(config.data).items()))
        if key not in data:
            _, _, test, spec = datasets.load(config.data)
            data[key] = (spec, take_samples(test, samples))
        spec, batch = data[key]
        family, units = family_and_units(config, spec)
        units = job.units or units
        loss = family.compile_args(spec)["loss"]

        def curve(stage, model, run_id, config=config, batch=batch, loss=loss):
            mean, std = gradient_norms(model, loss, batch)
            found = Curve(config.data.name, config.data.length, config.model.cell, stage,
                          mean, std, len(batch[0]), run_id)
            out(f"  {found.task:8s} {found.cell:9s} {stage:8s} g(lag 0) = {mean[0]:.3g}, "
                f"g(lag {len(mean) - 1}) = {mean[-1]:.3g}, ratio {found.ratio:.3g}")
            return found

        stage_curves = [curve("init", initial_model(config, spec, units), job.run_id)]
        run_id = job.run_id
        if run_id is None and train_models:
            out(f"training {config.model.cell} on {config.data.name} (T={config.data.length}) ...")
            run_id = train(config, parent_run_id)
        if run_id is not None:
            stage_curves.append(curve("trained", load_trained(run_id), run_id))
            stage_curves[0].run_id = run_id
        curves.extend(stage_curves)
    return curves


# ------------------------------------------------------------------------------------------------
# outputs


def write_csv(curves: list[Curve], path: Path) -> Path:
    """One row per task, cell, stage and lag: `grad_norm_mean`, `grad_norm_std`, ..."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["task", "length", "cell", "stage", "lag", "t", "grad_norm_mean",
                         "grad_norm_std", "samples", "run_id"])
        for c in curves:
            steps = len(c.mean)
            for lag, (mean, std) in enumerate(zip(c.mean, c.std)):
                writer.writerow([c.task, c.length, c.cell, c.stage, lag, steps - 1 - lag,
                                 f"{mean:.6g}", f"{std:.6g}", c.samples, c.run_id or ""])
    return path


def plot(curves: list[Curve]):
    """One log-scale panel per task: g against the lag, a colour per cell, init dashed,
    trained solid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    tasks = list(dict.fromkeys(c.task for c in curves))
    cell_names = list(dict.fromkeys(c.cell for c in curves))
    colours = {cell: f"C{i}" for i, cell in enumerate(cell_names)}
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4.2), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for c in (c for c in curves if c.task == task):
            ax.plot(np.arange(len(c.mean)), np.maximum(c.mean, 1e-30), color=colours[c.cell],
                    linestyle="--" if c.stage == "init" else "-", linewidth=1.4)
        first = next(c for c in curves if c.task == task)
        ax.set_yscale("log")
        ax.set_xlabel("lag (steps before the end of the sequence)")
        ax.set_ylabel("‖∂L/∂x_t‖, mean over sequences")
        ax.set_title(f"{task}, T = {first.length} ({first.samples} test sequences)")
        ax.grid(True, which="major", alpha=0.3)
    handles = [Line2D([], [], color=colours[cell], label=cell) for cell in cell_names]
    handles += [Line2D([], [], color="grey", linestyle="--", label="at initialisation"),
                Line2D([], [], color="grey", linestyle="-", label="after training")]
    axes[0][-1].legend(handles=handles, fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def stem(curves: list[Curve]) -> str:
    tasks = "_".join(dict.fromkeys(c.task for c in curves))
    lengths = "_".join(str(n) for n in dict.fromkeys(c.length for c in curves))
    return f"gradients_{tasks}_T{lengths}"


def write_outputs(curves: list[Curve], folder: Path) -> tuple[Path, Path]:
    """`<stem>.csv` and `<stem>.png` in `folder`."""
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    csv_path = write_csv(curves, folder / f"{stem(curves)}.csv")
    figure = plot(curves)
    png_path = folder / f"{stem(curves)}.png"
    figure.savefig(png_path, dpi=120)
    plt.close(figure)
    return csv_path, png_path


def log_to_mlflow(curves: list[Curve], files: tuple[Path, ...], params: dict) -> None:
    """Metrics (ratios), params and the files, on the active MLflow run."""
    import mlflow

    mlflow.log_params(params)
    mlflow.log_metrics({f"ratio_{c.task}_{c.cell}_{c.stage}": min(c.ratio, 1e300) for c in curves})
    for path in files:
        mlflow.log_artifact(str(path), artifact_path="gradients")


# ------------------------------------------------------------------------------------------------
# the command


def jobs_from_args(args) -> list[Job]:
    """Validated jobs: one per task × cell (trained here), or one per `--run-id` (loaded)."""
    import cells
    from experiments.config import Config, load_config

    if args.samples < 1:
        raise ValueError(f"--samples must be >= 1, got {args.samples}")
    if args.run_id:
        jobs = []
        for run_id in args.run_id:
            config, units = run_config(run_id)
            check_task(config, f"--run-id {run_id}")
            jobs.append(Job(config, run_id, units))
        return jobs
    base = load_config(args.config) if args.config else Config()
    base = base.with_overrides(list(args.set)) if args.set else base
    jobs = []
    for task in args.task:
        for cell in args.cell or cells.names():
            config = base.with_overrides([f"data.name={task}", f"model.cell={cell}"])
            check_task(config)
            jobs.append(Job(dataclasses.replace(config, tracking=dataclasses.replace(
                config.tracking, enabled=True, log_model=True))))
    return jobs


def check_model_logging(jobs: list[Job], train_models: bool) -> None:
    from experiments.recording import store

    if train_models and any(job.run_id is None for job in jobs) and not store.settings().log.model:
        raise ValueError(f"{store.settings().path} has log.model: false, so a "
                         "trained model could not be loaded back; set it to true or use --no-train")


def cmd_gradients(args) -> int:
    """`rnnlab gradients`: measure, plot, write CSV + PNG, log them to MLflow."""
    import mlflow

    from experiments.recording import store

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    train_models = not args.no_train
    store.configure()
    jobs = jobs_from_args(args)  # every name and value checked before any run starts
    check_model_logging(jobs, train_models)
    first = jobs[0].config
    experiment = store.ensure_experiment(store.experiment_name(dataclasses.replace(
        first, model=dataclasses.replace(first.model, cell="all"))))
    tasks = list(dict.fromkeys(job.config.data.name for job in jobs))
    name = f"gradients-{'-'.join(tasks)}-T{first.data.length}"
    tags = {**store.base_tags(), ROLE_TAG: "gradients", TASK_TAG: ",".join(tasks)}
    with mlflow.start_run(experiment_id=experiment, run_name=name, tags=tags) as active:
        curves = measure(jobs, samples=args.samples, train_models=train_models,
                         parent_run_id=active.info.run_id)
        files = write_outputs(curves, Path(args.output))
        log_to_mlflow(curves, files, {
            "tasks": ",".join(tasks), "cells": ",".join(dict.fromkeys(j.config.model.cell for j in jobs)),
            "data.length": first.data.length, "samples": args.samples, "trained": train_models,
            "source_runs": ",".join(j.run_id for j in jobs if j.run_id) or "trained here"})
    print(f"rnnlab gradients: run {active.info.run_id}; wrote {files[0]} and {files[1]}")
    return 0
