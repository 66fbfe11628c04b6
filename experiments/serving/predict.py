"""`rnnlab predict` and `rnnlab evaluate`: a trained model applied to raw text.

    rnnlab predict RUN_ID|MODEL_PATH [--input FILE] [--beam N]      one output per input line
    rnnlab evaluate RUN_ID|MODEL_PATH --source F --reference F      translation: sacreBLEU
    rnnlab evaluate RUN_ID|MODEL_PATH --texts F --labels F          sentiment: accuracy

A run is read from the MLflow store (`experiments.recording.store.tracking_uri()`); a model path is a
``.keras`` file, or a folder holding one, with the run's ``preprocess/`` files in the same
folder or the one above (the layout of a run's downloaded artifacts). Models are loaded with
Keras's ``safe_mode=True``: a file that would run arbitrary code (a ``Lambda`` layer) is refused.
Bad input raises ValueError with one message (the CLI prints it and exits 2).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PREPROCESS = "preprocess"


@dataclass
class Trained:
    """A model, the `preprocess/...` texts of its run, and its task family's name."""

    model: object
    texts: dict[str, str]
    family: str


def load_model_file(path: Path):
    """The Keras model at `path` (a ``.keras`` file), with ``safe_mode=True``."""
    import keras

    import experiments.tasks.families  # noqa: F401  registers the serialisable layers

    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except ValueError as err:
        raise ValueError(f"cannot load {path} safely ({err})") from None


def load_run_model(run_id: str, folder: Path):
    """The model of MLflow run `run_id`, downloaded into `folder`: the one loader. Runs log
    MLflow's Keras flavour (`runs:/ID/model` holds ``data/model.keras``); an older run's plain
    ``model/model.keras`` artifact is found the same way."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"runs:/{run_id}/model",
                                                         dst_path=str(folder)))
    except (MlflowException, OSError):
        raise ValueError(f"run {run_id} has no model logged (tracking.log_model off?)") from None
    found = sorted(local.rglob("*.keras"))
    if not found:
        raise ValueError(f"run {run_id} has no Keras model file under its 'model'")
    return load_model_file(found[0])


def _read_texts(folder: Path) -> dict[str, str]:
    return {f"{PREPROCESS}/{p.name}": p.read_text(encoding="utf-8")
            for p in sorted(folder.glob("*")) if p.is_file()}


def _family(texts: dict[str, str], where: str) -> str:
    if f"{PREPROCESS}/tokenizer.json" in texts:
        return "translation"
    if f"{PREPROCESS}/vocabulary.txt" in texts:
        return "sentiment"
    raise ValueError(
        f"{where} has no {PREPROCESS}/ files: its task has no predict (translation runs and "
        "sentiment runs that log their vocabulary do)"
    )


def load(ref: str) -> Trained:
    """A trained model from a run id or a model path (see the module docstring)."""
    path = Path(ref)
    if path.exists():
        model_file = path if path.is_file() else next(iter(sorted(path.rglob("*.keras"))), None)
        if model_file is None:
            raise ValueError(f"{path}: no .keras model file in this folder")
        for folder in (model_file.parent, model_file.parent.parent):
            if (folder / PREPROCESS).is_dir():
                texts = _read_texts(folder / PREPROCESS)
                break
        else:
            texts = {}
        family = _family(texts, str(path))
        return Trained(load_model_file(model_file), texts, family)
    return _load_run(ref)


def _load_run(run_id: str) -> Trained:
    import mlflow
    from mlflow.exceptions import MlflowException

    from experiments.recording import store

    uri = store.tracking_uri()
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient()
    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise ValueError(f"'{run_id}' is neither a model path nor a run in {uri}") from None
    if run.info.status != "FINISHED":
        raise ValueError(f"run {run_id} is {run.info.status}, not FINISHED: no model to use")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = Path(mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=PREPROCESS, dst_path=tmp))
            texts = _read_texts(local)
        except (MlflowException, OSError):
            texts = {}
        family = _family(texts, f"run {run_id}")
        model = load_run_model(run_id, Path(tmp))
    return Trained(model, texts, family)


def read_lines(path: str | None) -> list[str]:
    """Lines of `path` (or stdin for None / "-"); an empty line is refused with its number."""
    text = sys.stdin.read() if path in (None, "-") else _read_file(path)
    lines = text.splitlines()
    if not lines:
        raise ValueError(f"{path or 'stdin'}: no input lines")
    empty = [i + 1 for i, line in enumerate(lines) if not line.strip()]
    if empty:
        raise ValueError(f"{path or 'stdin'}: line {empty[0]} is empty ({len(empty)} empty "
                         "line(s)); give one sentence per line")
    return lines


def _read_file(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ValueError(f"cannot read {path}: {err.strerror or err}") from None


# -- translation --------------------------------------------------------------------------------

def translate_lines(trained: Trained, lines: list[str], beam: int = 1, max_length: int = 50,
                    batch_size: int = 64, length_penalty: float = 0.6) -> list[str]:
    from datasets.multi30k import Preprocessor
    from experiments.tasks.decoding import BatchDecoder

    pre = Preprocessor(trained.texts)
    decoder = BatchDecoder(trained.model, pre.start_id, pre.end_id, max_length, length_penalty)
    out = []
    for start in range(0, len(lines), batch_size):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ids, _ = pre.encode(lines[start:start + batch_size])
        for w in caught:
            print(f"warning: {w.message} (batch from line {start + 1})", file=sys.stderr)
        out += [pre.detokenize(row) for row in decoder.decode(ids, beam)]
    return out


def check_pair(trained: Trained, pair: str | None) -> None:
    if pair is None or trained.family != "translation":
        return
    settings = json.loads(trained.texts[f"{PREPROCESS}/tokenizer.json"])
    have = f"{settings['source_lang']}-{settings['target_lang']}"
    if pair != have:
        raise ValueError(f"--pair {pair}: this model translates {have} only")


# -- sentiment ----------------------------------------------------------------------------------

def classify_lines(trained: Trained, lines: list[str], jit: str | None = None,
                   batch_size: int = 64) -> list[tuple[str, float]]:
    """(label, probability of that label) per line, vectorised as in training: the run's
    vocabulary and settings in `datasets.imdb.text_layer`. `jit` ("auto", "on", "off"; default
    `$RNNLAB_INFERENCE_JIT`): XLA-compiled prediction, decided by `cells.inference_jit`."""
    import cells
    from datasets import imdb

    layer, names = imdb.from_preprocess(trained.texts)
    cells.compile_inference(trained.model, batches=-(-len(lines) // batch_size), override=jit)
    probs = np.asarray(trained.model.predict(np.asarray(layer(lines)), batch_size=batch_size,
                                             verbose=0)).reshape(-1)
    return [(names[1], float(p)) if p >= 0.5 else (names[0], float(1 - p)) for p in probs]


def check_labels(labels: list[str], names: list[str], path: str) -> None:
    """Every line of the labels file must be one of the model's label names."""
    for number, label in enumerate(labels, 1):
        if label.strip() not in names:
            raise ValueError(f"{path}: line {number} is '{label.strip()}', not a label of this "
                             f"model; valid: {', '.join(names)}")


