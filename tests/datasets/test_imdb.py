"""IMDB loader on a miniature aclImdb tree and tarball (see conftest.py)."""

from __future__ import annotations

import tarfile

import numpy as np
import pytest
from dataset_fixtures import REVIEWS, imdb_files, write_tarball

from datasets import DataConfig, MissingDataError, imdb
from datasets.base import CorruptDataError


def config(root, **kw):
    return DataConfig(**{"name": "imdb", "data_dir": str(root), "batch_size": 64, "max_length": 12,
                         **kw})


def everything(dataset):
    xs, ys = zip(*dataset)
    return np.concatenate(xs), np.concatenate(ys)


def test_tree_and_tarball_give_the_same_reviews_labels_from_folder_names(imdb_tree, imdb_tarball):
    from_tree = imdb.read(imdb.locate(config(imdb_tree)))
    from_tar = imdb.read(imdb.locate(config(imdb_tarball)))
    for split in ("train", "test"):
        assert from_tree[split].texts == from_tar[split].texts
        assert np.array_equal(from_tree[split].labels, from_tar[split].labels)
    train = from_tar["train"]
    assert len(train.texts) == REVIEWS["train", "pos"] + REVIEWS["train", "neg"]  # unsup skipped
    assert all(("great" in t) == bool(label) for t, label in zip(train.texts, train.labels))


def test_load_splits_vectorises_and_pads_with_zero(imdb_tarball):
    train, val, test, spec = imdb.load(config(imdb_tarball))
    (x_train, _), (x_val, _), (x_test, y_test) = map(everything, (train, val, test))
    assert (len(x_train), len(x_val), len(x_test)) == (16, 4, 12)  # 20 % of train is validation
    assert x_train.shape[1] == spec.sequence_length == 12 and spec.padding_id == 0
    assert y_test.tolist() == [0.0] * 6 + [1.0] * 6
    vocab = spec.extras["vocabulary"]
    assert vocab[:2] == ["", "[UNK]"] and spec.input_dim == len(vocab)
    assert "br" not in vocab and "great" in vocab and "Truly" not in vocab and "film." not in vocab
    row = x_test[0]
    n = int((row > 0).sum())
    assert n == 10 and np.all(row[:n] > 0) and np.all(row[n:] == 0)  # "review 0 of test a …"
    assert spec.output == "binary" and spec.input_encoding == "embedding"


def test_vocabulary_is_built_on_train_only(imdb_tarball):
    *_, spec = imdb.load(config(imdb_tarball, subset=4, test_subset=12))
    vocab = spec.extras["vocabulary"]
    train_ids = {str(i) for i in range(10)}
    assert "test" not in vocab and "train" in vocab and set(vocab) & train_ids


def test_subset_is_balanced_and_seeded(imdb_tarball):
    def labels(seed):
        train, val, test, _ = imdb.load(config(imdb_tarball, subset=10, val_split=0.2, seed=seed))
        return [everything(d) for d in (train, val, test)]

    first, again, other = labels(0), labels(0), labels(1)
    (_, y_tr), (x_val, y_val), (x_te, y_te) = first
    assert len(y_tr) + len(y_val) == 10 and len(y_val) == 2 and len(y_te) == 5
    assert (y_tr.sum() + y_val.sum()) == 5 and y_te.sum() in (2, 3)
    assert np.array_equal(x_val, again[1][0]) and np.array_equal(x_te, again[2][0])
    assert not np.array_equal(x_te, other[2][0])


def member(name, kind=tarfile.REGTYPE, link="", size=0):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, size
    return info


