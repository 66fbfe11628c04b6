"""The claims the results page checks, as their sources state them, and the tests that judge them.

Each :class:`Claim` (declared in `experiments.analysis.sources`) quotes its source's finding and
setup (task form, lengths, training, network, optimiser — as far as the source was read;
:attr:`Claim.checked` says how) and names the rule here that judges it on our runs. A rule returns a :class:`Judgement`: the verdict of
`experiments.analysis.stats.judge` over the comparisons it tested (Holm's correction across the
settings the claim judges), the comparisons themselves, and how our setting differs from theirs.
Literature claims (`sources.CLAIMS`) and our own targets (`sources.TARGETS`) are kept apart.

Margins of the "≈" and "≥" claims, declared once (:data:`MARGINS`, in the key metric's units):
two cells are equivalent when their mean key metrics differ by less than the margin.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import stats as sps

import cells
from experiments.analysis import export, readback
from experiments.analysis import stats as st
from experiments.analysis.readback import natural_key
from experiments.goals import missing
from experiments.tasks import forget_gate_cells, settings

# "≈" / "≥" claims: equivalent within these differences of the key test metric
MARGINS = {"accuracy": 0.02, "recall_accuracy": 0.02, "on_time": 0.02, "reber_success": 0.02,
           "mse": 0.01, "bleu": 1.0}
COMPARED = ("length", "ablation")  # besides the setting, what a pair of cells must share


# --- the runs as evidence ---------------------------------------------------------------------------


def gated_cells() -> list[str]:
    return [c for c in cells.names() if c != "vanilla"]


def evidence(runs: pd.DataFrame, dirty: str = "flag", per_cell: Iterable[str] = ()) -> pd.DataFrame:
    """The completed runs with their settings (`readback.add_settings`) and, for the rules: `length`
    (T), `ablation` (`model.unit_forget_bias=false`), `value` (key test metric), `solved`,
    `baseline`, `loss`, `updates` (`readback.updates`) and `dirty` (a `+dirty` commit).
    `dirty`: 'flag' keeps those runs (the page marks them), 'exclude' drops them. `per_cell`:
    config keys tuned per cell (e.g. `train.lr`): they differ between the cells of one setting,
    so they do not make settings of their own."""
    done = readback.completed(runs)
    columns = ["task", "cell", "setting", "metric", "length", "ablation", "value", "solved",
               "baseline", "loss", "updates", "dirty"]
    if done.empty:
        return pd.DataFrame(columns=columns)
    done = done.assign(dirty=export.dirty(done))
    if dirty == "exclude":
        done = done[~done["dirty"]]
    hidden = {f"params.{key}": f"tuned_per_cell.{key}" for key in per_cell if f"params.{key}" in done}
    done = readback.add_settings(done.rename(columns=hidden)).rename(columns={v: k for k, v in hidden.items()})
    done["length"] = _numeric(done, "params.data.length")
    done["ablation"] = done.get("params.model.unit_forget_bias", pd.Series(index=done.index)) \
        .astype(str).str.lower().eq("false")
    done["value"] = [pd.to_numeric(row.get(f"metrics.test_{row['metric']}"), errors="coerce")
                     for _, row in done.iterrows()]
    done["solved"] = _numeric(done, "metrics.solved")
    done["baseline"] = _numeric(done, "metrics.baseline")
    done["loss"] = _numeric(done, "metrics.test_loss")
    done["updates"] = readback.updates(done)
    return done


def _numeric(runs: pd.DataFrame, column: str) -> pd.Series:
    if column not in runs:
        return pd.Series(float("nan"), index=runs.index)
    return pd.to_numeric(runs[column].where(~runs[column].map(missing)), errors="coerce")


def select(ev: pd.DataFrame, task: str, cells_: Iterable[str] | None = None, *,
           ablation: bool = False, where: Callable[[pd.DataFrame], pd.Series] | None = None):
    """The runs of `task` with a key metric (by default without the forget-gate ablation), of
    `cells_`, passing `where`."""
    if ev.empty:
        return ev
    keep = (ev["task"] == task) & (ev["ablation"] == ablation) & ev["value"].notna()
    if cells_ is not None:
        keep &= ev["cell"].isin(list(cells_))
    if where is not None:
        keep &= where(ev)
    return ev[keep]


def sample(rows: pd.DataFrame, goal=None, column: str = "value") -> st.Sample:
    """The runs' key metric (or `column`) as a :class:`stats.Sample`, at chance per `goal`."""
    values = pd.to_numeric(rows[column], errors="coerce").dropna()
    solved = rows["solved"] if rows["solved"].notna().any() else None
    return st.Sample.of(values, solved, at_chance=at_chance(rows, goal))


