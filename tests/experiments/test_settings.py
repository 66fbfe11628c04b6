"""The tasks' declarations of the keys they read (experiments/tasks/settings.py) and the one rule:
what a lone run refuses, what a sweep drops, what is hashed and logged; and that all of it
answers without Keras."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

import datasets
from datasets.base import DataConfig
from experiments.config import Config, config_hash
from experiments.orchestration.plan import load_sweep
from experiments.tasks import settings

ROOT = Path(__file__).resolve().parents[2]
SWEEPS = ROOT / "experiments" / "sweeps"

# config hashes computed on main at 8c6bcd1, before the declarations (None stood for Luong's own
# settings then): every recorded run must keep its hash, so that a re-run sweep finds it
PINNED = {
    "study.yaml": (
        "b3e322d00ee0",  # vanilla × adding (T=50, seed=0)
        "85ee4def7ffe",  # lstm × adding (T=50, seed=0)
        "d27f98cb1073",  # lstm × adding (T=100, seed=0, unit_forget_bias=False)
        "358b8998a64b",  # peephole × adding (T=100, seed=0, unit_forget_bias=False)
        "d429a50fcbd0",  # coupled × adding (T=100, seed=0, unit_forget_bias=False)
        "10028cbed299",  # vanilla × imdb
        "e8c569830e59",  # gru × temporal_order (T=200, seed=2)
    ),
    "translation_attention.yaml": (
        "80356ce270a0",  # gru × multi30k (attention=None)
        "0e35d30789c8",  # lstm × multi30k (attention=None)
        "b6d3ade06750",  # gru × multi30k (luong, general, readout=deep, input_feeding=False)
        "212f8d5f6627",  # peephole × multi30k (luong, general, readout=deep, input_feeding=False)
    ),
    "translation_medium.yaml": (
        "64ce67caaebe",  # gru × multi30k (attention=bahdanau)
        "c9839e894ac8",  # gru × multi30k (attention=luong)
        "df3e9f54180f",  # gru × multi30k (attention=None)
    ),
    "quick.yaml": (  # model.embedding_dim in its base, on adding too
        "eb74afbf893a",  # vanilla × adding (T=100)
        "64752a9690a4",  # lstm × imdb
        "e22324cb1978",  # gru × multi30k (luong, general, readout=deep, input_feeding=False)
    ),
    "long_budget.yaml": ("6559da71b457", "badebd8fb4f1"),  # vanilla × reber, gru × spike_timing
}
PINNED_RUNS = {
    "study.yaml": 184, "translation_attention.yaml": 16, "translation_medium.yaml": 12,
    "quick.yaml": 11, "long_budget.yaml": 15,
}
PINNED_SETS = {
    "data.name=multi30k model.attention=luong model.input_feeding=true "
    "model.readout=attentional": "08bce56807d1",
    "data.name=multi30k model.attention=luong model.input_feeding=false "
    "model.readout=deep": "fd29c2d62d3b",
    "data.name=multi30k model.attention=bahdanau": "cdda2ff5cbc2",
    "model.cell=lstm model.unit_forget_bias=false": "ddd16a809e13",
    "model.cell=gru model.unit_forget_bias=false": "2e3d03eae695",
    "train.global_clipnorm=1.0 train.clipnorm=null": "db5e03072801",
    "": "82eb15f2708e",
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_recorded_sweeps_keep_their_hashes(name):
    planned = load_sweep(SWEEPS / name)
    hashes = {run.hash for run in planned.runs}
    assert len(planned.runs) == PINNED_RUNS[name]
    assert set(PINNED[name]) <= hashes


def test_configs_keep_their_hashes():
    for sets, expected in PINNED_SETS.items():
        assert config_hash(Config().with_overrides(sets.split())) == expected, sets


def test_luongs_own_settings_are_values_and_the_hash_leaves_them_out():
    config = Config().with_overrides(["data.name=multi30k", "model.attention=luong"])
    assert (config.model.input_feeding, config.model.readout) == (True, "attentional")
    assert config_hash(config) == PINNED_SETS[
        "data.name=multi30k model.attention=luong model.input_feeding=true model.readout=attentional"]


def test_the_rule_for_each_kind_of_key():
    adding, multi30k = Config(), Config().with_overrides(["data.name=multi30k"])
    luong = multi30k.with_overrides(["model.attention=luong"])
    gru = Config().with_overrides(["model.cell=gru"])
    assert settings.takes(adding, "data.length") and not settings.takes(multi30k, "data.length")
    assert settings.takes(multi30k, "data.source_lang") and not settings.takes(adding,
                                                                                "data.source_lang")
    assert settings.takes(multi30k, "model.attention") and not settings.takes(adding,
                                                                               "model.attention")
    assert settings.takes(luong, "model.readout") and not settings.takes(multi30k, "model.readout")
    assert settings.takes(multi30k, "model.embedding_dim")
    assert not settings.takes(adding, "model.embedding_dim")
    assert settings.takes(adding, "model.unit_forget_bias")
    assert not settings.takes(gru, "model.unit_forget_bias")
    assert all(settings.takes(c, "train.lr") and settings.takes(c, "model.units")
               for c in (adding, multi30k, gru))


def test_params_are_the_keys_the_run_takes():
    adding = settings.applicable(Config())
    assert "data.length" in adding and "data.source_lang" not in adding
    assert not any(k in adding for k in ("model.attention", "model.embedding_dim",
                                         "train.beam_width", "model.readout"))
    luong = settings.applicable(Config().with_overrides(
        ["data.name=multi30k", "model.attention=luong", "model.input_feeding=true"]))
    assert luong["model.input_feeding"] is True and luong["model.readout"] == "attentional"
    bahdanau = settings.applicable(Config().with_overrides(
        ["data.name=multi30k", "model.attention=bahdanau"]))
    assert "model.input_feeding" not in bahdanau and bahdanau["model.attention"] == "bahdanau"
    assert "model.unit_forget_bias" not in settings.applicable(
        Config().with_overrides(["model.cell=gru"]))


def test_every_family_and_dataset_is_declared():
    from experiments.tasks import FAMILIES

    assert {f.name: f.outputs for f in settings.FAMILIES} == {
        name: family.outputs for name, family in FAMILIES.items()}
    fields = {f.name for f in dataclasses.fields(DataConfig)}
    for task in datasets.names():
        reads = datasets.reads(task)
        assert set(reads.data) <= fields, task
        assert settings.family_name(task) in FAMILIES
    assert [settings.family_name(t) for t in ("imdb", "multi30k", "adding", "reber")] == [
        "sentiment", "translation", "long_dependency", "long_dependency"]
    for key in settings.DECLARED:
        section, _, name = key.partition(".")
        assert name in {f.name for f in dataclasses.fields(type(getattr(Config(), section)))}


class Recording(DataConfig):
    """A DataConfig that records which fields are read."""

    def __getattribute__(self, name):
        if name in DataConfig.__dataclass_fields__:
            object.__getattribute__(self, "seen").add(name)
        return object.__getattribute__(self, name)


@pytest.mark.parametrize("task", ["adding", "copy", "temporal_order", "reber", "spike_timing"])
def test_a_generated_task_reads_only_what_it_declares(task):
    config = Recording(name=task, length=50, num_train=64, num_val=32, num_test=32, batch_size=32)
    object.__setattr__(config, "seen", set())
    datasets.load(config)
    assert object.__getattribute__(config, "seen") - {"name"} <= set(datasets.reads(task).data)


def test_the_cell_catalog_matches_the_registry():
    import cells
    from cells.base import MemoryCell

    catalog = settings.cell_catalog()
    assert catalog is cells.catalog
    assert catalog.names() == cells.names()
    for entry in catalog.CATALOG:
        cell = cells.get(entry.name, units=1)
        assert type(cell).__name__ == entry.cls and type(cell).__module__ == entry.module
        assert isinstance(cell, MemoryCell) == entry.forget_gate
        assert all(type(cells.get(a, units=1)) is type(cell) for a in entry.aliases)


def test_validation_answers_without_keras():
    code = (
        "import sys\n"
        "from datasets.errors import ConfigError\n"
        "from experiments.config import Config\n"
        "from experiments.orchestration.plan import load_sweep\n"
        "load_sweep('experiments/sweeps/study.yaml')\n"
        "for sets in (['bad.key=1'], ['model.cell=gru', 'model.unit_forget_bias=false']):\n"
        "    try:\n"
        "        Config().with_overrides(sets, strict=True)\n"
        "    except ConfigError as err:\n"
        "        print(err)\n"
        "print('keras' in sys.modules, 'tensorflow' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    lines = out.stdout.splitlines()
    assert lines[0].startswith("--set: 'bad' is not a section")
    assert lines[1].startswith("--set: 'model.unit_forget_bias' is not read by cell 'gru'")
    assert lines[-1] == "False False"


def test_an_older_runs_config_with_none_for_luongs_settings_reads_back_as_the_values():
    """Runs recorded before the paper's settings had names logged `input_feeding: null`."""
    old = Config().with_overrides(["data.name=multi30k", "model.attention=luong"]).to_dict()
    old["model"].update(input_feeding=None, readout=None)
    config = Config.from_dict(old, source="run abc config.yaml")
    assert (config.model.input_feeding, config.model.readout) == (True, "attentional")
    assert config_hash(config) == PINNED_SETS[
        "data.name=multi30k model.attention=luong model.input_feeding=true model.readout=attentional"]
