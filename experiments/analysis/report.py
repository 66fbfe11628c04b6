"""Reports: read the runs back from MLflow into pandas and compare the cells.

Writes, into ``reports/<sweep>/`` (``reports/all/`` for every run) by default:

- ``summary.html``: one self-contained page (styles inline, plots embedded as PNG) with the report's
  provenance (when, which commit, which machine, which versions), per task what its metric means,
  whether lower or higher is better, its chance level and when a run counts as solved, then one
  table per task — a row per setting × cell with the key test metric as mean ± std over the seeds
  (just the value for one seed), solved k/n, parameters, time, flags for degenerate runs and a
  link to each run in the MLflow UI;
- ``summary.md``: the same text and tables in Markdown; ``summary.csv``: the table as data;
- ``plots/learning_curves_<setting>.png``: loss per epoch (train solid, validation dashed) and the
  validation key metric when it differs from the loss, a line per cell (mean over seeds);
- ``plots/final_metric.png``: the key test metric by cell, one panel per setting, with the chance
  level and the solved threshold; error bars (± std) only where there are two seeds or more;
- ``plots/metric_vs_length.png``: the key test metric against the sequence length T for the tasks
  run at several lengths, one line per cell.

A *setting* is a task with the parameters that define it (T and variant for the long-dependency
tasks, languages and attention for Multi30k, subset for IMDB) and any other parameter that varies
between its runs, other than the cell and the seeds, e.g. ``adding (T=50)``. The key metric of a
task is its ``rnnlab.solved_metric`` tag, else the first of ``bleu``, ``accuracy``, ``mse``,
``loss`` it has. A run is flagged when its key metric is at the chance level, and a translation
run when its BLEU is near 0 or its logged sample translations repeat words or collapse onto a few
sentences.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import math
import os
import platform
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

import cells
from experiments import goals
from experiments.goals import METRICS, GoalView, missing, task_description
from experiments.recording import recorder, store
from experiments.recording.tags import (
    BACKEND_TAG,
    CELL_TAG,
    CONFIG_HASH_TAG,
    DEVICE_TAG,
    ERROR_TAG,
    GIT_COMMIT_TAG,
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
SHORT_PARAMS = {"params.data.length": "T", "params.model.attention": "attention"}
DEFAULT_UI_URL = "http://127.0.0.1:5000"
TABLE_NOTE = ("Each table: the key test metric per setting × cell, mean ± std over the n seeds (the "
              "value alone for n = 1); <em>solved</em>: seeds that reached the threshold; "
              "<em>flags</em>: seeds whose run looks degenerate.")
SAMPLES_ARTIFACT = "samples/translations.txt"
SHOWN_SAMPLES = 3  # sample translations shown under a translation table, per cell and setting


# --- reading runs -----------------------------------------------------------------------------------


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
        and not col.startswith(IGNORED_PARAM_PREFIXES)
        and rows[col].astype(str).nunique(dropna=False) > 1  # set on some runs, absent on others
    ]


def _setting_label(task: str, row: pd.Series, columns: list[str]) -> str:
    values = {col: row[col] for col in columns if not missing(row[col])}
    source, target = values.pop("params.data.source_lang", None), \
        values.pop("params.data.target_lang", None)
    details = [f"{source}→{target}"] if source and target else []
    details += [f"{SHORT_PARAMS.get(col, col.rpartition('.')[2])}={value}"
                for col, value in values.items()]
    return f"{task} ({', '.join(details)})" if details else task


def _task_metric(rows: pd.DataFrame) -> str | None:
    preferred = rows.get(f"tags.{SOLVED_METRIC_TAG}", pd.Series(dtype=object)).dropna()
    available = {
        col.removeprefix("metrics."): rows[col].dropna().iloc[0]
        for col in rows.columns if col.startswith("metrics.test_") and rows[col].notna().any()
    }
    return key_metric(available, preferred.iloc[0] if len(preferred) else None)[0]


# --- what a task's metric means --------------------------------------------------------------------


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
    chance = _column(rows, "metrics.baseline")
    return GoalView(
        metric=metric, meaning=meaning, mode=mode,
        chance=float(chance.mean()) if len(chance) else None,
        chance_metric=tags.get("baseline_metric"),
        threshold=None if threshold is None else float(threshold),
    )


# --- flags: runs that learned nothing --------------------------------------------------------------


def run_flags(row: pd.Series, goal_: GoalView, samples: str | None = None) -> list[str]:
    """Why a run looks degenerate: key metric at chance, BLEU near 0, sample translations that
    repeat words or collapse onto a few sentences."""
    flags = []
    value = pd.to_numeric(row.get(f"metrics.test_{goal_.metric}"), errors="coerce")
    if value is not None and not pd.isna(value) and goal_.at_chance(float(value)):
        flags.append("at chance")
    bleu = pd.to_numeric(row.get("metrics.test_bleu"), errors="coerce")
    if bleu is not None and not pd.isna(bleu) and bleu < 1.0:
        flags.append("BLEU near 0")
    if samples:
        flags += translation_flags(samples)
    return flags


def translation_flags(samples: str) -> list[str]:
    """Flags from a `samples/translations.txt` artifact (lines `HYP: ...`): empty hypotheses,
    words repeated (the same token three times in a row, or one token half of a hypothesis of
    four or more), or at most half as many distinct hypotheses as samples."""
    hyps = [line[4:].strip() for line in samples.splitlines() if line.startswith("HYP:")]
    if not hyps:
        return []
    flags = []
    if sum(not h for h in hyps) * 2 >= len(hyps):
        flags.append("empty translations")
    if sum(_repeats(h.split()) for h in hyps) * 2 >= len(hyps):
        flags.append("repeating words")
    if len(hyps) >= 3 and len(set(hyps)) * 2 <= len(hyps):
        flags.append(f"collapsed: {len(set(hyps))} distinct of {len(hyps)} samples")
    return flags


def _repeats(tokens: list[str]) -> bool:
    in_a_row = any(tokens[i] == tokens[i + 1] == tokens[i + 2] for i in range(len(tokens) - 2))
    dominant = len(tokens) >= 4 and Counter(tokens).most_common(1)[0][1] * 2 >= len(tokens)
    return in_a_row or dominant


def load_samples(run_id: str) -> str | None:
    """A run's logged sample translations, None when it has none."""
    import mlflow

    try:
        return mlflow.artifacts.load_text(f"runs:/{run_id}/{SAMPLES_ARTIFACT}")
    except Exception:  # noqa: BLE001 - no artifact / unreadable store: no flag, not a failed report
        return None


