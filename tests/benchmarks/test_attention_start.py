"""benchmarks.attention_start trains every variant on the same real batches."""

from __future__ import annotations

import json

from benchmarks import attention_start


def test_attention_start_trains_each_variant_on_the_same_batches(mini_data, monkeypatch, offline,
                                                                 capsys):
    monkeypatch.setenv("RNNLAB_DATA_DIR", str(mini_data))
    small = ["data.batch_size=2", "model.units=4", "model.embedding_dim=4"]
    results = attention_start.main(
        ["--batches", "3", "--every", "2", *[a for s in small for a in ("--set", s)],
         "--variant", "model.attention=null",
         "--variant", "model.attention=luong", "model.readout=deep"])
    assert [r["variant"] for r in results] == ["model.attention=null",
                                               "model.attention=luong model.readout=deep"]
    assert all(r["batches"] == 3 and len(r["loss"]) == 2 for r in results)  # windows of 2 and 1
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert printed == results
