"""Sweeps: expansion and validation of sweep files, and what a real tiny sweep leaves in MLflow."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
import yaml

from experiments import sweep
from experiments.config import config_hash

BASE = {
    "data": {"name": "adding", "length": 8, "num_train": 32, "num_val": 16, "num_test": 16},
    "train": {"epochs": 1},
}


def make(**raw):
    return sweep.parse_sweep({"name": "t", "base": BASE, **raw}, source="t.yaml")


# --- expansion ---------------------------------------------------------------------------------------


def test_runs_are_tasks_times_grid_in_order_with_labels():
    plan = make(
        tasks=[{"data.name": "adding", "data.length": 8}, {"data.name": "adding", "data.length": 12}],
        grid={"model.cell": ["lstm", "gru"], "train.seed": [0, 1]},
    )
    got = [(r.config.data.length, r.config.model.cell, r.config.train.seed) for r in plan.runs]
    assert got == [(t, c, s) for t in (8, 12) for c in ("lstm", "gru") for s in (0, 1)]
    assert len({r.hash for r in plan.runs}) == 8
    assert all(r.hash == config_hash(r.config) for r in plan.runs)
    assert plan.runs[0].label == "lstm × adding (T=8, seed=0)"


def test_precedence_base_task_grid_then_set_overrides():
    plan = sweep.parse_sweep(
        {"name": "t", "base": {**BASE, "model": {"units": 4}},
         "tasks": [{"model.units": 5, "train.lr": 0.1}], "grid": {"train.lr": [0.2]}},
        source="t.yaml", overrides=["train.epochs=3"],
    )
    (run,) = plan.runs
    assert (run.config.model.units, run.config.train.lr, run.config.train.epochs) == (5, 0.2, 3)


def test_set_overrides_that_collapse_the_grid_leave_one_run_per_hash():
    plan = sweep.parse_sweep({"name": "t", "base": BASE, "grid": {"model.cell": ["lstm", "gru"]}},
                             overrides=["model.cell=gru"])
    assert [r.config.model.cell for r in plan.runs] == ["gru"]


def test_random_samples_are_seeded_and_shared_across_cells():
    raw = {"grid": {"model.cell": ["lstm", "gru"]}, "samples": 3, "seed": 7,
           "random": {"train.lr": {"log_uniform": [1e-4, 1e-2]}, "model.units": {"choice": [4, 8]}}}
    first, again = make(**raw), make(**raw)
    lrs = [r.config.train.lr for r in first.runs]
    assert lrs == [r.config.train.lr for r in again.runs]
    assert len(first.runs) == 6 and all(1e-4 <= lr <= 1e-2 for lr in lrs)
    by_cell = {c: [(r.config.train.lr, r.config.model.units) for r in first.runs
                   if r.config.model.cell == c] for c in ("lstm", "gru")}
    assert by_cell["lstm"] == by_cell["gru"]
    assert make(**{**raw, "seed": 8}).runs[0].config.train.lr != lrs[0]


# --- validation: one message naming the file, the key and the valid choices --------------------------


@pytest.mark.parametrize(
    ("raw", "needles"),
    [
        ({"gird": {}}, ["t.yaml", "'gird'", "grid", "tasks"]),
        ({"grid": {"model.cell": ["lstm", "lsmt"]}}, ["t.yaml", "model.cell", "'lsmt'", "peephole"]),
        ({"tasks": [{"data.name": "adding"}, {"data.name": "addding"}]},
         ["t.yaml", "tasks[1]", "data.name", "'addding'", "adding"]),
        ({"grid": {"model.colour": ["red"]}}, ["t.yaml", "model.colour", "units"]),
        ({"grid": {"cell": ["lstm"]}}, ["t.yaml", "'cell'", "section.key"]),
        ({"grid": {"train.lr": "0.1"}}, ["t.yaml", "'train.lr'", "list"]),
        ({"grid": {"train.lr": ["fast"]}}, ["t.yaml", "train.lr", "float"]),
        ({"samples": 2}, ["t.yaml", "random"]),
        ({"samples": 1, "random": {"train.lr": {"normal": [0, 1]}}}, ["t.yaml", "choice", "uniform"]),
    ],
)
def test_bad_sweep_files_fail_with_one_clear_message(raw, needles):
    with pytest.raises(ValueError) as err:
        make(**raw)
    for needle in needles:
        assert needle in str(err.value)


def test_a_bad_run_anywhere_fails_the_cli_before_any_run_starts(tmp_path, capsys, monkeypatch):
    from experiments import cli

    started = []
    monkeypatch.setattr(sweep, "run_sweep", lambda *a, **k: started.append(a))
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(
        {"name": "bad", "base": BASE, "grid": {"model.cell": ["lstm", "gru", "nope"]}}))
    assert cli.main(["sweep", str(path)]) == 2
    message = capsys.readouterr().err
    assert str(path) in message and "model.cell" in message and "'nope'" in message
    assert "vanilla" in message and started == []


def test_dry_run_lists_every_run_with_its_hash(tmp_path, capsys):
    from experiments import cli

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"name": "s", "base": BASE, "grid": {"model.cell": ["lstm", "gru"]}}))
    assert cli.main(["sweep", str(path), "--dry-run", "--set", "data.length=9"]) == 0
    out = capsys.readouterr().out
    plan = sweep.load_sweep(path, overrides=["data.length=9"])
    assert "2 runs" in out
    for i, run in enumerate(plan.runs, 1):
        assert f"[{i}/2] {run.label}  hash={run.hash}" in out


def test_shipped_sweeps_expand_and_validate():
    folder = Path(sweep.__file__).parent / "sweeps"
    quick = sweep.load_sweep(folder / "quick.yaml")
    study = sweep.load_sweep(folder / "study.yaml")
    import cells

    for plan in (quick, study):
        assert {r.config.model.cell for r in plan.runs} == set(cells.names())
    assert {"adding", "imdb", "multi30k"} <= {r.config.data.name for r in quick.runs}
    assert len(study.runs) > len(quick.runs)
    assert {r.config.train.seed for r in study.runs} == {0, 1, 2}


def test_format_duration():
    assert [sweep.format_duration(s) for s in (0, 12.4, 72, 4 * 60 + 30, 3720)] == [
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
    files |= {f.path for d in ("model", "plots") for f in client.list_artifacts(run.info.run_id, d)}
    assert {"config.yaml", "model/model.keras", "plots/learning_curves.png"} <= files


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
        sweep.run_sweep(plan, run_fn=interrupted, out=lines.append)
    assert "interrupted" in lines[-1]
    assert mlflow.get_run(sweep.find_parent_run(plan.name)).info.status == "KILLED"