def sample_triples(samples: str, count: int = SHOWN_SAMPLES) -> list[tuple[str, str, str]]:
    """The first `count` (source, reference, model's translation) of a `samples/translations.txt`
    artifact (blocks of `SRC:`, `REF:`, `HYP:` lines)."""
    found, block = [], {}
    for line in samples.splitlines():
        key, _, value = line.partition(": ")
        if key in ("SRC", "REF", "HYP"):
            block[key] = value.strip()
        if len(block) == 3:
            found.append((block["SRC"], block["REF"], block["HYP"]))
            block = {}
    return found[:count]


def translation_samples(done: pd.DataFrame) -> dict[str, str | None]:
    """{run_id: logged sample translations} of the runs with a BLEU score (for their flags)."""
    if done.empty:
        return {}
    bleu = done.get("metrics.test_bleu", pd.Series(index=done.index, dtype=float))
    return {run_id: load_samples(run_id) for run_id, value in zip(done["run_id"], bleu)
            if not pd.isna(value)}


# --- the table --------------------------------------------------------------------------------------

TABLE_COLUMNS = [
    "task", "setting", "cell", "seeds", "metric", "mean", "std", "mean ± std", "chance",
    "solved", "solved when", "params", "train_time_s", "flags", "run_ids", "experiment_id",
]


