"""The results page (`rnnlab results`): the claims' rules on synthetic runs with known answers, and
the page and per-run CSV written from a small store whose runs follow a sweep file's plan, and
again from that page's own export without the store."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from experiments.analysis import page_plots, provenance, report, report_plots, sources
from experiments.analysis import results_page as rp
from experiments.analysis import stats as st
from experiments.analysis import verdicts as vd

GATED = ("lstm", "peephole", "coupled", "gru")
METRIC = {"adding": ("mse", "min", 0.01, 1 / 6), "spike_timing": ("on_time", "at_least", 1.0, 0.1),
          "imdb": ("accuracy", "at_least", 0.88, 0.5), "copy": ("recall_accuracy", "max", 0.99, 0.1),
          "multi30k": ("bleu", "max", 1000.0, 0.0),
          "reber": ("reber_success", "at_least", 1.0, 0.5),
          "temporal_order": ("accuracy", "at_least", 0.99, 0.25)}


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


def seeds(task, values: dict[str, list[float]], length=200, ablation=False) -> list[tuple]:
    return [(task, cell, length, seed, v, ablation) for cell, vs in values.items()
            for seed, v in enumerate(vs)]


def judge(rule, rows) -> vd.Judgement:
    return rule(vd.evidence(frame(rows) if isinstance(rows, list) else rows))


SOLVED, AT_CHANCE = [0.001, 0.002, 0.0015, 0.001, 0.002], [0.168, 0.17, 0.169, 0.171, 0.168]


def test_adding_claim_confirmed_with_five_seeds_inconclusive_with_three():
    five = judge(vd.adding_rule, seeds("adding", {"vanilla": AT_CHANCE, **dict.fromkeys(GATED, SOLVED)}))
    assert five.verdict == st.CONFIRMED and len(five.comparisons) == 4
    assert all(c.test == "Fisher exact" and c.p_holm < 0.05 for c in five.comparisons)
    three = judge(vd.adding_rule, seeds("adding", {"vanilla": AT_CHANCE[:3],
                                                   **dict.fromkeys(GATED, SOLVED[:3])}))
    assert three.verdict == st.INCONCLUSIVE and three.seeds_needed() == "4"


def test_adding_claim_gated_cells_at_chance_beside_vanilla_are_no_information():
    rows = seeds("adding", {"vanilla": AT_CHANCE, **dict.fromkeys(GATED, AT_CHANCE)})
    assert judge(vd.adding_rule, rows).verdict == st.NO_INFORMATION
    assert judge(vd.adding_rule, seeds("adding", {"vanilla": AT_CHANCE}, length=100)).verdict == st.NOT_RUN


def test_ablation_runs_are_not_evidence_for_the_default_bias_claims():
    rows = seeds("adding", {"vanilla": AT_CHANCE, **dict.fromkeys(GATED, SOLVED)}) \
        + seeds("adding", {"gru": AT_CHANCE}, ablation=True)
    assert judge(vd.adding_rule, rows).verdict == st.CONFIRMED


@pytest.mark.parametrize("bias1, bias0, expected", [
    (SOLVED, AT_CHANCE, st.CONFIRMED), (AT_CHANCE, SOLVED, st.CONTRADICTED),
    (AT_CHANCE, AT_CHANCE, st.NO_INFORMATION),  # both at the adding baseline: not a tie
    ([0.01, 0.1, 0.05], [0.03, 0.12, 0.09], st.INCONCLUSIVE),
])
def test_forget_bias_claim_compares_bias_1_with_bias_0_at_the_same_setting(bias1, bias0, expected):
    rows = seeds("adding", {"lstm": bias1}, 100) + seeds("adding", {"lstm": bias0}, 100, ablation=True) \
        + seeds("adding", {"lstm": [0.5, 0.5]}, 200)  # another T: not the ablated setting's evidence
    verdict = judge(vd.forget_bias_rule, rows)
    assert verdict.verdict == expected and len(verdict.comparisons) == 1
    assert verdict.comparisons[0].setting == "adding (T=100): lstm bias 1 vs 0"


def test_bias_gap_claim_compares_the_bias_1_lstm_with_the_gru_by_tost():
    close = seeds("adding", {"lstm": SOLVED, "gru": [0.002, 0.001, 0.0015, 0.002, 0.001]}, 100) \
        + seeds("adding", {"lstm": AT_CHANCE}, 100, ablation=True)
    judged = judge(vd.bias_gap_rule, close)
    assert judged.verdict == st.CONFIRMED and judged.comparisons[0].test == "TOST (Welch)"


def copy_runs(lstm_ratio: list[float], epochs="3") -> pd.DataFrame:
    runs = frame([("copy", "lstm", 100, s, 0.12) for s in range(len(lstm_ratio))])
    runs["metrics.baseline"] = 0.17  # 10 ln 8 / 120: the loss baseline the task logs
    runs["tags.rnnlab.baseline_metric"] = "loss"
    runs["metrics.test_loss"] = [0.17 * r for r in lstm_ratio]
    runs["params.train.epochs"] = epochs
    return runs


def test_copy_claim_confirmed_below_the_baseline_never_contradicted_at_it():
    assert judge(vd.copy_rule, copy_runs([0.5, 0.6, 0.55])).verdict == st.CONFIRMED
    above = judge(vd.copy_rule, copy_runs([1.02, 1.03, 1.02]))
    assert above.verdict == st.INCONCLUSIVE and "budgets" in above.notes[0]
    assert judge(vd.copy_rule, copy_runs([0.5])).verdict == st.NO_VERDICT


def test_reber_claim_needs_the_grammars_natural_lengths():
    long_strings = judge(vd.reber_rule, seeds("reber", {"lstm": [1.0, 1.0, 1.0]}, 50))
    assert long_strings.verdict == st.NOT_RUN and "data.length = 9" in long_strings.notes[0]
    assert "data.drawn_first: train" in long_strings.notes[1]
    natural = judge(vd.reber_rule, seeds("reber", {"lstm": [1.0, 1.0, 1.0]}, 9))
    assert natural.verdict == st.INCONCLUSIVE  # 3/3 cannot show a 97 % rate
    assert natural.comparisons[0].seeds_needed == st.seeds_for_share(0.97)
    assert judge(vd.reber_rule, seeds("reber", {"lstm": [0.5] * 6}, 9)).verdict == st.CONTRADICTED


def test_temporal_order_claim_judges_the_lstms_solved_share():
    assert judge(vd.temporal_rule, seeds("temporal_order", {"lstm": [1.0] * 6}, 100)).verdict == st.CONFIRMED
    assert judge(vd.temporal_rule, seeds("temporal_order", {"lstm": [1.0, 0.3, 1.0]}, 100)).verdict \
        == st.INCONCLUSIVE


def test_variant_claim_is_judged_by_non_inferiority_and_ignores_settings_both_failed():
    rule = vd.variant_rule("coupled", "lstm", st.NONINFERIORITY)
    rows = seeds("adding", {"lstm": SOLVED, "coupled": SOLVED[::-1]}, 50) \
        + seeds("adding", {"lstm": AT_CHANCE, "coupled": AT_CHANCE}, 200)
    judged = rule(vd.evidence(frame(rows)))
    assert judged.verdict == st.CONFIRMED
    assert [c.outcome() for c in judged.comparisons] == [st.CONFIRMED, st.NO_INFORMATION]
    worse = seeds("adding", {"lstm": SOLVED, "coupled": AT_CHANCE}, 50)
    assert rule(vd.evidence(frame(worse))).verdict == st.CONTRADICTED
    only_chance = rule(vd.evidence(frame(rows[10:])))
    assert only_chance.verdict == st.NO_INFORMATION


def test_attention_claim_pairs_each_cell_at_one_budget_and_names_it():
    with_ = frame([("multi30k", cell, None, 0, 30.0) for cell in GATED])
    with_["params.model.attention"] = "bahdanau"
    without = frame([("multi30k", cell, None, 0, 10.0) for cell in GATED])
    without["params.model.attention"] = "None"
    runs = pd.concat([with_, without], ignore_index=True)
    runs["params.model.units_used"], runs["params.train.lr"] = "128", "0.003"
    judged = vd.attention_rule("bahdanau")(vd.evidence(runs))
    assert judged.verdict == st.NO_VERDICT  # one seed a side
    assert [c.setting for c in judged.comparisons] == [f"{c} at 3 ep, 128 units, lr 0.003" for c in GATED]
    luong = vd.attention_rule("luong")(vd.evidence(runs))
    assert luong.verdict == st.NOT_RUN and luong.missing == tuple(
        f"{c} with luong attention (3 ep, 128 units, lr 0.003)" for c in GATED)


def test_a_claim_whose_configurations_are_not_planned_says_what_they_would_cost():
    """Bahdanau runs only (3 seeds, 10 min each): the attention claim needs each gated cell
    without attention at the same budget, 4 configurations × 3 seeds, costed at the runs' median."""
    runs = frame([("multi30k", cell, None, seed, 30.0) for cell in GATED for seed in range(3)])
    runs["params.model.attention"] = "bahdanau"
    runs["params.model.units_used"], runs["params.train.lr"] = "128", "0.003"
    runs["wall_s"] = 600.0
    ev = vd.evidence(runs)
    claim = next(c for c in sources.CLAIMS if c.topic == "attention (Bahdanau)")
    judged = claim.rule(ev)
    assert judged.verdict == st.NOT_RUN and len(judged.missing) == 4
    from experiments.analysis import tunings

    tuned = tunings.Family("multi30k", None, Path("space.yaml"), Path("best.yaml"),
                           cells={"gru": None})  # configurations() reads only the task and `tuned`
    why = rp.configurations([(claim, judged)], ev, [tuned])[claim.topic]
    assert why == ("not run yet: 4 configurations not in the plan (3 seeds each: 12 runs, ≈ 2.0 h "
                   "at its runs' median 10 min)")


