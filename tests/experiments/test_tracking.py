"""mlflow.yml settings, URI resolution, experiment names, parent runs and finished children."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from experiments.config import Config, config_hash
from experiments.recording import recorder, store


@pytest.fixture
def yml(tmp_path, monkeypatch):
    """Write a settings file and point RNNLAB_MLFLOW_CONFIG at it; MLFLOW_TRACKING_URI unset."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    def write(text: str, name: str = "mlflow.yml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        monkeypatch.setenv("RNNLAB_MLFLOW_CONFIG", str(path))
        return path

    return write


def test_repo_settings_default_to_sqlite_in_the_project(monkeypatch):
    monkeypatch.delenv("RNNLAB_MLFLOW_CONFIG", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root = Path(store.__file__).resolve().parents[2]
    assert store.settings().path == root / "mlflow.yml"
    assert store.tracking_uri() == f"sqlite:///{root / 'mlflow.db'}"
    assert store.artifact_location() == str(root / "mlruns")


def test_relative_paths_resolve_beside_the_file_and_the_env_wins(yml, tmp_path, monkeypatch):
    yml("tracking_uri: sqlite:///store/runs.db\nartifact_location: art\n")
    assert store.tracking_uri() == f"sqlite:///{tmp_path / 'store' / 'runs.db'}"
    assert store.artifact_location() == str(tmp_path / "store" / "art")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert store.tracking_uri() == "http://127.0.0.1:5000"
    assert store.artifact_location() is None  # the server decides


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("tracking_url: x\n", ["'tracking_url' is not a key", "tracking_uri", "experiment_pattern"]),
        ("log: {plot: true}\n", ["'log.plot' is not a key", "plots"]),
        ("log: {model: 1}\n", ["'log.model' must be bool"]),
        ("experiment_pattern: 'x-{sweep}'\n", ["unknown field 'sweep'", "{task}, {cell}"]),
        ("tags: [a]\n", ["'tags' must be a mapping"]),
    ],
)
def test_bad_settings_name_the_file_and_key(yml, text, words):
    path = yml(text, name=f"bad{abs(hash(text))}.yml")
    with pytest.raises(ValueError) as err:
        store.settings()
    for word in [str(path), *words]:
        assert word in str(err.value)


def test_experiment_name_from_pattern_or_config(yml):
    yml("experiment_pattern: 'rnnlab-{task}-{cell}'\n", name="pattern.yml")
    config = Config.from_dict({"data": {"name": "copy"}, "model": {"cell": "gru"}})
    assert store.experiment_name(config) == "rnnlab-copy-gru"
    named = config.with_overrides(["tracking.experiment=mine"])
    assert store.experiment_name(named) == "mine"


def test_configure_sets_uri_and_experiment(mlflow_store):
    uri = store.configure("configure-test")
    assert uri == mlflow.get_tracking_uri() == f"sqlite:///{mlflow_store}/mlflow.db"
    experiment = mlflow.get_experiment_by_name("configure-test")
    assert experiment.artifact_location.endswith(str(mlflow_store / "mlruns"))


def test_children_of_a_parent_are_found_by_hash(mlflow_store, tiny_config, monkeypatch, tmp_path,
                                                offline):
    from experiments.run import run

    finished = tiny_config("adding", "gru", tracking={"enabled": True})
    skipped = tiny_config("imdb", "gru", tracking={"enabled": True})
    monkeypatch.setenv("RNNLAB_DATA_DIR", str(tmp_path / "none"))
    with store.start_parent_run("unit-sweep", experiment="sweeps-test") as parent:
        done = run(finished, parent_run_id=parent.info.run_id, tags={"rnnlab.sweep": "unit-sweep"})
        assert run(skipped, parent_run_id=parent.info.run_id).status == "SKIPPED"
    children = store.find_finished_children(parent.info.run_id)
    assert children == {config_hash(finished): done.run_id}
    child = mlflow.get_run(done.run_id)
    assert child.info.experiment_id == parent.info.experiment_id
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert mlflow.get_run(parent.info.run_id).data.tags["rnnlab.sweep"] == "unit-sweep"
    assert child.data.tags["rnnlab.versions"] == store.versions_text()  # every run logs its own


def test_git_commit_is_a_commit_hash():
    commit = store.git_commit()
    assert commit == "unknown" or len(commit.split("+")[0]) == 40


def test_environment_tags_hold_the_runs_package_versions():
    import keras

    tags = store.environment_tags()
    logged = dict(part.split(" ") for part in tags["rnnlab.versions"].split(", "))
    backend = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[keras.backend.backend()]
    assert set(logged) == {"python", "rnn-cell-lab", "keras", backend, "numpy", "mlflow"}
    assert logged["keras"] == keras.__version__
    assert logged["python"].count(".") == 2


@pytest.mark.parametrize("commit, dirty", [("0123abcd+dirty", "true"), ("0123abcd", "false")])
def test_a_dirty_tree_is_tagged_and_warned_about(commit, dirty, monkeypatch, capsys):
    monkeypatch.setattr(store, "git_commit", lambda: commit)
    tags = store.environment_tags()
    assert tags["rnnlab.dirty"] == dirty and tags["rnnlab.git_commit"] == commit
    assert store.warn_if_dirty("rnnlab sweep") == (dirty == "true")
    err = capsys.readouterr().err
    if dirty == "true":
        assert err.startswith("rnnlab sweep: warning: the working tree has uncommitted changes")
        assert "rnnlab.dirty=true" in err and commit in err
    else:
        assert err == ""


class Started(Exception):
    """Raised where a sweep or a search would open its MLflow parent run."""


def test_sweep_and_tune_warn_before_they_start(monkeypatch, tmp_path, capsys, mlflow_store):
    from experiments.orchestration import launch, tune
    from experiments.orchestration.plan import parse_sweep

    def started(*args, **kwargs):
        raise Started

    monkeypatch.setattr(store, "git_commit", lambda: "0123abcd+dirty")
    monkeypatch.setattr(launch, "_open_parent", started)
    monkeypatch.setattr(store, "find_parent_run", started)
    base = {"data": {"name": "adding", "length": 5}}
    with pytest.raises(Started):
        launch.run_sweep(parse_sweep({"name": "dirty", "base": base}), out=lambda line: None)
    assert capsys.readouterr().err.startswith("rnnlab sweep: warning: the working tree")
    space = tune.parse_space({"name": "dirty", "base": base,
                              "space": {"train.lr": {"type": "float", "min": 0.1, "max": 0.2}}})
    with pytest.raises(Started):
        tune.tune(space, workdir=tmp_path, out=lambda line: None)
    assert capsys.readouterr().err.startswith("rnnlab tune: warning: the working tree")


def test_outside_git_no_dirty_tag_is_guessed(monkeypatch):
    monkeypatch.setattr(store, "git_commit", lambda: "unknown")
    assert "rnnlab.dirty" not in store.environment_tags()


def test_run_names_tell_luongs_ablations_apart():
    """In the MLflow UI's run list the paper's model and its ablations must not share a name."""
    names = [recorder.run_name(Config.from_dict({"data": {"name": "multi30k"}, "model": {"cell": "gru", **m}}))
             for m in ({"attention": "luong"}, {"attention": "luong", "readout": "deep"},
                       {"attention": "luong", "input_feeding": False, "readout": "deep"},
                       {"attention": "bahdanau", "readout": "deep"})]
    assert names == ["multi30k-luong-gru-seed0", "multi30k-luong-deep-gru-seed0",
                     "multi30k-luong-nofeed-deep-gru-seed0", "multi30k-bahdanau-gru-seed0"]
