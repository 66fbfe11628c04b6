"""Runs for tests/experiments/test_distribution.py in a fresh process split into two logical CPU
devices (RNNLAB_CPU_DEVICES=2 must act before TensorFlow sets its devices up, which the pytest
process did long ago). Writes one JSON object per case to the file given as argv[1].

    python tests/experiments/distributed_runs.py OUT.json CASE [CASE ...]

Cases: `single` (one device) and `mirrored` (two replicas), the same tiny tracked adding run, its
training split in order: the loaders reshuffle it on every pass, and under a distribution the
epochs get other passes (TensorFlow: Keras starts one extra pass to build the model), so each
epoch would see another order than on one device; `killed` (mirrored, stopped after its first
epoch's checkpoint) then `resumed` (the same config again); `diverged` (mirrored, a learning rate
that makes the loss infinite).
"""

from __future__ import annotations

import json
import sys
import time

import keras

from datasets import synthetic
from datasets.base import to_dataset
from experiments import guards, run
from experiments.config import Config

TINY = {
    "data": {"name": "adding", "length": 8, "num_train": 64, "num_val": 16, "num_test": 32,
             "batch_size": 16},
    "model": {"cell": "lstm", "units": 4},
    # plain SGD: Adam would hide a gradient off by the replica count (it is scale-invariant)
    "train": {"epochs": 2, "early_stopping_patience": None, "optimizer": "sgd", "lr": 0.1},
    "tracking": {"experiment": "distribution"},
}
EXPLODING = {"optimizer": "sgd", "lr": 1.0e6, "clipnorm": None}


class StopAfterFirstEpoch(keras.callbacks.Callback):
    """Ends the run like Ctrl-C after epoch 1, once BackupAndRestore has saved it."""

    def on_epoch_end(self, epoch, logs=None):
        raise KeyboardInterrupt("stopped after epoch 1")


def config(case: str) -> Config:
    d = {k: dict(v) for k, v in TINY.items()}
    if case != "single":
        d["train"]["distribution"] = "mirrored"
    if case == "diverged":
        d["train"].update(EXPLODING)
    d["model"]["units"] += case in ("killed", "resumed")  # its own config hash, so its own checkpoint
    return Config.from_dict(d, source=case)


def in_order(inputs, targets, batch_size, shuffle_seed=None, sample_weights=None):
    return to_dataset(inputs, targets, batch_size, None, sample_weights)


def one(case: str) -> dict:
    synthetic.to_dataset = in_order if case in ("single", "mirrored") else to_dataset
    extra = [StopAfterFirstEpoch()] if case == "killed" else []
    run.training_callbacks = lambda checkpoint: [*guards.training_callbacks(checkpoint), *extra]
    start = time.perf_counter()
    try:
        result = run.run(config(case))
    except (KeyboardInterrupt, guards.Diverged) as err:
        return {"error": type(err).__name__, "message": str(err),
                "seconds": time.perf_counter() - start}
    return {"run_id": result.run_id, "status": result.status, "epochs": result.epochs,
            "metrics": result.metrics, "seconds": time.perf_counter() - start}


if __name__ == "__main__":
    out, *cases = sys.argv[1:]
    with open(out, "w") as f:
        json.dump({case: one(case) for case in cases}, f)
