"""Batched greedy and beam-search decoding of a :class:`~experiments.tasks.seq2seq.Seq2Seq`.

Both loops are written with `keras.ops` (`while_loop`, `top_k`, `take`) around the model's own
`start` / `step`, and compiled as one function per batch where the backend allows it
(`tf.function` under TensorFlow, `jax.jit` under JAX; PyTorch runs them eagerly). A loop stops
when every sentence (every beam) has produced the end token, or after `max_length` tokens.

Beam search keeps `width` hypotheses per sentence, ranked by summed log-probability; a
finished hypothesis keeps its score and only extends with padding. The best finished one is
chosen by score / lp(length), GNMT's length penalty lp = ((5 + length) / 6) ** alpha
(Wu et al. 2016; alpha = 0: raw log-probability).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

NEG_INF = -1e9


def compiled(fn):
    """`fn` as a compiled function where the backend can trace it, else `fn` itself."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, reduce_retracing=True)
    if backend == "jax":
        import jax

        return jax.jit(fn)
    return fn


class BatchDecoder:
    """Greedy / beam decoders of one model, each compiled once (per source shape under JAX).

    `decode(source_ids, beam_width=1)` -> one list of target ids per sentence, without the start
    token, cut before the end token.
    """

    def __init__(self, model, start_id: int, end_id: int, max_length: int,
                 length_penalty: float = 0.6):
        self.model, self.start_id, self.end_id = model, start_id, end_id
        self.max_length, self.length_penalty = max_length, length_penalty
        self._greedy = compiled(self._greedy_ids)
        self._beams: dict[int, object] = {}

    def decode(self, source, beam_width: int = 1) -> list[list[int]]:
        source = np.asarray(source, dtype="int32")
        if beam_width <= 1:
            ids = self._greedy(source)
        else:
            if beam_width not in self._beams:
                self._beams[beam_width] = compiled(
                    lambda s, w=beam_width: self._beam_ids(s, w))
            ids = self._beams[beam_width](source)
        return [until_end(row, self.end_id) for row in np.asarray(ops.convert_to_numpy(ids))]

    def _next_log_probs(self, tokens, states, prepared):
        logits, states = self.model.step(tokens, states, prepared)
        logits = ops.cast(logits, "float32")
        vocab = ops.shape(logits)[-1]
        no_pad = ops.where(ops.arange(vocab) == 0, NEG_INF, 0.0)  # padding is never chosen
        return ops.log_softmax(logits + no_pad, axis=-1), states

    def _greedy_ids(self, source):
        batch = ops.shape(source)[0]
        states, prepared = self.model.start(source)
        positions = ops.arange(self.max_length)

        def cond(t, tokens, states, out, done):
            return ops.logical_and(t < self.max_length, ops.logical_not(ops.all(done)))

        def body(t, tokens, states, out, done):
            log_probs, states = self._next_log_probs(tokens, states, prepared)
            tokens = ops.cast(ops.argmax(log_probs, axis=-1), "int32")
            tokens = ops.where(done, 0, tokens)
            out = ops.where(ops.expand_dims(positions == t, 0), ops.expand_dims(tokens, 1), out)
            return t + 1, tokens, states, out, ops.logical_or(done, tokens == self.end_id)

        init = (ops.convert_to_tensor(0, "int32"),
                ops.full((batch,), self.start_id, dtype="int32"), states,
                ops.zeros((batch, self.max_length), dtype="int32"),
                ops.zeros((batch,), dtype="bool"))
        return ops.while_loop(cond, body, init)[3]

    def _beam_ids(self, source, width: int):
        batch = ops.shape(source)[0]
        states, prepared = self.model.start(ops.repeat(source, width, axis=0))
        positions = ops.arange(self.max_length)
        # only beam 0 is live at first, so the first step does not pick `width` copies
        scores = ops.tile(ops.expand_dims(ops.where(ops.arange(width) == 0, 0.0, NEG_INF), 0),
                          (batch, 1))
        offsets = ops.expand_dims(ops.arange(batch) * width, 1)  # (batch, 1)

        def cond(t, tokens, states, out, scores, done, lengths):
            return ops.logical_and(t < self.max_length, ops.logical_not(ops.all(done)))

        def body(t, tokens, states, out, scores, done, lengths):
            log_probs, states = self._next_log_probs(tokens, states, prepared)
            vocab = ops.shape(log_probs)[-1]
            log_probs = ops.reshape(log_probs, (batch, width, vocab))
            finished_row = ops.where(ops.arange(vocab) == 0, 0.0, NEG_INF)  # extend with pad
            log_probs = ops.where(ops.expand_dims(done, -1), finished_row, log_probs)
            flat = ops.reshape(ops.expand_dims(scores, -1) + log_probs, (batch, width * vocab))
            scores, index = ops.top_k(flat, width)
            beam = index // vocab
            tokens = ops.cast(index % vocab, "int32")
            rows = ops.reshape(beam + offsets, (-1,))
            states = [ops.take(s, rows, axis=0) for s in states]
            out = ops.take_along_axis(out, ops.expand_dims(beam, -1), axis=1)
            out = ops.where(positions == t, ops.expand_dims(tokens, -1), out)
            was_done = ops.take_along_axis(done, beam, axis=1)
            lengths = ops.take_along_axis(lengths, beam, axis=1) + ops.cast(
                ops.logical_not(was_done), "int32")
            done = ops.logical_or(was_done, tokens == self.end_id)
            return (t + 1, ops.reshape(tokens, (-1,)), states, out, scores, done, lengths)

        init = (ops.convert_to_tensor(0, "int32"),
                ops.full((batch * width,), self.start_id, dtype="int32"), states,
                ops.zeros((batch, width, self.max_length), dtype="int32"), scores,
                ops.zeros((batch, width), dtype="bool"), ops.zeros((batch, width), dtype="int32"))
        _, _, _, out, scores, done, lengths = ops.while_loop(cond, body, init)
        penalty = ((5.0 + ops.cast(lengths, "float32")) / 6.0) ** self.length_penalty
        ranked = scores / penalty + ops.where(done, 0.0, NEG_INF)  # finished ones first
        best = ops.argmax(ranked, axis=-1)
        return ops.take_along_axis(out, ops.reshape(best, (batch, 1, 1)), axis=1)[:, 0]


def until_end(row, end_id: int) -> list[int]:
    """Ids up to (without) the first end token, padding dropped."""
    ids = [int(i) for i in row]
    if end_id in ids:
        ids = ids[: ids.index(end_id)]
    return [i for i in ids if i]