def test_targets_are_judged_against_their_level_and_apart_from_the_literature():
    assert {c.topic for c in sources.TARGETS} == {"IMDB accuracy", "Multi30k BLEU"}
    assert not {c.topic for c in sources.TARGETS} & {c.topic for c in sources.CLAIMS}
    imdb = sources.TARGETS[0].rule
    low = seeds("imdb", {key: [0.8, 0.81, 0.82] for key in GATED}, None)
    assert imdb(vd.evidence(frame(low))).verdict == st.CONTRADICTED
    assert imdb(vd.evidence(frame(seeds("imdb", {key: [0.9] for key in GATED}, None)))).verdict == st.NO_VERDICT


def test_every_claim_gives_a_verdict_on_no_runs_at_all():
    ev = vd.evidence(pd.DataFrame(columns=["status", "run_id"]))
    verdicts = {j.verdict for _, j in vd.judge_all(ev, [*sources.CLAIMS, *sources.TARGETS])}
    assert verdicts == {st.NOT_RUN}


def test_the_short_claims_table_has_short_cells():
    rows = seeds("adding", {"vanilla": AT_CHANCE[:3], **dict.fromkeys(GATED, SOLVED[:3])})
    table = rp.claims_frame(vd.judge_all(vd.evidence(frame(rows)), sources.CLAIMS))
    assert list(table.columns) == ["claim", "source", "verdict", "effect [95 % CI]", "p (Holm)", "n", "budget"]
    adding = table.iloc[0]
    assert adding["verdict"] == "**inconclusive (≈4 seeds/cell)**" and adding["n"] == "3 vs 3"
    assert adding["effect [95 % CI]"].startswith("solved share +1 [")
    assert table.map(lambda v: len(str(v))).max().max() < 120


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
    text = lit_page[0]["markdown"].split("## Long-dependency tasks")[1]  # the results tables
    ablation = [line for line in text.splitlines() if "unit_forget_bias=False" in line
                and line.startswith("|")]
    assert [line.split("|")[2].strip() for line in ablation] == ["lstm", "peephole", "coupled"]
    assert all("| 0.168 " in line and "0/1" in line for line in ablation)
    plain_lstm = next(line for line in text.splitlines()
                      if line.startswith("| adding (T=100) ") and "| lstm " in line)
    assert "| 0.001 " in plain_lstm and "[" not in plain_lstm  # no interval from one seed
    lstm_200 = next(line for line in text.splitlines()
                    if line.startswith("| adding (T=200) ") and "| lstm " in line)
    assert "| 2 " in lstm_200 and "0.0015 [-0.004853, 0.007853]" in lstm_200  # t with 1 df


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
    drawn = report_plots.plot_metric_vs_length
    monkeypatch.setattr(report_plots, "plot_metric_vs_length", lambda rows, *a: seen.setdefault(
        "lines", [line[0] for line in report.length_lines(rows[rows["task"] == "adding"], "mse",
                                                          ["lstm"])]) and drawn(rows, *a))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    rp.write_results("lit", tmp_path, sweep_file=sweep_file, gradients=False)
    assert seen["stale"] and all(seen["stale"])
    assert {"lstm", "lstm, unit_forget_bias=False"} <= set(seen["lines"])


