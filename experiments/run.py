"""The one training path: `run(config) -> dict`. Sweeps, the tuner and the CLI all call it.

    validate -> seed -> load data -> build model (units matched by parameter count if asked)
    -> model.fit (early stopping on val_loss) -> model.evaluate(test) -> family report -> MLflow

When the data files are missing, the run is recorded in MLflow with tag `rnnlab.status=SKIPPED`
and the one-line instruction as tag `rnnlab.reason`, and `run` returns status "SKIPPED".
"""

from __future__ import annotations

import contextlib
import gc
import math
import tempfile
import time
import warnings
from pathlib import Path

import keras
import mlflow
import yaml

import datasets
from datasets.base import MissingDataError
from experiments import tracking
from experiments.config import Config, config_hash, validate_names
from experiments.tasks import family_for
from experiments.tasks.common import count_params, match_units, use_projected
from experiments.tasks.translation import perplexity

TAG = tracking.TAG_PREFIX
OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "rmsprop": keras.optimizers.RMSprop,
    "sgd": keras.optimizers.SGD,
    "nadam": keras.optimizers.Nadam,
}


def run(config: Config, *, parent_run_id: str | None = None, tags: dict | None = None) -> dict:
    """Train and test `config` once; log to MLflow (a child of `parent_run_id` if given).

    Returns `status`, `run_id`, `task`, `cell`, `units`, `projected` (whether the recurrent
    layers were `cells.ProjectedRNN`), `param_count`, `test_<metric>`,
    `baseline`, `baseline_metric`, `solved`, `train_time_s`, `epochs`, `config_hash`, and
    `gc_time_s` (seconds of Python garbage collection during the run), and with tracking on
    `tracking_time_s` (seconds spent on MLflow calls, figures and the model artifact, less GC
    pauses); both are also logged as metrics, measured up to the last artifact. For a skipped
    run `status="SKIPPED"` and `reason`.
    """
    validate(config)
    result = {
        "task": config.data.name,
        "cell": config.model.cell,
        "config_hash": config_hash(config),
        "run_id": None,
    }
    watch, gc_before = TrackingTime(), GC_CLOCK.seconds
    with watch:  # starts the MLflow run (experiment lookup, tags)
        tracked = _tracked_run(config, parent_run_id, tags)
    with watch.around(tracked) as active:
        result["run_id"] = active.info.run_id if active else None
        try:
            result.update(_train_and_test(config, watch if active else None))
        except MissingDataError as err:
            reason = str(err).strip().replace("\n", " ")
            result.update(status="SKIPPED", reason=reason)
            _set_tags(active, {f"{TAG}status": "SKIPPED", f"{TAG}reason": reason[:5000]})
            return result
        except BaseException:
            _set_tags(active, {f"{TAG}status": "FAILED"})
            raise
        with watch:
            _set_tags(active, {f"{TAG}status": "FINISHED", f"{TAG}solved": str(result["solved"])})
    if active:
        result["tracking_time_s"] = watch.seconds
    result["gc_time_s"] = GC_CLOCK.seconds - gc_before
    return {"status": "FINISHED", **result}


