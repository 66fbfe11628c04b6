"""What the command line shows: values for people, TensorFlow's start-up noise kept off stderr,
and the check that `import datasets` finds this project's package (`experiments/cli.py` parses
and dispatches; this is what its commands print through)."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading


def check_datasets_package() -> None:
    """Fail clearly when `import datasets` finds Hugging Face's package instead of ours.

    Our data package is called `datasets`, like Hugging Face's. If both are installed, whichever comes
    first on sys.path wins; ours marks itself with `RNNLAB = True`.
    """
    import datasets

    if not getattr(datasets, "RNNLAB", False):
        location = getattr(datasets, "__file__", "?")
        raise SystemExit(
            f"rnnlab: `import datasets` resolved to another package ({location}), most likely "
            "Hugging Face's `datasets`. RNN Cell Lab ships its own `datasets` package: run rnnlab "
            "from a virtual environment without Hugging Face's (`make run` creates one in .venv), "
            "or `pip uninstall datasets` there and reinstall this project."
        )


def readable(value) -> str:
    """A value for people (`data info`, a run's results): floats to 4 significant digits, thousands separated,
    mappings as `key value, ...`, lists comma-separated."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e15 else f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {readable(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(readable(v) for v in value)
    return str(value)


# Start-up lines of TensorFlow, absl and CUDA that say nothing to a user: absl's notice before its
# initialisation, C++ INFO/WARNING lines, the CPU-instructions hint, the CUDA probes' errors on a
# machine without a GPU, and oneDNN's notice (logged as an error) that it leaves boolean ops to Eigen
# on a CPU without AVX-512. Other C++ errors and everything Python writes pass through.
NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} [\d:. ]+\d+ \S+:\d+\] "
    r"|E\d{4} [\d:. ]+\d+ \S+:\d+\] (failed call to cuInit|Unable to register cu\w+ factory"
    r"|oneDNN supports DT_BOOL only on platforms with AVX-512)"
    r"|To enable the following instructions: "
)


@contextlib.contextmanager
def native_noise_filtered():
    """Route file descriptor 2 through a thread that drops the lines NOISE matches: TensorFlow's
    C++ start-up lines are written before any Python setting can silence them."""
    sys.stderr.flush()
    saved = os.dup(2)
    read, write = os.pipe()
    os.dup2(write, 2)
    os.close(write)
    target = os.dup(saved)

    def pump():
        with os.fdopen(read, "rb") as pipe, os.fdopen(target, "wb", buffering=0) as out:
            for line in pipe:
                if not NOISE.match(line.decode(errors="replace")):
                    out.write(line)

    thread = threading.Thread(target=pump, name="rnnlab-stderr-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end: the thread reads to EOF and stops
        os.close(saved)
        thread.join(timeout=5)
