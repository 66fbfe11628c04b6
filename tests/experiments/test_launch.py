"""Launching sweeps: what a real tiny sweep leaves in MLflow, failures, re-runs, progress, Ctrl-C."""

from __future__ import annotations

import mlflow
import pytest
from experiment_fixtures import logged_model_names
from test_sweep import make

from experiments.orchestration import launch
from experiments.recording import store


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
    assert mlflow.get_run(store.find_parent_run("sweep", plan.name)).info.status == "KILLED"


def test_the_model_flavor_is_imported_before_the_first_run(mlflow_store, monkeypatch):
    import sys

    monkeypatch.delitem(sys.modules, "mlflow.keras", raising=False)
    seen = []

    def first(config, **kwargs):
        seen.append("mlflow.keras" in sys.modules)
        raise KeyboardInterrupt

    plan = make(grid={"model.cell": ["lstm"]})
    plan.name = "flavor-sweep"
    with pytest.raises(KeyboardInterrupt):
        launch.run_sweep(plan, run_fn=first, out=lambda line: None)
    assert seen == [True]  # its one-off imports are not charged to the first run


# --- what a person sees during and after a sweep ------------------------------------------------------


def test_each_run_ends_with_a_result_line_and_early_stopping_is_said(tiny_sweep):
    from experiments.results import RunResult

    out = tiny_sweep.outputs[0]
    assert "  ○ lstm × adding (T=8): mse = " in out and "not solved" in out  # no tick
    assert "  ✗ lstm × adding (T=12): FAILED after" in out and "boom" in out
    planned = make(grid={"train.epochs": [10]}).runs[0]
    stopped = RunResult("FINISHED", "r1", "adding", "lstm", planned.hash, epochs=4, solved=True,
                        metrics={"mse": 0.001234})
    line = launch.result_line(launch.Outcome(planned, "FINISHED", metric="mse", value=0.001234,
                                             seconds=65, result=stopped))
    assert line.startswith("  ✓ ")
    assert "mse = 0.001234; solved in 1m05s; early stopping after 4 of 10 epochs" in line
    marks = set()
    for solved in (True, False, None):
        result = RunResult("FINISHED", "r1", "adding", "lstm", planned.hash, epochs=10,
                           solved=solved, metrics={"mse": 0.5})
        marks.add(launch.result_line(launch.Outcome(planned, "FINISHED", metric="mse", value=0.5,
                                                    result=result)).split()[0])
    marks.add(launch.result_line(launch.Outcome(planned, "FAILED", reason="boom")).split()[0])
    assert len(marks) == 4  # solved, not solved, no solved rule and failed each have their mark


def test_eta_counts_each_task_at_its_own_pace_and_scales_with_t():
    plan = make(tasks=[{"data.name": "adding", "data.length": 10},
                       {"data.name": "temporal_order", "data.length": 10},
                       {"data.name": "adding", "data.length": 20}])
    adding, order, longer = plan.runs
    eta = launch.Eta()
    assert eta.remaining([longer]) == "?"
    eta.add(adding, 10.0)
    assert eta.remaining([order]) == "10s"  # no temporal-order run yet: any task's pace
    eta.add(order, 100.0)
    assert eta.remaining([longer]) == "20s" and eta.remaining([order, longer]) == "2m00s"


def test_parent_run_carries_sweep_file_summary_metrics_and_report(tiny_sweep, tiny_sweep_store):
    client = mlflow.MlflowClient()
    parent = mlflow.get_run(tiny_sweep.parent_id)
    files = {f.path for f in client.list_artifacts(tiny_sweep.parent_id, "sweep")}
    files |= {f.path for f in client.list_artifacts(tiny_sweep.parent_id, "report")}
    assert {"sweep/tiny.yaml", "report/summary.html", "report/summary.md"} <= files
    assert parent.data.metrics["runs_done"] == 4 and parent.data.metrics["runs_failed"] == 0
    assert parent.data.metrics["adding.lstm.test_mse"] > 0


def test_children_are_named_readably_and_log_only_the_params_of_their_task(tiny_sweep,
                                                                           tiny_sweep_store):
    finished = [r for r in children(tiny_sweep.parent_id) if r.info.status == "FINISHED"]
    names = {r.info.run_name for r in finished}
    assert names == {f"adding-T{t}-{c}-seed0" for t in (8, 12) for c in ("lstm", "gru")}
    for run in finished:
        assert "data.length" in run.data.params and "model.cell" in run.data.params
        for key in ("data.source_lang", "data.vocab_size", "model.attention", "model.embedding_dim",
                    "train.max_decode_length"):
            assert key not in run.data.params


# --- a study continued on a new machine: configurations finished in a committed export --------------


def write_export(path, rows):
    import pandas as pd

    pd.DataFrame(rows, columns=["run_id", "sweep", "status", "task", "cell", "metric", "test_mse",
                                "tag.rnnlab.config_hash"]).to_csv(path, index=False)


def test_configurations_finished_in_an_export_are_done_and_not_run(mlflow_store, tmp_path):
    from experiments.results import RunResult

    plan = make(grid={"model.cell": ["lstm", "gru", "vanilla"]})
    plan.name = "resumed-sweep"
    lstm, gru, vanilla = plan.runs
    write_export(tmp_path / "resumed-sweep_runs.csv", [
        ("old-lstm", plan.name, "FINISHED", "adding", "lstm", "mse", "0.25", lstm.hash),
        ("old-gru", "another-sweep", "FINISHED", "adding", "gru", "mse", "0.5", gru.hash),
        ("old-vanilla", plan.name, "FAILED", "adding", "vanilla", "mse", "", vanilla.hash)])
    calls = []

    def stand_in(config, **kwargs):
        calls.append(config.model.cell)
        return RunResult("FINISHED", None, "adding", config.model.cell, "h")

    exported = launch.read_exported(tmp_path, plan.name)
    lines = []
    outcomes = launch.run_sweep(plan, run_fn=stand_in, out=lines.append, exported=exported)
    assert calls == ["gru", "vanilla"]  # another sweep's run and a failed one are no reason to skip
    assert (outcomes[0].status, outcomes[0].run_id, outcomes[0].value) == ("DONE", "old-lstm", 0.25)
    assert [o.status for o in outcomes] == ["DONE", "FINISHED", "FINISHED"]
    assert "3 runs, 1 finished before (1 of them in " in lines[0] and ", 2 to run" in lines[0]
    assert "done: 1" in lines[-1] and "finished: 2" in lines[-1]
    parent = mlflow.get_run(store.find_parent_run("sweep", plan.name))
    assert parent.info.status == "FINISHED"


def test_a_path_that_is_no_export_is_one_line_and_exit_2_before_any_run(mlflow_store, tmp_path,
                                                                       capsys):
    import yaml
    from test_sweep import BASE

    from experiments import cli

    sweep_file = tmp_path / "refused.yaml"
    sweep_file.write_text(yaml.safe_dump({"name": "refused-sweep", "base": BASE,
                                          "grid": {"model.cell": ["lstm"]}}))
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    for bad in (tmp_path / "nowhere", tmp_path / "notes.csv", tmp_path):
        assert cli.main(["sweep", str(sweep_file), "--skip-exported", str(bad)]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and err.startswith("rnnlab sweep: '--skip-exported' is no ")
        assert str(bad) in err
    assert store.find_parent_run("sweep", "refused-sweep") is None
