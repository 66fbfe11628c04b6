"""What one run records in MLflow.

`tracker(config, ...)` gives `experiments.run` an `MlflowTracker` (tracking on) or a `NoTracker`
(off) with one interface, so the training path has no MLflow calls:

    with tracker(config, parent_run_id=..., tags=...) as t:   # starts the run; FAILED on error
        t.log_start(config, spec, family_name, result, splits)  # params, tags, config, datasets
        model.fit(..., callbacks=t.callbacks())                 # per-epoch metrics
        t.log_end(config, model, history, result, evaluation)   # test metrics, figures, model
        t.finish(result)                                        # rnnlab.status FINISHED/SKIPPED
    t.seconds, t.gc_seconds                                     # what tracking cost (None if off)
"""

from __future__ import annotations

import contextlib
import gc
import logging
import time
import warnings
from pathlib import Path

import keras
import mlflow
import pandas as pd
import yaml

import datasets
from datasets.base import CorruptDataError
from experiments.config import config_hash
from experiments.guards import Diverged, checkpoint_dir
from experiments.recording.claims import (
    Heartbeat,
    _claim,
    end_run_as,
    holder_tags,
    lease_tags,
    stop_reason,
)
from experiments.recording.store import (
    TrackingUnavailable,
    _end_run,
    _first_line,
    base_tags,
    configure,
    ensure_experiment,
    experiment_name,
    lost_insert_race,
    resume_run,
    retrying,
    settings,
    tracking_uri,
)
from experiments.recording.tags import (
    BASELINE_METRIC_TAG,
    CELL_TAG,
    CONFIG_HASH_TAG,
    FAMILY_TAG,
    REASON_TAG,
    RESUMED_EPOCH_TAG,
    RESUMED_FROM_TAG,
    SOLVED_METRIC_TAG,
    SOLVED_MODE_TAG,
    SOLVED_TAG,
    SOLVED_THRESHOLD_TAG,
    STATUS_TAG,
    TASK_TAG,
)
from experiments.results import RunResult
from experiments.tasks.settings import applicable, name_parts, setting_keys


def tracker(config, *, parent_run_id: str | None = None, tags: dict | None = None) -> NoTracker:
    """The tracker of one run: an `MlflowTracker` when `config.tracking.enabled`, else a `NoTracker`."""
    if not config.tracking.enabled:
        return NoTracker()
    return MlflowTracker(config, parent_run_id=parent_run_id, tags=tags)


class NoTracker:
    """Tracking off: every call records nothing; `run_id`, `seconds`, `gc_seconds` stay None."""

    run_id: str | None = None
    seconds: float | None = None
    gc_seconds: float | None = None
    checkpoint: Path | None = None  # where a tracked run keeps its BackupAndRestore checkpoint
    # a run resumed from its checkpoint: the epoch times its earlier sittings logged (their
    # finished epochs; an epoch cut short by the kill is trained again and counted then)
    earlier_seconds: float = 0.0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def log_start(self, config, spec, family_name: str, result: RunResult, splits) -> None:
        """Before training: params, tags, the config text, the dataset inputs."""

    def callbacks(self) -> list[keras.callbacks.Callback]:
        """Keras callbacks for `model.fit` (per-epoch metrics)."""
        return []

    def log_end(self, config, model, history: dict, result: RunResult, evaluation) -> None:
        """After testing: test metrics, figures, texts, the model."""

    def finish(self, result: RunResult) -> None:
        """The run's outcome as tags (`rnnlab.status`, `rnnlab.solved` or `rnnlab.reason`)."""


