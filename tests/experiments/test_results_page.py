"""The results page (`rnnlab results`): the claims' verdict rules on synthetic runs, and the page and
per-run CSV written from a small store whose runs follow a sweep file's plan."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from experiments.analysis import report
from experiments.analysis import results_page as rp
from experiments.analysis.results_page import CONFIRMED, CONTRADICTED, NOT_REPRODUCED, NOT_RUN

GATED = ("lstm", "peephole", "coupled", "gru")
METRIC = {"adding": ("mse", "min", 0.01, 1 / 6), "spike_timing": ("on_time", "at_least", 1.0, 0.1),
          "imdb": ("accuracy", "at_least", 0.88, 0.5), "copy": ("recall_accuracy", "max", 0.99, 0.1),
          "multi30k": ("bleu", "max", 1000.0, 0.0),
          "reber": ("reber_success", "at_least", 1.0, 0.5)}


def frame(rows: list[tuple]) -> pd.DataFrame:
    """Completed runs shaped like `mlflow.search_runs`: (task, cell, T, seed, value[, ablation]);
    solved follows the task's threshold."""
    records = []
    for i, (task, cell, length, seed, value, *ablation) in enumerate(rows):
        metric, mode, threshold, chance = METRIC[task]
        solved = value < threshold if mode == "min" else value >= threshold
        records.append({
            "run_id": f"r{i}", "status": "FINISHED", "start_time": pd.Timestamp(0, unit="s"),
            "tags.rnnlab.task": task, "tags.rnnlab.cell": cell, "tags.rnnlab.config_hash": f"h{i}",
            "tags.rnnlab.status": "FINISHED", "tags.rnnlab.solved_metric": metric,
            "tags.rnnlab.baseline_metric": metric, "tags.rnnlab.solved_mode": mode,
            "tags.rnnlab.solved_threshold": str(threshold),
            "params.data.name": task, "params.model.cell": cell, "params.data.length": str(length),
            "params.train.seed": str(seed), "params.train.epochs": "3",
            "params.model.unit_forget_bias": "False" if ablation and ablation[0] else "None",
            f"metrics.test_{metric}": value, "metrics.test_loss": value,
            "metrics.solved": float(solved), "metrics.baseline": chance,
        })
    return pd.DataFrame(records)


def adding(values: dict[str, float], length: int = 200, seeds=(0,)) -> list[tuple]:
    return [("adding", cell, length, seed, value) for cell, value in values.items() for seed in seeds]


SOLVED_BY_GATED = {"vanilla": 0.168, **dict.fromkeys(GATED, 0.001)}


def test_adding_claim_confirmed_when_vanilla_stays_at_the_baseline_and_gated_cells_solve_it():
    verdict = rp.adding_rule(rp.evidence(frame(adding(SOLVED_BY_GATED, seeds=(0, 1)))))
    assert verdict.verdict == CONFIRMED
    assert "vanilla MSE 0.168 ± 0 (n = 2, solved 0/2)" in verdict.ours


def test_adding_claim_not_run_yet_without_the_long_setting_or_a_cell():
    short = rp.evidence(frame(adding(SOLVED_BY_GATED, length=100)))
    assert rp.adding_rule(short).verdict == NOT_RUN
    no_gru = {k: v for k, v in SOLVED_BY_GATED.items() if k != "gru"}
    verdict = rp.adding_rule(rp.evidence(frame(adding(no_gru))))
    assert verdict.verdict == NOT_RUN and "for gru" in verdict.ours


def test_adding_claim_not_run_when_the_vanilla_run_logged_no_baseline():
    runs = frame(adding(SOLVED_BY_GATED))
    runs.loc[runs["tags.rnnlab.cell"] == "vanilla", "metrics.baseline"] = float("nan")
    verdict = rp.adding_rule(rp.evidence(runs))
    assert verdict.verdict == NOT_RUN and "for vanilla" in verdict.ours


