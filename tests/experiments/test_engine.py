"""The sweep's engines: this process (the default: no Ray imported or started) and Ray tasks on
this machine (`--workers N`); bad engine input is one line and exit 2 before anything trains."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import mlflow
import pytest
import yaml
from experiment_fixtures import kill_a_worker_at_epoch_2, signal_once_saved

from experiments import cli
from experiments.guards import stop_on_signals
from experiments.orchestration import engine, launch, plan
from experiments.recording import store

REPO = Path(__file__).resolve().parents[2]
TINY_SWEEP = {
    "data": {"name": "adding", "length": 10, "num_train": 64, "num_val": 32, "num_test": 32,
             "batch_size": 32},
    "model": {"units": 4},
    "train": {"epochs": 2, "early_stopping_patience": None},
    "tracking": {"log_model": False},
}
LONGER = {"length": 50, "num_train": 2000}  # runs long enough to be killed mid-way, even on a quiet machine
EPOCHS = 20


def sweep_file(folder: Path, name: str, grid: dict, data: dict | None = None, **train) -> Path:
    base = {k: dict(v) for k, v in TINY_SWEEP.items()}
    base["train"].update(train)
    base["data"].update(data or {})
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "base": base, "grid": grid}))
    return path


def test_workers_2_finish_every_configuration_exactly_once(lab):
    """`rnnlab sweep FILE --workers 2`: four configurations as Ray tasks, two at once, each
    claimed and run by the launch path in a worker: one FINISHED child per config hash."""
    file = sweep_file(lab, "ray-two", {"model.cell": ["lstm", "gru"], "train.seed": [0, 1]})
    planned = plan.load_sweep(file)
    ray_engine = engine.engine_for(engine.EngineSettings(workers=2), [p.config for p in planned.runs])
    lines = []
    try:
        outcomes = launch.run_sweep(planned, engine=ray_engine, out=lines.append)
    finally:
        ray_engine.close()
    assert [o.status for o in outcomes] == ["FINISHED"] * 4, [
        (o.run.config.model.cell, o.run.config.train.seed, o.status, o.reason)
        for o in outcomes if o.status != "FINISHED"]
    assert "on Ray, 2 at once, 1 CPU(s) per run" in lines[0]
    marks = tuple(f"  {mark} " for mark in launch.MARKS.values())
    assert sum(line.startswith(marks) for line in lines) == 4  # a result line per run
    parent = mlflow.get_run(store.find_parent_run("sweep", "ray-two"))
    assert parent.info.status == "FINISHED"
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list",
                              filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert sorted(r.data.tags["rnnlab.config_hash"] for r in runs) == \
        sorted(p.hash for p in planned.runs)  # one child per configuration, none twice
    assert all(r.info.status == "FINISHED" for r in runs)
    holders = {r.data.tags["rnnlab.holder_pid"] for r in runs}
    assert str(os.getpid()) not in holders  # trained in Ray's workers, not here
    assert all(dict(r.data.params).get("data.length") == "10" for r in runs)


def test_without_workers_or_address_no_ray_is_imported(lab):
    file = sweep_file(lab, "no-ray", {"model.cell": ["lstm"]}, epochs=1)
    code = ("import sys; from experiments import cli; rc = cli.main(['sweep', sys.argv[1]]); "
            "print('ray imported' if 'ray' in sys.modules else 'no ray'); sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code, str(file)], cwd=REPO, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=600,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "no ray"


@pytest.mark.parametrize("flags, says", [
    (["--workers", "999"], "'--workers' is more than this machine can hold"),
    (["--workers", "0"], "'--workers' must be at least 1"),
    (["--workers", "2", "--distribution", "mirrored"], "'train.distribution'"),
    (["--address", "127.0.0.1:9"], "'--address' does not answer"),
    (["--workers", "1", "--gpus-per-run", "-1"], "'--gpus-per-run'"),
])
def test_bad_engine_input_is_one_line_exit_2_and_nothing_trained(lab, capsys, flags, says):
    file = sweep_file(lab, "bad-engine", {"model.cell": ["lstm"]}, epochs=1)
    assert cli.main(["sweep", str(file), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rnnlab sweep: ") and says in err[0], err
    assert "ray" not in sys.modules or not __import__("ray").is_initialized()
    assert not (lab / "mlflow.db").exists()  # no MLflow run, not even a store


def test_thread_settings_follow_a_runs_cpu_share():
    one = engine.thread_env(1)
    assert one["TF_NUM_INTRAOP_THREADS"] == one["OMP_NUM_THREADS"] == "1"
    assert "intra_op_parallelism_threads=1" in one["XLA_FLAGS"]
    assert engine.thread_env(4)["TF_NUM_INTEROP_THREADS"] == "4"


def test_the_compile_cache_lies_in_its_folder_keeps_the_users_settings_and_can_be_off():
    on = engine.compile_cache_env({"RNNLAB_COMPILE_CACHE": "/c"})
    assert on["JAX_COMPILATION_CACHE_DIR"] == "/c/jax"
    assert on["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "0"  # small programs too
    assert engine.compile_cache_env({"JAX_COMPILATION_CACHE_DIR": "/mine"})[
        "JAX_COMPILATION_CACHE_DIR"] == "/mine"
    default = engine.compile_cache_env({})["JAX_COMPILATION_CACHE_DIR"]
    assert default.endswith("/.cache/rnnlab/compile/jax") and os.path.isabs(default)
    assert engine.compile_cache_env({"RNNLAB_COMPILE_CACHE": "off"}) == {}


@pytest.mark.slow
def test_a_worker_killed_mid_run_is_retried_and_the_run_resumes_from_its_checkpoint(lab):
    """SIGKILL to the Ray worker training a configuration: Ray retries the task, whose claim finds
    the killed worker provably gone (same host), takes its run over and resumes it from the
    checkpoint; every epoch is logged once and the configuration finishes once."""
    file = sweep_file(lab, "ray-kill", {"model.cell": ["lstm"]}, LONGER, epochs=EPOCHS)
    planned = plan.load_sweep(file)
    ray_engine = engine.engine_for(engine.EngineSettings(workers=1), [p.config for p in planned.runs])
    killed = kill_a_worker_at_epoch_2("tags.`rnnlab.sweep` = 'ray-kill'")
    try:
        [outcome] = launch.run_sweep(planned, engine=ray_engine, out=lambda line: None)
    finally:
        ray_engine.close()
    assert killed and outcome.status == "FINISHED"
    resumed = mlflow.get_run(outcome.run_id)
    assert resumed.data.tags["rnnlab.resumed_from"] == killed[0]
    assert int(resumed.data.tags["rnnlab.resumed_epoch"]) >= 1  # not from scratch
    history = mlflow.MlflowClient().get_metric_history(outcome.run_id, "train_loss")
    assert sorted(m.step for m in history) == list(range(EPOCHS))
    assert mlflow.get_run(killed[0]).info.status == "KILLED"


@pytest.mark.slow
def test_ctrl_c_on_the_driver_ends_the_workers_runs_killed_and_the_rerun_resumes_them(lab):
    """SIGINT to the driver while two Ray workers train: their runs end KILLED with the signal (the
    workers stopped), the parent KILLED; the same sweep again resumes both from checkpoints."""
    file = sweep_file(lab, "ray-stop", {"model.cell": ["lstm", "gru"]}, LONGER, epochs=200)
    planned = plan.load_sweep(file)
    configs = [p.config for p in planned.runs]

    def interrupt_once_both_saved():
        while len(list((lab / "ck").glob("*/*/current"))) < 2:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGINT)

    ray_engine = engine.engine_for(engine.EngineSettings(workers=2), configs)
    threading.Thread(target=interrupt_once_both_saved, daemon=True).start()
    try:
        # Stopped, or Ray's own KeyboardInterrupt when the signal lands in its wait
        with pytest.raises(KeyboardInterrupt), stop_on_signals():
            launch.run_sweep(planned, engine=ray_engine, out=lambda line: None)
    finally:
        ray_engine.close()
    parent_id = store.find_parent_run("sweep", "ray-stop")
    killed = mlflow.search_runs(search_all_experiments=True, output_format="list",
                                filter_string=f"tags.mlflow.parentRunId = '{parent_id}'")
    assert sorted((r.info.status, r.data.tags["rnnlab.reason"]) for r in killed) == \
        [("KILLED", "stopped by SIGINT")] * 2
    assert mlflow.get_run(parent_id).info.status == "KILLED"

    short = plan.load_sweep(file)
    ray_engine = engine.engine_for(engine.EngineSettings(workers=2), configs)
    try:
        outcomes = launch.run_sweep(short, engine=ray_engine, out=lambda line: None)
    finally:
        ray_engine.close()
    assert [o.status for o in outcomes] == ["FINISHED", "FINISHED"]
    for o in outcomes:
        assert mlflow.get_run(o.run_id).data.tags["rnnlab.resumed_from"] in \
            {r.info.run_id for r in killed}


@pytest.mark.slow
def test_sigterm_to_a_workers_2_driver_ends_its_runs_killed_and_the_rerun_finishes_them(lab):
    """SIGTERM to a real `rnnlab sweep --workers 2` process while both workers train: exit 143,
    both runs and the parent KILLED "stopped by SIGTERM"; the same command again finishes both,
    each resumed from its killed run's checkpoint."""
    file = sweep_file(lab, "ray-term", {"model.cell": ["lstm", "gru"]}, LONGER, epochs=10)
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    code, output = signal_once_saved(["sweep", str(file), "--workers", "2"], lab / "ck", 2,
                                     signal.SIGTERM, env, REPO)
    assert code == 143, output
    parent_id = store.find_parent_run("sweep", "ray-term")
    killed = mlflow.search_runs(search_all_experiments=True, output_format="list",
                                filter_string=f"tags.mlflow.parentRunId = '{parent_id}'")
    assert sorted((r.info.status, r.data.tags["rnnlab.reason"]) for r in killed) == \
        [("KILLED", "stopped by SIGTERM")] * 2, output
    assert mlflow.get_run(parent_id).info.status == "KILLED"

    again = subprocess.run([sys.executable, "-m", "experiments.cli", "sweep", str(file),
                            "--workers", "2"], cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=900, check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list",
                              filter_string=f"tags.mlflow.parentRunId = '{parent_id}' and "
                                            "attributes.status = 'FINISHED'")
    assert len(runs) == 2
    assert {r.data.tags["rnnlab.resumed_from"] for r in runs} == {r.info.run_id for r in killed}
    for r in runs:  # every epoch once, the killed run's first ones copied
        history = mlflow.MlflowClient().get_metric_history(r.info.run_id, "train_loss")
        assert sorted(m.step for m in history) == list(range(10))
