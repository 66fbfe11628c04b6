"""Tuning against a real `mlflow server` over HTTP, and keras-tuner's chief/worker mode: one chief
and two workers as separate processes on 127.0.0.1, all logging to that server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import mlflow
import pytest
import yaml

from experiments.orchestration import tune

REPO = Path(__file__).resolve().parents[2]
SPACE = {
    "name": "net-tune",
    "base": {
        "data": {"name": "adding", "length": 10, "num_train": 32, "num_val": 16, "num_test": 16,
                 "batch_size": 16},
        "model": {"units": 4},
        "train": {"epochs": 1, "early_stopping_patience": None, "run_eagerly": True},
        "tracking": {"log_model": False},
    },
    "cells": ["gru"],
    "max_trials": 2,
    "seed": 3,
    "space": {"train.lr": {"type": "float", "min": 1e-3, "max": 1e-1, "sampling": "log"},
              "model.units": {"type": "int", "min": 2, "max": 6}},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"mlflow server at {url} not healthy after {timeout_s} s")


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """`mlflow server`: SQLite backend, artifacts in a local folder served over HTTP."""
    folder = tmp_path_factory.mktemp("server")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (folder / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
         f"sqlite:///{folder}/mlflow.db", "--artifacts-destination", str(folder / "artifacts"),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    try:
        wait_healthy(url, server)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def children(url: str, name: str) -> list:
    client = mlflow.MlflowClient(url)
    parent = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        filter_string=f"tags.`rnnlab.role` = 'tuning' and tags.`rnnlab.tuning` = '{name}'")
    assert len(parent) == 1
    return client.search_runs(
        [parent[0].info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent[0].info.run_id}'")


@pytest.mark.slow
def test_search_against_an_mlflow_server_over_http(mlflow_server, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    space = tune.parse_space({**SPACE, "name": "http-tune"}, source="http.yaml")
    outcome = tune.tune(space, workdir=tmp_path / "wd", out=lambda line: None)
    runs = children(mlflow_server, "http-tune")
    assert len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs)
    assert outcome.cells[0].best_run_id in {r.info.run_id for r in runs}
    client = mlflow.MlflowClient(mlflow_server)
    assert "config.yaml" in {a.path for a in client.list_artifacts(runs[0].info.run_id)}
    mlflow.set_tracking_uri(None)


@pytest.mark.slow
def test_chief_and_two_workers_run_every_trial_once(mlflow_server, tmp_path):
    space_file = tmp_path / "space.yaml"
    space_file.write_text(yaml.safe_dump({**SPACE, "max_trials": 4}))
    address = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server, "PYTHONPATH": str(REPO),
           "TF_CPP_MIN_LOG_LEVEL": "2", "RNNLAB_TUNING_DIR": str(tmp_path / "wd")}
    rnnlab = [sys.executable, "-m", "experiments.cli", "tune", str(space_file)]
    logs = {name: (tmp_path / f"{name}.log").open("w+") for name in ("chief", "w1", "w2")}
    procs = {"chief": subprocess.Popen([*rnnlab, "--chief", address], env=env, cwd=REPO,
                                       stdout=logs["chief"], stderr=subprocess.STDOUT)}
    for name in ("w1", "w2"):
        procs[name] = subprocess.Popen(
            [*rnnlab, "--worker", address, "--tuner-id", f"worker-{name}", "--connect-timeout",
             "300"], env=env, cwd=REPO, stdout=logs[name], stderr=subprocess.STDOUT)
    try:
        codes = {name: p.wait(timeout=900) for name, p in procs.items()}
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
    output = {}
    for name, f in logs.items():
        f.seek(0)
        output[name] = f.read()
        f.close()
    assert codes == {"chief": 0, "w1": 0, "w2": 0}, output
    runs = children(mlflow_server, "net-tune")
    trial_ids = Counter(r.data.tags["rnnlab.trial_id"] for r in runs)
    assert len(trial_ids) == 4 and set(trial_ids.values()) == {1}  # each trial logged once
    assert all(r.info.status == "FINISHED" and "tuner_score" in r.data.metrics for r in runs)
    assert {r.data.tags["rnnlab.tuner_id"] for r in runs} <= {"worker-w1", "worker-w2"}
    started = [line for name in ("w1", "w2") for line in output[name].splitlines()
               if line.startswith("tune 'net-tune' gru trial ")]
    assert len(started) == 4  # each trial ran once, in one worker
    assert "best run" in output["chief"]
