"""The vanilla (Elman) recurrent cell."""

from __future__ import annotations

from cells.base import RecurrentCell, as_list, register


@register("vanilla", "simple", "rnn")
class VanillaRNNCell(RecurrentCell):
    """Vanilla tanh RNN: h_t = tanh(W x_t + U h_{t-1} + b).

    Equations (``activation`` defaults to tanh)::

        h_t = activation(x_t W + h_{t-1} U + b)

    Weights as ``keras.layers.SimpleRNNCell``: ``kernel`` (D, units), ``recurrent_kernel``
    (units, units), ``bias`` (units,). State: ``[h]``.

    Args:
        units: size of h (> 0).
        activation, use_bias, kernel/recurrent/bias_initializer, kernel/recurrent/bias_regularizer,
        kernel/recurrent/bias_constraint: as in Keras's cells.
        dropout, recurrent_dropout: rates in [0, 1) of the input and recurrent masks (one mask
            each per sequence, only when ``training=True``).
        seed: seed of the dropout masks.

    Example:
        >>> import keras, cells
        >>> layer = keras.layers.RNN(cells.VanillaRNNCell(8), return_sequences=True)
    """

    gates = 1

    def recurrent_step(self, x_proj, states, training=False):
        (h_tm1,) = as_list(states)
        h = self.activation(x_proj + self.drop_recurrent(h_tm1, training) @ self.recurrent_kernel)
        return h, [h] if isinstance(states, (list, tuple)) else h
