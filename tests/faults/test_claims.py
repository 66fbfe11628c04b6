"""Claims: a configuration is claimed (a RUNNING child with a lease) before it is trained, so sweeps
sharing a store never train one configuration twice and together finish the grid."""

from __future__ import annotations

import time

import mlflow
import pytest
from reliability_fixtures import children, rnnlab

from experiments.orchestration import launch
from experiments.recording import store
from experiments.recording.tags import LEASE_TAG


def _parent(plan) -> str:
    with launch._open_parent(plan.name) as parent:
        return parent.info.run_id


def _child(parent_id: str, config_hash: str, lease_ms: int, start_ms: int | None = None) -> str:
    """A RUNNING child of `parent_id` for `config_hash`, as another process's claim would be."""
    client = mlflow.MlflowClient()
    experiment_id = client.get_run(parent_id).info.experiment_id
    return client.create_run(experiment_id, start_time=start_ms, tags={
        "mlflow.parentRunId": parent_id, "rnnlab.config_hash": config_hash,
        "rnnlab.status": "RUNNING", LEASE_TAG: str(lease_ms)}).info.run_id


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


def test_a_sweep_skips_a_configuration_another_process_holds(lab):
    plan = lab.sweep(grid={"model.cell": ["lstm", "gru"]})
    store.configure()
    parent_id = _parent(plan)
    held = _child(parent_id, plan.runs[0].hash, int(time.time() * 1000) + 60_000)
    trained = []

    def run_fn(config, **kwargs):
        trained.append(config.model.cell)
        from experiments.run import run

        return run(config, **kwargs)

    lines = []
    outcomes = launch.run_sweep(plan, run_fn=run_fn, out=lines.append)
    assert trained == ["gru"]
    assert (outcomes[0].status, outcomes[0].run_id) == ("CLAIMED", held)
    assert outcomes[1].status == "FINISHED"
    assert "claimed: 1" in lines[-1]
    mine = mlflow.get_run(outcomes[1].run_id)
    assert mine.data.tags["rnnlab.status"] == "FINISHED" and mine.info.status == "FINISHED"


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
