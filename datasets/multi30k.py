"""Multi30k translation, task 1 (Elliott et al., 2016): image descriptions in en, de, fr, cs.

Source: the official raw files ``{train,val,test_2016_flickr}.{lang}.gz`` (one sentence a line,
aligned across languages; 29,000 / 1,014 / 1,000 lines) in ``<data_dir>/multi30k/`` (or directly
in ``<data_dir>``), downloaded from https://github.com/multi30k/dataset when missing.

Pair: ``config.source_lang → config.target_lang``, any two of en, de, fr, cs; default de → en.

Tokens: :func:`tokenize` — words (with inner ``'`` or ``-``) and every punctuation mark as its own
token, lowercased when ``config.lowercase``. Vocabularies (index = id) are built on the training
split only: ``["", "[UNK]", "[start]", "[end]"]`` then tokens seen ``>= config.min_freq`` times,
most frequent first, at most ``config.vocab_size`` entries. Padding id 0.

Examples: ``encoder_inputs`` = source ids; the target ``[start] w1 … wn [end]`` gives
``decoder_inputs = [start] w1 … wn`` and ``targets = w1 … wn [end]`` (teacher forcing). All are
padded with 0 to ``spec.sequence_length = min(config.max_length, longest sentence + 1)``; longer
sentences are cut (the target keeps its ``[end]``).

Splits: ``config.subset`` keeps that many training pairs (seeded); ``config.test_subset`` that many
val and test pairs each (default ``subset // 2``, or all), in file order. Val and test are never
shuffled: ``spec.extras["val_references"]`` / ``["test_references"]`` are the untouched target
sentences in dataset order; compute BLEU on ``extras["detokenize"](ids)`` against them
(``sacrebleu.corpus_bleu(hyps, [refs], lowercase=extras["lowercase"])``).
"""

from __future__ import annotations

import gzip
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datasets import base
from datasets.base import CorruptDataError, DataConfig, DataSpec, check_choice

NAME = "multi30k"
LANGUAGES = ("en", "de", "fr", "cs")
SPLITS = {"train": "train", "val": "val", "test": "test_2016_flickr"}  # split → file stem
URL = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw/{}"
SPECIALS = ("", "[UNK]", "[start]", "[end]")
PAD, UNK, START, END = range(4)
TOKEN = re.compile(r"\w+(?:['’-]\w+)*|[^\w\s]")
NO_SPACE_BEFORE = re.compile(r" ([.,!?;:%)\]}])")
NO_SPACE_AFTER = re.compile(r"([(\[{]) ")


def tokenize(text: str, lowercase: bool = True) -> list[str]:
    """Words and punctuation marks as tokens: ``"A man, smiling."`` → ``a man , smiling .``"""
    return TOKEN.findall(text.lower() if lowercase else text)


def detokenize_tokens(tokens: list[str]) -> str:
    """Join tokens with spaces, then close up the spaces before ``. , ! ? ; : ) %`` and after ``(``."""
    return NO_SPACE_AFTER.sub(r"\1", NO_SPACE_BEFORE.sub(r"\1", " ".join(tokens)))


def build_vocab(sentences: list[list[str]], min_freq: int, max_size: int) -> list[str]:
    """Specials, then tokens with count >= `min_freq`, most frequent first (ties alphabetical)."""
    counts = Counter(token for sentence in sentences for token in sentence)
    kept = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
    return list(SPECIALS) + kept[: max(max_size - len(SPECIALS), 0)]


def files(source: str, target: str) -> list[str]:
    return [f"{stem}.{lang}.gz" for stem in SPLITS.values() for lang in (source, target)]


def locate(config: DataConfig) -> dict[str, Path]:
    """Local paths of the six files of the pair; downloads missing ones into ``multi30k/``."""
    root = base.data_dir(config.data_dir)
    names = files(config.source_lang, config.target_lang)
    if all((root / name).exists() for name in names):
        return {name: root / name for name in names}
    return base.ensure_files(root / "multi30k", {name: URL.format(name) for name in names})


def read_lines(path: Path) -> list[str]:
    """The lines of a gzip text file, without their line ends (otherwise untouched)."""
    try:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
            return f.read().splitlines()
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise CorruptDataError(
            f"cannot read {path} ({err}); delete it to download it again, or replace it with "
            f"the official {URL.format(path.name)}"
        ) from err


@dataclass
class Pairs:
    """Aligned raw sentences of one split."""

    sources: list[str]
    targets: list[str]


def check_pair(config: DataConfig) -> None:
    check_choice(NAME, "source_lang", config.source_lang, LANGUAGES)
    check_choice(NAME, "target_lang", config.target_lang, LANGUAGES)
    if config.source_lang == config.target_lang:
        raise ValueError(f"{NAME}: source_lang and target_lang are both {config.source_lang!r}")


