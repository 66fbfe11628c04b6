"""The one training path: `run(config) -> RunResult`. Sweeps, the tuner and the CLI all call it.

    validate -> seed -> load data -> build model (units matched by parameter count if asked)
    -> compile -> model.fit (early stopping on val_loss) -> model.evaluate(test) -> family report
    -> RunResult

all on one device, or on every local device with `train.distribution` (experiments/distribution.py).

What is recorded along the way (MLflow params, per-epoch metrics, figures, the model) is the
tracker's job (`experiments.recording.recorder`); with tracking off the tracker does nothing.

When the data files are missing, `run` returns status "SKIPPED" with the one-line instruction as
`reason` (a tracked run records both as tags `rnnlab.status` and `rnnlab.reason`). A NaN or
infinite loss raises `guards.Diverged` ("diverged at epoch N"); a tracked run resumes from its last
completed epoch after a kill (`guards.training_callbacks`).
"""

from __future__ import annotations

import time
from dataclasses import replace

import keras

import datasets
from datasets.base import MissingDataError
from experiments import distribution
from experiments.config import Config, config_hash, validate_names
from experiments.guards import training_callbacks
from experiments.memory import custom_gradients_released
from experiments.recording import recorder
from experiments.results import RunResult
from experiments.tasks import check_config, compile_for_test, family_for
from experiments.tasks.common import check_goal, count_params, units_for, use_projected

OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "rmsprop": keras.optimizers.RMSprop,
    "sgd": keras.optimizers.SGD,
    "nadam": keras.optimizers.Nadam,
}


def run(config: Config, *, parent_run_id: str | None = None, tags: dict | None = None) -> RunResult:
    """Train and test `config` once; tracked in MLflow (a child of `parent_run_id` if given) when
    `config.tracking.enabled`. A run that raises is recorded FAILED and the error propagates."""
    validate(config)
    # on every local device when train.distribution is set (its replica count tagged on the run)
    with distribution.replicas(config, "run") as placed, \
            recorder.tracker(config, parent_run_id=parent_run_id,
                             tags={**(tags or {}), **placed.tags}) as tracker:
        try:
            with custom_gradients_released():  # else TF keeps each run's graphs (experiments/memory.py)
                result = _train_and_test(config, tracker, placed)
        except MissingDataError as err:
            result = _identity(config, status="SKIPPED", reason=str(err).strip().replace("\n", " "))
        tracker.finish(result)
    return replace(result, run_id=tracker.run_id, tracking_time_s=tracker.seconds,
                   gc_time_s=tracker.gc_seconds)


def validate(config: Config) -> None:
    """Check names against the registries before anything is loaded or trained."""
    config.validate()
    validate_names(config, "run")
    check_config(config)


def _train_and_test(config: Config, tracker: recorder.NoTracker,
                    placed: distribution.Placement) -> RunResult:
    _seed(config.train)
    train, val, test, spec = datasets.load(config.data)
    placed.check_splits({"train": train, "validation": val, "test": test})
    family = family_for(spec)
    check_goal(spec, family)
    units = units_for(config, family, spec)
    model = build(config, family, spec, units)
    compile_for_test(model, config.train.epochs, val, test)  # XLA where it pays (cells/inference.py)
    built = _identity(config, units=units, param_count=count_params(model),
                      projected=use_projected(config.model.projected), **_baseline(spec))
    tracker.log_start(config, spec, family.name, built, (train, val, test))

    start = time.perf_counter()
    history = model.fit(
        train,
        validation_data=val,
        epochs=config.train.epochs,
        callbacks=[*tracker.callbacks(), *_early_stopping(config.train),
                   *training_callbacks(tracker.checkpoint)],  # NaN stops; resume after a kill
        verbose=config.train.verbose,
        shuffle=False,  # the loaders shuffle the training split themselves
    )
    train_time_s = time.perf_counter() - start + tracker.earlier_seconds  # + earlier sittings'

    test_metrics = model.evaluate(test, return_dict=True, verbose=0)
    evaluation = family.evaluate(model, test, spec, config.train)
    metrics = {k: float(v) for k, v in {**test_metrics, **evaluation.metrics}.items()}
    result = replace(built, metrics=metrics, solved=_solved(spec, metrics),
                     train_time_s=train_time_s,
                     # epochs trained in all: a run resumed by BackupAndRestore numbers its
                     # epochs from the checkpoint's, so len() would count this sitting's only
                     epochs=history.epoch[-1] + 1 if history.epoch else 0)
    tracker.log_end(config, model, history.history, result, evaluation)
    return result


def build(config: Config, family, spec, units: int) -> keras.Model:
    """The run's model, seeded, built and compiled exactly as `run` trains it (also what
    `benchmarks.translation_cost` times)."""
    _seed(config.train)
    model = family.build(spec, config.model, units)
    _compile(model, config, family, spec)
    return model


def _identity(config: Config, status: str = "FINISHED", **fields) -> RunResult:
    """A RunResult naming the run (task, cell, hash) with `fields` filled in."""
    return RunResult(status=status, run_id=None, task=config.data.name, cell=config.model.cell,
                     config_hash=config_hash(config), **fields)


def _seed(train_cfg) -> None:
    keras.utils.set_random_seed(train_cfg.seed)
    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf  # only under the TensorFlow backend (others may lack it)
    from tensorflow.python.framework.config import disable_op_determinism

    if train_cfg.jit_compile is True:  # Keras refuses XLA under op determinism; XLA's own
        disable_op_determinism()  # CPU programs are deterministic (tests/experiments/test_jit.py)
    elif train_cfg.deterministic:
        tf.config.experimental.enable_op_determinism()


def _compile(model, config: Config, family, spec) -> None:
    model.compile(
        optimizer=_optimizer(config.train),
        run_eagerly=config.train.run_eagerly,
        jit_compile=config.train.jit_compile,
        **family.compile_args(spec),
    )


def _optimizer(train_cfg) -> keras.optimizers.Optimizer:
    optimizer = OPTIMIZERS[train_cfg.optimizer](learning_rate=train_cfg.lr,
                                                clipnorm=train_cfg.clipnorm,
                                                global_clipnorm=train_cfg.global_clipnorm)
    return distribution.clip_after_summing(optimizer) if train_cfg.distribution else optimizer


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
    return {"baseline": spec.baseline, "baseline_metric": spec.baseline_metric,
            "solved_metric": spec.solved_metric}


def _solved(spec, metrics: dict) -> bool | None:
    """Whether the test metrics pass the task's goal; None when the task has no solved rule."""
    return spec.goal.solved(metrics) if spec.goal else None
