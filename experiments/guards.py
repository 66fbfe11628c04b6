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
import time
import warnings
from pathlib import Path

import keras

SIGNALS = (signal.SIGTERM, signal.SIGINT)
CHECKPOINT_FILES = ("latest.weights.h5", "training_metadata.json")  # Keras's names, kept
STATE, CURRENT = "state-", "current"  # a complete saved state's folder prefix; the link to the newest


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


_received: list[int] = []  # the signals stop_on_signals' handler turned into `Stopped`


def as_stopped(err: KeyboardInterrupt) -> KeyboardInterrupt:
    """`err`, or the `Stopped` of the signal that caused it: a wait inside Ray (`ray.wait`) runs
    the handler but raises a bare KeyboardInterrupt in place of its `Stopped`, SIGTERM included."""
    if isinstance(err, Stopped) or not _received:
        return err
    return Stopped(_received[-1])


@contextlib.contextmanager
def stop_on_signals():
    """Within this block (main thread), SIGTERM and SIGINT raise `Stopped`; a second signal while
    the runs are being marked KILLED is ignored, so the marking completes."""

    def handler(signum, frame):
        for sig in SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        _received.append(signum)
        raise Stopped(signum)

    _received.clear()
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
    """The divergence guard, then (when `checkpoint` is given) an AtomicBackupAndRestore there."""
    guard = [DivergenceGuard(checkpoint)]
    if checkpoint is None:
        return guard
    return [*guard, AtomicBackupAndRestore(checkpoint)]


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras's `BackupAndRestore`, written atomically and read forgivingly.

    Keras writes `latest.weights.h5` and `training_metadata.json` in place, so a signal or a kill
    during a save leaves a checkpoint that cannot be read (a 0-byte metadata file). Here each save
    writes both files into a new folder, renames it `state-<epochs>-<time>` when complete, and only
    then points the link `current` at it (`os.replace`): a save cut short leaves the last state
    whole. The state before the newest is kept until the next save.

    At the start of training the newest state that reads back is restored. One that does not is
    moved aside to `<folder>.unreadable-<time>/` with a warning, and training goes on from the
    state before it, or from scratch, never failing for it. A folder in Keras's own flat layout
    (written before this class) counts as the oldest state.
    """

    def __init__(self, backup_dir, keep: int = 2):
        super().__init__(str(backup_dir))
        self.folder = Path(backup_dir)
        self.keep = keep

    def on_train_begin(self, logs=None):
        for partial in self.folder.glob(".saving-*"):  # a save cut short (claims: one writer)
            shutil.rmtree(partial, ignore_errors=True)
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        fresh = [v.numpy() for v in _variables(self.model)]
        for state in self._states():
            self._point_at(state)
            try:
                self._load_model()
                return
            except (OSError, ValueError, KeyError, TypeError) as err:  # JSONDecodeError: ValueError
                for variable, value in zip(_variables(self.model), fresh, strict=True):
                    variable.assign(value)  # undo a half-done load
                self._set_aside(state, err)
        self.model._initial_epoch = 0

    def _save_model(self):
        saving = self.folder / f".saving-{os.getpid()}"
        shutil.rmtree(saving, ignore_errors=True)
        saving.mkdir(parents=True)
        self._point_at(saving)
        super()._save_model()
        for name in CHECKPOINT_FILES:
            with open(saving / name, "rb+") as f:
                os.fsync(f.fileno())
        state = self.folder / f"{STATE}{self._current_epoch:06d}-{time.time_ns():020d}"
        os.rename(saving, state)
        link = self.folder / f".{CURRENT}-{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        link.symlink_to(state.name)
        os.replace(link, self.folder / CURRENT)
        for old in self._complete()[self.keep:]:
            shutil.rmtree(old, ignore_errors=True)
        for name in CHECKPOINT_FILES:  # Keras's flat layout, superseded now
            with contextlib.suppress(FileNotFoundError):
                (self.folder / name).unlink()

    def _complete(self) -> list[Path]:
        """The renamed (complete) state folders, newest first."""
        return sorted((p for p in self.folder.glob(f"{STATE}*") if p.is_dir()), reverse=True)

    def _states(self) -> list[Path]:
        """What to try restoring, in order: the state `current` points at, the other complete
        states newest first, then a checkpoint of Keras's flat layout."""
        if not self.folder.is_dir():
            return []
        found = self._complete()
        current = self.folder / CURRENT
        if current.is_symlink() and (target := self.folder / os.readlink(current)) in found:
            found.remove(target)
            found.insert(0, target)
        if any((self.folder / name).exists() for name in CHECKPOINT_FILES):
            found.append(self.folder)
        return found

    def _point_at(self, state: Path) -> None:
        self._weights_path = str(state / CHECKPOINT_FILES[0])
        self._training_metadata_path = str(state / CHECKPOINT_FILES[1])

    def _set_aside(self, state: Path, err: BaseException) -> None:
        aside = self.folder.with_name(
            f"{self.folder.name}.unreadable-{time.strftime('%Y%m%dT%H%M%S')}")
        aside.mkdir(parents=True, exist_ok=True)
        if state == self.folder:
            for name in CHECKPOINT_FILES:
                with contextlib.suppress(FileNotFoundError):
                    os.replace(state / name, aside / name)
        else:
            os.replace(state, aside / state.name)
        warnings.warn(f"checkpoint {state} cannot be read ({type(err).__name__}: "
                      f"{str(err)[:200]}); moved to {aside}; training goes on from the state "
                      "before it", stacklevel=2)


def _variables(model) -> list:
    """The model's variables and its optimizer's: everything a checkpoint restores."""
    optimizer = model.optimizer.variables if model.optimizer is not None else []
    return [*model.variables, *optimizer]