def read(config: DataConfig) -> tuple[dict[str, Pairs], Path]:
    """The raw pairs of every split (subset applied) and the folder they were read from."""
    check_pair(config)
    paths = locate(config)
    rng = np.random.default_rng(config.seed)
    eval_size = config.test_subset or (config.subset // 2 if config.subset else None)
    pairs = {}
    for split, stem in SPLITS.items():
        sources = read_lines(paths[f"{stem}.{config.source_lang}.gz"])
        targets = read_lines(paths[f"{stem}.{config.target_lang}.gz"])
        if len(sources) != len(targets):
            raise CorruptDataError(
                f"{stem}.{config.source_lang}.gz has {len(sources)} lines but "
                f"{stem}.{config.target_lang}.gz has {len(targets)}; the files must be aligned"
            )
        size = config.subset if split == "train" else eval_size
        keep = range(len(sources))
        if size is not None and size < len(sources):
            keep = np.sort(rng.choice(len(sources), size, replace=False))
        pairs[split] = Pairs([sources[i] for i in keep], [targets[i] for i in keep])
    return pairs, next(iter(paths.values())).parent


def encode(sentences: list[list[str]], vocab: list[str], length: int, offset: int = 0):
    """Ids ``(n, length)`` int32 of token lists (unknown → ``[UNK]``), cut and padded with 0."""
    index = {token: i for i, token in enumerate(vocab)}
    ids = np.zeros((len(sentences), length), np.int32)
    for row, sentence in enumerate(sentences):
        values = [index.get(token, UNK) for token in sentence][: length - offset]
        ids[row, offset : offset + len(values)] = values
    return ids


def teacher_forcing(sentences: list[list[str]], vocab: list[str], length: int):
    """``(decoder_inputs, targets)``: ``[start] w…`` and ``w… [end]``, both ``(n, length)``."""
    body = encode(sentences, vocab, length, offset=1)  # [pad] w1 … w(length-1)
    decoder_inputs = body.copy()
    decoder_inputs[:, 0] = START
    targets = np.zeros_like(body)
    targets[:, :-1] = body[:, 1:]
    ends = np.minimum((body[:, 1:] > 0).sum(axis=1), length - 1)
    targets[np.arange(len(body)), ends] = END
    return decoder_inputs, targets


def make_detokenize(vocab: list[str]):
    """``detokenize(ids) -> str``: target ids to text, up to ``[end]``, skipping specials."""

    def detokenize(ids) -> str:
        tokens = []
        for i in np.asarray(ids).reshape(-1).tolist():
            if i == END:
                break
            if i >= len(SPECIALS) or i == UNK:
                tokens.append(vocab[i])
        return detokenize_tokens(tokens)

    return detokenize


def load(config: DataConfig):
    """``(train, val, test, spec)``; see the module docstring."""
    pairs, folder = read(config)
    tokens = {
        split: (
            [tokenize(s, config.lowercase) for s in p.sources],
            [tokenize(t, config.lowercase) for t in p.targets],
        )
        for split, p in pairs.items()
    }
    source_vocab = build_vocab(tokens["train"][0], config.min_freq, config.vocab_size)
    target_vocab = build_vocab(tokens["train"][1], config.min_freq, config.vocab_size)
    longest = max(len(s) for src, tgt in tokens.values() for s in src + tgt)
    length = min(config.max_length, longest + 1)
    data = []
    for split, (src, tgt) in tokens.items():
        decoder_inputs, targets = teacher_forcing(tgt, target_vocab, length)
        inputs = {
            "encoder_inputs": encode(src, source_vocab, length),
            "decoder_inputs": decoder_inputs,
        }
        seed = config.seed if split == "train" else None
        data.append(base.to_dataset(inputs, targets, config.batch_size, seed))
    spec = DataSpec(
        name=NAME,
        output="seq2seq",
        input_encoding="embedding",
        sequence_length=length,
        input_dim=len(source_vocab),
        num_classes=len(target_vocab),
        output_size=len(target_vocab),
        target_vocab_size=len(target_vocab),
        extras={
            "eval_metric": "bleu",
            "source_vocab": source_vocab,
            "target_vocab": target_vocab,
            "start_id": START,
            "end_id": END,
            "detokenize": make_detokenize(target_vocab),
            "lowercase": config.lowercase,
            "val_references": pairs["val"].targets,
            "test_references": pairs["test"].targets,
            "val_sources": pairs["val"].sources,
            "test_sources": pairs["test"].sources,
            "pair": f"{config.source_lang}-{config.target_lang}",
            "location": str(folder),
        },
    )
    return (*data, spec)


def info(config: DataConfig) -> dict:
    """Sizes, vocabulary sizes (train, ``min_freq`` applied), sentence lengths in tokens and the
    location of the files."""
    pairs, folder = read(config)
    lengths, vocab = {}, {}
    for lang, side in ((config.source_lang, "sources"), (config.target_lang, "targets")):
        sentences = {
            split: [tokenize(s, config.lowercase) for s in getattr(p, side)]
            for split, p in pairs.items()
        }
        vocab[lang] = len(build_vocab(sentences["train"], config.min_freq, config.vocab_size))
        for split, tokens in sentences.items():
            stats = base.length_stats(np.array([len(t) for t in tokens]), config.max_length)
            lengths[f"{split}.{lang}"] = stats
    return {
        "name": NAME,
        "location": str(folder),
        "pair": f"{config.source_lang} → {config.target_lang}",
        "sizes": {split: len(p.sources) for split, p in pairs.items()},
        "vocabulary": vocab,
        "tokens_per_sentence": lengths,
    }
