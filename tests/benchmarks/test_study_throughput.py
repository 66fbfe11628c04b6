"""benchmarks/study_throughput.py: what its page says about whether a lever leaves results alike."""

from __future__ import annotations

import json

from benchmarks import study_throughput as bench


def mode(name: str, solved_by_config: dict[str, int], seeds: int = 5) -> dict:
    """A measured mode whose runs of each "task/cell" solved the first `k` of `seeds` seeds."""
    value = {"adding": ("test_mse", 0.001, 0.17), "temporal_order": ("test_accuracy", 1.0, 0.25)}
    metrics = {}
    for config, k in solved_by_config.items():
        metric, good, bad = value[config.split("/")[0]]
        for seed in range(seeds):
            metrics[f"{config}/{seed}"] = {metric: good if seed < k else bad}
    return {"mode": name, "command": f"rnnlab sweep FILE {name}", "runs": len(metrics),
            "wall_s": 100.0, "runs_per_hour": 36.0 * len(metrics), "cpu_s_per_run": 10.0,
            "load_before": [0.5], "load_after": [1.0], "metrics": metrics}


def test_a_lever_that_solves_what_the_reference_never_did_is_found_in_its_configuration():
    rows = [mode("1 process", {"adding/lstm": 0, "temporal_order/gru": 5}),
            mode("lever", {"adding/lstm": 5, "temporal_order/gru": 5})]
    [line] = bench.solved_shares(rows, length=100)
    assert "solved 10 of 10 runs, 1 process 5 of 10" in line
    assert "adding/lstm: 5/5 against 0/5" in line and "1 below 0.05" in line
    assert "the smallest p 0.01" in line  # Fisher's exact, 5/5 against 0/5: p = 0.0079


def test_a_lever_that_solves_as_often_is_not_called_different_and_the_page_says_so(tmp_path):
    rows = [mode("1 process", {"adding/lstm": 2, "temporal_order/gru": 5}),
            mode("lever", {"adding/lstm": 3, "temporal_order/gru": 5})]
    data = {"command": "python -m benchmarks.study_throughput", "date": "2026-12-03 08:00 UTC",
            "machine": "test, 2 cores", "uptime": "load average: 0.5", "rows": rows, "notes": [],
            "settings": {"epochs": 12, "num_train": None, "length": 100, "seeds": 5}}
    saved = tmp_path / "measured.json"
    saved.write_text(json.dumps(data))
    bench.main(["--render", str(saved)])  # measures nothing: the page from the saved numbers
    page = saved.with_suffix(".md").read_text()
    assert "| lever | `rnnlab sweep FILE lever` | 10 |" in page and "| 1.00× |" in page
    assert "solved 8 of 10 runs, 1 process 7 of 10" in page and "0 below 0.05" in page
    assert "Fisher's exact p = 1.00" in page


def test_one_seed_per_configuration_is_tested_over_all_runs_only():
    """`make bench` measures one seed: no configuration can be tested, the pooled runs can."""
    rows = [mode("1 process", {"adding/lstm": 0, "temporal_order/gru": 1}, seeds=1),
            mode("lever", {"adding/lstm": 1, "temporal_order/gru": 1}, seeds=1)]
    [line] = bench.solved_shares(rows, length=100)
    assert "solved 2 of 2 runs, 1 process 1 of 2" in line
    assert "Per configuration: no test (2 configurations, one seed each)." in line
