"""The one parameter grammar (experiments/orchestration/params.py): the tuner's Param and the
sweep's `{sampler: [args]}` short form are the same thing, drawn the same way."""

from __future__ import annotations

import math
import random

import pytest

from experiments.orchestration import params, plan, tune
from experiments.orchestration.params import Param


def test_the_tuner_and_the_sweep_share_one_param():
    assert tune.Param is Param
    assert params.from_sampler("train.lr", "log_uniform", [1e-4, 1e-2]) == Param(
        "train.lr", "float", min=1e-4, max=1e-2, log=True)
    assert params.from_sampler("model.units", "int_uniform", [8, 64]) == Param(
        "model.units", "int", min=8, max=64)
    assert params.from_sampler("x", "choice", [1, "a"]) == Param("x", "choice", values=(1, "a"))
    assert set(plan.SAMPLERS) == set(params.SAMPLERS)


@pytest.mark.parametrize("param", [
    Param("a", "float", min=1e-4, max=1e-2, log=True),
    Param("b", "float", min=0.0, max=0.5),
    Param("c", "int", min=8, max=256),
    Param("d", "int", min=16, max=256, log=True),
    Param("e", "float", min=0.0, max=1.0, step=0.25),
    Param("f", "choice", values=(32, 64)),
    Param("g", "bool"),
])
def test_samples_stay_within_the_declared_values(param):
    rng = random.Random(0)
    for value in (param.sample(rng) for _ in range(200)):
        if param.type in ("int", "float"):
            assert param.min <= value <= param.max
            assert isinstance(value, int) == (param.type == "int")
        else:
            assert value in (param.values or (False, True))
    if param.step:
        assert {param.sample(rng) for _ in range(100)} <= {0.0, 0.25, 0.5, 0.75, 1.0}


def test_a_sweeps_draws_are_those_it_made_before_the_grammars_were_one():
    """Recorded sweeps with `random:` must draw the same configs (hence hashes) as before."""
    before = {
        "uniform": lambda rng, args: rng.uniform(*args),
        "log_uniform": lambda rng, args: math.exp(rng.uniform(math.log(args[0]),
                                                              math.log(args[1]))),
        "int_uniform": lambda rng, args: rng.randint(*args),
        "choice": lambda rng, args: rng.choice(args),
    }
    args = {"uniform": [0, 0.5], "log_uniform": [1e-4, 1e-2], "int_uniform": [8, 256],
            "choice": [32, 64, 128]}
    for sampler, draw in before.items():
        old, new = random.Random(7), random.Random(7)
        assert [draw(old, args[sampler]) for _ in range(20)] == \
            [plan.SAMPLERS[sampler](new, args[sampler]) for _ in range(20)]
