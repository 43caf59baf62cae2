"""Recording dislikes: one transaction each, validated, idempotent, undoable, safe under concurrency."""

from __future__ import annotations

import logging
import math
import random
import threading
from collections import Counter

import pytest
from conftest import row_counts
from helpers import add_model_version, add_movie, add_movies, count, rows
from reliability_support import BLAMED
from sqlalchemy import func, select, text

from feedback_core import ConflictError, NotFoundError, ValidationError
from feedback_core.schema import (
    audit_log,
    daily_dislikes,
    daily_reason_genre,
    daily_score_histogram,
    dislike_patterns,
    feature_adjustments,
    impressions,
    movie_dislike_stats,
    movie_exclusions,
    movies,
    negative_examples,
    retrain_jobs,
    user_dislikes,
)
from feedback_core.settings import ReasonPolicy

GENRES = ["Action", "Sci-Fi"]
CAST = ["Ann", "Bob", "Cy", "Di", "Ed", "Flo"]

# The default magnitudes (README, "Configuration"), by hand.
EXPECTED_PROPOSALS = {
    "wrong_genre": {("genre", "Action", -0.15), ("genre", "Sci-Fi", -0.15)},
    "poor_quality": {("cast", c, -0.10) for c in CAST[:5]} | {("franchise", "Saga", -0.12)},
    "already_watched": set(),
    "not_interested": {
        ("genre", "Action", -0.075),
        ("genre", "Sci-Fi", -0.075),
        ("franchise", "Saga", -0.06),
    },
    "irrelevant": {("genre", "Action", -0.05), ("genre", "Sci-Fi", -0.05)},
    "other": set(),
}


def proposals_of(system, dislike_id) -> set:
    found = rows(system, feature_adjustments, feature_adjustments.c.dislike_id == dislike_id)
    assert all(r.status == "proposed" and r.magnitude == r.proposed_magnitude for r in found)
    return {(r.feature_type, r.feature_value, r.proposed_magnitude) for r in found}


def patterns_of(system, user_id) -> dict:
    found = rows(system, dislike_patterns, dislike_patterns.c.user_id == user_id)
    return {(r.pattern_type, r.pattern_value): r.dislike_count for r in found}


def recount_matches_aggregates(system) -> None:
    """Assert every maintained aggregate equals a recount from the raw dislike rows."""
    with system.engine.connect() as conn:
        live = conn.execute(select(user_dislikes).where(user_dislikes.c.retracted_at.is_(None))).all()
        daily = conn.execute(
            select(
                daily_dislikes.c.reason,
                func.sum(daily_dislikes.c.dislikes),
                func.sum(daily_dislikes.c.score_sum),
            ).group_by(daily_dislikes.c.reason)
        ).all()
        by_genre = conn.execute(
            select(daily_reason_genre.c.genre, func.sum(daily_reason_genre.c.dislikes)).group_by(
                daily_reason_genre.c.genre
            )
        ).all()
        histogram = conn.execute(
            select(daily_score_histogram.c.bucket, func.sum(daily_score_histogram.c.dislikes)).group_by(
                daily_score_histogram.c.bucket
            )
        ).all()
        per_movie = conn.execute(select(movie_dislike_stats.c.movie_id, movie_dislike_stats.c.dislikes)).all()
        totals = conn.execute(
            select(dislike_patterns.c.user_id, dislike_patterns.c.dislike_count).where(
                dislike_patterns.c.pattern_type == "total"
            )
        ).all()
    reasons = Counter(r.reason for r in live)
    assert {reason: int(n) for reason, n, _ in daily if n} == dict(reasons)
    for reason, _, score_sum in daily:
        expected = sum(r.predicted_score for r in live if r.reason == reason)
        assert float(score_sum) == pytest.approx(expected, abs=1e-9)
    genres = Counter(g for r in live for g in set(r.genres))
    assert {g: int(n) for g, n in by_genre if n} == dict(genres)
    buckets = Counter(min(int(r.predicted_score * 10), 9) for r in live)
    assert {b: int(n) for b, n in histogram if n} == dict(buckets)
    assert {m: int(n) for m, n in per_movie if n} == dict(Counter(r.movie_id for r in live))
    assert {u: n for u, n in totals if n} == dict(Counter(r.user_id for r in live))


