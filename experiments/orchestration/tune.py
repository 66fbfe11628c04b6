"""Hyperparameter search with keras-tuner: each trial is one `experiments.run.run(config)`.

A search-space file (``experiments/spaces/*.yaml``)::

    name: adding-small            # MLflow tag `rnnlab.tuning`, the work folder's name
    description: ...
    base: {data: {...}, model: {...}, train: {...}, tracking: {...}}   # a Config as in config.py
    cells: [lstm, gru]            # one search per cell, same budget (`--all-cells`: every cell)
    tuner: random                 # random | bayesian | hyperband
    max_trials: 20                # per cell (hyperband: ignored, its budget is base train.epochs)
    seed: 0                       # the oracle's seed: every cell gets the same random draws
    objective: {name: val_loss, direction: min}   # the default; best value over the epochs
    space:                        # dotted Config keys; types int | float | choice | bool
      train.lr: {type: float, min: 1.0e-4, max: 1.0e-2, sampling: log}
      model.units: {type: int, min: 8, max: 128, sampling: log}
      model.dropout: {type: float, min: 0.0, max: 0.5}
      data.batch_size: {type: choice, values: [32, 64, 128]}

The search is a keras-tuner `Tuner` whose `run_trial` only turns the trial's values into a Config
and calls `run(config, parent_run_id=..., tags=...)`, the one training path of sweeps. Each trial is
an MLflow child run (tags `rnnlab.tuning`, `rnnlab.trial_id`, metric `tuner_score`) of the tuning's
parent run (tag `rnnlab.role=tuning`), which gets the best configuration per cell (tags
`rnnlab.best_run.<cell>`, metrics `best_score.<cell>`, artifact `best_sweep.yaml`, a sweep file).

The objective is read from the child run's per-epoch validation metric (`val_loss` by default),
the best epoch's value, because run() returns test metrics only and tuning on the test set would
leak it. It lives in one place: `Space.objective` / `trial_score`.

Resume: keras-tuner keeps its oracle in ``<workdir>/<name>-<space hash>/<cell>`` (``--workdir``,
else $RNNLAB_TUNING_DIR, else ``~/.cache/rnnlab/tuning``), outside the repository. Re-running the
same search reloads it and goes on; a trial whose MLflow child already FINISHED (same trial id, cell
and config hash, e.g. killed after training but before the oracle saved) is not trained again.

Distributed: keras-tuner's chief/worker mode. `--chief HOST:PORT` serves the oracle (and owns the
MLflow parent run); `--worker HOST:PORT` runs trials it gets from the chief; all log to one tracking
server ($MLFLOW_TRACKING_URI). A worker waits at most `--connect-timeout` seconds for its chief.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from experiments.config import Config, config_hash, validate_names
from experiments.orchestration.params import PARAM_KEYS, SAMPLINGS, Param
from experiments.recording.tags import (
    BEST_RUN_TAG,
    CELLS_TAG,
    CONFIG_HASH_TAG,
    DIRECTION_TAG,
    OBJECTIVE_TAG,
    ROLE_TAG,
    SPACE_FILE_TAG,
    SPACE_TAG,
    STATUS_TAG,
    SWEEP_TAG,
    TRIAL_ID_TAG,
    TUNER_ID_TAG,
    TUNER_TAG,
    TUNING_CELL_TAG,
    TUNING_TAG,
)

SPACE_KEYS = ("name", "description", "base", "cells", "tuner", "max_trials", "seed", "objective",
              "space")
TUNERS = ("random", "bayesian", "hyperband")
DIRECTIONS = ("min", "max")
DEFAULT_OBJECTIVE = {"name": "val_loss", "direction": "min"}
NOT_TUNABLE = ("data.name", "model.cell")
SPACES_DIR = Path(__file__).resolve().parent.parent / "spaces"
DEFAULT_SPACE = SPACES_DIR / "default.yaml"
SCORE = "tuner_score"
HYPERBAND_FACTOR = 3


class ChiefUnreachableError(RuntimeError):
    """A worker found no chief oracle at the address it was given."""


@dataclass
class Space:
    """A parsed and validated search-space file."""

    name: str
    source: str
    base: Config
    cells: list[str]
    params: list[Param]
    tuner: str = "random"
    max_trials: int = 10
    seed: int = 0
    objective: str = DEFAULT_OBJECTIVE["name"]
    direction: str = DEFAULT_OBJECTIVE["direction"]
    description: str = ""

    def config_for(self, cell: str, values: dict[str, Any], trial_id: str | None = None) -> Config:
        """The Config of one trial: base, the cell, the sampled values (hyperband: its epochs)."""
        d = self.base.to_dict()
        d["model"]["cell"] = cell
        for key, value in values.items():
            if key == "tuner/epochs":
                d["train"]["epochs"] = int(value)
                continue
            if key.startswith("tuner/"):  # hyperband bookkeeping; run() always starts afresh
                continue
            section, _, name = key.partition(".")
            d[section][name] = value
        if trial_id is not None:
            d["tracking"]["run_name"] = f"{self.name}-{cell}-t{trial_id}"
        return Config.from_dict(d, source=f"{self.source} ({cell}, {_describe(values)})")

    def searched_keys(self) -> tuple[str, ...]:
        """The Config keys a trial sets: the space's, and hyperband's epochs."""
        return tuple(p.key for p in self.params) + (
            ("train.epochs",) if self.tuner == "hyperband" else ())

    def fingerprint(self) -> str:
        """What the oracle's state depends on; a changed space starts a new oracle folder."""
        blob = json.dumps({
            "params": [dataclasses.asdict(p) for p in self.params], "tuner": self.tuner,
            "max_trials": self.max_trials, "seed": self.seed, "objective": self.objective,
            "direction": self.direction, "base": config_hash(self.base),
        }, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:8]

    def to_tag(self) -> str:
        """The parameters as JSON (the parent's `rnnlab.space` tag, read by the report)."""
        return json.dumps([dataclasses.asdict(p) for p in self.params], default=str)


