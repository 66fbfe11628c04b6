"""Multi30k translation, task 1 (Elliott et al., 2016): image descriptions in en, de, fr, cs.

Source: the official raw files ``{train,val,test_2016_flickr}.{lang}.gz`` (one sentence a line,
aligned across languages; 29,000 / 1,014 / 1,000 lines) in ``<data_dir>/multi30k/`` (or directly
in ``<data_dir>``), downloaded from https://github.com/multi30k/dataset when missing.

Pair: ``config.source_lang → config.target_lang``, any two of en, de, fr, cs; default de → en.

Tokens: :func:`tokenize` — spaCy's rule-based tokenizer of the language (``spacy.blank(lang)``,
no model download), lowercased when ``config.lowercase``. Vocabularies (index = id) are built on
the training split only: ``["", "[UNK]", "[start]", "[end]"]`` then tokens seen
``>= config.min_freq`` times, most frequent first, at most ``config.vocab_size`` entries; tokens
are mapped to ids by a Keras ``StringLookup`` over that vocabulary. Padding id 0.

Examples: ``encoder_inputs`` = source ids; the target ``[start] w1 … wn [end]`` gives
``decoder_inputs = [start] w1 … wn`` and ``targets = w1 … wn [end]`` (teacher forcing). Sentences
longer than ``config.max_length - 1`` tokens are cut (the target keeps its ``[end]``); each batch
is padded with 0 only to its own longest sentence.

Splits: ``config.subset`` keeps that many training pairs (seeded); ``config.test_subset`` that many
val and test pairs each (default: all), in file order. Val and test are never shuffled:
``spec.extras["val_references"]`` / ``["test_references"]`` are the untouched target sentences
in dataset order; compute BLEU on ``extras["detokenize"](ids)`` (unknown words left out)
against them (``sacrebleu.corpus_bleu(hyps, [refs], lowercase=extras["lowercase"])``).

``spec.extras["preprocess"]`` holds, as artifact path → text, what turns raw text into model
inputs again: the tokenizer settings and both vocabularies (:class:`Preprocessor` reads them).
"""

from __future__ import annotations

import functools
import json
import re
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datasets import base
from datasets.base import CorruptDataError, DataConfig, DataSpec, check_choice

NAME = "multi30k"
READS = base.Reads(
    data=("data_dir", "batch_size", "seed", "subset", "test_subset", "vocab_size", "max_length",
          "source_lang", "target_lang", "min_freq", "lowercase"),
    outputs=("seq2seq",), inputs="embedding", defines=("source_lang", "target_lang"))
LANGUAGES = ("en", "de", "fr", "cs")
SPLITS = {"train": "train", "val": "val", "test": "test_2016_flickr"}  # split → file stem
URL = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw/{}"
SPECIALS = ("", "[UNK]", "[start]", "[end]")
PAD, UNK, START, END = range(4)
NO_SPACE_BEFORE = re.compile(r" ([.,!?;:%)\]}]|n't\b|'\w*)")
NO_SPACE_AFTER = re.compile(r"([(\[{]) ")
TOKENIZER = "spacy.blank"


@functools.cache
def _spacy(lang: str):
    import spacy

    return spacy.blank(lang).tokenizer


def tokenize(text: str, lowercase: bool = True, lang: str = "en") -> list[str]:
    """spaCy's rule-based tokens of `lang`: ``"A man's dog, smiling."`` → ``a man 's dog , smiling .``"""
    return [t.text for t in _spacy(lang)(text.lower() if lowercase else text) if not t.is_space]


def tokenize_all(texts: list[str], lowercase: bool, lang: str) -> list[list[str]]:
    tokenizer = _spacy(lang)
    texts = [t.lower() for t in texts] if lowercase else texts
    return [[t.text for t in doc if not t.is_space] for doc in tokenizer.pipe(texts, batch_size=1000)]


def detokenize_tokens(tokens: list[str]) -> str:
    """Join tokens with spaces, then close up the spaces before ``. , ! ? ; : ) %`` and clitics
    (``'s``, ``n't``) and after ``(``."""
    return NO_SPACE_AFTER.sub(r"\1", NO_SPACE_BEFORE.sub(r"\1", " ".join(tokens)))


def build_vocab(sentences: list[list[str]], min_freq: int, max_size: int) -> list[str]:
    """Specials, then tokens with count >= `min_freq`, most frequent first (ties alphabetical)."""
    counts = Counter(token for sentence in sentences for token in sentence)
    kept = sorted((t for t, c in counts.items() if c >= min_freq and t not in SPECIALS),
                  key=lambda t: (-counts[t], t))
    return list(SPECIALS) + kept[: max(max_size - len(SPECIALS), 0)]


