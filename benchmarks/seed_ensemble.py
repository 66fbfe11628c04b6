"""Several seeds of one configuration trained as one model: what it would gain, and whether it is exact.

Issue 25's untried lever. The study's models are small (≈ 7,000 parameters): a training step is
mostly per-op overhead, not arithmetic. S seeds of one configuration can run as ONE model whose
cell has S·H units, with its recurrent kernel (and the head) block-diagonal, one block per seed,
and its input the S seeds' batches side by side: every op then does S seeds' work for one op's
overhead. Block-diagonal weights keep the seeds apart exactly (a `keras.constraints.Constraint`
projects the off-block entries back to zero after every update, so the forward pass never mixes
seeds), and the summed loss gives each seed's block its own gradient; Adam is elementwise. Any
cell of the catalogue works unchanged: its gates are `gates` blocks of `units` along the last axis.

This script measures it on the fair study's adding problem (T = 100: `study_fair.yaml`'s data,
budget and each cell's tuned learning rate), per cell:

- S standalone runs (seeds 0..S-1) as `experiments.run` builds and compiles them, then one
  ensemble of the same S seeds started from the standalone models' initial weights and fed the
  same batches in the same order (each seed's data made under its own seed, as `run` makes it);
- CPU seconds (user + sys of this process) and wall seconds of `model.fit` each way, and the
  ratio: the runs per hour the lever would give, training only (data, build and MLflow logging
  are per run in a sweep and would be shared too);
- exactness: after one training step, each seed's weights taken out of the ensemble against its
  standalone model's (`one_step`); after training, the same difference and each seed's test MSE
  both ways (by then rounding has compounded: compare the MSEs as distributions over seeds).

Not the study's settings in two respects, both said in the output: `train.clipnorm` is off (Keras
clips each variable by its own norm, and an ensemble's variable holds every seed, so clipping
would couple them: per-seed clipping is not built), and early stopping is off (the adding runs
have none). Only the regression head (adding) is assembled here. Run it with one thread, as a
study lane runs:

    OMP_NUM_THREADS=1 TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 \\
        python -m benchmarks.seed_ensemble --epochs 20 --seeds 5

Writes benchmarks/seed_ensemble.md (`--output`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
STUDY = HERE.parent / "experiments" / "sweeps" / "study_fair.yaml"
CELLS = ("vanilla", "lstm", "peephole", "coupled", "gru")
KERNELS = (0, 1)  # a cell's `kernel` and `recurrent_kernel` come first (cells/base.py's build)


def member_configs(cell: str, seeds: int, length: int, epochs: int) -> list:
    """The fair study's adding runs of `cell` at T = `length`, seeds 0..seeds-1, as planned
    (tuned values), with clipping off and `epochs` epochs."""
    from experiments.orchestration import plan

    planned = plan.load_sweep(STUDY, only=["data.name=adding", f"data.length={length}",
                                           f"model.cell={cell}"])
    configs = {p.config.train.seed: p.config for p in planned.runs
               if p.config.model.unit_forget_bias is None}
    return [configs[s].with_overrides(["train.clipnorm=null", f"train.epochs={epochs}"])
            for s in range(seeds)]


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def data_of(config):
    """The run's splits, made after seeding as `run` makes them (each seed its own order)."""
    import datasets
    from experiments import run

    run._seed(config.train)
    return datasets.load(config.data)


def standalone(config, callbacks=()) -> dict:
    from experiments import run
    from experiments.tasks import family_for
    from experiments.tasks.common import units_for

    train, _, test, spec = data_of(config)
    family = family_for(spec)
    units = units_for(config, family, spec)
    model = run.build(config, family, spec, units)
    start = model.get_weights()
    cpu, wall = cpu_seconds(), time.perf_counter()
    model.fit(train, epochs=config.train.epochs, verbose=0, shuffle=False, callbacks=list(callbacks))
    cpu, wall = cpu_seconds() - cpu, time.perf_counter() - wall
    return {"model": model, "start": start, "units": units, "cpu": cpu, "wall": wall,
            "test_mse": float(model.evaluate(test, verbose=0, return_dict=True)["mse"])}


