"""The HTTP API: the specification's endpoints, the loop's endpoints, strict input, errors.

Every test asserts the response (checked against the OpenAPI document by the client) and the
database afterwards; a rejected request changes no row.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta

import pytest
from api_support import error_of, make_api, row_counts
from flask import Flask, jsonify
from helpers import add_model_version, count, rows
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from feedback_core.api import ApiConfig, create_app, register_feedback_routes
from feedback_core.apikeys import create_api_key
from feedback_core.errors import ConfigError, DatabaseUnavailableError
from feedback_core.schema import (
    audit_log,
    feature_adjustments,
    idempotent_requests,
    impressions,
    model_versions,
    negative_examples,
    ratings,
    recommendation_sets,
    user_dislikes,
    user_feature_weights,
)
from feedback_core.system import FeedbackSystem

SPEC_DISLIKE = {
    "movie_id": 123,
    "movie_title": "Movie Title",
    "predicted_score": 0.75,
    "reason": "wrong_genre",
    "feedback_text": "Not my type of movie",
    "genres": ["Action", "Sci-Fi"],
    "cast": ["Actor 1", "Actor 2"],
}


@pytest.fixture
def api(system):
    """The app over the test's database, with a service key and an admin key."""
    return make_api(system)


def catalogue(system, n: int = 12) -> None:
    system.add_movies(
        {
            "movie_id": m,
            "title": f"Movie {m}",
            "genres": ["Drama" if m % 2 else "Comedy"],
            "cast": [f"Actor {m}"],
        }
        for m in range(1, n + 1)
    )


# ---------------------------------------------------------------- POST /api/dislike


def test_post_dislike_user_patterns_follow_every_dislike_and_equal_the_analysis(api):
    catalogue(api.system)
    reasons = ["wrong_genre", "poor_quality", "wrong_genre", "other", "wrong_genre"]
    for i, reason in enumerate(reasons, start=1):
        body = api.post("/api/dislike", {"movie_id": i, "reason": reason}).get_json()
        expected = Counter(reasons[:i])
        assert body["user_patterns"] == {"reason_distribution": dict(expected), "total_dislikes": i}
    analysis = api.system.get_dislike_pattern_analysis(api.user)
    assert body["user_patterns"]["reason_distribution"] == analysis["reason_distribution"]
    assert body["user_patterns"]["total_dislikes"] == analysis["total_dislikes"]
    # A retry with the same Idempotency-Key gets the first answer again.
    again = api.post(
        "/api/dislike", {"movie_id": 6, "reason": "wrong_genre"}, headers={"Idempotency-Key": "k"}
    )
    assert again.status_code == 201
    repeat = api.post(
        "/api/dislike", {"movie_id": 6, "reason": "wrong_genre"}, headers={"Idempotency-Key": "k"}
    )
    assert repeat.status_code == 201 and repeat.get_json() == again.get_json()  # the first answer, replayed
    assert again.get_json()["user_patterns"]["total_dislikes"] == 6


def test_post_dislike_answers_the_specification_shape_and_stores_everything(api):
    r = api.post("/api/dislike", SPEC_DISLIKE)
    assert r.status_code == 201
    body = r.get_json()
    assert body["success"] is True
    assert body["duplicate"] is False
    assert body["training_impact"] == {"error_recorded": 0.75, "weight": 0.8}
    fa = body["feature_adjustments"]
    assert fa["genre_adjustments"] == {"Action": -0.15, "Sci-Fi": -0.15}
    assert fa["cast_adjustments"] == {} and fa["reason"] == "wrong_genre"
    assert body["user_patterns"]["reason_distribution"] == {"wrong_genre": 1}
    assert body["user_patterns"]["total_dislikes"] == 1

    (row,) = rows(api.system, user_dislikes)
    assert row.dislike_id == body["dislike_id"]
    assert row.user_id == api.user  # from X-User-ID, never from the body
    assert (row.movie_id, row.movie_title, row.reason) == (123, "Movie Title", "wrong_genre")
    assert row.feedback_text == "Not my type of movie"
    (example,) = rows(api.system, negative_examples)
    assert (example.dislike_id, example.weight, example.error) == (row.dislike_id, 0.8, 0.75)
    proposals = rows(api.system, feature_adjustments)
    assert sorted((p.feature_value, p.magnitude, p.status) for p in proposals) == [
        ("Action", -0.15, "proposed"),
        ("Sci-Fi", -0.15, "proposed"),
    ]


def test_post_dislike_from_a_shown_list_is_attributed_to_it(api):
    catalogue(api.system)
    shown = api.post(
        "/api/recommendation-sets",
        {"items": [{"movie_id": 3, "rank": 1, "predicted_score": 0.9}, {"movie_id": 4, "rank": 2}]},
    )
    assert shown.status_code == 201
    set_id = shown.get_json()["recommendation_set_id"]
    r = api.post(
        "/api/dislike",
        {"movie_id": 3, "recommendation_set_id": set_id, "predicted_score": 0.9, "reason": "poor_quality"},
    )
    assert r.status_code == 201
    (row,) = rows(api.system, user_dislikes)
    assert row.recommendation_set_id == set_id and row.movie_title == "Movie 3"

    again = api.post(
        "/api/dislike",
        {"movie_id": 3, "recommendation_set_id": set_id, "predicted_score": 0.9, "reason": "poor_quality"},
    )
    assert again.status_code == 200  # a repeat creates nothing
    assert again.get_json()["duplicate"] is True
    assert again.get_json()["dislike_id"] == row.dislike_id
    assert count(api.system, user_dislikes) == 1 and count(api.system, negative_examples) == 1


def test_post_dislike_of_a_movie_not_in_the_list_is_refused(api):
    catalogue(api.system)
    set_id = api.post("/api/recommendation-sets", {"items": [1, 2]}).get_json()["recommendation_set_id"]
    before = row_counts(api.system)
    r = api.post("/api/dislike", {"movie_id": 5, "recommendation_set_id": set_id})
    assert r.status_code == 400
    assert error_of(r)["field"] == "recommendation_set_id"
    assert row_counts(api.system) == before


def test_post_dislike_of_an_unknown_movie_needs_a_title(api):
    before = row_counts(api.system)
    r = api.post("/api/dislike", {"movie_id": 999})
    assert r.status_code == 400 and error_of(r)["field"] == "movie_title"
    assert row_counts(api.system) == before