def test_adding_claim_not_reproduced_when_a_gated_cell_fails_contradicted_when_vanilla_learns():
    verdict = rp.adding_rule(rp.evidence(frame(adding({**SOLVED_BY_GATED, "gru": 0.1}))))
    assert verdict.verdict == NOT_REPRODUCED
    assert verdict.cause.startswith("gru not solved") and "3 epochs" in verdict.cause
    assert "gru 0.1 (n = 1, solved 0/1)" in verdict.ours  # one seed: no ± std
    learns = rp.adding_rule(rp.evidence(frame(adding({**SOLVED_BY_GATED, "vanilla": 0.05}))))
    assert learns.verdict == CONTRADICTED and "vanilla" in learns.cause


def test_ablation_runs_are_not_evidence_for_the_default_bias_claims():
    rows = adding(SOLVED_BY_GATED) + [("adding", "gru", 200, 1, 0.1, True)]
    assert rp.adding_rule(rp.evidence(frame(rows))).verdict == CONFIRMED


@pytest.mark.parametrize("bias1, bias0, expected", [
    (0.001, 0.16, CONFIRMED), (0.16, 0.001, CONTRADICTED),
    (0.160, 0.175, NOT_REPRODUCED),  # both at the adding baseline (1/6): a tie, not a win
])
def test_forget_bias_claim_compares_bias_1_with_bias_0_at_the_same_setting(bias1, bias0, expected):
    rows = [("adding", "lstm", 100, 0, bias1), ("adding", "lstm", 100, 0, bias0, True),
            ("adding", "lstm", 200, 0, 0.5)]  # another T: not the ablated setting's evidence
    verdict = rp.forget_bias_rule(rp.evidence(frame(rows)))
    assert verdict.verdict == expected
    assert ("(both at chance)" in verdict.ours) == (expected == NOT_REPRODUCED)


@pytest.mark.parametrize("lstm_loss, expected", [(0.18, CONFIRMED), (0.05, CONTRADICTED)])
def test_copy_claim_compares_the_test_loss_with_the_memoryless_baseline(lstm_loss, expected):
    runs = frame([("copy", cell, 100, 0, 0.2) for cell in ("vanilla", "lstm", "gru")])
    runs["metrics.baseline"] = 0.17  # 10 ln 8 / 120, the baseline the task logs
    runs["metrics.test_loss"] = [0.17, lstm_loss, 0.01]
    verdict = rp.copy_rule(rp.evidence(runs))
    assert verdict.verdict == expected
    assert "gru 0.0588 (n = 1" in verdict.ours  # loss / baseline
    assert rp.copy_rule(rp.evidence(runs[runs["tags.rnnlab.cell"] != "lstm"])).verdict == NOT_RUN


def test_copy_claim_is_judged_per_setting_so_short_runs_do_not_average_away_a_long_one():
    runs = frame([("copy", cell, length, 0, 0.2) for length in (100, 200, 300, 100)
                  for cell in ("vanilla", "lstm")])
    runs["metrics.baseline"] = 0.17
    runs["metrics.test_loss"] = [0.17] * 7 + [0.85 * 0.17]  # the LSTM below it, trained longer
    runs.loc[6:, "params.train.epochs"] = "30"
    verdict = rp.copy_rule(rp.evidence(runs))
    assert verdict.verdict == CONTRADICTED and verdict.cause.startswith("lstm got below")
    assert "copy (T=100, epochs=30): vanilla 1 (n = 1, solved 0/1), lstm 0.85 (n = 1" in verdict.ours


@pytest.mark.parametrize("peephole, lstm, expected", [
    (1.0, 0.5, CONFIRMED), (0.5, 1.0, CONTRADICTED), (1.0, 1.0, NOT_REPRODUCED),
])
def test_peephole_claim_compares_the_two_lstms_per_setting(peephole, lstm, expected):
    rows = [("spike_timing", "peephole", 100, 0, peephole), ("spike_timing", "lstm", 100, 0, lstm)]
    assert rp.peephole_rule("spike_timing")(rp.evidence(frame(rows))).verdict == expected


def test_variant_claim_holds_unless_the_variant_loses_in_more_than_a_quarter_of_settings():
    rows = [("adding", cell, length, 0, 0.001) for cell in ("lstm", "coupled") for length in (50, 100)]
    rule = rp.variant_rule("coupled", "lstm")
    tied = rule(rp.evidence(frame(rows)))
    assert tied.verdict == CONFIRMED and "tied in 2" in tied.ours
    loses = rule(rp.evidence(frame([*rows[:3], ("adding", "coupled", 100, 0, 0.2)])))
    assert loses.verdict == CONTRADICTED
    assert "better in 0; tied in 1; worse in 1 (adding (T=100))" in loses.ours
    assert rule(rp.evidence(frame(rows[:2]))).verdict == NOT_RUN  # no coupled run


