"""A search-space file of `rnnlab tune`, read and checked: `Space` (what one search searches).

A search-space file (``experiments/spaces/*.yaml``)::

    name: adding-small            # MLflow tag `rnnlab.tuning`, the work folder's name
    description: ...
    base: {data: {...}, model: {...}, train: {...}, tracking: {...}}   # a Config as in config.py
    cells: [lstm, gru]            # one search per cell, same budget (`--all-cells`: every cell)
    tuner: random                 # random | bayesian | hyperband
    max_trials: 20                # per cell (hyperband: ignored, its budget is base train.epochs)
    seed: 0                       # the oracle's seed: every cell gets the same random draws
    objective: {name: val_loss, direction: min}   # the default; best value over the epochs
    space:                        # dotted Config keys; types int | float | choice | bool
      train.lr: {type: float, min: 1.0e-4, max: 1.0e-2, sampling: log}
      model.units: {type: int, min: 8, max: 128, sampling: log}
      model.dropout: {type: float, min: 0.0, max: 0.5}
      data.batch_size: {type: choice, values: [32, 64, 128]}

Every error names the file, the key, the value and the valid choices, before any MLflow run exists.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from experiments.config import Config, config_hash, validate_names
from experiments.orchestration.params import PARAM_KEYS, Param
from experiments.orchestration.params import parse as parse_param

SPACE_KEYS = ("name", "description", "base", "cells", "tuner", "max_trials", "seed", "objective",
              "space")
TUNERS = ("random", "bayesian", "hyperband")
DIRECTIONS = ("min", "max")
DEFAULT_OBJECTIVE = {"name": "val_loss", "direction": "min"}
NOT_TUNABLE = ("data.name", "model.cell")
SPACES_DIR = Path(__file__).resolve().parent.parent / "spaces"
DEFAULT_SPACE = SPACES_DIR / "default.yaml"


@dataclass
class Space:
    """A parsed and validated search-space file."""

    name: str
    source: str
    base: Config
    cells: list[str]
    params: list[Param]
    tuner: str = "random"
    max_trials: int = 10
    seed: int = 0
    objective: str = DEFAULT_OBJECTIVE["name"]
    direction: str = DEFAULT_OBJECTIVE["direction"]
    description: str = ""

    def config_for(self, cell: str, values: dict[str, Any], trial_id: str | None = None) -> Config:
        """The Config of one trial: base, the cell, the sampled values (hyperband: its epochs)."""
        d = self.base.to_dict()
        d["model"]["cell"] = cell
        for key, value in values.items():
            if key == "tuner/epochs":
                d["train"]["epochs"] = int(value)
                continue
            if key.startswith("tuner/"):  # hyperband bookkeeping; run() always starts afresh
                continue
            section, _, name = key.partition(".")
            d[section][name] = value
        if trial_id is not None:
            d["tracking"]["run_name"] = f"{self.name}-{cell}-t{trial_id}"
        return Config.from_dict(d, source=f"{self.source} ({cell}, {describe(values)})")

    def searched_keys(self) -> tuple[str, ...]:
        """The Config keys a trial sets: the space's, and hyperband's epochs."""
        return tuple(p.key for p in self.params) + (
            ("train.epochs",) if self.tuner == "hyperband" else ())

    def fingerprint(self) -> str:
        """What the oracle's state depends on; a changed space starts a new oracle folder."""
        blob = json.dumps({
            "params": [dataclasses.asdict(p) for p in self.params], "tuner": self.tuner,
            "max_trials": self.max_trials, "seed": self.seed, "objective": self.objective,
            "direction": self.direction, "base": config_hash(self.base),
        }, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:8]

    def to_tag(self) -> str:
        """The parameters as JSON (the parent's `rnnlab.space` tag, read by the report)."""
        return json.dumps([dataclasses.asdict(p) for p in self.params], default=str)


# --- reading and validating a search-space file ----------------------------------------------------


