"""The results page's provenance and raw data: what was planned and what finished, where and at
which commits the runs ran, their compute, and the per-run CSV (`results/<sweep>_runs.csv`, the
export format `experiments.analysis.export` reads back).

Read from the MLflow store when the page is built from it; from the export's own columns
(`wall_s`, `epochs_run`) when the store is gone.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

import cells
from experiments.analysis import export, readback, report
from experiments.goals import missing
from experiments.recording.tags import (
    CELL_TAG,
    CLAIMED_BY_TAG,
    CONFIG_HASH_TAG,
    GIT_COMMIT_TAG,
    PARAMS_SOURCE_TAG,
    RESUMED_FROM_TAG,
    STATUS_TAG,
    SWEEP_FILE_TAG,
    SWEEP_RUNS_TAG,
    SWEEP_TAG,
    TASK_TAG,
    VERSIONS_TAG,
)
from experiments.tasks import settings

# --- what was planned -------------------------------------------------------------------------------


def plan(sweep: str, runs: pd.DataFrame, sweep_file: str | Path | None = None):
    """`(planned runs, where from)`: `sweep_file` planned by `experiments.orchestration.plan` (it must exist,
    be valid and plan `sweep`: else ValueError); without it, the file the parent run names, else
    experiments/sweeps/<sweep>.yaml, the first that exists, is valid and plans `sweep`;
    `(None, why)` when none does."""
    if sweep_file:
        found, left_out = _load_tuned_part(sweep_file)  # ConfigError (a ValueError) names the file and key
        if found is None:
            return None, left_out
        if found.name != sweep:
            raise ValueError(f"--sweep-file {sweep_file} plans sweep {found.name!r}, not {sweep!r}")
        return found.runs, str(sweep_file) + left_out
    tag = runs.get(f"tags.{SWEEP_FILE_TAG}", pd.Series(dtype=object)).dropna()
    why = "no sweep file found"
    for path in [*map(Path, tag.unique()), Path("experiments/sweeps") / f"{sweep}.yaml"]:
        if not path.is_file():
            continue
        try:
            found, left_out = _load_tuned_part(path)
        except ValueError as err:  # a file the current code no longer reads: say so, go on
            why = f"{path} could not be planned: {str(err).splitlines()[0]}"
            continue
        if found is None:
            why = left_out
        elif found.name == sweep:
            return found.runs, str(path) + left_out
    return None, why


def _load_tuned_part(path: str | Path):
    """(the plan of `path`, what it leaves out): a study whose `tuned:` block names families not
    tuned yet is planned without them (`--only`, as `rnnlab sweep` runs part of it); they cannot
    have run, and the page lists them as not tuned yet. (None, why) when no family is tuned."""
    from experiments.analysis import tunings
    from experiments.orchestration.plan import load_sweep

    left = tunings.untuned(tunings.read(path))
    if not left:
        return load_sweep(path), ""
    kept = sorted(tunings.task_names(path) - set(left))
    if not kept:
        return None, f"no task family of {path} is tuned yet"
    return (load_sweep(path, only=[f"data.name={','.join(kept)}"]),
            f", less the families not tuned yet: {', '.join(left)}")


def run_key(task, cell, length, seed, forget_bias) -> tuple:
    """What tells the runs of a sweep apart when their config hashes moved with the code."""
    def text(v):
        return "" if missing(v) else str(v)

    return (text(task), text(cell), text(length).removesuffix(".0"), text(seed),
            str(forget_bias).lower() == "false")


def progress(planned, runs: pd.DataFrame) -> dict:
    """Planned runs finished (matched by config hash, else by task, cell, T, seed and forget-gate
    bias) and those still missing, grouped by setting."""
    done = readback.completed(runs)
    hashes = set(done.get(f"tags.{CONFIG_HASH_TAG}", pd.Series(dtype=object)).dropna())
    keys = {run_key(r.get("params.data.name"), r.get("params.model.cell"),
                    r.get("params.data.length"), r.get("params.train.seed"),
                    r.get("params.model.unit_forget_bias")) for _, r in done.iterrows()}
    missing_runs: dict[str, list[str]] = {}
    finished = 0
    for p in planned:
        c = p.config
        # T only where the task reads it (IMDB and Multi30k log no data.length)
        length = c.data.length if settings.takes(c, "data.length") else None
        if p.hash in hashes or run_key(c.data.name, c.model.cell, length, c.train.seed,
                                       c.model.unit_forget_bias) in keys:
            finished += 1
            continue
        setting = p.label.partition(" × ")[2]
        missing_runs.setdefault(setting, []).append(c.model.cell)
    return {"finished": finished, "planned": len(planned), "missing": missing_runs}


# --- provenance -------------------------------------------------------------------------------------


def provenance(runs: pd.DataFrame, command: str, source: str,
               dirty: str = "flag") -> list[tuple[str, str]]:
    """(label, value) lines: when and by what command, machine, OS, versions, the runs' hosts,
    backend, commits, dates, total compute and status counts."""
    import platform

    facts = report.provenance(runs)
    start = pd.to_datetime(runs["start_time"], utc=True)
    end = pd.to_datetime(runs.get("end_time", pd.Series(index=runs.index)), utc=True)
    wall = wall_seconds(runs).dropna()
    train = readback.numeric(runs, "metrics.train_time_s")
    hosts = runs.get(f"tags.{CLAIMED_BY_TAG}", pd.Series(dtype=object)).dropna() \
        .map(lambda v: str(v).rpartition(":")[0] or str(v))
    status = runs.get(f"tags.{STATUS_TAG}", runs["status"]).fillna(runs["status"])
    counts = ", ".join(f"{n} {s.lower()}" for s, n in sorted(status.value_counts().items()))
    logged = runs.get(f"tags.{VERSIONS_TAG}", pd.Series(dtype=object)).dropna().unique()
    unclean = int(export.dirty(runs).sum())
    return [
        ("generated", f"{facts['generated']} by `{command}`"),
        ("machine (this page)", report.machine()),
        ("hosts (runs)", ", ".join(sorted(set(hosts))) or "-"),
        ("OS (this page)", platform.platform()),
        ("versions (runs)", "; ".join(sorted(map(str, logged))) if len(logged)
         else "not logged by these runs (the line below is this page's machine)"),
        ("versions (this page)", facts["versions"]),
        ("backend / device (runs)", facts["backend / device (runs)"]),
        ("code (runs)", facts["code (runs)"]),
        ("code (page)", facts["code (report)"]),
        ("runs read from", source),
        ("uncommitted code", f"{unclean} of {len(runs)} runs ran from a tree with uncommitted "
         f"changes (commit tag `+dirty`): "
         + ("left out of the tables and verdicts" if dirty == "exclude"
            else "kept, counted in the tables' *dirty* column") if unclean else "none"),
        ("runs", f"started {_when(start.min())}, last ended {_when(end.max())}"),
        ("compute", (f"{_duration(wall.sum())} of run wall time, {_duration(train.sum())} of "
                     f"it training (train_time_s), over {len(runs)} runs")),
        ("run status", counts or "-"),
    ]


def wall_seconds(runs: pd.DataFrame) -> pd.Series:
    """Each run's wall time, end less start, plus that of the killed sittings it resumed from
    (`rnnlab.resumed_from`, followed back), as `train_time_s` counts their epochs too; NaN while
    a run has no end. An export's own `wall_s` column when it has one (the store is gone)."""
    if "wall_s" in runs:
        return pd.to_numeric(runs["wall_s"], errors="coerce")
    start = pd.to_datetime(runs["start_time"], utc=True)
    end = pd.to_datetime(runs.get("end_time", pd.Series(index=runs.index)), utc=True)
    wall = (end - start).dt.total_seconds()
    earlier = runs.get(f"tags.{RESUMED_FROM_TAG}", pd.Series(index=runs.index, dtype=object)).dropna()
    if earlier.empty:
        return wall
    import mlflow

    from experiments.recording import store

    client = mlflow.MlflowClient(store.tracking_uri())
    for index, run_id in earlier.items():
        seen = set()
        while run_id and run_id not in seen:
            seen.add(run_id)
            try:
                info = client.get_run(run_id)
            except mlflow.exceptions.MlflowException:
                break  # deleted: its sitting is not counted
            if info.info.end_time:
                wall[index] += (info.info.end_time - info.info.start_time) / 1000
            run_id = info.data.tags.get(RESUMED_FROM_TAG)
    return wall


