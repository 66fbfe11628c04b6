"""IMDB sentiment — the Large Movie Review Dataset v1.0 (Maas et al., ACL 2011).

Source: the official layout ``aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt`` read from the
directory ``<data_dir>/aclImdb`` when it exists, else straight from ``<data_dir>/aclImdb_v1.tar.gz``
(member by member, nothing is extracted; an archive with an unsafe member — link, device, absolute
path, ``..`` — is refused whole; the ``unsup`` reviews are skipped). The parsed reviews are cached
as JSON (next to the archive when that directory is writable, else in ``~/.keras/datasets``), so
only the first load pays for reading 50,000 members. 25,000 train / 25,000 test
reviews, balanced, label 1 = ``pos`` and 0 = ``neg`` from the folder names.

Splits: ``config.subset`` keeps that many training reviews (balanced, seeded; ``None`` = all) and
``config.test_subset`` that many test reviews (default ``subset // 2``, or all). A seeded
``config.val_split`` fraction (default 20 %) of the kept training reviews becomes validation.

Vectorisation: ``keras.layers.TextVectorization`` adapted on the training split only — ``<br />``
removed, lowercased, punctuation stripped, split on whitespace, the ``config.vocab_size`` most
frequent tokens (default 20,000, counting padding and ``[UNK]``), the first ``config.max_length``
tokens kept (default 200), padded with id 0 at the end so ``Embedding(mask_zero=True)`` works.

Each split yields ``(ids int64 (batch, max_length), label float32 (batch,))``;
``spec.extras["vocabulary"]`` is the vocabulary (index = id).
"""

from __future__ import annotations

import functools
import re
import string
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datasets import base
from datasets.base import CorruptDataError, DataConfig, DataSpec

NAME = "imdb"
ARCHIVE = "aclImdb_v1.tar.gz"
URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
MD5 = "7c2ac02c03563afcf9b574c7e56c153a"  # the official archive (84 MB)
MEMBER = re.compile(r"aclImdb/(train|test)/(pos|neg)/(\d+)_(\d+)\.txt")
LABELS = ("neg", "pos")
# chance 0.5 (balanced labels); solved at the level of Maas et al. (2011), 88.9 % test accuracy
GOAL = base.Goal("accuracy", threshold=0.88, mode="at_least", baseline=0.5)


@dataclass
class Reviews:
    """One split's raw reviews: texts and 0/1 labels, sorted by (label, review id)."""

    texts: list[str]
    labels: np.ndarray


class UnsafeArchiveError(CorruptDataError):
    """An archive member is a link, a device, or has an absolute path or ``..``."""


def locate(config: DataConfig) -> Path:
    """The ``aclImdb`` directory or the tarball to read; downloads the tarball when neither exists."""
    directory = base.data_dir(config.data_dir)
    if (directory / "aclImdb").is_dir():
        return directory / "aclImdb"
    return base.ensure_files(directory, {ARCHIVE: URL}, {ARCHIVE: MD5})[ARCHIVE]


def check_member(archive: Path, member: tarfile.TarInfo) -> None:
    """Refuse links, devices, absolute paths and ``..`` (Python's ``tarfile`` data filter, which
    would only strip a leading ``/`` and allows links inside the destination)."""
    try:
        if member.issym() or member.islnk():
            raise tarfile.FilterError(f"{member.name!r} is a link")
        if member.name.startswith(("/", "\\")):
            raise tarfile.AbsolutePathError(member)
        tarfile.data_filter(member, "/nonexistent-destination")
    except tarfile.FilterError as err:
        raise UnsafeArchiveError(f"refusing the archive {archive}: unsafe member: {err}") from err


def _parse(name: str, data: bytes, found: dict) -> None:
    match = MEMBER.fullmatch(name)
    if match:
        split, label, review_id, _ = match.groups()
        found[split].append((LABELS.index(label), int(review_id), data.decode("utf-8")))


def _read_tarball(archive: Path, found: dict) -> None:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                check_member(archive, member)
                if member.isfile():
                    _parse(member.name, tar.extractfile(member).read(), found)
    except (tarfile.ReadError, EOFError, OSError, zlib.error, UnicodeDecodeError) as err:
        if isinstance(err, UnsafeArchiveError):
            raise
        raise CorruptDataError(
            f"cannot read {archive} ({err}); delete it to download it again, or replace it "
            f"with the official {URL}"
        ) from err


def _read_directory(root: Path, found: dict) -> None:
    for path in root.glob("*/*/*.txt"):
        _parse(f"aclImdb/{path.relative_to(root).as_posix()}", path.read_bytes(), found)


