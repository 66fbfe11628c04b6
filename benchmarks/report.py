"""Turn benchmark rows into RESULTS.md tables and the scaling plot."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from benchmarks.cases import KERAS_LAYERS, TORCH_LAYERS, TORCH_PEER

HERE = Path(__file__).resolve().parent
SWEEP_COST = HERE / "sweep_cost.json"  # written by `python -m benchmarks.sweep_cost`
GPU_RESULTS = HERE / "gpu_results.md"  # copied here from the GPU run of `benchmarks/gpu.sh`
VARIANTS = HERE / "variants.md"  # written by `python -m benchmarks.variants`
STUDY_THROUGHPUT = HERE / "study_throughput.md"  # written by `python -m benchmarks.study_throughput`
INFERENCE = HERE / "inference.md"  # `python -m benchmarks.inference --render benchmarks/inference.json`
TARGETS = {"vs_keras": 0.7, "vs_lstm": 1.15, "sweep_min": 15, "tracking_pct": 3}


def table(frame: pd.DataFrame) -> str:
    """A Markdown table (no extra dependency); floats to 3 significant digits."""

    def cell(value):
        if isinstance(value, float):
            return "" if pd.isna(value) else f"{value:.3g}"
        return str(value)

    frame = frame.reset_index()
    names = [
        " ".join(map(str, c)).strip() if isinstance(c, tuple) else str(c) for c in frame.columns
    ]
    lines = ["| " + " | ".join(names) + " |"]
    lines.append("|" + "---|" * len(frame.columns))
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join(lines)


def ms(value: float, spread: float) -> str:
    return f"{value * 1e3:.1f} ± {spread * 1e3:.1f}"


def target_rows(grid: pd.DataFrame, kind: str, steps: int = 100, units: int = 128) -> pd.DataFrame:
    """One row per cell at the target size: ours, plain and Keras, and the ratios."""
    at = grid[(grid.kind == kind) & (grid.steps == steps) & (grid.units == units)]
    median = at.pivot_table(index="cell", columns="impl", values="median_s")
    iqr = at.pivot_table(index="cell", columns="impl", values="iqr_s")
    keras_of = {"vanilla": "vanilla", "lstm": "lstm", "gru": "gru"}
    rows = {}
    for cell in median.index:
        row = {
            impl + " ms (IQR)": ms(median.loc[cell, impl], iqr.loc[cell, impl])
            for impl in median.columns
            if pd.notna(median.loc[cell, impl])
        }
        ours = median.loc[cell, "ours"]
        if cell in keras_of and "keras" in median.columns:
            row["ours / keras"] = ours / median.loc[keras_of[cell], "keras"]
        plain = median.loc[cell, "plain"] if "plain" in median.columns else float("nan")
        if "torch" in median.columns:  # peephole and coupled: against torch.nn.LSTM
            torch_s = median.loc[TORCH_PEER[cell], "torch"]
            row["torch peer"] = f"nn.{TORCH_LAYERS[TORCH_PEER[cell]]}"
            row["ours / torch"] = ours / torch_s
            if pd.notna(plain):
                row["plain / torch"] = plain / torch_s
        if pd.notna(plain):
            row["ours / plain"] = ours / plain
        row["ours / our lstm"] = ours / median.loc["lstm", "ours"]
        if pd.notna(plain):  # the CPU default path (model.projected: auto)
            if cell in keras_of and "keras" in median.columns:
                row["plain / keras"] = plain / median.loc[keras_of[cell], "keras"]
            row["plain / plain lstm"] = plain / median.loc["lstm", "plain"]
        rows[cell] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("cell")


def by_size(frame: pd.DataFrame, values: str) -> pd.DataFrame:
    """`values` pivoted to one column per size "T=… u=…", sizes in numeric order."""
    frame = frame.sort_values(["steps", "units"])
    frame["size"] = "T=" + frame.steps.astype(str) + " u=" + frame.units.astype(str)
    table = frame.pivot_table(index=["impl", "cell"], columns="size", values=values)
    return table[list(dict.fromkeys(frame["size"]))]


def grid_table(grid: pd.DataFrame, kind: str) -> pd.DataFrame:
    at = grid[grid.kind == kind].copy()
    at["ms"] = at.median_s * 1e3
    return by_size(at, "ms")


def ratio_table(grid: pd.DataFrame, kind: str, anchor: str = "keras") -> pd.DataFrame:
    """Plain and ours over Keras's layer of the same math (`anchor="keras"`), or over PyTorch's
    (`"torch"`; peephole and coupled over torch's LSTM), per cell and size."""
    at = grid[grid.kind == kind]
    at = at.pivot_table(index=["cell", "steps", "units"], columns="impl", values="median_s")
    peer = TORCH_PEER if anchor == "torch" else {cell: cell for cell in KERAS_LAYERS}
    base = at[anchor].to_dict()
    nan = float("nan")
    at["base"] = [base.get((peer.get(c), t, u), nan) for c, t, u in at.index]
    at = at.dropna(subset=["base"])
    ratios = [
        (at[impl] / at.base).reset_index(name="ratio").assign(impl=impl)
        for impl in ("plain", "ours") if impl in at.columns
    ]
    return by_size(pd.concat(ratios), "ratio")


def torch_ratios(grid: pd.DataFrame, kind: str) -> str:
    if "torch" not in set(grid.impl):
        return ("Not in these grid rows (measured before the torch peer was added to the grid; "
                "the next `make bench` measures it). See the inference and jit tables below.")
    return table(ratio_table(grid, kind, anchor="torch"))


def torch_baseline(frame: pd.DataFrame) -> pd.Series:
    """For each row, the median of the `torch.nn` peer measured in the same job (same backend,
    size and kind); NaN where there is none."""
    keys = ["backend", "steps", "units", "kind"]
    torch_rows = frame[frame.impl == "torch"].set_index([*keys, "cell"]).median_s.to_dict()
    return pd.Series(
        [torch_rows.get((*(r[k] for k in keys), TORCH_PEER.get(r["cell"])), float("nan"))
         for _, r in frame.iterrows()],
        index=frame.index,
    )


def inference_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Inference per backend and cell (the jit comparison's size): ms for each layer with
    jit_compile off / on, and in brackets that time over PyTorch's peer measured beside it."""
    job = frame.job if "job" in frame.columns else pd.Series("jit", index=frame.index)
    at = frame[(frame.kind == "infer") & (job == "jit")].copy()
    at = at[~at.duplicated(["backend", "impl", "cell", "jit"])]
    at["torch_s"] = torch_baseline(at)
    at["layer"] = [impl + (" jit" if jit and impl != "torch" else "")
                   for impl, jit in zip(at.impl, at.jit, strict=True)]
    at["entry"] = [f"{m * 1e3:.1f} ({m / t:.2f}×)" if pd.notna(t) else f"{m * 1e3:.1f}"
                   for m, t in zip(at.median_s, at.torch_s, strict=True)]
    order = [name for name in ("plain", "plain jit", "ours", "ours jit", "keras", "keras jit",
                               "torch") if name in set(at.layer)]
    return at.pivot(index=["backend", "cell"], columns="layer", values="entry")[order].fillna("")


def compilation_table(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["ms"] = [ms(m, i) for m, i in zip(frame.median_s, frame.iqr_s, strict=True)]
    frame["compile s"] = frame.compile_s.round(1)
    frame["/ torch"] = frame.median_s / torch_baseline(frame)
    cols = ["backend", "impl", "cell", "steps", "jit", "unroll", "kind", "ms", "/ torch",
            "compile s"]
    return frame[cols].set_index("backend")


def memory_table(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.assign(
        **{
            "peak RSS MB": frame.rss_peak_mb.round(0),
            "training growth MB": (frame.rss_peak_mb - frame.rss_built_mb).round(0),
        }
    )
    return frame[["impl", "cell", "steps", "units", "peak RSS MB", "training growth MB"]].set_index(
        "impl"
    )


def scaling_plot(grid: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = grid[(grid.kind == "train") & grid.impl.isin(["plain", "keras"])]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), dpi=80)
    for axis, (x, fixed, value) in zip(
        axes, [("steps", "units", 128), ("units", "steps", 100)], strict=True
    ):
        part = train[train[fixed] == value]
        for (impl, cell), rows in part.groupby(["impl", "cell"]):
            rows = rows.sort_values(x)
            style = "-" if impl == "plain" else "--"
            axis.plot(rows[x], rows.median_s * 1e3, style, marker="o", label=f"{impl} {cell}")
        axis.set(xlabel=x, ylabel="training step, ms", title=f"{fixed} = {value}, B = 64")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def optional_section(path: Path, title: str, missing: str) -> str:
    body = path.read_text().strip() if path.exists() else missing
    return f"## {title}\n\n{body}\n"


def sweep_section() -> str:
    command = "python -m benchmarks.sweep_cost  # writes benchmarks/sweep_cost.json"
    if not SWEEP_COST.exists():
        return (
            "## Quick sweep and MLflow cost — to be measured\n\n"
            f"Not measured yet. Measure with\n\n    {command}\n"
        )
    data = json.loads(SWEEP_COST.read_text())
    rows = pd.DataFrame(data["rows"]).set_index(data["index"])
    notes = "\n".join(f"- {note}" for note in data.get("notes", []))
    return f"## Quick sweep and MLflow cost\n\nMeasured with `{command}`.\n\n{table(rows)}\n\n{notes}\n"


def markdown(grid, compilation, memory, context, plot: Path) -> str:
    m = context["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m.items() if k not in ("cpu", "cores"))
    load = "load average {:.2f} / {:.2f} / {:.2f}"
    parts = [
        "# Benchmark results\n",
        f"Generated by `{context['command']}` (`make bench`) in {context['wall_s'] / 60:.1f} min"
        + (" — QUICK subset" if context["quick"] else "")
        + ".\n",
        f"- Machine: {m['cpu']}, {m['cores']} cores; {versions}",
        (
            f"- Before: {load.format(*context['load_before'])}; "
            f"after: {load.format(*context['load_after'])} (a shared machine: read ratios, not ms)"
        ),
        *[f"- Since: {update}" for update in context.get("updates", [])],
        (
            "- Model: Input(B=64, T, D=32) → recurrent layer → Dense(1), MSE, Adam. "
            "Training step = `train_on_batch`; inference = `predict_on_batch`. Each number is the "
            "median over rounds (IQR after ±) of seconds per call; all cases of one size run "
            "interleaved in one process. TensorFlow backend, `jit_compile=False` unless stated."
        ),
        (
            "- ours = `cells.fast.ProjectedRNN(cells.get(name))`; plain = `keras.layers.RNN(cell)`; "
            "keras = `keras.layers.SimpleRNN/LSTM/GRU`; torch = PyTorch's `torch.nn.RNN/LSTM/GRU` "
            "in plain PyTorch (its own CPU kernels, `torch.set_num_threads(cores)`), same head, "
            "loss and Adam, timed in the same process, interleaved with the others. PyTorch has "
            "no peephole or coupled (CIFG) layer: those two cells are compared to `torch.nn.LSTM`."
            + (f" Parts (s): {context['part_s']}." if "part_s" in context else "")
            + "\n"
        ),
        "## Training step at the target size (T=100, units=128)\n",
        table(target_rows(grid, "train")),
        "\n## Inference at the target size (T=100, units=128)\n",
        table(target_rows(grid, "infer")),
        "\n## Training step, all sizes (ms)\n",
        table(grid_table(grid, "train")),
        "\n## Inference, all sizes (ms)\n",
        table(grid_table(grid, "infer")),
        "\n## Plain and ours / Keras (same math), training step, all sizes\n",
        table(ratio_table(grid, "train")),
        "\n## Plain and ours / PyTorch (peephole, coupled: / torch LSTM), training step\n",
        torch_ratios(grid, "train"),
        "\n## Plain and ours / PyTorch (peephole, coupled: / torch LSTM), inference\n",
        torch_ratios(grid, "infer"),
        f"\n![scaling]({plot.name})\n",
        "## Inference with jit_compile off and on, against PyTorch (T=100, units=128)\n",
        (
            "ms, and in brackets × PyTorch's peer measured in the same process (peephole and "
            "coupled: × `torch.nn.LSTM`). TensorFlow: jit = XLA; JAX: jit is `jax.jit` (off, "
            "every call re-traces: see below); PyTorch backend: jit would be `torch.compile` of "
            "the Python loop, not measured.\n"
        ),
        table(inference_table(compilation)),
        "",
        optional_section(
            INFERENCE,
            "Inference side by side: ours, XLA-compiled, Keras, PyTorch (issue 14)",
            "Not measured yet: `python -m benchmarks.inference` (≈ 1–2 min), then `--render`.",
        ),
        "## jit_compile and unroll\n",
        table(compilation_table(compilation)),
        "\n## Peak memory (process RSS high-water mark, one fresh process per case)\n",
        (
            "`ru_maxrss` after 3 training steps; growth = peak minus the peak right after building "
            "the model (imports and weights excluded). It includes TF's graph and buffers.\n"
        ),
        table(memory_table(memory)),
        "",
        sweep_section(),
        optional_section(
            STUDY_THROUGHPUT,
            "Runs per hour: one process against `rnnlab sweep --workers N` (issue 25)",
            "Not measured yet: `python -m benchmarks.study_throughput` writes "
            "`benchmarks/study_throughput.md`.",
        ),
        optional_section(
            VARIANTS,
            "CPU designs tried for the 0.7× target",
            "Not measured yet: `python -m benchmarks.variants` writes `benchmarks/variants.md`.",
        ),
        optional_section(
            GPU_RESULTS,
            "GPU",
            "To be measured: run `bash benchmarks/gpu.sh` on a CUDA machine and copy its "
            "`gpu_results.md` to `benchmarks/gpu_results.md`; `make bench` then includes it here.",
        ),
    ]
    return "\n".join(parts) + "\n"
