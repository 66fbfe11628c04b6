"""Leases on running runs and claimed runs: a running run renews its lease tag (a heartbeat
thread) and names its holder (host, pid, start token); a run whose lease lies in the past, or
whose holder is provably gone from this host (`holder_dead`), has lost its holder, and a sweep
takes it over.
A sweep claims a configuration by creating its child run, then hands it to the recorder
(`claimed`), and ends runs with matching MLflow and `rnnlab.status` (`end_run_as`).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import socket
import threading
import time
from pathlib import Path

import mlflow

from experiments.recording.store import env_seconds, retrying, tracking_uri
from experiments.recording.tags import (
    HOLDER_HOST_TAG,
    HOLDER_PID_TAG,
    HOLDER_TOKEN_TAG,
    LEASE_TAG,
    REASON_TAG,
    STATUS_TAG,
)

_claim: contextvars.ContextVar[dict | None] = contextvars.ContextVar("rnnlab_claim", default=None)


def lease_seconds() -> float:
    """How long a running run's claim holds without a heartbeat ($RNNLAB_LEASE_S, default 120)."""
    return env_seconds("RNNLAB_LEASE_S", 120)


def lease_tags() -> dict[str, str]:
    """The lease tag: this run is alive until (epoch milliseconds) unless renewed."""
    return {LEASE_TAG: str(int((time.time() + lease_seconds()) * 1000))}


def holder_tags() -> dict[str, str]:
    """Who holds a claim or lease: this host, this process's id and its start token."""
    return {HOLDER_HOST_TAG: socket.gethostname(), HOLDER_PID_TAG: str(os.getpid()),
            HOLDER_TOKEN_TAG: start_token() or ""}


def start_token(pid: int | None = None) -> str | None:
    """What tells process `pid` (default this one) from a later one with the same id:
    "<boot id>:<pid namespace>:<start time in clock ticks since boot>", from /proc. None where
    there is no /proc, or when the process is gone (or a zombie: killed, not yet reaped)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
        stat = Path(f"/proc/{pid or os.getpid()}/stat").read_text()
    except FileNotFoundError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (name)"; a name may hold spaces
    return None if fields[0] == "Z" else f"{boot}:{namespace}:{fields[19]}"


def holder_dead(run) -> bool:
    """Whether the process holding a RUNNING run is provably gone: it ran on this host (same host
    name, boot and pid namespace) and its pid is free, a zombie, or now a process started at
    another time. A holder on another machine, or a run without holder tags, is never provably
    dead: its lease decides."""
    tags = run.data.tags
    token, pid, mine = tags.get(HOLDER_TOKEN_TAG), tags.get(HOLDER_PID_TAG), start_token()
    if not (token and pid and mine) or tags.get(HOLDER_HOST_TAG) != socket.gethostname() \
            or mine.rsplit(":", 1)[0] != token.rsplit(":", 1)[0]:
        return False
    try:
        return start_token(int(pid)) != token
    except OSError:  # its /proc entry exists but cannot be read: not provably gone
        return False


def holder_gone(run) -> str | None:
    """Why a RUNNING run has no live holder ("lease expired" / "its process ... is gone"), or None
    while it has one."""
    if holder_dead(run):
        tags = run.data.tags
        return f"holder {tags[HOLDER_HOST_TAG]}:{tags[HOLDER_PID_TAG]} gone"
    return "lease expired" if lease_expired(run) else None


def lease_until(run) -> int:
    """When (epoch milliseconds) a run's lease ends: its lease tag, or without one its start plus
    a lease length."""
    until = run.data.tags.get(LEASE_TAG)
    return int(until) if until else run.info.start_time + int(lease_seconds() * 1000)


def lease_expired(run) -> bool:
    """Whether a RUNNING run's holder is gone: its lease lies in the past."""
    return lease_until(run) < time.time() * 1000


class Heartbeat:
    """A daemon thread renewing the lease of `run_id` every quarter lease until `stop()`."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{run_id[:8]}", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _beat(self) -> None:
        client = mlflow.MlflowClient(tracking_uri())
        while not self._stop.wait(lease_seconds() / 4):
            with contextlib.suppress(Exception):  # a missed beat is retried at the next one
                for key, value in lease_tags().items():
                    client.set_tag(self.run_id, key, value)


def last_sign_of_life(run) -> int:
    """When (epoch milliseconds) a RUNNING run's holder last renewed its lease: its lease's end less
    one lease length, within [start, now]. The end time of a run whose process died."""
    renewed = lease_until(run) - int(lease_seconds() * 1000)
    return max(run.info.start_time, min(renewed, int(time.time() * 1000)))


def end_run_as(run_id: str, status: str, reason: str | None = None,
               end_time: int | None = None) -> None:
    """End `run_id` with MLflow status `status` and the same `rnnlab.status` (and the reason):
    the run's status first, then the tags, each retried, so they agree once both are written.
    `end_time` (epoch milliseconds) defaults to now."""
    client = mlflow.MlflowClient(tracking_uri())
    retrying(client.set_terminated, run_id, status, end_time, what=f"ending run {run_id}")
    tags = {STATUS_TAG: status}
    if reason:
        tags[REASON_TAG] = reason[:5000]
    for key, value in tags.items():
        retrying(client.set_tag, run_id, key, value, what=f"tagging run {run_id}")


@contextlib.contextmanager
def claimed(run_id: str, resumed_from: str | None = None):
    """Within this block, the tracker of the next run uses the claimed (already created) child
    `run_id` instead of creating one; `resumed_from` names a killed run of the same config whose
    logged epochs the new run copies before it resumes from the checkpoint."""
    token = _claim.set({"run_id": run_id, "resumed_from": resumed_from})
    try:
        yield
    finally:
        _claim.reset(token)


def stop_reason(err: BaseException) -> str:
    """`rnnlab.reason` of a run stopped by a signal ("stopped by SIGTERM")."""
    return f"stopped by {getattr(err, 'signal_name', 'SIGINT')}"