def progress_line(runs: pd.DataFrame, parent: pd.DataFrame, planned, planned_from: str) -> str:
    """'k of N planned runs finished (plan: ...)'; N from the sweep file, else the parent's
    `rnnlab.sweep_runs` tag."""
    if planned is not None:
        done = progress(planned, runs)
        return (f"{done['finished']} of {done['planned']} planned runs finished "
                f"(plan: {planned_from})")
    logged = parent.get(f"tags.{SWEEP_RUNS_TAG}", pd.Series(dtype=object)).dropna()
    total = logged.iloc[0] if len(logged) else "an unknown number of"
    return f"{len(readback.completed(runs))} of {total} planned runs finished ({planned_from})"


def _when(stamp) -> str:
    return "-" if pd.isna(stamp) else stamp.strftime("%Y-%m-%d %H:%M UTC")


def _duration(seconds: float) -> str:
    seconds = float(seconds or 0.0)
    return f"{seconds:,.0f} s ({int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min)"


# --- the raw data -----------------------------------------------------------------------------------

CSV_COLUMNS = ["run_id", "run_name", "sweep", "status", "task", "T", "cell", "seed", "unit_forget_bias",
               "bidirectional", "attention", "units", "param_count", "metric"]
CSV_TAIL = ["baseline", "solved", "train_time_s", "wall_s", "epochs", "epochs_run", "git_commit",
            "start_time", "end_time"]


