"""``feedback-core import``: movies, ratings, impressions and dislikes from CSV or JSON lines.

Every test runs on SQLite and PostgreSQL. Imported dislikes are compared with the same dislikes
recorded live (through ``record_dislike``) in another database: same examples, proposals,
exclusions and aggregates.
"""

from __future__ import annotations

import gc
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
from conftest import row_counts
from helpers import count, rows
from reliability_support import recount_differences
from sqlalchemy import func, select

from feedback_core import FeedbackSystem, Settings, importing
from feedback_core.cli import main
from feedback_core.db import make_engine, upgrade_database
from feedback_core.schema import (
    daily_dislikes,
    daily_impressions,
    daily_reason_genre,
    daily_score_histogram,
    dislike_patterns,
    feature_adjustments,
    impressions,
    movie_dislike_stats,
    movie_exclusions,
    movies,
    negative_examples,
    ratings,
    recommendation_sets,
    retrain_jobs,
    user_dislikes,
)

ROOT = Path(__file__).resolve().parent.parent

MOVIES_CSV = (
    "movie_id,title,genres,cast,franchise,year\n"
    "1,Alien,Horror|Sci-Fi,Sigourney Weaver|Tom Skerritt,Alien,1979\n"
    "2,Aliens,Action|Sci-Fi,Sigourney Weaver|Michael Biehn,Alien,1986\n"
    '3,"Crouching Tiger, Hidden Dragon",Action|Drama,Chow Yun-fat,,2000\n'
    "4,Heat,Crime|Drama,Al Pacino|Robert De Niro,,1995\n"
    "5,Amélie,Comedy|Romance,Audrey Tautou,,2001\n"
    "6,Up,Animation|Family,Ed Asner,,2009\n"
)
IMPRESSIONS_HEADER = "recommendation_set_id,user_id,movie_id,rank,predicted_score,model_version,shown_at\n"
IMPRESSIONS_CSV = IMPRESSIONS_HEADER + (
    "900,11,1,1,0.91,,2026-10-01T10:00:00Z\n"
    "900,11,2,2,0.85,,2026-10-01T10:00:00Z\n"
    "900,11,3,3,0.40,,2026-10-01T10:00:00Z\n"
    "901,12,4,1,0.77,,2026-10-02T09:30:00+02:00\n"
    "901,12,5,2,0.66,,2026-10-02T09:30:00+02:00\n"
    "902,11,6,1,0.55,,2026-10-03 20:00:00\n"
    "902,11,4,2,0.52,,2026-10-03 20:00:00\n"
)
DISLIKES_HEADER = "user_id,movie_id,recommendation_set_id,predicted_score,reason,feedback_text,created_at\n"
DISLIKES_CSV = DISLIKES_HEADER + (
    "11,1,900,0.91,wrong_genre,too scary,2026-10-01T10:05:00Z\n"
    "11,2,900,0.85,already_watched,,2026-10-01T10:06:00Z\n"
    '12,4,901,0.77,poor_quality,"long, slow",2026-10-02T08:00:00Z\n'
    "12,5,,0.30,not_interested,,2026-10-04T12:00:00Z\n"
    "11,6,902,0.55,irrelevant,,2026-10-03T20:10:00Z\n"
    "13,3,,0.10,other,<b>hi</b>,2026-10-05T07:00:00Z\n"
)
# The same dislikes, as the live path records them: (user, movie, set, score, reason, text, at)
LIVE_DISLIKES = [
    (11, 1, 900, 0.91, "wrong_genre", "too scary", datetime(2026, 10, 1, 10, 5)),
    (11, 2, 900, 0.85, "already_watched", "", datetime(2026, 10, 1, 10, 6)),
    (12, 4, 901, 0.77, "poor_quality", "long, slow", datetime(2026, 10, 2, 8, 0)),
    (12, 5, None, 0.30, "not_interested", "", datetime(2026, 10, 4, 12, 0)),
    (11, 6, 902, 0.55, "irrelevant", "", datetime(2026, 10, 3, 20, 10)),
    (13, 3, None, 0.10, "other", "<b>hi</b>", datetime(2026, 10, 5, 7, 0)),
]


def write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def load_world(system, tmp_path) -> None:
    for kind, content in (("movies", MOVIES_CSV), ("impressions", IMPRESSIONS_CSV)):
        summary = system.import_file(write(tmp_path, f"{kind}.csv", content), kind)
        assert not summary.rejected and not summary.aborted, summary.as_dict()


def snapshot(engine) -> dict:
    """What a dislike leaves behind, keyed by content rather than by generated ids."""
    with engine.connect() as conn:
        dislikes = {r.dislike_id: (r.user_id, r.movie_id) for r in conn.execute(select(user_dislikes))}
        shot = {
            "dislikes": sorted(
                (
                    r.user_id,
                    r.movie_id,
                    r.movie_title,
                    r.predicted_score,
                    r.reason,
                    r.feedback_text,
                    tuple(r.genres),
                    tuple(r.cast),
                    r.franchise,
                    r.created_at,
                    r.recommendation_set_id is not None,
                )
                for r in conn.execute(select(user_dislikes))
            ),
            "examples": sorted(
                (dislikes[r.dislike_id], r.weight, r.error, r.status, r.created_at)
                for r in conn.execute(select(negative_examples))
            ),
            "proposals": sorted(
                (
                    dislikes[r.dislike_id],
                    r.feature_type,
                    r.feature_value,
                    r.proposed_magnitude,
                    r.status,
                    r.reason,
                )
                for r in conn.execute(select(feature_adjustments))
            ),
            "exclusions": sorted(
                (r.user_id, r.movie_id, dislikes[r.dislike_id])
                for r in conn.execute(select(movie_exclusions))
            ),
        }
        for table in (
            dislike_patterns,
            daily_dislikes,
            daily_reason_genre,
            daily_score_histogram,
            movie_dislike_stats,
        ):
            shot[table.name] = sorted(
                tuple(round(v, 9) if isinstance(v, float) else v for v in row)
                for row in conn.execute(select(table))
            )
    return shot


# ---------------------------------------------------------------- what an import stores