def summary_table(runs: pd.DataFrame, cell_order: list[str] | None = None,
                  samples: Mapping[str, str | None] | None = None) -> pd.DataFrame:
    """One row per setting × cell: seeds, key metric mean ± std, chance, solved k/n and when,
    params, time, flags (with the number of seeds they concern) and the run ids.

    `samples`: {run_id: sample translations text} for the translation flags."""
    goals = {setting: goal(rows) for setting, rows in runs.groupby("setting", sort=False)}
    rows = [_summary_row(setting, cell, group, goals[setting], samples or {})
            for (setting, cell), group in runs.groupby(["setting", "cell"], sort=False)]
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    order = {name: i for i, name in enumerate(cell_order or [])}
    keys = table.assign(_setting=table["setting"].map(natural_key),
                        _cell=table["cell"].map(lambda c: order.get(c, len(order))))
    keys = keys.sort_values(["task", "_setting", "_cell", "cell"])
    return table.loc[keys.index].reset_index(drop=True)


def natural_key(text: str) -> tuple:
    """Sort 'T=50' before 'T=100': digit runs compare as numbers."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


def _summary_row(setting: str, cell: str, group: pd.DataFrame, goal_: GoalView,
                 samples: Mapping[str, str | None]) -> dict:
    metric = goal_.metric
    values = _column(group, f"metrics.test_{metric}")
    mean, std = values.mean(), values.std(ddof=1) if len(values) > 1 else float("nan")
    solved = _column(group, "metrics.solved")
    flags = Counter(flag for _, run in group.iterrows()
                    for flag in run_flags(run, goal_, samples.get(run["run_id"])))
    params = _column(group, "metrics.param_count")
    return {
        "task": group["task"].iloc[0],
        "setting": setting,
        "cell": cell,
        "seeds": len(group),
        "metric": metric,
        "mean": mean,
        "std": std,
        "mean ± std": _mean_std(mean, std, len(values)),
        "chance": goal_.chance_text,
        "solved": f"{int(solved.sum())}/{len(solved)}" if len(solved) else "-",
        "solved when": goal_.solved_when,
        "params": int(params.mean()) if len(params) else None,
        "train_time_s": round(_column(group, "metrics.train_time_s").mean(), 1),
        "flags": "; ".join(f"{flag} ({n}/{len(group)})" for flag, n in flags.items()),
        "run_ids": " ".join(group["run_id"]),
        "experiment_id": group["experiment_id"].iloc[0] if "experiment_id" in group else None,
    }


def _mean_std(mean: float, std: float, n: int) -> str:
    if n == 0 or math.isnan(mean):
        return "-"
    return f"{mean:.4g} ± {std:.2g}" if n > 1 else f"{mean:.4g}"


def _column(rows: pd.DataFrame, col: str) -> pd.Series:
    return pd.to_numeric(rows[col], errors="coerce").dropna() if col in rows \
        else pd.Series(dtype=float)


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


# --- plots ------------------------------------------------------------------------------------------


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def metric_history(run_ids: Iterable[str], key: str) -> pd.DataFrame:
    """Per-epoch values of metric `key` for the runs: a frame indexed by step, one column per run."""
    client = mlflow.MlflowClient()
    series = {
        run_id: pd.Series({m.step: m.value for m in client.get_metric_history(run_id, key)})
        for run_id in run_ids
    }
    return pd.DataFrame({k: v for k, v in series.items() if not v.empty})


def plot_learning_curves(runs: pd.DataFrame, folder: Path, cell_order: list[str],
                         history=None) -> list[Path]:
    """One figure per setting: the loss per epoch (train solid, validation dashed) and the
    validation key metric unless it equals the validation loss (adding: loss is MSE); a colour per
    cell (mean over seeds), integer epochs from 1. `history(run_ids, key)`: where the curves come
    from (default: the store, `metric_history`; a runs export has its own)."""
    from matplotlib.ticker import MaxNLocator

    plt = recorder.pyplot()
    paths = []
    for setting in sorted(runs["setting"].unique(), key=natural_key):
        rows = runs[runs["setting"] == setting]
        panels = _curves(rows, cell_order, history or metric_history)
        if not panels:
            continue
        fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
        colours = {cell: f"C{i}" for i, cell in enumerate(_ordered(rows["cell"], cell_order))}
        for ax, (title, ylabel, lines) in zip(axes[0], panels):
            for (cell, style), line in lines.items():
                ax.plot(line.index + 1, line.values, style, marker="o", color=colours[cell],
                        label=f"{cell} {'val' if style == '--' else 'train'}"
                        if title.startswith("loss") else cell)
            ax.set(title=f"{setting}: {title}", xlabel="epoch", ylabel=ylabel)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small")
        fig.tight_layout()
        paths.append(_save(fig, folder / f"learning_curves_{slug(setting)}.png", plt))
    return paths


def _curves(rows: pd.DataFrame, cell_order: list[str], history=None) -> list[tuple[str, str, dict]]:
    """[(title, y label, {(cell, line style): mean-over-seeds series by epoch})]: the loss panel
    (train '-', val '--') and the validation key metric's panel when it is not the loss again."""
    metric = rows["metric"].iloc[0]
    read, lines = history or metric_history, {}
    for key in dict.fromkeys(["train_loss", "val_loss", f"val_{metric}"]):
        for cell in _ordered(rows["cell"], cell_order):
            runs = read(rows.loc[rows["cell"] == cell, "run_id"], key)
            if not runs.empty:
                lines[key, cell] = runs.mean(axis=1)
    loss = {(cell, "-" if key == "train_loss" else "--"): line
            for (key, cell), line in lines.items() if key in ("train_loss", "val_loss")}
    val_metric = {(cell, "-"): line for (key, cell), line in lines.items()
                  if key == f"val_{metric}" and metric != "loss"}
    same = val_metric and all(
        (cell, "--") in loss and len(loss[cell, "--"]) == len(line)
        and bool((loss[cell, "--"] - line).abs().max() <= 1e-9 * max(1.0, line.abs().max()))
        for (cell, _), line in val_metric.items()
    )
    panels = []
    if loss:
        panels.append((f"loss (= {metric})" if same else "loss", "loss", loss))
    if val_metric and not same:
        direction = METRICS.get(metric, ("", "max"))[1]
        panels.append((f"validation {metric}",
                       f"{metric} ({'lower' if direction == 'min' else 'higher'} is better)",
                       val_metric))
    return panels


