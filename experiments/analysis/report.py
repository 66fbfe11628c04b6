"""Reports: the runs of a sweep (or of all) compared cell by cell, as tables and plots.

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

This module writes the table and the pages; the runs are read back by `readback` (shared with the
results page), flagged by `degenerate` and drawn by `report_plots`. Their names used by callers
of `experiments.analysis.report` (`__all__`) answer here too.
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
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

import cells
from experiments.analysis.degenerate import (
    run_flags,
    sample_triples,
    translation_flags,
    translation_samples,
)
from experiments.analysis.readback import (
    add_settings,
    completed,
    goal,
    load_runs,
    metric_history,
    natural_key,
    not_completed,
    numeric,
    one_per_config,
    setting_params,
    updates,
    varying_params,
)
from experiments.analysis.report_plots import (
    final_metric_scale,
    length_lines,
    plot_final_metric,
    plot_learning_curves,
    plot_metric_vs_length,
    slug,
)
from experiments.goals import GoalView, task_description
from experiments.recording import store
from experiments.recording.tags import BACKEND_TAG, DEVICE_TAG, GIT_COMMIT_TAG
from experiments.results import key_metric

DEFAULT_UI_URL = "http://127.0.0.1:5000"
TABLE_NOTE = ("Each table: the key test metric per setting × cell, mean ± std over the n seeds (the "
              "value alone for n = 1); <em>solved</em>: seeds that reached the threshold; "
              "<em>flags</em>: seeds whose run looks degenerate.")
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


def _summary_row(setting: str, cell: str, group: pd.DataFrame, goal_: GoalView,
                 samples: Mapping[str, str | None]) -> dict:
    metric = goal_.metric
    values = numeric(group, f"metrics.test_{metric}")
    mean, std = values.mean(), values.std(ddof=1) if len(values) > 1 else float("nan")
    solved = numeric(group, "metrics.solved")
    flags = Counter(flag for _, run in group.iterrows()
                    for flag in run_flags(run, goal_, samples.get(run["run_id"])))
    params = numeric(group, "metrics.param_count")
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
        "train_time_s": round(numeric(group, "metrics.train_time_s").mean(), 1),
        "flags": "; ".join(f"{flag} ({n}/{len(group)})" for flag, n in flags.items()),
        "run_ids": " ".join(group["run_id"]),
        "experiment_id": group["experiment_id"].iloc[0] if "experiment_id" in group else None,
    }


def _mean_std(mean: float, std: float, n: int) -> str:
    if n == 0 or math.isnan(mean):
        return "-"
    return f"{mean:.4g} ± {std:.2g}" if n > 1 else f"{mean:.4g}"


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

__all__ = [
    "CSS", "DEFAULT_UI_URL", "TABLE_COLUMNS", "TABLE_NOTE", "Page", "add_settings", "completed",
    "display_table", "final_metric_scale", "goal", "key_metric", "length_lines", "load_runs",
    "machine", "markdown_table", "metric_history", "natural_key", "not_completed",
    "one_per_config", "plot_final_metric", "plot_learning_curves", "plot_metric_vs_length",
    "provenance", "run_flags", "setting_params", "slug", "summary_table", "task_text",
    "translation_flags", "updates", "varying_params", "write_report",
]