def test_threshold_claim_needs_every_gated_cell():
    good = [("imdb", cell, None, 0, 0.9) for cell in ("vanilla", *GATED)]
    assert rp.threshold_rule("imdb", 0.88, "IMDB")(rp.evidence(frame(good))).verdict == CONFIRMED
    one_short = [*good[:-1], ("imdb", "gru", None, 0, 0.85)]
    verdict = rp.threshold_rule("imdb", 0.88, "IMDB")(rp.evidence(frame(one_short)))
    assert verdict.verdict == NOT_REPRODUCED and verdict.cause.startswith("gru below 0.88")


def test_reber_and_threshold_claims_are_judged_at_the_longest_training_every_cell_had():
    short = frame([("imdb", cell, None, 0, 0.85) for cell in GATED])
    long = frame([("imdb", cell, None, 0, 0.9) for cell in GATED])
    long["params.train.epochs"] = "30"
    for runs in (short, long):
        runs["params.data.num_train"], runs["params.data.batch_size"] = "3200", "64"
    rule = rp.threshold_rule("imdb", 0.88, "IMDB")
    both = pd.concat([short, long], ignore_index=True)
    verdict = rule(rp.evidence(both))
    assert verdict.verdict == CONFIRMED and "gru accuracy 0.9 (n = 1" in verdict.ours
    assert verdict.ours.endswith("(judged at the longest training every cell had: 30 epochs, "
                                 "3200 training sequences)")
    assert list(report.updates(both)) == [150] * 4 + [1500] * 4
    no_gru = pd.concat([short, long[long["tags.rnnlab.cell"] != "gru"]], ignore_index=True)
    assert rule(rp.evidence(no_gru)).verdict == NOT_REPRODUCED  # the longer budget lacks a cell

    reber = frame([("reber", cell, 50, 0, 0.5) for cell in ("lstm", "peephole", "coupled")])
    solved = frame([("reber", cell, 50, 0, 1.0) for cell in ("lstm", "peephole", "coupled")])
    solved["params.train.epochs"] = "30"
    for runs in (reber, solved):
        runs["params.data.num_train"], runs["params.data.batch_size"] = "3200", "64"
    verdict = rp.reber_rule(rp.evidence(pd.concat([reber, solved], ignore_index=True)))
    assert verdict.verdict == CONFIRMED and verdict.ours.startswith("3/3 LSTM-family runs solved")


def test_compare_uses_solved_share_then_standard_errors():
    both_solved = rp.Outcome(3, 0.001, 0.0005, 3), rp.Outcome(3, 0.004, 0.0001, 3)
    assert rp.compare(*both_solved, lower_is_better=True) == 0
    clear = rp.Outcome(3, 0.80, 0.01, None), rp.Outcome(3, 0.70, 0.01, None)
    assert rp.compare(*clear, lower_is_better=False) == 1
    assert rp.compare(*clear, lower_is_better=True) == -1
    noisy = rp.Outcome(3, 0.80, 0.2, None), rp.Outcome(3, 0.70, 0.2, None)
    assert rp.compare(*noisy, lower_is_better=False) == 0


def translations(bleu: dict[tuple[str, str | None], float]) -> pd.DataFrame:
    """Multi30k runs: (cell, attention) -> BLEU."""
    runs = frame([("multi30k", cell, None, 0, value) for (cell, _), value in bleu.items()])
    runs["params.model.attention"] = [str(attention) for (_, attention) in bleu]
    return runs


@pytest.mark.parametrize("gru_without, expected", [(20.0, CONFIRMED), (24.5, NOT_REPRODUCED),
                                                   (30.0, CONTRADICTED)])
