"""The task families' code (Keras), found by the `output` kind of a dataset's DataSpec.

    sentiment        binary                          (IMDB)
    translation      seq2seq                         (Multi30k)
    long_dependency  regression, categorical,        (adding, temporal order, spike,
                     sequence_categorical,            copy memory,
                     sequence_multilabel              Reber)
"""

from __future__ import annotations

import datasets
from experiments.tasks import long_dependency, sentiment, translation
from experiments.tasks.common import (
    Evaluation,
    Family,
    check_goal,
    compile_for_test,
    recurrent_layer,
)

FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (sentiment.FAMILY, translation.FAMILY, long_dependency.FAMILY)
}
BY_OUTPUT: dict[str, Family] = {
    output: family for family in FAMILIES.values() for output in family.outputs
}


def family_for(spec) -> Family:
    """The family that models `spec.output`; an unknown kind names the valid ones."""
    try:
        return BY_OUTPUT[spec.output]
    except KeyError:
        raise ValueError(
            f"dataset '{spec.name}': unknown output kind '{spec.output}'; "
            f"valid: {', '.join(BY_OUTPUT)}"
        ) from None


def check_config(config) -> None:
    """Refuse, from the config alone, a goal the task does not compute or a model it cannot use
    (e.g. a bidirectional stack under a per-step head). Only generated tasks, whose spec needs
    no data; the others are checked after loading (`check_goal`, `Family.build`)."""
    module = datasets.get(config.data.name)
    if not hasattr(module, "spec"):
        return
    spec = module.spec(config.data)
    family = family_for(spec)
    check_goal(spec, family)
    if family.check_model:
        family.check_model(spec, config.model)


__all__ = ["BY_OUTPUT", "FAMILIES", "Evaluation", "Family", "check_config", "compile_for_test",
           "family_for", "recurrent_layer"]