def test_imported_dislikes_equal_the_same_dislikes_recorded_live(system, tmp_path):
    load_world(system, tmp_path)
    summary = system.import_file(write(tmp_path, "dislikes.csv", DISLIKES_CSV), "dislikes")
    assert (summary.rows_read, summary.imported, summary.rejected, summary.aborted) == (6, 6, 0, False)

    live_url = f"sqlite:///{tmp_path / 'live.db'}"
    live = FeedbackSystem.from_settings(Settings(database_url=live_url))
    live.init_feedback_tables()
    live.import_file(tmp_path / "movies.csv", "movies")
    live.import_file(tmp_path / "impressions.csv", "impressions")
    set_ids = {r.external_id: r.recommendation_set_id for r in rows(live, recommendation_sets)}
    for user, movie, set_ext, score, reason, text, at in LIVE_DISLIKES:
        live.record_dislike(
            created_at=at,
            user_id=user,
            movie_id=movie,
            recommendation_set_id=set_ids.get(set_ext),
            predicted_score=score,
            reason=reason,
            feedback_text=text,
        )
    imported, recorded = snapshot(system.engine), snapshot(live.engine)
    live.close()
    assert imported["dislikes"] and imported["proposals"] and imported["exclusions"]
    for part in recorded:
        assert imported[part] == recorded[part], part
    assert recount_differences(system.engine) == []


def test_a_dislike_without_a_score_takes_its_lists_and_none_comes_before_its_list(system, tmp_path):
    load_world(system, tmp_path)
    content = DISLIKES_HEADER + (
        "11,3,900,,wrong_genre,,2026-10-01T10:05:00Z\n"  # 2: no score: list 900 showed it at 0.40
        "12,5,,,other,,2026-10-04T12:00:00Z\n"  # 3: no score, no list: 0
        "11,4,902,,other,,2026-10-03T19:59:00Z\n"  # 4: a minute before list 902 was shown
        "11,6,902,0.3,other,,2026-10-03T20:00:00Z\n"  # 5: a score of its own: the list's 0.55 wins
    )
    summary = system.import_file(write(tmp_path, "d.csv", content), "dislikes", on_error="skip")
    assert (summary.imported, summary.rejected) == (3, 1)
    (error,) = summary.errors
    assert (error.line, error.field) == (4, "created_at")
    assert "before recommendation_set_id 902 was shown (2026-10-03 20:00:00)" in error.message
    scores = {
        (d.user_id, d.movie_id): (d.predicted_score, d.score_known) for d in rows(system, user_dislikes)
    }
    # Without a list or a score of its own, the score is unknown: stored as 0, marked so.
    assert scores == {(11, 3): (0.40, True), (12, 5): (0.0, False), (11, 6): (0.55, True)}
    assert sorted(e.error for e in rows(system, negative_examples)) == [0.0, 0.40, 0.55]
    assert recount_differences(system.engine) == []


def test_a_score_of_minus_zero_is_imported_as_zero(system, tmp_path):
    load_world(system, tmp_path)
    shown = "recommendation_set_id,user_id,movie_id,rank,predicted_score,model_version,shown_at\n"
    shown += "950,13,1,1,-0.0,,2026-10-05T10:00:00Z\n"
    assert system.import_file(write(tmp_path, "i.csv", shown), "impressions").imported == 1
    content = DISLIKES_HEADER + "13,5,,-0.0,other,,2026-10-05T12:00:00Z\n"
    assert system.import_file(write(tmp_path, "d.csv", content), "dislikes").imported == 1
    # PostgreSQL keeps a negative zero as given: it would be answered as -0.0.
    signs = [math.copysign(1.0, r.predicted_score) for r in rows(system, user_dislikes)]
    signs += [math.copysign(1.0, r.error) for r in rows(system, negative_examples)]
    signs += [
        math.copysign(1.0, r.predicted_score) for r in rows(system, impressions, impressions.c.movie_id == 1)
    ]
    assert signs == [1.0] * len(signs)


def test_impressions_form_sets_with_their_counts_and_times(system, tmp_path):
    load_world(system, tmp_path)
    sets = {r.external_id: r for r in rows(system, recommendation_sets)}
    assert sorted(sets) == [900, 901, 902]
    assert (sets[900].user_id, sets[901].user_id, sets[902].user_id) == (11, 12, 11)
    assert sets[901].created_at == datetime(2026, 10, 2, 7, 30)  # +02:00 stored as UTC
    assert {r.source for r in sets.values()} == {"import"}
    items = rows(system, impressions, impressions.c.recommendation_set_id == sets[900].recommendation_set_id)
    assert sorted((r.movie_id, r.rank, r.predicted_score) for r in items) == [
        (1, 1, 0.91),
        (2, 2, 0.85),
        (3, 3, 0.40),
    ]
    daily = {(r.day.isoformat(), r.model_version_id): r.impressions for r in rows(system, daily_impressions)}
    # With the scores of what was shown, for the mean a version gave everything it showed.
    sums = {r.day.isoformat(): (round(r.score_sum, 6), r.scored) for r in rows(system, daily_impressions)}
    assert sums == {"2026-10-01": (2.16, 3), "2026-10-02": (1.43, 2), "2026-10-03": (1.07, 2)}
    assert daily == {("2026-10-01", 0): 3, ("2026-10-02", 0): 2, ("2026-10-03", 0): 2}


def test_ratings_import_keeps_the_rating_statistics(system, tmp_path):
    load_world(system, tmp_path)
    path = write(
        tmp_path,
        "ratings.csv",
        "user_id,movie_id,rating,rated_at\n1,1,5,2026-09-01T00:00:00Z\n2,1,3.5,\n1,4,4.5,2026-09-02\n1,1,2,\n",
    )
    summary = system.import_file(path, "ratings")
    # Of (1, 1) rated 5 in September and 2 now (no time: the import's), the later is kept.
    assert (summary.imported, summary.already_present, summary.rejected) == (3, 1, 0)
    got = {(r.user_id, r.movie_id): r.rating for r in rows(system, ratings)}
    assert got == {(1, 1): 2.0, (2, 1): 3.5, (1, 4): 4.5}
    alien = rows(system, movies, movies.c.movie_id == 1)[0]
    assert (alien.rating_count, alien.rating_sum, alien.like_count) == (2, 5.5, 0)
    again = system.import_file(path, "ratings")
    assert (again.imported, again.already_present, again.rejected) == (0, 4, 0) and count(
        system, ratings
    ) == 3
    alien = rows(system, movies, movies.c.movie_id == 1)[0]
    assert (alien.rating_count, alien.rating_sum) == (2, 5.5)


