"""Wall time of a tiny keras-tuner search: `rnnlab tune SPACE` against `rnnlab tune SPACE --workers
2` (issue 25).

    python -m benchmarks.tune_workers                  # 2 cells × 4 trials, 2 epochs of 800 sequences

Each mode is the real command in a fresh MLflow store and oracle folder, timed end to end (Ray's
start and stop, TensorFlow's import included), its CPU seconds counted over every process it started
(`study_throughput.measure`); the machine's load average before and after each. Writes
benchmarks/tune_workers.json and .md. A benchmark, not a test: on a shared machine the figures move
with its load.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from benchmarks.study_throughput import HERE, become_subreaper, compare, measured, record


def space(cells: list[str], trials: int, epochs: int, num_train: int) -> dict:
    """The adding problem at T = 50, a learning-rate and width search, `trials` per cell."""
    return {"name": "tune-bench", "cells": cells, "max_trials": trials, "seed": 0,
            "base": {"data": {"name": "adding", "length": 50, "num_train": num_train,
                              "num_val": 200, "num_test": 200, "batch_size": 32},
                     "model": {"units": 16},
                     "train": {"epochs": epochs, "early_stopping_patience": None, "verbose": 0},
                     "tracking": {"log_model": False}},
            "space": {"train.lr": {"type": "float", "min": 1e-3, "max": 1e-2, "sampling": "log"},
                      "model.units": {"type": "int", "min": 8, "max": 32}}}


def trained_now(stdout: str) -> int:
    """Trials a `rnnlab tune` trained: its summary's count."""
    found = re.search(r"(\d+) trial\(s\) trained now", stdout)
    return int(found.group(1)) if found else 0


def render(data: dict) -> str:
    rows = data["rows"]
    lines = [("| mode | command | trials | wall s | × 1 process (wall) | CPU s | "
              "load before → after (1 min) |"), "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['mode']} | `{r['command']}` | {r['runs']} | {r['wall_s']} | "
                     f"{rows[0]['wall_s'] / r['wall_s']:.2f}× | {r['cpu_s']} | "
                     f"{r['load_before'][0]} → {r['load_after'][0]} |")
    s = data["settings"]
    return "\n".join([
        measured(data), "",
        (f"A random search of the adding problem at T = 50, cells {', '.join(s['cells'])}, "
         f"{s['trials']} trials per cell, {s['epochs']} epoch(s) of {s['num_train']} sequences "
         "each; every mode the real `rnnlab tune` in a fresh store, start to end."),
        "", *lines, "", *[f"- {note}" for note in data.get("notes", [])], ""])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="+", default=["lstm", "gru"])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--num-train", type=int, default=800)
    parser.add_argument("--note", action="append", default=[], help="a line under the table")
    parser.add_argument("--output", type=Path, default=HERE / "tune_workers.json")
    args = parser.parse_args(argv)
    become_subreaper()
    searched = space(args.cells, args.trials, args.epochs, args.num_train)
    uptime, rows = compare("tune", [("1 process", []), ("--workers 2", ["--workers", "2"])],
                           searched, command="tune", count=trained_now)
    record("benchmarks.tune_workers", argv, uptime,
           {"cells": args.cells, "trials": args.trials, "epochs": args.epochs,
            "num_train": args.num_train}, rows, args.note, args.output, render)


if __name__ == "__main__":
    main()
