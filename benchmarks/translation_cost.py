"""What a Multi30k configuration costs to train here, projected from timed training batches.

    python -m benchmarks.translation_cost experiments/sweeps/translation_tutorial.yaml --cell gru
    python -m benchmarks.translation_cost experiments/sweeps/translation_small.yaml --cell gru

Loads the configuration's data exactly as `experiments.run.run` does (full vocabularies, so the
output layer has its real size), builds and compiles the same model, trains `--warmup` batches
(not timed), then times `--batches` more, one `train_on_batch` at a time, and projects one epoch
(the split's batch count × the mean batch time) and the configuration's `train.epochs`. The timed
batches include the retracing a new sentence length may cause, as `model.fit` would. Validation
and test decoding are not included, so the projection is a lower bound on a run's wall time. A
sweep file is read through its first task entry, the cell set by `--cell`. Prints one JSON
object (and appends it to `--output`'s list); nothing is tracked.

Check the projection against a run that finished on the same machine before trusting it for one
that would not (docs/performance.md does this with the study's 128-unit runs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="a config file or a sweep file (its first task entry)")
    parser.add_argument("--cell", default=None, help="model.cell (default: the file's)")
    parser.add_argument("--batches", type=int, default=20, help="timed training batches")
    parser.add_argument("--warmup", type=int, default=3, help="untimed batches first")
    parser.add_argument("--output", default=None, help="a JSON file to append the result to")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override, as in rnnlab run (repeatable)")
    args = parser.parse_args(argv)

    import keras

    import datasets
    from experiments import run as training
    from experiments.analysis.report import machine
    from experiments.tasks import family_for
    from experiments.tasks.common import units_for

    config = _config(args.config, args.cell, args.set)
    training.validate(config)
    keras.utils.set_random_seed(config.train.seed)  # the run's batch order
    train, _, _, spec = datasets.load(config.data)
    family = family_for(spec)
    units = units_for(config, family, spec)
    model = training.build(config, family, spec, units)
    per_epoch = int(train.cardinality())
    batches = iter(train.repeat())
    for _ in range(args.warmup):
        model.train_on_batch(*next(batches)[:2])
    seconds = []  # every batch, sentence lengths as they come (a batch is cut after its longest)
    for _ in range(args.batches):
        x, y = next(batches)[:2]
        start = time.perf_counter()
        model.train_on_batch(x, y)
        seconds.append(time.perf_counter() - start)
    batch_s = statistics.fmean(seconds)
    result = {
        "config": args.config, "cell": config.model.cell, "units": units,
        "embedding_dim": config.model.embedding_dim, "attention": config.model.attention,
        "parameters": model.count_params(), "batch_size": config.data.batch_size,
        "batches_per_epoch": per_epoch, "timed_batches": args.batches,
        "batch_s_mean": round(batch_s, 4),
        "batch_s_quartiles": [round(q, 4) for q in statistics.quantiles(seconds, n=4)[::2]],
        "epoch_s_projected": round(batch_s * per_epoch, 1),
        "epochs": config.train.epochs,
        "training_h_projected": round(batch_s * per_epoch * config.train.epochs / 3600, 2),
        "backend": keras.backend.backend(), "machine": machine(),
        "load_average": os.getloadavg()[0],
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    print(json.dumps(result, indent=1))
    if args.output:
        path = Path(args.output)
        kept = json.loads(path.read_text()) if path.exists() else []
        path.write_text(json.dumps([*kept, result], indent=1) + "\n")
    return result


def _config(path: str, cell: str | None, overrides: list[str]):
    from experiments.config import Config, load_config, read_yaml
    from experiments.orchestration.plan import load_sweep

    with open(path) as f:
        text = f.read()
    overrides = [*overrides, *([f"model.cell={cell}"] if cell else [])]
    if not {"tasks", "grid", "name"} & set(read_yaml(text, path) or {}):  # a plain config file
        return load_config(path, overrides)
    first = load_sweep(path).runs[0].config
    return Config.from_dict(first.to_dict()).with_overrides(overrides)


if __name__ == "__main__":
    main()
