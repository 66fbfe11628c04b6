"""`python -m benchmarks.translation_cost`: a projection from timed batches of the real model."""

from __future__ import annotations

import json

import pytest

from datasets import data_dir

pytestmark = pytest.mark.skipif(not (data_dir() / "multi30k" / "train.de.gz").exists(),
                                reason="Multi30k is not in RNNLAB_DATA_DIR")


def test_projects_an_epoch_from_the_timed_batches_of_the_configured_model(tmp_path):
    from benchmarks import translation_cost

    output = tmp_path / "cost.json"
    args = ["experiments/sweeps/translation_tutorial.yaml", "--cell", "coupled", "--batches", "2",
            "--warmup", "1", "--output", str(output), "--set", "data.subset=300",
            "--set", "model.units=16", "--set", "model.embedding_dim=8"]
    result = translation_cost.main(args)
    assert (result["cell"], result["units"], result["attention"]) == ("coupled", 16, "bahdanau")
    assert result["epochs"] == 10 and result["batches_per_epoch"] >= 2  # 300 pairs, batches of 128
    epoch = result["batch_s_mean"] * result["batches_per_epoch"]
    assert result["epoch_s_projected"] == pytest.approx(epoch, abs=0.1)
    assert result["training_h_projected"] == pytest.approx(epoch * 10 / 3600, abs=0.01)
    assert json.loads(output.read_text()) == [result]
