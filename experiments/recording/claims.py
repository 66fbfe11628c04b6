"""Leases on running runs and claimed runs: a running run renews its lease tag (a heartbeat
thread); a run whose lease lies in the past has lost its holder, and a sweep may take it over.
A sweep claims a configuration by creating its child run, then hands it to the recorder
(`claimed`), and ends runs with matching MLflow and `rnnlab.status` (`end_run_as`).
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time

import mlflow

from experiments.recording.store import env_seconds, retrying, tracking_uri
from experiments.recording.tags import LEASE_TAG, REASON_TAG, STATUS_TAG

_claim: contextvars.ContextVar[dict | None] = contextvars.ContextVar("rnnlab_claim", default=None)


def lease_seconds() -> float:
    """How long a running run's claim holds without a heartbeat ($RNNLAB_LEASE_S, default 120)."""
    return env_seconds("RNNLAB_LEASE_S", 120)


def lease_tags() -> dict[str, str]:
    """The lease tag: this run is alive until (epoch milliseconds) unless renewed."""
    return {LEASE_TAG: str(int((time.time() + lease_seconds()) * 1000))}


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
