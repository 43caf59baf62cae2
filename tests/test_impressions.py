"""Shown lists: the impressions every dislike rate divides by."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import row_counts
from helpers import add_model_version, add_movies, rows

from feedback_core import NotFoundError, ValidationError
from feedback_core.schema import daily_impressions, impressions, recommendation_sets


def test_record_recommendation_set_stores_every_impression(system, clock):
    add_movies(system, [10, 11, 12])
    add_model_version(system, 2)
    set_id = system.record_recommendation_set(
        7,
        [
            {"movie_id": 12, "rank": 1, "predicted_score": 0.9},
            {"movie_id": 10, "rank": 2, "predicted_score": 0.4},
        ],
        model_version_id=2,
    )
    (head,) = rows(system, recommendation_sets)
    assert (head.recommendation_set_id, head.user_id, head.model_version_id) == (set_id, 7, 2)
    shown = rows(system, impressions, order_by=impressions.c.rank)
    assert [(i.movie_id, i.rank, i.predicted_score, i.user_id, i.model_version_id) for i in shown] == [
        (12, 1, 0.9, 7, 2),
        (10, 2, 0.4, 7, 2),
    ]
    assert all(i.shown_at == clock() for i in shown)
    (day,) = rows(system, daily_impressions)
    assert (day.day, day.model_version_id, day.impressions) == (clock().date(), 2, 2)
    assert (day.score_sum, day.scored) == (pytest.approx(1.3), 2)


def test_the_daily_count_sums_the_scores_of_the_items_shown_with_one(system, clock):
    add_movies(system, [10, 11, 12])
    system.record_recommendation_set(1, [11, {"movie_id": 10, "predicted_score": 0.25}, 12])
    system.record_recommendation_set(2, [{"movie_id": 10, "predicted_score": 0.5}])
    (day,) = rows(system, daily_impressions)
    # Three of four items with a score would average 0.1875 if the bare ids counted as 0.
    assert (day.impressions, day.score_sum, day.scored) == (4, pytest.approx(0.75), 2)


def test_plain_ids_are_ranked_in_order_and_impressions_add_up_per_day(system, clock):
    add_movies(system, [10, 11, 12])
    system.record_recommendation_set(1, [11, 10, 12])
    system.record_recommendation_set(2, [10])
    clock.advance(days=1)
    system.record_recommendation_set(1, [12, 11])
    per_day = {(d.day, d.model_version_id): d.impressions for d in rows(system, daily_impressions)}
    today = clock().date()
    assert per_day == {(today - timedelta(days=1), 0): 4, (today, 0): 2}
    first = rows(system, impressions, impressions.c.recommendation_set_id == 1, order_by=impressions.c.rank)
    assert [(i.movie_id, i.rank, i.predicted_score) for i in first] == [
        (11, 1, 0.0),
        (10, 2, 0.0),
        (12, 3, 0.0),
    ]


def test_get_recommendation_set_returns_items_in_rank_order(system, clock):
    add_movies(system, [10, 11])
    set_id = system.record_recommendation_set(
        3,
        [
            {"movie_id": 10, "rank": 2, "predicted_score": 0.5},
            {"movie_id": 11, "rank": 1, "predicted_score": 0.7},
        ],
    )
    assert system.get_recommendation_set(set_id) == {
        "recommendation_set_id": set_id,
        "user_id": 3,
        "model_version_id": None,
        "created_at": "2026-11-01 12:00:00",
        "items": [
            {"movie_id": 11, "rank": 1, "predicted_score": 0.7, "title": "Movie 11"},
            {"movie_id": 10, "rank": 2, "predicted_score": 0.5, "title": "Movie 10"},
        ],
    }
    with pytest.raises(NotFoundError) as err:
        system.get_recommendation_set(set_id + 1)
    assert err.value.field == "recommendation_set_id"


def test_bad_sets_name_the_field_and_change_nothing(system):
    add_movies(system, [10, 11])
    before = row_counts(system)
    cases = [
        ((0, [10]), {}, "user_id"),
        ((1, []), {}, "items"),
        ((1, [10, 10]), {}, "items[1].movie_id"),
        ((1, [{"movie_id": 10, "predicted_score": 1.5}]), {}, "items[0].predicted_score"),
        ((1, [{"movie_id": 10, "rank": -1}]), {}, "items[0].rank"),
        ((1, [10, 999]), {}, "items"),  # not in the catalogue
        ((1, [10]), {"model_version_id": 42}, "model_version_id"),  # no such version
        ((1, [10]), {"model_version_id": "v2"}, "model_version_id"),
    ]
    for args, kwargs, field in cases:
        with pytest.raises(ValidationError) as err:
            system.record_recommendation_set(*args, **kwargs)
        assert err.value.field == field, (args, kwargs)
        assert row_counts(system) == before, (args, kwargs)
    assert "999" in _message(system, (1, [10, 999]))


def _message(system, args) -> str:
    with pytest.raises(ValidationError) as err:
        system.record_recommendation_set(*args)
    return err.value.message
