"""The encoder-decoder of the translation family: attention inside the decoder's recurrence.

    encoder   m_1..S = BiRNN(dropout(E_src x_1..S)),    final states of each layer and direction
    bridge    s_0 = tanh(W_b [s_fw; s_bw] + b_b)        per layer and state (h, and c for LSTMs);
              a unidirectional encoder hands its final states over unchanged
    decoder   one `keras.layers.RNN` over an :class:`AttentionDecoderCell` that wraps the stack
              of the configured cells (one-state h or two-state h, c); y_{t-1} = dropout(E_tgt y)

    attention "bahdanau" (Bahdanau et al. 2015): the context comes from the previous state
        e_ts = v · tanh(W_q s_{t-1} + W_k m_s),  a_t = softmax(e_t),  c_t = sum_s a_ts m_s
        s_t  = Cell([y_{t-1}; c_t], s_{t-1}),     readout [s_t; c_t; y_{t-1}]
    attention "luong" (Luong et al. 2015, global attention with input feeding)
        s_t  = Cell([y_{t-1}; h~_{t-1}], s_{t-1}), c_t = sum_s a_ts m_s with a_t = softmax(score)
        score(s_t, m_s) = s_t · m_s (dot) | s_t W_a m_s (general) | v · tanh(W_q s_t + W_k m_s)
        (concat);   h~_t = tanh(W_c [c_t; s_t]),   readout h~_t
        Two ablations: `input_feeding=False` gives s_t = Cell(y_{t-1}, s_{t-1}); `readout="deep"`
        reads out [s_t; c_t; y_{t-1}] as Bahdanau does (h~ is then only fed to the next input)
    attention None (Cho et al. 2014, Sutskever et al. 2014): s_t = Cell(y_{t-1}, s_{t-1}),
        readout s_t
    p(y_t | y_<t, x) = softmax(W_o dropout(readout) + b_o); with tied embeddings
        W_o = E_tgt^T after a linear projection of the readout to the embedding size.

Padding (id 0) is masked in the encoder, in the attention and in the loss. Keras 3's RNN has
no `constants` argument, so :class:`Decoder` hands the (pre-projected) encoder outputs to its
cell for the duration of one call; the greedy and beam decoders call the same cell step.
"""

from __future__ import annotations

import dataclasses

import keras
from keras import ops

import cells
from cells.base import as_list
from experiments.tasks.settings import ATTENTIONS, READOUTS, SCORES  # the declared choices

NEG_INF = -1e9


