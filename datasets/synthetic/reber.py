"""Embedded Reber grammar (Hochreiter & Schmidhuber 1997, "Long short-term memory", exp. 1;
grammar from Reber 1967 and Cleeremans et al. 1989).

Grammar: ``B (T R T | P R P) E`` where R is a Reber string::

    R:  B  then (T | P);  after T: S* X;  after P: T* V;
        after …X: X → (the T* V branch) or S → E;  after …V: P → (the S* X-exit state) or V → E

every branch taken with probability 1/2. The embedded string's second-to-last symbol repeats its
second symbol (T or P), which lies the whole inner string back: that needs long-range memory.

Length: ``T = data.length`` is the minimum number of symbols of a string (at least 9, the
shortest embedded Reber string). While a string is shorter than T − 4 symbols, the two exits of
the inner string's loops (``…X → S`` and ``…V → V``) are not taken, so the loops run on; after
that every branch is 1/2 again. The lag from the second symbol to the second-to-last is thus at
least T − 3 steps. With T = 9 the strings are the paper's (mean about 12 symbols); larger T gives
the longer dependencies a length axis should test. Strings longer than T + 40 symbols are
redrawn (rare: the tail after the forced loops is a few symbols).

Encoding: token ids of shape ``(n, T + 39)`` (one-hot, ``input_dim = 8``): ``B T P S X V E`` =
1 … 7, 0 = padding after the end of a string. A string of ``m`` symbols gives ``m - 1`` inputs
(all but its final E), left-aligned and padded.

Targets: ``(n, T + 39, 7)`` float32 multi-hot (``sequence_multilabel``): at step t the set of
symbols the grammar allows after the first ``t + 1`` symbols (column ``k`` ↔ id ``k + 1``); all
zeros on padding. Sample weights ``(n, T + 39)``: 1 on the string's steps, 0 on padding; the
experiments average the loss over the weighted steps and compile ``accuracy`` as a weighted
metric, so padding counts in neither.

Success (``reber_success``, :func:`success`, a scorer over the test predictions), the paper's
rule: a string is predicted correctly when at every one of its steps the outputs of the valid
next symbols are the most active ones, i.e. the lowest output among the valid symbols is above
the highest among the invalid ones (Hochreiter & Schmidhuber 1997, exp. 1, paraphrased: a
trial succeeds when, on every string, the output units of the possible next symbols are always
the most active ones). Solved: ``reber_success >= 1.0``, every test string right, as the paper
requires of a successful trial.
Chance baseline 0.5: a predictor perfect on the inner grammar but without the memory of the
second symbol has to guess T or P after the inner E and is right on half the strings (hedging,
T and P equally active, gets 0; a predictor that knows nothing gets 0).

Held out: the strings are unbounded in number but not in probability (at T = 9 the ten
shortest carry much of it); test strings never occur in training, and sizes that would leave
training too few strings are refused with an error.
"""

from __future__ import annotations

import numpy as np

from datasets import synthetic
from datasets.base import DataConfig, DataSpec, Goal, Reads, Scorer

NAME = "reber"
READS = Reads(data=synthetic.GENERATED, outputs=("sequence_multilabel",), inputs="one_hot",
              defines=synthetic.DEFINED_BY)
SYMBOLS = "BTPSXVE"
ID = {s: i + 1 for i, s in enumerate(SYMBOLS)}
INPUT_DIM = len(SYMBOLS) + 1
MIN_SYMBOLS = 9  # B T B T X S E T E
CHANCE = 0.5  # success without the memory of the second symbol: a guess between T and P
SLACK = 40  # a string has at most T + SLACK symbols
TO_END = 4  # symbols from a loop exit to the end: (S | V) E (T | P) E


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


# The states whose choice 1 leaves an inner loop for the inner E (…X → S, …V → V).
LOOP_EXITS = np.array([STATES.index(s) for s in ("t4", "t5", "p4", "p5")])