CSV_TAGS = (f"tags.{CONFIG_HASH_TAG}", f"tags.{VERSIONS_TAG}", f"tags.{PARAMS_SOURCE_TAG}")


def runs_csv(runs: pd.DataFrame, epochs_run: Callable[[str], int | None] | None = None) -> pd.DataFrame:
    """One row per run (completed or not): its identity, settings, every test metric, solved,
    times, epochs (planned and run), commit and start time, then every logged hyperparameter
    (`param.<key>`) and the provenance tags (`tag.<name>`): the export format of
    `experiments.analysis.export`; sorted by task, T, cell, seed. `epochs_run`: from the store's
    metric history (None: the runs' own `epochs_run` column, as an export has it)."""
    done = readback.completed(runs)
    ev = readback.add_settings(done).set_index("run_id") if not done.empty else pd.DataFrame()
    hyper = sorted(c for c in runs.columns if c.startswith("params.") and runs[c].notna().any())
    extra = [c for c in CSV_TAGS if c in runs and runs[c].notna().any()]

    def param(row, key):
        value = row.get(f"params.{key}")
        return None if missing(value) else value

    tests = sorted(c for c in runs.columns if c.startswith("metrics.test_"))
    records, walls = [], wall_seconds(runs)
    for index, row in runs.iterrows():
        status = row.get(f"tags.{STATUS_TAG}")
        start, end = pd.to_datetime(row.get("start_time"), utc=True), \
            pd.to_datetime(row.get("end_time"), utc=True)
        record = {
            "run_id": row["run_id"], "run_name": row.get("tags.mlflow.runName"),
            "sweep": row.get(f"tags.{SWEEP_TAG}"),
            "status": row["status"] if missing(status) else status,
            "task": row.get(f"tags.{TASK_TAG}"), "T": param(row, "data.length"),
            "cell": row.get(f"tags.{CELL_TAG}"), "seed": param(row, "train.seed"),
            "unit_forget_bias": param(row, "model.unit_forget_bias"),
            "bidirectional": param(row, "model.bidirectional"),
            "attention": param(row, "model.attention"),
            "units": param(row, "model.units_used") or param(row, "model.units"),
            "param_count": row.get("metrics.param_count"),
            "metric": ev["metric"].get(row["run_id"]) if not ev.empty else None,
        }
        record.update({c.removeprefix("metrics."): row.get(c) for c in tests})
        record.update({
            "baseline": row.get("metrics.baseline"), "solved": row.get("metrics.solved"),
            "train_time_s": row.get("metrics.train_time_s"),
            "wall_s": None if pd.isna(walls[index]) else walls[index],
            "epochs": param(row, "train.epochs"),
            "epochs_run": epochs_run(row["run_id"]) if epochs_run else row.get("epochs_run"),
            "git_commit": row.get(f"tags.{GIT_COMMIT_TAG}"),
            "start_time": None if pd.isna(start) else start.isoformat(),
            "end_time": None if pd.isna(end) else end.isoformat(),
        })
        record.update({f"param.{c.removeprefix('params.')}": row.get(c) for c in hyper})
        record.update({f"tag.{c.removeprefix('tags.')}": row.get(c) for c in extra})
        records.append(record)
    table = pd.DataFrame(records, columns=[*CSV_COLUMNS, *(c.removeprefix("metrics.") for c in tests),
                                           *CSV_TAIL, *(f"param.{c.removeprefix('params.')}" for c in hyper),
                                           *(f"tag.{c.removeprefix('tags.')}" for c in extra)])
    return sort_rows(table)


def sort_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The per-run CSV's order: task, T, forget-gate bias, cell (as registered), seed, run id (so
    that a re-export after more runs finished, or one merged with an earlier export, diffs as
    added lines)."""
    order = {c: i for i, c in enumerate(cells.names())}
    keys = table.assign(_T=pd.to_numeric(table["T"], errors="coerce"),
                        _cell=table["cell"].map(lambda c: order.get(c, len(order))),
                        _seed=pd.to_numeric(table["seed"], errors="coerce"))
    keys = keys.sort_values(["task", "_T", "unit_forget_bias", "_cell", "_seed", "run_id"],
                            na_position="first", kind="stable")
    return table.loc[keys.index].reset_index(drop=True)


def epochs_run(run_id: str) -> int | None:
    """Epochs a run trained: the length of its `train_loss` history."""
    import mlflow

    return len(mlflow.MlflowClient().get_metric_history(run_id, "train_loss")) or None


