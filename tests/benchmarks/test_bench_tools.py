"""The benchmark tooling's own logic: plans, case lists and the tables it renders (no timing)."""

from __future__ import annotations

import pandas as pd
import pytest

from benchmarks import gpu, report, variants
from benchmarks.cases import Case
from benchmarks.run import CELLS, Plan, grid_cases

SIZES = ((100, 64), (100, 128), (500, 64))


def timing_rows() -> list[dict]:
    """Synthetic medians: keras 1 s, plain 2 s, ours 3 s per call (x units/64), peephole +50 %."""
    rows = []
    for steps, units in SIZES:
        for case in grid_cases(steps, units):
            seconds = {"keras": 1.0, "plain": 2.0, "ours": 3.0}[case.impl] * units / 64
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


def test_report_ratios_and_size_order(tmp_path):
    grid = pd.DataFrame(timing_rows())
    target = report.target_rows(grid, "train")
    assert target.loc["lstm", "plain / keras"] == pytest.approx(2.0)
    assert target.loc["lstm", "ours / keras"] == pytest.approx(3.0)
    assert target.loc["peephole", "plain / plain lstm"] == pytest.approx(1.5)
    assert pd.isna(target.loc["peephole", "plain / keras"])  # Keras has no peephole layer
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