@dataclass
class CellResult:
    """The outcome of one cell's search, read back from MLflow."""

    cell: str
    trials: int
    best_score: float | None = None
    median_score: float | None = None
    best_run_id: str | None = None
    best_config: Config | None = None


@dataclass
class TuneOutcome:
    space: Space
    parent_run_id: str
    cells: list[CellResult] = field(default_factory=list)
    trained: int = 0  # trials that called run() in this invocation


# --- reading and validating a search-space file ----------------------------------------------------


def load_space(path: str | Path, *, task: str | None = None, cells: Iterable[str] | None = None,
               tuner: str | None = None, max_trials: int | None = None, name: str | None = None,
               overrides: Iterable[str] = ()) -> Space:
    """Read a search-space YAML; the keyword arguments (the CLI's flags) override its keys."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"{path}: cannot read the search-space file: {err}") from err
    return parse_space(raw, source=str(path), task=task, cells=cells, tuner=tuner,
                       max_trials=max_trials, name=name, overrides=overrides)


def parse_space(raw: Any, *, source: str = "<space>", task: str | None = None,
                cells: Iterable[str] | None = None, tuner: str | None = None,
                max_trials: int | None = None, name: str | None = None,
                overrides: Iterable[str] = ()) -> Space:
    """Validate a search-space mapping: every error names the file, the key, the value and the
    valid choices, before any MLflow run exists."""
    _require(isinstance(raw, dict), f"{source}: a search-space file must be a mapping with keys "
                                    f"{', '.join(SPACE_KEYS)}")
    raw = copy.deepcopy(raw)
    unknown = sorted(set(raw) - set(SPACE_KEYS))
    _require(not unknown, f"{source}: unknown key {', '.join(map(repr, unknown))}; "
                          f"valid keys: {', '.join(SPACE_KEYS)}")
    name = name or raw.get("name")
    if task and not name:
        name = task
    _require(isinstance(name, str) and bool(name.strip()) and "/" not in name,
             f"{source}: key 'name' must be a non-empty string without '/', got {name!r}")
    base_raw = raw.get("base") or {}
    _require(isinstance(base_raw, dict), f"{source}: key 'base' must be a mapping (a Config)")
    if task:
        base_raw.setdefault("data", {})["name"] = task
    base = Config.from_dict(base_raw, source=f"{source}: base")
    if overrides:
        base = base.with_overrides(list(overrides))
    cells = list(cells) if cells else raw.get("cells") or [base.model.cell]
    _require(isinstance(cells, list) and all(isinstance(c, str) for c in cells),
             f"{source}: key 'cells' must be a list of cell names, got {cells!r}")
    for cell in cells:
        validate_names(dataclasses.replace(base, model=dataclasses.replace(base.model, cell=cell)),
                       source)
    tuner = tuner or raw.get("tuner", "random")
    _require(tuner in TUNERS, f"{source}: key 'tuner' is {tuner!r}; valid choices: "
                              f"{', '.join(TUNERS)}")
    max_trials = max_trials if max_trials is not None else raw.get("max_trials", 10)
    _require(isinstance(max_trials, int) and not isinstance(max_trials, bool) and max_trials >= 1,
             f"{source}: key 'max_trials' must be an integer >= 1, got {max_trials!r}")
    seed = raw.get("seed", 0)
    _require(isinstance(seed, int) and not isinstance(seed, bool),
             f"{source}: key 'seed' must be an integer, got {seed!r}")
    objective, direction = _objective(raw.get("objective"), source)
    space_raw = raw.get("space")
    _require(isinstance(space_raw, dict) and bool(space_raw),
             f"{source}: key 'space' must be a non-empty mapping of dotted Config keys to "
             f"{{type: {' | '.join(PARAM_KEYS)}, ...}}")
    params = [_param(key, spec, base, source) for key, spec in space_raw.items()]
    space = Space(name=name, source=source, base=base, cells=cells, params=params, tuner=tuner,
                  max_trials=max_trials, seed=seed, objective=objective, direction=direction,
                  description=str(raw.get("description", "")))
    for p in params:  # each extreme value must make a valid Config (e.g. dropout < 1)
        for value in p.extremes():
            space.config_for(cells[0], {p.key: value})
    return space


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _objective(raw: Any, source: str) -> tuple[str, str]:
    raw = DEFAULT_OBJECTIVE if raw is None else raw
    _require(isinstance(raw, dict) and set(raw) <= {"name", "direction"},
             f"{source}: key 'objective' must be {{name: <val metric>, direction: min|max}}, "
             f"got {raw!r}")
    name, direction = raw.get("name", "val_loss"), raw.get("direction", "min")
    _require(isinstance(name, str) and name.startswith("val_"),
             f"{source}: objective.name must be a validation metric logged per epoch "
             f"(val_loss, val_<metric>), got {name!r}")
    _require(direction in DIRECTIONS, f"{source}: objective.direction is {direction!r}; "
                                      f"valid choices: {', '.join(DIRECTIONS)}")
    return name, direction


def _param(key: Any, spec: Any, base: Config, source: str) -> Param:
    where = f"{source}: space key {key!r}"
    flat = base.flat()
    _require(isinstance(key, str) and key in flat and key not in NOT_TUNABLE,
             f"{where} is not a tunable Config key; valid keys are 'section.key' with section "
             f"data, model, train (e.g. train.lr, model.units); the cell is chosen by 'cells'")
    kind = spec.get("type") if isinstance(spec, dict) else None
    _require(kind in PARAM_KEYS,
             f"{where}: 'type' is {kind!r}; valid types: {', '.join(PARAM_KEYS)} "
             f"(e.g. {{type: float, min: 1.0e-4, max: 1.0e-2, sampling: log}})")
    unknown = sorted(set(spec) - set(PARAM_KEYS[kind]))
    _require(not unknown, f"{where}: unknown key {', '.join(map(repr, unknown))} for type "
                          f"{kind}; valid keys: {', '.join(PARAM_KEYS[kind])}")
    if kind == "choice":
        values = spec.get("values")
        _require(isinstance(values, list) and bool(values),
                 f"{where}: 'values' must be a non-empty list, got {values!r}")
        return Param(key, kind, values=tuple(values))
    if kind == "bool":
        return Param(key, kind)
    bounds = {}
    for bound in ("min", "max"):
        value = spec.get(bound)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if kind == "int":
            ok = ok and float(value).is_integer()
        _require(ok, f"{where}: '{bound}' must be a finite {kind}, got {value!r}")
        bounds[bound] = value
    low, high = bounds["min"], bounds["max"]
    _require(low <= high, f"{where}: min {low!r} > max {high!r}")
    sampling = spec.get("sampling", "linear")
    _require(sampling in SAMPLINGS, f"{where}: 'sampling' is {sampling!r}; valid choices: "
                                    f"{', '.join(SAMPLINGS)}")
    _require(sampling != "log" or low > 0,
             f"{where}: sampling log needs min > 0, got min {low!r}")
    step = spec.get("step")
    _require(step is None or (isinstance(step, (int, float)) and not isinstance(step, bool)
                              and step > 0),
             f"{where}: 'step' must be a positive number, got {step!r}")
    return Param(key, kind, min=low, max=high, step=step, log=sampling == "log")


def _describe(values: dict) -> str:
    shown = {k: v for k, v in values.items() if not k.startswith("tuner/") or k == "tuner/epochs"}
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in shown.items()) or "base"


# --- the objective and run()'s result ---------------------------------------------------------------


@dataclass(frozen=True)
class TrialRun:
    """What the tuner needs from run()'s result."""

    status: str
    run_id: str | None
    reason: str | None


