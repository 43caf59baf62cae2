"""Recommendations: ranked by the active version, recorded as impressions, changed by feedback."""

from __future__ import annotations

import math

import pytest
from conftest import row_counts
from helpers import rows
from loop_support import (
    ALL_FILMS,
    BLOCKBUSTER,
    COMEDY,
    DRAMA,
    HORROR,
    POPULAR_FLOP,
    build_world,
    dislike,
    trained_world,
)

from feedback_core import ValidationError
from feedback_core.schema import impressions, recommendation_sets


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def scores(system, user_id, movie_ids) -> dict[int, float]:
    return {s["movie_id"]: s["predicted_score"] for s in system.score_movies(user_id, movie_ids)}


def test_recommend_records_a_set_with_impressions_and_the_active_version(system, clock):
    version = trained_world(system)
    result = system.recommend(7, k=5)
    assert result["model_version_id"] == version
    assert result["user_id"] == 7
    items = result["items"]
    assert [i["rank"] for i in items] == [1, 2, 3, 4, 5]
    assert [i["predicted_score"] for i in items] == sorted(
        (i["predicted_score"] for i in items), reverse=True
    )
    assert all(0 < i["predicted_score"] < 1 and i["title"] and i["genres"] for i in items)

    stored = system.get_recommendation_set(result["recommendation_set_id"])
    assert stored["model_version_id"] == version and stored["user_id"] == 7
    assert [(i["movie_id"], i["rank"], i["predicted_score"]) for i in stored["items"]] == [
        (i["movie_id"], i["rank"], i["predicted_score"]) for i in items
    ]
    shown = rows(system, impressions)
    assert len(shown) == 5
    assert {(r.user_id, r.model_version_id, r.shown_at) for r in shown} == {(7, version, clock())}
    (head,) = rows(system, recommendation_sets)
    assert head.source == "recommend"
    # Every call is a new list (a new set), even when it shows the same films.
    again = system.recommend(7, k=5)
    assert again["recommendation_set_id"] != result["recommendation_set_id"]
    assert [i["movie_id"] for i in again["items"]] == [i["movie_id"] for i in items]
    assert row_counts(system)["impressions"] == 10


def test_recommend_before_any_version_uses_the_prior_and_records_no_version(system):
    build_world(system)
    result = system.recommend(7, k=3)
    assert result["model_version_id"] is None
    assert len(result["items"]) == 3
    assert system.get_recommendation_set(result["recommendation_set_id"])["model_version_id"] is None


def test_recommend_leaves_out_rated_disliked_and_already_watched_films(system):
    trained_world(system)
    system.record_rating(7, 11, 5.0)
    system.record_rating(7, 12, 1.0)
    disliked = dislike(system, 7, 1, "not_interested")["dislike_id"]
    watched = dislike(system, 7, 21, "already_watched")["dislike_id"]
    hidden = {11, 12, 1, 21}
    result = system.recommend(7, k=100)
    assert {i["movie_id"] for i in result["items"]} == set(ALL_FILMS) - hidden
    # Another user still gets them.
    assert hidden <= {i["movie_id"] for i in system.recommend(8, k=100)["items"]}
    # A retracted dislike gives the film back; so does retracting "already watched".
    system.retract_dislike(disliked, 7)
    system.retract_dislike(watched, 7)
    assert {i["movie_id"] for i in system.recommend(7, k=100)["items"]} == set(ALL_FILMS) - {11, 12}


def test_an_already_watched_film_stays_hidden_while_any_live_dislike_remains(system, clock):
    trained_world(system)
    first = dislike(system, 7, 21, "already_watched")["dislike_id"]
    clock.advance(days=1)
    dislike(system, 7, 21, "poor_quality")
    system.retract_dislike(first, 7)
    assert 21 not in {i["movie_id"] for i in system.recommend(7, k=100)["items"]}


def test_a_user_with_no_history_gets_popular_good_films(system):
    trained_world(system)
    result = system.recommend(999, k=10)
    ids = [i["movie_id"] for i in result["items"]]
    assert len(ids) == 10 and len(set(ids)) == 10
    assert ids[0] == BLOCKBUSTER
    assert POPULAR_FLOP not in ids
    assert result["recommendation_set_id"] is not None


def test_an_empty_catalogue_gives_an_empty_list_not_an_error(system):
    before = row_counts(system)
    result = system.recommend(1, k=10)
    assert result == {"recommendation_set_id": None, "user_id": 1, "model_version_id": None, "items": []}
    assert row_counts(system) == before


def test_a_user_who_has_seen_everything_gets_an_empty_list(system):
    build_world(system)
    system.record_ratings([(5, m, 3.0) for m in ALL_FILMS])
    before = row_counts(system)
    # The same keys as any answer: a caller reading user_id does not fail on this one.
    assert system.recommend(5, k=10) == {
        "recommendation_set_id": None,
        "user_id": 5,
        "model_version_id": None,
        "items": [],
    }
    assert row_counts(system) == before