# --- assembling S models into one ----------------------------------------------------------------


def interleave(arrays: list[np.ndarray], width: int, rows_apart: bool) -> np.ndarray:
    """S members' weights as one: the last axis `k` blocks of `width` per member becomes `k`
    blocks of S·width (block g holds every member's block g, member s at s·width); a 2-D weight's
    rows go apart too (member s's rows at s·n, the other members' columns zero there)."""
    S = len(arrays)
    k = arrays[0].shape[-1] // width

    def columns(a):
        return a.reshape(*a.shape[:-1], k, 1, width)

    if not rows_apart:
        return np.concatenate([columns(a) for a in arrays], axis=-2).reshape(*arrays[0].shape[:-1],
                                                                           k * S * width)
    n = arrays[0].shape[0]
    out = np.zeros((S * n, k, S, width), dtype=arrays[0].dtype)
    for s, a in enumerate(arrays):
        out[s * n:(s + 1) * n, :, s, :] = a.reshape(n, k, width)
    return out.reshape(S * n, k * S * width)


def member(weight: np.ndarray, s: int, S: int, width: int, rows_apart: bool) -> np.ndarray:
    """Member `s`'s weight out of an ensemble's (the inverse of `interleave`)."""
    k = weight.shape[-1] // (S * width)
    if not rows_apart:
        return weight.reshape(*weight.shape[:-1], k, S, width)[..., s, :].reshape(
            *weight.shape[:-1], k * width)
    n = weight.shape[0] // S
    return weight.reshape(S * n, k, S, width)[s * n:(s + 1) * n, :, s, :].reshape(n, k * width)


def ensemble_model(config, runs: list[dict], spec):
    """One model holding the S standalone models of `runs`, started from their initial weights."""
    import keras
    from keras import ops

    import cells
    from experiments import run as run_module

    class BlockMask(keras.constraints.Constraint):
        def __init__(self, mask):
            self.mask = mask

        def __call__(self, w):
            return w * ops.convert_to_tensor(self.mask, dtype=w.dtype)

    S, H = len(runs), runs[0]["units"]
    first = runs[0]["model"]
    rnn, head = first.get_layer("rnn_0"), first.get_layer("head")
    n_cell = len(rnn.get_weights())
    starts = [r["start"] for r in runs]
    cell_w = [[w[i] for w in starts] for i in range(n_cell)]
    head_w = [[w[n_cell + i] for w in starts] for i in range(len(head.get_weights()))]
    O = head_w[0][0].shape[-1]

    def mask(shape_src, width):
        return interleave([np.ones_like(a) for a in shape_src], width, rows_apart=True)

    kwargs = {"units": S * H}
    if config.model.unit_forget_bias is not None and getattr(
            cells.catalog.entry(config.model.cell), "forget_gate", False):
        kwargs["unit_forget_bias"] = config.model.unit_forget_bias
    cell = cells.get(config.model.cell, **kwargs,
                     kernel_constraint=BlockMask(mask(cell_w[0], H)),
                     recurrent_constraint=BlockMask(mask(cell_w[1], H)))
    inputs = keras.Input((None, S * spec.input_dim))
    x = type(rnn)(cell, return_sequences=False, name="rnn_0")(inputs)
    outputs = keras.layers.Dense(S * O, name="head",
                                 kernel_constraint=BlockMask(mask(head_w[0], O)))(x)
    model = keras.Model(inputs, outputs)
    # the kernels' rows belong to one member each (its inputs, its h); any other weight (a bias,
    # the GRU's (2, 3·units) bias, the peepholes) is per unit along its last axis only
    weights = [interleave(ws, H, rows_apart=i in KERNELS) for i, ws in enumerate(cell_w)]
    weights += [interleave(ws, O, rows_apart=i == 0) for i, ws in enumerate(head_w)]
    model.set_weights(weights)

    def summed_mse(y, p):  # each member's MSE (O = 1), summed: each block gets its own gradient
        return ops.sum(ops.square(y - p), axis=-1)

    run_module._seed(config.train)
    model.compile(optimizer=run_module._optimizer(config.train), loss=summed_mse,
                  jit_compile=config.train.jit_compile)
    return model, n_cell, H, O