# ---------------------------------------------------------------- strict input

BAD_BODIES = [
    # (body, field named in the error, what the message must mention)
    ({"movie_id": "123", "movie_title": "T"}, "movie_id", "integer"),
    ({"movie_id": 12.5, "movie_title": "T"}, "movie_id", "integer"),
    ({"movie_id": True, "movie_title": "T"}, "movie_id", "integer"),
    ({"movie_id": 0, "movie_title": "T"}, "movie_id", "positive"),
    ({"movie_id": -4, "movie_title": "T"}, "movie_id", "positive"),
    ({"movie_id": 2**63, "movie_title": "T"}, "movie_id", "positive"),
    ({"movie_title": "T"}, "movie_id", "required"),
    ({"movie_id": 1, "movie_title": "T", "reason": "boring"}, "reason", "wrong_genre"),
    ({"movie_id": 1, "movie_title": "T", "reason": 3}, "reason", "string"),
    ({"movie_id": 1, "movie_title": "T", "predicted_score": 1.5}, "predicted_score", "between 0 and 1"),
    ({"movie_id": 1, "movie_title": "T", "predicted_score": -0.1}, "predicted_score", "between 0 and 1"),
    ({"movie_id": 1, "movie_title": "T", "predicted_score": "high"}, "predicted_score", "number"),
    ({"movie_id": 1, "movie_title": "T" * 301}, "movie_title", "at most 300"),
    ({"movie_id": 1, "movie_title": 5}, "movie_title", "string"),
    ({"movie_id": 1, "movie_title": "T", "feedback_text": "x" * 2001}, "feedback_text", "at most 2000"),
    ({"movie_id": 1, "movie_title": "T", "genres": "Action"}, "genres", "list"),
    ({"movie_id": 1, "movie_title": "T", "genres": ["ok", ""]}, "genres[1]", "empty"),
    ({"movie_id": 1, "movie_title": "T", "genres": [1]}, "genres[0]", "string"),
    ({"movie_id": 1, "movie_title": "T", "genres": ["g"] * 51}, "genres", "at most 50"),
    ({"movie_id": 1, "movie_title": "T", "cast": {"a": 1}}, "cast", "list"),
    ({"movie_id": 1, "movie_title": "T\x00"}, "movie_title", "NUL"),
    ({"movie_id": 1, "movie_title": "T", "user_id": 99}, "user_id", "unknown field"),
    (
        {"movie_id": 1, "movie_title": "T", "recommendation_set_id": 77},
        "recommendation_set_id",
        "not a list shown to user 7: record the list first (POST /api/recommendation-sets",
    ),
    ({"movie_id": 1, "movie_title": "T", "recommendation_set_id": "7"}, "recommendation_set_id", "integer"),
]


@pytest.mark.parametrize(("body", "field", "mention"), BAD_BODIES)
def test_each_invalid_field_is_a_400_that_names_it_and_writes_nothing(api, body, field, mention):
    before = row_counts(api.system)
    r = api.post("/api/dislike", body)
    assert r.status_code == 400
    error = error_of(r)
    assert error["code"] == "invalid_input"
    assert error["field"] == field
    assert mention in error["message"]
    assert row_counts(api.system) == before


RAW_BODIES = [
    # (raw body, content type, status, what the message must mention)
    ('{"movie_id": NaN, "movie_title": "T"}', "application/json", 400, "NaN"),
    ('{"movie_id": 1, "movie_title": "T", "predicted_score": Infinity}', "application/json", 400, "Infinity"),
    (
        '{"movie_id": 1, "movie_title": "T", "predicted_score": -Infinity}',
        "application/json",
        400,
        "Infinity",
    ),
    ('{"movie_id": 1, "movie_title": "T", "predicted_score": 1e999}', "application/json", 400, "too large"),
    ('{"movie_id": ' + "9" * 5000 + ', "movie_title": "T"}', "application/json", 400, "too large"),
    ("[" * 100 + "]" * 100, "application/json", 400, "a list"),
    ('{"a":' * 40 + "1" + "}" * 40, "application/json", 400, "nested"),
    ('{"movie_id": 1, "movie_title": "\\ud800"}', "application/json", 400, "surrogate"),
    ('{"movie_id": 1, "movie_title": "T"', "application/json", 400, "not valid JSON"),
    ("", "application/json", 400, "not valid JSON"),
    ("[1, 2]", "application/json", 400, "a list"),
    ('"text"', "application/json", 400, "a string"),
    ("42", "application/json", 400, "an integer"),
    ("null", "application/json", 400, "null"),
    (b'{"movie_id": 1, "movie_title": "\xff\xfe"}', "application/json", 400, "UTF-8"),
    ('{"movie_id": 1, "movie_title": "T"}', "text/plain", 415, "application/json"),
    ("movie_id=1&movie_title=T", "application/x-www-form-urlencoded", 415, "application/json"),
    ('{"movie_id": 1, "movie_title": "T"}', None, 415, "application/json"),
    ('{"movie_id": 1, "movie_title": "T"}', "application/json; charset=latin-1", 415, "UTF-8"),
]


@pytest.mark.parametrize(("raw", "content_type", "status", "mention"), RAW_BODIES)
def test_malformed_bodies_are_refused_cleanly(api, raw, content_type, status, mention):
    before = row_counts(api.system)
    r = api.call("POST", "/api/dislike", data=raw, content_type=content_type)
    assert r.status_code == status
    assert mention in error_of(r)["message"]
    assert row_counts(api.system) == before


def test_unicode_and_sql_looking_text_is_stored_verbatim(api):
    title = "Amélie 🎬 ‮RTL‬ zero​width \"'; DROP TABLE user_dislikes; --"
    r = api.post("/api/dislike", {"movie_id": 5, "movie_title": title, "feedback_text": "<script>x</script>"})
    assert r.status_code == 201
    (row,) = rows(api.system, user_dislikes)
    assert row.movie_title == title and row.feedback_text == "<script>x</script>"


def test_body_over_the_size_cap_is_413_and_writes_nothing(system):
    api = make_api(system, max_body_bytes=2048)
    before = row_counts(system)
    r = api.post("/api/dislike", {"movie_id": 1, "movie_title": "T", "feedback_text": "x" * 4000})
    assert r.status_code == 413
    assert error_of(r)["code"] == "payload_too_large"
    assert row_counts(system) == before