def test_attention_claim_compares_each_gated_cell_with_and_without(gru_without, expected):
    bleu = {**{(c, "bahdanau"): 25.0 for c in GATED}, **{(c, None): 15.0 for c in GATED}}
    verdict = rp.attention_rule(rp.evidence(translations({**bleu, ("gru", None): gru_without})))
    assert verdict.verdict == expected
    assert f"gru BLEU 25 with, {gru_without:g} without (n = 1, 1)" in verdict.ours


def test_attention_claim_pairs_runs_of_one_budget_and_reads_bahdanau_only():
    bleu = {**{(c, "bahdanau"): 25.0 for c in GATED}, **{(c, None): 15.0 for c in GATED}}
    runs = translations(bleu)
    longer = translations({("gru", None): 40.0, ("gru", "luong"): 50.0})  # 10 epochs, no pair
    longer["params.train.epochs"] = "10"
    both = pd.concat([runs, longer], ignore_index=True)
    both["params.data.num_train"], both["params.data.batch_size"] = "29000", "128"
    verdict = rp.attention_rule(rp.evidence(both))
    assert verdict.verdict == CONFIRMED
    assert "gru BLEU 25 with, 15 without (n = 1, 1)" in verdict.ours


def test_luong_claim_reads_luong_runs_against_the_same_runs_without():
    bleu = {**{(c, "bahdanau"): 25.0 for c in GATED}, **{(c, None): 15.0 for c in GATED},
            **{(c, "luong"): 20.0 for c in GATED}, ("gru", "luong"): 14.0}
    ev = rp.evidence(translations(bleu))
    verdict = rp.attention_rule(ev, attention="luong")
    assert verdict.verdict == CONTRADICTED and "gru better without attention" in verdict.cause
    assert "lstm BLEU 20 with, 15 without (n = 1, 1)" in verdict.ours
    [luong] = [c for c in rp.CLAIMS if c.source == "Luong et al. 2015"]
    assert luong.rule(ev) == verdict
    assert rp.attention_rule(ev).verdict == CONFIRMED  # Bahdanau's claim: its own runs

    longer = translations({("lstm", "luong"): 30.0, ("lstm", None): 25.0})
    longer["params.train.epochs"] = "10"
    runs = pd.concat([translations(bleu), longer], ignore_index=True)
    runs["params.data.batch_size"] = "128"
    verdict = rp.attention_rule(rp.evidence(runs), attention="luong")
    assert "lstm BLEU 30 with, 25 without" in verdict.ours  # its pair at its largest budget
    assert verdict.cause == "gru better without attention after 3 epochs"  # gru's pair's budget


def test_luong_claim_leaves_out_the_ablations_of_its_model():
    """A run with the deep readout (or without input feeding) is not the paper's model: at the same
    budget it must not count as another seed of Luong attention."""
    bleu = {**{(c, "luong"): 20.0 for c in GATED}, **{(c, None): 15.0 for c in GATED}}
    ablated = translations({("gru", "luong"): 2.0})
    ablated["params.model.readout"] = "deep"
    runs = pd.concat([translations(bleu), ablated], ignore_index=True)
    verdict = rp.attention_rule(rp.evidence(runs), attention="luong")
    assert verdict.verdict == CONFIRMED and "gru BLEU 20 with, 15 without (n = 1, 1)" in verdict.ours


def test_attention_claim_waits_for_every_gated_cell_both_ways():
    bleu = {("gru", "bahdanau"): 25.0, ("gru", None): 15.0, ("lstm", "bahdanau"): 24.0}
    verdict = rp.attention_rule(rp.evidence(translations(bleu)))
    assert verdict.verdict == NOT_RUN and "not yet both ways: lstm, peephole, coupled" in verdict.ours


def test_every_claim_gives_a_verdict_on_no_runs_at_all():
    table = rp.claims_table(rp.evidence(pd.DataFrame(columns=["status", "run_id"])))
    assert len(table) == len(rp.CLAIMS) and set(table["verdict"]) == {NOT_RUN}


# --- the page from a store ------------------------------------------------------------------------