def test_page_gives_the_claims_verdicts_from_the_runs(lit_page):
    claims = {claim.topic: j for claim, j in lit_page[0]["claims"]}
    assert claims["adding problem"].verdict == st.INCONCLUSIVE  # 2/2 against 0/2: p = 0.33
    assert claims["forget-gate bias 1"].verdict == st.NO_VERDICT  # one seed a side
    assert claims["copy memory"].verdict == st.NOT_RUN
    text = lit_page[0]["markdown"]
    assert "| [forget-gate bias 1](#forget-gate-bias-1) " in text
    first = [line for line in text.splitlines() if line.startswith(("![", "## "))][:4]
    assert first == ["![cells × settings](results/summary.png)", "## Claims from the literature",
                     "## Our own targets", "## Provenance"]
    hyper = text.split("## Hyperparameters per task and cell")[1].split("\n## ")[0]
    assert "| epochs " in hyper and "| all " in hyper and "vanilla 4 / lstm 4" in hyper


def test_hyperparameter_table_shows_a_tuned_float_in_three_digits_and_the_rest_as_logged():
    rows = pd.DataFrame({"setting": ["adding (T=100)"] * 2, "cell": ["lstm", "gru"],
                         "params.train.lr": ["0.08171657161374384", "0.001"],
                         "params.train.optimizer": ["adam", "adam"],
                         "params.train.epochs": ["20", "20"], "params.train.clipnorm": ["1.0"] * 2})
    table = rp.hyper_table(rows, ["lstm", "gru"]).set_index("cell")
    assert table.loc["lstm", "lr"] == "0.0817" and table.loc["gru", "lr"] == "0.001"
    assert list(table.loc["lstm", ["optimizer", "epochs", "clipnorm"]]) == ["adam", "20", "1.0"]


