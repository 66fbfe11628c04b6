"""train.jit_compile: an XLA-compiled training step computes what the uncompiled one does, the same
every time (op determinism, which Keras does not combine with XLA, is not needed), and is left out
of the config hash like the other keys that say how a run computes."""

from __future__ import annotations

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
