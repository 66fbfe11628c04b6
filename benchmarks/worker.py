"""Run benchmark cases in this process and print the results as one JSON line.

    KERAS_BACKEND=jax python -m benchmarks.worker '{"cases": [{...}], "rounds": 5}'
    python -m benchmarks.worker '{"memory": {...one case...}}'

`benchmarks.run` starts one worker per backend, and one per case for peak memory: a
process's resident-set high-water mark (`ru_maxrss`) only ever grows, so each case that
wants its own peak needs its own process.
"""

from __future__ import annotations

import json
import resource
import sys
import time

from benchmarks.cases import Case, step_functions, time_interleaved

MARK = "BENCH-RESULT "  # the line the parent reads; everything else is log noise


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def memory(case: Case, steps: int = 3) -> dict:
    """Peak RSS of the whole process, and its growth from building the model to training it."""
    import keras  # noqa: F401  (imported before the baseline is read)

    before = peak_rss_mb()
    train = step_functions(case)["train"]
    built = peak_rss_mb()
    start = time.perf_counter()
    for _ in range(steps):
        train()
    return {
        **case.to_dict(),
        "rss_before_mb": before,
        "rss_built_mb": built,
        "rss_peak_mb": peak_rss_mb(),
        "first_steps_s": time.perf_counter() - start,
    }


def run_job(job: dict):
    """A memory case's peak RSS, or the interleaved timings of a list of cases."""
    if "memory" in job:
        return memory(Case(**job["memory"]))
    cases = [Case(**fields) for fields in job["cases"]]
    options = {key: job[key] for key in ("rounds", "min_seconds", "warmup", "kinds") if key in job}
    return time_interleaved(cases, **options)


def main(argv: list[str]) -> None:
    print(MARK + json.dumps(run_job(json.loads(argv[0]))), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
