"""The tuning behind a study's configurations, read from committed files alone (a fresh clone
without the MLflow store shows it): issue 24's "every cell's training configuration per task family
came from the same tuning budget, shown on the page".

- The study's sweep file names, in its `tuned:` block, each task family's search space
  (`experiments/spaces/fair-<task>.yaml`: what was searched, the trials per cell, the objective)
  and the file `rnnlab tune SPACE --all-cells --export BEST` wrote
  (`experiments/sweeps/tuned/fair-<task>.yaml`);
- that best file holds each cell's tuned value of every searched key (its `tasks:`, which
  `rnnlab sweep` reads) and, in its header, the tuning's MLflow parent run and each cell's best
  and median score over its trials (`experiments.orchestration.tune.best_sweep_yaml`).

A family whose best file does not exist yet is *not tuned yet*; the sweep cannot run it, so the
page says so instead of showing another configuration's runs.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from datasets.errors import ConfigError
from experiments.config import read_yaml
from experiments.orchestration import plan, tune
from experiments.orchestration.params import Param

PARENT = re.compile(r"MLflow parent run (\S+?),")
CELL_LINE = re.compile(r"^#\s+(\S+): \S+ (\S+) \(median (\S+)\) over (\d+) trials, run (\S+)\s*$")
SHORT_KEYS = {"train.lr": "lr", "train.clipnorm": "clipnorm", "train.global_clipnorm": "global clip",
              "model.dropout": "dropout", "train.epochs": "epochs", "data.batch_size": "batch"}


@dataclass(frozen=True)
class CellTuning:
    """One cell's outcome: its tuned values, and (from the header) best and median score, the
    trials scored and the best trial's MLflow run."""

    cell: str
    values: dict[str, Any]
    best: float = math.nan
    median: float = math.nan
    trials: int | None = None
    run_id: str = ""


@dataclass(frozen=True)
class Family:
    """One task family's tuning: the space, the best file and, once tuned, each cell's outcome."""

    task: str
    space: tune.Space
    space_path: Path
    best_path: Path
    parent_run: str = ""
    cells: dict[str, CellTuning] = field(default_factory=dict)
    free: tuple[str, ...] = ()  # keys the study's runs may differ in, borrowing the tuned values

    @property
    def tuned(self) -> bool:
        return bool(self.cells)

    def command(self) -> str:
        return f"rnnlab tune {self.space_path} --all-cells --export {self.best_path}"


def read(sweep_file: str | Path | None) -> list[Family]:
    """The families of the sweep file's `tuned:` block, in its order; [] without one (a study whose
    cells share one configuration) or without the file."""
    if sweep_file is None or not Path(sweep_file).is_file():
        return []
    raw = read_yaml(Path(sweep_file).read_text(), str(sweep_file)) or {}
    # the paths and spaces checked as `rnnlab sweep` checks them (the one reader of `tuned:`)
    entries = plan.read_tuned(raw.get("tuned") or {}, str(sweep_file))
    return [_family(entry) for entry in entries.values()]


def _family(entry: plan.Tuned) -> Family:
    space = tune.load_space(entry.space)
    if not entry.best.is_file():
        return Family(entry.task, space, entry.space, entry.best, free=entry.free)
    header = [line for line in entry.best.read_text().splitlines() if line.startswith("#")]
    parent = next((m.group(1) for line in header if (m := PARENT.search(line))), "")
    scores = {m.group(1): m for line in header if (m := CELL_LINE.match(line))}
    cells = {}
    for cell in space.cells:
        try:
            values = entry.values_for(cell, str(entry.best))
        except ConfigError:  # a cell the export lacks: shown as missing, not guessed
            continue
        m = scores.get(cell)
        cells[cell] = CellTuning(cell, values, *((float(m.group(2)), float(m.group(3)),
                                                  int(m.group(4)), m.group(5)) if m else ()))
    return Family(entry.task, space, entry.space, entry.best, parent, cells, entry.free)


def untuned(families: list[Family]) -> list[str]:
    return [f.task for f in families if not f.tuned]


def task_names(sweep_file: str | Path) -> set[str]:
    """The tasks (`data.name`) a sweep file's entries and base name."""
    raw = read_yaml(Path(sweep_file).read_text(), str(sweep_file)) or {}
    base = ((raw.get("base") or {}).get("data") or {}).get("name")
    return {str(t["data.name"]) for t in raw.get("tasks") or [] if "data.name" in t} | \
        ({str(base)} if base else set())