class MlflowTracker(NoTracker):
    """Records one run in MLflow (a child of `parent_run_id` if given) and times itself: `seconds`
    is the wall time of its MLflow calls, figures and model artifact, less the garbage-collection
    pauses in them (they scale with the process's heap, not with what tracking does); `gc_seconds`
    is all garbage collection while the run is open. Both are also logged as metrics."""

    def __init__(self, config, *, parent_run_id: str | None = None, tags: dict | None = None):
        self.config, self.parent_run_id, self.tags = config, parent_run_id, tags or {}
        self._gc = _GcClock()
        self.seconds = 0.0
        self._active = None
        self.checkpoint = checkpoint_dir(config_hash(config), tracking_uri())

    @property
    def gc_seconds(self) -> float:
        return self._gc.seconds

    @contextlib.contextmanager
    def _timed(self):
        start, paused = time.perf_counter(), self._gc.seconds
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - start - (self._gc.seconds - paused)

    def __enter__(self):
        claim = _claim.get() or {}
        self.resumed_from = claim.get("resumed_from")
        with self._timed():
            self._active = retrying(_start_run, self.config, self.parent_run_id, self.tags,
                                    claim.get("run_id"), what="starting the run")
        gc.callbacks.append(self._gc)
        self.run_id = self._active.info.run_id
        self._heartbeat = Heartbeat(self.run_id).start()
        return self

    def __exit__(self, kind, err, tb):
        """FINISHED; KILLED with the signal on Ctrl-C / SIGTERM; FAILED with the error's first line
        (e.g. "diverged at epoch 3"); left RUNNING when the store itself is gone (its lease then
        expires, the next sweep marks it KILLED and resumes from the checkpoint)."""
        self._heartbeat.stop()
        gc.callbacks.remove(self._gc)
        if isinstance(err, TrackingUnavailable):
            return False
        if err is None:
            status, reason = "FINISHED", None
        elif isinstance(err, KeyboardInterrupt):
            status, reason = "KILLED", stop_reason(err)
        else:
            # Diverged and CorruptDataError say in one line what happened / what to do
            status, reason = "FAILED", str(err) if isinstance(err, (Diverged, CorruptDataError)) \
                else _first_line(err)
        with self._timed():
            retrying(_end_run, self.run_id, status, what=f"ending run {self.run_id}")
            if status != "FINISHED":  # finish() wrote the tags of a finished run
                end_run_as(self.run_id, status, reason)
        return False

    def copy_history(self, first_epoch: int) -> None:
        """Log the epochs before `first_epoch` that the killed run `resumed_from` recorded, so a run
        resumed from its checkpoint holds every epoch once."""
        if not self.resumed_from:
            return
        client = mlflow.MlflowClient(tracking_uri())
        old = retrying(client.get_run, self.resumed_from, what="reading the killed run")
        found = [m for key in old.data.metrics if key not in ("param_count", "baseline")
                 for m in retrying(client.get_metric_history, self.resumed_from, key,
                                   what="reading the killed run") if m.step < first_epoch]
        if found:
            retrying(client.log_batch, self.run_id, metrics=found, what="copying resumed epochs")
        self.earlier_seconds = sum(m.value for m in found if m.key == "epoch_time_s")
        retrying(mlflow.set_tags, {RESUMED_FROM_TAG: self.resumed_from,
                                   RESUMED_EPOCH_TAG: first_epoch},
                 what="tagging the resumed run")

    def log_start(self, config, spec, family_name: str, result: RunResult, splits) -> None:
        with self._timed():
            retrying(_log_start, config, spec, family_name, result, splits, what="logging params")

    def callbacks(self) -> list[keras.callbacks.Callback]:
        return [EpochLogger(self)]

    def log_end(self, config, model, history: dict, result: RunResult, evaluation) -> None:
        with self._timed():
            retrying(_log_end, config, model, history, result, evaluation, what="logging results")
        retrying(mlflow.log_metrics, {"tracking_time_s": self.seconds, "gc_time_s": self.gc_seconds},
                 what="logging tracking time")

    def finish(self, result: RunResult) -> None:
        with self._timed():
            if result.status == "SKIPPED":
                tags = {STATUS_TAG: "SKIPPED",
                        REASON_TAG: (result.reason or "")[:5000]}
            else:
                tags = {STATUS_TAG: result.status,
                        SOLVED_TAG: str(result.solved)}
            retrying(mlflow.set_tags, tags, what="tagging the run's outcome")


class _GcClock:
    """Wall time of Python's garbage collections while registered in `gc.callbacks`.

    With TensorFlow loaded a full collection scans ~10^6 objects; it lands in whatever code
    happens to allocate at that moment (see docs/performance.md).
    """

    def __init__(self):
        self.seconds = 0.0
        self._start = None

    def __call__(self, phase, info):
        if phase == "start":
            self._start = time.perf_counter()
        elif self._start is not None:
            self.seconds += time.perf_counter() - self._start
            self._start = None


