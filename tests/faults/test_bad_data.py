"""Bad data (issue 12 §6): corrupt archives, non-UTF-8 text, oversized members, interrupted caches.

Every unusable file gives one CorruptDataError line — the file, what is wrong, what to do — and the
CLI prints that line and exits 2, without a traceback.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import time
import tracemalloc
import warnings

import mlflow
import pytest
from dataset_fixtures import imdb_files, write_tarball

from datasets import base, imdb
from datasets.base import CorruptDataError, DataConfig, DataWarning


def config(archive, **kw):
    return DataConfig(name="imdb", data_dir=str(archive.parent), batch_size=8, max_length=12, **kw)


def truncated(archive):
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])


def not_gzip(archive):
    archive.write_bytes(b"<html>404 Not Found</html>" * 40)  # what a captive portal hands back


def gzip_of_garbage(archive):
    archive.write_bytes(gzip.compress(os.urandom(4096)))


def assert_one_clear_line(message: str, path) -> None:
    assert "\n" not in message.strip()
    assert str(path) in message and "delete it" in message and imdb.URL in message


@pytest.mark.parametrize("damage", [truncated, not_gzip, gzip_of_garbage])
def test_damaged_archive_is_one_line_corrupt_data_error(imdb_archive, damage):
    damage(imdb_archive)
    with pytest.raises(CorruptDataError) as err:
        imdb.load(config(imdb_archive))
    assert_one_clear_line(str(err.value), imdb_archive)


def test_non_utf8_review_is_kept_with_replacement_and_counted(tmp_path):
    files = imdb_files()
    name = "aclImdb/train/pos/3_7.txt"
    files[name] = b"caf\xe9 \xff great film"  # Latin-1 bytes in a UTF-8 corpus
    archive = write_tarball(tmp_path / "data" / "aclImdb_v1.tar.gz", files)
    with pytest.warns(DataWarning, match=r"1 review\(s\) are not valid UTF-8 \(first: " + name):
        reviews = imdb.read(archive)
    assert "caf\ufffd \ufffd great film" in reviews["train"].texts
    assert reviews["train"].undecodable == [name] and reviews["test"].undecodable == []
    assert imdb.info(config(archive))["non_utf8_reviews"] == 1


def header_only_archive(path, name: str, size: int):
    """A .tar.gz whose first member claims `size` bytes but holds one block: refusing it must
    come from the header (reading the member would hit the truncation instead)."""
    info = tarfile.TarInfo(name)
    info.size = size
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(info.tobuf(format=tarfile.GNU_FORMAT) + bytes(512)))
    return path


@pytest.mark.parametrize(
    "name, size",
    [("aclImdb/train/pos/0_9.txt", imdb.MAX_REVIEW_BYTES + 1),
     ("aclImdb/imdb.vocab", 2**30)],  # skipped members are limited too: no walking through 1 GB
    ids=["review", "other-member"],
)
def test_oversized_member_is_refused_from_its_header(tmp_path, name, size):
    archive = header_only_archive(tmp_path / "data" / "aclImdb_v1.tar.gz", name, size)
    with pytest.raises(CorruptDataError, match=f"member '{name}' holds {size:,} bytes, more than"):
        imdb.read(archive)


def test_members_over_the_total_limit_are_refused(imdb_archive, monkeypatch):
    total = sum(len(data) for data in imdb_files().values())
    monkeypatch.setattr(imdb, "MAX_ARCHIVE_BYTES", total - 1)
    with pytest.raises(CorruptDataError, match="more than the .* bytes allowed in total"):
        imdb.read(imdb_archive)
    monkeypatch.setattr(imdb, "MAX_ARCHIVE_BYTES", total)
    assert len(imdb.read(imdb_archive)["test"].texts) == 12


def test_oversized_review_in_a_directory_is_refused(tmp_path, monkeypatch):
    root = tmp_path / "data" / "aclImdb"
    for name, data in imdb_files().items():
        (root.parent / name).parent.mkdir(parents=True, exist_ok=True)
        (root.parent / name).write_bytes(data)
    monkeypatch.setattr(imdb, "MAX_REVIEW_BYTES", 10)
    with pytest.raises(CorruptDataError, match="more than the 10 allowed"):
        imdb.read(root)


class CountingStream(io.BytesIO):
    def __init__(self, data):
        super().__init__(data)
        self.given = 0

    def read(self, size=-1):
        chunk = super().read(size)
        self.given += len(chunk)
        return chunk


def test_read_at_most_stops_one_byte_past_the_limit():
    stream = CountingStream(bytes(10 * base.CHUNK_BYTES))
    assert base.read_at_most(stream, base.CHUNK_BYTES + 5) is None
    assert stream.given == base.CHUNK_BYTES + 6
    assert base.read_at_most(CountingStream(b"abc"), 3) == b"abc"


@pytest.mark.parametrize(
    "content, problem",
    [(gzip.compress(b"a line\n" * 1000)[:40], "end-of-stream|EOF|Compressed file ended"),
     (b"not a gzip file", "Not a gzipped file"),
     (gzip.compress(bytes(5000)), "decompresses to more than")],
    ids=["truncated", "not-gzip", "bomb"],
)
def test_read_gzip_refuses_damaged_or_oversized_files(tmp_path, content, problem):
    path = tmp_path / "train.de.gz"
    path.write_bytes(content)
    with pytest.raises(CorruptDataError, match=problem) as err:
        base.read_gzip(path, "https://example.org/train.de.gz", limit=4096)
    assert "\n" not in str(err.value) and str(path) in str(err.value)
    assert "https://example.org/train.de.gz" in str(err.value)


def test_read_gzip_text_replaces_bad_bytes_and_warns_with_the_count(tmp_path):
    path = tmp_path / "val.de.gz"
    path.write_bytes(gzip.compress(b"Ein Mann.\r\n" + b"Gr\xfc\xdfe \xff\n"))
    with pytest.warns(DataWarning, match=r"val.de.gz: 3 undecodable byte sequence"):
        text = base.read_gzip_text(path, "https://example.org/val.de.gz")
    assert text.splitlines() == ["Ein Mann.", "Gr\ufffd\ufffde \ufffd"]
    path.write_bytes(gzip.compress("Ein Mann \ufffd.".encode()))  # a real U+FFFD is not counted
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert base.read_gzip_text(path, "u") == "Ein Mann \ufffd."


def cache_files(source):
    folder = base.cache_dir(source.parent)
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_interrupted_cache_write_leaves_nothing_and_the_next_read_rebuilds(tmp_path, monkeypatch):
    source = tmp_path / "data.bin"
    source.write_bytes(b"x")

    def interrupted(src, dst):
        raise KeyboardInterrupt  # Ctrl-C after the temporary file is written, before the rename

    monkeypatch.setattr(base.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        base.cached_json(source, "t", lambda: {"a": 1})
    assert cache_files(source) == []
    monkeypatch.undo()
    assert base.cached_json(source, "t", lambda: {"a": 2}) == {"a": 2}
    assert base.cached_json(source, "t", lambda: pytest.fail("not cached")) == {"a": 2}


def test_temp_file_of_a_killed_writer_is_never_read_and_removed_when_stale(tmp_path):
    source = tmp_path / "data.bin"
    source.write_bytes(b"x")
    folder = base.cache_dir(source.parent)
    folder.mkdir(parents=True)
    old, young = folder / ".data.bin.t.old.tmp", folder / ".data.bin.t.young.tmp"
    for path in (old, young):
        path.write_bytes(b"\x1f\x8b partial")
    stale = time.time() - base.STALE_TMP_SECONDS - 60
    os.utime(old, (stale, stale))
    assert base.cached_json(source, "t", lambda: [1]) == [1]
    names = cache_files(source)
    assert old.name not in names and young.name in names  # young: maybe another live writer
    assert len([n for n in names if n.endswith(".json.gz")]) == 1


# --- through the CLI and a sweep -------------------------------------------------------------------


def test_data_info_on_a_truncated_archive_exits_2_with_one_line(imdb_archive, capsys):
    from experiments.cli import main

    truncated(imdb_archive)
    assert main(["data", "info", "imdb", "--set", f"data.data_dir={imdb_archive.parent}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("rnnlab data: cannot read ") and str(imdb_archive) in err


def test_run_on_a_truncated_archive_exits_2_and_records_the_reason(imdb_archive, mlflow_uri, capsys):
    from experiments.cli import main

    truncated(imdb_archive)
    code = main(["run", "--task", "imdb", "--cell", "lstm", "--set",
                 f"data.data_dir={imdb_archive.parent}", "--set", "data.subset=8"])
    err = capsys.readouterr().err  # MLflow's own INFO lines on creating the store come first
    [line] = [line for line in err.splitlines() if line.startswith("rnnlab")]
    assert code == 2 and "Traceback" not in err and line.startswith("rnnlab run: cannot read ")
    [run] = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert run.info.status == "FAILED" and run.data.tags["rnnlab.status"] == "FAILED"
    assert run.data.tags["rnnlab.reason"] == line.removeprefix("rnnlab run: ")


def test_sweep_child_on_corrupt_data_is_failed_with_the_reason(imdb_archive, mlflow_uri):
    from experiments.orchestration import launch
    from experiments.orchestration import plan as sweep

    not_gzip(imdb_archive)
    plan = sweep.parse_sweep({
        "name": "bad-data",
        "base": {"data": {"name": "imdb", "data_dir": str(imdb_archive.parent), "subset": 8},
                 "model": {"units": 4}, "train": {"epochs": 1}},
    })
    [outcome] = launch.run_sweep(plan, out=lambda line: None)
    assert outcome.status == "FAILED" and str(imdb_archive) in outcome.reason
    child = mlflow.get_run(outcome.run_id)
    assert child.info.status == "FAILED" and "delete it" in child.data.tags["rnnlab.reason"]


# --- slow: the real 1 GB member ---------------------------------------------------------------------


class Zeros(io.RawIOBase):
    def __init__(self, size):
        self.left = size

    def readable(self):
        return True

    def readinto(self, buffer):
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


@pytest.mark.slow
def test_one_gigabyte_member_of_zeros_is_refused_without_reading_it(tmp_path):
    archive = tmp_path / "data" / "aclImdb_v1.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        info = tarfile.TarInfo("aclImdb/imdb.vocab")
        info.size = 2**30
        tar.addfile(info, io.BufferedReader(Zeros(info.size)))
    assert archive.stat().st_size < 8 * 2**20  # ~1 GB of zeros, a few MB compressed
    tracemalloc.start()
    try:
        with pytest.raises(CorruptDataError, match="holds 1,073,741,824 bytes, more than"):
            imdb.read(archive)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20