def test_unknown_query_parameters_and_bad_limits_are_named(api):
    for query, field in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=abc", "limit"),
        ("limit=2.5", "limit"),
        ("limt=5", "limt"),
    ]:
        r = api.get(f"/api/dislike-history?{query}")
        assert r.status_code == 400, query
        assert error_of(r)["field"] == field


# ---------------------------------------------------------------- reads of the specification


def test_dislike_history_is_the_users_own_newest_first_and_limited(api, clock):
    for movie_id in (1, 2, 3):
        api.post(
            "/api/dislike", {"movie_id": movie_id, "movie_title": f"M{movie_id}", "predicted_score": 0.5}
        )
        clock.advance(minutes=1)
    api.post("/api/dislike", {"movie_id": 4, "movie_title": "Other"}, user=8)

    r = api.get("/api/dislike-history?limit=2")
    body = r.get_json()
    assert r.status_code == 200 and body["count"] == 2
    assert [d["movie_id"] for d in body["dislikes"]] == [3, 2]
    first = body["dislikes"][0]
    assert {"dislike_id", "movie_id", "movie_title", "predicted_score", "reason", "created_at"} <= set(first)
    assert first["created_at"] == "2026-11-01 12:02:00"
    default = api.get("/api/dislike-history").get_json()
    assert default["count"] == 3  # user 8's dislike is not user 7's history


def test_dislike_patterns_have_the_specification_shape(api):
    api.post(
        "/api/dislike", {"movie_id": 1, "movie_title": "A", "reason": "wrong_genre", "predicted_score": 0.6}
    )
    api.post(
        "/api/dislike", {"movie_id": 2, "movie_title": "B", "reason": "poor_quality", "predicted_score": 0.8}
    )
    r = api.get("/api/dislike-patterns")
    patterns = r.get_json()["patterns"]
    assert patterns["reason_distribution"] == {"poor_quality": 1, "wrong_genre": 1}
    assert patterns["total_dislikes"] == 2
    assert patterns["recent_trend"]["total_dislikes"] == 2
    assert patterns["recent_trend"]["avg_predicted_score"] == pytest.approx(0.7)


def test_feedback_metrics_include_the_active_model_version(api):
    api.post("/api/dislike", {"movie_id": 1, "movie_title": "A", "predicted_score": 0.9})
    api.post("/api/dislike", {"movie_id": 2, "movie_title": "B", "predicted_score": 0.1})
    body = api.get("/api/feedback-metrics").get_json()
    assert body["active_model_version"] is None
    assert body["metrics"]["total_negative_examples"] == 2
    assert body["metrics"]["avg_prediction_error"] == pytest.approx(0.5)
    assert (body["metrics"]["max_error"], body["metrics"]["min_error"]) == (0.9, 0.1)

    add_model_version(api.system, 3, active=True, accuracy=0.82)
    active = api.get("/api/feedback-metrics").get_json()["active_model_version"]
    assert active == {
        "version_id": 3,
        "created_at": "2026-11-01 12:00:00",
        "accuracy": 0.82,
        "accuracy_baseline": None,
        "auc": None,
    }


# ---------------------------------------------------------------- undo


def test_delete_dislike_retracts_only_the_callers_own(api):
    dislike_id = api.post("/api/dislike", {"movie_id": 1, "movie_title": "A"}).get_json()["dislike_id"]
    before = row_counts(api.system)
    other = api.delete(f"/api/dislike/{dislike_id}", user=8)
    assert other.status_code == 404
    assert row_counts(api.system) == before
    assert rows(api.system, user_dislikes)[0].retracted_at is None

    r = api.delete(f"/api/dislike/{dislike_id}")
    assert r.status_code == 200
    assert r.get_json()["retracted"] is True
    assert rows(api.system, user_dislikes)[0].retracted_at is not None
    assert count(api.system, negative_examples) == 0
    assert api.get("/api/dislike-history").get_json()["count"] == 0

    # The person undid it, through the recommender's key: the audit says both.
    (audit,) = rows(api.system, audit_log, audit_log.c.action == "dislike.retracted")
    assert audit.actor == "user:7 via api:recommender"

    again = api.delete(f"/api/dislike/{dislike_id}")
    assert again.status_code == 409
    for bad in ("abc", "0", "-1", "99999999999999999999"):
        r = api.delete(f"/api/dislike/{bad}")
        assert r.status_code == 400 and error_of(r)["field"] == "dislike_id"


# ---------------------------------------------------------------- the rest of the loop


def test_recording_a_shown_list_stores_its_impressions(api):
    catalogue(api.system)
    r = api.post(
        "/api/recommendation-sets", {"items": [5, {"movie_id": 6, "rank": 2, "predicted_score": 0.4}]}
    )
    assert r.status_code == 201
    set_id = r.get_json()["recommendation_set_id"]
    (head,) = rows(api.system, recommendation_sets)
    assert (head.recommendation_set_id, head.user_id, head.source) == (set_id, api.user, "api")
    shown = rows(api.system, impressions, order_by=impressions.c.rank)
    assert [(i.movie_id, i.rank, i.predicted_score) for i in shown] == [(5, 1, 0.0), (6, 2, 0.4)]

    got = api.get(f"/api/recommendation-sets/{set_id}").get_json()
    assert [i["movie_id"] for i in got["items"]] == [5, 6]
    assert api.get(f"/api/recommendation-sets/{set_id}", user=8).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"items": []}, "items"),
        ({"items": [1, 1]}, "items[1].movie_id"),
        ({"items": [999]}, "items"),
        ({"items": ["1"]}, "items[0]"),
        ({"items": [{"movie_id": 1, "colour": "red"}]}, "items[0].colour"),
        ({"items": [{"movie_id": 1, "predicted_score": 2}]}, "items[0].predicted_score"),
        ({"items": [1], "model_version_id": 42}, "model_version_id"),
        ({}, "items"),
    ],
)
def test_invalid_shown_lists_are_refused(api, body, field):
    catalogue(api.system)
    before = row_counts(api.system)
    r = api.post("/api/recommendation-sets", body)
    assert r.status_code == 400
    assert error_of(r)["field"] == field
    assert row_counts(api.system) == before


