"""RNN Cell Lab data: IMDB sentiment, Multi30k translation and long-dependency toy tasks.

The registry maps a name to the module that loads it; every module exposes
``load(config) -> (train, val, test, spec)``, ``info(config) -> dict`` and ``READS`` (a
:class:`~datasets.base.Reads`: the config keys it reads, its output kinds, its inputs)::

    import datasets
    train, val, test, spec = datasets.load(datasets.DataConfig(name="adding", length=200))
"""

RNNLAB = True  # lets `rnnlab` tell this package from Hugging Face's `datasets`

import importlib
from types import ModuleType

from datasets.base import (
    CorruptDataError,
    DataConfig,
    DataSpec,
    MissingDataError,
    Reads,
    check_choice,
    data_dir,
)

REGISTRY = {
    "imdb": "datasets.imdb",
    "multi30k": "datasets.multi30k",
    "adding": "datasets.synthetic.adding",
    "copy": "datasets.synthetic.copy_memory",
    "temporal_order": "datasets.synthetic.temporal_order",
    "reber": "datasets.synthetic.reber",
    "spike_timing": "datasets.synthetic.spike_timing",
}


def names() -> list[str]:
    """All dataset / task names, in registry order."""
    return list(REGISTRY)


def get(name: str) -> ModuleType:
    """The module of `name`; an unknown name raises ValueError listing the valid names."""
    check_choice("datasets", "name", name, names())
    return importlib.import_module(REGISTRY[name])


def reads(name: str) -> Reads:
    """What the module of `name` declares it takes (its ``READS``): the data keys its loader
    reads, its output kinds and its input encoding. Imports NumPy, never TensorFlow."""
    return get(name).READS


def load(config: DataConfig):
    """``(train, val, test, spec)`` of ``config.name``: batched ``tf.data.Dataset`` splits and a
    :class:`DataSpec`."""
    return get(config.name).load(config)


def info(config: DataConfig) -> dict:
    """Sizes, vocabulary sizes, length statistics and the file location of ``config.name``."""
    return get(config.name).info(config)


__all__ = [
    "CorruptDataError",
    "DataConfig",
    "DataSpec",
    "MissingDataError",
    "Reads",
    "data_dir",
    "get",
    "info",
    "load",
    "names",
    "reads",
]
