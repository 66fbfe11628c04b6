"""Pieces every task family shares: the one recurrent-layer factory, input encodings, the
classification report, and unit matching by parameter count.

Every recurrent layer of every model is built by :func:`recurrent_layer`, so a faster
implementation can be switched in here, once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

import cells
from datasets.errors import ConfigError


@dataclass
class Evaluation:
    """What a family adds after `model.evaluate`: metrics (without the `test_` prefix),
    matplotlib figures and texts keyed by artifact path."""

    metrics: dict[str, float] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)


def recurrent_layer(
    model_cfg,
    units: int,
    *,
    return_sequences: bool,
    return_state: bool = False,
    go_backwards: bool = False,
    name: str | None = None,
) -> keras.layers.Layer:
    """`RNN(cell)` (or `ProjectedRNN(cell)`) for the configured cell: the only place one is made."""
    cell_kwargs = {"units": units}
    if model_cfg.dropout:
        cell_kwargs["dropout"] = model_cfg.dropout
    if model_cfg.recurrent_dropout:
        cell_kwargs["recurrent_dropout"] = model_cfg.recurrent_dropout
    forget_gate = getattr(cells.catalog.entry(model_cfg.cell), "forget_gate", False)
    if model_cfg.unit_forget_bias is not None and forget_gate:
        cell_kwargs["unit_forget_bias"] = model_cfg.unit_forget_bias
    cell = cells.get(model_cfg.cell, **cell_kwargs)
    layer = cells.ProjectedRNN if use_projected(model_cfg.projected) else keras.layers.RNN
    return layer(
        cell,
        return_sequences=return_sequences,
        return_state=return_state,
        go_backwards=go_backwards,
        name=name,
    )


def use_projected(setting: bool | str) -> bool:
    """`model.projected` resolved. "auto" picks the layer that measured faster where it runs:
    `cells.ProjectedRNN` on a GPU and under PyTorch, `keras.layers.RNN(cell)` on a CPU with
    TensorFlow or JAX (the measurements: docs/performance.md)."""
    if setting != "auto":
        return bool(setting)
    from experiments.recording.store import device  # here, not at the top: tracking loads MLflow

    return device() == "GPU" or keras.backend.backend() == "torch"


def recurrent_stack(x, model_cfg, units: int, *, return_sequences: bool, name: str = "rnn"):
    """`model_cfg.layers` recurrent layers (each optionally bidirectional) applied to `x`.

    Inner layers return sequences; the last returns what `return_sequences` asks for.
    """
    for i in range(model_cfg.layers):
        last = i == model_cfg.layers - 1
        layer = recurrent_layer(
            model_cfg, units, return_sequences=return_sequences or not last, name=f"{name}_{i}"
        )
        if model_cfg.bidirectional:
            layer = keras.layers.Bidirectional(layer, name=f"bi{name}_{i}")
        x = layer(x)
    return x


@keras.saving.register_keras_serializable(package="rnnlab")
class OneHot(keras.layers.Layer):
    """Token ids `(batch, T)` -> one-hot floats `(batch, T, depth)`."""

    def __init__(self, depth: int, **kwargs):
        super().__init__(**kwargs)
        self.depth = depth

    def call(self, inputs):
        return keras.ops.one_hot(keras.ops.cast(inputs, "int32"), self.depth)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.depth)

    def get_config(self):
        return {**super().get_config(), "depth": self.depth}


def _embed(spec, model_cfg):
    return keras.layers.Embedding(spec.input_dim, model_cfg.embedding_dim, mask_zero=True)


def _one_hot(spec, model_cfg):
    return OneHot(spec.input_dim)


ENCODINGS: dict[str, Callable] = {
    "embedding": _embed,
    "one_hot": _one_hot,
    "features": None,
}


def encoded_inputs(spec, model_cfg, name: str = "inputs"):
    """The model's `Input` and its encoded tensor `(batch, T, features)` for `spec.input_encoding`."""
    if spec.input_encoding not in ENCODINGS:
        raise ValueError(
            f"dataset '{spec.name}': unknown input_encoding '{spec.input_encoding}'; "
            f"valid: {', '.join(ENCODINGS)}"
        )
    if spec.input_encoding == "features":
        inputs = keras.Input((None, spec.input_dim), name=name)
        return inputs, inputs
    inputs = keras.Input((None,), dtype="int32", name=name)
    return inputs, ENCODINGS[spec.input_encoding](spec, model_cfg)(inputs)


def count_params(model: keras.Model) -> int:
    return int(sum(np.prod(w.shape) for w in model.weights if w.trainable))


