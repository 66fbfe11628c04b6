"""NumPy references of the five cells, written from the equations in their docstrings.

Weights come as a dict keyed like the cells' weights (``kernel``, ``recurrent_kernel``, ``bias``,
``*_peephole_weights``); gate order as Keras (LSTM i, f, c, o; CIFG f, c, o; GRU z, r, h).
"""

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _affine(x, h, w, gates):
    """Per-gate pre-activations x W_k + h U_k + b_k, split into `gates` blocks."""
    z = x @ w["kernel"] + h @ w["recurrent_kernel"] + w.get("bias", 0.0)
    return np.split(z, gates, axis=-1)


def vanilla(x, states, w):
    (h_tm1,) = states
    h = np.tanh(x @ w["kernel"] + h_tm1 @ w["recurrent_kernel"] + w.get("bias", 0.0))
    return h, [h]


def lstm(x, states, w, input_gate=None):
    """LSTM step; `input_gate(f)` replaces i when given (i = 1 − f gives CIFG)."""
    h_tm1, c_tm1 = states
    z_i, z_f, z_c, z_o = _affine(x, h_tm1, w, 4)
    f = sigmoid(z_f)
    i = sigmoid(z_i) if input_gate is None else input_gate(f)
    c = f * c_tm1 + i * np.tanh(z_c)
    h = sigmoid(z_o) * np.tanh(c)
    return h, [h, c]


def peephole(x, states, w):
    h_tm1, c_tm1 = states
    z_i, z_f, z_c, z_o = _affine(x, h_tm1, w, 4)
    i = sigmoid(z_i + w["input_gate_peephole_weights"] * c_tm1)
    f = sigmoid(z_f + w["forget_gate_peephole_weights"] * c_tm1)
    c = f * c_tm1 + i * np.tanh(z_c)
    o = sigmoid(z_o + w["output_gate_peephole_weights"] * c)
    h = o * np.tanh(c)
    return h, [h, c]


def coupled(x, states, w):
    h_tm1, c_tm1 = states
    z_f, z_c, z_o = _affine(x, h_tm1, w, 3)
    f = sigmoid(z_f)
    c = f * c_tm1 + (1.0 - f) * np.tanh(z_c)
    h = sigmoid(z_o) * np.tanh(c)
    return h, [h, c]


def gru(x, states, w, reset_after=True):
    (h_tm1,) = states
    W, U = w["kernel"], w["recurrent_kernel"]
    b = w.get("bias", np.zeros((2, W.shape[1]) if reset_after else W.shape[1]))
    b_x, b_h = (b[0], b[1]) if reset_after else (b, np.zeros_like(b))
    W_z, W_r, W_h = np.split(W, 3, axis=1)
    U_z, U_r, U_h = np.split(U, 3, axis=1)
    bx_z, bx_r, bx_h = np.split(b_x, 3)
    bh_z, bh_r, bh_h = np.split(b_h, 3)
    z = sigmoid(x @ W_z + bx_z + h_tm1 @ U_z + bh_z)
    r = sigmoid(x @ W_r + bx_r + h_tm1 @ U_r + bh_r)
    if reset_after:
        candidate = np.tanh(x @ W_h + bx_h + r * (h_tm1 @ U_h + bh_h))
    else:
        candidate = np.tanh(x @ W_h + bx_h + (r * h_tm1) @ U_h)
    h = z * h_tm1 + (1.0 - z) * candidate
    return h, [h]


STEPS = {"vanilla": vanilla, "lstm": lstm, "peephole": peephole, "coupled": coupled, "gru": gru}


def run(step, xs, states, w, mask=None):
    """Scan `step` over xs (B, T, D); masked steps keep states and repeat the last output."""
    outputs, output = [], np.zeros_like(states[0])
    for t in range(xs.shape[1]):
        new_output, new_states = step(xs[:, t], states, w)
        keep = np.ones((xs.shape[0], 1), bool) if mask is None else mask[:, t : t + 1]
        output = np.where(keep, new_output, output)
        states = [np.where(keep, new, old) for new, old in zip(new_states, states)]
        outputs.append(output)
    return np.stack(outputs, axis=1), states


# --- helpers shared by the tests (numpy in, numpy out) -------------------------------------------


def randomize(layer, seed=0, scale=0.5):
    """Set every weight of a built layer to N(0, scale²) values; return them as {name: array}."""
    rng = np.random.default_rng(seed)
    values = [rng.normal(0.0, scale, w.shape).astype("float32") for w in layer.weights]
    layer.set_weights(values)
    return {w.name: v for w, v in zip(layer.weights, values)}


def sequence(batch=3, steps=5, dim=4, seed=1):
    return np.random.default_rng(seed).normal(size=(batch, steps, dim)).astype("float32")


def ragged_mask(batch=3, steps=5):
    """Post-padding mask: row b keeps its first `steps - 2b` steps (at least one)."""
    lengths = np.maximum(steps - 2 * np.arange(batch), 1)
    return np.arange(steps)[None, :] < lengths[:, None]