# ---------------------------------------------------------------- one dislike, everything it touches


@pytest.mark.parametrize("reason", list(EXPECTED_PROPOSALS))
def test_save_dislike_stores_dislike_example_proposals_and_aggregates(system, clock, reason):
    before = row_counts(system)
    outcome = system.record_dislike(
        user_id=123,
        movie_id=456,
        movie_title="Movie Title",
        predicted_score=0.75,
        reason=reason,
        feedback_text="Not my type of movie",
        genres=GENRES,
        cast=CAST,
        franchise="Saga",
    )
    dislike_id = outcome["dislike_id"]
    assert outcome["duplicate"] is False
    assert outcome["training_impact"] == {"error_recorded": 0.75, "weight": 0.8}

    (dislike,) = rows(system, user_dislikes)
    assert (dislike.dislike_id, dislike.user_id, dislike.movie_id) == (dislike_id, 123, 456)
    assert (dislike.movie_title, dislike.predicted_score, dislike.reason) == ("Movie Title", 0.75, reason)
    assert dislike.feedback_text == "Not my type of movie"
    assert (dislike.genres, dislike.cast, dislike.franchise) == (GENRES, CAST, "Saga")
    assert dislike.created_at == clock() and dislike.retracted_at is None

    (example,) = rows(system, negative_examples)
    assert (example.dislike_id, example.user_id, example.movie_id) == (dislike_id, 123, 456)
    assert example.weight == 0.8  # DISLIKE_WEIGHT_MULTIPLIER
    assert example.error == 0.75  # the predicted score: the user's real preference is 0
    assert example.status == "pending"

    assert proposals_of(system, dislike_id) == EXPECTED_PROPOSALS[reason]
    exclusions = rows(system, movie_exclusions)
    if reason == "already_watched":
        assert [(e.user_id, e.movie_id, e.dislike_id) for e in exclusions] == [(123, 456, dislike_id)]
    else:
        assert exclusions == []

    # The per-user patterns count the dislike against what its reason blames, and only that.
    patterns = patterns_of(system, 123)
    assert patterns[("total", "")] == 1 and patterns[("reason", reason)] == 1
    values = {"genre": GENRES, "cast": CAST[:5], "franchise": ["Saga"]}  # the cast billed first
    expected_features = {(kind, v): 1 for kind in BLAMED[reason] for v in values[kind]}
    assert {key: n for key, n in patterns.items() if key[0] in values} == expected_features
    (day,) = rows(system, daily_dislikes)
    assert (day.day, day.reason, day.attributed, day.dislikes) == (clock().date(), reason, 0, 1)
    assert day.score_sum == pytest.approx(0.75)
    (bucket,) = rows(system, daily_score_histogram)
    assert (bucket.bucket, bucket.dislikes) == (7, 1)
    (stats,) = rows(system, movie_dislike_stats)
    assert (stats.movie_id, stats.dislikes, stats.high_score_dislikes) == (456, 1, 1)

    after = row_counts(system)
    changed = {t for t in after if after[t] != before[t]}
    expected = {
        "user_dislikes",
        "negative_examples",
        "movies",  # the movie was not in the catalogue: the dislike adds it
        "dislike_patterns",
        "daily_dislikes",
        "daily_reason_genre",
        "daily_score_histogram",
        "movie_dislike_stats",
    }
    if EXPECTED_PROPOSALS[reason]:
        expected.add("feature_adjustments")
    if reason == "already_watched":
        expected.add("movie_exclusions")
    assert changed == expected


def test_weight_and_policy_come_from_settings(make_system):
    system = make_system(
        DISLIKE_WEIGHT_MULTIPLIER=0.5,
        reason_policy={
            "irrelevant": ReasonPolicy(genre=-0.3),
            "wrong_genre": ReasonPolicy(exclude_movie=True),
        },
    )
    first = system.save_dislike(1, 10, "A", reason="irrelevant", genres=["Drama"], predicted_score=0.4)
    second = system.save_dislike(1, 11, "B", reason="wrong_genre", genres=["Drama"])
    assert [e.weight for e in rows(system, negative_examples)] == [0.5, 0.5]
    assert proposals_of(system, first) == {("genre", "Drama", -0.3)}
    assert proposals_of(system, second) == set()
    assert [(e.movie_id, e.dislike_id) for e in rows(system, movie_exclusions)] == [(11, second)]