def _parse_all(path: Path) -> dict[str, list]:
    found = {"train": [], "test": []}
    (_read_directory if path.is_dir() else _read_tarball)(path, found)
    for split, items in found.items():
        if not items:
            raise CorruptDataError(f"{path} holds no aclImdb/{split}/{{pos,neg}}/*.txt reviews")
        items.sort()
    return found


@functools.lru_cache(maxsize=2)
def _read(path: Path, mtime: float) -> dict[str, Reviews]:
    found = base.cached_json(path, "reviews", lambda: _parse_all(path))
    return {
        split: Reviews([text for *_, text in items], np.array([item[0] for item in items]))
        for split, items in found.items()
    }


def read(path: Path) -> dict[str, Reviews]:
    """``{"train": Reviews, "test": Reviews}`` from an aclImdb directory or tarball.

    Reading the tarball (checking every member) takes seconds, so the parsed reviews are cached
    as JSON (:func:`datasets.base.cached_json`) and in memory while the file is unchanged.
    """
    return _read(Path(path), Path(path).stat().st_mtime)


def standardize(text):
    """TextVectorization's standardiser: drop ``<br />``, lowercase, strip punctuation."""
    import tensorflow as tf

    text = tf.strings.regex_replace(tf.strings.lower(text), r"<br\s*/?>", " ")
    return tf.strings.regex_replace(text, f"[{re.escape(string.punctuation)}]", "")


def select(reviews: dict[str, Reviews], config: DataConfig) -> dict[str, Reviews]:
    """The train / val / test reviews `config` asks for (subset, test_subset, val_split; seeded)."""
    if not 0.0 <= config.val_split < 1.0:
        raise ValueError(f"{NAME}: val_split must be in [0, 1); got {config.val_split}")
    rng = np.random.default_rng(config.seed)
    test_size = config.test_subset or (config.subset // 2 if config.subset else None)
    kept = rng.permutation(base.balanced_subset(reviews["train"].labels, config.subset, rng))
    cut = round(len(kept) * config.val_split)
    indices = {
        "train": np.sort(kept[cut:]),
        "val": np.sort(kept[:cut]),
        "test": base.balanced_subset(reviews["test"].labels, test_size, rng),
    }
    return {
        split: Reviews([reviews[source].texts[i] for i in idx], reviews[source].labels[idx])
        for (split, idx), source in zip(indices.items(), ("train", "train", "test"))
    }


def vectorizer(texts: list[str], config: DataConfig):
    """A ``TextVectorization`` layer adapted on `texts` (the training split)."""
    import keras

    layer = keras.layers.TextVectorization(
        max_tokens=config.vocab_size,
        standardize=standardize,
        output_sequence_length=config.max_length,
    )
    layer.adapt(texts, batch_size=1024)
    return layer


def load(config: DataConfig):
    """``(train, val, test, spec)``; see the module docstring."""
    path = locate(config)
    splits = select(read(path), config)
    layer = vectorizer(splits["train"].texts, config)
    data = []
    for split, reviews in splits.items():
        ids = np.asarray(layer(reviews.texts))
        labels = reviews.labels.astype(np.float32)
        seed = config.seed if split == "train" else None
        data.append(base.to_dataset(ids, labels, config.batch_size, seed))
    vocabulary = layer.get_vocabulary()
    spec = DataSpec(
        name=NAME,
        output="binary",
        input_encoding="embedding",
        sequence_length=config.max_length,
        input_dim=len(vocabulary),
        num_classes=2,
        output_size=1,
        goal=GOAL,
        extras={"vocabulary": vocabulary, "label_names": list(LABELS), "location": str(path)},
    )
    return (*data, spec)


def info(config: DataConfig) -> dict:
    """Sizes, vocabulary size, review lengths in tokens (before truncation) and the location."""
    import tensorflow as tf

    path = locate(config)
    splits = select(read(path), config)
    lengths = {
        split: tf.strings.split(standardize(r.texts)).row_lengths().numpy()
        for split, r in splits.items()
    }
    train_tokens = tf.strings.split(standardize(splits["train"].texts)).flat_values
    distinct = int(tf.size(tf.unique(train_tokens).y))
    return {
        "name": NAME,
        "location": str(path),
        "sizes": {split: len(r.texts) for split, r in splits.items()},
        "positive_fraction": {split: float(r.labels.mean()) for split, r in splits.items()},
        "vocabulary": {
            "distinct_train_tokens": distinct,
            "kept (with padding and [UNK])": min(config.vocab_size, distinct + 2),
        },
        "tokens_per_review": {
            split: base.length_stats(n, config.max_length) for split, n in lengths.items()
        },
    }
