"""The MLflow UI on the project's store: `rnnlab ui` starts it in its own process group, prints
the address of the runs table (opened on the suite's view, `recording.views`) once the server
answers, and stops the server and every process it started on SIGINT/SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

from experiments.recording import store, views


def main(args) -> int:
    """Start the MLflow UI in its own process group, print the address of the runs table once the
    server answers, and on SIGINT/SIGTERM stop the server and every process it started."""
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
    page = ui_address(uri, address)

    def ready() -> None:
        print(f"MLflow UI: {page}\n(store {uri}; Ctrl-C stops it)", flush=True)

    return serve(argv, health=f"{address}/health", on_ready=ready)


def ui_command(uri: str, host: str = "127.0.0.1", port: int = 5000, workers: int = 1) -> list[str]:
    """The argv that starts the MLflow UI on the project's store (one worker: MLflow's default of
    four takes minutes to start on a small machine, and a local UI has one user)."""
    return [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
            "--host", host, "--port", str(port), "--workers", str(workers)]


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def ui_address(uri: str, address: str) -> str:
    """The page that lands on the runs table of the project's experiment (the one of mlflow.yml's
    pattern, else the only one), opened on the suite's view (`recording.views`: key metrics, cell,
    task, length, seed and status as columns) in "Model training" mode; else the address. An
    experiment recorded before the view existed is given it here."""
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return address  # nothing recorded yet; do not create the store here
    import mlflow

    client = mlflow.MlflowClient(uri)
    try:
        experiments = [e for e in client.search_experiments() if e.name != "Default"]
    except Exception:  # noqa: BLE001 - an unreadable store: the server will say why
        return address
    pattern = store.settings().experiment_pattern
    chosen = [e for e in experiments if e.name == pattern] or experiments
    if len(chosen) != 1:
        return address
    try:
        views.ensure_view(client, chosen[0])
    except Exception:  # noqa: BLE001 - a read-only store: the runs table without the view
        return views.runs_page(address, chosen[0].experiment_id, with_view=False)
    return views.runs_page(address, chosen[0].experiment_id)


def serve(argv: list[str], health: str | None = None, on_ready=None,
          grace_s: float = 10.0) -> int:
    """Run `argv` in a new process group without MLflow's job workers (the suite runs no server
    jobs); call `on_ready` once `health` answers. On SIGINT/SIGTERM, SIGTERM the group and SIGKILL
    what is left `grace_s` later (uvicorn waits for open connections); at the end, stop every
    descendant seen, also one that left the group or lost its parent, so none outlives us."""
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = subprocess.Popen(argv, start_new_session=True, env=env)
    family = Family(server.pid)
    received: list[float] = []

    def forward(_signum, _frame):
        received.append(time.monotonic())
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = None
        while code is None:
            family.look()
            if on_ready is not None and not received and answers(health):
                on_ready()
                on_ready = None
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
        family.stop(grace_s)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if received else code


def answers(url: str | None) -> bool:
    """Whether `url` answers 200 within a second."""
    if url is None:
        return False
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


class Family:
    """Every process descended from `pid`, remembered as seen (psutil keeps a process's identity,
    so a reused pid is never signalled): a worker started in another process group, or re-parented
    to init when its parent exits, is still stopped."""

    def __init__(self, pid: int):
        self.root = psutil.Process(pid)
        self.seen: dict[int, psutil.Process] = {pid: self.root}

    def look(self) -> None:
        with contextlib.suppress(psutil.Error):
            for child in self.root.children(recursive=True):
                self.seen.setdefault(child.pid, child)

    def stop(self, grace_s: float) -> None:
        self.look()
        alive = [p for p in self.seen.values() if p.is_running()]
        for process in alive:
            with contextlib.suppress(psutil.Error):
                process.terminate()
        _, left = psutil.wait_procs(alive, timeout=grace_s)
        for process in left:
            with contextlib.suppress(psutil.Error):
                process.kill()


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