def test_metadata_comes_from_the_catalogue_when_not_given(system):
    add_movie(system, 7, "Alien", genres=["Horror", "Sci-Fi"], cast=["Sigourney Weaver"], franchise="Alien")
    dislike_id = system.save_dislike(user_id=1, movie_id=7, reason="not_interested", predicted_score=0.6)
    (dislike,) = rows(system, user_dislikes)
    assert (dislike.movie_title, dislike.genres, dislike.cast, dislike.franchise) == (
        "Alien",
        ["Horror", "Sci-Fi"],
        ["Sigourney Weaver"],
        "Alien",
    )
    assert proposals_of(system, dislike_id) == {
        ("genre", "Horror", -0.075),
        ("genre", "Sci-Fi", -0.075),
        ("franchise", "Alien", -0.06),
    }
    assert patterns_of(system, 1)[("genre", "Horror")] == 1
    # the catalogue's own features count (the model knows the film by them), not names sent
    # with the dislike; and the catalogue itself is not rewritten
    other = system.save_dislike(2, 7, reason="wrong_genre", genres=["Thriller"])
    assert proposals_of(system, other) == {("genre", "Horror", -0.15), ("genre", "Sci-Fi", -0.15)}
    # nor a kind the catalogue lacks for the film, nor a title (imports do the same)
    add_movie(system, 8, "Untagged")
    third = system.save_dislike(3, 8, "Another title", reason="wrong_genre", genres=["Thriller"])
    assert proposals_of(system, third) == set()
    assert rows(system, user_dislikes, user_dislikes.c.dislike_id == third)[0].movie_title == "Untagged"
    assert [m.genres for m in rows(system, movies, order_by=movies.c.movie_id)] == [["Horror", "Sci-Fi"], []]


def test_a_new_movie_joins_the_catalogue_and_needs_a_title(system):
    before = row_counts(system)
    with pytest.raises(ValidationError) as err:
        system.save_dislike(user_id=1, movie_id=404)
    assert err.value.field == "movie_title" and "404" in err.value.message
    assert row_counts(system) == before
    system.save_dislike(1, 99, " Heat ", genres="Crime", cast=["Al Pacino"], franchise="None Here")
    (movie,) = rows(system, movies)
    assert (movie.movie_id, movie.title, movie.genres, movie.cast, movie.franchise) == (
        99,
        "Heat",
        ["Crime"],
        ["Al Pacino"],
        "None Here",
    )


def test_a_single_string_genre_is_one_genre(system):
    dislike_id = system.save_dislike(1, 5, "Arrival", reason="wrong_genre", genres="Sci-Fi", cast="Amy Adams")
    (dislike,) = rows(system, user_dislikes)
    assert dislike.genres == ["Sci-Fi"] and dislike.cast == ["Amy Adams"]
    assert proposals_of(system, dislike_id) == {("genre", "Sci-Fi", -0.15)}
    assert ("genre", "S") not in patterns_of(system, 1)


# ---------------------------------------------------------------- duplicates


def test_same_idempotency_key_returns_the_first_id_and_writes_nothing(system, clock):
    first = system.save_dislike(1, 10, "A", reason="wrong_genre", genres=["Drama"], idempotency_key="k-1")
    before = row_counts(system)
    clock.advance(hours=2)  # a retry long after: the key, not the time, makes it the same
    again = system.record_dislike(user_id=1, movie_id=10, movie_title="A", idempotency_key="k-1")
    other_movie = system.save_dislike(1, 11, "B", idempotency_key="k-1")
    assert again["dislike_id"] == first and again["duplicate"] is True
    assert other_movie == first
    assert row_counts(system) == before
    # the key is per user
    assert system.save_dislike(2, 10, idempotency_key="k-1") != first


