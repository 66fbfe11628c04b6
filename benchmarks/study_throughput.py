"""Runs per hour of the study's toy configurations: one process against `--workers N` (issue 25).

    python -m benchmarks.study_throughput                        # `make bench`: study sizes, 12 epochs
    python -m benchmarks.study_throughput --epochs 1 --num-train 800   # a small, quick size

12 epochs are study_fair.yaml's: at fewer, a run's fixed costs (imports, the store, the claim's
settle time, XLA's compilations) weigh more than in the study, and the ratios mislead (2 epochs of
1,600 sequences gave `--workers 2` 1.73×, 12 epochs at the study's sizes 1.22×).

The configurations are the study's own (experiments/sweeps/study.yaml: matched parameters, its
learning rates and data sizes) for the adding problem, copy memory and temporal order at T = 100,
seed 0, all five cells: 15 runs, each trained for a fixed number of epochs (early stopping off,
so every mode trains the same steps). Each mode is the real command, `rnnlab sweep FILE [--workers
N]`, in a fresh MLflow store, timed end to end (Ray's start and stop included):

- runs per hour = runs / wall time;
- same metrics: each mode's runs' test metrics against the 1-process mode's (largest relative
  difference), since a lever is kept only where it does not change results;
- CPU seconds per run = the CPU time (user + system) of the command and every process it started
  (Ray's daemons and workers too: this process is their subreaper, so they stay its descendants),
  read from /proc every 0.2 s (the last fraction of a second of a process that ends between two
  readings is missed) / runs.

The modes run one after another in this process's order, 1 process first; the machine's load
average is recorded before and after each. Writes benchmarks/study_throughput.json and .md
(RESULTS.md includes the .md).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STUDY = ROOT / "experiments" / "sweeps" / "study.yaml"
TASKS = ("adding", "copy", "temporal_order")
CELLS = ("vanilla", "lstm", "peephole", "coupled", "gru")
PR_SET_CHILD_SUBREAPER = 36
CACHE = "fresh"  # a mode's RNNLAB_COMPILE_CACHE: a new folder of its own (else the cache is off)
CACHED = " + cache"  # the end of such a mode's name


def study_sweep(name: str, epochs: int, num_train: int | None, length: int = 100,
                seeds: int = 1) -> dict:
    """A sweep file's contents: the study's runs of TASKS at T = `length`, seeds 0 to `seeds` - 1
    in the study's seed-major order (every configuration's seed 0 first), every cell, at a fixed
    number of epochs."""
    from experiments.orchestration.plan import load_sweep

    chosen = {}
    for planned in load_sweep(STUDY).runs:
        c = planned.config
        if c.data.name in TASKS and c.data.length == length and c.train.seed == 0 \
                and c.model.unit_forget_bias is not False and c.model.cell in CELLS:
            chosen.setdefault((c.data.name, c.model.cell), c)
    tasks = []
    for (task, _cell), config in sorted(chosen.items()):
        entry = {"data.name": task, "data.length": length, "data.num_train":
                 num_train or config.data.num_train, "data.num_val": config.data.num_val,
                 "data.num_test": config.data.num_test, "train.lr": config.train.lr,
                 "model.match_params": config.model.match_params, "model.units":
                 config.model.units}
        if entry not in tasks:
            tasks.append(entry)
    return {"name": name, "base": {"train": {"epochs": epochs, "early_stopping_patience": None,
                                             "verbose": 0},
                                   "tracking": {"log_model": False}},
            "tasks": [{**entry, "train.seed": seed} for seed in range(seeds) for entry in tasks],
            "grid": {"model.cell": list(CELLS)}}


def become_subreaper() -> None:
    """Orphans of the commands below (Ray's daemons and workers) are re-parented to this process,
    so that reaping them adds their CPU time to RUSAGE_CHILDREN."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


class CpuClock:
    """CPU seconds of every descendant of this process, read from /proc: the most each process
    was seen with (its own time plus its reaped children's)."""

    def __init__(self):
        self.seen: dict[tuple[int, str], float] = {}
        self.tick = os.sysconf("SC_CLK_TCK")

    def read(self) -> None:
        parents, times = {}, {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            pid = int(entry.name)
            parents[pid] = int(fields[1])
            # utime, stime, cutime, cstime; the start time tells a reused pid apart
            times[(pid, fields[19])] = sum(int(x) for x in fields[11:15]) / self.tick
        me = os.getpid()
        for (pid, start), seconds in times.items():
            ancestor = parents.get(pid)
            while ancestor not in (None, 0, 1, me):
                ancestor = parents.get(ancestor)
            if ancestor == me:
                self.seen[(pid, start)] = max(self.seen.get((pid, start), 0.0), seconds)

    @property
    def seconds(self) -> float:
        return sum(self.seen.values())


def reap(clock: CpuClock, timeout_s: float = 120) -> None:
    """Wait for every descendant left (Ray's processes end shortly after the driver)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            clock.read()
            time.sleep(0.2)


def measure(mode: str, flags: list[str], sweep: dict, folder: Path, command: str = "sweep",
            count: Callable[[str], int] | None = None, extra_env: dict | None = None) -> dict:
    """Run `rnnlab <command>` (sweep, or tune: `sweep` is then a search space) on `sweep` with
    `flags` (and `extra_env`, e.g. KERAS_BACKEND) in a fresh store; wall and CPU seconds;
    `count(stdout)` runs (default: the runs FINISHED in the store)."""
    sweep = {**sweep, "name": f"{sweep['name']}-{mode}"}
    file = folder / f"{sweep['name']}.yaml"
    file.write_text(yaml.safe_dump(sweep))
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{folder}/{mode}.db",
           "RNNLAB_CHECKPOINT_DIR": str(folder / f"ck-{mode}"), "TF_CPP_MIN_LOG_LEVEL": "2",
           "RNNLAB_TUNING_DIR": str(folder / f"wd-{mode}"),
           "PYTHONPATH": str(ROOT), **(extra_env or {})}
    env.pop("RAY_ADDRESS", None)
    env.pop("JAX_COMPILATION_CACHE_DIR", None)  # else it would win over the mode's folder
    # the compile cache: off, or (CACHE) a fresh folder of this mode's own, so that it starts cold
    env["RNNLAB_COMPILE_CACHE"] = (str(folder / f"cache-{mode}")
                                   if env.get("RNNLAB_COMPILE_CACHE") == CACHE else "off")
    load_before, clock = os.getloadavg(), CpuClock()
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, "-m", "experiments.cli", command, str(file),
                                 *flags], cwd=ROOT, env=env, stdout=out, stderr=err, text=True)
        while proc.poll() is None:
            clock.read()
            time.sleep(0.2)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    clock.read()
    reap(clock)
    if proc.returncode:
        raise RuntimeError(f"{mode} failed ({proc.returncode}):\n{stdout[-3000:]}"
                           f"\n{stderr[-3000:]}")
    metrics = test_metrics(env["MLFLOW_TRACKING_URI"])
    runs = count(stdout) if count else len(metrics)
    cpu = clock.seconds
    prefix = "".join(f"{k}={'DIR' if v == CACHE else v} " for k, v in (extra_env or {}).items())
    return {"mode": mode, "command": f"{prefix}rnnlab {command} FILE " + " ".join(flags),
            "runs": runs,
            "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "runs_per_hour": round(runs / wall * 3600, 1), "cpu_s_per_run": round(cpu / runs, 1),
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in os.getloadavg()],
            "metrics": metrics}


def test_metrics(uri: str) -> dict[str, dict[str, float]]:
    """Each finished run's test metrics in the store at `uri`, by "task/cell/seed"."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    found = mlflow.search_runs(search_all_experiments=True,
                               filter_string="attributes.status = 'FINISHED'")
    found = found[found["params.model.cell"].notna()]  # not the sweep's parent run
    columns = [c for c in found.columns if c.startswith("metrics.test_")]
    return {f"{row['params.data.name']}/{row['params.model.cell']}/{row['params.train.seed']}":
            {c.removeprefix("metrics."): float(row[c]) for c in columns if row[c] == row[c]}
            for _, row in found.iterrows()}


def differences(rows: list[dict]) -> list[str]:
    """Per mode after the first: how far its runs' test metrics are from the first mode's (the
    same configurations, seeds and data), as the largest relative difference and where; a mode
    with the compile cache also against its twin without (a cache must change nothing)."""
    by_mode, lines = {r["mode"]: r for r in rows}, []
    for row in rows[1:]:
        twin = by_mode.get(row["mode"].removesuffix(CACHED))
        for reference in [rows[0]] + ([twin] if twin and twin is not row else []):
            lines.append(f"{row['mode']}: " + difference(row, reference))
    return lines


def difference(row: dict, reference: dict) -> str:
    """The largest relative difference of `row`'s test metrics from `reference`'s, and where."""
    first, worst, where, compared = reference.get("metrics") or {}, 0.0, "", 0
    for run, metrics in (row.get("metrics") or {}).items():
        for name, value in metrics.items():
            base = first.get(run, {}).get(name)
            if base is None:
                continue
            compared += 1
            rel = abs(value - base) / max(abs(base), 1e-12)
            if rel >= worst:
                worst, where = rel, f"{run} {name}: {base:.6g} → {value:.6g}"
    return (f"{compared} test metrics of {len(row.get('metrics') or {})} runs against "
            f"{reference['mode']}'s; largest relative difference {worst:.1e}"
            + (f" ({where})" if worst else ""))


def solved(run: str, metrics: dict[str, float], length: int) -> bool:
    """Whether a run ("task/cell/seed") solved its task by the task's own rule (its DataSpec's
    goal, as the study's pages judge it)."""
    from experiments import goals

    task = run.split("/")[0]
    goal = goals.spec(task, {"params.data.length": length}).goal
    return bool(goal.solved({k.removeprefix("test_"): v for k, v in metrics.items()}))


def solved_shares(rows: list[dict], length: int) -> list[str]:
    """Per mode after the first: whether its runs solve as often as the first mode's. A lever
    that is not exact can still leave results alike in distribution over seeds (issue 25's other
    criterion): Fisher's exact test per configuration (its seeds, the study's test) and over all
    runs, with the difference of solved shares and its 95 % interval (experiments.analysis.stats,
    the pages' own test). Not a proof of sameness: a wide interval says how large a difference
    these seeds cannot rule out."""
    from experiments.analysis import stats as st

    def configuration(run: str) -> str:  # "task/cell" of "task/cell/seed" (older files: no seed)
        return "/".join(run.split("/")[:2])

    def sample(row: dict, chosen: str | None = None) -> st.Sample:
        found = [solved(run, m, length) for run, m in sorted(row.get("metrics", {}).items())
                 if chosen in (None, configuration(run))]
        return st.Sample.of(found, found)

    lines, first = [], rows[0]
    configurations = sorted({configuration(run) for run in first.get("metrics", {})})
    for row in rows[1:]:
        if not row.get("metrics"):
            continue
        every = st.compare("all", sample(row), sample(first), kind=st.SOLVED)
        per = [st.compare(c, sample(row, c), sample(first, c), kind=st.SOLVED)
               for c in configurations]
        tested = [c for c in per if not math.isnan(c.fisher_p)]
        low = min(tested, key=lambda c: c.fisher_p) if tested else None
        lines.append(
            f"{row['mode']}: solved {every.a.k} of {every.a.n} runs, {first['mode']} "
            f"{every.b.k} of {every.b.n} (each task's own rule); difference of solved shares "
            f"{every.effect:+.3f}, 95 % interval [{every.ci[0]:+.2f}, {every.ci[1]:+.2f}], "
            f"Fisher's exact p = {every.fisher_p:.2f}. " + (
                f"Per configuration ({len(per)}, {low.a.n} seeds each): the smallest p "
                f"{low.fisher_p:.2f} ({low.setting}: {low.a.k}/{low.a.n} against "
                f"{low.b.k}/{low.b.n}), {sum(c.fisher_p < st.ALPHA for c in tested)} below "
                f"{st.ALPHA}." if low else
                f"Per configuration: no test ({len(per)} configurations, one seed each)."))
    return lines


def seeds_text(seeds: int) -> str:
    return "seed 0" if seeds == 1 else f"seeds 0–{seeds - 1} (seed-major, as the study)"


def render(data: dict) -> str:
    rows = data["rows"]
    base = rows[0]["runs_per_hour"]
    lines = [("| mode | command | runs | wall s | runs / hour | × 1 process | CPU s / run | "
              "load before → after (1 min) |"), "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['mode']} | `{r['command']}` | {r['runs']} | {r['wall_s']} | "
                     f"{r['runs_per_hour']} | {r['runs_per_hour'] / base:.2f}× | "
                     f"{r['cpu_s_per_run']} | {r['load_before'][0]} → {r['load_after'][0]} |")
    s = data["settings"]
    return "\n".join([
        measured(data),
        "",
        (f"The study's toy configurations ({', '.join(TASKS)} at T = {s['length']}, "
         f"{seeds_text(s.get('seeds', 1))}, the "
         f"five cells: {rows[0]['runs']} runs), {s['epochs']} epoch(s) each without early "
         f"stopping, {s['num_train'] or 'the study’s'} training sequences; every mode the real "
         "`rnnlab sweep` in a fresh MLflow store, Ray's start and stop included. CPU seconds count "
         "the command and every process it started. The compile cache is off except in the "
         "modes named '+ cache' (each a fresh folder, so it starts cold). Target (issue 25): ≥ 2× "
         "the runs per hour of 1 process."),
        "", *lines, "", ("Same metrics? Each run's test metrics against the first mode's (the same "
        "configurations, seeds and data):"), "", *[f"- {line}" for line in differences(rows)],
        "", ("Alike over seeds? Runs that solved their task (what the study's verdicts count), "
             "each mode against the first:"), "",
        *[f"- {line}" for line in solved_shares(rows, s["length"])],
        "", *[f"- {note}" for note in data.get("notes", [])], ""])


def compare(name: str, modes: list[tuple], spec: dict, *,
            command: str = "sweep", count: Callable[[str], int] | None = None) -> tuple[str, list]:
    """`uptime`, then each (mode, flags[, environment]) of `rnnlab <command>` on `spec` one after
    another, each in fresh stores (`measure`): the uptime line and a row per mode."""
    uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for mode, flags, *extra_env in modes:
            print(f"[{name}] {mode} ...", file=sys.stderr, flush=True)
            rows.append(measure(mode.replace(" ", "-").replace(",", ""), flags, spec, Path(folder),
                                command=command, count=count,
                                extra_env=extra_env[0] if extra_env else None))
            rows[-1]["mode"] = mode
            print(f"[{name}] {rows[-1]}", file=sys.stderr, flush=True)
    return uptime.strip(), rows


def record(module: str, argv: list[str] | None, uptime: str, settings: dict, rows: list,
           notes: list[str], output: Path, render: Callable[[dict], str]) -> None:
    """Write the measurement as `output` (JSON) and its table beside it (.md), and print it."""
    from benchmarks.run import machine

    m = machine()
    data = {"command": f"python -m {module} "
                       + shlex.join(argv if argv is not None else sys.argv[1:]),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{m['cpu']}, {m['cores']} cores", "uptime": uptime,
            "settings": settings, "rows": rows, "notes": notes}
    output.write_text(json.dumps(data, indent=1))
    output.with_suffix(".md").write_text(render(data))
    print(render(data))


def measured(data: dict) -> str:
    """The line that says which command measured, when, where, under which load."""
    return (f"Measured with `{data['command']}` on {data['date']}, {data['machine']}; "
            f"`uptime` before: {data['uptime']}.")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--num-train", type=int, default=None,
                        help="training sequences per run (default: the study's, 3,200–4,000)")
    parser.add_argument("--seeds", type=int, default=1,
                        help="seeds per configuration, seed-major as the study runs them (the "
                        "study has 5; the compile cache pays from the second)")
    parser.add_argument("--workers", type=int, nargs="+", default=[2])
    parser.add_argument("--no-jax", dest="jax", action="store_false",
                        help="leave out the JAX-backend modes (KERAS_BACKEND=jax)")
    parser.add_argument("--no-xla", dest="xla", action="store_false",
                        help="leave out the XLA modes (train.jit_compile)")
    parser.add_argument("--modes", nargs="+", metavar="MODE",
                        help="only these modes, by name (e.g. '1 process' '--workers 2, JAX')")
    parser.add_argument("--note", action="append", default=[], help="a line under the table")
    parser.add_argument("--output", type=Path, default=HERE / "study_throughput.json")
    parser.add_argument("--render", type=Path, metavar="JSON",
                        help="measure nothing: write the .md of a measurement saved before")
    args = parser.parse_args(argv)
    if args.render:
        args.render.with_suffix(".md").write_text(render(json.loads(args.render.read_text())))
        return
    become_subreaper()
    sweep = study_sweep("throughput", args.epochs, args.num_train, seeds=args.seeds)
    modes = [("1 process", [])] + [(f"--workers {n}", ["--workers", str(n)]) for n in args.workers]
    if args.xla:  # XLA-compiled training steps (train.jit_compile)
        modes += [(f"--workers {n} + XLA", ["--workers", str(n), "--set", "train.jit_compile=true"])
                  for n in args.workers]
    if args.jax:  # the JAX backend: Keras compiles its step with XLA itself, no flag needed
        jax = {"KERAS_BACKEND": "jax"}
        modes += [("1 process, JAX", [], jax)]
        modes += [(f"--workers {n}, JAX", ["--workers", str(n)], jax) for n in args.workers]
    # JAX's compiled programs kept on disk (experiments.orchestration.engine.compile_cache_env):
    # a seed of a configuration another run compiled loads its programs (with --seeds 2 and more)
    if args.jax:
        modes += [(f"--workers {n}, JAX{CACHED}", ["--workers", str(n)],
                   {**jax, "RNNLAB_COMPILE_CACHE": CACHE}) for n in args.workers]
    if args.modes:
        unknown = sorted(set(args.modes) - {m[0] for m in modes})
        if unknown:
            parser.error(f"--modes: no mode {unknown}; the modes: {[m[0] for m in modes]}")
        modes = [m for m in modes if m[0] in args.modes]
    uptime, rows = compare("throughput", modes, sweep)
    record("benchmarks.study_throughput", argv, uptime,
           {"epochs": args.epochs, "num_train": args.num_train, "length": 100,
            "seeds": args.seeds}, rows, args.note,
           args.output, render)


if __name__ == "__main__":
    main()
