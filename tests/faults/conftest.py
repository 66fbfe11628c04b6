"""Fixtures of the fault suite (see README.md): miniature data files and a private MLflow store."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "datasets"))  # the miniature-file builders

from dataset_fixtures import imdb_files, write_tarball
from reliability_fixtures import _store, lab  # noqa: F401 - claims, signals, divergence, store


@pytest.fixture(autouse=True)
def private_home(tmp_path, monkeypatch, offline):
    """Caches meant for ~/.keras land in the test's temp dir; downloads fail (no network)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()


@pytest.fixture
def imdb_archive(tmp_path) -> Path:
    """The path of a good miniature ``aclImdb_v1.tar.gz`` in a data dir of its own."""
    return write_tarball(tmp_path / "data" / "aclImdb_v1.tar.gz", imdb_files())


@pytest.fixture
def mlflow_uri(tmp_path, monkeypatch) -> str:
    """A fresh SQLite MLflow store for this test."""
    import mlflow

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    yield uri
    mlflow.set_tracking_uri(None)
