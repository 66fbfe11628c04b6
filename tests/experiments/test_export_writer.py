"""`rnnlab export`: a store's finished runs as <name>_runs.csv + <name>_runs_curves.csv, the format
that experiments/analysis/export.py reads (named columns, param.*, tag.*, metric.*; run_id, key,
step, value)."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest

from experiments import cli
from experiments.analysis import provenance
from experiments.recording import export


@pytest.fixture
def demo_export(fake_store, monkeypatch, tmp_path):
    uri, _, ids = fake_store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert cli.main(["export", "--sweep", "demo", "--output", str(tmp_path / "out")]) == 0
    runs = pd.read_csv(tmp_path / "out" / "demo_runs.csv", dtype=str, keep_default_na=False,
                       na_values=[""])
    curves = pd.read_csv(tmp_path / "out" / "demo_runs_curves.csv")
    yield runs, curves, ids
    mlflow.set_tracking_uri(None)


def test_every_finished_run_is_a_row_with_its_params_tags_and_metrics(demo_export):
    runs, _, ids = demo_export
    assert sorted(runs["run_id"]) == sorted(ids.values())
    assert list(runs.columns[:8]) == ["run_id", "run_name", "sweep", "status", "task", "T", "cell",
                                      "seed"]
    row = runs.set_index("run_id").loc[ids["adding-lstm-1"]]
    assert row["cell"] == "lstm" and row["sweep"] == "demo" and row["seed"] == "1"
    assert float(row["test_mse"]) == pytest.approx(0.012)  # the page's named column
    assert row["param.train.seed"] == "1" and row["param.data.length"] == "50"
    assert row["param.model.attention"] == "None"  # as MLflow holds an unset key
    assert row["tag.rnnlab.config_hash"] == "hash1" and row["tag.rnnlab.backend"] == "tensorflow"
    assert float(row["metric.val_loss"]) == pytest.approx(0.012)  # last logged value
    assert not any(c.startswith("metric.test_") for c in runs)  # test metrics: named columns


def test_curves_hold_each_metric_per_epoch(demo_export):
    _, curves, ids = demo_export
    assert list(curves.columns) == ["run_id", "key", "step", "value"]
    loss = curves[(curves["run_id"] == ids["adding-lstm-0"]) & (curves["key"] == "val_loss")]
    assert list(loss["step"]) == [0, 1, 2]
    assert list(loss["value"]) == pytest.approx([0.012, 0.008, 0.004])


def test_a_sweep_without_runs_is_one_line_and_exit_1(fake_store, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", fake_store[0])
    assert cli.main(["export", "--sweep", "nope", "--output", str(tmp_path)]) == 1
    assert "no finished runs of sweep 'nope'" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
    mlflow.set_tracking_uri(None)


def test_sweep_or_tuning_must_be_named(capsys, tmp_path):
    assert cli.main(["export", "--output", str(tmp_path)]) == 2
    assert "--sweep NAME or --tuning NAME" in capsys.readouterr().err


def test_the_reader_rebuilds_the_runs(demo_export, tmp_path):
    """Where the reader (experiments/analysis/export.py) exists, it reads the export back."""
    reader = pytest.importorskip("experiments.analysis.export")
    _, _, ids = demo_export
    back = reader.load(tmp_path / "out")
    assert sorted(back.runs["run_id"]) == sorted(ids.values())
    assert set(back.runs["params.train.seed"]) == {"0", "1"}
    assert not back.history([ids["adding-lstm-0"]], "val_loss").empty
    assert export.CURVES_SUFFIX == reader.CURVES_SUFFIX


def test_a_tunings_trials_export_without_its_parent(tmp_path, monkeypatch):
    """`--tuning NAME`: the trials (tag rnnlab.trial_id) of the named tunings, not their parent
    runs and not another tuning's trials."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("t", artifact_location=str(tmp_path / "mlruns"))
    trials = {}
    for tuning in ("fair-copy", "other"):
        parent = client.create_run(experiment, tags={"rnnlab.role": "tuning",
                                                     "rnnlab.tuning": tuning})
        client.set_terminated(parent.info.run_id)
        for trial, lr in (("0", 0.01), ("1", 0.001)):
            run = client.create_run(experiment, run_name=f"{tuning}-lstm-t{trial}", tags={
                "mlflow.parentRunId": parent.info.run_id, "rnnlab.tuning": tuning,
                "rnnlab.trial_id": trial, "rnnlab.task": "copy", "rnnlab.cell": "lstm",
                "rnnlab.config_hash": f"{tuning}{trial}", "rnnlab.status": "FINISHED"})
            client.log_param(run.info.run_id, "train.lr", lr)
            for epoch, loss in enumerate((2.0, 1.0)):
                client.log_metric(run.info.run_id, "val_loss", loss * lr, step=epoch)
            client.log_metric(run.info.run_id, "tuner_score", lr)
            client.set_terminated(run.info.run_id)
            trials[run.info.run_id] = (tuning, lr)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert cli.main(["export", "--tuning", "fair-copy", "--output", str(tmp_path / "out")]) == 0
    runs = pd.read_csv(tmp_path / "out" / "fair-copy_runs.csv")
    assert sorted(runs["run_id"]) == sorted(r for r, (t, _) in trials.items() if t == "fair-copy")
    assert sorted(runs["param.train.lr"]) == [0.001, 0.01]
    assert set(runs["tag.rnnlab.tuning"]) == {"fair-copy"}
    curves = pd.read_csv(tmp_path / "out" / "fair-copy_runs_curves.csv")
    assert len(curves[curves["key"] == "val_loss"]) == 4
    mlflow.set_tracking_uri(None)


