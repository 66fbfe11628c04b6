"""Experiment configuration: four dataclasses (data, model, train, tracking) and their validation.

A config comes from a YAML file (`load_config`), a dict (`Config.from_dict`) or CLI overrides
(`config.with_overrides(["train.lr=3e-3"])`). Every key, type and range is checked before anything
runs; a bad one raises `ConfigError` (datasets/errors.py) naming the source, the key, the value and
what is valid, on one line.

Example:
    >>> config = Config.from_dict({"data": {"name": "adding", "length": 50}})
    >>> config.with_overrides(["model.cell=gru", "train.lr=3e-3"]).train.lr
    0.003
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import datasets
from datasets import synthetic
from datasets.base import DataConfig
from datasets.errors import ConfigError
from experiments.tasks import settings

OPTIMIZER_CHOICES = ("adam", "adamw", "rmsprop", "sgd", "nadam")
PROJECTED_CHOICES = ("auto", True, False)
JIT_CHOICES = ("auto", True, False)
DISTRIBUTION_CHOICES = (None, "mirrored", "data_parallel")  # experiments/distribution.py


@dataclass
class ModelConfig:
    """The network around the cell; `cell` is a name from the `cells` registry."""

    cell: str = "lstm"
    units: int = 64  # hidden units per direction and layer (ignored when match_params is set)
    layers: int = 1  # stacked recurrent layers (encoder and decoder each, for translation)
    bidirectional: bool = False  # encoder / classifier only; a decoder runs forwards
    embedding_dim: int = 64  # token inputs only
    dropout: float = 0.0  # on each cell's inputs
    recurrent_dropout: float = 0.0  # on each cell's recurrent state
    attention: str | None = None  # translation: None | "luong" | "bahdanau"
    attention_score: str = "general"  # translation, Luong attention: "dot" | "general" | "concat"
    # translation, Luong attention, two ablations of the paper's model (experiments.tasks.seq2seq):
    # h~_{t-1} fed to the next input (True, the paper; False = off), and what the output layer
    # reads: "attentional" = the vector h~_t (the paper) | "deep" = [s_t; c_t; y_{t-1}] as
    # Bahdanau's. Which runs take which key: experiments/tasks/settings.py
    input_feeding: bool = True
    readout: str = "attentional"
    tie_embeddings: bool = False  # translation: output layer = target embedding transposed
    label_smoothing: float = 0.0  # translation: epsilon of the model's smoothed cross-entropy
    match_params: int | None = None  # target parameter count: choose units per cell to match it
    # forget-gate bias starting at 1 (True) or 0 (False; Jozefowicz et al. 2015 ablation), for the
    # cells that have one (lstm, peephole, coupled: cells/catalog.py); None = the cell's default (1)
    unit_forget_bias: bool | None = None
    # cells.ProjectedRNN (inputs of the whole sequence projected in one matmul) instead of
    # keras.layers.RNN(cell): same results. "auto" = where it measured faster: on a GPU and under
    # PyTorch, not on a CPU with TensorFlow or JAX (experiments.tasks.common.use_projected)
    projected: bool | str = "auto"


@dataclass
class TrainConfig:
    """Optimisation: one `model.fit` with early stopping on the validation loss."""

    optimizer: str = "adam"
    lr: float = 1e-3
    clipnorm: float | None = 1.0  # clips each weight's gradient to this norm (Keras); None = off
    # clips all gradients together to this norm (torch's clip_grad_norm_); one of the two at most
    global_clipnorm: float | None = None
    epochs: int = 10
    early_stopping_patience: int | None = 3  # epochs without val_loss improvement; None = off
    seed: int = 0  # weights, dropout and op determinism (the data has its own data.seed)
    max_decode_length: int = 50  # translation: greedy decoding stops here
    beam_width: int = 1  # translation: test-set decoding, 1 = greedy
    length_penalty: float = 0.6  # translation, beam search: GNMT's alpha, 0 = raw log-probability
    # TensorFlow op determinism: same config + seed = same metrics (once on, on for the process)
    deterministic: bool = True
    # XLA-compiled training step: "auto" = Keras's choice (off on a CPU with TensorFlow, on with
    # JAX, off with PyTorch), True = on (TensorFlow: replaces op determinism, which Keras does not
    # combine with XLA; XLA's CPU programs are deterministic: tests/experiments/test_jit.py).
    # How a run computes, not what (same metrics within float rounding: benchmarks/
    # study_throughput.md): left out of config_hash
    jit_compile: bool | str = "auto"
    verbose: int = 0  # passed to model.fit
    run_eagerly: bool = False  # skip graph tracing: slower per step, quicker for tiny smoke runs
    # data parallelism over the local devices: None | "mirrored" | "data_parallel" (same thing:
    # TF MirroredStrategy / JAX keras.distribution.DataParallel); data.batch_size is the global
    # batch. How a run computes, not what: left out of config_hash (experiments/distribution.py)
    distribution: str | None = None


@dataclass
class TrackingConfig:
    """What MLflow gets; where it goes is in mlflow.yml (see experiments.recording.store)."""

    enabled: bool = True
    experiment: str | None = None  # None: the pattern in mlflow.yml
    run_name: str | None = None  # None: "<task>-<cell>-<hash>"
    log_model: bool = True


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "tracking": TrackingConfig,
}

# data sizes that must be >= 1 where a dataset's config has them (None = all, where allowed)
_DATA_SIZES = ("num_train", "num_val", "num_test", "batch_size", "length", "subset", "test_subset",
               "max_length", "vocab_size", "min_freq")

# fields that say where or how a run is recorded, not what is computed: left out of config_hash
_UNHASHED = {"tracking": None, "data": {"data_dir"},
             "train": {"verbose", "run_eagerly", "distribution", "jit_compile"}}
# the train keys among them: how a run is shown, spread or compiled (also free of a tuned family's
# setting: experiments/orchestration/plan.py)
HOW_NOT_WHAT = tuple(f"train.{key}" for key in sorted(_UNHASHED["train"]))
# keys added after runs were recorded, left out of config_hash while they hold the value those runs
# had (what the model did before the key existed), so that every recorded run keeps its hash and a
# re-run sweep still finds it (tests/experiments/test_config.py pins hashes computed before)
# settings stored as None before the paper's value had a name: an older run's config.yaml (or a
# null in a YAML file) reads back as the value
NAMED_SINCE = {"model.input_feeding": True, "model.readout": "attentional"}
LEFT_OUT_OF_HASH_AT = {"model.unit_forget_bias": None, "train.global_clipnorm": None,
                       "data.drawn_first": "test", **NAMED_SINCE}


@dataclass
class Config:
    """One experiment: `run(config)` trains and evaluates exactly this."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    @classmethod
    def from_dict(cls, d: dict | None, source: str = "<dict>", *, strict: bool = False) -> Config:
        """Build and validate a config; missing keys keep their defaults. A key the run does not
        take (`model.unit_forget_bias` on a GRU, `model.attention` on adding: the task's
        declaration, experiments/tasks/settings.py) is set back to its default, so that a sweep
        can cross it with every task and cell; `strict` (one run asked for by hand) refuses it."""
        d = d or {}
        if not isinstance(d, dict):
            raise ConfigError(source, "top level", "must be a mapping of sections", value=d,
                              valid=SECTIONS)
        _check_keys(d, SECTIONS, source, what="section")
        sections = {}
        for name, section_cls in SECTIONS.items():
            values = {} if d.get(name) is None else d[name]
            if not isinstance(values, dict):
                raise ConfigError(source, name, "must be a mapping (a section)", value=values)
            sections[name] = _build_section(section_cls, values, f"{source}", name)
        config = cls(**sections)
        settings.check_choices(config, source)
        settings.check(config, cls(), source, strict=strict)
        config.validate(source)
        return config

    def validate(self, source: str = "<config>") -> None:
        """Check the choices that a type alone cannot (the cell and dataset names are checked by
        run; which keys the run takes, by `from_dict`)."""
        settings.check_choices(self, source)
        _check_choice(self.train.optimizer, OPTIMIZER_CHOICES, source, "train.optimizer")
        _check_choice(self.model.projected, PROJECTED_CHOICES, source, "model.projected")
        _check_choice(self.train.jit_compile, JIT_CHOICES, source, "train.jit_compile")
        _check_choice(self.data.drawn_first, synthetic.DRAWN_FIRST, source, "data.drawn_first")
        _check_choice(self.train.distribution, DISTRIBUTION_CHOICES, source, "train.distribution")
        if self.train.distribution is not None:
            from experiments import distribution  # Keras: only where a distribution is asked for

            distribution.check_backend(self.train.distribution, source)
        for key, (value, low) in self._bounded().items():
            if value is not None and value < low:
                raise ConfigError(source, key, f"must be >= {low}", value=value)
        for key in ("model.dropout", "model.recurrent_dropout", "model.label_smoothing"):
            value = getattr(self.model, key.partition(".")[2])
            if not 0.0 <= value < 1.0:
                raise ConfigError(source, key, "must be in [0, 1)", value=value)
        for key, value in (("train.lr", self.train.lr), ("train.clipnorm", self.train.clipnorm),
                           ("train.global_clipnorm", self.train.global_clipnorm)):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ConfigError(source, key, "must be > 0 and finite", value=value)
        if self.train.clipnorm is not None and self.train.global_clipnorm is not None:
            raise ConfigError(source, "train.global_clipnorm", "cannot be set together with "
                              "train.clipnorm (set train.clipnorm: null to clip the global norm)",
                              value=self.train.global_clipnorm)

    def _bounded(self) -> dict[str, tuple[Any, int]]:
        """Integer settings and their least valid value (None, where allowed, is not checked)."""
        data = self.data
        at_least_1 = {
            "model.units": self.model.units, "model.layers": self.model.layers,
            "model.embedding_dim": self.model.embedding_dim,
            "model.match_params": self.model.match_params, "train.epochs": self.train.epochs,
            "train.max_decode_length": self.train.max_decode_length,
            "train.beam_width": self.train.beam_width,
            **{f"data.{k}": getattr(data, k) for k in _DATA_SIZES if hasattr(data, k)},
        }
        at_least_0 = {"train.seed": self.train.seed,
                      "train.early_stopping_patience": self.train.early_stopping_patience,
                      "train.verbose": self.train.verbose,
                      "train.length_penalty": self.train.length_penalty,
                      **{f"data.{k}": getattr(data, k) for k in ("seed",) if hasattr(data, k)}}
        return {**{k: (v, 1) for k, v in at_least_1.items()},
                **{k: (v, 0) for k, v in at_least_0.items()}}

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {name: dataclasses.asdict(getattr(self, name)) for name in SECTIONS}

    def flat(self) -> dict[str, Any]:
        """`{"data.name": ..., "model.cell": ..., ...}`: the MLflow params of a run."""
        return {f"{s}.{k}": v for s, values in self.to_dict().items() for k, v in values.items()}

    def with_overrides(self, overrides: list[str], source: str = "--set", *,
                       strict: bool = False) -> Config:
        """A new config with `section.key=value` items applied (values parsed as YAML); `strict`
        as in `from_dict`."""
        d = self.to_dict()
        for item in overrides:
            key, sep, raw = item.partition("=")
            section, dot, name = key.strip().partition(".")
            if not sep or not dot:
                raise ConfigError(source, item, "must look like section.key=value",
                                  valid=f"sections {', '.join(SECTIONS)}")
            _check_keys({section: None}, SECTIONS, source, what="section")
            d[section][name] = read_yaml(raw, f"{source} {key.strip()}") if raw.strip() else None
        return Config.from_dict(d, source=source, strict=strict)