def units_for(config, family, spec) -> int:
    """The units a run of `config` builds with: `model.units`, or matched to
    `model.match_params` parameters when that is set (`match_units`)."""
    if config.model.match_params is None:
        return config.model.units
    return match_units(lambda u: family.build(spec, config.model, u), config.model.match_params)


def match_units(build: Callable[[int], keras.Model], target: int, *, max_units: int = 4096) -> int:
    """The unit count whose model's trainable parameter count is closest to `target`.

    Every weight's shape is made of `units` and constants, at most two `units` factors
    (`W: d x 4u`, `U: u x 4u`, `Dense: 2u x u`), so the count is `p(u) = a u^2 + b u + c`.
    Three builds give a, b, c; the root of `p(u) = target` is checked by building its two
    integer neighbours, so the answer rests on real counts, not on the fit.
    """
    def params(units: int) -> int:
        return count_params(build(units))

    p1, p2, p3 = params(1), params(2), params(3)
    a = (p3 - 2 * p2 + p1) / 2
    b = p2 - p1 - 3 * a
    c = p1 - a - b
    if a > 0:
        root = (-b + math.sqrt(max(b * b - 4 * a * (c - target), 0.0))) / (2 * a)
    else:
        root = (target - c) / b
    low = int(min(max(math.floor(root), 1), max_units - 1))
    return min((low, low + 1), key=lambda u: abs(params(u) - target))


def classification_report(y_true, y_pred, num_classes: int | None,
                          labels: list[str] | None = None) -> Evaluation:
    """Confusion matrix (true rows, predicted columns) of outputs `y_pred` against `y_true`, as a
    figure, classes named by `labels` (IMDB: neg, pos). One output column means a single sigmoid
    unit (two classes)."""
    if y_pred.shape[-1] == 1:
        pred = (y_pred[..., 0] > 0.5).astype(int)
    else:
        pred = y_pred.argmax(-1)
    true = np.asarray(y_true).reshape(pred.shape).astype(int).ravel()
    size = max(num_classes or 2, 2)
    matrix = np.zeros((size, size), dtype=int)
    np.add.at(matrix, (true, pred.ravel()), 1)
    return Evaluation(figures={"plots/confusion_matrix.png": confusion_figure(matrix, labels)})


def confusion_figure(matrix: np.ndarray, labels: list[str] | None = None):
    """Counts, true class by row and predicted by column, ticks named by `labels` (IMDB: neg, pos)."""
    import matplotlib  # on first figure: matplotlib costs start-up time

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(matrix)
    fig, ax = plt.subplots(figsize=(1.2 + 0.5 * n, 1 + 0.5 * n))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_xticks(range(n), labels=labels)
    ax.set_yticks(range(n), labels=labels)
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class Head:
    """The output end of a sequence classifier / regressor.

    `per_step`: one output per time step (else after the last step); `size(spec)`: output units;
    `activation` of the output Dense; `loss()`, `metrics()` and `weighted_metrics()` make fresh
    Keras objects (the weighted ones see the split's sample weights, e.g. Reber's padding);
    `confusion`: the test report includes a confusion matrix.
    """

    per_step: bool
    size: Callable[[Any], int]
    activation: str | None
    loss: Callable[[], keras.losses.Loss]
    metrics: Callable[[], list]
    confusion: bool = False
    weighted_metrics: Callable[[], list] = list