def test_runs_csv_has_one_row_per_run_with_its_columns(lit_page, lit_store):
    _, output = lit_page
    table = pd.read_csv(output / "results" / "lit_runs.csv")
    assert len(table) == len(lit_store[2])  # the failed run too
    for column in [*provenance.CSV_COLUMNS, "test_mse", "test_loss", *provenance.CSV_TAIL,
                   "param.train.seed", "param.model.unit_forget_bias", "param.train.epochs"]:
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
        patch.setattr(rp.report_plots, "plot_metric_vs_length", lambda *a: 1 / 0)
        with pytest.raises(ZeroDivisionError):  # a failure part-way keeps the previous files
            rp.write_results("lit", output, sweep_file=sweep_file, gradients=False)
        assert stale.exists() and (output / "RESULTS.md").read_text() == result["markdown"]
        patch.undo()
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        again = rp.write_results("lit", output, sweep_file=sweep_file, gradients=False)
    assert not stale.exists()
    strip = [line for line in again["markdown"].splitlines() if "**generated**" not in line]
    assert strip == [line for line in result["markdown"].splitlines() if "**generated**" not in line]


def test_summary_grid_says_solved_share_chance_and_how_close_the_unsolved_came():
    rows = seeds("adding", {"vanilla": AT_CHANCE, "lstm": SOLVED, "gru": SOLVED[:3] + [0.05, 0.06]}) \
        + seeds("imdb", {"lstm": [0.86, 0.87, 0.86]}, length=None)
    colour, text, _ = page_plots.summary_grid(vd.evidence(frame(rows)), ["vanilla", "lstm", "gru"])
    adding = next(label for label in text.index if label.startswith("adding"))
    imdb = next(label for label in text.index if label.startswith("imdb"))
    assert list(text.loc[adding]) == ["0/5 chance", "5/5", "3/5 (0.0229)"]
    assert text.loc[imdb, "lstm"] == "0/3 (0.863)" and colour.loc[imdb, "lstm"] == 0.0
    assert colour.loc[adding, "gru"] == pytest.approx(0.6)


def test_gradient_flow_notes_the_runs_it_lacks(lit_page):
    jobs, notes = page_plots.gradient_jobs(vd.evidence(pd.DataFrame(columns=["status", "run_id"])), 100)
    assert jobs == [] and [n.split(" (")[0] for n in notes] == list(page_plots.GRADIENT_TASKS)


def test_gradient_flow_takes_the_pages_own_sweeps_run_where_a_companion_has_one_too(monkeypatch):
    from experiments.analysis import gradients

    runs = frame([("copy", "lstm", 100, 0, 0.1), ("copy", "lstm", 100, 0, 0.12)])
    runs["tags.rnnlab.sweep"] = ["long_budget", "study"]
    monkeypatch.setattr(gradients, "run_config", lambda run_id: (run_id, 4))
    jobs, _ = page_plots.gradient_jobs(vd.evidence(runs), 100, sweep="study")
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
    done = provenance.progress(planned, runs)
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
    ev = vd.evidence(report.load_runs("tiny"))
    png, notes = page_plots.gradient_flow(ev, tmp_path, length=8, samples=8)
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


