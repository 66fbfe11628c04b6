"""The translation family: attention decoder cell, decoding (greedy, beam), loss, save / load."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from datasets.base import DataSpec
from experiments.config import ModelConfig
from experiments.tasks import decoding, translation
from experiments.tasks.seq2seq import AttentionDecoderCell, MaskedCrossEntropy

START, END = 2, 3


def seq2seq_spec():
    return DataSpec(name="m30k", output="seq2seq", input_encoding="embedding", sequence_length=7,
                    input_dim=13, target_vocab_size=11)


def tiny(cell="gru", **model):
    keras.utils.set_random_seed(1)
    cfg = ModelConfig(cell=cell, units=6, embedding_dim=5, **model)
    return translation.build(seq2seq_spec(), cfg, 6)


def sources(n=4, length=7, pad_from=5):
    source = np.random.default_rng(0).integers(1, 13, (n, length)).astype("int32")
    source[:, pad_from:] = 0
    source[0, 3:] = 0  # sentences of different lengths
    return source


def teacher_forced(model, source, hypotheses, steps):
    full = np.zeros((len(source), steps), "int32")
    for row, ids in zip(full, hypotheses):
        row[: len(ids)] = ids
    decoder_in = np.concatenate([np.full((len(source), 1), START, "int32"), full[:, :-1]], axis=1)
    return np.asarray(model.predict_on_batch({"encoder_inputs": source,
                                              "decoder_inputs": decoder_in}))


@pytest.mark.parametrize(
    ("cell", "model"),
    [("gru", {}),
     ("lstm", {"attention": "luong", "bidirectional": True, "layers": 2}),
     ("vanilla", {"attention": "bahdanau", "layers": 2}),
     ("peephole", {"attention": "bahdanau", "bidirectional": True}),
     ("coupled", {"attention": "luong", "attention_score": "dot"}),
     ("gru", {"attention": "luong", "attention_score": "concat", "tie_embeddings": True}),
     ("lstm", {"attention": "luong", "readout": "deep", "bidirectional": True}),
     ("gru", {"attention": "luong", "input_feeding": False, "tie_embeddings": True}),
     ("peephole", {"attention": "luong", "input_feeding": False, "readout": "deep"})],
)
def test_greedy_decoding_steps_the_same_cell_as_the_teacher_forced_model(cell, model):
    """Feeding the greedy output back as decoder input must reproduce it step by step (the
    argmax leaves out padding, id 0, as decoding does): the compiled step is the RNN's step."""
    m = tiny(cell, **model)
    source, steps = sources(), 5
    hypotheses = translation.greedy_decode(m, [source], START, END, steps)
    logits = teacher_forced(m, source, hypotheses, steps)
    for i, ids in enumerate(hypotheses):
        n = len(ids)
        np.testing.assert_array_equal(logits[i, :n, 1:].argmax(-1) + 1, ids)
        if n < steps:  # stopped at the end token
            assert logits[i, n, 1:].argmax() + 1 == END


def test_beam_of_width_one_is_greedy_and_wider_beams_give_valid_hypotheses():
    m = tiny("lstm", attention="bahdanau", bidirectional=True)
    source, steps = sources(6), 6
    greedy = translation.greedy_decode(m, [source], START, END, steps)
    extras = {"start_id": START, "end_id": END}
    assert translation.translate(m, [source], extras, steps, beam_width=1) == greedy
    beam = translation.translate(m, [source], extras, steps, beam_width=4, length_penalty=0.0)
    assert len(beam) == len(source)
    assert all(len(h) <= steps and 0 not in h and END not in h for h in beam)