@pytest.mark.parametrize(
    "bad",
    [
        member("aclImdb/train/pos/9_9.txt", tarfile.SYMTYPE, link="/etc/passwd"),
        member("aclImdb/train/pos/8_9.txt", tarfile.SYMTYPE, link="7_7.txt"),  # even inside
        member("aclImdb/train/pos/6_9.txt", tarfile.LNKTYPE, link="aclImdb/README"),
        member("aclImdb/../../evil.txt", size=1),
        member("/tmp/evil.txt", size=1),
        member("aclImdb/dev", tarfile.CHRTYPE),
    ],
    ids=["symlink-out", "symlink-in", "hardlink", "dotdot", "absolute", "device"],
)
def test_unsafe_archive_members_are_refused(tmp_path, bad):
    archive = write_tarball(tmp_path / "data" / "aclImdb_v1.tar.gz", imdb_files(), extra=[bad])
    with pytest.raises(imdb.UnsafeArchiveError, match="refusing the archive .*aclImdb_v1.tar.gz"):
        imdb.read(archive)
    assert [p.name for p in archive.parent.iterdir()] == [archive.name]  # nothing written


def test_truncated_tarball_is_a_corrupt_data_error_naming_the_file(tmp_path, imdb_tarball):
    data = (imdb_tarball / "aclImdb_v1.tar.gz").read_bytes()
    (tmp_path / "aclImdb_v1.tar.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptDataError, match="aclImdb_v1.tar.gz.*delete it"):
        imdb.load(config(tmp_path))


def test_missing_archive_offline_is_missing_data_error_after_one_official_download_try(
    tmp_path, offline
):
    with pytest.raises(MissingDataError) as err:
        imdb.load(config(tmp_path))
    assert str(tmp_path / "aclImdb_v1.tar.gz") in str(err.value)
    assert "RNNLAB_DATA_DIR" in str(err.value)
    assert offline == [(imdb.URL, tmp_path / "aclImdb_v1.tar.gz", imdb.MD5)]


def test_downloaded_archive_is_used(tmp_path, imdb_tarball, monkeypatch):
    from datasets import base

    monkeypatch.setattr(base, "download", lambda url, target, h=None: imdb_tarball / target.name)
    train, *_ = imdb.load(config(tmp_path / "empty"))
    assert sum(len(y) for _, y in train) == 16


def test_parsed_reviews_are_cached_beside_a_writable_archive(imdb_tarball, monkeypatch):
    first = imdb.read(imdb_tarball / "aclImdb_v1.tar.gz")
    assert len(list((imdb_tarball / ".rnnlab-cache").iterdir())) == 1
    imdb._read.cache_clear()
    monkeypatch.setattr(imdb, "_read_tarball", lambda *a: pytest.fail("re-read the archive"))
    assert imdb.read(imdb_tarball / "aclImdb_v1.tar.gz")["test"].texts == first["test"].texts


def test_info_reports_sizes_lengths_and_location(imdb_tarball):
    info = imdb.info(config(imdb_tarball))
    assert info["sizes"] == {"train": 16, "val": 4, "test": 12}
    assert info["location"].endswith("aclImdb_v1.tar.gz")
    stats = info["tokens_per_review"]["test"]
    assert stats["max"] == 10
    assert stats["truncated_at_12"] == 0.0


def test_vectorised_splits_are_kept_for_the_next_run_of_the_same_selection(imdb_tarball,
                                                                           monkeypatch):
    imdb._vectorised.cache_clear()
    first = [everything(d) for d in imdb.load(config(imdb_tarball))[:3]]
    adapted = []
    monkeypatch.setattr(imdb, "vectorizer", lambda texts, cfg: adapted.append(cfg) or
                        pytest.fail("adapted again for the same selection"))
    again = imdb.load(config(imdb_tarball, batch_size=4))  # batching is not part of the key
    for (x, y), split in zip(first, again[:3]):  # train is shuffled: compare its rows as a set
        x_again, y_again = everything(split)
        assert sorted(zip(map(tuple, x_again), y_again)) == sorted(zip(map(tuple, x), y))
    again[3].extras["vocabulary"].append("mutated")  # a run's spec is its own copy
    assert "mutated" not in imdb.load(config(imdb_tarball))[3].extras["vocabulary"]
    monkeypatch.undo()
    shorter = imdb.load(config(imdb_tarball, max_length=5))  # another selection: vectorised anew
    assert everything(shorter[0])[0].shape[1] == 5
