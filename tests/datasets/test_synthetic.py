"""Statistical and structural tests of the long-dependency generators."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

import datasets
from datasets import DataConfig
from datasets.synthetic import adding, copy_memory, reber, spike_timing, temporal_order

TASKS = {
    "adding": (adding, {}),
    "copy": (copy_memory, {}),
    "temporal_order": (temporal_order, {"variant": "3"}),
    "reber": (reber, {}),
    "spike_timing": (spike_timing, {"variant": "classes"}),
}


def rng(seed=0):
    return np.random.default_rng(seed)


@pytest.mark.parametrize("name", TASKS)
def test_same_seed_same_data_and_splits_differ(name):
    config = DataConfig(name=name, length=40, num_train=64, num_val=64, num_test=64, batch_size=64)
    first = [next(iter(d)) for d in datasets.load(config)[1:3]]  # val, test: unshuffled
    again = [next(iter(d)) for d in datasets.load(config)[1:3]]
    for a, b in zip(first, again):
        assert all(np.array_equal(x, y) for x, y in zip(a, b))
    val_x, test_x = first[0][0].numpy(), first[1][0].numpy()
    assert not np.array_equal(val_x, test_x)
    other = [next(iter(d)) for d in datasets.load(DataConfig(**{**vars(config), "seed": 1}))[1:2]]
    assert not np.array_equal(other[0][0].numpy(), val_x)


@pytest.mark.parametrize("name", TASKS)
def test_batches_match_the_spec(name):
    train, _, _, spec = datasets.load(DataConfig(name=name, length=30, num_train=20, batch_size=8))
    x, _, *weights = next(iter(train))
    assert x.shape[:2] == (8, spec.sequence_length)
    if spec.input_encoding == "features":
        assert x.shape[2] == spec.input_dim
    else:
        assert 0 < x.numpy().max() < spec.input_dim  # id 0 is padding only
    assert spec.baseline is not None and spec.solved_metric and spec.solved_threshold
    assert bool(weights) == (name in ("copy", "reber"))
    info = datasets.info(DataConfig(name=name))
    assert info["sizes"] == {"train": 10000, "val": 1000, "test": 1000}


def test_adding_markers_one_per_half_target_is_their_sum_and_baseline_is_one_sixth():
    x, y = adding.generate(20000, 50, rng())
    markers = x[..., 1]
    assert np.array_equal(markers.sum(1), np.full(20000, 2.0))
    assert np.array_equal(markers[:, :25].sum(1), np.ones(20000))
    assert np.allclose(y[:, 0], (x[..., 0] * markers).sum(1), atol=1e-6)
    assert abs(np.mean((y - 1.0) ** 2) - adding.BASELINE_MSE) < 0.006
    assert adding.spec(DataConfig()).baseline == pytest.approx(0.1667, abs=1e-4)


def test_copy_layout_and_keras_weighted_loss_of_the_memoryless_strategy_is_the_baseline():
    import keras

    length = 30
    x, y, w = copy_memory.generate(256, length, rng())
    assert x.shape == y.shape == w.shape == (256, length + 20)
    assert np.array_equal(y[:, -10:], x[:, :10]) and set(np.unique(x[:, :10])) <= set(range(1, 9))
    assert np.all(x[:, length + 9] == copy_memory.DELIMITER)
    assert np.all(x[:, 10 : length + 9] == copy_memory.BLANK) and np.all(x[:, -10:] == 9)
    assert np.all(y[:, :-10] == 0) and np.array_equal(
        w[0], np.r_[np.zeros(length + 10), np.ones(10)]
    )
    # blanks certain where no symbol is recalled, uniform over the 8 symbols where one is
    probs = np.zeros((256, length + 20, 9), np.float32)
    probs[:, :-10, 0] = 1.0
    probs[:, -10:, 1:] = 1.0 / 8
    loss = keras.losses.SparseCategoricalCrossentropy()(y, probs, sample_weight=w)
    assert float(loss) == pytest.approx(copy_memory.baseline(length), rel=1e-4)
    assert copy_memory.baseline(length) == pytest.approx(10 * math.log(8) / (length + 20))


@pytest.mark.parametrize("variant, windows", [("2", [(10, 20), (50, 60)]),
                                              ("3", [(10, 20), (33, 43), (66, 76)])])  # fmt: skip
def test_temporal_order_symbols_sit_in_the_papers_windows_and_classes_are_uniform(variant, windows):
    x, y = temporal_order.generate(8000, 100, rng(), variant=variant)
    assert np.all(x[:, 0] == temporal_order.B) and np.all(x[:, -1] == temporal_order.E)
    rows, positions = np.nonzero(x >= temporal_order.X)
    assert np.array_equal(np.bincount(rows), np.full(8000, len(windows)))
    positions = positions.reshape(8000, len(windows)) + 1  # 1-based, as in the paper
    for k, (lo, hi) in enumerate(windows):
        assert positions[:, k].min() == lo and positions[:, k].max() == hi
    bits = (x[x >= temporal_order.X] - temporal_order.X).reshape(8000, len(windows))
    assert np.array_equal(y, bits @ (2 ** np.arange(len(windows))[::-1]))
    shares = np.bincount(y) / len(y)
    assert np.allclose(shares, 1 / 2 ** len(windows), atol=0.03)


EMBEDDED_REBER = re.compile(
    r"B(?:T(R)T|P(R)P)E".replace("R", r"B(?:(?:TS*X|PT*VP)(?:XT*VP)*(?:S|XT*VV)|PT*VV)E")
)


def strings(x):
    return ["".join(reber.SYMBOLS[i - 1] for i in row if i) for row in x]


def test_reber_strings_are_grammatical_and_targets_hold_the_next_symbol():
    x, y, w = reber.generate(3000, 30, rng())
    texts = strings(x)
    for row, text in enumerate(texts[:500]):
        full = text + "E"  # the final E is never an input
        assert EMBEDDED_REBER.fullmatch(full), full
        steps = len(text)
        assert np.array_equal(w[row], np.r_[np.ones(steps), np.zeros(30 - steps)])
        for t in range(steps):  # the symbol that comes next is always allowed
            assert y[row, t, reber.SYMBOLS.index(full[t + 1])] == 1.0
        second_to_last = np.zeros(7)
        second_to_last[reber.SYMBOLS.index(full[1])] = 1.0
        assert np.array_equal(y[row, steps - 2], second_to_last)  # needs the long memory
    assert not y[w == 0].any() and np.all(y[w == 1].sum(-1) >= 1)
    assert max(len(t) for t in texts) <= 30  # longer strings were redrawn
    assert 0.4 < np.mean([t[1] == "T" for t in texts]) < 0.6


def test_reber_success_needs_every_step_right_and_ignores_padding():
    _, y, w = reber.generate(6, 20, rng())
    perfect = np.where(y > 0, 0.9, 0.1) + 0.05 * (w == 0)[..., None]  # padding: any value
    assert np.asarray(reber.success(y, perfect)).tolist() == [1.0] * 6
    steps = w.sum(1).astype(int)
    wrong = perfect.copy()
    wrong[0, steps[0] - 2] = 0.9 - wrong[0, steps[0] - 2]  # swap the T/P guess on string 0
    assert np.asarray(reber.success(y, wrong)).tolist() == [0.0] + [1.0] * 5


@pytest.mark.parametrize("length", [10, 101])
def test_spike_delay_is_the_gap_between_the_two_spikes_and_baseline_is_its_variance(length):
    x, y = spike_timing.generate(20000, length, rng())
    rows, times = np.nonzero(x[..., 0])
    times = times.reshape(-1, 2)
    top = spike_timing.max_delay(length)
    delay = times[:, 1] - times[:, 0]
    assert len(rows) == 40000 and np.allclose(y[:, 0], delay / top)
    assert delay.min() == 1 and delay.max() == top and times.max() < length
    spec = spike_timing.spec(DataConfig(name="spike_timing", length=length))
    assert abs(np.mean((y - y.mean()) ** 2) - spec.baseline) < 0.004
    _, classes = spike_timing.generate(20000, length, rng(), variant="classes")
    assert np.array_equal(classes, delay - 1)


@pytest.mark.parametrize("name, key", [("temporal_order", "variant"), ("spike_timing", "variant")])
def test_unknown_variant_names_task_key_and_choices(name, key):
    with pytest.raises(ValueError, match=f"{name}: '{key}' must be one of the choices, got 'x'; valid: "):
        datasets.get(name).spec(DataConfig(name=name, variant="x"))


def test_too_short_length_is_refused():
    with pytest.raises(ValueError, match="reber: length T must be >= 8"):
        reber.generate(2, 5, rng())
