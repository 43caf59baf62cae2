"""Reads: dislike history, dislike weights, patterns, system metrics, improvement over versions."""

from __future__ import annotations

import pytest
from helpers import add_model_version, add_movies
from loop_support import trained_world

from feedback_core import ValidationError
from feedback_core.schema import metadata
from feedback_core.stats import wilson_interval

DISLIKE_KEYS = {
    "dislike_id",
    "movie_id",
    "movie_title",
    "recommendation_set_id",
    "predicted_score",
    "reason",
    "feedback_text",
    "genres",
    "cast",
    "franchise",
    "created_at",
}


# ---------------------------------------------------------------- history


def test_get_user_dislikes_newest_first_with_ties_broken_by_id(system, clock):
    same_moment = [system.save_dislike(1, m, f"M{m}", predicted_score=0.5) for m in (10, 11, 12)]
    system.save_dislike(2, 10, "M10")  # someone else's
    clock.advance(hours=1)
    newest = system.save_dislike(1, 13, "M13", reason="other", feedback_text="meh", genres=["War"])
    history = system.get_user_dislikes(1)
    assert [d["dislike_id"] for d in history] == [newest, *reversed(same_moment)]
    assert set(history[0]) == DISLIKE_KEYS
    assert history[0]["created_at"] == "2026-11-01 13:00:00"
    assert (history[0]["reason"], history[0]["feedback_text"], history[0]["genres"]) == (
        "other",
        "meh",
        ["War"],
    )
    # the same question gives the same answer
    assert system.get_user_dislikes(1) == history


def test_get_user_dislikes_limit(system, clock):
    ids = []
    for m in range(10, 14):
        ids.append(system.save_dislike(1, m, f"M{m}"))
        clock.advance(minutes=1)
    assert [d["dislike_id"] for d in system.get_user_dislikes(1, limit=1)] == [ids[-1]]
    assert [d["dislike_id"] for d in system.get_user_dislikes(1, limit=1000)] == ids[::-1]
    for bad in (0, 1001, -1, "many"):
        with pytest.raises(ValidationError) as err:
            system.get_user_dislikes(1, limit=bad)
        assert err.value.field == "limit"
    with pytest.raises(ValidationError) as err:
        system.get_user_dislikes(0)
    assert err.value.field == "user_id"


def test_get_user_disliked_movies_most_recent_first_without_repeats(system, clock):
    system.save_dislike(1, 10, "A")
    clock.advance(hours=1)
    system.save_dislike(1, 11, "B")
    clock.advance(hours=1)
    again = system.save_dislike(1, 10, "A")  # again, later
    assert system.get_user_disliked_movies(1) == [10, 11]
    assert system.get_user_disliked_movies(2) == []
    # retracted dislikes leave both reads
    system.retract_dislike(again, 1)
    assert system.get_user_disliked_movies(1) == [11, 10]
    assert again not in [d["dislike_id"] for d in system.get_user_dislikes(1)]
    assert len(system.get_user_dislikes(1)) == 2


# ---------------------------------------------------------------- dislike weight


def test_calculate_dislike_weight_follows_count_and_decay(system, clock):
    assert system.calculate_dislike_weight(1, 10) == 0.0  # no dislike
    system.save_dislike(1, 10, "A")
    assert system.calculate_dislike_weight(1, 10) == pytest.approx(1 / 3)
    clock.advance(days=45)
    assert system.calculate_dislike_weight(1, 10) == pytest.approx(1 / 3 * 0.75)
    second = system.save_dislike(1, 10, "A")
    clock.advance(days=1)
    system.save_dislike(1, 10, "A")
    clock.advance(days=89)
    # three dislikes, the latest 89 days old: min(3/3, 1) * (1 - 89/180)
    assert system.calculate_dislike_weight(1, 10) == pytest.approx(1 - 89 / 180)
    clock.advance(days=1)
    assert system.calculate_dislike_weight(1, 10) == pytest.approx(0.5)  # 90 days: the floor
    clock.advance(days=275)
    assert system.calculate_dislike_weight(1, 10) == pytest.approx(0.5)  # 365 days
    system.retract_dislike(second, 1)
    assert system.calculate_dislike_weight(1, 10) == pytest.approx(2 / 3 * 0.5)
    assert system.calculate_dislike_weight(2, 10) == 0.0  # another user
    assert system.calculate_dislike_weight(1, 11) == 0.0  # another movie


# ---------------------------------------------------------------- patterns