def plot_final_metric(table: pd.DataFrame, folder: Path, goals: Mapping[str, GoalView]) -> Path:
    """The key test metric by cell, one panel per setting: the mean, ± std error bars only where
    there are two seeds or more, the chance level and the solved threshold as lines; an error-like
    metric on a log axis (`final_metric_scale`)."""
    plt = recorder.pyplot()
    settings = list(dict.fromkeys(table["setting"]))
    cols = min(3, len(settings))
    nrows = math.ceil(len(settings) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.8 * cols, 3.6 * nrows), squeeze=False)
    for ax, setting in zip(axes.flat, settings):
        rows = table[table["setting"] == setting]
        goal_ = goals[setting]
        ax.bar(rows["cell"], rows["mean"], color="tab:blue", alpha=0.8)
        ax.set_yscale(final_metric_scale(goal_, rows["mean"]))
        several = rows[rows["seeds"] > 1]
        if len(several):
            ax.errorbar(several["cell"], several["mean"], yerr=several["std"], fmt="none",
                        ecolor="black", capsize=4, label="± std over seeds")
        if goal_.chance is not None and goal_.chance_metric == goal_.metric:
            ax.axhline(goal_.chance, color="grey", linestyle="--", label="chance")
        if goal_.threshold is not None:
            ax.axhline(goal_.threshold, color="tab:green", linestyle=":", label="solved")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
        n = sorted(set(rows["seeds"]))
        ax.set(title=f"{setting} (n = {', '.join(map(str, n))})",
               ylabel=f"test {goal_.metric} ({goal_.better})")
        ax.tick_params(axis="x", rotation=30)
    for ax in list(axes.flat)[len(settings):]:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, folder / "final_metric.png", plt)


