"""Multi30k loader on miniature gz files (see dataset_fixtures.py)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from dataset_fixtures import SENTENCES

from datasets import DataConfig, MissingDataError, base, multi30k
from datasets.base import CorruptDataError


def config(root, **kw):
    return DataConfig(name="multi30k", data_dir=str(root), batch_size=64, min_freq=1, **kw)


def batches(dataset):
    (inputs, targets), *rest = list(dataset)
    assert not rest
    return {k: v.numpy() for k, v in inputs.items()}, targets.numpy()


def words(ids, vocab):
    return [vocab[i] for i in ids if i]


def test_tokenize_uses_spacy_rules_and_detokenize_closes_punctuation_and_clitics_up():
    assert multi30k.tokenize("A dog's ball, (red)!") == [
        "a", "dog", "'s", "ball", ",", "(", "red", ")", "!",
    ]
    assert multi30k.tokenize("Ein Mann.", lowercase=False, lang="de") == ["Ein", "Mann", "."]
    tokens = multi30k.tokenize("a dog's ball, (red) isn't here!")
    assert multi30k.detokenize_tokens(tokens) == "a dog's ball, (red) isn't here!"


def test_vocabulary_counts_train_only_with_min_freq():
    vocab = multi30k.build_vocab([["a", "b", "a"], ["a", "c", "b"]], min_freq=2, max_size=100)
    assert vocab == ["", "[UNK]", "[start]", "[end]", "a", "b"]
    assert multi30k.build_vocab([["a", "b", "a"]], min_freq=1, max_size=5) == vocab[:5]


def test_default_pair_is_german_to_english_with_teacher_forcing(multi30k_dir):
    train, val, test, spec = multi30k.load(config(multi30k_dir))
    inputs, targets = batches(test)
    src_vocab, tgt_vocab = spec.extras["source_vocab"], spec.extras["target_vocab"]
    assert "mann" in src_vocab and "man" in tgt_vocab and "zebra" not in tgt_vocab  # train only
    assert words(inputs["encoder_inputs"][0], src_vocab) == ["ein", "hund", ",", "lächelnd", "."]
    assert words(inputs["decoder_inputs"][0], tgt_vocab) == [
        "[start]",
        "a",
        "dog",
        ",",
        "smiling",
        ".",
    ]
    assert words(targets[0], tgt_vocab) == ["a", "dog", ",", "smiling", ".", "[end]"]
    shifted = np.where(targets == spec.extras["end_id"], 0, targets)[:, :-1]
    assert np.array_equal(inputs["decoder_inputs"][:, 1:], shifted)
    assert spec.extras["test_references"] == [en for en, _ in SENTENCES["test_2016_flickr"]]
    assert spec.extras["test_sources"] == [de for _, de in SENTENCES["test_2016_flickr"]]
    assert spec.extras["val_references"][0] == "A Zebra runs."  # untouched: case kept
    assert spec.extras["detokenize"](targets[0]) == "a dog, smiling."
    val_targets = batches(val)[1]
    assert spec.extras["detokenize"](val_targets[0]) == "a runs."  # no [UNK] marker written
    assert spec.target_vocab_size == len(tgt_vocab) and spec.input_dim == len(src_vocab)
    assert spec.sequence_length == 8  # longest: "a man ( smiling ) runs ." (7) + [start]/[end]
    assert sum(len(t) for _, t in train) == 6


def test_english_to_german_is_one_option_away(multi30k_dir):
    *_, spec = multi30k.load(config(multi30k_dir, source_lang="en", target_lang="de"))
    assert (
        "mann" in spec.extras["target_vocab"]
        and spec.extras["test_references"][1] == "Zwei Männer."
    )


def test_long_sentences_are_cut_but_keep_their_end(multi30k_dir):
    _, _, test, spec = multi30k.load(config(multi30k_dir, max_length=3))
    inputs, targets = batches(test)
    assert targets.shape[1] == 3 and targets[0, -1] == spec.extras["end_id"]
    assert inputs["decoder_inputs"][0, 0] == spec.extras["start_id"]


def test_subset_keeps_file_order_of_val_and_test_and_is_seeded(multi30k_dir):
    def refs(seed):
        *_, spec = multi30k.load(config(multi30k_dir, subset=4, test_subset=2, seed=seed))
        return spec.extras["val_references"]

    val = [en for en, _ in SENTENCES["val"]]
    chosen = refs(0)
    assert len(chosen) == 2 and chosen == [s for s in val if s in chosen] and chosen == refs(0)
    assert {tuple(refs(seed)) for seed in range(6)} != {tuple(chosen)}


def test_val_and_test_are_whole_unless_test_subset_is_set(multi30k_dir):
    *_, spec = multi30k.load(config(multi30k_dir, subset=4))
    assert spec.extras["test_references"] == [en for en, _ in SENTENCES["test_2016_flickr"]]
    assert len(spec.extras["val_references"]) == len(SENTENCES["val"])


def test_batches_are_padded_to_their_longest_sentence_only(multi30k_dir):
    _, _, test, spec = multi30k.load(config(multi30k_dir))
    inputs, targets = batches(test)
    assert spec.sequence_length == 8
    assert inputs["encoder_inputs"].shape[1] == 5 and targets.shape[1] == 6  # "a dog , smiling ."
    assert (inputs["encoder_inputs"][:, -1] > 0).any() and (targets[:, -1] > 0).any()


def test_preprocessor_from_the_logged_texts_encodes_raw_text_as_the_loader_does(multi30k_dir):
    _, _, test, spec = multi30k.load(config(multi30k_dir))
    texts = spec.extras["preprocess"]
    assert set(texts) == {"preprocess/tokenizer.json", "preprocess/source_vocab.txt",
                          "preprocess/target_vocab.txt"}
    pre = multi30k.Preprocessor(texts)
    inputs, targets = batches(test)
    ids, truncated = pre.encode(spec.extras["test_sources"])
    np.testing.assert_array_equal(ids, inputs["encoder_inputs"][:, : ids.shape[1]])
    assert truncated == [] and pre.detokenize(targets[0]) == "a dog, smiling."
    pre.max_length = 2
    with pytest.warns(UserWarning, match="1 sentence\\(s\\) longer than 2 tokens"):
        ids, truncated = pre.encode(["Ein Hund rennt.", "Hund"])
    assert ids.shape == (2, 2) and truncated == [0]


@pytest.mark.parametrize("key, value", [("source_lang", "xx"), ("target_lang", "jp")])
def test_unknown_language_names_key_and_choices(multi30k_dir, key, value):
    with pytest.raises(ValueError, match=f"multi30k: '{key}' must be one of the choices, got '{value}'; valid: en"):
        multi30k.load(config(multi30k_dir, **{key: value}))
    with pytest.raises(ValueError, match="both 'en'"):
        multi30k.load(config(multi30k_dir, source_lang="en"))


def test_missing_files_offline_name_each_file_and_where_to_put_it(multi30k_dir, offline):
    (multi30k_dir / "multi30k" / "val.de.gz").unlink()
    (multi30k_dir / "multi30k" / "test_2016_flickr.en.gz").unlink()
    with pytest.raises(MissingDataError) as err:
        multi30k.load(config(multi30k_dir))
    message = str(err.value)
    assert str(multi30k_dir / "multi30k" / "val.de.gz") in message
    assert str(multi30k_dir / "multi30k" / "test_2016_flickr.en.gz") in message
    assert "train.de.gz" not in message
    assert [url for url, *_ in offline] == [
        multi30k.URL.format("val.de.gz"),
        multi30k.URL.format("test_2016_flickr.en.gz"),
    ]


def test_corrupt_or_misaligned_files_are_corrupt_data_errors(multi30k_dir):
    path = multi30k_dir / "multi30k" / "val.en.gz"
    data = path.read_bytes()
    path.write_bytes(data[:-6])
    with pytest.raises(CorruptDataError, match="val.en.gz.*delete it"):
        multi30k.load(config(multi30k_dir))
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("only one line\n")
    with pytest.raises(CorruptDataError, match="val.de.gz has 3 lines but val.en.gz has 1"):
        multi30k.load(config(multi30k_dir))


def test_info_reports_sizes_vocabularies_lengths_and_location(multi30k_dir):
    info = multi30k.info(config(multi30k_dir))
    assert info["sizes"] == {"train": 6, "val": 3, "test": 2}
    assert info["location"] == str(multi30k_dir / "multi30k")
    assert info["tokens_per_sentence"]["test.en"]["max"] == 5
    assert set(info["vocabulary"]) == {"de", "en"}


def test_a_non_utf8_byte_is_replaced_counted_and_keeps_the_pairs_aligned(multi30k_dir):
    """docs/RELIABILITY.md: one undecodable byte does not refuse the corpus (as IMDB's reviews)."""
    path = multi30k_dir / "multi30k" / "val.de.gz"
    lines = gzip.decompress(path.read_bytes()).split(b"\n")
    lines[1] = lines[1] + b" \xff"
    path.write_bytes(gzip.compress(b"\n".join(lines)))
    with pytest.warns(base.DataWarning, match=r"val\.de\.gz: 1 undecodable byte"):
        pairs, _ = multi30k.read(config(multi30k_dir))
    assert len(pairs["val"].sources) == len(pairs["val"].targets) == 3
    assert pairs["val"].sources[1].endswith(" \ufffd")