def test_get_dislike_pattern_analysis(system, clock):
    system.save_dislike(1, 1, "Old", reason="wrong_genre", genres=["Horror"], predicted_score=0.9)
    clock.advance(days=40)  # the first one is now outside the 30-day trend
    system.save_dislike(1, 2, "B", reason="wrong_genre", genres=["Horror", "Drama"], predicted_score=0.5)
    system.save_dislike(1, 3, "C", reason="wrong_genre", genres=["Horror"], cast=["Ann"], predicted_score=0.7)
    system.save_dislike(
        1,
        4,
        "D",
        reason="poor_quality",
        genres=["Comedy"],
        cast=["Ann", "Bob"],
        franchise="Saga",
        predicted_score=0.3,
    )
    system.save_dislike(2, 4, "D", reason="other", genres=["Comedy"])  # someone else's
    analysis = system.get_dislike_pattern_analysis(1)
    assert analysis == {
        "reason_distribution": {"wrong_genre": 3, "poor_quality": 1},
        "recent_trend": {"days": 30, "total_dislikes": 3, "avg_predicted_score": 0.5, "scored_dislikes": 3},
        "total_dislikes": 4,
        # Each dislike counts against what its reason blames: wrong_genre the genres (not Ann),
        # poor_quality the cast and franchise (not Comedy).
        "top_genres": [{"name": "Horror", "count": 3}, {"name": "Drama", "count": 1}],
        "top_cast": [{"name": "Ann", "count": 1}, {"name": "Bob", "count": 1}],
        "top_franchises": [{"name": "Saga", "count": 1}],
    }
    assert list(analysis["reason_distribution"]) == ["wrong_genre", "poor_quality"]  # most common first


def test_pattern_analysis_keeps_the_top_five(system):
    genres = ["A", "B", "C", "D", "E", "F", "G"]
    system.save_dislike(1, 1, "X", genres=genres)
    system.save_dislike(1, 2, "Y", genres=["G"])
    top = system.get_dislike_pattern_analysis(1)["top_genres"]
    assert top == [{"name": "G", "count": 2}] + [{"name": n, "count": 1} for n in "ABCD"]


def test_pattern_analysis_recent_trend_leaves_out_retracted_and_other_users_dislikes(system, clock):
    """Patterns and the 30-day trend come from one statement; each keeps its own conditions."""
    kept = system.save_dislike(1, 1, "A", reason="wrong_genre", genres=["Horror"], predicted_score=0.8)
    gone = system.save_dislike(1, 2, "B", reason="wrong_genre", genres=["Horror"], predicted_score=0.2)
    system.save_dislike(2, 3, "C", reason="other", genres=["Horror"], predicted_score=0.1)
    system.retract_dislike(gone, 1)
    clock.advance(days=29)  # both still inside the trend's 30 days
    analysis = system.get_dislike_pattern_analysis(1)
    assert analysis["recent_trend"] == {
        "days": 30,
        "total_dislikes": 1,
        "avg_predicted_score": 0.8,
        "scored_dislikes": 1,
    }
    assert analysis["total_dislikes"] == 1 and analysis["top_genres"] == [{"name": "Horror", "count": 1}]
    assert kept != gone
    clock.advance(days=2)
    assert system.get_dislike_pattern_analysis(1)["recent_trend"]["total_dislikes"] == 0


# ---------------------------------------------------------------- system metrics


def test_model_feedback_metrics(system):
    add_movies(system, [1, 2, 3, 4])
    add_model_version(system, 3, active=True, accuracy=0.82)
    shown = system.record_recommendation_set(1, [1, 2, 3, 4], model_version_id=3)
    system.save_dislike(1, 1, recommendation_set_id=shown, predicted_score=0.2)
    system.save_dislike(1, 2, predicted_score=0.5)  # not from a recorded list
    system.save_dislike(2, 3, predicted_score=0.95)
    out = system.get_model_feedback_metrics()
    m = out["metrics"]
    # the specification's keys
    assert m["total_negative_examples"] == 3
    assert m["avg_prediction_error"] == pytest.approx(0.55)
    assert (m["max_error"], m["min_error"]) == (0.95, 0.2)
    # and the rest
    assert (m["total_dislikes"], m["untrained_negative_examples"], m["retrain_threshold"]) == (3, 3, 20)
    assert m["total_impressions"] == 4
    low, high = wilson_interval(1, 4)
    # Four impressions are too few for a rate the dashboard would show: the answer says so.
    minimum = system.settings.min_impressions_for_rate
    assert minimum > 4
    assert m["dislike_rate"] == {
        "events": 1,
        "trials": 4,
        "rate": 0.25,
        "ci_low": low,
        "ci_high": high,
        "enough": False,
        "min_impressions": minimum,
    }
    assert out["active_model_version"] == {
        "version_id": 3,
        "created_at": "2026-11-01 12:00:00",
        "accuracy": 0.82,
        "accuracy_baseline": None,  # recorded without one
        "auc": None,
    }


