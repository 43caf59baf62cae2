"""Pure statistics for rates: Wilson intervals, two-proportion tests, sample sizes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

Z95 = NormalDist().inv_cdf(0.975)
# Below this expected count in any cell of the 2x2 table the z-test's normal approximation
# fails (0 of 1000 against 1 of 30 gave p = 8e-9): Fisher's exact test answers instead.
MIN_EXPECTED_FOR_Z = 5


def check_counts(successes: int, trials: int) -> None:
    """Raise ValueError unless ``0 <= successes <= trials``.

    Raises:
        ValueError: for a negative count or more successes than trials (counts that cannot
            come from real events: the caller must not turn them into a rate).
    """
    if trials < 0 or successes < 0:
        raise ValueError(f"counts must not be negative, got {successes} of {trials}")
    if successes > trials:
        raise ValueError(f"successes must not exceed trials, got {successes} of {trials}")


@dataclass(frozen=True)
class Rate:
    """A proportion with its 95% Wilson interval."""

    successes: int
    trials: int
    rate: float | None
    low: float | None
    high: float | None

    def as_dict(self) -> dict:
        """Return a JSON-ready dict."""
        return {
            "events": self.successes,
            "trials": self.trials,
            "rate": self.rate,
            "ci_low": self.low,
            "ci_high": self.high,
        }


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Return the Wilson score interval of ``successes / trials`` (``(0, 1)`` for no trials).

    Raises:
        ValueError: for a negative count or more successes than trials.
    """
    check_counts(successes, trials)
    if trials == 0:
        return (0.0, 1.0)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    # At 0 (or all) successes the bound is exactly 0 (or 1); rounding would leave 2e-19.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return (low, high)


def rate_with_interval(successes: int, trials: int) -> Rate:
    """Return the rate and its interval; the rate is None when there are no trials.

    Raises:
        ValueError: for a negative count or more successes than trials.
    """
    check_counts(successes, trials)
    if trials == 0:
        return Rate(successes, 0, None, None, None)
    low, high = wilson_interval(successes, trials)
    return Rate(successes, trials, successes / trials, low, high)


@dataclass(frozen=True)
class ProportionTest:
    """Difference of two proportions (b - a), its 95% interval and a two-sided p-value."""

    difference: float | None
    low: float | None
    high: float | None
    p_value: float | None
    method: str | None = None  # "fisher_exact" or "z_test": which test gave the p-value


def two_proportion_test(x_a: int, n_a: int, x_b: int, n_b: int) -> ProportionTest:
    """Compare two rates: Fisher's exact test when any expected count is below 5, else the pooled
    z-test; the interval of the difference is Newcombe's, built from the two Wilson intervals.

    Unlike the Wald interval, Newcombe's stays honest for rates near 0 and few trials. The
    test and the interval are different methods, so near the 0.05 line they can disagree
    (19/441 against 90/1298: p = 0.049, interval -0.016 to +4.78 points); ``compare_rates``
    calls such a result ``"borderline"``.

    Raises:
        ValueError: for a negative count or more successes than trials.
    """
    check_counts(x_a, n_a)
    check_counts(x_b, n_b)
    if n_a == 0 or n_b == 0:
        return ProportionTest(None, None, None, None)
    p_a, p_b = x_a / n_a, x_b / n_b
    diff = p_b - p_a
    low, high = newcombe_interval(x_a, n_a, x_b, n_b)
    if min_expected_count(x_a, n_a, x_b, n_b) < MIN_EXPECTED_FOR_Z:
        return ProportionTest(diff, low, high, fisher_exact_p(x_a, n_a, x_b, n_b), "fisher_exact")
    pooled = (x_a + x_b) / (n_a + n_b)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se_pooled == 0:
        p_value = 1.0
    else:
        z = diff / se_pooled
        p_value = 2 * (1 - NormalDist().cdf(abs(z)))
    return ProportionTest(diff, low, high, p_value, "z_test")


def newcombe_interval(x_a: int, n_a: int, x_b: int, n_b: int, z: float = Z95) -> tuple[float, float]:
    """Return the 95% interval of ``x_b / n_b - x_a / n_a`` by Newcombe's hybrid score method.

    Newcombe (1998), "Interval estimation for the difference between independent proportions",
    method 10: each side's distance from the two Wilson intervals.
    """
    p_a, p_b = x_a / n_a, x_b / n_b
    low_a, high_a = wilson_interval(x_a, n_a, z)
    low_b, high_b = wilson_interval(x_b, n_b, z)
    diff = p_b - p_a
    low = diff - math.sqrt((p_b - low_b) ** 2 + (high_a - p_a) ** 2)
    high = diff + math.sqrt((high_b - p_b) ** 2 + (p_a - low_a) ** 2)
    return (max(-1.0, low), min(1.0, high))


def min_expected_count(x_a: int, n_a: int, x_b: int, n_b: int) -> float:
    """Return the smallest expected cell count of the 2x2 table under "the rates are equal"."""
    total, events = n_a + n_b, x_a + x_b
    return min(n_a, n_b) * min(events, total - events) / total