SWEEP = {
    "name": "lit",
    "base": {"data": {"num_train": 64, "num_val": 32, "num_test": 32}, "model": {"units": 4},
             "train": {"epochs": 1}},
    "tasks": [{"data.name": "adding", "data.length": 200, "train.seed": 0},
              {"data.name": "adding", "data.length": 200, "train.seed": 1},
              {"data.name": "adding", "data.length": 100, "train.seed": 0},
              {"data.name": "adding", "data.length": 100, "train.seed": 0,
               "model.unit_forget_bias": False}],
    "grid": {"model.cell": ["vanilla", "lstm", "peephole", "coupled", "gru"]},
}
FAILED = ("gru", 200, 1)  # the planned run that failed: missing from the finished ones


@pytest.fixture(scope="module")
def lit_store(tmp_path_factory):
    """A store with sweep "lit" (18 planned runs) as experiments.run logs it: 17 finished runs —
    vanilla at the adding baseline, gated cells solved, the forget-gate-bias-0 LSTMs not — and one
    failed; returns (uri, sweep file)."""
    import mlflow

    from experiments.orchestration.plan import load_sweep

    folder = tmp_path_factory.mktemp("lit_store")
    sweep_file = folder / "lit.yaml"
    sweep_file.write_text(yaml.safe_dump(SWEEP))
    planned = load_sweep(sweep_file).runs
    uri = f"sqlite:///{folder}/mlflow.db"
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("rnn-cell-lab", artifact_location=str(folder / "mlruns"))
    parent = client.create_run(experiment, run_name="lit", tags={
        "rnnlab.sweep": "lit", "rnnlab.role": "sweep", "rnnlab.sweep_file": str(sweep_file),
        "rnnlab.sweep_runs": str(len(planned))})
    for i, p in enumerate(planned):
        c = p.config
        ablated = c.model.unit_forget_bias is False
        failed = (c.model.cell, c.data.length, c.train.seed) == FAILED
        mse = 0.168 if c.model.cell == "vanilla" or ablated else 0.001 * (1 + c.train.seed)
        run = client.create_run(experiment, run_name=f"run{i}", tags={
            "mlflow.parentRunId": parent.info.run_id, "rnnlab.sweep": "lit",
            "rnnlab.task": "adding", "rnnlab.cell": c.model.cell, "rnnlab.config_hash": p.hash,
            "rnnlab.status": "FAILED" if failed else "FINISHED", "rnnlab.family": "long_dependency",
            "rnnlab.solved_metric": "mse", "rnnlab.baseline_metric": "mse",
            "rnnlab.solved_mode": "min", "rnnlab.solved_threshold": "0.01",
            "rnnlab.git_commit": "0123456789abcdef", "rnnlab.claimed_by": "labhost:42"})
        for key, value in {"data.name": "adding", "model.cell": c.model.cell,
                           "data.length": c.data.length, "train.seed": c.train.seed,
                           "train.epochs": 1, "model.units_used": 4,
                           "model.unit_forget_bias": c.model.unit_forget_bias}.items():
            client.log_param(run.info.run_id, key, "None" if value is None else value)
        if not failed:
            for key, value in {"test_mse": mse, "test_loss": mse, "solved": float(mse < 0.01),
                               "baseline": 1 / 6, "param_count": 100 + i,
                               "train_time_s": 2.0}.items():
                client.log_metric(run.info.run_id, key, value)
            for step in range(2):
                client.log_metric(run.info.run_id, "train_loss", mse * (2 - step), step=step)
        client.set_terminated(run.info.run_id, "FAILED" if failed else "FINISHED")
    client.set_terminated(parent.info.run_id)
    return uri, sweep_file, planned


@pytest.fixture(scope="module")
def lit_page(lit_store, tmp_path_factory):
    uri, sweep_file, _ = lit_store
    output = tmp_path_factory.mktemp("lit_page")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        result = rp.write_results("lit", output, sweep_file=sweep_file, gradients=False)
    return result, output


def test_page_counts_planned_and_finished_runs_and_lists_the_missing(lit_page, lit_store):
    result, _ = lit_page
    planned = lit_store[2]
    text = result["markdown"]
    assert f"{len(planned) - 1} of {len(planned)} planned runs finished" in text
    assert "- adding (T=200, seed=1): gru" in text
    assert "labhost" in text and "0123456789ab" in text
    assert "34 s (0 h 00 min) of it training" in text  # 17 finished runs × 2.0 s


