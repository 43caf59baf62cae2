"""Pure rules: dislike weights, proposals per reason, effective weights, retrain decisions."""

from __future__ import annotations

import copy
import math
from datetime import datetime, timedelta

import pytest

from feedback_core import ValidationError
from feedback_core.policy import (
    ProposedAdjustment,
    adjustments_as_dict,
    apply_feature_adjustments,
    clamp_weight,
    decay_factor,
    dislike_weight,
    effective_weight,
    propose_adjustments,
    should_retrain,
)
from feedback_core.reinforcement import calculate_feature_adjustment_from_dislike
from feedback_core.settings import ReasonPolicy, Settings

NOW = datetime(2026, 11, 1, 12, 0, 0)
GENRES = ["Action", "Sci-Fi"]
CAST = ["Ann", "Bob", "Cy", "Di", "Ed", "Flo"]  # six: only the top five are proposed
TOP5 = CAST[:5]

# The default policy (the README's configuration table), written out by hand rather than derived from the code.
EXPECTED = {
    "wrong_genre": [("genre", g, -0.15) for g in GENRES],
    "poor_quality": [("cast", c, -0.10) for c in TOP5] + [("franchise", "Saga", -0.12)],
    "already_watched": [],
    "not_interested": [("genre", g, -0.075) for g in GENRES] + [("franchise", "Saga", -0.06)],
    "irrelevant": [("genre", g, -0.05) for g in GENRES],
    "other": [],
}


def as_tuples(proposals):
    return sorted((p.feature_type, p.feature_value, round(p.magnitude, 9)) for p in proposals)


def expected_tuples(reason):
    return sorted((t, v, round(m, 9)) for t, v, m in EXPECTED[reason])


# ---------------------------------------------------------------- decay and dislike weight


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (0, 1.0),
        (18, 0.9),
        (45, 0.75),
        (90, 0.5),  # 1 - 90/180 reaches the floor exactly
        (120, 0.5),
        (180, 0.5),
        (365, 0.5),
        (-3, 1.0),  # a timestamp slightly in the future never counts more than fully
    ],
)
def test_decay_factor(days, expected):
    assert decay_factor(days) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("count", "days_ago", "expected"),
    [
        (0, 0, 0.0),  # zero dislikes
        (1, 0, 1 / 3),
        (2, 0, 2 / 3),
        (3, 0, 1.0),  # exactly at the count cap
        (7, 0, 1.0),  # beyond the cap
        (3, 45, 0.75),
        (3, 90, 0.5),
        (1, 180, 1 / 6),
        (3, 365, 0.5),
    ],
)
def test_dislike_weight(count, days_ago, expected):
    latest = NOW - timedelta(days=days_ago) if count else None
    assert dislike_weight(count, latest, NOW) == pytest.approx(expected)


def test_dislike_weight_is_zero_without_a_latest_time():
    assert dislike_weight(2, None, NOW) == 0.0


# ---------------------------------------------------------------- proposals per reason


@pytest.mark.parametrize("reason", list(EXPECTED))
def test_default_policy_proposes_product_magnitudes(reason):
    rule = Settings(database_url="sqlite://").reason_policy[reason]
    proposals = propose_adjustments(rule, GENRES, CAST, "Saga")
    assert as_tuples(proposals) == expected_tuples(reason)
    assert rule.exclude_movie is (reason == "already_watched")


def test_proposed_magnitudes_carry_no_float_noise():
    # A third of 0.15 in floating point is -0.049999999999999996: shown so in the inbox, its CSV,
    # the API and the log before.
    rule = Settings(database_url="sqlite://").reason_policy["irrelevant"]
    assert rule.genre != -0.05
    assert [repr(p.magnitude) for p in propose_adjustments(rule, ["Drama"])] == ["-0.05"]


@pytest.mark.parametrize("reason", list(EXPECTED))
def test_calculate_feature_adjustment_from_dislike_shape(reason):
    settings = Settings(database_url="sqlite://")
    out = calculate_feature_adjustment_from_dislike(reason, GENRES, CAST, "Saga", settings=settings)
    assert out["reason"] == reason
    assert out["exclude_movie"] is (reason == "already_watched")
    flat = sorted(
        (kind, value, round(magnitude, 9))
        for kind in ("genre", "cast", "franchise")
        for value, magnitude in out[f"{kind}_adjustments"].items()
    )
    assert flat == expected_tuples(reason)


def test_unknown_reason_is_rejected_by_name():
    with pytest.raises(ValidationError) as err:
        calculate_feature_adjustment_from_dislike(
            "boring", GENRES, settings=Settings(database_url="sqlite://")
        )
    assert err.value.field == "reason"
    assert "'boring'" in err.value.message and "wrong_genre" in err.value.message


def test_single_string_genre_is_one_genre():
    out = calculate_feature_adjustment_from_dislike(
        "wrong_genre", "Sci-Fi", settings=Settings(database_url="sqlite://")
    )
    assert out["genre_adjustments"] == {"Sci-Fi": pytest.approx(-0.15)}


def test_proposals_skip_duplicates_and_missing_franchise():
    rule = ReasonPolicy(genre=-0.1, franchise=-0.2)
    proposals = propose_adjustments(rule, ["Drama", "Drama", "War"], [], None)
    assert as_tuples(proposals) == [("genre", "Drama", -0.1), ("genre", "War", -0.1)]


