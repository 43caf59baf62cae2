"""Statistics for rates, checked against published values.

Wilson intervals: Newcombe (1998), "Two-sided confidence intervals for the single proportion",
Statistics in Medicine 17, table I (method 3). Difference of proportions: Newcombe (1998),
"Interval estimation for the difference between independent proportions", 56/70 vs 48/80
(method 10, the hybrid score interval: 0.0524 to 0.3339). Fisher's exact test: the two-sided
p-values R's ``fisher.test`` gives, and a recount of every small table by exact fractions.
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from math import comb

import pytest

from feedback_core.stats import (
    fisher_exact_p,
    impressions_needed,
    rate_with_interval,
    two_proportion_test,
    verdict,
    wilson_interval,
)


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0000, 0.1611),
        (1, 29, 0.0061, 0.1718),
        (29, 29, 0.8830, 1.0000),
        (0, 10, 0.0000, 0.2775),
        (5, 10, 0.2366, 0.7634),
    ],
)
def test_wilson_interval_matches_newcombe(successes, trials, low, high):
    got_low, got_high = wilson_interval(successes, trials)
    assert got_low == pytest.approx(low, abs=5e-5)
    assert got_high == pytest.approx(high, abs=5e-5)


def test_wilson_interval_without_trials_is_uninformative():
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_wilson_interval_contains_the_rate_and_narrows_with_more_data():
    small = wilson_interval(10, 100)
    large = wilson_interval(100, 1000)
    assert small[0] < 0.1 < small[1] and large[0] < 0.1 < large[1]
    assert large[1] - large[0] < small[1] - small[0]


def test_rate_with_interval():
    r = rate_with_interval(5, 10)
    assert (
        r.rate == 0.5
        and r.low == pytest.approx(0.2366, abs=5e-5)
        and r.high == pytest.approx(0.7634, abs=5e-5)
    )
    assert r.as_dict() == {"events": 5, "trials": 10, "rate": 0.5, "ci_low": r.low, "ci_high": r.high}


def test_rate_without_trials_is_none_not_zero():
    r = rate_with_interval(0, 0)
    assert (r.rate, r.low, r.high) == (None, None, None)


def test_two_proportion_interval_matches_newcombe():
    t = two_proportion_test(48, 80, 56, 70)  # difference is b - a = 0.8 - 0.6
    assert t.difference == pytest.approx(0.2)
    assert t.low == pytest.approx(0.0524, abs=5e-5)
    assert t.high == pytest.approx(0.3339, abs=5e-5)
    # pooled z = 0.2 / sqrt(104/150 * 46/150 * (1/70 + 1/80)) = 2.650, two-sided p = 0.0080
    assert t.p_value == pytest.approx(0.0080, abs=5e-5)
    assert t.method == "z_test"  # every expected count is 5 or more


def test_two_proportion_test_textbook_case():
    # 20/100 vs 30/100: pooled p 0.25, z = 0.1 / 0.06124 = 1.633, p = 0.1025
    t = two_proportion_test(20, 100, 30, 100)
    assert t.difference == pytest.approx(0.1)
    assert t.p_value == pytest.approx(0.1025, abs=5e-4)
    assert t.low < 0 < t.high  # not significant: the interval spans zero


def test_two_proportion_test_is_symmetric_in_sign():
    ab, ba = two_proportion_test(20, 100, 30, 100), two_proportion_test(30, 100, 20, 100)
    assert ab.difference == pytest.approx(-ba.difference)
    assert ab.p_value == pytest.approx(ba.p_value)


@pytest.mark.parametrize(("x_a", "n_a", "x_b", "n_b"), [(0, 50, 0, 50), (50, 50, 50, 50)])
def test_two_proportion_test_without_variance_has_p_one(x_a, n_a, x_b, n_b):
    assert two_proportion_test(x_a, n_a, x_b, n_b).p_value == 1.0


def test_two_proportion_test_without_trials_is_empty():
    t = two_proportion_test(0, 0, 3, 10)
    assert (t.difference, t.low, t.high, t.p_value) == (None, None, None, None)


@pytest.mark.parametrize(
    ("x_a", "n_a", "x_b", "n_b", "p_value"),
    [
        (0, 1000, 1, 30, 0.02913),  # the pooled z-test said 7.6e-9 here
        (8, 10, 1, 6, 0.03497),
        (1, 4, 3, 4, 0.48571),  # the lady tasting tea
        (14, 420, 12, 60, 1.2198e-5),
        (0, 50, 0, 50, 1.0),
    ],
)
def test_small_counts_use_fishers_exact_test(x_a, n_a, x_b, n_b, p_value):
    t = two_proportion_test(x_a, n_a, x_b, n_b)
    assert t.method == "fisher_exact"
    assert t.p_value == pytest.approx(p_value, rel=1e-3)


def test_fishers_exact_test_equals_a_recount_of_every_small_table():
    for n_a, n_b in [(1, 1), (3, 5), (6, 6), (8, 3)]:
        for x_a, x_b in itertools.product(range(n_a + 1), range(n_b + 1)):
            events, total = x_a + x_b, n_a + n_b
            pmf = {
                k: Fraction(comb(events, k) * comb(total - events, n_b - k), comb(total, n_b))
                for k in range(max(0, events - n_a), min(events, n_b) + 1)
            }
            expected = sum(p for p in pmf.values() if p <= pmf[x_b])
            assert fisher_exact_p(x_a, n_a, x_b, n_b) == pytest.approx(float(expected), rel=1e-9)


def test_the_test_and_the_interval_agree_on_few_dislikes():
    # 0 of 1000 against 1 of 30: significant (Fisher p = 0.029), and the interval excludes 0.
    t = two_proportion_test(0, 1000, 1, 30)
    assert t.p_value < 0.05 and 0 < t.low < t.difference < t.high
    # Clearly significant or clearly not, the test and the interval never contradict each
    # other (at the 5% edge Fisher's exact test, being conservative, can differ a little).
    arms = [(10, 10), (30, 30), (30, 1000), (1000, 30), (50, 500), (200, 5000), (1000, 1000)]
    for n_a, n_b in arms:
        for x_a, x_b in itertools.product(range(min(n_a, 40) + 1), range(min(n_b, 40) + 1)):
            t = two_proportion_test(x_a, n_a, x_b, n_b)
            excludes_zero = t.low > 0 or t.high < 0
            if t.p_value < 0.01:
                assert excludes_zero, (x_a, n_a, x_b, n_b, t)
            elif t.p_value > 0.2:
                assert not excludes_zero, (x_a, n_a, x_b, n_b, t)


@pytest.mark.parametrize(
    ("successes", "trials"), [(31, 30), (1, 0), (-1, 30), (0, -1)], ids=["more", "none", "negative", "neg-n"]
)
def test_impossible_counts_are_refused_not_clamped(successes, trials):
    for compute in (
        lambda: wilson_interval(successes, trials),
        lambda: rate_with_interval(successes, trials),
        lambda: two_proportion_test(successes, trials, 1, 10),
        lambda: two_proportion_test(1, 10, successes, trials),
        lambda: verdict("a", "b", successes, trials, 1, 10),
    ):
        with pytest.raises(ValueError, match=f"got {successes} of {trials}"):
            compute()


def test_wilson_interval_at_the_edges_is_exactly_zero_and_one():
    assert wilson_interval(0, 1000)[0] == 0.0
    assert wilson_interval(1000, 1000)[1] == 1.0


def test_impressions_needed():
    # (1.96 + 0.8416)^2 * (0.09 + 0.1275) / 0.05^2 = 682.6 -> 683
    assert impressions_needed(0.10, 0.15) == 683
    assert impressions_needed(0.1, 0.1) is None


def test_verdicts_read_plainly():
    significant = verdict("version 6", "version 7", 100, 1000, 60, 1000)
    assert significant == "version 7's dislike rate is 4.0 points lower, p < 0.001"
    unsure = verdict("version 6", "version 7", 10, 100, 11, 100)
    assert unsure.startswith("no significant difference yet (p = 0.818)")
    assert "more impressions per version" in unsure
    assert verdict("a", "b", 0, 0, 3, 10) == "no verdict yet: a has no impressions"
    assert verdict("a", "b", 10, 100, 10, 100) == "no significant difference (p = 1.000): the rates are equal"
