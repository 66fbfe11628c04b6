"""Reports: the comparison table from runs as `mlflow.search_runs` returns them, and the files and
plots written from a real tiny sweep."""

from __future__ import annotations

import html
import math
import re

import pandas as pd
import pytest

import datasets
from experiments.analysis import report, report_plots


def fake_runs(rows: list[dict]) -> pd.DataFrame:
    """Rows shaped like mlflow.search_runs output: (task, cell, T, seed, mse, solved, status)."""
    records = []
    for i, r in enumerate(rows):
        records.append({
            "run_id": f"r{i}", "status": r.get("mlflow_status", "FINISHED"),
            "tags.rnnlab.task": r["task"], "tags.rnnlab.cell": r["cell"],
            "tags.rnnlab.config_hash": f"h{i}", "tags.rnnlab.status": r.get("status", "FINISHED"),
            "tags.rnnlab.solved_metric": r.get("solved_metric", "mse"),
            "tags.rnnlab.baseline_metric": "mse", "tags.rnnlab.reason": r.get("reason"),
            "params.data.name": r["task"], "params.model.cell": r["cell"],
            "params.data.length": str(r["T"]), "params.train.seed": str(r["seed"]),
            "params.tracking.run_name": f"name{i}",
            "metrics.test_mse": r.get("mse"), "metrics.test_loss": r.get("mse"),
            "metrics.solved": r.get("solved"), "metrics.baseline": 0.167,
            "metrics.param_count": 100.0, "metrics.train_time_s": 2.0,
        })
    return pd.DataFrame(records)


RUNS = fake_runs([
    {"task": "adding", "cell": "lstm", "T": 50, "seed": 0, "mse": 0.1, "solved": 1.0},
    {"task": "adding", "cell": "lstm", "T": 50, "seed": 1, "mse": 0.3, "solved": 0.0},
    {"task": "adding", "cell": "gru", "T": 50, "seed": 0, "mse": 0.05, "solved": 1.0},
    {"task": "adding", "cell": "gru", "T": 100, "seed": 0, "mse": 0.16, "solved": 0.0},
    {"task": "imdb", "cell": "lstm", "T": 100, "seed": 0, "status": "SKIPPED",
     "reason": "put aclImdb_v1.tar.gz in /data"},
    {"task": "imdb", "cell": "gru", "T": 100, "seed": 0, "status": "SKIPPED",
     "reason": "put aclImdb_v1.tar.gz in /data"},
])


def test_key_metric_prefers_the_tagged_metric_then_the_fallbacks():
    metrics = {"test_loss": 0.5, "test_accuracy": 0.8, "test_bleu": float("nan")}
    assert report.key_metric(metrics, "loss") == ("loss", 0.5)
    assert report.key_metric(metrics) == ("accuracy", 0.8)
    assert report.key_metric({}, "mse") == (None, None)


def test_summary_table_is_mean_and_std_over_seeds_per_setting_and_cell():
    done = report.add_settings(report.completed(RUNS))
    table = report.summary_table(done, cell_order=["lstm", "gru"])
    assert list(table["setting"]) == ["adding (T=50)", "adding (T=50)", "adding (T=100)"]
    lstm = table[(table["cell"] == "lstm")].iloc[0]
    assert lstm["seeds"] == 2 and lstm["metric"] == "mse"
    assert lstm["mean"] == pytest.approx(0.2) and lstm["std"] == pytest.approx(math.sqrt(0.02))
    assert lstm["solved"] == "1/2" and lstm["mean ± std"] == "0.2 ± 0.14"
    assert lstm["chance"] == "0.167" and lstm["solved when"] == "mse < 0.01"
    gru_50 = table[(table["cell"] == "gru") & (table["setting"] == "adding (T=50)")].iloc[0]
    assert math.isnan(gru_50["std"]) and gru_50["solved"] == "1/1" and gru_50["mean ± std"] == "0.05"
    within = table[table["setting"] == "adding (T=50)"]
    assert list(within["cell"]) == ["lstm", "gru"]


