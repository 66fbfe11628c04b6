"""Test-wide settings (quiet TensorFlow, the TensorFlow backend unless a test starts its own) and the
fixtures shared by the dataset and experiment tests: no network, miniature real data."""

import os
from pathlib import Path

import pytest
from dataset_fixtures import write_mini_data_dir

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


@pytest.fixture
def offline(monkeypatch):
    """Every download fails at once, as on a machine without network; returns the attempts."""
    from datasets import base

    attempts = []

    def refuse(url, target, file_hash=None):
        attempts.append((url, Path(target), file_hash))
        raise OSError(f"offline (tests never touch the network): no download of {url}")

    monkeypatch.setattr(base, "download", refuse)
    return attempts


@pytest.fixture
def mini_data(tmp_path_factory) -> Path:
    """A data dir with a miniature aclImdb tree and Multi30k de/en gz files, in the real layout."""
    return write_mini_data_dir(tmp_path_factory.mktemp("data"))
