"""Task families, found by the `output` kind of a dataset's DataSpec.

    sentiment        binary                          (IMDB)
    translation      seq2seq                         (Multi30k)
    long_dependency  regression, categorical,        (adding, temporal order, spike,
                     sequence_categorical,            copy memory,
                     sequence_multilabel              Reber)
"""

from __future__ import annotations

from experiments.tasks import long_dependency, sentiment, translation
from experiments.tasks.common import Evaluation, Family, recurrent_layer

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


__all__ = ["BY_OUTPUT", "FAMILIES", "Evaluation", "Family", "family_for", "recurrent_layer"]
