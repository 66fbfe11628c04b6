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
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import random
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from experiments.config import Config, config_hash, validate_names

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


@dataclass
class Outcome:
    """What happened to one planned run: FINISHED, SKIPPED (no data), DONE (finished before) or FAILED."""

    run: PlannedRun
    status: str
    run_id: str | None = None
    metric: str | None = None
    value: float | None = None
    seconds: float = 0.0
    reason: str = ""
    result: dict = field(default_factory=dict)


# --- reading and expanding a sweep file -----------------------------------------------------------


def load_sweep(path: str | Path, overrides: Iterable[str] = ()) -> Sweep:
    """Read a sweep YAML, expand it into runs and validate every run before anything starts."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"{path}: cannot read the sweep file: {err}") from err
    return parse_sweep(raw, source=str(path), overrides=overrides)


def parse_sweep(raw: Any, *, source: str = "<sweep>", overrides: Iterable[str] = ()) -> Sweep:
    """Expand a sweep mapping (the YAML's content) into validated runs; see the module docstring."""
    _require(isinstance(raw, dict),
             f"{source}: a sweep file must be a mapping with keys {', '.join(SWEEP_KEYS)}")
    unknown = sorted(set(raw) - set(SWEEP_KEYS))
    _require(not unknown, f"{source}: unknown sweep key {', '.join(map(repr, unknown))}; "
                          f"valid keys: {', '.join(SWEEP_KEYS)}")
    name = raw.get("name")
    _require(isinstance(name, str) and bool(name.strip()),
             f"{source}: key 'name' must be a non-empty string (the sweep's name)")
    base = _mapping(raw.get("base") or {}, "base", source)
    tasks = raw.get("tasks") or [{}]
    _require(isinstance(tasks, list),
             f"{source}: key 'tasks' must be a list of mappings of dotted keys")
    grid = _mapping(raw.get("grid") or {}, "grid", source)
    for key, values in grid.items():
        _require(isinstance(values, list) and bool(values),
                 f"{source}: grid key {key!r} must map to a non-empty list of values")
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


def _require(ok: bool, message: str) -> None:
    """Raise the ValueError that names the file, the key and what is valid, unless `ok`."""
    if not ok:
        raise ValueError(message)


def _mapping(value: Any, key: str, source: str) -> dict:
    _require(isinstance(value, dict),
             f"{source}: key {key!r} must be a mapping, got {type(value).__name__}")
    return value


def _draw_samples(raw: dict, source: str) -> list[dict]:
    """The random points: `samples` draws from the `random` space, the same draws for every task and
    grid point (so cells are compared on the same hyperparameters), seeded by `seed`."""
    count = raw.get("samples", 0) or 0
    space = _mapping(raw.get("random") or {}, "random", source)
    _require(isinstance(count, int) and count >= 0,
             f"{source}: key 'samples' must be a non-negative integer, got {count!r}")
    _require(not count or bool(space),
             f"{source}: 'samples: {count}' needs a 'random' space to draw from")
    for key, spec in space.items():
        kind = next(iter(spec), None) if isinstance(spec, dict) and len(spec) == 1 else None
        _require(kind in SAMPLERS and isinstance(spec[kind], list),
                 f"{source}: random key {key!r} must be one of {{{', '.join(SAMPLERS)}: [args]}}, "
                 f"got {spec!r}")
    if not count:
        return [{}]
    rng = random.Random(raw.get("seed", 0))
    return [
        {key: SAMPLERS[kind](rng, args) for key, spec in space.items() for kind, args in spec.items()}
        for _ in range(count)
    ]


def _plan(base: dict, layers: list[dict], overrides: list[str], where: str) -> Config:
    """Merge the dotted-key layers onto base, build and validate the Config, apply --set overrides."""
    merged = copy.deepcopy(base)
    flat: dict[str, Any] = {}
    for layer in layers:
        flat.update(layer)
    for key, value in flat.items():
        section, _, name = str(key).partition(".")
        sections = ", ".join(f.name for f in dataclasses.fields(Config))
        _require(bool(name), f"{where}: key {key!r} must be 'section.key' with section one of "
                             f"{sections}")
        target = merged.setdefault(section, {})
        _require(isinstance(target, dict), f"{where}: section {section!r} of base must be a mapping")
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


# --- running a sweep --------------------------------------------------------------------------------


def format_duration(seconds: float) -> str:
    """'1h02m', '4m30s', '12s'."""
    seconds = round(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def dry_run(sweep: Sweep, out: Callable[[str], None] = print) -> None:
    """List the runs a sweep would do, with their config hashes."""
    out(f"sweep {sweep.name!r} from {sweep.source}: {len(sweep.runs)} runs")
    for i, planned in enumerate(sweep.runs, 1):
        out(f"[{i}/{len(sweep.runs)}] {planned.label}  hash={planned.hash}")


def run_sweep(
    sweep: Sweep,
    *,
    out: Callable[[str], None] = print,
    run_fn: Callable[..., dict] | None = None,
) -> list[Outcome]:
    """Run every planned configuration as a child of the sweep's parent run, skipping those that
    already FINISHED with the same config hash; a run that raises is marked FAILED and the sweep goes
    on. Prints a progress line before each run and a summary at the end; returns the outcomes.

    The parent run is the newest one tagged with this sweep's name (resumed), else a new one.
    """
    import mlflow

    from experiments import tracking

    if run_fn is None:
        from experiments.run import run as run_fn

    tracking.configure()
    started = time.monotonic()
    with tracking.start_parent_run(sweep.name, run_id=find_parent_run(sweep.name)) as parent:
        parent_id = parent.info.run_id
        mlflow.set_tags({"rnnlab.sweep_file": sweep.source, "rnnlab.sweep_runs": len(sweep.runs)})
        finished = tracking.find_finished_children(parent_id)
        todo = sum(p.hash not in finished for p in sweep.runs)
        out(f"sweep {sweep.name!r}: {len(sweep.runs)} runs, {len(sweep.runs) - todo} finished "
            f"before, {todo} to run (MLflow parent run {parent_id}, {tracking.tracking_uri()})")
        outcomes: list[Outcome] = []
        try:
            _run_all(sweep, finished, parent_id, run_fn, outcomes, todo, out)
        except KeyboardInterrupt:
            _end_active_runs("KILLED", keep=None)
            out(summary(outcomes, title=f"sweep {sweep.name!r} interrupted"))
            raise
        if any(o.status == "FAILED" for o in outcomes):
            mlflow.end_run("FAILED")
    out(summary(outcomes, title=f"sweep {sweep.name!r} done in "
                                f"{format_duration(time.monotonic() - started)}"))
    return outcomes


def _run_all(sweep: Sweep, finished: dict[str, str], parent_id: str, run_fn: Callable,
             outcomes: list[Outcome], todo: int, out: Callable[[str], None]) -> None:
    """The loop of run_sweep: progress line, run, outcome; ETA from the mean time of the runs so far."""
    started, ran_seconds, ran = time.monotonic(), 0.0, 0
    for i, planned in enumerate(sweep.runs, 1):
        if planned.hash in finished:
            outcomes.append(_done_before(planned, finished[planned.hash]))
            continue
        eta = format_duration(ran_seconds / ran * (todo - ran)) if ran else "?"
        out(f"[{i}/{len(sweep.runs)}] {planned.label} — elapsed "
            f"{format_duration(time.monotonic() - started)}, ETA {eta}")
        outcome = _run_one(planned, sweep.name, parent_id, run_fn)
        outcomes.append(outcome)
        if outcome.status == "SKIPPED":
            todo -= 1
        else:
            ran_seconds, ran = ran_seconds + outcome.seconds, ran + 1


def find_parent_run(sweep_name: str) -> str | None:
    """The id of the newest parent run of the sweep called `sweep_name`, if there is one."""
    import mlflow

    found = mlflow.search_runs(
        search_all_experiments=True, output_format="list", max_results=1,
        filter_string=f"tags.`rnnlab.role` = 'sweep' and tags.`rnnlab.sweep` = '{sweep_name}'",
        order_by=["attributes.start_time DESC"],
    )
    return found[0].info.run_id if found else None


def _done_before(planned: PlannedRun, run_id: str) -> Outcome:
    """An outcome for a run that FINISHED in an earlier invocation, with its recorded key metric."""
    import mlflow

    from experiments.report import key_metric

    run = mlflow.get_run(run_id)
    metric, value = key_metric(run.data.metrics, run.data.tags.get("rnnlab.solved_metric"))
    return Outcome(planned, "DONE", run_id=run_id, metric=metric, value=value)


def _run_one(planned: PlannedRun, sweep_name: str, parent_id: str, run_fn: Callable) -> Outcome:
    from experiments.report import key_metric

    t0 = time.monotonic()
    start_ms = int(time.time() * 1000)
    try:
        result = run_fn(planned.config, parent_run_id=parent_id, tags={"rnnlab.sweep": sweep_name})
    except Exception as err:  # noqa: BLE001 - one failing run must not stop the sweep
        _end_active_runs("FAILED", keep=parent_id)
        message = f"{type(err).__name__}: {err}"
        run_id = _record_failure(planned, sweep_name, parent_id, start_ms, message)
        return Outcome(planned, "FAILED", run_id=run_id, reason=message,
                       seconds=time.monotonic() - t0)
    preferred = result.get("solved_metric") or _solved_metric_tag(result.get("run_id"))
    metric, value = key_metric(result, preferred)
    return Outcome(planned, result.get("status", "FINISHED"), run_id=result.get("run_id"),
                   metric=metric, value=value, reason=result.get("reason", ""),
                   seconds=time.monotonic() - t0, result=result)


def _solved_metric_tag(run_id: str | None) -> str | None:
    import mlflow

    return mlflow.get_run(run_id).data.tags.get("rnnlab.solved_metric") if run_id else None


def _end_active_runs(status: str, keep: str | None) -> None:
    """Close child runs a raising run() left open on MLflow's fluent stack (not the parent `keep`)."""
    import mlflow

    while (active := mlflow.active_run()) is not None and active.info.run_id != keep:
        mlflow.end_run(status)


def _record_failure(planned: PlannedRun, sweep_name: str, parent_id: str, start_ms: int,
                    message: str) -> str:
    """Mark the child run FAILED with the error (creating the child if run() failed before it)."""
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    parent = client.get_run(parent_id)
    found = mlflow.search_runs(
        experiment_ids=None, search_all_experiments=True, output_format="list",
        filter_string=(f"tags.mlflow.parentRunId = '{parent_id}' and "
                       f"tags.`rnnlab.config_hash` = '{planned.hash}' and "
                       f"attributes.start_time >= {start_ms}"),
    )
    if found:
        run_id = found[0].info.run_id
    else:
        run = client.create_run(
            parent.info.experiment_id,
            run_name=planned.label,
            tags={"mlflow.parentRunId": parent_id, "rnnlab.config_hash": planned.hash,
                  "rnnlab.sweep": sweep_name, "rnnlab.task": planned.config.data.name,
                  "rnnlab.cell": planned.config.model.cell},
        )
        run_id = run.info.run_id
    client.set_tag(run_id, "rnnlab.status", "FAILED")
    client.set_tag(run_id, "rnnlab.error", message[:4000])
    client.log_text(run_id, traceback.format_exc(), "error.txt")
    client.set_terminated(run_id, "FAILED")
    return run_id


def summary(outcomes: list[Outcome], title: str = "sweep summary") -> str:
    """A plain-text table: status, run, key test metric; then failures and skip reasons, once each."""
    lines = [title, f"{'#':>3}  {'status':8}  {'run':44}  key test metric"]
    for i, o in enumerate(outcomes, 1):
        metric = f"{o.metric} = {o.value:.4g}" if o.value is not None else "-"
        lines.append(f"{i:>3}  {o.status:8}  {o.run.label[:44]:44}  {metric}")
    counts = {s: sum(o.status == s for o in outcomes) for s in ("FINISHED", "DONE", "SKIPPED", "FAILED")}
    lines.append("  ".join(f"{k.lower()}: {v}" for k, v in counts.items()))
    for o in outcomes:
        if o.status == "FAILED":
            lines.append(f"FAILED {o.run.label}: {o.reason} (run {o.run_id})")
    for reason in dict.fromkeys(o.reason for o in outcomes if o.status == "SKIPPED"):
        lines.append(f"SKIPPED: {reason}")
    return "\n".join(lines)