class GcClock:
    """Total wall time of Python's garbage collections in this process (via `gc.callbacks`).

    With TensorFlow loaded a full collection scans ~10^6 objects and takes ~0.5 s; it lands in
    whatever code happens to allocate at that moment.
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


GC_CLOCK = GcClock()
gc.callbacks.append(GC_CLOCK)


class TrackingTime:
    """Wall time spent on tracking (MLflow calls, figures, the model artifact), summed, less
    the garbage-collection pauses that land in it (they scale with the whole process's heap,
    not with what tracking does).

    `with watch:` times a block; `watch.around(cm)` times entering and leaving `cm`.
    """

    def __init__(self):
        self.seconds = 0.0

    def __enter__(self):
        self._start, self._gc = time.perf_counter(), GC_CLOCK.seconds
        return self

    def __exit__(self, *exc):
        pauses = GC_CLOCK.seconds - self._gc
        self.seconds += time.perf_counter() - self._start - pauses
        return False

    @contextlib.contextmanager
    def around(self, context):
        with self:
            entered = context.__enter__()
        try:
            yield entered
        except BaseException as err:
            with self:
                if not context.__exit__(type(err), err, err.__traceback__):
                    raise
        else:
            with self:
                context.__exit__(None, None, None)


def validate(config: Config) -> None:
    """Check names against the registries before anything is loaded or trained."""
    config.validate()
    validate_names(config, "run")


def _train_and_test(config: Config, watch: TrackingTime | None) -> dict:
    """Train and test; with `watch` (tracking on) log to the active MLflow run, timing it."""
    gc_start = GC_CLOCK.seconds
    _seed(config.train)
    train, val, test, spec = datasets.load(config.data)
    family = family_for(spec)
    if config.model.attention and spec.output != "seq2seq":
        raise ValueError(
            f"model.attention={config.model.attention!r} applies to translation only; "
            f"dataset '{spec.name}' has output '{spec.output}' (set model.attention: null)"
        )
    units = _units(config, family, spec)
    _seed(config.train)
    model = family.build(spec, config.model, units)
    model.compile(
        optimizer=_optimizer(config.train),
        run_eagerly=config.train.run_eagerly,
        **family.compile_args(spec),
    )
    result = {"units": units, "param_count": count_params(model),
              "projected": use_projected(config.model.projected), **_baseline(spec)}
    if watch:
        with watch:
            _log_start(config, spec, result, (train, val, test))
    timer = EpochLogger(watch)
    start = time.perf_counter()
    history = model.fit(
        train,
        validation_data=val,
        epochs=config.train.epochs,
        callbacks=[timer, *_early_stopping(config.train)],
        verbose=config.train.verbose,
        shuffle=False,  # the loaders shuffle the training split themselves
    )
    result["train_time_s"] = time.perf_counter() - start
    result["epochs"] = len(history.epoch)
    test_metrics = model.evaluate(test, return_dict=True, verbose=0)
    report = family.evaluate(model, test, spec, config.train)
    metrics = {**test_metrics, **report.metrics}
    if spec.output == "seq2seq":
        metrics["perplexity"] = perplexity(test_metrics["loss"])
    result.update({f"test_{k}": float(v) for k, v in metrics.items()})
    result["solved"] = _solved(spec, result)
    if watch:
        with watch:
            _log_end(config, model, history.history, result, report)
        mlflow.log_metrics({"tracking_time_s": watch.seconds, "gc_time_s": GC_CLOCK.seconds - gc_start})
    return result


def _seed(train_cfg) -> None:
    keras.utils.set_random_seed(train_cfg.seed)
    if train_cfg.deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def _units(config: Config, family, spec) -> int:
    if config.model.match_params is None:
        return config.model.units
    return match_units(lambda u: family.build(spec, config.model, u), config.model.match_params)


def _optimizer(train_cfg) -> keras.optimizers.Optimizer:
    return OPTIMIZERS[train_cfg.optimizer](learning_rate=train_cfg.lr, clipnorm=train_cfg.clipnorm)


def _early_stopping(train_cfg) -> list:
    if train_cfg.early_stopping_patience is None:
        return []
    return [
        keras.callbacks.EarlyStopping(
            monitor="val_loss",
            patience=train_cfg.early_stopping_patience,
            restore_best_weights=True,
        )
    ]


def _baseline(spec) -> dict:
    return {"baseline": spec.baseline, "baseline_metric": spec.baseline_metric}


def _solved(spec, result: dict) -> bool | None:
    """Whether the test metric passed the task's threshold; None when the task has no rule."""
    if spec.solved_metric is None or spec.solved_threshold is None:
        return None
    value = result.get(f"test_{spec.solved_metric}")
    if value is None or math.isnan(value):
        return False
    if spec.solved_mode == "min":
        return value < spec.solved_threshold
    return value > spec.solved_threshold


class EpochLogger(keras.callbacks.Callback):
    """Times epochs and steps; with a `watch`, logs `train_<m>`, `val_<m>`, `epoch_time_s`,
    `step_time_ms` to the active MLflow run with step=epoch.

    Synchronously: MLflow's asynchronous logging would save ~10 ms an epoch but its queue
    polls with a 1 s timeout, so `end_run` waits ~1 s to flush it (measured, MLflow 3.17).
    """

    def __init__(self, watch: TrackingTime | None = None):
        super().__init__()
        self.watch = watch
        self.times: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        self._steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._start
        self.times.append(seconds)
        if not self.watch:
            return
        with self.watch:
            metrics = {(k if k.startswith("val_") else f"train_{k}"): float(v)
                       for k, v in (logs or {}).items()}
            metrics["epoch_time_s"] = seconds
            metrics["step_time_ms"] = 1000.0 * seconds / max(self._steps, 1)
            mlflow.log_metrics(metrics, step=epoch)


