"""Reports: read the runs back from MLflow into pandas and compare the cells.

Writes, into ``reports/<sweep>/`` by default:

- ``summary.md``, ``summary.csv``, ``summary.html``: one row per task setting × cell with the key test
  metric as mean ± std over seeds, the number of seeds, the chance baseline and how many seeds solved it;
- ``plots/learning_curves_<setting>.png``: validation curves per epoch, one line per cell (mean over
  seeds);
- ``plots/final_metric.png``: the key test metric by cell with ± std error bars, one panel per setting;
- ``plots/metric_vs_length.png``: the key test metric against the sequence length T for the tasks run at
  several lengths (the long-dependency tasks), one line per cell.

A *setting* is a task together with the parameters that vary between its runs other than the cell and
the seeds (e.g. ``adding (T=50)``, ``multi30k (attention=luong)``); the key metric of a task is its
``rnnlab.solved_metric`` tag, else the first of ``bleu``, ``accuracy``, ``mse``, ``loss`` it has.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

import cells
from experiments import tracking
from experiments.results import key_metric

SEED_PARAMS = ("params.train.seed", "params.data.seed")
PER_CELL_PARAMS = ("params.model.cell", "params.model.units_used")  # units_used: match_params
IGNORED_PARAM_PREFIXES = ("params.tracking.",)
SHORT_PARAMS = {"params.data.length": "T", "params.model.attention": "attention"}


# --- reading runs -----------------------------------------------------------------------------------


def load_runs(sweep: str | None = None) -> pd.DataFrame:
    """The child runs (those with an `rnnlab.task` tag) of one sweep, or of all sweeps, as a DataFrame
    of `mlflow.search_runs`; one run per config hash (the latest completed one, else the latest), so
    re-runs do not count twice."""
    tracking.configure()
    runs = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"tags.`rnnlab.sweep` = {tracking.quote(sweep)}" if sweep else "",
        order_by=["attributes.start_time DESC"],
    )
    if runs.empty or "tags.rnnlab.task" not in runs:
        return pd.DataFrame()
    return one_per_config(runs[runs["tags.rnnlab.task"].notna()])


def one_per_config(runs: pd.DataFrame) -> pd.DataFrame:
    """Per config hash, the latest completed run, else the latest run."""
    ranked = runs.assign(_done=runs.index.isin(completed(runs).index))
    ranked = ranked.sort_values(["_done", "start_time"], ascending=False, kind="stable")
    return ranked.drop_duplicates("tags.rnnlab.config_hash").drop(columns="_done") \
        .reset_index(drop=True)


def completed(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs that trained and were tested (MLflow FINISHED and not tagged SKIPPED)."""
    if runs.empty:
        return runs
    status = runs.get("tags.rnnlab.status", pd.Series("FINISHED", index=runs.index)).fillna("FINISHED")
    return runs[(runs["status"] == "FINISHED") & (status != "SKIPPED")].copy()


def add_settings(runs: pd.DataFrame) -> pd.DataFrame:
    """Add the columns `task`, `cell`, `setting` (task + varying parameters) and `metric` (key metric)."""
    runs = runs.copy()
    runs["task"] = runs["tags.rnnlab.task"]
    runs["cell"] = runs["tags.rnnlab.cell"]
    runs["setting"] = runs["task"]
    runs["metric"] = None
    for task, rows in runs.groupby("task"):
        varying = varying_params(rows, exclude=(*PER_CELL_PARAMS, *SEED_PARAMS))
        runs.loc[rows.index, "setting"] = [_setting_label(task, r, varying) for _, r in rows.iterrows()]
        runs.loc[rows.index, "metric"] = _task_metric(rows)
    return runs


def varying_params(rows: pd.DataFrame, exclude: Iterable[str] = ()) -> list[str]:
    """The `params.*` columns whose values differ between the rows."""
    return [
        col for col in rows.columns
        if col.startswith("params.") and col not in exclude
        and not col.startswith(IGNORED_PARAM_PREFIXES)
        and rows[col].astype(str).nunique() > 1
    ]


def _setting_label(task: str, row: pd.Series, varying: list[str]) -> str:
    details = ", ".join(
        f"{SHORT_PARAMS.get(col, col.rpartition('.')[2])}={row[col]}" for col in varying
    )
    return f"{task} ({details})" if details else task


def _task_metric(rows: pd.DataFrame) -> str | None:
    preferred = rows.get("tags.rnnlab.solved_metric", pd.Series(dtype=object)).dropna()
    available = {
        col.removeprefix("metrics."): rows[col].dropna().iloc[0]
        for col in rows.columns if col.startswith("metrics.test_") and rows[col].notna().any()
    }
    return key_metric(available, preferred.iloc[0] if len(preferred) else None)[0]


# --- the table --------------------------------------------------------------------------------------


