"""A recurrent layer that projects the inputs of the whole sequence at once.

A cell step does two kinds of work:

    z_t = x_t · W + b          (input projection: no dependence on t-1)
    h_t, s_t = step(z_t, h_{t-1}, s_{t-1})   (h_{t-1} · U, the gates)

`keras.layers.RNN(cell)` does both inside the time loop, T small matrix products
of B rows each. `ProjectedRNN` does the first once, for all B·T rows

    Z = X · W + b              X: (B, T, D) → Z: (B, T, G)

and runs only `cell.recurrent_step` inside the loop. The result is the same
function of the same weights; only the order of the float operations changes.

The cell must provide `input_projection(x)` and
`recurrent_step(x_proj, states, training=False)` (all cells in `cells/` do).
Input dropout uses one mask per sequence (the same for every step), so it is
applied to the whole sequence before the projection.
"""

import keras

__all__ = ["ProjectedRNN"]

_REQUIRED = ("input_projection", "recurrent_step")


class _RecurrentStep:
    """The part of a cell that stays in the loop, in the shape `RNN` calls a cell.

    Not a Layer: it owns no weights (they stay on `cell`), and `training` is
    fixed when it is made, once per call of the outer layer.
    """

    def __init__(self, cell, training):
        self.cell = cell
        self.training = training
        self.state_size = cell.state_size
        self.output_size = getattr(cell, "output_size", None)

    def call(self, x_proj, states):
        return self.cell.recurrent_step(x_proj, states, training=self.training)

    __call__ = call


@keras.saving.register_keras_serializable(package="rnnlab")
class ProjectedRNN(keras.layers.RNN):
    """`keras.layers.RNN` whose time loop sees inputs already projected by `W`.

    Takes the arguments of `keras.layers.RNN` (`return_sequences`,
    `return_state`, `go_backwards`, `stateful`, `unroll`,
    `zero_output_for_mask`, ...) and gives the same outputs, states and
    gradients as `keras.layers.RNN(cell, ...)` up to float rounding.

    Args:
        cell: a cell with `input_projection` and `recurrent_step`, e.g.
            `cells.get("lstm", units=64)`.

    Example:

    ```python
    layer = ProjectedRNN(cells.get("gru", units=64), return_sequences=True)
    y = layer(np.zeros((8, 20, 16), "float32"))   # (8, 20, 64)
    ```
    """

    def __init__(self, cell, **kwargs):
        missing = [name for name in _REQUIRED if not callable(getattr(cell, name, None))]
        if missing:
            raise ValueError(
                f"ProjectedRNN needs a cell with {' and '.join(_REQUIRED)}; "
                f"{type(cell).__name__} lacks {', '.join(missing)}. "
                "Use keras.layers.RNN(cell) for other cells."
            )
        super().__init__(cell, **kwargs)

    def inner_loop(self, sequences, initial_state, mask, training=False):
        cell = self.cell
        if training:
            sequences = self._drop_inputs(sequences)
            self._prepare_recurrent_dropout(initial_state)
        projected = cell.input_projection(sequences)
        loop = keras.layers.RNN(
            _RecurrentStep(cell, training),
            return_sequences=self.return_sequences,
            go_backwards=self.go_backwards,
            stateful=self.stateful,
            unroll=self.unroll,
            zero_output_for_mask=self.zero_output_for_mask,
            name=f"{self.name}_loop",
        )
        try:
            return loop.inner_loop(projected, initial_state, mask)
        finally:
            for name in ("reset_dropout_mask", "reset_recurrent_dropout_mask"):
                getattr(cell, name, lambda: None)()

    def _drop_inputs(self, sequences):
        """Multiply every step by the cell's one input-dropout mask."""
        if not getattr(self.cell, "dropout", 0):
            return sequences
        mask = self.cell.get_dropout_mask(sequences[:, 0, :])
        return sequences * keras.ops.expand_dims(mask, 1)

    def _prepare_recurrent_dropout(self, initial_state):
        """Draw the recurrent mask before the loop, in the order the plain cell call does.

        Drawing it outside the loop keeps the loop body free of random ops (TF graphs,
        JAX tracing) and the draws in the same order as `RNN(cell)`: input mask first.
        """
        if getattr(self.cell, "recurrent_dropout", 0):
            state = initial_state[0] if isinstance(initial_state, (list, tuple)) else initial_state
            self.cell.get_recurrent_dropout_mask(state)