def final_metric_scale(goal_: GoalView, means) -> str:
    """"log" for an error-like metric (lower is better: MSE, perplexity) whose means are all
    positive: the solved cells' MSE of 1e-4 would be invisible bars beside the baseline's 0.17 on a
    linear axis; "linear" otherwise (accuracies, BLEU: bounded, compared on their own scale)."""
    values = [float(v) for v in means if v is not None and not math.isnan(float(v))]
    return "log" if goal_.mode == "min" and values and min(values) > 0 else "linear"


def plot_metric_vs_length(runs: pd.DataFrame, folder: Path, cell_order: list[str]) -> Path | None:
    """Key test metric against T for every task run at two or more lengths, a line per cell and
    model variant (see `length_lines`); ± std error bars only at lengths with two seeds or more."""
    if "params.data.length" not in runs:
        return None
    runs = runs.assign(length=pd.to_numeric(runs["params.data.length"], errors="coerce"))
    tasks = [t for t, rows in runs.groupby("task") if rows["length"].nunique() > 1]
    if not tasks:
        return None
    plt = recorder.pyplot()
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        rows = runs[runs["task"] == task]
        metric = rows["metric"].iloc[0]
        for label, i, j, stats in length_lines(rows, metric, cell_order):
            ax.plot(stats.index, stats["mean"], marker="o", color=f"C{i}", label=label,
                    linestyle=("-", "--", ":", "-.")[j % 4])
            several = stats[stats["count"] > 1]
            if len(several):
                ax.errorbar(several.index, several["mean"], yerr=several["std"], fmt="none",
                            ecolor=f"C{i}", capsize=3)
        direction = METRICS.get(metric, ("", "max"))[1]
        ax.set(title=task, xlabel="sequence length T",
               ylabel=f"test {metric} ({'lower' if direction == 'min' else 'higher'} is better)")
        ax.set_xticks(sorted(rows["length"].dropna().unique()))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    return _save(fig, folder / "metric_vs_length.png", plt)


BUDGET_PARAMS = ("params.train.epochs", "params.data.num_train", "params.data.subset",
                 "params.data.batch_size")
"""What a run's training budget is read from: by `updates` and by the metric-vs-T plot's lines."""


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


def length_lines(rows: pd.DataFrame, metric: str, cell_order: list[str]):
    """The lines of one task's metric-vs-T panel: (label, cell index, variant index, stats by
    length with mean, std and count). A model variant (a `params.model.*` that varies between the
    task's runs besides the per-cell ones, e.g. the forget-gate-bias ablation) or another training
    budget (`BUDGET_PARAMS`, e.g. a companion sweep that trains the same models longer) is a line
    of its own, never averaged into the cell's line."""
    candidates = [c for c in rows if c.startswith("params.model.") or c in BUDGET_PARAMS]
    variant_cols = varying_params(rows[candidates], exclude=PER_CELL_PARAMS)
    lines = []
    for i, cell in enumerate(_ordered(rows["cell"], cell_order)):
        of_cell = rows[rows["cell"] == cell]
        groups = of_cell.groupby(variant_cols, dropna=False) if variant_cols else [((), of_cell)]
        for j, (variant, values) in enumerate(groups):
            variant = variant if isinstance(variant, tuple) else (variant,)
            label = ", ".join([cell] + [f"{c.rpartition('.')[2]}={v}" for c, v
                                        in zip(variant_cols, variant) if not missing(v)])
            value = pd.to_numeric(values[f"metrics.test_{metric}"], errors="coerce")
            stats = value.groupby(values["length"]).agg(["mean", "std", "count"])
            lines.append((label, i, j, stats))
    return lines