def at_chance(rows: pd.DataFrame, goal) -> bool:
    """Whether the runs' mean stayed at the chance level: on the key metric where the baseline
    is in its units (`GoalView.at_chance`), else on the test loss against a loss baseline (copy:
    the memoryless strategy's loss; within 5 %)."""
    if goal is None or rows.empty:
        return False
    if goal.chance_metric == goal.metric:
        return goal.at_chance(float(pd.to_numeric(rows["value"], errors="coerce").mean()))
    if goal.chance_metric == "loss" and goal.chance:
        return bool(pd.to_numeric(rows["loss"], errors="coerce").mean() >= 0.95 * goal.chance)
    return False


def value_order(text: str) -> tuple:
    """Sort key for parameter values: as numbers where they are ('0.001' before '0.01', which
    `natural_key` ties), else naturally; the text itself breaks ties (set order varies)."""
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, natural_key(text), text)


def budget(rows: pd.DataFrame) -> str:
    """What the runs were given, short: epochs, training updates, units (e.g. '12 ep, 600 upd, 40u')."""
    def values(column, fmt=str):
        found = sorted({fmt(v) for v in rows.get(column, pd.Series(dtype=object)).dropna()
                        if not missing(v)}, key=value_order)
        return "/".join(found)

    parts = []
    if epochs := values("params.train.epochs"):
        parts.append(f"{epochs} ep")
    upd = sorted({int(u) for u in rows["updates"] if u >= 1}) if "updates" in rows else []
    if upd:
        parts.append("/".join(f"{u:,}" for u in upd) + " upd")
    if units := values("params.model.units_used") or values("params.model.units"):
        parts.append(f"{units} units")
    if lr := lr_text(rows):
        parts.append(lr)
    return ", ".join(parts) or "-"


def lr_text(rows: pd.DataFrame) -> str:
    """The runs' learning rates, short: 'lr 0.003', 'lr 0.002/0.003', or their range where each
    cell has its own (tuned per cell: 'lr 0.0012–0.046'); '' without any."""
    found = sorted({f"{float(v):.2g}" for v in rows.get("params.train.lr", pd.Series(dtype=object)).dropna()
                    if not missing(v)}, key=value_order)
    if not found:
        return ""
    return f"lr {found[0]}–{found[-1]}" if len(found) > 2 else f"lr {'/'.join(found)}"


# --- judgements -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Judgement:
    """A claim's verdict, the comparisons behind it (Holm's p filled in) and notes (how our
    setting differs, what is not yet run, how many seeds a verdict would need)."""

    verdict: str
    comparisons: tuple[st.Comparison, ...] = ()
    notes: tuple[str, ...] = ()
    budget: str = "-"
    every: bool = False  # the claim needs every setting (≈, ≥) rather than one
    missing: tuple[str, ...] = ()  # configurations it needs that no run has (each for every seed)

    def decisive(self) -> st.Comparison | None:
        """The comparison the short table shows: one that contradicts; else, for a claim about
        every setting, the weakest tested one (highest Holm p: what keeps it from confirmed),
        for one about any setting the strongest; else the first."""
        tested = [c for c in self.comparisons if c.tested]
        if not tested:
            return self.comparisons[0] if self.comparisons else None
        against = [c for c in tested if c.outcome() == st.CONTRADICTED]
        if against:
            return min(against, key=lambda c: c.p_against_holm)
        if self.every:
            return max(tested, key=lambda c: np.nan_to_num(c.p_holm, nan=2.0))
        return min(tested, key=lambda c: np.nan_to_num(c.p_holm, nan=2.0))

    def seeds_needed(self) -> str:
        """'k seeds per cell' for the inconclusive settings (80 % power at the observed effect)."""
        needed = sorted({c.seeds_needed for c in self.comparisons if c.tested
                         and c.outcome() == st.INCONCLUSIVE and c.seeds_needed})
        return "" if not needed else f"{needed[0]}–{needed[-1]}" if len(needed) > 1 else str(needed[0])


