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
