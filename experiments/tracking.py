"""MLflow settings and helpers: where runs go (mlflow.yml), experiments, parent runs, run lookup.

`mlflow.yml` (repo root; another file through $RNNLAB_MLFLOW_CONFIG) is read once and validated.
$MLFLOW_TRACKING_URI overrides its `tracking_uri`. Relative paths resolve against the yml's folder
(the tracking URI) or the SQLite store's folder (the artifact location), so a store and its
artifacts stay side by side wherever the store is.

What a run records lives here too: `tracker(config, ...)` gives `experiments.run` an `MlflowTracker`
(tracking on) or a `NoTracker` (off) with one interface, so the training path has no MLflow calls:

    with tracker(config, parent_run_id=..., tags=...) as t:   # starts the run; FAILED on error
        t.log_start(config, spec, family_name, result, splits)  # params, tags, config, datasets
        model.fit(..., callbacks=t.callbacks())                 # per-epoch metrics
        t.log_end(config, model, history, result, evaluation)   # test metrics, figures, model
        t.finish(result)                                        # rnnlab.status FINISHED/SKIPPED
    t.seconds, t.gc_seconds                                     # what tracking cost (None if off)
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import gc
import inspect
import logging
import os
import re
import subprocess
import threading
import time
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path

import keras
import mlflow
import pandas as pd
import yaml

import datasets
from datasets.base import CorruptDataError
from datasets.errors import ConfigError
from experiments.config import config_hash, read_yaml
from experiments.guards import Diverged, checkpoint_dir
from experiments.results import RunResult

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "mlflow.yml"
TAG_PREFIX = "rnnlab."


@dataclass(frozen=True)
class LogSettings:
    """Which artifacts a run writes (params, tags and metrics are always logged)."""

    model: bool = True
    plots: bool = True
    config: bool = True
    datasets: bool = True


@dataclass(frozen=True)
class Settings:
    """The validated contents of mlflow.yml; `path` is the file they came from."""

    path: Path
    tracking_uri: str = "sqlite:///mlflow.db"
    artifact_location: str | None = "mlruns"
    experiment_pattern: str = "rnn-cell-lab"
    tags: dict = field(default_factory=dict)
    log: LogSettings = field(default_factory=LogSettings)


def settings_path() -> Path:
    return Path(os.environ.get("RNNLAB_MLFLOW_CONFIG") or DEFAULT_CONFIG)


def settings() -> Settings:
    """The settings of the current mlflow.yml (each file is read and validated once)."""
    return _read_settings(settings_path().resolve())


@functools.cache
def _read_settings(path: Path) -> Settings:
    if not path.is_file():
        raise FileNotFoundError(f"MLflow settings file not found: {path}")
    raw = read_yaml(path.read_text(), str(path)) or {}
    valid = [f.name for f in fields(Settings) if f.name != "path"]
    _check_mapping(raw, valid, path, "")
    log = raw.pop("log", None) or {}
    _check_mapping(log, [f.name for f in fields(LogSettings)], path, "log.")
    for key, value in log.items():
        expected = LogSettings.__dataclass_fields__[key].type
        if type(value).__name__ != expected:
            raise ConfigError(path, f"log.{key}", f"must be {expected}", value=value)
    if not isinstance(raw.get("tags", {}), dict):
        raise ConfigError(path, "tags", "must be a mapping", value=raw["tags"])
    for key in ("tracking_uri", "experiment_pattern"):
        if key in raw and not isinstance(raw[key], str):
            raise ConfigError(path, key, "must be str", value=raw[key])
    result = Settings(path=path, log=LogSettings(**log), **raw)
    _format_pattern(result.experiment_pattern, "task", "cell", source=path)
    return result


def _check_mapping(raw, valid: list[str], path: Path, prefix: str) -> None:
    if not isinstance(raw, dict):
        raise ConfigError(path, prefix.rstrip(".") or "top level", "must be a mapping", value=raw)
    for key in raw:
        if key not in valid:
            raise ConfigError(path, f"{prefix}{key}", "is not a key", valid=valid)


def _format_pattern(pattern: str, task: str, cell: str, source) -> str:
    try:
        return pattern.format(task=task, cell=cell)
    except (KeyError, IndexError) as err:
        raise ConfigError(source, "experiment_pattern", f"uses an unknown field {err}",
                          value=pattern, valid="{task}, {cell}") from None


def tracking_uri() -> str:
    """$MLFLOW_TRACKING_URI, else mlflow.yml's `tracking_uri`; local paths made absolute."""
    s = settings()
    uri = os.environ.get("MLFLOW_TRACKING_URI") or s.tracking_uri
    return _absolute_uri(uri, s.path.parent)