def test_double_click_returns_the_first_id_and_writes_nothing(system, clock):
    first = system.save_dislike(1, 10, "A", predicted_score=0.3)
    before = row_counts(system)
    clock.advance(seconds=2)
    assert system.save_dislike(1, 10, "A", predicted_score=0.3) == first
    assert row_counts(system) == before
    clock.advance(seconds=60)  # well past the window: a new, deliberate dislike
    assert system.save_dislike(1, 10, "A", predicted_score=0.3) != first
    assert count(system, user_dislikes) == 2


def test_a_dislike_recorded_with_an_earlier_time_is_not_a_repeat_of_a_later_one(system, clock):
    from datetime import datetime

    def dislike(at: datetime) -> dict:
        return system.record_dislike(user_id=1, movie_id=10, movie_title="A", created_at=at)

    later = dislike(datetime(2024, 3, 20, 12))
    earlier = dislike(datetime(2024, 3, 1, 12))  # a backfill
    assert earlier["duplicate"] is False and earlier["dislike_id"] != later["dislike_id"]
    assert count(system, user_dislikes) == 2
    # Within the double-click window either side, it is the same dislike.
    again = dislike(datetime(2024, 3, 1, 11, 59, 58))
    assert again["duplicate"] is True and again["dislike_id"] == earlier["dislike_id"]


def test_same_shown_item_is_disliked_once(system, clock):
    add_movies(system, [10, 11])
    shown = system.record_recommendation_set(1, [10, 11])
    first = system.save_dislike(1, 10, recommendation_set_id=shown)
    before = row_counts(system)
    clock.advance(days=1)
    assert system.save_dislike(1, 10, recommendation_set_id=shown, reason="other") == first
    assert row_counts(system) == before
    assert system.save_dislike(1, 11, recommendation_set_id=shown) != first


# ---------------------------------------------------------------- recommendation sets


def test_dislike_of_a_shown_item_is_attributed_to_its_version(system, clock):
    add_movies(system, [10, 11])
    add_model_version(system, 3, active=True)
    shown = system.record_recommendation_set(1, [10, 11], model_version_id=3)
    system.save_dislike(1, 11, recommendation_set_id=shown, predicted_score=0.9)
    (dislike,) = rows(system, user_dislikes)
    assert (dislike.recommendation_set_id, dislike.model_version_id) == (shown, 3)
    (day,) = rows(system, daily_dislikes)
    assert (day.model_version_id, day.attributed) == (3, 1)


def test_recommendation_set_must_exist_belong_to_the_user_and_contain_the_movie(system):
    add_movies(system, [10, 11, 12])
    mine = system.record_recommendation_set(1, [10, 11])
    theirs = system.record_recommendation_set(2, [12])
    before = row_counts(system)
    cases = [
        {"recommendation_set_id": 9999, "movie_id": 10},  # does not exist
        {"recommendation_set_id": theirs, "movie_id": 12},  # someone else's list
        {"recommendation_set_id": mine, "movie_id": 12},  # not in that list
    ]
    for case in cases:
        with pytest.raises(ValidationError) as err:
            system.save_dislike(user_id=1, movie_title="X", **case)
        assert err.value.field == "recommendation_set_id", case
        assert str(case["recommendation_set_id"]) in err.value.message
        assert row_counts(system) == before, case


# ---------------------------------------------------------------- bad input changes nothing

BAD_INPUT = [
    ({"user_id": 0}, "user_id"),
    ({"user_id": -5}, "user_id"),
    ({"user_id": True}, "user_id"),
    ({"user_id": "abc"}, "user_id"),
    ({"movie_id": 0}, "movie_id"),
    ({"movie_id": False}, "movie_id"),
    ({"movie_id": "ten"}, "movie_id"),
    ({"movie_id": 2.5}, "movie_id"),
    ({"recommendation_set_id": 0}, "recommendation_set_id"),
    ({"predicted_score": math.nan}, "predicted_score"),
    ({"predicted_score": math.inf}, "predicted_score"),
    ({"predicted_score": -0.1}, "predicted_score"),
    ({"predicted_score": 1.1}, "predicted_score"),
    ({"predicted_score": "high"}, "predicted_score"),
    ({"reason": "boring"}, "reason"),
    ({"reason": None}, "reason"),
    ({"movie_title": "t" * 301}, "movie_title"),
    ({"feedback_text": "t" * 2001}, "feedback_text"),
    ({"feedback_text": 42}, "feedback_text"),
    ({"genres": [1, 2]}, "genres[0]"),
    ({"genres": {"Drama"}}, "genres"),
    ({"genres": 7}, "genres"),
    ({"cast": ["ok", None]}, "cast[1]"),
    ({"franchise": ["A", "B"]}, "franchise"),
    ({"idempotency_key": ""}, "idempotency_key"),
]


