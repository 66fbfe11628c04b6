"""Benchmark the five cells against Keras's and PyTorch's layers and write RESULTS.md.

    python -m benchmarks.run --output benchmarks/RESULTS.md          # `make bench`, ≈ 16 min
    python -m benchmarks.run --quick --output /tmp/RESULTS.md        # one size, ≈ 6 min
    python -m benchmarks.run --only grid --sizes 100x64 100x128      # re-measure two sizes

(Minutes at load ≈ 1.5 on the 2-core machine; a loaded machine takes several times longer.)

Every measurement runs in a worker process (`benchmarks.worker`): one per backend for the
timings (all cases of a size interleaved in it), one per case for peak memory. The parent
only collects, tabulates (pandas) and plots (matplotlib).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path

import pandas as pd

from benchmarks import report
from benchmarks.cases import KERAS_LAYERS, TORCH_LAYERS, Case
from benchmarks.worker import MARK

CELLS = ("vanilla", "lstm", "peephole", "coupled", "gru")
TARGET = {"steps": 100, "units": 128}  # the size the targets are set at (B=64, D=32)
ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Plan:
    """What to measure; `quick` shrinks every part to its core."""

    # (T, units): the grid, T ∈ {100, 500} × units ∈ {64, 128, 256} (~12 of the ~17 min)
    sizes: tuple[tuple[int, int], ...] = (
        (100, 64), (100, 128), (100, 256), (500, 64), (500, 128), (500, 256)
    )
    rounds: int = 5
    min_seconds: float = 0.15
    jit_cells: tuple[str, ...] = ("lstm",)  # training step with jit_compile on and off
    infer_cells: tuple[str, ...] = CELLS  # inference with jit_compile on and off
    short_steps: int = 20  # "short sequence" for the unroll comparison
    memory_cells: tuple[str, ...] = CELLS
    # one process per case (13 here); T=500 is where the layers' memory differs (≈ 2 min)
    memory_sizes: tuple[tuple[int, int], ...] = ((500, 128),)
    backends: tuple[str, ...] = field(default=("tensorflow", "jax", "torch"))
    target: tuple[int, int] = (TARGET["steps"], TARGET["units"])  # where jit is compared

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            sizes=((100, 128),), rounds=3, jit_cells=("lstm",), infer_cells=("lstm", "peephole"),
            memory_cells=("lstm",),
            memory_sizes=((100, 128),),
        )


def run_worker(job: dict, backend: str = "tensorflow", extra_env: dict | None = None):
    """Run `benchmarks.worker` with `job` under `backend`; its JSON result."""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2", **(extra_env or {})}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.worker", json.dumps(job)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    if done.returncode or not lines:
        raise RuntimeError(f"benchmark worker failed ({backend}):\n{done.stderr[-4000:]}")
    return json.loads(lines[-1][len(MARK) :])


def library_cases(cells, **fields) -> list[Case]:
    """Keras's built-in layer and PyTorch's `torch.nn` layer for each of `cells` that has one."""
    keras_cells = [cell for cell in cells if cell in KERAS_LAYERS]
    torch_cells = [cell for cell in cells if cell in TORCH_LAYERS]
    cases = [Case(impl="keras", cell=cell, **fields) for cell in keras_cells]
    torch_fields = {key: value for key, value in fields.items() if key != "jit"}
    return cases + [Case(impl="torch", cell=cell, **torch_fields) for cell in torch_cells]


def grid_cases(steps: int, units: int) -> list[Case]:
    """All five cells as plain `RNN(cell)` and as ProjectedRNN, Keras's three layers, and
    PyTorch's `torch.nn.RNN/LSTM/GRU` (the peer of peephole and coupled is torch's LSTM)."""
    size = {"steps": steps, "units": units}
    cases = [Case(impl=impl, cell=cell, **size) for impl in ("plain", "ours") for cell in CELLS]
    return cases + library_cases(CELLS, **size)


def timing_job(cases: list[Case], plan: Plan, kinds=("train", "infer")) -> dict:
    return {
        "cases": [case.to_dict() for case in cases],
        "rounds": plan.rounds,
        "min_seconds": plan.min_seconds,
        "kinds": list(kinds),
    }


def measure_grid(plan: Plan) -> pd.DataFrame:
    rows = []
    for steps, units in plan.sizes:
        log(f"grid T={steps} units={units}")
        rows += run_worker(timing_job(grid_cases(steps, units), plan))
    return pd.DataFrame(rows).assign(backend="tensorflow")


def installed(backend: str) -> bool:
    try:
        metadata.version(backend)
    except metadata.PackageNotFoundError:
        return False
    return True


def compilation_cases(cells, jits, target: tuple[int, int]) -> list[Case]:
    """Plain, ours and Keras's layer for `cells` with each `jit_compile` in `jits`, at the
    target size, and PyTorch's layers (uncompiled, PyTorch's own kernels) beside them."""
    size = dict(zip(("steps", "units"), target, strict=True))
    cases = [
        Case(impl=impl, cell=cell, jit=jit, **size)
        for jit in jits
        for cell in cells
        for impl in ("ours", "plain")
    ]
    cases += [case for jit in jits for case in library_cases(cells, jit=jit, **size)
              if case.impl == "keras"]
    return cases + [case for case in library_cases(cells, **size) if case.impl == "torch"]


def measure_compilation(plan: Plan) -> pd.DataFrame:
    """Per installed backend, interleaved with PyTorch's layers: inference of every cell with
    jit_compile on and off, the training step of `plan.jit_cells` likewise; and unroll on/off
    for short sequences (TF)."""
    rows = []
    for backend in filter(installed, plan.backends):
        # torch backend: jit would be torch.compile of a Python loop over T steps (minutes,
        # docs/performance.md); JAX: jit off re-traces the loop at every call (seconds)
        jits = {"torch": (False,), "jax": (True,)}.get(backend, (False, True))
        for kind, cells in (("infer", plan.infer_cells), ("train", plan.jit_cells)):
            log(f"jit_compile {jits}, {kind}, {backend}")
            job = timing_job(compilation_cases(cells, jits, plan.target), plan, kinds=(kind,))
            rows += [{**row, "backend": backend, "job": "jit"} for row in run_worker(job, backend)]
        if backend == "jax":  # eager JAX: one call of each, to show why jit stays on
            cases = compilation_cases(plan.jit_cells[:1], (False,), plan.target)
            job = timing_job([case for case in cases if case.impl != "torch"], plan)
            job.update(rounds=1, min_seconds=0.0, warmup=1)
            rows += [{**row, "backend": backend, "job": "jit"} for row in run_worker(job, backend)]
    cases = [
        Case(impl=impl, cell=cell, unroll=unroll, steps=plan.short_steps, units=plan.target[1])
        for cell in plan.jit_cells
        for impl in ("ours", "keras")
        for unroll in (False, True)
    ]
    log(f"unroll on/off at T={plan.short_steps}")
    job = timing_job(cases, plan)
    rows += [{**row, "backend": "tensorflow", "job": "unroll"} for row in run_worker(job)]
    return pd.DataFrame(rows)


def measure_memory(plan: Plan) -> pd.DataFrame:
    """Peak RSS of every grid case (plain, ours, Keras) at `plan.memory_sizes`, each case in a
    fresh process."""
    rows = []
    for steps, units in plan.memory_sizes:
        for case in grid_cases(steps, units):
            if case.cell in plan.memory_cells and case.impl != "torch":  # TF's RSS only
                log(f"memory {case.label} T={steps} units={units}")
                rows.append(run_worker({"memory": case.to_dict()}))
    return pd.DataFrame(rows)


PARTS = {"grid": measure_grid, "compilation": measure_compilation, "memory": measure_memory}


def machine() -> dict:
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        model = names[0].split(":", 1)[1].strip() if names else model
    packages = ("keras", "tensorflow", "jax", "torch", "numpy", "mlflow")
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        **{name: metadata.version(name) for name in packages if installed(name)},
    }


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    parser.add_argument(
        "--plot", type=Path, default=None, help="default: scaling.png beside output"
    )
    parser.add_argument("--quick", action="store_true", help="one size, fewer rounds (≈ 6 min)")
    parser.add_argument(
        "--render", type=Path, default=None, help="re-render from a results.json, measure nothing"
    )
    parser.add_argument(
        "--only", choices=PARTS, default=None,
        help="re-measure one part into the existing results.json, keep the others",
    )
    parser.add_argument(
        "--sizes", nargs="+", default=None, metavar="TxUNITS",
        help="with --only grid: re-measure these sizes (e.g. 100x128), keep the other sizes' rows",
    )
    args = parser.parse_args(argv)
    if args.sizes and args.only != "grid":
        parser.error("--sizes goes with --only grid")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    raw = args.output.with_name("results.json")
    if args.render:
        results = json.loads(args.render.read_text())
    elif args.only:
        results = json.loads(raw.read_text())
        start, load = time.perf_counter(), os.getloadavg()[0]
        plan, kept = Plan.quick() if args.quick else Plan(), []
        if args.sizes:
            plan = replace(plan, sizes=tuple(parse_size(size) for size in args.sizes))
            kept = [row for row in results[args.only]
                    if (row["steps"], row["units"]) not in plan.sizes]
        results[args.only] = kept + PARTS[args.only](plan).to_dict(orient="records")
        command = "python -m benchmarks.run " + " ".join(argv if argv is not None else sys.argv[1:])
        results["context"].setdefault("updates", []).append(
            f"{args.only} {'at ' + ', '.join(args.sizes) + ' ' if args.sizes else ''}"
            f"re-measured by `{command}` on {time.strftime('%Y-%m-%d %H:%M')} in "
            f"{(time.perf_counter() - start) / 60:.1f} min, load average {load:.2f} before, "
            f"{os.getloadavg()[0]:.2f} after"
        )
        raw.write_text(json.dumps(results, indent=1))
    else:
        results = measure(Plan.quick() if args.quick else Plan(), args.quick, argv)
        raw.write_text(json.dumps(results, indent=1))
    frames = {key: pd.DataFrame(results[key]) for key in ("grid", "compilation", "memory")}
    plot = args.plot or args.output.with_name("scaling.png")
    report.scaling_plot(frames["grid"], plot)
    text = report.markdown(**frames, context=results["context"], plot=plot)
    args.output.write_text(text)
    log(f"wrote {args.output} and {plot}" + ("" if args.render else f"; raw rows in {raw}"))


def parse_size(text: str) -> tuple[int, int]:
    """"100x128" -> (100, 128): T and units."""
    try:
        steps, units = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"--sizes: {text!r} is not TxUNITS, e.g. 100x128") from None
    return steps, units


def measure(plan: Plan, quick: bool, argv: list[str] | None) -> dict:
    """Run every part of the plan; plain rows (JSON-ready) and the context they ran in."""
    start, load_before = time.perf_counter(), os.getloadavg()
    results, part_s = {}, {}
    for name, part in PARTS.items():
        begun = time.perf_counter()
        results[name] = part(plan).to_dict(orient="records")
        part_s[name] = round(time.perf_counter() - begun, 1)
    results["context"] = {
        "machine": machine(),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "wall_s": time.perf_counter() - start,
        "part_s": part_s,
        "quick": quick,
        "command": "python -m benchmarks.run "
        + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    return results


if __name__ == "__main__":
    main()