def _absolute_uri(uri: str, base: Path) -> str:
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///"))
        return uri if db.is_absolute() else f"sqlite:///{(base / db).resolve()}"
    if "://" in uri:
        return uri
    return str((base / uri.removeprefix("file:")).resolve())


def artifact_location() -> str | None:
    """Where new experiments put artifacts: beside the SQLite store or a local folder store;
    None (the server's choice) for remote stores."""
    location = settings().artifact_location
    uri = tracking_uri()
    if location is None or "://" in location:
        return location
    if uri.startswith("sqlite:///"):
        return str(Path(uri.removeprefix("sqlite:///")).parent / location)
    if "://" not in uri:
        return str(Path(uri) / location)
    return None


def configure(experiment: str | None = None) -> str:
    """Point MLflow at the configured store (and experiment, created if new); return the URI."""
    uri = check_store(tracking_uri())
    mlflow.set_tracking_uri(uri)
    if experiment:
        mlflow.set_experiment(experiment_id=ensure_experiment(experiment))
    return uri


def ensure_experiment(name: str) -> str:
    """The id of experiment `name`, created with the configured artifact location if missing."""
    client = mlflow.MlflowClient(tracking_uri())
    found = retrying(client.get_experiment_by_name, name, what="looking up the experiment")
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location())
    except mlflow.exceptions.MlflowException:  # another process created it meanwhile
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def experiment_name(config) -> str:
    """`config.tracking.experiment`, else mlflow.yml's pattern filled with the task and cell."""
    if config.tracking.experiment:
        return config.tracking.experiment
    s = settings()
    return _format_pattern(s.experiment_pattern, config.data.name, config.model.cell, s.path)


def base_tags() -> dict[str, str]:
    """mlflow.yml's tags plus backend, device and git commit."""
    return {**settings().tags, **environment_tags()}


def environment_tags() -> dict[str, str]:
    return {
        f"{TAG_PREFIX}backend": keras.backend.backend(),
        f"{TAG_PREFIX}device": device(),
        f"{TAG_PREFIX}git_commit": git_commit(),
    }


def device() -> str:
    """"GPU" or "CPU": where the current Keras backend computes."""
    # Each backend's package is imported only when it is the active one (the others may be absent).
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return "GPU" if tf.config.list_logical_devices("GPU") else "CPU"
    if backend == "jax":
        import jax

        return jax.default_backend().upper()
    if backend == "torch":
        import torch

        return "GPU" if torch.cuda.is_available() else "CPU"
    return "CPU"


@functools.cache
def git_commit() -> str:
    """The repository's HEAD commit, with "+dirty" when tracked files changed; "unknown" outside git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT, capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def find_parent_run(role: str, name: str) -> str | None:
    """The id of the newest parent run with tags `rnnlab.role` = `role` (sweep, tuning) and
    `rnnlab.<role>` = `name`, if there is one."""
    found = retrying(
        mlflow.search_runs,
        search_all_experiments=True, output_format="list", max_results=1,
        filter_string=(f"tags.`{TAG_PREFIX}role` = {quote(role)} and "
                       f"tags.`{TAG_PREFIX}{role}` = {quote(name)}"),
        order_by=["attributes.start_time DESC"], what=f"looking up the {role}'s parent run",
    )
    return found[0].info.run_id if found else None


def resume_run(run_id: str, **kwargs) -> mlflow.ActiveRun:
    """`mlflow.start_run(run_id=...)` for a run that exists. MLflow refuses to resume a run outside
    the process's active experiment (which an earlier run of this process, perhaps in another
    store, may have left set): the run's own experiment is made active first."""
    mlflow.set_experiment(experiment_id=mlflow.MlflowClient().get_run(run_id).info.experiment_id)
    return mlflow.start_run(run_id=run_id, **kwargs)