def test_bad_input_names_the_field_and_changes_no_row(system):
    system.save_dislike(1, 10, "Existing", reason="wrong_genre", genres=["Drama"])
    before = row_counts(system)
    for overrides, field in BAD_INPUT:
        arguments = {"user_id": 1, "movie_id": 11, "movie_title": "New", **overrides}
        with pytest.raises(ValidationError) as err:
            system.save_dislike(**arguments)
        assert err.value.field == field, overrides
        assert field.split("[")[0] in err.value.message, overrides
        assert err.value.status == 400
    # none of them wrote anything (counted once: a row from any case would show here)
    assert row_counts(system) == before


def test_score_zero_and_one_are_accepted(system):
    system.save_dislike(1, 10, "A", predicted_score=0)
    system.save_dislike(1, 11, "B", predicted_score=1)
    assert [e.error for e in rows(system, negative_examples, order_by=negative_examples.c.example_id)] == [
        0,
        1,
    ]
    buckets = {r.bucket: r.dislikes for r in rows(system, daily_score_histogram)}
    assert buckets == {0: 1, 9: 1}


def test_a_failure_mid_transaction_leaves_nothing_behind(system, backend):
    """A real database error after the dislike, example and proposals are written rolls all back."""
    if backend == "sqlite":
        setup = [
            "CREATE TRIGGER refuse_stats BEFORE INSERT ON movie_dislike_stats "
            "BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END"
        ]
        teardown = ["DROP TRIGGER refuse_stats"]
    else:
        setup = [
            "CREATE FUNCTION refuse_stats() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused by test trigger'; END $$",
            "CREATE TRIGGER refuse_stats BEFORE INSERT ON movie_dislike_stats "
            "FOR EACH ROW EXECUTE FUNCTION refuse_stats()",
        ]
        teardown = ["DROP TRIGGER refuse_stats ON movie_dislike_stats", "DROP FUNCTION refuse_stats()"]
    before = row_counts(system)
    with system.engine.begin() as conn:
        for statement in setup:
            conn.execute(text(statement))
    try:
        with pytest.raises(Exception, match="refused by test trigger"):
            system.save_dislike(
                1, 10, "A", reason="already_watched", genres=["Drama"], cast=["Ann"], franchise="Saga"
            )
        with pytest.raises(Exception, match="refused by test trigger"):
            system.save_dislike(1, 11, "B", reason="poor_quality", cast=["Ann"], franchise="Saga")
        assert row_counts(system) == before
    finally:
        with system.engine.begin() as conn:
            for statement in teardown:
                conn.execute(text(statement))
    # and the same calls succeed once the database accepts them
    system.save_dislike(1, 11, "B", reason="poor_quality", cast=["Ann"], franchise="Saga")
    assert count(system, feature_adjustments) == 2


def test_save_dislike_logs_with_the_feedback_prefix(system, caplog):
    with caplog.at_level(logging.INFO, logger="feedback_core"):
        system.save_dislike(1, 10, "A", reason="wrong_genre", genres=["Drama"])
    lines = [r.getMessage() for r in caplog.records if r.name == "feedback_core"]
    # One line per dislike, its proposals on it (the specification greps "Feature adjustments").
    assert lines == [
        "[FEEDBACK] Dislike 1 recorded: user 1 movie 10 reason wrong_genre score unknown; "
        "Feature adjustments proposed: {'genre:Drama': -0.15}"
    ]
    with caplog.at_level(logging.INFO, logger="feedback_core"):
        system.save_dislike(1, 11, "B", reason="other", predicted_score=0.0)  # proposes nothing
    assert caplog.records[-1].getMessage() == (
        "[FEEDBACK] Dislike 2 recorded: user 1 movie 11 reason other score 0.000"
    )


