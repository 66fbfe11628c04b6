"""Where runs go and how the store is reached: mlflow.yml settings, the tracking URI, experiments,
parent-run lookup, environment probes (backend, device, git commit), and the store's reliability
(a check at start, retries while it is down or locked).

`mlflow.yml` (repo root; another file through $RNNLAB_MLFLOW_CONFIG) is read once and validated.
$MLFLOW_TRACKING_URI overrides its `tracking_uri`. Relative paths resolve against the yml's folder
(the tracking URI) or the SQLite store's folder (the artifact location), so a store and its
artifacts stay side by side wherever the store is.
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import time
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path

import mlflow

from datasets.errors import ConfigError
from experiments.config import read_yaml
from experiments.recording import views
from experiments.recording.tags import (
    BACKEND_TAG,
    CONFIG_HASH_TAG,
    DEVICE_TAG,
    DIRTY_TAG,
    GIT_COMMIT_TAG,
    ROLE_TAG,
    STATUS_TAG,
    SWEEP_TAG,
    TAG_PREFIX,
    VERSIONS_TAG,
)

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_CONFIG = REPO_ROOT / "mlflow.yml"


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
    """The id of experiment `name`, created with the configured artifact location if missing;
    either way it carries the suite's runs-table view (`views`: what the MLflow UI opens on)."""
    client = mlflow.MlflowClient(tracking_uri())
    found = retrying(client.get_experiment_by_name, name, what="looking up the experiment")
    if found is not None:
        retrying(views.ensure_view, client, found, what="saving the runs-table view")
        return found.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location(),
                                        tags=views.experiment_tags())
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
    """Backend, device, git commit (and whether the tree was dirty) and the package versions the
    run ran with: the results page reads them per run, not from the machine that draws it."""
    import keras

    commit = git_commit()
    tags = {
        BACKEND_TAG: keras.backend.backend(),
        DEVICE_TAG: device(),
        GIT_COMMIT_TAG: commit,
        VERSIONS_TAG: versions_text(),
    }
    if commit != "unknown":
        tags[DIRTY_TAG] = str(dirty()).lower()
    return tags


SUITE_PACKAGE = "rnn-cell-lab"
BACKEND_PACKAGES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


def package_versions() -> dict[str, str]:
    """{package: version} of what a run depends on: Python, the suite, Keras, the active backend's
    package, NumPy, MLflow ("unknown" for one not installed, e.g. the suite run from a checkout)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    import keras

    found = {"python": platform.python_version()}
    backend = BACKEND_PACKAGES.get(keras.backend.backend())
    for package in (SUITE_PACKAGE, "keras", backend, "numpy", "mlflow"):
        if package is None:
            continue
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "unknown"
    return found


def versions_text(versions: dict[str, str] | None = None) -> str:
    """The `rnnlab.versions` tag: "python 3.11.9, rnn-cell-lab 0.1.0, keras 3.15.1, ..."."""
    return ", ".join(f"{name} {v}" for name, v in (versions or package_versions()).items())


def warn_if_dirty(command: str, err=None) -> bool:
    """Say on stderr when the repository has uncommitted changes: the runs `command` starts are
    then tagged `rnnlab.dirty=true` (and their commit `<hash>+dirty`), and a study's page flags
    them. Returns whether it warned."""
    if not dirty():
        return False
    import sys

    print(f"{command}: warning: the working tree has uncommitted changes; these runs will be "
          f"tagged {DIRTY_TAG}=true and git_commit {git_commit()} (commit first for runs a study "
          f"can cite)", file=err or sys.stderr)
    return True


def dirty() -> bool:
    """Whether tracked files of the repository had uncommitted changes when this process first
    asked (`git_commit` is read once: the code a process runs is the code it imported)."""
    return git_commit().endswith("+dirty")


def device() -> str:
    """"GPU" or "CPU": where the current Keras backend computes."""
    # Each backend's package is imported only when it is the active one (the others may be absent).
    import keras

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


def parent_filter(role: str, name: str) -> str:
    """The MLflow filter of the parent runs with tags `rnnlab.role` = `role` (sweep, tuning) and
    `rnnlab.<role>` = `name`."""
    return f"tags.`{ROLE_TAG}` = {quote(role)} and tags.`{TAG_PREFIX}{role}` = {quote(name)}"


def find_parent_run(role: str, name: str) -> str | None:
    """The id of the newest parent run of `role` `name` (`parent_filter`), if there is one."""
    found = retrying(
        mlflow.search_runs,
        search_all_experiments=True, output_format="list", max_results=1,
        filter_string=parent_filter(role, name),
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
        SWEEP_TAG: sweep_name,
        ROLE_TAG: "sweep",
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
            f"and tags.`{STATUS_TAG}` = 'FINISHED' and attributes.status = 'FINISHED'"
        ),
        order_by=["attributes.start_time ASC"],
        output_format="list",
    )
    return {run.data.tags[CONFIG_HASH_TAG]: run.info.run_id for run in runs}



# --- reliability: the store answers, calls are retried ---------------------------------------------

HTTP_RETRY_DEFAULTS = {  # MLflow's own HTTP retries, kept short: `retrying` does the waiting
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
}
TRANSIENT_TEXT = ("database is locked", "Max retries exceeded", "Connection refused",
                  "Connection aborted", "timed out", "error code 502", "error code 503",
                  "error code 504", "TEMPORARILY_UNAVAILABLE")
_checked: set[str] = set()


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


def lost_insert_race(err: BaseException) -> bool:
    """Whether `err` is a SQL store refusing a row that another process inserted between MLflow's
    look-up and its insert (MLflow checks, then inserts: two runs of one experiment that log the
    same new dataset at once race so). The same call again finds that row and links to it."""
    import sqlalchemy

    return isinstance(err.__cause__, sqlalchemy.exc.IntegrityError)


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