def test_the_active_versions_accuracy_comes_with_what_no_model_would_score(system):
    version_id = trained_world(system)
    active = system.get_model_feedback_metrics()["active_model_version"]
    metrics = system.get_model_version(version_id)["metrics"]
    assert active["accuracy"] == metrics["accuracy"]
    assert active["accuracy_baseline"] == metrics["accuracy_baseline"]
    assert 0.5 <= active["accuracy_baseline"] <= 1.0
    # And its held-out AUC, which accuracy alone hid (0.5 is chance).
    assert active["auc"] == metrics["auc"] and 0.0 <= active["auc"] <= 1.0


def test_error_extremes_leave_out_retracted_dislikes_even_after_training(system):
    add_movies(system, [1, 2, 3])
    high = system.save_dislike(1, 1, predicted_score=0.95)
    system.save_dislike(1, 2, predicted_score=0.2)
    system.save_dislike(2, 3, predicted_score=0.6)
    batch = system.get_negative_training_batch(limit=10)
    system.mark_negative_examples_as_used([e["example_id"] for e in batch])
    system.retract_dislike(high, 1)  # its used example stays, as training data
    m = system.get_model_feedback_metrics()["metrics"]
    assert m["total_dislikes"] == 2
    assert (m["max_error"], m["min_error"]) == (0.6, 0.2)


def test_feedback_improvement_metrics_per_version_and_week(system, clock):
    add_movies(system, range(1, 11))
    add_model_version(system, 1)
    add_model_version(system, 2)
    first = system.record_recommendation_set(1, [1, 2, 3, 4, 5], model_version_id=1)
    system.record_recommendation_set(2, [6, 7, 8, 9, 10], model_version_id=1)
    for movie, score in [(1, 0.9), (2, 0.8), (3, 0.7), (4, 0.6)]:
        system.save_dislike(1, movie, recommendation_set_id=first, predicted_score=score)
    system.save_dislike(3, 1, predicted_score=0.1)  # unattributed: not part of any rate
    clock.advance(days=7)
    second = system.record_recommendation_set(1, list(range(1, 11)), model_version_id=2)
    system.save_dislike(1, 5, recommendation_set_id=second, predicted_score=0.4)

    out = system.get_feedback_improvement_metrics()
    low1, high1 = wilson_interval(4, 10)
    low2, high2 = wilson_interval(1, 10)
    assert out["per_version"] == [
        {
            "model_version_id": 1,
            "dislikes": 4,
            "impressions": 10,
            "dislike_rate": 0.4,
            "ci_low": low1,
            "ci_high": high1,
            "mean_prediction_error": 0.75,
            "change_vs_first": 0.0,
            "change_vs_previous": None,
        },
        {
            "model_version_id": 2,
            "dislikes": 1,
            "impressions": 10,
            "dislike_rate": 0.1,
            "ci_low": low2,
            "ci_high": high2,
            "mean_prediction_error": 0.4,
            "change_vs_first": -0.75,
            "change_vs_previous": -0.75,
        },
    ]
    weeks = out["per_week"]
    assert [(w["week_start"], w["dislikes"], w["impressions"]) for w in weeks] == [
        ("2026-10-26", 4, 10),
        ("2026-11-02", 1, 10),
    ]
    assert weeks[1]["change_vs_previous"] == -0.75


def test_reads_of_an_empty_system(system):
    assert system.get_user_dislikes(5) == []
    assert system.get_user_disliked_movies(5) == []
    assert system.calculate_dislike_weight(5, 6) == 0.0
    assert system.get_dislike_pattern_analysis(5) == {
        "reason_distribution": {},
        "recent_trend": {"days": 30, "total_dislikes": 0, "avg_predicted_score": None, "scored_dislikes": 0},
        "total_dislikes": 0,
        "top_genres": [],
        "top_cast": [],
        "top_franchises": [],
    }
    out = system.get_model_feedback_metrics()
    assert set(out) == {"metrics", "active_model_version"}
    m = out["metrics"]
    assert (m["total_negative_examples"], m["avg_prediction_error"], m["max_error"], m["min_error"]) == (
        0,
        None,
        None,
        None,
    )
    assert m["dislike_rate"] is None and out["active_model_version"] is None
    assert system.get_feedback_improvement_metrics() == {"per_version": [], "per_week": []}
    counts = system.count_rows()
    assert set(counts) == set(metadata.tables) and not any(counts.values())
