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
``spec.extras["vocabulary"]`` is the vocabulary (index = id); ``spec.extras["preprocess"]`` holds,
as artifact path -> text, the vocabulary and settings (``preprocess/vocabulary.txt``,
``preprocess/text.json``) from which :func:`from_preprocess` rebuilds the same vectoriser for
``rnnlab predict``.
"""

from __future__ import annotations

import functools
import json
import re
import string
import tarfile
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from datasets import base
from datasets.base import CorruptDataError, DataConfig, DataSpec

NAME = "imdb"
READS = base.Reads(
    data=("data_dir", "batch_size", "seed", "subset", "test_subset", "val_split", "vocab_size",
          "max_length"),
    outputs=("binary",), inputs="embedding", defines=("subset",))
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
    undecodable: list[str] = field(default_factory=list)  # member names of non-UTF-8 reviews


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


MAX_REVIEW_BYTES = 2**20  # a review file larger than this is refused (the official longest: ~14 KB)
MAX_MEMBER_BYTES = 128 * 2**20  # any archive member, read or skipped (official largest: tens of MB)
MAX_ARCHIVE_BYTES = 2**30  # all members together (the official archive unpacks to well under this)


def _parse(name: str, data: bytes, found: dict) -> None:
    match = MEMBER.fullmatch(name)
    if match:
        split, label, review_id, _ = match.groups()
        text, replaced = base.decode_utf8(data)
        found[split].append((LABELS.index(label), int(review_id), text))
        if replaced:
            found["undecodable"].append(name)


def check_size(archive: Path, name: str, size: int, total: int) -> None:
    """Refuse a member over its limit, or an archive whose members together exceed theirs, from
    the sizes in the headers — before anything of the member is read or decompressed."""
    limit = MAX_REVIEW_BYTES if MEMBER.fullmatch(name) else MAX_MEMBER_BYTES
    if size > limit:
        problem = f"member {name!r} holds {size:,} bytes, more than the {limit:,} allowed"
    elif total > MAX_ARCHIVE_BYTES:
        problem = f"its members hold more than the {MAX_ARCHIVE_BYTES:,} bytes allowed in total"
    else:
        return
    raise base.corrupt(archive, f"{problem} (not the IMDB archive, or tampered with)", URL)


def _read_tarball(archive: Path, found: dict) -> None:
    total = 0
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:  # streamed: one header, then (if kept) one review, at a time
                check_member(archive, member)
                total += member.size
                check_size(archive, member.name, member.size, total)
                if member.isfile() and MEMBER.fullmatch(member.name):
                    _parse(member.name, tar.extractfile(member).read(), found)
    except (tarfile.ReadError, EOFError, zlib.error) as err:
        raise base.corrupt(archive, str(err) or type(err).__name__, URL) from err
    except OSError as err:
        if isinstance(err, CorruptDataError):
            raise
        raise base.corrupt(archive, str(err), URL) from err


def _read_directory(root: Path, found: dict) -> None:
    for path in root.glob("*/*/*.txt"):
        name = f"aclImdb/{path.relative_to(root).as_posix()}"
        if MEMBER.fullmatch(name):
            check_size(root, name, path.stat().st_size, 0)
            _parse(name, path.read_bytes(), found)


def _parse_all(path: Path) -> dict[str, list]:
    found = {"train": [], "test": [], "undecodable": []}
    (_read_directory if path.is_dir() else _read_tarball)(path, found)
    for split in ("train", "test"):
        if not found[split]:
            raise CorruptDataError(
                f"cannot read {path}: it holds no aclImdb/{split}/{{pos,neg}}/*.txt reviews; "
                f"replace it with the official {URL}"
            )
        found[split].sort()
    return found


@functools.lru_cache(maxsize=2)
def _read(path: Path, mtime: float) -> dict[str, Reviews]:
    found = base.cached_json(path, "reviews", lambda: _parse_all(path))
    undecodable = found.get("undecodable", [])
    if undecodable:
        warnings.warn(
            f"{path}: {len(undecodable)} review(s) are not valid UTF-8 (first: {undecodable[0]}); "
            "their undecodable bytes were replaced by U+FFFD and the reviews kept",
            base.DataWarning,
            stacklevel=3,
        )
    return {
        split: Reviews([text for *_, text in found[split]],
                       np.array([item[0] for item in found[split]]),
                       [name for name in undecodable if name.startswith(f"aclImdb/{split}/")])
        for split in ("train", "test")
    }


def read(path: Path) -> dict[str, Reviews]:
    """``{"train": Reviews, "test": Reviews}`` from an aclImdb directory or tarball.

    Reading the tarball (checking every member) takes seconds, so the parsed reviews are cached
    as JSON (:func:`datasets.base.cached_json`) and in memory while the file is unchanged.
    Reviews that are not valid UTF-8 are kept with their bad bytes replaced by U+FFFD; a
    :class:`datasets.base.DataWarning` says how many (once per file and process), and
    ``Reviews.undecodable`` names them.
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


