"""train.jit_compile: an XLA-compiled training step computes what the uncompiled one does, the same
every time (op determinism, which Keras does not combine with XLA, is not needed), and is left out
of the config hash like the other keys that say how a run computes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest

from datasets.errors import ConfigError
from experiments.config import Config, config_hash
from experiments.run import run

CELLS = ("vanilla", "lstm", "peephole", "coupled", "gru")


@pytest.fixture
def train_jit(monkeypatch):
    """The jit setting each training function was built with, in order."""
    seen = []
    make = keras.Model.make_train_function

    def spy(self, force=False):
        if self.train_function is None or force:  # else Keras returns the one built before
            seen.append(self.jit_compile)
        return make(self, force=force)

    monkeypatch.setattr(keras.Model, "make_train_function", spy)
    return seen


@pytest.mark.parametrize("cell", CELLS)
def test_xla_training_gives_the_uncompiled_metrics_every_time(cell, tiny_config, train_jit):
    plain = tiny_config("adding", cell, train={"epochs": 2, "run_eagerly": False})
    xla = plain.with_overrides(["train.jit_compile=true"])
    first = run(xla)
    assert train_jit and all(train_jit)  # the training step was XLA-compiled
    train_jit.clear()
    second, uncompiled = run(xla), run(plain)
    assert not any(train_jit[len(train_jit) // 2:])  # … and the plain run's was not
    assert first.metrics == second.metrics
    assert first.metrics.keys() == uncompiled.metrics.keys()
    for key, value in uncompiled.metrics.items():
        assert first.metrics[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    assert config_hash(xla) == config_hash(plain)


def test_a_jit_setting_outside_the_choices_is_refused():
    with pytest.raises(ConfigError) as err:
        Config.from_dict({"data": {"name": "adding"}, "train": {"jit_compile": "always"}},
                         source="study.yaml")
    message = str(err.value)
    assert "study.yaml" in message and "train.jit_compile" in message and "always" in message
    assert "auto" in message


SEEDED_RUN = """
import json, sys
from experiments.config import Config
from experiments.run import run
config = Config.from_dict({"data": {"name": "adding", "length": 20, "num_train": 256,
                                    "num_val": 64, "num_test": 64, "batch_size": 64},
                           "model": {"cell": "gru", "units": 8},
                           "train": {"epochs": 2, "seed": int(sys.argv[1])},
                           "tracking": {"enabled": False}}, source="test")
print(json.dumps(run(config).metrics))
"""


def test_another_seed_loads_its_programs_from_the_compile_cache_and_trains_the_same(tmp_path):
    """engine.compile_cache_env under JAX: seed 0 compiles the run's programs into the cache; seed
    1, in a new process, finds every one there (no new entry) and gets the metrics it gets
    without a cache, bit for bit."""
    pytest.importorskip("jax")
    from experiments.orchestration.engine import compile_cache_env

    base = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(Path(__file__).parents[2])}
    base = {k: v for k, v in base.items() if not k.startswith("JAX_")}
    cached = {**base, **compile_cache_env({"RNNLAB_COMPILE_CACHE": str(tmp_path)})}

    def metrics(seed, env):
        done = subprocess.run([sys.executable, "-c", SEEDED_RUN, str(seed)], env=env,
                              capture_output=True, text=True, timeout=300, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])

    metrics(0, cached)
    entries = sorted((tmp_path / "jax").iterdir())
    assert entries  # compiled and kept
    assert metrics(1, cached) == metrics(1, base)
    assert sorted((tmp_path / "jax").iterdir()) == entries  # loaded, not compiled again
