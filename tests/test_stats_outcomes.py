"""What a comparison of two rates may conclude (stats.compare_rates) and the verdict that says it."""

from __future__ import annotations

import pytest

from feedback_core.stats import compare_rates, two_proportion_test, verdict


@pytest.mark.parametrize(
    "counts,min_trials,outcome",
    [
        pytest.param((100, 1000, 60, 1000), 1, "lower", id="lower"),
        pytest.param((60, 1000, 100, 1000), 1, "higher", id="higher"),
        pytest.param((10, 100, 11, 100), 1, "no_difference", id="no-difference"),
        # p = 0.049 but the Newcombe interval runs from -0.016 to +4.78 points.
        pytest.param((19, 441, 90, 1298), 1, "borderline", id="p-below-interval-includes-0"),
        pytest.param((184, 1070, 8, 20), 30, "too_few", id="b-under-the-minimum"),
        pytest.param((8, 20, 184, 1070), 30, "too_few", id="a-under-the-minimum"),
        pytest.param((184, 1070, 15, 30), 30, "higher", id="exactly-the-minimum"),
        pytest.param((0, 0, 3, 10), 1, "no_impressions", id="no-impressions"),
    ],
)
def test_compare_rates_outcomes(counts, min_trials, outcome):
    got, test = compare_rates(*counts, min_trials=min_trials)
    assert got == outcome
    assert (test.p_value is None) == (outcome in ("too_few", "no_impressions"))


def test_a_borderline_result_says_the_test_and_the_interval_disagree():
    test = two_proportion_test(19, 441, 90, 1298)
    assert test.p_value < 0.05 and test.low < 0 < test.high
    said = verdict("version 6", "version 7", 19, 441, 90, 1298)
    assert said == (
        "borderline: version 7's dislike rate is 2.6 points higher, p = 0.049, but the 95% interval "
        "of the difference (-0.02 to +4.78 points) includes 0: not a clear difference"
    )


def test_no_verdict_on_rates_with_too_few_impressions():
    assert verdict("version 1", "version 5", 184, 1070, 8, 20, min_trials=30) == (
        "no verdict: too few impressions to compare (version 5 has 20; a rate needs 30)"
    )
    # Without a minimum the old behaviour stands: 8 of 20 against 184 of 1,070 is significant.
    assert verdict("version 1", "version 5", 184, 1070, 8, 20).startswith("version 5's dislike rate is")
