"""`rnnlab report --tuning NAME`: best and median trial per cell, and hyperparameter importance.

Importance is functional ANOVA (Hutter, Hoos & Leyton-Brown, ICML 2014) on a random-forest surrogate
of the objective, as Greff et al. (2017) used to compare LSTM variants: the share of the surrogate's
variance over the search space explained by each hyperparameter alone (its main effect,
Var_x_i[E_{x_-i} f(x)] / Var_x f(x)). What the main effects leave unexplained is interaction.

The reference implementation (`fanova` on PyPI) was last released in 2020 and builds `pyrfr` with
SWIG, so this module computes the same quantity on scikit-learn's RandomForestRegressor, marginalising
by Monte Carlo over the space (uniform per dimension; log-sampled parameters uniform in log space).

Writes, into ``reports/tuning-<name>/`` by default: ``tuning.md`` (tables) and ``importance.png``.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from experiments.recording.tags import DIRECTION_TAG, OBJECTIVE_TAG, SPACE_TAG, TUNING_CELL_TAG

MIN_TRIALS_FOR_IMPORTANCE = 4


@dataclass(frozen=True)
class Dim:
    """One input dimension of the surrogate: continuous on [low, high] or categorical (n levels)."""

    name: str
    low: float = 0.0
    high: float = 1.0
    levels: int = 0  # > 0: categorical with values 0 .. levels-1

    def grid(self, points: int) -> np.ndarray:
        if self.levels:
            return np.arange(self.levels, dtype=float)
        return np.linspace(self.low, self.high, points)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.levels:
            return rng.integers(0, self.levels, n).astype(float)
        return rng.uniform(self.low, self.high, n)


def functional_anova(x: np.ndarray, y: np.ndarray, dims: list[Dim], *, trees: int = 100,
                     samples: int = 256, grid: int = 16, seed: int = 0) -> np.ndarray:
    """Main-effect variance fractions of each dimension of `x` (n × d) for the objective `y`.

    A random forest is fitted to (x, y); for dimension i, f_i(v) = mean over `samples` random points
    of the space of the forest's prediction with x_i set to v, for v on a grid of dimension i; the
    importance is Var_v f_i(v) / Var f over the same random points. Fractions sum to <= 1.
    """
    from sklearn.ensemble import RandomForestRegressor

    x, y = np.asarray(x, float), np.asarray(y, float)
    forest = RandomForestRegressor(n_estimators=trees, random_state=seed, min_samples_leaf=1)
    forest.fit(x, y)
    rng = np.random.default_rng(seed)
    points = np.column_stack([d.sample(rng, samples) for d in dims])
    total = float(np.var(forest.predict(points)))
    if total <= 0:
        return np.zeros(len(dims))
    shares = []
    for i, dim in enumerate(dims):
        values = dim.grid(grid)
        probe = np.repeat(points[None], len(values), axis=0)  # (grid, samples, d)
        probe[:, :, i] = values[:, None]
        marginal = forest.predict(probe.reshape(-1, len(dims))).reshape(len(values), -1).mean(1)
        shares.append(float(np.var(marginal)) / total)
    return np.clip(np.array(shares), 0.0, 1.0)


# --- from MLflow trials to the surrogate's inputs ---------------------------------------------------


def space_dims(params: list[dict]) -> list[Dim]:
    """Dims from the parent's `rnnlab.space` tag (the Param fields as JSON)."""
    dims = []
    for p in params:
        if p["type"] == "choice":
            dims.append(Dim(p["key"], levels=len(p["values"])))
        elif p["type"] == "bool":
            dims.append(Dim(p["key"], levels=2))
        else:
            low, high = float(p["min"]), float(p["max"])
            if p["log"]:
                low, high = np.log(low), np.log(high)
            dims.append(Dim(p["key"], low, high))
    return dims


def encode(params: list[dict], logged: dict[str, str]) -> list[float] | None:
    """One trial's logged params (strings) as the surrogate's input row; None if one is missing."""
    row = []
    for p in params:
        text = logged.get(p["key"])
        if text is None:
            return None
        if p["type"] == "choice":
            names = [str(v) for v in p["values"]]
            if text not in names:
                return None
            row.append(float(names.index(text)))
        elif p["type"] == "bool":
            row.append(float(text == "True"))
        else:
            value = float(text)
            row.append(float(np.log(value)) if p["log"] else value)
    return row