def build_sequence_model(spec, model_cfg, units: int, head: Head) -> keras.Model:
    """inputs -> encoding -> recurrent stack -> Dense head (per step or after the last step)."""
    check_model(spec, model_cfg, head)
    inputs, x = encoded_inputs(spec, model_cfg)
    x = recurrent_stack(x, model_cfg, units, return_sequences=head.per_step)
    if model_cfg.dropout:
        x = keras.layers.Dropout(model_cfg.dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(head.size(spec), activation=head.activation, name="head")(x)
    return keras.Model(inputs, outputs, name=f"{spec.name}_{model_cfg.cell}")


def check_model(spec, model_cfg, head: Head) -> None:
    """Refuse a bidirectional stack under a per-step head: its backward direction reads the
    inputs after step t, so the answer at t leaks in (copy: the recalled symbols; Reber: the
    next symbol)."""
    if head.per_step and model_cfg.bidirectional:
        raise ConfigError(
            f"dataset '{spec.name}' (output '{spec.output}', one answer per step)",
            "model.bidirectional",
            "must be false here: the backward direction sees the inputs after each step and "
            "leaks the answer",
            value=True,
        )


@dataclass(frozen=True)
class Family:
    """A task family: the DataSpec outputs it serves and how it builds, compiles and reports.

    `build(spec, model_cfg, units) -> keras.Model`;
    `compile_args(spec) -> {"loss", "metrics"[, "weighted_metrics"]}`;
    `evaluate(model, test, spec, train_cfg) -> Evaluation` (after `model.evaluate`);
    `metric_names(spec) -> set` of the test metrics the family computes (loss, compiled metrics,
    scorers, evaluate's own), or None when it does not say (then no goal can be checked);
    `check_model(spec, model_cfg)` raises ValueError for a model the task cannot use, or None.
    """

    name: str
    outputs: tuple[str, ...]
    build: Callable
    compile_args: Callable
    evaluate: Callable
    metric_names: Callable | None = None
    check_model: Callable | None = None


def check_goal(spec, family: Family) -> None:
    """Before training: the goal's solved and baseline metrics must be ones the task computes."""
    goal = spec.goal
    if goal is None:
        return
    names = family.metric_names(spec) if family.metric_names else None
    if names is None:
        raise ValueError(
            f"dataset '{spec.name}' declares a goal on '{goal.metric}', but task family "
            f"'{family.name}' does not say which metrics it computes (Family.metric_names)"
        )
    for role, metric in (("solved", goal.metric), ("baseline", goal.baseline_metric)):
        if metric not in names:
            raise ValueError(
                f"dataset '{spec.name}': the goal's {role} metric '{metric}' is not computed "
                f"by task family '{family.name}'; computed: {', '.join(sorted(names))}"
            )


def head_family(name: str, heads: dict[str, Head]) -> Family:
    """A family of sequence classifiers / regressors, one :class:`Head` per DataSpec output.

    Compiled: the head's loss, ``metrics`` and ``weighted_metrics``. After evaluation: the spec's
    ``scorers`` over the test predictions, the confusion matrix when the head has one, and the
    spec's ``extras["preprocess"]`` texts (IMDB: what `rnnlab predict` needs) to be logged.
    """

    def build(spec, model_cfg, units):
        return build_sequence_model(spec, model_cfg, units, heads[spec.output])

    def compile_args(spec):
        head = heads[spec.output]
        return {
            "loss": head.loss(),
            "metrics": head.metrics(),
            "weighted_metrics": head.weighted_metrics(),
        }

    def evaluate(model, test, spec, train_cfg):
        head = heads[spec.output]
        texts = dict(spec.extras.get("preprocess", {}))  # raw text -> input, for `rnnlab predict`
        if not (head.confusion or spec.scorers):
            return Evaluation(texts=texts)
        true, pred = predictions(model, test)
        report = Evaluation(metrics=score(spec.scorers, true, pred), texts=texts)
        if head.confusion:
            report.figures.update(classification_report(
                true, pred, spec.num_classes, spec.extras.get("label_names")).figures)
        return report

    def metric_names(spec):
        compiled = compile_args(spec)
        return {
            "loss",
            *(m.name for m in (*compiled["metrics"], *compiled["weighted_metrics"])),
            *(m.name for m in spec.scorers),
        }

    def check(spec, model_cfg):
        check_model(spec, model_cfg, heads[spec.output])

    return Family(name, tuple(heads), build, compile_args, evaluate, metric_names, check)


def compile_for_test(model, epochs: int, val, test) -> bool:
    """Switch `model`'s inference (fit's validation, `evaluate`, the families' predictions) to
    XLA where `cells.inference_jit` says it pays for this run: `epochs` validation passes and
    the test split evaluated and predicted (a split of unknown size counts 0). Training keeps
    its own setting. Returns whether inference is compiled."""
    return cells.compile_inference(model, batches=epochs * _batches(val) + 2 * _batches(test))


def _batches(split) -> int:
    size = split.cardinality() if hasattr(split, "cardinality") else -1
    return max(int(size), 0)


def predict_batch(model, x) -> np.ndarray:
    """`model.predict_on_batch` on one batch of a tf.data split, as NumPy. The batch's tensors go
    in as NumPy arrays: `fit` and `evaluate` convert tf.data batches for the JAX and PyTorch
    backends themselves, `predict_on_batch` does not (JAX refuses a TensorFlow tensor)."""
    return np.asarray(model.predict_on_batch(keras.tree.map_structure(np.asarray, x)))


def predictions(model, test) -> tuple[np.ndarray, np.ndarray]:
    """Targets and the model's outputs over the whole test split, concatenated."""
    true, pred = [], []
    for x, y, *_ in test:
        true.append(np.asarray(y))
        pred.append(predict_batch(model, x))
    return np.concatenate(true), np.concatenate(pred)


def score(scorers, y_true, y_pred) -> dict[str, float]:
    """Each scorer's mean over the test examples."""
    return {m.name: float(np.mean(np.asarray(m.fn(y_true, y_pred)))) for m in scorers}