def test_extra_source_padding_changes_nothing():
    """Padding is masked in the encoder, the bridge and the attention."""
    m = tiny("lstm", attention="luong", bidirectional=True)
    source = sources()
    padded = np.concatenate([source, np.zeros((len(source), 4), "int32")], axis=1)
    decoder_in = np.full((len(source), 3), START, "int32")
    a = m.predict_on_batch({"encoder_inputs": source, "decoder_inputs": decoder_in})
    b = m.predict_on_batch({"encoder_inputs": padded, "decoder_inputs": decoder_in})
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_loss_and_token_accuracy_ignore_padding_and_smoothing_raises_the_loss():
    s = seq2seq_spec()
    model = translation.build(s, ModelConfig(cell="lstm", units=4, embedding_dim=4), 4)
    model.compile(**translation.compile_args(s))
    rng = np.random.default_rng(0)
    x = {"encoder_inputs": rng.integers(1, 13, (3, 7)), "decoder_inputs": rng.integers(1, 11, (3, 5))}
    y = rng.integers(1, 11, (3, 5))
    y[:, 3:] = 0
    scores = model.evaluate(x, y, return_dict=True, verbose=0)
    x["decoder_inputs"][:, 3:] = 7  # only padded positions change
    assert model.evaluate(x, y, return_dict=True, verbose=0) == pytest.approx(scores)
    assert set(scores) == {"loss", "token_accuracy"}
    logits = model.predict_on_batch(x)
    plain = float(keras.ops.mean(MaskedCrossEntropy()(y, logits)))
    smooth = float(keras.ops.mean(MaskedCrossEntropy(0.1)(y, logits)))
    assert plain == pytest.approx(translation.cross_entropy(model, [(x, y)]), rel=1e-5)
    assert smooth != pytest.approx(plain)


@pytest.mark.parametrize(("model", "feeds", "reads_deep"),
                         [({}, True, False), ({"input_feeding": False}, False, False),
                          ({"readout": "deep"}, True, True),
                          ({"input_feeding": False, "readout": "deep"}, False, True)])
def test_luong_ablations_feed_and_read_out_what_they_say(model, feeds, reads_deep):
    """Input feeding adds h~ to the state and to the bottom cell's input; the deep readout reads
    [s; c] (and y) where the paper reads h~, and without input feeding h~ is not computed."""
    m = tiny("gru", attention="luong", bidirectional=True, **model)
    cell, units, memory, embedding = m.decoder.cell, 6, 12, 5
    assert len(cell.state_size) == 1 + feeds
    assert cell.cells[0].kernel.shape[0] == embedding + units * feeds
    assert cell.output_size == units + memory * reads_deep
    assert m.readout.kernel.shape[0] == (units + memory + embedding if reads_deep else units)
    assert hasattr(cell, "combine_kernel") == (feeds or not reads_deep)
    config = AttentionDecoderCell.from_config(cell.get_config())
    assert (config.input_feeding, config.readout) == (feeds, "deep" if reads_deep else "attentional")


def test_dot_score_needs_equal_sizes():
    with pytest.raises(ValueError, match="'dot' score needs encoder outputs"):
        tiny("gru", attention="luong", attention_score="dot", bidirectional=True)


def test_cell_refuses_unknown_attention():
    with pytest.raises(ValueError, match="attention must be one of"):
        AttentionDecoderCell([keras.layers.GRUCell(3)], attention="local")


@pytest.mark.parametrize("model", [{"attention": "bahdanau"},
                                   {"attention": "luong", "input_feeding": False, "readout": "deep"}])
def test_saved_model_reloads_safely_and_decodes_identically(tmp_path, model):
    m = tiny("lstm", bidirectional=True, tie_embeddings=True, **model)
    m.compile(**translation.compile_args(seq2seq_spec()))
    path = tmp_path / "model.keras"
    m.save(path)
    again = keras.saving.load_model(path, safe_mode=True, compile=False)
    source = sources()
    np.testing.assert_allclose(
        teacher_forced(m, source, [[5, 6]] * 4, 3), teacher_forced(again, source, [[5, 6]] * 4, 3),
        atol=1e-6)
    assert (decoding.BatchDecoder(again, START, END, 5).decode(source, 2)
            == decoding.BatchDecoder(m, START, END, 5).decode(source, 2))


def test_until_end_cuts_at_the_end_token_and_drops_padding():
    assert decoding.until_end([5, 6, END, 7], END) == [5, 6]
    assert decoding.until_end([5, 0, 0], END) == [5]
