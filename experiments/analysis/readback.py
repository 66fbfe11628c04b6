"""The runs read back from MLflow as a pandas DataFrame (a row per run, as `mlflow.search_runs`
returns them; a runs export reads into the same shape), and what the report and the results page
both read from them: one run per config hash (`load_runs`), which completed, each run's setting
(its task and the parameters that define it and tell it apart: `add_settings`), its key metric and
goal (`goal`), training budget (`updates`) and per-epoch history (`metric_history`)."""

from __future__ import annotations

import re
from collections.abc import Iterable

import mlflow
import numpy as np
import pandas as pd

from experiments import goals
from experiments.config import HOW_NOT_WHAT, short_name
from experiments.goals import METRICS, GoalView, missing
from experiments.recording import store
from experiments.recording.tags import (
    CELL_TAG,
    CONFIG_HASH_TAG,
    ERROR_TAG,
    REASON_TAG,
    SOLVED_METRIC_TAG,
    STATUS_TAG,
    SWEEP_TAG,
    TAG_PREFIX,
    TASK_TAG,
    TUNING_TAG,
)
from experiments.results import key_metric
from experiments.tasks.settings import setting_keys

SEED_PARAMS = ("params.train.seed", "params.data.seed")
PER_CELL_PARAMS = ("params.model.cell", "params.model.units_used", "params.model.projected_used")
IGNORED_PARAM_PREFIXES = ("params.tracking.",)
# how a run was shown, spread or compiled (config.HOW_NOT_WHAT, left out of config_hash): never what
# tells one setting from another, even where some runs logged it and older ones did not
HOW_PARAMS = tuple(f"params.{key}" for key in HOW_NOT_WHAT)
BUDGET_PARAMS = ("params.train.epochs", "params.data.num_train", "params.data.subset",
                 "params.data.batch_size")
"""What a run's training budget is read from: by `updates` and by the metric-vs-T plot's lines."""


def load_runs(sweep: str | None = None) -> pd.DataFrame:
    """The child runs (those with an `rnnlab.task` tag) of one sweep, or of all sweeps, as a DataFrame
    of `mlflow.search_runs`; one run per config hash (the latest completed one, else the latest), so
    re-runs do not count twice."""
    store.configure()
    runs = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"tags.`{SWEEP_TAG}` = {store.quote(sweep)}" if sweep else "",
        order_by=["attributes.start_time DESC"],
    )
    if runs.empty or f"tags.{TASK_TAG}" not in runs:
        return pd.DataFrame()
    trials = runs.get(f"tags.{TUNING_TAG}", pd.Series(index=runs.index, dtype=object))
    keep = runs[f"tags.{TASK_TAG}"].notna() & trials.fillna("").eq("")  # no tuning trials
    return one_per_config(runs[keep])


def one_per_config(runs: pd.DataFrame) -> pd.DataFrame:
    """Per config hash, the latest completed run, else the latest run."""
    ranked = runs.assign(_done=runs.index.isin(completed(runs).index))
    ranked = ranked.sort_values(["_done", "start_time"], ascending=False, kind="stable")
    return ranked.drop_duplicates(f"tags.{CONFIG_HASH_TAG}").drop(columns="_done") \
        .reset_index(drop=True)