@keras.saving.register_keras_serializable(package="rnnlab")
class AttentionDecoderCell(keras.layers.Layer):
    """A stack of recurrent cells with attention over a memory, as one RNN cell.

    Args:
        cells: the stacked cells (or their serialised configs), bottom first.
        attention: None, "bahdanau" or "luong" (see the module docstring).
        score: Luong's score, "dot", "general" or "concat"; Bahdanau's is always "concat".
        input_feeding: Luong: h~_{t-1} joins the next input (the paper); Bahdanau's is its c_t.
        readout: Luong: "attentional" (h~_t, the paper; also None) or "deep" ([s_t; c_t], and
            y_{t-1} in `Seq2Seq.logits`); Bahdanau's is always "deep", no attention's s_t.
        memory_units: the feature size of the encoder outputs attended over.
        attention_units: hidden size of the "concat" score (default: the top cell's units).

    State: the states of every cell, bottom first, then (Luong with input feeding) the
    attentional vector h~.
    Set the memory with :meth:`set_memory` (:class:`Decoder` does) before stepping.
    """

    def __init__(self, cells, attention=None, score="general", memory_units=None,
                 attention_units=None, input_feeding=True, readout=None, **kwargs):
        super().__init__(**kwargs)
        if attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {attention!r}")
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {score!r}")
        if readout not in (None, *READOUTS):
            raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
        self.cells = [c if isinstance(c, keras.layers.Layer) else keras.layers.deserialize(c)
                      for c in cells]
        self.attention = attention
        self.score = "concat" if attention == "bahdanau" else score
        self.input_feeding = attention == "luong" and bool(input_feeding)
        self.readout = {None: None, "bahdanau": "deep", "luong": readout or "attentional"}[attention]
        # h~ = tanh(W_c [c; s]) is computed where it is read out or fed to the next input
        self._combines = attention == "luong" and (self.readout == "attentional"
                                                   or self.input_feeding)
        self.units = self.cells[-1].units
        self.memory_units = memory_units
        self.attention_units = attention_units or self.units
        if attention and memory_units is None:
            raise ValueError("attention needs memory_units, the size of the encoder outputs")
        if attention == "luong" and self.score == "dot" and memory_units != self.units:
            raise ValueError(
                f"the 'dot' score needs encoder outputs of the decoder's size ({self.units}), "
                f"got {memory_units} (a bidirectional encoder doubles them): use 'general'"
            )
        self._sizes = [as_list(c.state_size) for c in self.cells]
        self.state_size = [s for sizes in self._sizes for s in sizes]
        if self.input_feeding:
            self.state_size.append(self.units)
        self.output_size = self.units + (memory_units if self.readout == "deep" else 0)
        object.__setattr__(self, "_memory", None)  # not tracked: tensors of one call

    def build(self, input_shape):
        width = input_shape[-1] + (self.memory_units if self.attention == "bahdanau" else
                                   self.units if self.input_feeding else 0)
        for cell in self.cells:
            cell.build((input_shape[0], width))
            width = cell.units
        if self.score == "concat" and self.attention:
            self.query_kernel = self.add_weight(
                name="query_kernel", shape=(self.units, self.attention_units))
            self.key_kernel = self.add_weight(
                name="key_kernel", shape=(self.memory_units, self.attention_units))
            self.score_vector = self.add_weight(name="score_vector", shape=(self.attention_units,))
        elif self.score == "general" and self.attention:
            self.key_kernel = self.add_weight(
                name="key_kernel", shape=(self.memory_units, self.units))
        if self._combines:
            self.combine_kernel = self.add_weight(
                name="combine_kernel", shape=(self.memory_units + self.units, self.units))

    # -- memory ---------------------------------------------------------------------------
    def prepare_memory(self, memory, memory_mask):
        """`(memory, keys, mask_bias)`: what every step reads, computed once per sequence."""
        if not self.attention:
            return None
        if self.score == "dot":
            keys = memory
        else:
            keys = ops.matmul(memory, self.key_kernel)
        bias = (1.0 - ops.cast(memory_mask, memory.dtype)) * NEG_INF
        return memory, keys, bias

    def set_memory(self, prepared) -> None:
        object.__setattr__(self, "_memory", prepared)

    def attend(self, query):
        """Context vector `(batch, memory_units)` for a query `(batch, units)`."""
        if self._memory is None:
            raise ValueError("AttentionDecoderCell: no memory set; call it through Decoder")
        memory, keys, bias = self._memory
        if self.score == "concat":
            hidden = ops.tanh(keys + ops.expand_dims(ops.matmul(query, self.query_kernel), 1))
            scores = ops.matmul(hidden, self.score_vector)
        else:
            scores = ops.sum(keys * ops.expand_dims(query, 1), axis=-1)
        weights = ops.softmax(scores + bias, axis=-1)
        return ops.einsum("bs,bsd->bd", weights, memory)

    # -- one step -------------------------------------------------------------------------
    def call(self, inputs, states, training=False):
        states = as_list(states)
        per_cell, start = [], 0
        for sizes in self._sizes:
            per_cell.append(states[start:start + len(sizes)])
            start += len(sizes)
        if self.attention == "bahdanau":
            context = self.attend(per_cell[-1][0])
            x = ops.concatenate([inputs, context], axis=-1)
        elif self.input_feeding:
            x = ops.concatenate([inputs, states[-1]], axis=-1)
        else:
            x = inputs
        new_states = []
        for cell, cell_states in zip(self.cells, per_cell):
            x, s = cell(x, cell_states, training=training)
            new_states += as_list(s)
        if self.attention == "luong":
            context = self.attend(x)
        if self._combines:
            attentional = ops.tanh(
                ops.matmul(ops.concatenate([context, x], axis=-1), self.combine_kernel))
            if self.input_feeding:
                new_states.append(attentional)
        if self.readout == "deep":
            return ops.concatenate([x, context], axis=-1), new_states
        return (attentional if self.readout == "attentional" else x), new_states

    def get_config(self):
        return {**super().get_config(),
                "cells": [keras.layers.serialize(c) for c in self.cells],
                "attention": self.attention, "score": self.score,
                "memory_units": self.memory_units, "attention_units": self.attention_units,
                "input_feeding": self.input_feeding, "readout": self.readout}


