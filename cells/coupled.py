"""The coupled input-forget gate LSTM, CIFG (Greff et al. 2017, "LSTM: A Search Space Odyssey")."""

from __future__ import annotations

from keras import ops

from cells.base import MemoryCell, register


@register("coupled", "cifg")
class CoupledLSTMCell(MemoryCell):
    """CIFG LSTM: no input gate; the forget gate f also admits the new content with 1 − f.

    Equations (σ = ``recurrent_activation``, tanh = ``activation``)::

        f_t = σ(x_t W_f + h_{t-1} U_f + b_f)
        g_t = tanh(x_t W_c + h_{t-1} U_c + b_c)
        o_t = σ(x_t W_o + h_{t-1} U_o + b_o)
        c_t = f_t ⊙ c_{t-1} + (1 − f_t) ⊙ g_t
        h_t = o_t ⊙ tanh(c_t)

    It is an LSTM step with i_t = 1 − f_t. Weights: gate order f, c, o — ``kernel``
    (D, 3·units), ``recurrent_kernel`` (units, 3·units), ``bias`` (3·units,); with
    ``unit_forget_bias`` the f block of the bias starts at 1. States: ``[h, c]``.

    Args: as ``LSTMCell``.

    Example:
        >>> import keras, cells
        >>> layer = keras.layers.RNN(cells.CoupledLSTMCell(8))
    """

    gates = 3
    forget_gate = 0

    def recurrent_step(self, x_proj, states, training=False):
        h_tm1, c_tm1 = states
        z = x_proj + ops.matmul(self.drop_recurrent(h_tm1, training), self.recurrent_kernel)
        z_f, z_c, z_o = ops.split(z, 3, axis=-1)
        f = self.recurrent_activation(z_f)
        c = f * c_tm1 + (1.0 - f) * self.activation(z_c)
        h = self.recurrent_activation(z_o) * self.activation(c)
        return h, [h, c]
