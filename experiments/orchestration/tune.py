"""Hyperparameter search with keras-tuner: each trial is one `experiments.run.run(config)`.

A search-space file (``experiments/spaces/*.yaml``) is read and checked by `space.py`.

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

Distributed (`tune_workers.py`): keras-tuner's chief/worker mode, started by Ray (`--workers N`,
`--address ADDR`: this process serves the oracle and owns the MLflow parent run, Ray runs N
keras-tuner workers as tasks of the sweep's engine) or by hand (`--chief HOST:PORT` serves the
oracle, `--worker HOST:PORT` runs trials from it, waiting at most `--connect-timeout` seconds for
it). All log to one tracking store ($MLFLOW_TRACKING_URI).
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from experiments.config import Config, config_hash
from experiments.orchestration import tune_workers
from experiments.orchestration.params import Param
from experiments.orchestration.space import (  # noqa: F401 - also read as tune.X
    DEFAULT_SPACE,
    SPACES_DIR,
    Space,
    describe,
    load_space,
    parse_space,
)
from experiments.orchestration.tune_workers import ChiefUnreachableError
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

SCORE = "tuner_score"
HYPERBAND_FACTOR = 3


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
    unfinished: list[str] = field(default_factory=list)  # trials whose Ray worker failed for good


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

    from experiments.recording import store

    client = mlflow.MlflowClient()
    history = [m.value for m in store.retrying(client.get_metric_history, run_id, objective,
                                               what="reading a trial's objective")]
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
    # A trial that raised (a store error, a killed data loader) runs once more with the same
    # values before it counts as failed: a failed trial would leave its cell a smaller budget
    # than the others. A diverged run does not raise: it is scored on what it logged.
    common = {"objective": objective, "hyperparameters": hp, "seed": space.seed + 1,
              "allow_new_entries": False, "tune_new_entries": True, "max_retries_per_trial": 1}
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
    already FINISHED in MLflow (same id, cell, config hash) is read back instead of retrained; one
    whose earlier run was killed (a dead worker, a stopped driver) resumes from its checkpoint."""
    from keras_tuner import errors

    from experiments.recording import claims

    if run_fn is None:
        from experiments.run import run as run_fn

    values = dict(trial.hyperparameters.values)
    config = space.config_for(cell, values, trial_id=trial.trial_id)
    done, resumed_from = _trial_state(parent_run_id, cell, trial.trial_id, config_hash(config))
    if done is not None:
        out(f"tune {space.name!r} {cell} trial {trial.trial_id}: finished before (run {done})")
        return _score_run(done, space)
    resumed = f", resuming killed run {resumed_from}" if resumed_from else ""
    out(f"tune {space.name!r} {cell} trial {trial.trial_id} ({tuner_id}): {describe(values)}"
        f"{resumed}")
    tags = {TUNING_TAG: space.name, TRIAL_ID_TAG: trial.trial_id,
            TUNER_ID_TAG: tuner_id, TUNING_CELL_TAG: cell}
    with claims.claimed(None, resumed_from):
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

    from experiments.recording import store

    score = trial_score(run_id, space.objective, space.direction)
    store.retrying(mlflow.MlflowClient().log_metric, run_id, SCORE, score,
                   what="logging a trial's score")
    return score


def _trial_state(parent_run_id: str, cell: str, trial_id: str,
                 chash: str) -> tuple[str | None, str | None]:
    """(its FINISHED run, the newest killed run to resume from) for one trial. A RUNNING run of it
    whose holder is gone (its worker died: process gone on this host, or lease expired) is ended
    KILLED first; one whose holder still lives (a worker on another node not yet known dead) is
    waited for, at most until its lease runs out."""
    import mlflow

    from experiments.recording import claims, store

    while True:
        found = store.retrying(
            mlflow.search_runs, experiment_ids=[_experiment_of(parent_run_id)],
            output_format="list", order_by=["attributes.start_time ASC"],
            filter_string=(f"tags.mlflow.parentRunId = '{parent_run_id}' and "
                           f"tags.`{TRIAL_ID_TAG}` = '{trial_id}' and "
                           f"tags.`{TUNING_CELL_TAG}` = '{cell}' and "
                           f"tags.`{CONFIG_HASH_TAG}` = '{chash}'"), what="looking up a trial")
        done = next((r.info.run_id for r in found if r.info.status == "FINISHED"
                     and r.data.tags.get(STATUS_TAG) == "FINISHED"), None)
        running = [r for r in found if r.info.status == "RUNNING"]
        if done is not None or not any(claims.holder_gone(r) is None for r in running):
            break
        time.sleep(min(claims.lease_seconds() / 4, 10.0))
    for r in running:
        if done is None and (gone := claims.holder_gone(r)):
            claims.end_run_as(r.info.run_id, "KILLED", f"{gone}: its worker stopped without "
                              f"ending it", end_time=claims.last_sign_of_life(r))
    killed = [r.info.run_id for r in found if r.info.status in ("KILLED", "RUNNING")]
    return done, (killed[-1] if killed else None)


