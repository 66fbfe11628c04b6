"""What a study file and its tunings cost on this machine, estimated from the measured runs of an
earlier study (a runs CSV: ``task, T, cell, sweep, train_time_s, wall_s, epochs_run``).

    python -m benchmarks.study_cost experiments/sweeps/study_fair.yaml
    python -m benchmarks.study_cost FILE --measured docs/results/study_runs.csv --sweep study

The seeded runs are the sweep's plan with its ``tuned:`` block left out (tuned values change the
learning rate, clipping or dropout, not what an epoch computes); the tuning is, per ``tuned:``
space, its cells × ``max_trials`` trials (a random search runs exactly that many). Each planned run
is matched with the measured runs of sweep ``--sweep`` with the same task, T and cell, and costs

- *as measured*: their mean wall time (``wall_s``: build, training, test, MLflow), with early
  stopping as it happened in those runs;
- *upper bound*: their mean training seconds per epoch (``train_time_s / epochs_run``) × the
  planned epochs, plus their mean overhead (``wall_s - train_time_s``): every run to its last epoch.

A setting never measured takes the same task and cell at the nearest measured T, its time per
epoch scaled by the input steps (T, or T + 20 for copy, T + 39 for Reber). The measured times are
those of the machine the runs ran on, as loaded as it then was; the estimate assumes the planned
runs train the data sizes and budgets of the measured ones (a planned run whose epochs differ is
scaled per epoch; other differences are not seen here).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd

from experiments.analysis.cost import MEASURED, measured_runs, planned, table


def summary(frame: pd.DataFrame, title: str) -> list[str]:
    lines = [f"| {title} | runs | hours as measured | hours, every epoch run |",
             "|---|---:|---:|---:|"]
    for task, rows in frame.groupby("task", sort=False):
        notes = sorted(set(rows["how"]) - {"measured"})
        label = task + (f" ({'; '.join(notes)})" if notes else "")
        lines.append(f"| {label} | {len(rows)} | {rows['as_measured'].sum() / 3600:.1f} | "
                     f"{rows['upper'].sum() / 3600:.1f} |")
    lines.append(f"| **total** | {len(frame)} | {frame['as_measured'].sum() / 3600:.1f} | "
                 f"{frame['upper'].sum() / 3600:.1f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.study_cost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep_file", type=Path)
    parser.add_argument("--measured", type=Path, default=MEASURED, help="a runs CSV (default: "
                        "docs/results/study_runs.csv)")
    parser.add_argument("--sweep", default="study", help="the measured sweep (default study)")
    args = parser.parse_args(argv)
    measured = measured_runs(args.measured, args.sweep)
    runs, trials = planned(args.sweep_file)
    seeded, tuning = table(runs, measured), table(trials, measured)
    print(f"Estimated from {len(measured)} finished runs of sweep {args.sweep!r} in "
          f"{args.measured} (their own machine and load):\n")
    print("\n".join(summary(tuning, "tuning (trials)")) + "\n")
    print("\n".join(summary(seeded, "seeded runs")) + "\n")
    both = pd.concat([tuning, seeded])
    low, high = both["as_measured"].sum() / 3600, both["upper"].sum() / 3600
    print(f"Tuning and seeded runs together: {len(both)} runs, {low:.1f} h as measured, "
          f"{high:.1f} h with every epoch run; Multi30k "
          f"{both.loc[both['task'] == 'multi30k', 'as_measured'].sum() / 3600:.1f} h of it.")
    return 0 if math.isfinite(low) else 1


if __name__ == "__main__":
    raise SystemExit(main())