class _NoRun:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _tracked_run(config: Config, parent_run_id: str | None, tags: dict | None):
    """The MLflow run this config logs to (None when tracking is off)."""
    if not config.tracking.enabled:
        return _NoRun()
    tracking.configure()
    if parent_run_id:
        experiment_id = mlflow.MlflowClient().get_run(parent_run_id).info.experiment_id
    else:
        experiment_id = tracking.ensure_experiment(tracking.experiment_name(config))
    chash = config_hash(config)
    all_tags = {
        **tracking.base_tags(),
        f"{TAG}task": config.data.name,
        f"{TAG}cell": config.model.cell,
        f"{TAG}config_hash": chash,
        f"{TAG}status": "RUNNING",
        **(tags or {}),
    }
    name = config.tracking.run_name or f"{config.data.name}-{config.model.cell}-{chash[:6]}"
    return mlflow.start_run(
        experiment_id=experiment_id,
        run_name=name,
        parent_run_id=parent_run_id,
        nested=parent_run_id is not None,
        tags=all_tags,
    )


def _set_tags(active, tags: dict) -> None:
    if active is not None:
        mlflow.set_tags(tags)


def _log_start(config: Config, spec, result: dict, splits) -> None:
    log = tracking.settings().log
    params = {k: ("None" if v is None else v) for k, v in config.flat().items()}
    mlflow.log_params({**params, "model.units_used": result["units"],
                       "model.projected_used": result["projected"]})
    metrics = {"param_count": result["param_count"]}
    tags = {f"{TAG}family": family_for(spec).name}
    if spec.baseline is not None:
        metrics["baseline"] = spec.baseline
        tags[f"{TAG}baseline_metric"] = spec.baseline_metric
    if spec.solved_metric:
        tags[f"{TAG}solved_metric"] = spec.solved_metric
    mlflow.log_metrics(metrics)
    mlflow.set_tags(tags)
    if log.config:
        mlflow.log_text(yaml.safe_dump(config.to_dict(), sort_keys=False), "config.yaml")
    if log.datasets:
        _log_dataset_inputs(config, spec, splits)


def _log_dataset_inputs(config: Config, spec, splits) -> None:
    """One MLflow dataset input per split: a one-row summary (name, source, size), not the data."""
    import pandas as pd

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
    with warnings.catch_warnings():  # the schema is inferred here
        warnings.simplefilter("ignore", UserWarning)
        mlflow.log_inputs(found, contexts=contexts, tags_list=[None] * len(found))


def _log_end(config: Config, model, history: dict, result: dict, report) -> None:
    log = tracking.settings().log
    final = {k: v for k, v in result.items() if k.startswith("test_")}
    final["train_time_s"] = result["train_time_s"]
    if result["solved"] is not None:
        final["solved"] = float(result["solved"])
    mlflow.log_metrics(final)
    if log.plots:
        mlflow.log_figure(learning_curves(history), "plots/learning_curves.png")
        for path, figure in report.figures.items():
            mlflow.log_figure(figure, path)
    for path, text in report.texts.items():
        mlflow.log_text(text, path)
    if log.model and config.tracking.log_model:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.keras"
            model.save(path)
            mlflow.log_artifact(str(path), artifact_path="model")
    _close_figures(report)


def learning_curves(history: dict):
    """One panel per metric: train and validation against epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [k for k in history if not k.startswith("val_")]
    width = 4 * len(names)
    fig, axes = plt.subplots(1, len(names), figsize=(width, 3), squeeze=False)
    for ax, name in zip(axes[0], names):
        epochs = range(1, len(history[name]) + 1)
        ax.plot(epochs, history[name], marker="o", label="train")
        if f"val_{name}" in history:
            ax.plot(epochs, history[f"val_{name}"], marker="o", label="val")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.legend()
    # Fixed margins (inches): tight_layout would draw the figure once more, doubling its cost.
    fig.subplots_adjust(left=0.7 / width, right=1 - 0.15 / width, bottom=0.16, top=0.9, wspace=0.3)
    return fig


def _close_figures(report) -> None:
    import matplotlib.pyplot as plt

    plt.close("all")