def test_json_lines_are_imported_like_csv(system, tmp_path):
    write(tmp_path, "m.csv", MOVIES_CSV)
    system.import_file(tmp_path / "m.csv", "movies")
    lines = [
        {
            "recommendation_set_id": 7,
            "user_id": 3,
            "movie_id": 1,
            "rank": 1,
            "predicted_score": 0.9,
            "shown_at": "2026-10-01T10:00:00Z",
        },
        {
            "recommendation_set_id": 7,
            "user_id": 3,
            "movie_id": 2,
            "rank": 2,
            "predicted_score": 0.8,
            "model_version": None,
            "shown_at": "2026-10-01T10:00:00Z",
        },
    ]
    path = write(tmp_path, "shown.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n")
    assert system.import_file(path, "impressions").imported == 2
    dislike = {
        "user_id": 3,
        "movie_id": 2,
        "recommendation_set_id": 7,
        "predicted_score": 0.8,
        "reason": "wrong_genre",
        "created_at": "2026-10-01T10:01:00Z",
    }
    path = write(tmp_path, "dislikes.jsonl", json.dumps(dislike) + "\n")
    assert system.import_file(path, "dislikes").imported == 1
    (row,) = rows(system, user_dislikes)
    assert (row.user_id, row.movie_id, row.reason, row.genres) == (3, 2, "wrong_genre", ["Action", "Sci-Fi"])
    assert row.recommendation_set_id is not None


# ---------------------------------------------------------------- re-running a file


def test_an_imported_dislike_of_a_list_counts_on_the_lists_day(system, tmp_path):
    write_movies = write(tmp_path, "movies.csv", MOVIES_CSV)
    assert not system.import_file(write_movies, "movies").rejected
    shown = (
        IMPRESSIONS_HEADER + "700,11,1,1,0.9,,2026-10-01T23:55:00Z\n700,11,2,2,0.8,,2026-10-01T23:55:00Z\n"
    )
    assert system.import_file(write(tmp_path, "i.csv", shown), "impressions").imported == 2
    late = DISLIKES_HEADER + "11,1,700,0.9,other,,2026-10-02T00:05:00Z\n"
    assert system.import_file(write(tmp_path, "d.csv", late), "dislikes").imported == 1
    (row,) = rows(system, daily_dislikes)
    assert (str(row.day), row.attributed, row.dislikes) == ("2026-10-01", 1, 1)
    assert recount_differences(system.engine) == []


def test_rerunning_every_file_duplicates_nothing(system, tmp_path):
    load_world(system, tmp_path)
    system.import_file(write(tmp_path, "dislikes.csv", DISLIKES_CSV), "dislikes")
    first = row_counts(system)
    for kind in ("movies", "impressions", "dislikes"):
        summary = system.import_file(tmp_path / f"{kind}.csv", kind)
        assert summary.rejected == 0 and summary.imported + summary.already_present == summary.rows_read
        if kind != "movies":  # movies are upserts: stored again, never twice
            assert summary.imported == 0 and summary.already_present == summary.rows_read
    after = row_counts(system)
    after.pop("audit_log"), first.pop("audit_log")
    assert after == first
    assert recount_differences(system.engine) == []


@pytest.mark.parametrize("listed", ["900", ""], ids=["of-a-list", "without-a-list"])
def test_a_dislike_repeated_within_a_file_is_stored_once(system, tmp_path, listed):
    load_world(system, tmp_path)
    line = f"11,1,{listed},0.91,wrong_genre,,2026-10-01T10:05:00Z\n"
    summary = system.import_file(write(tmp_path, "d.csv", DISLIKES_HEADER + line + line), "dislikes")
    assert (summary.imported, summary.already_present, summary.rejected) == (1, 1, 0)
    assert count(system, user_dislikes) == 1 and count(system, negative_examples) == 1
    assert recount_differences(system.engine) == []


def test_a_shown_item_is_disliked_once_as_live(system, tmp_path):
    load_world(system, tmp_path)
    # Two rows of one impression at different moments: one dislike, as ``record_dislike`` keeps.
    twice = "11,1,900,0.91,wrong_genre,,2026-10-01T10:05:00Z\n11,1,900,0.91,other,,2026-10-01T10:07:00Z\n"
    summary = system.import_file(write(tmp_path, "d1.csv", DISLIKES_HEADER + twice), "dislikes")
    assert (summary.imported, summary.already_present, summary.rejected) == (1, 1, 0)
    # The same across batches.
    twice = "11,3,900,0.4,other,,2026-10-01T10:05:00Z\n11,3,900,0.4,other,,2026-10-01T10:08:00Z\n"
    summary = system.import_file(write(tmp_path, "d2.csv", DISLIKES_HEADER + twice), "dislikes", batch_size=1)
    assert (summary.imported, summary.already_present) == (1, 1)
    # An impression disliked live is not disliked again by an import; once retracted, it may be.
    set_900 = {r.external_id: r.recommendation_set_id for r in rows(system, recommendation_sets)}[900]
    live = system.record_dislike(
        created_at=datetime(2026, 10, 1, 10, 8), user_id=11, movie_id=2, recommendation_set_id=set_900
    )
    again = write(tmp_path, "d3.csv", DISLIKES_HEADER + "11,2,900,0.85,other,,2026-10-01T10:09:00Z\n")
    summary = system.import_file(again, "dislikes")
    assert (summary.imported, summary.already_present) == (0, 1)
    system.retract_dislike(live["dislike_id"], 11)
    summary = system.import_file(again, "dislikes")
    assert (summary.imported, summary.already_present) == (1, 0)
    with system.engine.connect() as conn:
        per_movie = dict(
            conn.execute(
                select(user_dislikes.c.movie_id, func.count())
                .where(user_dislikes.c.retracted_at.is_(None))
                .group_by(user_dislikes.c.movie_id)
            ).all()
        )
        stats = dict(
            conn.execute(select(movie_dislike_stats.c.movie_id, movie_dislike_stats.c.dislikes)).all()
        )
    assert per_movie == {1: 1, 2: 1, 3: 1}
    assert stats == per_movie
    assert recount_differences(system.engine) == []


