"""Sweep planning: expansion and validation of sweep files, and the dry run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from experiments.config import config_hash
from experiments.orchestration import launch
from experiments.orchestration import plan as sweep

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


def test_a_forget_bias_ablation_crossed_with_every_cell_adds_only_the_lstm_family():
    plan = make(tasks=[{}, {"model.unit_forget_bias": False}],
                grid={"model.cell": ["vanilla", "gru", "lstm", "coupled"]})
    got = [(r.config.model.cell, r.config.model.unit_forget_bias) for r in plan.runs]
    assert got == [("vanilla", None), ("gru", None), ("lstm", None), ("coupled", None),
                   ("lstm", False), ("coupled", False)]


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
        ({"grid": {"train.lr": "0.1"}}, ["t.yaml", "'grid.train.lr'", "list", "'0.1'"]),
        ({"grid": {"train.lr": ["fast"]}}, ["t.yaml", "train.lr", "float"]),
        ({"samples": 2}, ["t.yaml", "random"]),
        ({"samples": 1, "random": {"train.lr": {"normal": [0, 1]}}}, ["t.yaml", "choice", "uniform"]),
        ({"samples": 1, "random": {"model.units": {"int_uniform": [8]}}},
         ["t.yaml", "'random.model.units.int_uniform'", "[low, high]", "[8]"]),
        ({"samples": 1, "random": {"train.lr": {"log_uniform": [0, 1e-2]}}},
         ["t.yaml", "'random.train.lr.log_uniform'", "0 < low", "[0, 0.01]"]),
        ({"samples": 1, "random": {"train.lr": {"uniform": [0.1, 0.01]}}},
         ["t.yaml", "'random.train.lr.uniform'", "low <= high"]),
        ({"samples": 1, "random": {"model.units": {"int_uniform": [8, 16.5]}}},
         ["t.yaml", "two integers"]),
        ({"samples": 1, "random": {"model.units": {"choice": []}}}, ["t.yaml", "at least one"]),
    ],
)
def test_bad_sweep_files_fail_with_one_clear_message(raw, needles):
    with pytest.raises(ValueError) as err:
        make(**raw)
    for needle in needles:
        assert needle in str(err.value)


@pytest.mark.parametrize("spec", [{"int_uniform": [8]}, {"log_uniform": [0, 1e-2]}])
def test_a_bad_sampler_is_one_line_and_exit_2(tmp_path, capsys, spec):
    from experiments import cli

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"name": "bad", "base": BASE, "samples": 1,
                                    "random": {"model.units": spec}}))
    assert cli.main(["sweep", str(path), "--dry-run"]) == 2
    message = capsys.readouterr().err
    assert message.count("\n") == 1 and str(path) in message and "random.model.units" in message


def test_a_bad_run_anywhere_fails_the_cli_before_any_run_starts(tmp_path, capsys, monkeypatch):
    from experiments import cli

    started = []
    monkeypatch.setattr(launch, "run_sweep", lambda *a, **k: started.append(a))
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(
        {"name": "bad", "base": BASE, "grid": {"model.cell": ["lstm", "gru", "nope"]}}))
    assert cli.main(["sweep", str(path)]) == 2
    message = capsys.readouterr().err
    assert str(path) in message and "model.cell" in message and "'nope'" in message
    assert "vanilla" in message and started == []


def test_a_sweep_to_run_is_checked_against_the_devices_a_dry_run_is_not(tmp_path, monkeypatch):
    """The plan checks every run's train.distribution against this machine (the batch against the
    replica count) before anything runs, in the sweep file's name; a dry run skips it."""
    from datasets.errors import ConfigError
    from experiments import distribution

    checked = []

    def two_replicas(config, source):
        checked.append((config.model.cell, config.train.distribution, source))
        if config.model.cell == "gru":
            raise ConfigError(source, "data.batch_size", "must be a multiple of the 2 replicas")

    monkeypatch.setattr(distribution, "check", two_replicas)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"name": "s", "base": BASE,
                                    "grid": {"model.cell": ["lstm", "gru"]}}))
    assert len(sweep.load_sweep(path, ["train.distribution=mirrored"]).runs) == 2
    assert checked == []
    with pytest.raises(ConfigError, match="'data.batch_size' must be a multiple"):
        sweep.load_sweep(path, ["train.distribution=mirrored"], devices=True)
    assert checked == [("lstm", "mirrored", str(path)), ("gru", "mirrored", str(path))]


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


