"""Sweeps: a base config crossed with a grid (and optional random samples) over tasks, cells, seeds and
hyperparameters, run as one MLflow parent run with one child run per configuration.

A sweep file::

    name: quick                       # the MLflow tag `rnnlab.sweep` and the report's folder
    description: five cells, one config per task family
    base: {data: {...}, model: {...}, train: {...}, tracking: {...}}   # a Config as in config.py
    tasks:                            # one entry per task; each overrides base
      - {data.name: adding, data.length: 50}
      - {data.name: imdb, data.subset: 2000}
    grid: {model.cell: [vanilla, lstm, peephole, coupled, gru], train.seed: [0, 1, 2]}
    samples: 2                        # optional: random draws from `random`, crossed with the rest
    random: {train.lr: {log_uniform: [1.0e-4, 1.0e-2]}, model.units: {choice: [32, 64]}}
    seed: 0                           # seeds the random draws, so a re-run draws the same configs

The runs are tasks × grid × samples, in that order; precedence is base < task < grid < sample <
``--set``. Every run is validated before the first one starts. Each child run carries the tag
``rnnlab.config_hash``; re-running a sweep skips the children that FINISHED with the same hash and runs
again those that FAILED, were KILLED or never ran.

This module plans (file -> validated `PlannedRun`s, and the dry run); `experiments.orchestration.launch` runs a plan
and records it in MLflow.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets.errors import ConfigError
from experiments.config import Config, config_hash, read_yaml, validate_names

SWEEP_KEYS = ("name", "description", "base", "tasks", "grid", "samples", "random", "seed")
SAMPLERS: dict[str, Callable[[random.Random, list], Any]] = {
    "choice": lambda rng, args: rng.choice(args),
    "uniform": lambda rng, args: rng.uniform(*args),
    "log_uniform": lambda rng, args: math.exp(rng.uniform(math.log(args[0]), math.log(args[1]))),
    "int_uniform": lambda rng, args: rng.randint(*args),
}
SHORT_NAMES = {"data.length": "T", "train.seed": "seed", "model.attention": "attention"}


@dataclass(frozen=True)
class PlannedRun:
    """One configuration of a sweep: its config, its hash and a label for progress lines."""

    config: Config
    hash: str
    label: str


@dataclass
class Sweep:
    """A parsed, expanded and validated sweep file."""

    name: str
    source: str
    runs: list[PlannedRun]
    description: str = ""


# --- reading and expanding a sweep file -----------------------------------------------------------


def load_sweep(path: str | Path, overrides: Iterable[str] = ()) -> Sweep:
    """Read a sweep YAML, expand it into runs and validate every run before anything starts."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(path, "file", f"cannot be read ({err.strerror or err})") from None
    raw = read_yaml(text, str(path))
    return parse_sweep(raw, source=str(path), overrides=overrides)


def parse_sweep(raw: Any, *, source: str = "<sweep>", overrides: Iterable[str] = ()) -> Sweep:
    """Expand a sweep mapping (the YAML's content) into validated runs; see the module docstring."""
    _require(isinstance(raw, dict), source, "top level", "must be a mapping", value=raw,
             valid=SWEEP_KEYS)
    unknown = sorted(set(raw) - set(SWEEP_KEYS))
    _require(not unknown, source, unknown[0] if unknown else "", "is not a sweep key",
             valid=SWEEP_KEYS)
    name = raw.get("name")
    _require(isinstance(name, str) and bool(name.strip()), source, "name",
             "must be a non-empty string (the sweep's name)", value=name)
    _require("'" not in name or '"' not in name, source, "name", "cannot hold both ' and \"",
             value=name)
    base = _mapping(raw.get("base") or {}, "base", source)
    tasks = raw.get("tasks") or [{}]
    _require(isinstance(tasks, list), source, "tasks", "must be a list of mappings of dotted keys",
             value=tasks)
    grid = _mapping(raw.get("grid") or {}, "grid", source)
    for key, values in grid.items():
        _require(isinstance(values, list) and bool(values), source, f"grid.{key}",
                 "must map to a non-empty list of values", value=values)
    samples = _draw_samples(raw, source)
    overrides = list(overrides)
    planned: dict[str, tuple[Config, dict]] = {}
    for t, task in enumerate(tasks):
        task = _mapping(task, f"tasks[{t}]", source)
        for combo in itertools.product(*grid.values()):
            point = dict(zip(grid, combo))
            for sample in samples:
                where = f"{source} (tasks[{t}], {_describe({**point, **sample}) or 'base'})"
                config = _plan(base, [task, point, sample], overrides, where)
                planned.setdefault(config_hash(config), (config, {**task, **point, **sample}))
    runs = [PlannedRun(config, h, _label(config, shown))
            for h, (config, shown) in _label_keys(planned).items()]
    return Sweep(name=name, source=source, runs=runs, description=str(raw.get("description", "")))