@keras.saving.register_keras_serializable(package="rnnlab")
class Decoder(keras.layers.Layer):
    """`keras.layers.RNN` over an :class:`AttentionDecoderCell`, given the encoder's memory.

    Call arguments: `inputs` (batch, T, features), `initial_state` (the cells' states, without
    the h~ of Luong's input feeding, which starts at zero), `memory` (batch, S, memory_units),
    `memory_mask` (batch, S), `mask` (batch, T) of the inputs. Returns the readouts (batch, T, output_size).
    """

    def __init__(self, cell, **kwargs):
        super().__init__(**kwargs)
        self.cell = cell if isinstance(cell, keras.layers.Layer) else keras.layers.deserialize(cell)
        self.supports_masking = True  # the mask is an explicit argument; outputs carry none
        # zero outputs at padded steps: JAX's masked scan otherwise takes the first state for
        # the previous output, and a readout [s; c] or h~ is not shaped like it
        self.rnn = keras.layers.RNN(self.cell, return_sequences=True, zero_output_for_mask=True)

    def initial_states(self, states, batch_size):
        """The cell's full state: the given states, then (input feeding) Luong's h~_0 = 0."""
        states = list(states)
        if self.cell.input_feeding:
            states.append(ops.zeros((batch_size, self.cell.units), dtype=states[0].dtype))
        return states

    def new_dropout_masks(self) -> None:
        """Fresh per-sequence dropout masks in the cells (RNN skips it given initial states)."""
        for cell in self.cell.cells:
            cell.new_dropout_masks()

    def call(self, inputs, initial_state, memory=None, memory_mask=None, mask=None,
             training=False):
        if not self.cell.built:  # its attention weights are needed before RNN builds it
            self.cell.build((None, inputs.shape[-1]))
        if training:
            self.new_dropout_masks()
        states = self.initial_states(initial_state, ops.shape(inputs)[0])
        self.cell.set_memory(self.cell.prepare_memory(memory, memory_mask))
        try:
            return self.rnn(inputs, initial_state=states, mask=mask, training=training)
        finally:
            self.cell.set_memory(None)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, inputs_shape, *args, **kwargs):
        return (*inputs_shape[:2], self.cell.output_size)

    def get_config(self):
        return {**super().get_config(), "cell": keras.layers.serialize(self.cell)}