def read_result(result: Any) -> TrialRun:
    """The one place that reads run()'s result: today a dict, soon a `RunResult` dataclass
    (contracts §1); both are accepted."""
    def get(key, default=None):
        if isinstance(result, dict):
            return result.get(key, default)
        return getattr(result, key, default)

    return TrialRun(status=get("status", "FINISHED"), run_id=get("run_id"), reason=get("reason"))


def trial_score(run_id: str, objective: str, direction: str) -> float:
    """The objective of a finished trial: the best per-epoch value of `objective` it logged."""
    import mlflow

    client = mlflow.MlflowClient()
    history = [m.value for m in client.get_metric_history(run_id, objective)]
    history = [v for v in history if math.isfinite(v)]
    if not history:
        from keras_tuner import errors

        logged = sorted(client.get_run(run_id).data.metrics)
        raise errors.FatalError(
            f"objective {objective!r} was not logged by run {run_id}; validation metrics logged: "
            f"{', '.join(k for k in logged if k.startswith('val_')) or 'none'}")
    return min(history) if direction == "min" else max(history)


# --- the tuner --------------------------------------------------------------------------------------


def make_tuner(space: Space, cell: str, *, parent_run_id: str, workdir: Path,
               run_fn: Callable | None = None, out: Callable[[str], None] = print):
    """A keras-tuner Tuner for one cell's search; its oracle state lives in `workdir`."""
    import keras_tuner

    class RunTuner(keras_tuner.Tuner):
        """A Tuner whose trial is one `run(config)`: no model is built or fitted here."""

        def run_trial(self, trial, *args, **kwargs):
            return {space.objective: run_one_trial(space, cell, trial, self.tuner_id,
                                                   parent_run_id=parent_run_id,
                                                   run_fn=run_fn, out=out, counter=self)}

    hp = keras_tuner.HyperParameters()
    for p in space.params:
        p.declare(hp)
    objective = keras_tuner.Objective(space.objective, space.direction)
    # keras-tuner reads seed 0 as "none" and draws a random one (`seed or random.randint(...)`),
    # which would give each cell other draws; the oracle's seed is the space's + 1, never 0
    common = {"objective": objective, "hyperparameters": hp, "seed": space.seed + 1,
              "allow_new_entries": False, "tune_new_entries": True}
    if space.tuner == "random":
        oracle = keras_tuner.oracles.RandomSearchOracle(max_trials=space.max_trials, **common)
    elif space.tuner == "bayesian":
        oracle = keras_tuner.oracles.BayesianOptimizationOracle(max_trials=space.max_trials,
                                                                **common)
    else:
        oracle = keras_tuner.oracles.HyperbandOracle(max_epochs=space.base.train.epochs,
                                                     factor=HYPERBAND_FACTOR, **common)
    tuner = RunTuner(oracle=oracle, directory=str(workdir / f"{space.name}-{space.fingerprint()}"),
                     project_name=cell, overwrite=False)
    tuner.trained = 0
    return tuner


