"""Constants and helpers the experiment tests import (a module of its own: every tests/ folder has a
`conftest`, so `from conftest import ...` would find whichever was imported last)."""

from __future__ import annotations

import mlflow

TOY_TASKS = ("adding", "copy", "temporal_order", "reber", "spike_timing")
REAL_TASKS = ("imdb", "multi30k")


def logged_model_names(run_id: str) -> list[str]:
    """The names of the MLflow models (MLflow 3 LoggedModels) that run `run_id` logged."""
    experiment_id = mlflow.get_run(run_id).info.experiment_id
    found = mlflow.search_logged_models(experiment_ids=[experiment_id], output_format="list",
                                        filter_string=f"source_run_id = '{run_id}'")
    return [m.name for m in found]
