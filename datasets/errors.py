"""`ConfigError`: the one error type for a bad configuration value, in the lowest package (datasets),
so that datasets and experiments (config files, sweep files, mlflow.yml) raise the same thing.

Rendered as one line: ``<source>: '<key>' <problem>[, got <value>][; valid: <choices>]``, e.g.
``my.yaml: 'train.optimizer' must be one of the choices, got 'adagrad'; valid: adam, sgd``.
The CLI prints it and exits 2 without a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

_NOTHING = object()


class ConfigError(ValueError):
    """A bad configuration value: `source` (file or origin), `key`, `value`, `problem`, `valid`."""

    def __init__(self, source: Any, key: str, problem: str, *, value: Any = _NOTHING,
                 valid: Iterable[Any] | str | None = None):
        self.source, self.key, self.problem = str(source), key, problem
        self.value = None if value is _NOTHING else value
        self.valid = valid if valid is None or isinstance(valid, str) else [*valid]
        line = f"{self.source}: {key!r} {problem}"  # repr: a key typed with a newline stays one line
        if value is not _NOTHING:
            line += f", got {value!r}"
        if self.valid is not None:
            line += f"; valid: {self.valid if isinstance(self.valid, str) else show(self.valid)}"
        super().__init__(line)


def show(choices: Iterable[Any]) -> str:
    """Choices as a YAML user writes them: null, true/false, plain strings."""
    return ", ".join("null" if c is None else str(c).lower() if isinstance(c, bool) else str(c)
                     for c in choices)
