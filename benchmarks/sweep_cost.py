"""The quick sweep's wall time end to end, and what MLflow tracking costs a run.

    python -m benchmarks.sweep_cost              # both (~15 min for the sweep + ~4 min)
    python -m benchmarks.sweep_cost --no-sweep   # only the tracking cost

Writes `benchmarks/sweep_cost.json`, which `benchmarks.run` renders into RESULTS.md. Both
measurements use a fresh, temporary MLflow store (sqlite in a temp folder, through
$MLFLOW_TRACKING_URI), so nothing is resumed and the project's store stays untouched.

Tracking cost: the same `experiments.run.run(config)` with tracking off, on, and on without
the model artifact, alternating, `--repeats` times each, in one process; cost = median(variant)
/ median(off) − 1.
The config is the quick sweep's adding-problem run for the LSTM (no data files needed).
"""

from __future__ import annotations

import argparse
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


def quick_config(task: str = "adding", cell: str = "lstm"):
    from experiments.sweep import load_sweep

    for planned in load_sweep(QUICK).runs:
        if planned.config.data.name == task and planned.config.model.cell == cell:
            return planned.config
    raise ValueError(f"The quick sweep has no run for task {task!r} and cell {cell!r}.")


VARIANTS = {  # name -> TrackingConfig changes
    "tracking off": {"enabled": False},
    "tracking on": {"enabled": True},
    "tracking on, no model artifact": {"enabled": True, "log_model": False},
}


def tracking_cost(repeats: int) -> dict:
    """Seconds per run for each tracking variant, the variants alternating within a repeat."""
    import dataclasses

    from experiments.run import run

    config = quick_config()
    seconds = {name: [] for name in VARIANTS}
    for _ in range(repeats):
        for name, changes in VARIANTS.items():
            tracked = dataclasses.replace(config.tracking, **changes)
            start = time.perf_counter()
            result = run(dataclasses.replace(config, tracking=tracked))
            seconds[name].append(time.perf_counter() - start)
            if result.get("status") not in (None, "FINISHED"):
                raise RuntimeError(f"the timed run did not finish: {result}")
    return seconds


def sweep_wall_time() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "experiments.cli", "sweep", str(QUICK)], check=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-sweep", action="store_true", help="skip the full quick sweep")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    rows, notes = [], []
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as store:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{store}/mlflow.db"
        samples = tracking_cost(args.repeats)
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
    notes.append(f"load average before: {load[0]:.2f}, after: {os.getloadavg()[0]:.2f}")
    data = {"index": "what", "rows": rows, "notes": notes}
    (HERE / "sweep_cost.json").write_text(json.dumps(data, indent=1))
    print(json.dumps(data, indent=1))


if __name__ == "__main__":
    main()
