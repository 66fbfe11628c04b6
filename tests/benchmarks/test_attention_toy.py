"""benchmarks.attention_toy runs the real translation model on every attention type."""

from __future__ import annotations

from benchmarks import attention_toy


def test_attention_toy_trains_one_model_per_attention_type(capsys):
    results = attention_toy.main(["--examples", "64", "--length", "4", "--units", "4",
                                  "--epochs", "2", "--vocab", "8"])
    assert [r["attention"] for r in results] == ["none", "bahdanau", "luong"]
    assert all(len(r["loss"]) == 2 and len(r["token_accuracy"]) == 2 for r in results)
    assert len(capsys.readouterr().out.splitlines()) == 3  # one JSON line each