def test_page_keeps_the_ablation_rows_apart_and_shows_no_error_bar_for_one_seed(lit_page):
    text = lit_page[0]["markdown"]
    ablation = [line for line in text.splitlines() if "unit_forget_bias=False" in line
                and line.startswith("|")]
    assert [line.split("|")[2].strip() for line in ablation] == ["lstm", "peephole", "coupled"]
    assert all("| 0.168 " in line and "0/1" in line for line in ablation)
    plain_lstm = next(line for line in text.splitlines()
                      if line.startswith("| adding (T=100) ") and "| lstm " in line)
    assert "| 0.001 " in plain_lstm and "±" not in plain_lstm
    lstm_200 = next(line for line in text.splitlines()
                    if line.startswith("| adding (T=200) ") and "| lstm " in line)
    assert "| 2 " in lstm_200 and "0.0015 ± 0.00071" in lstm_200


def test_page_draws_the_ablation_as_its_own_line_and_reads_the_commit_before_writing(
        lit_store, tmp_path, monkeypatch):
    """The metric-vs-T plot gets the ablation runs (a line of their own, not averaged into the
    LSTM's), and the code's commit is read while the previous page's files are still there, so a
    page regenerated from a clean checkout is not marked "+dirty" by its own stale plots."""
    from experiments.analysis import report
    from experiments.recording import store

    uri, sweep_file, _ = lit_store
    stale = tmp_path / "results" / "gradients_adding.png"  # gradients=False: not redrawn
    stale.parent.mkdir()
    stale.write_bytes(b"old plot")
    seen = {}
    monkeypatch.setattr(store, "git_commit", lambda: seen.setdefault("stale", []).append(
        stale.exists()) or "0123456789abcdef")
    drawn = report.plot_metric_vs_length
    monkeypatch.setattr(report, "plot_metric_vs_length", lambda rows, *a: seen.setdefault(
        "lines", [line[0] for line in report.length_lines(rows[rows["task"] == "adding"], "mse",
                                                          ["lstm"])]) and drawn(rows, *a))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    rp.write_results("lit", tmp_path, sweep_file=sweep_file, gradients=False)
    assert seen["stale"] and all(seen["stale"])
    assert {"lstm", "lstm, unit_forget_bias=False"} <= set(seen["lines"])


def test_page_gives_the_claims_verdicts_from_the_runs(lit_page):
    claims = lit_page[0]["claims"].set_index("topic")
    assert claims.loc["adding problem", "verdict"] == CONFIRMED
    assert claims.loc["forget-gate bias 1", "verdict"] == CONFIRMED
    assert claims.loc["copy memory", "verdict"] == NOT_RUN
    assert "| forget-gate bias 1 " in lit_page[0]["markdown"]


def test_runs_csv_has_one_row_per_run_with_its_columns(lit_page, lit_store):
    _, output = lit_page
    table = pd.read_csv(output / "results" / "lit_runs.csv")
    assert len(table) == len(lit_store[2])  # the failed run too
    for column in [*rp.CSV_COLUMNS, "test_mse", "test_loss", *rp.CSV_TAIL]:
        assert column in table.columns, column
    failed = table[table["status"] == "FAILED"]
    assert failed[["cell", "T", "seed"]].values.tolist() == [list(FAILED)]
    assert table["run_id"].is_unique and set(table["epochs_run"].dropna()) == {2}
    assert list(table["T"]) == sorted(table["T"])


def test_page_links_its_plots_and_a_rerun_overwrites(lit_page, lit_store):
    result, output = lit_page
    links = [line for line in result["markdown"].splitlines() if line.startswith("![")]
    assert links and all((output / line.split("](")[1].rstrip(")")).is_file() for line in links)
    stale = output / "results" / "learning_curves_gone.png"
    stale.write_bytes(b"old")
    uri, sweep_file, _ = lit_store
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setattr(rp.report, "plot_metric_vs_length", lambda *a: 1 / 0)
        with pytest.raises(ZeroDivisionError):  # a failure part-way keeps the previous files
            rp.write_results("lit", output, sweep_file=sweep_file, gradients=False)
        assert stale.exists() and (output / "RESULTS.md").read_text() == result["markdown"]
        patch.undo()
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        again = rp.write_results("lit", output, sweep_file=sweep_file, gradients=False)
    assert not stale.exists()
    strip = [line for line in again["markdown"].splitlines() if "**generated**" not in line]
    assert strip == [line for line in result["markdown"].splitlines() if "**generated**" not in line]


