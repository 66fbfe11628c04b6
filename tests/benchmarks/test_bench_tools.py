"""The benchmark tooling's own logic: plans, case lists and the tables it renders (no timing)."""

from __future__ import annotations

import pandas as pd
import pytest

from benchmarks import gpu, report, variants
from benchmarks.cases import Case
from benchmarks.run import CELLS, Plan, grid_cases

SIZES = ((100, 64), (100, 128), (500, 64))


def timing_rows() -> list[dict]:
    """Synthetic medians: torch 0.5 s, keras 1 s, plain 2 s, ours 3 s per call (x units/64),
    peephole +50 %."""
    rows = []
    for steps, units in SIZES:
        for case in grid_cases(steps, units):
            seconds = {"torch": 0.5, "keras": 1.0, "plain": 2.0, "ours": 3.0}[case.impl] * units / 64
            seconds *= 1.5 if case.cell == "peephole" else 1.0
            for kind in ("train", "infer"):
                rows.append({**case.to_dict(), "kind": kind, "median_s": seconds, "iqr_s": 0.1,
                             "n": 5, "compile_s": 1.0, "backend": "tensorflow"})
    return rows


def test_plans_build_and_the_grid_times_every_cell_both_ways():
    assert Plan.quick().sizes == ((100, 128),)
    assert {(t, u) for t in (100, 500) for u in (64, 128, 256)} == set(Plan().sizes)
    cases = grid_cases(100, 128)
    for impl in ("plain", "ours"):
        assert {c.cell for c in cases if c.impl == impl} == set(CELLS)
    assert {c.cell for c in cases if c.impl == "keras"} == {"vanilla", "lstm", "gru"}
    assert {c.cell for c in cases if c.impl == "torch"} == {"vanilla", "lstm", "gru"}
    with pytest.raises(ValueError, match="torch has no built-in layer for cell 'peephole'"):
        Case(impl="torch", cell="peephole")


def test_report_ratios_and_size_order(tmp_path):
    grid = pd.DataFrame(timing_rows())
    target = report.target_rows(grid, "train")
    assert target.loc["lstm", "plain / keras"] == pytest.approx(2.0)
    assert target.loc["lstm", "ours / keras"] == pytest.approx(3.0)
    assert target.loc["peephole", "plain / plain lstm"] == pytest.approx(1.5)
    assert pd.isna(target.loc["peephole", "plain / keras"])  # Keras has no peephole layer
    assert target.loc["lstm", "ours / torch"] == pytest.approx(6.0)
    assert target.loc["peephole", "plain / torch"] == pytest.approx(6.0)  # over torch's LSTM
    assert target.loc["peephole", "torch peer"] == "nn.LSTM"
    to_torch = report.ratio_table(grid, "train", anchor="torch")
    assert to_torch.loc[("plain", "coupled"), "T=100 u=64"] == pytest.approx(4.0)
    assert "Not in these grid rows" in report.torch_ratios(grid[grid.impl != "torch"], "train")
    ratios = report.ratio_table(grid, "train")
    assert list(ratios.columns) == ["T=100 u=64", "T=100 u=128", "T=500 u=64"]
    assert ratios.loc[("plain", "gru"), "T=500 u=64"] == pytest.approx(2.0)
    compilation = pd.DataFrame(timing_rows()[:4])
    memory = pd.DataFrame([{**Case().to_dict(), "rss_before_mb": 1.0, "rss_built_mb": 2.0,
                            "rss_peak_mb": 5.0, "first_steps_s": 1.0}])
    context = {"machine": {"cpu": "test cpu", "cores": 2}, "load_before": [0, 0, 0],
               "load_after": [0, 0, 0], "wall_s": 60.0, "quick": True, "command": "x"}
    text = report.markdown(grid, compilation, memory, context, tmp_path / "scaling.png")
    assert "test cpu, 2 cores" in text and "QUICK subset" in text
    assert "| plain | lstm | 2 | 2 | 2 |" in text  # plain / keras row of the ratio table


def test_gpu_table_divides_by_the_torch_anchor():
    rows = [
        {"impl": "torch", "cell": "lstm", "steps": 100, "units": 128, "jit": "-", "kind": "train",
         "median_s": 0.002, "iqr_s": 0.0},
        {"impl": "ours", "cell": "lstm", "steps": 100, "units": 128, "jit": "True",
         "kind": "train", "median_s": 0.005, "iqr_s": 0.001},
    ]
    text = gpu.markdown(rows, ["### header"])
    assert "| ours | lstm | 100 | 128 | True | train | 5.00 ± 1.00 | 2.50 |" in text
    torch_cases = gpu.torch_backend_cases(gpu.GpuPlan())
    assert {c.jit for c in torch_cases} == {False}
    assert {c.impl for c in torch_cases} == {"ours", "plain", "keras"}


def test_variants_table_is_relative_to_keras_defaults():
    rows = [
        {"layer": name, "jit": jit, "unroll": False, "kind": "train", "median_s": seconds,
         "iqr_s": 0.0, "compile_s": 1.0}
        for name, jit, seconds in (("keras", False, 0.1), ("fused", True, 0.05))
    ]
    text = variants.markdown(rows, "header")
    assert "| fused | True | False | train | 50.0 ± 0.0 | 0.50 | 1.0 |" in text