def pairs(ev: pd.DataFrame, task: str | None, a: str, b: str, *, kind: str = st.DIFFERENCE,
          ablation_a: bool = False, ablation_b: bool = False,
          where: Callable[[pd.DataFrame], pd.Series] | None = None) -> list[st.Comparison]:
    """`a` against `b` in every setting of `task` (every task: None) where either ran: the
    setting's own label, its goal, the claim's `kind` and the metric's margin."""
    rows = ev if ev.empty else ev[(ev["task"] == task) if task else ev["task"].notna()]
    if where is not None and not rows.empty:
        rows = rows[where(rows)]
    comparisons = []
    if rows.empty:
        return comparisons
    key = rows["setting"].str.replace(", unit_forget_bias=False", "", regex=False) \
        .str.replace(" (unit_forget_bias=False)", "", regex=False)
    for setting in sorted(key.unique(), key=natural_key):
        group = rows[key == setting]
        side_a = group[(group["cell"] == a) & (group["ablation"] == ablation_a) & group["value"].notna()]
        side_b = group[(group["cell"] == b) & (group["ablation"] == ablation_b) & group["value"].notna()]
        if side_a.empty and side_b.empty:
            continue
        goal = readback.goal(group)
        margin = MARGINS.get(goal.metric) if kind in (st.EQUIVALENCE, st.NONINFERIORITY) else None
        if margin is None and kind in (st.EQUIVALENCE, st.NONINFERIORITY):
            continue  # no declared margin for this metric (e.g. perplexity): not judged
        found = st.compare(setting, sample(side_a, goal), sample(side_b, goal), kind=kind,
                           higher_is_better=goal.mode != "min", margin=margin)
        comparisons.append(replace(found, budget=budget(pd.concat([side_a, side_b])),
                                   metric=goal.metric or ""))
    return comparisons


def against_level(setting: str, rows: pd.DataFrame, level: float, *, higher_is_better: bool,
                  can_contradict: bool = True, goal=None) -> st.Comparison:
    """One cell's runs against a fixed level (a published number, a target, the baseline): a
    one-sample t-test (`scipy.stats.ttest_1samp`), one-sided in the claim's direction; NaN
    against it when `can_contradict` is False (e.g. our budget is far below the source's)."""
    a = sample(rows, goal)
    base = st.Comparison(setting, a, st.Sample.of([level]), "level")
    if a.n == 0:
        return st.Comparison(setting, a, base.b, "level", status=st.NOT_RUN)
    if a.n < 2:
        return st.Comparison(setting, a, base.b, "level", status=st.NO_VERDICT)
    sign = 1.0 if higher_is_better else -1.0
    x = sign * (np.asarray(a.values) - level)  # > 0: better than the level
    res = sps.ttest_1samp(x, 0.0)
    p_two = float(res.pvalue)
    effect = float(x.mean())
    ci = (math.nan, math.nan) if math.isnan(p_two) else tuple(float(v) for v in res.confidence_interval(0.95))
    p_for = p_two if effect > 0 else 1.0
    p_against = (p_two if effect < 0 else 1.0) if can_contradict else math.nan
    sd = float(np.std(x, ddof=1))
    z = sps.norm.ppf(1 - st.ALPHA / 2) + sps.norm.ppf(st.POWER)
    # seeds for a verdict: none when the effect points against a claim this level cannot contradict
    needed = math.ceil((z * sd / abs(effect)) ** 2) + 1 if sd and effect \
        and (can_contradict or effect > 0) else None
    return st.Comparison(setting, a, base.b, "level", test="one-sample t", budget=budget(rows),
                         metric=goal.metric if goal is not None else "",
                         statistic=float(res.statistic), p=p_for, p_against=p_against,
                         # printed in the metric's own units: mean - level, not "better by"
                         effect=sign * effect, ci=tuple(sorted(sign * v for v in ci)),
                         seeds_needed=needed if needed and needed <= st.MAX_SEEDS else None)