def test_a_rerun_completes_a_partly_imported_shown_list(system, tmp_path):
    write(tmp_path, "m.csv", MOVIES_CSV)
    system.import_file(tmp_path / "m.csv", "movies")
    shown = IMPRESSIONS_HEADER + (
        "900,11,1,1,0.9,,2026-10-01T10:00:00Z\n"
        "900,11,7,2,0.8,,2026-10-01T10:00:00Z\n"  # film 7 not in the catalogue yet
        "900,11,2,3,0.7,,2026-10-01T10:00:00Z\n"
    )
    path = write(tmp_path, "i.csv", shown)
    summary = system.import_file(path, "impressions", on_error="skip")
    assert (summary.imported, summary.rejected) == (2, 1)
    system.import_file(write(tmp_path, "m7.csv", "movie_id,title\n7,Seven\n"), "movies")
    summary = system.import_file(path, "impressions", on_error="skip")
    assert (summary.imported, summary.already_present, summary.rejected) == (1, 2, 0)
    (the_set,) = rows(system, recommendation_sets)
    items = rows(system, impressions)
    assert sorted((r.movie_id, r.rank, r.recommendation_set_id, r.user_id) for r in items) == [
        (1, 1, the_set.recommendation_set_id, 11),
        (2, 3, the_set.recommendation_set_id, 11),
        (7, 2, the_set.recommendation_set_id, 11),
    ]
    assert {r.shown_at for r in items} == {the_set.created_at}
    daily = {(r.day.isoformat(), r.model_version_id): r.impressions for r in rows(system, daily_impressions)}
    assert daily == {("2026-10-01", 0): 3}
    # The list was shown to user 11: a row naming another user is refused, not counted as present.
    before = row_counts(system)
    other = write(tmp_path, "o.csv", IMPRESSIONS_HEADER + "900,12,3,4,0.5,,2026-10-01T10:00:00Z\n")
    summary = system.import_file(other, "impressions")
    assert summary.aborted and (summary.imported, summary.already_present) == (0, 0)
    assert [(e.line, e.field) for e in summary.errors] == [(2, "recommendation_set_id")]
    assert "recommendation_set_id 900 was shown to user 11" in summary.errors[0].text
    assert row_counts(system) == before


def test_import_of_many_dislikes_queues_one_retrain_job(make_system, tmp_path):
    system = make_system(FEEDBACK_ACCUMULATION_THRESHOLD=5)
    write(tmp_path, "m.csv", MOVIES_CSV)
    system.import_file(tmp_path / "m.csv", "movies")
    lines = "".join(
        f"{u},{1 + u % 6},,0.5,not_interested,,2026-10-0{1 + u % 9}T10:00:00Z\n" for u in range(1, 41)
    )
    summary = system.import_file(write(tmp_path, "d.csv", DISLIKES_HEADER + lines), "dislikes", batch_size=7)
    assert summary.imported == 40 and summary.batches == 6
    assert count(system, retrain_jobs) == 1
    assert rows(system, retrain_jobs)[0].requested_by == "import"


# ---------------------------------------------------------------- bad rows


BAD_DISLIKES = DISLIKES_HEADER + (
    "11,1,900,0.91,wrong_genre,,2026-10-01T10:05:00Z\n"  # 2: fine
    "11,2,900,0.85\n"  # 3: too few columns
    "x,2,900,0.85,other,,\n"  # 4: bad user id
    "11,2,900,1.5,other,,\n"  # 5: score out of range
    "11,2,900,NaN,other,,\n"  # 6: not finite
    "11,2,900,0.5,bored,,\n"  # 7: unknown reason
    "11,2,900,0.5,other,,yesterday\n"  # 8: bad timestamp
    "11,77,,0.5,other,,\n"  # 9: unknown movie
    "11,4,900,0.5,other,,\n"  # 10: not in that list
    "12,1,900,0.5,other,,\n"  # 11: someone else's list
    "11,3,555,0.5,other,,\n"  # 12: list never imported
    "13,5,,0.2,other,fine too,2026-10-04T00:00:00Z\n"  # 13: fine
    "11,2,900,0.5,other,,0001-01-01T00:00:00+01:00\n"  # 14: before year 1 in UTC
)
EXPECTED_ERRORS = {
    3: "expected 7 columns",
    4: "user_id must be a positive integer",
    5: "predicted_score must be a number between 0 and 1, got 1.5",
    6: "predicted_score must be a number between 0 and 1",
    7: "reason must be one of wrong_genre, poor_quality, already_watched, not_interested, irrelevant, other, got 'bored'",
    8: "created_at must be an ISO 8601 timestamp",
    9: "movie_id 77 is not in the catalogue",
    10: "movie_id 4 was not in recommendation_set_id 900",
    11: "recommendation_set_id 900 was not shown to user 12",
    12: "recommendation_set_id 555 is not an imported shown list",
    14: "created_at must be an ISO 8601 timestamp such as 2026-01-31T18:30:00Z, got '0001-01-01T00:00:00+01:00'",
}


def test_bad_rows_are_reported_by_line_and_skip_imports_the_rest(system, tmp_path):
    load_world(system, tmp_path)
    path = write(tmp_path, "bad.csv", BAD_DISLIKES)
    summary = system.import_file(path, "dislikes", on_error="skip")
    found = {e.line: e.text for e in summary.errors}
    assert sorted(found) == sorted(EXPECTED_ERRORS)
    for line, text in EXPECTED_ERRORS.items():
        assert text in found[line], (line, found[line])
    assert (summary.imported, summary.rejected, summary.aborted) == (2, 11, False)
    assert sorted((r.user_id, r.movie_id) for r in rows(system, user_dislikes)) == [(11, 1), (13, 5)]
    assert recount_differences(system.engine) == []


