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
`recurrent_step(x_proj, states, training=False)`, and for input dropout
`dropout_mask(like, rate, stream)` (all cells in `cells/` do). The input mask is
the same at every step of a sequence, so it is applied to the whole sequence
before the projection; the recurrent mask stays inside `recurrent_step`.
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
        projected = cell.input_projection(self._drop_inputs(sequences, training))
        loop = keras.layers.RNN(
            _RecurrentStep(cell, training),
            return_sequences=self.return_sequences,
            go_backwards=self.go_backwards,
            stateful=self.stateful,
            unroll=self.unroll,
            zero_output_for_mask=self.zero_output_for_mask,
            name=f"{self.name}_loop",
        )
        return loop.inner_loop(projected, initial_state, mask)

    def _drop_inputs(self, sequences, training):
        """Multiply every step by the one input-dropout mask the cell uses for this sequence.

        The mask is drawn shaped like one step, (B, D), exactly as the cell draws it at
        every step of the plain loop, then broadcast over time.
        """
        if not training or not getattr(self.cell, "dropout", 0):
            return sequences
        mask = self.cell.dropout_mask(sequences[:, 0, :], self.cell.dropout, 0)
        return sequences * keras.ops.expand_dims(mask, 1)
