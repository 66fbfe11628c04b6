"""What a study file and its tunings cost on this machine, estimated from the measured runs of an
earlier study (a runs CSV: ``task, T, cell, sweep, train_time_s, wall_s, epochs_run``): the
estimate behind ``python -m benchmarks.study_cost`` (its docstring: the method) and behind the
results page's hours for the task families a study has not run yet.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
MEASURED = ROOT / "docs" / "results" / "study_runs.csv"
EXTRA_STEPS = {"copy": 20, "reber": 39}  # input steps beyond T (README: the tasks)


def measured_runs(path: Path = MEASURED, sweep: str = "study") -> pd.DataFrame:
    """The finished runs of `sweep` in a runs CSV: what the estimates are made from."""
    measured = pd.read_csv(path)
    return measured[(measured["sweep"] == sweep) & (measured["status"] == "FINISHED")]


def family_hours(sweep_file: Path, tasks: dict[str, bool], measured: pd.DataFrame) -> dict[str, float]:
    """Estimated hours (as measured) per task family of a study file: its seeded runs, and its
    tuning's trials where `tasks[task]` says it still needs them; a family with a cell never
    measured is left out."""
    runs, trials = planned(Path(sweep_file))
    hours = {}
    for task, untuned in tasks.items():
        configs = [c for c in runs + (trials if untuned else []) if c.data.name == task]
        try:
            if configs:
                hours[task] = float(table(configs, measured)["as_measured"].sum()) / 3600
        except LookupError:  # a task or cell never measured: no estimate
            continue
    return hours


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
    """One row per planned config: task, setting, seconds as measured and at most (upper)."""
    rows = []
    for config in configs:
        low, high, how = estimate(config, measured)
        length = getattr(config.data, "length", None)
        setting = config.data.name + (f" T={length}" if length and config.data.name not in
                                      ("imdb", "multi30k") else "")
        rows.append({"task": config.data.name, "setting": setting, "as_measured": low,
                     "upper": high, "how": how})
    return pd.DataFrame(rows)