def at_edge(value: float, param: Param, share: float = 0.1) -> str:
    """'top' or 'bottom' when `value` lies in that `share` of the param's range (of its logarithm
    for a log-uniform one), else ''."""
    if param.type not in ("float", "int") or param.min is None or param.max is None:
        return ""
    scale = math.log if param.log else float
    low, high = scale(param.min), scale(param.max)
    where = (scale(float(value)) - low) / (high - low) if high > low else 0.5
    return "top" if where >= 1 - share else "bottom" if where <= share else ""


def edges(family: Family) -> list[str]:
    """One line per searched key whose tuned value lies at an edge of its range for some cells: the
    search may have stopped at the border of what it was allowed to try."""
    lines = []
    for param in family.space.params:
        found: dict[str, list[str]] = {}
        for cell, t in family.cells.items():
            value = t.values.get(param.key)
            if value is not None and (side := at_edge(value, param)):
                found.setdefault(side, []).append(f"{cell} {_g(value)}")
        for side, cells_ in found.items():
            scale = " on a log scale" if param.log else ""
            lines.append(f"{SHORT_KEYS.get(param.key, param.key)}: {', '.join(cells_)} — in the "
                         f"{side} 10 % of the searched range {_g(param.min)}–{_g(param.max)}"
                         f"{scale}; a wider range might have found a better value.")
    return lines


def describe(param: Param) -> str:
    """A searched key in a few words, e.g. 'lr log-uniform 0.0003–0.1', 'clipnorm ∈ {1, 10}'."""
    name = SHORT_KEYS.get(param.key, param.key)
    if param.type == "choice":
        return f"{name} ∈ {{{', '.join(_g(v) for v in param.values)}}}"
    if param.type == "bool":
        return f"{name} ∈ {{False, True}}"
    kind = "log-uniform" if param.log else "uniform" if param.type == "float" else "integer"
    return f"{name} {kind} {_g(param.min)}–{_g(param.max)}"


def _g(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def tuned_at(space: tune.Space) -> str:
    """Where the family was tuned: its length, when its task reads one."""
    from experiments.tasks import settings

    return f"T = {space.base.data.length}" if settings.takes(space.base, "data.length") \
        else "its study setting"


def overview(families: list[Family], finished: dict[str, int], planned: dict[str, int],
             hours: dict[str, float] | None = None) -> pd.DataFrame:
    """One row per family: where it was tuned, what was searched, trials per cell, the tuning's
    MLflow parent run (or 'not tuned yet'), the study's seeded runs finished and, for a family
    without runs, the estimated hours it still needs."""
    rows = []
    for f in families:
        s = f.space
        runs = f"{finished.get(f.task, 0)} of {planned[f.task]}" if f.task in planned \
            else str(finished.get(f.task, 0))
        rows.append({"family": f.task, "tuned at": tuned_at(s),
                     "searched": "; ".join(describe(p) for p in s.params),
                     "trials per cell": f"{s.max_trials} ({s.tuner} search, seed {s.seed})",
                     "tuning (MLflow parent run)": f"`{f.parent_run}`" if f.parent_run
                     else "tuned (no parent run in the header)" if f.tuned
                     else f"**runs, but `{f.best_path.name}` is not committed**" if finished.get(f.task)
                     else "**not tuned yet**",
                     "seeded runs finished": runs,
                     **({"hours to go (≈)": f"{hours[f.task]:.1f}" if f.task in hours else "-"}
                        if hours else {})})
    return pd.DataFrame(rows)


def cell_table(family: Family, order: list[str]) -> pd.DataFrame:
    """Per cell: each searched key's tuned value, trials scored, best and median score, the best
    trial's run."""
    objective = family.space.objective
    rows = []
    for cell in [c for c in order if c in family.cells] + [c for c in family.cells if c not in order]:
        t = family.cells[cell]
        rows.append({"cell": cell,
                     **{SHORT_KEYS.get(k, k): _g(t.values.get(k)) for k in family.space.searched_keys()},
                     "trials": t.trials if t.trials is not None else "-",
                     f"best {objective}": f"{t.best:.4g}", f"median {objective}": f"{t.median:.4g}",
                     "best trial (run)": f"`{t.run_id[:12]}`" if t.run_id else "-"})
    missing = [c for c in family.space.cells if c not in family.cells]
    rows += [{"cell": c, "trials": "not in the export"} for c in missing]
    return pd.DataFrame(rows)