def start_parent_run(
    sweep_name: str,
    *,
    experiment: str | None = None,
    run_id: str | None = None,
    tags: dict | None = None,
) -> mlflow.ActiveRun:
    """Start (or, with `run_id`, resume) a sweep's parent run; use it as a context manager.

    Children started by `run(config, parent_run_id=...)` land in the same experiment. Without
    `experiment`, the pattern of mlflow.yml is filled with task "sweep" and cell "all".
    """
    configure()
    if run_id is not None:
        return resume_run(run_id)
    s = settings()
    experiment_id = ensure_experiment(
        experiment or _format_pattern(s.experiment_pattern, "sweep", "all", s.path)
    )
    all_tags = {
        **base_tags(),
        f"{TAG_PREFIX}sweep": sweep_name,
        f"{TAG_PREFIX}role": "sweep",
        **(tags or {}),
    }
    return mlflow.start_run(experiment_id=experiment_id, run_name=sweep_name, tags=all_tags)


def quote(value: str) -> str:
    """`value` as a string literal of an MLflow filter: in single quotes, or in double quotes when it
    holds a single quote (MLflow's filter grammar has no escapes)."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise ConfigError("MLflow filter", "name", "cannot hold both ' and \"", value=value)


def find_finished_children(parent_run_id: str) -> dict[str, str]:
    """`{config_hash: run_id}` of the parent's children that finished training (newest wins)."""
    configure()
    client = mlflow.MlflowClient()
    parent = client.get_run(parent_run_id)
    runs = mlflow.search_runs(
        experiment_ids=[parent.info.experiment_id],
        filter_string=(
            f"tags.mlflow.parentRunId = '{parent_run_id}' "
            f"and tags.`{TAG_PREFIX}status` = 'FINISHED' and attributes.status = 'FINISHED'"
        ),
        order_by=["attributes.start_time ASC"],
        output_format="list",
    )
    return {run.data.tags[f"{TAG_PREFIX}config_hash"]: run.info.run_id for run in runs}


# --- reliability: the store answers, calls retried, leases on running runs -------------------------

LEASE_TAG = f"{TAG_PREFIX}lease_until"
HTTP_RETRY_DEFAULTS = {  # MLflow's own HTTP retries, kept short: `retrying` does the waiting
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
}
TRANSIENT_TEXT = ("database is locked", "Max retries exceeded", "Connection refused",
                  "Connection aborted", "timed out", "error code 502", "error code 503",
                  "error code 504", "TEMPORARILY_UNAVAILABLE")
_checked: set[str] = set()
_claim: contextvars.ContextVar[dict | None] = contextvars.ContextVar("rnnlab_claim", default=None)


class TrackingUnavailable(RuntimeError):
    """The tracking store did not answer: at start, or for longer than the retry budget."""


def env_seconds(name: str, default: float) -> float:
    """A duration in seconds from the environment variable `name` (tests shorten them)."""
    return float(os.environ.get(name) or default)


def check_store(uri: str | None = None) -> str:
    """Fail within seconds, naming the URI, when the tracking store does not answer; create a new
    SQLite store under a file lock, so that processes starting together do not race on its schema.
    Checked once per URI and process; returns the URI."""
    uri = uri or tracking_uri()
    if uri in _checked:
        return uri
    for key, value in HTTP_RETRY_DEFAULTS.items():
        os.environ.setdefault(key, value)
    try:
        with _store_lock(uri):
            mlflow.MlflowClient(uri).search_experiments(max_results=1)
    except Exception as err:  # noqa: BLE001 - any failure to answer means the same to the user
        raise TrackingUnavailable(
            f"MLflow tracking store {uri} does not answer ({_first_line(err)}); nothing was "
            "trained. Start the server or fix tracking_uri in mlflow.yml / $MLFLOW_TRACKING_URI"
        ) from None
    _checked.add(uri)
    return uri


def _store_lock(uri: str):
    """A file lock beside a SQLite store (MLflow migrates a new store's schema on first use)."""
    if not uri.startswith("sqlite:///"):
        return contextlib.nullcontext()
    from filelock import FileLock

    db = Path(uri.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(f"{db}.lock", timeout=300)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:300] if text else ''}"