def _ordered(values: Iterable[str], order: list[str]) -> list[str]:
    present = list(dict.fromkeys(values))
    return [c for c in order if c in present] + [c for c in present if c not in order]


def _save(fig, path: Path, plt) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --- the whole report -------------------------------------------------------------------------------


def write_report(sweep: str | None = None, output: str | Path | None = None, *,
                 ui_url: str | None = None) -> dict[str, Any]:
    """Read the runs of `sweep` (None: every run), write the pages, table and plots; returns the
    folder, the files written, the table, the runs, the runs not completed and the Markdown text.

    `ui_url`: the MLflow UI the run links point to ($RNNLAB_UI_URL, else http://127.0.0.1:5000)."""

    folder = Path(output) if output else Path("reports") / (sweep or "all")
    runs = load_runs(sweep)
    if runs.empty:
        raise LookupError(
            f"no runs found for sweep {sweep!r}" if sweep else "no rnnlab runs found"
        ) from None
    order = list(cells.names())
    done = add_settings(completed(runs)) if not completed(runs).empty else pd.DataFrame()
    samples = translation_samples(done)
    table = summary_table(done, order, samples) if not done.empty else pd.DataFrame()
    goals = {s: goal(rows) for s, rows in done.groupby("setting")} if not done.empty else {}
    others = not_completed(runs)
    folder.mkdir(parents=True, exist_ok=True)
    plots = []
    if not done.empty:
        plots += plot_learning_curves(done, folder / "plots", order)
        plots.append(plot_final_metric(table, folder / "plots", goals))
        plots += [p for p in [plot_metric_vs_length(done, folder / "plots", order)] if p]
    page = Page(sweep, table, others, goals, done, provenance(runs),
                (ui_url or os.environ.get("RNNLAB_UI_URL") or DEFAULT_UI_URL).rstrip("/"),
                plots, folder, samples)
    files = page.write()
    return {"folder": folder, "files": files + plots, "table": table, "runs": runs,
            "not_completed": others, "markdown": files[0].read_text()}


def provenance(runs: pd.DataFrame) -> dict[str, str]:
    """When and where the report was made, from which code and versions; the runs' commits,
    backends and devices; the MLflow store."""
    from importlib.metadata import PackageNotFoundError, version

    def distinct(column: str) -> str:
        values = runs[column].dropna().unique() if column in runs else []
        # a commit's first 12 hex digits, its "+dirty" mark kept (a run from an edited checkout)
        return ", ".join(sorted({re.sub(r"^([0-9a-f]{12})[0-9a-f]{28}", r"\1", str(v))
                                 for v in values})) or "-"

    versions = []
    for package in ("keras", "tensorflow", "mlflow", "numpy", "pandas"):
        try:
            versions.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            continue
    return {
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "code (report)": store.git_commit(),
        "code (runs)": distinct(f"tags.{GIT_COMMIT_TAG}"),
        "machine (report)": machine(),
        "backend / device (runs)": " / ".join([distinct(f"tags.{BACKEND_TAG}"),
                                                distinct(f"tags.{DEVICE_TAG}")]),
        "versions": ", ".join([f"Python {platform.python_version()}", *versions]),
        "MLflow store": store.tracking_uri(),
        "runs": f"{len(runs)} ({len(completed(runs))} completed)",
    }