def test_gradient_flow_notes_the_runs_it_lacks(lit_page):
    jobs, notes = rp.gradient_jobs(rp.evidence(pd.DataFrame(columns=["status", "run_id"])), 100)
    assert jobs == [] and [n.split(" (")[0] for n in notes] == list(rp.GRADIENT_TASKS)


def test_gradient_flow_takes_the_pages_own_sweeps_run_where_a_companion_has_one_too(monkeypatch):
    from experiments.analysis import gradients

    runs = frame([("copy", "lstm", 100, 0, 0.1), ("copy", "lstm", 100, 0, 0.12)])
    runs["tags.rnnlab.sweep"] = ["long_budget", "study"]
    monkeypatch.setattr(gradients, "run_config", lambda run_id: (run_id, 4))
    jobs, _ = rp.gradient_jobs(rp.evidence(runs), 100, sweep="study")
    assert [job.run_id for job in jobs] == ["r1"]


def test_progress_matches_runs_by_setting_when_the_config_hashes_moved(lit_store):
    planned = lit_store[2]
    runs = pd.DataFrame([{
        "run_id": f"r{i}", "status": "FINISHED", "tags.rnnlab.status": "FINISHED",
        "tags.rnnlab.config_hash": f"old{i}", "params.data.name": p.config.data.name,
        "params.model.cell": p.config.model.cell, "params.data.length": str(p.config.data.length),
        "params.train.seed": str(p.config.train.seed),
        "params.model.unit_forget_bias": str(p.config.model.unit_forget_bias)}
        for i, p in enumerate(planned[1:])])
    done = rp.progress(planned, runs)
    assert (done["finished"], done["planned"]) == (len(planned) - 1, len(planned))
    first = planned[0].config
    assert done["missing"] == {f"adding (T={first.data.length}, seed=0)": [first.model.cell]}


def test_cli_results_exits_1_for_a_sweep_without_runs(lit_store, monkeypatch, capsys):
    from experiments import cli

    monkeypatch.setenv("MLFLOW_TRACKING_URI", lit_store[0])
    assert cli.main(["results", "--sweep", "nope", "--no-gradients"]) == 1
    assert "no runs found for sweep 'nope'" in capsys.readouterr().err


def test_cli_results_refuses_another_sweeps_file_and_bad_numbers(lit_store, tmp_path, monkeypatch,
                                                                  capsys):
    from experiments import cli

    monkeypatch.setenv("MLFLOW_TRACKING_URI", lit_store[0])
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({**SWEEP, "name": "other"}))
    args = ["results", "--sweep", "lit", "--output", str(tmp_path), "--no-gradients"]
    assert cli.main([*args, "--sweep-file", str(other)]) == 2
    assert "plans sweep 'other', not 'lit'" in capsys.readouterr().err
    assert cli.main([*args, "--gradient-samples", "0"]) == 2
    assert "--gradient-samples must be >= 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "RESULTS.md").exists()


def test_gradient_flow_measures_the_sweeps_own_trained_models(tiny_sweep, tiny_sweep_store,
                                                              tmp_path):
    """The tiny sweep trained lstm and gru on adding at T = 8 and logged their models."""
    from experiments.analysis import report

    ev = rp.evidence(report.load_runs("tiny"))
    png, notes = rp.gradient_flow(ev, tmp_path, length=8, samples=8)
    assert png is not None and png.is_file()
    curves = pd.read_csv(png.with_suffix(".csv"))
    assert set(curves["cell"]) == {"lstm", "gru"} and set(curves["stage"]) == {"init", "trained"}
    assert set(curves["run_id"]) == set(ev.loc[ev["length"] == 8, "run_id"])
    assert (curves["grad_norm_mean"] > 0).all()
    assert any(n.startswith("adding (T = 8, seed 0): no finished run yet for vanilla") for n in notes)
    assert any(n.startswith("copy (T = 8") for n in notes)


