"""The gated recurrent unit (Cho et al. 2014), in Keras's convention."""

from __future__ import annotations

from keras import ops

from cells.base import GatedCell, as_list, check_bool, register


@register("gru")
class GRUCell(GatedCell):
    """GRU: update gate z and reset gate r around a candidate state h̃.

    Equations (σ = ``recurrent_activation``, tanh = ``activation``)::

        z_t = σ(x_t W_z + h_{t-1} U_z + b_z)
        r_t = σ(x_t W_r + h_{t-1} U_r + b_r)
        h̃_t = tanh(x_t W_h + r_t ⊙ (h_{t-1} U_h + b'_h) + b_h)   # reset_after=True (default)
        h̃_t = tanh(x_t W_h + (r_t ⊙ h_{t-1}) U_h + b_h)         # reset_after=False
        h_t = z_t ⊙ h_{t-1} + (1 − z_t) ⊙ h̃_t

    As in Keras, z_t keeps the old state; Cho et al. and many tutorials swap z_t and 1 − z_t
    (h_t = (1 − z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t), which is the same model with z negated.

    Weights as ``keras.layers.GRUCell``, gate order z, r, h: ``kernel`` (D, 3·units),
    ``recurrent_kernel`` (units, 3·units), ``bias`` (3·units,) or, with ``reset_after``,
    (2, 3·units): row 0 the input bias b, row 1 the recurrent bias b'. State: ``[h]``.

    Args:
        reset_after: apply r after the recurrent matmul (True, cuDNN-compatible) or before.
        others: as ``VanillaRNNCell`` plus ``recurrent_activation``.

    Example:
        >>> import keras, cells
        >>> layer = keras.layers.RNN(cells.GRUCell(8, reset_after=False))
    """

    gates = 3

    def __init__(self, units, reset_after=True, **kwargs):
        super().__init__(units, **kwargs)
        self.reset_after = check_bool("reset_after", reset_after)

    def bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    @property
    def input_bias(self):
        return self.bias[0] if self.reset_after else self.bias

    def recurrent_step(self, x_proj, states, training=False):
        (h_tm1,) = as_list(states)
        h_dropped = self.drop_recurrent(h_tm1, training)
        x_z, x_r, x_h = ops.split(x_proj, 3, axis=-1)
        if self.reset_after:
            inner = ops.matmul(h_dropped, self.recurrent_kernel)
            if self.use_bias:
                inner = inner + self.bias[1]
        else:
            inner = ops.matmul(h_dropped, self.recurrent_kernel[:, : 2 * self.units])
        u = self.units
        z = self.recurrent_activation(x_z + inner[:, :u])
        r = self.recurrent_activation(x_r + inner[:, u : 2 * u])
        if self.reset_after:
            recurrent_h = r * inner[:, 2 * u :]
        else:
            recurrent_h = ops.matmul(r * h_dropped, self.recurrent_kernel[:, 2 * u :])
        h = z * h_tm1 + (1.0 - z) * self.activation(x_h + recurrent_h)
        return h, [h] if isinstance(states, (list, tuple)) else h

    def get_config(self):
        return {**super().get_config(), "reset_after": self.reset_after}
