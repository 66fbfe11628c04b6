"""MLflow settings and helpers: where runs go (mlflow.yml), experiments, parent runs, run lookup.

`mlflow.yml` (repo root; another file through $RNNLAB_MLFLOW_CONFIG) is read once and validated.
$MLFLOW_TRACKING_URI overrides its `tracking_uri`. Relative paths resolve against the yml's folder
(the tracking URI) or the SQLite store's folder (the artifact location), so a store and its
artifacts stay side by side wherever the store is.

What a run records is written by `experiments.run`; this module knows where and under which name.
"""

from __future__ import annotations

import functools
import os
import subprocess
from dataclasses import dataclass, field, fields
from pathlib import Path

import mlflow
import yaml

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
    raw = yaml.safe_load(path.read_text()) or {}
    valid = [f.name for f in fields(Settings) if f.name != "path"]
    _check_mapping(raw, valid, path, "")
    log = raw.pop("log", None) or {}
    _check_mapping(log, [f.name for f in fields(LogSettings)], path, "log.")
    for key, value in log.items():
        expected = LogSettings.__dataclass_fields__[key].type
        if type(value).__name__ != expected:
            raise ValueError(f"{path}: 'log.{key}' must be {expected}, got {value!r}")
    if not isinstance(raw.get("tags", {}), dict):
        msg = f"{path}: 'tags' must be a mapping, got {raw['tags']!r}"
        raise ValueError(msg)  # noqa: TRY004
    for key in ("tracking_uri", "experiment_pattern"):
        if key in raw and not isinstance(raw[key], str):
            raise ValueError(f"{path}: '{key}' must be str, got {raw[key]!r}")
    result = Settings(path=path, log=LogSettings(**log), **raw)
    _format_pattern(result.experiment_pattern, "task", "cell", source=path)
    return result


def _check_mapping(raw, valid: list[str], path: Path, prefix: str) -> None:
    if not isinstance(raw, dict):
        msg = f"{path}: '{prefix or 'top level'}' must be a mapping, got {raw!r}"
        raise ValueError(msg)  # noqa: TRY004
    for key in raw:
        if key not in valid:
            raise ValueError(f"{path}: unknown key '{prefix}{key}'; valid: {', '.join(valid)}")


def _format_pattern(pattern: str, task: str, cell: str, source) -> str:
    try:
        return pattern.format(task=task, cell=cell)
    except (KeyError, IndexError) as err:
        raise ValueError(
            f"{source}: experiment_pattern '{pattern}' uses unknown field {err}; "
            "valid fields: {task}, {cell}"
        ) from None


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
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    if experiment:
        mlflow.set_experiment(experiment_id=ensure_experiment(experiment))
    return uri


def ensure_experiment(name: str) -> str:
    """The id of experiment `name`, created with the configured artifact location if missing."""
    client = mlflow.MlflowClient(tracking_uri())
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    return client.create_experiment(name, artifact_location=artifact_location())


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
    import keras

    return {
        f"{TAG_PREFIX}backend": keras.backend.backend(),
        f"{TAG_PREFIX}device": device(),
        f"{TAG_PREFIX}git_commit": git_commit(),
    }


def device() -> str:
    """"GPU" or "CPU": where the current Keras backend computes."""
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
        return mlflow.start_run(run_id=run_id)
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
