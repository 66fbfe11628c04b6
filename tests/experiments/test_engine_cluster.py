"""A real two-node Ray cluster on this machine: `rnnlab sweep --address`, the worker node's raylet
killed mid-run, every configuration FINISHED exactly once with each epoch logged once; and
`rnnlab tune --address`, keras-tuner workers on both nodes, every trial once (issue 25).

Ray replaces 127.0.0.1 by the machine's interface address in a multi-node cluster, so the head
and the worker node run in two network namespaces this test creates, joined by a veth pair with
test addresses (TEST-NET-2, RFC 5737) that route nowhere else; the MLflow server runs in the
head's namespace, as does the driver. Every check of the store runs there too. Skipped where
namespaces cannot be made (not root, no iproute2). Slow: two Ray nodes start on a busy 2-core
machine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
HEAD_IP, WORKER_IP = "198.51.100.1", "198.51.100.2"
GCS, MLFLOW = f"{HEAD_IP}:6380", f"http://{HEAD_IP}:5055"
EPOCHS = 6


def sh(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def namespaces():
    """Two network namespaces (head, worker) joined by a veth pair; removed with every process
    left in them afterwards."""
    if shutil.which("ip") is None or os.geteuid() != 0:
        pytest.skip("network namespaces need root and iproute2 (`ip netns add`)")
    tag = uuid.uuid4().hex[:6]
    head, worker = f"rnnlab-head-{tag}", f"rnnlab-worker-{tag}"
    try:
        sh("ip", "netns", "add", head)
    except subprocess.CalledProcessError as err:
        pytest.skip(f"cannot make a network namespace here: {err.stderr.strip()}")
    try:
        sh("ip", "netns", "add", worker)
        sh("ip", "link", "add", f"vh{tag}", "type", "veth", "peer", "name", f"vw{tag}")
        for ns, dev, ip, peer in ((head, f"vh{tag}", HEAD_IP, WORKER_IP),
                                  (worker, f"vw{tag}", WORKER_IP, HEAD_IP)):
            sh("ip", "link", "set", dev, "netns", ns)
            sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "link", "set", dev, "up")
            # a default route via the peer: Ray finds its node address by the route to a public
            # address (a UDP connect sends nothing); nothing leaves the pair
            sh("ip", "-n", ns, "route", "add", "default", "via", peer)
        yield head, worker
    finally:
        for ns in (head, worker):
            with _quiet():
                for pid in sh("ip", "netns", "pids", ns).split():
                    with _quiet():
                        os.kill(int(pid), signal.SIGKILL)
            with _quiet():
                sh("ip", "netns", "del", ns)
        current = Path("/tmp/ray/ray_current_cluster")  # what `ray start --head` left behind
        with _quiet():
            if HEAD_IP in current.read_text():
                current.unlink()


class _quiet:
    def __enter__(self):
        return self

    def __exit__(self, kind, err, tb):
        return kind is not None and issubclass(kind, (OSError, subprocess.CalledProcessError))


def in_ns(ns: str, *argv: str, env: dict, **popen) -> subprocess.Popen:
    return subprocess.Popen(["ip", "netns", "exec", ns, *argv], env=env, cwd=REPO, text=True,
                            **popen)


def wait_until(what: str, check, timeout_s: float = 300, every_s: float = 2.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (found := check()):
            return found
        time.sleep(every_s)
    raise AssertionError(f"timed out waiting for {what}")


CHECK = """
import json, sys, mlflow
runs = mlflow.search_runs(search_all_experiments=True, output_format="list",
                          filter_string="tags.`rnnlab.sweep` = 'cluster'")
client = mlflow.MlflowClient()
print(json.dumps([{"hash": r.data.tags.get("rnnlab.config_hash"), "status": r.info.status,
                   "role": r.data.tags.get("rnnlab.role"),
                   "resumed_from": r.data.tags.get("rnnlab.resumed_from"),
                   "steps": sorted(m.step for m in client.get_metric_history(r.info.run_id,
                                                                            "train_loss"))}
                  for r in runs]))
