"""Task families: what each reads of the config (`settings`, no Keras) and how each builds,
trains and reports its model (`families`: sentiment, translation, long_dependency).

    sentiment        binary                          (IMDB)
    translation      seq2seq                         (Multi30k)
    long_dependency  regression, categorical,        (adding, temporal order, spike,
                     sequence_categorical,            copy memory,
                     sequence_multilabel              Reber)

Importing this package imports no Keras: the declarations answer a config's validation at once.
The families' Keras code (`FAMILIES`, `family_for`, `compile_for_test`, ...) loads on first use
of one of those names; `import experiments.tasks.families` registers the serialisable layers.
"""

from __future__ import annotations

from experiments.tasks.settings import applicable, family_name, forget_gate_cells, takes

_KERAS_NAMES = ("BY_OUTPUT", "FAMILIES", "Evaluation", "Family", "check_config",
                "compile_for_test", "family_for", "recurrent_layer")


def __getattr__(name: str):
    if name in _KERAS_NAMES:
        from experiments.tasks import families

        return getattr(families, name)
    raise AttributeError(f"module 'experiments.tasks' has no attribute {name!r}")


__all__ = ["BY_OUTPUT", "FAMILIES", "Evaluation", "Family", "applicable", "check_config",
           "compile_for_test", "family_for", "family_name", "forget_gate_cells", "recurrent_layer",
           "takes"]