@pytest.mark.parametrize("k", [0, 101, -1, "ten", 2.5, None])
def test_recommend_rejects_a_bad_k(system, k):
    system.add_movies([{"movie_id": 1, "title": "A"}])
    before = row_counts(system)
    with pytest.raises(ValidationError) as caught:
        system.recommend(1, k=k)
    assert caught.value.field == "k"
    assert row_counts(system) == before


def test_score_movies_records_nothing_and_agrees_with_recommend(system):
    version = trained_world(system)
    before = row_counts(system)
    scored = system.score_movies(7, ALL_FILMS)
    assert row_counts(system) == before
    assert [s["movie_id"] for s in scored] == ALL_FILMS  # in the order asked
    assert {s["model_version_id"] for s in scored} == {version}
    by_id = {s["movie_id"]: s["predicted_score"] for s in scored}
    shown = system.recommend(7, k=len(ALL_FILMS))["items"]
    assert {i["movie_id"]: i["predicted_score"] for i in shown} == by_id


@pytest.mark.parametrize(
    "movie_ids, field",
    [([], "movie_ids"), ("1,2", "movie_ids"), ([1, 0], "movie_ids[1]"), ([1, 999], "movie_ids")],
)
def test_score_movies_rejects_bad_input(system, movie_ids, field):
    build_world(system)
    before = row_counts(system)
    with pytest.raises(ValidationError) as caught:
        system.score_movies(1, movie_ids)
    assert caught.value.field == field
    assert row_counts(system) == before


@pytest.mark.parametrize("liked", [COMEDY[:4], HORROR[:4]], ids=["no-horror-affinity", "horror-fan"])
def test_an_approved_horror_adjustment_lowers_that_users_horror_films_at_once(system, liked):
    trained_world(system)
    user = 50
    system.record_ratings([(user, m, 5.0) for m in liked])
    outcome = dislike(system, user, HORROR[-1], "wrong_genre")
    assert outcome["feature_adjustments"]["genre_adjustments"] == {"Horror": -0.15}
    films = HORROR[:-1] + DRAMA
    before = scores(system, user, films)
    other_before = scores(system, 60, films)

    (proposal,) = system.list_adjustments(status="proposed", user_id=user)
    system.approve_adjustment(proposal["adjustment_id"], "approver@test")
    after = scores(system, user, films)
    strength = system.get_active_model_version()["adjustment_strength"]
    for m in HORROR[:-1]:
        assert after[m] < before[m]
        # The offset is adjustment_strength x (weight - 1) on the logit: 3 x -0.15.
        assert logit(after[m]) - logit(before[m]) == pytest.approx(strength * -0.15, abs=1e-4)
    for m in DRAMA:
        assert after[m] == before[m]
    assert scores(system, 60, films) == other_before  # nobody else moves
    shown = {i["movie_id"]: i["predicted_score"] for i in system.recommend(user, k=100)["items"]}
    assert all(shown[m] == after[m] for m in films if m in shown)

    system.revert_adjustment(proposal["adjustment_id"], "approver@test")
    assert scores(system, user, films) == before


def test_before_the_first_version_an_approval_moves_scores_by_the_configured_strength(make_system):
    system = make_system(adjustment_strength=6.0)
    build_world(system)  # no model version yet: the prior model scores
    dislike(system, 50, HORROR[0], "wrong_genre")
    before = scores(system, 50, HORROR[1:])
    (proposal,) = system.list_adjustments(user_id=50)
    system.approve_adjustment(proposal["adjustment_id"], "approver@test")
    after = scores(system, 50, HORROR[1:])
    for m in HORROR[1:]:
        assert logit(after[m]) - logit(before[m]) == pytest.approx(6.0 * -0.15, abs=1e-4)


def test_an_edited_magnitude_moves_the_score_by_that_much(system):
    trained_world(system)
    dislike(system, 50, HORROR[0], "wrong_genre")
    before = scores(system, 50, HORROR[1:])
    (proposal,) = system.list_adjustments(user_id=50)
    system.approve_adjustment(proposal["adjustment_id"], "approver@test", magnitude=-0.4)
    after = scores(system, 50, HORROR[1:])
    for m in HORROR[1:]:
        assert logit(after[m]) - logit(before[m]) == pytest.approx(3.0 * -0.4, abs=1e-4)


def test_a_proposal_changes_nothing_until_approved_and_a_rejection_never(system):
    trained_world(system)
    dislike(system, 50, HORROR[0], "wrong_genre")
    before = scores(system, 50, HORROR[1:])
    (proposal,) = system.list_adjustments(user_id=50)
    system.reject_adjustment(proposal["adjustment_id"], "approver@test", "not enough evidence")
    assert scores(system, 50, HORROR[1:]) == before