def lookup(vocab: list[str]):
    """Keras ``StringLookup`` over `vocab` (``""`` → 0 padding, unknown → 1 ``[UNK]``)."""
    import keras

    return keras.layers.StringLookup(vocabulary=list(vocab[2:]), mask_token=SPECIALS[PAD],
                                     oov_token=SPECIALS[UNK])


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
    """The lines of a gzip text file, without their line ends (otherwise untouched).

    As every corpus file here (``base.read_gzip_text``): streamed and size-capped, and a byte that is
    not UTF-8 becomes U+FFFD with a ``DataWarning`` naming the file and the count, instead of
    refusing the corpus: the line keeps its place, so the pairs stay aligned, and one bad byte in
    29,000 sentences changes one token of one pair (docs/RELIABILITY.md).
    """
    return base.read_gzip_text(path, URL.format(path.name)).splitlines()


@dataclass
class Pairs:
    """Aligned raw sentences of one split."""

    sources: list[str]
    targets: list[str]


def check_pair(source_lang: str, target_lang: str) -> None:
    check_choice(NAME, "source_lang", source_lang, LANGUAGES)
    check_choice(NAME, "target_lang", target_lang, LANGUAGES)
    if source_lang == target_lang:
        raise ValueError(f"{NAME}: source_lang and target_lang are both {source_lang!r}")


def read(config: DataConfig) -> tuple[dict[str, Pairs], dict[str, Path]]:
    """The raw pairs of every split (subsets applied) and the path of each file read."""
    check_pair(config.source_lang, config.target_lang)
    paths = locate(config)
    rng = np.random.default_rng(config.seed)
    pairs = {}
    for split, stem in SPLITS.items():
        sources = read_lines(paths[f"{stem}.{config.source_lang}.gz"])
        targets = read_lines(paths[f"{stem}.{config.target_lang}.gz"])
        if len(sources) != len(targets):
            raise CorruptDataError(
                f"{stem}.{config.source_lang}.gz has {len(sources)} lines but "
                f"{stem}.{config.target_lang}.gz has {len(targets)}; the files must be aligned"
            )
        size = config.subset if split == "train" else config.test_subset
        keep = range(len(sources))
        if size is not None and size < len(sources):
            keep = np.sort(rng.choice(len(sources), size, replace=False))
        pairs[split] = Pairs([sources[i] for i in keep], [targets[i] for i in keep])
    return pairs, paths


def tokens_of(paths: dict[str, Path], stem: str, lang: str, lines: list[str], lowercase: bool):
    """Tokens of `lines` (read from ``stem.lang.gz``); whole files are tokenised once and cached."""
    path = paths[f"{stem}.{lang}.gz"]
    whole = read_lines(path)
    if len(lines) != len(whole):  # a subset: tokenise just those lines
        return tokenize_all(lines, lowercase, lang)
    tag = f"spacy-{_spacy_version()}-{'lower' if lowercase else 'cased'}"
    return base.cached_json(path, tag, lambda: tokenize_all(whole, lowercase, lang))


def _spacy_version() -> str:
    import spacy

    return spacy.__version__


def encode(sentences: list[list[str]], vocab: list[str], length: int, offset: int = 0):
    """Ids ``(n, length)`` int32 of token lists (unknown → ``[UNK]``), cut and padded with 0."""
    ids = np.zeros((len(sentences), length), np.int32)
    flat = [token for sentence in sentences for token in sentence]
    if not flat:
        return ids
    values = np.asarray(lookup(vocab)(np.asarray(flat, dtype=object))).astype(np.int32)
    start = 0
    for row, sentence in enumerate(sentences):
        kept = values[start : start + len(sentence)][: length - offset]
        ids[row, offset : offset + len(kept)] = kept
        start += len(sentence)
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
    """``detokenize(ids) -> str``: target ids to text, up to ``[end]``, without specials (so
    without ``[UNK]``: an unknown word is left out rather than written as a marker)."""

    def detokenize(ids) -> str:
        tokens = []
        for i in np.asarray(ids).reshape(-1).tolist():
            if i == END:
                break
            if i >= len(SPECIALS):
                tokens.append(vocab[i])
        return detokenize_tokens(tokens)

    return detokenize


def trim_batch(inputs, targets):
    """Cut a batch's columns after its longest sentence (``tf.data`` map function)."""
    import tensorflow as tf

    def used(ids):
        return tf.reduce_max(tf.reduce_sum(tf.cast(ids > 0, tf.int32), axis=1))

    src = used(inputs["encoder_inputs"])
    tgt = tf.maximum(used(inputs["decoder_inputs"]), used(targets))
    return ({"encoder_inputs": inputs["encoder_inputs"][:, :src],
             "decoder_inputs": inputs["decoder_inputs"][:, :tgt]}, targets[:, :tgt])