def test_translation_runs_trained_longer_are_their_own_setting_not_averaged_in():
    """Multi30k logs no data.num_train (its whole split): epochs / batch size still orders it, and
    runs at another number of epochs form their own setting of the BLEU target."""
    small = frame([("multi30k", cell, None, s, 20.0 + s) for cell in GATED for s in (0, 1)])
    small["params.train.epochs"], small["params.data.batch_size"] = "2", "128"
    tutorial = frame([("multi30k", "gru", None, 0, 31.0)])
    tutorial["params.train.epochs"], tutorial["params.data.batch_size"] = "10", "128"
    runs = pd.concat([small, tutorial], ignore_index=True)
    runs["params.model.attention"] = "bahdanau"
    assert list(report.updates(runs)) == [2 / 128] * 8 + [10 / 128]
    judged = sources.TARGETS[1].rule(vd.evidence(runs))
    by_setting = {c.setting: c for c in judged.comparisons}
    assert by_setting["multi30k (attention=bahdanau, epochs=2): gru"].a.values == (20.0, 21.0)  # not averaged with 31
    assert by_setting["multi30k (attention=bahdanau, epochs=10): gru"].status == st.NO_VERDICT
    # far below 28.3, but two seeds (p = 0.04) and Holm across four cells: not yet a verdict
    assert by_setting["multi30k (attention=bahdanau, epochs=2): gru"].outcome() == st.INCONCLUSIVE


def test_two_cells_both_at_chance_are_no_evidence_for_a_difference():
    at_chance = seeds("spike_timing", {"peephole": [0.10, 0.11, 0.10], "lstm": [0.11, 0.10, 0.12]})
    assert judge(vd.spike_rule, at_chance).verdict == st.NO_INFORMATION
    learned = seeds("spike_timing", {"peephole": [0.6, 0.62, 0.61], "lstm": [0.11, 0.10, 0.12]})
    assert judge(vd.spike_rule, learned).verdict == st.CONFIRMED


# --- the page from a runs export (no store) --------------------------------------------------------


def test_the_page_rebuilt_from_its_own_export_without_the_store_gives_the_same_verdicts(
        lit_page, tmp_path, monkeypatch):
    result, output = lit_page
    export_csv = output / "results" / "lit_runs.csv"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/empty.db")  # a fresh clone
    again = rp.write_results("lit", tmp_path / "docs", source=export_csv, gradients=False)
    assert [j.verdict for _, j in again["claims"]] == [j.verdict for _, j in result["claims"]]
    text = again["markdown"]
    assert f"the runs export {export_csv} (no MLflow store)" in text
    def tables(page: str) -> list[str]:
        return [line for line in page.split("## Long-dependency tasks")[1].splitlines()
                if line.startswith("| adding")]

    assert tables(text) == tables(result["markdown"])
    assert "not computed: the trained models live in the MLflow store, not in the export" in text
    # read from an export, the page links it rather than writing a second copy of the runs
    assert not (tmp_path / "docs" / "results" / "lit_runs.csv").exists()
    link = rp._relative(export_csv, tmp_path / "docs")
    assert f"([{link}]({link}), one row per run" in text