def load_space(path: str | Path, *, task: str | None = None, cells: Iterable[str] | None = None,
               tuner: str | None = None, max_trials: int | None = None, name: str | None = None,
               overrides: Iterable[str] = ()) -> Space:
    """Read a search-space YAML; the keyword arguments (the CLI's flags) override its keys."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"{path}: cannot read the search-space file: {err}") from err
    return parse_space(raw, source=str(path), task=task, cells=cells, tuner=tuner,
                       max_trials=max_trials, name=name, overrides=overrides)


def parse_space(raw: Any, *, source: str = "<space>", task: str | None = None,
                cells: Iterable[str] | None = None, tuner: str | None = None,
                max_trials: int | None = None, name: str | None = None,
                overrides: Iterable[str] = ()) -> Space:
    """Validate a search-space mapping: every error names the file, the key, the value and the
    valid choices, before any MLflow run exists."""
    _require(isinstance(raw, dict), f"{source}: a search-space file must be a mapping with keys "
                                    f"{', '.join(SPACE_KEYS)}")
    raw = copy.deepcopy(raw)
    unknown = sorted(set(raw) - set(SPACE_KEYS))
    _require(not unknown, f"{source}: unknown key {', '.join(map(repr, unknown))}; "
                          f"valid keys: {', '.join(SPACE_KEYS)}")
    name = name or raw.get("name")
    if task and not name:
        name = task
    _require(isinstance(name, str) and bool(name.strip()) and "/" not in name,
             f"{source}: key 'name' must be a non-empty string without '/', got {name!r}")
    base_raw = raw.get("base") or {}
    _require(isinstance(base_raw, dict), f"{source}: key 'base' must be a mapping (a Config)")
    if task:
        base_raw.setdefault("data", {})["name"] = task
    base = Config.from_dict(base_raw, source=f"{source}: base")
    if overrides:
        base = base.with_overrides(list(overrides))
    cells = list(cells) if cells else raw.get("cells") or [base.model.cell]
    _require(isinstance(cells, list) and all(isinstance(c, str) for c in cells),
             f"{source}: key 'cells' must be a list of cell names, got {cells!r}")
    for cell in cells:
        validate_names(dataclasses.replace(base, model=dataclasses.replace(base.model, cell=cell)),
                       source)
    tuner = tuner or raw.get("tuner", "random")
    _require(tuner in TUNERS, f"{source}: key 'tuner' is {tuner!r}; valid choices: "
                              f"{', '.join(TUNERS)}")
    max_trials = max_trials if max_trials is not None else raw.get("max_trials", 10)
    _require(isinstance(max_trials, int) and not isinstance(max_trials, bool) and max_trials >= 1,
             f"{source}: key 'max_trials' must be an integer >= 1, got {max_trials!r}")
    seed = raw.get("seed", 0)
    _require(isinstance(seed, int) and not isinstance(seed, bool),
             f"{source}: key 'seed' must be an integer, got {seed!r}")
    objective, direction = _objective(raw.get("objective"), source)
    space_raw = raw.get("space")
    _require(isinstance(space_raw, dict) and bool(space_raw),
             f"{source}: key 'space' must be a non-empty mapping of dotted Config keys to "
             f"{{type: {' | '.join(PARAM_KEYS)}, ...}}")
    params = [_param(key, spec, base, source) for key, spec in space_raw.items()]
    space = Space(name=name, source=source, base=base, cells=cells, params=params, tuner=tuner,
                  max_trials=max_trials, seed=seed, objective=objective, direction=direction,
                  description=str(raw.get("description", "")))
    for p in params:  # each extreme value must make a valid Config (e.g. dropout < 1)
        for value in p.extremes():
            space.config_for(cells[0], {p.key: value})
    return space


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _objective(raw: Any, source: str) -> tuple[str, str]:
    raw = DEFAULT_OBJECTIVE if raw is None else raw
    _require(isinstance(raw, dict) and set(raw) <= {"name", "direction"},
             f"{source}: key 'objective' must be {{name: <val metric>, direction: min|max}}, "
             f"got {raw!r}")
    name, direction = raw.get("name", "val_loss"), raw.get("direction", "min")
    _require(isinstance(name, str) and name.startswith("val_"),
             f"{source}: objective.name must be a validation metric logged per epoch "
             f"(val_loss, val_<metric>), got {name!r}")
    _require(direction in DIRECTIONS, f"{source}: objective.direction is {direction!r}; "
                                      f"valid choices: {', '.join(DIRECTIONS)}")
    return name, direction


def _param(key: Any, spec: Any, base: Config, source: str) -> Param:
    where = f"{source}: space key {key!r}"
    flat = base.flat()
    _require(isinstance(key, str) and key in flat and key not in NOT_TUNABLE,
             f"{where} is not a tunable Config key; valid keys are 'section.key' with section "
             f"data, model, train (e.g. train.lr, model.units); the cell is chosen by 'cells'")
    return parse_param(key, spec, source, "space")


def describe(values: dict) -> str:
    shown = {k: v for k, v in values.items() if not k.startswith("tuner/") or k == "tuner/epochs"}
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in shown.items()) or "base"