def machine() -> str:
    """This machine: host name, CPU model, CPU count, memory, OS."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    try:
        memory = f", {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM"
    except (ValueError, OSError, AttributeError):  # not a POSIX system
        memory = ""
    return (f"{platform.node()}: {cpu}, {os.cpu_count()} CPUs{memory}, "
            f"{platform.system()} {platform.release()}")


def task_text(task: str, goals: list[GoalView]) -> str:
    """One paragraph on a task: its description, key metric and what it means, which way is
    better, the chance level and the solved rule (the goals of its settings)."""
    g = goals[0]
    chances = {x.chance_text for x in goals}
    solved = {x.solved_when for x in goals}
    parts = [task_description(task),
             f"Key metric: test {g.metric}" + (f", the {g.meaning}" if g.meaning else "")
             + f"; {g.better}.",
             "Chance level: " + (chances.pop() if len(chances) == 1 else "per setting, "
                                 "in the table") + ".",
             "Solved when " + (solved.pop() if len(solved) == 1 else "per setting, "
                               "in the table") + "."]
    return " ".join(p for p in parts if p).replace("Chance level: -.", "No chance level.") \
        .replace("Solved when -.", "No solved threshold.")


def markdown_table(frame: pd.DataFrame) -> str:
    """`frame` as a Markdown (pipe) table, a "|" inside a value escaped so it stays in its cell."""
    escaped = frame.astype(object).map(lambda v: v.replace("|", "\\|") if isinstance(v, str) else v)
    return escaped.to_markdown(index=False, disable_numparse=True)


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """A task's rows as shown: n, `<metric> mean ± std`, chance, solved k/n and when, params, time
    (s), flags; missing as '-'."""
    if table.empty:
        return table
    metric = table["metric"].iloc[0]
    shown = pd.DataFrame({
        "setting": table["setting"], "cell": table["cell"], "n": table["seeds"],
        f"{metric} (mean ± std)": table["mean ± std"], "chance": table["chance"],
        "solved": table["solved"], "solved when": table["solved when"],
        "params": table["params"].map(lambda v: "-" if pd.isna(v) else f"{int(v):,}"),
        "time (s)": table["train_time_s"].map(lambda v: "-" if pd.isna(v) else f"{v:.1f}"),
        "flags": table["flags"].replace("", "-"),
    })
    return shown.astype(object).fillna("-")


@dataclasses.dataclass
class Page:
    """The report's text, written as Markdown and as one self-contained HTML page."""

    sweep: str | None
    table: pd.DataFrame
    others: pd.DataFrame
    goals: Mapping[str, GoalView]
    runs: pd.DataFrame
    facts: Mapping[str, str]
    ui_url: str
    plots: list[Path]
    folder: Path
    samples: Mapping[str, str | None] = dataclasses.field(default_factory=dict)

    @property
    def title(self) -> str:
        return f"RNN Cell Lab report — sweep {self.sweep}" if self.sweep else \
            "RNN Cell Lab report — all runs"

    def tasks(self) -> list[tuple[str, str, pd.DataFrame]]:
        """[(task, its description and goal as one paragraph, its rows)]."""
        if self.table.empty:
            return []
        return [(task, self.task_text(task, rows), rows)
                for task, rows in self.table.groupby("task", sort=False)]

    def task_text(self, task: str, rows: pd.DataFrame) -> str:
        return task_text(task, [self.goals[s] for s in dict.fromkeys(rows["setting"])])

    def examples(self, rows: pd.DataFrame) -> list[tuple[str, list[tuple[str, str, str]]]]:
        """[(cell and setting, its first sample translations)] for the rows' runs that logged
        samples (translation), the first run of each row."""
        found = []
        for _, row in rows.iterrows():
            first = row["run_ids"].split()[0]
            triples = sample_triples(self.samples.get(first) or "")
            if triples:
                found.append((f"{row['cell']} × {row['setting']}", triples))
        return found

    def run_url(self, experiment_id, run_id: str) -> str:
        return f"{self.ui_url}/#/experiments/{experiment_id}/runs/{run_id}"

    def write(self) -> list[Path]:
        paths = [self.folder / "summary.md", self.folder / "summary.csv",
                 self.folder / "summary.html"]
        paths[0].write_text(self.markdown())
        self.table.to_csv(paths[1], index=False)
        paths[2].write_text(self.html())
        return paths

    def markdown(self) -> str:
        parts = [f"# {self.title}", ""]
        parts += [f"- **{key}**: {value}" for key, value in self.facts.items()]
        parts += ["", TABLE_NOTE.replace("<em>", "*").replace("</em>", "*"), ""]
        if self.table.empty:
            parts += ["_No completed runs._", ""]
        for task, text, rows in self.tasks():
            parts += [f"## {task}", "", text, "",
                      markdown_table(display_table(rows)), ""]
            for who, triples in self.examples(rows):
                parts += [f"Sample translations, {who}:", ""]
                parts += [f"- {src}<br>reference: {ref}<br>**model: {hyp}**"
                          for src, ref, hyp in triples]
                parts += [""]
        if not self.others.empty:
            parts += ["## Not completed", "", markdown_table(self.others), ""]
        if self.plots:
            parts += ["## Plots", ""]
            parts += [f"![{p.stem}]({p.relative_to(self.folder).as_posix()})" for p in self.plots]
        return "\n".join(parts) + "\n"

    def html(self) -> str:
        esc = html.escape
        facts = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in self.facts.items())
        body = [f"<h1>{esc(self.title)}</h1>", f'<dl class="facts">{facts}</dl>',
                f"<p>{TABLE_NOTE} <em>runs</em>: each seed's run in the MLflow UI.</p>"]
        if self.table.empty:
            body.append("<p><em>No completed runs.</em></p>")
        for task, text, rows in self.tasks():
            shown = display_table(rows)
            links = [self._links(row) for _, row in rows.iterrows()]
            body += [f'<h2 id="{esc(slug(task))}">{esc(task)}</h2>', f"<p>{esc(text)}</p>",
                     _html_table(shown, extra=("runs", links))]
            for who, triples in self.examples(rows):
                body += [f"<p>Sample translations, {esc(who)}:</p>",
                         _html_table(pd.DataFrame(triples, columns=["source", "reference",
                                                                     "model"]))]
        if not self.others.empty:
            body += ["<h2>Not completed</h2>", _html_table(self.others)]
        for plot in self.plots:
            data = base64.b64encode(plot.read_bytes()).decode("ascii")
            body.append(f'<figure><img alt="{esc(plot.stem)}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{esc(plot.stem.replace('_', ' '))}</figcaption></figure>")
        return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
                f"<title>{esc(self.title)}</title><style>{CSS}</style></head>"
                f"<body>{''.join(body)}</body></html>\n")

    def _links(self, row: pd.Series) -> str:
        ids = row["run_ids"].split()
        seeds = self.runs.set_index("run_id").reindex(ids).get(
            "params.train.seed", pd.Series(index=ids, dtype=object))
        return " ".join(
            f'<a href="{html.escape(self.run_url(row["experiment_id"], run_id))}">'
            f"seed {html.escape(str(seeds.get(run_id, i)))}</a>"
            for i, run_id in enumerate(ids))


