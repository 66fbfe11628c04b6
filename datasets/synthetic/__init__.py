"""Long-dependency toy tasks: pure-numpy, vectorised, seeded generators scaled by a length T.

Every task module exposes ``generate(n, length, rng, ...)`` (numpy arrays), ``spec(config)``
(a :class:`~datasets.base.DataSpec` with the chance-level ``baseline``), ``load(config)`` and
``info(config)``; the last two are the shared :func:`load_task` / :func:`info_task` below.

Seeds: split ``s`` of task ``name`` draws from ``SeedSequence([config.seed, s, crc32(name)])``,
so the same seed gives the same data and train / val / test never share a seed.
"""

from __future__ import annotations

import zlib

import numpy as np

from datasets.base import DataConfig, DataSpec, to_dataset

SPLITS = ("train", "val", "test")


def split_rng(config: DataConfig, task: str, split: str) -> np.random.Generator:
    """The generator of one split: same (seed, task, split) → same stream; splits never collide."""
    entropy = [config.seed, SPLITS.index(split), zlib.crc32(task.encode())]
    return np.random.default_rng(np.random.SeedSequence(entropy))


def split_sizes(config: DataConfig) -> dict[str, int]:
    return {"train": config.num_train, "val": config.num_val, "test": config.num_test}


def check_length(task: str, length: int, minimum: int) -> None:
    if length < minimum:
        raise ValueError(f"{task}: length T must be >= {minimum}; got {length}")


def load_task(config: DataConfig, generate, spec: DataSpec, **options):
    """Generate the three splits with `generate(n, length, rng, **options)` and batch them.

    `generate` returns ``(inputs, targets)`` or ``(inputs, targets, sample_weights)``.
    """
    splits = []
    for split, n in split_sizes(config).items():
        arrays = generate(n, config.length, split_rng(config, spec.name, split), **options)
        weights = arrays[2] if len(arrays) == 3 else None
        seed = config.seed if split == "train" else None
        splits.append(to_dataset(arrays[0], arrays[1], config.batch_size, seed, weights))
    return (*splits, spec)


def info_task(config: DataConfig, spec: DataSpec) -> dict:
    """What ``rnnlab data info`` prints for a generated task (nothing is read from disk)."""
    return {
        "name": spec.name,
        "location": "generated in memory (numpy), no files",
        "sizes": split_sizes(config),
        "sequence_length": spec.sequence_length,
        "input_dim": spec.input_dim,
        "output": spec.output,
        "num_classes": spec.num_classes,
        "baseline": {spec.baseline_metric: spec.baseline},
        "solved": f"{spec.solved_metric} {'<' if spec.solved_mode == 'min' else '>'} "
        f"{spec.solved_threshold}",
        "seed": config.seed,
    }