def run_one_trial(space: Space, cell: str, trial, tuner_id: str, *, parent_run_id: str,
                  run_fn: Callable | None, out: Callable[[str], None], counter=None) -> float:
    """Turn the trial's values into a Config and run it as a child of the parent run; a trial
    already FINISHED in MLflow (same id, cell, config hash) is read back instead of retrained."""
    from keras_tuner import errors

    if run_fn is None:
        from experiments.run import run as run_fn

    values = dict(trial.hyperparameters.values)
    config = space.config_for(cell, values, trial_id=trial.trial_id)
    chash = config_hash(config)
    done = _finished_trial(parent_run_id, cell, trial.trial_id, chash)
    if done is not None:
        out(f"tune {space.name!r} {cell} trial {trial.trial_id}: finished before (run {done})")
        return _score_run(done, space)
    out(f"tune {space.name!r} {cell} trial {trial.trial_id} ({tuner_id}): {_describe(values)}")
    tags = {TUNING_TAG: space.name, TRIAL_ID_TAG: trial.trial_id,
            TUNER_ID_TAG: tuner_id, TUNING_CELL_TAG: cell}
    result = read_result(run_fn(config, parent_run_id=parent_run_id, tags=tags))
    if counter is not None:
        counter.trained += 1
    if result.status == "SKIPPED":
        raise errors.FatalError(f"trial skipped, so every trial would be: {result.reason}")
    if result.run_id is None:
        raise errors.FatalError("tuning needs tracking on (tracking.enabled: true)")
    return _score_run(result.run_id, space)


