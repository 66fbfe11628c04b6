"""What the five cells share: the registry, argument checks, dropout masks and a base cell.

A cell file holds only what is specific to it: its equations (docstring), its gate count, its
extra weights and its step. Everything else — constructor, validation, ``get_config``, the fused
``kernel`` / ``recurrent_kernel`` / ``bias`` weights in Keras's layout, dropout — lives here.

Each step is split in two public methods so a fast layer can project a whole sequence at once:

* ``input_projection(x) = x @ kernel + b_in`` for ``x`` of shape (B, D) or (B, T, D);
* ``recurrent_step(x_proj, states, training)`` — everything else of one step.

``call(x, states, training) = recurrent_step(input_projection(dropout(x)), states, training)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import keras
from keras import ops

from cells import catalog

ORDER = catalog.ORDER  # how names() lists the five
_CELLS: dict[str, type[RecurrentCell]] = {}
_ALIASES: dict[str, str] = {}


def register(name: str, *aliases: str) -> Callable[[type], type]:
    """Class decorator: make a cell available as ``cells.get(name)`` (and under each alias).

    It also registers the class for Keras serialisation under the package ``rnnlab``. A name
    of ``cells/catalog.py`` must match its entry there (aliases, forget gate).
    """

    def decorate(cls: type) -> type:
        taken = set(_CELLS) | set(_ALIASES)
        for key in (name, *aliases):
            if key in taken:
                raise ValueError(f"Cell name {key!r} is already registered.")
        listed = catalog.entry(name)
        if listed is not None and (listed.aliases, listed.forget_gate) != (
                tuple(aliases), issubclass(cls, MemoryCell)):
            raise ValueError(f"Cell {name!r} does not match its entry in cells/catalog.py: "
                             f"{listed}")
        cls = keras.saving.register_keras_serializable(package="rnnlab")(cls)
        cls.cell_name = name
        _CELLS[name] = cls
        _ALIASES.update({alias: name for alias in aliases})
        return cls

    return decorate


def names() -> list[str]:
    """The canonical cell names: vanilla, lstm, peephole, coupled, gru, then any added later."""
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(_CELLS, key=lambda name: rank.get(name, len(ORDER)))


def get(name: str, **kwargs: Any) -> RecurrentCell:
    """A new cell of the given name (or alias), built from ``kwargs`` (e.g. ``units=32``)."""
    key = _ALIASES.get(name, name) if isinstance(name, str) else name
    if key not in _CELLS:
        aliases = ", ".join(f"{alias}={target}" for alias, target in sorted(_ALIASES.items()))
        raise ValueError(
            f"Unknown cell name: {name!r}. Valid names: {', '.join(_CELLS)} "
            f"(aliases: {aliases})."
        )
    return _CELLS[key](**kwargs)


# ---------------------------------------------------------------------------------------------
# argument checks


def check_units(units: Any) -> int:
    if isinstance(units, bool) or not isinstance(units, int) or units <= 0:
        raise ValueError(f"`units` must be a positive integer. Received: units={units!r}")
    return units


def check_rate(key: str, rate: Any) -> float:
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
        raise ValueError(f"`{key}` must be a float in [0, 1). Received: {key}={rate!r}")
    return float(rate)


def check_seed(seed: Any) -> int | None:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"`seed` must be an integer or None. Received: seed={seed!r}")
    return seed


def check_bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):  # ValueError, like every other bad argument here
        message = f"`{key}` must be True or False. Received: {key}={value!r}"
        raise ValueError(message)  # noqa: TRY004
    return value


# ---------------------------------------------------------------------------------------------
# dropout masks


class _FrozenSeed(keras.random.SeedGenerator):
    """A seed that ``keras.random`` reads without advancing it: every draw gets the same value."""

    def __init__(self, value):  # no SeedGenerator.__init__: no new state variable
        self._value = value
        self._initial_seed = 0  # seeded, so the torch backend honours it

    def next(self, ordered=True):
        return self._value


class DropoutMasks:
    """One input mask and one recurrent mask per sequence, reused at every step (as in Keras).

    Keras's ``RNN`` creates and resets masks only for its private ``DropoutRNNCell``. Here each
    mask is instead a pure function of the cell's seed state: at every step it is drawn again
    from the *current* state without advancing it, so all steps of a sequence see the same
    mask, also inside the symbolic loops of TensorFlow, JAX and PyTorch. The state advances
    once per sequence, in ``get_initial_state`` (which ``keras.layers.RNN`` calls for every
    batch unless it gets ``initial_state`` or is ``stateful``); call ``new_dropout_masks()``
    yourself in those two cases, or when stepping a cell by hand.

    Needs ``self.seed_generator``, ``self.dropout`` and ``self.recurrent_dropout``.
    """

    def new_dropout_masks(self) -> None:
        """Advance the seed so that the next steps use fresh masks."""
        self.seed_generator.next()

    def dropout_mask(self, like, rate: float, stream: int):
        """Scaled keep-mask shaped like ``like``; stream 0 is the input, 1 the recurrent mask."""
        state = self.seed_generator.state.value
        seed = state * ops.convert_to_tensor([1, 2], dtype=state.dtype) + ops.convert_to_tensor(
            [0, stream], dtype=state.dtype
        )
        return keras.random.dropout(ops.ones_like(like), rate=rate, seed=_FrozenSeed(seed))

    def drop_inputs(self, inputs, training):
        if not training or self.dropout == 0.0:
            return inputs
        return inputs * self.dropout_mask(inputs, self.dropout, 0)

    def drop_recurrent(self, h_tm1, training):
        if not training or self.recurrent_dropout == 0.0:
            return h_tm1
        return h_tm1 * self.dropout_mask(h_tm1, self.recurrent_dropout, 1)


# ---------------------------------------------------------------------------------------------
# base cells


def _serialize(kind: str, value: Any) -> Any:
    return getattr(keras, kind).serialize(value)


_OBJECT_ARGS = {  # constructor argument -> keras module that gets / serialises it
    "activation": "activations",
    "kernel_initializer": "initializers",
    "recurrent_initializer": "initializers",
    "bias_initializer": "initializers",
    "kernel_regularizer": "regularizers",
    "recurrent_regularizer": "regularizers",
    "bias_regularizer": "regularizers",
    "kernel_constraint": "constraints",
    "recurrent_constraint": "constraints",
    "bias_constraint": "constraints",
}


class RecurrentCell(DropoutMasks, keras.layers.Layer):
    """Base of the five cells: fused weights in Keras's layout, config and dropout.

    Subclasses set ``gates`` (G: the kernels hold G blocks of ``units`` columns) and
    ``n_states`` (1 for h, 2 for h and c), and implement ``recurrent_step``.
    """

    cell_name: ClassVar[str] = ""
    gates: ClassVar[int] = 1
    n_states: ClassVar[int] = 1

    def __init__(
        self,
        units,
        activation="tanh",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = check_units(units)
        self.use_bias = check_bool("use_bias", use_bias)
        given = locals()
        for key, module in _OBJECT_ARGS.items():
            setattr(self, key, getattr(keras, module).get(given[key]))
        self.dropout = check_rate("dropout", dropout)
        self.recurrent_dropout = check_rate("recurrent_dropout", recurrent_dropout)
        self.seed = check_seed(seed)
        self.seed_generator = keras.random.SeedGenerator(seed=seed)
        self.state_size = units if self.n_states == 1 else [units] * self.n_states
        self.output_size = units

    # --- weights ---------------------------------------------------------------------------

    def build(self, input_shape):
        super().build(input_shape)
        width = self.gates * self.units
        self.kernel = self.add_weight(
            shape=(input_shape[-1], width),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, width),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=self.bias_shape(),
                name="bias",
                initializer=self.bias_init(),
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        self.build_extra_weights()

    def bias_shape(self) -> tuple[int, ...]:
        return (self.gates * self.units,)

    def bias_init(self):
        return self.bias_initializer

    def build_extra_weights(self) -> None:
        """Hook for weights beyond kernel / recurrent_kernel / bias (peepholes)."""

    @property
    def input_bias(self):
        """The part of the bias added in ``input_projection``."""
        return self.bias

    # --- step --------------------------------------------------------------------------------

    def input_projection(self, x):
        """``x @ kernel + b_in`` for x of shape (B, D) or (B, T, D): every gate at once."""
        z = ops.matmul(x, self.kernel)
        return z + self.input_bias if self.use_bias else z

    def recurrent_step(self, x_proj, states, training=False):
        raise NotImplementedError

    def call(self, inputs, states, training=False):
        x_proj = self.input_projection(self.drop_inputs(inputs, training))
        return self.recurrent_step(x_proj, states, training=training)

    def get_initial_state(self, batch_size=None):
        """Zero states; also starts fresh dropout masks for the coming sequence."""
        if self.dropout or self.recurrent_dropout:
            self.new_dropout_masks()
        return [ops.zeros((batch_size, self.units), dtype=self.compute_dtype)] * self.n_states

    # --- config ------------------------------------------------------------------------------

    def get_config(self):
        config = {
            "units": self.units,
            "use_bias": self.use_bias,
            **{key: _serialize(module, getattr(self, key)) for key, module in _OBJECT_ARGS.items()},
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }
        return {**super().get_config(), **config}


def as_list(states) -> list:
    """States as a list, whether ``RNN`` passed a list or a single-state cell got a bare tensor."""
    return list(states) if isinstance(states, (list, tuple)) else [states]


class GatedCell(RecurrentCell):
    """A cell with sigmoid-like gates: adds ``recurrent_activation``."""

    def __init__(self, units, recurrent_activation="sigmoid", **kwargs):
        super().__init__(units, **kwargs)
        self.recurrent_activation = keras.activations.get(recurrent_activation)

    def get_config(self):
        config = {"recurrent_activation": _serialize("activations", self.recurrent_activation)}
        return {**super().get_config(), **config}


class MemoryCell(GatedCell):
    """The LSTM family: states (h, c) and a forget gate whose bias may start at 1.

    ``forget_gate`` is the index of the forget gate's block in the fused weights.
    """

    n_states: ClassVar[int] = 2
    forget_gate: ClassVar[int] = 1

    def __init__(self, units, unit_forget_bias=True, **kwargs):
        super().__init__(units, **kwargs)
        self.unit_forget_bias = check_bool("unit_forget_bias", unit_forget_bias)

    def bias_init(self):
        """As Keras: ``bias_initializer`` for every block but the forget gate's, which gets 1."""
        if not self.unit_forget_bias:
            return self.bias_initializer
        before, after = self.forget_gate * self.units, (self.gates - 1 - self.forget_gate) * self.units

        def init(_, *args, **kwargs):
            parts = [self.bias_initializer((before,), *args, **kwargs)] if before else []
            parts.append(keras.initializers.get("ones")((self.units,), *args, **kwargs))
            if after:
                parts.append(self.bias_initializer((after,), *args, **kwargs))
            return ops.concatenate(parts)

        return init

    def get_config(self):
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}
