"""The peephole LSTM cell (Gers & Schmidhuber 2000)."""

from __future__ import annotations

from keras import ops

from cells.base import MemoryCell, register

PEEPHOLES = ("input_gate_peephole", "forget_gate_peephole", "output_gate_peephole")


@register("peephole", "peephole_lstm")
class PeepholeLSTMCell(MemoryCell):
    """Peephole LSTM: the gates also look at the cell state through diagonal weights.

    Equations (σ = ``recurrent_activation``, tanh = ``activation``; p_* are vectors)::

        i_t = σ(x_t W_i + h_{t-1} U_i + p_i ⊙ c_{t-1} + b_i)
        f_t = σ(x_t W_f + h_{t-1} U_f + p_f ⊙ c_{t-1} + b_f)
        g_t = tanh(x_t W_c + h_{t-1} U_c + b_c)
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
        o_t = σ(x_t W_o + h_{t-1} U_o + p_o ⊙ c_t + b_o)
        h_t = o_t ⊙ tanh(c_t)

    Weights as ``LSTMCell`` (gate order i, f, c, o) plus ``input_gate_peephole_weights``,
    ``forget_gate_peephole_weights`` and ``output_gate_peephole_weights``, each (units,) and
    initialised with ``kernel_initializer`` (as tf.keras's former PeepholeLSTMCell). With zero
    peepholes it is the LSTM. States: ``[h, c]``.

    Args: as ``LSTMCell``.

    Example:
        >>> import keras, cells
        >>> layer = keras.layers.RNN(cells.PeepholeLSTMCell(8))
    """

    gates = 4

    def build_extra_weights(self):
        for name in PEEPHOLES:
            weight = self.add_weight(
                shape=(self.units,), name=f"{name}_weights", initializer=self.kernel_initializer
            )
            setattr(self, f"{name}_weights", weight)

    def recurrent_step(self, x_proj, states, training=False):
        h_tm1, c_tm1 = states
        z = x_proj + ops.matmul(self.drop_recurrent(h_tm1, training), self.recurrent_kernel)
        z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
        i = self.recurrent_activation(z_i + self.input_gate_peephole_weights * c_tm1)
        f = self.recurrent_activation(z_f + self.forget_gate_peephole_weights * c_tm1)
        c = f * c_tm1 + i * self.activation(z_c)
        o = self.recurrent_activation(z_o + self.output_gate_peephole_weights * c)
        h = o * self.activation(c)
        return h, [h, c]
