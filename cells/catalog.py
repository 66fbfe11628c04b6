"""The five cells as plain data: names, aliases, where each class lives, which have a forget gate.

What the configuration layer needs to know about the cells, readable without Keras: importing
the ``cells`` package imports Keras and its backend (6-30 s on a small machine), while refusing
``model.unit_forget_bias`` on a GRU or listing the cells must answer at once. ``register``
(``cells/base.py``) checks every registered cell against this table, so the two cannot drift.

Read it without the package's Keras with :func:`experiments.tasks.settings.cell_catalog`, or as
``cells.catalog`` once ``cells`` is imported.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CellEntry:
    """One cell: its registry name, its aliases, its module and class, and whether it has a
    forget gate whose bias may start at 1 (``model.unit_forget_bias``: the LSTM family,
    ``cells.base.MemoryCell``)."""

    name: str
    aliases: tuple[str, ...]
    module: str
    cls: str
    forget_gate: bool


CATALOG: tuple[CellEntry, ...] = (
    CellEntry("vanilla", ("simple", "rnn"), "cells.vanilla", "VanillaRNNCell", False),
    CellEntry("lstm", (), "cells.lstm", "LSTMCell", True),
    CellEntry("peephole", ("peephole_lstm",), "cells.peephole", "PeepholeLSTMCell", True),
    CellEntry("coupled", ("cifg",), "cells.coupled", "CoupledLSTMCell", True),
    CellEntry("gru", (), "cells.gru", "GRUCell", False),
)
ORDER = tuple(entry.name for entry in CATALOG)  # how cells.names() lists the five
BY_NAME = {key: entry for entry in CATALOG for key in (entry.name, *entry.aliases)}


def names() -> list[str]:
    """The canonical names of the catalogued cells, in ORDER."""
    return list(ORDER)


def entry(name: str) -> CellEntry | None:
    """The entry of a name or alias; None for a name the catalog does not hold."""
    return BY_NAME.get(name) if isinstance(name, str) else None


def forget_gate_cells() -> list[str]:
    """The cells that take ``model.unit_forget_bias``."""
    return [e.name for e in CATALOG if e.forget_gate]


def docs() -> list[tuple[CellEntry, str, list[str]]]:
    """(entry, the docstring's first line, the lines of its ``Equations ...::`` block) of each
    cell, read from its source file: what ``rnnlab cells`` prints, without importing Keras."""
    here = Path(__file__).resolve().parent
    found = []
    for cell in CATALOG:
        tree = ast.parse((here / f"{cell.module.rpartition('.')[2]}.py").read_text())
        node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cell.cls)
        found.append((cell, *_summary_and_equations(ast.get_docstring(node) or "")))
    return found


def _summary_and_equations(doc: str) -> tuple[str, list[str]]:
    lines = doc.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Equations")
                  and line.rstrip().endswith("::")), None)
    if start is None:
        return (lines[0] if lines else ""), []
    block = []
    for line in lines[start + 1:]:
        if line and not line.startswith(" "):
            break
        block.append(line.strip())
    return lines[0], [line for line in block if line]