def transient(err: BaseException) -> bool:
    """Whether `err` looks like a store that is down or locked for now (worth retrying)."""
    import requests
    import sqlalchemy

    if isinstance(err, TrackingUnavailable):  # retried already
        return False
    if isinstance(err, (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                        sqlalchemy.exc.OperationalError, ConnectionError, TimeoutError)):
        return True
    return any(text in str(err) for text in TRANSIENT_TEXT)


def _end_run(run_id: str, status: str) -> None:
    """End `run_id` with `status`, and only it. `mlflow.end_run` pops the run off the active-run
    stack before it writes the status, so a retry after a failed write must not call it again:
    that would end the run below (a sweep's parent) instead."""
    active = mlflow.active_run()
    if active is not None and active.info.run_id == run_id:
        mlflow.end_run(status)
    else:
        mlflow.MlflowClient(tracking_uri()).set_terminated(run_id, status)


def retrying(fn, *args, what: str = "MLflow call", **kwargs):
    """`fn(*args, **kwargs)`, retried with back-off (1 s doubling to 30 s) while the store is down
    or locked, for at most $RNNLAB_TRACKING_RETRY_S seconds (default 600); then TrackingUnavailable."""
    budget = env_seconds("RNNLAB_TRACKING_RETRY_S", 600)
    deadline, wait = time.monotonic() + budget, env_seconds("RNNLAB_TRACKING_RETRY_FIRST_S", 1)
    while True:
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # sorted by `transient`
            if not transient(err):
                raise
            if time.monotonic() + wait > deadline:
                raise TrackingUnavailable(
                    f"MLflow tracking store {tracking_uri()} unavailable for {budget:.0f} s during "
                    f"{what} ({_first_line(err)})") from err
            warnings.warn(f"{what}: {_first_line(err)}; retrying in {wait:.0f} s", stacklevel=2)
            time.sleep(wait)
            wait = min(2 * wait, 30)


def lease_seconds() -> float:
    """How long a running run's claim holds without a heartbeat ($RNNLAB_LEASE_S, default 120)."""
    return env_seconds("RNNLAB_LEASE_S", 120)


def lease_tags() -> dict[str, str]:
    """The lease tag: this run is alive until (epoch milliseconds) unless renewed."""
    return {LEASE_TAG: str(int((time.time() + lease_seconds()) * 1000))}


def lease_until(run) -> int:
    """When (epoch milliseconds) a run's lease ends: its lease tag, or without one its start plus
    a lease length."""
    until = run.data.tags.get(LEASE_TAG)
    return int(until) if until else run.info.start_time + int(lease_seconds() * 1000)


def lease_expired(run) -> bool:
    """Whether a RUNNING run's holder is gone: its lease lies in the past."""
    return lease_until(run) < time.time() * 1000


