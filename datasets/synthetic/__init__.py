"""Long-dependency toy tasks: pure-numpy, vectorised, seeded generators scaled by a length T.

Every task module exposes ``generate(n, length, rng, ...)`` (numpy arrays), ``spec(config)``
(a :class:`~datasets.base.DataSpec` with the chance-level ``baseline``), ``load(config)`` and
``info(config)``; the last two are the shared :func:`load_task` / :func:`info_task` below.

Seeds: split ``s`` of task ``name`` draws from ``SeedSequence([config.seed, s, crc32(name)])``,
so the same seed gives the same data and train / val / test never share a seed.

Held out: the three splits share no input (:func:`disjoint_splits`; a repeat is redrawn). By
default (``data.drawn_first: test``) the test split is drawn first, then validation without the
test inputs, then training without either: the held-out splits follow the task's own
distribution. Where the input space is small for the sizes asked for (spike timing at T = 50
has 925 inputs; Reber's short strings carry most of the probability), a ConfigError names the
number of distinct inputs (``spec.extras["distinct_inputs"]``, also in ``info``) and the sizes
to change. ``data.drawn_first: train`` reverses the order, as Hochreiter & Schmidhuber (1997,
exp. 1) did for the embedded Reber grammar ("test sequences are generated randomly, too, but
sequences already used in the training set are not used for testing"): training follows the
task's distribution, and the held-out splits are the inputs training did not see, however
rare that makes them.
"""

from __future__ import annotations

import zlib

import numpy as np

from datasets.base import DataConfig, DataSpec, check_choice, to_dataset
from datasets.errors import ConfigError

SPLITS = ("train", "val", "test")
# the DataConfig fields every generated task reads (its module's READS adds its own, e.g. variant)
GENERATED = ("batch_size", "seed", "length", "num_train", "num_val", "num_test", "drawn_first")
# `data.drawn_first`: the split drawn from the task's own distribution, the others excluding its
# inputs (module docstring); "test" is what every run before the option trained with
ORDERS = {"test": ("test", "val", "train"), "train": ("train", "val", "test")}
DRAWN_FIRST = tuple(ORDERS)
HELD_OUT = {"test": "test inputs never occur in val or train; val inputs never in train",
            "train": "train inputs never occur in val or test; val inputs never in test"}
# what tells one setting of a generated task from another (`Reads.defines`): T, and a variant
# where the task has one
DEFINED_BY = ("length",)


def split_rng(config: DataConfig, task: str, split: str) -> np.random.Generator:
    """The generator of one split: same (seed, task, split) → same stream; splits never collide."""
    entropy = [config.seed, SPLITS.index(split), zlib.crc32(task.encode())]
    return np.random.default_rng(np.random.SeedSequence(entropy))


def split_sizes(config: DataConfig) -> dict[str, int]:
    return {"train": config.num_train, "val": config.num_val, "test": config.num_test}


def approx(count: int) -> int | str:
    """`count` itself up to 10^12, else its order of magnitude as text (e.g. "≈ 1.3e59")."""
    digits = str(count)
    return count if count <= 10**12 else f"≈ {digits[0]}.{digits[1]}e{len(digits) - 1}"


def check_length(task: str, length: int, minimum: int) -> None:
    if length < minimum:
        raise ValueError(f"{task}: length T must be >= {minimum}; got {length}")


# A training draw may repeat a held-out input at most this often before the sizes are refused.
MAX_HELD_OUT_SHARE = 0.5
# Redraws of the rows that repeat an earlier split's input before the sizes are refused.
MAX_REDRAWS = 1000


def load_task(config: DataConfig, generate, spec: DataSpec, **options):
    """Generate the three splits with `generate(n, length, rng, **options)` and batch them.

    `generate` returns ``(inputs, targets)`` or ``(inputs, targets, sample_weights)``. The
    held-out splits are disjoint from training, in the order `data.drawn_first` names (see
    :func:`disjoint_splits`).
    """
    arrays = disjoint_splits(config, lambda n, rng: generate(n, config.length, rng, **options),
                             spec)
    splits = []
    for split, parts in arrays.items():
        weights = parts[2] if len(parts) == 3 else None
        seed = config.seed if split == "train" else None
        splits.append(to_dataset(parts[0], parts[1], config.batch_size, seed, weights))
    return (*splits, spec)


