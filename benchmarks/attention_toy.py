"""Does each attention type learn where attention is needed? Reversing random token sequences.

    python -m benchmarks.attention_toy                  # GRU; none, bahdanau, luong
    python -m benchmarks.attention_toy --cell lstm --epochs 5

A check of the translation model's attention paths away from Multi30k: `--examples` sequences of
`--length` tokens drawn uniformly from `--vocab` symbols, the target the source reversed, so that
output t needs source position L - t (a fixed-size summary of the whole source is the only thing
a decoder without attention has). The real `Seq2Seq` (bidirectional encoder with a learned
bridge, tied embeddings, no dropout) is trained with teacher forcing, Adam, clipnorm 1; prints one
JSON line per attention type with its training loss and token accuracy per epoch. Nothing is
tracked; the numbers are the training set's.
"""

from __future__ import annotations

import argparse
import json


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", default="gru")
    parser.add_argument("--attention", nargs="+", default=["none", "bahdanau", "luong"])
    parser.add_argument("--score", default="general", help="Luong's score")
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--vocab", type=int, default=30)
    parser.add_argument("--length", type=int, default=12)
    parser.add_argument("--examples", type=int, default=6400)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=3e-3)
    args = parser.parse_args(argv)

    import keras
    import numpy as np

    from experiments.tasks.seq2seq import Seq2Seq, TokenAccuracy

    rng = np.random.default_rng(0)
    source = rng.integers(3, args.vocab, size=(args.examples, args.length))
    target = source[:, ::-1]
    decoder_inputs = np.concatenate([np.ones((args.examples, 1), int), target[:, :-1]], axis=1)
    results = []
    for attention in args.attention:
        keras.utils.set_random_seed(0)
        model = Seq2Seq(args.vocab, args.vocab, args.units, {
            "cell": args.cell, "bidirectional": True, "embedding_dim": 32, "dropout": 0.0,
            "attention": None if attention == "none" else attention,
            "attention_score": args.score, "tie_embeddings": True})
        model.build()
        model.compile(keras.optimizers.Adam(args.lr, clipnorm=1.0), metrics=[TokenAccuracy()])
        history = model.fit({"encoder_inputs": source, "decoder_inputs": decoder_inputs}, target,
                            batch_size=64, epochs=args.epochs, verbose=0).history
        result = {"cell": args.cell, "attention": attention, "backend": keras.backend.backend(),
                  "loss": [round(v, 4) for v in history["loss"]],
                  "token_accuracy": [round(v, 4) for v in history["token_accuracy"]]}
        print(json.dumps(result), flush=True)
        results.append(result)
    return results


if __name__ == "__main__":
    main()
