"""The shared contract: data directory, missing files, downloads, the cache, the registry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import datasets
from datasets import base

REAL_DOWNLOAD = base.download  # before the autouse fixture replaces it


def test_data_dir_prefers_argument_then_environment_then_keras_home(monkeypatch, tmp_path):
    monkeypatch.setenv("RNNLAB_DATA_DIR", str(tmp_path / "env"))
    assert base.data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert base.data_dir() == tmp_path / "env"
    monkeypatch.delenv("RNNLAB_DATA_DIR")
    assert base.data_dir() == Path.home() / ".keras" / "datasets"


def test_missing_files_offline_raise_one_error_naming_files_directory_and_variable(
    tmp_path, offline
):
    (tmp_path / "here.txt").write_text("present")
    files = {"here.txt": "https://x/here.txt", "a.gz": "https://x/a.gz", "b.gz": "https://x/b.gz"}
    with pytest.raises(base.MissingDataError) as err:
        base.ensure_files(tmp_path, files)
    message = str(err.value)
    assert str(tmp_path / "a.gz") in message and str(tmp_path / "b.gz") in message
    assert "here.txt" not in message and "RNNLAB_DATA_DIR" in message
    assert isinstance(err.value, FileNotFoundError)
    assert [url for url, *_ in offline] == ["https://x/a.gz", "https://x/b.gz"]


def test_download_goes_through_keras_get_file_and_reports_failure_as_oserror(monkeypatch, tmp_path):
    import keras

    calls = []

    def fake_get_file(**kwargs):
        calls.append(kwargs)
        raise ValueError("hash mismatch")

    monkeypatch.setattr(keras.utils, "get_file", fake_get_file)
    with pytest.raises(OSError, match="hash mismatch"):
        REAL_DOWNLOAD("https://x/f.gz", tmp_path / "f.gz", "abc")
    assert calls[0]["origin"] == "https://x/f.gz" and calls[0]["file_hash"] == "abc"
    assert calls[0]["fname"] == "f.gz" and calls[0]["cache_dir"] == str(tmp_path)


def test_download_into_read_only_directory_goes_to_keras_home(monkeypatch, tmp_path):
    import keras

    shared = tmp_path / "shared"
    shared.mkdir(mode=0o555)
    seen = []
    monkeypatch.setattr(keras.utils, "get_file", lambda **kw: seen.append(kw) or "/x/f.gz")
    assert REAL_DOWNLOAD("https://x/f.gz", shared / "f.gz") == Path("/x/f.gz")
    assert seen[0]["cache_dir"] == str(Path.home() / ".keras" / "datasets")


def test_cached_json_builds_once_per_file_version_and_never_writes_read_only_dirs(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    source = shared / "data.bin"
    source.write_bytes(b"v1")
    shared.chmod(0o555)
    builds = []
    build = lambda: builds.append(1) or {"n": len(builds)}
    assert base.cached_json(source, "t", build) == {"n": 1}
    assert base.cached_json(source, "t", build) == {"n": 1}
    assert list(shared.iterdir()) == [source]  # the cache went to ~/.keras/datasets
    (cache,) = (Path.home() / ".keras" / "datasets" / ".rnnlab-cache").iterdir()
    cache.write_bytes(b"not gzip")  # a damaged cache is rebuilt
    assert base.cached_json(source, "t", build) == {"n": 2}


def test_balanced_subset_is_balanced_sorted_and_seeded():
    labels = np.array([0] * 30 + [1] * 10)
    a = base.balanced_subset(labels, 8, np.random.default_rng(1))
    b = base.balanced_subset(labels, 8, np.random.default_rng(1))
    assert np.array_equal(a, b) and np.all(np.diff(a) > 0)
    assert np.bincount(labels[a]).tolist() == [4, 4]
    with pytest.raises(ValueError, match="only 10"):
        base.balanced_subset(labels, 30, np.random.default_rng(1))


def test_registry_lists_every_dataset_and_rejects_unknown_names():
    assert datasets.names() == [
        "imdb", "multi30k", "adding", "copy", "temporal_order", "reber", "spike_timing",
    ]  # fmt: skip
    for name in datasets.names():
        module = datasets.get(name)
        assert callable(module.load) and callable(module.info)
    with pytest.raises(ValueError, match="'name' must be one of the choices, got 'nope'; valid: imdb, .*spike_timing"):
        datasets.get("nope")


def test_a_dataset_defines_its_settings_by_keys_it_reads():
    """`Reads.defines` (what the report names a setting by) must be among the keys the loader
    reads; every registered dataset's declaration holds."""
    with pytest.raises(ValueError, match="'defines' must be one of the choices, got 'variant'"):
        base.Reads(data=("length",), outputs=("regression",), inputs="features",
                   defines=("length", "variant"))
    for name in datasets.names():
        reads = datasets.reads(name)
        assert set(reads.defines) <= set(reads.data), name
