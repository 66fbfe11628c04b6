"""Launching a planned sweep (`experiments.orchestration.plan.Sweep`): one MLflow parent run, one child per planned
configuration, children that FINISHED before (in this store, or in a runs export of an earlier
machine's) skipped, failures recorded and the sweep going on, a progress line per run and a
summary at the end."""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mlflow
from rich import progress as bar

from experiments.analysis import report
from experiments.guards import Diverged
from experiments.orchestration.engine import Local, RayEngine
from experiments.orchestration.plan import PlannedRun, Sweep
from experiments.recording import claims, recorder, store
from experiments.recording.tags import (
    CELL_TAG,
    CLAIMED_BY_TAG,
    CONFIG_HASH_TAG,
    ERROR_TAG,
    REASON_TAG,
    ROLE_TAG,
    SOLVED_METRIC_TAG,
    STATUS_TAG,
    SWEEP_FILE_TAG,
    SWEEP_ONLY_TAG,
    SWEEP_RUNS_TAG,
    SWEEP_TAG,
    TASK_TAG,
)
from experiments.results import RunResult, key_metric
from experiments.run import run


@dataclass
class Outcome:
    """What happened to one planned run: FINISHED, SKIPPED (no data), DONE (finished before),
    CLAIMED (another process is training it: the sweep waits for it), FAILED, or UNFINISHED (its
    engine's worker failed for good: the configuration is left to a re-run)."""

    run: PlannedRun
    status: str
    run_id: str | None = None
    metric: str | None = None
    value: float | None = None
    seconds: float = 0.0
    reason: str = ""
    result: RunResult | None = None


