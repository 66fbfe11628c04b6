"""The LSTM cell (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000)."""

from __future__ import annotations

from keras import ops

from cells.base import MemoryCell, register


@register("lstm")
class LSTMCell(MemoryCell):
    """LSTM: input, forget and output gates around a cell state c.

    Equations (σ = ``recurrent_activation``, tanh = ``activation``)::

        i_t = σ(x_t W_i + h_{t-1} U_i + b_i)
        f_t = σ(x_t W_f + h_{t-1} U_f + b_f)
        g_t = tanh(x_t W_c + h_{t-1} U_c + b_c)
        o_t = σ(x_t W_o + h_{t-1} U_o + b_o)
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
        h_t = o_t ⊙ tanh(c_t)

    Weights as ``keras.layers.LSTMCell``, gate order i, f, c, o: ``kernel`` (D, 4·units),
    ``recurrent_kernel`` (units, 4·units), ``bias`` (4·units,). With ``unit_forget_bias`` the
    forget block of the bias starts at 1. States: ``[h, c]``.

    Args:
        units: size of h and c (> 0).
        unit_forget_bias: start b_f at 1 (as Keras).
        activation, recurrent_activation, use_bias, initializers, regularizers, constraints,
        dropout, recurrent_dropout, seed: as ``VanillaRNNCell`` and Keras's cells.

    Example:
        >>> import keras, cells
        >>> layer = keras.layers.RNN(cells.LSTMCell(8), return_state=True)
    """

    gates = 4

    def recurrent_step(self, x_proj, states, training=False):
        h_tm1, c_tm1 = states
        z = x_proj + ops.matmul(self.drop_recurrent(h_tm1, training), self.recurrent_kernel)
        z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
        i = self.recurrent_activation(z_i)
        f = self.recurrent_activation(z_f)
        c = f * c_tm1 + i * self.activation(z_c)
        h = self.recurrent_activation(z_o) * self.activation(c)
        return h, [h, c]
