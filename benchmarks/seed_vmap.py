"""Several seeds of one configuration as ONE vmapped JAX training step: what it gains, whether exact.

Issue 25's "model ensembling by vmap" lever in its batched form. `benchmarks/seed_ensemble.py`
measured the block-diagonal TensorFlow form (one model of S·H units: 5× the arithmetic, no gain).
Here each seed keeps its own weights, stacked along a new leading axis, and one jitted training
step is `jax.vmap`ped over the S seeds' (trainable variables, non-trainable variables, optimizer
variables, batch): Keras 3's stateless API (`model.stateless_call`, `model.stateless_compute_loss`
for the compiled loss, `optimizer.stateless_apply`), so XLA sees batched products with no wasted
arithmetic. Any cell works unchanged: the model is the one `experiments.run` builds; only the
values of its variables are swapped in.

Per cell, on the fair study's adding problem (`seed_ensemble.member_configs`: T = 100, each cell's
tuned learning rate, seeds 0..S-1, `--epochs` epochs, `train.clipnorm` off for the reasons given
in `seed_ensemble`), back to back since the machine is shared:

  (a) `tf`:   S standalone `model.fit` runs as `experiments.run` builds them, KERAS_BACKEND=tensorflow
              (today's runs per hour);
  (b) `jax`:  the same S runs under KERAS_BACKEND=jax (`model.fit`, its step jitted);
  (c) `vmap`: the S seeds as one vmapped, jitted step, each seed started from exactly its (b)
              model's initial weights (read from (b)'s file) and fed its own batches, in the order
              `model.fit` draws them (each seed's tf.data split iterated once per epoch, after the
              one batch that `fit` of a fresh model draws to build its loss and metrics).

A backend is fixed at import, so each of (a), (b), (c) is this script again in a subprocess
(`--worker MODE`), results and weights passed as JSON / npz files in a temporary directory.
Reported: CPU seconds (user + sys of the worker process) and wall seconds of training only
(compilation included, data generation and model building not), the gains as runs-per-hour ratios,
exactness after one step (each seed's weights in (c) against its standalone JAX model after one
`train_on_batch` on the same batch) and each seed's test MSE each way (after many steps rounding
has compounded: compare them as distributions). Run with one thread, as a study lane runs:

    OMP_NUM_THREADS=1 TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 \\
    XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \\
        python -m benchmarks.seed_vmap --epochs 5 --seeds 5

Writes benchmarks/seed_vmap.md (`--output`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.seed_ensemble import (
    arguments,
    cpu_seconds,
    data_of,
    head_commit,
    member_configs,
    standalone,
    write_page,
)

HERE = Path(__file__).resolve().parent
BACKENDS = {"tf": "tensorflow", "jax": "jax", "vmap": "jax"}
STUDY_EPOCHS = 20  # study_fair.yaml's adding runs
THREAD_VARS = ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "XLA_FLAGS")


# --- (c): the S seeds as one vmapped step (under KERAS_BACKEND=jax) -----------------------------


class Vmapped:
    """S seeds of `model`'s architecture trained by one jitted `jax.vmap` of a stateless step.

    `starts[s]` is seed s's `model.get_weights()`; the optimizer starts fresh for every seed
    (`model.optimizer`, built here). `model` itself only lends its structure: the state lives in
    `self.state`, each array with a leading axis of S."""

    def __init__(self, model, starts: list[list[np.ndarray]]):
        import jax

        self.model = model
        model.optimizer.build(model.trainable_variables)
        self.S = len(starts)
        index = {id(v): i for i, v in enumerate(model.weights)}

        def stacked(variables, own=True):
            return [np.stack([start[index[id(v)]] for start in starts])
                    if own and id(v) in index else np.stack([np.asarray(v.value)] * self.S)
                    for v in variables]

        self.state = (stacked(model.trainable_variables), stacked(model.non_trainable_variables),
                      stacked(model.optimizer.variables, own=False))
        metrics = [v.value for v in model.metrics_variables]  # the loss reads them, never keeps them

        def step(trainable, non_trainable, optimizer, x, y):
            def loss_of(trainable, non_trainable):
                y_pred, non_trainable = model.stateless_call(trainable, non_trainable, x,
                                                             training=True)
                loss, _ = model.stateless_compute_loss(trainable, non_trainable, metrics, x=x, y=y,
                                                       y_pred=y_pred)
                return loss, non_trainable

            (loss, non_trainable), grads = jax.value_and_grad(loss_of, has_aux=True)(
                trainable, non_trainable)
            trainable, optimizer = model.optimizer.stateless_apply(optimizer, grads, trainable)
            return (trainable, non_trainable, optimizer), loss

        self._step = jax.jit(jax.vmap(step))

    def train_on_batch(self, x: np.ndarray, y: np.ndarray):
        """One step of every seed: `x[s]`, `y[s]` is seed s's batch."""
        self.state, loss = self._step(*self.state, x, y)
        return loss

    def weights(self, s: int) -> list[np.ndarray]:
        """Seed s's weights in `model.get_weights()` order."""
        values = {id(v): a[s] for v, a in zip(self.model.trainable_variables, self.state[0])}
        values.update({id(v): a[s] for v, a in zip(self.model.non_trainable_variables,
                                                   self.state[1])})
        return [np.asarray(values[id(v)]) for v in self.model.weights]