@pytest.mark.parametrize(
    "reason, lowered",
    [
        ("irrelevant", {"genre"}),  # "made no sense": the film's genre
        ("poor_quality", {"cast"}),  # "the film itself disappointed": its cast, not its genre
        ("other", set()),  # blames nothing: counted, and no film moves
    ],
)
def test_a_dislike_alone_lowers_the_films_sharing_what_its_reason_blames(system, reason, lowered):
    trained_world(system)
    horror_only = [m for m in HORROR[1:] if m % 4 != HORROR[0] % 4]  # the genre, not the cast
    horror_and_cast = [m for m in HORROR[1:] if m % 4 == HORROR[0] % 4]
    cast_only = [m for m in COMEDY if m % 4 == HORROR[0] % 4]
    unrelated = [m for m in COMEDY if m % 4 != HORROR[0] % 4]  # no genre or cast in common
    before = scores(system, 50, HORROR[1:] + COMEDY)
    dislike(system, 50, HORROR[0], reason)  # no proposal is approved: only the aversions move
    after = scores(system, 50, HORROR[1:] + COMEDY)
    assert all((after[m] < before[m]) == ("genre" in lowered) for m in horror_only)
    assert all((after[m] < before[m]) == bool(lowered) for m in horror_and_cast)
    assert all((after[m] < before[m]) == ("cast" in lowered) for m in cast_only)
    assert all(after[m] == before[m] for m in unrelated)
    assert all(after[m] <= before[m] for m in before)


def test_the_user_state_is_read_in_one_statement_as_the_separate_reads_had_it(system):
    """load_user_state merges six reads (UNION ALL): each part equals its own query, typed alike."""
    from sqlalchemy import event, select

    from feedback_core.db import read_connection
    from feedback_core.recommender import load_active_model, load_user_state
    from feedback_core.schema import (
        dislike_patterns,
        movie_exclusions,
        ratings,
        user_dislikes,
        user_feature_weights,
    )

    with read_connection(system.engine) as conn:  # before any version: the prior model
        empty = load_user_state(conn, 7)
        assert empty.model(3.0) == load_active_model(conn)[1]
    assert (empty.version_id, empty.stored_weights, empty.rated, empty.patterns) == (None, {}, [], [])
    version = trained_world(system)
    system.record_rating(7, 11, 5.0)
    system.record_rating(7, 12, 1.0)
    gone = dislike(system, 7, 1, "not_interested")["dislike_id"]
    dislike(system, 7, 2, "wrong_genre")
    dislike(system, 7, 21, "already_watched")
    system.retract_dislike(gone, 7)
    proposal = system.list_adjustments(user_id=7, limit=1)[0]
    system.approve_adjustment(proposal["adjustment_id"], "approver@test")
    statements = []
    event.listen(system.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with read_connection(system.engine) as conn:
        state = load_user_state(conn, 7)
        assert len(statements) == 1
        version_id, trained = load_active_model(conn)
        rated = conn.execute(select(ratings.c.movie_id, ratings.c.rating).where(ratings.c.user_id == 7)).all()
        disliked = conn.execute(
            select(user_dislikes.c.movie_id).where(
                user_dislikes.c.user_id == 7, user_dislikes.c.retracted_at.is_(None)
            )
        ).scalars()
        excluded = conn.execute(
            select(movie_exclusions.c.movie_id).where(movie_exclusions.c.user_id == 7)
        ).scalars()
        patterns = conn.execute(
            select(
                dislike_patterns.c.user_id,
                dislike_patterns.c.pattern_type,
                dislike_patterns.c.pattern_value,
                dislike_patterns.c.dislike_count,
                dislike_patterns.c.last_disliked_at,
            ).where(dislike_patterns.c.user_id == 7)
        ).all()
        weights = conn.execute(
            select(
                user_feature_weights.c.user_id,
                user_feature_weights.c.feature_type,
                user_feature_weights.c.feature_value,
                user_feature_weights.c.adjustment_sum,
            ).where(user_feature_weights.c.user_id == 7)
        ).all()
    assert (state.version_id, state.model(3.0)) == (version_id, trained) and version_id == version
    assert sorted(state.rated) == sorted(map(tuple, rated)) and state.liked == [(7, 11)]
    assert sorted(state.disliked) == sorted(disliked) == [2, 21]
    assert sorted(state.excluded) == sorted(excluded) and 21 in state.excluded
    assert sorted(state.patterns) == sorted(map(tuple, patterns)) and patterns
    assert sorted(state.weights) == sorted(map(tuple, weights)) and weights
    assert state.hidden == {11, 12, 2, 21}
    # The same types as the separate reads: times as datetimes, counts as integers.
    for mine, theirs in zip(sorted(state.patterns), sorted(map(tuple, patterns))):
        assert [type(v) for v in mine] == [type(v) for v in theirs]
