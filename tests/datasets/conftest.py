"""Fixtures of the dataset tests: no network, and miniature copies of the real files."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from dataset_fixtures import SENTENCES, imdb_files, write_tarball


@pytest.fixture(autouse=True)
def _no_network(offline):
    """Every dataset test runs offline (the shared `offline` fixture of tests/conftest.py)."""
    return offline


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """A private HOME, so caches meant for ~/.keras land in the test's temp dir."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()


@pytest.fixture
def imdb_tree(tmp_path) -> Path:
    """A data dir holding a miniature extracted ``aclImdb/``."""
    root = tmp_path / "tree"
    for name, data in imdb_files().items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


@pytest.fixture
def imdb_tarball(tmp_path) -> Path:
    """A data dir holding a miniature ``aclImdb_v1.tar.gz``."""
    root = tmp_path / "tar"
    write_tarball(root / "aclImdb_v1.tar.gz", imdb_files())
    return root


@pytest.fixture
def multi30k_dir(tmp_path) -> Path:
    """A data dir holding miniature ``multi30k/{split}.{en,de}.gz`` files."""
    root = tmp_path / "m30k"
    (root / "multi30k").mkdir(parents=True)
    for stem, pairs in SENTENCES.items():
        for column, lang in enumerate(("en", "de")):
            text = "".join(pair[column] + "\n" for pair in pairs)
            with gzip.open(root / "multi30k" / f"{stem}.{lang}.gz", "wt", encoding="utf-8") as f:
                f.write(text)
    return root
