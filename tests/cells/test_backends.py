"""The reference checks and the dropout-mask probes again under each Keras backend.

Keras picks its backend at import, so each backend runs in its own pytest subprocess with
KERAS_BACKEND set; the backend this process runs (tensorflow under `make test`) is skipped, as
the in-process tests already cover it. Only a subset runs there, to keep each subprocess short
(JAX compiles every scan): the masked reference cases, the peephole / CIFG identities, and the
masks being equal across steps and new for each batch.
"""

import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CHECKS = [
    "test_reference.py::test_peephole_with_zero_peepholes_is_the_lstm",
    "test_reference.py::test_coupled_is_an_lstm_step_with_input_gate_one_minus_forget",
    "test_reference.py::test_cell_matches_numpy_reference",
    "test_dropout.py::test_input_mask_is_the_same_at_every_step_and_new_for_each_batch",
    "test_dropout.py::test_recurrent_mask_is_the_same_at_every_step_and_new_for_each_batch",
    "test_inference.py::test_compiled_and_uncompiled_predictions_agree_for_every_cell",
]
SELECT = "not full and not use_bias"


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_reference_checks_pass_under_backend(backend):
    if backend == keras.backend.backend():
        pytest.skip(f"{backend} is this process's backend: the in-process tests cover it")
    pytest.importorskip(backend)
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", SELECT,
         *[str(HERE / check) for check in CHECKS]],
        check=False, env=env, cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "passed" in result.stdout and "error" not in result.stdout.splitlines()[-1]