def summary_table(runs: pd.DataFrame, cell_order: list[str] | None = None) -> pd.DataFrame:
    """One row per setting × cell: seeds, key metric mean ± std, baseline, solved k/n, params, time."""
    rows = [_summary_row(setting, cell, group) for (setting, cell), group in
            runs.groupby(["setting", "cell"], sort=False)]
    table = pd.DataFrame(rows, columns=[
        "task", "setting", "cell", "seeds", "metric", "mean", "std", "mean ± std", "baseline",
        "baseline_metric", "solved", "params", "train_time_s",
    ])
    order = {name: i for i, name in enumerate(cell_order or [])}
    keys = table.assign(_setting=table["setting"].map(natural_key),
                        _cell=table["cell"].map(lambda c: order.get(c, len(order))))
    keys = keys.sort_values(["task", "_setting", "_cell", "cell"])
    return table.loc[keys.index].reset_index(drop=True)


def natural_key(text: str) -> tuple:
    """Sort 'T=50' before 'T=100': digit runs compare as numbers."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


def _summary_row(setting: str, cell: str, group: pd.DataFrame) -> dict:
    metric = group["metric"].iloc[0]
    values = _column(group, f"metrics.test_{metric}")
    mean, std = values.mean(), values.std(ddof=1) if len(values) > 1 else 0.0
    solved = _column(group, "metrics.solved")
    baseline_metric = group.get("tags.rnnlab.baseline_metric", pd.Series(dtype=object)).dropna()
    baseline = _column(group, "metrics.baseline").mean()
    return {
        "task": group["task"].iloc[0],
        "setting": setting,
        "cell": cell,
        "seeds": len(group),
        "metric": metric,
        "mean": mean,
        "std": std,
        "mean ± std": _mean_std(mean, std, len(values)),
        "baseline": baseline,
        "baseline_metric": baseline_metric.iloc[0] if len(baseline_metric) else None,
        "solved": f"{int(solved.sum())}/{len(solved)}" if len(solved) else "-",
        "params": int(_column(group, "metrics.param_count").mean()) if
        _column(group, "metrics.param_count").notna().any() else None,
        "train_time_s": round(_column(group, "metrics.train_time_s").mean(), 1),
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
    reason_cols = [c for c in ("tags.rnnlab.reason", "tags.rnnlab.error") if c in rest]
    reason = rest[reason_cols].bfill(axis=1).iloc[:, 0].fillna("") if reason_cols else ""
    status = rest.get("tags.rnnlab.status", rest["status"]).fillna(rest["status"])
    flat = pd.DataFrame({"task": rest["tags.rnnlab.task"], "cell": rest["tags.rnnlab.cell"],
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


def plot_learning_curves(runs: pd.DataFrame, folder: Path, cell_order: list[str]) -> list[Path]:
    """One figure per setting: train/val loss and the validation key metric per epoch (1-based),
    a line per cell (mean over seeds); panels without per-epoch values are left out."""
    from matplotlib.ticker import MaxNLocator  # matplotlib loads on first plot (start-up time)

    plt = tracking.pyplot()
    paths = []
    for setting in sorted(runs["setting"].unique(), key=natural_key):
        rows = runs[runs["setting"] == setting]
        curves = _curves(rows, cell_order)
        if not curves:
            continue
        fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.6), squeeze=False)
        for ax, (key, lines) in zip(axes[0], curves.items()):
            for cell, line in lines.items():
                ax.plot(line.index + 1, line.values, marker="o", label=cell)
            ax.set(title=f"{setting}: {key}", xlabel="epoch", ylabel=key)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
            ax.grid(alpha=0.3)
        axes[0][0].legend()
        fig.tight_layout()
        paths.append(_save(fig, folder / f"learning_curves_{slug(setting)}.png", plt))
    return paths


def _curves(rows: pd.DataFrame, cell_order: list[str]) -> dict[str, dict[str, pd.Series]]:
    """{metric key: {cell: mean-over-seeds series by epoch}} for the keys that have values."""
    keys = dict.fromkeys(["train_loss", "val_loss", f"val_{rows['metric'].iloc[0]}"])
    curves = {}
    for key in keys:
        lines = {}
        for cell in _ordered(rows["cell"], cell_order):
            history = metric_history(rows.loc[rows["cell"] == cell, "run_id"], key)
            if not history.empty:
                lines[cell] = history.mean(axis=1)
        if lines:
            curves[key] = lines
    return curves


def plot_final_metric(table: pd.DataFrame, folder: Path) -> Path:
    """The key test metric by cell, mean with ± std error bars, one panel per setting."""
    plt = tracking.pyplot()
    settings = list(dict.fromkeys(table["setting"]))
    cols = min(3, len(settings))
    nrows = math.ceil(len(settings) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.5 * cols, 3.4 * nrows), squeeze=False)
    for ax, setting in zip(axes.flat, settings):
        rows = table[table["setting"] == setting]
        ax.bar(rows["cell"], rows["mean"], yerr=rows["std"], capsize=4, color="tab:blue", alpha=0.8)
        metric = rows["metric"].iloc[0]
        baseline = rows.loc[rows["baseline_metric"] == metric, "baseline"].dropna()
        if len(baseline):
            ax.axhline(baseline.mean(), color="grey", linestyle="--", label="chance")
            ax.legend()
        ax.set(title=setting, ylabel=f"test {metric}")
        ax.tick_params(axis="x", rotation=30)
    for ax in list(axes.flat)[len(settings):]:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, folder / "final_metric.png", plt)


def plot_metric_vs_length(runs: pd.DataFrame, folder: Path, cell_order: list[str]) -> Path | None:
    """Key test metric against T for every task run at two or more lengths, a line per cell."""
    if "params.data.length" not in runs:
        return None
    runs = runs.assign(length=pd.to_numeric(runs["params.data.length"], errors="coerce"))
    tasks = [t for t, rows in runs.groupby("task") if rows["length"].nunique() > 1]
    if not tasks:
        return None
    plt = tracking.pyplot()
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        rows = runs[runs["task"] == task]
        metric = rows["metric"].iloc[0]
        for cell in _ordered(rows["cell"], cell_order):
            values = rows[rows["cell"] == cell]
            values = values.assign(value=pd.to_numeric(values[f"metrics.test_{metric}"],
                                                       errors="coerce"))
            stats = values.groupby("length")["value"].agg(["mean", "std"]).fillna(0.0)
            ax.errorbar(stats.index, stats["mean"], yerr=stats["std"], marker="o", capsize=3,
                        label=cell)
        ax.set(title=task, xlabel="sequence length T", ylabel=f"test {metric}")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return _save(fig, folder / "metric_vs_length.png", plt)


def _ordered(values: Iterable[str], order: list[str]) -> list[str]:
    present = list(dict.fromkeys(values))
    return [c for c in order if c in present] + [c for c in present if c not in order]


def _save(fig, path: Path, plt) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --- the whole report -------------------------------------------------------------------------------


def write_report(sweep: str | None = None, output: str | Path | None = None) -> dict[str, Any]:
    """Read the runs, write the tables and plots; returns the folder, the files written, the table,
    the runs, the runs not completed and the Markdown text."""
    folder = Path(output) if output else Path("reports") / (sweep or "all")
    runs = load_runs(sweep)
    if runs.empty:
        raise LookupError(
            f"no runs found for sweep {sweep!r}" if sweep else "no rnnlab runs found"
        ) from None
    order = list(cells.names())
    done = add_settings(completed(runs)) if not completed(runs).empty else pd.DataFrame()
    table = summary_table(done, order) if not done.empty else pd.DataFrame()
    others = not_completed(runs)
    folder.mkdir(parents=True, exist_ok=True)
    files = _write_tables(table, others, folder, sweep)
    if not done.empty:
        files += plot_learning_curves(done, folder / "plots", order)
        files.append(plot_final_metric(table, folder / "plots"))
        files += [p for p in [plot_metric_vs_length(done, folder / "plots", order)] if p]
    return {"folder": folder, "files": files, "table": table, "runs": runs, "not_completed": others,
            "markdown": files[0].read_text()}


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """The table as text: mean and std only in `mean ± std`, floats to 4 digits, missing as '-'."""
    if table.empty:
        return table
    shown = table.drop(columns=["mean", "std"])
    floats = shown.select_dtypes("float").columns
    shown[floats] = shown[floats].map(lambda v: "-" if pd.isna(v) else f"{v:.4g}")
    return shown.astype(object).fillna("-")


def _write_tables(table: pd.DataFrame, others: pd.DataFrame, folder: Path,
                  sweep: str | None) -> list[Path]:
    shown = display_table(table)
    title = f"# RNN Cell Lab report — sweep `{sweep}`" if sweep else "# RNN Cell Lab report"
    parts = [title, "", "Key test metric per task setting × cell, mean ± std over seeds.", ""]
    parts.append(shown.to_markdown(index=False, disable_numparse=True) if not shown.empty
                 else "_No completed runs._")
    if not others.empty:
        parts += ["", "## Not completed", "", others.to_markdown(index=False, disable_numparse=True)]
    paths = [folder / "summary.md", folder / "summary.csv", folder / "summary.html"]
    paths[0].write_text("\n".join(parts) + "\n")
    table.to_csv(paths[1], index=False)
    html = shown.to_html(index=False) + ("<h2>Not completed</h2>" + others.to_html(index=False)
                                         if not others.empty else "")
    paths[2].write_text(f"<html><body><h1>{title.lstrip('# ')}</h1>{html}</body></html>\n")
    return paths