def completed(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs that trained and were tested (MLflow FINISHED and not tagged SKIPPED)."""
    if runs.empty:
        return runs
    status = runs.get(f"tags.{STATUS_TAG}", pd.Series("FINISHED", index=runs.index)).fillna("FINISHED")
    return runs[(runs["status"] == "FINISHED") & (status != "SKIPPED")].copy()


def not_completed(runs: pd.DataFrame) -> pd.DataFrame:
    """Skipped and failed runs, one row per task, status and reason (skip instruction or error),
    with the cells it concerns."""
    columns = ["task", "cells", "status", "reason"]
    rest = runs.drop(index=completed(runs).index) if not runs.empty else runs
    if rest.empty:
        return pd.DataFrame(columns=columns)
    reason_cols = [c for c in (f"tags.{REASON_TAG}", f"tags.{ERROR_TAG}") if c in rest]
    reason = rest[reason_cols].bfill(axis=1).iloc[:, 0].fillna("") if reason_cols else ""
    status = rest.get(f"tags.{STATUS_TAG}", rest["status"]).fillna(rest["status"])
    flat = pd.DataFrame({"task": rest[f"tags.{TASK_TAG}"], "cell": rest[f"tags.{CELL_TAG}"],
                         "status": status, "reason": reason})
    grouped = flat.groupby(["task", "status", "reason"], sort=True)["cell"] \
        .agg(lambda cells: ", ".join(sorted(set(cells)))).rename("cells").reset_index()
    return grouped[columns]


def add_settings(runs: pd.DataFrame) -> pd.DataFrame:
    """Add the columns `task`, `cell`, `setting` (task + defining and varying parameters) and
    `metric` (key metric)."""
    runs = runs.copy()
    runs["task"] = runs[f"tags.{TASK_TAG}"]
    runs["cell"] = runs[f"tags.{CELL_TAG}"]
    runs["setting"] = runs["task"]
    runs["metric"] = None
    for task, rows in runs.groupby("task"):
        defining = [c for c in setting_params(task) if c in rows]
        varying = varying_params(rows, exclude=(*PER_CELL_PARAMS, *SEED_PARAMS, *defining))
        runs.loc[rows.index, "setting"] = [_setting_label(task, r, [*defining, *varying])
                                           for _, r in rows.iterrows()]
        runs.loc[rows.index, "metric"] = _task_metric(rows)
    return runs


def setting_params(task: str) -> tuple[str, ...]:
    """The `params.*` columns that define a setting of `task`, shown even when all its runs share
    them: the keys its declarations mark so (`tasks.settings.setting_keys`: T and variant for the
    generated tasks, the language pair and attention for Multi30k, the subset for IMDB)."""
    return tuple(f"params.{key}" for key in setting_keys(task))


def varying_params(rows: pd.DataFrame, exclude: Iterable[str] = ()) -> list[str]:
    """The `params.*` columns whose values differ between the rows, by name (so a setting's label
    does not depend on the order MLflow returned the columns in, which changes with the runs)."""
    return [
        col for col in sorted(rows.columns)
        if col.startswith("params.") and col not in exclude
        and not col.startswith(IGNORED_PARAM_PREFIXES) and col not in HOW_PARAMS
        and rows[col].astype(str).nunique(dropna=False) > 1  # set on some runs, absent on others
    ]


def _setting_label(task: str, row: pd.Series, columns: list[str]) -> str:
    values = {col: row[col] for col in columns if not missing(row[col])}
    source, target = values.pop("params.data.source_lang", None), \
        values.pop("params.data.target_lang", None)
    details = [f"{source}→{target}"] if source and target else []
    details += [f"{short_name(col)}={value}"
                for col, value in values.items()]
    return f"{task} ({', '.join(details)})" if details else task


def _task_metric(rows: pd.DataFrame) -> str | None:
    preferred = rows.get(f"tags.{SOLVED_METRIC_TAG}", pd.Series(dtype=object)).dropna()
    available = {
        col.removeprefix("metrics."): rows[col].dropna().iloc[0]
        for col in rows.columns if col.startswith("metrics.test_") and rows[col].notna().any()
    }
    return key_metric(available, preferred.iloc[0] if len(preferred) else None)[0]


def goal(rows: pd.DataFrame) -> GoalView:
    """The :class:`GoalView` of the runs of one setting."""
    metric = rows["metric"].iloc[0]
    first = rows.iloc[0]
    spec = goals.spec(first["task"], first)
    tags = {k.removeprefix(f"tags.{TAG_PREFIX}"): v for k, v in first.items()
            if k.startswith(f"tags.{TAG_PREFIX}") and not missing(v)}
    meaning, default_mode = METRICS.get(metric, ("", "max"))
    declared = spec.goal if spec is not None and spec.goal and spec.goal.metric == metric else None
    mode = tags.get("solved_mode") or (declared.mode if declared else default_mode)
    threshold = tags.get("solved_threshold")
    if threshold is None and declared is not None:
        threshold = declared.threshold
    chance = numeric(rows, "metrics.baseline")
    return GoalView(
        metric=metric, meaning=meaning, mode=mode,
        chance=float(chance.mean()) if len(chance) else None,
        chance_metric=tags.get("baseline_metric"),
        threshold=None if threshold is None else float(threshold),
    )


def natural_key(text: str) -> tuple:
    """Sort 'T=50' before 'T=100': digit runs compare as numbers."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


def numeric(rows: pd.DataFrame, col: str) -> pd.Series:
    return pd.to_numeric(rows[col], errors="coerce").dropna() if col in rows \
        else pd.Series(dtype=float)


def metric_history(run_ids: Iterable[str], key: str) -> pd.DataFrame:
    """Per-epoch values of metric `key` for the runs: a frame indexed by step, one column per run."""
    client = mlflow.MlflowClient()
    series = {
        run_id: pd.Series({m.step: m.value for m in client.get_metric_history(run_id, key)})
        for run_id in run_ids
    }
    return pd.DataFrame({k: v for k, v in series.items() if not v.empty})


def updates(rows: pd.DataFrame) -> pd.Series:
    """Each run's training updates from its `BUDGET_PARAMS`: ⌈training examples / batch size⌉ ×
    epochs, the examples being `data.num_train` (generated tasks) or `data.subset` (a text task's
    kept part). A text task trained on its whole split (Multi30k; IMDB without a subset) logs
    neither, and its split is the same for all its runs: there the updates are counted per
    training example (epochs / batch size), which orders the runs of that task only. 0 where
    epochs or batch size are missing."""
    epochs, num_train, subset, batch_size = (
        pd.to_numeric(rows.get(c, pd.Series(index=rows.index, dtype=object)), errors="coerce")
        for c in BUDGET_PARAMS)
    batches = np.ceil(num_train.fillna(subset) / batch_size).fillna(1 / batch_size)
    return (batches * epochs).fillna(0)
