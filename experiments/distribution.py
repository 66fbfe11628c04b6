"""Data parallelism over this machine's devices: `train.distribution`.

    with distribution.replicas(config) as placed:   # placed.count: model copies, placed.tags
        build -> compile -> fit -> evaluate          # (what run() does)

`train.distribution: null` (the default) trains on one device, as Keras places it. `mirrored` and
`data_parallel` both ask for synchronous data parallelism over every local accelerator (every
CPU device when there is none): one copy of the model per device, each batch split across them,
gradients summed before each update. The names are TensorFlow's and Keras's for the same thing;
the backend picks its implementation:

- TensorFlow: `tf.distribute.MirroredStrategy` over the local GPUs (else the logical CPUs); the
  model is built, compiled and trained inside its scope.
- JAX: `keras.distribution.DataParallel` over `keras.distribution.list_devices()`.
- PyTorch: not supported (Keras has no distribution for it); refused before anything runs.

`data.batch_size` is the *global* batch: each of N replicas gets batch_size / N examples a step and
the loss is the mean over the whole batch (Keras scales each replica's share), so a run's learning
rate and metrics do not depend on N: with the training data in order, the tests find the same
test loss on 1 and 2 devices within 1e-4 relative (TensorFlow: with `clip_after_summing`). With
shuffled data they differ like two seeds: the loaders reshuffle on every pass over the training
split, and under a distribution the epochs get other passes (TensorFlow: Keras starts one extra
pass to build the model from a batch). A batch size that N does not divide is refused before the
run starts; on JAX the last batch of each split must split evenly too (checked once the data is
loaded; TensorFlow splits an uneven last batch itself).

One MirroredStrategy serves the whole process (see `_mirrored`). The run's MLflow record gets the
tags `rnnlab.distribution` (the implementation) and `rnnlab.replicas`; the param
`train.distribution` is logged with the rest of the config, which hashes without it (a run
distributed or not is the same configuration for a sweep's claims and resume).

`RNNLAB_CPU_DEVICES=N` (read when this module is first imported, before TensorFlow or JAX set up
their devices) splits the CPU into N logical devices: how the tests, and anyone without two
accelerators, try a distributed run. It is not a speed-up: N devices share the same cores.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import keras

from datasets.errors import ConfigError
from experiments.config import DISTRIBUTION_CHOICES
from experiments.recording.tags import DISTRIBUTION_TAG, REPLICAS_TAG

CHOICES = DISTRIBUTION_CHOICES  # the config validates them, without importing this module

SUPPORTED_BACKENDS = ("tensorflow", "jax")
CPU_DEVICES_ENV = "RNNLAB_CPU_DEVICES"


@dataclass(frozen=True)
class Placement:
    """Where a run trains: `count` model copies with `implementation` (None: one device)."""

    count: int = 1
    implementation: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def check_splits(self, splits: dict, source: str = "run") -> None:
        """On JAX every batch must split evenly, the last of each split too (DataParallel shards
        the batch axis; TensorFlow's MirroredStrategy splits an uneven last batch itself)."""
        if self.count == 1 or keras.backend.backend() != "jax":
            return
        for name, dataset in splits.items():
            size = _last_batch_size(dataset)
            if size % self.count:
                raise ConfigError(source, f"{name} split",
                                  f"ends with a batch of {size} examples, which "
                                  f"{self.implementation} cannot split over {self.count} devices "
                                  f"on JAX: make the split's size a multiple of {self.count}")


def check_backend(value: str | None, source: str, backend: str | None = None) -> None:
    """Refuse `train.distribution` on a backend that has none (PyTorch), naming the valid ones."""
    backend = backend or keras.backend.backend()
    if value is not None and backend not in SUPPORTED_BACKENDS:
        raise ConfigError(source, "train.distribution",
                          f"is not supported on the {backend} backend (set train.distribution: "
                          "null, or KERAS_BACKEND to a supported one)", value=value,
                          valid=f"backends {', '.join(SUPPORTED_BACKENDS)}")


@contextlib.contextmanager
def replicas(config, source: str = "train.distribution") -> Iterator[Placement]:
    """Within this block, Keras builds and trains `config`'s model on every local device when
    `config.train.distribution` is set (see the module docstring); raises ConfigError before
    anything runs when the backend has no distribution or the batch does not split evenly."""
    value = config.train.distribution
    if value is None:
        yield Placement()
        return
    check_backend(value, source)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        strategy = _mirrored(tuple(_tf_devices(tf)))
        placed = _placement(value, strategy.num_replicas_in_sync, "tf.distribute.MirroredStrategy",
                            config.data.batch_size, source)
        scope = strategy.scope()
    else:
        devices = keras.distribution.list_devices()
        placed = _placement(value, len(devices), "keras.distribution.DataParallel",
                            config.data.batch_size, source)
        scope = keras.distribution.DataParallel(devices=devices).scope()
    with scope:
        yield placed


@functools.cache
def _mirrored(devices: tuple[str, ...]):
    """One MirroredStrategy per process and devices: a second one numbers its collective ops from
    the same keys as the first, and a later run's all-reduce then meets an earlier model's
    gradients ("Shape mismatch in the collective instance")."""
    import tensorflow as tf

    return tf.distribute.MirroredStrategy(devices=list(devices))


def _last_batch_size(dataset) -> int:
    """The number of examples in the last batch of a batched tf.data `dataset`."""
    import tensorflow as tf

    batches = int(dataset.cardinality())
    last = dataset.skip(batches - 1) if batches > 0 else dataset
    size = 0
    for batch in last:
        size = int(tf.nest.flatten(batch)[0].shape[0])
    return size


def clip_after_summing(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """`optimizer`, clipping the replicas' summed gradient instead of each replica's share.

    On TensorFlow, Keras 3.15 clips inside each replica (`Optimizer._clip_gradients`) and sums the
    replicas' gradients afterwards, so with `clipnorm` two replicas took another step than one
    device (measured: test loss 0.2165 against 0.2256). Here each replica sums first (an
    all-reduce), clips the global gradient and passes on 1/N of it, which Keras's own all-reduce
    adds back up. Nothing changes without clipping, outside a strategy, or on JAX (whose
    DataParallel clips the global gradient already).
    """
    clipping = optimizer.clipnorm or optimizer.global_clipnorm or optimizer.clipvalue
    if keras.backend.backend() != "tensorflow" or not clipping:
        return optimizer
    import tensorflow as tf

    clip = optimizer._clip_gradients

    def summed_then_clipped(grads):
        context = tf.distribute.get_replica_context()
        count = context.num_replicas_in_sync if context is not None else 1
        if count == 1:
            return clip(grads)
        present = [i for i, g in enumerate(grads) if g is not None]
        summed = context.all_reduce(tf.distribute.ReduceOp.SUM,
                                    [tf.convert_to_tensor(grads[i]) for i in present])
        shares = list(grads)
        for i, g in zip(present, clip(summed)):
            shares[i] = g / count
        return shares

    optimizer._clip_gradients = summed_then_clipped
    return optimizer


def check(config, source: str) -> None:
    """Raise what `replicas(config)` would raise (the backend, the batch against the replica
    count), without training: a sweep checks every run before its first one starts."""
    with replicas(config, source):
        pass


def _tf_devices(tf) -> list[str]:
    """The local GPUs, else the logical CPUs (MirroredStrategy's own default takes one CPU)."""
    gpus = tf.config.list_logical_devices("GPU")
    return [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]


def _placement(value: str, count: int, implementation: str, batch_size: int,
               source: str) -> Placement:
    if batch_size % count:
        raise ConfigError(source, "data.batch_size",
                          f"must be a multiple of the {count} replicas of train.distribution="
                          f"{value} (it is the global batch, split evenly across the devices)",
                          value=batch_size)
    return Placement(count, implementation, {DISTRIBUTION_TAG: implementation,
                                             REPLICAS_TAG: str(count)})


def split_cpu(count: int) -> None:
    """Make the CPU `count` logical devices, before the backend sets its devices up."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * count)
        except RuntimeError as err:  # the runtime already set its devices up
            raise RuntimeError(f"${CPU_DEVICES_ENV}={count} came too late: TensorFlow had set its "
                               f"devices up before experiments.distribution was imported "
                               f"({err})") from None
    elif backend == "jax":
        import jax

        jax.config.update("jax_num_cpu_devices", count)


def _cpu_devices_from_env() -> int | None:
    raw = os.environ.get(CPU_DEVICES_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"${CPU_DEVICES_ENV}", CPU_DEVICES_ENV, "must be an integer >= 1",
                          value=raw)
    return int(raw)


if (_count := _cpu_devices_from_env()) is not None:
    split_cpu(_count)
