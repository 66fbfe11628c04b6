"""Config dataclasses: building, validation messages, overrides, YAML, hashing."""

from __future__ import annotations

import re

import pytest

from datasets.errors import ConfigError
from experiments.config import Config, config_hash, load_config


def test_defaults_and_sections():
    config = Config.from_dict({"data": {"name": "copy", "length": 30}, "model": {"cell": "gru"}})
    assert config.data.name == "copy" and config.data.length == 30
    assert config.model.cell == "gru"
    assert config.train.lr == pytest.approx(1e-3)
    assert set(config.to_dict()) == {"data", "model", "train", "tracking"}


def test_round_trip_through_dict():
    config = Config.from_dict({"model": {"attention": "luong", "match_params": 5000}})
    assert Config.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    ("d", "words"),
    [
        ({"modle": {}}, ["my.yaml", "'modle' is not a section", "data, model, train, tracking"]),
        ({"train": {"learning_rate": 1}}, ["my.yaml", "'train.learning_rate'", "lr", "clipnorm"]),
        ({"model": {"units": "many"}}, ["my.yaml", "'model.units'", "must be int", "'many'"]),
        ({"model": {"bidirectional": 1}}, ["'model.bidirectional'", "must be bool"]),
        ({"train": {"epochs": 2.5}}, ["'train.epochs'", "must be int"]),
        ({"train": {"clipnorm": "x"}}, ["'train.clipnorm'", "must be float or null"]),
        ({"model": {"attention": "dot"}}, ["'model.attention'", "luong, bahdanau"]),
        ({"train": {"optimizer": "adagrad"}}, ["'train.optimizer'", "adam", "sgd"]),
        ({"model": {"projected": "yes"}}, ["'model.projected'", "auto, true, false"]),
        ({"model": {"dropout": 1.5}}, ["'model.dropout'", "[0, 1)"]),
        ({"model": {"layers": 0}}, ["'model.layers'", ">= 1"]),
        ({"data": []}, ["my.yaml", "'data' must be a mapping", "got []"]),
        ({"data": {"drawn_first": "val"}}, ["my.yaml", "'data.drawn_first'", "test, train"]),
    ],
)
def test_bad_input_names_key_and_choices(d, words):
    with pytest.raises(ValueError) as err:
        Config.from_dict(d, source="my.yaml")
    for word in words:
        assert word in str(err.value)


def test_numbers_are_coerced_only_where_safe():
    config = Config.from_dict({"train": {"lr": "3e-3", "clipnorm": 2}})
    assert config.train.lr == pytest.approx(3e-3) and isinstance(config.train.clipnorm, float)
    with pytest.raises(ValueError, match="'train.lr' must be float"):
        Config.from_dict({"train": {"lr": True}})


def test_overrides_parse_yaml_values_and_validate():
    base = Config()
    config = base.with_overrides(
        ["train.lr=3e-3", "data.length=200", "model.attention=null", "model.bidirectional=true"]
    )
    assert config.train.lr == pytest.approx(3e-3)
    assert config.data.length == 200 and config.model.bidirectional is True
    assert base.data.length == 100  # the original is untouched
    with pytest.raises(ValueError, match="'train.lr' must be float"):
        base.with_overrides(["train.lr=fast"])
    with pytest.raises(ValueError, match="'data.lenght' is not a key of section 'data'; valid: name, "):
        base.with_overrides(["data.lenght=3"])
    with pytest.raises(ValueError, match="section.key=value"):
        base.with_overrides(["lr=3"])
    with pytest.raises(ValueError, match="'trian' is not a section; valid: data, model"):
        base.with_overrides(["trian.lr=3"])


