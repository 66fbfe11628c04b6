"""The `rnnlab` command line, through `experiments.cli.main([...])` (the console script itself runs in
the tiny_sweep fixture of conftest.py)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import mlflow
import pytest

from experiments import cli


@pytest.fixture
def temp_store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def test_cells_lists_the_five_cells(capsys):
    import cells

    assert cli.main(["cells"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert names == cells.names()


def test_ui_command_binds_localhost_on_the_configured_store(temp_store, capsys):
    assert cli.main(["ui", "--print-command", "--port", "5123"]) == 0
    argv = shlex.split(capsys.readouterr().out.strip())
    assert argv[1:4] == ["-m", "mlflow", "ui"]
    assert argv[argv.index("--backend-store-uri") + 1] == temp_store
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert argv[argv.index("--port") + 1] == "5123"
    assert argv[argv.index("--workers") + 1] == "1"


def test_data_info_prints_the_loaders_info_with_overrides(capsys):
    assert cli.main(["data", "info", "adding", "--set", "data.length=23",
                     "--set", "data.num_train=7"]) == 0
    out = capsys.readouterr().out
    assert "23" in out and "'train': 7" in out


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["data", "info", "nope"], ["'nope'", "adding", "imdb"]),
        (["data", "info", "adding", "--set", "model.cell=gru"], ["model.cell=gru", "data.key"]),
        (["data", "info", "adding", "--set", "data.lenght=5"], ["data.lenght", "length"]),
        (["run", "--task", "adding", "--cell", "lsmt"], ["model.cell", "'lsmt'", "peephole"]),
        (["run", "--task", "adder", "--cell", "lstm"], ["data.name", "'adder'", "adding"]),
        (["run", "--task", "adding", "--cell", "lstm", "--set", "train.lr=fast"],
         ["train.lr", "float"]),
    ],
)
def test_bad_input_exits_2_with_one_message_and_runs_nothing(argv, needles, temp_store, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    for needle in needles:
        assert needle in err
    assert not Path(temp_store.removeprefix("sqlite:///")).exists()  # no store was even opened


def test_run_trains_one_configuration_and_records_it(mlflow_store, capsys):
    argv = ["run", "--task", "adding", "--cell", "peephole", "--set", "data.length=10",
            "--set", "data.num_train=64", "--set", "data.num_val=16", "--set", "data.num_test=16",
            "--set", "train.epochs=1", "--set", "model.units=4", "--set", "tracking.log_model=false"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "peephole × adding FINISHED" in out and "test_mse" in out
    run_id = re.search(r"run ([0-9a-f]{32})", out).group(1)
    run = mlflow.get_run(run_id)
    assert run.data.params["model.cell"] == "peephole" and run.data.params["data.length"] == "10"
    assert run.data.params["train.verbose"] == "2"  # Keras's line per epoch, unless set otherwise
    assert "rnnlab.sweep" not in run.data.tags


def test_rnnlab_stops_clearly_when_datasets_is_hugging_faces(monkeypatch, capsys):
    """Our `datasets` shares its name with Hugging Face's: the CLI must say so, not crash later."""
    import types

    impostor = types.ModuleType("datasets")
    impostor.__file__ = "/site-packages/datasets/__init__.py"
    monkeypatch.setitem(__import__("sys").modules, "datasets", impostor)
    with pytest.raises(SystemExit, match="Hugging Face's `datasets`") as stop:
        cli.main(["cells"])
    assert "/site-packages/datasets/__init__.py" in str(stop.value)
    assert capsys.readouterr().out == ""  # nothing ran