# --- the report -------------------------------------------------------------------------------------


def tuning_report(name: str, output: str | Path | None = None) -> dict[str, Any]:
    """Write the tuning report of `name`; return its markdown, folder and files."""
    import pandas as pd

    from experiments.orchestration import tune
    from experiments.recording import store

    store.configure()
    parent_id = store.find_parent_run("tuning", name)
    if parent_id is None:
        raise LookupError(f"no tuning called {name!r} in {store.tracking_uri()}")
    import mlflow

    parent = mlflow.get_run(parent_id)
    params = json.loads(parent.data.tags.get(SPACE_TAG, "[]"))
    objective = parent.data.tags.get(OBJECTIVE_TAG, "val_loss")
    direction = parent.data.tags.get(DIRECTION_TAG, "min")
    runs = tune.trial_runs(parent_id)
    if not runs:
        raise LookupError(f"tuning {name!r} (run {parent_id}) has no finished trials yet")
    folder = Path(output) if output else Path("reports") / f"tuning-{name}"
    folder.mkdir(parents=True, exist_ok=True)
    by_cell: dict[str, list] = {}
    for run in runs:
        by_cell.setdefault(run.data.tags[TUNING_CELL_TAG], []).append(run)
    best_rows = [_best_row(cell, rows, params, direction) for cell, rows in by_cell.items()]
    importance = importance_table(by_cell, params)
    lines = [f"# Tuning `{name}` — {direction} {objective} (MLflow parent run {parent_id})", "",
             "## Best and median trial per cell", "",
             pd.DataFrame(best_rows).to_markdown(index=False, floatfmt=".4g"), ""]
    files = [folder / "tuning.md"]
    if importance is not None:
        note = (f"Random-forest surrogate per cell; cells with fewer than "
                f"{MIN_TRIALS_FOR_IMPORTANCE} trials are left out. 1 - column sum = interactions.")
        lines += ["## Hyperparameter importance (fANOVA main effects, share of variance)", "",
                  importance.to_markdown(floatfmt=".3f"), "", note, "",
                  "![importance](importance.png)", ""]
        files.append(plot_importance(importance, folder / "importance.png"))
    else:
        lines.append(f"(importance needs >= {MIN_TRIALS_FOR_IMPORTANCE} trials in one cell)")
    markdown = "\n".join(lines)
    files[0].write_text(markdown)
    return {"markdown": markdown, "folder": folder, "files": files}


def _best_row(cell: str, rows: list, params: list[dict], direction: str) -> dict:
    from experiments.orchestration.tune import SCORE

    scores = [r.data.metrics[SCORE] for r in rows]
    best = (min if direction == "min" else max)(rows, key=lambda r: r.data.metrics[SCORE])
    row = {"cell": cell, "trials": len(rows), "best": best.data.metrics[SCORE],
           "median": statistics.median(scores), "best run": best.info.run_id[:12]}
    row.update({p["key"]: best.data.params.get(p["key"]) for p in params})
    return row


def importance_table(by_cell: dict[str, list], params: list[dict]):
    """Rows: hyperparameters; columns: cells with enough trials; values: main-effect shares."""
    import pandas as pd

    from experiments.orchestration.tune import SCORE

    dims = space_dims(params)
    columns = {}
    for cell, rows in sorted(by_cell.items()):
        encoded = [(encode(params, r.data.params), r.data.metrics[SCORE]) for r in rows]
        encoded = [(x, y) for x, y in encoded if x is not None and np.isfinite(y)]
        if len(encoded) < MIN_TRIALS_FOR_IMPORTANCE or not dims:
            continue
        x = np.array([e[0] for e in encoded])
        y = np.array([e[1] for e in encoded])
        columns[cell] = functional_anova(x, y, dims)
    if not columns:
        return None
    return pd.DataFrame(columns, index=[d.name for d in dims])


def plot_importance(table, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(table.index), 3.6))
    table.plot.bar(ax=ax, rot=30)
    ax.set_ylabel("share of variance (main effect)")
    ax.set_ylim(0, 1)
    ax.set_title("Hyperparameter importance (fANOVA on a random-forest surrogate)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
