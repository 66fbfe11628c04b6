"""The results page's figures: the summary (cells × settings at a glance) and the gradient flow
measured on the sweep's own trained models (needs the MLflow store: the models live there)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

import cells
from experiments.analysis import readback, report_plots
from experiments.analysis.verdicts import at_chance, select
from experiments.goals import missing
from experiments.recording import recorder
from experiments.recording.tags import SWEEP_TAG

GRADIENT_TASKS = ("adding", "copy")
SHORT = (("params.model.attention", "{}"), ("params.model.readout", "{}"),
         ("params.model.input_feeding", "feed={}"), ("params.model.units", "{}u"))


def short_label(row: pd.Series) -> str:
    """A setting in a few words: task, T, the forget-gate ablation, attention and its variants
    and units (translation), epochs — e.g. 'adding T=100 bias0 20ep', 'multi30k luong deep 128u 2ep'."""
    parts = [str(row["task"])]
    if not missing(row.get("params.data.length")) and not pd.isna(row.get("length")):
        parts.append(f"T={int(row['length'])}")
    if row.get("ablation"):
        parts.append("bias0")
    if row["task"] == "multi30k":
        if "params.model.attention" in row and missing(row["params.model.attention"]):
            parts.append("no-attention")  # not silence: beside 'bahdanau' it reads as the same
        parts += [fmt.format(row[c]) for c, fmt in SHORT if c in row and not missing(row[c])]
    if not missing(row.get("params.train.epochs")):
        parts.append(f"{row['params.train.epochs']}ep")
    return " ".join(parts)


def summary_grid(ev: pd.DataFrame, order: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(colour, text, kind) frames, settings × cells: the solved share where the task has a
    solved rule (text 'k/n', 'chance' where the mean stayed at chance, the key metric's mean
    where some seeds were not solved), else the key metric
    scaled from chance (or 0) to the best mean of its task (text: the mean)."""
    ev = ev.assign(label=ev.apply(short_label, axis=1))
    labels = sorted(ev["label"].unique(), key=readback.natural_key)
    colour = pd.DataFrame(np.nan, index=labels, columns=order)
    text = pd.DataFrame("", index=labels, columns=order)
    for (label, cell), rows in ev.groupby(["label", "cell"]):
        if cell not in order:
            continue
        goal = readback.goal(rows)
        values = rows["value"].dropna()
        if rows["solved"].notna().any() and goal.threshold is not None:
            k, n = int(rows["solved"].sum()), int(rows["solved"].notna().sum())
            colour.loc[label, cell] = k / n
            if not k and at_chance(rows, goal):
                text.loc[label, cell] = f"{k}/{n} chance"
            else:  # short of solved everywhere: how close the mean came (IMDB 0/5 at 0.86)
                mean = f" ({values.mean():.3g})" if k < n and len(values) else ""
                text.loc[label, cell] = f"{k}/{n}{mean}"
        elif len(values):
            best = ev.loc[ev["task"] == rows["task"].iloc[0], "value"].max()
            # a chance level without its metric named (IMDB in an export) is in the key metric
            floor = goal.chance if goal.chance is not None and goal.chance_metric in (goal.metric, None) else 0.0
            colour.loc[label, cell] = (float(values.mean()) - floor) / (best - floor) if best > floor else np.nan
            text.loc[label, cell] = f"{values.mean():.3g}" + (f" (n={len(values)})" if len(values) > 1 else "")
    return colour, text, ev


def summary_figure(ev: pd.DataFrame, folder: Path, order: list[str]) -> Path | None:
    """The page's first figure: settings (rows) × cells (columns), green where the seeds solved
    the setting (or scored near the task's best), red where none did; 'chance' marks a mean at
    the chance level."""
    if ev.empty:
        return None
    colour, text, _ = summary_grid(ev, order)
    plt = recorder.pyplot()
    fig, ax = plt.subplots(figsize=(1.4 * len(order) + 3.5, 0.32 * len(colour) + 1.4))
    ax.imshow(colour.to_numpy(dtype=float), cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
    for i, label in enumerate(colour.index):
        for j, cell in enumerate(order):
            ax.text(j, i, text.loc[label, cell], ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(order)), order)
    ax.set_yticks(range(len(colour)), colour.index, fontsize=7)
    ax.xaxis.tick_top()
    ax.set_title("solved seeds k/n ('chance': the mean stayed at chance; in brackets the mean where "
                 "not all solved)\ntasks without a solved rule: the mean, coloured from chance (or "
                 "0) to the task's best", fontsize=8)
    fig.tight_layout()
    return report_plots.save(fig, folder / "summary.png", plt)


# --- gradient flow on the sweep's own models --------------------------------------------------------


def gradient_jobs(ev: pd.DataFrame, length: int, seed: int = 0, sweep: str | None = None):
    """(jobs, notes): for adding and copy at T = `length`, seed `seed`, one finished run per cell
    (ablation runs aside; sweep `sweep`'s where a companion sweep has one too), loaded from
    MLflow; a note for each task or cell without one."""
    from experiments.analysis import gradients

    jobs, notes = [], []
    for task in GRADIENT_TASKS:
        rows = select(ev, task, where=lambda e: (e["length"] == length)
                      & (pd.to_numeric(e.get("params.train.seed"), errors="coerce") == seed))
        absent = [c for c in cells.names() if not (rows["cell"] == c).any()] if not rows.empty \
            else list(cells.names())
        if absent:
            notes.append(f"{task} (T = {length}, seed {seed}): no finished run yet for "
                         f"{', '.join(absent)}")
        for cell in cells.names():
            found = rows[rows["cell"] == cell]
            if sweep is not None and len(found) > 1 and f"tags.{SWEEP_TAG}" in found:  # own first
                found = found.sort_values(f"tags.{SWEEP_TAG}", key=lambda v: v != sweep,
                                          kind="stable")
            if len(found):
                run_id = found["run_id"].iloc[0]
                config, units = gradients.run_config(run_id)
                jobs.append(gradients.Job(config, run_id, units))
    return jobs, notes


def gradient_flow(ev: pd.DataFrame, folder: Path, length: int, samples: int,
                  sweep: str | None = None):
    """Measure and plot ‖∂L/∂x_t‖ against the lag at init and trained; (png or None, notes)."""
    import keras

    from experiments.analysis import gradients

    jobs, notes = gradient_jobs(ev, length, sweep=sweep)
    if not jobs:
        return None, notes
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    curves = gradients.measure(jobs, samples=samples, train_models=False, out=lambda _line: None)
    _, png = gradients.write_outputs(curves, folder)
    return png, notes
