"""Designs tried for the CPU target "training step ≤ 0.7× Keras's LSTM", measured side by side.

    python -m benchmarks.variants     # ~5 min on 2 cores; writes benchmarks/variants.md

One LSTM at the target size (TensorFlow, B=64, T=100, D=32, units=128; model, timing and
interleaving as in `benchmarks.cases`), as four layers:

* ``keras``  — `keras.layers.LSTM` (on a CPU the same generic loop over `LSTMCell`);
* ``plain``  — `keras.layers.RNN(cells.LSTMCell)`, the suite's CPU default;
* ``ours``   — `cells.ProjectedRNN(cells.LSTMCell)`, the input projection hoisted out of the loop;
* ``fused``  — `keras.layers.RNN` of an LSTM cell whose step is one product
  `[x_t, h_{t-1}] · [W; U]` instead of two (a design tried here, not shipped in `cells/`);

each with `jit_compile` off and on, and with `unroll=True`. Ratios are to Keras's LSTM with
Keras's CPU defaults (jit off, no unroll).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from benchmarks.cases import seconds_per_call, summarize

HERE = Path(__file__).resolve().parent
LAYERS = ("keras", "plain", "ours", "fused")
SETTINGS = ({"jit": False, "unroll": False}, {"jit": True, "unroll": False},
            {"jit": False, "unroll": True})


def fused_lstm_cell(units: int):
    from keras import ops

    import cells

    class FusedLSTMCell(cells.LSTMCell):
        """LSTM with one matrix product per step on the concatenated [x, h]."""

        def call(self, inputs, states, training=False):
            h_tm1, c_tm1 = states
            kernel = ops.concatenate([self.kernel, self.recurrent_kernel], axis=0)
            z = ops.matmul(ops.concatenate([inputs, h_tm1], axis=-1), kernel) + self.bias
            z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
            i = self.recurrent_activation(z_i)
            f = self.recurrent_activation(z_f)
            c = f * c_tm1 + i * self.activation(z_c)
            h = self.recurrent_activation(z_o) * self.activation(c)
            return h, [h, c]

    return FusedLSTMCell(units)


def layer(name: str, units: int, unroll: bool):
    import keras

    import cells

    if name == "keras":
        return keras.layers.LSTM(units, unroll=unroll)
    if name == "ours":
        return cells.ProjectedRNN(cells.LSTMCell(units), unroll=unroll)
    cell = cells.LSTMCell(units) if name == "plain" else fused_lstm_cell(units)
    return keras.layers.RNN(cell, unroll=unroll)


def measure(rounds: int, steps: int = 100, units: int = 128, batch: int = 64) -> list[dict]:
    import keras

    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, steps, 32)).astype("float32")
    y = rng.normal(size=(batch, 1)).astype("float32")
    models = {}
    for setting in SETTINGS:
        for name in LAYERS:
            seq = keras.Input((steps, 32), batch_size=batch)
            model = keras.Model(seq, keras.layers.Dense(1)(layer(name, units, setting["unroll"])(seq)))
            model.compile(optimizer="adam", loss="mse", jit_compile=setting["jit"])
            start = time.perf_counter()
            for _ in range(2):
                model.train_on_batch(x, y)
                model.predict_on_batch(x)
            models[name, setting["jit"], setting["unroll"]] = (model, time.perf_counter() - start)
    samples = {key: {"train": [], "infer": []} for key in models}
    for _ in range(rounds):  # interleaved: every round times every case once
        for key, (model, _) in models.items():
            samples[key]["train"].append(seconds_per_call(lambda m=model: m.train_on_batch(x, y), 0.3))
            samples[key]["infer"].append(seconds_per_call(lambda m=model: m.predict_on_batch(x), 0.2))
    return [
        {"layer": name, "jit": jit, "unroll": unroll, "kind": kind, "compile_s": models[key][1],
         **summarize(found)}
        for key in models for kind, found in samples[key].items()
        for name, jit, unroll in [key]
    ]


def markdown(rows: list[dict], header: str) -> str:
    base = {r["kind"]: r["median_s"] for r in rows
            if (r["layer"], r["jit"], r["unroll"]) == ("keras", False, False)}
    lines = [header, "", "| layer | jit | unroll | kind | ms (IQR) | / keras default | compile s |",
             "|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["kind"] != "train", r["jit"], r["unroll"])):
        lines.append(
            f"| {r['layer']} | {r['jit']} | {r['unroll']} | {r['kind']} | "
            f"{r['median_s'] * 1e3:.1f} ± {r['iqr_s'] * 1e3:.1f} | "
            f"{r['median_s'] / base[r['kind']]:.2f} | {r['compile_s']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--output", type=Path, default=HERE / "variants.md")
    args = parser.parse_args(argv)
    from benchmarks.run import machine

    load, start = os.getloadavg(), time.perf_counter()
    rows = measure(args.rounds)
    m = machine()
    header = (
        f"Measured by `python -m benchmarks.variants` in {(time.perf_counter() - start) / 60:.1f} "
        f"min on {m['cpu']}, {m['cores']} cores, tensorflow {m.get('tensorflow')}, keras "
        f"{m.get('keras')}; load average {load[0]:.2f} before, {os.getloadavg()[0]:.2f} after. "
        f"LSTM, B=64, T=100, D=32, units=128; median ± IQR of {args.rounds} interleaved rounds."
    )
    text = markdown(rows, header)
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