def test_inference_table_sets_each_layer_beside_its_torch_peer():
    rows = [
        {"backend": "tensorflow", "impl": impl, "cell": cell, "steps": 100, "units": 128,
         "jit": jit, "kind": "infer", "median_s": seconds, "job": "jit"}
        for impl, cell, jit, seconds in (
            ("plain", "peephole", False, 0.009), ("plain", "peephole", True, 0.006),
            ("torch", "lstm", False, 0.003), ("plain", "lstm", True, 0.0045),
        )
    ]
    found = report.inference_table(pd.DataFrame(rows))
    assert found.loc[("tensorflow", "peephole"), "plain"] == "9.0 (3.00×)"  # over torch's LSTM
    assert found.loc[("tensorflow", "peephole"), "plain jit"] == "6.0 (2.00×)"
    assert found.loc[("tensorflow", "lstm"), "plain jit"] == "4.5 (1.50×)"
    assert list(found.columns) == ["plain", "plain jit", "torch"]


def test_torch_peer_trains_and_infers():
    pytest.importorskip("torch")
    from benchmarks.cases import torch_step_functions

    steps = torch_step_functions(Case(impl="torch", cell="gru", batch=2, steps=3, units=4))
    assert set(steps) == {"train", "infer"}
    steps["train"]()
    steps["infer"]()


def test_quick_path_runs_from_plan_to_results_md(tmp_path, monkeypatch):
    """`python -m benchmarks.run --quick`'s whole path (plan, jobs, worker, tables, plot) at a
    toy size, in this process, with every case's step stubbed: no model is timed here."""
    from benchmarks import cases, run, worker

    tiny = run.Plan(sizes=((4, 3),), rounds=2, min_seconds=0.0, jit_cells=("lstm",),
                    infer_cells=("lstm", "peephole"), memory_cells=("lstm",),
                    memory_sizes=((4, 3),), backends=("tensorflow",), target=(4, 3),
                    short_steps=3)
    monkeypatch.setattr(run.Plan, "quick", classmethod(lambda cls: tiny))
    built = []

    def stub(case):
        built.append(case)
        return {"train": lambda: None, "infer": lambda: None}

    monkeypatch.setattr(cases, "step_functions", stub)
    monkeypatch.setattr(worker, "step_functions", stub)
    monkeypatch.setattr(run, "run_worker", lambda job, *_: worker.run_job(job))
    output = tmp_path / "RESULTS.md"
    run.main(["--quick", "--output", str(output)])
    text = output.read_text()
    assert "QUICK subset" in text and "Inference with jit_compile off and on" in text
    assert "/ PyTorch (peephole, coupled: / torch LSTM)" in text
    assert (tmp_path / "scaling.png").exists()
    timed = {(c.impl, c.cell, c.jit) for c in built}
    assert {("plain", "peephole", True), ("plain", "peephole", False)} <= timed
    assert {("torch", "lstm", False), ("torch", "gru", False)} <= timed
    assert not any(c.impl == "torch" and c.cell not in ("vanilla", "lstm", "gru") for c in built)


def test_levers_ratios_are_taken_round_by_round():
    from benchmarks import levers

    samples = {"base": [(1.0, 2.0), (2.0, 2.0)], "other": [(0.5, 1.0), (3.0, 3.0)]}
    rows = levers.ratio_rows(samples, "base", part="p", kind="train")
    other = next(row for row in rows if row["case"] == "other")
    assert other["wall"] == "0.50–1.00–1.50" and other["cpu"] == "0.50–1.00–1.50"
    assert "| p | train | other | 1750.0 | 0.50–1.00–1.50 |" in levers.markdown(rows, "h")


def test_grid_sizes_parse_and_bad_ones_name_the_flag():
    from benchmarks.run import parse_size

    assert parse_size("100x128") == (100, 128)
    with pytest.raises(SystemExit, match="--sizes: '100-128' is not TxUNITS"):
        parse_size("100-128")


def test_inference_tables_render_ratios_with_their_spread():
    from benchmarks import inference

    ctx = {"command": "python -m benchmarks.inference", "date": "d", "machine": "m",
           "load_before": 1.0, "load_after": 2.0, "wall_s": 60.0, "rounds": 7,
           "size": {"batch": 64, "steps": 100, "features": 32, "units": 128}, "task": None}
    row = {**{f"{impl}_ms": 10.0 for impl in inference.IMPLS}, "compile_s": 0.5,
           "break_even_batches": None,
           **{f"{a}/{b}": [0.5, 0.4, 1.2] for a, b in inference.RATIOS}}
    phase = {"context": {**ctx, "task": "adding"},
             "cells": {"gru": {"batches": 156, "off_s": 5.0, "on_s": 4.9, "on/off": [0.93, 0.9, 1.9]}}}
    text = inference.render({"a": {"context": ctx, "cells": {"lstm": row}}, "b": phase})
    assert "| lstm | 10.0 | 10.0 | 10.0 | 10.0 | 10.0 | 0.50 (0.40–1.20) |" in text
    assert text.count("0.50 (0.40–1.20)") == len(inference.RATIOS) and "| 0.5 | never |" in text
    assert "| gru | 156 | 5.00 | 4.90 | 0.93 (0.90–1.90) |" in text
