"""Constants and helpers the experiment tests import (a module of its own: every tests/ folder has a
`conftest`, so `from conftest import ...` would find whichever was imported last)."""

from __future__ import annotations

import os
import signal
import threading
import time

import mlflow

TOY_TASKS = ("adding", "copy", "temporal_order", "reber", "spike_timing")
REAL_TASKS = ("imdb", "multi30k")


def logged_model_names(run_id: str) -> list[str]:
    """The names of the MLflow models (MLflow 3 LoggedModels) that run `run_id` logged."""
    experiment_id = mlflow.get_run(run_id).info.experiment_id
    found = mlflow.search_logged_models(experiment_ids=[experiment_id], output_format="list",
                                        filter_string=f"source_run_id = '{run_id}'")
    return [m.name for m in found]


def signal_once_saved(command: list[str], checkpoints, count: int, signum: int,
                      env: dict, cwd, timeout_s: float = 600) -> tuple[int, str]:
    """Run `rnnlab ...` as a subprocess; once `count` runs saved a checkpoint under `checkpoints`
    (a `current` link each), send it `signum`. Returns its exit code and output."""
    import subprocess
    import sys
    import time

    process = subprocess.Popen([sys.executable, "-m", "experiments.cli", *command], cwd=cwd,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    deadline = time.monotonic() + timeout_s
    try:
        while len(list(checkpoints.glob("*/*/current"))) < count:
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, f"no {count} checkpoints after {timeout_s} s"
            time.sleep(0.3)
        process.send_signal(signum)
        output, _ = process.communicate(timeout=timeout_s)
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, output


def kill_a_worker_at_epoch_2(runs: str) -> list[str]:
    """In a thread: SIGKILL the process (a Ray worker, not this one) holding the first RUNNING run
    that matches the MLflow filter `runs` once it has logged 2 epochs; the returned list gets that
    run's id."""
    killed = []

    def watch():
        client = mlflow.MlflowClient()
        while not killed:
            for run in mlflow.search_runs(search_all_experiments=True, output_format="list",
                                          filter_string=f"attributes.status = 'RUNNING' and {runs}"):
                pid = run.data.tags.get("rnnlab.holder_pid")
                if pid and pid != str(os.getpid()) and \
                        len(client.get_metric_history(run.info.run_id, "train_loss")) >= 2:
                    os.kill(int(pid), signal.SIGKILL)
                    killed.append(run.info.run_id)
                    break
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True).start()
    return killed
