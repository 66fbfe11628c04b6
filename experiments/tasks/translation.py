"""Translation (many-to-many, seq2seq): an encoder RNN whose final states start a decoder RNN.

    encoder:  h^enc_1..S, s^enc = RNN_enc(Embed_src(x_1..x_S))
    decoder:  h_1..T = RNN_dec(Embed_tgt(<bos>, y_1..y_{T-1}); initial state s^enc)   (teacher forcing)
    attention (optional, over the encoder outputs, after the top decoder layer):
        luong:    a_t = softmax(h_t · h^enc_s)            keras.layers.Attention
        bahdanau: a_t = softmax(v · tanh(h_t + h^enc_s))  keras.layers.AdditiveAttention
        c_t = sum_s a_ts h^enc_s,   h~_t = tanh(W_c [h_t; c_t])
    p(y_t | y_<t, x) = softmax(W_o h~_t + b_o)

Each decoder layer starts from the final states of the encoder layer at the same depth, so cells
with one state (h) and two states (h, c) both work. A bidirectional encoder's forward and backward
states are concatenated, and the decoder gets twice the units. (Attention is applied to the
decoder's outputs, Luong's "global attention" without input feeding, for Bahdanau's score too.)

Training: masked sparse cross-entropy; metric `token_accuracy` (padding excluded).
Test: `perplexity = exp(test loss)`, and corpus BLEU (sacrebleu) of greedy, batched decoding
(at most `train.max_decode_length` tokens) detokenised with the dataset's `detokenize`,
against the raw reference sentences.

The dataset yields `({"encoder_inputs": ids, "decoder_inputs": ids}, target_ids)` with 0 as
padding; its spec's extras hold `start_id`, `end_id`, `detokenize` (target ids -> text),
`test_references` (raw text), `lowercase` (for BLEU) and optionally `test_sources`.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from experiments.tasks.common import Evaluation, Family, recurrent_layer

OUTPUTS = ("seq2seq",)
ATTENTION = {"luong": keras.layers.Attention, "bahdanau": keras.layers.AdditiveAttention}


def build(spec, model_cfg, units: int) -> keras.Model:
    """The teacher-forced training model `{encoder_inputs, decoder_inputs} -> logits`."""
    source = keras.Input((None,), dtype="int32", name="encoder_inputs")
    target_in = keras.Input((None,), dtype="int32", name="decoder_inputs")
    x = keras.layers.Embedding(
        spec.input_dim, model_cfg.embedding_dim, mask_zero=True, name="source_embedding"
    )(source)
    encoder_out, states = encode(x, model_cfg, units)
    y = keras.layers.Embedding(
        spec.target_vocab_size, model_cfg.embedding_dim, mask_zero=True, name="target_embedding"
    )(target_in)
    for i, layer in enumerate(decoder_layers(model_cfg, units)):
        y, *_ = layer(y, initial_state=states[i])
    logits = output_layers(model_cfg, units, spec)(y, encoder_out)
    inputs = {"encoder_inputs": source, "decoder_inputs": target_in}
    return keras.Model(inputs, logits, name=f"{spec.name}_{model_cfg.cell}")


def encode(x, model_cfg, units: int):
    """Encoder outputs of the top layer and, per layer, its final states (bidirectional: concat)."""
    states = []
    for i in range(model_cfg.layers):
        layer = recurrent_layer(
            model_cfg, units, return_sequences=True, return_state=True, name=f"encoder_{i}"
        )
        if model_cfg.bidirectional:
            x, *both = keras.layers.Bidirectional(layer, name=f"biencoder_{i}")(x)
            half = len(both) // 2
            layer_states = [
                keras.layers.Concatenate(name=f"encoder_{i}_state_{j}")([fw, bw])
                for j, (fw, bw) in enumerate(zip(both[:half], both[half:]))
            ]
        else:
            x, *layer_states = layer(x)
        states.append(layer_states)
    return x, states


def decoder_units(model_cfg, units: int) -> int:
    return units * (2 if model_cfg.bidirectional else 1)


def decoder_layers(model_cfg, units: int) -> list:
    return [
        recurrent_layer(
            model_cfg,
            decoder_units(model_cfg, units),
            return_sequences=True,
            return_state=True,
            name=f"decoder_{i}",
        )
        for i in range(model_cfg.layers)
    ]


def output_layers(model_cfg, units: int, spec):
    """`(decoder_out, encoder_out, encoder_mask=None) -> logits`, with attention when configured."""
    logits = keras.layers.Dense(spec.target_vocab_size, name="logits")
    if model_cfg.attention is None:
        return lambda y, encoder_out, encoder_mask=None: logits(y)
    attention = ATTENTION[model_cfg.attention](name="attention")
    concat = keras.layers.Concatenate(name="attention_concat")
    combine = keras.layers.Dense(
        decoder_units(model_cfg, units), activation="tanh", name="attention_combine"
    )

    def apply(y, encoder_out, encoder_mask=None):
        mask = None if encoder_mask is None else [None, encoder_mask]
        context = attention([y, encoder_out], mask=mask)
        return logits(combine(concat([y, context])))

    return apply


def compile_args(spec) -> dict:
    return {
        "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        "metrics": [keras.metrics.SparseCategoricalAccuracy(name="token_accuracy")],
    }


def inference_models(model: keras.Model):
    """`(encoder, step)` sharing the trained model's layers.

    encoder: `source -> [encoder_out, *states]`;
    step: `[token (batch, 1), source, encoder_out, *states] -> [logits (batch, vocab), *states]`.
    """
    source = model.get_layer("encoder_inputs").output
    layers = {layer.name: layer for layer in model.layers}
    n_layers = sum(f"decoder_{i}" in layers for i in range(len(layers)))
    encoder_out = layers["source_embedding"](source)
    flat_states, counts = [], []
    for i in range(n_layers):
        name = f"biencoder_{i}" if f"biencoder_{i}" in layers else f"encoder_{i}"
        encoder_out, *both = layers[name](encoder_out)
        if name.startswith("bi"):
            half = len(both) // 2
            both = [layers[f"encoder_{i}_state_{j}"]([f, b]) for j, (f, b) in
                    enumerate(zip(both[:half], both[half:]))]
        flat_states += both
        counts.append(len(both))
    encoder = keras.Model(source, [encoder_out, *flat_states])

    token = keras.Input((1,), dtype="int32")
    enc_in = keras.Input(encoder_out.shape[1:], dtype=encoder_out.dtype)
    state_in = [keras.Input(s.shape[1:], dtype=s.dtype) for s in flat_states]
    y = layers["target_embedding"](token)
    new_states, start = [], 0
    for i, count in enumerate(counts):
        y, *s = layers[f"decoder_{i}"](y, initial_state=state_in[start:start + count])
        new_states += s
        start += count
    logits = _step_logits(layers, y, enc_in, keras.ops.not_equal(source, 0))
    step = keras.Model([token, source, enc_in, *state_in], [logits[:, 0], *new_states])
    return encoder, step


def _step_logits(layers, y, encoder_out, encoder_mask):
    if "attention" not in layers:
        return layers["logits"](y)
    context = layers["attention"]([y, encoder_out], mask=[None, encoder_mask])
    return layers["logits"](layers["attention_combine"](layers["attention_concat"]([y, context])))


def greedy_decode(model, source_batches, start_id: int, end_id: int, max_length: int) -> list:
    """Greedy decoding of each source batch; returns one list of token ids per sentence, without
    the start token and cut before the first end token. Padding (id 0) is never chosen."""
    encoder, step = inference_models(model)
    hypotheses = []
    for source in source_batches:
        source = np.asarray(source)
        encoder_out, *states = encoder.predict_on_batch(source)
        token = np.full((len(source), 1), start_id, dtype="int32")
        out = np.zeros((len(source), max_length), dtype="int32")
        done = np.zeros(len(source), dtype=bool)
        for t in range(max_length):
            logits, *states = step.predict_on_batch([token, source, encoder_out, *states])
            token = np.asarray(logits)[:, 1:].argmax(-1).astype("int32")[:, None] + 1  # never pad
            out[:, t] = np.where(done, 0, token[:, 0])
            done |= token[:, 0] == end_id
            if done.all():
                break
        hypotheses += [_until_end(row, end_id) for row in out]
    return hypotheses


def _until_end(row, end_id: int) -> list[int]:
    ids = row.tolist()
    return ids[: ids.index(end_id)] if end_id in ids else ids


def evaluate(model, test, spec, train_cfg, samples: int = 5) -> Evaluation:
    """Perplexity is filled in by run from the test loss; here: BLEU and sample translations."""
    import sacrebleu

    extras = spec.extras
    sources = [np.asarray(x["encoder_inputs"]) for x, *_ in test]
    ids = greedy_decode(
        model, sources, extras["start_id"], extras["end_id"], train_cfg.max_decode_length
    )
    hypotheses = [extras["detokenize"](row) for row in ids]
    references = list(extras["test_references"])[: len(hypotheses)]
    bleu = sacrebleu.corpus_bleu(
        hypotheses, [references], lowercase=extras.get("lowercase", False)
    )
    lines = [f"BLEU {bleu.score:.2f} ({bleu})", ""]
    source_text = extras.get("test_sources")
    for i in range(min(samples, len(hypotheses))):
        if source_text:
            lines.append(f"SRC: {source_text[i]}")
        lines += [f"REF: {references[i]}", f"HYP: {hypotheses[i]}", ""]
    return Evaluation(metrics={"bleu": bleu.score}, texts={"samples/translations.txt": "\n".join(lines)})


def perplexity(test_loss: float) -> float:
    return math.exp(min(test_loss, 700.0))


FAMILY = Family("translation", OUTPUTS, build, compile_args, evaluate)
