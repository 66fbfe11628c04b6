"""How fast does each attention variant leave the unigram plateau on real Multi30k batches?

    python -m benchmarks.attention_start                       # GRU, 150 batches, six variants
    python -m benchmarks.attention_start --cell lstm --batches 300
    python -m benchmarks.attention_start --variant model.attention=luong model.readout=deep

The first training batches of a sweep's translation configuration (default: the first run of
`experiments/sweeps/translation_attention.yaml`, the study's Multi30k budget), side by side in one
process: the same `--batches` batches, in the same order, for every variant, each model built by
the training path (`experiments.run.build`) from seed 0 and trained with `train_on_batch`. A
variant is a list of config overrides (`--variant`, repeatable; default: no attention, Luong's
model as published, its two ablations alone and together, Bahdanau's). Prints one JSON line per
variant: the mean training loss over each `--every` batches (with dropout, as trained). Nothing
is tracked. Made for issue 10, where Luong attention trained slower than no attention.
"""

from __future__ import annotations

import argparse
import json
import time

LUONG = ["model.attention=luong", "model.attention_score=general"]
VARIANTS = [
    ["model.attention=null"],
    LUONG,
    [*LUONG, "model.input_feeding=false"],
    [*LUONG, "model.readout=deep"],
    [*LUONG, "model.readout=deep", "model.input_feeding=false"],
    ["model.attention=bahdanau"],
]


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="experiments/sweeps/translation_attention.yaml",
                        help="a sweep (its first run) or a config file")
    parser.add_argument("--cell", default="gru")
    parser.add_argument("--batches", type=int, default=150)
    parser.add_argument("--every", type=int, default=25)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override for every variant, e.g. data.subset=1000")
    parser.add_argument("--variant", nargs="+", action="append", metavar="KEY=VALUE",
                        help="one variant's overrides; repeatable (default: six variants)")
    args = parser.parse_args(argv)

    import keras
    import numpy as np

    import datasets
    from benchmarks.translation_cost import _config
    from experiments import run as training
    from experiments.tasks import family_for
    from experiments.tasks.common import units_for

    batches, results = None, []
    for variant in args.variant or VARIANTS:
        config = _config(args.config, args.cell, [*args.set, *variant])
        keras.utils.set_random_seed(config.train.seed)
        if batches is None:  # one data set for every variant (their data sections are equal)
            train, _, _, spec = datasets.load(config.data)
            family, batches = family_for(spec), []
            for x, y, *_ in train.repeat():
                batches.append((x, y))
                if len(batches) == args.batches:
                    break
        model = training.build(config, family, spec, units_for(config, family, spec))
        start, losses = time.perf_counter(), []
        for x, y in batches:
            out = model.train_on_batch(x, y)
            losses.append(float(out[0] if isinstance(out, list) else out))
        result = {"variant": " ".join(variant), "cell": config.model.cell,
                  "batches": len(losses), "every": args.every,
                  "loss": [round(float(np.mean(losses[i:i + args.every])), 3)
                           for i in range(0, len(losses), args.every)],
                  "seconds": round(time.perf_counter() - start, 1),
                  "backend": keras.backend.backend()}
        print(json.dumps(result), flush=True)
        results.append(result)
    return results


if __name__ == "__main__":
    main()