def disjoint_splits(config: DataConfig, draw, spec: DataSpec) -> dict[str, tuple]:
    """The arrays of train / val / test, drawn with `draw(n, rng)` in the order
    `config.drawn_first` names (``ORDERS``), where no split holds an input of one drawn before it.

    A row that repeats an earlier split's input is redrawn (from the same split's generator, so
    the data stay seeded). Drawn test first, when more than half of a later split's first draw
    repeats held-out inputs (the input space is too small for the sizes asked for, e.g. spike
    timing at small T), a ConfigError names the task, its number of distinct inputs and the
    sizes to change: training would lose the inputs that carry its distribution. Drawn training
    first, the held-out splits are meant to be the inputs training did not see; only an input
    space that runs out (`MAX_REDRAWS`) is refused.
    """
    check_choice(spec.name, "data.drawn_first", config.drawn_first, DRAWN_FIRST)
    guard_share = config.drawn_first == "test"
    taken: set[bytes] = set()
    out = {}
    for split in ORDERS[config.drawn_first]:
        n = split_sizes(config)[split]
        rng = split_rng(config, spec.name, split)
        parts = list(draw(n, rng))
        for attempt in range(MAX_REDRAWS):
            clash = np.flatnonzero([key in taken for key in _keys(parts[0])])
            if not len(clash):
                break
            if guard_share and attempt == 0 and len(clash) > MAX_HELD_OUT_SHARE * n:
                raise _too_small(config, spec, split, len(clash) / n)
            for part, fresh in zip(parts, draw(len(clash), rng)):
                part[clash] = fresh
        else:
            raise _too_small(config, spec, split, len(clash) / n)
        taken.update(_keys(parts[0]))
        out[split] = tuple(parts)
    return {split: out[split] for split in SPLITS}


def _keys(inputs: np.ndarray) -> list[bytes]:
    flat = np.ascontiguousarray(inputs.reshape(len(inputs), -1))
    return [row.tobytes() for row in flat]


def _too_small(config: DataConfig, spec: DataSpec, split: str, share: float) -> ConfigError:
    distinct = spec.extras.get("distinct_inputs", "unknown")
    where = f"{spec.name} at data.length={config.length} ({distinct} distinct inputs)"
    if config.drawn_first == "train":
        return ConfigError(
            where, "data.num_train / data.num_val / data.num_test",
            f"leave too few unseen inputs for the {split} split ({share:.0%} of its draws still "
            f"repeat an earlier split's after {MAX_REDRAWS} redraws): lower them, or raise "
            "data.length", value=(config.num_train, config.num_val, config.num_test))
    return ConfigError(
        where, "data.num_val / data.num_test",
        f"take so many inputs that {share:.0%} of the {split} draws repeat one, and held-out "
        "inputs must not occur in training: lower them (or data.num_train), or raise data.length "
        "(or draw training first: data.drawn_first: train)",
        value=(config.num_val, config.num_test),
    )


def info_task(config: DataConfig, spec: DataSpec) -> dict:
    """What ``rnnlab data info`` prints for a generated task (nothing is read from disk)."""
    goal = spec.goal
    info = {
        "name": spec.name,
        "location": "generated in memory (numpy), no files",
        "sizes": split_sizes(config),
        "held_out": HELD_OUT[config.drawn_first],
        "distinct_inputs": spec.extras.get("distinct_inputs", "unbounded"),
        "sequence_length": spec.sequence_length,
        "input_dim": spec.input_dim,
        "output": spec.output,
        "num_classes": spec.num_classes,
        "scorers": [m.name for m in spec.scorers],
        "seed": config.seed,
    }
    if goal is not None:
        info["baseline"] = {goal.baseline_metric: goal.baseline}
        symbol = {"min": "<", "max": ">", "at_least": ">="}[goal.mode]
        info["solved"] = f"{goal.metric} {symbol} {goal.threshold}"
    return info
