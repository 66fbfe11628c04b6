"""benchmarks/seed_vmap.py: S seeds as one vmapped JAX step are each seed's own step.

JAX is Keras's backend only when chosen at import, so the check runs in a subprocess with
KERAS_BACKEND=jax (this process runs TensorFlow under `make test`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ONE_STEP = """
import json
import numpy as np
from benchmarks import seed_vmap as sv
configs = [c.with_overrides(["data.num_train=64", "data.num_val=32", "data.num_test=32"])
           for c in sv.member_configs("coupled", 2, 50, 1)]
step = sv.one_step(configs)
seeds_apart = max(float(np.max(np.abs(a - b))) for a, b in zip(*step["starts"]))
print(json.dumps({"one_step_diff": step["one_step_diff"], "seeds_apart": seeds_apart}))
"""


def test_one_vmapped_step_is_each_seeds_standalone_step():
    """Two seeds of the study's CIFG on adding (T = 50, 64 sequences): after one step every
    weight of each seed equals its standalone model's after `train_on_batch` on the same batch,
    to float rounding. The seeds start apart, so a vmap that mixed them up, or a step that left
    the weights where they were (Adam's first step moves each by about the learning rate,
    ≥ 2e-3 here), would fail."""
    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(REPO),
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-c", ONE_STEP], check=False, env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    assert measured["seeds_apart"] > 1e-2
    assert len(measured["one_step_diff"]) == 2
    assert max(measured["one_step_diff"]) < 1e-5