def test_one_run_per_config_prefers_the_latest_completed_run():
    runs = fake_runs([
        {"task": "adding", "cell": "lstm", "T": 50, "seed": 0, "mse": 0.1},
        {"task": "adding", "cell": "lstm", "T": 50, "seed": 0, "mse": 0.2},
        {"task": "adding", "cell": "lstm", "T": 50, "seed": 0, "mlflow_status": "FAILED"},
        {"task": "adding", "cell": "gru", "T": 50, "seed": 0, "mlflow_status": "FAILED"},
    ])
    runs["tags.rnnlab.config_hash"] = ["a", "a", "a", "b"]
    runs["start_time"] = pd.to_datetime([1, 2, 3, 1], unit="s")
    kept = report.one_per_config(runs).set_index("tags.rnnlab.config_hash")
    assert kept.loc["a", "metrics.test_mse"] == 0.2 and kept.loc["b", "status"] == "FAILED"


def test_skipped_and_failed_runs_are_listed_with_their_reason():
    others = report.not_completed(RUNS)
    assert others.to_dict("records") == [{"task": "imdb", "cells": "gru, lstm", "status": "SKIPPED",
                                          "reason": "put aclImdb_v1.tar.gz in /data"}]


def test_a_pipe_inside_a_value_stays_in_its_markdown_cell():
    frame = pd.DataFrame({"claim": ["6 epochs | gru after 10"], "verdict": ["confirmed"]})
    row = report.markdown_table(frame).splitlines()[2]
    cells = [c.strip() for c in re.split(r"(?<!\\)\|", row.strip().strip("|"))]
    assert cells == ["6 epochs \\| gru after 10", "confirmed"]  # two cells, the pipe escaped


def test_report_files_and_plots_from_the_tiny_sweep(tiny_sweep, tiny_sweep_store, tmp_path):
    result = report.write_report(tiny_sweep.plan.name, tmp_path / "out")
    names = {p.relative_to(tmp_path / "out").as_posix() for p in result["files"]}
    assert {"summary.md", "summary.csv", "summary.html", "plots/final_metric.png",
            "plots/metric_vs_length.png"} <= names
    assert sum(n.startswith("plots/learning_curves_") for n in names) == 2
    assert all((tmp_path / "out" / n).stat().st_size > 0 for n in names)
    table = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert len(table) == 4 and set(table["seeds"]) == {1}
    assert set(table["setting"]) == {"adding (T=8)", "adding (T=12)"}
    assert set(table["cell"]) == {"lstm", "gru"}
    finished = {o.run.hash: o.result for o in tiny_sweep.passes[0] + tiny_sweep.passes[1]
                if o.status == "FINISHED"}
    metric = table["metric"].iloc[0]
    expected = sorted(r.metrics[metric] for r in finished.values())
    assert sorted(table["mean"]) == pytest.approx(expected, rel=1e-6)
    markdown = (tmp_path / "out" / "summary.md").read_text()
    assert "| setting" in markdown and "adding (T=12)" in markdown and "±" in markdown


