"""Resident memory over many tiny `run()` calls in one process (issue 12 §7).

    MLFLOW_TRACKING_URI=sqlite:////tmp/datafaults/mlflow.db \\
        python -m benchmarks.memory_runs --runs 60 --tracking on --json /tmp/datafaults/mem.json

After each run: `gc.collect()`, then the process's current RSS (``/proc/self/statm``), and with
``--count-graphs`` the number of live TensorFlow ``FuncGraph`` objects. The slope (MB per run) is a
least-squares line through the RSS of the runs after ``--warmup`` (the first runs load libraries
and fill caches that are paid once). One JSON line is printed (and written to ``--json``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time

TINY = {
    "data": {"name": "adding", "num_train": 32, "num_val": 16, "num_test": 16, "batch_size": 16,
             "length": 20},
    "model": {"cell": "lstm", "units": 4},
    "train": {"epochs": 1, "early_stopping_patience": None},
}


def rss_mb() -> float:
    """Current resident set size of this process in MB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def live_func_graphs() -> int:
    from tensorflow.python.framework.func_graph import FuncGraph

    return sum(isinstance(o, FuncGraph) for o in gc.get_objects())


def slope(values: list[float]) -> float:
    """Least-squares slope of `values` against their index (per step)."""
    n = len(values)
    if n < 2:
        return 0.0
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    num = sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values))
    return num / sum((i - mean_x) ** 2 for i in range(n))


def tiny_config(tracking: bool, seed: int = 0):
    from experiments.config import Config

    d = {k: dict(v) for k, v in TINY.items()}
    d["train"]["seed"] = seed
    d["tracking"] = {"enabled": tracking}
    return Config.from_dict(d, source="benchmarks.memory_runs")


def measure(runs: int, tracking: bool, warmup: int = 5, count_graphs: bool = False,
            out=sys.stderr) -> dict:
    """RSS after each of `runs` tiny adding runs in this process, and the slope after `warmup`."""
    from experiments.run import run

    rss, graphs, start = [], [], time.perf_counter()
    for i in range(runs):
        run(tiny_config(tracking, seed=i))
        gc.collect()
        rss.append(round(rss_mb(), 1))
        if count_graphs:
            graphs.append(live_func_graphs())
        print(f"run {i + 1}/{runs}: rss {rss[-1]} MB" + (f", FuncGraphs {graphs[-1]}"
              if graphs else ""), file=out, flush=True)
    return {
        "runs": runs,
        "tracking": tracking,
        "warmup": warmup,
        "slope_mb_per_run": round(slope(rss[warmup:]), 3),
        "rss_mb": rss,
        "func_graphs": graphs,
        "seconds": round(time.perf_counter() - start, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--tracking", choices=("on", "off"), default="off")
    parser.add_argument("--count-graphs", action="store_true")
    parser.add_argument("--json", help="also write the result to this file")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    result = measure(args.runs, args.tracking == "on", args.warmup, args.count_graphs)
    line = json.dumps(result)
    print(line)
    if args.json:
        with open(args.json, "w") as f:
            f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