def one_step(configs: list) -> float:
    """The construction's exactness before rounding compounds: fresh standalone models and their
    ensemble, one training step on each seed's first batch; the largest difference of a member's
    weights from its standalone model's. (Over many steps Adam, which divides by the running
    gradient scale, turns float rounding in tiny gradients into full-size differences: the two
    paths then agree in distribution, not weight by weight.)"""
    from experiments import run
    from experiments.tasks import family_for
    from experiments.tasks.common import units_for

    fresh, batches = [], []
    for config in configs:
        train, _, _, spec = data_of(config)
        family = family_for(spec)
        units = units_for(config, family, spec)
        model = run.build(config, family, spec, units)
        fresh.append({"model": model, "start": model.get_weights(), "units": units})
        batches.append(next(iter(train)))
    model, n_cell, H, O = ensemble_model(configs[0], fresh, spec)
    x = np.concatenate([np.asarray(b[0]) for b in batches], -1)
    y = np.concatenate([np.asarray(b[1]) for b in batches], -1)
    model.train_on_batch(x, y)
    for r, (bx, by) in zip(fresh, batches):
        r["model"].train_on_batch(bx, by)
    return max(_member_diffs(model.get_weights(), fresh, n_cell, H, O))


def _member_diffs(final, runs, n_cell, H, O) -> list[float]:
    S = len(runs)
    diffs = []
    for s, r in enumerate(runs):
        mine = [member(w, s, S, H, i in KERNELS) for i, w in enumerate(final[:n_cell])]
        mine += [member(w, s, S, O, i == 0) for i, w in enumerate(final[n_cell:])]
        diffs.append(max(float(np.max(np.abs(a - b))) for a, b in zip(mine, r["model"].get_weights())))
    return diffs


def ensemble(configs: list, runs: list[dict]) -> dict:
    import tensorflow as tf

    splits = [data_of(c) for c in configs]  # each seed's batches, in its standalone order
    spec = splits[0][3]

    def side_by_side(index):
        zipped = tf.data.Dataset.zip(tuple(s[index] for s in splits))
        return zipped.map(lambda *b: (tf.concat([x for x, _ in b], -1),
                                      tf.concat([y for _, y in b], -1)))

    model, n_cell, H, O = ensemble_model(configs[0], runs, spec)
    cpu, wall = cpu_seconds(), time.perf_counter()
    model.fit(side_by_side(0), epochs=configs[0].train.epochs, verbose=0, shuffle=False)
    cpu, wall = cpu_seconds() - cpu, time.perf_counter() - wall
    S = len(runs)
    pred = model.predict(side_by_side(2).map(lambda x, y: x), verbose=0)
    truth = np.concatenate([y for _, y in side_by_side(2).as_numpy_iterator()])
    test_mse = [float(np.mean((pred[:, s] - truth[:, s]) ** 2)) for s in range(S)]
    diffs = _member_diffs(model.get_weights(), runs, n_cell, H, O)
    return {"cpu": cpu, "wall": wall, "test_mse": test_mse, "max_weight_diff": diffs}


def arguments(module: str, doc: str, epochs: int) -> argparse.ArgumentParser:
    """The options of a seeds-together benchmark `benchmarks.<module>` (writes `<module>.md`)."""
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{module}", description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", nargs="+", default=list(CELLS), choices=CELLS)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--length", type=int, default=100)
    parser.add_argument("--output", type=Path, default=HERE / f"{module}.md")
    return parser


