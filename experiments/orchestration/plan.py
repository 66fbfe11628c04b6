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
    random:                           # dotted keys, each a parameter of orchestration/params.py
      train.lr: {log_uniform: [1.0e-4, 1.0e-2]}                  # the short form {sampler: [args]}
      model.units: {type: int, min: 32, max: 128, sampling: log}  # the tuner's spaces' form
    seed: 0                           # seeds the random draws, so a re-run draws the same configs
    tuned:                            # optional: each cell's own tuned values, per task family
      adding: {space: ../spaces/fair-adding.yaml, best: tuned/fair-adding.yaml}

The runs are tasks × grid × samples, in that order; precedence is base < task < tuned < grid <
sample < ``--set``. ``rnnlab sweep FILE --only data.name=adding,copy`` keeps the runs whose
``KEY`` (before the tuned values) is one of the listed values — part of a study, with the same
config hashes as the whole file, so a later run of the whole file skips what already finished.

``random`` spells each parameter as ``rnnlab tune``'s search spaces do (one grammar,
`experiments.orchestration.params`): ``{type: float, min: A, max: B}`` (``sampling: log`` draws
log(value) uniformly; ``step: S`` rounds to a grid from min), ``{type: int, ...}`` likewise,
``{type: choice, values: [...]}``, ``{type: bool}``; or in the short form ``{uniform: [A, B]}``,
``{log_uniform: [A, B]}``, ``{int_uniform: [A, B]}``, ``{choice: [...]}`` — the same parameters,
drawn the same way. Each sample draws every key in the order written, from one generator seeded
by ``seed``.

``tuned`` maps a task (``data.name``) to a tuning: its search-space file and the file that
``rnnlab tune SPACE --all-cells --export BEST`` wrote (paths relative to the sweep file). Every
run of that task takes, for its cell, the values of the keys the space searched, so each cell
trains with its own tuned configuration from the same search budget. A best file that does not
exist yet (for a run that is planned: ``--only`` can leave out the families not tuned yet) or
lacks a cell the sweep runs, and a run that trains otherwise than the trials did
(`TUNED_FREE` aside), stop the sweep before anything runs, with the command that fixes it.

Every run is validated before the first one starts (a sweep about to run also against this
machine's devices: `train.distribution`'s replicas, `check_devices`). Each child run carries the tag
``rnnlab.config_hash``; re-running a sweep skips the children that FINISHED with the same hash and runs
again those that FAILED, were KILLED or never ran.

This module plans (file -> validated `PlannedRun`s, and the dry run); `experiments.orchestration.launch` runs a plan
and records it in MLflow.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import os
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets.errors import ConfigError
from experiments.config import (
    HOW_NOT_WHAT,
    Config,
    config_hash,
    read_yaml,
    short_name,
    validate_names,
)
from experiments.orchestration import params

SWEEP_KEYS = ("name", "description", "base", "tasks", "grid", "samples", "random", "seed", "tuned")
TUNED_KEYS = ("space", "best")
# optional: `free: [KEY, ...]`, keys in which this study's runs may differ from the tuned setting and
# still take its tuned values (e.g. the same translation model without attention, for a claim that
# compares the two at one budget): values borrowed, not tuned for those runs; the page says so
TUNED_OPTIONAL = ("free",)
# keys in which a run may differ from the setting its cell was tuned at (besides the searched
# ones): T, seeds, the forget-gate ablation, held-out set sizes and which split is drawn first
# (the 1997 Reber protocol), and the train keys config_hash leaves out as how a run is shown,
# spread or compiled
TUNED_FREE = ("model.cell", "data.length", "train.seed", "model.unit_forget_bias", "data.num_val",
              "data.num_test", "data.drawn_first", *HOW_NOT_WHAT)


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
    only: tuple[str, ...] = ()  # `--only` filters: `runs` is then part of the file's runs


# --- reading and expanding a sweep file -----------------------------------------------------------