class Heartbeat:
    """A daemon thread renewing the lease of `run_id` every quarter lease until `stop()`."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{run_id[:8]}", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _beat(self) -> None:
        client = mlflow.MlflowClient(tracking_uri())
        while not self._stop.wait(lease_seconds() / 4):
            with contextlib.suppress(Exception):  # a missed beat is retried at the next one
                for key, value in lease_tags().items():
                    client.set_tag(self.run_id, key, value)


def last_sign_of_life(run) -> int:
    """When (epoch milliseconds) a RUNNING run's holder last renewed its lease: its lease's end less
    one lease length, within [start, now]. The end time of a run whose process died."""
    renewed = lease_until(run) - int(lease_seconds() * 1000)
    return max(run.info.start_time, min(renewed, int(time.time() * 1000)))


def end_run_as(run_id: str, status: str, reason: str | None = None,
               end_time: int | None = None) -> None:
    """End `run_id` with MLflow status `status` and the same `rnnlab.status` (and the reason):
    the run's status first, then the tags, each retried, so they agree once both are written.
    `end_time` (epoch milliseconds) defaults to now."""
    client = mlflow.MlflowClient(tracking_uri())
    retrying(client.set_terminated, run_id, status, end_time, what=f"ending run {run_id}")
    tags = {f"{TAG_PREFIX}status": status}
    if reason:
        tags[f"{TAG_PREFIX}reason"] = reason[:5000]
    for key, value in tags.items():
        retrying(client.set_tag, run_id, key, value, what=f"tagging run {run_id}")


@contextlib.contextmanager
def claimed(run_id: str, resumed_from: str | None = None):
    """Within this block, the tracker of the next run uses the claimed (already created) child
    `run_id` instead of creating one; `resumed_from` names a killed run of the same config whose
    logged epochs the new run copies before it resumes from the checkpoint."""
    token = _claim.set({"run_id": run_id, "resumed_from": resumed_from})
    try:
        yield
    finally:
        _claim.reset(token)


def stop_reason(err: BaseException) -> str:
    """`rnnlab.reason` of a run stopped by a signal ("stopped by SIGTERM")."""
    return f"stopped by {getattr(err, 'signal_name', 'SIGINT')}"


# --- what one run records ---------------------------------------------------------------------------


def tracker(config, *, parent_run_id: str | None = None, tags: dict | None = None) -> NoTracker:
    """The tracker of one run: an `MlflowTracker` when `config.tracking.enabled`, else a `NoTracker`."""
    if not config.tracking.enabled:
        return NoTracker()
    return MlflowTracker(config, parent_run_id=parent_run_id, tags=tags)


class NoTracker:
    """Tracking off: every call records nothing; `run_id`, `seconds`, `gc_seconds` stay None."""

    run_id: str | None = None
    seconds: float | None = None
    gc_seconds: float | None = None
    checkpoint: Path | None = None  # where a tracked run keeps its BackupAndRestore checkpoint
    # a run resumed from its checkpoint: the epoch times its earlier sittings logged (their
    # finished epochs; an epoch cut short by the kill is trained again and counted then)
    earlier_seconds: float = 0.0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def log_start(self, config, spec, family_name: str, result: RunResult, splits) -> None:
        """Before training: params, tags, the config text, the dataset inputs."""

    def callbacks(self) -> list[keras.callbacks.Callback]:
        """Keras callbacks for `model.fit` (per-epoch metrics)."""
        return []

    def log_end(self, config, model, history: dict, result: RunResult, evaluation) -> None:
        """After testing: test metrics, figures, texts, the model."""

    def finish(self, result: RunResult) -> None:
        """The run's outcome as tags (`rnnlab.status`, `rnnlab.solved` or `rnnlab.reason`)."""


