"""Which config keys a run takes: each task family's declaration, and the one rule that applies it.

A key every run takes (`model.units`, `train.lr`, ...) is declared nowhere. The others are:

- `data.*`: the fields the dataset's loader reads, declared by the dataset module itself
  (`READS`, a `datasets.base.Reads`; `data.name` is always taken);
- a family's own keys (its `FAMILIES` entry below: translation's attention, decoding, ...),
  each a `Setting` with its choices and, where it applies to only some of the family's runs,
  a `when` (Luong's input feeding and readout: `model.attention: luong`);
- `COMMON`: keys the model takes by its inputs or its cell: `model.embedding_dim` for token
  inputs, `model.unit_forget_bias` for the cells with a forget gate (`cells/catalog.py`).

`takes(config, key)` is the rule, and everything that used to guess from it reads it:
`experiments.config` refuses a key a lone run does not take (`check`, naming the key and who
takes it) or drops it in a sweep, and leaves what a sweep dropped out of `config_hash`;
`applicable` is what the recorder logs as MLflow params; `family_name` and `forget_gate_cells`
are what the results page groups by; `setting_keys` (the dataset's `Reads.defines` and the
family's keys marked `defines`) is what the report names a task's settings by.

This module and what it reads (`datasets`' declarations, `cells/catalog.py`) import neither
Keras nor TensorFlow, so a refused key answers at once.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import datasets
from datasets.errors import ConfigError

ANY = None  # a Setting's choices: whatever the config field's type allows


@dataclass(frozen=True)
class Setting:
    """A config key only some runs take: `key` ("section.name"), its valid `choices` (ANY:
    the field's type decides), and `when`: (fact, values) pairs that must all hold for a run
    to take it. A fact is a config key ("model.attention"), "inputs" (the dataset's input
    encoding) or "forget_gate" (whether the cell has one). `label`: how a value other than the
    default reads in the run's name (the MLflow UI's run list). `defines`: the key tells one
    setting of the task from another, as the dataset's `Reads.defines` do (`setting_keys`)."""

    key: str
    choices: tuple | None = ANY
    when: tuple[tuple[str, tuple], ...] = ()
    # how a value other than the default shows in the run's name (`name_parts`); None: it does not
    label: Callable[[Any], str] | None = None
    defines: bool = False


@dataclass(frozen=True)
class Declaration:
    """A task family: its name, the `DataSpec.output` kinds it models, the keys only it takes."""

    name: str
    outputs: tuple[str, ...]
    settings: tuple[Setting, ...] = ()


LUONG = (("model.attention", ("luong",)),)
# translation's choices, also what experiments.tasks.seq2seq's decoder cell accepts
ATTENTIONS = (None, "luong", "bahdanau")
SCORES = ("dot", "general", "concat")  # Luong's; Bahdanau's is always concat
READOUTS = ("attentional", "deep")  # Luong's h~_t (the paper) | Bahdanau's [s_t; c_t; y_{t-1}]

SENTIMENT = Declaration("sentiment", ("binary",))
TRANSLATION = Declaration("translation", ("seq2seq",), (
    Setting("model.attention", ATTENTIONS, label=str, defines=True),
    Setting("model.attention_score", SCORES),
    # Luong's two ablations (experiments.tasks.seq2seq): h~_{t-1} fed to the next input, and
    # what the output layer reads; the paper's own settings are True and "attentional"
    Setting("model.input_feeding", (True, False), when=LUONG, label=lambda on: "nofeed"),
    Setting("model.readout", READOUTS, when=LUONG, label=str),
    Setting("model.tie_embeddings"),
    Setting("model.label_smoothing"),
    Setting("train.max_decode_length"),
    Setting("train.beam_width"),
    Setting("train.length_penalty"),
))
LONG_DEPENDENCY = Declaration(
    "long_dependency", ("regression", "categorical", "sequence_categorical", "sequence_multilabel"))
FAMILIES: tuple[Declaration, ...] = (SENTIMENT, TRANSLATION, LONG_DEPENDENCY)