def test_ratings_are_recorded_for_the_acting_user(api, clock):
    catalogue(api.system)
    r = api.post("/api/ratings", {"movie_id": 2, "rating": 4.5, "rated_at": "2026-10-30T08:00:00Z"})
    assert r.status_code == 201
    assert r.get_json()["rating"] == 4.5
    (row,) = rows(api.system, ratings)
    assert (row.user_id, row.movie_id, row.rating) == (api.user, 2, 4.5)
    assert row.rated_at.isoformat() == "2026-10-30T08:00:00"

    before = row_counts(api.system)
    for body, field in [
        ({"movie_id": 2, "rating": 7}, "rating"),
        ({"movie_id": 2, "rating": "4"}, "rating"),
        ({"movie_id": 2, "rating": 4, "rated_at": "yesterday"}, "rated_at"),
        # In range as written, out of range in UTC.
        ({"movie_id": 2, "rating": 4, "rated_at": "0001-01-01T00:00:00+01:00"}, "rated_at"),
        ({"movie_id": 2, "rating": 4, "rated_at": "9999-12-31T23:59:59-01:00"}, "rated_at"),
        # A placeholder for "no date": in 9999 it would stay the latest rating forever.
        ({"movie_id": 2, "rating": 4, "rated_at": "9999-12-31T00:00:00Z"}, "rated_at"),
        ({"movie_id": 2, "rating": 4, "rated_at": "1960-01-01T00:00:00Z"}, "rated_at"),
        ({"movie_id": 999, "rating": 4}, "movie_id"),
    ]:
        bad = api.post("/api/ratings", body)
        assert bad.status_code == 400, body
        assert error_of(bad)["field"] == field
    assert row_counts(api.system) == before
    # A rating dated before the one stored is not stored, and the answer says so.
    older = api.post("/api/ratings", {"movie_id": 2, "rating": 1, "rated_at": "2026-10-01T08:00:00Z"})
    assert older.status_code == 409 and error_of(older)["field"] == "rated_at"
    assert (
        "later than this rating (2026-10-01 08:00:00): the later rating is kept" in error_of(older)["message"]
    )
    assert row_counts(api.system) == before and rows(api.system, ratings)[0].rating == 4.5


def test_recommendations_come_from_the_model_and_are_recorded(api):
    catalogue(api.system)
    for user in range(20, 30):
        for movie in range(1, 13):
            if (user + movie) % 3 == 0:
                api.system.record_rating(user, movie, 5.0 if movie % 2 else 2.0)
    r = api.get("/api/recommendations?k=4")
    assert r.status_code == 200
    body = r.get_json()
    assert len(body["items"]) == 4
    assert [i["rank"] for i in body["items"]] == [1, 2, 3, 4]
    shown = rows(api.system, impressions, order_by=impressions.c.rank)
    assert [i.movie_id for i in shown] == [i["movie_id"] for i in body["items"]]
    assert {i.recommendation_set_id for i in shown} == {body["recommendation_set_id"]}
    assert all(i.user_id == api.user for i in shown)

    before = row_counts(api.system)
    head = api.app.test_client().head("/api/recommendations?k=4", headers=api.headers())
    assert head.status_code == 200
    assert row_counts(api.system) == before  # a HEAD records no list

    for query in ("k=0", "k=101", "k=x", "n=3"):
        before = row_counts(api.system)
        assert api.get(f"/api/recommendations?{query}").status_code == 400
        assert row_counts(api.system) == before


# ---------------------------------------------------------------- operators


def test_adjustments_can_be_listed_approved_and_rejected_by_an_admin(api):
    api.post(
        "/api/dislike",
        {"movie_id": 1, "movie_title": "A", "reason": "wrong_genre", "genres": ["Horror", "Gore"]},
    )
    listed = api.get("/api/adjustments", key="admin", user=None).get_json()
    assert (listed["count"], listed["total"], listed["total_capped"]) == (2, 2, False)
    first, second = sorted(a["adjustment_id"] for a in listed["adjustments"])
    # A page smaller than what matches: "count" is the page, "total" all that match.
    page = api.get("/api/adjustments?limit=1", key="admin", user=None).get_json()
    assert (page["count"], page["total"], len(page["adjustments"])) == (1, 2, 1)
    one_genre = api.get("/api/adjustments?limit=1&feature=Gore", key="admin", user=None).get_json()
    assert (one_genre["count"], one_genre["total"]) == (1, 1)
    for typed in ("gore", "GORE"):  # in any case
        assert api.get(f"/api/adjustments?feature={typed}", key="admin", user=None).get_json()["total"] == 1
    assert api.get("/api/adjustments?feature=Genre", key="admin", user=None).get_json()["total"] == 2
    # A blank feature is no filter, as on the dashboard (it matched a feature named "").
    assert api.get("/api/adjustments?feature=%20%20", key="admin", user=None).get_json()["total"] == 2

    before = row_counts(api.system)
    denied = api.post(f"/api/adjustments/{first}/approve", key="service", user=None)
    assert denied.status_code == 403
    assert row_counts(api.system) == before

    ok = api.post(f"/api/adjustments/{first}/approve", {"magnitude": -0.3}, key="admin", user=None)
    assert ok.status_code == 200
    assert ok.get_json()["adjustment"]["status"] == "applied"
    row = rows(api.system, feature_adjustments, feature_adjustments.c.adjustment_id == first)[0]
    assert (row.status, row.magnitude, row.decided_by) == ("applied", -0.3, "api:ops")
    assert (
        count(
            api.system, audit_log, audit_log.c.action == "adjustment.approved", audit_log.c.actor == "api:ops"
        )
        == 1
    )

    twice = api.post(f"/api/adjustments/{first}/approve", key="admin", user=None)
    assert twice.status_code == 409

    rejected = api.post(f"/api/adjustments/{second}/reject", {"note": "keep horror"}, key="admin", user=None)
    assert rejected.status_code == 200
    # One shape for an adjustment, whichever decision: an approval adds what it changed.
    approved = ok.get_json()["adjustment"]
    assert set(rejected.get_json()["adjustment"]) <= set(approved)
    assert (approved["decided_by"], approved["magnitude"], approved["weight_after"]) == ("api:ops", -0.3, 0.7)
    row = rows(api.system, feature_adjustments, feature_adjustments.c.adjustment_id == second)[0]
    assert (row.status, row.note) == ("rejected", "keep horror")

    weights = {w.feature_value: w.adjustment_sum for w in rows(api.system, user_feature_weights)}
    assert api.post(f"/api/adjustments/{first}/revert", key="service", user=None).status_code == 403
    bogus = api.post(f"/api/adjustments/{first}/revert", {"magnitude": 5}, key="admin", user=None)
    assert bogus.status_code == 400 and "unknown field 'magnitude'" in error_of(bogus)["message"]
    reverted = api.post(f"/api/adjustments/{first}/revert", key="admin", user=None)
    assert reverted.status_code == 200 and reverted.get_json()["adjustment"]["status"] == "reverted"
    # As an approval answers: what the revert did to the weight (1 - 0.3 back to 1).
    answered = reverted.get_json()["adjustment"]
    assert (answered["weight_before"], answered["weight_after"]) == (pytest.approx(0.7), pytest.approx(1.0))
    feature = rows(api.system, feature_adjustments, feature_adjustments.c.adjustment_id == first)[0]
    after = {w.feature_value: w.adjustment_sum for w in rows(api.system, user_feature_weights)}
    assert after[feature.feature_value] == pytest.approx(weights[feature.feature_value] + 0.3)
    assert count(api.system, audit_log, audit_log.c.action == "adjustment.reverted") == 1
    assert api.post(f"/api/adjustments/{first}/revert", key="admin", user=None).status_code == 409
    assert (
        api.post(f"/api/adjustments/{second}/revert", key="admin", user=None).status_code == 409
    )  # rejected
    assert api.post("/api/adjustments/999999/revert", key="admin", user=None).status_code == 404

    bad = api.post(f"/api/adjustments/{second}/approve", {"magnitude": 5}, key="admin", user=None)
    assert bad.status_code == 400 and error_of(bad)["field"] == "magnitude"
    filtered = api.get("/api/adjustments?status=all&reason=wrong_genre", key="admin", user=None).get_json()
    assert filtered["count"] == 2
    assert api.get("/api/adjustments?status=maybe", key="admin", user=None).status_code == 400