def test_cli_report_prints_the_table_and_where_it_wrote(tiny_sweep, tiny_sweep_store, tmp_path,
                                                        capsys):
    from experiments import cli

    assert cli.main(["report", "--sweep", tiny_sweep.plan.name, "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"report written to {tmp_path}/" in out and "adding (T=8)" in out
    assert cli.main(["report", "--sweep", "no-such-sweep", "--output", str(tmp_path)]) == 1
    assert "no runs found for sweep 'no-such-sweep'" in capsys.readouterr().err


def test_report_page_states_goals_flags_provenance_and_links(fake_store, tmp_path, monkeypatch):
    uri, experiment_id, ids = fake_store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    result = report.write_report("demo", tmp_path, ui_url="http://localhost:5999/")
    page = (tmp_path / "summary.html").read_text()
    markdown = result["markdown"]
    for text in (markdown, html.unescape(page)):
        assert "adding (T=50)" in text and "lower is better" in text and "higher is better" in text
        assert "mse < 0.01" in text  # the adding task's solved threshold, from its DataSpec
        assert "multi30k (de→en)" in text
        assert "at chance (1/1)" in text and "BLEU near 0 (1/1)" in text
        assert "collapsed: 1 distinct of 5 samples" in text and "repeating words" in text
        assert "0123456789ab" in text and "tensorflow / CPU" in text  # provenance
        assert "Sample translations, gru × multi30k (de→en)" in text  # under its table
        assert "satz 2" in text and "sentence 2" in text and "satz 3" not in text  # three shown
    assert "`" not in page
    rows = {tuple(c.strip() for c in line.split("|")[1:5]) for line in markdown.splitlines()}
    assert ("adding (T=50)", "lstm", "2", "0.008 ± 0.0057") in rows  # mean ± std of two seeds
    assert ("adding (T=50)", "gru", "1", "0.166") in rows  # one seed: the value alone
    assert "baseline_metric" not in markdown
    for run_id in ids.values():
        assert f'href="http://localhost:5999/#/experiments/{experiment_id}/runs/{run_id}"' in page
    assert page.count('src="data:image/png;base64,') == len(
        [p for p in result["files"] if p.suffix == ".png"]) >= 3
    assert "<style>" in page and "<link" not in page and "<script" not in page  # self-contained


def test_learning_curves_leave_out_a_metric_equal_to_the_loss(fake_store, monkeypatch):
    uri, _, _ = fake_store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    runs = report.add_settings(report.load_runs("demo"))
    adding = runs[runs["task"] == "adding"]
    panels = report_plots._curves(adding, ["lstm", "gru"])
    assert [title for title, _, _ in panels] == ["loss (= mse)"]
    translation = report_plots._curves(runs[runs["task"] == "multi30k"], ["gru"])
    assert [title for title, _, _ in translation] == ["loss", "validation bleu"]


@pytest.mark.parametrize(("hyps", "flags"), [
    (["a man runs .", "a dog sits .", "two men run ."], []),
    (["a dog .", "a dog .", "a dog .", "a cat ."], ["collapsed: 2 distinct of 4 samples"]),
    (["the the the dog", "a a a a", "fine"], ["repeating words"]),
    (["", "", "x"], ["empty translations"]),
])
def test_translation_flags_from_the_sample_translations(hyps, flags):
    text = "".join(f"SRC: s\nREF: r\nHYP: {h}\n\n" for h in hyps)
    assert report.translation_flags(text) == flags


def test_metric_vs_length_draws_a_model_variant_as_its_own_line():
    runs = fake_runs([
        {"task": "adding", "cell": "lstm", "T": 50, "seed": 0, "mse": 0.001},
        {"task": "adding", "cell": "lstm", "T": 100, "seed": 0, "mse": 0.003},
        {"task": "adding", "cell": "lstm", "T": 100, "seed": 1, "mse": 0.005},
        {"task": "adding", "cell": "lstm", "T": 100, "seed": 0, "mse": 0.16},  # the ablation
        {"task": "adding", "cell": "gru", "T": 50, "seed": 0, "mse": 0.002},
    ])
    runs["params.model.unit_forget_bias"] = [None, None, None, "False", None]
    runs = report.add_settings(runs).assign(length=lambda r: pd.to_numeric(r["params.data.length"]))
    # a param logged on some runs only (the others predate it or leave it unset) still varies
    assert "adding (T=100, unit_forget_bias=False)" in set(runs["setting"])
    lines = {label: stats for label, _, _, stats in
             report.length_lines(runs, "mse", ["lstm", "gru"])}
    assert set(lines) == {"lstm", "lstm, unit_forget_bias=False", "gru"}
    assert lines["lstm"].loc[100.0, "mean"] == pytest.approx(0.004)  # the ablation not averaged in
    assert lines["lstm"].loc[100.0, "count"] == 2
    assert lines["lstm, unit_forget_bias=False"]["mean"].tolist() == [0.16]


def test_metric_vs_length_draws_a_longer_training_budget_as_its_own_line():
    runs = fake_runs([
        {"task": "copy", "cell": "lstm", "T": 50, "seed": 0, "mse": 0.17},
        {"task": "copy", "cell": "lstm", "T": 100, "seed": 0, "mse": 0.17},
        {"task": "copy", "cell": "lstm", "T": 100, "seed": 0, "mse": 0.01},  # long_budget.yaml
    ])
    runs["params.train.epochs"] = ["12", "12", "20"]
    runs = report.add_settings(runs).assign(length=lambda r: pd.to_numeric(r["params.data.length"]))
    lines = {label: stats["mean"].tolist() for label, _, _, stats in
             report.length_lines(runs, "mse", ["lstm"])}
    assert lines == {"lstm, epochs=12": [0.17, 0.17], "lstm, epochs=20": [0.01]}


def test_provenance_shortens_the_runs_commits_but_keeps_their_dirty_mark():
    commit = "1b69f84f48eb0a70eab4a53b62310bd635fc9365"
    runs = fake_runs([{"task": "adding", "cell": "lstm", "T": 50, "seed": s, "mse": 0.1}
                      for s in range(3)])
    runs["tags.rnnlab.git_commit"] = [commit, commit + "+dirty", commit]
    assert report.provenance(runs)["code (runs)"] == "1b69f84f48eb, 1b69f84f48eb+dirty"


def test_varying_params_do_not_depend_on_the_column_order_mlflow_returns():
    runs = pd.DataFrame({"params.train.epochs": ["12", "20"], "params.data.num_train": ["3200", "10000"],
                         "params.data.batch_size": ["64", "32"], "params.data.length": ["100", "100"]})
    expected = ["params.data.batch_size", "params.data.num_train", "params.train.epochs"]
    assert report.varying_params(runs) == expected
    assert report.varying_params(runs[runs.columns[::-1]]) == expected


def test_how_a_run_was_compiled_does_not_name_a_setting():
    """`train.jit_compile` is logged by the runs made since it existed and missing from older ones:
    how a run was compiled, not what it computed (left out of config_hash too)."""
    runs = pd.DataFrame({"params.train.jit_compile": ["auto", None], "params.train.verbose": ["2", "0"],
                         "params.data.length": ["9", "50"]})
    assert report.varying_params(runs) == ["params.data.length"]


def test_final_metric_puts_an_error_like_metric_on_a_log_axis(tmp_path, monkeypatch):
    """The gated cells' MSE of 1e-4 beside the vanilla RNN's 0.17: a log axis for the adding
    problem, a linear one for an accuracy."""
    from experiments.goals import GoalView

    table = pd.DataFrame({
        "setting": ["adding (T=100)"] * 2 + ["imdb"] * 2, "cell": ["vanilla", "gru"] * 2,
        "mean": [0.17, 1e-4, 0.76, 0.82], "std": [float("nan")] * 4, "seeds": [1] * 4})
    goals = {"adding (T=100)": GoalView("mse", mode="min", chance=0.167, chance_metric="mse",
                                        threshold=0.01),
             "imdb": GoalView("accuracy", mode="at_least", chance=0.5, chance_metric="accuracy",
                              threshold=0.88)}
    figures = []
    monkeypatch.setattr(report_plots, "save", lambda fig, path, plt: figures.append(fig) or path)
    report.plot_final_metric(table, tmp_path, goals)
    adding, imdb, *_ = figures[0].axes
    assert adding.get_yscale() == "log" and imdb.get_yscale() == "linear"
    low, high = adding.get_ylim()
    assert low < 1e-4 and high > 0.17  # both bars and the chance line within view
    assert report.final_metric_scale(goals["adding (T=100)"], [0.0, 0.1]) == "linear"


# The table report.py kept by hand before the tasks declared what defines their settings
# (`Reads.defines`, `Setting.defines`), as it stood at 424bbe9.
HAND_WRITTEN_SETTING_PARAMS = {
    "synthetic": ("params.data.length", "params.data.variant"),
    "multi30k": ("params.data.source_lang", "params.data.target_lang", "params.model.attention"),
    "imdb": ("params.data.subset",),
}


@pytest.mark.parametrize("task", datasets.names())
def test_the_defining_columns_come_from_the_declarations_as_the_hand_written_table_had_them(task):
    """Equal for every task, less `data.variant` on the generated tasks that never read it
    (adding, copy, reber: their runs log no variant, so it was never shown)."""
    generated = datasets.REGISTRY[task].startswith("datasets.synthetic.")
    old = HAND_WRITTEN_SETTING_PARAMS["synthetic" if generated else task]
    read = datasets.reads(task).data
    assert report.setting_params(task) == tuple(
        c for c in old if not c.startswith("params.data.") or c.removeprefix("params.data.") in read)
    assert report.setting_params("a task since renamed") == ()


def test_a_generated_task_without_a_variant_is_labelled_as_before_beside_one_with_it():
    runs = fake_runs([
        {"task": "adding", "cell": "lstm", "T": 50, "seed": 0, "mse": 0.1},
        {"task": "adding", "cell": "gru", "T": 50, "seed": 0, "mse": 0.2},
        {"task": "temporal_order", "cell": "lstm", "T": 50, "seed": 0, "mse": 0.3},
    ]).assign(**{"params.data.variant": [None, None, "3"]})
    assert list(report.add_settings(runs)["setting"]) == [
        "adding (T=50)", "adding (T=50)", "temporal_order (T=50, variant=3)"]