def _walk(n: int, steps: int, rng: np.random.Generator, min_symbols: int = MIN_SYMBOLS):
    """Run `n` strings through the automaton for at most `steps` symbols, all at once, keeping
    the inner loops going until a string can reach `min_symbols`.

    Returns the emitted ids and the state after each symbol, ``(n, s)`` with ``s <= steps`` the
    number of steps the longest string needed, and which strings reached the end.
    """
    state = np.full(n, STATES.index("start"), np.int8)
    ids, states = [], []
    for emitted in range(steps):
        choice = rng.integers(0, 2, n)
        if emitted + TO_END < min_symbols:
            choice = np.where(np.isin(state, LOOP_EXITS), 0, choice)
        ids.append(EMIT[state, choice])
        state = STEP[state, choice]
        states.append(state)
        if (state == DONE).all():
            break
    return np.stack(ids, 1), np.stack(states, 1), state == DONE


def generate(n: int, length: int, rng: np.random.Generator):
    """``(x, y, w)`` of strings of at least `length` symbols: ids ``x`` int32 ``(n, steps)``,
    multi-hot ``y`` float32 ``(n, steps, 7)``, weights ``w`` float32 ``(n, steps)``, with
    ``steps = length + SLACK - 1``."""
    synthetic.check_length(NAME, length, MIN_SYMBOLS)
    steps = steps_of(length)
    ids, states, finished = _walk(n, steps + 1, rng, length)
    while not finished.all():  # redraw the strings longer than steps + 1
        redo = np.flatnonzero(~finished)
        more_ids, more_states, finished[redo] = _walk(len(redo), ids.shape[1], rng, length)
        ids[redo], states[redo] = 0, DONE
        ids[redo, : more_ids.shape[1]], states[redo, : more_ids.shape[1]] = more_ids, more_states
    used = ids.shape[1] - 1  # the longest string's inputs: all its symbols but the final E
    x = np.zeros((n, steps), np.int32)
    x[:, :used] = np.where(ids[:, 1:] > 0, ids[:, :-1], 0)
    y = np.zeros((n, steps, len(SYMBOLS)), np.float32)
    y[:, :used] = VALID[np.where(x[:, :used] > 0, states[:, :-1], DONE)]
    w = (x > 0).astype(np.float32)
    return x, y, w


def steps_of(length: int) -> int:
    """Input steps of a split: the longest allowed string (``length + SLACK`` symbols) less its E."""
    return length + SLACK - 1


def success(y_true, y_pred):
    """Per string: 1.0 when at every real step the valid next symbols are the most active
    outputs (the lowest valid output above the highest invalid one), else 0.0.

    Padded steps (all-zero targets; a real step always allows some symbol) are ignored, so no
    sample weights are needed. ``y_pred``: probabilities or logits (only their order counts).
    """
    valid = np.asarray(y_true) > 0
    y_pred = np.asarray(y_pred, np.float64)
    lowest_valid = np.where(valid, y_pred, np.inf).min(-1)
    highest_invalid = np.where(valid, -np.inf, y_pred).max(-1)
    right = (lowest_valid > highest_invalid) | ~valid.any(-1)
    return right.all(-1).astype(np.float32)


def spec(config: DataConfig) -> DataSpec:
    return DataSpec(
        name=NAME,
        output="sequence_multilabel",
        input_encoding="one_hot",
        sequence_length=steps_of(config.length),
        input_dim=INPUT_DIM,
        num_classes=len(SYMBOLS),
        output_size=len(SYMBOLS),
        scorers=(Scorer("reber_success", success, chance=CHANCE),),
        goal=Goal("reber_success", threshold=1.0, mode="at_least", baseline=CHANCE),
        extras={
            "symbols": SYMBOLS,
            "min_symbols": config.length,
            "sample_weights": "1 on each string's steps, 0 on padding",
            "distinct_inputs": "unbounded (strings of any length)",
        },
    )


def load(config: DataConfig):
    return synthetic.load_task(config, generate, spec(config))


def info(config: DataConfig) -> dict:
    return synthetic.info_task(config, spec(config))