def test_cli_results_falls_back_to_the_committed_export_and_can_exclude_dirty_runs(
        lit_page, tmp_path, monkeypatch, capsys):
    from experiments import cli

    _, output = lit_page
    docs = tmp_path / "docs"
    (docs / "results").mkdir(parents=True)
    table = pd.read_csv(output / "results" / "lit_runs.csv")
    table.loc[table["cell"] == "vanilla", "git_commit"] = "0123456789abcdef+dirty"
    table.to_csv(docs / "results" / "lit_runs.csv", index=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/empty.db")
    args = ["results", "--sweep", "lit", "--output", str(docs), "--no-gradients"]
    assert cli.main(args) == 0
    flagged = (docs / "RESULTS.md").read_text()
    assert "ran from a tree with uncommitted changes" in flagged and "counted in the tables" in flagged
    assert cli.main([*args, "--dirty", "exclude"]) == 0
    excluded = (docs / "RESULTS.md").read_text()
    assert "left out of the tables and verdicts" in excluded
    assert "| vanilla " not in excluded.split("## Long-dependency tasks")[1]
    capsys.readouterr()
    assert cli.main([*args, "--from", str(tmp_path / "nope.csv")]) == 1
    assert "no such export file" in capsys.readouterr().err


# --- a study tuned per cell (the fair study): the tuning on the page, families not run yet -------------

FAIR_CELLS = ["vanilla", "lstm", "gru"]
FAIR_LR = {"adding": {"vanilla": 0.0123, "lstm": 0.0456, "gru": 0.00789},
           "temporal_order": {"vanilla": 0.001, "lstm": 0.002, "gru": 0.003}}
SIZES = {"num_train": 64, "num_val": 32, "num_test": 32}


@pytest.fixture(scope="module")
def fair_study(tmp_path_factory):
    """A sweep file `fair` whose `tuned:` block names adding and temporal_order (tuned: best files
    as `rnnlab tune --export` writes them) and imdb (not tuned yet), and a runs export of its
    adding and temporal-order runs plus a companion sweep's (`fair_extra`: adding at T = 400,
    shared configuration); returns (sweep file, export)."""
    from experiments.orchestration import tune

    folder = tmp_path_factory.mktemp("fair")
    (folder / "spaces").mkdir()
    (folder / "sweeps" / "tuned").mkdir(parents=True)
    tuned = {}
    for task, length in (("adding", 200), ("temporal_order", 100), ("imdb", None)):
        data = {"name": task, **({"length": length, **SIZES} if length else {"vocab_size": 1000})}
        space_file = folder / "spaces" / f"fair-{task}.yaml"
        space_file.write_text(yaml.safe_dump({
            "name": f"fair-{task}", "base": {"data": data, "model": {"units": 4},
                                             "train": {"epochs": 1, "seed": 100}},
            "cells": FAIR_CELLS, "max_trials": 3,
            "space": {"train.lr": {"type": "float", "min": 1e-4, "max": 0.1, "sampling": "log"},
                      "train.clipnorm": {"type": "choice", "values": [1.0, 10.0]}}}, sort_keys=False))
        tuned[task] = {"space": f"../spaces/fair-{task}.yaml", "best": f"tuned/fair-{task}.yaml",
                       **({"free": ["data.num_train"]} if task == "temporal_order" else {})}
        if task in FAIR_LR:
            space = tune.load_space(space_file)
            outcome = tune.TuneOutcome(space, "parent" + task[:6], [
                tune.CellResult(cell, 3, best_score=0.01 * (i + 1), median_score=0.05 * (i + 1),
                                best_run_id=f"trial-{task}-{cell}",
                                best_config=space.config_for(cell, {"train.lr": FAIR_LR[task][cell],
                                                                    "train.clipnorm": 10.0}))
                for i, cell in enumerate(FAIR_CELLS)])
            (folder / "sweeps" / "tuned" / f"fair-{task}.yaml").write_text(tune.best_sweep_yaml(space, outcome))
    sweep_file = folder / "sweeps" / "fair.yaml"
    sweep_file.write_text(yaml.safe_dump({
        "name": "fair", "base": {"data": SIZES, "model": {"units": 4}, "train": {"epochs": 1}},
        "tuned": tuned,
        "tasks": [{"data.name": "adding", "data.length": 200, "train.seed": s} for s in range(3)]
        + [{"data.name": "temporal_order", "data.length": 100, "train.seed": s} for s in range(3)]
        + [{"data.name": "imdb", "data.vocab_size": 1000, "train.seed": s} for s in range(3)],
        "grid": {"model.cell": FAIR_CELLS}}))
    ours = frame(seeds("adding", {"vanilla": AT_CHANCE[:3], "lstm": SOLVED[:3], "gru": SOLVED[:3]})
                 + seeds("temporal_order", {c: [1.0, 1.0, 1.0] for c in FAIR_CELLS}, 100))
    ours["tags.rnnlab.sweep"] = "fair"
    ours["params.train.lr"] = [str(FAIR_LR[t][c]) for t, c in zip(ours["params.data.name"], ours["params.model.cell"])]
    extra = frame(seeds("adding", {"vanilla": AT_CHANCE[:2], "lstm": AT_CHANCE[:2]}, 400))
    extra["tags.rnnlab.sweep"], extra["params.train.lr"] = "fair_extra", "0.01"
    extra["run_id"] = [f"x{i}" for i in range(len(extra))]
    runs = pd.concat([ours, extra], ignore_index=True)
    runs["end_time"] = runs["start_time"]
    (folder / "export").mkdir()
    export_csv = folder / "export" / "fair_runs.csv"
    provenance.runs_csv(runs).to_csv(export_csv, index=False)
    return sweep_file, export_csv


@pytest.fixture(scope="module")
def fair_page(fair_study, tmp_path_factory):
    sweep_file, export_csv = fair_study
    output = tmp_path_factory.mktemp("fair_page")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{output}/empty.db")  # a fresh clone
        result = rp.write_results("fair", output, source=export_csv, sweep_file=sweep_file,
                                  gradients=False, also=["fair_extra"])
    return result, output


def _section(text: str, heading: str) -> str:
    return text.split(heading, 1)[1].split("\n## ", 1)[0]


def test_fair_page_shows_each_cells_tuned_values_and_the_tunings_parent_run(fair_page):
    text = fair_page[0]["markdown"]
    tuning = _section(text, "## Tuning per task family")
    overview = {line.split("|")[1].strip(): line for line in tuning.splitlines() if line.startswith("| ")}
    assert "`parentadding`" in overview["adding"] and "T = 200" in overview["adding"]
    assert "lr log-uniform 0.0001–0.1; clipnorm ∈ {1, 10}" in overview["adding"]
    assert "**not tuned yet**" in overview["imdb"]
    hours = {family: line.split("|")[-2].strip() for family, line in overview.items()}
    assert re.fullmatch(r"\d+\.\d", hours["imdb"]) and hours["adding"] == "-"  # hours to go
    adding = _section(text, "### adding\n")
    for i, cell in enumerate(FAIR_CELLS):
        row = next(line for line in adding.splitlines() if line.startswith(f"| {cell} "))
        assert f"{FAIR_LR['adding'][cell]:.3g}" in row and f"{0.05 * (i + 1):.4g}" in row
        assert f"trial-adding-{cell}"[:12] in row
    assert "rnnlab tune " in _section(text, "### imdb\n") and "not tuned yet" in _section(text, "### imdb\n")
    # temporal order declares `free: [data.num_train]`: its section says the values are borrowed
    borrowed = "differ from the tuned setting in `data.num_train` take these tuned values too"
    assert tuning.count(borrowed) == 1
    assert borrowed in _section(text, "### temporal_order\n").split("\n### ")[0]


def test_fair_page_says_not_run_yet_for_the_untuned_family_never_another_studys_runs(fair_page):
    result, _ = fair_page
    verdicts = {c.topic: j.verdict for c, j in [*result["claims"], *result["targets"]]}
    assert verdicts["IMDB, LSTM from random initialisation"] == st.NOT_RUN
    assert verdicts["IMDB accuracy"] == st.NOT_RUN
    # with the hours its tuning and runs need, costed from the first study's measured imdb runs
    assert re.fullmatch(r"not run yet: imdb not tuned yet \(≈ \d+\.\d h\)", result["config"]["IMDB accuracy"])
    assert result["config"]["adding problem"] == rp.TUNED
    # the variant claims span every family: judged on the two that ran, and say so
    assert result["config"]["GRU vs LSTM"] == f"{rp.TUNED} (2 of 3 families)"
    assert "less the families not tuned yet: imdb" in result["markdown"]


def test_fair_page_judges_companion_sweeps_apart_marked_untuned(fair_page):
    result, _ = fair_page
    adding = next(j for c, j in result["claims"] if c.topic == "adding problem")
    # each cell's own learning rate does not make a setting of its own: the cells are compared
    assert [c.setting for c in adding.comparisons if c.tested] == [
        "adding (T=200): lstm vs vanilla", "adding (T=200): gru vs vanilla"]  # not the companion's T=400
    companions = _section(result["markdown"], "## Companion sweeps (shared config, not tuned)")
    row = next(line for line in companions.splitlines() if line.startswith("| [adding problem]"))
    assert row.rstrip(" |").endswith("shared config, not tuned")
    claims = _section(result["markdown"], "## Claims from the literature")
    assert "shared" not in claims and "| tuned per cell" in claims


def test_fair_page_before_any_export_says_not_run_yet_and_shows_the_tuning(fair_study, tmp_path,
                                                                        monkeypatch, capsys):
    from experiments import cli

    sweep_file, _ = fair_study
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/empty.db")
    args = ["results", "--sweep", "fair", "--sweep-file", str(sweep_file), "--output",
            str(tmp_path / "docs"), "--from", str(tmp_path / "no_export_yet"), "--no-gradients"]
    assert cli.main(args) == 0
    assert "claims: 13 not run yet" in capsys.readouterr().out
    text = (tmp_path / "docs" / "RESULTS.md").read_text()
    assert "no runs yet" in text and "`parentadding`" in text
    assert "not run yet: adding tuned, no runs yet" in text
    # a study whose cells share one configuration has no such state: no runs is an error
    assert cli.main(["results", "--sweep", "lit", "--output", str(tmp_path / "lit"), "--from",
                     str(tmp_path / "no_export_yet"), "--no-gradients"]) == 1


def test_fair_page_finds_the_export_where_rnnlab_export_writes_it(fair_study, tmp_path, monkeypatch):
    import shutil

    sweep_file, export_csv = fair_study
    (tmp_path / "docs" / "results" / "fair").mkdir(parents=True)  # rnnlab export --output docs/results/fair
    shutil.copy(export_csv, tmp_path / "docs" / "results" / "fair" / "fair_runs.csv")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/empty.db")
    text = rp.write_results("fair", tmp_path / "docs", sweep_file=sweep_file, gradients=False)["markdown"]
    assert "([results/fair/fair_runs.csv](results/fair/fair_runs.csv), one row per run" in text


def test_fair_page_sets_the_earlier_studys_verdicts_beside_its_own(fair_study, tmp_path, monkeypatch):
    sweep_file, export_csv = fair_study
    earlier = frame(seeds("adding", {"vanilla": AT_CHANCE[:1], "lstm": SOLVED[:1], "gru": SOLVED[:1]}))
    earlier["tags.rnnlab.sweep"], earlier["end_time"] = "first", earlier["start_time"]
    provenance.runs_csv(earlier).to_csv(tmp_path / "first_runs.csv", index=False)
    (tmp_path / "first.md").write_text("# The first study\n")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/empty.db")
    text = rp.write_results("fair", tmp_path / "docs", source=export_csv, sweep_file=sweep_file,
                            gradients=False, compare=tmp_path / "first_runs.csv",
                            link=tmp_path / "first.md")["markdown"]
    top = text.split("## Claims from the literature")[0]
    assert "See also: [The first study](../first.md)." in top and "(#changes-from-the-earlier-study)" in top
    changes = _section(text, "## Changes from the earlier study")
    adding = next(line for line in changes.splitlines() if line.startswith("| [adding problem]"))
    assert "no verdict (n = 1)" in adding and adding.rstrip(" |").endswith("yes")
    imdb = next(line for line in changes.splitlines() if line.startswith("| [IMDB accuracy]"))
    assert imdb.rstrip(" |").endswith("-")  # not run in either: nothing changed to report


def test_a_study_sharing_one_configuration_says_so_at_the_top_and_per_claim(lit_page):
    result, _ = lit_page
    top = result["markdown"].split("## Claims from the literature")[0]
    assert rp.FAIRNESS_NOTE in top
    assert set(result["config"].values()) == {rp.SHARED}


def test_tuning_overview_flags_runs_whose_tuned_file_is_not_committed(fair_study):
    from experiments.analysis import tunings

    sweep_file, _ = fair_study
    families = {f.task: f for f in tunings.read(sweep_file)}
    assert families["adding"].tuned and not families["imdb"].tuned
    table = tunings.overview(list(families.values()), {"adding": 9, "imdb": 2}, {"adding": 9})
    by_family = table.set_index("family")["tuning (MLflow parent run)"]
    assert by_family["imdb"] == "**runs, but `fair-imdb.yaml` is not committed**"
    assert by_family["temporal_order"] == "`parenttempor`"
    assert table.set_index("family").loc["adding", "seeded runs finished"] == "9 of 9"


def test_a_tuned_value_at_the_border_of_its_range_is_flagged(fair_study):
    """A best learning rate near the top of a log-uniform range (Multi30k's five cells all at
    9.04e-3 of 1e-3–1e-2) says the search may have stopped at its border; a choice is never flagged."""
    import dataclasses

    from experiments.analysis import tunings

    sweep_file, _ = fair_study
    adding = next(f for f in tunings.read(sweep_file) if f.task == "adding")
    assert tunings.edges(adding) == []  # 0.0456 of 1e-4–0.1 is 89 % up the log range, not at it
    lr = next(p for p in adding.space.params if p.key == "train.lr")
    assert [tunings.at_edge(v, lr) for v in (0.06, 0.0456, 1.5e-4, 3e-3)] == ["top", "", "bottom", ""]
    moved = {cell: dataclasses.replace(t, values={**t.values, "train.lr": 0.08})
             if cell in ("lstm", "gru") else t for cell, t in adding.cells.items()}
    [line] = tunings.edges(dataclasses.replace(adding, cells=moved))
    assert line.startswith("lr: lstm 0.08, gru 0.08 — in the top 10 % of the searched range "
                           "0.0001–0.1 on a log scale")


def test_the_summary_figure_names_a_translation_setting_without_attention():
    """Beside 'multi30k bahdanau 128u 2ep', the same model without attention is not left as
    'multi30k 128u 2ep'."""
    from experiments.analysis.page_plots import short_label

    row = {"task": "multi30k", "params.data.length": None, "length": float("nan"),
           "ablation": False, "params.model.units": "128", "params.train.epochs": "2"}
    without = short_label(pd.Series({**row, "params.model.attention": "None"}))
    with_ = short_label(pd.Series({**row, "params.model.attention": "bahdanau"}))
    assert (without, with_) == ("multi30k no-attention 128u 2ep", "multi30k bahdanau 128u 2ep")