def fisher_exact_p(x_a: int, n_a: int, x_b: int, n_b: int) -> float:
    """Return the two-sided p-value of Fisher's exact test on ``x_a / n_a`` against ``x_b / n_b``.

    The tables with the observed margins that are no more likely than the observed one, summed
    (the convention of R's ``fisher.test`` and SciPy's ``fisher_exact``).
    """
    total, events = n_a + n_b, x_a + x_b

    def log_pmf(k: int) -> float:  # hypergeometric: k of B's n_b trials among the events
        return _log_comb(events, k) + _log_comb(total - events, n_b - k) - _log_comb(total, n_b)

    observed = log_pmf(x_b)
    # Relative tolerance: tables as likely as the observed one must count despite rounding.
    cutoff = observed + math.log1p(1e-7)
    support = range(max(0, n_b - (total - events)), min(events, n_b) + 1)
    p = sum(math.exp(lp) for lp in map(log_pmf, support) if lp <= cutoff)
    return min(1.0, p)


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def impressions_needed(p_a: float, p_b: float, alpha: float = 0.05, power: float = 0.8) -> int | None:
    """Return impressions per arm needed to detect ``p_a`` vs ``p_b`` (None if they are equal)."""
    if p_a == p_b:
        return None
    z_a = NormalDist().inv_cdf(1 - alpha / 2)
    z_b = NormalDist().inv_cdf(power)
    var = p_a * (1 - p_a) + p_b * (1 - p_b)
    return math.ceil((z_a + z_b) ** 2 * var / (p_a - p_b) ** 2)


# What ``compare_rates`` can conclude about B against A.
OUTCOMES = ("no_impressions", "too_few", "lower", "higher", "borderline", "no_difference")


def compare_rates(
    x_a: int, n_a: int, x_b: int, n_b: int, min_trials: int = 1, alpha: float = 0.05
) -> tuple[str, ProportionTest]:
    """Return what can be said of B's rate against A's (one of ``OUTCOMES``) and the test.

    No test when either side has no impressions, or fewer than ``min_trials`` (a rate too
    uncertain to show is too uncertain to judge). ``"lower"``/``"higher"`` need both the
    test (p < ``alpha``) and the interval of the difference (excludes 0); when only one of
    them says so the outcome is ``"borderline"``.

    Raises:
        ValueError: for a negative count or more successes than trials.
    """
    check_counts(x_a, n_a)
    check_counts(x_b, n_b)
    none = ProportionTest(None, None, None, None)
    if n_a == 0 or n_b == 0:
        return "no_impressions", none
    if min(n_a, n_b) < min_trials:
        return "too_few", none
    test = two_proportion_test(x_a, n_a, x_b, n_b)
    significant = test.p_value < alpha
    excludes_zero = test.low > 0 or test.high < 0
    if significant and excludes_zero:
        return ("lower" if test.difference < 0 else "higher"), test
    if significant or excludes_zero:
        return "borderline", test
    return "no_difference", test


def verdict(
    name_a: str,
    name_b: str,
    x_a: int,
    n_a: int,
    x_b: int,
    n_b: int,
    alpha: float = 0.05,
    min_trials: int = 1,
) -> str:
    """Return a plain-language verdict on whether B's dislike rate differs from A's.

    No verdict when either side has fewer than ``min_trials`` impressions (see ``compare_rates``).

    Raises:
        ValueError: for a negative count or more dislikes than impressions.
    """
    outcome, test = compare_rates(x_a, n_a, x_b, n_b, min_trials, alpha)
    if outcome == "no_impressions":
        missing = name_a if n_a == 0 else name_b
        return f"no verdict yet: {missing} has no impressions"
    if outcome == "too_few":
        fewer = name_a if n_a < n_b else name_b
        return (
            f"no verdict: too few impressions to compare ({fewer} has {min(n_a, n_b):,}; "
            f"a rate needs {min_trials:,})"
        )
    points = abs(test.difference) * 100
    direction = "lower" if test.difference < 0 else "higher"
    if outcome in ("lower", "higher"):
        return f"{name_b}'s dislike rate is {points:.1f} points {direction}, {_p(test.p_value)}"
    if outcome == "borderline":
        zero = "includes" if test.p_value < alpha else "excludes"
        return (
            f"borderline: {name_b}'s dislike rate is {points:.1f} points {direction}, {_p(test.p_value)}, "
            f"but the 95% interval of the difference ({test.low * 100:+.2f} to {test.high * 100:+.2f} "
            f"points) {zero} 0: not a clear difference"
        )
    p_a, p_b = x_a / n_a, x_b / n_b
    needed = impressions_needed(p_a, p_b)
    if needed is None:
        return f"no significant difference ({_p(test.p_value)}): the rates are equal"
    more = max(needed - min(n_a, n_b), 0)
    return (
        f"no significant difference yet ({_p(test.p_value)}): need about {more:,} more "
        f"impressions per version to detect a {points:.1f}-point difference"
    )


def _p(p: float | None) -> str:
    # "p < 0.001", never "p = < 0.001"
    if p is None:
        return "p n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