# -- commands -----------------------------------------------------------------------------------

def cmd_predict(args: argparse.Namespace) -> int:
    trained = load(args.model)
    check_pair(trained, args.pair)
    lines = read_lines(args.input)
    if trained.family == "translation":
        for line in translate_lines(trained, lines, args.beam, args.max_length):
            print(line)
    else:
        for label, prob in classify_lines(trained, lines, args.jit):
            print(f"{label}\t{prob:.4f}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    trained = load(args.model)
    check_pair(trained, args.pair)
    if trained.family == "translation":
        if not (args.source and args.reference):
            raise ValueError("a translation model is evaluated with --source FILE --reference FILE")
        import sacrebleu

        sources, references = read_lines(args.source), read_lines(args.reference)
        if len(sources) != len(references):
            raise ValueError(f"{args.source} has {len(sources)} lines but {args.reference} has "
                             f"{len(references)}")
        hypotheses = translate_lines(trained, sources, args.beam, args.max_length)
        settings = json.loads(trained.texts[f"{PREPROCESS}/tokenizer.json"])
        metric = sacrebleu.metrics.BLEU(lowercase=settings.get("lowercase", False))
        score = metric.corpus_score(hypotheses, [references])
        print(f"{score}\nsignature: {metric.get_signature()}")
        return 0
    if not (args.texts and args.labels):
        raise ValueError("a sentiment model is evaluated with --texts FILE --labels FILE")
    texts, labels = read_lines(args.texts), read_lines(args.labels)
    if len(texts) != len(labels):
        raise ValueError(f"{args.texts} has {len(texts)} lines but {args.labels} has {len(labels)}")
    from datasets import imdb

    check_labels(labels, imdb.from_preprocess(trained.texts)[1], args.labels)
    predicted = [label for label, _ in classify_lines(trained, texts, args.jit)]
    accuracy = float(np.mean([p == t.strip() for p, t in zip(predicted, labels)]))
    print(f"accuracy {accuracy:.4f} on {len(texts)} texts")
    return 0


def add_parsers(sub) -> None:
    """The `predict` and `evaluate` subcommands of `rnnlab`."""
    p = sub.add_parser("predict", help="apply a trained model to raw text lines (file or stdin)")
    p.add_argument("model", help="an MLflow run id, or a .keras model file / run artifact folder")
    p.add_argument("--input", help="a text file, one sentence per line (default: stdin)")
    _common(p)
    p.set_defaults(func=cmd_predict)
    p = sub.add_parser("evaluate", help="score a trained model on your own test files")
    p.add_argument("model", help="an MLflow run id, or a .keras model file / run artifact folder")
    p.add_argument("--source", help="translation: source sentences, one a line")
    p.add_argument("--reference", help="translation: reference translations, one a line")
    p.add_argument("--texts", help="sentiment: texts, one a line")
    p.add_argument("--labels", help="sentiment: the model's label names (IMDB: neg / pos), one a line")
    _common(p)
    p.set_defaults(func=cmd_evaluate)


def _common(p) -> None:
    p.add_argument("--beam", type=int, default=1, help="translation: beam width (1 = greedy)")
    p.add_argument("--max-length", type=int, default=50, help="translation: tokens per output")
    p.add_argument("--pair", help="translation: the language pair expected, e.g. de-en")
    p.add_argument("--jit", choices=("auto", "on", "off"), default=None,
                   help="sentiment: XLA-compiled prediction; auto (default, or "
                        "$RNNLAB_INFERENCE_JIT) = where it measured faster (cells/inference.py)")
