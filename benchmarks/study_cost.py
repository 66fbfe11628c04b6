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

ROOT = Path(__file__).resolve().parent.parent
MEASURED = ROOT / "docs" / "results" / "study_runs.csv"
EXTRA_STEPS = {"copy": 20, "reber": 39}  # input steps beyond T (README: the tasks)


def planned(sweep_file: Path) -> tuple[list, list]:
    """(seeded configs, [(space, cell) per trial]) of a sweep file and its `tuned:` spaces."""
    from experiments.config import read_yaml
    from experiments.orchestration import plan, tune

    raw = read_yaml(sweep_file.read_text(), str(sweep_file))
    tuned = raw.pop("tuned", None) or {}
    runs = [r.config for r in plan.parse_sweep(raw, source=str(sweep_file)).runs]
    trials = []
    for entry in tuned.values():
        space = tune.load_space(sweep_file.parent / entry["space"])
        trials += [space.config_for(cell, {}) for cell in space.cells
                   for _ in range(space.max_trials)]
    return runs, trials


def _steps(task: str, length: float) -> float:
    return length + EXTRA_STEPS.get(task, 0)


def estimate(config, measured: pd.DataFrame) -> tuple[float, float, str]:
    """(as measured, upper bound, how) seconds for one planned run."""
    task, cell = config.data.name, config.model.cell
    rows = measured[(measured["task"] == task) & (measured["cell"] == cell)]
    length = getattr(config.data, "length", None) if rows["T"].notna().any() else None
    scale, how = 1.0, "measured"
    if length is not None:
        same = rows[rows["T"] == length]
        if same.empty:
            nearest = min(rows["T"].dropna().unique(), key=lambda t: abs(t - length))
            same = rows[rows["T"] == nearest]
            scale = _steps(task, length) / _steps(task, nearest)
            how = f"T = {nearest:g} × {scale:.2f}"
        rows = same
    if rows.empty:
        raise LookupError(f"no measured run of {task} / {cell}")
    per_epoch = (rows["train_time_s"] / rows["epochs_run"]).mean() * scale
    overhead = (rows["wall_s"] - rows["train_time_s"]).mean()
    # early stopping as it happened: the measured training time, per planned epoch of those runs
    trained = rows["train_time_s"].mean() * scale * config.train.epochs / rows["epochs"].mean()
    return trained + overhead, per_epoch * config.train.epochs + overhead, how


def table(configs: list, measured: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for config in configs:
        low, high, how = estimate(config, measured)
        length = getattr(config.data, "length", None)
        setting = config.data.name + (f" T={length}" if length and config.data.name not in
                                      ("imdb", "multi30k") else "")
        rows.append({"task": config.data.name, "setting": setting, "as_measured": low,
                     "upper": high, "how": how})
    return pd.DataFrame(rows)


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
    measured = pd.read_csv(args.measured)
    measured = measured[(measured["sweep"] == args.sweep) & (measured["status"] == "FINISHED")]
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