class MlflowTracker(NoTracker):
    """Records one run in MLflow (a child of `parent_run_id` if given) and times itself: `seconds`
    is the wall time of its MLflow calls, figures and model artifact, less the garbage-collection
    pauses in them (they scale with the process's heap, not with what tracking does); `gc_seconds`
    is all garbage collection while the run is open. Both are also logged as metrics."""

    def __init__(self, config, *, parent_run_id: str | None = None, tags: dict | None = None):
        self.config, self.parent_run_id, self.tags = config, parent_run_id, tags or {}
        self._gc = _GcClock()
        self.seconds = 0.0
        self._active = None
        self.checkpoint = checkpoint_dir(config_hash(config), tracking_uri())

    @property
    def gc_seconds(self) -> float:
        return self._gc.seconds

    @contextlib.contextmanager
    def _timed(self):
        start, paused = time.perf_counter(), self._gc.seconds
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - start - (self._gc.seconds - paused)

    def __enter__(self):
        claim = _claim.get() or {}
        self.resumed_from = claim.get("resumed_from")
        with self._timed():
            self._active = retrying(_start_run, self.config, self.parent_run_id, self.tags,
                                    claim.get("run_id"), what="starting the run")
        gc.callbacks.append(self._gc)
        self.run_id = self._active.info.run_id
        self._heartbeat = Heartbeat(self.run_id).start()
        return self

    def __exit__(self, kind, err, tb):
        """FINISHED; KILLED with the signal on Ctrl-C / SIGTERM; FAILED with the error's first line
        (e.g. "diverged at epoch 3"); left RUNNING when the store itself is gone (its lease then
        expires, the next sweep marks it KILLED and resumes from the checkpoint)."""
        self._heartbeat.stop()
        gc.callbacks.remove(self._gc)
        if isinstance(err, TrackingUnavailable):
            return False
        if err is None:
            status, reason = "FINISHED", None
        elif isinstance(err, KeyboardInterrupt):
            status, reason = "KILLED", stop_reason(err)
        else:
            # Diverged and CorruptDataError say in one line what happened / what to do
            status, reason = "FAILED", str(err) if isinstance(err, (Diverged, CorruptDataError)) \
                else _first_line(err)
        with self._timed():
            retrying(_end_run, self.run_id, status, what=f"ending run {self.run_id}")
            if status != "FINISHED":  # finish() wrote the tags of a finished run
                end_run_as(self.run_id, status, reason)
        return False

    def copy_history(self, first_epoch: int) -> None:
        """Log the epochs before `first_epoch` that the killed run `resumed_from` recorded, so a run
        resumed from its checkpoint holds every epoch once."""
        if not self.resumed_from:
            return
        client = mlflow.MlflowClient(tracking_uri())
        old = retrying(client.get_run, self.resumed_from, what="reading the killed run")
        found = [m for key in old.data.metrics if key not in ("param_count", "baseline")
                 for m in retrying(client.get_metric_history, self.resumed_from, key,
                                   what="reading the killed run") if m.step < first_epoch]
        if found:
            retrying(client.log_batch, self.run_id, metrics=found, what="copying resumed epochs")
        self.earlier_seconds = sum(m.value for m in found if m.key == "epoch_time_s")
        retrying(mlflow.set_tags, {f"{TAG_PREFIX}resumed_from": self.resumed_from,
                                   f"{TAG_PREFIX}resumed_epoch": first_epoch},
                 what="tagging the resumed run")

    def log_start(self, config, spec, family_name: str, result: RunResult, splits) -> None:
        with self._timed():
            retrying(_log_start, config, spec, family_name, result, splits, what="logging params")

    def callbacks(self) -> list[keras.callbacks.Callback]:
        return [EpochLogger(self)]

    def log_end(self, config, model, history: dict, result: RunResult, evaluation) -> None:
        with self._timed():
            retrying(_log_end, config, model, history, result, evaluation, what="logging results")
        retrying(mlflow.log_metrics, {"tracking_time_s": self.seconds, "gc_time_s": self.gc_seconds},
                 what="logging tracking time")

    def finish(self, result: RunResult) -> None:
        with self._timed():
            if result.status == "SKIPPED":
                tags = {f"{TAG_PREFIX}status": "SKIPPED",
                        f"{TAG_PREFIX}reason": (result.reason or "")[:5000]}
            else:
                tags = {f"{TAG_PREFIX}status": result.status,
                        f"{TAG_PREFIX}solved": str(result.solved)}
            retrying(mlflow.set_tags, tags, what="tagging the run's outcome")


class _GcClock:
    """Wall time of Python's garbage collections while registered in `gc.callbacks`.

    With TensorFlow loaded a full collection scans ~10^6 objects; it lands in whatever code
    happens to allocate at that moment (see docs/performance.md).
    """

    def __init__(self):
        self.seconds = 0.0
        self._start = None

    def __call__(self, phase, info):
        if phase == "start":
            self._start = time.perf_counter()
        elif self._start is not None:
            self.seconds += time.perf_counter() - self._start
            self._start = None


class EpochLogger(keras.callbacks.Callback):
    """Logs `train_<m>`, `val_<m>`, `epoch_time_s`, `step_time_ms` with step=epoch.

    Synchronously: MLflow's asynchronous logging queue makes `end_run` wait to flush it
    (see docs/performance.md).
    """

    def __init__(self, tracker: MlflowTracker):
        super().__init__()
        self.tracker = tracker

    def on_train_begin(self, logs=None):
        self._first = True

    def on_epoch_begin(self, epoch, logs=None):
        if self._first and epoch > 0:  # resumed from a checkpoint (BackupAndRestore)
            self.tracker.copy_history(epoch)
        self._first = False
        self._start = time.perf_counter()
        self._steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._start
        with self.tracker._timed():
            metrics = {(k if k.startswith("val_") else f"train_{k}"): float(v)
                       for k, v in (logs or {}).items()}
            metrics["epoch_time_s"] = seconds
            metrics["step_time_ms"] = 1000.0 * seconds / max(self._steps, 1)
            retrying(mlflow.log_metrics, metrics, step=epoch, what=f"logging epoch {epoch}")


