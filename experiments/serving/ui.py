"""The MLflow UI on the project's store: `rnnlab ui` starts it in its own process group, prints
the address of the runs table, and stops the server and every worker it started on SIGINT/SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from experiments.recording import store


def main(args) -> int:
    """Start the MLflow UI in its own process group, print the address of the runs table, and on
    SIGINT/SIGTERM stop the server and all its workers before returning."""
    uri = store.tracking_uri()
    argv = ui_command(uri, host=args.host, port=args.port, workers=args.workers)
    if args.print_command:
        print(shlex.join(argv))
        return 0
    if args.host not in LOCAL_HOSTS:
        print(f"rnnlab ui: warning: --host {args.host} serves the runs, their parameters and "
              "artifacts to every machine that can reach this one, without a password.",
              file=sys.stderr)
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    address = f"http://{shown}:{args.port}"
    print(f"MLflow UI: {ui_address(uri, address)}\n(store {uri}; Ctrl-C stops it)", flush=True)
    return serve(argv)


def ui_command(uri: str, host: str = "127.0.0.1", port: int = 5000, workers: int = 1) -> list[str]:
    """The argv that starts the MLflow UI on the project's store (one worker: MLflow's default of
    four takes minutes to start on a small machine, and a local UI has one user)."""
    return [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
            "--host", host, "--port", str(port), "--workers", str(workers)]


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def ui_address(uri: str, address: str) -> str:
    """The page that lands on the runs table: `<address>/#/experiments/<id>/runs` for the project's
    experiment (the one of mlflow.yml's pattern, else the only one with runs), else the address.
    Sorted by run name, MLflow lists the sweeps' children flat instead of folded under their
    parent (runs are named task-T-cell-seed, so a task's runs stay together)."""
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return address  # nothing recorded yet; do not create the store here
    import mlflow

    try:
        experiments = [e for e in mlflow.MlflowClient(uri).search_experiments()
                       if e.name != "Default"]
    except Exception:  # noqa: BLE001 - an unreadable store: the server will say why
        return address
    pattern = store.settings().experiment_pattern
    chosen = [e for e in experiments if e.name == pattern] or experiments
    return f"{address}/#/experiments/{chosen[0].experiment_id}/runs?{RUNS_BY_NAME}" \
        if len(chosen) == 1 else address


RUNS_BY_NAME = "orderByKey=tags.%60mlflow.runName%60&orderByAsc=true"


def serve(argv: list[str], grace_s: float = 10.0) -> int:
    """Run `argv` in a new process group; forward SIGINT/SIGTERM to the whole group, and SIGKILL
    what is left of it `grace_s` later (uvicorn waits for open connections), so no server or
    worker outlives us."""
    server = subprocess.Popen(argv, start_new_session=True)
    received: list[float] = []

    def forward(_signum, _frame):
        received.append(time.monotonic())
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = None
        while code is None:
            try:
                code = server.wait(timeout=1)
            except subprocess.TimeoutExpired:
                if received and time.monotonic() > received[0] + grace_s:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(server.pid, signal.SIGKILL)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)  # workers still up after the server left
        _kill_group(server.pid, grace_s)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if received else code


def _kill_group(pgid: int, grace_s: float) -> None:
    """SIGKILL the group once no member has left within `grace_s` of SIGTERM."""
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