def epoch_clock():
    """A Keras callback that notes this process's CPU seconds of each epoch in `.epochs`."""
    import keras

    class EpochClock(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.epochs, self.mark = [], cpu_seconds()

        def on_epoch_end(self, epoch, logs=None):
            now = cpu_seconds()
            self.epochs.append(now - self.mark)
            self.mark = now

    return EpochClock()


def stacked_batches(batches) -> tuple[np.ndarray, np.ndarray]:
    """One batch per seed, stacked along a new leading (seed) axis."""
    return (np.stack([np.asarray(b[0]) for b in batches]),
            np.stack([np.asarray(b[1]) for b in batches]))


def fresh_model(config):
    """`config`'s model as `experiments.run` builds it, seeded (the same weights every call)."""
    from experiments import run
    from experiments.tasks import family_for
    from experiments.tasks.common import units_for

    train, _, test, spec = data_of(config)
    family = family_for(spec)
    return run.build(config, family, spec, units_for(config, family, spec)), train, test


def one_step(configs: list) -> dict:
    """Each seed's standalone model after one `train_on_batch` on its first batch, against the
    same seeds as one vmapped step on the same batches: the largest |weight difference| per seed
    (and the standalone models' initial weights, for the caller to check against its own)."""
    models, batches = [], []
    for config in configs:
        model, train, _ = fresh_model(config)
        models.append(model)
        batches.append([np.asarray(part) for part in next(iter(train))])
    starts = [m.get_weights() for m in models]
    together = Vmapped(fresh_model(configs[0])[0], starts)
    together.train_on_batch(*stacked_batches(batches))
    diffs = []
    for s, (model, (x, y)) in enumerate(zip(models, batches)):
        model.train_on_batch(x, y)
        diffs.append(max(float(np.max(np.abs(a - b)))
                         for a, b in zip(together.weights(s), model.get_weights())))
    return {"one_step_diff": diffs, "starts": starts}


def vmapped_run(configs: list, starts: list[list[np.ndarray]]) -> dict:
    """Train the seeds of `configs` as one vmapped step from `starts`; timed like `standalone`."""
    import jax

    model, _, _ = fresh_model(configs[0])
    together = Vmapped(model, starts)
    splits = [data_of(c) for c in configs]  # each seed's split, shuffled as its own run's
    for split in splits:  # `model.fit` of a fresh model draws one batch to build its loss and
        next(iter(split[0]))  # metrics first (Keras's `_symbolic_build`): the shuffle moves on
    cpu, wall = cpu_seconds(), time.perf_counter()
    marks = [cpu]
    for _ in range(configs[0].train.epochs):
        for batches in zip(*(split[0] for split in splits)):  # each split iterated once an epoch
            together.train_on_batch(*stacked_batches(batches))
        jax.block_until_ready(together.state)
        marks.append(cpu_seconds())
    cpu, wall = cpu_seconds() - cpu, time.perf_counter() - wall
    epochs = np.diff(marks).tolist()
    test_mse, ends = [], []
    for s, split in enumerate(splits):
        ends.append(together.weights(s))
        model.set_weights(ends[-1])
        test_mse.append(float(model.evaluate(split[2], verbose=0, return_dict=True)["mse"]))
    return {"cpu": cpu, "wall": wall, "epochs": epochs, "test_mse": test_mse, "ends": ends}


# --- the workers: one backend each ---------------------------------------------------------------


def worker(mode: str, configs: list, workdir: Path) -> None:
    """Run `mode` for the seeds of `configs`; write `workdir/MODE.json` (and `jax.npz`)."""
    if mode in ("tf", "jax"):
        clocks = [epoch_clock() for _ in configs]
        runs = [standalone(c, callbacks=[clock]) for c, clock in zip(configs, clocks)]
        result = {"cpu": sum(r["cpu"] for r in runs), "wall": sum(r["wall"] for r in runs),
                  "epochs": np.sum([clock.epochs for clock in clocks], axis=0).tolist(),
                  "test_mse": [r["test_mse"] for r in runs]}
        if mode == "jax":
            np.savez(workdir / "jax.npz", **{f"{kind}/{s}/{i}": w
                                             for s, r in enumerate(runs)
                                             for kind, ws in (("start", r["start"]),
                                                              ("end", r["model"].get_weights()))
                                             for i, w in enumerate(ws)})
    else:
        saved = np.load(workdir / "jax.npz")
        n = len([k for k in saved.files if k.startswith("start/0/")])
        starts = [[saved[f"start/{s}/{i}"] for i in range(n)] for s in range(len(configs))]
        step = one_step(configs)
        result = vmapped_run(configs, starts)
        result["one_step_diff"] = step["one_step_diff"]
        result["start_diff"] = max(float(np.max(np.abs(a - b)))
                                   for mine, theirs in zip(step["starts"], starts)
                                   for a, b in zip(mine, theirs))
        result["end_diff"] = [max(float(np.max(np.abs(a - saved[f"end/{s}/{i}"])))
                                  for i, a in enumerate(end))
                              for s, end in enumerate(result.pop("ends"))]
    (workdir / f"{mode}.json").write_text(json.dumps(result))


def launch(mode: str, args, cell: str, workdir: Path) -> dict:
    env = {**os.environ, "KERAS_BACKEND": BACKENDS[mode]}
    command = [sys.executable, "-m", "benchmarks.seed_vmap", "--worker", mode, "--workdir",
               str(workdir), "--cells", cell, "--seeds", str(args.seeds), "--epochs",
               str(args.epochs), "--length", str(args.length)]
    subprocess.run(command, env=env, check=True, cwd=HERE.parent)
    return json.loads((workdir / f"{mode}.json").read_text())


def main(argv=None) -> int:
    parser = arguments("seed_vmap", __doc__, epochs=5)
    parser.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        worker(args.worker, member_configs(args.cells[0], args.seeds, args.length, args.epochs),
               args.workdir)
        return 0
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = []
    with tempfile.TemporaryDirectory(prefix="seed_vmap-") as tmp:
        for cell in args.cells:
            workdir = Path(tmp, cell)
            workdir.mkdir()
            loads, modes = [os.getloadavg()], {}
            for mode in BACKENDS:  # back to back: the machine's load drifts
                modes[mode] = launch(mode, args, cell, workdir)
                loads.append(os.getloadavg())
            rows.append({"cell": cell, **modes, "loads": loads})
            a, b, c = (modes[m] for m in BACKENDS)
            print(f"{cell}: CPU s tf {a['cpu']:.1f}, jax {b['cpu']:.1f}, vmap {c['cpu']:.1f} "
                  f"(wall {a['wall']:.1f}, {b['wall']:.1f}, {c['wall']:.1f}); vmap/tf "
                  f"{a['cpu'] / c['cpu']:.2f}x, vmap/jax {b['cpu'] / c['cpu']:.2f}x CPU; one step "
                  f"{max(c['one_step_diff']):.1e}; load {loads[0][0]:.2f}->{loads[-1][0]:.2f}",
                  flush=True)
    write(args, rows, started)
    return 0


def write(args, rows: list[dict], started: str) -> None:
    import jax
    import keras
    import tensorflow as tf

    threads = ", ".join(f"{k}={os.environ.get(k, '(unset)')}" for k in THREAD_VARS)
    mse = lambda v: ", ".join(f"{x:.4g}" for x in v)
    load = lambda t: "/".join(f"{x:.2f}" for x in t)
    diffs = lambda v: ", ".join(f"{x:.1e}" for x in v)
    row = lambda *cells: "| " + " | ".join(cells) + " |"
    lines = [
        "# Seeds as one vmapped JAX step (`benchmarks/seed_vmap.py`)", "",
        (f"`python -m benchmarks.seed_vmap --cells {' '.join(args.cells)} --seeds {args.seeds} "
         f"--epochs {args.epochs} --length {args.length}`, started {started} at {head_commit()}, "
         f"Keras {keras.__version__}, TensorFlow {tf.__version__}, JAX {jax.__version__}, "
         f"{os.cpu_count()} CPUs; {threads}."), "",
        (f"The fair study's adding problem at T = {args.length}, each cell's tuned learning rate, "
         f"{args.epochs} epochs, `train.clipnorm` off. (a) tf: {args.seeds} standalone "
         f"`model.fit` runs as `experiments.run` builds them under TensorFlow; (b) jax: the same "
         "under JAX (jitted step); (c) vmap: the same seeds as one `jax.vmap`ped jitted step, "
         "from (b)'s initial weights, each seed fed its own batches in (b)'s order. Seconds are "
         "training only, summed over the seeds, compilation included; CPU = user + sys of the "
         "worker process. Gains are runs-per-hour ratios (seconds of the slower over the faster)."),
        "",
        ("The machine was shared (a Multi30k tuning on both cores the whole time): wall seconds "
         "are noisy, CPU seconds are the figure to trust. Load averages (1/5/15 min) at the "
         "cell's start and after (a), (b), (c)."), "",
        ("| cell | CPU s (a) tf | (b) jax | (c) vmap | (c)/(a) CPU | (c)/(b) CPU | (b)/(a) CPU "
         "| wall s (a) | (b) | (c) | (c)/(a) wall | (c)/(b) wall | load |"),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        a, b, c = r["tf"], r["jax"], r["vmap"]
        lines.append(row(r["cell"], *(f"{m['cpu']:.1f}" for m in (a, b, c)),
                         *(f"{x:.2f}×" for x in (a["cpu"] / c["cpu"], b["cpu"] / c["cpu"],
                                                 a["cpu"] / b["cpu"])),
                         *(f"{m['wall']:.1f}" for m in (a, b, c)),
                         *(f"{x:.2f}×" for x in (a["wall"] / c["wall"], b["wall"] / c["wall"])),
                         " → ".join(load(t) for t in r["loads"])))
    lines += [
        "", (f"CPU s per epoch, summed over the seeds: the first (its compilation or tracing "
             "included) and the mean of the later ones (the steady state); the gains over the "
             f"later epochs, and projected to the study's {STUDY_EPOCHS} epochs (first + "
             f"{STUDY_EPOCHS - 1} × later)."), "",
        ("| cell | first (a) | (b) | (c) | later (a) | (b) | (c) | later (c)/(a) | later (c)/(b) "
         f"| {STUDY_EPOCHS} epochs (c)/(a) | {STUDY_EPOCHS} epochs (c)/(b) |"),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        first = [r[m]["epochs"][0] for m in BACKENDS]
        later = [float(np.mean(r[m]["epochs"][1:])) for m in BACKENDS]
        study = [f + (STUDY_EPOCHS - 1) * x for f, x in zip(first, later)]
        lines.append(row(r["cell"], *(f"{x:.1f}" for x in first + later),
                         *(f"{x:.2f}×" for x in (later[0] / later[2], later[1] / later[2],
                                                 study[0] / study[2], study[1] / study[2]))))
    lines += [
        "", ("Exactness. 'start': largest |difference| between the initial weights (b) wrote and "
             "the standalone models the vmap worker builds itself (0: the same weights). 'one "
             "step': each seed's weights after one vmapped step against its standalone JAX model "
             "after one `train_on_batch` on the same batch. 'end': each seed's weights after "
             "training, (c) against (b) (0: bit for bit). Test MSE per seed 0.."
             f"{args.seeds - 1}."), "",
        "| cell | start | one step | end | test MSE (a) tf | test MSE (b) jax | test MSE (c) vmap |",
        "|---|---:|---|---|---|---|---|",
    ]
    for r in rows:
        c = r["vmap"]
        lines.append(row(r["cell"], f"{c['start_diff']:.1e}", diffs(c["one_step_diff"]),
                         diffs(c["end_diff"]), mse(r["tf"]["test_mse"]),
                         mse(r["jax"]["test_mse"]), mse(c["test_mse"])))
    write_page(args.output, lines)


if __name__ == "__main__":
    sys.exit(main())