def short_name(key: str) -> str:
    """How a key reads in run labels and settings ("data.length" -> "T", "model.attention" ->
    "attention"); `params.`-prefixed MLflow columns too."""
    key = key.removeprefix("params.")
    return "T" if key == "data.length" else key.rpartition(".")[2]


def load_config(path: str | Path, overrides: list[str] | None = None, *,
                strict: bool = False) -> Config:
    """Read a YAML config file, then apply `overrides` (`["train.lr=3e-3", ...]`); `strict` as
    in `Config.from_dict`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    config = Config.from_dict(read_yaml(path.read_text(), str(path)), source=str(path),
                              strict=strict)
    return config.with_overrides(overrides, strict=strict) if overrides else config


def read_yaml(text: str, source: str) -> Any:
    """`yaml.safe_load(text)`, a syntax error or a refused tag (`!!python/...`: safe_load never runs
    it) raised as a ConfigError naming `source` and the line, instead of `<unicode string>`."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        problem = " ".join(str(getattr(err, "problem", None) or err).split())
        raise ConfigError(source, where, f"is not valid YAML here ({problem})") from None


def config_hash(config: Config) -> str:
    """A stable 12-hex-digit hash of what a run computes.

    Tracking fields, `data.data_dir` (where the same files live), `train.verbose`,
    `train.run_eagerly` and `train.distribution` (same results, within float rounding) are
    ignored, so a sweep recognises a finished run however it was made; so is a key added later
    while it holds the value runs had before it (`LEFT_OUT_OF_HASH_AT`).
    """
    d = config.to_dict()
    for section, keys in _UNHASHED.items():
        if keys is None:
            d.pop(section)
        else:
            for key in keys:
                d[section].pop(key)
    for key, before in LEFT_OUT_OF_HASH_AT.items():
        section, _, name = key.partition(".")
        if d[section][name] == before and type(d[section][name]) is type(before):
            d[section].pop(name)
    blob = json.dumps(d, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def validate_names(config: Config, where: str) -> None:
    """Check the cell and task names against the registries, naming `where`, the key and the valid
    choices; the one name check of `run`, sweeps and the CLI."""
    for key, value, valid in (
        ("model.cell", config.model.cell, settings.cell_names()),
        ("data.name", config.data.name, datasets.names()),
    ):
        if value not in valid:
            raise ConfigError(where, key, "must be a known name", value=value, valid=valid)


def _build_section(section_cls: type, values: dict, source: str, section: str):
    fields = {f.name: f for f in dataclasses.fields(section_cls)}
    _check_keys(values, fields, source, what=f"key of section '{section}'", prefix=f"{section}.")
    hints = typing.get_type_hints(section_cls)
    coerced = {
        key: _coerce(NAMED_SINCE.get(f"{section}.{key}") if value is None else value, hints[key],
                     source, f"{section}.{key}")
        for key, value in values.items()
    }
    return section_cls(**coerced)


def _check_keys(given: dict, valid, source: str, *, what: str, prefix: str = "") -> None:
    unknown = [k for k in given if k not in valid]
    if unknown:
        raise ConfigError(source, f"{prefix}{unknown[0]}", f"is not a {what}", valid=valid)


def _check_choice(value, choices: tuple, source: str, key: str) -> None:
    if value not in choices:
        raise ConfigError(source, key, "must be one of the choices", value=value, valid=choices)


def _coerce(value, hint, source: str, key: str):
    """Return `value` as the annotated type, or raise naming the key and the expected type.

    Accepted conversions: int -> float, and a numeric string -> float (YAML 1.1 reads `3e-3`
    as a string). A bool is never taken for a number, nor a number for a bool.
    """
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None and type(None) in allowed:
        return None
    for typ in allowed:
        if typ is bool and isinstance(value, bool):
            return value
        if typ is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if typ is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if typ is float and isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        if typ is str and isinstance(value, str):
            return value
    expected = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
    raise ConfigError(source, key, f"must be {expected}", value=value)