def format_duration(seconds: float) -> str:
    """'1h02m', '4m30s', '12s'."""
    seconds = round(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def run_sweep(
    sweep: Sweep,
    *,
    out: Callable[[str], None] = print,
    run_fn: Callable[..., RunResult] | None = None,
    engine: Local | RayEngine | None = None,
    exported: Exported | None = None,
) -> list[Outcome]:
    """Run every planned configuration as a child of the sweep's parent run, on `engine` (default:
    this process, one after another), skipping those that already FINISHED with the same config
    hash; a configuration another live process holds is waited for, and trained here if its holder
    dies. A run that raises is marked FAILED and the sweep goes on. Prints a progress line before
    each run and a summary at the end; returns the outcomes, in the sweep's order. The parent ends
    FINISHED only when every configuration finished (or was skipped for missing data).
    Configurations FINISHED in `exported` (a runs export: an earlier machine's store) and not in
    this store are DONE too, and not run.

    The parent run is the newest one tagged with this sweep's name (resumed), else a new one (when
    several processes start at once, the earliest-created one). Ctrl-C / SIGTERM (`Stopped`) end
    the running child and the parent KILLED with the signal as reason, and propagate.
    """
    engine = engine or Local()
    store.configure()
    store.warn_if_dirty("rnnlab sweep")
    recorder.import_model_flavor()
    started = time.monotonic()
    with _open_parent(sweep.name) as parent:
        parent_id = parent.info.run_id
        store.retrying(mlflow.set_tags, {SWEEP_FILE_TAG: sweep.source,
                                            SWEEP_RUNS_TAG: len(sweep.runs),
                                            SWEEP_ONLY_TAG: " ".join(sweep.only),
                                            STATUS_TAG: "RUNNING", REASON_TAG: ""},
                          what="tagging the sweep")
        finished = store.find_finished_children(parent_id)
        outcomes = [Outcome(p, "DONE", *exported.runs[p.hash]) for p in sweep.runs
                    if exported and p.hash in exported.runs and p.hash not in finished]
        todo = sum(p.hash not in finished for p in sweep.runs) - len(outcomes)
        where = "" if isinstance(engine, Local) else f" on {engine.description}"
        part = f" (only {' '.join(sweep.only)})" if sweep.only else ""
        export = f" ({len(outcomes)} of them in {exported.source})" if exported else ""
        out(f"sweep {sweep.name!r}{part}: {len(sweep.runs)} runs, {len(sweep.runs) - todo} finished "
            f"before{export}, {todo} to run{where} (MLflow parent run {parent_id}, "
            f"{store.tracking_uri()})")
        context = SweepContext(sweep.name, parent.info.experiment_id, parent_id, run_fn)
        try:
            _run_all(sweep, finished, context, engine, outcomes, out)
        except KeyboardInterrupt as err:
            _end_active_runs("KILLED", keep=parent_id)
            _end_stopped(engine.stopped, parent_id, claims.stop_reason(err))
            store.retrying(mlflow.end_run, "KILLED", what="ending the sweep")
            claims.end_run_as(parent_id, "KILLED", claims.stop_reason(err))
            out(summary(outcomes, title=f"sweep {sweep.name!r} interrupted "
                                            f"({claims.stop_reason(err)})"))
            raise
        log_parent(sweep, outcomes, time.monotonic() - started, out)
        left = [o.run.label for o in outcomes if o.status == "UNFINISHED"]
        status = "FAILED" if left or any(o.status == "FAILED" for o in outcomes) else "FINISHED"
        store.retrying(mlflow.end_run, status, what="ending the sweep")
        reason = (f"left unfinished: {', '.join(left)}" if left
                  else f"finished the runs of --only {' '.join(sweep.only)}" if sweep.only else None)
        claims.end_run_as(parent_id, status, reason)
    out(summary(outcomes, title=f"sweep {sweep.name!r} done in "
                                f"{format_duration(time.monotonic() - started)}"))
    return outcomes


@dataclass(frozen=True)
class SweepContext:
    """What claiming and running one configuration needs, wherever an engine calls it."""

    sweep_name: str
    experiment_id: str
    parent_id: str
    run_fn: Callable[..., RunResult] | None = None  # None: experiments.run.run


def claim_and_run(planned: PlannedRun, where: SweepContext,
                  announce: Callable | None = None) -> Outcome:
    """Claim `planned` and, when this process wins it, train it (resuming a killed run of it from
    its checkpoint): the one place a configuration is claimed and run, in this process or in an
    engine's worker. DONE when it finished before, CLAIMED when another live process holds it.
    `announce(planned, resumed_from)` is called once the claim is won."""
    claim = claim_config(planned, where.sweep_name, where.experiment_id, where.parent_id)
    if claim.status == "DONE":
        return _done_before(planned, claim.run_id)
    if claim.status == "CLAIMED":
        return Outcome(planned, "CLAIMED", run_id=claim.run_id, reason="running in another process")
    if announce is not None:
        announce(planned, claim.resumed_from)
    with claims.claimed(claim.run_id, claim.resumed_from):
        return _run_one(planned, claim.run_id, where.sweep_name, where.parent_id,
                        where.run_fn or run)


def _run_all(sweep: Sweep, finished: dict[str, str], where: SweepContext,
             engine: Local | RayEngine, outcomes: list[Outcome],
             out: Callable[[str], None]) -> None:
    """The loop of run_sweep: the engine claims and runs each configuration; progress, outcomes
    and their result lines as they end; then the configurations other processes held, waited for
    (`_wait_for_holders`) and run again here if their holders died. The ETA adds up, for each run
    left, the mean time per step T of the finished runs of its task (of any task while its own has
    none): an IMDB run is not an adding run."""
    started, eta = time.monotonic(), Eta()
    order = {p.hash: i for i, p in enumerate(sweep.runs)}
    done = {o.run.hash for o in outcomes}  # finished in an export
    left = {p.hash: p for p in sweep.runs if p.hash not in finished and p.hash not in done}
    job = functools.partial(claim_and_run, where=where)
    with progress_display(out, len(left)) as display:

        def starting(planned: PlannedRun, resumed_from: str | None = None) -> None:
            resumed = f", resuming killed run {resumed_from}" if resumed_from else ""
            display.start(f"[{order[planned.hash] + 1}/{len(sweep.runs)}] {planned.label}",
                          format_duration(time.monotonic() - started),
                          eta.remaining(list(left.values())) + resumed)

        queue = [p for p in sweep.runs if p.hash not in done]
        while queue:
            held = []
            for planned, outcome in engine.run(job, queue, starting):
                if isinstance(outcome, BaseException):  # the engine's worker died for good
                    outcome = Outcome(planned, "UNFINISHED", reason=f"its worker failed: "
                                      f"{type(outcome).__name__}: {str(outcome)[:300]}")
                if outcome.status == "CLAIMED":
                    held.append(outcome)
                    continue
                outcomes.append(outcome)
                left.pop(planned.hash, None)  # finished, perhaps by another process since
                if outcome.status == "DONE":
                    continue
                if outcome.status not in ("SKIPPED", "UNFINISHED"):
                    eta.add(planned, outcome.seconds)
                display.done(result_line(outcome))
            queue = _wait_for_holders(held, outcomes, out)
    outcomes.sort(key=lambda o: order[o.run.hash])


def _wait_for_holders(held: list[Outcome], outcomes: list[Outcome],
                      out: Callable[[str], None]) -> list[PlannedRun]:
    """Wait while other processes hold configurations (their leases renewed, their processes
    alive), polling every $RNNLAB_CLAIM_POLL_S (default a quarter lease). One that FINISHED there
    becomes DONE, one that failed or was skipped there is recorded so; those whose holder died,
    was killed or withdrew are returned, to be claimed and run (resumed) here."""
    if not held:
        return []
    out(f"waiting for {len(held)} configuration(s) that other processes are training: "
        + ", ".join(f"{o.run.label} (run {o.run_id})" for o in held))
    poll = store.env_seconds("RNNLAB_CLAIM_POLL_S", claims.lease_seconds() / 4)
    pending, again = list(held), []
    while pending:
        for o in list(pending):
            found = store.retrying(mlflow.get_run, o.run_id, what="reading a claim")
            status, tags = found.info.status, found.data.tags
            if status == "RUNNING" and found.info.lifecycle_stage != "deleted" \
                    and not claims.holder_gone(found):
                continue
            pending.remove(o)
            if found.info.lifecycle_stage == "deleted" or status in ("RUNNING", "KILLED"):
                again.append(o.run)
            elif status == "FINISHED" and tags.get(STATUS_TAG) == "FINISHED":
                outcomes.append(_done_before(o.run, o.run_id))
            else:
                reason = tags.get(REASON_TAG, "")
                outcomes.append(Outcome(o.run, tags.get(STATUS_TAG, status), run_id=o.run_id,
                                        reason=f"{reason} (in another process)"))
        if pending:
            time.sleep(poll)
    return again


class Eta:
    """Seconds per step T of the runs so far, by task."""

    def __init__(self):
        self.rates: dict[str, list[float]] = {}

    def add(self, planned: PlannedRun, seconds: float) -> None:
        self.rates.setdefault(planned.config.data.name, []).append(
            seconds / max(planned.config.data.length, 1))

    def remaining(self, left: list[PlannedRun]) -> str:
        if not self.rates:
            return "?"
        every = [r for rates in self.rates.values() for r in rates]
        total = 0.0
        for planned in left:
            rates = self.rates.get(planned.config.data.name, every)
            total += sum(rates) / len(rates) * max(planned.config.data.length, 1)
        return format_duration(total)


# the mark in front of a result line: a tick only on a run that solved its task
MARKS = {"solved": "✓", "not solved": "○", "no goal": "•", "FAILED": "✗", "SKIPPED": "-"}


def result_line(o: Outcome) -> str:
    """After each run: its mark (MARKS), key test metric, solved or not, time, and whether it
    stopped early."""
    if o.status == "FAILED":
        return f"  {MARKS['FAILED']} {o.run.label}: FAILED after {format_duration(o.seconds)}: " \
               f"{o.reason}"
    if o.status == "SKIPPED":
        return f"  {MARKS['SKIPPED']} {o.run.label}: skipped: {o.reason}"
    if o.status == "UNFINISHED":
        return f"  {MARKS['FAILED']} {o.run.label}: UNFINISHED: {o.reason}"
    metric = f"{o.metric} = {o.value:.4g}" if o.value is not None else "no key metric"
    result = o.result
    verdict = "no goal" if result is None or result.solved is None else \
        ("solved" if result.solved else "not solved")
    solved = "" if verdict == "no goal" else f"; {verdict}"
    planned_epochs = o.run.config.train.epochs
    stopped = "" if result is None or result.epochs is None or result.epochs >= planned_epochs \
        else (f"; early stopping after {result.epochs} of {planned_epochs} epochs "
              "(validation loss stopped improving)")
    return f"  {MARKS[verdict]} {o.run.label}: {metric}{solved} in {format_duration(o.seconds)}" \
           f"{stopped}"


@contextlib.contextmanager
def progress_display(out: Callable[[str], None], total: int):
    """Where progress goes: plain lines through `out`, or, when `out` is `print`, a `rich` bar
    (current run, runs done, elapsed time, ETA) with the result lines printed above it."""
    if out is print:
        with RichDisplay(total) as display:
            yield display
    else:
        yield PlainDisplay(out)


class PlainDisplay:
    def __init__(self, out: Callable[[str], None]):
        self.out = out

    def start(self, label: str, elapsed: str, eta: str) -> None:
        self.out(f"{label} — elapsed {elapsed}, ETA {eta}")

    def done(self, line: str) -> None:
        self.out(line)


class RichDisplay:
    def __init__(self, total: int):
        self.progress = bar.Progress(
            bar.TextColumn("{task.description}"), bar.BarColumn(), bar.MofNCompleteColumn(),
            bar.TimeElapsedColumn(), bar.TextColumn("ETA {task.fields[eta]}"))
        self.task = self.progress.add_task("sweep", total=total, eta="?")

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()
        return False

    def start(self, label: str, elapsed: str, eta: str) -> None:
        self.progress.update(self.task, description=label, eta=eta)

    def done(self, line: str) -> None:
        self.progress.console.print(line, highlight=False, markup=False)
        self.progress.advance(self.task)


def log_parent(sweep: Sweep, outcomes: list[Outcome], seconds: float,
               out: Callable[[str], None]) -> None:
    """What the parent run shows: the sweep file, counts of outcomes, the mean key metric per task
    and cell (`<task>.<cell>.<metric>`), and the report (`report/summary.html` ...) as artifacts."""
    source = Path(sweep.source)
    if source.is_file():
        mlflow.log_artifact(str(source), artifact_path="sweep")
    counts = Counter(o.status for o in outcomes)
    metrics = {f"runs_{s.lower()}": counts.get(s, 0)
               for s in ("FINISHED", "DONE", "SKIPPED", "FAILED")}
    metrics["runs_solved"] = sum(bool(o.result and o.result.solved) for o in outcomes)
    metrics["sweep_time_s"] = seconds
    values: dict[str, list[float]] = {}
    for o in outcomes:
        if o.value is not None:
            key = f"{o.run.config.data.name}.{o.run.config.model.cell}.test_{o.metric}"
            values.setdefault(key, []).append(o.value)
    metrics.update({k: sum(v) / len(v) for k, v in values.items()})
    mlflow.log_metrics(metrics)
    try:
        with tempfile.TemporaryDirectory() as folder:
            report.write_report(sweep.name, folder)
            mlflow.log_artifacts(folder, artifact_path="report")
    except (LookupError, OSError, ValueError) as err:
        out(f"sweep {sweep.name!r}: no report on the parent run ({err})")


# --- configurations finished on another machine ----------------------------------------------------


@dataclass(frozen=True)
class Exported:
    """The configurations of a sweep FINISHED in a runs export (`rnnlab export`, committed: the
    runs of an earlier machine whose store is gone): config hash -> (run id, key metric, value)."""

    source: str
    runs: dict[str, tuple[str, str | None, float | None]]


def read_exported(path: str | Path, sweep_name: str, flag: str = "--skip-exported") -> Exported:
    """The configurations of `sweep_name` FINISHED in the export at `path` (its folder or its
    `*_runs.csv`); ConfigError naming `flag` when `path` is no runs export. An export without
    runs of this sweep (yet) skips nothing."""
    from datasets.errors import ConfigError
    from experiments.analysis import export, readback

    valid = "a folder holding one *_runs.csv as rnnlab export writes it, or that file"
    try:
        read = export.load(path)
    except (FileNotFoundError, ValueError) as err:  # pandas' parser errors are ValueErrors
        raise ConfigError("rnnlab sweep", flag, f"is no runs export ({err})", value=str(path),
                          valid=valid) from None
    runs = read.runs
    if f"tags.{CONFIG_HASH_TAG}" not in runs or f"tags.{SWEEP_TAG}" not in runs:
        raise ConfigError("rnnlab sweep", flag, f"is no sweep's runs export ({read.source} has "
                          f"no sweep or tag.{CONFIG_HASH_TAG} column)", value=str(path),
                          valid=valid)
    done = readback.completed(runs[runs[f"tags.{SWEEP_TAG}"] == sweep_name])
    found = {}
    for _, row in done.iterrows():
        metrics = {k.removeprefix("metrics."): v for k, v in row.items()
                   if k.startswith("metrics.")}
        solved = row.get(f"tags.{SOLVED_METRIC_TAG}")
        found[row[f"tags.{CONFIG_HASH_TAG}"]] = (
            row["run_id"], *key_metric(metrics, solved if isinstance(solved, str) else None))
    return Exported(read.source, found)


# --- claims: one process per configuration ---------------------------------------------------------


@dataclass
class Claim:
    """The state of one configuration for this process: MINE (claimed here, `run_id` is the child
    to train in), DONE (FINISHED before, `run_id`) or CLAIMED (another live process holds it)."""

    status: str
    run_id: str | None
    resumed_from: str | None = None


def claim_config(planned: PlannedRun, sweep_name: str, experiment_id: str,
                 parent_id: str) -> Claim:
    """Claim `planned` for this process: children of the parent with its hash that FINISHED make it
    DONE; a RUNNING one with a live holder makes it CLAIMED; a RUNNING one whose holder is gone
    (its lease expired, or its process provably died on this host: `claims.holder_dead`) is
    marked KILLED and becomes `resumed_from`. Otherwise create a RUNNING child with
    a lease, wait $RNNLAB_CLAIM_SETTLE_S (default 1 s; more than the clock skew between machines)
    and look again: the earliest-created live claim wins, a loser deletes its own child."""
    done, live, resumed_from = _claim_state(planned.hash, parent_id, kill_orphans=True)
    if done or live:
        return Claim("DONE", done) if done else Claim("CLAIMED", live[0].info.run_id)
    client = mlflow.MlflowClient()
    name = planned.config.tracking.run_name or recorder.run_name(planned.config)
    mine = store.retrying(client.create_run, experiment_id, run_name=name, tags={
        "mlflow.parentRunId": parent_id, CONFIG_HASH_TAG: planned.hash,
        SWEEP_TAG: sweep_name, TASK_TAG: planned.config.data.name,
        CELL_TAG: planned.config.model.cell, STATUS_TAG: "RUNNING",
        CLAIMED_BY_TAG: f"{socket.gethostname()}:{os.getpid()}", **claims.lease_tags(),
        **claims.holder_tags(),
    }, what="claiming a configuration").info.run_id
    time.sleep(store.env_seconds("RNNLAB_CLAIM_SETTLE_S", 1.0))
    done, live, _ = _claim_state(planned.hash, parent_id, kill_orphans=False)
    winner = done or live[0].info.run_id
    if winner != mine:
        store.retrying(client.delete_run, mine, what="withdrawing a lost claim")
        return Claim("DONE" if done else "CLAIMED", winner)
    return Claim("MINE", mine, resumed_from)


def _claim_state(config_hash: str, parent_id: str, kill_orphans: bool):
    """(FINISHED run id or None, live RUNNING children oldest first, newest orphan marked KILLED)."""
    found = store.retrying(
        mlflow.search_runs, search_all_experiments=True, output_format="list",
        filter_string=(f"tags.mlflow.parentRunId = '{parent_id}' and "
                       f"tags.`{CONFIG_HASH_TAG}` = {store.quote(config_hash)}"),
        order_by=["attributes.start_time ASC"], what="looking up claims")
    done = next((r.info.run_id for r in found if r.info.status == "FINISHED"
                 and r.data.tags.get(STATUS_TAG) == "FINISHED"), None)
    running = [r for r in found if r.info.status == "RUNNING"]
    gone = {r.info.run_id: claims.holder_gone(r) for r in running}
    live = sorted((r for r in running if not gone[r.info.run_id]),
                  key=lambda r: (r.info.start_time, r.info.run_id))
    orphan = None
    if kill_orphans:
        for r in running:
            if gone[r.info.run_id]:
                claims.end_run_as(r.info.run_id, "KILLED",  # ended when it last showed life
                                  f"{gone[r.info.run_id]}: its process stopped without ending it",
                                  end_time=claims.last_sign_of_life(r))
                orphan = r.info.run_id
    killed = [r.info.run_id for r in found if r.info.status == "KILLED"]
    return done, live, orphan or (killed[-1] if killed else None)


def _open_parent(sweep_name: str) -> mlflow.ActiveRun:
    """The sweep's parent run, started: the newest existing one, else a new one. Processes that
    create one at the same time look again after the settle time; all keep the earliest."""
    since = int(time.time() * 1000)
    found = store.find_parent_run("sweep", sweep_name)
    if found is not None:
        return store.start_parent_run(sweep_name, run_id=found)
    active = store.start_parent_run(sweep_name)
    time.sleep(store.env_seconds("RNNLAB_CLAIM_SETTLE_S", 1.0))
    racing = store.retrying(
        mlflow.search_runs, search_all_experiments=True, output_format="list",
        filter_string=(f"tags.`{ROLE_TAG}` = 'sweep' and tags.`{SWEEP_TAG}` = "
                       f"{store.quote(sweep_name)} and attributes.start_time >= {since - 1}"),
        what="looking up the sweep's parent run")
    winner = min(racing, key=lambda r: (r.info.start_time, r.info.run_id)).info.run_id
    if winner == active.info.run_id:
        return active
    mlflow.end_run("KILLED")
    store.retrying(mlflow.MlflowClient().delete_run, active.info.run_id,
                      what="withdrawing a duplicate parent run")
    return store.start_parent_run(sweep_name, run_id=winner)


def _done_before(planned: PlannedRun, run_id: str) -> Outcome:
    """An outcome for a run that FINISHED in an earlier invocation, with its recorded key metric."""
    found = store.retrying(mlflow.get_run, run_id, what="reading a finished run")
    metric, value = key_metric(found.data.metrics, found.data.tags.get(SOLVED_METRIC_TAG))
    return Outcome(planned, "DONE", run_id=run_id, metric=metric, value=value)


def _run_one(planned: PlannedRun, claim_id: str, sweep_name: str, parent_id: str,
             run_fn: Callable) -> Outcome:
    t0, t0_ms = time.monotonic(), int(time.time() * 1000)
    try:
        result = run_fn(planned.config, parent_run_id=parent_id, tags={SWEEP_TAG: sweep_name})
    except store.TrackingUnavailable:
        raise  # the store is gone: nothing more can be recorded; the claim's lease expires
    except Exception as err:  # noqa: BLE001 - one failing run must not stop the sweep
        _end_active_runs("FAILED", keep=parent_id)
        message = str(err) if isinstance(err, Diverged) else f"{type(err).__name__}: {err}"
        run_id = _own_child(claim_id, planned, parent_id, since_ms=t0_ms)
        _record_failure(run_id, message)
        return Outcome(planned, "FAILED", run_id=run_id, reason=message,
                       seconds=time.monotonic() - t0)
    except KeyboardInterrupt as err:
        _end_active_runs("KILLED", keep=parent_id)
        if _claim_open(claim_id):
            claims.end_run_as(claim_id, "KILLED", claims.stop_reason(err))
        raise
    if result.run_id is None and _claim_open(claim_id):  # tracking off: nothing to record
        store.retrying(mlflow.MlflowClient().delete_run, claim_id, what="withdrawing a claim")
    elif result.run_id != claim_id:
        _own_child(claim_id, planned, parent_id, since_ms=t0_ms, used=result.run_id)
    metric, value = result.key_metric()
    return Outcome(planned, result.status, run_id=result.run_id, metric=metric, value=value,
                   reason=result.reason or "", seconds=time.monotonic() - t0, result=result)


def _claim_open(claim_id: str) -> bool:
    return store.retrying(mlflow.get_run, claim_id, what="reading a claim").info.status \
        == "RUNNING"


def _own_child(claim_id: str, planned: PlannedRun, parent_id: str, since_ms: int,
               used: str | None = None) -> str:
    """The child run a `run_fn` recorded itself in: the claim, unless the run_fn (not
    `experiments.run.run`) started its own child (`used`, or one for this config since
    `since_ms`), in which case the unused claim is withdrawn."""
    if used is None:
        found = store.retrying(
            mlflow.search_runs, search_all_experiments=True, output_format="list",
            filter_string=(f"tags.mlflow.parentRunId = '{parent_id}' and "
                           f"tags.`{CONFIG_HASH_TAG}` = {store.quote(planned.hash)} and "
                           f"attributes.start_time >= {since_ms}"), what="looking up a child run")
        used = next((r.info.run_id for r in found if r.info.run_id != claim_id), None)
    if used is not None and used != claim_id and _claim_open(claim_id):
        store.retrying(mlflow.MlflowClient().delete_run, claim_id, what="withdrawing a claim")
        return used
    return claim_id


def _end_stopped(stopped: list[PlannedRun], parent_id: str, reason: str) -> None:
    """End KILLED the runs of configurations an engine's workers were training when the driver
    stopped (their workers are stopped with it), so that a re-run resumes them."""
    for planned in stopped:
        found = store.retrying(
            mlflow.search_runs, search_all_experiments=True, output_format="list",
            filter_string=(f"tags.mlflow.parentRunId = '{parent_id}' and "
                           f"tags.`{CONFIG_HASH_TAG}` = {store.quote(planned.hash)} and "
                           "attributes.status = 'RUNNING'"), what="looking up stopped runs")
        for r in found:
            claims.end_run_as(r.info.run_id, "KILLED", reason)


def _end_active_runs(status: str, keep: str | None) -> None:
    """Close child runs a raising run() left open on MLflow's fluent stack (not the parent `keep`)."""
    while (active := mlflow.active_run()) is not None and active.info.run_id != keep:
        store.retrying(mlflow.end_run, status, what="ending a child run")


def _record_failure(run_id: str, message: str) -> None:
    """Mark the child FAILED with the error (unless it already ended FAILED)."""
    client = mlflow.MlflowClient()
    store.retrying(client.log_text, run_id, traceback.format_exc(), "error.txt",
                      what="logging the error")
    store.retrying(client.set_tag, run_id, ERROR_TAG, message[:4000],
                      what="logging the error")
    if _claim_open(run_id):
        claims.end_run_as(run_id, "FAILED", message)


def summary(outcomes: list[Outcome], title: str = "sweep summary") -> str:
    """A plain-text table: status, run, key test metric; then failures and skip reasons, once each."""
    lines = [title, f"{'#':>3}  {'status':8}  {'run':44}  key test metric"]
    for i, o in enumerate(outcomes, 1):
        metric = f"{o.metric} = {o.value:.4g}" if o.value is not None else "-"
        lines.append(f"{i:>3}  {o.status:8}  {o.run.label[:44]:44}  {metric}")
    counts = {s: sum(o.status == s for o in outcomes)
              for s in ("FINISHED", "DONE", "SKIPPED", "FAILED", "UNFINISHED")}
    lines.append("  ".join(f"{k.lower()}: {v}" for k, v in counts.items()))
    for o in outcomes:
        if o.status in ("FAILED", "UNFINISHED"):
            lines.append(f"{o.status} {o.run.label}: {o.reason} (run {o.run_id})")
    for reason in dict.fromkeys(o.reason for o in outcomes if o.status == "SKIPPED"):
        lines.append(f"SKIPPED: {reason}")
    return "\n".join(lines)