def _require(ok: bool, source: str, key: str, problem: str, **details) -> None:
    """Raise the ConfigError that names the file, the key and what is valid, unless `ok`."""
    if not ok:
        raise ConfigError(source, key, problem, **details)


def _mapping(value: Any, key: str, source: str) -> dict:
    _require(isinstance(value, dict), source, key, "must be a mapping", value=value)
    return value


def _draw_samples(raw: dict, source: str) -> list[dict]:
    """The random points: `samples` draws from the `random` space, the same draws for every task and
    grid point (so cells are compared on the same hyperparameters), seeded by `seed`."""
    count = raw.get("samples", 0) or 0
    space = _mapping(raw.get("random") or {}, "random", source)
    _require(isinstance(count, int) and not isinstance(count, bool) and count >= 0, source,
             "samples", "must be an integer >= 0", value=count)
    _require(not count or bool(space), source, "samples", "needs a 'random' space to draw from",
             value=count)
    for key, spec in space.items():
        kind = next(iter(spec), None) if isinstance(spec, dict) and len(spec) == 1 else None
        _require(kind in SAMPLERS and isinstance(spec[kind], list), source, f"random.{key}",
                 "must be {<sampler>: [args]}", value=spec, valid=SAMPLERS)
        problem = _sampler_problem(kind, spec[kind])
        _require(problem is None, source, f"random.{key}.{kind}", problem or "", value=spec[kind])
    if not count:
        return [{}]
    rng = random.Random(raw.get("seed", 0))
    return [
        {key: SAMPLERS[kind](rng, args) for key, spec in space.items() for kind, args in spec.items()}
        for _ in range(count)
    ]


def _sampler_problem(kind: str, args: list) -> str | None:
    """What is wrong with a sampler's arguments (None when they can be drawn from)."""
    if kind == "choice":
        return None if args else "must list at least one value"
    integer = kind == "int_uniform"
    numbers = all(isinstance(a, int if integer else (int, float)) and not isinstance(a, bool)
                  for a in args)
    if len(args) != 2 or not numbers:
        return f"must be [low, high], two {'integers' if integer else 'numbers'}"
    if args[0] > args[1]:
        return "must have low <= high"
    if kind == "log_uniform" and args[0] <= 0:
        return "must have 0 < low (it draws log(value) uniformly)"
    return None


def _plan(base: dict, layers: list[dict], overrides: list[str], where: str) -> Config:
    """Merge the dotted-key layers onto base, build and validate the Config, apply --set overrides."""
    merged = copy.deepcopy(base)
    flat: dict[str, Any] = {}
    for layer in layers:
        flat.update(layer)
    for key, value in flat.items():
        section, _, name = str(key).partition(".")
        sections = [f.name for f in dataclasses.fields(Config)]
        _require(bool(name), where, str(key), "must be 'section.key'", valid=sections)
        target = merged.setdefault(section, {})
        _require(isinstance(target, dict), where, f"base.{section}", "must be a mapping",
                 value=target)
        target[name] = value
    config = Config.from_dict(merged, source=where)
    if overrides:
        config = config.with_overrides(overrides)
    validate_names(config, where)
    return config


def _describe(values: Mapping[str, Any], skip: tuple[str, ...] = ()) -> str:
    return ", ".join(
        f"{SHORT_NAMES.get(k, str(k).rpartition('.')[2])}={_fmt(v)}"
        for k, v in values.items()
        if k not in skip
    )


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _label_keys(planned: dict[str, tuple[Config, dict]]) -> dict[str, tuple[Config, dict]]:
    """Keep, of each run's sweep keys, those that tell it from the other runs of its task (and T)."""
    by_task: dict[str, list[dict]] = {}
    for config, keys in planned.values():
        by_task.setdefault(config.data.name, []).append(keys)
    shown = {}
    for h, (config, keys) in planned.items():
        others = by_task[config.data.name]
        shown[h] = (config, {
            k: v for k, v in keys.items()
            if k == "data.length" or any(o.get(k, v) != v or k not in o for o in others)
        })
    return shown


def _label(config: Config, keys: Mapping[str, Any]) -> str:
    details = _describe(keys, skip=("model.cell", "data.name"))
    return f"{config.model.cell} × {config.data.name}" + (f" ({details})" if details else "")


def dry_run(sweep: Sweep, out: Callable[[str], None] = print) -> None:
    """List the runs a sweep would do, with their config hashes."""
    out(f"sweep {sweep.name!r} from {sweep.source}: {len(sweep.runs)} runs")
    for i, planned in enumerate(sweep.runs, 1):
        out(f"[{i}/{len(sweep.runs)}] {planned.label}  hash={planned.hash}")
