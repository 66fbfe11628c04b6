"""Translation (many-to-many, seq2seq): the family of :class:`~experiments.tasks.seq2seq.Seq2Seq`.

The model, its attention variants and the equations are in :mod:`experiments.tasks.seq2seq`;
decoding (batched greedy and beam search, compiled) in :mod:`experiments.tasks.decoding`.

Training: token-level cross-entropy over the non-padding targets (label smoothing
`model.label_smoothing`); metric `token_accuracy` (padding excluded).
Test: `perplexity` = exp(mean cross-entropy per target token, unsmoothed), and corpus BLEU
(sacreBLEU, its signature in the report) of the decoded test set (greedy, or beam search with
`train.beam_width` > 1) detokenised with the dataset's `detokenize`, against the raw
reference sentences.

The dataset yields `({"encoder_inputs": ids, "decoder_inputs": ids}, target_ids)` with 0 as
padding; its spec's extras hold `start_id`, `end_id`, `detokenize` (target ids -> text),
`test_references` (raw text), `lowercase` (for BLEU), optionally `test_sources`, and
`preprocess` (artifact path -> text: what `rnnlab predict` needs to go from raw text to ids).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from experiments.tasks.common import Evaluation, Family, predict_batch
from experiments.tasks.decoding import BatchDecoder
from experiments.tasks.seq2seq import Seq2Seq, TokenAccuracy

OUTPUTS = ("seq2seq",)


def build(spec, model_cfg, units: int) -> Seq2Seq:
    """The model (weights created), teacher-forced in training: `{encoder_inputs,
    decoder_inputs} -> logits`."""
    model = Seq2Seq(spec.input_dim, spec.target_vocab_size, units,
                    dataclasses.asdict(model_cfg), name=f"{spec.name}_{model_cfg.cell}")
    model.build()
    return model


def compile_args(spec) -> dict:
    """The loss is the model's own (`Seq2Seq.compile`: label smoothing from its config)."""
    return {"loss": None, "metrics": [TokenAccuracy()]}


def translate(model, source_batches, spec_extras: dict, max_length: int, beam_width: int = 1,
              length_penalty: float = 0.6) -> list[list[int]]:
    """Target ids of every sentence of `source_batches` (arrays of source ids)."""
    decoder = BatchDecoder(model, spec_extras["start_id"], spec_extras["end_id"], max_length,
                      length_penalty)
    return [ids for source in source_batches for ids in decoder.decode(source, beam_width)]


def greedy_decode(model, source_batches, start_id: int, end_id: int, max_length: int) -> list:
    """Greedy decoding: one list of target ids per sentence (no start token, cut before the
    end token; padding is never chosen)."""
    decoder = BatchDecoder(model, start_id, end_id, max_length)
    return [ids for source in source_batches for ids in decoder.decode(source)]


def cross_entropy(model, test) -> float:
    """Mean negative log-likelihood per non-padding target token of `test` (no smoothing)."""
    total, count = 0.0, 0
    for x, y, *_ in test:
        logits = predict_batch(model, x).astype("float64")
        y = np.asarray(y)
        logits -= logits.max(-1, keepdims=True)
        log_z = np.log(np.exp(logits).sum(-1))
        picked = np.take_along_axis(logits, y[..., None], -1)[..., 0]
        mask = y != 0
        total += float(((log_z - picked) * mask).sum())
        count += int(mask.sum())
    return total / max(count, 1)


def evaluate(model, test, spec, train_cfg, samples: int = 5) -> Evaluation:
    """Perplexity, BLEU (with sacreBLEU's signature) and sample translations."""
    import sacrebleu

    extras = spec.extras
    sources = [np.asarray(x["encoder_inputs"]) for x, *_ in test]
    ids = translate(model, sources, extras, train_cfg.max_decode_length,
                    getattr(train_cfg, "beam_width", 1), getattr(train_cfg, "length_penalty", 0.6))
    hypotheses = [extras["detokenize"](row) for row in ids]
    references = list(extras["test_references"])[: len(hypotheses)]
    bleu_metric = sacrebleu.metrics.BLEU(lowercase=extras.get("lowercase", False))
    bleu = bleu_metric.corpus_score(hypotheses, [references])
    signature = str(bleu_metric.get_signature())
    lines = [f"BLEU {bleu.score:.2f} ({bleu})", f"sacreBLEU signature: {signature}",
             f"sentences: {len(hypotheses)}", ""]
    source_text = extras.get("test_sources")
    for i in range(min(samples, len(hypotheses))):
        if source_text:
            lines.append(f"SRC: {source_text[i]}")
        lines += [f"REF: {references[i]}", f"HYP: {hypotheses[i]}", ""]
    texts = {"samples/translations.txt": "\n".join(lines),
             "samples/hypotheses.txt": "\n".join(hypotheses) + "\n",
             **extras.get("preprocess", {})}
    metrics = {"bleu": bleu.score, "perplexity": perplexity(cross_entropy(model, test))}
    return Evaluation(metrics=metrics, texts=texts)


def perplexity(cross_entropy_per_token: float) -> float:
    return math.exp(min(cross_entropy_per_token, 700.0))


FAMILY = Family("translation", OUTPUTS, build, compile_args, evaluate)