PAD, UNK = 0, 1  # TextVectorization's ids for padding ("") and out-of-vocabulary ("[UNK]")
VOCABULARY = "preprocess/vocabulary.txt"  # one token a line, line i = id i (line 0: padding)
SETTINGS = "preprocess/text.json"


def text_layer(max_length: int, *, max_tokens: int | None = None,
               vocabulary: list[str] | None = None):
    """The one ``TextVectorization`` of IMDB text: :func:`standardize`, split on whitespace,
    ids padded with 0 at the end (or cut) to `max_length`. Training adapts it
    (:func:`vectorizer`); `rnnlab predict` rebuilds it from a run's vocabulary
    (:func:`from_preprocess`)."""
    import keras

    return keras.layers.TextVectorization(
        max_tokens=max_tokens,
        standardize=standardize,
        split="whitespace",
        output_mode="int",
        output_sequence_length=max_length,
        vocabulary=vocabulary,
    )


def vectorizer(texts: list[str], config: DataConfig):
    """A ``TextVectorization`` layer adapted on `texts` (the training split)."""
    layer = text_layer(config.max_length, max_tokens=config.vocab_size)
    layer.adapt(texts, batch_size=1024)
    return layer


def preprocess_texts(vocabulary: list[str], config: DataConfig) -> dict[str, str]:
    """What turns raw text into a trained model's input, as artifact path -> text."""
    settings = {"standardize": "datasets.imdb.standardize: <br /> removed, lowercased, "
                               "punctuation stripped",
                "split": "whitespace", "max_length": config.max_length, "padding": "end",
                "padding_id": PAD, "unknown_id": UNK, "vocab_size": len(vocabulary),
                "label_names": list(LABELS)}
    return {VOCABULARY: "\n".join(vocabulary), SETTINGS: json.dumps(settings, indent=1)}


def from_preprocess(texts: dict[str, str]):
    """``(layer, label_names)`` from a run's `preprocess/` texts: the training vectoriser,
    rebuilt by :func:`text_layer` with the run's vocabulary and settings."""
    try:
        vocabulary = texts[VOCABULARY].split("\n")
        settings = json.loads(texts[SETTINGS])
    except KeyError as err:
        raise ValueError(f"preprocessing file {err.args[0]} is missing") from None
    if vocabulary[:2] != ["", "[UNK]"]:
        raise ValueError(f"{VOCABULARY} does not start with the padding and [UNK] tokens")
    return text_layer(settings["max_length"], vocabulary=vocabulary), settings["label_names"]


# what the vectorised splits depend on besides the file: the selection and the vectoriser
SELECTION = ("seed", "subset", "test_subset", "val_split", "vocab_size", "max_length")


@functools.lru_cache(maxsize=1)
def _vectorised(path: Path, mtime_ns: int, selection: tuple) -> tuple[dict, list[str]]:
    """``({split: (ids, labels)}, vocabulary)``, read-only. Adapting the vectoriser and
    vectorising the splits take seconds (≈ 5 s for quick.yaml's 20,000 reviews) and give the
    same arrays for every cell of a sweep, so the last selection is kept in memory."""
    config = DataConfig(name=NAME, **dict(selection))
    splits = select(read(path), config)
    layer = vectorizer(splits["train"].texts, config)
    arrays = {}
    for split, reviews in splits.items():
        arrays[split] = (np.asarray(layer(reviews.texts)), reviews.labels.astype(np.float32))
        for array in arrays[split]:
            array.flags.writeable = False
    return arrays, layer.get_vocabulary()


def load(config: DataConfig):
    """``(train, val, test, spec)``; see the module docstring."""
    path = locate(config)
    arrays, vocabulary = _vectorised(path, path.stat().st_mtime_ns,
                                     tuple((key, getattr(config, key)) for key in SELECTION))
    data = [base.to_dataset(ids, labels, config.batch_size,
                            config.seed if split == "train" else None)
            for split, (ids, labels) in arrays.items()]
    vocabulary = list(vocabulary)
    spec = DataSpec(
        name=NAME,
        output="binary",
        input_encoding="embedding",
        sequence_length=config.max_length,
        input_dim=len(vocabulary),
        num_classes=2,
        output_size=1,
        goal=GOAL,
        extras={"vocabulary": vocabulary, "label_names": list(LABELS), "location": str(path),
                "preprocess": preprocess_texts(vocabulary, config)},
    )
    return (*data, spec)


def info(config: DataConfig) -> dict:
    """Sizes, vocabulary size, review lengths in tokens (before truncation) and the location."""
    import tensorflow as tf

    path = locate(config)
    reviews = read(path)
    splits = select(reviews, config)
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
        "non_utf8_reviews": sum(len(r.undecodable) for r in reviews.values()),  # kept, U+FFFD
        "positive_fraction": {split: float(r.labels.mean()) for split, r in splits.items()},
        "vocabulary": {
            "distinct_train_tokens": distinct,
            "kept (with padding and [UNK])": min(config.vocab_size, distinct + 2),
        },
        "tokens_per_review": {
            split: base.length_stats(n, config.max_length) for split, n in lengths.items()
        },
    }
