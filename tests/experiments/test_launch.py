"""Launching sweeps: what a real tiny sweep leaves in MLflow, failures, re-runs, progress, Ctrl-C."""

from __future__ import annotations

import mlflow
import pytest
from conftest import logged_model_names
from test_sweep import make

from experiments import launch


def test_format_duration():
    assert [launch.format_duration(s) for s in (0, 12.4, 72, 4 * 60 + 30, 3720)] == [
        "0s", "12s", "1m12s", "4m30s", "1h02m"]


# --- a real tiny sweep (built once in conftest: tiny_sweep) -------------------------------------------


def children(parent_id: str):
    return mlflow.search_runs(search_all_experiments=True, output_format="list",
                              filter_string=f"tags.mlflow.parentRunId = '{parent_id}'")


def test_sweep_records_a_parent_with_one_child_per_config(tiny_sweep, tiny_sweep_store):
    parent = mlflow.get_run(tiny_sweep.parent_id)
    assert parent.data.tags["rnnlab.sweep"] == tiny_sweep.plan.name
    assert parent.info.status == "FINISHED"
    runs = children(tiny_sweep.parent_id)
    finished = [r for r in runs if r.info.status == "FINISHED"]
    assert {r.data.tags["rnnlab.config_hash"] for r in finished} == {p.hash for p in
                                                                      tiny_sweep.plan.runs}
    assert len(finished) == len(tiny_sweep.plan.runs)
    for run in finished:
        assert run.data.tags["rnnlab.sweep"] == tiny_sweep.plan.name
        assert run.data.tags["rnnlab.task"] == run.data.params["data.name"] == "adding"
        assert run.data.tags["rnnlab.cell"] == run.data.params["model.cell"]
        assert run.data.params["data.length"] in {"8", "12"}


def test_children_hold_per_epoch_metrics_and_artifacts(tiny_sweep, tiny_sweep_store):
    client = mlflow.MlflowClient()
    run = next(r for r in children(tiny_sweep.parent_id) if r.info.status == "FINISHED")
    history = client.get_metric_history(run.info.run_id, "train_loss")
    assert [m.step for m in history] == list(range(len(history))) or \
        [m.step for m in history] == list(range(1, len(history) + 1))
    for key in ("val_loss", "test_mse", "param_count", "baseline", "solved", "train_time_s"):
        assert key in run.data.metrics, key
    files = {f.path for f in client.list_artifacts(run.info.run_id)}
    files |= {f.path for f in client.list_artifacts(run.info.run_id, "plots")}
    assert {"config.yaml", "plots/learning_curves.png"} <= files
    assert logged_model_names(run.info.run_id) == ["model"]


def test_a_raising_run_is_failed_the_sweep_goes_on_and_a_rerun_repeats_only_it(tiny_sweep):
    first, second = tiny_sweep.passes
    statuses = [o.status for o in first]
    assert statuses.count("FAILED") == 2 and statuses.count("FINISHED") == 2
    failed = [o for o in first if o.status == "FAILED"]
    assert all("boom" in o.reason and o.run_id for o in failed)
    assert "FAILED" in tiny_sweep.outputs[0] and "boom" in tiny_sweep.outputs[0]
    assert [o.status for o in second].count("DONE") == 2
    assert sorted(o.run.hash for o in second if o.status == "FINISHED") == sorted(
        o.run.hash for o in failed)
    assert tiny_sweep.real_calls == [2, 2]  # pass 1: two real runs; pass 2: the two that failed


def test_failed_children_stay_recorded_with_their_error(tiny_sweep, tiny_sweep_store):
    failed = [r for r in children(tiny_sweep.parent_id) if r.info.status == "FAILED"]
    assert len(failed) == 2
    for run in failed:
        assert "boom" in run.data.tags["rnnlab.error"]
        assert run.data.tags["rnnlab.config_hash"] in {p.hash for p in tiny_sweep.plan.runs}


def test_rerunning_a_finished_sweep_through_the_console_script_skips_every_run(tiny_sweep):
    out = tiny_sweep.console_output
    assert "4 finished before, 0 to run" in out
    assert "done: 4" in out and "failed: 0" in out


def test_progress_lines_show_position_label_elapsed_and_eta(tiny_sweep):
    lines = [line for line in tiny_sweep.outputs[0].splitlines() if line.startswith("[")]
    assert len(lines) == 4
    assert lines[0].startswith("[1/4] lstm × adding (T=8)") and "ETA ?" in lines[0]
    assert "elapsed" in lines[1] and "ETA ?" not in lines[1]


def test_ctrl_c_marks_the_parent_killed_prints_the_summary_and_propagates(mlflow_store):
    def interrupted(config, **kwargs):
        raise KeyboardInterrupt

    plan = make(grid={"model.cell": ["lstm", "gru"]})
    plan.name = "interrupted-sweep"
    lines = []
    with pytest.raises(KeyboardInterrupt):
        launch.run_sweep(plan, run_fn=interrupted, out=lines.append)
    assert "interrupted" in lines[-1]
    assert mlflow.get_run(launch.find_parent_run(plan.name)).info.status == "KILLED"