class EpochLogger(keras.callbacks.Callback):
    """Logs `train_<m>`, `val_<m>`, `epoch_time_s`, `step_time_ms` with step=epoch.

    Synchronously: MLflow's asynchronous logging queue makes `end_run` wait to flush it
    (see docs/performance.md).
    """

    def __init__(self, tracker: MlflowTracker):
        super().__init__()
        self.tracker = tracker

    def on_train_begin(self, logs=None):
        self._first = True

    def on_epoch_begin(self, epoch, logs=None):
        if self._first and epoch > 0:  # resumed from a checkpoint (BackupAndRestore)
            self.tracker.copy_history(epoch)
        self._first = False
        self._start = time.perf_counter()
        self._steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._start
        with self.tracker._timed():
            metrics = {(k if k.startswith("val_") else f"train_{k}"): float(v)
                       for k, v in (logs or {}).items()}
            metrics["epoch_time_s"] = seconds
            metrics["step_time_ms"] = 1000.0 * seconds / max(self._steps, 1)
            retrying(mlflow.log_metrics, metrics, step=epoch, what=f"logging epoch {epoch}")


def _start_run(config, parent_run_id: str | None, tags: dict,
               claimed_id: str | None = None) -> mlflow.ActiveRun:
    """Start the MLflow run of `config` (in the parent's experiment when it has a parent), or
    resume the child `claimed_id` a sweep claimed for it."""
    configure()
    if parent_run_id:
        experiment_id = mlflow.MlflowClient().get_run(parent_run_id).info.experiment_id
    else:
        experiment_id = ensure_experiment(experiment_name(config))
    chash = config_hash(config)
    all_tags = {
        **base_tags(),
        TASK_TAG: config.data.name,
        CELL_TAG: config.model.cell,
        CONFIG_HASH_TAG: chash,
        STATUS_TAG: "RUNNING",
        **lease_tags(),
        **holder_tags(),
        **tags,
    }
    name = config.tracking.run_name or run_name(config)
    if claimed_id:
        return resume_run(claimed_id, nested=True, run_name=name, tags=all_tags)
    return mlflow.start_run(
        experiment_id=experiment_id,
        run_name=name,
        parent_run_id=parent_run_id,
        nested=parent_run_id is not None,
        tags=all_tags,
    )


def run_name(config) -> str:
    """`task-T<length>-cell-seed<seed>` (T only for the generated tasks; the task's declared keys
    set to other than their defaults, `tasks.settings.name_parts`: attention and Luong's ablations
    for translation): readable in the MLflow UI's run list, e.g. `adding-T50-lstm-seed0`,
    `multi30k-luong-nofeed-deep-gru-seed0`."""
    parts = [config.data.name]
    if "data.length" in setting_keys(config.data.name):  # the task declares T a setting
        parts.append(f"T{config.data.length}")
    parts += name_parts(config)
    return "-".join([*parts, config.model.cell, f"seed{config.train.seed}"])


def _log_start(config, spec, family_name: str, result: RunResult, splits) -> None:
    log = settings().log
    # the keys this run takes (the task's declaration: experiments/tasks/settings.py)
    params = {k: "None" if v is None else v for k, v in applicable(config).items()}
    mlflow.log_params({**params, "model.units_used": result.units,
                       "model.projected_used": result.projected})
    metrics = {"param_count": result.param_count}
    tags = {FAMILY_TAG: family_name}
    if spec.baseline is not None:
        metrics["baseline"] = spec.baseline
        tags[BASELINE_METRIC_TAG] = spec.baseline_metric
    if spec.solved_metric:
        tags[SOLVED_METRIC_TAG] = spec.solved_metric
        tags[SOLVED_THRESHOLD_TAG] = str(spec.goal.threshold)  # for the report
        tags[SOLVED_MODE_TAG] = spec.goal.mode
    mlflow.log_metrics(metrics)
    mlflow.set_tags(tags)
    if log.config:
        mlflow.log_text(yaml.safe_dump(config.to_dict(), sort_keys=False), "config.yaml")
    if log.datasets:
        _log_dataset_inputs(config, spec, splits)


