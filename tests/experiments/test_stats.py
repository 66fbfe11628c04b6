"""Verdicts as tests (experiments.analysis.stats): each rule on synthetic seeds whose answer is known."""

from __future__ import annotations

import math

import pytest

from experiments.analysis import stats as st

WIN = st.Sample.of([0.99, 1.0, 0.98, 1.0, 0.99], [1] * 5)
LOSS = st.Sample.of([0.50, 0.52, 0.49, 0.51, 0.50], [0] * 5)


def judged(*comparisons, every=False):
    return st.judge(list(comparisons), every=every)


def test_a_clear_win_is_confirmed_and_a_clear_loss_contradicted():
    verdict, (c,) = judged(st.compare("s", WIN, LOSS))
    assert verdict == st.CONFIRMED and c.p_holm < 0.001 and c.effect == pytest.approx(0.488)
    assert c.ci[0] > 0 and c.test == "Welch t"
    assert judged(st.compare("s", LOSS, WIN))[0] == st.CONTRADICTED


def test_lower_is_better_turns_the_effect_round():
    low, high = st.Sample.of([0.001, 0.002, 0.0015]), st.Sample.of([0.16, 0.17, 0.165])
    c = st.compare("s", low, high, higher_is_better=False)
    assert c.effect > 0 and judged(c)[0] == st.CONFIRMED


def test_a_clear_tie_is_confirmed_by_tost_and_a_difference_beyond_the_margin_contradicts_it():
    same = st.Sample.of([0.99, 0.995, 0.985, 1.0, 0.99])
    verdict, (c,) = judged(st.compare("s", WIN, same, kind=st.EQUIVALENCE, margin=0.02), every=True)
    assert verdict == st.CONFIRMED and c.test == "TOST (Welch)" and c.margin == 0.02
    far = judged(st.compare("s", WIN, LOSS, kind=st.EQUIVALENCE, margin=0.02), every=True)
    assert far[0] == st.CONTRADICTED
    with pytest.raises(ValueError, match="margin"):
        st.compare("s", WIN, same, kind=st.EQUIVALENCE)


def test_non_inferiority_holds_for_a_better_cell_and_fails_for_a_worse_one():
    assert judged(st.compare("s", WIN, LOSS, kind=st.NONINFERIORITY, margin=0.02))[0] == st.CONFIRMED
    assert judged(st.compare("s", LOSS, WIN, kind=st.NONINFERIORITY, margin=0.02))[0] == st.CONTRADICTED


def test_an_underpowered_difference_is_inconclusive_with_its_numbers_and_the_seeds_it_needs():
    verdict, (c,) = judged(st.compare("s", st.Sample.of([0.6, 0.8, 0.7]), st.Sample.of([0.5, 0.7, 0.6])))
    assert verdict == st.INCONCLUSIVE
    assert c.p == pytest.approx(0.29, abs=0.01) and c.ci[0] < 0 < c.ci[1]
    assert c.seeds_needed is not None and c.seeds_needed > 3
    text = c.text()
    assert "Δ +0.1" in text and "p = 0.29" in text and "n = 3 vs 3" in text


def test_both_at_chance_is_no_information_not_a_tie():
    a = st.Sample.of([0.10, 0.11, 0.10], [0, 0, 0], at_chance=True)
    b = st.Sample.of([0.11, 0.10, 0.10], [0, 0, 0], at_chance=True)
    for kind, margin in ((st.DIFFERENCE, None), (st.EQUIVALENCE, 0.02), (st.SOLVED, None)):
        verdict, (c,) = judged(st.compare("s", a, b, kind=kind, margin=margin), every=True)
        assert verdict == st.NO_INFORMATION and not c.tested
    # next to a tested setting it is left out, not counted as a tie
    same = st.Sample.of([0.99, 0.995, 0.985, 1.0, 0.99])
    verdict, filled = judged(st.compare("chance", a, b, kind=st.EQUIVALENCE, margin=0.02),
                             st.compare("learned", WIN, same, kind=st.EQUIVALENCE, margin=0.02),
                             every=True)
    assert verdict == st.CONFIRMED and filled[0].outcome() == st.NO_INFORMATION


def test_one_seed_gives_no_verdict_even_for_a_large_difference():
    verdict, (c,) = judged(st.compare("s", st.Sample.of([36.5]), st.Sample.of([9.4])))
    assert verdict == st.NO_VERDICT and math.isnan(c.p)


def test_solved_shares_use_fishers_exact_test():
    three = judged(st.compare("s", st.Sample.of([0.0] * 3, [1] * 3), st.Sample.of([0.2] * 3, [0] * 3),
                              kind=st.SOLVED))
    assert three[0] == st.INCONCLUSIVE and three[1][0].p == pytest.approx(0.1)
    assert three[1][0].seeds_needed == 4  # 4/4 against 0/4: p = 0.029
    five = judged(st.compare("s", st.Sample.of([0.0] * 5, [1] * 5), st.Sample.of([0.2] * 5, [0] * 5),
                             kind=st.SOLVED))
    assert five[0] == st.CONFIRMED and five[1][0].p == pytest.approx(2 / 252)


def test_holm_adjusts_step_down_and_can_turn_a_verdict_inconclusive():
    # R: p.adjust(c(0.01, 0.04, 0.03, 0.005), "holm") = 0.03 0.06 0.06 0.02
    assert st.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert math.isnan(st.holm([float("nan"), 0.01])[0])
    weak = st.compare("s", st.Sample.of([0.70, 0.72, 0.74, 0.71]), st.Sample.of([0.66, 0.69, 0.70, 0.68]))
    assert 0.01 < weak.p < 0.05 and judged(weak)[0] == st.CONFIRMED
    untested = [st.compare(f"s{i}", st.Sample.of([0.5, 0.6, 0.7]), st.Sample.of([0.5, 0.6, 0.7]))
                for i in range(5)]
    assert judged(weak, *untested)[0] == st.INCONCLUSIVE  # 6 settings: Holm multiplies by 6


def test_a_claimed_success_rate_is_checked_by_an_exact_binomial_test():
    assert st.share_test(3, 3, 0.97)[0] == st.INCONCLUSIVE
    assert st.share_test(1, 5, 0.97)[0] == st.CONTRADICTED
    assert st.share_test(1, 1, 0.97)[0] == st.NO_VERDICT
    n = st.seeds_for_share(0.97)
    assert st.share_test(n, n, 0.97)[0] == st.CONFIRMED and st.share_test(n - 1, n - 1, 0.97)[0] != st.CONFIRMED


def test_sample_reports_mean_interval_n_and_solved():
    s = st.Sample.of([1.0, 2.0, 3.0, float("nan")], [1, 0, 1])
    assert (s.n, s.mean, s.k) == (3, 2.0, 2)
    assert s.ci == pytest.approx((2.0 - 4.303 / math.sqrt(3), 2.0 + 4.303 / math.sqrt(3)), abs=1e-3)
    assert s.text().startswith("2 [") and s.text().endswith("n = 3, solved 2/3")
    assert st.Sample.of([5.0]).text() == "5, n = 1"
