"""Statistical and structural tests of the long-dependency generators."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

import datasets
from datasets import DataConfig, synthetic
from datasets.errors import ConfigError
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
    train, _, _, spec = datasets.load(DataConfig(name=name, length=30, num_train=20, num_val=20,
                                                   num_test=20, batch_size=8))
    x, _, *weights = next(iter(train))
    assert x.shape[:2] == (8, spec.sequence_length)
    if spec.input_encoding == "features":
        assert x.shape[2] == spec.input_dim
    else:
        assert 0 < x.numpy().max() < spec.input_dim  # id 0 is padding only
    assert spec.goal.baseline is not None and spec.goal.threshold is not None
    assert bool(weights) == (name == "reber")
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


def test_copy_layout_and_keras_loss_over_all_outputs_of_the_memoryless_strategy_is_the_baseline():
    import keras

    length = 30
    x, y = copy_memory.generate(256, length, rng())
    assert x.shape == y.shape == (256, length + 20)
    assert np.array_equal(y[:, -10:], x[:, :10]) and set(np.unique(x[:, :10])) <= set(range(1, 9))
    assert np.all(x[:, length + 9] == copy_memory.DELIMITER)
    assert np.all(x[:, 10 : length + 9] == copy_memory.BLANK) and np.all(x[:, -10:] == 9)
    assert np.all(y[:, :-10] == 0)
    # blanks certain where no symbol is recalled, uniform over the 8 symbols where one is;
    # every one of the T + 20 outputs counts (no sample weights), as in Arjovsky et al.
    probs = np.zeros((256, length + 20, 9), np.float32)
    probs[:, :-10, 0] = 1.0
    probs[:, -10:, 1:] = 1.0 / 8
    loss = keras.losses.SparseCategoricalCrossentropy()(y, probs)
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


@pytest.mark.parametrize("length", [9, 30])
def test_reber_strings_are_grammatical_at_least_length_long_and_targets_hold_the_next_symbol(length):
    x, y, w = reber.generate(3000, length, rng())
    steps = length + reber.SLACK - 1
    assert x.shape == (3000, steps) and y.shape == (3000, steps, 7)
    texts = strings(x)
    for row, text in enumerate(texts[:500]):
        full = text + "E"  # the final E is never an input
        assert EMBEDDED_REBER.fullmatch(full), full
        used = len(text)
        assert np.array_equal(w[row], np.r_[np.ones(used), np.zeros(steps - used)])
        for t in range(used):  # the symbol that comes next is always allowed
            assert y[row, t, reber.SYMBOLS.index(full[t + 1])] == 1.0
        second_to_last = np.zeros(7)
        second_to_last[reber.SYMBOLS.index(full[1])] = 1.0
        assert np.array_equal(y[row, used - 2], second_to_last)  # needs the long memory
    assert not y[w == 0].any() and np.all(y[w == 1].sum(-1) >= 1)
    symbols = np.array([len(t) + 1 for t in texts])
    assert symbols.min() == length and symbols.max() <= length + reber.SLACK
    assert np.mean(symbols) < length + 8  # the tail after the forced loops is short
    assert 0.4 < np.mean([t[1] == "T" for t in texts]) < 0.6


def test_reber_success_is_the_papers_most_active_rule_and_ignores_padding():
    _, y, w = reber.generate(6, 9, rng())
    perfect = np.where(y > 0, 0.3, 0.1) + 0.5 * (w == 0)[..., None]  # padding: any value
    assert reber.success(y, perfect).tolist() == [1.0] * 6  # below 0.5, yet the most active
    steps = w.sum(1).astype(int)
    wrong = perfect.copy()
    wrong[0, steps[0] - 2] = 0.4 - wrong[0, steps[0] - 2]  # swap the T/P guess on string 0
    assert reber.success(y, wrong).tolist() == [0.0] + [1.0] * 5
    hedge = perfect.copy()
    hedge[1, steps[1] - 2, [1, 2]] = 0.3  # T and P equally active: not "the most active"
    assert reber.success(y, hedge).tolist() == [1.0, 0.0] + [1.0] * 4


@pytest.mark.parametrize("length", [10, 101])
def test_spike_delay_is_the_gap_between_the_two_spikes_and_baseline_is_its_variance(length):
    x, y = spike_timing.generate(20000, length, rng())
    rows, times = np.nonzero(x[..., 0])
    times = times.reshape(-1, 2)
    top = spike_timing.max_delay(length)
    delay = times[:, 1] - times[:, 0]
    assert len(rows) == 40000 and np.allclose(y[:, 0], delay / top)
    assert delay.min() == 1 and delay.max() == top and times.max() < length
    assert abs(np.mean((y - y.mean()) ** 2) - spike_timing.chance_mse(length)) < 0.004
    seen = len({(a, b) for a, b in times})  # all of them where there are few
    assert seen == spike_timing.distinct_inputs(length) if length == 10 else seen <= spike_timing.distinct_inputs(length)
    _, classes = spike_timing.generate(20000, length, rng(), variant="classes")
    assert np.array_equal(classes, delay - 1)


@pytest.mark.parametrize("name, key", [("temporal_order", "variant"), ("spike_timing", "variant")])
def test_unknown_variant_names_task_key_and_choices(name, key):
    with pytest.raises(ValueError, match=f"{name}: '{key}' must be one of the choices, got 'x'; valid: "):
        datasets.get(name).spec(DataConfig(name=name, variant="x"))


def test_too_short_length_is_refused():
    with pytest.raises(ValueError, match="reber: length T must be >= 9"):
        reber.generate(2, 8, rng())


def inputs(split) -> set[bytes]:
    return {row.tobytes() for batch in split for row in np.asarray(batch[0]).reshape(
        len(batch[0]), -1)}


@pytest.mark.parametrize("name, length", [*((n, 20) for n in TASKS), ("reber", 9),
                                          ("spike_timing", 8)])
def test_held_out_inputs_never_occur_in_training(name, length):
    """Small input spaces (Reber at its shortest, spike timing at T = 8: 12 inputs) would repeat
    test inputs in training if the splits were drawn independently."""
    config = DataConfig(name=name, length=length, num_train=300, num_val=3, num_test=3,
                        batch_size=100, variant=TASKS[name][1].get("variant"))
    train, val, test, _ = datasets.load(config)
    train, val, test = inputs(train), inputs(val), inputs(test)
    assert test and val and not (test & train) and not (val & train) and not (test & val)


def test_sizes_that_cannot_be_held_out_are_refused_naming_the_count():
    config = DataConfig(name="spike_timing", length=50)  # 925 inputs; 1,000 val + 1,000 test
    with pytest.raises(ConfigError, match=r"spike_timing at data\.length=50 \(925 distinct "
                                          r"inputs\): 'data\.num_val / data\.num_test' take"):
        datasets.load(config)
    info = datasets.info(config)
    assert info["distinct_inputs"] == 925 and "held_out" in info


def test_drawn_first_train_keeps_training_the_tasks_own_draw_and_holds_out_the_unseen():
    """Hochreiter & Schmidhuber's (1997) Reber protocol: training as the grammar draws it, test
    strings that training did not use. Drawn test first (the default), the same sizes at T = 9
    are refused: training would lose the short strings that carry the grammar's probability."""
    sizes = {"name": "reber", "length": 9, "num_train": 256, "num_val": 64, "num_test": 256}
    spec = reber.spec(DataConfig(**sizes))
    draw = lambda n, r: reber.generate(n, 9, r)
    config = DataConfig(**sizes, drawn_first="train")
    splits = synthetic.disjoint_splits(config, draw, spec)
    plain = draw(256, synthetic.split_rng(config, "reber", "train"))
    assert all(np.array_equal(a, b) for a, b in zip(splits["train"], plain))
    seen = {row.tobytes() for row in splits["train"][0]}
    held = [{row.tobytes() for row in splits[s][0]} for s in ("val", "test")]
    assert not (held[0] & seen) and not (held[1] & seen) and not (held[0] & held[1])
    with pytest.raises(ConfigError, match=r"data\.drawn_first: train"):
        synthetic.disjoint_splits(DataConfig(**sizes), draw, spec)


def test_drawn_first_train_refuses_an_input_space_training_used_up():
    config = DataConfig(name="spike_timing", length=8, num_train=300, num_val=3, num_test=3,
                        variant="classes", drawn_first="train")  # 12 inputs, all in training
    with pytest.raises(ConfigError, match=r"'data\.num_train / data\.num_val / data\.num_test' "
                                          r"leave too few unseen inputs for the val split"):
        datasets.load(config)
