"""Claims: a configuration is claimed (a RUNNING child with a lease) before it is trained, so sweeps
sharing a store never train one configuration twice and together finish the grid."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import mlflow
import pytest
from reliability_fixtures import children, rnnlab

from experiments.orchestration import launch
from experiments.recording import claims, store, tags
from experiments.recording.tags import LEASE_TAG


def _parent(plan) -> str:
    with launch._open_parent(plan.name) as parent:
        return parent.info.run_id


def _child(parent_id: str, config_hash: str, lease_ms: int, start_ms: int | None = None,
           tags: dict | None = None) -> str:
    """A RUNNING child of `parent_id` for `config_hash`, as another process's claim would be."""
    client = mlflow.MlflowClient()
    experiment_id = client.get_run(parent_id).info.experiment_id
    return client.create_run(experiment_id, start_time=start_ms, tags={
        "mlflow.parentRunId": parent_id, "rnnlab.config_hash": config_hash,
        "rnnlab.status": "RUNNING", LEASE_TAG: str(lease_ms), **(tags or {})}).info.run_id


def test_a_live_claim_is_left_alone_and_an_expired_one_is_killed_then_resumed(lab):
    plan = lab.sweep()
    planned = plan.runs[0]
    store.configure()
    parent_id = _parent(plan)
    experiment_id = mlflow.get_run(parent_id).info.experiment_id
    now = int(time.time() * 1000)
    live = _child(parent_id, planned.hash, now + 60_000)

    claim = launch.claim_config(planned, plan.name, experiment_id, parent_id)
    assert (claim.status, claim.run_id) == ("CLAIMED", live)

    mlflow.MlflowClient().set_tag(live, LEASE_TAG, str(now - 1))  # its process died
    claim = launch.claim_config(planned, plan.name, experiment_id, parent_id)
    assert claim.status == "MINE" and claim.resumed_from == live
    orphan = mlflow.get_run(live)
    assert orphan.info.status == "KILLED"
    assert orphan.data.tags["rnnlab.status"] == "KILLED"
    assert "lease expired" in orphan.data.tags["rnnlab.reason"]
    mine = mlflow.get_run(claim.run_id)
    assert mine.info.status == "RUNNING" and int(mine.data.tags[LEASE_TAG]) > now


def test_two_claims_at_once_the_earliest_wins_and_the_loser_withdraws(lab, monkeypatch):
    """Another process claims during our settle time, with an earlier creation time."""
    plan = lab.sweep()
    planned = plan.runs[0]
    store.configure()
    parent_id = _parent(plan)
    experiment_id = mlflow.get_run(parent_id).info.experiment_id
    rival = []
    real_sleep = time.sleep

    def settle(seconds):
        if not rival:
            rival.append(_child(parent_id, planned.hash, int(time.time() * 1000) + 60_000,
                                start_ms=int(time.time() * 1000) - 5_000))
        real_sleep(seconds)

    monkeypatch.setattr(launch.time, "sleep", settle)
    claim = launch.claim_config(planned, plan.name, experiment_id, parent_id)
    assert (claim.status, claim.run_id) == ("CLAIMED", rival[0])
    assert [r.info.run_id for r in children(parent_id)] == rival  # ours was deleted


def _sweep_training(plan) -> tuple[list, list, list]:
    """Run `plan`'s sweep here: the cells trained here, the sweep's lines, its outcomes."""
    trained, lines = [], []

    def run_fn(config, **kwargs):
        trained.append(config.model.cell)
        from experiments.run import run

        return run(config, **kwargs)

    return trained, lines, launch.run_sweep(plan, run_fn=run_fn, out=lines.append)


