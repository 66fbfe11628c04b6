"""benchmarks/xla_equivalence.py's unpaired form: a lever that moves the initial weights (the JAX
backend) compared as two samples per cell, with an equivalence test on the difference of means."""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks import xla_equivalence as eq


def export(values, solved, train_time=10.0):
    """A runs export's columns the comparison reads: temporal order T = 100, two cells, five
    seeds each."""
    cells = ["lstm"] * 5 + ["gru"] * 5
    return pd.DataFrame({
        "task": "temporal_order", "T": 100.0, "cell": cells, "seed": list(range(5)) * 2,
        "status": "FINISHED", "unit_forget_bias": "True", "metric": "accuracy",
        "test_accuracy": values, "solved": solved, "train_time_s": train_time,
        "tag.rnnlab.config_hash": [f"h{i}" for i in range(10)]})


def test_close_samples_are_equivalent_and_shifted_ones_are_not():
    rng = np.random.default_rng(0)
    plain = rng.normal(0.9, 0.02, 25)
    assert eq.tost_unpaired(plain[::-1] + 0.005, plain, margin=0.05) < 0.01
    assert eq.tost_unpaired(plain + 0.1, plain, margin=0.05) > 0.99
    low, high = eq.welch_interval(plain + 0.1, plain)
    assert low < 0.1 < high


def test_the_unpaired_table_counts_each_sample_and_tests_the_means(tmp_path):
    plain = export([1.0, 1.0, 0.5, 1.0, 0.5] + [1.0] * 5, [1, 1, 0, 1, 0] + [1] * 5)
    jax = export([0.5, 1.0, 1.0, 1.0, 1.0] + [1.0] * 4 + [0.5], [0, 1, 1, 1, 1] + [1] * 4 + [0],
                 train_time=5.0)
    text = eq.report_unpaired(eq.pairs(plain, jax), 0.05, ("plain.csv", "jax.csv"), "cmd",
                              "JAX", "KERAS_BACKEND=jax")
    rows = {line.split("|")[2].strip(): line for line in text.splitlines()
            if line.startswith("| temporal_order")}
    assert "| 3/5 | 4/5 |" in rows["lstm"] and "| 5/5 | 4/5 |" in rows["gru"]
    assert rows["lstm"].rstrip(" |").endswith("0.50")  # training time JAX ÷ plain
    assert "10 runs each" in text and "solved: 8 plain, 8 JAX" in text
