"""The `rnnlab` command line, through `experiments.cli.main([...])` (the console script itself runs in
the tiny_sweep fixture of conftest.py)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import mlflow
import pytest

from experiments import cli, console


@pytest.fixture
def temp_store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def test_cells_lists_the_five_cells_with_their_equations(capsys):
    import cells

    assert cli.main(["cells"]) == 0
    out = capsys.readouterr().out
    headers = [line for line in out.splitlines() if line and not line.startswith(" ")]
    assert [line.split()[0].rstrip(":") for line in headers] == cells.names()
    assert "c_t = f_t ⊙ c_{t-1} + (1 − f_t) ⊙ g_t" in out  # the coupled cell's docstring
    assert "(also cifg)" in out


def test_cells_reads_the_sources_without_importing_keras():
    """`rnnlab cells` parses cells/*.py: importing them would load Keras and its backend."""
    import subprocess
    import sys

    code = ("import sys; from experiments import cli; cli.main(['cells']); "
            "sys.exit('keras' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "GRUCell" in done.stdout


def test_tasks_lists_every_task_with_a_line_and_the_generated_ones_goals(capsys):
    import datasets

    assert cli.main(["tasks"]) == 0
    out = capsys.readouterr().out
    starts = [line.split()[0] for line in out.splitlines() if line and not line[0].isspace()]
    assert starts[:len(datasets.names())] == datasets.names()
    assert "Adding problem" in out and "mse (lower is better)" in out
    assert "solved when accuracy > 0.95" in out  # temporal order


def test_a_typo_gets_a_suggestion_and_exit_2(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["rnu"])
    assert stop.value.code == 2
    assert "unknown command 'rnu'; did you mean 'run'?" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["data", "inf", "adding"])
    assert "did you mean 'info'?" in capsys.readouterr().err


def test_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as stop:
        cli.main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == \
        f"rnnlab {version('rnn-cell-lab')}"


def test_report_says_which_runs_it_needs(temp_store, capsys):
    assert cli.main(["report"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rnnlab report: say which runs: --sweep NAME") and "--all" in err
    assert not Path(temp_store.removeprefix("sqlite:///")).exists()


def test_native_start_up_noise_is_dropped_and_the_rest_kept(capfd):
    import os

    noise = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
             "I0000 00:00:1795846523.470331   13336 cudart_stub.cc:31] Could not find cuda drivers\n"
             "E0000 00:00:1795846548.333345   13336 cuda_platform.cc:52] failed call to cuInit: X\n"
             "E0000 00:00:1796198360.773844    9800 mkl_util.h:1] oneDNN supports DT_BOOL only on "
             "platforms with AVX-512. Falling back to the default Eigen-based implementation if "
             "present.\n")
    kept = "E0000 00:00:1.5   1 bfc_allocator.cc:1] Out of memory\nTraceback: a real error\n"
    with console.native_noise_filtered():
        os.write(2, (noise + kept).encode())
    assert capfd.readouterr().err == kept


def test_a_run_on_a_new_store_starts_quietly_however_it_is_started(tmp_path):
    """`python -m experiments.cli` with no TF_CPP_MIN_LOG_LEVEL or MLFLOW_LOGGING_LEVEL set (not
    through the Makefile): no TensorFlow start-up lines, no MLflow INFO lines about new tables."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "MLFLOW_LOGGING_LEVEL")}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path}/new.db"
    sets = ["data.length=5", "data.num_train=32", "data.num_val=16", "data.num_test=16",
            "train.epochs=1", "tracking.log_model=false"]
    done = subprocess.run(
        [sys.executable, "-m", "experiments.cli", "run", "--task", "adding", "--cell", "vanilla",
         *[arg for item in sets for arg in ("--set", item)]],
        capture_output=True, text=True, timeout=300, check=False, env=env,
        cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "new.db").exists()
    for noise in ("INFO mlflow", "Creating initial MLflow database tables", "I0000 ", "E0000 ",
                  "absl::InitializeLog"):
        assert noise not in done.stderr, done.stderr


def test_ui_warns_when_it_listens_beyond_this_machine(temp_store, capsys, monkeypatch):
    started = []
    from experiments.serving import ui

    monkeypatch.setattr(ui, "serve",
                        lambda argv, health, on_ready: on_ready() or started.append(argv) or 0)
    assert cli.main(["ui", "--host", "0.0.0.0", "--port", "5124"]) == 0
    out, err = capsys.readouterr()
    assert "warning: --host 0.0.0.0" in err
    assert "http://127.0.0.1:5124" in out
    assert started[0][started[0].index("--host") + 1] == "0.0.0.0"
    assert cli.main(["ui", "--port", "5124"]) == 0
    assert "warning" not in capsys.readouterr().err


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
    assert "sequence length    23" in out and "train 7, val 1,000" in out
    assert "{" not in out and "'" not in out  # no raw Python dicts


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
        (["run", "--task", "adding", "--cell", "gru", "--set", "model.unit_forget_bias=false"],
         ["model.unit_forget_bias", "'gru'", "no forget gate", "lstm, peephole, coupled"]),
        (["run", "--task", "adding", "--cell", "lstm", "--set", "train.distribution=horovod"],
         ["train.distribution", "'horovod'", "mirrored, data_parallel"]),
    ],
)
def test_bad_input_exits_2_with_one_message_and_runs_nothing(argv, needles, temp_store, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.count(f"rnnlab {argv[0]}:") == 1  # one prefix, not "rnnlab run: rnnlab run: ..."
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


def test_a_sweep_still_crosses_the_forget_bias_with_every_cell(tmp_path, capsys):
    """Only a lone run refuses a setting its cell lacks; a sweep drops it (one GRU run, not two)."""
    sweep_file = tmp_path / "ablation.yaml"
    sweep_file.write_text("name: ablation\nbase: {data: {name: adding}}\n"
                          "grid: {model.cell: [gru, lstm], model.unit_forget_bias: [null, false]}\n")
    assert cli.main(["sweep", str(sweep_file), "--dry-run"]) == 0
    assert cli.main(["sweep", str(sweep_file), "--dry-run", "--set",
                     "model.unit_forget_bias=false"]) == 0
    out = capsys.readouterr().out
    assert "3 runs" in out and "2 runs" in out, out


def test_a_sweep_checks_every_run_against_the_replicas_before_any_mlflow_run(tmp_path, temp_store,
                                                                           monkeypatch, capsys):
    from datasets.errors import ConfigError
    from experiments import distribution

    checked = []

    def three_replicas(config, source):
        checked.append(config.train.distribution)
        raise ConfigError(source, "data.batch_size", "must be a multiple of the 3 replicas")

    monkeypatch.setattr(distribution, "check", three_replicas)
    sweep_file = tmp_path / "s.yaml"
    sweep_file.write_text("name: s\nbase: {data: {name: adding, batch_size: 16}}\n")
    assert cli.main(["sweep", str(sweep_file), "--distribution", "mirrored"]) == 2
    assert checked == ["mirrored"]
    assert "'data.batch_size' must be a multiple of the 3 replicas" in capsys.readouterr().err
    assert not Path(temp_store.removeprefix("sqlite:///")).exists()


def test_distribution_flag_sets_train_distribution(monkeypatch):
    import experiments.run

    seen = []

    def fake_run(config):
        seen.append(config)
        raise KeyboardInterrupt  # stop before training

    monkeypatch.setattr(experiments.run, "run", fake_run)
    with pytest.raises(KeyboardInterrupt):
        cli.main(["run", "--task", "adding", "--cell", "gru", "--distribution", "mirrored"])
    assert seen[0].train.distribution == "mirrored"
    with pytest.raises(SystemExit) as stop:
        cli.main(["run", "--task", "adding", "--cell", "gru", "--distribution", "horovod"])
    assert stop.value.code == 2


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