def test_abort_keeps_earlier_batches_and_nothing_of_the_failing_one(system, tmp_path):
    load_world(system, tmp_path)
    lines = [
        "11,1,900,0.91,wrong_genre,,2026-10-01T10:05:00Z\n",  # 2  batch 1
        "11,2,900,0.85,other,,2026-10-01T10:06:00Z\n",  # 3  batch 1
        "12,4,901,0.77,other,,2026-10-02T08:00:00Z\n",  # 4  batch 2
        "12,5,901,0.66,bored,,2026-10-02T08:00:00Z\n",  # 5  batch 2: bad
        "11,6,902,0.55,other,,2026-10-03T20:10:00Z\n",  # 6  batch 3
    ]
    before_examples = count(system, negative_examples)
    summary = system.import_file(
        write(tmp_path, "d.csv", DISLIKES_HEADER + "".join(lines)), "dislikes", batch_size=2
    )
    assert summary.aborted and summary.batches == 1 and summary.imported == 2
    assert [(e.line, e.field) for e in summary.errors] == [(5, "reason")]
    assert sorted((r.user_id, r.movie_id) for r in rows(system, user_dislikes)) == [(11, 1), (11, 2)]
    assert count(system, negative_examples) == before_examples + 2
    assert recount_differences(system.engine) == []
    # Fixed and run again: the rest arrives, nothing twice.
    lines[3] = lines[3].replace("bored", "poor_quality")
    summary = system.import_file(
        write(tmp_path, "d.csv", DISLIKES_HEADER + "".join(lines)), "dislikes", batch_size=2
    )
    assert (summary.imported, summary.already_present, summary.aborted) == (3, 2, False)
    assert count(system, user_dislikes) == 5
    assert recount_differences(system.engine) == []


def test_the_garbage_collector_is_paused_while_importing_and_restored_after(system, tmp_path):
    load_world(system, tmp_path)
    states = []

    def watch(done, total, summary):
        states.append(gc.isenabled())

    good = write(tmp_path, "good.csv", DISLIKES_HEADER + "11,1,900,0.91,wrong_genre,,2026-10-01T10:05:00Z\n")
    bad = write(tmp_path, "bad.csv", DISLIKES_HEADER + "12,5,901,0.66,bored,,2026-10-02T08:00:00Z\n")
    assert gc.isenabled()
    summary = system.import_file(good, "dislikes", progress=watch)
    assert summary.imported == 1 and states and not any(states)
    assert gc.isenabled()
    # An aborted import and a failing one restore it too.
    assert system.import_file(bad, "dislikes").aborted
    assert gc.isenabled()
    with pytest.raises(ZeroDivisionError):
        system.import_file(good, "dislikes", progress=lambda *a: 1 / 0)
    assert gc.isenabled()
    # Off before, off after: an import never turns on what its caller turned off.
    gc.disable()
    try:
        system.import_file(good, "dislikes")
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_failing_check_against_the_database_also_keeps_nothing_of_its_batch(system, tmp_path):
    load_world(system, tmp_path)
    lines = DISLIKES_HEADER + "11,1,900,0.91,other,,\n11,77,,0.5,other,,\n"  # movie 77 unknown
    before = row_counts(system)
    summary = system.import_file(write(tmp_path, "d.csv", lines), "dislikes")
    assert summary.aborted and summary.imported == 0
    assert [(e.line, e.field) for e in summary.errors] == [(3, "movie_id")]
    assert row_counts(system) == before


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        (IMPRESSIONS_HEADER + "1,5,1,1,0.5,,\n2,5,2,1,0.5,,\n1,5,3,2,0.5,,\n", 4, "must be consecutive"),
        (
            IMPRESSIONS_HEADER + "1,5,1,1,0.5,,\n1,6,2,2,0.5,,\n",
            3,
            "was shown to user 5; this row names user 6",
        ),
        (IMPRESSIONS_HEADER + "1,5,1,1,0.5,,\n1,5,1,2,0.5,,\n", 3, "movie_id 1 appears twice"),
        (IMPRESSIONS_HEADER + "1,5,1,0,0.5,,\n", 2, "rank must be an integer between 1 and 100000"),
        (IMPRESSIONS_HEADER + "1,5,1,1,0.5,42,\n", 2, "model_version 42 does not exist"),
        (IMPRESSIONS_HEADER + "1,5,99,1,0.5,,\n", 2, "movie_id 99 is not in the catalogue"),
        (
            IMPRESSIONS_HEADER + "1,5,1,1,0.5,,2026-10-01T10:00:00Z\n1,5,2,2,0.5,,2026-10-25T18:00:00Z\n",
            3,
            "shown_at: rows of recommendation_set_id 1 name different times",
        ),
        ("recommendation_set_id,user_id,movie_id\n1,2,3\n", 1, "missing column(s) rank"),
        (IMPRESSIONS_HEADER.strip() + ",colour\n", 1, "unknown column(s) colour"),
    ],
)
def test_bad_impression_rows_name_their_line(system, tmp_path, content, line, message):
    write(tmp_path, "m.csv", MOVIES_CSV)
    system.import_file(tmp_path / "m.csv", "movies")
    before = row_counts(system)
    summary = system.import_file(write(tmp_path, "i.csv", content), "impressions")
    assert summary.aborted
    assert [e.line for e in summary.errors] == [line]
    assert message in summary.errors[0].text
    assert row_counts(system) == before


def test_bad_encoding_and_broken_json_name_their_line(system, tmp_path):
    load_world(system, tmp_path)
    path = tmp_path / "latin1.csv"
    path.write_bytes((DISLIKES_HEADER + "11,1,900,0.5,other,ok,\n13,5,,0.2,other,café,\n").encode("latin-1"))
    summary = system.import_file(path, "dislikes", on_error="skip")
    assert [(e.line, e.message) for e in summary.errors] == [(3, "the line is not valid UTF-8 (byte 20)")]
    assert summary.imported == 1
    path = write(
        tmp_path,
        "d.jsonl",
        '{"user_id": 13, "movie_id": 6}\n{"user_id": 13,\n[1]\n{"user_id": 13, "movie_id": 4, "mood": "x"}\n',
    )
    summary = system.import_file(path, "dislikes", on_error="skip")
    assert [e.line for e in summary.errors] == [2, 3, 4]
    assert (
        "invalid JSON" in summary.errors[0].message and "unknown field(s) mood" in summary.errors[2].message
    )
    assert summary.imported == 1
    assert recount_differences(system.engine) == []


BIG_ID = "99999999999999999999"


