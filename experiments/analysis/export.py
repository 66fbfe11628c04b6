"""Reading a runs export: the results page built without the MLflow store (a fresh clone).

An export is a CSV file ``<name>_runs.csv`` (or a directory holding one), one row per run, and
optionally, beside it, ``<name>_runs_curves.csv`` with the per-epoch curves. The columns:

- the named columns the results page has always written (``docs/results/study_runs.csv``):
  ``run_id, run_name, sweep, status, task, T, cell, seed, unit_forget_bias, bidirectional,
  attention, units, param_count, metric, test_<metric>..., baseline, solved, train_time_s,
  wall_s, epochs, epochs_run, git_commit, start_time, end_time`` (``units`` is the units used,
  ``metric`` the key metric's name, ``git_commit`` may end in ``+dirty``, times ISO 8601);
- ``param.<key>``: a logged parameter, e.g. ``param.train.lr``, ``param.model.readout`` (every
  hyperparameter of the run, as MLflow holds it: text; ``None`` for an unset key);
- ``tag.<name>``: a tag, e.g. ``tag.rnnlab.config_hash``, ``tag.rnnlab.versions``;
- ``metric.<key>``: any other final metric, e.g. ``metric.val_loss``.

A ``param.*`` / ``tag.*`` / ``metric.*`` column wins over the named column for the same key.
The curves file has the columns ``run_id, key, step, value`` (MLflow's metric history: ``key``
e.g. ``train_loss``, ``val_loss``, ``val_accuracy``; ``step`` the epoch from 0).

:func:`load` turns an export into the frame `mlflow.search_runs` returns (``run_id``,
``status``, ``start_time``, ``end_time``, ``params.*``, ``metrics.*``, ``tags.*``), so the page
reads both sources the same way; :func:`history` serves the curves as `readback.metric_history`
does from the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from experiments import goals
from experiments.recording.tags import (
    BASELINE_METRIC_TAG,
    CELL_TAG,
    GIT_COMMIT_TAG,
    PARAMS_SOURCE_TAG,
    SOLVED_METRIC_TAG,
    SOLVED_MODE_TAG,
    SOLVED_THRESHOLD_TAG,
    STATUS_TAG,
    SWEEP_TAG,
    TASK_TAG,
)

CURVES_SUFFIX = "_curves.csv"
# named column -> the search_runs columns it fills
NAMED = {
    "run_name": ("tags.mlflow.runName",),
    "sweep": (f"tags.{SWEEP_TAG}",),
    "task": (f"tags.{TASK_TAG}", "params.data.name"),
    "cell": (f"tags.{CELL_TAG}", "params.model.cell"),
    "T": ("params.data.length",),
    "seed": ("params.train.seed",),
    "unit_forget_bias": ("params.model.unit_forget_bias",),
    "bidirectional": ("params.model.bidirectional",),
    "attention": ("params.model.attention",),
    "units": ("params.model.units_used",),
    "epochs": ("params.train.epochs",),
    "git_commit": (f"tags.{GIT_COMMIT_TAG}",),
    "metric": (f"tags.{SOLVED_METRIC_TAG}",),
    "param_count": ("metrics.param_count",),
    "baseline": ("metrics.baseline",),
    "solved": ("metrics.solved",),
    "train_time_s": ("metrics.train_time_s",),
}
KEPT = ("run_id", "status", "start_time", "end_time", "wall_s", "epochs_run")
PREFIXES = {"param.": "params.", "tag.": "tags.", "metric.": "metrics."}


@dataclass
class Export:
    """An export read back: the runs (search_runs-shaped), the curves, and where from."""

    runs: pd.DataFrame
    curves: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["run_id", "key", "step", "value"]))
    source: str = ""

    def history(self, run_ids, key: str) -> pd.DataFrame:
        """Per-epoch values of `key` for the runs: indexed by step, one column per run (as
        `readback.metric_history`)."""
        rows = self.curves[(self.curves["key"] == key) & self.curves["run_id"].isin(list(run_ids))]
        if rows.empty:
            return pd.DataFrame()
        return rows.pivot_table(index="step", columns="run_id", values="value", aggfunc="last")


def find(path: str | Path) -> Path:
    """The runs CSV of an export given as the file or the directory holding one `*_runs.csv`."""
    path = Path(path)
    if path.is_dir():
        found = sorted(p for p in path.glob("*_runs.csv"))
        if len(found) != 1:
            raise FileNotFoundError(f"{path}: expected one *_runs.csv, found "
                                    f"{', '.join(p.name for p in found) or 'none'}")
        return found[0]
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such export file")
    return path


def load(path: str | Path, sweeps=None) -> Export:
    """Read an export (see the module docstring); `sweeps`: keep only these sweeps' runs."""
    csv = find(path)
    table = pd.read_csv(csv, dtype=str, keep_default_na=False, na_values=[""])
    if "run_id" not in table:
        raise ValueError(f"{csv}: no run_id column; not a runs export")
    if sweeps is not None and "sweep" in table:
        table = table[table["sweep"].isin(list(sweeps))]
    runs = to_search_runs(table)
    curves_path = csv.with_name(csv.stem + CURVES_SUFFIX)
    curves = Export(runs).curves
    if curves_path.is_file():
        curves = pd.read_csv(curves_path)
        curves["value"] = pd.to_numeric(curves["value"], errors="coerce")
        curves["step"] = pd.to_numeric(curves["step"], errors="coerce")
    return Export(runs, curves, str(csv))


