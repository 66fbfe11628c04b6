"""Runs that learned nothing: a key metric at chance, BLEU near 0, sample translations that repeat
words or collapse onto a few sentences (`run_flags`), and the sample translations themselves as a
translation run logged them (`samples/translations.txt`)."""

from __future__ import annotations

from collections import Counter

import mlflow
import pandas as pd

from experiments.goals import GoalView

SAMPLES_ARTIFACT = "samples/translations.txt"
SHOWN_SAMPLES = 3  # sample translations shown under a translation table, per cell and setting


def run_flags(row: pd.Series, goal_: GoalView, samples: str | None = None) -> list[str]:
    """Why a run looks degenerate: key metric at chance, BLEU near 0, sample translations that
    repeat words or collapse onto a few sentences."""
    flags = []
    value = pd.to_numeric(row.get(f"metrics.test_{goal_.metric}"), errors="coerce")
    if value is not None and not pd.isna(value) and goal_.at_chance(float(value)):
        flags.append("at chance")
    bleu = pd.to_numeric(row.get("metrics.test_bleu"), errors="coerce")
    if bleu is not None and not pd.isna(bleu) and bleu < 1.0:
        flags.append("BLEU near 0")
    if samples:
        flags += translation_flags(samples)
    return flags


def translation_flags(samples: str) -> list[str]:
    """Flags from a `samples/translations.txt` artifact (lines `HYP: ...`): empty hypotheses,
    words repeated (the same token three times in a row, or one token half of a hypothesis of
    four or more), or at most half as many distinct hypotheses as samples."""
    hyps = [line[4:].strip() for line in samples.splitlines() if line.startswith("HYP:")]
    if not hyps:
        return []
    flags = []
    if sum(not h for h in hyps) * 2 >= len(hyps):
        flags.append("empty translations")
    if sum(_repeats(h.split()) for h in hyps) * 2 >= len(hyps):
        flags.append("repeating words")
    if len(hyps) >= 3 and len(set(hyps)) * 2 <= len(hyps):
        flags.append(f"collapsed: {len(set(hyps))} distinct of {len(hyps)} samples")
    return flags


def _repeats(tokens: list[str]) -> bool:
    in_a_row = any(tokens[i] == tokens[i + 1] == tokens[i + 2] for i in range(len(tokens) - 2))
    dominant = len(tokens) >= 4 and Counter(tokens).most_common(1)[0][1] * 2 >= len(tokens)
    return in_a_row or dominant


def load_samples(run_id: str) -> str | None:
    """A run's logged sample translations, None when it has none."""

    try:
        return mlflow.artifacts.load_text(f"runs:/{run_id}/{SAMPLES_ARTIFACT}")
    except Exception:  # noqa: BLE001 - no artifact / unreadable store: no flag, not a failed report
        return None


def sample_triples(samples: str, count: int = SHOWN_SAMPLES) -> list[tuple[str, str, str]]:
    """The first `count` (source, reference, model's translation) of a `samples/translations.txt`
    artifact (blocks of `SRC:`, `REF:`, `HYP:` lines)."""
    found, block = [], {}
    for line in samples.splitlines():
        key, _, value = line.partition(": ")
        if key in ("SRC", "REF", "HYP"):
            block[key] = value.strip()
        if len(block) == 3:
            found.append((block["SRC"], block["REF"], block["HYP"]))
            block = {}
    return found[:count]


def translation_samples(done: pd.DataFrame) -> dict[str, str | None]:
    """{run_id: logged sample translations} of the runs with a BLEU score (for their flags)."""
    if done.empty:
        return {}
    bleu = done.get("metrics.test_bleu", pd.Series(index=done.index, dtype=float))
    return {run_id: load_samples(run_id) for run_id, value in zip(done["run_id"], bleu)
            if not pd.isna(value)}