def judged(comparisons: list[st.Comparison], rows: pd.DataFrame, *notes: str,
           every: bool = False, missing: Iterable[str] = ()) -> Judgement:
    verdict, filled = st.judge(comparisons, every=every)
    return Judgement(verdict, tuple(filled), tuple(n for n in notes if n), budget(rows), every,
                     tuple(missing))


# --- the claims ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """A published finding: source, what it says, their setup (as the source states it), what
    our setting is, how the source was checked, and the rule that judges it on our runs."""

    topic: str
    source: str
    claim: str
    theirs: dict[str, str]
    rule: Callable[[pd.DataFrame], Judgement]
    checked: str = ""
    ours: dict[str, str] = field(default_factory=dict)
    tasks: tuple[str, ...] = ()  # the tasks its rule judges (none named: every task)


def _length(value: float) -> Callable[[pd.DataFrame], pd.Series]:
    return lambda e: e["length"] == value


def adding_rule(ev: pd.DataFrame) -> Judgement:
    """Each gated cell against the vanilla RNN at T ≥ 200, Fisher on the solved shares; every
    gated cell must solve it where the vanilla RNN does not."""
    where = lambda e: e["length"] >= 200
    comparisons = [_relabel(c, f"{c.setting}: {cell} vs vanilla") for cell in gated_cells()
                   for c in pairs(ev, "adding", cell, "vanilla", kind=st.SOLVED, where=where)]
    return judged(comparisons, select(ev, "adding", where=where), every=True)


def _relabel(c: st.Comparison, label: str) -> st.Comparison:
    return replace(c, setting=label)


def copy_rule(ev: pd.DataFrame) -> Judgement:
    """The LSTM's test loss against the memoryless baseline at T = 100 (test loss / baseline < 1),
    per training budget; never contradicted by runs far shorter than the source's."""
    rows = select(ev, "copy", ["lstm"], where=_length(100))
    rows = rows[(rows["baseline"] > 0) & rows["loss"].notna()]
    comparisons = []
    for setting, group in sorted(rows.groupby("setting"), key=lambda kv: natural_key(kv[0])):
        ratio = group.assign(ratio=group["loss"] / group["baseline"])
        found = against_level(f"{setting}: lstm loss / baseline", ratio.assign(value=ratio["ratio"]),
                              1.0, higher_is_better=False, can_contradict=False)
        comparisons.append(replace(found, metric="loss / baseline"))
    return judged(comparisons, rows, "our budgets are a small fraction of the source's training; "
                  "a loss at the baseline here does not contradict a drop later")


def reber_rule(ev: pd.DataFrame) -> Judgement:
    """The 1997 experiment's strings (`data.length` = 9, the grammar's natural lengths): the
    LSTM's share of successful trials against the claimed 97 %."""
    natural = select(ev, "reber", ["lstm"], where=_length(9))
    longer = select(ev, "reber", ["lstm"], where=lambda e: e["length"] > 9)
    note = ("the study ran Reber at T = 50/100 (strings of ≥ 50/100 symbols), a setting of its "
            f"own ({sample(longer).text()}), not the 1997 experiment's") if not longer.empty else ""
    drawn = ("held-out strings drawn as in 1997 (data.drawn_first: train): training as the "
             "grammar gives it, test strings that training did not use; with 3,200 training "
             "strings (theirs: 256) the unseen ones are rarer and longer than theirs")
    if natural.empty:
        return Judgement(st.NOT_RUN, notes=(
            "needs runs at data.length = 9 (the grammar's natural lengths, as in 1997)", drawn,
            note))
    s = sample(natural)
    verdict, p, (low, high) = st.share_test(s.k or 0, s.n, 0.97)
    c = st.Comparison("reber (T=9): lstm success rate", s, st.Sample.of([0.97]), "level",
                      test="exact binomial", p=p, effect=(s.k or 0) / s.n - 0.97, metric="success rate",
                      ci=(low - 0.97, high - 0.97), seeds_needed=st.seeds_for_share(0.97))
    return Judgement(verdict, (c,), (drawn, note), budget(natural))


