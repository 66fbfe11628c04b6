"""Two levers tried for issue 14, measured side by side (TensorFlow, B=64, T=100, D=32).

    python -m benchmarks.levers              # ≈ 10 min on a loaded 2-core machine
    python -m benchmarks.levers --part dU    # or --part peephole; writes benchmarks/levers.md

* ``dU`` — the weight gradient of the recurrent kernel over all steps in one product.
  ``loop``: the tape's gradient through the time loop (TensorFlow accumulates
  dU += h_{t-1}ᵀ δ_t inside the loop's gradient, T small products). ``one product``: the loop
  runs on ``stop_gradient(U)``, and dU = Σ_t h_{t-1}ᵀ δ_t is one (U × B·T)·(B·T × 4U) product,
  with δ_t = ∂L/∂z_t read off the hoisted input projection (exact for the LSTM, where
  z_t = x_t W + b + h_{t-1} U; checked against ``loop`` before timing). Forward and gradient
  only (no optimizer): the upper bound of what the lever can save in a training step.
* ``peephole`` — exact reformulations of the peephole step against our LSTM at units = 64,
  as `keras.layers.RNN(cell)` training steps and inference: ``current`` (cells/peephole.py),
  ``fold i,f`` (the i and f peepholes folded into the recurrent product,
  [h, c]·[[U], [diag p_i, diag p_f, 0, 0]]), ``fuse i,f`` (one sigmoid over the i, f block with
  one multiply by [c, c]).

Each case is timed for ≥ 0.2 s per round, rounds interleaved; both wall time and the process's
CPU time are recorded (on a machine shared with other jobs the CPU time is the steadier of
the two), and ratios are taken round by round.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
B, T, D = 64, 100, 32


def per_call(fn, min_seconds: float = 0.2) -> tuple[float, float]:
    """(wall, CPU) seconds per call of `fn`, repeated for ≥ `min_seconds` of wall time."""
    calls, wall, cpu = 0, time.perf_counter(), time.process_time()
    while True:
        fn()
        calls += 1
        if time.perf_counter() - wall >= min_seconds:
            return (time.perf_counter() - wall) / calls, (time.process_time() - cpu) / calls


def interleaved(functions: dict, rounds: int) -> dict:
    """{name: [(wall, cpu), ...]} over `rounds` round-robin rounds, after two warm-up calls."""
    for fn in functions.values():
        fn()
        fn()
    samples = {name: [] for name in functions}
    for _ in range(rounds):
        for name, fn in functions.items():
            samples[name].append(per_call(fn))
    return samples


def ratio_rows(samples: dict, base: str, **fields) -> list[dict]:
    """Per case: median ms, and min–median–max of its round-by-round ratio to `base`."""
    rows = []
    for name, found in samples.items():
        row = {**fields, "case": name, "ms": statistics.median(w for w, _ in found) * 1e3}
        for i, clock in enumerate(("wall", "cpu")):
            ratios = [a[i] / b[i] for a, b in zip(found, samples[base], strict=True)]
            row[clock] = f"{min(ratios):.2f}–{statistics.median(ratios):.2f}–{max(ratios):.2f}"
        rows.append(row)
    return rows


def du_functions(units: int = 128):
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(B, T, D)).astype("float32"))
    y = tf.constant(rng.normal(size=(B, 1)).astype("float32"))
    w = tf.Variable(rng.normal(size=(D, 4 * units)).astype("float32") * 0.1)
    u = tf.Variable(rng.normal(size=(units, 4 * units)).astype("float32") * 0.05)
    b = tf.Variable(np.zeros(4 * units, "float32"))
    v = tf.Variable(rng.normal(size=(units, 1)).astype("float32") * 0.1)

    def loop(z_in, kernel):  # (B, T, 4U) -> h for every step, time-major (T, B, U)
        def step(carry, z_t):
            h, c = carry
            i, f, g, o = tf.split(z_t + h @ kernel, 4, -1)
            c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
            return tf.sigmoid(o) * tf.tanh(c), c

        zero = tf.zeros((B, units))
        return tf.scan(step, tf.transpose(z_in, [1, 0, 2]), initializer=(zero, zero))[0]

    def loss_of(hs):
        return tf.reduce_mean((hs[-1] @ v - y) ** 2)

    @tf.function
    def through_loop():
        with tf.GradientTape() as tape:
            loss = loss_of(loop(x @ w + b, u))
        return tape.gradient(loss, [w, u, b, v])

    @tf.function
    def one_product():
        with tf.GradientTape() as tape:
            z_in = x @ w + b
            hs = loop(z_in, tf.stop_gradient(u))
            loss = loss_of(hs)
        dw, db, dv, dz = tape.gradient(loss, [w, b, v, z_in])
        h_prev = tf.reshape(tf.concat([tf.zeros((1, B, units)), hs[:-1]], 0), (T * B, units))
        dz = tf.reshape(tf.transpose(dz, [1, 0, 2]), (T * B, 4 * units))
        return [dw, tf.matmul(h_prev, dz, transpose_a=True), db, dv]

    for got, want in zip(one_product(), through_loop(), strict=True):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=2e-4, atol=2e-6)
    return {"loop": through_loop, "one product": one_product}


def peephole_cells(units: int):
    from keras import ops

    import cells

    class FoldIF(cells.PeepholeLSTMCell):
        def recurrent_step(self, x_proj, states, training=False):
            h_tm1, c_tm1 = states
            n = self.units
            peep = ops.concatenate(
                [ops.diag(self.input_gate_peephole_weights),
                 ops.diag(self.forget_gate_peephole_weights), ops.zeros((n, 2 * n))], axis=1)
            kernel = ops.concatenate([self.recurrent_kernel, peep], axis=0)
            hc = ops.concatenate([self.drop_recurrent(h_tm1, training), c_tm1], -1)
            z_i, z_f, z_c, z_o = ops.split(x_proj + ops.matmul(hc, kernel), 4, axis=-1)
            c = self.recurrent_activation(z_f) * c_tm1 + self.recurrent_activation(
                z_i) * self.activation(z_c)
            o = self.recurrent_activation(z_o + self.output_gate_peephole_weights * c)
            h = o * self.activation(c)
            return h, [h, c]

    class FuseIF(cells.PeepholeLSTMCell):
        def recurrent_step(self, x_proj, states, training=False):
            h_tm1, c_tm1 = states
            n = self.units
            z = x_proj + ops.matmul(self.drop_recurrent(h_tm1, training), self.recurrent_kernel)
            z_if, z_c, z_o = ops.split(z, [2 * n, 3 * n], axis=-1)
            p_if = ops.concatenate(
                [self.input_gate_peephole_weights, self.forget_gate_peephole_weights])
            i, f = ops.split(
                self.recurrent_activation(z_if + p_if * ops.concatenate([c_tm1, c_tm1], -1)), 2, -1)
            c = f * c_tm1 + i * self.activation(z_c)
            o = self.recurrent_activation(z_o + self.output_gate_peephole_weights * c)
            h = o * self.activation(c)
            return h, [h, c]

    return {"our lstm": cells.LSTMCell, "current": cells.PeepholeLSTMCell, "fold i,f": FoldIF,
            "fuse i,f": FuseIF}


def peephole_functions(units: int = 64):
    import keras

    rng = np.random.default_rng(0)
    x = rng.normal(size=(B, T, D)).astype("float32")
    y = rng.normal(size=(B, 1)).astype("float32")
    models = {}
    for name, cell in peephole_cells(units).items():
        seq = keras.Input((T, D), batch_size=B)
        model = keras.Model(seq, keras.layers.Dense(1)(keras.layers.RNN(cell(units))(seq)))
        model.compile(optimizer="adam", loss="mse", jit_compile=False)
        models[name] = model
    for name, model in models.items():  # exact: same weights, same outputs as the current cell
        if name not in ("our lstm", "current"):
            model.set_weights(models["current"].get_weights())
            np.testing.assert_allclose(model.predict_on_batch(x),
                                       models["current"].predict_on_batch(x), atol=1e-6)
    return {
        kind: {name: (lambda m=m: m.train_on_batch(x, y)) if kind == "train"
               else (lambda m=m: m.predict_on_batch(x)) for name, m in models.items()}
        for kind in ("train", "infer")
    }


def markdown(rows: list[dict], header: str) -> str:
    cols = ["part", "kind", "case", "ms", "wall", "cpu"]
    title = ("| part | kind | case | ms (median wall) | / base, wall (min–median–max) "
             "| / base, CPU time |")
    lines = [header, "", title, "|---|---|---|---|---|---|"]
    for row in rows:
        values = [row[c] if c != "ms" else f"{row[c]:.1f}" for c in cols]
        lines.append("| " + " | ".join(map(str, values)) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("dU", "peephole", "all"), default="all")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--output", type=Path, default=HERE / "levers.md")
    args = parser.parse_args(argv)
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    load, start, rows = os.getloadavg()[0], time.perf_counter(), []
    if args.part in ("dU", "all"):
        samples = interleaved(du_functions(), args.rounds)
        rows += ratio_rows(samples, "loop", part="dU, LSTM u=128", kind="fwd+grad")
    if args.part in ("peephole", "all"):
        for kind, functions in peephole_functions().items():
            samples = interleaved(functions, args.rounds)
            rows += ratio_rows(samples, "our lstm", part="peephole u=64", kind=kind)
    from benchmarks.run import machine

    m = machine()
    header = (
        f"Measured by `python -m benchmarks.levers --part {args.part}` on "
        f"{time.strftime('%Y-%m-%d %H:%M')} in {(time.perf_counter() - start) / 60:.1f} min; "
        f"{m['cpu']}, {m['cores']} cores shared with other jobs, tensorflow "
        f"{m.get('tensorflow')}, keras {m.get('keras')}; load average {load:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after. B=64, T=100, D=32; {args.rounds} interleaved rounds; "
        "ratios round by round to the part's first case."
    )
    text = markdown(rows, header)
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