def _log_dataset_inputs(config, spec, splits) -> None:
    """One MLflow dataset input per split: a one-row summary (name, source, size), not the data."""
    source = "generated" if spec.input_encoding != "embedding" else str(
        datasets.base.data_dir(config.data.data_dir))
    found, contexts = [], ["training", "validation", "testing"]
    for split, ds in zip(("train", "val", "test"), splits):
        summary = pd.DataFrame([{
            "dataset": spec.name,
            "split": split,
            "source": source,
            "batches": int(ds.cardinality()),
            "batch_size": config.data.batch_size,
            "sequence_length": spec.sequence_length,
            "input_dim": spec.input_dim,
            "data_config": str(sorted(vars(config.data).items())),
        }])
        with warnings.catch_warnings():  # MLflow's hints on source kinds and integer schemas
            warnings.simplefilter("ignore", UserWarning)
            found.append(mlflow.data.from_pandas(summary, source=source, name=f"{spec.name}-{split}"))
    for attempt in (1, 2, 3):  # a run of another process may insert the same dataset meanwhile
        try:
            with warnings.catch_warnings():  # the schema is inferred here
                warnings.simplefilter("ignore", UserWarning)
                mlflow.log_inputs(found, contexts=contexts, tags_list=[None] * len(found))
            return
        except mlflow.exceptions.MlflowException as err:
            if attempt == 3 or not lost_insert_race(err):
                raise


def _log_end(config, model, history: dict, result: RunResult, evaluation) -> None:
    log = settings().log
    final = {f"test_{k}": v for k, v in result.metrics.items()}
    final["train_time_s"] = result.train_time_s
    if result.solved is not None:
        final["solved"] = float(result.solved)
    mlflow.log_metrics(final)
    if log.plots:
        mlflow.log_figure(learning_curves(history), "plots/learning_curves.png")
        for path, figure in evaluation.figures.items():
            mlflow.log_figure(figure, path)
    for path, text in evaluation.texts.items():
        mlflow.log_text(text, path)
    if log.model and config.tracking.log_model:
        log_model(model)
    _close_figures()


def import_model_flavor() -> None:
    """Import MLflow's Keras flavor (about 1 s of one-off imports) up front: a sweep does it before
    its first run, so that run's record does not carry a process's start-up as tracking cost."""
    import mlflow.keras  # noqa: F401


def log_model(model) -> None:
    """The model with MLflow's Keras flavor, name "model": `mlflow.keras.load_model(
    "runs:/<run_id>/model")` loads it back (after `import cells`, which registers the cells)."""
    import mlflow.keras  # the flavor module is not imported by `import mlflow`

    # MLflow's hints on the signature and input example we do not give (a warning and a log line
    # per run): the model's inputs are described by its own config.
    hints = logging.getLogger("mlflow.keras.save")
    level = hints.level
    hints.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            # Requirements given, not inferred: inferring them runs the model in a subprocess.
            mlflow.keras.log_model(model, name="model",
                                   pip_requirements=[f"keras=={keras.__version__}"])
    finally:
        hints.setLevel(level)


def learning_curves(history: dict):
    """One panel per metric: train and validation against epoch (integer ticks); a metric equal to
    the loss (adding: the loss is the MSE) is named in the loss panel, not drawn twice."""
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()
    names = [k for k in history if not k.startswith("val_")]
    same = [k for k in names if k != "loss" and history[k] == history.get("loss")]
    names = [k for k in names if k not in same]
    width = 4 * len(names)
    fig, axes = plt.subplots(1, len(names), figsize=(width, 3), squeeze=False)
    for ax, name in zip(axes[0], names):
        epochs = range(1, len(history[name]) + 1)
        ax.plot(epochs, history[name], marker="o", label="train")
        if f"val_{name}" in history:
            ax.plot(epochs, history[f"val_{name}"], marker="o", label="val")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{name} (= {', '.join(same)})" if name == "loss" and same else name)
        ax.legend()
    # Fixed margins (inches): tight_layout would draw the figure once more, doubling its cost.
    fig.subplots_adjust(left=0.9 / width, right=1 - 0.15 / width, bottom=0.16, top=0.9, wspace=0.35)
    return fig


def pyplot():
    """matplotlib.pyplot on the Agg backend; imported on first use (it costs start-up time)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _close_figures() -> None:
    pyplot().close("all")