def _score_run(run_id: str, space: Space) -> float:
    import mlflow

    score = trial_score(run_id, space.objective, space.direction)
    mlflow.MlflowClient().log_metric(run_id, SCORE, score)
    return score


def _finished_trial(parent_run_id: str, cell: str, trial_id: str, chash: str) -> str | None:
    import mlflow

    found = mlflow.search_runs(
        experiment_ids=[_experiment_of(parent_run_id)], output_format="list", max_results=1,
        filter_string=(f"tags.mlflow.parentRunId = '{parent_run_id}' and "
                       f"tags.`{TRIAL_ID_TAG}` = '{trial_id}' and "
                       f"tags.`{TUNING_CELL_TAG}` = '{cell}' and "
                       f"tags.`{CONFIG_HASH_TAG}` = '{chash}' and "
                       f"tags.`{STATUS_TAG}` = 'FINISHED' and attributes.status = 'FINISHED'"),
    )
    return found[0].info.run_id if found else None


def _experiment_of(run_id: str) -> str:
    """The experiment of a run (children land in their parent's experiment)."""
    import mlflow

    return mlflow.MlflowClient().get_run(run_id).info.experiment_id


# --- the search -------------------------------------------------------------------------------------


def default_workdir() -> Path:
    """$RNNLAB_TUNING_DIR, else ~/.cache/rnnlab/tuning: outside the repository."""
    return Path(os.environ.get("RNNLAB_TUNING_DIR") or Path.home() / ".cache" / "rnnlab" / "tuning")


def check_tracking() -> str:
    """Fail before any training when the tracking store does not answer (`tracking.configure`
    checks it: one line naming the URI, `TrackingUnavailable`, exit 1 as for run and sweep);
    return its URI."""
    from experiments.recording import store

    return store.configure()