def test_no_genres_means_no_genre_proposals():
    assert propose_adjustments(ReasonPolicy(genre=-0.15), [], [], None) == []


def test_cast_limit_is_configurable():
    proposals = propose_adjustments(ReasonPolicy(cast=-0.1, cast_limit=2), [], CAST, None)
    assert [p.feature_value for p in proposals] == ["Ann", "Bob"]


def test_adjustments_as_dict_has_every_kind():
    shaped = adjustments_as_dict("wrong_genre", [ProposedAdjustment("genre", "Horror", -0.15)])
    assert shaped == {
        "genre_adjustments": {"Horror": -0.15},
        "cast_adjustments": {},
        "franchise_adjustments": {},
        "reason": "wrong_genre",
    }


# ---------------------------------------------------------------- effective weights


@pytest.mark.parametrize(
    ("adjustment_sum", "expected"),
    [
        (0.0, 1.0),
        (-0.15, 0.85),
        (-0.9, 0.1),  # exactly at the floor
        (-0.95, 0.1),
        (-5.0, 0.1),
        (1.0, 2.0),  # exactly at the ceiling
        (3.0, 2.0),
        (0.4, 1.4),
    ],
)
def test_effective_weight_is_clamped(adjustment_sum, expected):
    assert effective_weight(adjustment_sum) == pytest.approx(expected)


def test_clamp_weight_respects_custom_bounds():
    assert clamp_weight(0.05, 0.2, 1.5) == 0.2
    assert clamp_weight(1.7, 0.2, 1.5) == 1.5
    assert clamp_weight(0.7, 0.2, 1.5) == 0.7


def test_apply_feature_adjustments_never_mutates_its_input():
    current = {"genre": {"Action": 0.5, "Drama": 1.2}, "cast": {"Ann": 1.0}}
    adjustments = {
        "genre_adjustments": {"Action": -0.15, "Horror": -0.15},
        "cast_adjustments": {"Ann": -0.1},
        "franchise_adjustments": {"Saga": -0.12},
        "reason": "wrong_genre",
        "exclude_movie": False,
    }
    current_before, adjustments_before = copy.deepcopy(current), copy.deepcopy(adjustments)
    out = apply_feature_adjustments(current, adjustments)
    assert current == current_before
    assert adjustments == adjustments_before
    assert out is not current and out["genre"] is not current["genre"]
    assert out == {
        "genre": {"Action": pytest.approx(0.35), "Drama": 1.2, "Horror": pytest.approx(0.85)},
        "cast": {"Ann": pytest.approx(0.9)},
        "franchise": {"Saga": pytest.approx(0.88)},
    }


@pytest.mark.parametrize(
    ("start", "delta", "expected"),
    [
        (0.2, -0.15, 0.1),  # would be 0.05: floor
        (0.1, -0.15, 0.1),  # already at the floor
        (1.95, 0.15, 2.0),  # would be 2.1: ceiling
        (1.0, 0.0, 1.0),
    ],
)
def test_apply_feature_adjustments_clamps(start, delta, expected):
    out = apply_feature_adjustments({"genre": {"X": start}}, {"genre_adjustments": {"X": delta}})
    assert out["genre"]["X"] == pytest.approx(expected)


def test_apply_feature_adjustments_accepts_no_current_weights():
    out = apply_feature_adjustments(None, {"genre_adjustments": {"Horror": -0.15}})
    assert out == {"genre": {"Horror": pytest.approx(0.85)}}


@pytest.mark.parametrize("bad", [math.nan, math.inf, "-0.1", None, True])
def test_apply_feature_adjustments_rejects_non_numbers(bad):
    with pytest.raises(ValidationError) as err:
        apply_feature_adjustments({}, {"genre_adjustments": {"Horror": bad}})
    assert err.value.field == "genre_adjustments"


# ---------------------------------------------------------------- retrain decision


@pytest.mark.parametrize(
    ("untrained", "threshold", "job_active", "expected"),
    [
        (0, 20, False, False),  # zero dislikes
        (19, 20, False, False),  # one below
        (20, 20, False, True),  # exactly at the threshold
        (21, 20, False, True),
        (20, 20, True, False),  # one is already under way
        (500, 20, True, False),
        (1, 1, False, True),
        (0, 1, False, False),
    ],
)
def test_should_retrain(untrained, threshold, job_active, expected):
    assert should_retrain(untrained, threshold, job_active) is expected


def test_dislike_weight_counts_whole_days():
    from datetime import datetime

    from feedback_core.policy import dislike_weight

    # A dislike from today does not decay, whatever the hour; yesterday's is a day old.
    assert dislike_weight(1, datetime(2026, 1, 10, 0, 1), datetime(2026, 1, 10, 23, 59)) == 1 / 3
    assert dislike_weight(1, datetime(2026, 1, 9, 23, 59), datetime(2026, 1, 10, 0, 1)) == 1 / 3 * (
        1 - 1 / 180
    )
    assert dislike_weight(3, datetime(2025, 1, 1), datetime(2026, 1, 10)) == 0.5
