"""The translation model under each Keras backend: a tiny forward, one training step, greedy and
beam decoding, and the greedy output agreeing with the teacher-forced model.

Keras picks its backend at import, so each backend runs in its own subprocess with KERAS_BACKEND
set (as tests/cells/test_backends.py does); the process's own backend is covered in-process.
"""

import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = """
import numpy as np, keras
from datasets.base import DataSpec
from experiments.config import ModelConfig
from experiments.tasks import translation
spec = DataSpec(name="m", output="seq2seq", input_encoding="embedding", sequence_length=6,
                input_dim=13, target_vocab_size=11)
rng = np.random.default_rng(0)
src = rng.integers(1, 13, (3, 6)).astype("int32"); src[0, 4:] = 0
for cell, model in (("lstm", dict(attention="bahdanau", bidirectional=True)),
                    ("gru", dict(attention="luong", attention_score="general", layers=2)),
                    ("coupled", dict(attention="luong", input_feeding=False, readout="deep"))):
    keras.utils.set_random_seed(0)
    m = translation.build(spec, ModelConfig(cell=cell, units=5, embedding_dim=4, dropout=0.1,
                                            **model), 5)
    m.compile(optimizer="adam", **translation.compile_args(spec))
    x = {"encoder_inputs": src, "decoder_inputs": rng.integers(1, 11, (3, 4)).astype("int32")}
    loss = m.train_on_batch(x, rng.integers(0, 11, (3, 4)))
    assert np.isfinite(np.asarray(loss)).all(), loss
    greedy = translation.greedy_decode(m, [src], 2, 3, 4)
    beam = translation.translate(m, [src], {"start_id": 2, "end_id": 3}, 4, beam_width=1)
    assert beam == greedy, (beam, greedy)
    wide = translation.translate(m, [src], {"start_id": 2, "end_id": 3}, 4, beam_width=3)
    assert len(wide) == 3 and all(0 not in h for h in wide)
    full = np.zeros((3, 4), "int32")
    for row, ids in zip(full, greedy):
        row[: len(ids)] = ids
    dec_in = np.concatenate([np.full((3, 1), 2, "int32"), full[:, :-1]], axis=1)
    logits = np.asarray(m.predict_on_batch({"encoder_inputs": src, "decoder_inputs": dec_in}))
    for i, ids in enumerate(greedy):
        assert (logits[i, : len(ids), 1:].argmax(-1) + 1).tolist() == ids, (i, ids)
print("OK", keras.backend.backend())
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_translation_runs_under_backend(backend):
    if backend == keras.backend.backend():
        pytest.skip(f"{backend} is this process's backend: test_translation.py covers it")
    pytest.importorskip(backend)
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", SCRIPT], check=False, env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"OK {backend}" in result.stdout