def to_search_runs(table: pd.DataFrame) -> pd.DataFrame:
    """The export's rows as `mlflow.search_runs` columns (metrics numeric, params and tags text)."""
    out = {c: table[c] for c in KEPT if c in table}
    for name, targets in NAMED.items():
        if name in table:
            for target in targets:
                out[target] = table[name]
    for column in table:
        if column.startswith("test_"):
            out[f"metrics.{column}"] = table[column]
        for prefix, target in PREFIXES.items():
            if column.startswith(prefix):
                out[target + column.removeprefix(prefix)] = table[column]
    runs = pd.DataFrame(out, index=table.index).reset_index(drop=True)
    for column in runs:
        if column.startswith("metrics."):
            runs[column] = pd.to_numeric(runs[column], errors="coerce")
    for column in ("start_time", "end_time"):
        if column in runs:
            runs[column] = pd.to_datetime(runs[column], utc=True, format="ISO8601")
    if "status" in runs:
        runs[f"tags.{STATUS_TAG}"] = runs.get(f"tags.{STATUS_TAG}", runs["status"])
    return _declared_goals(runs)


def _declared_goals(runs: pd.DataFrame) -> pd.DataFrame:
    """The generated tasks' goal tags (baseline metric, solved mode and threshold) from their
    DataSpec, where the export has no such tags: the store had them from the run itself."""
    goal_tags = {"baseline_metric": BASELINE_METRIC_TAG, "solved_mode": SOLVED_MODE_TAG,
                 "solved_threshold": SOLVED_THRESHOLD_TAG}
    for tag in goal_tags.values():
        runs[f"tags.{tag}"] = runs.get(f"tags.{tag}", pd.Series(index=runs.index, dtype=object))
    for index, row in runs.iterrows():
        spec = goals.spec(str(row.get(f"tags.{TASK_TAG}")), row)
        declared = spec.goal if spec is not None else None
        if declared is None:
            continue
        for column, value in (("baseline_metric", declared.baseline_metric),
                              ("solved_mode", declared.mode),
                              ("solved_threshold", str(declared.threshold))):
            if goals.missing(runs.at[index, f"tags.{goal_tags[column]}"]) and value is not None:
                runs.at[index, f"tags.{goal_tags[column]}"] = value
    return runs


def dirty(runs: pd.DataFrame) -> pd.Series:
    """True for the runs whose code had uncommitted changes (commit tag ending in `+dirty`)."""
    commit = runs.get(f"tags.{GIT_COMMIT_TAG}", pd.Series(index=runs.index, dtype=object))
    return commit.fillna("").astype(str).str.endswith("+dirty")


# --- params of runs exported without them -----------------------------------------------------------

PLANNED_FROM = f"tag.{PARAMS_SOURCE_TAG}"


def fill_from_plans(table: pd.DataFrame, sweep_files, commit: str) -> pd.DataFrame:
    """`table` (a runs export without `param.*` columns) with the `param.*` of each run's planned
    configuration: its sweep's file planned again (`orchestration.plan.load_sweep`) and matched by
    sweep, run name and forget-gate bias; tag `rnnlab.params_source` says so. The study's store
    that held the logged params is gone; the sweep files kept their configurations' hashes since
    the runs (their commit messages say so), so the plan is what ran. A run no plan matches keeps
    its row without params, and ValueError names a plan that contradicts a named column."""
    from experiments.orchestration.plan import load_sweep
    from experiments.recording import recorder

    planned = {}
    for path in sweep_files:
        sweep = load_sweep(path)
        for run in sweep.runs:
            c = run.config
            key = (sweep.name, recorder.run_name(c), str(c.model.unit_forget_bias) == "False")
            planned[key] = (c, f"planned from {path} at {commit[:12]}")
    rows = []
    for _, row in table.iterrows():
        key = (row.get("sweep"), row.get("run_name"), str(row.get("unit_forget_bias")) == "False")
        found = planned.get(key)
        if found is None:
            rows.append({})
            continue
        config, source = found
        params = _applicable(config)
        for column, param in (("T", "data.length"), ("seed", "train.seed"), ("epochs", "train.epochs")):
            if not goals.missing(row.get(column)) and param in params \
                    and float(row[column]) != float(params[param]):
                raise ValueError(f"run {row['run_id']}: {column}={row[column]} but the plan has "
                                 f"{param}={params[param]} ({source})")
        rows.append({**{f"param.{k}": v for k, v in params.items()}, PLANNED_FROM: source})
    filled = pd.DataFrame(rows, index=table.index)
    return pd.concat([table.drop(columns=[c for c in filled if c in table]), filled], axis=1)


def _applicable(config) -> dict:
    """The config as MLflow logs it for this run (`settings.applicable`: the keys the run takes;
    text, 'None' for unset), less the tracking settings."""
    from experiments.tasks import settings

    return {key: "None" if value is None else str(value)
            for key, value in settings.applicable(config).items() if not key.startswith("tracking.")}


def main(argv=None) -> int:
    """`python -m experiments.analysis.export fill-params CSV SWEEP_FILE...`: add the planned
    params to an export written without them (in place)."""
    import argparse
    import subprocess

    parser = argparse.ArgumentParser(prog="python -m experiments.analysis.export")
    parser.add_argument("action", choices=["fill-params"])
    parser.add_argument("csv")
    parser.add_argument("sweep_files", nargs="+")
    args = parser.parse_args(argv)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=False).stdout.strip() or "unknown"
    table = pd.read_csv(args.csv, dtype=str, keep_default_na=False, na_values=[""])
    filled = fill_from_plans(table, args.sweep_files, commit)
    filled.to_csv(args.csv, index=False)
    matched = filled[PLANNED_FROM].notna().sum()
    print(f"{args.csv}: params for {matched} of {len(filled)} runs from the plans")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