# ---------------------------------------------------------------- retracting


def test_retract_dislike_undoes_example_proposals_and_aggregates(system, clock):
    keep = system.save_dislike(1, 9, "Keep", reason="other", predicted_score=0.2)
    dislike_id = system.save_dislike(
        1, 10, "A", reason="wrong_genre", genres=GENRES, predicted_score=0.8, franchise="Saga"
    )
    clock.advance(minutes=5)
    outcome = system.retract_dislike(dislike_id, 1)
    assert outcome == {
        "dislike_id": dislike_id,
        "retracted": True,
        "example_removed": True,
        "proposals_withdrawn": 2,
        "adjustments_reverted": 0,
    }
    (dislike,) = rows(system, user_dislikes, user_dislikes.c.dislike_id == dislike_id)
    assert dislike.retracted_at == clock()  # the record stays, marked
    assert [e.dislike_id for e in rows(system, negative_examples)] == [keep]
    withdrawn = rows(system, feature_adjustments, feature_adjustments.c.dislike_id == dislike_id)
    assert {(p.status, p.note) for p in withdrawn} == {("rejected", "dislike retracted")}
    (audit,) = rows(system, audit_log, audit_log.c.action == "dislike.retracted")
    assert (audit.actor, audit.entity_type, audit.entity_id) == ("user:1", "dislike", str(dislike_id))
    assert audit.details == {"example_removed": True, "proposals_withdrawn": 2, "adjustments_reverted": 0}

    patterns = patterns_of(system, 1)
    assert patterns[("total", "")] == 1 and patterns[("reason", "wrong_genre")] == 0
    assert patterns[("genre", "Action")] == 0 and ("franchise", "Saga") not in patterns  # not blamed
    recount_matches_aggregates(system)
    assert [d["dislike_id"] for d in system.get_user_dislikes(1)] == [keep]

    seen = system.save_dislike(1, 11, "B", reason="already_watched")
    assert count(system, movie_exclusions) == 1
    system.retract_dislike(seen, 1)
    assert count(system, movie_exclusions) == 0  # the movie may be recommended again


def test_retracting_the_latest_dislike_moves_last_disliked_back(system, clock):
    from datetime import datetime, timedelta, timezone

    from reliability_support import recount_differences

    add_movies(system, [1, 2, 3], genres=["Horror"])
    first = datetime(2026, 1, 10, 12)
    system.record_dislike(created_at=first, user_id=1, movie_id=1, reason="wrong_genre", predicted_score=0.5)
    system.record_dislike(created_at=first, user_id=2, movie_id=3, reason="other", predicted_score=0.4)
    later = system.record_dislike(
        created_at=datetime(2026, 1, 20, 12), user_id=1, movie_id=2, reason="wrong_genre", predicted_score=0.6
    )["dislike_id"]
    only = system.record_dislike(
        created_at=datetime(2026, 1, 21, 9, tzinfo=timezone(timedelta(hours=2))),  # 07:00 UTC
        user_id=2,
        movie_id=2,
        reason="other",
        predicted_score=0.3,
    )["dislike_id"]
    system.retract_dislike(later, 1)
    system.retract_dislike(only, 2)
    assert recount_differences(system.engine) == []
    patterns = {
        (p.user_id, p.pattern_type, p.pattern_value): p.last_disliked_at
        for p in rows(system, dislike_patterns)
    }
    assert patterns[(1, "total", "")] == patterns[(1, "genre", "Horror")] == first
    assert patterns[(2, "total", "")] == first
    assert patterns[(2, "reason", "other")] == first
    # Film 2's only live dislikes are gone: no "last disliked" moment is left.
    (film,) = rows(system, movie_dislike_stats, movie_dislike_stats.c.movie_id == 2)
    assert (film.dislikes, film.last_disliked_at) == (0, None)
    # The adjustment inbox's "disliked within 7 days" no longer sees the retracted one.
    from feedback_core.lookups import list_adjustment_inbox

    clock.moment = datetime(2026, 1, 21, 12)
    assert list_adjustment_inbox(system, within_days=7).empty


