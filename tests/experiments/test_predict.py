"""`rnnlab predict` / `rnnlab evaluate`: a saved translation or sentiment model applied to raw
text, and one clear message (exit 2) for each kind of bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keras
import mlflow
import numpy as np
import pytest

import datasets
from datasets.base import DataConfig
from experiments import cli
from experiments.config import ModelConfig
from experiments.tasks import translation

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def saved(mini_data, offline, tmp_path) -> Path:
    """A run's artifact layout: model/model.keras and preprocess/*, of a tiny model."""
    *_, spec = datasets.load(DataConfig(name="multi30k", data_dir=str(mini_data),
                                                min_freq=1, batch_size=4))
    keras.utils.set_random_seed(0)
    model = translation.build(spec, ModelConfig(cell="gru", units=4, embedding_dim=4,
                                                attention="bahdanau", bidirectional=True), 4)
    model.compile(**translation.compile_args(spec))
    (tmp_path / "model").mkdir()
    model.save(tmp_path / "model" / "model.keras")
    for path, text in spec.extras["preprocess"].items():
        (tmp_path / path).parent.mkdir(exist_ok=True)
        (tmp_path / path).write_text(text)
    return tmp_path


def lines_file(tmp_path, name, lines):
    path = tmp_path / name
    path.write_text("".join(f"{line}\n" for line in lines))
    return str(path)


@pytest.mark.slow
def test_predict_in_a_fresh_process_writes_one_translation_per_line(saved, tmp_path):
    source = lines_file(tmp_path, "src.de", ["ein mann rennt .", "Ein Zebra (unbekannt) schläft!"])
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-m", "experiments.cli", "predict", str(saved / "model"), "--input",
         source, "--beam", "2", "--max-length", "5"],
        check=False, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout.splitlines()
    assert len(out) == 2 and all("[UNK]" not in line for line in out)


def test_evaluate_prints_sacrebleu_with_its_signature(saved, tmp_path, capsys):
    source = lines_file(tmp_path, "src", ["ein mann rennt ."])
    reference = lines_file(tmp_path, "ref", ["a man runs ."])
    code = cli.main(["evaluate", str(saved / "model" / "model.keras"), "--source", source,
                     "--reference", reference, "--max-length", "4"])
    out = capsys.readouterr().out
    assert code == 0 and "BLEU" in out and "signature: nrefs:1" in out