def tune(space: Space, *, workdir: Path | None = None, run_fn: Callable | None = None,
         out: Callable[[str], None] = print, export: str | Path | None = None,
         connect_timeout_s: float = 60.0) -> TuneOutcome:
    """Run one search per cell under one MLflow parent run (resumed if it exists); log and return
    the best configuration per cell, and write it as a sweep file to `export` if given.

    In distributed mode (KERASTUNER_* set by `--chief`/`--worker`), the chief serves the oracle and
    records the best; a worker runs trials until the chief says stop.
    """
    import mlflow

    from experiments.recording import store

    workdir = Path(workdir or default_workdir())
    check_tracking()
    store.warn_if_dirty("rnnlab tune")
    if _is_worker():
        return _work(space, workdir, run_fn, out, connect_timeout_s)
    started = time.monotonic()
    previous = store.find_parent_run("tuning", space.name)
    tags = {ROLE_TAG: "tuning", TUNING_TAG: space.name, SWEEP_TAG: "",
            TUNER_TAG: space.tuner, OBJECTIVE_TAG: space.objective,
            DIRECTION_TAG: space.direction, SPACE_TAG: space.to_tag(),
            CELLS_TAG: ",".join(space.cells), SPACE_FILE_TAG: space.source}
    with store.start_parent_run(space.name, run_id=previous, tags=tags) as parent:
        parent_id = parent.info.run_id
        if previous:
            mlflow.set_tags(tags)
        out(f"tune {space.name!r}: {space.tuner} search, {len(space.cells)} cell(s) × "
            f"{space.max_trials} trials, objective {space.direction} {space.objective} "
            f"(MLflow parent run {parent_id}, {store.tracking_uri()}; oracle in {workdir})")
        outcome = _search_cells(space, parent_id, workdir, run_fn, out)
        outcome.cells = [cell_result(space, parent_id, cell) for cell in space.cells]
        _log_best(space, outcome)
    if export:
        Path(export).parent.mkdir(parents=True, exist_ok=True)  # e.g. experiments/sweeps/tuned/
        Path(export).write_text(best_sweep_yaml(space, outcome))
        out(f"best configuration(s) written to {export} (run it with `rnnlab sweep {export}`)")
    out(summary(outcome, time.monotonic() - started))
    return outcome


def _search_cells(space: Space, parent_id: str, workdir: Path, run_fn, out) -> TuneOutcome:
    """Each cell's search in turn (the chief's and every worker's share of the trials)."""
    outcome = TuneOutcome(space, parent_id)
    for cell in space.cells:
        tuner = make_tuner(space, cell, parent_run_id=parent_id, workdir=workdir, run_fn=run_fn,
                           out=out)
        tuner.search(verbose=0)
        outcome.trained += tuner.trained
    return outcome


def _is_worker() -> bool:
    return "KERASTUNER_ORACLE_IP" in os.environ and "chief" not in os.environ.get(
        "KERASTUNER_TUNER_ID", "")


def _work(space: Space, workdir: Path, run_fn, out, connect_timeout_s: float) -> TuneOutcome:
    """A worker: wait for the chief, then run the trials it hands out, cell by cell."""
    from experiments.recording import store

    wait_for_chief(os.environ["KERASTUNER_ORACLE_IP"], os.environ["KERASTUNER_ORACLE_PORT"],
                   connect_timeout_s)
    parent_id = store.find_parent_run("tuning", space.name)
    if parent_id is None:
        raise ChiefUnreachableError(f"the chief of tuning {space.name!r} answers but no MLflow "
                                    f"parent run is found: do chief and worker share one "
                                    f"MLFLOW_TRACKING_URI?")
    outcome = _search_cells(space, parent_id, workdir, run_fn, out)
    out(f"tune {space.name!r} worker {os.environ['KERASTUNER_TUNER_ID']}: {outcome.trained} "
        f"trial(s) run")
    return outcome


