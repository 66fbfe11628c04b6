"""The one parameter grammar (experiments/orchestration/params.py): the tuner's Param and the
sweep's `{sampler: [args]}` short form are the same thing, drawn the same way, and a sweep's
`random:` takes both spellings."""

from __future__ import annotations

import math
import random

import pytest

from datasets.errors import ConfigError
from experiments.orchestration import params, plan, tune
from experiments.orchestration.params import Param


def test_the_tuner_and_the_sweep_share_one_param():
    assert tune.Param is Param
    assert params.from_sampler("train.lr", "log_uniform", [1e-4, 1e-2]) == Param(
        "train.lr", "float", min=1e-4, max=1e-2, log=True)
    assert params.from_sampler("model.units", "int_uniform", [8, 64]) == Param(
        "model.units", "int", min=8, max=64)
    assert params.from_sampler("x", "choice", [1, "a"]) == Param("x", "choice", values=(1, "a"))


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
        param = params.parse("k", {sampler: args[sampler]}, "s.yaml", "random")
        assert [draw(old, args[sampler]) for _ in range(20)] == \
            [param.sample(new) for _ in range(20)]


SPELLINGS = [  # (short form, the tuner's spaces' form): one parameter each
    ({"log_uniform": [1e-4, 1e-2]}, {"type": "float", "min": 1e-4, "max": 1e-2, "sampling": "log"}),
    ({"uniform": [0.0, 0.5]}, {"type": "float", "min": 0.0, "max": 0.5}),
    ({"int_uniform": [8, 256]}, {"type": "int", "min": 8, "max": 256, "sampling": "linear"}),
    ({"choice": [32, 64, 128]}, {"type": "choice", "values": [32, 64, 128]}),
]


@pytest.mark.parametrize(("short", "long"), SPELLINGS)
def test_both_spellings_parse_to_one_param(short, long):
    assert params.parse("k", short, "s.yaml", "random") == \
        params.parse("k", long, "s.yaml", "random")


def test_a_sweep_draws_the_same_configs_from_either_spelling():
    base = {"name": "t", "base": {"data": {"name": "adding", "length": 8}},
            "grid": {"model.cell": ["lstm", "gru"]}, "samples": 4, "seed": 3}
    keys = ("train.lr", "model.dropout", "model.units", "data.batch_size")
    short = plan.parse_sweep({**base, "random": dict(zip(keys, (s for s, _ in SPELLINGS)))})
    long = plan.parse_sweep({**base, "random": dict(zip(keys, (lg for _, lg in SPELLINGS)))})
    assert [r.hash for r in short.runs] == [r.hash for r in long.runs]
    assert len({r.hash for r in short.runs}) == 8


def test_a_sweep_takes_what_only_the_long_form_says():
    sweep = plan.parse_sweep({
        "name": "t", "base": {"data": {"name": "adding", "length": 8}}, "samples": 30,
        "random": {"model.dropout": {"type": "float", "min": 0.0, "max": 0.5, "step": 0.25},
                   "model.units": {"type": "int", "min": 8, "max": 64, "sampling": "log"},
                   "model.unit_forget_bias": {"type": "bool"}}})
    configs = [r.config for r in sweep.runs]
    assert {c.model.dropout for c in configs} <= {0.0, 0.25, 0.5}
    assert all(8 <= c.model.units <= 64 and isinstance(c.model.units, int) for c in configs)
    assert {c.model.unit_forget_bias for c in configs} == {False, True}


@pytest.mark.parametrize(("spec", "needles"), [
    ({"type": "real", "min": 0, "max": 1}, ["'random.k.type'", "'real'", "int, float, choice, bool"]),
    ({"type": "float", "min": 1e-3, "max": 0.1, "scale": "log"}, ["'random.k'", "'scale'",
                                                                  "sampling"]),
    ({"type": "float", "min": 0.1, "max": 0.01}, ["'random.k'", "min 0.1 > max 0.01"]),
    ({"type": "float", "min": 0.0, "max": 0.1, "sampling": "log"}, ["'random.k.min'", "min > 0",
                                                                    "0.0"]),
    ({"type": "float", "min": 0.0, "max": 0.1, "sampling": "exp"}, ["'random.k.sampling'", "log"]),
    ({"type": "int", "min": 1.5, "max": 4}, ["'random.k.min'", "finite int", "1.5"]),
    ({"type": "float", "min": 0.0, "max": 1.0, "step": 0}, ["'random.k.step'", "positive"]),
    ({"type": "choice", "values": []}, ["'random.k.values'", "non-empty"]),
    ({"normal": [0, 1]}, ["'random.k'", "{type: int | float | choice | bool, ...}", "log_uniform"]),
])
def test_a_bad_parameter_is_one_line_naming_file_key_value_and_choices(spec, needles):
    with pytest.raises(ConfigError) as err:
        params.parse("k", spec, "s.yaml", "random")
    message = str(err.value)
    assert message.startswith("s.yaml: ") and "\n" not in message
    for needle in needles:
        assert needle in message, (needle, message)