@pytest.mark.parametrize(
    ("kind", "content", "field"),
    [
        ("dislikes", DISLIKES_HEADER + f"{BIG_ID},1,,0.5,other,,\n", "user_id"),
        ("dislikes", DISLIKES_HEADER + f"11,{BIG_ID},,0.5,other,,\n", "movie_id"),
        ("dislikes", DISLIKES_HEADER + f"11,1,{BIG_ID},0.5,other,,\n", "recommendation_set_id"),
        ("impressions", IMPRESSIONS_HEADER + f"{BIG_ID},5,1,1,0.5,,\n", "recommendation_set_id"),
        ("impressions", IMPRESSIONS_HEADER + f"7,{BIG_ID},1,1,0.5,,\n", "user_id"),
        ("impressions", IMPRESSIONS_HEADER + f"7,5,{BIG_ID},1,0.5,,\n", "movie_id"),
        ("ratings", f"user_id,movie_id,rating\n{BIG_ID},1,4\n", "user_id"),
    ],
)
def test_ids_beyond_the_largest_are_refused_by_name(system, tmp_path, kind, content, field):
    load_world(system, tmp_path)
    before = row_counts(system)
    summary = system.import_file(write(tmp_path, "x.csv", content), kind, on_error="skip")
    assert (summary.imported, summary.rejected) == (0, 1)
    assert summary.errors[0].field == field
    assert (
        f"{field} must be a positive integer no larger than 9223372036854775807, got {BIG_ID}"
        in summary.errors[0].text
    )
    assert row_counts(system) == before


RULES = {
    "recommendation_set_id": "must be a positive integer",
    "user_id": "must be a positive integer",
    "movie_id": "must be a positive integer",
    "rank": "must be an integer between 1 and 100000",
    "predicted_score": "must be a number between 0 and 1",
    "reason": "reason must be one of",
    "feedback_text": "feedback_text must be a string",
}


@pytest.mark.parametrize(
    ("kind", "record", "field"),
    [
        ("impressions", {"recommendation_set_id": 900.7}, "recommendation_set_id"),
        ("impressions", {"recommendation_set_id": 951, "user_id": True}, "user_id"),
        ("impressions", {"movie_id": "1_2"}, "movie_id"),
        ("impressions", {"rank": 2.9}, "rank"),
        ("impressions", {"rank": "1_0"}, "rank"),
        ("impressions", {"predicted_score": True}, "predicted_score"),
        ("dislikes", {"user_id": 11.9}, "user_id"),
        ("dislikes", {"user_id": "1_1"}, "user_id"),
        ("dislikes", {"movie_id": True}, "movie_id"),
        ("dislikes", {"predicted_score": False}, "predicted_score"),
        ("dislikes", {"reason": False}, "reason"),
        ("dislikes", {"reason": 0}, "reason"),
        ("dislikes", {"feedback_text": 0}, "feedback_text"),
        ("dislikes", {"user_id": "\u00b2"}, "user_id"),  # str.isdigit takes it, int() does not
    ],
)
def test_values_the_checks_refuse_are_never_coerced(system, tmp_path, kind, record, field):
    load_world(system, tmp_path)
    good = {
        "impressions": {
            "recommendation_set_id": 950,
            "user_id": 11,
            "movie_id": 1,
            "rank": 1,
            "predicted_score": 0.5,
        },
        "dislikes": {"user_id": 11, "movie_id": 1, "predicted_score": 0.5, "reason": "other"},
    }[kind]
    path = write(tmp_path, "x.jsonl", json.dumps(good) + "\n" + json.dumps({**good, **record}) + "\n")
    before = row_counts(system)
    summary = system.import_file(path, kind)
    assert summary.aborted and summary.imported == 0
    assert [(e.line, e.field) for e in summary.errors] == [(2, field)]
    assert RULES[field] in summary.errors[0].text
    assert row_counts(system) == before


@pytest.mark.parametrize(
    ("kind", "record", "field"),
    [
        ("dislikes", {"movie_id": 1}, "user_id"),
        (
            "impressions",
            {"user_id": 11, "movie_id": 1, "rank": 1, "predicted_score": 0.5},
            "recommendation_set_id",
        ),
        ("impressions", {"recommendation_set_id": 950, "user_id": 11, "movie_id": 1}, "rank"),
    ],
)
def test_a_json_line_without_a_required_field_is_refused_by_name(system, tmp_path, kind, record, field):
    load_world(system, tmp_path)
    summary = system.import_file(write(tmp_path, "x.jsonl", json.dumps(record) + "\n"), kind)
    assert summary.aborted and summary.imported == 0
    assert [(e.line, e.field) for e in summary.errors] == [(1, field)]


def test_a_csv_id_with_an_underscore_is_refused(system, tmp_path):
    load_world(system, tmp_path)
    summary = system.import_file(
        write(tmp_path, "d.csv", DISLIKES_HEADER + "1_1,3,,0.5,other,,\n"), "dislikes"
    )
    assert summary.aborted and summary.imported == 0
    assert [(e.line, e.text) for e in summary.errors] == [
        (2, "user_id must be a positive integer, got '1_1'")
    ]
    assert count(system, user_dislikes) == 0


def test_abort_keeps_a_full_batch_that_ends_before_the_bad_row(system, tmp_path):
    load_world(system, tmp_path)
    good = "user_id,movie_id,rating\n1,1,4\n2,1,4\n3,1,4\n4,1,4\n"
    summary = system.import_file(write(tmp_path, "r.csv", good + "5,1,9\n6,1,4\n"), "ratings", batch_size=2)
    assert summary.aborted and (summary.batches, summary.imported) == (2, 4)
    assert [(e.line, e.field) for e in summary.errors] == [(6, "rating")]
    assert sorted(r.user_id for r in rows(system, ratings)) == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("bad", "kept"),
    [
        ("31,5,3,0,0.5,,2026-10-05T10:00:00Z\n", [30]),  # another list: the full batch is complete
        ("30,5,3,0,0.5,,2026-10-05T10:00:00Z\n", []),  # the same list: the batch fails with it
        ("x,5,3,1,0.5,,2026-10-05T10:00:00Z\n", []),  # whose list cannot be told
    ],
)
def test_abort_keeps_a_full_batch_of_shown_lists_before_the_bad_row(system, tmp_path, bad, kept):
    load_world(system, tmp_path)
    shown = IMPRESSIONS_HEADER + (
        "30,5,1,1,0.5,,2026-10-05T10:00:00Z\n30,5,2,2,0.5,,2026-10-05T10:00:00Z\n" + bad
    )
    summary = system.import_file(write(tmp_path, "i.csv", shown), "impressions", batch_size=2)
    assert summary.aborted and summary.imported == 2 * len(kept)
    assert [e.line for e in summary.errors] == [4]
    stored = sorted(r.external_id for r in rows(system, recommendation_sets) if r.external_id < 900)
    assert stored == kept


