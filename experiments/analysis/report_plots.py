"""The figures the report (and the results page) draw from the runs: learning curves per setting,
the key test metric by cell, the key metric against the sequence length T."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from experiments.analysis import readback
from experiments.goals import METRICS, GoalView, missing
from experiments.recording import recorder


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def plot_learning_curves(runs: pd.DataFrame, folder: Path, cell_order: list[str],
                         history=None) -> list[Path]:
    """One figure per setting: the loss per epoch (train solid, validation dashed) and the
    validation key metric unless it equals the validation loss (adding: loss is MSE); a colour per
    cell (mean over seeds), integer epochs from 1. `history(run_ids, key)`: where the curves come
    from (default: the store, `readback.metric_history`; a runs export has its own)."""
    from matplotlib.ticker import MaxNLocator

    plt = recorder.pyplot()
    paths = []
    for setting in sorted(runs["setting"].unique(), key=readback.natural_key):
        rows = runs[runs["setting"] == setting]
        panels = _curves(rows, cell_order, history or readback.metric_history)
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
        paths.append(save(fig, folder / f"learning_curves_{slug(setting)}.png", plt))
    return paths


def _curves(rows: pd.DataFrame, cell_order: list[str], history=None) -> list[tuple[str, str, dict]]:
    """[(title, y label, {(cell, line style): mean-over-seeds series by epoch})]: the loss panel
    (train '-', val '--') and the validation key metric's panel when it is not the loss again."""
    metric = rows["metric"].iloc[0]
    read, lines = history or readback.metric_history, {}
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
    return save(fig, folder / "final_metric.png", plt)


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
    return save(fig, folder / "metric_vs_length.png", plt)


def length_lines(rows: pd.DataFrame, metric: str, cell_order: list[str]):
    """The lines of one task's metric-vs-T panel: (label, cell index, variant index, stats by
    length with mean, std and count). A model variant (a `params.model.*` that varies between the
    task's runs besides the per-cell ones, e.g. the forget-gate-bias ablation) or another training
    budget (`readback.BUDGET_PARAMS`, e.g. a companion sweep that trains the same models longer)
    is a line of its own, never averaged into the cell's line."""
    candidates = [c for c in rows if c.startswith("params.model.") or c in readback.BUDGET_PARAMS]
    variant_cols = readback.varying_params(rows[candidates], exclude=readback.PER_CELL_PARAMS)
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


def save(fig, path: Path, plt) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
