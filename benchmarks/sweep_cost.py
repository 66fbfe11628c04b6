"""The quick sweep's wall time end to end, and what MLflow tracking costs a run.

    python -m benchmarks.sweep_cost              # both (~15 min for the sweep + ~4 min)
    python -m benchmarks.sweep_cost --no-sweep   # only the tracking cost

Writes `benchmarks/sweep_cost.json`, which `benchmarks.run` renders into RESULTS.md. Both
measurements use a fresh, temporary MLflow store (sqlite in a temp folder, through
$MLFLOW_TRACKING_URI), so nothing is resumed and the project's store stays untouched.

Tracking cost: the same `experiments.run.run(config)` with `tracking.enabled` on and off,
alternating, `--repeats` times each, in one process; cost = median(on) / median(off) − 1.
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


def tracking_cost(repeats: int) -> dict:
    """Seconds per run with and without MLflow, alternating on/off."""
    import dataclasses

    from experiments.run import run

    config = quick_config()
    seconds = {True: [], False: []}
    for _ in range(repeats):
        for enabled in (True, False):
            tracked = dataclasses.replace(config.tracking, enabled=enabled)
            start = time.perf_counter()
            result = run(dataclasses.replace(config, tracking=tracked))
            seconds[enabled].append(time.perf_counter() - start)
            if result.get("status") not in (None, "FINISHED"):
                raise RuntimeError(f"the timed run did not finish: {result}")
    on, off = statistics.median(seconds[True]), statistics.median(seconds[False])
    return {"on_s": on, "off_s": off, "cost_pct": 100 * (on / off - 1), "samples": seconds}


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
        cost = tracking_cost(args.repeats)
        rows.append(
            {
                "what": "adding/lstm run, tracking on",
                "seconds": round(cost["on_s"], 1),
                "vs off": f"{cost['cost_pct']:+.1f} %",
            }
        )
        rows.append({"what": "adding/lstm run, tracking off", "seconds": round(cost["off_s"], 1)})
        notes.append(f"tracking on/off samples (s): {json.dumps(cost['samples'])}")
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
