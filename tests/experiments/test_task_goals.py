"""Every task's metric, baseline and solved rule, pinned through the experiments' own scoring.

Each predictor's outputs go through a Keras identity model compiled with the task family's
`compile_args`, then `model.evaluate` and the family's `evaluate` (scorers), and the goal's
`solved` — the path `experiments.run` takes. An oracle must be solved with the metric at its
best; a chance predictor must not be solved, with the metric at the documented baseline.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

import datasets
from datasets import DataConfig
from datasets.base import DataSpec, Goal, to_dataset
from datasets.errors import ConfigError
from datasets.imdb import GOAL as IMDB_GOAL
from datasets.synthetic import reber
from experiments.config import ModelConfig, TrainConfig
from experiments.tasks import family_for
from experiments.tasks.common import check_goal

N = 1000


def scored(spec, y_pred, y, w=None) -> tuple[dict, bool | None]:
    """Test metrics and the solved flag of predictions `y_pred`, as a run computes them."""
    family = family_for(spec)
    check_goal(spec, family)
    inputs = keras.Input(y_pred.shape[1:])
    model = keras.Model(inputs, keras.layers.Identity()(inputs))
    model.compile(**family.compile_args(spec))
    test = to_dataset(y_pred.astype("float32"), y, 250, None, w)
    metrics = model.evaluate(test, return_dict=True, verbose=0)
    metrics.update(family.evaluate(model, test, spec, TrainConfig()).metrics)
    import matplotlib.pyplot as plt

    plt.close("all")
    return metrics, spec.goal.solved(metrics)


def held_out(name, length, **kw):
    sizes = {"num_train": 10, "num_val": 10, "num_test": N, "batch_size": N}
    config = DataConfig(name=name, length=length, **{**sizes, **kw})
    _, _, test, spec = datasets.load(config)
    _, y, *w = (np.asarray(part) for part in next(iter(test)))
    return spec, y, (w[0] if w else None)


def best(spec) -> float:
    return 1.0 if spec.goal.mode != "min" else 0.0


def at_chance(spec, metrics, name, tolerance):
    chance = {m.name: m.chance for m in spec.scorers}
    expected = spec.goal.baseline if name == spec.goal.baseline_metric else chance[name]
    assert metrics[name] == pytest.approx(expected, abs=tolerance), name


def test_adding():
    spec, y, _ = held_out("adding", 30)
    metrics, solved = scored(spec, y, y)
    assert solved and metrics["mse"] == pytest.approx(best(spec), abs=1e-9)
    metrics, solved = scored(spec, np.ones_like(y), y)  # the mean of the target
    assert solved is False
    at_chance(spec, metrics, "mse", 0.02)


@pytest.mark.parametrize("variant", ["2", "3"])
def test_temporal_order(variant):
    spec, y, _ = held_out("temporal_order", 30, variant=variant)
    classes = spec.num_classes
    metrics, solved = scored(spec, 20.0 * np.eye(classes)[y], y)
    assert solved and metrics["accuracy"] == 1.0
    guess = np.random.default_rng(0).integers(0, classes, len(y))
    metrics, solved = scored(spec, np.eye(classes)[guess], y)
    assert solved is False
    at_chance(spec, metrics, "accuracy", 0.05)
    uniform, _ = scored(spec, np.zeros((len(y), classes)), y)
    assert uniform["loss"] == pytest.approx(spec.extras["chance_loss"], rel=1e-4)


def test_copy_trains_and_scores_every_output_and_solves_on_recall():
    length = 20
    spec, y, w = held_out("copy", length)
    assert w is None  # every one of the T + 20 outputs counts
    oracle = 20.0 * np.eye(9)[y]
    metrics, solved = scored(spec, oracle, y)
    assert solved and metrics["recall_accuracy"] == 1.0 and metrics["accuracy"] == 1.0
    assert metrics["loss"] < 1e-6
    memoryless = np.zeros((*y.shape, 9))
    memoryless[:, :-10, 0] = 1.0
    memoryless[:, -10:, 1:] = 1.0 / 8
    metrics, solved = scored(spec, np.log(np.maximum(memoryless, 1e-30)), y)
    assert solved is False
    assert metrics["loss"] == pytest.approx(spec.goal.baseline, rel=1e-3)
    assert spec.goal.baseline == pytest.approx(10 * math.log(8) / (length + 20))
    at_chance(spec, metrics, "recall_accuracy", 0.03)  # ties go to symbol 1: right 1 in 8
    # perfect recall, wrong blanks: trained and scored now, so neither loss 0 nor accuracy 1
    blanks_wrong = oracle.copy()
    blanks_wrong[:, :-10] = 20.0 * np.eye(9)[5]
    metrics, solved = scored(spec, blanks_wrong, y)
    assert metrics["recall_accuracy"] == 1.0 and metrics["loss"] > 10
    assert metrics["accuracy"] == pytest.approx(10 / (length + 20))


@pytest.mark.parametrize("variant", ["regression", "classes"])
def test_spike_timing_solves_only_when_every_answer_is_within_half_a_step(variant):
    spec, y, _ = held_out("spike_timing", 100, variant=variant)
    top = spec.extras["max_delay"]
    delay = (np.round(y[:, 0] * top) if variant == "regression" else y + 1).astype(int)

    def answers(d):
        return (d / top)[:, None] if variant == "regression" else 20.0 * np.eye(top)[d - 1]

    metrics, solved = scored(spec, answers(delay), y)
    assert solved and metrics["on_time"] == 1.0
    guess = np.random.default_rng(0).integers(1, top + 1, len(y))
    metrics, solved = scored(spec, answers(guess), y)
    assert solved is False
    at_chance(spec, metrics, "on_time", 0.02)
    one_off = delay.copy()
    one_off[0] = delay[0] % top + 1  # one answer in a thousand a step off
    metrics, solved = scored(spec, answers(one_off), y)
    assert solved is False and metrics["on_time"] == pytest.approx(1 - 1 / N)
    if variant == "regression":  # within half a step everywhere, MSE large for the old rule
        near = answers(delay) + 0.45 / top
        metrics, solved = scored(spec, near, y)
        assert solved and metrics["mse"] > 0.5 * (0.45 / top) ** 2


@pytest.mark.parametrize("length, num_test", [(12, 50), (30, N)])
def test_reber_success_is_computed_on_the_test_set(length, num_test):
    """(At T = 12, 55 held-out strings already hold a third of the probability mass.)"""
    spec, y, w = held_out("reber", length, num_test=num_test, num_val=5)
    metrics, solved = scored(spec, y.copy(), y, w)
    assert solved and metrics["reber_success"] == 1.0 and metrics["accuracy"] == 1.0
    # perfect except the memory of the second symbol: a coin flip between T and P after the
    # inner E (one step before the last input)
    memoryless = y.copy()
    rows = np.arange(len(y))
    lag_step = w.sum(1).astype(int) - 2
    flip = np.random.default_rng(0).random(len(y)) < 0.5
    t, p = reber.SYMBOLS.index("T"), reber.SYMBOLS.index("P")
    memoryless[rows[flip], lag_step[flip]] = 0.0
    memoryless[rows[flip], lag_step[flip], t] = y[rows[flip], lag_step[flip], p]
    memoryless[rows[flip], lag_step[flip], p] = y[rows[flip], lag_step[flip], t]
    metrics, solved = scored(spec, memoryless, y, w)
    assert solved is False
    at_chance(spec, metrics, "reber_success", 3 * math.sqrt(0.25 / num_test))
    # accuracy is averaged over the strings' steps only: padding predictions do not count
    padding_wrong = np.where((w == 0)[..., None], 1.0, y)
    metrics, _ = scored(spec, padding_wrong, y, w)
    assert metrics["accuracy"] == 1.0 and metrics["reber_success"] == 1.0


def test_sentiment_head():
    spec = DataSpec(name="imdb", output="binary", input_encoding="embedding", sequence_length=5,
                    input_dim=10, num_classes=2, goal=IMDB_GOAL)
    y = np.random.default_rng(0).integers(0, 2, N).astype("float32")
    metrics, solved = scored(spec, y[:, None], y)
    assert solved and metrics["accuracy"] == 1.0
    coin = np.random.default_rng(1).random(N)[:, None]
    metrics, solved = scored(spec, coin, y)
    assert solved is False
    at_chance(spec, metrics, "accuracy", 0.05)


@pytest.mark.parametrize("name", ["bleu", "loss_x"])
def test_a_goal_on_a_metric_nobody_computes_is_refused_before_training(name):
    spec = DataSpec(name="toy", output="sequence_multilabel", input_encoding="one_hot",
                    sequence_length=4, input_dim=5, num_classes=3, goal=Goal(name, 0.5))
    with pytest.raises(ValueError, match=f"goal's solved metric '{name}' is not computed by "
                                         "task family 'long_dependency'; computed: accuracy, loss"):
        check_goal(spec, family_for(spec))
    baseline = DataSpec(**{**vars(spec), "goal": Goal("accuracy", 0.5, baseline_metric="mse")})
    with pytest.raises(ValueError, match="goal's baseline metric 'mse'"):
        check_goal(baseline, family_for(baseline))


@pytest.mark.parametrize("name", datasets.names()[2:])
def test_every_generated_task_declares_a_goal_it_computes(name):
    spec = datasets.get(name).spec(DataConfig(name=name, length=20))
    check_goal(spec, family_for(spec))
    assert spec.goal.threshold is not None and spec.goal.baseline is not None


@pytest.mark.parametrize("name", ["copy", "reber"])
def test_bidirectional_is_refused_for_per_step_heads(name):
    spec = datasets.get(name).spec(DataConfig(name=name, length=20))
    with pytest.raises(ConfigError, match=f"dataset '{name}' .*'model.bidirectional' must be "
                                          "false here.*leaks the answer, got True"):
        family_for(spec).build(spec, ModelConfig(cell="gru", bidirectional=True), 4)


def test_bidirectional_per_step_run_exits_2_before_any_run(capsys, monkeypatch):
    from experiments import cli, run

    monkeypatch.setattr(run.recorder, "tracker", lambda *a, **k: pytest.fail("a run was tracked"))
    argv = ["run", "--task", "reber", "--cell", "lstm", "--set", "model.bidirectional=true"]
    assert cli.main(argv) == 2
    assert "dataset 'reber'" in capsys.readouterr().err
