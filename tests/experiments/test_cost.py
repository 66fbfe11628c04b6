"""experiments.analysis.cost (behind benchmarks.study_cost): a planned run costs what the measured
runs of its task, T and cell took."""

from __future__ import annotations

import pandas as pd
import pytest

from experiments.analysis import cost
from experiments.config import Config

MEASURED = pd.DataFrame({  # two lstm runs at T = 50: 10 and 6 of 12 epochs (early stopping)
    "task": ["reber", "reber"], "T": [50.0, 50.0], "cell": ["lstm", "lstm"],
    "train_time_s": [100.0, 60.0], "wall_s": [110.0, 64.0], "epochs_run": [10, 6],
    "epochs": [12, 12]})


def config(length: int, epochs: int = 12) -> Config:
    return Config.from_dict({"data": {"name": "reber", "length": length},
                             "model": {"cell": "lstm"}, "train": {"epochs": epochs}})


def test_a_measured_setting_costs_its_mean_wall_time_and_at_most_every_epoch():
    as_measured, upper, how = cost.estimate(config(50), MEASURED)
    assert how == "measured"
    assert as_measured == pytest.approx(87.0)  # mean wall time
    assert upper == pytest.approx(10.0 * 12 + 7.0)  # 10 s per epoch × 12 + overhead


def test_an_unmeasured_length_scales_with_the_input_steps():
    as_measured, upper, how = cost.estimate(config(9, epochs=6), MEASURED)
    scale = (9 + 39) / (50 + 39)  # Reber: T + 39 input steps
    assert how == f"T = 50 × {scale:.2f}"
    assert as_measured == pytest.approx(80.0 * scale * 6 / 12 + 7.0)
    assert upper == pytest.approx(10.0 * scale * 6 + 7.0)


def test_a_cell_never_measured_is_an_error():
    with pytest.raises(LookupError, match="reber / gru"):
        cost.estimate(Config.from_dict({"data": {"name": "reber", "length": 50},
                                              "model": {"cell": "gru"}}), MEASURED)
