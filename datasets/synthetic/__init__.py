"""Long-dependency toy tasks: pure-numpy, vectorised, seeded generators scaled by a length T.

Every task module exposes ``generate(n, length, rng, ...)`` (numpy arrays), ``spec(config)``
(a :class:`~datasets.base.DataSpec` with the chance-level ``baseline``), ``load(config)`` and
``info(config)``; the last two are the shared :func:`load_task` / :func:`info_task` below.

Seeds: split ``s`` of task ``name`` draws from ``SeedSequence([config.seed, s, crc32(name)])``,
so the same seed gives the same data and train / val / test never share a seed.

Held out: the three splits share no input (:func:`disjoint_splits`: test first, then validation
without the test inputs, then training without either; a repeat is redrawn). Where the input
space is small for the sizes asked for (spike timing at T = 50 has 925 inputs; Reber's short
strings carry most of the probability), a ConfigError names the number of distinct inputs
(``spec.extras["distinct_inputs"]``, also in ``info``) and the sizes to change.
"""

from __future__ import annotations

import zlib

import numpy as np

from datasets.base import DataConfig, DataSpec, to_dataset
from datasets.errors import ConfigError

SPLITS = ("train", "val", "test")
# the DataConfig fields every generated task reads (its module's READS adds its own, e.g. variant)
GENERATED = ("batch_size", "seed", "length", "num_train", "num_val", "num_test")
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


def load_task(config: DataConfig, generate, spec: DataSpec, **options):
    """Generate the three splits with `generate(n, length, rng, **options)` and batch them.

    `generate` returns ``(inputs, targets)`` or ``(inputs, targets, sample_weights)``. The
    held-out splits are disjoint from training: test first, then validation without the test
    inputs, then training without either (see :func:`disjoint_splits`).
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
    """The arrays of train / val / test, drawn with `draw(n, rng)`, where no input of the test
    split occurs in validation or training and no validation input occurs in training.

    A row that repeats an earlier split's input is redrawn (from the same split's generator, so
    the data stay seeded). When more than half of the first draw repeats held-out inputs (the
    input space is too small for the sizes asked for, e.g. spike timing at small T), a
    ConfigError names the task, its number of distinct inputs and the sizes to change.
    """
    taken: set[bytes] = set()
    out = {}
    for split in ("test", "val", "train"):
        n = split_sizes(config)[split]
        rng = split_rng(config, spec.name, split)
        parts = list(draw(n, rng))
        for attempt in range(100):
            clash = np.flatnonzero([key in taken for key in _keys(parts[0])])
            if not len(clash):
                break
            if attempt == 0 and len(clash) > MAX_HELD_OUT_SHARE * n:
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
    return ConfigError(
        f"{spec.name} at data.length={config.length} ({distinct} distinct inputs)",
        "data.num_val / data.num_test",
        f"take so many inputs that {share:.0%} of the {split} draws repeat one, and held-out "
        "inputs must not occur in training: lower them (or data.num_train), or raise data.length",
        value=(config.num_val, config.num_test),
    )


def info_task(config: DataConfig, spec: DataSpec) -> dict:
    """What ``rnnlab data info`` prints for a generated task (nothing is read from disk)."""
    goal = spec.goal
    info = {
        "name": spec.name,
        "location": "generated in memory (numpy), no files",
        "sizes": split_sizes(config),
        "held_out": "test inputs never occur in val or train; val inputs never in train",
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