def _start_run(config, parent_run_id: str | None, tags: dict,
               claimed_id: str | None = None) -> mlflow.ActiveRun:
    """Start the MLflow run of `config` (in the parent's experiment when it has a parent), or
    resume the child `claimed_id` a sweep claimed for it."""
    configure()
    if parent_run_id:
        experiment_id = mlflow.MlflowClient().get_run(parent_run_id).info.experiment_id
    else:
        experiment_id = ensure_experiment(experiment_name(config))
    chash = config_hash(config)
    all_tags = {
        **base_tags(),
        f"{TAG_PREFIX}task": config.data.name,
        f"{TAG_PREFIX}cell": config.model.cell,
        f"{TAG_PREFIX}config_hash": chash,
        f"{TAG_PREFIX}status": "RUNNING",
        **lease_tags(),
        **tags,
    }
    name = config.tracking.run_name or run_name(config)
    if claimed_id:
        return resume_run(claimed_id, nested=True, run_name=name, tags=all_tags)
    return mlflow.start_run(
        experiment_id=experiment_id,
        run_name=name,
        parent_run_id=parent_run_id,
        nested=parent_run_id is not None,
        tags=all_tags,
    )


def run_name(config) -> str:
    """`task-T<length>-cell-seed<seed>` (T only for the generated tasks, attention and Luong's
    ablations for translation): readable in the MLflow UI's run list, e.g. `adding-T50-lstm-seed0`,
    `multi30k-luong-nofeed-deep-gru-seed0`."""
    parts = [config.data.name]
    if datasets.REGISTRY.get(config.data.name, "").startswith("datasets.synthetic."):
        parts.append(f"T{config.data.length}")
    if config.model.attention:
        parts.append(config.model.attention)
    if config.model.input_feeding is False:
        parts.append("nofeed")
    if config.model.readout:
        parts.append(config.model.readout)
    return "-".join([*parts, config.model.cell, f"seed{config.train.seed}"])


# Keys only some tasks read; every other key outside `data` applies to every run.
TRANSLATION_ONLY = ("model.attention", "model.attention_score", "model.input_feeding",
                    "model.readout", "model.tie_embeddings",
                    "model.label_smoothing", "train.max_decode_length", "train.beam_width",
                    "train.length_penalty")
TOKEN_INPUTS_ONLY = ("model.embedding_dim",)


def applicable_params(config, spec, family_name: str) -> dict:
    """The flattened config less what this task does not read: `data.*` keys its loader never
    reads (`data.length` on Multi30k, `data.source_lang` on adding), translation-only keys on other
    tasks, the embedding size on tasks without token inputs."""
    read = loader_fields(config.data.name)
    params = {}
    for key, value in config.flat().items():
        section, _, name = key.partition(".")
        if (section == "data" and name != "name" and name not in read) \
                or (key in TRANSLATION_ONLY and family_name != "translation") \
                or (key in TOKEN_INPUTS_ONLY and spec.input_encoding != "embedding"):
            continue
        params[key] = "None" if value is None else value
    return params


@functools.cache
def loader_fields(task: str) -> frozenset[str]:
    """The DataConfig fields (`config.<field>`) the source of the task's loader reads."""
    module = datasets.get(task)
    sources = [inspect.getsource(module)]
    if module.__name__.startswith("datasets.synthetic."):
        sources.append(inspect.getsource(datasets.synthetic))
    return frozenset(re.findall(r"\bconfig\.(\w+)", "\n".join(sources)))


def _log_start(config, spec, family_name: str, result: RunResult, splits) -> None:
    log = settings().log
    params = applicable_params(config, spec, family_name)
    mlflow.log_params({**params, "model.units_used": result.units,
                       "model.projected_used": result.projected})
    metrics = {"param_count": result.param_count}
    tags = {f"{TAG_PREFIX}family": family_name}
    if spec.baseline is not None:
        metrics["baseline"] = spec.baseline
        tags[f"{TAG_PREFIX}baseline_metric"] = spec.baseline_metric
    if spec.solved_metric:
        tags[f"{TAG_PREFIX}solved_metric"] = spec.solved_metric
        tags[f"{TAG_PREFIX}solved_threshold"] = str(spec.goal.threshold)  # for the report
        tags[f"{TAG_PREFIX}solved_mode"] = spec.goal.mode
    mlflow.log_metrics(metrics)
    mlflow.set_tags(tags)
    if log.config:
        mlflow.log_text(yaml.safe_dump(config.to_dict(), sort_keys=False), "config.yaml")
    if log.datasets:
        _log_dataset_inputs(config, spec, splits)