@pytest.mark.parametrize(
    ("name", "content", "errors", "imported"),
    [
        (  # a bad byte on the second line of a quoted field: that line is named
            "multiline.csv",
            (DISLIKES_HEADER + '13,1,,0.5,other,"ab\ncaf').encode() + b'\xe9",\n13,2,,0.5,other,,\n',
            [(3, "the line is not valid UTF-8 (byte 4)")],
            1,
        ),
        (  # blank lines before the header row
            "blank.csv",
            "\n \n" + DISLIKES_HEADER + "13,1,,0.5,other,,\n13,2,,0.5,bored,,\n",
            [(5, "reason must be one of")],
            1,
        ),
        (
            "cr.csv",
            (DISLIKES_HEADER + "13,1,,0.5,other,,\n").replace("\n", "\r"),
            [(1, "lines must end in LF or CRLF")],
            0,
        ),
        (
            "cr.jsonl",
            '{"user_id": 13, "movie_id": 1}\r{"user_id": 13, "movie_id": 2}\r',
            [(1, "lines must end in LF or CRLF")],
            0,
        ),
        (
            "twice.csv",
            "user_id,movie_id,movie_id\n13,1,1\n",
            [(1, "column movie_id appears twice in the header row")],
            0,
        ),
    ],
)
def test_file_format_faults_name_their_line(system, tmp_path, name, content, errors, imported):
    load_world(system, tmp_path)
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    summary = system.import_file(path, "dislikes", on_error="skip")
    assert [e.line for e in summary.errors] == [line for line, _ in errors]
    for error, (_, text) in zip(summary.errors, errors, strict=True):
        assert text in error.text, error.text
    assert "universal-newline" not in str(summary.errors)
    assert summary.imported == imported


def test_bad_arguments_are_refused_before_reading(system, tmp_path):
    from feedback_core.errors import ValidationError

    path = write(tmp_path, "m.csv", MOVIES_CSV)
    for kwargs, field in (
        ({"kind": "films"}, "kind"),
        ({"kind": "movies", "on_error": "ignore"}, "on_error"),
        ({"kind": "movies", "batch_size": 0}, "batch_size"),
    ):
        with pytest.raises(ValidationError) as info:
            system.import_file(path, **kwargs)
        assert info.value.field == field
    with pytest.raises(ValidationError) as info:
        system.import_file(tmp_path / "missing.csv", "movies")
    assert info.value.field == "path"
    assert count(system, movies) == 0


# ---------------------------------------------------------------- the command


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_imports_with_progress_and_summary(system, tmp_path, capsys):
    url = system.settings.database_url
    write(tmp_path, "movies.csv", MOVIES_CSV)
    write(tmp_path, "impressions.csv", IMPRESSIONS_CSV)
    write(tmp_path, "dislikes.csv", DISLIKES_CSV)
    for kind, n in (("movies", 6), ("impressions", 7), ("dislikes", 6)):
        code, out, err = run(capsys, "--db", url, "import", tmp_path / f"{kind}.csv", "--kind", kind)
        assert code == 0, err
        assert f"{kind}: {n} rows read, {n} imported, 0 already present, 0 rejected" in out
        assert f"importing {kind}" in err  # the progress bar
    code, out, err = run(capsys, "--db", url, "import", tmp_path / "dislikes.csv", "--kind", "dislikes")
    assert code == 0 and "0 imported, 6 already present" in out


def test_abort_reports_every_error_of_the_failing_batch_those_found_in_the_database_too(system, tmp_path):
    load_world(system, tmp_path)
    lines = [
        "11,1,900,0.91,wrong_genre,,2026-10-01T10:05:00Z\n",  # 2
        "11,999,,0.85,other,,2026-10-01T10:06:00Z\n",  # 3: a film not in the catalogue
        "12,5,901,0.66,bored,,2026-10-02T08:00:00Z\n",  # 4: a reason that does not exist
        "12,4,901,0.77,other,,2026-10-02T08:00:00Z\n",  # 5
        "11,6,555,0.55,other,,2026-10-03T20:10:00Z\n",  # 6: a list never imported
    ]
    before = row_counts(system)
    summary = system.import_file(write(tmp_path, "d.csv", DISLIKES_HEADER + "".join(lines)), "dislikes")
    assert summary.aborted and summary.imported == 0 and summary.rejected == 3
    assert [(e.line, e.field) for e in summary.errors] == [
        (3, "movie_id"),
        (4, "reason"),
        (6, "recommendation_set_id"),
    ]
    assert row_counts(system) == before


def test_checking_an_aborted_batch_writes_nothing_and_logs_no_retrain(make_system, tmp_path, caplog):
    import logging

    system = make_system(FEEDBACK_ACCUMULATION_THRESHOLD=2)
    load_world(system, tmp_path)
    lines = [
        "11,1,900,0.91,wrong_genre,,2026-10-01T10:05:00Z\n",
        "11,2,900,0.85,other,,2026-10-01T10:06:00Z\n",
        "12,4,901,0.77,other,,2026-10-02T08:00:00Z\n",
        "12,5,901,0.66,bored,,2026-10-02T08:00:00Z\n",  # bad: the batch is checked, not kept
    ]
    before = row_counts(system)
    with caplog.at_level(logging.INFO, logger="feedback_core"):
        summary = system.import_file(write(tmp_path, "d.csv", DISLIKES_HEADER + "".join(lines)), "dislikes")
    assert summary.aborted and summary.rejected == 1 and summary.imported == 0
    assert row_counts(system) == before
    assert not [r for r in caplog.records if "threshold reached" in r.getMessage()]


def test_cli_abort_and_skip(system, tmp_path, capsys):
    load_world(system, tmp_path)
    url = system.settings.database_url
    path = write(tmp_path, "bad.csv", BAD_DISLIKES)
    code, out, err = run(capsys, "--db", url, "import", path, "--kind", "dislikes")
    assert code == 2
    assert f"{path}:3: expected 7 columns" in err and f"{path}:8: created_at must be" in err
    assert "import stopped, nothing of the failing batch imported" in err
    assert count(system, user_dislikes) == 0
    code, out, err = run(capsys, "--db", url, "import", path, "--kind", "dislikes", "--on-error", "skip")
    assert code == 0 and "2 imported" in out and "11 rejected" in out
    assert f"{path}:12: recommendation_set_id 555" in err
    with pytest.raises(SystemExit) as info:
        run(capsys, "--db", url, "import", path, "--kind", "films")
    assert info.value.code == 2 and "invalid choice: 'films'" in capsys.readouterr().err