"""


@pytest.fixture
def cluster(namespaces, tmp_path):
    """A real MLflow server and a Ray head in the head namespace, a Ray worker node in the other,
    one CPU each; (head, worker, env): the environment a driver in the head namespace runs with."""
    head, worker = namespaces
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2",
           "MLFLOW_TRACKING_URI": MLFLOW, "RNNLAB_CHECKPOINT_DIR": str(tmp_path / "ck"),
           "RNNLAB_TUNING_DIR": str(tmp_path / "tuning"),
           "PATH": f"{BIN}:{os.environ['PATH']}", "RNNLAB_CLAIM_SETTLE_S": "0.5",
           # Ray's token authentication, one token for every node and the driver
           "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": uuid.uuid4().hex * 2}
    env.pop("RAY_ADDRESS", None)
    log = open(tmp_path / "processes.log", "w")  # noqa: SIM115 - closed with the test's tmp
    in_ns(head, "mlflow", "server", "--backend-store-uri", f"sqlite:///{tmp_path}/mlflow.db",
          "--artifacts-destination", str(tmp_path / "artifacts"), "--host", HEAD_IP,
          "--port", "5055", "--workers", "1", "--allowed-hosts", f"{HEAD_IP}:5055,{HEAD_IP}",
          env=env, stdout=log, stderr=log)
    ray_node = ["ray", "start", "--num-cpus", "1", "--object-store-memory", str(100 * 2**20),
                "--disable-usage-stats", "--block"]
    in_ns(head, *ray_node, "--head", "--node-ip-address", HEAD_IP, "--port", "6380",
          "--include-dashboard", "false", env=env, stdout=log, stderr=log)
    in_ns(worker, *ray_node, "--address", GCS, "--node-ip-address", WORKER_IP, env=env,
          stdout=log, stderr=log)

    def nodes_alive():
        status = subprocess.run(["ip", "netns", "exec", head, "ray", "status", "--address", GCS],
                                capture_output=True, text=True, env=env, check=False).stdout
        active = status.split("Active:")[-1].split("Pending:")[0]
        return len(re.findall(r"^\s*1 node_", active, re.MULTILINE)) == 2

    wait_until("both Ray nodes", nodes_alive, every_s=5)
    return head, worker, env


def in_head(head: str, env: dict, code: str) -> list:
    """The JSON list that `code` prints, run in the head namespace (where the MLflow server is)."""
    checked = subprocess.run(["ip", "netns", "exec", head, sys.executable, "-c", code],
                             capture_output=True, text=True, env=env, check=True).stdout
    return json.loads(checked.strip().splitlines()[-1])


def test_a_sweep_on_two_nodes_survives_the_worker_nodes_raylet_killed(cluster, tmp_path):
    head, worker, env = cluster
    base = {"data": {"name": "adding", "length": 50, "num_train": 1500, "num_val": 64,
                     "num_test": 64, "batch_size": 32},
            "model": {"units": 8},
            "train": {"epochs": EPOCHS, "early_stopping_patience": None},
            "tracking": {"log_model": False}}
    file = tmp_path / "cluster.yaml"
    file.write_text(yaml.safe_dump({"name": "cluster", "base": base,
                                    "grid": {"model.cell": ["lstm", "gru"],
                                             "train.seed": [0, 1]}}))
    driver = in_ns(head, sys.executable, "-m", "experiments.cli", "sweep", str(file),
                   "--address", GCS, "--workers", "2", env=env, stdout=subprocess.PIPE,
                   stderr=subprocess.STDOUT)

    def raylet_of_worker_node():
        """The worker node's raylet, once it trains a run that has saved a checkpoint."""
        pids = sh("ip", "netns", "pids", worker).split()
        cmdlines = {}
        for pid in pids:
            with _quiet():
                cmdlines[pid] = Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
        training = any("ray::run_configuration" in c for c in cmdlines.values())
        saved = list((tmp_path / "ck").glob("*/*/current"))
        raylet = [pid for pid, c in cmdlines.items() if "raylet/raylet" in c]
        assert driver.poll() is None, driver.communicate()[0]
        return raylet[0] if training and saved and raylet else None

    raylet = wait_until("a run training on the worker node", raylet_of_worker_node, every_s=1)
    os.kill(int(raylet), signal.SIGKILL)
    out, _ = driver.communicate(timeout=900)
    assert driver.returncode == 0, out

    runs = [r for r in in_head(head, env, CHECK) if r["role"] != "sweep"]
    finished = [r for r in runs if r["status"] == "FINISHED"]
    assert len(finished) == 4 and len({r["hash"] for r in finished}) == 4, runs
    assert all(r["steps"] == list(range(EPOCHS)) for r in finished), runs  # each epoch once
    assert all(r["status"] in ("FINISHED", "KILLED") for r in runs), runs
    # the kill hit a run: it ended KILLED and a retried task resumed (or restarted) it
    killed = [r for r in runs if r["status"] == "KILLED"]
    assert killed and any(r["resumed_from"] for r in finished) or "retried" in out, (runs, out)
    print(out)


TRIALS = """
import json, mlflow
runs = mlflow.search_runs(search_all_experiments=True, output_format="list",
                          filter_string="tags.`rnnlab.tuning` = 'cluster-tune'")
print(json.dumps([{"status": r.info.status, "cell": r.data.tags.get("rnnlab.tuning_cell"),
                   "trial": r.data.tags.get("rnnlab.trial_id"),
                   "tuner": r.data.tags.get("rnnlab.tuner_id"),
                   "score": r.data.metrics.get("tuner_score")} for r in runs
                  if r.data.tags.get("rnnlab.trial_id") is not None]))
"""


def test_a_search_on_two_nodes_runs_every_trial_once(cluster, tmp_path):
    """`rnnlab tune --address`: the driver's oracle answers the keras-tuner workers Ray starts on
    both nodes (one CPU each, two workers: one on each) at the head's address."""
    head, _worker, env = cluster
    space = {"name": "cluster-tune", "cells": ["lstm"], "max_trials": 4, "seed": 1,
             "base": {"data": {"name": "adding", "length": 10, "num_train": 64, "num_val": 32,
                               "num_test": 32, "batch_size": 32},
                      "model": {"units": 4},
                      "train": {"epochs": 1, "early_stopping_patience": None},
                      "tracking": {"log_model": False}},
             "space": {"train.lr": {"type": "float", "min": 1e-3, "max": 1e-1,
                                    "sampling": "log"}}}
    file = tmp_path / "space.yaml"
    file.write_text(yaml.safe_dump(space))
    driver = in_ns(head, sys.executable, "-m", "experiments.cli", "tune", str(file),
                   "--address", GCS, "--workers", "2", env=env, stdout=subprocess.PIPE,
                   stderr=subprocess.STDOUT)
    out, _ = driver.communicate(timeout=900)
    assert driver.returncode == 0, out
    trials = in_head(head, env, TRIALS)
    assert sorted(t["trial"] for t in trials) == ["0", "1", "2", "3"], trials  # each once
    assert all(t["status"] == "FINISHED" and t["score"] is not None for t in trials), trials
    assert {t["tuner"] for t in trials} <= {"ray-lstm-0", "ray-lstm-1"}, trials