def _log_dataset_inputs(config, spec, splits) -> None:
    """One MLflow dataset input per split: a one-row summary (name, source, size), not the data."""
    source = "generated" if spec.input_encoding != "embedding" else str(
        datasets.base.data_dir(config.data.data_dir))
    found, contexts = [], ["training", "validation", "testing"]
    for split, ds in zip(("train", "val", "test"), splits):
        summary = pd.DataFrame([{
            "dataset": spec.name,
            "split": split,
            "source": source,
            "batches": int(ds.cardinality()),
            "batch_size": config.data.batch_size,
            "sequence_length": spec.sequence_length,
            "input_dim": spec.input_dim,
            "data_config": str(sorted(vars(config.data).items())),
        }])
        with warnings.catch_warnings():  # MLflow's hints on source kinds and integer schemas
            warnings.simplefilter("ignore", UserWarning)
            found.append(mlflow.data.from_pandas(summary, source=source, name=f"{spec.name}-{split}"))
    with warnings.catch_warnings():  # the schema is inferred here
        warnings.simplefilter("ignore", UserWarning)
        mlflow.log_inputs(found, contexts=contexts, tags_list=[None] * len(found))


def _log_end(config, model, history: dict, result: RunResult, evaluation) -> None:
    log = settings().log
    final = {f"test_{k}": v for k, v in result.metrics.items()}
    final["train_time_s"] = result.train_time_s
    if result.solved is not None:
        final["solved"] = float(result.solved)
    mlflow.log_metrics(final)
    if log.plots:
        mlflow.log_figure(learning_curves(history), "plots/learning_curves.png")
        for path, figure in evaluation.figures.items():
            mlflow.log_figure(figure, path)
    for path, text in evaluation.texts.items():
        mlflow.log_text(text, path)
    if log.model and config.tracking.log_model:
        log_model(model)
    _close_figures()


def import_model_flavor() -> None:
    """Import MLflow's Keras flavor (about 1 s of one-off imports) up front: a sweep does it before
    its first run, so that run's record does not carry a process's start-up as tracking cost."""
    import mlflow.keras  # noqa: F401


def log_model(model) -> None:
    """The model with MLflow's Keras flavor, name "model": `mlflow.keras.load_model(
    "runs:/<run_id>/model")` loads it back (after `import cells`, which registers the cells)."""
    import mlflow.keras  # the flavor module is not imported by `import mlflow`

    # MLflow's hints on the signature and input example we do not give (a warning and a log line
    # per run): the model's inputs are described by its own config.
    hints = logging.getLogger("mlflow.keras.save")
    level = hints.level
    hints.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            # Requirements given, not inferred: inferring them runs the model in a subprocess.
            mlflow.keras.log_model(model, name="model",
                                   pip_requirements=[f"keras=={keras.__version__}"])
    finally:
        hints.setLevel(level)


def learning_curves(history: dict):
    """One panel per metric: train and validation against epoch (integer ticks); a metric equal to
    the loss (adding: the loss is the MSE) is named in the loss panel, not drawn twice."""
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()
    names = [k for k in history if not k.startswith("val_")]
    same = [k for k in names if k != "loss" and history[k] == history.get("loss")]
    names = [k for k in names if k not in same]
    width = 4 * len(names)
    fig, axes = plt.subplots(1, len(names), figsize=(width, 3), squeeze=False)
    for ax, name in zip(axes[0], names):
        epochs = range(1, len(history[name]) + 1)
        ax.plot(epochs, history[name], marker="o", label="train")
        if f"val_{name}" in history:
            ax.plot(epochs, history[f"val_{name}"], marker="o", label="val")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{name} (= {', '.join(same)})" if name == "loss" and same else name)
        ax.legend()
    # Fixed margins (inches): tight_layout would draw the figure once more, doubling its cost.
    fig.subplots_adjust(left=0.9 / width, right=1 - 0.15 / width, bottom=0.16, top=0.9, wspace=0.35)
    return fig


def pyplot():
    """matplotlib.pyplot on the Agg backend; imported on first use (it costs start-up time)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _close_figures() -> None:
    pyplot().close("all")