# --- a study over several machines: the export already in --output is merged with -------------------


def test_a_reexport_keeps_the_exported_runs_this_store_lacks_and_one_row_per_config(
        demo_export, fake_store, monkeypatch, tmp_path, capsys):
    """The committed export of an earlier machine: one run the store lacks (kept, with its
    curves), and the config hash1 under another run id (the exported row stays; the store's run
    of it is left out and named)."""
    runs, curves, ids = demo_export
    folder = tmp_path / "out"
    earlier = runs.copy()
    same_config = earlier["run_id"] == ids["adding-lstm-1"]
    earlier.loc[same_config, ["run_id", "test_mse"]] = ["earlier-run-hash1", "0.5"]
    gone = earlier[earlier["run_id"] == ids["adding-gru-0"]].assign(
        run_id="earlier-run-gone", **{"tag.rnnlab.config_hash": "hash9", "seed": "7"})
    pd.concat([earlier, gone]).to_csv(folder / "demo_runs.csv", index=False)
    old_curves = pd.concat([curves.replace({ids["adding-lstm-1"]: "earlier-run-hash1"}),
                            curves[curves["run_id"] == ids["adding-gru-0"]]
                            .replace({ids["adding-gru-0"]: "earlier-run-gone"})])
    old_curves.to_csv(folder / "demo_runs_curves.csv", index=False)
    capsys.readouterr()

    assert cli.main(["export", "--sweep", "demo", "--output", str(folder)]) == 0
    out = capsys.readouterr().out
    merged = pd.read_csv(folder / "demo_runs.csv", dtype=str, keep_default_na=False,
                         na_values=[""])
    assert not merged.duplicated(["sweep", "tag.rnnlab.config_hash"]).any()
    expected = {*ids.values(), "earlier-run-hash1", "earlier-run-gone"} - {ids["adding-lstm-1"]}
    assert set(merged["run_id"]) == expected and len(merged) == len(expected)
    assert merged.set_index("run_id").loc["earlier-run-hash1", "test_mse"] == "0.5"
    assert "3 rows from the store, 2 kept from the existing export" in out
    assert ids["adding-lstm-1"] in out  # the store's run left out is named
    assert list(merged.columns) == list(runs.columns)
    assert list(merged["run_id"]) == list(provenance.sort_rows(merged.sample(frac=1,
                                                                            random_state=0))["run_id"])
    new_curves = pd.read_csv(folder / "demo_runs_curves.csv")
    assert set(new_curves["run_id"]) == expected
    gone_loss = new_curves[(new_curves["run_id"] == "earlier-run-gone") &
                           (new_curves["key"] == "val_loss")]
    assert list(gone_loss["step"]) == [0, 1, 2]

    assert cli.main(["export", "--sweep", "demo", "--output", str(folder)]) == 0  # idempotent
    again = pd.read_csv(folder / "demo_runs.csv", dtype=str, keep_default_na=False,
                        na_values=[""])
    pd.testing.assert_frame_equal(again, merged)

    assert cli.main(["export", "--sweep", "demo", "--output", str(folder), "--replace"]) == 0
    replaced = pd.read_csv(folder / "demo_runs.csv")
    assert sorted(replaced["run_id"]) == sorted(ids.values())


@pytest.mark.parametrize("text", ["a,b\n1,2\n", "run_id,task,T,seed\nr1,adding,50,0\n"])
def test_a_file_in_the_way_that_is_no_export_is_refused(fake_store, monkeypatch, tmp_path,
                                                        capsys, text):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", fake_store[0])
    (tmp_path / "demo_runs.csv").write_text(text)  # no run_id; or no cell to sort by
    assert cli.main(["export", "--sweep", "demo", "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "not a runs export" in err and "--replace" in err
    assert (tmp_path / "demo_runs.csv").read_text() == text
    mlflow.set_tracking_uri(None)
