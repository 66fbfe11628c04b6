"""One grammar for a hyperparameter's values, shared by a sweep's random samples and the tuner.

A `Param` is a dotted Config key and the values it may take:

    {type: float, min: 1.0e-4, max: 1.0e-2, sampling: log}     # also int; `step` optional
    {type: choice, values: [32, 64, 128]}
    {type: bool}

The tuner (`experiments.orchestration.tune`) declares it on keras-tuner's HyperParameters
(`Param.declare`); a sweep file's `random:` draws from it (`Param.sample`). A sweep may spell a
parameter in the short form `{sampler: [args]}` (`SAMPLERS`: `choice: [a, b, ...]`,
`uniform: [low, high]`, `log_uniform: [low, high]`, `int_uniform: [low, high]`), which is the same
Param (`from_sampler`), drawn the same way as before the two grammars were one.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

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