def test_model_versions_can_be_listed_compared_and_activated(api):
    add_model_version(api.system, 1, active=True, accuracy=0.7)
    add_model_version(api.system, 2, accuracy=0.8)
    listed = api.get("/api/model-versions", key="admin", user=None).get_json()
    assert [v["version_id"] for v in listed["model_versions"]] == [2, 1]
    assert (
        api.get("/api/model-versions/2", key="admin", user=None).get_json()["model_version"]["accuracy"]
        == 0.8
    )
    assert api.get("/api/model-versions/9", key="admin", user=None).status_code == 404

    compared = api.get("/api/model-versions/compare?a=1&b=2", key="admin", user=None)
    assert compared.status_code == 200
    assert compared.get_json()["comparison"]["a"]["version_id"] == 1
    # Offline figures of two training runs: the answer says how far to read their difference.
    assert "their difference is indicative only" in compared.get_json()["comparison"]["offline_note"]
    missing = api.get("/api/model-versions/compare?a=1", key="admin", user=None)
    assert missing.status_code == 400 and error_of(missing)["field"] == "b"

    activated = api.post("/api/model-versions/2/activate", key="admin", user=None)
    assert activated.status_code == 200
    active = rows(api.system, model_versions, model_versions.c.active_slot == 1)
    assert [v.version_id for v in active] == [2]
    assert (
        count(api.system, audit_log, audit_log.c.action == "model.activated", audit_log.c.actor == "api:ops")
        == 1
    )
    assert api.post("/api/model-versions/9/activate", key="admin", user=None).status_code == 404

    # Activation as decided on what the caller saw: refused once another version became active.
    before = row_counts(api.system)
    stale = api.post("/api/model-versions/1/activate", {"expected_active": 1}, key="admin", user=None)
    assert stale.status_code == 409 and error_of(stale)["field"] == "expected_active"
    bad = api.post("/api/model-versions/1/activate", {"expected_active": "2"}, key="admin", user=None)
    assert bad.status_code == 400 and error_of(bad)["field"] == "expected_active"
    assert row_counts(api.system) == before
    rolled = api.post("/api/model-versions/1/activate", {"expected_active": 2}, key="admin", user=None)
    assert rolled.status_code == 200
    assert [v.version_id for v in rows(api.system, model_versions, model_versions.c.active_slot == 1)] == [1]


def test_retrain_can_be_requested_and_followed(api):
    r = api.post("/api/retrain-jobs", key="admin", user=None)
    assert r.status_code == 202
    job = r.get_json()["job"]
    assert job["status"] == "queued"
    again = api.post("/api/retrain-jobs", key="admin", user=None).get_json()["job"]
    assert again["job_id"] == job["job_id"]  # at most one queued job
    got = api.get(f"/api/retrain-jobs/{job['job_id']}", key="admin", user=None).get_json()["job"]
    assert (got["job_id"], got["requested_by"]) == (job["job_id"], "api:ops")
    jobs = api.get("/api/retrain-jobs?limit=5", key="admin", user=None).get_json()
    assert jobs["count"] == 1
    assert api.get("/api/retrain-jobs/77", key="admin", user=None).status_code == 404
    unexpected = api.post("/api/retrain-jobs", {"now": True}, key="admin", user=None)
    assert unexpected.status_code == 400 and error_of(unexpected)["field"] == "now"


# ---------------------------------------------------------------- idempotency