class Preprocessor:
    """Raw text ↔ ids for a trained model, from the ``preprocess/`` texts of its run.

    `encode(lines) -> (ids (n, length) int32, truncated: list[int])`; `detokenize(ids) -> str`.
    """

    def __init__(self, texts: dict[str, str]):
        try:
            settings = json.loads(texts["preprocess/tokenizer.json"])
            self.source_vocab = texts["preprocess/source_vocab.txt"].split("\n")
            self._known = frozenset(self.source_vocab)
            self.target_vocab = texts["preprocess/target_vocab.txt"].split("\n")
        except KeyError as err:
            raise ValueError(f"preprocessing file {err.args[0]} is missing") from None
        self.settings = settings
        self.source_lang, self.target_lang = settings["source_lang"], settings["target_lang"]
        check_pair(self.source_lang, self.target_lang)
        self.lowercase, self.max_length = settings["lowercase"], settings["max_length"]
        self.start_id, self.end_id = settings["start_id"], settings["end_id"]
        self.detokenize = make_detokenize(self.target_vocab)

    @staticmethod
    def texts(config: DataConfig, source_vocab: list[str], target_vocab: list[str]) -> dict:
        settings = {"tokenizer": TOKENIZER, "spacy_version": _spacy_version(),
                    "source_lang": config.source_lang, "target_lang": config.target_lang,
                    "lowercase": config.lowercase, "max_length": config.max_length,
                    "start_id": START, "end_id": END, "padding_id": PAD, "unknown_id": UNK}
        return {"preprocess/tokenizer.json": json.dumps(settings, indent=1),
                "preprocess/source_vocab.txt": "\n".join(source_vocab),
                "preprocess/target_vocab.txt": "\n".join(target_vocab)}

    def encode(self, lines: list[str]):
        tokens = tokenize_all(lines, self.lowercase, self.source_lang)
        truncated = [i for i, t in enumerate(tokens) if len(t) > self.max_length]
        if truncated:
            warnings.warn(f"{len(truncated)} sentence(s) longer than {self.max_length} tokens "
                          f"cut to that length (first: line {truncated[0] + 1})", stacklevel=2)
        unknown = [w for sentence in tokens for w in sentence if w not in self._known]
        if unknown:  # [UNK] to the model: often why a sentence from another domain reads badly
            examples = ", ".join(list(dict.fromkeys(unknown))[:5])
            warnings.warn(f"{len(unknown)} of {sum(map(len, tokens))} words are not in the model's "
                          f"{self.source_lang} vocabulary and are read as unknown (e.g. {examples})",
                          stacklevel=2)
        length = max(1, min(self.max_length, max((len(t) for t in tokens), default=1)))
        return encode(tokens, self.source_vocab, length), truncated


def load(config: DataConfig):
    """``(train, val, test, spec)``; see the module docstring."""
    import tensorflow as tf

    pairs, paths = read(config)
    tokens = {
        split: (
            tokens_of(paths, SPLITS[split], config.source_lang, p.sources, config.lowercase),
            tokens_of(paths, SPLITS[split], config.target_lang, p.targets, config.lowercase),
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
        dataset = base.to_dataset(inputs, targets, config.batch_size, seed)
        data.append(dataset.map(trim_batch, num_parallel_calls=tf.data.AUTOTUNE))
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
            "location": str(next(iter(paths.values())).parent),
            "preprocess": Preprocessor.texts(config, source_vocab, target_vocab),
        },
    )
    return (*data, spec)


def info(config: DataConfig) -> dict:
    """Sizes, vocabulary sizes (train, ``min_freq`` applied), sentence lengths in tokens and the
    location of the files."""
    pairs, paths = read(config)
    lengths, vocab = {}, {}
    for lang, side in ((config.source_lang, "sources"), (config.target_lang, "targets")):
        sentences = {
            split: tokens_of(paths, SPLITS[split], lang, getattr(p, side), config.lowercase)
            for split, p in pairs.items()
        }
        vocab[lang] = len(build_vocab(sentences["train"], config.min_freq, config.vocab_size))
        for split, tokens in sentences.items():
            stats = base.length_stats(np.array([len(t) for t in tokens]), config.max_length)
            lengths[f"{split}.{lang}"] = stats
    return {
        "name": NAME,
        "location": str(next(iter(paths.values())).parent),
        "pair": f"{config.source_lang} → {config.target_lang}",
        "sizes": {split: len(p.sources) for split, p in pairs.items()},
        "vocabulary": vocab,
        "tokens_per_sentence": lengths,
    }
