"""Checkpoints a resume reads: written whole or not at all (a signal during a save leaves the state
before it), and one that cannot be read is set aside with a warning, never failing the run."""

from __future__ import annotations

import shutil
import signal

import keras
import mlflow
import pytest
from reliability_fixtures import runs_of, steps

from experiments import guards
from experiments.config import config_hash
from experiments.guards import Stopped, checkpoint_dir, stop_on_signals
from experiments.orchestration import launch
from experiments.run import run


def _folder(lab, config):
    return checkpoint_dir(config_hash(config), lab.uri)


def _trained_state(lab, config):
    """The checkpoint folder of `config` after one epoch, written by a run stopped by Ctrl-C
    after epoch 0 (the stopped run deleted)."""
    from reliability_fixtures import SignalAt, inject

    with pytest.MonkeyPatch.context() as patch:
        inject(patch, SignalAt(signal.SIGINT, 0))
        with pytest.raises(Stopped), stop_on_signals():
            run(config)
    for found in runs_of(lab.name):
        mlflow.delete_run(found.info.run_id)
    return _folder(lab, config)


def test_a_zero_byte_metadata_file_is_set_aside_and_the_run_trains(lab):
    """The issue's checkpoint: Keras's flat layout, its training_metadata.json cut to 0 bytes by
    a signal mid-write. Before: JSONDecodeError, the run FAILED, and every re-run the same."""
    config = lab.config()
    folder = _folder(lab, config)
    folder.mkdir(parents=True)
    (folder / "training_metadata.json").write_bytes(b"")
    (folder / "latest.weights.h5").write_bytes(b"\x89HDF\r\n")  # truncated too
    with pytest.warns(UserWarning, match="cannot be read.*moved to"):
        result = run(config)
    assert result.status == "FINISHED" and result.epochs == config.train.epochs
    [found] = runs_of(lab.name)
    assert found.info.status == "FINISHED"
    assert steps(found.info.run_id) == list(range(config.train.epochs))  # from scratch
    [aside] = folder.parent.glob(f"{folder.name}.unreadable-*")
    assert (aside / "training_metadata.json").stat().st_size == 0  # kept for a look
    assert not folder.exists()  # training ended: the checkpoint is removed


def test_an_unreadable_newest_state_falls_back_to_the_state_before(lab):
    config = lab.config(train={"epochs": 4})
    folder = _trained_state(lab, config)  # one epoch done
    [good] = folder.glob("state-*")
    bad = folder / "state-000002-99999999999999999999"
    shutil.copytree(good, bad)
    (bad / "training_metadata.json").write_bytes(b'{"epo')
    (folder / "current.new").symlink_to(bad.name)
    (folder / "current.new").replace(folder / "current")
    with pytest.warns(UserWarning, match="cannot be read"):
        result = run(config)
    assert result.status == "FINISHED" and result.epochs == 4
    [found] = runs_of(lab.name)
    assert steps(found.info.run_id) == [1, 2, 3]  # resumed after the good state's epoch
    [aside] = folder.parent.glob(f"{folder.name}.unreadable-*/state-*")
    assert aside.name == bad.name


def test_a_signal_during_a_save_leaves_the_state_before_it_and_the_rerun_resumes(
        lab, monkeypatch):
    """Ctrl-C lands while the 2nd epoch's checkpoint is being written (its metadata file half
    written): the run ends KILLED, and the re-run resumes from the 1st epoch's state, each epoch
    logged once."""
    plan = lab.sweep(train={"epochs": 4})
    keras_save = keras.callbacks.BackupAndRestore._save_model
    saves = []

    def interrupted_save(self):
        saves.append(self._current_epoch)
        if len(saves) == 2:
            with open(self._training_metadata_path, "w") as f:
                f.write('{"ep')
            raise Stopped(signal.SIGINT)
        keras_save(self)

    monkeypatch.setattr(keras.callbacks.BackupAndRestore, "_save_model", interrupted_save)
    with pytest.raises(Stopped), stop_on_signals():
        launch.run_sweep(plan, out=lambda line: None)
    folder = _folder(lab, plan.runs[0].config)
    assert (folder / "current").resolve().name.startswith("state-000001-")

    monkeypatch.setattr(keras.callbacks.BackupAndRestore, "_save_model", keras_save)
    [outcome] = launch.run_sweep(plan, out=lambda line: None)
    assert outcome.status == "FINISHED" and outcome.result.epochs == 4
    resumed = mlflow.get_run(outcome.run_id)
    assert resumed.data.tags["rnnlab.resumed_epoch"] == "1"
    assert steps(outcome.run_id) == [0, 1, 2, 3]
    assert not folder.exists()


def test_a_save_keeps_two_whole_states_and_the_link_to_the_newest(tmp_path):
    folder = tmp_path / "ckpt"
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    callback = guards.AtomicBackupAndRestore(folder)
    callback.set_model(model)
    for epoch in range(3):
        callback.on_epoch_end(epoch)
    states = sorted(p.name for p in folder.glob("state-*"))
    assert [name[:12] for name in states] == ["state-000002", "state-000003"]
    assert (folder / "current").resolve().name == states[-1]
    assert not list(folder.glob(".saving-*"))
    for state in states:
        assert {p.name for p in (folder / state).iterdir()} == set(guards.CHECKPOINT_FILES)