def test_a_retried_request_with_the_same_key_returns_the_first_response(api):
    headers = {"Idempotency-Key": "0b9e5a2c-retry-1"}
    first = api.post("/api/dislike", SPEC_DISLIKE, headers=headers)
    second = api.post("/api/dislike", SPEC_DISLIKE, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.get_json() == first.get_json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert count(api.system, user_dislikes) == 1
    assert count(api.system, idempotent_requests) == 1

    before = row_counts(api.system)
    reused = api.post("/api/dislike", {**SPEC_DISLIKE, "movie_id": 124}, headers=headers)
    assert reused.status_code == 409
    assert error_of(reused)["code"] == "idempotency_key_reused"
    assert row_counts(api.system) == before

    other_user = api.post("/api/dislike", SPEC_DISLIKE, headers=headers, user=8)
    assert other_user.status_code == 201  # keys are scoped to the caller and the user
    assert count(api.system, user_dislikes) == 2


def test_a_key_reused_through_another_credential_never_passes_off_another_films_dislike(api):
    _, second_key = create_api_key(api.system.engine, "recommender-2", "service", api.system.now())
    headers = {"Idempotency-Key": "shared-key"}
    first = api.post("/api/dislike", SPEC_DISLIKE, headers=headers)
    assert first.status_code == 201
    before = row_counts(api.system)
    # Another credential is another HTTP scope; the user's stored key still names film 123.
    other_film = api.post("/api/dislike", {**SPEC_DISLIKE, "movie_id": 124}, headers=headers, key=second_key)
    assert other_film.status_code == 409
    error = error_of(other_film)
    assert (error["code"], error["field"]) == ("idempotency_key_reused", "Idempotency-Key")
    assert "movie 123" in error["message"]
    assert row_counts(api.system) == before
    # The same dislike through it is the first one, not a new one.
    same = api.post("/api/dislike", SPEC_DISLIKE, headers=headers, key=second_key)
    assert same.status_code == 200 and same.get_json()["duplicate"] is True
    assert same.get_json()["dislike_id"] == first.get_json()["dislike_id"]
    assert count(api.system, user_dislikes) == 1


def test_a_success_whose_response_cannot_be_stored_is_still_a_success(api, monkeypatch, caplog):
    import feedback_core.api as api_module

    def cannot_store(*args, **kwargs):
        raise DatabaseUnavailableError("the database is unavailable; retry shortly")

    catalogue(api.system)
    monkeypatch.setattr(api_module, "complete_key", cannot_store)
    r = api.post("/api/recommendation-sets", {"items": [1, 2, 3]}, headers={"Idempotency-Key": "set-A"})
    assert r.status_code == 201  # it was recorded: the caller must not be told to retry
    assert count(api.system, recommendation_sets) == 1
    assert "could not store the response to an Idempotency-Key request" in caplog.text


def test_a_stale_claim_is_taken_over_by_a_corrected_request(api, clock, monkeypatch):
    import feedback_core.api as api_module

    def cannot_release(*args, **kwargs):
        raise DatabaseUnavailableError("the database is unavailable; retry shortly")

    # A failed request whose claim could not be released (as a worker killed mid-request leaves it).
    monkeypatch.setattr(api_module, "release_key", cannot_release)
    bad = api.post("/api/ratings", {"movie_id": 1, "rating": 9}, headers={"Idempotency-Key": "rate-B"})
    monkeypatch.undo()
    assert bad.status_code == 400
    catalogue(api.system)
    fixed = {"movie_id": 1, "rating": 4}
    early = api.post("/api/ratings", fixed, headers={"Idempotency-Key": "rate-B"})
    assert early.status_code == 409  # the failed attempt's claim, left behind, is not stale yet
    clock.advance(minutes=2)
    late = api.post("/api/ratings", fixed, headers={"Idempotency-Key": "rate-B"})
    assert late.status_code in (200, 201), late.get_json()
    assert count(api.system, ratings) == 1


def test_an_oversized_body_on_an_idempotent_delete_is_a_documented_413(api):
    # The key's request is told apart by its body, so the body is read and capped there too;
    # api.delete checks the answer against the OpenAPI document.
    too_big = b"x" * (ApiConfig().max_body_bytes + 1)
    r = api.delete("/api/dislike/5", headers={"Idempotency-Key": "d1"}, data=too_big)
    assert r.status_code == 413 and error_of(r)["code"] == "payload_too_large"


def test_a_failed_request_does_not_use_up_its_key(api):
    headers = {"Idempotency-Key": "retry-after-fix"}
    before = row_counts(api.system)
    bad = api.post("/api/dislike", {"movie_id": 1}, headers=headers)
    assert bad.status_code == 400
    assert row_counts(api.system) == before
    fixed = api.post("/api/dislike", {"movie_id": 1, "movie_title": "A"}, headers=headers)
    assert fixed.status_code == 201


def test_a_shown_list_retried_with_its_key_is_stored_once(api):
    catalogue(api.system)
    headers = {"Idempotency-Key": "set-1"}
    a = api.post("/api/recommendation-sets", {"items": [1, 2, 3]}, headers=headers)
    b = api.post("/api/recommendation-sets", {"items": [1, 2, 3]}, headers=headers)
    assert a.get_json()["recommendation_set_id"] == b.get_json()["recommendation_set_id"]
    assert count(api.system, recommendation_sets) == 1 and count(api.system, impressions) == 3


def test_of_retries_taking_over_a_stale_claim_at_once_one_runs(api, clock):
    import threading

    catalogue(api.system)
    for round_ in range(6):  # a race: several rounds, so that the old code lost it every time
        headers = {"Idempotency-Key": f"set-race-{round_}"}
        assert api.post("/api/recommendation-sets", {"items": [1, 2]}, headers=headers).status_code == 201
        with api.system.engine.begin() as conn:  # as a worker that died before its commit leaves it
            conn.execute(
                update(idempotent_requests)
                .where(idempotent_requests.c.idempotency_key == headers["Idempotency-Key"])
                .values(status_code=0, created_at=clock() - timedelta(minutes=2))
            )
        before = count(api.system, recommendation_sets)
        start, answers = threading.Barrier(12), []

        def retry(headers=headers, start=start, answers=answers) -> None:
            client = api.app.test_client()
            start.wait()
            r = client.post(
                "/api/recommendation-sets",
                json={"items": [1, 2]},
                headers={**api.headers("service", "default"), **headers},
            )
            answers.append((r.status_code, r.headers.get("Idempotent-Replayed") == "true"))

        threads = [threading.Thread(target=retry) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        # One runs; the others are told it is in progress, or (once it answered) get its answer.
        assert answers.count((201, False)) == 1, (round_, answers)
        assert set(answers) <= {(201, False), (201, True), (409, False)}
        assert count(api.system, recommendation_sets) == before + 1


def test_a_key_still_in_progress_is_409_until_it_goes_stale(api, clock):
    r = api.post("/api/dislike", {"movie_id": 1, "movie_title": "A"}, headers={"Idempotency-Key": "k1"})
    scope = rows(api.system, idempotent_requests)[0].scope
    with api.system.engine.begin() as conn:
        fingerprint = conn.execute(select(idempotent_requests.c.body)).scalar()["fingerprint"]
        conn.execute(
            idempotent_requests.insert().values(
                scope=scope,
                idempotency_key="k2",
                status_code=0,
                body={"fingerprint": fingerprint},
                created_at=clock.moment,
            )
        )
    busy = api.post("/api/dislike", {"movie_id": 1, "movie_title": "A"}, headers={"Idempotency-Key": "k2"})
    assert busy.status_code == 409 and error_of(busy)["code"] == "request_in_progress"
    clock.advance(minutes=2)  # the first attempt died: its claim is taken over
    taken = api.post("/api/dislike", {"movie_id": 1, "movie_title": "A"}, headers={"Idempotency-Key": "k2"})
    assert taken.status_code in (200, 201)
    assert r.status_code == 201


@pytest.mark.parametrize("key", ["", " padded", "x" * 201, "tab\tkey", "ünï"])
def test_malformed_idempotency_keys_are_refused(api, key):
    before = row_counts(api.system)
    raw = key.encode("utf-8").decode("latin-1")  # headers travel as latin-1
    r = api.post("/api/dislike", {"movie_id": 1, "movie_title": "A"}, headers={"Idempotency-Key": raw})
    assert r.status_code == 400 and error_of(r)["field"] == "Idempotency-Key"
    assert row_counts(api.system) == before


# ---------------------------------------------------------------- errors in one place


def test_unknown_paths_and_methods_are_json(api):
    r = api.get("/api/nothing-here", check=False)
    assert r.status_code == 404 and error_of(r)["code"] == "not_found"
    r = api.call("PUT", "/api/dislike", check=False)
    assert r.status_code == 405 and error_of(r)["code"] == "method_not_allowed"


def test_an_unexpected_error_is_a_500_without_its_text(api, monkeypatch, caplog):
    def explode(*args, **kwargs):
        raise RuntimeError("password=hunter2 in a stack trace")

    monkeypatch.setattr(api.system, "get_user_dislikes", explode)
    r = api.get("/api/dislike-history", check=False)
    assert r.status_code == 500
    assert error_of(r) == {
        "code": "internal_error",
        "message": "an internal error occurred; it was logged",
        "field": None,
    }
    assert "hunter2" not in r.get_data(as_text=True)
    assert "RuntimeError" in caplog.text  # the operator still sees it in the log


def test_database_unavailable_is_a_503(api, monkeypatch):
    def down(*args, **kwargs):
        raise DatabaseUnavailableError("the database is unavailable; retry shortly")

    monkeypatch.setattr(api.system, "record_dislike", down)
    before = row_counts(api.system)
    r = api.post("/api/dislike", {"movie_id": 1, "movie_title": "A"})
    assert r.status_code == 503
    assert error_of(r)["code"] == "database_unavailable"
    assert r.headers["Retry-After"] == "5"
    assert row_counts(api.system) == before


def test_a_lost_unique_race_is_a_409_to_retry(api, monkeypatch):
    def race(*args, **kwargs):
        raise IntegrityError("INSERT INTO movies ...", {}, Exception("duplicate key value"))

    monkeypatch.setattr(api.system, "record_dislike", race)
    r = api.post("/api/dislike", {"movie_id": 1, "movie_title": "A"})
    assert r.status_code == 409
    assert error_of(r) == {
        "code": "conflict",
        "message": "the request conflicted with a concurrent one; retry it",
        "field": None,
    }


def test_an_unreachable_database_is_a_503_that_hides_the_password(caplog):
    system = FeedbackSystem.from_url("postgresql+psycopg://feedback:s3cret-pw@127.0.0.1:1/nowhere")
    app = create_app(system=system, config=ApiConfig(), flask_config={"TESTING": True})
    client = app.test_client()
    for response in (
        client.get("/healthz"),
        client.post(
            "/api/dislike", json={"movie_id": 1}, headers={"Authorization": "Bearer fbk_" + "a" * 43}
        ),
    ):
        assert response.status_code == 503
        assert response.get_json()["error"]["code"] == "database_unavailable"
        assert "s3cret-pw" not in response.get_data(as_text=True)
    assert "s3cret-pw" not in caplog.text
    system.close()


def test_healthz_needs_no_key_and_reports_a_missing_schema(api, tmp_path):
    assert api.app.test_client().get("/healthz").get_json() == {"status": "ok"}
    empty = FeedbackSystem.from_url(f"sqlite:///{tmp_path / 'empty.db'}")
    r = create_app(system=empty, config=ApiConfig()).test_client().get("/healthz")
    assert r.status_code == 503 and "feedback-core init" in r.get_json()["error"]["message"]
    empty.close()


# ---------------------------------------------------------------- debug mode and mounting


def test_debug_mode_is_refused_outside_development(system, monkeypatch):
    with pytest.raises(ConfigError, match="debug"):
        create_app(system=system, config=ApiConfig(environment="production"), flask_config={"DEBUG": True})
    monkeypatch.setenv("FLASK_DEBUG", "1")
    with pytest.raises(ConfigError, match="debug"):
        create_app(system=system, config=ApiConfig(environment="production"))
    assert create_app(system=system, config=ApiConfig(environment="development")).debug is True
    monkeypatch.delenv("FLASK_DEBUG")
    app = create_app(system=system, config=ApiConfig(environment="production"))
    with pytest.raises(ConfigError, match="debug"):
        app.run(debug=True)  # refused before any server starts


def test_run_debug_true_is_refused_naming_it(system):
    app = create_app(system=system, config=ApiConfig(environment="production"))
    with pytest.raises(ConfigError) as refused:
        app.run(debug=True)
    assert refused.value.message.startswith(
        "refusing to start with Flask debug mode (run(debug=True)) outside development: call run() without "
        "debug=True, or set FEEDBACK_ENV=development"
    )


@pytest.mark.parametrize(
    ("value", "environment"),
    [("", "production"), (" production ", "production"), ("Development", "development")],
)
def test_feedback_env_takes_production_or_development(value, environment):
    assert ApiConfig.from_env({"FEEDBACK_ENV": value}).environment == environment


@pytest.mark.parametrize("value", ["prod", "dev", "test"])
def test_an_unknown_feedback_env_is_refused_naming_the_values(value):
    with pytest.raises(ConfigError) as refused:
        ApiConfig.from_env({"FEEDBACK_ENV": value})
    assert refused.value.message == f"FEEDBACK_ENV must be one of production, development, got {value!r}"


def test_a_database_that_refuses_the_api_is_a_503_that_says_so_and_logs_why(tmp_path, caplog):
    from feedback_core import FeedbackSystem

    not_a_database = tmp_path / "notes.db"
    not_a_database.write_text("these are notes, not a database\n" * 200)
    app = create_app(system=FeedbackSystem.from_url(f"sqlite:///{not_a_database}"))
    client = app.test_client()
    for r in (
        client.get("/healthz"),
        client.get(
            "/api/dislike-history", headers={"Authorization": "Bearer fbk_" + "x" * 40, "X-User-ID": "1"}
        ),
    ):
        assert r.status_code == 503
        error = r.get_json()["error"]
        assert error["code"] == "database_unavailable"
        assert (
            "its database URL needs correcting" in error["message"]
            and "retrying will not help" in error["message"]
        )
        assert "busy" not in error["message"] and "Retry-After" not in r.headers
    assert "the file is not an SQLite database" in caplog.text  # the reason, for the operator


def test_a_dislike_says_when_the_catalogues_details_were_used_instead_of_those_sent(api):
    first = api.post("/api/dislike", {"movie_id": 124, "movie_title": "Movie Title", "genres": ["Action"]})
    assert first.status_code == 201 and "catalogue_note" not in first.get_json()
    same = api.post("/api/dislike", {"movie_id": 124, "movie_title": "Movie Title"}, user=8)
    assert "catalogue_note" not in same.get_json()  # nothing sent that differs
    renamed = api.post(
        "/api/dislike",
        {"movie_id": 124, "movie_title": "Renamed Title", "genres": ["Horror"], "reason": "wrong_genre"},
        user=9,
    )
    body = renamed.get_json()
    assert body["feature_adjustments"]["genre_adjustments"] == {"Action": -0.15}
    assert body["catalogue_note"] == (
        "movie 124 is in the catalogue as 'Movie Title': its catalogue entry was used, not the movie_title, "
        "genres sent (the catalogue changes through import-catalog or add_movies)"
    )


def test_a_host_app_reading_numbers_as_decimals_still_gets_replays(system):
    from decimal import Decimal

    from flask.json.provider import DefaultJSONProvider

    from feedback_core.apikeys import create_api_key

    class Decimals(DefaultJSONProvider):
        def loads(self, s, **kwargs):
            return json.loads(s, parse_float=Decimal, **kwargs)

    host = Flask("host")
    host.json = Decimals(host)
    register_feedback_routes(host, system=system, config=ApiConfig(key_cache_seconds=0))
    _, key = create_api_key(system.engine, "svc", "service", system.now())
    headers = {"Authorization": f"Bearer {key}", "X-User-ID": "3", "Idempotency-Key": "k-dec"}
    body = {"movie_id": 1, "movie_title": "A", "predicted_score": 0.75}
    client = host.test_client()
    first = client.post("/api/dislike", json=body, headers=headers)
    again = client.post("/api/dislike", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true" and again.data == first.data


def test_a_keyed_request_that_fails_after_a_first_commit_can_be_retried(system, clock):
    from feedback_core.db import write_transaction
    from feedback_core.idempotency import DONE, claim_key, mark_done, release_key

    engine, scope = system.engine, "key:1|user:3|POST /api/retrain-jobs"
    assert claim_key(engine, scope, "r-1", "f", clock()) is None
    with write_transaction(engine) as conn:  # a first transaction of the request commits
        mark_done(conn, scope, "r-1")
    assert rows(system, idempotent_requests)[0].status_code == DONE
    # Then the request fails and answers so (a 503 invites a retry): its claim goes.
    release_key(engine, scope, "r-1")
    assert rows(system, idempotent_requests) == []
    assert claim_key(engine, scope, "r-1", "f", clock()) is None  # the retry runs


def test_a_host_app_keeps_its_own_json_and_the_api_keeps_its_formats(system):
    from feedback_core.apikeys import create_api_key

    host = Flask("host")
    moment = datetime(2025, 11, 30, 18, 0)

    @host.get("/own")
    def own():
        return jsonify({"zeta": 1, "alpha": moment})

    before = Flask("untouched")
    before.add_url_rule("/own", view_func=own)
    expected = before.test_client().get("/own").data
    assert expected == b'{"alpha":"Sun, 30 Nov 2025 18:00:00 GMT","zeta":1}\n'  # Flask's own
    provider = host.json
    register_feedback_routes(host, system=system, config=ApiConfig(key_cache_seconds=0))
    assert host.json is provider
    client = host.test_client()
    assert client.get("/own").data == expected
    _, key = create_api_key(system.engine, "svc", "service", system.now())
    headers = {"Authorization": f"Bearer {key}", "X-User-ID": "3", "Idempotency-Key": "k-1"}
    body = {"movie_id": 1, "movie_title": "A", "reason": "other"}
    first = client.post("/api/dislike", json=body, headers=headers)
    again = client.post("/api/dislike", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json() == first.get_json()
    history = client.get("/api/dislike-history", headers=headers).get_json()
    # The API's own formats: its timestamps, its keys in their order.
    stamp = history["dislikes"][0]["created_at"]
    assert datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S")
    assert list(first.get_json())[:2] == ["success", "dislike_id"]
    assert client.get("/api/missing").get_json()["success"] is False


def test_register_feedback_routes_mounts_the_api_on_a_host_app(system):
    from feedback_core.apikeys import create_api_key

    host = Flask("host")

    @host.get("/")
    def index():
        return "<h1>host</h1>"

    register_feedback_routes(host, system=system, config=ApiConfig(key_cache_seconds=0))
    _, key = create_api_key(system.engine, "svc", "service", system.now())
    client = host.test_client()
    assert client.get("/").data == b"<h1>host</h1>"
    assert client.get("/missing").mimetype == "text/html"  # the host keeps its own pages
    assert client.get("/api/missing").get_json()["error"]["code"] == "not_found"
    r = client.post(
        "/api/dislike",
        data=json.dumps({"movie_id": 1, "movie_title": "A"}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}", "X-User-ID": "3"},
    )
    assert r.status_code == 201
    assert count(system, user_dislikes, user_dislikes.c.user_id == 3) == 1