def spike_rule(ev: pd.DataFrame) -> Judgement:
    return judged(pairs(ev, "spike_timing", "peephole", "lstm"), select(ev, "spike_timing"),
                  "our task differs from the source's (see the setup table)")


def temporal_rule(ev: pd.DataFrame) -> Judgement:
    """The LSTM's solved share at each T against one half (solves it in most seeds), exact
    binomial test, Holm across the lengths."""
    rows = select(ev, "temporal_order", ["lstm"])
    settings = sorted(rows.groupby("setting"), key=lambda kv: natural_key(kv[0]))
    # all seeds solved: the fewest that the exact test, Holm across the lengths, calls significant
    needed = next(n for n in range(2, st.MAX_SEEDS) if 0.5 ** n < st.ALPHA / max(1, len(settings)))
    comparisons = []
    for setting, group in settings:
        s = sample(group, readback.goal(group))
        label = f"{setting}: lstm solved share"
        if s.n < 2 or s.k is None:
            comparisons.append(st.Comparison(label, s, st.Sample.of([0.5]), "level",
                                             status=st.NO_VERDICT if s.n else st.NOT_RUN))
            continue
        more = sps.binomtest(s.k, s.n, 0.5, alternative="greater").pvalue
        fewer = sps.binomtest(s.k, s.n, 0.5, alternative="less").pvalue
        low, high = sps.binomtest(s.k, s.n).proportion_ci(0.95)
        comparisons.append(st.Comparison(
            label, s, st.Sample.of([0.5]), "level", test="exact binomial", p=float(more),
            p_against=float(fewer), effect=s.k / s.n - 0.5, ci=(low - 0.5, high - 0.5),
            seeds_needed=needed, budget=budget(group), metric="solved share"))
    return judged(comparisons, rows, "the source's lengths were about 100 steps: see the setup table")


def variant_rule(a: str, b: str, kind: str = st.EQUIVALENCE) -> Callable[[pd.DataFrame], Judgement]:
    """`a` ≈ `b` (TOST) or `a` ≥ `b` (non-inferiority) in every setting both ran (ablation runs
    aside), Holm across the settings; both at chance: no information."""
    def rule(ev: pd.DataFrame) -> Judgement:
        comparisons = [c for task in dict.fromkeys(ev["task"]) if not ev.empty
                       for c in pairs(ev, task, a, b, kind=kind)] if not ev.empty else []
        untested = sum(c.status == st.NO_INFORMATION for c in comparisons)
        single = sum(c.status == st.NO_VERDICT for c in comparisons)
        rows = ev[ev["cell"].isin([a, b]) & ~ev["ablation"]] if not ev.empty else ev
        return judged(comparisons, rows,
                      f"{untested} settings with both cells at chance: no information" if untested else "",
                      f"{single} settings with one seed on a side: no verdict" if single else "",
                      every=True)
    return rule


def forget_bias_rule(ev: pd.DataFrame) -> Judgement:
    """Bias 1 against bias 0 for each LSTM-family cell in the ablated settings (Welch), Holm
    across the cells."""
    ablated = ev[ev["ablation"]] if not ev.empty else ev
    comparisons = []
    for task in dict.fromkeys(ablated["task"]) if not ablated.empty else []:
        for cell in forget_gate_cells():
            found = pairs(ev, task, cell, cell, ablation_b=True,
                          where=lambda e, t=ablated: e["length"].isin(t["length"]))
            comparisons += [_relabel(c, f"{c.setting}: {cell} bias 1 vs 0") for c in found]
    return judged(comparisons, ablated)


def bias_gap_rule(ev: pd.DataFrame) -> Judgement:
    """The bias-1 LSTM ≈ GRU (TOST) where the ablation ran: 'closes the gap' compared directly."""
    ablated = ev[ev["ablation"]] if not ev.empty else ev
    comparisons = []
    for task in dict.fromkeys(ablated["task"]) if not ablated.empty else []:
        comparisons += pairs(ev, task, "lstm", "gru", kind=st.EQUIVALENCE,
                             where=lambda e, t=ablated: e["length"].isin(t["length"]))
    return judged(comparisons, ablated, every=True)


