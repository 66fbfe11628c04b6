"""Inference side by side, in one process: our cell uncompiled, the same model XLA-compiled
(`cells.compile_inference`), Keras's built-in layer and PyTorch's `torch.nn` layer (issue 14).

    nice -n 15 python -m benchmarks.inference                  # ≈ 2–3 min on the 2-core CPU
    nice -n 15 python -m benchmarks.inference --units 40 --rounds 5 --cells lstm gru

For each cell at B = 64, T = 100, D = 32, units = 128 (the issue's size) it times, round by round
and in a rotating order, one inference call of:

* ``ours``  — the layer `model.projected: auto` picks here (`keras.layers.RNN(cell)` on a CPU with
  TensorFlow), `predict_on_batch`, Keras's default `jit_compile` ("auto": no XLA on a CPU);
* ``xla``   — the same model (same weights) after `cells.compile_inference(model, jit=True)`;
  its predictions are checked equal to ``ours``'s before anything is timed;
* ``keras`` — `keras.layers.SimpleRNN/LSTM/GRU` (peephole and coupled: Keras's LSTM);
* ``torch`` — `torch.nn.RNN/LSTM/GRU` with 2 threads (peephole and coupled: its LSTM);
* ``torch1`` — the same with 1 thread: with another job on the cores, PyTorch's 2 OpenMP threads
  wait for each other at every step's barrier, and one thread is the fairer peer there.

`--phase` measures instead what a run spends on inference: a quick-sweep run's validation
passes (one per epoch), `model.evaluate(test)` and its family's test predictions, from a freshly
built model, so XLA's compilations (one per function and batch shape) are paid inside it; jit
off and on alternate, and the metrics of both are checked equal.

Each call is repeated for ≥ `--min-seconds`; the ratios are taken within a round, so a drift of
the shared machine lands on both sides, and reported as median (min–max) over the rounds. It
also reports the one-off cost of XLA's compilation (first call, compiled minus uncompiled) and
the number of batches after which it has paid for itself. Writes a JSON file and prints a
Markdown table; `cells/inference.py` cites the result.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from benchmarks.cases import TORCH_PEER, Case, build, seconds_per_call, torch_step_functions

CELLS = ("vanilla", "lstm", "peephole", "coupled", "gru")
IMPLS = ("ours", "xla", "keras", "torch", "torch1")
KERAS_PEER = {"vanilla": "vanilla", "lstm": "lstm", "peephole": "lstm", "coupled": "lstm",
              "gru": "gru"}
RATIOS = (("xla", "ours"), ("ours", "torch"), ("xla", "torch"), ("keras", "torch"),
          ("ours", "torch1"), ("xla", "torch1"))


def timed_first_call(fn) -> tuple[object, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def our_models(cell: str, size: dict) -> dict:
    """`{"ours": f, "xla": g}` for one cell (one set of weights) and the compile cost in s."""
    import cells
    from experiments.tasks.common import use_projected

    impl = "ours" if use_projected("auto") else "plain"
    model, x, _ = build(Case(impl=impl, cell=cell, **size))
    plain, first_plain = timed_first_call(lambda: model.predict_on_batch(x))
    xla_model, _, _ = build(Case(impl=impl, cell=cell, **size))
    xla_model.set_weights(model.get_weights())
    cells.compile_inference(xla_model, jit=True)
    compiled, first_xla = timed_first_call(lambda: xla_model.predict_on_batch(x))
    np.testing.assert_allclose(compiled, plain, rtol=1e-4, atol=1e-5)  # exact, or not a fast path
    return {"ours": lambda: model.predict_on_batch(x),
            "xla": lambda: xla_model.predict_on_batch(x),
            "compile_s": first_xla - first_plain, "layer": impl}


def one_thread(fn):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn()
    finally:
        torch.set_num_threads(threads)


def peers(cells_: list[str], size: dict) -> dict:
    """Keras's and torch's inference functions, one per distinct peer cell."""
    functions = {}
    for cell in sorted({KERAS_PEER[c] for c in cells_}):
        model, x, _ = build(Case(impl="keras", cell=cell, **size))
        model.predict_on_batch(x)
        functions["keras", cell] = lambda model=model, x=x: model.predict_on_batch(x)
    for cell in sorted({TORCH_PEER[c] for c in cells_}):
        infer = torch_step_functions(Case(impl="torch", cell=cell, **size))["infer"]
        infer()
        functions["torch", cell] = infer
        functions["torch1", cell] = lambda infer=infer: one_thread(infer)
    return functions


def measure(cells_: list[str], size: dict, rounds: int, min_seconds: float) -> dict:
    ours = {cell: our_models(cell, size) for cell in cells_}
    library = peers(cells_, size)
    for f in [*library.values(), *(o[k] for o in ours.values() for k in ("ours", "xla"))]:
        f()  # second warm-up call
    functions = {(cell, impl): ours[cell][impl] for cell in cells_ for impl in ("ours", "xla")}
    functions.update(library)
    keys = list(functions)
    samples = {key: [] for key in keys}
    for r in range(rounds):
        shift = r % len(keys)  # rotate the order: no case is always first after a pause
        for key in keys[shift:] + keys[:shift]:
            samples[key].append(seconds_per_call(functions[key], min_seconds))
    per_cell = {}
    for cell in cells_:
        series = {"ours": samples[cell, "ours"], "xla": samples[cell, "xla"],
                  "keras": samples["keras", KERAS_PEER[cell]],
                  "torch": samples["torch", TORCH_PEER[cell]],
                  "torch1": samples["torch1", TORCH_PEER[cell]]}
        row = {f"{impl}_ms": 1e3 * statistics.median(series[impl]) for impl in IMPLS}
        for a, b in RATIOS:
            per_round = [x / y for x, y in zip(series[a], series[b])]
            row[f"{a}/{b}"] = [statistics.median(per_round), min(per_round), max(per_round)]
        saved = (statistics.median(series["ours"]) - statistics.median(series["xla"]))
        row["compile_s"] = max(ours[cell]["compile_s"], 0.0)
        row["break_even_batches"] = round(row["compile_s"] / saved) if saved > 0 else None
        row["layer"] = ours[cell]["layer"]
        row["samples_ms"] = {impl: [round(1e3 * s, 3) for s in series[impl]] for impl in IMPLS}
        per_cell[cell] = row
    return per_cell


PHASE_TASK = {"data": {"name": "adding", "length": 100, "num_train": 4000, "num_val": 400,
                       "num_test": 500},
              "model": {"units": 32}, "train": {"epochs": 20}}  # quick.yaml's adding run


def evaluation_phase(cells_: list[str], rounds: int, task: dict = PHASE_TASK) -> dict:
    """Seconds of a run's inference (validation every epoch + test evaluate + test predictions)
    with XLA off and on, per cell: medians and per-round ratios on / off."""
    import keras

    import cells
    import datasets
    from experiments.config import Config
    from experiments.tasks import family_for

    out = {}
    for cell in cells_:
        config = Config.from_dict({**task, "model": {**task["model"], "cell": cell}})
        keras.utils.set_random_seed(0)
        _, val, test, spec = datasets.load(config.data)
        family = family_for(spec)
        times, metrics = {False: [], True: []}, {}
        for _ in range(rounds):
            for jit in (False, True):
                keras.utils.set_random_seed(0)
                model = family.build(spec, config.model, config.model.units)
                model.compile(optimizer="adam", **family.compile_args(spec))
                start = time.perf_counter()
                cells.compile_inference(model, jit=jit)
                for _ in range(config.train.epochs):
                    model.evaluate(val, verbose=0)
                found = model.evaluate(test, return_dict=True, verbose=0)
                found.update(family.evaluate(model, test, spec, config.train).metrics)
                times[jit].append(time.perf_counter() - start)
                metrics.setdefault(jit, found)
        for key, value in metrics[False].items():
            np.testing.assert_allclose(metrics[True][key], value, rtol=1e-4, err_msg=key)
        per_round = [on / off for on, off in zip(times[True], times[False])]
        batches = config.train.epochs * int(val.cardinality()) + 2 * int(test.cardinality())
        out[cell] = {"off_s": statistics.median(times[False]), "on_s": statistics.median(times[True]),
                     "on/off": [statistics.median(per_round), min(per_round), max(per_round)],
                     "batches": batches, "samples_s": {"off": times[False], "on": times[True]}}
    return out


def header(ctx: dict) -> str:
    return (f"`{ctx['command']}` — {ctx['date']}, {ctx['machine']}; load average "
            f"{ctx['load_before']:.2f} before, {ctx['load_after']:.2f} after; "
            f"{ctx['wall_s']:.0f} s; ")


def phase_markdown(result: dict) -> str:
    ctx = result["context"]
    lines = [
        header(ctx) + f"{ctx['task']}; median s and median (min–max) of {ctx['rounds']} "
        "alternating rounds.",
        "",
        "| cell | inference batches | XLA off s | XLA on s (compilation included) | on / off |",
        "|---|---|---|---|---|",
    ]
    for cell, row in result["cells"].items():
        m, lo, hi = row["on/off"]
        lines.append(f"| {cell} | {row['batches']} | {row['off_s']:.2f} | {row['on_s']:.2f} | "
                     f"{m:.2f} ({lo:.2f}–{hi:.2f}) |")
    return "\n".join(lines)


def markdown(result: dict) -> str:
    ctx = result["context"]
    lines = [
        header(ctx) + (f"B={ctx['size']['batch']}, T={ctx['size']['steps']}, "
                       f"D={ctx['size']['features']}, units={ctx['size']['units']}; median ms "
                       f"and, for ratios, median (min–max) of {ctx['rounds']} interleaved rounds."),
        "",
        ("| cell | ours ms | xla ms | keras ms | torch ms | torch 1-thread ms | xla / ours "
         "| ours / torch | xla / torch | keras / torch | ours / torch 1-thread "
         "| xla / torch 1-thread | XLA extra first call s | pays after batches |"),
        "|---" * 14 + "|",
    ]
    for cell, row in result["cells"].items():
        ratios = [f"{m:.2f} ({lo:.2f}–{hi:.2f})" for m, lo, hi in (row[f"{a}/{b}"]
                                                                   for a, b in RATIOS)]
        times = [f"{row[f'{impl}_ms']:.1f}" for impl in IMPLS]
        pays = "never" if row["break_even_batches"] is None else row["break_even_batches"]
        lines.append(f"| {cell} | {' | '.join(times)} | {' | '.join(ratios)} | "
                     f"{row['compile_s']:.1f} | {pays} |")
    return "\n".join(lines)


LEGEND = (
    "ours = `keras.layers.RNN(cell)` (what `model.projected: auto` runs on a CPU with "
    "TensorFlow), `predict_on_batch` without XLA; xla = the same model and weights after "
    "`cells.compile_inference(model, jit=True)` (predictions checked equal first); keras = "
    "`keras.layers.SimpleRNN/LSTM/GRU` (peephole, coupled: its LSTM); torch = "
    "`torch.nn.RNN/LSTM/GRU`, 2 threads, and torch 1-thread the same with one (peephole, "
    "coupled: its LSTM). Ratios are taken round by round. \"XLA extra first call\": the "
    "compiled model's first call minus the uncompiled one's (the compilation), and the batches "
    "after which XLA has paid it back. `--phase` tables: a whole run's inference (validation "
    "every epoch, the test split evaluated and predicted), compilations included."
)


def render(saved: dict) -> str:
    """Markdown of one result of `main`, or of several kept under names."""
    results = [saved] if "context" in saved else list(saved.values())
    return LEGEND + "\n\n" + "\n\n".join(phase_markdown(r) if r["context"].get("task") else markdown(r)
                       for r in results)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", nargs="+", default=list(CELLS), choices=CELLS)
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--min-seconds", type=float, default=0.15)
    parser.add_argument("--machine", default="2-core AMD EPYC, shared with a background sweep")
    parser.add_argument("--phase", action="store_true",
                        help="a quick-sweep adding run's inference, XLA off vs on (see above)")
    parser.add_argument("--num-val", type=int, default=PHASE_TASK["data"]["num_val"],
                        help="--phase: validation sequences (more = more inference per run)")
    parser.add_argument("--output", type=Path, default=Path("/tmp/benchmarks-inference.json"))
    parser.add_argument("--render", type=Path, metavar="JSON",
                        help="print the tables of saved results (one, or several by name, as "
                             "benchmarks/inference.json) without measuring")
    args = parser.parse_args(argv)
    if args.render:
        print(render(json.loads(args.render.read_text())))
        return {}
    size = {"batch": 64, "steps": args.steps, "features": 32, "units": args.units}
    start, load_before = time.perf_counter(), os.getloadavg()[0]
    if args.phase:
        task = {**PHASE_TASK, "data": {**PHASE_TASK["data"], "num_val": args.num_val}}
        per_cell = evaluation_phase(args.cells, args.rounds, task)
    else:
        per_cell = measure(args.cells, size, args.rounds, args.min_seconds)
    import keras

    result = {
        "context": {
            "command": "python -m benchmarks.inference" + (
                " " + " ".join(argv) if argv else ""),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": args.machine, "backend": keras.backend.backend(),
            "load_before": load_before, "load_after": os.getloadavg()[0],
            "wall_s": time.perf_counter() - start, "size": size, "rounds": args.rounds,
            "task": (f"quick.yaml's adding run (T=100, units=32, 20 epochs, {args.num_val} "
                     "validation sequences)") if args.phase else None,
        },
        "cells": per_cell,
    }
    args.output.write_text(json.dumps(result, indent=1))
    print(phase_markdown(result) if args.phase else markdown(result))
    return result


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
