"""XLA on the CPU, a lever for issue 25: one epoch of a study-sized LSTM (40 units, adding T = 100,
3,200 sequences, batch 64) trained with `jit_compile` False and True, side by side and interleaved
in one process, one thread (OMP/TF_NUM_*_THREADS=1 as a `--workers` run has); CPU seconds per
epoch, the loss (same seeds) and the per-round CPU ratio.

    OMP_NUM_THREADS=1 TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 python -m benchmarks.xla_step 4

Without op determinism (which makes Keras turn XLA off). Results: benchmarks/study_throughput.md."""
import os
import resource
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras
import numpy as np

from cells.lstm import LSTMCell


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF); return r.ru_utime + r.ru_stime

rng = np.random.default_rng(0)
T, N = 100, 3200
x = np.stack([rng.uniform(size=(N, T)), np.zeros((N, T))], -1).astype("float32")
for row in x: row[rng.choice(T, 2, replace=False), 1] = 1
y = (x[..., 0] * x[..., 1]).sum(1, keepdims=True).astype("float32")

def model(jit):
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((T, 2)), keras.layers.RNN(LSTMCell(40)), keras.layers.Dense(1)])
    m.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse", jit_compile=jit)
    m.fit(x[:64], y[:64], batch_size=64, epochs=1, verbose=0)  # trace/compile outside the timing
    return m

models = {False: model(False), True: model(True)}
times = {False: [], True: []}
for r in range(int(sys.argv[1]) if len(sys.argv) > 1 else 4):
    for jit in (False, True):
        c0, w0 = cpu(), time.perf_counter()
        h = models[jit].fit(x, y, batch_size=64, epochs=1, verbose=0)
        times[jit].append((cpu() - c0, time.perf_counter() - w0, h.history["loss"][-1]))
for jit in (False, True):
    print("jit", jit, "cpu s", [round(t[0], 2) for t in times[jit]], "wall s", [round(t[1], 2) for t in times[jit]], "loss", [round(t[2], 4) for t in times[jit]])
ratios = [a[0] / b[0] for a, b in zip(times[False], times[True])]
print("cpu ratio nojit/jit per round", [round(r, 2) for r in ratios])
