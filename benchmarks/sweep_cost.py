"""The quick sweep's wall time end to end, and what MLflow tracking costs a run.

    python -m benchmarks.sweep_cost              # both (~15 min for the sweep + ~4 min)
    python -m benchmarks.sweep_cost --no-sweep   # only the tracking cost

Writes `benchmarks/sweep_cost.json`, which `benchmarks.run` renders into RESULTS.md. Both
measurements use a fresh, temporary MLflow store (sqlite in a temp folder, through
$MLFLOW_TRACKING_URI), so nothing is resumed and the project's store stays untouched.

Tracking cost, two ways:
- measured directly: every tracked run returns and logs `tracking_time_s`, the wall time spent
  in MLflow calls, figures and the model artifact; its share of the run's wall time is reported
  for the quick sweep's shortest run and summed over the whole quick sweep;
- by difference: the same `experiments.run.run(config)` with tracking off, on, and on without
  the model artifact, `--repeats` times each in one process after one discarded warm-up run,
  the order rotating every repeat so that no variant always runs first; cost =
  median(variant) / median(off) − 1 (noisy: on 2 cores the same run varies by ±1 s or more).
The single-run config is the quick sweep's adding-problem run for the LSTM (no data needed).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
QUICK = ROOT / "experiments" / "sweeps" / "quick.yaml"
OUTPUT = HERE / "sweep_cost.json"


def quick_config(task: str = "adding", cell: str = "lstm"):
    from experiments.orchestration.plan import load_sweep

    for planned in load_sweep(QUICK).runs:
        if planned.config.data.name == task and planned.config.model.cell == cell:
            return planned.config
    raise ValueError(f"The quick sweep has no run for task {task!r} and cell {cell!r}.")


VARIANTS = {  # name -> TrackingConfig changes
    "tracking off": {"enabled": False},
    "tracking on": {"enabled": True},
    "tracking on, no model artifact": {"enabled": True, "log_model": False},
}


PARTS = {  # label -> (module path, attribute) timed in the "tracking on" runs
    "start of the run": ("experiments.recording.recorder", "_start_run"),
    "params, tags, config text, dataset inputs": ("experiments.recording.recorder", "_log_start"),
    "per-epoch metrics": ("experiments.recording.recorder", "EpochLogger.on_epoch_end"),
    "learning-curve figure: drawing": ("experiments.recording.recorder", "learning_curves"),
    "figures: rendering the PNG and logging it": ("mlflow", "log_figure"),
    "model artifact: mlflow.keras.log_model": ("experiments.recording.recorder", "log_model"),
    "all of the end (metrics, figures, texts, model)": ("experiments.recording.recorder", "_log_end"),
    "end_run": ("mlflow.tracking.fluent", "end_run"),
}


@contextlib.contextmanager
def timed_parts(totals: dict):
    """Wrap each of `PARTS` so that calls add their wall time to `totals[label]`."""
    undo = []
    for label, (module, attribute) in PARTS.items():
        owner = importlib.import_module(module)
        *path, name = attribute.split(".")
        for part in path:
            owner = getattr(owner, part)
        original = getattr(owner, name)

        def timed(*args, _original=original, _label=label, **kwargs):
            start = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                totals[_label] = totals.get(_label, 0.0) + time.perf_counter() - start

        setattr(owner, name, timed)
        undo.append((owner, name, original))
    try:
        yield totals
    finally:
        for owner, name, original in reversed(undo):
            setattr(owner, name, original)


def tracking_cost(repeats: int) -> dict:
    """Seconds per run for each tracking variant (the order rotating every repeat), the
    direct measurement of the "tracking on" runs and their cost by part."""
    from experiments.run import run

    config = quick_config()
    run(config)  # warm-up: first-call costs (imports, the store's tables) are not per run
    seconds = {name: [] for name in VARIANTS}
    direct = []  # (tracking_time_s, wall s) of the "tracking on" runs
    parts = []  # {label: seconds} per "tracking on" run
    names = list(VARIANTS)
    for repeat in range(repeats):
        for name in names[repeat % len(names):] + names[:repeat % len(names)]:
            changes = VARIANTS[name]
            tracked = dataclasses.replace(config.tracking, **changes)
            totals = {}
            with timed_parts(totals) if name == "tracking on" else contextlib.nullcontext():
                start = time.perf_counter()
                result = run(dataclasses.replace(config, tracking=tracked))
                seconds[name].append(time.perf_counter() - start)
            if result.status != "FINISHED":
                raise RuntimeError(f"the timed run did not finish: {result}")
            if name == "tracking on":
                direct.append((result.tracking_time_s, seconds[name][-1]))
                parts.append({**totals, "gc": result.gc_time_s})
    return seconds, direct, parts


def sweep_tracking_share() -> tuple[float, float, str]:
    """Over the finished child runs in the current store: summed `tracking_time_s`, summed
    run wall time (MLflow start to end), and a line on the run with the largest share."""
    import mlflow

    runs = mlflow.search_runs(search_all_experiments=True,
                              filter_string="metrics.tracking_time_s > 0")
    wall = (runs["end_time"] - runs["start_time"]).dt.total_seconds()
    spent = runs["metrics.tracking_time_s"]
    share = spent / wall
    worst = share.idxmax()
    line = (f"tracking share per quick-sweep run: median {100 * share.median():.1f} %, largest "
            f"{100 * share[worst]:.1f} % ({runs['tags.mlflow.runName'][worst]}: "
            f"{spent[worst]:.2f} of {wall[worst]:.1f} s); per run median {spent.median():.2f} s; "
            f"garbage collection in the runs: {runs['metrics.gc_time_s'].sum():.1f} s, "
            f"largest {runs['metrics.gc_time_s'].max():.2f} s in one run")
    return float(spent.sum()), float(wall.sum()), line


def sweep_wall_time() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "experiments.cli", "sweep", str(QUICK)], check=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-sweep", action="store_true", help="skip the full quick sweep")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    rows, notes = [], []
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as store:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{store}/mlflow.db"
        samples, direct, parts = tracking_cost(args.repeats)
        spent, wall = (statistics.median(x) for x in zip(*direct))
        rows.append({"what": "adding/lstm run, time spent on tracking (measured in the run)",
                     "seconds": round(spent, 2), "share": f"{100 * spent / wall:.1f} %"})
        by_part = {label: statistics.median(p.get(label, 0.0) for p in parts)
                   for label in [*PARTS, "gc"]}
        notes.append("adding/lstm run, tracking by part (median s per run; parts overlap: "
                     "the end contains the figure and the model; gc = all garbage collection "
                     "in the run, which tracking_time_s leaves out where it lands in tracking): "
                     + "; ".join(f"{label} {value:.3f}" for label, value in by_part.items()))
        off = statistics.median(samples["tracking off"])
        for name, found in samples.items():
            median = statistics.median(found)
            rows.append(
                {
                    "what": f"adding/lstm run, {name}",
                    "seconds": round(median, 1),
                    "vs off": f"{100 * (median / off - 1):+.1f} %",
                }
            )
        notes.append(f"per-run samples (s): {json.dumps(samples)}")
        if not args.no_sweep:
            wall = sweep_wall_time()
            rows.append({"what": "quick sweep end to end", "seconds": round(wall, 0)})
            notes.append(f"quick sweep: {wall / 60:.1f} min (target ≤ 15 min)")
            spent, runs_wall, worst = sweep_tracking_share()
            notes.append(worst)
            rows.append({"what": "quick sweep, time spent on tracking (all runs, measured)",
                         "seconds": round(spent, 1), "share": f"{100 * spent / runs_wall:.1f} %"})
    notes.append(f"load average before: {load[0]:.2f}, after: {os.getloadavg()[0]:.2f}")
    if args.no_sweep and OUTPUT.exists():  # keep the last sweep measurement
        previous = json.loads(OUTPUT.read_text())
        rows += [row for row in previous["rows"] if row["what"].startswith("quick sweep")]
        notes += [f"(from the previous full run) {note}" for note in previous["notes"]
                  if note.startswith(("quick sweep", "tracking share"))]
    data = {"index": "what", "rows": rows, "notes": notes}
    OUTPUT.write_text(json.dumps(data, indent=1))
    print(json.dumps(data, indent=1))


if __name__ == "__main__":
    main()
