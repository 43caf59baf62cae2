"""Statistics for rates, checked against published values.

Wilson intervals: Newcombe (1998), "Two-sided confidence intervals for the single proportion",
Statistics in Medicine 17, table I (method 3). Difference of proportions: Newcombe (1998),
"Interval estimation for the difference between independent proportions", 56/70 vs 48/80
(method 1, the Wald interval: 0.0575 to 0.3425).
"""

from __future__ import annotations

import pytest

from feedback_core.stats import (
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
    assert t.low == pytest.approx(0.0575, abs=5e-5)
    assert t.high == pytest.approx(0.3425, abs=5e-5)
    # pooled z = 0.2 / sqrt(104/150 * 46/150 * (1/70 + 1/80)) = 2.650, two-sided p = 0.0080
    assert t.p_value == pytest.approx(0.0080, abs=5e-5)


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