def test_long_sentences_are_cut_with_a_warning(saved, tmp_path, capsys):
    source = lines_file(tmp_path, "src", ["ein mann " * 120])
    assert cli.main(["predict", str(saved / "model"), "--input", source,
                     "--max-length", "3"]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 1 and "longer than" in captured.err


def test_words_outside_the_vocabulary_are_named_in_a_warning(saved, tmp_path, capsys):
    source = lines_file(tmp_path, "src", ["ein mann rennt .", "ein quasselstrippe rennt ."])
    assert cli.main(["predict", str(saved / "model"), "--input", source, "--max-length", "3"]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 2
    assert "1 of 8 words are not in the model's de vocabulary" in captured.err
    assert "(e.g. quasselstrippe)" in captured.err


def expect_exit_2(argv, capsys, message):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err, err
    return err


def test_bad_input_gives_one_message_and_exit_2(saved, tmp_path, capsys):
    model = str(saved / "model")
    empty = lines_file(tmp_path, "empty", ["ein mann .", "  ", "ein hund ."])
    expect_exit_2(["predict", model, "--input", empty], capsys, "line 2 is empty")
    expect_exit_2(["predict", model, "--input", str(tmp_path / "nope")], capsys, "cannot read")
    expect_exit_2(["predict", model, "--pair", "en-fr", "--input", empty], capsys,
                  "this model translates de-en only")
    expect_exit_2(["evaluate", model, "--texts", empty, "--labels", empty], capsys,
                  "--source FILE --reference FILE")
    (saved / "preprocess" / "tokenizer.json").unlink()
    (saved / "preprocess" / "source_vocab.txt").unlink()
    (saved / "preprocess" / "target_vocab.txt").unlink()
    expect_exit_2(["predict", model, "--input", empty], capsys, "its task has no predict")


def test_a_model_that_would_run_code_is_refused(saved, tmp_path, capsys):
    inputs = keras.Input((3,))
    unsafe = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    unsafe.save(saved / "model" / "model.keras")
    expect_exit_2(["predict", str(saved / "model" / "model.keras"), "--input",
                   lines_file(tmp_path, "s", ["ein mann ."])], capsys, "cannot load")


def test_unknown_or_unfinished_runs_are_refused(mlflow_store, capsys, tmp_path):
    expect_exit_2(["predict", "0123456789abcdef"], capsys, "neither a model path nor a run")
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    mlflow.set_experiment("refusals")  # not whichever experiment an earlier test left active
    with mlflow.start_run() as active:
        run_id = active.info.run_id
    mlflow.MlflowClient().set_terminated(run_id, "FAILED")
    expect_exit_2(["predict", run_id], capsys, "is FAILED, not FINISHED")
    with mlflow.start_run() as active:  # finished, but no preprocess/ files (e.g. adding)
        run_id = active.info.run_id
    expect_exit_2(["predict", run_id], capsys, "its task has no predict")


def test_a_logged_run_translates_by_its_id(tiny_config, mini_data, offline, mlflow_store,
                                           monkeypatch, tmp_path, capsys):
    from experiments.run import run

    monkeypatch.setenv("RNNLAB_DATA_DIR", str(mini_data))
    result = run(tiny_config("multi30k", "gru", tracking={"enabled": True},
                             model={"attention": "luong"}))
    source = lines_file(tmp_path, "src", ["ein hund rennt .", "zwei männer ."])
    assert cli.main(["predict", result.run_id, "--input", source, "--beam", "2",
                     "--max-length", "4"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_encoded_lines_match_the_model_input_width(saved):
    from datasets.multi30k import Preprocessor

    texts = {f"preprocess/{p.name}": p.read_text() for p in (saved / "preprocess").iterdir()}
    ids, _ = Preprocessor(texts).encode(["ein mann rennt .", "ein hund ."])
    assert ids.dtype == np.int32 and ids.shape == (2, 4) and ids[1, 3] == 0


# -- sentiment ----------------------------------------------------------------------------------

def test_a_logged_sentiment_run_classifies_raw_text_as_in_training(
        tiny_config, mini_data, offline, mlflow_store, monkeypatch, tmp_path, capsys):
    from datasets import imdb
    from experiments.run import run
    from experiments.serving import predict

    monkeypatch.setenv("RNNLAB_DATA_DIR", str(mini_data))
    config = tiny_config("imdb", "gru", tracking={"enabled": True})
    result = run(config)
    logged = predict.load(result.run_id)
    assert logged.family == "sentiment"

    # the logged vectoriser gives the loader's ids on the loader's own raw test reviews
    *_, test, spec = datasets.load(config.data)
    reviews = imdb.select(imdb.read(imdb.locate(config.data)), config.data)
    layer, names = imdb.from_preprocess(logged.texts)
    assert layer.get_vocabulary() == spec.extras["vocabulary"] and names == ["neg", "pos"]
    loader_ids = np.concatenate([np.asarray(x) for x, _ in test])
    np.testing.assert_array_equal(np.asarray(layer(reviews["test"].texts)), loader_ids)

    lines = ["A wonderful film<br />Loved it, truly!", "Dull... the WORST movie; 'boring'."]
    assert cli.main(["predict", result.run_id, "--input", lines_file(tmp_path, "x", lines)]) == 0
    out = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert len(out) == 2 and all(label in names for label, _ in out)
    # the same lines tokenised by the training vectoriser, through the logged model
    trained_layer = imdb.vectorizer(reviews["train"].texts, config.data)
    p_pos = logged.model.predict(np.asarray(trained_layer(lines)), verbose=0).reshape(-1)
    expected = [("pos", p) if p >= 0.5 else ("neg", 1 - p) for p in p_pos]
    assert [label for label, _ in out] == [label for label, _ in expected]
    np.testing.assert_allclose([float(p) for _, p in out], [p for _, p in expected], atol=1e-4)
    # --jit on gives the same labels and probabilities (XLA's exactness per cell is checked in
    # tests/cells/test_inference.py; here the run's op determinism may keep Keras from XLA)
    assert cli.main(["predict", result.run_id, "--input", lines_file(tmp_path, "x", lines),
                     "--jit", "on"]) == 0
    compiled = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [label for label, _ in compiled] == [label for label, _ in out]
    np.testing.assert_allclose([float(p) for _, p in compiled], [float(p) for _, p in out],
                               atol=1e-4)

    truth = ["pos", "neg"]
    assert cli.main(["evaluate", result.run_id, "--texts", lines_file(tmp_path, "t", lines),
                     "--labels", lines_file(tmp_path, "l", truth)]) == 0
    accuracy = np.mean([label == t for (label, _), t in zip(expected, truth)])
    assert capsys.readouterr().out.strip() == f"accuracy {accuracy:.4f} on 2 texts"
    expect_exit_2(["evaluate", result.run_id, "--texts", lines_file(tmp_path, "t", lines),
                   "--labels", lines_file(tmp_path, "l", ["positive", "neg"])], capsys,
                  "line 1 is 'positive', not a label of this model; valid: neg, pos")


def test_sentiment_preprocess_files_are_required(mini_data, offline):
    from datasets import imdb

    *_, spec = datasets.load(DataConfig(name="imdb", data_dir=str(mini_data), subset=16,
                                        max_length=8, vocab_size=50))
    texts = spec.extras["preprocess"]
    assert set(texts) == {"preprocess/vocabulary.txt", "preprocess/text.json"}
    with pytest.raises(ValueError, match="preprocess/text.json is missing"):
        imdb.from_preprocess({"preprocess/vocabulary.txt": texts["preprocess/vocabulary.txt"]})