def wait_for_chief(host: str, port: str | int, timeout_s: float) -> None:
    """Block until the chief's gRPC oracle accepts connections, at most `timeout_s` seconds."""
    import grpc

    channel = grpc.insecure_channel(f"{host}:{port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout_s)
    except grpc.FutureTimeoutError:
        raise ChiefUnreachableError(
            f"no keras-tuner chief answers at {host}:{port} after {timeout_s:g} s; start "
            f"`rnnlab tune ... --chief {host}:{port}` first, or check the address "
            f"(--connect-timeout sets the wait)") from None
    finally:
        channel.close()


def distributed_env(role: str, address: str, tuner_id: str | None = None) -> dict[str, str]:
    """The KERASTUNER_* variables for `role` ("chief" or "worker") at `address` (HOST:PORT)."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"--{role} {address!r}: expected HOST:PORT, e.g. 127.0.0.1:8000")
    tuner_id = "chief" if role == "chief" else (tuner_id or f"worker-{os.getpid()}")
    if role == "worker" and "chief" in tuner_id:
        raise ValueError(f"--tuner-id {tuner_id!r}: a worker's id must not contain 'chief'")
    return {"KERASTUNER_TUNER_ID": tuner_id, "KERASTUNER_ORACLE_IP": host,
            "KERASTUNER_ORACLE_PORT": port}


# --- results ----------------------------------------------------------------------------------------


def trial_runs(parent_run_id: str, cell: str | None = None) -> list:
    """The parent's FINISHED trial runs that logged a score (of one cell if given)."""
    import mlflow

    where = [f"tags.mlflow.parentRunId = '{parent_run_id}'", "attributes.status = 'FINISHED'"]
    if cell:
        where.append(f"tags.`{TUNING_CELL_TAG}` = '{cell}'")
    runs = mlflow.search_runs(experiment_ids=[_experiment_of(parent_run_id)], output_format="list",
                              filter_string=" and ".join(where))
    return [r for r in runs if SCORE in r.data.metrics and TRIAL_ID_TAG in r.data.tags]


def cell_result(space: Space, parent_run_id: str, cell: str) -> CellResult:
    runs = trial_runs(parent_run_id, cell)
    if not runs:
        return CellResult(cell, 0)
    sign = 1 if space.direction == "min" else -1
    best = min(runs, key=lambda r: sign * r.data.metrics[SCORE])
    scores = [r.data.metrics[SCORE] for r in runs]
    values = {p.key: _param_value(best.data.params.get(p.key), p) for p in space.params}
    values["tuner/epochs"] = int(best.data.params.get("train.epochs", space.base.train.epochs))
    return CellResult(cell, len(runs), best_score=best.data.metrics[SCORE],
                      median_score=statistics.median(scores), best_run_id=best.info.run_id,
                      best_config=space.config_for(cell, values))


def _param_value(text: str | None, param: Param):
    """A logged param (a string) back as the value the space gave it."""
    if text is None or text == "None":
        return None
    if param.type == "int":
        return int(float(text))
    if param.type == "float":
        return float(text)
    if param.type == "bool":
        return text == "True"
    return next((v for v in param.values if str(v) == text), text)


def _log_best(space: Space, outcome: TuneOutcome) -> None:
    import mlflow

    for cell in outcome.cells:
        if cell.best_run_id is None:
            continue
        mlflow.log_metrics({f"best_score.{cell.cell}": cell.best_score,
                            f"median_score.{cell.cell}": cell.median_score,
                            f"trials.{cell.cell}": cell.trials})
        mlflow.set_tag(f"{BEST_RUN_TAG}.{cell.cell}", cell.best_run_id)
        mlflow.log_text(yaml.safe_dump(cell.best_config.to_dict(), sort_keys=False),
                        f"best/{cell.cell}.yaml")
    if any(c.best_config for c in outcome.cells):
        mlflow.log_text(best_sweep_yaml(space, outcome), "best_sweep.yaml")


def best_sweep_yaml(space: Space, outcome: TuneOutcome) -> str:
    """The best configuration of each cell as a sweep file (`rnnlab sweep` runs it)."""
    base = space.base.to_dict()
    base["tracking"]["run_name"] = None
    base_flat = space.base.flat()
    searched = space.searched_keys()
    tasks, lines = [], []
    for cell in outcome.cells:
        if cell.best_config is None:
            continue
        # every searched key, also where the best value is the base's: a sweep's `tuned:` reads them
        chosen = {k: v for k, v in cell.best_config.flat().items()
                  if (k in searched or v != base_flat.get(k)) and not k.startswith("tracking.")}
        tasks.append({"model.cell": cell.cell, **chosen})
        lines.append(f"#   {cell.cell}: {space.objective} {cell.best_score:.4g} (median "
                     f"{cell.median_score:.4g}) over {cell.trials} trials, run {cell.best_run_id}")
    sweep = {"name": f"{space.name}-best",
             "description": f"best configuration per cell of tuning {space.name!r} "
                            f"({space.direction} {space.objective}, {space.tuner} search)",
             "base": base, "tasks": tasks}
    head = (f"# Written by `rnnlab tune {space.source} --export`: tuning {space.name!r}, MLflow "
            f"parent run {outcome.parent_run_id}, {space.tuner} search, max {space.max_trials} "
            f"trials per cell; best {space.direction} {space.objective} per cell:")
    return "\n".join([head, *lines]) + "\n" + yaml.safe_dump(sweep, sort_keys=False)


def summary(outcome: TuneOutcome, seconds: float) -> str:
    space = outcome.space
    head = (f"tune {space.name!r} done in {seconds:.0f} s: {outcome.trained} trial(s) trained now; "
            f"{space.direction} {space.objective} per cell:")
    lines = [head,
             f"  {'cell':10s} {'trials':>6s} {'best':>10s} {'median':>10s}  best run"]
    for c in outcome.cells:
        best = f"{c.best_score:10.4g}" if c.best_score is not None else f"{'-':>10s}"
        median = f"{c.median_score:10.4g}" if c.median_score is not None else f"{'-':>10s}"
        lines.append(f"  {c.cell:10s} {c.trials:6d} {best} {median}  {c.best_run_id or '-'}")
    return "\n".join(lines)


# --- the command line (`rnnlab tune`) ---------------------------------------------------------------


def cli_tune(args) -> int:
    """`rnnlab tune`: see experiments/cli.py for the flags. Bad input raises ValueError (exit 2)."""
    import sys

    from experiments.tasks.settings import cell_names  # not `cells`: a refusal needs no Keras

    if args.chief and args.worker:
        raise ValueError("--chief and --worker exclude each other")
    if not args.space and not args.task:
        raise ValueError("give a search-space file (e.g. experiments/spaces/default.yaml) or --task")
    if args.all_cells and args.cell:
        raise ValueError("--cell and --all-cells exclude each other")
    chosen = cell_names() if args.all_cells else [args.cell] if args.cell else None
    name = args.name
    if not args.space and not name:
        name = f"{args.task}-{'all' if args.all_cells else args.cell or 'lstm'}-{args.tuner or 'random'}"
    space = load_space(args.space or DEFAULT_SPACE, task=args.task, cells=chosen, tuner=args.tuner,
                       max_trials=args.max_trials, name=name, overrides=args.set)
    from keras_tuner import errors  # Keras: once the space is valid

    if args.chief or args.worker:
        role = "chief" if args.chief else "worker"
        os.environ.update(distributed_env(role, args.chief or args.worker, args.tuner_id))
    try:
        tune(space, workdir=args.workdir, export=args.export,
             connect_timeout_s=args.connect_timeout)
    except (ChiefUnreachableError, RuntimeError, errors.FatalError) as err:
        # RuntimeError: keras-tuner gave up after max_consecutive_failed_trials failed trials
        print(f"rnnlab tune: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"rnnlab tune: interrupted; run the same command again to resume "
              f"(oracle in {args.workdir or default_workdir()})", file=sys.stderr)
        return 130
    return 0
