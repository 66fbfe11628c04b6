"""Embedded Reber grammar (Hochreiter & Schmidhuber 1997, "Long short-term memory", exp. 1;
grammar from Reber 1967 and Cleeremans et al. 1989).

Grammar: ``B (T R T | P R P) E`` where R is a Reber string::

    R:  B  then (T | P);  after T: S* X;  after P: T* V;
        after …X: X → (the T* V branch) or S → E;  after …V: P → (the S* X-exit state) or V → E

every branch taken with probability 1/2. The embedded string's second-to-last symbol repeats its
second symbol (T or P), which lies the whole inner string back: that needs long-range memory.

Encoding: token ids of shape ``(n, T)`` (one-hot, ``input_dim = 8``): ``B T P S X V E`` = 1 … 7,
0 = padding after the end of a string. A string of ``m`` symbols gives ``m - 1`` inputs (all but
its final E), left-aligned and padded; strings longer than ``T + 1`` symbols are redrawn.

Targets: ``(n, T, 7)`` float32 multi-hot (``sequence_multilabel``): at step t the set of symbols
the grammar allows after the first ``t + 1`` symbols (column ``k`` ↔ id ``k + 1``); all zeros on
padding. Sample weights ``(n, T)``: 1 on the string's steps, 0 on padding.

Loss: binary cross-entropy per step and symbol. Success (``reber_success``, :func:`success`):
a string counts as learned when, at every one of its steps, thresholding the predicted
probabilities at 0.5 gives exactly the valid set; chance level is 0 (a model without memory
gets the second-to-last set right half the time, so about 50 %). Solved: success > 0.99.
"""

from __future__ import annotations

import numpy as np

from datasets import synthetic
from datasets.base import DataConfig, DataSpec

NAME = "reber"
SYMBOLS = "BTPSXVE"
ID = {s: i + 1 for i, s in enumerate(SYMBOLS)}
INPUT_DIM = len(SYMBOLS) + 1
MIN_SYMBOLS = 9  # B T B T X S E T E


def _inner(prefix: str, exit_state: str) -> dict[str, list[tuple[str, str]]]:
    """The Reber automaton's states (named with `prefix`) → [(symbol, next state)]."""
    p = prefix
    return {
        f"{p}0": [("B", f"{p}1")],
        f"{p}1": [("T", f"{p}2"), ("P", f"{p}3")],
        f"{p}2": [("S", f"{p}2"), ("X", f"{p}4")],
        f"{p}3": [("T", f"{p}3"), ("V", f"{p}5")],
        f"{p}4": [("X", f"{p}3"), ("S", f"{p}6")],
        f"{p}5": [("P", f"{p}4"), ("V", f"{p}6")],
        f"{p}6": [("E", exit_state)],
    }


# The embedded grammar as one automaton; "done" has no way out.
AUTOMATON = {
    "start": [("B", "branch")],
    "branch": [("T", "t0"), ("P", "p0")],
    **_inner("t", "t_exit"),
    **_inner("p", "p_exit"),
    "t_exit": [("T", "last")],
    "p_exit": [("P", "last")],
    "last": [("E", "done")],
    "done": [],
}
STATES = list(AUTOMATON)
DONE = STATES.index("done")


def _tables():
    """Per state: the emitted id and next state for choices 0/1, and the multi-hot valid set."""
    n = len(STATES)
    emit, step = np.zeros((n, 2), np.int32), np.full((n, 2), DONE, np.int8)
    valid = np.zeros((n, len(SYMBOLS)), np.float32)
    for s, edges in AUTOMATON.items():
        i = STATES.index(s)
        for choice in (0, 1):
            if edges:
                symbol, target = edges[choice % len(edges)]
                emit[i, choice], step[i, choice] = ID[symbol], STATES.index(target)
        for symbol, _ in edges:
            valid[i, ID[symbol] - 1] = 1.0
    return emit, step, valid


EMIT, STEP, VALID = _tables()


def _walk(n: int, steps: int, rng: np.random.Generator):
    """Run `n` strings through the automaton for at most `steps` symbols, all at once.

    Returns the emitted ids and the state after each symbol, ``(n, s)`` with ``s <= steps`` the
    number of steps the longest string needed, and which strings reached the end.
    """
    state = np.full(n, STATES.index("start"), np.int8)
    ids, states = [], []
    for _ in range(steps):
        choice = rng.integers(0, 2, n)
        ids.append(EMIT[state, choice])
        state = STEP[state, choice]
        states.append(state)
        if (state == DONE).all():
            break
    return np.stack(ids, 1), np.stack(states, 1), state == DONE


def generate(n: int, length: int, rng: np.random.Generator):
    """``(x, y, w)``: ids ``x`` int32 ``(n, length)``, multi-hot ``y`` float32
    ``(n, length, 7)``, weights ``w`` float32 ``(n, length)``."""
    synthetic.check_length(NAME, length, MIN_SYMBOLS - 1)
    ids, states, finished = _walk(n, length + 1, rng)
    while not finished.all():  # redraw the strings longer than length + 1
        redo = np.flatnonzero(~finished)
        more_ids, more_states, finished[redo] = _walk(len(redo), ids.shape[1], rng)
        ids[redo], states[redo] = 0, DONE
        ids[redo, : more_ids.shape[1]], states[redo, : more_ids.shape[1]] = more_ids, more_states
    used = ids.shape[1] - 1  # the longest string's inputs: all its symbols but the final E
    x = np.zeros((n, length), np.int32)
    x[:, :used] = np.where(ids[:, 1:] > 0, ids[:, :-1], 0)
    y = np.zeros((n, length, len(SYMBOLS)), np.float32)
    y[:, :used] = VALID[np.where(x[:, :used] > 0, states[:, :-1], DONE)]
    w = (x > 0).astype(np.float32)
    return x, y, w


def success(y_true, y_pred, threshold: float = 0.5):
    """Per string: 1.0 when every real step's thresholded prediction equals the valid set.

    Padded steps (all-zero targets; a real step always allows some symbol) are ignored, so no
    sample weights are needed: ``keras.metrics.MeanMetricWrapper(success, name="reber_success")``
    in ``metrics`` (not ``weighted_metrics``). ``y_pred`` are probabilities. Works on numpy arrays
    and on tensors of any Keras backend.
    """
    from keras import ops

    y_true = ops.cast(y_true, "float32")
    real = ops.max(y_true, axis=-1) > 0
    right = ops.all(ops.equal(ops.cast(y_pred > threshold, "float32"), y_true), axis=-1)
    return ops.cast(ops.all(ops.logical_or(right, ops.logical_not(real)), axis=-1), "float32")


def spec(config: DataConfig) -> DataSpec:
    return DataSpec(
        name=NAME,
        output="sequence_multilabel",
        input_encoding="one_hot",
        sequence_length=config.length,
        input_dim=INPUT_DIM,
        num_classes=len(SYMBOLS),
        output_size=len(SYMBOLS),
        baseline=0.0,
        baseline_metric="reber_success",
        solved_metric="reber_success",
        solved_threshold=0.99,
        solved_mode="max",
        extras={
            "symbols": SYMBOLS,
            "success_fn": success,
            "sample_weights": "1 on each string's steps, 0 on padding",
        },
    )


def load(config: DataConfig):
    return synthetic.load_task(config, generate, spec(config))


def info(config: DataConfig) -> dict:
    return synthetic.info_task(config, spec(config))