def attention_rule(attention: str) -> Callable[[pd.DataFrame], Judgement]:
    """Per gated cell, Multi30k BLEU with `attention` (the paper's model: no readout/input-feeding
    ablation) against none, at each budget both ran (epochs, units, lr): one comparison per
    (cell, budget), the budget named in its label; Holm across them."""
    def rule(ev: pd.DataFrame) -> Judgement:
        rows = select(ev, "multi30k", gated_cells())
        if rows.empty:
            return Judgement(st.NOT_RUN, notes=("no finished Multi30k run of a gated cell",))
        attn = rows.get("params.model.attention", pd.Series(index=rows.index, dtype=object))
        plain = attn.map(missing)
        with_ = (attn == attention) & published(rows)
        level = rows.apply(lambda r: budget(rows.loc[[r.name]]), axis=1)
        comparisons, missing_pairs, needed = [], [], []
        for cell in gated_cells():
            own = rows["cell"] == cell
            # the budgets of its runs with `attention`; without any, those its other runs had
            budgets = level[own & with_].unique() if (own & with_).any() else level[own].unique()
            for b in sorted(budgets, key=natural_key):
                at = own & (level == b)
                lacks = [what for what, there in ((f"with {attention} attention", with_),
                                                  ("without attention", plain))
                         if not (at & there).any()]
                if lacks:
                    missing_pairs.append(f"{cell} ({b}): {' and '.join(lacks)}")
                    needed += [f"{cell} {what} ({b})" for what in lacks]
                    continue
                found = st.compare(f"{cell} at {b}", sample(rows[at & with_]), sample(rows[at & plain]))
                comparisons.append(replace(found, budget=b))
        return judged(comparisons, rows[with_ | plain],
                      f"no run at the budget of: {'; '.join(missing_pairs)}"
                      if missing_pairs else "", missing=needed)
    return rule


def level_rule(task: str, level: float, cells_: Iterable[str], *, can_contradict: bool,
               where: Callable[[pd.DataFrame], pd.Series] | None = None,
               every: bool = True) -> Callable[[pd.DataFrame], Judgement]:
    """Each of `cells_` at least `level` on `task` (one-sample t-test per cell and setting)."""
    def rule(ev: pd.DataFrame) -> Judgement:
        rows = select(ev, task, cells_, where=where)
        comparisons = []
        for (setting, cell), group in sorted(rows.groupby(["setting", "cell"]),
                                             key=lambda kv: (natural_key(kv[0][0]),
                                                             list(cells.names()).index(kv[0][1]))):
            goal = readback.goal(group)
            comparisons.append(against_level(f"{setting}: {cell}", group, level, goal=goal,
                                             higher_is_better=goal.mode != "min",
                                             can_contradict=can_contradict))
        if not comparisons:
            return Judgement(st.NOT_RUN, notes=(f"no finished {task} run",))
        return judged(comparisons, rows, every=every)
    return rule


def published(e: pd.DataFrame) -> pd.Series:
    """The runs without an ablation of Luong's model (`model.input_feeding`, `model.readout`):
    the model the published claims are about ("None" before the paper's own values were stored
    as written, the default value since)."""
    plain = pd.Series(True, index=e.index)
    for key in ("model.input_feeding", "model.readout"):
        if f"params.{key}" in e:
            default = str(settings.default(key))
            plain &= e[f"params.{key}"].map(lambda v, d=default: missing(v) or str(v) == d)
    return plain


def bahdanau(e: pd.DataFrame) -> pd.Series:
    """The runs with Bahdanau attention as published."""
    return (e.get("params.model.attention", pd.Series(index=e.index, dtype=object)) == "bahdanau") \
        & published(e)


def judge_all(ev: pd.DataFrame, claims: list[Claim]) -> list[tuple[Claim, Judgement]]:
    return [(claim, claim.rule(ev)) for claim in claims]