def test_a_time_zone_is_stored_as_utc(system):
    from datetime import datetime, timedelta, timezone

    add_movies(system, [1], genres=["Drama"])
    east = timezone(timedelta(hours=5))
    set_id = system.record_recommendation_set(1, [1], shown_at=datetime(2026, 1, 11, 2, tzinfo=east))
    dislike_id = system.save_dislike(1, 1, recommendation_set_id=set_id)
    (shown,) = rows(system, impressions)
    assert shown.shown_at == datetime(2026, 1, 10, 21)
    at = system.record_dislike(
        created_at=datetime(2026, 1, 11, 2, tzinfo=east), user_id=2, movie_id=1, reason="other"
    )
    (stored,) = rows(system, user_dislikes, user_dislikes.c.dislike_id == at["dislike_id"])
    assert stored.created_at == datetime(2026, 1, 10, 21)
    assert dislike_id
    with pytest.raises(ValidationError) as err:
        system.record_recommendation_set(1, [1], shown_at="2026-01-11")
    assert err.value.field == "shown_at"


def test_retract_keeps_an_example_already_used_in_training(system):
    dislike_id = system.save_dislike(1, 10, "A")
    (example,) = system.get_negative_training_batch()
    system.mark_negative_examples_as_used([example["example_id"]])
    outcome = system.retract_dislike(dislike_id, 1)
    assert outcome["example_removed"] is False
    assert [e.status for e in rows(system, negative_examples)] == ["used"]


def test_retracting_someone_elses_dislike_is_not_found_and_changes_nothing(system):
    dislike_id = system.save_dislike(1, 10, "A", reason="wrong_genre", genres=["Drama"])
    before = row_counts(system)
    for args in [(dislike_id, 2), (dislike_id + 100, 1)]:
        with pytest.raises(NotFoundError) as err:
            system.retract_dislike(*args)
        assert err.value.field == "dislike_id" and err.value.status == 404
        assert row_counts(system) == before
    with pytest.raises(ValidationError):
        system.retract_dislike(0, 1)
    assert rows(system, user_dislikes)[0].retracted_at is None


def test_retracting_twice_is_a_conflict(system):
    dislike_id = system.save_dislike(1, 10, "A")
    system.retract_dislike(dislike_id, 1)
    before = row_counts(system)
    with pytest.raises(ConflictError):
        system.retract_dislike(dislike_id, 1)
    assert row_counts(system) == before
    assert count(system, audit_log, audit_log.c.action == "dislike.retracted") == 1


def test_a_retracted_dislike_can_be_posted_again(system):
    add_movies(system, [10])
    shown = system.record_recommendation_set(1, [10])
    first = system.save_dislike(1, 10, recommendation_set_id=shown)
    system.retract_dislike(first, 1)
    second = system.save_dislike(1, 10, recommendation_set_id=shown)
    assert second != first
    assert count(system, negative_examples) == 1


def test_retracting_one_of_two_already_watched_dislikes_keeps_the_exclusion(system, clock):
    add_movies(system, [10])
    first = system.save_dislike(1, 10, reason="already_watched")
    clock.advance(days=1)
    system.save_dislike(1, 10, reason="already_watched")
    system.retract_dislike(first, 1)
    assert count(system, movie_exclusions) == 1


# ---------------------------------------------------------------- concurrency


def _hammer(system, workers: int, per_worker: int, movie_ids, seed: int) -> list[Exception]:
    """Run ``workers`` threads, each saving ``per_worker`` dislikes; return the errors raised."""
    errors: list[Exception] = []
    start = threading.Barrier(workers)
    reasons = ["wrong_genre", "poor_quality", "not_interested", "irrelevant", "other", "already_watched"]

    def work(worker: int) -> None:
        rng = random.Random(seed + worker)
        start.wait()
        for i in range(per_worker):
            try:
                system.save_dislike(
                    user_id=worker + 1,
                    movie_id=movie_ids[i],
                    movie_title=f"Movie {movie_ids[i]}",
                    predicted_score=round(rng.random(), 3),
                    reason=rng.choice(reasons),
                    genres=rng.sample(["Drama", "War", "Comedy", "Horror"], 2),
                    cast=["Ann", "Bob"],
                    franchise="Saga",
                )
            except Exception as exc:  # collected: the assertion below shows them all
                errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_concurrent_dislikes_are_all_recorded_and_counted_once(make_system):
    system = make_system(FEEDBACK_ACCUMULATION_THRESHOLD=20)
    movie_ids = list(range(1, 51))
    add_movies(system, movie_ids)  # every thread dislikes the same 50 movies: shared aggregate rows
    errors = _hammer(system, workers=4, per_worker=50, movie_ids=movie_ids, seed=7)
    assert errors == []
    assert count(system, user_dislikes) == 200
    assert count(system, negative_examples) == 200
    assert count(system, retrain_jobs) == 1  # the threshold was crossed by many racing requests
    recount_matches_aggregates(system)