def _experiment_of(run_id: str) -> str:
    """The experiment of a run (children land in their parent's experiment)."""
    import mlflow

    from experiments.recording import store

    return store.retrying(mlflow.MlflowClient().get_run, run_id,
                          what="reading a run's experiment").info.experiment_id


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
         connect_timeout_s: float = 60.0, engine=None) -> TuneOutcome:
    """Run one search per cell under one MLflow parent run (resumed if it exists); log and return
    the best configuration per cell, and write it as a sweep file to `export` if given.

    With `engine` (a connected `engine.RayEngine`), keras-tuner workers run the trials as Ray tasks
    while this process serves the oracle (`tune_workers.search_on_engine`); Ctrl-C / SIGTERM ends
    their runs and the parent KILLED, and the re-run resumes them. In hand-started distributed
    mode (KERASTUNER_* set by `--chief`/`--worker`), the chief serves the oracle and records the
    best; a worker runs trials until the chief says stop.
    """
    import mlflow

    from experiments.recording import claims, store

    workdir = Path(workdir or default_workdir())
    check_tracking()
    store.warn_if_dirty("rnnlab tune")
    if tune_workers.is_worker():
        return tune_workers.work(space, workdir, run_fn, out, connect_timeout_s)
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
        where = "this process" if engine is None else engine.description
        out(f"tune {space.name!r}: {space.tuner} search, {len(space.cells)} cell(s) × "
            f"{space.max_trials} trials, objective {space.direction} {space.objective} "
            f"(MLflow parent run {parent_id}, {store.tracking_uri()}; oracle in {workdir}; "
            f"trials on {where})")
        try:
            if engine is None:
                outcome = search_cells(space, parent_id, workdir, run_fn, out)
            else:
                outcome = tune_workers.search_on_engine(space, parent_id, workdir, engine, out)
        except KeyboardInterrupt as err:  # Ctrl-C / SIGTERM: the trials' runs and the parent
            if engine is not None:        # end KILLED (Ray's workers are stopped by now)
                tune_workers.end_stopped_trials(parent_id, claims.stop_reason(err))
            store.retrying(mlflow.end_run, "KILLED", what="ending the tuning")
            claims.end_run_as(parent_id, "KILLED", claims.stop_reason(err))
            raise
        outcome.cells = [cell_result(space, parent_id, cell) for cell in space.cells]
        _log_best(space, outcome)
        if outcome.unfinished:
            out(f"tune {space.name!r}: left unfinished (their workers failed; run the same "
                f"command again to resume them): {', '.join(outcome.unfinished)}")
            store.retrying(mlflow.end_run, "FAILED", what="ending the tuning")
            claims.end_run_as(parent_id, "FAILED",
                              f"left unfinished: {', '.join(outcome.unfinished)}")
    if export:
        Path(export).parent.mkdir(parents=True, exist_ok=True)  # e.g. experiments/sweeps/tuned/
        Path(export).write_text(best_sweep_yaml(space, outcome))
        out(f"best configuration(s) written to {export} (run it with `rnnlab sweep {export}`)")
    out(summary(outcome, time.monotonic() - started))
    return outcome


def search_cells(space: Space, parent_id: str, workdir: Path, run_fn, out) -> TuneOutcome:
    """Each cell's search in turn, in this process (or a hand-started chief's or worker's share)."""
    outcome = TuneOutcome(space, parent_id)
    for cell in space.cells:
        tuner = make_tuner(space, cell, parent_run_id=parent_id, workdir=workdir, run_fn=run_fn,
                           out=out)
        tuner.search(verbose=0)
        outcome.trained += tuner.trained
    return outcome


# --- results ----------------------------------------------------------------------------------------


def trial_runs(parent_run_id: str, cell: str | None = None) -> list:
    """The parent's FINISHED trial runs that logged a score (of one cell if given)."""
    import mlflow

    from experiments.recording import store

    where = [f"tags.mlflow.parentRunId = '{parent_run_id}'", "attributes.status = 'FINISHED'"]
    if cell:
        where.append(f"tags.`{TUNING_CELL_TAG}` = '{cell}'")
    runs = store.retrying(mlflow.search_runs, experiment_ids=[_experiment_of(parent_run_id)],
                          output_format="list", filter_string=" and ".join(where),
                          what="reading the trials")
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

    from experiments.guards import stop_on_signals
    from experiments.orchestration.engine import EngineSettings, engine_for

    settings = EngineSettings.from_args(args)
    if settings.uses_ray and (args.chief or args.worker):
        raise ValueError("--workers / --address (Ray starts the workers) and --chief / --worker "
                         "(started by hand) exclude each other")
    if args.checkpoint_dir:  # read by every trial, here and in Ray's workers (forwarded)
        os.environ["RNNLAB_CHECKPOINT_DIR"] = os.path.abspath(args.checkpoint_dir)
    if args.chief or args.worker:
        role = "chief" if args.chief else "worker"
        os.environ.update(tune_workers.distributed_env(role, args.chief or args.worker,
                                                       args.tuner_id))
    # Ray only with --workers / --address / $RAY_ADDRESS; checked before any MLflow run exists
    engine = engine_for(settings, (space.config_for(c, {}) for c in space.cells), "rnnlab tune")
    try:
        with stop_on_signals():
            outcome = tune(space, workdir=args.workdir, export=args.export,
                           connect_timeout_s=args.connect_timeout,
                           engine=engine if settings.uses_ray else None)
    except (ChiefUnreachableError, RuntimeError, errors.FatalError) as err:
        # RuntimeError: keras-tuner gave up after max_consecutive_failed_trials failed trials
        print(f"rnnlab tune: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:
        print(f"rnnlab tune: {err or 'interrupted'}; run the same command again to resume "
              f"(oracle in {args.workdir or default_workdir()})", file=sys.stderr)
        return getattr(err, "exit_code", 130)
    finally:
        engine.close()
    return 1 if outcome.unfinished else 0