def test_a_companion_sweep_joins_the_tables_and_csv_but_not_the_progress(lit_store, tmp_path,
                                                                        monkeypatch):
    import mlflow

    uri, sweep_file, planned = lit_store
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("rnn-cell-lab").experiment_id
    run = client.create_run(experiment, run_name="companion", tags={
        "rnnlab.sweep": "lit_extra", "rnnlab.task": "adding", "rnnlab.cell": "gru",
        "rnnlab.config_hash": "companion", "rnnlab.status": "FINISHED",
        "rnnlab.solved_metric": "mse", "rnnlab.baseline_metric": "mse"})
    for key, value in {"data.name": "adding", "model.cell": "gru", "data.length": 400,
                       "train.seed": 0}.items():
        client.log_param(run.info.run_id, key, value)
    for key, value in {"test_mse": 0.123, "test_loss": 0.123, "solved": 0.0, "baseline": 1 / 6}.items():
        client.log_metric(run.info.run_id, key, value)
    client.set_terminated(run.info.run_id)
    client.create_run(experiment, run_name="still training", tags={  # not on the page, but counted
        "rnnlab.sweep": "lit_extra", "rnnlab.task": "adding", "rnnlab.cell": "lstm",
        "rnnlab.config_hash": "companion2"})
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    text = rp.write_results("lit", tmp_path, sweep_file=sweep_file, gradients=False,
                            also=["lit_extra"])["markdown"]
    assert f"{len(planned) - 1} of {len(planned)} planned runs finished" in text
    assert "the 1 finished run of sweep `lit_extra`" in text
    assert "1 more not finished (running, failed or killed), left out" in text
    assert any(line.startswith("| adding (T=400) ") and "0.123" in line for line in text.splitlines())
    rows = pd.read_csv(tmp_path / "results" / "lit_runs.csv")
    assert rows.loc[rows["run_id"] == run.info.run_id, "sweep"].tolist() == ["lit_extra"]
    with pytest.raises(LookupError, match="no_such"):
        rp.write_results("lit", tmp_path, sweep_file=sweep_file, gradients=False, also=["no_such"])


def test_translation_runs_trained_longer_by_one_cell_are_shown_but_not_averaged_in():
    """Multi30k logs no data.num_train (its whole split): epochs / batch size still orders it."""
    small = frame([("multi30k", cell, None, 0, 20.0) for cell in GATED])
    small["params.train.epochs"], small["params.data.batch_size"] = "2", "128"
    tutorial = frame([("multi30k", "gru", None, 0, 31.0)])
    tutorial["params.train.epochs"], tutorial["params.data.batch_size"] = "10", "128"
    medium = frame([("multi30k", cell, None, 0, 30.0) for cell in ("lstm", "coupled")])
    medium["params.train.epochs"], medium["params.data.batch_size"] = "6", "128"
    runs = pd.concat([small, tutorial, medium], ignore_index=True)
    assert list(report.updates(runs)) == [2 / 128] * 4 + [10 / 128] + [6 / 128] * 2
    verdict = rp.threshold_rule("multi30k", 28.3, "Multi30k")(rp.evidence(runs))
    assert verdict.verdict == NOT_REPRODUCED
    assert "gru bleu 20 (n = 1, solved 0/1)" in verdict.ours  # the 2-epoch run, not (20 + 31) / 2
    assert verdict.ours.endswith(
        "(judged at the longest training every cell had: 2 epochs); trained longer, not yet every "
        "cell: lstm bleu 30 (n = 1, solved 0/1); coupled bleu 30 (n = 1, solved 0/1) after 6 "
        "epochs | gru bleu 31 (n = 1, solved 0/1) after 10 epochs")


def test_two_cells_both_at_chance_are_no_evidence_for_a_difference():
    at_chance = frame([("spike_timing", "peephole", 200, 0, 0.10), ("spike_timing", "lstm", 200, 0, 0.11)])
    verdict = rp.peephole_rule("spike_timing")(rp.evidence(at_chance))
    assert verdict.verdict == NOT_REPRODUCED and "(both at chance)" in verdict.ours
    learned = frame([("spike_timing", "peephole", 200, 0, 0.10), ("spike_timing", "lstm", 200, 0, 0.6)])
    assert rp.peephole_rule("spike_timing")(rp.evidence(learned)).verdict == CONTRADICTED
