"""GPU benchmark: our cells under Keras/JAX against torch.nn.LSTM / GRU (cuDNN) on CUDA.

    KERAS_BACKEND=jax python -m benchmarks.gpu              # on a CUDA machine, < 3 min
    KERAS_BACKEND=torch python -m benchmarks.gpu            # the PyTorch backend, < 1 min
    KERAS_BACKEND=jax python -m benchmarks.gpu --cpu-smoke  # tiny sizes on CPU, to test this file

Run through `benchmarks/gpu.sh`, which also installs Keras from `.whl/` where TensorFlow is
absent and runs both backends. Writes a Markdown table to `$OUT/gpu_results_<backend>.md` when
`$OUT` is set, else prints it. Under JAX every case is compiled (`jit_compile=True`, Keras's
"auto") except one jit-off pair; under PyTorch none is (Keras's "auto" leaves `torch.compile`
off: it would compile a Python loop of T steps) and only the first size runs.
Times are seconds per call (median of rounds, IQR) of a compiled training step (forward,
backward, Adam) and of inference, B=64, D=32, Dense(1) head, MSE — as `benchmarks.run`.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.cases import (
    Case,
    seconds_per_call,
    summarize,
    time_interleaved,
    torch_step_functions,
)


@dataclass(frozen=True)
class GpuPlan:
    sizes: tuple[tuple[int, int], ...] = ((100, 128), (100, 256), (500, 128), (500, 256))
    all_cells_sizes: tuple[tuple[int, int], ...] = ((100, 128), (500, 256))
    batch: int = 64
    rounds: int = 3
    min_seconds: float = 0.1
    device: str = "cuda"

    @classmethod
    def cpu_smoke(cls) -> GpuPlan:
        return cls(((10, 8),), ((10, 8),), batch=4, rounds=1, min_seconds=0.0, device="cpu")


def keras_cases(plan: GpuPlan) -> list[Case]:
    """Ours (ProjectedRNN) and plain `RNN(cell)` for LSTM/GRU at every size, the other three
    cells at two, Keras's LSTM/GRU at the first size; all with `jit_compile=True` (the
    jit-off cases are `eager_cases`)."""
    cases = []
    for steps, units in plan.sizes:
        size = {"steps": steps, "units": units, "batch": plan.batch, "jit": True}
        cells = ("vanilla", "lstm", "peephole", "coupled", "gru")
        if (steps, units) not in plan.all_cells_sizes:
            cells = ("lstm", "gru")
        cases += [Case(impl="ours", cell=cell, **size) for cell in cells]
        cases += [Case(impl="plain", cell=cell, **size) for cell in ("lstm", "gru")]
        if (steps, units) == plan.sizes[0]:
            cases += [Case(impl="keras", cell=cell, **size) for cell in ("lstm", "gru")]
    return cases


def torch_backend_cases(plan: GpuPlan) -> list[Case]:
    """Under KERAS_BACKEND=torch: ours, plain and Keras's LSTM/GRU at the first size, jit off."""
    steps, units = plan.sizes[0]
    size = {"steps": steps, "units": units, "batch": plan.batch, "jit": False}
    return [Case(impl=impl, cell=cell, **size)
            for cell in ("lstm", "gru") for impl in ("ours", "plain", "keras")]


def eager_cases(plan: GpuPlan) -> list[Case]:
    """`jit_compile=False` at the first size: JAX then re-traces the scan at every call
    (seconds per step), so these run one round after one warm-up."""
    steps, units = plan.sizes[0]
    size = {"steps": steps, "units": units, "batch": plan.batch, "jit": False}
    return [Case(impl=impl, cell="lstm", **size) for impl in ("ours", "keras")]


def torch_rows(plan: GpuPlan, sizes=None) -> list[dict]:
    """torch.nn.LSTM / GRU (cuDNN on CUDA) with the same head, loss and optimizer."""
    rows = []
    for steps, units in sizes or plan.sizes:
        for cell in ("lstm", "gru"):
            case = Case(impl="torch", cell=cell, steps=steps, units=units, batch=plan.batch)
            for kind, fn in torch_step_functions(case, plan.device).items():
                fn()
                fn()  # warm-up: cuDNN plans, allocator
                samples = [seconds_per_call(fn, plan.min_seconds) for _ in range(plan.rounds)]
                fields = {"impl": "torch", "cell": cell, "steps": steps, "units": units}
                rows.append({**fields, "jit": "-", "kind": kind, **summarize(samples)})
    return rows


def device_name() -> str:
    try:
        query = ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"]
        return subprocess.run(query, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"no GPU ({platform.processor() or platform.machine()})"


def markdown(rows: list[dict], header: list[str]) -> str:
    """The rows as a Markdown table, with each time over torch's for the same cell and size
    (plain Python: the GPU machine may not have pandas)."""
    torch_s = {
        (r["cell"], r["steps"], r["units"], r["kind"]): r["median_s"]
        for r in rows
        if r["impl"] == "torch"
    }
    cols = ["impl", "cell", "steps", "units", "jit", "kind", "ms", "/ torch"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in sorted(rows, key=lambda r: (r["kind"], r["steps"], r["units"], r["cell"], r["impl"])):
        anchor = torch_s.get((r["cell"], r["steps"], r["units"], r["kind"]))
        values = [r["impl"], r["cell"], r["steps"], r["units"], r["jit"], r["kind"]]
        values.append(f"{r['median_s'] * 1e3:.2f} ± {r['iqr_s'] * 1e3:.2f}")
        values.append(f"{r['median_s'] / anchor:.2f}" if anchor else "")
        lines.append("| " + " | ".join(map(str, values)) + " |")
    return "\n".join([*header, "", *lines]) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on CPU, 1 round")
    args = parser.parse_args(argv)
    plan = GpuPlan.cpu_smoke() if args.cpu_smoke else GpuPlan()
    start = time.perf_counter()

    import jax
    import keras
    import torch

    rows, backend = [], keras.backend.backend()
    if backend == "torch":
        stages = [
            ("torch", lambda: torch_rows(plan, plan.sizes[:1])),
            ("eager", lambda: time_interleaved(torch_backend_cases(plan), plan.rounds,
                                               plan.min_seconds)),
        ]
    else:
        stages = [
            ("torch", lambda: torch_rows(plan)),
            ("jit", lambda: time_interleaved(keras_cases(plan), plan.rounds, plan.min_seconds)),
            ("eager", lambda: time_interleaved(eager_cases(plan), 1, 0.0, warmup=1)),
        ]
    for stage, measure in stages:  # the table is rewritten after each stage, in case of timeout
        rows += [{**row, "jit": str(row["jit"])} for row in measure()]
        header = [
            f"### GPU: {device_name()}, Keras backend {backend}"
            + (" — CPU SMOKE RUN, not a measurement" if args.cpu_smoke else ""),
            "",
            (
                f"keras {keras.__version__} ({keras.backend.backend()}), jax {jax.__version__} "
                f"on {jax.devices()[0].platform}, torch {torch.__version__} on {plan.device}; "
                f"B={plan.batch}, D=32; median ± IQR of {plan.rounds} rounds"
                f"{' (jit off: 1 call)' if backend == 'jax' else ''}; "
                "ours = ProjectedRNN(cells.get(cell)); plain = keras.layers.RNN(cells.get(cell)); "
                "keras = keras.layers.LSTM/GRU; "
                f"torch = torch.nn.LSTM/GRU; stages done: {stage} after "
                f"{time.perf_counter() - start:.0f} s."
            ),
        ]
        text = markdown(rows, header)
        out = os.environ.get("OUT")
        if out:
            Path(out, f"gpu_results_{backend}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