def _html_table(frame: pd.DataFrame, extra: tuple[str, list[str]] | None = None) -> str:
    """A table of escaped cells; `extra` = (header, already-escaped HTML per row)."""
    head = [html.escape(str(c)) for c in frame.columns] + ([extra[0]] if extra else [])
    rows = []
    for i, (_, row) in enumerate(frame.iterrows()):
        cells = [f'<td class="{"flag" if c == "flags" and v != "-" else ""}">'
                 f"{html.escape(str(v))}</td>" for c, v in row.items()]
        if extra:
            cells.append(f"<td>{extra[1][i]}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (f"<table><thead><tr>{''.join(f'<th>{h}</th>' for h in head)}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1200px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;border-bottom:2px solid #ddd;padding-bottom:.3em}
h2{font-size:1.25em;margin-top:1.8em}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:.2em 1em;font-size:.9em;
background:#f6f8fa;padding:.8em 1em;border-radius:6px}
dl.facts dt{font-weight:600}dl.facts dd{margin:0;font-family:ui-monospace,monospace}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.9em}
th,td{border:1px solid #d0d7de;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f0f3f6}tbody tr:nth-child(even){background:#fafbfc}
td.flag{color:#9a3412;background:#fff4e5}
figure{margin:1.5em 0}img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}a{color:#0969da}
""".strip()