def test_a_sweep_waits_for_a_held_configuration_and_takes_it_over_when_its_lease_ends(lab):
    """A holder on another machine (no holder tags this host can check) stops renewing: the sweep
    does not end FINISHED without it, but waits out the lease and trains it here."""
    plan = lab.sweep(grid={"model.cell": ["lstm", "gru"]})
    store.configure()
    parent_id = _parent(plan)
    held = _child(parent_id, plan.runs[0].hash, int(time.time() * 1000) + 3_000)
    trained, lines, outcomes = _sweep_training(plan)
    assert trained == ["gru", "lstm"]
    assert any(line.startswith("waiting for 1 configuration") and held in line for line in lines)
    assert [o.status for o in outcomes] == ["FINISHED", "FINISHED"]
    orphan = mlflow.get_run(held)
    assert orphan.info.status == "KILLED" and "lease expired" in orphan.data.tags["rnnlab.reason"]
    assert outcomes[0].run_id != held
    parent = mlflow.get_run(parent_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["rnnlab.status"] == "FINISHED"


def test_a_configuration_its_holder_finishes_is_done_and_not_trained_again(lab):
    plan = lab.sweep(grid={"model.cell": ["lstm", "gru"]})
    store.configure()
    parent_id = _parent(plan)
    held = _child(parent_id, plan.runs[0].hash, int(time.time() * 1000) + 60_000)

    def other_process_finishes():
        time.sleep(2)
        claims.end_run_as(held, "FINISHED")

    threading.Thread(target=other_process_finishes, daemon=True).start()
    trained, lines, outcomes = _sweep_training(plan)
    assert trained == ["gru"]
    assert (outcomes[0].status, outcomes[0].run_id) == ("DONE", held)
    assert outcomes[1].status == "FINISHED"
    assert "finished: 1  done: 1" in lines[-1]


def _holder(proc_pid: int, token: str | None, host: str | None = None) -> dict[str, str]:
    return {tags.HOLDER_HOST_TAG: host or socket.gethostname(), tags.HOLDER_PID_TAG: str(proc_pid),
            tags.HOLDER_TOKEN_TAG: token or ""}


def test_a_claim_whose_holder_died_on_this_host_is_taken_over_at_once(lab):
    """kill -9 leaves a RUNNING child with a live lease: its holder's pid is gone (or reused by a
    later process), so the next claim takes it over without waiting for the lease."""
    plan = lab.sweep()
    planned = plan.runs[0]
    store.configure()
    parent_id = _parent(plan)
    experiment_id = mlflow.get_run(parent_id).info.experiment_id
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    token = claims.start_token(holder.pid)
    lease = int(time.time() * 1000) + 600_000
    held = _child(parent_id, planned.hash, lease, tags=_holder(holder.pid, token))
    claim = launch.claim_config(planned, plan.name, experiment_id, parent_id)
    assert (claim.status, claim.run_id) == ("CLAIMED", held)  # alive: left alone

    holder.kill()
    holder.wait()
    claim = launch.claim_config(planned, plan.name, experiment_id, parent_id)
    assert claim.status == "MINE" and claim.resumed_from == held
    orphan = mlflow.get_run(held)
    assert orphan.info.status == "KILLED"
    assert f"holder {socket.gethostname()}:{holder.pid} gone" in orphan.data.tags["rnnlab.reason"]
    mine = mlflow.get_run(claim.run_id).data.tags
    assert (mine[tags.HOLDER_PID_TAG], mine[tags.HOLDER_TOKEN_TAG]) == (str(os.getpid()),
                                                               claims.start_token())


def test_only_a_holder_provably_gone_from_this_host_counts_as_dead():
    def run(holder):
        return SimpleNamespace(data=SimpleNamespace(tags=holder))

    me, token = os.getpid(), claims.start_token()
    assert token is not None
    assert not claims.holder_dead(run(_holder(me, token)))
    reused = token.rsplit(":", 1)[0] + ":1"  # this pid, but a process started at another time
    assert claims.holder_dead(run(_holder(me, reused)))
    assert not claims.holder_dead(run(_holder(me, reused, host="another-machine")))
    other_boot = "0" + token[1:]  # another boot or container: its pids are not ours to judge
    assert not claims.holder_dead(run(_holder(me, other_boot.rsplit(":", 1)[0] + ":1")))
    assert not claims.holder_dead(run({}))  # a claim written before holder tags


@pytest.mark.slow
def test_two_sweep_processes_on_a_new_store_train_each_configuration_once(lab, tmp_path):
    """Two `rnnlab sweep` processes started together on a brand-new SQLite store (the schema race)
    and one sweep file: every configuration FINISHED exactly once, nothing failed."""
    lab.uri = f"sqlite:///{tmp_path}/new/mlflow.db"
    file = lab.sweep_file(grid={"model.cell": ["lstm", "gru"], "train.seed": [0, 1]},
                          train={"epochs": 1})
    procs = [rnnlab(lab, "sweep", str(file)) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert not any("Traceback" in out + err for out, err in outputs), outputs
    mlflow.set_tracking_uri(lab.uri)
    parents = mlflow.search_runs(search_all_experiments=True, output_format="list",
                                 filter_string="tags.`rnnlab.role` = 'sweep'")
    assert len(parents) == 1
    runs = children(parents[0].info.run_id)
    finished = [r.data.tags["rnnlab.config_hash"] for r in runs if r.info.status == "FINISHED"]
    assert len(finished) == 4 and len(set(finished)) == 4
    assert all(r.info.status == "FINISHED" for r in runs)
