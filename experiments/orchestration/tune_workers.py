"""Where a search's trials run: keras-tuner's chief and workers, started by hand or by Ray.

keras-tuner's distributed mode has one chief, which holds the oracle and answers over gRPC, and
workers, each a `Tuner` that asks the chief for a trial, runs it (here: one `run(config)`) and
reports its score, until the chief says stop.

- By hand: `rnnlab tune SPACE --chief HOST:PORT` in one process, `--worker HOST:PORT` in others
  (`distributed_env`, `is_worker`, `work`, `wait_for_chief`).
- By Ray (`--workers N`, `--address ADDR`, `$RAY_ADDRESS`): the driver serves its oracle with
  keras-tuner's own servicer (`serving`) and the sweep's engine (`engine.RayEngine`) starts N
  keras-tuner workers as Ray tasks (`run_worker`), each declaring its CPUs / GPU fraction and with
  its threads set to its CPU share (`search_on_engine`). The driver prints a line as each trial
  starts and ends, on whichever worker.

Faults (docs/scale.md): a worker that dies is retried by Ray (`--max-retries`) with the same tuner
id, for which the oracle hands out the same trial again; `tune.run_one_trial` marks its dead run
KILLED and the new run resumes from the checkpoint. A worker that fails for good leaves its trial
open in the oracle: the search of the other trials goes on, the command exits 1, and a re-run
retries that trial. Ctrl-C / SIGTERM on the driver stops the workers, ends their runs KILLED and
leaves their trials open for the re-run, which resumes them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ChiefUnreachableError(RuntimeError):
    """A worker found no chief oracle at the address it was given."""


# --- by hand: --chief / --worker --------------------------------------------------------------------


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


def is_worker() -> bool:
    return "KERASTUNER_ORACLE_IP" in os.environ and "chief" not in os.environ.get(
        "KERASTUNER_TUNER_ID", "")


def work(space, workdir: Path, run_fn, out, connect_timeout_s: float):
    """A worker: wait for the chief, then run the trials it hands out, cell by cell."""
    from experiments.orchestration import tune
    from experiments.recording import store

    wait_for_chief(os.environ["KERASTUNER_ORACLE_IP"], os.environ["KERASTUNER_ORACLE_PORT"],
                   connect_timeout_s)
    parent_id = store.find_parent_run("tuning", space.name)
    if parent_id is None:
        raise ChiefUnreachableError(f"the chief of tuning {space.name!r} answers but no MLflow "
                                    f"parent run is found: do chief and worker share one "
                                    f"MLFLOW_TRACKING_URI?")
    outcome = tune.search_cells(space, parent_id, workdir, run_fn, out)
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


# --- by Ray: --workers N / --address ADDR -----------------------------------------------------------


@dataclass(frozen=True)
class WorkerJob:
    """One keras-tuner worker of one cell's search, run as a Ray task (`run_worker`)."""

    space: Any  # tune.Space
    cell: str
    parent_id: str
    workdir: str
    chief: str  # HOST:PORT of the driver's oracle
    tuner_id: str
    connect_timeout_s: float = 120.0


def run_worker(job: WorkerJob) -> int:
    """A Ray task: a keras-tuner worker running the chief's trials until it says stop; returns
    how many trials it trained. A retry of the task (its process died) has the same tuner id, so
    the oracle hands it the trial it was running."""
    from experiments.orchestration import tune

    os.environ.update(distributed_env("worker", job.chief, job.tuner_id))
    host, _, port = job.chief.rpartition(":")
    wait_for_chief(host, port, job.connect_timeout_s)
    tuner = tune.make_tuner(job.space, job.cell, parent_run_id=job.parent_id,
                            workdir=Path(job.workdir))
    tuner.search(verbose=0)
    return tuner.trained


@contextlib.contextmanager
def serving(oracle, host: str) -> Iterator[str]:
    """Serve `oracle` with keras-tuner's own chief servicer (the protocol of `--chief`) on a free
    port of `host`, for as long as the block lasts; yields HOST:PORT. keras-tuner's
    `Tuner.search` on a chief blocks until every worker asked for a trial after the last (polling
    every 20 s); here the driver knows when its workers ended, and stops the server then."""
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos  # keras-tuner's chief, served for as long as we choose
    from keras_tuner.src.distribute.oracle_chief import OracleServicer

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    protos.get_service_grpc().add_OracleServicer_to_server(OracleServicer(oracle), server)
    port = server.add_insecure_port(f"{host}:0")
    server.start()
    try:
        yield f"{host}:{port}"
    finally:
        server.stop(grace=None)


