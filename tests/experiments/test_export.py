"""The runs-export reader (experiments.analysis.export): the format its docstring declares."""

from __future__ import annotations

import pandas as pd
import pytest

from experiments.analysis import export

ROWS = """run_id,run_name,sweep,status,task,T,cell,seed,unit_forget_bias,units,param_count,metric,test_mse,test_loss,baseline,solved,train_time_s,wall_s,epochs,epochs_run,git_commit,start_time,end_time,param.train.lr,param.data.batch_size,tag.rnnlab.versions,metric.val_loss
a1,adding-T50-lstm-seed0,s,FINISHED,adding,50,lstm,0,,40,6921,mse,0.0004,0.0004,0.166667,1,40.5,42,20,20,abc+dirty,2026-11-28T09:09:02+00:00,2026-11-28T09:09:44+00:00,0.01,64,keras 3.15.1,0.0005
a2,adding-T50-gru-seed0,s,FINISHED,adding,50,gru,0,,46,6947,mse,0.0003,0.0003,0.166667,1,60.1,61,20,19,abc,2026-11-28T09:10:02+00:00,2026-11-28T09:11:03+00:00,0.003,64,keras 3.15.1,0.0004
b1,adding-T50-lstm-seed0,other,RUNNING,adding,50,lstm,0,,40,6921,mse,,,,,,,20,,abc,2026-11-28T09:12:02+00:00,,0.01,64,,
"""
CURVES = "run_id,key,step,value\na1,train_loss,0,0.2\na1,train_loss,1,0.1\na2,train_loss,0,0.3\n"


@pytest.fixture
def exported(tmp_path):
    (tmp_path / "s_runs.csv").write_text(ROWS)
    (tmp_path / "s_runs_curves.csv").write_text(CURVES)
    return tmp_path


def test_the_named_columns_and_prefixed_ones_become_search_runs_columns(exported):
    read = export.load(exported / "s_runs.csv")
    runs = read.runs.set_index("run_id")
    assert runs.loc["a1", "tags.rnnlab.task"] == "adding" and runs.loc["a1", "params.data.name"] == "adding"
    assert runs.loc["a1", "params.data.length"] == "50" and runs.loc["a2", "params.model.cell"] == "gru"
    assert runs.loc["a1", "params.train.lr"] == "0.01" and runs.loc["a2", "params.train.lr"] == "0.003"
    assert runs.loc["a1", "metrics.test_mse"] == pytest.approx(0.0004)
    assert runs.loc["a1", "metrics.val_loss"] == pytest.approx(0.0005)
    assert runs.loc["a1", "tags.rnnlab.versions"] == "keras 3.15.1"
    assert runs.loc["a1", "params.model.units_used"] == "40"
    assert str(runs.loc["a1", "start_time"]) == "2026-11-28 09:09:02+00:00"
    assert runs.loc["b1", "tags.rnnlab.status"] == "RUNNING"
    # the generated task's goal, which the store had as tags, from its DataSpec
    assert runs.loc["a1", "tags.rnnlab.baseline_metric"] == "mse"
    assert runs.loc["a1", "tags.rnnlab.solved_threshold"] == "0.01"
    assert list(export.dirty(read.runs)) == [True, False, False]


def test_a_directory_a_sweep_filter_and_the_curves(exported):
    read = export.load(exported, sweeps=["s"])
    assert list(read.runs["run_id"]) == ["a1", "a2"]
    history = read.history(["a1", "a2"], "train_loss")
    assert history["a1"].tolist() == [0.2, 0.1] and history["a2"].dropna().tolist() == [0.3]
    assert read.history(["a1"], "val_loss").empty


def test_a_prefixed_column_wins_over_the_named_one(tmp_path):
    (tmp_path / "x_runs.csv").write_text("run_id,T,param.data.length\nr,50,100\n")
    assert export.load(tmp_path / "x_runs.csv").runs.loc[0, "params.data.length"] == "100"


def test_what_is_not_an_export_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such export file"):
        export.load(tmp_path / "missing.csv")
    with pytest.raises(FileNotFoundError, match="expected one"):
        export.load(tmp_path)
    (tmp_path / "y_runs.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="no run_id column"):
        export.load(tmp_path / "y_runs.csv")


def test_fill_from_plans_adds_the_planned_params_and_refuses_a_contradiction(tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text("name: s\nbase: {train: {epochs: 20, lr: 0.01}}\n"
                     "tasks: [{data.name: adding, data.length: 50, train.seed: 0}]\n"
                     "grid: {model.cell: [lstm, gru]}\n")
    table = pd.read_csv(pd.io.common.StringIO(ROWS), dtype=str)
    filled = export.fill_from_plans(table, [sweep], "0123456789abcdef")
    assert filled.loc[0, "param.train.lr"] == "0.01" and filled.loc[1, "param.model.cell"] == "gru"
    assert filled.loc[0, export.PLANNED_FROM] == f"planned from {sweep} at 0123456789ab"
    assert pd.isna(filled.loc[2, export.PLANNED_FROM])  # sweep "other": no plan given
    table.loc[0, "epochs"] = "12"
    with pytest.raises(ValueError, match="epochs=12 but the plan has train.epochs=20"):
        export.fill_from_plans(table, [sweep], "0123456789abcdef")
