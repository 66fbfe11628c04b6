"""What a task's key metric means: which way is better, its chance level, when a run counts as
solved, and the task's one-line description. Light (NumPy, no Keras), so that `rnnlab tasks` starts
at once; the report and the CLI read it.

The tasks declare their goal in typed fields (`datasets.base.Goal` on each DataSpec); this module
is the reader's view of it: the meaning of each metric in words, and the goal of a finished run
read back from its tags and metrics, else from the generated task's DataSpec rebuilt from its params.
"""

from __future__ import annotations

import dataclasses
import importlib
import math

import datasets

# what each key metric means and which way is better ("min": lower is better)
METRICS = {
    "mse": ("mean squared error of the predicted value(s) on the test set", "min"),
    "loss": ("the training loss on the test set", "min"),
    "perplexity": ("exp(test cross-entropy per target token)", "min"),
    "accuracy": ("fraction of the test predictions that are right", "max"),
    "bleu": ("corpus BLEU (sacrebleu, 0–100) of the greedy translations of the test set against "
             + "the reference translations", "max"),
    "recall_accuracy": ("fraction of the recalled symbols (the last 10 steps) that are right", "max"),
    "on_time": ("share of the test answers within half a time step of the true delay", "max"),
    "reber_success": ("fraction of test strings on which every step's predicted next symbols are "
                      + "exactly those the grammar allows", "max"),
}


@dataclasses.dataclass(frozen=True)
class GoalView:
    """A setting's key metric as a reader sees it: what it means, which way is better, chance
    level, solved threshold (the task's own declaration is `datasets.base.Goal`).

    Read from the runs' tags and metrics (`rnnlab.solved_metric`, `rnnlab.baseline_metric`,
    `baseline`, `rnnlab.solved_threshold`, `rnnlab.solved_mode`), else from the generated tasks'
    DataSpec `goal`.
    """

    metric: str | None
    meaning: str = ""
    mode: str = "max"  # "min": lower is better; "max" / "at_least": higher is better
    chance: float | None = None
    chance_metric: str | None = None
    threshold: float | None = None

    @classmethod
    def of(cls, spec) -> GoalView | None:
        """The goal a DataSpec declares (`spec.goal`), None when it declares none."""
        declared = spec.goal
        if declared is None:
            return None
        return cls(declared.metric, METRICS.get(declared.metric, ("",))[0], declared.mode,
                   declared.baseline, declared.baseline_metric, declared.threshold)

    @property
    def better(self) -> str:
        return "lower is better" if self.mode == "min" else "higher is better"

    @property
    def solved_when(self) -> str:
        if self.threshold is None:
            return "-"
        sign = {"min": "<", "max": ">", "at_least": "≥"}.get(self.mode, ">")
        return f"{self.metric} {sign} {self.threshold:.4g}"

    @property
    def chance_text(self) -> str:
        if self.chance is None:
            return "-"
        if self.chance_metric and self.chance_metric != self.metric:
            return f"{self.chance_metric} {self.chance:.4g}"
        return f"{self.chance:.4g}"

    def at_chance(self, value: float) -> bool:
        """Whether `value` of the key metric is no better than chance (within 0.02 for a metric
        to maximise, 5 % for one to minimise)."""
        if self.chance is None or self.chance_metric != self.metric or math.isnan(value):
            return False
        if self.mode == "min":
            return value >= 0.95 * self.chance
        return value <= self.chance + 0.02


def missing(value) -> bool:
    """None, NaN, or MLflow's text for None."""
    return value is None or (isinstance(value, float) and math.isnan(value)) \
        or str(value) in ("None", "none", "")


def spec(task: str, row) -> datasets.DataSpec | None:
    """The DataSpec of a generated task rebuilt from a run's params (no data is generated); None
    for the other tasks, whose spec needs their data."""
    module = datasets.REGISTRY.get(task, "")
    if not module.startswith("datasets.synthetic."):
        return None
    values = {}
    for key in ("length", "variant"):
        value = row.get(f"params.data.{key}")
        if not missing(value):
            values[key] = int(value) if key == "length" else str(value)
    try:
        return importlib.import_module(module).spec(datasets.DataConfig(name=task, **values))
    except (ValueError, TypeError):
        return None


def task_description(task: str) -> str:
    """The first paragraph of the task module's docstring, on one line."""
    try:
        doc = importlib.import_module(datasets.REGISTRY[task]).__doc__ or ""
    except (KeyError, ImportError):
        return ""
    return " ".join(doc.strip().split("\n\n")[0].split())