def report_trials(oracle, space, cell: str, out: Callable[[str], None]) -> None:
    """Print a line as the oracle hands out a trial and as one ends, whichever worker runs it."""
    from experiments.orchestration.tune import describe

    create_trial, end_trial = oracle.create_trial, oracle.end_trial
    name = f"tune {space.name!r} {cell}"

    def creating(tuner_id):
        known = tuner_id in oracle.ongoing_trials
        trial = create_trial(tuner_id)
        if trial.status == "RUNNING" and not known:
            out(f"{name} trial {trial.trial_id} on {tuner_id}: "
                f"{describe(trial.hyperparameters.values)}")
        return trial

    def ending(trial):
        who = next((t for t, running in oracle.ongoing_trials.items()
                    if running.trial_id == trial.trial_id), "?")
        end_trial(trial)
        oracle.save()  # end_trial saved before it let the trial go: a reload would rerun it
        done = oracle.trials[trial.trial_id]
        score = f"{space.objective} {done.score:.4g}" if done.score is not None else done.status
        budget = "" if space.tuner == "hyperband" else f"/{space.max_trials}"  # not a count
        out(f"{name} trial {trial.trial_id} done on {who}: {score} "
            f"[{len(oracle.end_order)}{budget}]")

    oracle.create_trial, oracle.end_trial = creating, ending


def search_on_engine(space, parent_id: str, workdir: Path, engine, out: Callable[[str], None],
                     connect_timeout_s: float = 120.0):
    """Each cell's search in turn: its oracle served here, its trials run by N keras-tuner workers
    as Ray tasks of `engine` (a connected `engine.RayEngine`). Returns the TuneOutcome, whose
    `unfinished` lists the trials left open by workers that failed for good."""
    import ray

    from experiments.orchestration import tune

    outcome = tune.TuneOutcome(space, parent_id)
    host = "127.0.0.1" if engine.settings.address is None else ray.util.get_node_ip_address()
    workers = engine.settings.workers or max(int(ray.cluster_resources().get("CPU", 1)
                                                 // engine.cpus), 1)
    for cell in space.cells:
        chief = tune.make_tuner(space, cell, parent_run_id=parent_id, workdir=workdir, out=out)
        if searched(chief.oracle):  # a re-run: no worker started only to hear "stop"
            out(f"tune {space.name!r} {cell}: every trial ran before")
            continue
        chief.oracle.verbose = 0
        chief.save()
        report_trials(chief.oracle, space, cell, out)
        with serving(chief.oracle, host) as address:
            jobs = [WorkerJob(space, cell, parent_id, str(workdir), address,
                              f"ray-{cell}-{i}", connect_timeout_s) for i in range(workers)]
            stopped = 0  # workers the oracle told to stop: the search ended
            for job, result in engine.run(run_worker, jobs, lambda job: None):
                if isinstance(result, BaseException):  # died more than --max-retries times
                    out(f"tune {space.name!r} {cell}: worker {job.tuner_id} failed: "
                        f"{type(result).__name__}: {str(result)[:300]}")
                else:
                    outcome.trained += result
                    stopped += 1
        outcome.unfinished += [f"{cell} trial {t.trial_id}"
                               for t in chief.oracle.ongoing_trials.values()]
        if not stopped:
            outcome.unfinished.append(f"{cell} (every worker failed before its search ended)")
    return outcome


def searched(oracle) -> bool:
    """Whether the oracle (reloaded) has handed out its last trial and none is open (hyperband,
    whose budget is not a trial count, is never known to be done before it is asked)."""
    state = oracle.get_state()
    return oracle.remaining_trials() == 0 and not state["ongoing_trials"] \
        and not state["retry_queue"]


def end_stopped_trials(parent_id: str, reason: str) -> None:
    """End KILLED the trial runs the driver's stopped workers left RUNNING (their processes were
    stopped with the driver), so that the re-run resumes them from their checkpoints."""
    import mlflow

    from experiments.recording import claims, store

    found = store.retrying(
        mlflow.search_runs, search_all_experiments=True, output_format="list",
        filter_string=f"tags.mlflow.parentRunId = '{parent_id}' and attributes.status = 'RUNNING'",
        what="looking up stopped trials")
    for run in found:
        claims.end_run_as(run.info.run_id, "KILLED", reason)
