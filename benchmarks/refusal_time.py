"""How long `rnnlab` takes to refuse a bad key: the whole process, start to exit code 2.

    python -m benchmarks.refusal_time                      # this tree, 5 repeats
    python -m benchmarks.refusal_time --also /work/main    # and another checkout, interleaved

Each repeat starts a fresh interpreter (`python -m experiments.cli ...`), so the time includes
Python's start-up and every import the refusal pays; the trees alternate, so that a busy machine
slows both alike. Prints the median and the range per tree and command. A benchmark, not a test:
the target (under 1 s for a refused key, issue 26) is read off its output, never asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {
    "run --set bad.key=1": ["run", "--task", "adding", "--cell", "lstm", "--set", "bad.key=1"],
    "run --set model.unit_forget_bias=false (gru)": [
        "run", "--task", "adding", "--cell", "gru", "--set", "model.unit_forget_bias=false"],
    "sweep --dry-run study.yaml": ["sweep", "--dry-run", "experiments/sweeps/study.yaml"],
}


def timed(tree: Path, argv: list[str]) -> tuple[float, int]:
    env = {**os.environ, "PYTHONPATH": str(tree), "TF_CPP_MIN_LOG_LEVEL": "2"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "experiments.cli", *argv], cwd=tree, env=env,
                          check=False,
                          capture_output=True, text=True)
    return time.perf_counter() - start, done.returncode


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--also", type=Path, action="append", default=[],
                        help="another checkout to time the same commands in")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    trees = [ROOT, *args.also]
    print(f"uptime: {os.getloadavg()} (1, 5, 15 min load); {os.cpu_count()} CPUs")
    for name, command in COMMANDS.items():
        seconds: dict[Path, list[float]] = {tree: [] for tree in trees}
        codes: dict[Path, set[int]] = {tree: set() for tree in trees}
        for _ in range(args.repeats):
            for tree in trees:
                wall, code = timed(tree, command)
                seconds[tree].append(wall)
                codes[tree].add(code)
        for tree in trees:
            s = seconds[tree]
            print(f"{name:46s} {tree!s:24s} median {statistics.median(s):5.2f} s "
                  f"(min {min(s):.2f}, max {max(s):.2f}; exit {sorted(codes[tree])})")


if __name__ == "__main__":
    main()
