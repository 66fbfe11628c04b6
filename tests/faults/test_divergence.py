"""Divergence: a NaN / infinite loss stops the run at once, FAILED with "diverged at epoch N"; the
sweep goes on and the report lists the run with that reason."""

from __future__ import annotations

import mlflow
import pytest
from reliability_fixtures import children, runs_of, steps

from experiments.analysis import report
from experiments.guards import Diverged
from experiments.orchestration import launch
from experiments.recording import store
from experiments.run import run

EXPLODING = {"optimizer": "sgd", "lr": 1.0e6, "clipnorm": None, "epochs": 3}


def test_a_nan_loss_stops_the_run_at_once_failed_with_the_epoch(lab):
    with pytest.raises(Diverged) as err:
        run(lab.config(train=EXPLODING))
    epoch = err.value.epoch
    assert str(err.value) == f"diverged at epoch {epoch}"
    [found] = runs_of(lab.name)
    assert found.info.status == "FAILED"
    assert found.data.tags["rnnlab.status"] == "FAILED"
    assert found.data.tags["rnnlab.reason"] == f"diverged at epoch {epoch}"
    assert steps(found.info.run_id) == list(range(epoch - 1))  # stopped inside epoch N
    assert not list(lab.checkpoints.glob("*/*/*"))  # nothing to resume from


def test_untracked_runs_diverge_the_same_way(lab):
    with pytest.raises(Diverged, match=r"^diverged at epoch \d+$"):
        run(lab.config(train=EXPLODING, tracking={"enabled": False}))


def test_the_sweep_goes_on_and_the_report_lists_the_diverged_run(lab):
    plan = lab.sweep(grid={"train.lr": [1.0e6, 0.01]}, train=EXPLODING)
    lines = []
    outcomes = launch.run_sweep(plan, out=lines.append)
    assert [o.status for o in outcomes] == ["FAILED", "FINISHED"], [o.reason for o in outcomes]
    reason = outcomes[0].reason
    assert reason.startswith("diverged at epoch ") and reason in lines[-1]
    diverged = mlflow.get_run(outcomes[0].run_id)
    assert diverged.info.status == "FAILED"
    assert diverged.data.tags["rnnlab.reason"] == reason
    parent_id = store.find_parent_run("sweep", plan.name)
    assert len(children(parent_id)) == 2
    listed = report.not_completed(report.load_runs(plan.name))
    assert listed.to_dict("records") == [{"task": "adding", "cells": "lstm", "status": "FAILED",
                                          "reason": reason}]