def test_concurrent_first_dislikes_of_a_new_movie(make_system):
    system = make_system()
    errors = _hammer(system, workers=4, per_worker=15, movie_ids=list(range(500, 515)), seed=11)
    assert errors == []
    assert count(system, user_dislikes) == 60
    assert count(system, movies) == 15


def test_a_dislike_at_the_high_score_counts_as_a_confident_mistake_and_one_below_does_not(system):
    add_movie(system, 10, "A", genres=["Drama"])
    add_movie(system, 11, "B", genres=["Drama"])
    system.save_dislike(1, 10, "A", predicted_score=0.7, reason="other")
    system.save_dislike(1, 11, "B", predicted_score=0.69, reason="other")
    high = {r.movie_id: r.high_score_dislikes for r in rows(system, movie_dislike_stats)}
    assert high == {10: 1, 11: 0}


def test_a_dislike_after_midnight_of_a_list_shown_before_counts_on_the_lists_day(system, clock):
    """The day's rate counts a dislike beside the impressions it is a share of."""
    from datetime import datetime

    add_movie(system, 10, "A", genres=["Drama"])
    shown = datetime(2026, 11, 1, 23, 50)
    clock.moment = shown  # (a list is recorded when shown, not hours ahead)
    set_id = system.record_recommendation_set(7, [{"movie_id": 10, "predicted_score": 0.6}], shown_at=shown)
    clock.moment = datetime(2026, 11, 2, 0, 10)
    system.record_dislike(user_id=7, movie_id=10, recommendation_set_id=set_id, reason="other")
    (day,) = rows(system, daily_dislikes)
    assert (day.day.isoformat(), day.attributed, day.dislikes) == ("2026-11-01", 1, 1)
    (histogram,) = rows(system, daily_score_histogram)
    assert (histogram.day.isoformat(), histogram.reason, histogram.bucket) == ("2026-11-01", "other", 6)
    assert {r.day.isoformat() for r in rows(system, daily_reason_genre)} == {"2026-11-01"}


def test_a_list_or_a_dislike_out_of_time_order_is_refused(system, clock):
    from datetime import timedelta

    add_movies(system, [1, 2])
    before = row_counts(system)
    # A list recorded 20 hours ahead (local time sent as UTC): its day had not begun, its
    # dislikes fell on tomorrow, and the dashboard's dates ran into a day not begun.
    with pytest.raises(ValidationError) as ahead:
        system.record_recommendation_set(7, [1, 2], shown_at=clock.moment + timedelta(hours=20))
    assert (
        ahead.value.field == "shown_at" and "20.0 hours ahead of this server's clock" in ahead.value.message
    )
    assert row_counts(system) == before
    # A dislike dated before the list it cites: its own time is wrong, and it says so.
    shown = system.record_recommendation_set(7, [1, 2])
    before = row_counts(system)
    with pytest.raises(ValidationError) as early:
        system.record_dislike(
            user_id=7,
            movie_id=1,
            movie_title="",
            recommendation_set_id=shown,
            predicted_score=0.5,
            created_at=clock.moment - timedelta(hours=2),
        )
    assert early.value.field == "created_at" and "this created_at is likely wrong" in early.value.message
    assert row_counts(system) == before
    # Clocks a few minutes apart are taken: the list, and a dislike of it, count.
    near = system.record_recommendation_set(7, [1, 2], shown_at=clock.moment + timedelta(minutes=3))
    assert system.save_dislike(7, 2, recommendation_set_id=near, predicted_score=0.5) > 0