COMMON: tuple[Setting, ...] = (
    Setting("model.embedding_dim", when=(("inputs", ("embedding",)),)),
    Setting("model.unit_forget_bias", when=(("forget_gate", (True,)),)),
)

# key -> (the family that alone takes it, or None for every family; its Setting)
DECLARED: dict[str, tuple[str | None, Setting]] = {
    **{s.key: (None, s) for s in COMMON},
    **{s.key: (family.name, s) for family in FAMILIES for s in family.settings},
}


def cell_catalog() -> ModuleType:
    """`cells/catalog.py` (names, aliases, forget gates), loaded without running
    `cells/__init__.py`, which imports Keras; the same module `import cells` uses later."""
    name = "cells.catalog"
    if name not in sys.modules:
        package = importlib.util.find_spec("cells")  # finds the package, runs none of it
        path = Path(package.submodule_search_locations[0]) / "catalog.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def cell_names() -> list[str]:
    """The valid `model.cell` names: the catalog's, and any registered since (`cells.register`)
    once `cells` is imported."""
    names = cell_catalog().names()
    if "cells" in sys.modules:
        names += [n for n in sys.modules["cells"].names() if n not in names]
    return names


def forget_gate_cells() -> tuple[str, ...]:
    """The cells that take `model.unit_forget_bias` (the LSTM family)."""
    return tuple(cell_catalog().forget_gate_cells())


def family_name(task: str, unknown: str | None = None) -> str:
    """The family that models dataset `task`, from the output kinds it declares; `unknown` for a
    task no longer registered (a run recorded before it was renamed), else ValueError."""
    if unknown is not None and task not in datasets.names():
        return unknown
    outputs = set(datasets.reads(task).outputs)
    for family in FAMILIES:
        if outputs <= set(family.outputs):
            return family.name
    raise ValueError(f"dataset '{task}': no task family models its outputs {sorted(outputs)}; "
                     f"families: {', '.join(f.name for f in FAMILIES)}")


def setting_keys(task: str) -> tuple[str, ...]:
    """The keys that define a setting of dataset `task`, named by the report even where all its
    runs share them: its `Reads.defines` ("data.length"), then its family's keys marked `defines`
    ("model.attention"); () for a task no longer registered."""
    if task not in datasets.names():
        return ()
    family = family_name(task)
    return (*(f"data.{name}" for name in datasets.reads(task).defines),
            *(s.key for f in FAMILIES if f.name == family for s in f.settings if s.defines))


def _facts(config) -> dict[str, Any] | None:
    """What decides which keys `config` takes; None for an unknown task (validate_names says so)."""
    if config.data.name not in datasets.names():
        return None
    reads = datasets.reads(config.data.name)
    entry = cell_catalog().entry(config.model.cell)
    return {"family": family_name(config.data.name), "data": reads.data, "inputs": reads.inputs,
            # an unknown or uncatalogued cell: not refused here (validate_names says so)
            "forget_gate": True if entry is None else entry.forget_gate}


def takes(config, key: str, facts: dict | None = None) -> bool:
    """Whether a run of `config` reads `key` ("section.name"): THE rule. Its task must take the
    key (`task_takes`), and its model meet the key's other conditions (the cell's forget gate,
    `model.attention`)."""
    facts = _facts(config) if facts is None else facts
    if facts is None:
        return True
    if not task_takes(key, facts):
        return False
    _, setting = DECLARED.get(key, (None, None))
    return setting is None or all(
        (facts[fact] if fact in facts else value_of(config, fact)) in values
        for fact, values in setting.when if fact not in TASK_FACTS)


TASK_FACTS = ("family", "data", "inputs")  # what the task (data.name) alone decides


def task_takes(key: str, facts: dict) -> bool:
    """Whether some run of this task takes `key`, whatever its model: the data keys its loader
    reads, its family's keys, the keys of its input encoding."""
    section, _, name = key.partition(".")
    if section == "data":
        return name == "name" or name in facts["data"]
    family, setting = DECLARED.get(key, (None, None))
    if setting is None:
        return True
    if family is not None and family != facts["family"]:
        return False
    return all(facts[fact] in values for fact, values in setting.when if fact in TASK_FACTS)


