"""The contract every data source and task in `datasets/` shares.

A dataset module exposes ``load(config: DataConfig) -> (train, val, test, spec)`` where the three
splits are batched ``tf.data.Dataset`` objects yielding ``(inputs, targets)`` and ``spec`` is a
:class:`DataSpec` that tells the experiment code how to build the model head.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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


@dataclass
class DataSpec:
    """What a model needs to know about a task's data.

    output kinds:
      - ``binary``: one logit per sequence (sentiment);
      - ``categorical``: ``num_classes`` logits per sequence (temporal order, spike classes);
      - ``regression``: ``output_size`` real values per sequence (adding, spike regression);
      - ``sequence_categorical``: ``num_classes`` logits at every step (copy memory);
      - ``sequence_multilabel``: ``num_classes`` independent sigmoids at every step (Reber);
      - ``seq2seq``: encoder/decoder token sequences (Multi30k).
    input encodings: ``embedding`` (token ids, learned Embedding with mask_zero),
    ``one_hot`` (token ids of a small alphabet, one-hot encoded), ``features`` (float channels).
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
    # chance level, for reports: e.g. adding MSE 0.167, copy cross-entropy 10 ln 8 / (T + 20)
    baseline: float | None = None
    baseline_metric: str | None = None  # the metric name the baseline is expressed in
    solved_metric: str | None = None  # e.g. "mse" for adding, "accuracy" for copy
    solved_threshold: float | None = None
    solved_mode: str = "max"  # "min": solved when metric < threshold; "max": when metric > threshold
    extras: dict[str, Any] = field(default_factory=dict)  # vocabularies, raw references, …


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Where the data files are looked for: the argument, else $RNNLAB_DATA_DIR, else ~/.keras/datasets."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("RNNLAB_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return Path("~/.keras/datasets").expanduser()
