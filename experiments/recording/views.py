"""The runs-table view every experiment of the suite carries, so that the MLflow UI opens on a
comparison: the task, cell, length, seed and status of each run beside each task's key test metric,
sorted by run name (task-T-cell-seed, so a task's runs stay together and a sweep's children are
listed flat rather than folded under their parent).

How MLflow 3.17 stores it (read from its UI bundle, mlflow/server/js/build/static/js): a saved view
of the runs table ("Views → Save as new view") is the experiment tag
``mlflow.sharedViewState.<key>`` whose value is ``{"name", "createdAt", "updatedAt", "state"}``,
``state`` being the view as a JSON string: the search facets (``orderByKey``, ``orderByAsc``,
``searchFilter``, ...) and the table's UI state (``selectedColumns``: ``metrics.`name```,
``params.`name``` or ``tags.`name```). The page
``#/experiments/<id>/runs?viewStateShareKey=<key>`` opens it (a URL that also carries search facets
such as ``orderByKey`` ignores the view), and it is listed in the page's "Views" menu by its name.
``workflowType=machine_learning`` in the same address opens the UI in its "Model training" mode
instead of GenAI; the experiment tag ``mlflow.experimentKind`` says the same to UIs that read the
kind from the experiment.
"""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

from experiments.recording.tags import CELL_TAG, STATUS_TAG, TASK_TAG

VIEW_KEY = "rnnlab-compare"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"
VIEW_NAME = "rnnlab: compare cells"
KIND_TAG, KIND = "mlflow.experimentKind", "custom_model_development"


def key_metrics() -> list[str]:
    """Each task's key test metric, once, in task order: the goal a task declares (the generated
    tasks' and IMDB's), else the first fallback of `results.key_metric` (BLEU, Multi30k's)."""
    import datasets
    from experiments import goals
    from experiments.results import FALLBACK_METRICS

    found = []
    for task in datasets.names():
        spec = goals.spec(task, {})
        goal = spec.goal if spec is not None else getattr(datasets.get(task), "GOAL", None)
        found.append(goal.metric if goal is not None else FALLBACK_METRICS[0])
    return list(dict.fromkeys(found))


def columns() -> list[str]:
    """The view's columns in MLflow's column keys: the key test metrics first (the run name beside
    them already reads task-T-cell-seed), then the run's status, task, length, cell and seed. The
    table shows a metric's column only when a run has the metric."""
    return [
        *(f"metrics.`test_{metric}`" for metric in key_metrics()),
        f"tags.`{STATUS_TAG}`", f"tags.`{TASK_TAG}`", "params.`data.length`", f"tags.`{CELL_TAG}`",
        "params.`train.seed`",
    ]


def view_state() -> dict:
    """The runs table as the view shows it (MLflow's search facets and UI state)."""
    return {
        "searchFilter": "", "orderByKey": "tags.`mlflow.runName`", "orderByAsc": True,
        "startTime": "ALL", "lifecycleFilter": "Active", "modelVersionFilter": "All Runs",
        "datasetsFilter": [], "selectedColumns": columns(), "columnOrder": columns(),
    }


def experiment_tags(now_ms: int | None = None) -> dict[str, str]:
    """The tags that give an experiment the view (and the "Model training" kind)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    envelope = {"name": VIEW_NAME, "createdAt": now_ms, "updatedAt": now_ms,
                "state": json.dumps(view_state())}
    return {VIEW_TAG: json.dumps(envelope), KIND_TAG: KIND}


def has_view(tags: dict[str, str]) -> bool:
    """Whether an experiment's tags hold the current view (a changed view is written again)."""
    try:
        stored = json.loads(json.loads(tags[VIEW_TAG])["state"])
    except (KeyError, TypeError, ValueError):
        return False
    return stored == view_state() and tags.get(KIND_TAG) == KIND


def ensure_view(client, experiment) -> None:
    """Give an existing experiment (an mlflow Experiment) the view unless it has it already."""
    if not has_view(experiment.tags):
        for key, value in experiment_tags().items():
            client.set_experiment_tag(experiment.experiment_id, key, value)


def runs_page(address: str, experiment_id: str, with_view: bool = True) -> str:
    """The address of the experiment's runs table in "Model training" mode, opened on the view
    unless `with_view` is False (an experiment without it: the UI would report a missing view)."""
    query = urlencode({"workflowType": "machine_learning",
                       **({"viewStateShareKey": VIEW_KEY} if with_view else {})})
    return f"{address}/#/experiments/{experiment_id}/runs?{query}"
