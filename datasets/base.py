"""The contract every data source and task in `datasets/` shares.

A dataset module exposes ``load(config: DataConfig) -> (train, val, test, spec)`` where the three
splits are batched ``tf.data.Dataset`` objects yielding ``(inputs, targets)`` and ``spec`` is a
:class:`DataSpec` that tells the experiment code how to build the model head.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from datasets.errors import ConfigError


@dataclass
class DataConfig:
    """Options of every loader; each loader reads the fields that concern it.

    `name` picks the loader from the registry in ``datasets/__init__.py``.
    """

    name: str = "adding"
    data_dir: str | None = None  # else $RNNLAB_DATA_DIR, else ~/.keras/datasets
    batch_size: int = 64
    seed: int = 0
    # --- real data (IMDB, Multi30k) ---
    subset: int | None = None  # number of training examples kept (balanced, seeded); None = all
    test_subset: int | None = None  # number of test examples kept; None = subset // 2 (or all)
    val_split: float = 0.2  # IMDB: fraction of train carved out as validation (seeded)
    vocab_size: int = 20000  # IMDB: top-N vocabulary; Multi30k: cap per language
    max_length: int = 200  # tokens kept per text (IMDB) / per sentence (Multi30k)
    source_lang: str = "de"  # Multi30k
    target_lang: str = "en"  # Multi30k
    min_freq: int = 2  # Multi30k vocabulary
    lowercase: bool = True  # Multi30k
    # --- long-dependency toy tasks ---
    length: int = 100  # T, the sequence length / time lag the task is scaled with
    num_train: int = 10000
    num_val: int = 1000
    num_test: int = 1000
    variant: str | None = None  # task-specific: temporal order "2"|"3" symbols; spike "regression"|"classes"
    drawn_first: str = "test"  # "test" | "train": which split follows the task's own distribution


@dataclass(frozen=True)
class Reads:
    """What a dataset module takes, declared as ``READS`` beside its ``load``, known before any
    data is read: the :class:`DataConfig` fields its loader reads (besides ``name``), the
    ``DataSpec.output`` kinds it yields and its ``DataSpec.input_encoding``.

    The experiments decide from it which ``data.*`` keys a run takes (validated, logged as
    params), which task family models it, and whether ``model.embedding_dim`` applies.
    ``defines``: the fields, among ``data``, that tell one setting of the task from another (T,
    a variant, the language pair): the report names every setting by them, even where all of
    a task's runs share them.
    """

    data: tuple[str, ...]
    outputs: tuple[str, ...]
    inputs: str  # "embedding" (token ids) | "one_hot" (ids of a small alphabet) | "features"
    defines: tuple[str, ...] = ()

    def __post_init__(self):
        for name in self.defines:
            check_choice("Reads", "defines", name, self.data)


MODES = {
    "min": lambda value, threshold: value < threshold,
    "max": lambda value, threshold: value > threshold,
    "at_least": lambda value, threshold: value >= threshold,
}


@dataclass(frozen=True)
class Scorer:
    """A task-specific test metric (a scorer): ``fn(y_true, y_pred) -> one value per example``
    over NumPy arrays of the whole test split, averaged over the examples.

    ``y_pred`` is what the model's head outputs (logits for categorical heads, probabilities for
    ``sequence_multilabel``). ``chance``: the value a predictor without the task's long-range
    memory reaches (documented, checked by the tests), when known.
    """

    name: str
    fn: Callable[[Any, Any], Any]
    chance: float | None = None


@dataclass(frozen=True)
class Goal:
    """The task's "solved" rule and its chance baseline, read from the test metrics.

    Solved when ``MODES[mode](metrics[metric], threshold)``: ``"min"`` value < threshold,
    ``"max"`` value > threshold, ``"at_least"`` value >= threshold; ``threshold=None`` means no
    solved rule. ``baseline`` is the chance level expressed in ``baseline_metric`` (defaults to
    ``metric``). Both metric names must be ones the task computes (the loss, its head's metrics,
    or the spec's ``scorers``): the experiments check this before training.
    """

    metric: str
    threshold: float | None = None
    mode: str = "max"
    baseline: float | None = None
    baseline_metric: str | None = None

    def __post_init__(self):
        check_choice("Goal", "mode", self.mode, tuple(MODES))
        if self.baseline_metric is None:
            object.__setattr__(self, "baseline_metric", self.metric)

    def solved(self, metrics: dict[str, float]) -> bool | None:
        """Whether ``metrics`` (test metrics, no ``test_`` prefix) pass the rule; None without a
        rule; False when the metric is missing or NaN."""
        if self.threshold is None:
            return None
        value = metrics.get(self.metric)
        if value is None or math.isnan(value):
            return False
        return bool(MODES[self.mode](float(value), self.threshold))


@dataclass
class DataSpec:
    """What a model needs to know about a task's data, and how the task is scored.

    output kinds:
      - ``binary``: one logit per sequence (sentiment);
      - ``categorical``: ``num_classes`` logits per sequence (temporal order, spike classes);
      - ``regression``: ``output_size`` real values per sequence (adding, spike regression);
      - ``sequence_categorical``: ``num_classes`` logits at every step (copy memory);
      - ``sequence_multilabel``: ``num_classes`` independent sigmoids at every step (Reber);
      - ``seq2seq``: encoder/decoder token sequences (Multi30k).
    input encodings: ``embedding`` (token ids, learned Embedding with mask_zero),
    ``one_hot`` (token ids of a small alphabet, one-hot encoded), ``features`` (float channels).
    In every token task id 0 is padding only (``padding_id``), so masking it is always safe.

    Scoring, in typed fields. The experiments' task family compiles its head's loss and metrics
    (``experiments.tasks.common.Head``: ``metrics`` plain, ``weighted_metrics`` weighted by the
    split's sample weights — only the Reber splits carry weights, 1 on a string's steps and 0
    on padding); the spec adds
      - ``scorers``: :class:`Scorer` s computed once after ``model.evaluate`` from the
        predictions on the whole test set (copy's recall accuracy, spike timing's on-time share,
        Reber's string success);
      - ``goal``: the :class:`Goal` (solved rule and chance baseline), or None.
    ``baseline``, ``baseline_metric``, ``solved_metric`` read the goal (None without one).
    """

    name: str
    output: str
    input_encoding: str
    sequence_length: int
    input_dim: int  # vocabulary size for token inputs, channels for features
    num_classes: int | None = None
    output_size: int = 1
    target_vocab_size: int | None = None  # seq2seq only
    padding_id: int = 0
    scorers: tuple[Scorer, ...] = ()
    goal: Goal | None = None
    extras: dict[str, Any] = field(default_factory=dict)  # vocabularies, raw references, …

    @property
    def baseline(self) -> float | None:
        return self.goal.baseline if self.goal else None

    @property
    def baseline_metric(self) -> str | None:
        return self.goal.baseline_metric if self.goal and self.goal.baseline is not None else None

    @property
    def solved_metric(self) -> str | None:
        return self.goal.metric if self.goal and self.goal.threshold is not None else None


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Where the data files are looked for: the argument, else $RNNLAB_DATA_DIR, else ~/.keras/datasets."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("RNNLAB_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return Path("~/.keras/datasets").expanduser()


class MissingDataError(FileNotFoundError):
    """A data file is absent and could not be downloaded (offline, or the source is unreachable).

    The message names each missing file, the directory to put it in, and ``RNNLAB_DATA_DIR``.
    """


class CorruptDataError(OSError):
    """A data file exists but cannot be read (truncated gzip, broken tar, unsafe archive member)."""


class DataWarning(UserWarning):
    """Data was read with a repair: undecodable bytes replaced by U+FFFD. Names the file and how many."""


MAX_FILE_BYTES = 256 * 2**20  # the most any one decompressed data file may hold (Multi30k's: < 3 MB)
CHUNK_BYTES = 2**20


def corrupt(path: Path, problem: str, source_url: str) -> CorruptDataError:
    """The one-line error for a data file that cannot be used: the file, what is wrong, what to do."""
    problem = " ".join(str(problem).split())  # one line, whatever the underlying error printed
    return CorruptDataError(
        f"cannot read {path}: {problem}; delete it to download it again, or replace it with "
        f"the official {source_url}"
    )


def read_at_most(stream, limit: int) -> bytes | None:
    """All of `stream` when it holds at most `limit` bytes, else None — read in 1 MiB chunks, so
    no more than ``limit + 1`` bytes are ever held (a decompression bomb is stopped early)."""
    chunks, size = [], 0
    while chunk := stream.read(min(CHUNK_BYTES, limit + 1 - size)):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return None
    return b"".join(chunks)


def read_gzip(path: Path, source_url: str, *, limit: int = MAX_FILE_BYTES) -> bytes:
    """The decompressed bytes of a gzip file, streamed and refused past `limit` bytes.

    Truncated, corrupt, non-gzip and oversized files raise :class:`CorruptDataError` naming
    the file, what is wrong and `source_url`.
    """
    import gzip
    import zlib

    try:
        with gzip.open(path, "rb") as f:
            data = read_at_most(f, limit)
    except (OSError, EOFError, zlib.error) as err:
        raise corrupt(path, str(err) or type(err).__name__, source_url) from err
    if data is None:
        raise corrupt(path, f"it decompresses to more than {limit / 2**20:g} MiB", source_url)
    return data


def decode_utf8(data: bytes) -> tuple[str, int]:
    """`data` decoded as UTF-8 with every undecodable byte sequence replaced by U+FFFD, and the
    number of replacements made (0 for valid UTF-8)."""
    try:
        return data.decode("utf-8"), 0
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
        return text, text.count("\ufffd") - data.count("\ufffd".encode())


def read_gzip_text(path: Path, source_url: str, *, limit: int = MAX_FILE_BYTES) -> str:
    """The text of a gzip file (see :func:`read_gzip`), decoded as UTF-8.

    Undecodable bytes are replaced by U+FFFD, not fatal — one bad byte in a corpus should not stop
    a study — and a :class:`DataWarning` names the file and counts them. Line ends are untouched.
    """
    text, replaced = decode_utf8(read_gzip(path, source_url, limit=limit))
    if replaced:
        warnings.warn(
            f"{path}: {replaced} undecodable byte sequence(s) (not UTF-8) replaced by U+FFFD",
            DataWarning,
            stacklevel=2,
        )
    return text


def download(url: str, target: Path, file_hash: str | None = None) -> Path:
    """Fetch `url` into `target` with Keras's downloader (progress bar, hash check when known).

    Every network access of `datasets/` goes through this one function, so tests can
    monkeypatch it. A read-only `target` directory is replaced by ``~/.keras/datasets``.
    Any failure is re-raised as ``OSError``.
    """
    import keras  # deferred: importing keras is slow and the toy tasks do not need it

    folder = target.parent
    if folder.exists() and not writable(folder):  # e.g. a read-only shared data directory
        folder = Path("~/.keras/datasets").expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = keras.utils.get_file(
            fname=target.name,
            origin=url,
            file_hash=file_hash,
            cache_dir=str(folder),
            cache_subdir="",
        )
    except Exception as err:  # urllib, HTTP and hash errors all mean "could not get it"
        raise OSError(f"download of {url} failed: {err}") from err
    return Path(path)


def ensure_files(
    directory: Path, files: dict[str, str], hashes: dict[str, str] | None = None
) -> dict[str, Path]:
    """Return the local path of each file in `files` (relative name → official URL).

    Files already in `directory` are used as they are; missing ones are downloaded into it.
    When any download fails, one :class:`MissingDataError` lists every missing file.
    """
    hashes = hashes or {}
    paths, missing = {}, []
    for name, url in files.items():
        path = directory / name
        if not path.exists():
            try:
                path = download(url, path, hashes.get(name))
            except OSError:
                missing.append((name, url))
                continue
        paths[name] = path
    if missing:
        listing = "\n".join(f"  {directory / name}   (official source: {url})" for name, url in missing)
        raise MissingDataError(
            f"missing data file(s), and downloading them failed:\n{listing}\n"
            f"Put the file(s) in {directory} or point RNNLAB_DATA_DIR at the directory "
            "that holds them."
        )
    return paths


def to_dataset(
    inputs: Any,
    targets: Any,
    batch_size: int,
    shuffle_seed: int | None = None,
    sample_weights: Any = None,
):
    """A batched, prefetched ``tf.data.Dataset`` of ``(inputs, targets[, sample_weights])``.

    Shuffled with `shuffle_seed` (a new order every epoch) when it is given; else in order.
    """
    import tensorflow as tf

    parts = (inputs, targets) if sample_weights is None else (inputs, targets, sample_weights)
    ds = tf.data.Dataset.from_tensor_slices(parts)
    if shuffle_seed is not None:
        ds = ds.shuffle(len(targets), seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def check_choice(thing: str, key: str, value: Any, choices) -> None:
    """Raise a ConfigError naming `thing`, `key` and the valid `choices` when `value` is not one."""
    if value not in choices:
        raise ConfigError(thing, key, "must be one of the choices", value=value, valid=choices)


def balanced_subset(labels, size: int | None, rng) -> np.ndarray:
    """Indices of `size` examples drawn (seeded by `rng`) equally from each label, in sorted order.

    ``size=None`` keeps all. Raises ValueError when a label has too few examples.
    """
    labels = np.asarray(labels)
    if size is None:
        return np.arange(len(labels))
    classes = np.unique(labels)
    per_class, extra = divmod(size, len(classes))
    picked = []
    for i, label in enumerate(classes):
        pool = np.flatnonzero(labels == label)
        want = per_class + (i < extra)
        if want > len(pool):
            raise ValueError(f"subset {size} asks for {want} examples of label {label}; only {len(pool)}")
        picked.append(rng.choice(pool, want, replace=False))
    return np.sort(np.concatenate(picked))


def writable(directory: Path) -> bool:
    """True when `directory` exists and is meant to be written: it has a write permission bit
    and we may write it (root ignores permissions, so the bits are checked too)."""
    return (
        directory.is_dir()
        and bool(directory.stat().st_mode & 0o222)
        and os.access(directory, os.W_OK)
    )


def cache_dir(directory: Path) -> Path:
    """Where parsed copies of data files are kept: ``<directory>/.rnnlab-cache`` when the data
    directory is writable, else ``~/.keras/datasets/.rnnlab-cache``, else the temp directory's."""
    import tempfile

    keras_home = Path("~/.keras/datasets").expanduser()
    try:
        keras_home.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass  # not writable: the temp directory is next
    for parent in (directory, keras_home, Path(tempfile.gettempdir())):
        if writable(parent):
            return parent / ".rnnlab-cache"
    raise OSError("no writable directory for the data cache")


STALE_TMP_SECONDS = 3600  # a cache temp file this old belongs to a writer that was killed


def cached_json(source: Path, tag: str, build):
    """``build()``'s JSON-able result, stored once per version of `source` (its size and mtime).

    The cache file is written to a temporary file and renamed into place (``os.replace``), so an
    interrupted write never leaves a partial cache file: an exception or signal removes the
    temporary file, and one left by a killed process (``kill -9``) is never read and is deleted by
    the next build after an hour. An unreadable cache file is rebuilt.
    """
    import gzip
    import json
    import tempfile
    import time

    stat = source.stat()
    folder = cache_dir(source.parent)
    path = folder / f"{source.name}.{tag}.{stat.st_size}-{stat.st_mtime_ns}.json.gz"
    if path.exists():
        try:
            with gzip.open(path, "rt", encoding="utf-8") as f:
                return json.load(f)
        except (OSError, EOFError, ValueError):
            pass  # rebuilt below
    value = build()
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(f".{source.name}.{tag}.*.tmp"):  # left by a killed writer
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime > STALE_TMP_SECONDS:
                stale.unlink()
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{source.name}.{tag}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1) as f:
            f.write(json.dumps(value).encode("utf-8"))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return value


def length_stats(lengths: np.ndarray, max_length: int) -> dict:
    """Mean, median, 95th percentile and max of `lengths`, and the share longer than `max_length`."""
    return {
        "mean": round(float(np.mean(lengths)), 1),
        "median": float(np.median(lengths)),
        "p95": float(np.percentile(lengths, 95)),
        "max": int(np.max(lengths)),
        f"truncated_at_{max_length}": round(float(np.mean(lengths > max_length)), 3),
    }
