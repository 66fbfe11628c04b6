"""Bad input anywhere (config, --set, sweep file, mlflow.yml, dataset choices) raises one
`ConfigError` on one line naming the source, key, value and what is valid; the CLI exits 2 with no
traceback and before any MLflow run exists. Property-based cases cover the config grammar."""

from __future__ import annotations

import math

import mlflow
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datasets.errors import ConfigError
from experiments import cli
from experiments.config import SECTIONS, Config, load_config
from experiments.orchestration import plan as sweep

TINY = {"data": {"name": "adding", "length": 8, "num_train": 8, "num_val": 8, "num_test": 8},
        "train": {"epochs": 1}}


def run_ids() -> set[str]:
    """The ids of every run in the current store."""
    return {r.info.run_id for r in mlflow.search_runs(search_all_experiments=True,
                                                      output_format="list")}


def test_the_error_carries_its_parts_and_renders_one_line():
    err = ConfigError("my.yaml", "train.optimizer", "must be one of the choices", value="adagrad",
                      valid=("adam", None, True))
    assert (err.source, err.key, err.value) == ("my.yaml", "train.optimizer", "adagrad")
    assert str(err) == ("my.yaml: 'train.optimizer' must be one of the choices, got 'adagrad'; "
                        "valid: adam, null, true")
    assert isinstance(err, ValueError)


@pytest.mark.parametrize(
    ("override", "key", "words"),
    [("train.lr=-1", "train.lr", ["> 0 and finite", "-1.0"]),
     ("train.lr=.nan", "train.lr", ["> 0 and finite", "nan"]),
     ("train.lr=.inf", "train.lr", ["finite"]),
     ("train.clipnorm=0", "train.clipnorm", ["> 0"]),
     ("train.global_clipnorm=-1", "train.global_clipnorm", ["> 0"]),
     ("train.global_clipnorm=1", "train.global_clipnorm", ["together with train.clipnorm"]),
     ("train.early_stopping_patience=-1", "train.early_stopping_patience", [">= 0", "-1"]),
     ("train.seed=-1", "train.seed", [">= 0"]),
     ("data.seed=-2", "data.seed", [">= 0"]),
     ("model.match_params=0", "model.match_params", [">= 1"]),
     ("data.num_train=0", "data.num_train", [">= 1", "got 0"]),
     ("data.length=0", "data.length", [">= 1"]),
     ("model.embedding_dim=0", "model.embedding_dim", [">= 1"]),
     ("train.beam_width=0", "train.beam_width", [">= 1"]),
     ("train.length_penalty=-0.5", "train.length_penalty", [">= 0"]),
     ("model.label_smoothing=1.0", "model.label_smoothing", ["[0, 1)"]),
     ("model.attention_score=cosine", "model.attention_score", ["dot, general, concat"]),
     ("model.readout=shallow", "model.readout", ["attentional, deep", "shallow"])],
)
def test_numeric_ranges_are_checked(override, key, words):
    with pytest.raises(ConfigError) as err:
        Config().with_overrides([override])
    assert err.value.key == key and err.value.source == "--set"
    for word in words:
        assert word in str(err.value)


@pytest.mark.parametrize("text", ["train: {lr: [1, 2\n", "model: !!python/object/apply:os.system ['true']\n",
                                  "a: b: c\n"])
def test_bad_yaml_names_the_file_and_line_and_runs_nothing(tmp_path, text):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value) and "<unicode string>" not in str(err.value)
    assert "line " in err.value.key and "\n" not in str(err.value)


def test_a_python_tag_in_a_set_value_is_refused_naming_the_key():
    with pytest.raises(ConfigError) as err:
        Config().with_overrides(["train.lr=!!python/name:os.system"])
    assert "--set train.lr" in str(err.value) and "<unicode string>" not in str(err.value)


def test_a_sweep_file_with_a_python_tag_is_refused_naming_it(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nbase: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match=str(path)):
        sweep.load_sweep(path)


@pytest.mark.parametrize(
    ("argv_tail", "words"),
    [(["--set", "train.lr=-1"], ["train.lr", "> 0"]),
     (["--set", "train.lr=[1"], ["--set train.lr", "line 1"]),
     (["--set", "data.num_train=0"], ["data.num_train", ">= 1"])],
)
def test_cli_run_exits_2_without_traceback_and_without_a_run(argv_tail, words, capsys, mlflow_store):
    before = run_ids()
    capsys.readouterr()  # MLflow's lines on creating the store's tables
    code = cli.main(["run", "--task", "adding", "--cell", "lstm", *argv_tail])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    for word in words:
        assert word in err
    assert run_ids() == before


def test_a_bad_child_anywhere_in_a_sweep_is_refused_before_any_run(tmp_path, capsys, mlflow_store):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"name": "bad-child", "base": TINY,
                                    "grid": {"train.lr": [0.01, -0.5]}}))
    assert cli.main(["sweep", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "'train.lr'" in err and "-0.5" in err and "Traceback" not in err
    assert mlflow.search_runs(search_all_experiments=True, output_format="list",
                              filter_string="tags.`rnnlab.sweep` = 'bad-child'") == []


def test_sweep_names_with_a_quote_are_escaped_in_mlflow_filters(mlflow_store):
    from experiments.recording import store

    plan = sweep.parse_sweep({"name": "it's", "base": TINY}, source="q.yaml")
    store.configure()
    assert store.find_parent_run("sweep", plan.name) is None  # no "Invalid clause(s) in filter string"
    with pytest.raises(ConfigError, match="name"):
        sweep.parse_sweep({"name": "it's \"both\"", "base": TINY}, source="q.yaml")


# --- property-based: the config grammar ---------------------------------------------------------

KEYS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8))
RANGED = {  # key: (least value, whether the least value itself is refused, type)
    "train.lr": (0.0, True, float), "train.clipnorm": (0.0, True, float),
    "model.units": (1, False, int), "train.epochs": (1, False, int), "train.seed": (0, False, int),
    "data.batch_size": (1, False, int), "model.match_params": (1, False, int),
    "train.early_stopping_patience": (0, False, int)}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(KEYS, st.dictionaries(KEYS, SCALARS, max_size=3), max_size=3))
def test_any_mapping_builds_a_config_or_raises_config_error(raw):
    try:
        config = Config.from_dict(raw, source="prop.yaml")
    except ConfigError as err:
        assert str(err).startswith("prop.yaml: '") and "\n" not in str(err)
    else:
        assert set(raw) <= set(SECTIONS) and isinstance(config, Config)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(RANGED)),
       st.one_of(st.integers(-5, 5), st.floats(-2, 2), st.sampled_from([math.nan, math.inf])))
def test_a_ranged_key_is_accepted_exactly_inside_its_range(key, value):
    low, strict, kind = RANGED[key]
    section, _, name = key.partition(".")
    try:
        config = Config.from_dict({section: {name: value}}, source="prop.yaml")
    except ConfigError as err:
        assert err.key == key
        wrong_type = kind is int and isinstance(value, float)
        assert wrong_type or not math.isfinite(value) or (value <= low if strict else value < low)
    else:
        got = getattr(getattr(config, section), name)
        assert math.isfinite(got) and (got > low if strict else got >= low)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=20))
def test_any_set_item_parses_or_raises_config_error(item):
    try:
        Config().with_overrides([item])
    except ConfigError as err:
        assert str(err).startswith("--set") and "\n" not in str(err)
