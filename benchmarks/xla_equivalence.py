"""Does an XLA-compiled training step change results? One setting of the fair study trained again
with `train.jit_compile: true`, paired run by run (cell, seed) with the committed runs of the same
configurations (same config hash: XLA is left out of it), compared as a study compares cells.

    # a separate store: the runs have the study's hashes, the study's own store would count them done
    MLFLOW_TRACKING_URI=sqlite:////tmp/xla.db rnnlab sweep experiments/sweeps/study_fair.yaml \\
        --only data.name=temporal_order --only data.length=100 --set train.jit_compile=true --workers 2
    MLFLOW_TRACKING_URI=sqlite:////tmp/xla.db rnnlab export --sweep study_fair \\
        --output benchmarks/xla_equivalence
    python -m benchmarks.xla_equivalence docs/results/study_fair/study_fair_runs.csv \\
        benchmarks/xla_equivalence/study_fair_runs.csv

Per setting and cell: solved k/n each way (Fisher's exact test), the key metric's mean each way and the largest
paired difference, the runs whose key metric agrees to 1e-3, and the median ratio of training
times (the two sets ran at different times, under different loads: indicative). Over all pairs:
the paired differences' mean with its 95 % interval and an equivalence test (TOST, two one-sided
t-tests) against a declared margin. Writes benchmarks/xla_equivalence.md (`--output`).

A lever that changes the initial weights (the JAX backend: its generator is not TensorFlow's, so
seed s starts elsewhere) has no pairs to compare, only two samples per cell: with `--unpaired` the
rows give Welch's test on the key metric instead of paired differences, and the equivalence test
is on the difference of the two means (two one-sided Welch t-tests):

    KERAS_BACKEND=jax MLFLOW_TRACKING_URI=sqlite:////tmp/jax.db rnnlab sweep \
        experiments/sweeps/study_fair.yaml --only data.name=temporal_order --only data.length=100 \
        --workers 2
    python -m benchmarks.xla_equivalence docs/results/study_fair/study_fair_runs.csv \
        benchmarks/jax_equivalence/study_fair_runs.csv --unpaired --lever JAX \
        --change "KERAS_BACKEND=jax" --output benchmarks/jax_equivalence.md
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

HERE = Path(__file__).resolve().parent
KEY = ["task", "T", "cell", "seed"]


def pairs(plain: pd.DataFrame, xla: pd.DataFrame) -> pd.DataFrame:
    """The runs of `xla` with their counterpart in `plain` (same task, T, cell and seed; the
    forget-gate ablation's runs left out), FINISHED both: key metric `value`, `solved`,
    `train_time_s` and `config` hash of each, suffixed _xla and _plain."""
    def clean(runs):
        runs = runs[(runs["status"] == "FINISHED")
                    & (runs["unit_forget_bias"].astype(str) != "False")].copy()
        runs["value"] = [row[f"test_{row['metric']}"] for _, row in runs.iterrows()]
        runs["config"] = runs["tag.rnnlab.config_hash"]
        return runs[KEY + ["metric", "value", "solved", "train_time_s", "config"]]

    both = clean(xla).merge(clean(plain), on=KEY, suffixes=("_xla", "_plain"))
    if both.empty:
        raise SystemExit("xla_equivalence: no run of the XLA export has a counterpart in the other "
                         "(same task, T, cell and seed)")
    return both


def tost(diffs: np.ndarray, margin: float) -> float:
    """TOST p-value: the mean paired difference lies within ±margin."""
    if np.all(diffs == diffs[0]):
        return 0.0 if abs(diffs[0]) < margin else 1.0
    low = stats.ttest_1samp(diffs, -margin, alternative="greater").pvalue
    high = stats.ttest_1samp(diffs, margin, alternative="less").pvalue
    return float(max(low, high))


def tost_unpaired(a: np.ndarray, b: np.ndarray, margin: float) -> float:
    """TOST p-value for two independent samples: mean(a) − mean(b) lies within ±margin (two
    one-sided Welch t-tests)."""
    low = stats.ttest_ind(a + margin, b, equal_var=False, alternative="greater").pvalue
    high = stats.ttest_ind(a - margin, b, equal_var=False, alternative="less").pvalue
    return float(max(low, high))


def welch_interval(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """The 95 % interval of mean(a) − mean(b) (Welch)."""
    result = stats.ttest_ind(a, b, equal_var=False)
    ci = result.confidence_interval(0.95)
    return float(ci.low), float(ci.high)


def _solved(runs: pd.DataFrame) -> tuple[int, int, int, float]:
    """One cell's runs: n, solved without and with the lever, Fisher's p on the two shares."""
    n = len(runs)
    k_plain, k_new = int(runs["solved_plain"].sum()), int(runs["solved_xla"].sum())
    return n, k_plain, k_new, stats.fisher_exact([[k_plain, n - k_plain], [k_new, n - k_new]]).pvalue


def _scope(both: pd.DataFrame, command: str) -> str:
    """'Measured with `command` on DATE: N runs of SETTINGS' — the start of a report's first line."""
    settings = ", ".join(sorted({f"{t} T = {T}" for t, T in zip(both["task"], both["T"])}))
    return (f"Measured with `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
            f"{len(both)} runs of {settings}")


def report_unpaired(both: pd.DataFrame, margin: float, sources: tuple[str, str], command: str,
                    lever: str, change: str) -> str:
    """As `report`, for a lever whose runs are not the same computation seed by seed: each cell's
    two samples side by side (Fisher on solved shares, Welch on the key metric), and over all runs
    the difference of the means with its interval and a two-sample equivalence test."""
    rows = [(f"| setting | cell | runs each | solved (plain) | solved ({lever}) | Fisher p | "
             f"mean (plain) | mean ({lever}) | Welch p | training time {lever} ÷ plain (median "
             "of each) |"), "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for (task, length, cell), runs in both.groupby(["task", "T", "cell"], sort=False):
        n, k_plain, k_new, fisher = _solved(runs)
        a, b = runs["value_xla"].to_numpy(float), runs["value_plain"].to_numpy(float)
        welch = (stats.ttest_ind(a, b, equal_var=False).pvalue
                 if n > 1 and (a.std() > 0 or b.std() > 0) else float("nan"))
        ratio = runs["train_time_s_xla"].median() / runs["train_time_s_plain"].median()
        rows.append(f"| {task} T = {length} | {cell} | {n} | {k_plain}/{n} | {k_new}/{n} | "
                    f"{fisher:.2f} | {b.mean():.4f} | {a.mean():.4f} | "
                    f"{'–' if np.isnan(welch) else f'{welch:.2f}'} | "
                    f"{ratio:.2f} |")
    a, b = both["value_xla"].to_numpy(float), both["value_plain"].to_numpy(float)
    low, high = welch_interval(a, b)
    metric = ", ".join(sorted(set(both["metric_plain"])))
    return "\n".join([
        (f"{_scope(both, command)} trained with `{change}` (`{sources[1]}`) against the "
         f"runs of the same cells and seeds in `{sources[0]}`, as two samples per cell, not "
         f"run by run; key metric: {metric}."),
        "", *rows, "",
        (f"Over all {len(both)} runs each: difference of the means ({lever} − plain) "
         f"{a.mean() - b.mean():+.4f}, 95 % interval (Welch) {low:+.4f} to {high:+.4f}; "
         f"equivalence within ±{margin:g} (TOST, two one-sided Welch tests) "
         f"p = {tost_unpaired(a, b, margin):.3g}; solved: {int(both['solved_plain'].sum())} "
         f"plain, {int(both['solved_xla'].sum())} {lever}."), ""])


def report(both: pd.DataFrame, margin: float, sources: tuple[str, str], command: str) -> str:
    rows = [("| setting | cell | pairs | solved (plain) | solved (XLA) | Fisher p | mean (plain) | mean (XLA) "
            "| largest paired difference | pairs within 1e-3 | training time XLA ÷ plain (median) |"),
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for (task, length, cell), runs in both.groupby(["task", "T", "cell"], sort=False):
        n, k_plain, k_xla, fisher = _solved(runs)
        diff = (runs["value_xla"] - runs["value_plain"]).abs()
        ratio = (runs["train_time_s_xla"] / runs["train_time_s_plain"]).median()
        rows.append(f"| {task} T = {length} | {cell} | {n} | {k_plain}/{n} | {k_xla}/{n} | {fisher:.2f} | "
                    f"{runs['value_plain'].mean():.4f} | {runs['value_xla'].mean():.4f} | "
                    f"{diff.max():.2g} | {int((diff <= 1e-3).sum())}/{n} | {ratio:.2f} |")
    diffs = (both["value_xla"] - both["value_plain"]).to_numpy(float)
    mean, sem = diffs.mean(), stats.sem(diffs) if len(diffs) > 1 else float("nan")
    half = stats.t.ppf(0.975, len(diffs) - 1) * sem if len(diffs) > 1 else float("nan")
    same_config = bool((both["config_xla"] == both["config_plain"]).all())
    metric = ", ".join(sorted(set(both["metric_plain"])))
    return "\n".join([
        (f"{_scope(both, command)} trained with `train.jit_compile: true` "
        f"(`{sources[1]}`), each paired with the run of the same cell and seed in `{sources[0]}` "
        f"(config hashes {'identical' if same_config else 'NOT identical'}); key metric: {metric}."),
        "", *rows, "",
        (f"Over all {len(both)} pairs: mean paired difference (XLA − plain) {mean:+.4f}, 95 % "
        f"interval {mean - half:+.4f} to {mean + half:+.4f}; equivalence within ±{margin:g} "
        f"(TOST) p = {tost(diffs, margin):.3g}; runs whose key metric agrees to 1e-3: "
        f"{int((np.abs(diffs) <= 1e-3).sum())} of {len(both)}; solved the same way: "
        f"{int((both['solved_xla'] == both['solved_plain']).sum())} of {len(both)}."), ""])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plain", type=Path, help="the runs without XLA (an export's _runs.csv)")
    parser.add_argument("xla", type=Path, help="the same configurations with the lever (an export): XLA, or with --unpaired another")
    parser.add_argument("--margin", type=float, default=0.05,
                        help="equivalence margin on the key metric (default 0.05)")
    parser.add_argument("--unpaired", action="store_true",
                        help="compare two samples per cell, not run by run (a lever that moves "
                             "the initial weights, e.g. the JAX backend)")
    parser.add_argument("--lever", default="JAX", help="its name in the table (with --unpaired)")
    parser.add_argument("--change", default="KERAS_BACKEND=jax",
                        help="what the second export's runs changed (with --unpaired)")
    parser.add_argument("--output", type=Path, default=HERE / "xla_equivalence.md")
    args = parser.parse_args(argv)
    both = pairs(pd.read_csv(args.plain), pd.read_csv(args.xla))
    command = "python -m benchmarks.xla_equivalence " + shlex.join(sys.argv[1:] if argv is None
                                                                   else argv)
    sources = (str(args.plain), str(args.xla))
    text = (report_unpaired(both, args.margin, sources, command, args.lever, args.change)
            if args.unpaired else report(both, args.margin, sources, command))
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