# ---------------------------------------------------------------- imports beside other writers


def test_two_imports_of_one_file_at_once_store_it_once(make_system, tmp_path):
    first, second = make_system(), make_system()
    first.import_file(write(tmp_path, "m.csv", MOVIES_CSV), "movies")
    sets = 300
    shown = IMPRESSIONS_HEADER + "".join(
        f"{5000 + s},{100 + s},{1 + r},{r + 1},0.5,,2026-10-0{1 + s % 9}T12:00:00Z\n"
        for s in range(sets)
        for r in range(3)
    )
    disliked = DISLIKES_HEADER + "".join(
        f"{100 + s},{1 + s % 3},{5000 + s},0.5,wrong_genre,,2026-10-0{1 + s % 9}T12:05:00Z\n"
        for s in range(sets)
    )
    for kind, content, n in (("impressions", shown, sets * 3), ("dislikes", disliked, sets)):
        path = write(tmp_path, f"{kind}.csv", content)
        start = threading.Barrier(2)
        results: dict[int, object] = {}

        def work(system, slot, path=path, kind=kind, start=start, results=results):
            start.wait()
            try:
                results[slot] = system.import_file(path, kind, batch_size=20)
            except Exception as exc:  # reported by the assertion below
                results[slot] = exc

        threads = [threading.Thread(target=work, args=(s, i)) for i, s in enumerate((first, second))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        summaries = [results[0], results[1]]
        assert all(not isinstance(s, Exception) for s in summaries), summaries
        assert sum(s.imported for s in summaries) == n, [s.as_dict() for s in summaries]
        assert sum(s.already_present for s in summaries) == n
        assert not any(s.rejected or s.aborted for s in summaries)
    assert count(first, recommendation_sets) == sets and count(first, impressions) == sets * 3
    assert count(first, user_dislikes) == sets and count(first, negative_examples) == sets
    assert recount_differences(first.engine) == []


def test_auto_approve_applies_only_the_imports_own_proposals(make_system, backend, tmp_path, monkeypatch):
    if backend != "postgresql":
        pytest.skip("SQLite takes the ids under the write lock: no other dislike can fall between them")
    system = make_system(auto_approve=True)
    live = make_system()  # a writer without auto-approve: its proposals wait for review
    load_world(system, tmp_path)
    take_ids = importing._new_ids
    live_ids = []

    def ids_around_a_live_dislike(conn, table, n):
        if table != "user_dislikes":
            return take_ids(conn, table, n)
        ids = take_ids(conn, table, n + 1)
        # A live dislike recorded meanwhile gets a sequence value between this batch's ids.
        with live.engine.begin() as other:
            other.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('user_dislikes', 'dislike_id'), %s)", (ids[0],)
            )
        # (Someone not in the batch: the batch's own people wait until it is written.)
        live_ids.append(live.record_dislike(user_id=99, movie_id=3, reason="wrong_genre")["dislike_id"])
        with live.engine.begin() as other:
            other.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('user_dislikes', 'dislike_id'), %s)", (ids[-1],)
            )
        return [ids[0], *ids[2:]]

    monkeypatch.setattr(importing, "_new_ids", ids_around_a_live_dislike)
    summary = system.import_file(write(tmp_path, "d.csv", DISLIKES_CSV), "dislikes")
    assert summary.imported == 6
    imported = [r.dislike_id for r in rows(system, user_dislikes) if r.dislike_id not in live_ids]
    assert min(imported) < live_ids[0] < max(imported)
    statuses: dict[bool, set] = {}
    for r in rows(system, feature_adjustments):
        statuses.setdefault(r.dislike_id in live_ids, set()).add(r.status)
    assert statuses == {True: {"proposed"}, False: {"applied"}}


# ---------------------------------------------------------------- killed mid-file


def import_in_a_child(system, tmp_path, sets: int, output=subprocess.DEVNULL) -> tuple:
    """Start `feedback-core import` of ``sets`` shown lists of 3 films (batches of 30) in a child
    process and return (the child, the file, the impressions before it) once 300 are stored."""
    load_world(system, tmp_path)
    shown = IMPRESSIONS_HEADER + "".join(
        f"{10_000 + s},{100 + s % 50},{1 + r},{r + 1},{0.9 - 0.1 * r:.1f},,2026-10-{1 + s % 28:02d}T12:00:00Z\n"
        for s in range(sets)
        for r in range(3)
    )
    path = write(tmp_path, "big.csv", shown)
    env = {**os.environ, "FEEDBACK_DB_URL": system.settings.database_url}
    command = [sys.executable, "-m", "feedback_core.cli", "import", str(path), "--kind", "impressions"]
    child = subprocess.Popen(
        [*command, "--batch", "30"], cwd=ROOT, env=env, stdout=output, stderr=output, text=True
    )
    deadline = time.monotonic() + 60
    base = count(system, impressions)
    while count(system, impressions) - base < 300 and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.02)
    return child, path, base


def test_an_import_killed_mid_file_finishes_on_rerun_without_duplicates(system, tmp_path):
    sets = 1500
    child, path, base = import_in_a_child(system, tmp_path, sets)
    child.send_signal(signal.SIGKILL)
    child.wait()
    partial = count(system, impressions) - base
    assert 0 < partial < sets * 3, "the import must be killed mid-file"
    assert partial % 3 == 0  # whole sets only: a batch is one transaction
    summary = system.import_file(path, "impressions", batch_size=30)
    assert summary.rejected == 0
    assert summary.imported == sets * 3 - partial and summary.already_present == partial
    assert count(system, impressions) - base == sets * 3
    with system.engine.connect() as conn:
        per_set = conn.execute(
            select(func.count())
            .select_from(recommendation_sets)
            .where(recommendation_sets.c.external_id >= 10_000)
        ).scalar()
        daily = conn.execute(select(func.sum(daily_impressions.c.impressions))).scalar()
    assert per_set == sets and daily == count(system, impressions)


def test_import_migrates_an_empty_database(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    path = write(tmp_path, "movies.csv", MOVIES_CSV)
    code, out, err = run(capsys, "--db", url, "import", path, "--kind", "movies")
    assert code == 0, err
    engine = make_engine(Settings(database_url=url))
    assert upgrade_database(engine)  # already at the head: harmless
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(movies)).scalar() == 6
    engine.dispose()
