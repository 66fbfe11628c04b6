"""What stops a run, and what lets it resume: divergence, signals, checkpoints.

- `DivergenceGuard`: a NaN or infinite training loss raises `Diverged` at the batch where it appears
  ("diverged at epoch N", 1-based as in Keras's progress lines); the run is recorded FAILED with
  that reason and its checkpoint removed (resuming would diverge again).
- `stop_on_signals()`: SIGTERM and SIGINT raise `Stopped` (a KeyboardInterrupt) in the main
  thread, so runs end KILLED with the signal as their reason; exit status 128 + signal number.
- `checkpoint_callbacks(config)`: Keras's `BackupAndRestore` in
  `$RNNLAB_CHECKPOINT_DIR` (default ~/.cache/rnnlab/checkpoints)/<store>/<config_hash>, so a run
  killed by a signal, kill -9 or a lost tracking store resumes from its last completed epoch.
  The folder is per tracking store and config: claims (experiments.orchestration.launch) keep two processes off
  one config of one store. Keras deletes it when training ends.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import shutil
import signal
from pathlib import Path

import keras

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Diverged(RuntimeError):
    """The training loss became NaN or infinite; str() is the run's `rnnlab.reason`."""

    def __init__(self, epoch: int):
        super().__init__(f"diverged at epoch {epoch}")
        self.epoch = epoch


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGINT arrived; `signal_name` says which, `exit_code` is 128 + its number."""

    def __init__(self, signum: int):
        self.signal_name = signal.Signals(signum).name
        self.exit_code = 128 + signum
        super().__init__(f"stopped by {self.signal_name}")


@contextlib.contextmanager
def stop_on_signals():
    """Within this block (main thread), SIGTERM and SIGINT raise `Stopped`; a second signal while
    the runs are being marked KILLED is ignored, so the marking completes."""

    def handler(signum, frame):
        for sig in SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        raise Stopped(signum)

    previous = {sig: signal.signal(sig, handler) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class DivergenceGuard(keras.callbacks.Callback):
    """Raises `Diverged` at the first batch whose loss is NaN or infinite (Keras's TerminateOnNaN
    only stops after the batch and lets the run end as if it had finished)."""

    def __init__(self, checkpoint: Path | None = None):
        super().__init__()
        self.checkpoint = checkpoint
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            if self.checkpoint is not None:
                shutil.rmtree(self.checkpoint, ignore_errors=True)
            raise Diverged(self._epoch + 1)


def checkpoint_dir(config_hash: str, store: str) -> Path:
    """The checkpoint folder of config `config_hash` tracked in store `store` (a URI)."""
    root = Path(os.environ.get("RNNLAB_CHECKPOINT_DIR")
                or Path.home() / ".cache" / "rnnlab" / "checkpoints")
    return root / hashlib.sha256(store.encode()).hexdigest()[:12] / config_hash


def training_callbacks(checkpoint: Path | None) -> list[keras.callbacks.Callback]:
    """The divergence guard, then (when `checkpoint` is given) Keras's BackupAndRestore there."""
    guard = [DivergenceGuard(checkpoint)]
    if checkpoint is None:
        return guard
    return [*guard, keras.callbacks.BackupAndRestore(str(checkpoint))]
