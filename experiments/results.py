"""What one run returns (`RunResult`) and how its key metric is picked; shared by run, launch and
report, so that none of them imports another for it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

FALLBACK_METRICS = ("bleu", "accuracy", "mse", "loss")


@dataclass(frozen=True)
class RunResult:
    """The outcome of `experiments.run.run(config)`.

    `metrics` are the test-set metrics without the `test_` prefix (MLflow logs them with it).
    A SKIPPED run (data missing) has `reason` and no metrics. `tracking_time_s` (seconds spent on
    MLflow calls, figures and the model artifact, less GC pauses) and `gc_time_s` (garbage
    collection during the run) are None when tracking is off.
    """

    status: str  # "FINISHED" | "SKIPPED"
    run_id: str | None
    task: str
    cell: str
    config_hash: str
    units: int | None = None
    param_count: int | None = None
    projected: bool | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    baseline: float | None = None
    baseline_metric: str | None = None
    solved_metric: str | None = None
    solved: bool | None = None
    train_time_s: float | None = None
    epochs: int | None = None
    reason: str | None = None
    tracking_time_s: float | None = None
    gc_time_s: float | None = None

    def summary(self) -> dict[str, Any]:
        """What `rnnlab run` prints of it: the test metrics, parameter count, baseline, solved."""
        shown = {f"test_{k}": v for k, v in sorted(self.metrics.items())}
        shown.update(param_count=self.param_count, baseline=self.baseline, solved=self.solved)
        return shown

    def key_metric(self) -> tuple[str | None, float | None]:
        """(name, value) of the task's solved metric, else the first fallback the run has."""
        return key_metric(self.metrics, self.solved_metric, prefix="")


def key_metric(metrics: Mapping[str, Any], preferred: str | None = None,
               prefix: str = "test_") -> tuple[str | None, float | None]:
    """The key test metric of a run's results: (name, value), trying `preferred` then the fallbacks;
    `metrics` are keyed `<prefix><name>` (MLflow's `test_<name>` by default)."""
    for name in (preferred, *FALLBACK_METRICS):
        value = metrics.get(f"{prefix}{name}") if name else None
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            return name, float(value)
    return None, None