def test_dry_run_marks_the_runs_an_export_has_finished(tmp_path, capsys):
    """`--dry-run --skip-exported EXPORT`: what a new machine would skip, before it runs."""
    from experiments import cli

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"name": "s", "base": BASE, "grid": {"model.cell": ["lstm", "gru"]}}))
    lstm = next(r for r in sweep.load_sweep(path).runs if r.config.model.cell == "lstm")
    (tmp_path / "s_runs.csv").write_text(
        "run_id,sweep,status,task,T,cell,seed,tag.rnnlab.sweep,tag.rnnlab.config_hash,tag.rnnlab.status\n"
        f"r1,s,FINISHED,adding,{lstm.config.data.length},lstm,0,s,{lstm.hash},FINISHED\n")
    assert cli.main(["sweep", str(path), "--dry-run", "--skip-exported", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "2 runs, 1 of them finished in the export (skipped)" in out
    assert f"hash={lstm.hash}  (exported: skipped)" in out and out.count("(exported") == 1


def test_shipped_sweeps_expand_and_validate():
    folder = Path(sweep.__file__).parent.parent / "sweeps"
    quick = sweep.load_sweep(folder / "quick.yaml")
    study = sweep.load_sweep(folder / "study.yaml")
    full = sweep.load_sweep(folder / "study_full.yaml")
    import cells

    for plan in (quick, study, full):
        assert {r.config.model.cell for r in plan.runs} == set(cells.names())
    # `make run` shows the three task families: every cell on adding and IMDB, one translation
    tasks = [r.config.data.name for r in quick.runs]
    assert tasks.count("adding") == tasks.count("imdb") == len(cells.names())
    assert tasks.count("multi30k") == 1
    assert len(full.runs) > len(study.runs) > len(quick.runs)
    assert {r.config.train.seed for r in study.runs} == {0, 1, 2}
    for plan in (study, full):  # the forget-bias ablation, for the LSTM family only
        ablated = {r.config.model.cell for r in plan.runs if r.config.model.unit_forget_bias is False}
        assert ablated == {"lstm", "peephole", "coupled"}
        assert all(r.config.model.match_params for r in plan.runs if r.config.data.name != "multi30k")


def test_the_tutorial_sized_translation_sweep_crosses_gated_cells_with_each_attention_type():
    plan = sweep.load_sweep(Path(sweep.__file__).parent.parent / "sweeps" / "translation_tutorial.yaml")
    grid = {(r.config.model.cell, r.config.model.attention) for r in plan.runs}
    assert grid == {(c, a) for c in ("lstm", "peephole", "coupled", "gru")
                    for a in ("bahdanau", "luong", None)}
    for run in plan.runs:  # bentrevett's notebook 3: 512 units, 256-d embeddings, dropout 0.5, ...
        m, t, d = run.config.model, run.config.train, run.config.data
        assert (m.units, m.embedding_dim, m.dropout, m.bidirectional, m.match_params) == \
            (512, 256, 0.5, True, None)
        assert (t.epochs, t.clipnorm, t.global_clipnorm, t.optimizer, d.min_freq, d.name) == \
            (10, None, 1.0, "adam", 2, "multi30k")


def test_the_medium_translation_sweep_gives_every_gated_cell_and_attention_one_model_and_budget():
    folder = Path(sweep.__file__).parent.parent / "sweeps"
    plan = sweep.load_sweep(folder / "translation_medium.yaml")
    gated = ["gru", "lstm", "peephole", "coupled"]
    assert [(r.config.model.cell, r.config.model.attention) for r in plan.runs] == \
        [(c, a) for c in gated for a in ("bahdanau", "luong", None)]  # a cell's pairs together
    as_one = {config_hash(dataclasses.replace(r.config, model=dataclasses.replace(
        r.config.model, cell="gru", attention="bahdanau", attention_score="general")))
        for r in plan.runs}
    assert len(as_one) == 1  # cell and attention are all that differ: the claims' equal budget
    m, t = plan.runs[0].config.model, plan.runs[0].config.train
    assert (m.attention, m.bidirectional, m.units, t.early_stopping_patience) == \
        ("bahdanau", True, 256, None)
    small, tutorial = (sweep.load_sweep(folder / f).runs[0].config.train.epochs
                       for f in ("translation_attention.yaml", "translation_tutorial.yaml"))
    assert small < t.epochs < tutorial


def test_the_long_budget_sweep_trains_the_study_models_with_at_least_five_times_the_updates():
    folder = Path(sweep.__file__).parent.parent / "sweeps"
    study = {(r.config.data.name, r.config.data.length, r.config.model.cell): r.config
             for r in sweep.load_sweep(folder / "study.yaml").runs if r.config.train.seed == 0
             and r.config.model.unit_forget_bias is not False}
    plan = sweep.load_sweep(folder / "long_budget.yaml").runs
    assert len(plan) == 15

    def updates(c):
        return -(-c.data.num_train // c.data.batch_size) * c.train.epochs

    for run in plan:
        c = run.config
        same = study[(c.data.name, c.data.length, c.model.cell)]
        assert c.model == same.model and c.train.early_stopping_patience is None
        assert updates(c) >= 5 * updates(same)


def test_the_attention_comparison_differs_from_the_study_only_in_its_attention():
    folder = Path(sweep.__file__).parent.parent / "sweeps"
    study = {r.config.model.cell: r.config for r in sweep.load_sweep(folder / "study.yaml").runs
             if r.config.data.name == "multi30k"}
    plan = sweep.load_sweep(folder / "translation_attention.yaml")
    assert {(r.config.model.cell, r.config.model.attention) for r in plan.runs} == {
        (c, a) for c in ("lstm", "peephole", "coupled", "gru") for a in (None, "luong")}
    ablations = {(r.config.model.input_feeding, r.config.model.readout) for r in plan.runs
                 if r.config.model.attention == "luong"}
    assert ablations == {(True, "attentional"), (True, "deep"), (False, "deep")} \
        and len(plan.runs) == 16
    for run in plan.runs:
        theirs = study[run.config.model.cell].model
        assert theirs.attention == "bahdanau"
        same = dataclasses.replace(run.config, model=dataclasses.replace(
            run.config.model, attention=theirs.attention, attention_score=theirs.attention_score,
            input_feeding=theirs.input_feeding, readout=theirs.readout))
        assert config_hash(same) == config_hash(study[run.config.model.cell])  # an equal budget


# --- each cell's tuned values (`tuned:`) -------------------------------------------------------------

TUNED_SPACE = {"name": "fair-adding", "base": BASE, "cells": ["lstm", "gru"], "max_trials": 2,
               "space": {"train.lr": {"type": "float", "min": 1e-3, "max": 1e-1, "sampling": "log"},
                         "train.clipnorm": {"type": "choice", "values": [1.0, 5.0]}}}
BEST = {"name": "fair-adding-best", "base": BASE,
        "tasks": [{"model.cell": "lstm", "train.lr": 0.03, "train.clipnorm": 1.0},
                  {"model.cell": "gru", "train.lr": 0.002, "train.clipnorm": 5.0}]}


@pytest.fixture
def tuned_sweep(tmp_path):
    """`write(best=..., **sweep keys)`: a sweep file in tmp_path/sweeps whose `tuned:` names the
    space tmp_path/spaces/fair-adding.yaml and the best file tmp_path/sweeps/tuned/best.yaml."""
    (tmp_path / "spaces").mkdir()
    (tmp_path / "spaces" / "fair-adding.yaml").write_text(yaml.safe_dump(TUNED_SPACE))
    (tmp_path / "sweeps" / "tuned").mkdir(parents=True)

    def write(best=BEST, **raw):
        if best is not None:
            (tmp_path / "sweeps" / "tuned" / "best.yaml").write_text(yaml.safe_dump(best))
        path = tmp_path / "sweeps" / "study.yaml"
        path.write_text(yaml.safe_dump({
            "name": "fair", "base": BASE,
            "tuned": {"adding": {"space": "../spaces/fair-adding.yaml", "best": "tuned/best.yaml"}},
            **raw}))
        return path

    return write


def test_each_cell_runs_with_its_own_tuned_values(tuned_sweep):
    path = tuned_sweep(tasks=[{"data.length": 8, "train.lr": 0.5}, {"data.length": 12}],
                       grid={"model.cell": ["lstm", "gru"], "train.seed": [0, 1]})
    plan = sweep.load_sweep(path, overrides=["train.verbose=2"])
    got = {(r.config.model.cell, r.config.train.lr, r.config.train.clipnorm) for r in plan.runs}
    assert got == {("lstm", 0.03, 1.0), ("gru", 0.002, 5.0)}  # the task's lr 0.5 loses to tuned
    assert len(plan.runs) == 8 and {r.config.train.verbose for r in plan.runs} == {2}
    grid_wins = sweep.load_sweep(tuned_sweep(grid={"model.cell": ["gru"], "train.lr": [0.1]}))
    assert [r.config.train.lr for r in grid_wins.runs] == [0.1]


def test_a_task_without_a_tuning_keeps_its_own_values(tuned_sweep):
    plan = sweep.load_sweep(tuned_sweep(tasks=[{"data.name": "copy", "train.lr": 0.5}],
                                        grid={"model.cell": ["lstm"]}))
    assert [r.config.train.lr for r in plan.runs] == [0.5]


def test_before_tuning_the_sweep_names_the_missing_file_and_the_command(tuned_sweep, tmp_path,
                                                                         capsys, monkeypatch):
    from experiments import cli

    started = []
    monkeypatch.setattr(launch, "run_sweep", lambda *a, **k: started.append(a))
    path = tuned_sweep(best=None, grid={"model.cell": ["lstm"]})
    for argv in (["sweep", str(path)], ["sweep", str(path), "--dry-run"]):
        assert cli.main(argv) == 2
        message = capsys.readouterr().err.strip()
        assert len(message.splitlines()) == 1 and "'tuned.adding.best'" in message
        best = tmp_path / "sweeps" / "tuned" / "best.yaml"
        assert f"rnnlab tune {tmp_path / 'spaces' / 'fair-adding.yaml'} --all-cells --export " \
               f"{best}" in message
    assert started == []


def test_only_plans_the_tuned_part_of_a_study_with_the_whole_files_hashes(tuned_sweep, capsys):
    """`--only data.name=copy` plans the copy runs while adding is not tuned yet, with the hashes
    the whole file gives them once it is; the adding runs then need their best file again."""
    from experiments import cli

    tasks = [{"data.name": "copy", "data.length": 8}, {"data.length": 8}, {"data.length": 12}]
    grid = {"model.cell": ["lstm", "gru"]}
    part = sweep.load_sweep(tuned_sweep(best=None, tasks=tasks, grid=grid),
                            only=["data.name=copy"])
    assert {r.config.data.name for r in part.runs} == {"copy"} and len(part.runs) == 2
    assert part.only == ("data.name=copy",)
    whole = sweep.load_sweep(tuned_sweep(tasks=tasks, grid=grid))
    assert {r.hash for r in part.runs} < {r.hash for r in whole.runs} and len(whole.runs) == 6
    two = sweep.load_sweep(tuned_sweep(tasks=tasks, grid=grid),
                           only=["data.length=8,12", "model.cell=gru"])
    assert sorted((r.config.data.name, r.config.data.length) for r in two.runs) == [
        ("adding", 8), ("adding", 12), ("copy", 8)]
    assert {r.config.train.lr for r in two.runs if r.config.data.name == "adding"} == {0.002}
    path = tuned_sweep(tasks=tasks, grid=grid)
    for only, needle in ((["data.name=reber"], "selects none of the runs"),
                         (["data.nam=copy"], "valid: data.batch_size"),
                         (["data.name"], "must be KEY=VALUE")):
        assert cli.main(["sweep", str(path), "--dry-run", *(f"--only={o}" for o in only)]) == 2
        message = capsys.readouterr().err.strip()
        assert len(message.splitlines()) == 1 and needle in message and "--only" in message


@pytest.mark.parametrize(
    ("best", "tuned", "needles"),
    [
        ({**BEST, "tasks": BEST["tasks"][:1]}, None, ["tuned.adding", "'gru'", "valid: lstm"]),
        ({**BEST, "tasks": [{"model.cell": "gru", "train.lr": 0.1}]}, None,
         ["best.yaml", "'train.clipnorm'", "--all-cells --export"]),
        (BEST, {"copy": {"space": "../spaces/fair-adding.yaml", "best": "tuned/best.yaml"}},
         ["tuned.copy.space", "tunes task 'adding', not 'copy'"]),
        (BEST, {"adding": {"best": "tuned/best.yaml"}}, ["tuned.adding", "valid: space, best"]),
        ({**BEST, "tasks": [{"train.lr": 0.1, "train.clipnorm": 1.0}]}, None,
         ["best.yaml", "'model.cell' must name the cell"]),
        (BEST, {"adding": {"space": "nope.yaml", "best": "tuned/best.yaml"}},
         ["tuned.adding.space", "nope.yaml"]),
        ({**BEST, "tasks": [{"model.cell": "gru", "train.lr": -1.0, "train.clipnorm": 1.0}]}, None,
         ["train.lr"]),
    ],
)
def test_bad_tuned_entries_fail_with_one_clear_message(tuned_sweep, best, tuned, needles):
    extra = {"tuned": tuned} if tuned else {}
    with pytest.raises(ValueError) as err:
        sweep.load_sweep(tuned_sweep(best=best, grid={"model.cell": ["gru"]}, **extra))
    for needle in needles:
        assert needle in str(err.value), str(err.value)


@pytest.mark.parametrize("change", [{"train.epochs": 2}, {"data.num_train": 64}])
def test_a_run_at_another_setting_than_the_tuned_one_is_refused(tuned_sweep, change):
    """Tuned values hold for the budget and data they were tuned at; T and seeds may vary, and
    how a run is compiled (XLA, eager)."""
    assert sweep.load_sweep(tuned_sweep(tasks=[{"data.length": 30, "train.seed": 4,
                                                "train.jit_compile": True,
                                                "train.run_eagerly": True}]))
    with pytest.raises(ValueError) as err:
        sweep.load_sweep(tuned_sweep(tasks=[change]))
    (key, value), = change.items()
    assert f"'{key}' differs from the setting" in str(err.value)
    assert "fair-adding.yaml" in str(err.value) and f"got {value}" in str(err.value)


def test_keys_declared_free_may_differ_and_borrow_the_tuned_values(tuned_sweep):
    """`free: [KEY]` lets the study run a setting its cells were not tuned at (the attention
    claims' model without attention) with the tuned values; any other difference is still refused,
    and `free` must name config keys."""
    free = {"adding": {"space": "../spaces/fair-adding.yaml", "best": "tuned/best.yaml",
                       "free": ["train.epochs"]}}
    plan = sweep.load_sweep(tuned_sweep(tasks=[{}, {"train.epochs": 2}], tuned=free,
                                        grid={"model.cell": ["gru"]}))
    assert sorted((r.config.train.epochs, r.config.train.lr) for r in plan.runs) == [
        (1, 0.002), (2, 0.002)]
    with pytest.raises(ValueError, match="'data.num_train' differs from the setting"):
        sweep.load_sweep(tuned_sweep(tasks=[{"data.num_train": 64}], tuned=free))
    bad = {"adding": {**free["adding"], "free": ["model.atention"]}}
    with pytest.raises(ValueError, match="tuned.adding.free"):
        sweep.load_sweep(tuned_sweep(tuned=bad, grid={"model.cell": ["gru"]}))


def test_the_fair_study_plans_once_every_family_is_tuned(tmp_path):
    """study_fair.yaml with a best file per task family (as `rnnlab tune --export` writes them):
    380 runs, each cell with its family's tuned values, every run at its tuning's setting."""
    import shutil

    from experiments.orchestration import tune

    root = Path(__file__).resolve().parents[2] / "experiments"
    shutil.copytree(root / "spaces", tmp_path / "spaces")
    (tmp_path / "sweeps" / "tuned").mkdir(parents=True)
    shutil.copy(root / "sweeps" / "study_fair.yaml", tmp_path / "sweeps")
    tuned = {}
    for path in sorted((tmp_path / "spaces").glob("fair-*.yaml")):
        space = tune.load_space(path)
        cells = []
        for i, cell in enumerate(space.cells):  # each cell its own values: the lowest, then up
            values = {p.key: p.extremes()[0] * (1.1 ** i) if p.type == "float"
                      else p.extremes()[i % 2] for p in space.params}
            cells.append(tune.CellResult(cell, space.max_trials, 0.1, 0.2, f"run-{cell}",
                                         best_config=space.config_for(cell, values)))
            tuned[space.base.data.name, cell] = values
        (tmp_path / "sweeps" / "tuned" / path.name).write_text(
            tune.best_sweep_yaml(space, tune.TuneOutcome(space, "parent", cells)))
    plan = sweep.load_sweep(tmp_path / "sweeps" / "study_fair.yaml")
    assert len(plan.runs) == 435  # 405 + Multi30k without attention and with Luong (tuned: free)
    for run in plan.runs:
        flat = run.config.flat()
        for key, value in tuned[run.config.data.name, run.config.model.cell].items():
            assert flat[key] == pytest.approx(value), (run.label, key)
    seeds = {}
    for run in plan.runs:
        seeds.setdefault((run.config.data.name, run.config.data.length,
                          run.config.model.unit_forget_bias, run.config.model.cell), set()) \
            .add(run.config.train.seed)
    assert {len(s) for (task, *_), s in seeds.items() if task != "multi30k"} == {5}
    assert {len(s) for (task, *_), s in seeds.items() if task == "multi30k"} == {3}


def test_the_fair_studys_generated_data_can_be_drawn():
    """Every generated task's data of study_fair.yaml loads (held-out inputs disjoint from
    training: the loader refuses sizes a task's input space cannot fill, e.g. Reber at T = 9
    drawn test first, which the study therefore draws training first)."""
    import datasets
    from experiments.config import read_yaml

    path = Path(__file__).resolve().parents[2] / "experiments" / "sweeps" / "study_fair.yaml"
    raw = read_yaml(path.read_text(), str(path))
    raw.pop("tuned")  # the data do not depend on the tuned values
    seen = set()
    for run in sweep.parse_sweep(raw, source=str(path)).runs:
        data = run.config.data
        if data.name in ("imdb", "multi30k") or (data.name, data.length) in seen:
            continue
        seen.add((data.name, data.length))
        datasets.get(data.name).load(data)
    assert len(seen) == 14