def load_sweep(path: str | Path, overrides: Iterable[str] = (), only: Iterable[str] = (), *,
               devices: bool = False) -> Sweep:
    """Read a sweep YAML, expand it into runs and validate every run before anything starts.

    `devices`: also check every run against this machine's devices (`check_devices`), as a sweep
    about to run here must; a dry run does not, so it answers without importing Keras."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(path, "file", f"cannot be read ({err.strerror or err})") from None
    raw = read_yaml(text, str(path))
    sweep = parse_sweep(raw, source=str(path), overrides=overrides, only=only)
    if devices:
        check_devices(sweep)
    return sweep


def check_devices(sweep: Sweep) -> None:
    """Each run's `train.distribution` against this machine: the backend, the batch against the
    replica count (`experiments.distribution.check`), before any MLflow run exists."""
    from experiments import distribution  # Keras

    for planned in sweep.runs:
        distribution.check(planned.config, sweep.source)


def parse_sweep(raw: Any, *, source: str = "<sweep>", overrides: Iterable[str] = (),
                only: Iterable[str] = ()) -> Sweep:
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
    tuned = read_tuned(raw.get("tuned") or {}, source)
    overrides, only = list(overrides), tuple(only)
    keep = _selection(only)
    planned: dict[str, tuple[Config, dict]] = {}
    for t, task in enumerate(tasks):
        task = _mapping(task, f"tasks[{t}]", source)
        for combo in itertools.product(*grid.values()):
            point = dict(zip(grid, combo))
            for sample in samples:
                where = f"{source} (tasks[{t}], {_describe({**point, **sample}) or 'base'})"
                config = _plan(base, [task, point, sample], overrides, where)
                if not keep(config):
                    continue
                if config.data.name in tuned:
                    entry = tuned[config.data.name]
                    values = entry.values_for(config.model.cell, source)
                    config = _plan(base, [task, values, point, sample], overrides, where)
                    entry.check_setting(config, where)
                planned.setdefault(config_hash(config), (config, {**task, **point, **sample}))
    _require(bool(planned) or not only, "--only", " ".join(only), "selects none of the runs of "
             f"{source}", valid="KEY=VALUE[,VALUE...] on a planned config key, e.g. data.name=adding")
    runs = [PlannedRun(config, h, _label(config, shown))
            for h, (config, shown) in _label_keys(planned).items()]
    return Sweep(name=name, source=source, runs=runs, description=str(raw.get("description", "")),
                 only=only)


def _selection(only: tuple[str, ...]) -> Callable[[Config], bool]:
    """`--only KEY=V1,V2` (repeatable; every item must hold) as a test on a planned config."""
    wanted: dict[str, list] = {}
    keys = Config().flat()
    for item in only:
        key, sep, raw = item.partition("=")
        key = key.strip()
        _require(bool(sep) and key in keys, "--only", key or item,
                 "must be KEY=VALUE[,VALUE...] with a config key", value=item, valid=sorted(keys))
        wanted[key] = [read_yaml(v, f"--only {key}") for v in raw.split(",")]
    return lambda config: all(config.flat()[k] in values for k, values in wanted.items())


@dataclass(frozen=True)
class Tuned:
    """One task family's tuned values per cell, read from a tuning's exported best file."""

    task: str
    space: Path
    best: Path
    keys: tuple[str, ...]
    cells: dict[str, dict[str, Any]]
    setting: dict[str, Any]  # the space's base, flat: what every trial trained with
    free: tuple[str, ...] = ()  # keys declared free to differ (the values borrowed there)

    def check_setting(self, config: Config, where: str) -> None:
        """A run takes tuned values only where it trains as the trials did (`TUNED_FREE` aside):
        a study and its search spaces cannot drift apart."""
        flat = config.flat()
        for key, tuned in self.setting.items():
            if (key in self.keys or key in TUNED_FREE or key in self.free
                    or key.startswith("tracking.")):
                continue
            _require(flat.get(key) == tuned, where, key,
                     f"differs from the setting {self.space} tuned at ({key}: {tuned!r}): tuned "
                     f"values hold for their own setting; align the two files", value=flat.get(key))

    def command(self) -> str:
        return f"rnnlab tune {self.space} --all-cells --export {self.best}"

    def values_for(self, cell: str, source: str) -> dict[str, Any]:
        if not self.cells:  # read when a planned run first needs it (`--only` may plan none)
            self._read_best(source)
        _require(cell in self.cells, source, f"tuned.{self.task}",
                 f"has no tuned values for cell {cell!r} in {self.best} (tune every cell the "
                 f"sweep runs: `{self.command()}`)", valid=sorted(self.cells))
        return self.cells[cell]

    def _read_best(self, source: str) -> None:
        """The best file `rnnlab tune --export` wrote: one entry per cell with every searched key."""
        key, best_path, keys = f"tuned.{self.task}", self.best, self.keys
        _require(best_path.is_file(), source, f"{key}.best",
                 f"names {best_path}, which does not exist: the tuning has not run (or was not "
                 f"exported); make it with `{self.command()}` (or leave the task out with "
                 f"--only)", value=str(best_path))
        best = read_yaml(best_path.read_text(), str(best_path)) or {}
        entries = best.get("tasks") if isinstance(best, dict) else None
        _require(isinstance(entries, list) and all(isinstance(e, dict) for e in entries),
                 str(best_path), "tasks", "must list one {model.cell: CELL, KEY: VALUE, ...} "
                 f"per cell (as `{self.command()}` writes it)", value=entries)
        for entry in entries:
            cell = entry.get("model.cell")
            _require(isinstance(cell, str), str(best_path), "model.cell",
                     "must name the cell of each tuned entry", value=cell)
            missing = [k for k in keys if k not in entry]
            _require(not missing, str(best_path), missing[0] if missing else "",
                     f"is searched by {self.space} but has no tuned value for cell {cell!r}; "
                     f"export again: `{self.command()}`", valid=sorted(entry))
            self.cells[cell] = {k: entry[k] for k in keys}


def read_tuned(raw: Any, source: str) -> dict[str, Tuned]:
    """`tuned`: {task: {space: PATH, best: PATH}}, each best file read and checked against its
    space (same task; a mapping of cells to the searched keys' values)."""
    from experiments.orchestration import tune

    _mapping(raw, "tuned", source)
    folder = Path(source).parent
    found, config_keys = {}, Config().flat()
    for task, entry in raw.items():
        key = f"tuned.{task}"
        _require(isinstance(entry, dict) and set(TUNED_KEYS) <= set(entry)
                 <= {*TUNED_KEYS, *TUNED_OPTIONAL}, source, key,
                 "must be {space: SPACE.yaml, best: BEST.yaml} (paths relative to the sweep file; "
                 "optionally free: [KEY, ...])", value=entry, valid=(*TUNED_KEYS, *TUNED_OPTIONAL))
        free = entry.get("free") or []
        _require(isinstance(free, list) and all(isinstance(k, str) and k in config_keys
                                                for k in free), source, f"{key}.free",
                 "must list config keys (dotted, e.g. model.attention)", value=free)
        space_path, best_path = (Path(os.path.normpath(folder / str(entry[k]))) for k in TUNED_KEYS)
        try:
            space = tune.load_space(space_path)
        except ValueError as err:
            raise ConfigError(source, f"{key}.space", f"is not a valid search space ({err})",
                              value=str(space_path)) from None
        _require(space.base.data.name == task, source, f"{key}.space",
                 f"tunes task {space.base.data.name!r}, not {task!r}", value=str(space_path))
        found[task] = Tuned(task, space_path, best_path, space.searched_keys(), {},
                            space.base.flat(), tuple(free))
    return found


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
    drawn = [params.parse(key, spec, source, "random") for key, spec in space.items()]
    if not count:
        return [{}]
    rng = random.Random(raw.get("seed", 0))
    return [{param.key: param.sample(rng) for param in drawn} for _ in range(count)]


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
        f"{short_name(str(k))}={_fmt(v)}"
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


def dry_run(sweep: Sweep, out: Callable[[str], None] = print, done: Iterable[str] = ()) -> None:
    """List the runs a sweep would do, with their config hashes; those in `done` (the hashes
    FINISHED in a `--skip-exported` export) are marked as skipped."""
    done = set(done)
    skipped = sum(p.hash in done for p in sweep.runs)
    out(f"sweep {sweep.name!r} from {sweep.source}: {len(sweep.runs)} runs"
        + (f", {skipped} of them finished in the export (skipped)" if done else ""))
    for i, planned in enumerate(sweep.runs, 1):
        mark = "  (exported: skipped)" if planned.hash in done else ""
        out(f"[{i}/{len(sweep.runs)}] {planned.label}  hash={planned.hash}{mark}")
