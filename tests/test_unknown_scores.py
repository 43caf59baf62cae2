"""Predicted scores nobody gave: a list posted as bare ids, a dislike sent without a score of a
film on no scored list. Such a score is unknown, not 0: it counts in no mean error, no
histogram bucket, no extreme, and is answered as null; a list's own score is what a dislike of
it records. On SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from helpers import add_movies, rows
from reliability_support import recount_differences
from test_import import write

from feedback_core import queries
from feedback_core.schema import daily_score_histogram, impressions, negative_examples, user_dislikes


@pytest.fixture
def films(system):
    add_movies(system, range(1, 9), genres=["Drama"])
    return system


def known(system) -> dict[int, tuple[float, bool]]:
    return {r.movie_id: (r.predicted_score, r.score_known) for r in rows(system, user_dislikes)}


def test_a_list_of_bare_ids_shows_its_items_without_a_score(films):
    set_id = films.record_recommendation_set(7, [1, {"movie_id": 2, "predicted_score": 0.8}, {"movie_id": 3}])
    stored = {r.movie_id: (r.predicted_score, r.score_known) for r in rows(films, impressions)}
    assert stored == {1: (0.0, False), 2: (0.8, True), 3: (0.0, False)}
    items = films.get_recommendation_set(set_id)["items"]
    assert [(i["movie_id"], i["predicted_score"]) for i in items] == [(1, None), (2, 0.8), (3, None)]


def test_a_dislike_records_its_lists_score_else_the_one_sent_else_none(films):
    set_id = films.record_recommendation_set(7, [1, {"movie_id": 2, "predicted_score": 0.8}, 3, 4])
    # Of an item shown without a score: the score sent, or unknown.
    sent = films.record_dislike(user_id=7, movie_id=1, recommendation_set_id=set_id, predicted_score=0.6)
    unknown = films.record_dislike(user_id=7, movie_id=3, recommendation_set_id=set_id)
    # Of an item shown with one: the list's, whatever is sent (and the answer says so).
    differs = films.record_dislike(user_id=7, movie_id=2, recommendation_set_id=set_id, predicted_score=0.3)
    assert (sent["training_impact"]["error_recorded"], "score_note" in sent) == (0.6, False)
    assert unknown["training_impact"]["error_recorded"] is None and "score_note" not in unknown
    assert differs["training_impact"]["error_recorded"] == 0.8
    assert differs["score_note"] == (
        f"recommendation_set_id {set_id} showed movie 2 with predicted_score 0.8: that score is recorded, "
        "not the 0.3 sent"
    )
    same = films.record_dislike(user_id=7, movie_id=4, predicted_score=0.25)  # no list: the one sent
    assert "score_note" not in same
    assert known(films) == {1: (0.6, True), 3: (0.0, False), 2: (0.8, True), 4: (0.25, True)}
    examples = {r.movie_id: r.error for r in rows(films, negative_examples)}
    assert examples == {1: 0.6, 3: 0.0, 2: 0.8, 4: 0.25}  # stored as 0, never read as a score
    history = {d["movie_id"]: d["predicted_score"] for d in films.get_user_dislikes(7)}
    assert history == {1: 0.6, 3: None, 2: 0.8, 4: 0.25}
    example = films.apply_dislike_to_training_data(7, 3)
    assert (example["predicted_score"], example["error"]) == (None, None)
    again = films.record_dislike(user_id=7, movie_id=3, recommendation_set_id=set_id)  # a double click
    assert again["duplicate"] and again["training_impact"]["error_recorded"] is None


def test_unknown_scores_count_in_no_mean_bucket_or_extreme(films, clock):
    day = clock().date()
    films.save_dislike(7, 1, predicted_score=0.9)
    films.save_dislike(7, 2, predicted_score=0.5)
    films.save_dislike(8, 3)  # unknown: before, a perfect prediction of 0
    films.save_dislike(8, 4)
    metrics = films.get_model_feedback_metrics()["metrics"]
    assert metrics["total_dislikes"] == 4 and metrics["scored_dislikes"] == 2
    assert metrics["avg_prediction_error"] == pytest.approx(0.7)  # not 0.35
    assert (metrics["max_error"], metrics["min_error"]) == (0.9, 0.5)  # not 0.0
    errors = queries.list_error_by_version(films, day, day)
    assert [(r.dislikes, r.scored, r.mean_prediction_error) for r in errors.itertuples()] == [
        (4, 2, pytest.approx(0.7))
    ]
    histogram = queries.list_score_histogram(films, day, day)
    assert {r.bucket: r.dislikes for r in histogram.itertuples()} == {9: 1, 5: 1}
    overview = queries.get_overview(films, day, day)["current"]
    assert (overview["dislikes"], overview["scored_dislikes"]) == (4, 2)
    assert overview["mean_predicted_score"] == pytest.approx(0.7)
    (other,) = queries.list_reason_counts(films, day, day).itertuples()
    assert other.mean_predicted_score == pytest.approx(0.7)
    # A person whose only dislikes have no known score has no mean: not 0.
    unknown = films.get_dislike_pattern_analysis(8)["recent_trend"]
    assert (unknown["total_dislikes"], unknown["scored_dislikes"], unknown["avg_predicted_score"]) == (
        2,
        0,
        None,
    )
    known = films.get_dislike_pattern_analysis(7)["recent_trend"]
    assert (known["scored_dislikes"], known["avg_predicted_score"]) == (2, pytest.approx(0.7))
    assert recount_differences(films.engine) == []


def test_a_window_of_only_unknown_scores_has_no_mean(films, clock):
    films.save_dislike(8, 3)
    day = clock().date()
    (row,) = queries.list_error_by_version(films, day, day).itertuples()
    assert (row.dislikes, row.scored) == (
        1,
        0,
    ) and row.mean_prediction_error != row.mean_prediction_error  # NaN
    assert queries.list_score_histogram(films, day, day).empty
    assert queries.get_overview(films, day, day)["current"]["mean_predicted_score"] is None
    metrics = films.get_model_feedback_metrics()["metrics"]
    assert (metrics["avg_prediction_error"], metrics["max_error"], metrics["min_error"]) == (None, None, None)


def test_retracting_a_dislike_of_unknown_score_leaves_the_known_ones_counted(films, clock):
    kept = films.save_dislike(7, 1, predicted_score=0.9)
    gone = films.save_dislike(7, 3)
    films.retract_dislike(gone, 7)
    assert recount_differences(films.engine) == []
    day = clock().date()
    (row,) = queries.list_error_by_version(films, day, day).itertuples()
    assert (row.dislikes, row.scored, row.mean_prediction_error) == (1, 1, pytest.approx(0.9))
    films.retract_dislike(kept, 7)
    assert recount_differences(films.engine) == []
    assert queries.list_error_by_version(films, day, day).empty


def test_imports_know_unknown_scores_as_live_recording_does(films, tmp_path):
    header = "recommendation_set_id,user_id,movie_id,rank,predicted_score,model_version,shown_at\n"
    shown = header + "500,11,1,1,,,2026-10-01T10:00:00Z\n500,11,2,2,0.7,,2026-10-01T10:00:00Z\n"
    path = write(tmp_path, "impressions.csv", shown)
    assert films.import_file(path, "impressions").imported == 2
    again = films.import_file(path, "impressions")  # a rerun finds the same items: no conflict
    assert (again.already_present, again.rejected) == (2, 0)
    stored = {r.movie_id: (r.predicted_score, r.score_known) for r in rows(films, impressions)}
    assert stored == {1: (0.0, False), 2: (0.7, True)}
    changed = write(tmp_path, "changed.csv", header + "500,11,1,1,0.4,,2026-10-01T10:00:00Z\n")
    summary = films.import_file(changed, "impressions", on_error="skip")
    (error,) = summary.errors
    assert "imported at rank 1 with no predicted_score; this row says rank 1 with predicted_score 0.4" in (
        error.message
    )
    dislikes = write(
        tmp_path,
        "dislikes.csv",
        "user_id,movie_id,recommendation_set_id,predicted_score,reason,feedback_text,created_at\n"
        "11,1,500,,other,,2026-10-01T10:05:00Z\n"  # shown without a score, none sent: unknown
        "11,2,500,0.2,other,,2026-10-01T10:06:00Z\n"  # the list's 0.7 wins
        "12,3,,,other,,2026-10-01T11:00:00Z\n"  # no list, no score: unknown
        "12,4,,0.35,other,,2026-10-01T11:00:00Z\n",
    )
    assert films.import_file(dislikes, "dislikes").imported == 4
    assert known(films) == {1: (0.0, False), 2: (0.7, True), 3: (0.0, False), 4: (0.35, True)}
    assert recount_differences(films.engine) == []
    day = date(2026, 10, 1)
    histogram = queries.list_score_histogram(films, day, day + timedelta(days=1))
    assert sorted(histogram["bucket"]) == [3, 7]
    with films.engine.connect() as conn:
        assert sum(r.dislikes for r in conn.execute(daily_score_histogram.select())) == 2


def test_the_api_takes_and_answers_null_scores(films):
    from api_support import make_api

    api = make_api(films)
    posted = api.post("/api/recommendation-sets", {"items": [1, {"movie_id": 2, "predicted_score": None}]})
    assert posted.status_code == 201
    set_id = posted.get_json()["recommendation_set_id"]
    items = api.get(f"/api/recommendation-sets/{set_id}").get_json()["items"]
    assert [i["predicted_score"] for i in items] == [None, None]
    r = api.post("/api/dislike", {"movie_id": 1, "recommendation_set_id": set_id, "predicted_score": None})
    assert r.status_code == 201 and r.get_json()["training_impact"]["error_recorded"] is None
    scored = api.post("/api/recommendation-sets", {"items": [{"movie_id": 5, "predicted_score": 0.9}]})
    other = scored.get_json()["recommendation_set_id"]
    r = api.post("/api/dislike", {"movie_id": 5, "recommendation_set_id": other, "predicted_score": 0.1})
    assert r.get_json()["training_impact"]["error_recorded"] == 0.9 and "0.9" in r.get_json()["score_note"]
    metrics = api.get("/api/feedback-metrics").get_json()["metrics"]
    assert (metrics["scored_dislikes"], metrics["avg_prediction_error"]) == (1, 0.9)


def test_an_import_counts_the_scores_its_lists_replaced_and_a_csv_may_leave_scores_out(
    films, tmp_path, capsys
):
    from feedback_core.cli import main

    at = ",2026-10-01T00:00:00Z\n"
    shown = write(
        tmp_path,
        "shown.csv",
        "recommendation_set_id,user_id,movie_id,rank,shown_at\n700,11,1,1" + at + "700,11,2,2" + at,
    )
    assert films.import_file(shown, "impressions").imported == 2  # no score column: shown without one
    scored = write(
        tmp_path,
        "scored.csv",
        "recommendation_set_id,user_id,movie_id,rank,predicted_score,shown_at\n701,11,3,1,0.7"
        + at
        + "701,11,4,2,0.6"
        + at,
    )
    assert films.import_file(scored, "impressions").imported == 2
    header = "user_id,movie_id,recommendation_set_id,predicted_score,created_at\n"
    first = write(
        tmp_path,
        "first.csv",
        header + "11,1,700,0.4,2026-10-01T00:05:00Z\n11,3,701,0.2,2026-10-01T00:05:00Z\n",
    )
    summary = films.import_file(first, "dislikes")
    assert (summary.imported, summary.scores_from_lists) == (2, 1)  # 0.2 sent, 0.7 shown
    assert summary.as_dict()["scores_from_lists"] == 1
    # The command says so.
    second = write(tmp_path, "second.csv", header + "11,4,701,0.1,2026-10-01T00:05:00Z\n")
    url = films.engine.url.render_as_string(hide_password=False)
    assert main(["import", str(second), "--kind", "dislikes", "--db", url]) == 0
    assert (
        "note: 1 dislike(s) gave a predicted_score other than the one their list showed"
        in capsys.readouterr().err
    )
    assert known(films) == {1: (0.4, True), 3: (0.7, True), 4: (0.6, True)}


def test_the_gap_to_all_shown_leaves_out_dislikes_sent_without_a_list(films, clock):
    # The prior model showed 20 items at 0.2, one was disliked; four came without a list at
    # 0.95: their scores are the caller's, not the lists', and made a confident miss of nothing.
    add_movies(films, range(9, 29), genres=["Drama"])
    set_id = films.record_recommendation_set(
        7, [{"movie_id": m, "predicted_score": 0.2} for m in range(9, 29)]
    )
    films.save_dislike(7, 9, recommendation_set_id=set_id)
    for movie in range(1, 5):
        films.save_dislike(8, movie, predicted_score=0.95)
    day = clock().date()
    (row,) = queries.list_error_by_version(films, day, day).itertuples()
    assert (row.dislikes, row.mean_prediction_error) == (5, pytest.approx(0.8))
    assert (row.listed_scored, row.listed_mean_error, row.shown_mean_score) == (
        1,
        pytest.approx(0.2),
        pytest.approx(0.2),
    )
