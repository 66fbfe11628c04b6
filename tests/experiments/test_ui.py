"""`rnnlab ui`'s process handling and the runs-table view, without a browser (test_browser.py
opens the real UI)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import mlflow
import psutil

from experiments.recording import store, views

# a stand-in server: a worker in its own session (as MLflow's huey job workers are), then waits
FAKE_SERVER = textwrap.dedent("""
    import subprocess, sys, time
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"],
                              start_new_session=True)
    print(worker.pid, flush=True)
    time.sleep(300)
""")


def test_serve_stops_descendants_in_other_process_groups(tmp_path):
    """SIGTERM to `serve` stops the server and a worker that left the server's process group."""
    code = ("import sys; from experiments.serving import ui; "
            f"sys.exit(ui.serve([sys.executable, '-c', {FAKE_SERVER!r}], grace_s=3))")
    pids = tmp_path / "pids"
    with pids.open("w") as out:
        rnnlab = subprocess.Popen([sys.executable, "-c", code], stdout=out)
    deadline = time.monotonic() + 60
    while not pids.read_text().strip() and time.monotonic() < deadline:
        time.sleep(0.2)
    worker = psutil.Process(int(pids.read_text()))
    family = psutil.Process(rnnlab.pid).children(recursive=True)
    assert worker in family and os.getpgid(worker.pid) == worker.pid  # its own process group
    time.sleep(1.5)  # serve() has looked at its family at least once
    rnnlab.send_signal(signal.SIGTERM)
    assert rnnlab.wait(timeout=30) == 0
    _, alive = psutil.wait_procs(family, timeout=10)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]


def test_the_view_lists_each_tasks_key_metric_and_who_the_run_is():
    import datasets
    from experiments import goals

    columns = views.columns()
    for task in datasets.names():  # every generated task's declared goal metric is a column
        spec = goals.spec(task, {})
        if spec is not None:
            assert f"metrics.`test_{spec.goal.metric}`" in columns, task
    for column in ("metrics.`test_accuracy`", "metrics.`test_bleu`", "tags.`rnnlab.task`",
                   "tags.`rnnlab.cell`", "params.`data.length`", "params.`train.seed`",
                   "tags.`rnnlab.status`"):
        assert column in columns
    assert len(columns) == len(set(columns))


def test_every_new_experiment_carries_the_view_and_an_old_one_gets_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    client = mlflow.MlflowClient(store.tracking_uri())
    new = client.get_experiment(store.ensure_experiment("fresh"))
    envelope = json.loads(new.tags[views.VIEW_TAG])
    assert envelope["name"] == views.VIEW_NAME and isinstance(envelope["createdAt"], int)
    state = json.loads(envelope["state"])
    assert state["selectedColumns"] == views.columns()
    assert state["orderByKey"] == "tags.`mlflow.runName`" and state["orderByAsc"] is True
    assert new.tags[views.KIND_TAG] == views.KIND
    old = client.create_experiment("old")  # recorded before the view existed
    assert views.VIEW_TAG not in client.get_experiment(old).tags
    store.ensure_experiment("old")
    assert views.has_view(client.get_experiment(old).tags)


def test_a_store_that_refuses_the_view_still_gets_the_runs_table(tmp_path, monkeypatch):
    from experiments.serving import ui

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    experiment_id = mlflow.MlflowClient(uri).create_experiment(store.settings().experiment_pattern)

    def refuse(*_):
        raise PermissionError("read-only store")

    monkeypatch.setattr(views, "ensure_view", refuse)
    assert ui.ui_address(uri, "http://127.0.0.1:5000") == \
        f"http://127.0.0.1:5000/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