@keras.saving.register_keras_serializable(package="rnnlab")
class Seq2Seq(keras.Model):
    """Encoder, bridge and attention decoder (module docstring), one model for training
    (`call`: teacher forcing) and decoding (`encode`, `start`, `step`).

    Args:
        source_vocab_size, target_vocab_size: vocabulary sizes (id 0 is padding).
        units: hidden units of each encoder direction and of the decoder.
        model: the `ModelConfig` fields as a dict (cell, layers, bidirectional, embedding_dim,
            dropout, recurrent_dropout, attention, attention_score, input_feeding, readout,
            tie_embeddings, label_smoothing, projected).
    """

    def __init__(self, source_vocab_size, target_vocab_size, units, model, **kwargs):
        super().__init__(**kwargs)
        from experiments.config import ModelConfig
        from experiments.tasks.common import recurrent_layer

        cfg = ModelConfig(**model)
        self.source_vocab_size, self.target_vocab_size = source_vocab_size, target_vocab_size
        self.units, self.config_dict = units, dataclasses.asdict(cfg)
        self.bidirectional, self.tie_embeddings = cfg.bidirectional, cfg.tie_embeddings
        self.label_smoothing = cfg.label_smoothing
        self.source_embedding = keras.layers.Embedding(source_vocab_size, cfg.embedding_dim,
                                                       name="source_embedding")
        self.target_embedding = keras.layers.Embedding(target_vocab_size, cfg.embedding_dim,
                                                       name="target_embedding")
        self.dropout = keras.layers.Dropout(cfg.dropout)
        plain = dataclasses.replace(cfg, dropout=0.0)  # dropout: on embeddings, between layers
        self.encoder_layers = []
        for i in range(cfg.layers):
            layer = recurrent_layer(plain, units, return_sequences=True, return_state=True,
                                    name=f"encoder_{i}")
            if cfg.bidirectional:
                layer = keras.layers.Bidirectional(layer, name=f"biencoder_{i}")
            self.encoder_layers.append(layer)
        n_states = len(as_list(cells.get(cfg.cell, units=1).state_size))
        self.bridges = [keras.layers.Dense(units, activation="tanh", name=f"bridge_{i}")
                        for i in range(cfg.layers * n_states)] if cfg.bidirectional else []
        decoder_cells = [
            cells.get(cfg.cell, units=units, dropout=cfg.dropout if i else 0.0,
                      recurrent_dropout=cfg.recurrent_dropout)
            for i in range(cfg.layers)
        ]
        memory_units = units * (2 if cfg.bidirectional else 1)
        self.decoder = Decoder(AttentionDecoderCell(
            decoder_cells, attention=cfg.attention, score=cfg.attention_score,
            memory_units=memory_units if cfg.attention else None,
            input_feeding=cfg.input_feeding is not False, readout=cfg.readout),
            name="decoder")
        if cfg.tie_embeddings:
            self.readout = keras.layers.Dense(cfg.embedding_dim, name="readout")
            self.output_bias = self.add_weight(name="output_bias", shape=(target_vocab_size,),
                                               initializer="zeros")
        else:
            self.readout = keras.layers.Dense(target_vocab_size, name="logits")

    # -- the pieces decoding reuses ---------------------------------------------------------
    def encode(self, source, training=False):
        """`(memory, memory_mask, states)`: top-layer outputs, padding mask, decoder states."""
        mask = ops.not_equal(source, 0)
        x = self.dropout(self.source_embedding(source), training=training)
        states = []
        for i, layer in enumerate(self.encoder_layers):
            if i:
                x = self.dropout(x, training=training)
            x, *layer_states = layer(x, mask=mask, training=training)
            if self.bidirectional:
                half = len(layer_states) // 2
                layer_states = [
                    self.bridges[len(states) + j](ops.concatenate([fw, bw], axis=-1))
                    for j, (fw, bw) in enumerate(zip(layer_states[:half], layer_states[half:]))
                ]
            states += layer_states
        return x, mask, states

    def start(self, source):
        """`(states, prepared memory)` to step the decoder from, for a batch of sources."""
        memory, mask, states = self.encode(source)
        cell = self.decoder.cell
        return (self.decoder.initial_states(states, ops.shape(source)[0]),
                cell.prepare_memory(memory, mask))

    def step(self, tokens, states, prepared):
        """One decoder step for tokens `(batch,)`: `(logits (batch, vocab), new states)`."""
        y = self.target_embedding(tokens)
        cell = self.decoder.cell
        cell.set_memory(prepared)
        try:
            out, states = cell(y, states)
        finally:
            cell.set_memory(None)
        return self.logits(out, y), states

    def logits(self, out, y, training=False):
        if self.decoder.cell.readout == "deep":
            out = ops.concatenate([out, y], axis=-1)
        out = self.readout(self.dropout(out, training=training))
        if self.tie_embeddings:
            out = ops.matmul(out, ops.transpose(self.target_embedding.embeddings)) + self.output_bias
        return out

    # -- training ---------------------------------------------------------------------------
    def compile(self, optimizer="adam", loss=None, **kwargs):
        """As `keras.Model.compile`; the loss defaults to :class:`MaskedCrossEntropy` with the
        model's `label_smoothing`."""
        super().compile(optimizer=optimizer,
                        loss=loss or MaskedCrossEntropy(self.label_smoothing), **kwargs)

    def call(self, inputs, training=False):
        source, target_in = inputs["encoder_inputs"], inputs["decoder_inputs"]
        memory, memory_mask, states = self.encode(source, training=training)
        y = self.dropout(self.target_embedding(target_in), training=training)
        out = self.decoder(y, states, memory=memory, memory_mask=memory_mask,
                           mask=ops.not_equal(target_in, 0), training=training)
        return self.logits(out, y, training=training)

    def get_config(self):
        return {**super().get_config(), "source_vocab_size": self.source_vocab_size,
                "target_vocab_size": self.target_vocab_size, "units": self.units,
                "model": self.config_dict}

    def build(self, input_shape=None):
        """Create every weight with one tiny forward pass (whatever `input_shape` says)."""
        if self.built:
            return
        self.built = True  # so that the call below does not build again
        ids = ops.ones((1, 2), dtype="int32")
        self({"encoder_inputs": ids, "decoder_inputs": ids})


@keras.saving.register_keras_serializable(package="rnnlab")
class MaskedCrossEntropy(keras.losses.Loss):
    """Token-level cross-entropy over the non-padding targets (id 0 is padding), with optional
    label smoothing ε: (1 − ε) · NLL + ε · mean over the vocabulary of −log p."""

    def __init__(self, label_smoothing=0.0, name="masked_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        mask = ops.cast(ops.not_equal(y_true, 0), y_pred.dtype)
        loss = ops.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
        if self.label_smoothing:
            uniform = -ops.mean(ops.log_softmax(y_pred, axis=-1), axis=-1)
            loss = (1.0 - self.label_smoothing) * loss + self.label_smoothing * uniform
        # the batch mean Keras takes over (batch, T) becomes the mean over real tokens
        scale = ops.cast(ops.size(mask), mask.dtype) / ops.maximum(ops.sum(mask), 1.0)
        return loss * mask * scale

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="rnnlab")
class TokenAccuracy(keras.metrics.Mean):
    """Share of non-padding target tokens whose argmax prediction is right."""

    def __init__(self, name="token_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        right = ops.cast(ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), y_true),
                         "float32")
        return super().update_state(right, sample_weight=ops.cast(ops.not_equal(y_true, 0),
                                                                  "float32"))
