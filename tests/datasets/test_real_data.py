"""Integration tests against the real files under $RNNLAB_DATA_DIR (skipped when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import datasets
from datasets import DataConfig, imdb, multi30k

ROOT = Path(os.environ.get("RNNLAB_DATA_DIR", "/nonexistent"))
pytestmark = pytest.mark.data


@pytest.fixture(autouse=True)
def home(monkeypatch):
    """Keep the real HOME here, so the IMDB cache in ~/.keras survives from one run to the next."""


@pytest.mark.skipif(not (ROOT / imdb.ARCHIVE).exists(), reason="RNNLAB_DATA_DIR lacks IMDB")
def test_imdb_has_25000_train_and_25000_test_reviews_balanced():
    reviews = imdb.read(imdb.locate(DataConfig(name="imdb")))
    for split in ("train", "test"):
        assert len(reviews[split].texts) == 25_000
        assert reviews[split].labels.sum() == 12_500
    *_, test, spec = datasets.load(
        DataConfig(name="imdb", subset=200, test_subset=100, vocab_size=500, batch_size=500)
    )
    (x, y), *_ = list(test)
    assert x.shape == (100, 200) and y.numpy().sum() == 50 and spec.input_dim == 500


@pytest.mark.skipif(not (ROOT / "multi30k").is_dir(), reason="RNNLAB_DATA_DIR lacks Multi30k")
@pytest.mark.parametrize("pair", [("de", "en"), ("en", "fr"), ("cs", "de")])
def test_multi30k_has_29000_1014_1000_aligned_pairs(pair):
    source, target = pair
    pairs, _ = multi30k.read(DataConfig(name="multi30k", source_lang=source, target_lang=target))
    sizes = {split: len(p.sources) for split, p in pairs.items()}
    assert sizes == {"train": 29_000, "val": 1_014, "test": 1_000}
    assert all(len(p.targets) == len(p.sources) for p in pairs.values())


@pytest.mark.skipif(not (ROOT / "multi30k").is_dir(), reason="RNNLAB_DATA_DIR lacks Multi30k")
def test_multi30k_detokenised_targets_score_high_bleu_against_raw_references():
    import sacrebleu

    _, _, test, spec = datasets.load(DataConfig(name="multi30k", batch_size=1000))
    (_, targets), *_ = list(test)
    hypotheses = [spec.extras["detokenize"](row) for row in np.asarray(targets)]
    bleu = sacrebleu.corpus_bleu(hypotheses, [spec.extras["test_references"]], lowercase=True)
    assert bleu.score > 80  # only [UNK] words and spacing differ
