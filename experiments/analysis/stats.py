"""Verdicts as tests: two cells compared per setting, and a claim judged over its settings.

A claim about cells is judged setting by setting (one task at one length and budget), each
comparison a test from `scipy.stats`, corrected with Holm's method across the settings the claim
judges:

- **difference** ("A beats B"): Welch's t-test (`ttest_ind(equal_var=False)`) on the key test
  metric, two-sided; or Fisher's exact test on the solved shares when the claim is about solving;
- **equivalence** ("A ≈ B"): TOST, two one-sided Welch tests against a margin the claim declares
  (p = the larger of the two); **non-inferiority** ("A ≥ B"): the one of them that says A is not
  worse than B by more than the margin;
- Mann–Whitney U (`mannwhitneyu`) is printed beside Welch's test, as a check that does not assume
  normal seeds.

Rules (:func:`judge`):

- a setting where either cell has one seed gives **no verdict** (n = 1);
- a setting where both cells stayed at the chance level and no seed solved it is **no
  information**: not a tie, and not counted for or against the claim;
- **confirmed** / **contradicted** only when the Holm-corrected test says so at level
  :data:`ALPHA`; otherwise **inconclusive**, printed with n, p and the effect (mean difference, or
  difference of solved shares) with its 95 % confidence interval, and the seeds per cell that
  would give the test 80 % power at the observed effect.

`Holm` is not in `scipy.stats` (`false_discovery_control` offers Benjamini–Hochberg/Yekutieli
only), hence :func:`holm`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import stats

ALPHA = 0.05
POWER = 0.8
CONFIRMED, CONTRADICTED, INCONCLUSIVE = "confirmed", "contradicted", "inconclusive"
NO_INFORMATION, NO_VERDICT, NOT_RUN = "no information", "no verdict (n = 1)", "not run yet"
DIFFERENCE, EQUIVALENCE, NONINFERIORITY, SOLVED = "difference", "equivalence", "non-inferiority", "solved"
MAX_SEEDS = 100  # seeds_needed searches up to this many per cell


@dataclass(frozen=True)
class Sample:
    """One cell's seeds in one setting: key metric values and, where the task has a solved rule,
    whether each seed solved it; `at_chance`: the mean is no better than chance."""

    values: tuple[float, ...]
    solved: tuple[bool, ...] | None = None
    at_chance: bool = False

    @classmethod
    def of(cls, values: Iterable[float], solved: Iterable[float] | None = None,
           at_chance: bool = False) -> Sample:
        kept = tuple(float(v) for v in values if not math.isnan(float(v)))
        flags = None if solved is None else tuple(bool(s) for s in solved if not math.isnan(float(s)))
        return cls(kept, flags or None, at_chance)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else math.nan

    @property
    def sd(self) -> float:
        return float(np.std(self.values, ddof=1)) if self.n > 1 else math.nan

    @property
    def k(self) -> int | None:
        return None if self.solved is None else sum(self.solved)

    @property
    def ci(self) -> tuple[float, float]:
        """95 % confidence interval of the mean (t distribution); NaN for n < 2."""
        if self.n < 2:
            return math.nan, math.nan
        if self.sd == 0:
            return self.mean, self.mean
        low, high = stats.t.interval(0.95, self.n - 1, loc=self.mean, scale=self.sd / math.sqrt(self.n))
        return float(low), float(high)

    def text(self) -> str:
        """'0.97 [0.89, 1.05], n = 3, solved 2/3' (no interval for n = 1)."""
        low, high = self.ci
        interval = f" [{_g(low)}, {_g(high)}]" if self.n > 1 else ""
        solved = f", solved {self.k}/{len(self.solved)}" if self.solved is not None else ""
        return f"{_g(self.mean)}{interval}, n = {self.n}{solved}"


@dataclass(frozen=True)
class Comparison:
    """Cell `a` against cell `b` in one setting. `effect`: mean(a) − mean(b) (or the difference of
    solved shares), oriented so that positive means `a` is better; `ci`: its 95 % interval;
    `p`: the test's p-value (the claim's direction for non-inferiority/equivalence), `p_against`:
    the test that `a` is worse (beyond the margin), `p_holm`/`p_against_holm`: both after Holm's
    correction across the claim's settings; `status`: 'tested', NO_VERDICT or NO_INFORMATION."""

    setting: str
    a: Sample
    b: Sample
    kind: str
    status: str = "tested"
    test: str = ""
    statistic: float = math.nan
    p: float = math.nan
    p_against: float = math.nan
    effect: float = math.nan
    ci: tuple[float, float] = (math.nan, math.nan)
    margin: float | None = None
    mann_whitney_p: float = math.nan
    fisher_p: float = math.nan
    p_holm: float = math.nan
    p_against_holm: float = math.nan
    seeds_needed: int | None = None
    notes: tuple[str, ...] = field(default=())
    budget: str = ""  # what the runs were given (epochs, updates, units), for the reader
    metric: str = ""  # the key metric the effect is in

    @property
    def tested(self) -> bool:
        return self.status == "tested"

    def outcome(self, alpha: float = ALPHA) -> str:
        """This setting's own verdict after Holm: CONFIRMED (for the claim), CONTRADICTED,
        INCONCLUSIVE, or its status when untested."""
        if not self.tested:
            return self.status
        if self.p_holm < alpha:
            return CONFIRMED
        if self.p_against_holm < alpha:
            return CONTRADICTED
        return INCONCLUSIVE

    def text(self) -> str:
        """Effect [95 % CI], the test, its statistic and p (raw and Holm), n per side."""
        if not self.tested:
            return f"{self.status}: {self.a.text()} vs {self.b.text()}"
        low, high = self.ci
        what = "Δ solved share" if self.kind == SOLVED else f"Δ {self.metric}".rstrip()
        margin = f", margin {_g(self.margin)}" if self.margin is not None else ""
        n = f"n = {self.a.n} vs level {_g(self.b.mean)}" if self.kind == "level" \
            else f"n = {self.a.n} vs {self.b.n}"
        return (f"{what} {_signed(self.effect)} [{_g(low)}, {_g(high)}]; {self.test}"
                f"{'' if math.isnan(self.statistic) else f' {_g(self.statistic)}'}, "
                f"p = {_p(self.p)} (Holm {_p(self.p_holm)}){margin}; {n}")


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (NaN stays NaN and is not counted)."""
    order = sorted((p, i) for i, p in enumerate(pvalues) if not math.isnan(p))
    adjusted, running = [math.nan] * len(pvalues), 0.0
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p))
        adjusted[i] = running
    return adjusted


def compare(setting: str, a: Sample, b: Sample, *, kind: str = DIFFERENCE,
            higher_is_better: bool = True, margin: float | None = None) -> Comparison:
    """Test `a` against `b` in one setting (see the module docstring); untested when a side has
    fewer than two seeds or both sides learned nothing."""
    with warnings.catch_warnings():  # seeds that agree to many digits: scipy warns, p stands
        warnings.simplefilter("ignore", RuntimeWarning)
        return _compare(setting, a, b, kind, higher_is_better, margin)


def _compare(setting: str, a: Sample, b: Sample, kind: str, higher_is_better: bool,
             margin: float | None) -> Comparison:
    base = Comparison(setting, a, b, kind, margin=margin)
    if a.n == 0 or b.n == 0:
        return replace(base, status=NOT_RUN)
    nothing = a.at_chance and b.at_chance and not a.k and not b.k
    if nothing:
        return replace(base, status=NO_INFORMATION)
    if a.n < 2 or b.n < 2:
        return replace(base, status=NO_VERDICT)
    if kind == SOLVED:
        return _fisher(base)
    sign = 1.0 if higher_is_better else -1.0
    x, y = sign * np.asarray(a.values), sign * np.asarray(b.values)  # now higher is better
    effect = float(x.mean() - y.mean())
    two_sided = stats.ttest_ind(x, y, equal_var=False)
    ci = _welch_ci(two_sided, x, y)
    mw = float(stats.mannwhitneyu(x, y).pvalue)
    fisher_p = _fisher(base).fisher_p if a.solved is not None and b.solved is not None else math.nan
    common = {"effect": effect, "ci": ci, "mann_whitney_p": mw, "fisher_p": fisher_p}
    if kind == DIFFERENCE:
        p = float(two_sided.pvalue)
        # two-sided: the direction of a significant result is the effect's sign
        return replace(base, test="Welch t", statistic=float(two_sided.statistic),
                       p=p if effect > 0 else 1.0, p_against=p if effect < 0 else 1.0,
                       seeds_needed=_seeds_for_welch(x, y), **common)
    if margin is None:
        raise ValueError(f"{kind} test needs a margin")
    not_worse = stats.ttest_ind(x + margin, y, equal_var=False, alternative="greater")
    worse = stats.ttest_ind(x + margin, y, equal_var=False, alternative="less")  # a worse beyond margin
    if kind == NONINFERIORITY:
        return replace(base, test="Welch non-inferiority", statistic=float(not_worse.statistic),
                       p=float(not_worse.pvalue), p_against=float(worse.pvalue),
                       seeds_needed=_seeds_for_welch(x + margin, y), **common)
    not_better = stats.ttest_ind(x - margin, y, equal_var=False, alternative="less")
    better = stats.ttest_ind(x - margin, y, equal_var=False, alternative="greater")
    p = float(np.max([not_worse.pvalue, not_better.pvalue]))  # NaN when either is
    p_against = float(np.min([worse.pvalue, better.pvalue]))
    room = margin - abs(effect)
    return replace(base, test="TOST (Welch)", p=p, p_against=p_against,
                   seeds_needed=_seeds_for_welch(np.asarray([room]), np.asarray([0.0]), x, y)
                   if room > 0 else None, **common)


def judge(comparisons: Sequence[Comparison], *, every: bool = False,
          alpha: float = ALPHA) -> tuple[str, list[Comparison]]:
    """The claim's verdict over its settings, and the comparisons with Holm's p-values filled in.

    Contradicted when a setting's corrected test goes against the claim; confirmed when one does
    for it (`every`: when every tested setting does, as for "≈" and "≥" claims); else
    inconclusive; NO_VERDICT / NO_INFORMATION / NOT_RUN when no setting could be tested."""
    tested = [c for c in comparisons if c.tested]
    for_, against = holm([c.p for c in tested]), holm([c.p_against for c in tested])
    filled = iter(replace(c, p_holm=p, p_against_holm=q) for c, p, q in zip(tested, for_, against))
    judged = [next(filled) if c.tested else c for c in comparisons]
    if not tested:
        statuses = {c.status for c in comparisons}
        for status in (NO_VERDICT, NO_INFORMATION, NOT_RUN):
            if status in statuses:
                return status, judged
        return NOT_RUN, judged
    outcomes = [c.outcome(alpha) for c in judged if c.tested]
    if CONTRADICTED in outcomes:
        return CONTRADICTED, judged
    if (all(o == CONFIRMED for o in outcomes) if every else CONFIRMED in outcomes):
        return CONFIRMED, judged
    return INCONCLUSIVE, judged


def share_test(k: int, n: int, claimed: float, alpha: float = ALPHA) -> tuple[str, float, tuple[float, float]]:
    """A claimed success rate against k of n seeds (exact binomial test): contradicted when the
    rate is below `claimed` (one-sided p < alpha), confirmed when the 95 % Clopper–Pearson interval
    lies at or above it; (verdict, p, interval). NO_VERDICT for n < 2."""
    if n < 2:
        return NO_VERDICT, math.nan, (math.nan, math.nan)
    result = stats.binomtest(k, n, claimed, alternative="less")
    low, high = stats.binomtest(k, n).proportion_ci(0.95)  # two-sided Clopper–Pearson
    if result.pvalue < alpha:
        return CONTRADICTED, float(result.pvalue), (low, high)
    return (CONFIRMED if low >= claimed else INCONCLUSIVE), float(result.pvalue), (low, high)


def seeds_for_share(claimed: float, alpha: float = ALPHA) -> int:
    """Seeds, all successful, that a 95 % Clopper–Pearson interval needs to lie above `claimed`."""
    return next((n for n in range(2, 10 * MAX_SEEDS) if (alpha / 2) ** (1 / n) >= claimed),
                10 * MAX_SEEDS)


# --- helpers ---------------------------------------------------------------------------------------


def _fisher(base: Comparison) -> Comparison:
    a, b = base.a, base.b
    if a.solved is None or b.solved is None:
        return replace(base, status=NOT_RUN, notes=("no solved rule",))
    ka, kb = a.k, b.k
    table = [[ka, a.n - ka], [kb, b.n - kb]]
    p = float(stats.fisher_exact(table).pvalue)
    effect = ka / a.n - kb / b.n
    # Agresti–Caffo interval: one success and one failure added to each side
    pa, pb = (ka + 1) / (a.n + 2), (kb + 1) / (b.n + 2)
    se = math.sqrt(pa * (1 - pa) / (a.n + 2) + pb * (1 - pb) / (b.n + 2))
    z = stats.norm.ppf(0.975)
    ci = (max(-1.0, pa - pb - z * se), min(1.0, pa - pb + z * se))
    return replace(base, test="Fisher exact", p=p if effect > 0 else 1.0,
                   p_against=p if effect < 0 else 1.0, effect=effect, ci=ci, fisher_p=p,
                   seeds_needed=_seeds_for_fisher(ka / a.n, kb / b.n))


def _welch_ci(result, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    if np.std(x) == 0 and np.std(y) == 0:
        d = float(x.mean() - y.mean())
        return d, d
    ci = result.confidence_interval(0.95)
    return float(ci.low), float(ci.high)


def _seeds_for_welch(x: np.ndarray, y: np.ndarray, *spread: np.ndarray) -> int | None:
    """Seeds per cell for POWER at level ALPHA (two-sided, normal approximation) at the observed
    difference of `x` and `y` and the pooled spread of `spread` (default: of x and y)."""
    spread = spread or (x, y)
    sd = math.sqrt(np.mean([np.var(s, ddof=1) for s in spread if len(s) > 1]))
    diff = abs(float(np.mean(x) - np.mean(y)))
    if not sd or math.isnan(sd) or not diff:
        return None
    z = stats.norm.ppf(1 - ALPHA / 2) + stats.norm.ppf(POWER)
    n = math.ceil(2 * (z * sd / diff) ** 2) + 1  # +1: the t distribution's heavier tails
    return n if n <= MAX_SEEDS else None


def _seeds_for_fisher(share_a: float, share_b: float) -> int | None:
    """The fewest seeds per cell at which the observed solved shares would give Fisher p < ALPHA."""
    if share_a == share_b:
        return None
    for n in range(2, MAX_SEEDS + 1):
        ka, kb = round(share_a * n), round(share_b * n)
        if stats.fisher_exact([[ka, n - ka], [kb, n - kb]]).pvalue < ALPHA:
            return n
    return None


def _g(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.3g}"


def _signed(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:+.3g}"


def _p(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.1g}" if value < 0.001 else f"{value:.3f}" if value < 0.01 else f"{value:.2f}"