def default(key: str) -> Any:
    """The default value of `key` ("model.readout" -> "attentional")."""
    from experiments.config import Config  # the config imports this module

    return value_of(Config(), key)


def value_of(config, key: str) -> Any:
    section, _, name = key.partition(".")
    return getattr(getattr(config, section), name)


def applicable(config) -> dict[str, Any]:
    """The flattened config (`{"model.cell": ...}`) less the keys this run does not take: the
    MLflow params of a run."""
    facts = _facts(config)
    return {key: value for key, value in config.flat().items() if takes(config, key, facts)}


def name_parts(config) -> list[str]:
    """The labels of the declared keys this run takes at other than their defaults, in
    declaration order: what names the run besides its task and cell ("luong", "nofeed")."""
    facts = _facts(config)
    return [setting.label(value_of(config, key)) for key, (_, setting) in DECLARED.items()
            if setting.label and value_of(config, key) != default(key)
            and takes(config, key, facts)]


def takers(key: str) -> str:
    """Who takes `key`, for a refusal: "tasks multi30k", "cells lstm, peephole, coupled", ..."""
    section, _, name = key.partition(".")
    if section == "data":
        return "tasks " + ", ".join(t for t in datasets.names() if name in datasets.reads(t).data)
    family, setting = DECLARED[key]
    parts = []
    if family is not None:
        parts.append("tasks " + ", ".join(t for t in datasets.names() if family_name(t) == family))
    for fact, values in setting.when:
        if fact == "inputs":
            parts.append("tasks " + ", ".join(t for t in datasets.names()
                                              if datasets.reads(t).inputs in values))
        elif fact == "forget_gate":
            parts.append("cells " + ", ".join(forget_gate_cells()))
        else:
            parts.append(f"{fact}: {' or '.join(str(v) for v in values)}")
    return " with ".join(parts)


def check(config, defaults, source: str, *, strict: bool) -> None:
    """Apply the rule to a built config, against `defaults` (a Config of the default values).

    A key the run does not take, set to other than its default: `strict` (one run asked for by
    hand) refuses it, naming the key and who takes it. Otherwise (a sweep): where the task takes
    it but not this model (`model.unit_forget_bias` on a GRU, Luong's ablations under Bahdanau's
    attention), it is set back to its default, so a sweep that crosses it with every cell or
    attention does not run the same configuration twice; where the task itself never takes it
    (`data.num_train` on IMDB, `model.embedding_dim` on adding), it is kept as written: the
    task already tells those runs apart, and the recorded runs' hashes include such keys (the
    study's base sets `data.num_train` for every task).
    """
    facts = _facts(config)
    if facts is None:
        return
    for key in config.flat():
        value, default = value_of(config, key), value_of(defaults, key)
        if value == default or takes(config, key, facts):
            continue
        if strict:
            raise ConfigError(source, key, f"is not read {_why_not(config, key, facts)} (leave it "
                              "unset)", value=value, valid=takers(key))
        if task_takes(key, facts):
            section, _, name = key.partition(".")
            setattr(getattr(config, section), name, default)


def _why_not(config, key: str, facts: dict) -> str:
    """What keeps a run of `config` from reading `key`: its task, its cell or another key."""
    if not task_takes(key, facts):
        return f"by task {config.data.name!r}"
    for fact, values in DECLARED[key][1].when:
        if fact == "forget_gate" and facts[fact] not in values:
            return f"by cell {config.model.cell!r}, which has no forget gate"
        if fact not in facts and value_of(config, fact) not in values:
            return f"with {fact} {value_of(config, fact)!r}"
    return "by this run"


def check_choices(config, source: str) -> None:
    """Every declared key's value against its declared choices."""
    for _, setting in DECLARED.values():
        value = value_of(config, setting.key)
        if setting.choices is not ANY and value not in setting.choices:
            raise ConfigError(source, setting.key, "must be one of the choices", value=value,
                              valid=setting.choices)
