"""Pure statistics for rates: Wilson intervals, two-proportion tests, sample sizes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

Z95 = NormalDist().inv_cdf(0.975)


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
    """Return the Wilson score interval of ``successes / trials`` (``(0, 1)`` for no trials)."""
    if trials <= 0:
        return (0.0, 1.0)
    successes = min(max(successes, 0), trials)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def rate_with_interval(successes: int, trials: int) -> Rate:
    """Return the rate and its interval; the rate is None when there are no trials."""
    if trials <= 0:
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


def two_proportion_test(x_a: int, n_a: int, x_b: int, n_b: int) -> ProportionTest:
    """Compare two rates with a pooled z-test; the interval is the unpooled Wald interval."""
    if n_a <= 0 or n_b <= 0:
        return ProportionTest(None, None, None, None)
    p_a, p_b = x_a / n_a, x_b / n_b
    diff = p_b - p_a
    se = math.sqrt(p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b)
    low, high = diff - Z95 * se, diff + Z95 * se
    pooled = (x_a + x_b) / (n_a + n_b)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se_pooled == 0:
        p_value = 1.0
    else:
        z = diff / se_pooled
        p_value = 2 * (1 - NormalDist().cdf(abs(z)))
    return ProportionTest(diff, low, high, p_value)


def impressions_needed(p_a: float, p_b: float, alpha: float = 0.05, power: float = 0.8) -> int | None:
    """Return impressions per arm needed to detect ``p_a`` vs ``p_b`` (None if they are equal)."""
    if p_a == p_b:
        return None
    z_a = NormalDist().inv_cdf(1 - alpha / 2)
    z_b = NormalDist().inv_cdf(power)
    var = p_a * (1 - p_a) + p_b * (1 - p_b)
    return math.ceil((z_a + z_b) ** 2 * var / (p_a - p_b) ** 2)


def verdict(name_a: str, name_b: str, x_a: int, n_a: int, x_b: int, n_b: int, alpha: float = 0.05) -> str:
    """Return a plain-language verdict on whether B's dislike rate differs from A's."""
    if n_a == 0 or n_b == 0:
        missing = name_a if n_a == 0 else name_b
        return f"no verdict yet: {missing} has no impressions"
    test = two_proportion_test(x_a, n_a, x_b, n_b)
    points = abs(test.difference) * 100
    if test.p_value is not None and test.p_value < alpha:
        direction = "lower" if test.difference < 0 else "higher"
        return f"{name_b}'s dislike rate is {points:.1f} points {direction}, {_p(test.p_value)}"
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
