"""One grammar for a hyperparameter's values, shared by a sweep's random samples and the tuner.

A `Param` is a dotted Config key and the values it may take, spelled in either of two forms:

    {type: float, min: 1.0e-4, max: 1.0e-2, sampling: log}     # also int; `step` optional
    {type: choice, values: [32, 64, 128]}
    {type: bool}

or the short form `{sampler: [args]}` (`SAMPLERS`):

    {log_uniform: [1.0e-4, 1.0e-2]}    = {type: float, min: 1.0e-4, max: 1.0e-2, sampling: log}
    {uniform: [0.0, 0.5]}              = {type: float, min: 0.0, max: 0.5}
    {int_uniform: [8, 64]}             = {type: int, min: 8, max: 64}
    {choice: [32, 64]}                 = {type: choice, values: [32, 64]}

`parse` reads both (a bad spelling is one ConfigError naming the file, the key, the value and
what is valid). The tuner (`experiments.orchestration.tune`) declares a Param on keras-tuner's
HyperParameters (`Param.declare`); a sweep file's `random:` draws from it (`Param.sample`): the
two spellings of one parameter draw the same values, and the short form draws what it drew
before the two grammars were one.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from datasets.errors import ConfigError

PARAM_KEYS = {
    "int": ("type", "min", "max", "step", "sampling"),
    "float": ("type", "min", "max", "step", "sampling"),
    "choice": ("type", "values"),
    "bool": ("type",),
}
SAMPLINGS = ("linear", "log")
# the sweep's short form: sampler name -> (type, sampling)
SAMPLERS = {
    "choice": ("choice", None),
    "uniform": ("float", "linear"),
    "log_uniform": ("float", "log"),
    "int_uniform": ("int", "linear"),
}


@dataclass(frozen=True)
class Param:
    """One hyperparameter: a dotted Config key and how its values are drawn."""

    key: str
    type: str
    min: float | None = None
    max: float | None = None
    step: float | None = None
    log: bool = False
    values: tuple = ()

    def declare(self, hp) -> None:
        """Register this parameter on a `keras_tuner.HyperParameters`."""
        sampling = "log" if self.log else "linear"
        if self.type == "int":
            hp.Int(self.key, int(self.min), int(self.max), step=self.step, sampling=sampling)
        elif self.type == "float":
            hp.Float(self.key, float(self.min), float(self.max), step=self.step, sampling=sampling)
        elif self.type == "choice":
            hp.Choice(self.key, list(self.values))
        else:
            hp.Boolean(self.key)

    def sample(self, rng: random.Random) -> Any:
        """One value drawn with `rng`: uniform over the values, the range, or its logarithm."""
        if self.type == "choice":
            return rng.choice(list(self.values))
        if self.type == "bool":
            return rng.choice([False, True])
        if self.log:
            value = math.exp(rng.uniform(math.log(self.min), math.log(self.max)))
        elif self.type == "int":
            value = rng.randint(int(self.min), int(self.max))
        else:
            value = rng.uniform(self.min, self.max)
        if self.step:
            value = self.min + round((value - self.min) / self.step) * self.step
        return round(value) if self.type == "int" else value

    def extremes(self) -> list:
        """The values that must each give a valid Config (checked before anything runs)."""
        if self.type in ("int", "float"):
            cast = int if self.type == "int" else float
            return [cast(self.min), cast(self.max)]
        return list(self.values) if self.type == "choice" else [False, True]


def from_sampler(key: str, sampler: str, args: list) -> Param:
    """The Param of a sweep's `{sampler: [args]}` (arguments already checked by the sweep)."""
    kind, sampling = SAMPLERS[sampler]
    if kind == "choice":
        return Param(key, kind, values=tuple(args))
    return Param(key, kind, min=args[0], max=args[1], log=sampling == "log")


def parse(key: str, spec: Any, source: str, where: str) -> Param:
    """The Param that `spec` spells for Config key `key`, in the long form (`{type: ..., ...}`)
    or the short one (`{sampler: [args]}`). `where`: the section it is written in ("random"),
    which prefixes the key a refusal names (`random.train.lr.log_uniform`)."""
    at = f"{where}.{key}"
    if isinstance(spec, dict) and "type" in spec:
        return _parse_long(key, spec, source, at)
    sampler = next(iter(spec), None) if isinstance(spec, dict) and len(spec) == 1 else None
    if sampler not in SAMPLERS or not isinstance(spec[sampler], list):
        raise ConfigError(source, at, "must be {<sampler>: [args]} or {type: "
                          f"{' | '.join(PARAM_KEYS)}, ...}}", value=spec, valid=SAMPLERS)
    problem = _sampler_problem(sampler, spec[sampler])
    if problem is not None:
        raise ConfigError(source, f"{at}.{sampler}", problem, value=spec[sampler])
    return from_sampler(key, sampler, spec[sampler])


def _sampler_problem(sampler: str, args: list) -> str | None:
    """What is wrong with a sampler's arguments (None when they can be drawn from)."""
    if sampler == "choice":
        return None if args else "must list at least one value"
    integer = sampler == "int_uniform"
    numbers = all(isinstance(a, int if integer else (int, float)) and not isinstance(a, bool)
                  for a in args)
    if len(args) != 2 or not numbers:
        return f"must be [low, high], two {'integers' if integer else 'numbers'}"
    if args[0] > args[1]:
        return "must have low <= high"
    if sampler == "log_uniform" and args[0] <= 0:
        return "must have 0 < low (it draws log(value) uniformly)"
    return None


def _parse_long(key: str, spec: dict, source: str, at: str) -> Param:
    """`{type: int | float, min, max[, step][, sampling]}`, `{type: choice, values}`,
    `{type: bool}`."""
    kind = spec["type"]
    if kind not in PARAM_KEYS:
        raise ConfigError(source, f"{at}.type", "is not a parameter type", value=kind,
                          valid=PARAM_KEYS)
    unknown = sorted(set(spec) - set(PARAM_KEYS[kind]))
    if unknown:
        raise ConfigError(source, at, f"has keys a {kind} parameter does not take",
                          value=unknown, valid=PARAM_KEYS[kind])
    if kind == "choice":
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            raise ConfigError(source, f"{at}.values", "must be a non-empty list", value=values)
        return Param(key, kind, values=tuple(values))
    if kind == "bool":
        return Param(key, kind)
    for bound in ("min", "max"):
        value = spec.get(bound)
        if not (isinstance(value, (int, float)) and not isinstance(value, bool)
                and math.isfinite(value) and (kind == "float" or float(value).is_integer())):
            raise ConfigError(source, f"{at}.{bound}", f"must be a finite {kind}", value=value)
    low, high = spec["min"], spec["max"]
    if low > high:
        raise ConfigError(source, at, f"must have min <= max: min {low!r} > max {high!r}")
    sampling = spec.get("sampling", "linear")
    if sampling not in SAMPLINGS:
        raise ConfigError(source, f"{at}.sampling", "is not a sampling", value=sampling,
                          valid=SAMPLINGS)
    if sampling == "log" and low <= 0:
        raise ConfigError(source, f"{at}.min", "must be > 0 for sampling log (min > 0: it "
                          "draws log(value) uniformly)", value=low)
    step = spec.get("step")
    if step is not None and not (isinstance(step, (int, float)) and not isinstance(step, bool)
                                 and step > 0):
        raise ConfigError(source, f"{at}.step", "must be a positive number", value=step)
    return Param(key, kind, min=low, max=high, step=step, log=sampling == "log")