def test_load_config_reads_yaml_and_names_the_file(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("data: {name: reber}\nmodel: {cell: peephole}\ntrain: {lr: 1e-2}\n")
    config = load_config(path, overrides=["train.epochs=2"])
    assert (config.data.name, config.model.cell, config.train.epochs) == ("reber", "peephole", 2)
    assert config.train.lr == pytest.approx(1e-2)
    path.write_text("model: {unit: 3}\n")
    with pytest.raises(ValueError, match=str(path)):
        load_config(path)
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_global_clipnorm_reaches_the_optimizer_and_hashes_only_when_set():
    from experiments.run import _optimizer

    config = Config().with_overrides(["train.clipnorm=null", "train.global_clipnorm=1.0"])
    optimizer = _optimizer(config.train)
    assert (optimizer.global_clipnorm, optimizer.clipnorm) == (1.0, None)
    assert config_hash(Config()) == "82eb15f2708e"  # the recorded runs' hashes stay valid
    drawn = Config().with_overrides(["data.drawn_first=train"])  # a key added later, likewise
    assert config_hash(drawn) != config_hash(drawn.with_overrides(["data.drawn_first=test"])) \
        == "82eb15f2708e"
    assert config_hash(config) != config_hash(config.with_overrides(["train.global_clipnorm=null"]))


def test_hash_is_stable_and_ignores_tracking_only():
    config = Config()
    same = config.with_overrides(["tracking.run_name=x", "tracking.enabled=false",
                                  "data.data_dir=/elsewhere", "train.verbose=1"])
    assert config_hash(config) == config_hash(same) == config_hash(Config())
    assert len(config_hash(config)) == 12
    assert config_hash(config) != config_hash(config.with_overrides(["train.seed=1"]))
    assert config_hash(config) != config_hash(config.with_overrides(["data.length=101"]))


def test_flat_keys_are_section_dot_key():
    flat = Config().flat()
    assert flat["model.cell"] == "lstm" and flat["train.lr"] == pytest.approx(1e-3)
    assert all(key.count(".") == 1 for key in flat)


def test_unit_forget_bias_is_kept_for_the_lstm_family_and_dropped_for_other_cells():
    lstm = Config.from_dict({"model": {"cell": "lstm", "unit_forget_bias": False}})
    assert lstm.model.unit_forget_bias is False
    assert config_hash(lstm) != config_hash(Config())
    gru = Config.from_dict({"model": {"cell": "gru", "unit_forget_bias": False}})
    assert gru.model.unit_forget_bias is None  # a GRU has no forget-gate bias: the same run as plain
    assert config_hash(gru) == config_hash(Config.from_dict({"model": {"cell": "gru"}}))
    with pytest.raises(ConfigError, match="model.unit_forget_bias"):
        Config.from_dict({"model": {"unit_forget_bias": "yes"}})


def test_a_lone_run_refuses_a_forget_bias_its_cell_does_not_have():
    with pytest.raises(ConfigError) as err:
        Config.from_dict({"model": {"cell": "gru", "unit_forget_bias": False}}, source="--set",
                         strict=True)
    assert str(err.value) == ("--set: 'model.unit_forget_bias' is not read by cell 'gru', which "
                              "has no forget gate (leave it unset), got False; valid: cells lstm, "
                              "peephole, coupled")
    with pytest.raises(ConfigError, match="'vanilla'"):
        Config().with_overrides(["model.cell=vanilla", "model.unit_forget_bias=true"], strict=True)
    kept = Config.from_dict({"model": {"cell": "coupled", "unit_forget_bias": False}}, strict=True)
    assert kept.model.unit_forget_bias is False
    assert Config.from_dict({"model": {"cell": "gru"}}, strict=True).model.unit_forget_bias is None


MULTI30K = {"name": "multi30k"}


def test_luongs_own_settings_are_stored_as_written_and_keep_its_hash():
    paper = Config.from_dict({"data": MULTI30K, "model": {"attention": "luong"}})
    spelled_out = Config.from_dict({"data": MULTI30K, "model": {
        "attention": "luong", "input_feeding": True, "readout": "attentional"}})
    assert (spelled_out.model.input_feeding, spelled_out.model.readout) == (True, "attentional")
    assert config_hash(spelled_out) == config_hash(paper)
    for ablation in ({"input_feeding": False}, {"readout": "deep"}):
        one = Config.from_dict({"data": MULTI30K, "model": {"attention": "luong", **ablation}})
        assert config_hash(one) != config_hash(paper)
        # a sweep crossing them with Bahdanau's attention (no h~ to feed or read) trains it once
        bahdanau = Config.from_dict({"data": MULTI30K,
                                     "model": {"attention": "bahdanau", **ablation}})
        assert config_hash(bahdanau) == config_hash(
            Config.from_dict({"data": MULTI30K, "model": {"attention": "bahdanau"}}))
        with pytest.raises(ConfigError, match="valid: tasks multi30k with model.attention: luong"):
            Config.from_dict({"data": MULTI30K, "model": {"attention": None, **ablation}},
                             strict=True)


def test_a_lone_run_refuses_what_its_task_does_not_read_and_a_sweep_keeps_it():
    for key, value, takers in (("model.attention", "luong", "tasks multi30k"),
                               ("model.embedding_dim", 8, "tasks imdb, multi30k"),
                               ("data.source_lang", "fr", "tasks multi30k"),
                               ("train.beam_width", 4, "tasks multi30k")):
        with pytest.raises(ConfigError, match=rf"^--set: '{key}' is not read by task 'adding'.*"
                                              rf"valid: {takers}$"):
            Config().with_overrides([f"{key}={value}"], strict=True)
        # a sweep keeps it as written: the task tells such runs apart, and recorded hashes
        # (the study's base sets data.num_train for IMDB too) include it
        swept = Config().with_overrides([f"{key}={value}"])
        assert swept.flat()[key] == value
    assert Config().with_overrides(["data.name=multi30k", "data.source_lang=fr"],
                                   strict=True).data.source_lang == "fr"


def test_a_lone_runs_config_file_is_read_strictly_too(tmp_path):
    path = tmp_path / "gru.yaml"
    path.write_text("model: {cell: gru, unit_forget_bias: false}\n")
    assert load_config(path).model.unit_forget_bias is None  # as a sweep reads it
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: 'model.unit_forget_bias'"):
        load_config(path, strict=True)