def main(argv=None) -> int:
    args = arguments("seed_ensemble", __doc__, epochs=20).parse_args(argv)

    import tensorflow as tf

    threads = (os.environ.get("TF_NUM_INTRAOP_THREADS", "default"),
               os.environ.get("TF_NUM_INTEROP_THREADS", "default"))
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = []
    for cell in args.cells:
        configs = member_configs(cell, args.seeds, args.length, args.epochs)
        load = os.getloadavg()[0]
        runs = [standalone(c) for c in configs]
        together = ensemble(configs, runs)
        step_diff = one_step(configs)
        alone_cpu = sum(r["cpu"] for r in runs)
        alone_wall = sum(r["wall"] for r in runs)
        rows.append({
            "cell": cell, "units": runs[0]["units"], "lr": configs[0].train.lr,
            "alone_cpu": alone_cpu, "together_cpu": together["cpu"],
            "alone_wall": alone_wall, "together_wall": together["wall"],
            "gain_cpu": alone_cpu / together["cpu"], "gain_wall": alone_wall / together["wall"],
            "max_weight_diff": max(together["max_weight_diff"]), "one_step_diff": step_diff,
            "test_mse_alone": [r["test_mse"] for r in runs], "test_mse_together": together["test_mse"],
            "load": (load, os.getloadavg()[0]),
        })
        r = rows[-1]
        print(f"{cell}: {args.seeds} runs alone {alone_cpu:.1f} CPU s ({alone_wall:.1f} s wall), "
              f"as one model {together['cpu']:.1f} CPU s ({together['wall']:.1f} s): "
              f"{r['gain_cpu']:.2f}x CPU, {r['gain_wall']:.2f}x wall; largest weight difference "
              f"{r['one_step_diff']:.1e} after one step, {r['max_weight_diff']:.1e} at the end; load {r['load'][0]:.1f}->{r['load'][1]:.1f}", flush=True)
    write(args, rows, started, threads, tf.__version__)
    return 0


def head_commit() -> str:
    """The checkout's short commit hash ('' outside git), for a table's header."""
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          cwd=HERE, check=False).stdout.strip()


def write_page(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path}")


def write(args, rows, started, threads, tf_version) -> None:
    commit = head_commit()
    lines = [
        "# Seeds as one model (`benchmarks/seed_ensemble.py`)", "",
        (f"`python -m benchmarks.seed_ensemble --cells {' '.join(args.cells)} --seeds {args.seeds} "
        f"--epochs {args.epochs} --length {args.length}`, started {started} at {commit}, "
        f"TensorFlow {tf_version}, intra/inter-op threads {threads[0]}/{threads[1]}, "
        f"{os.cpu_count()} CPUs (load average at each cell's start and end in the table: the "
        "machine was shared; CPU seconds are user + sys of this process)."), "",
        (f"The fair study's adding problem at T = {args.length}, each cell's tuned learning rate, "
        f"{args.epochs} epochs, `train.clipnorm` off (see the script's docstring). 'alone': "
        f"{args.seeds} runs one after another; 'as one': the same seeds, same initial weights, "
        "same batches, as one block-diagonal model."), "",
        ("| cell | units | lr | alone CPU s | as one CPU s | gain (CPU) | alone wall s | as one wall s "
        "| gain (wall) | weight diff, 1 step | weight diff, end | test MSE alone | test MSE as one "
        "| load |"),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for r in rows:
        mse = lambda v: ", ".join(f"{x:.4g}" for x in v)
        lines.append(
            f"| {r['cell']} | {r['units']} | {r['lr']:.3g} | {r['alone_cpu']:.1f} | "
            f"{r['together_cpu']:.1f} | {r['gain_cpu']:.2f}× | {r['alone_wall']:.1f} | "
            f"{r['together_wall']:.1f} | {r['gain_wall']:.2f}× | {r['one_step_diff']:.1e} | "
            f"{r['max_weight_diff']:.1e} | "
            f"{mse(r['test_mse_alone'])} | {mse(r['test_mse_together'])} | "
            f"{r['load'][0]:.1f}→{r['load'][1]:.1f} |")
    write_page(args.output, lines)


if __name__ == "__main__":
    sys.exit(main())
