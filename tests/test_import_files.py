"""What an import makes of the file itself: compressed files, paths that are not files, header
rows, JSON lines' own faults, times out of range, and a rerun that contradicts what it stored.

Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import gzip
import json
import os

import pytest
from helpers import count, rows
from sqlalchemy import select
from test_import import (
    DISLIKES_CSV,
    IMPRESSIONS_CSV,
    IMPRESSIONS_HEADER,
    MOVIES_CSV,
    load_world,
    snapshot,
    write,
)

from feedback_core.errors import ValidationError
from feedback_core.schema import impressions, movies, ratings, recommendation_sets, user_dislikes


def shown_lists(system) -> list[tuple]:
    """Every stored impression with its list's id in the file and time, by content."""
    with system.engine.connect() as conn:
        external = dict(
            conn.execute(
                select(recommendation_sets.c.recommendation_set_id, recommendation_sets.c.external_id)
            ).all()
        )
        return sorted(
            (external[r.recommendation_set_id], r.user_id, r.movie_id, r.rank, r.predicted_score, r.shown_at)
            for r in conn.execute(select(impressions))
        )


def test_gzip_files_import_as_the_same_files_plain(system, tmp_path):
    for name, content, kind, stored in (
        ("movies.csv.gz", MOVIES_CSV, "movies", 6),
        ("shown.gz", IMPRESSIONS_CSV, "impressions", 7),  # no inner suffix: its content says CSV
        ("d.csv.gz", DISLIKES_CSV, "dislikes", 6),
    ):
        path = tmp_path / name
        path.write_bytes(gzip.compress(content.encode()))
        summary = system.import_file(path, kind)
        assert (summary.imported, summary.rejected, summary.aborted) == (stored, 0, False), summary.as_dict()
    packed = snapshot(system.engine), shown_lists(system)
    # The plain files hold nothing the compressed ones did not: every row is already there.
    for name, content, kind in (
        ("i.csv", IMPRESSIONS_CSV, "impressions"),
        ("d.csv", DISLIKES_CSV, "dislikes"),
    ):
        summary = system.import_file(write(tmp_path, name, content), kind)
        assert (summary.imported, summary.rejected) == (0, 0) and summary.already_present, summary.as_dict()
    assert (snapshot(system.engine), shown_lists(system)) == packed


def test_json_lines_compressed_import_too(system, tmp_path):
    records = [{"movie_id": 7, "title": "Seven", "genres": ["Crime"]}, {"movie_id": 8, "title": "Eight"}]
    path = tmp_path / "films.jsonl.gz"
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in records).encode()))
    summary = system.import_file(path, "movies")
    assert (summary.imported, summary.rejected) == (2, 0)
    assert sorted(r.title for r in rows(system, movies)) == ["Eight", "Seven"]


@pytest.mark.parametrize("damage", ["cut", "garbled"])
def test_a_damaged_compressed_file_imports_nothing(system, tmp_path, damage):
    lines = "".join(f"{m},Film {m},Drama,,,2000\n" for m in range(1, 4001))
    packed = bytearray(gzip.compress(("movie_id,title,genres,cast,franchise,year\n" + lines).encode()))
    if damage == "cut":
        packed = packed[: len(packed) * 2 // 3]
    else:  # bytes of the stream overwritten: it may still decompress, to garbage, up to its checksum
        middle = len(packed) * 2 // 3
        packed[middle : middle + 40] = bytes(40)
    path = tmp_path / "films.csv.gz"
    path.write_bytes(bytes(packed))
    summary = system.import_file(path, "movies", on_error="skip", batch_size=500)
    assert summary.aborted and summary.file_error.startswith("the compressed file is damaged: ")
    assert (summary.rows_read, summary.imported, summary.rejected) == (0, 0, 0)
    assert count(system, movies) == 0


@pytest.mark.parametrize(
    "name,message",
    [
        ("-", "reading standard input is not supported: save the stream to a file"),
        ("folder", "is a directory"),
        ("missing.csv", "does not exist"),
        ("pipe", "is not a regular file (a pipe or a device): save the stream to a file"),
    ],
)
def test_only_a_regular_file_is_imported_and_the_refusal_says_what_to_do(system, tmp_path, name, message):
    if name == "folder":
        (tmp_path / name).mkdir()
    if name == "pipe":
        os.mkfifo(tmp_path / name)  # opened for reading, it would wait for a writer forever
    path = name if name == "-" else tmp_path / name
    with pytest.raises(ValidationError) as info:
        system.import_file(path, "movies")
    assert info.value.field == "path" and message in info.value.message
    assert count(system, movies) == 0


@pytest.mark.parametrize("on_error", ["abort", "skip"])
def test_a_header_naming_the_wrong_columns_stops_the_import_whatever_on_error_says(
    system, tmp_path, on_error
):
    path = write(tmp_path, "r.csv", "userid,movie_id,rating\n1,1,4\n2,1,4\n3,1,5\n")
    summary = system.import_file(path, "ratings", on_error=on_error)
    assert summary.aborted and summary.imported == 0
    assert summary.file_error.startswith("missing column(s) user_id; unknown column(s) userid")
    # No row was read: the header is not one, and the rows under it were never looked at.
    assert (summary.rows_read, summary.rejected) == (0, 0)
    assert [(e.line, e.text) for e in summary.errors] == [(1, summary.file_error)]
    assert summary.as_dict()["file_error"] == summary.file_error


@pytest.mark.parametrize(
    ("content", "compressed", "line", "what"),
    [
        ("", False, 1, "the file is empty"),
        ("", True, 1, "the file is empty"),
        ("\n\r\n  \n", False, 3, "the file holds only blank lines"),
    ],
)
def test_a_csv_file_without_a_header_row_cannot_be_imported(
    system, tmp_path, content, compressed, line, what
):
    path = tmp_path / ("dislikes.csv.gz" if compressed else "dislikes.csv")
    path.write_bytes(gzip.compress(content.encode()) if compressed else content.encode())
    summary = system.import_file(path, "dislikes", on_error="skip")
    assert summary.file_error == (
        f"{what}, without the header row a dislikes CSV file starts with (user_id, movie_id, and optionally "
        "recommendation_set_id, predicted_score, reason, feedback_text, created_at)"
    )
    assert summary.aborted and (summary.rows_read, summary.imported, summary.rejected) == (0, 0, 0)
    assert [(e.line, e.text) for e in summary.errors] == [(line, summary.file_error)]


def test_an_empty_json_lines_file_is_a_file_of_no_records(system, tmp_path):
    # An export of a day without dislikes: JSON lines need no header row.
    summary = system.import_file(write(tmp_path, "dislikes.jsonl", ""), "dislikes")
    assert (summary.file_error, summary.aborted, summary.rows_read, summary.errors) == (None, False, 0, [])


def test_a_movie_without_title_or_id_says_the_field_is_required(system, tmp_path):
    lines = [
        '{"movie_id": 1}',
        '{"movie_id": 2, "title": null}',
        '{"movie_id": 3, "title": "  "}',
        '{"title": "No id"}',
        '{"movie_id": 5, "title": "Five"}',
    ]
    summary = system.import_file(
        write(tmp_path, "m.jsonl", "\n".join(lines) + "\n"), "movies", on_error="skip"
    )
    required = ("title is required (the film's name)", "title")
    assert {e.line: (e.text, e.field) for e in summary.errors} == {
        1: required,
        2: required,
        3: required,
        4: ("movie_id is required (a positive integer)", "movie_id"),
    }
    assert [r.movie_id for r in rows(system, movies)] == [5]


def test_json_lines_faults_are_row_errors_and_the_rest_imports(system, tmp_path):
    load_world(system, tmp_path)
    lines = [
        '{"user_id": 1' + "0" * 5000 + ', "movie_id": 1, "rating": 4}',  # past Python's 4,300 digits
        '{"user_id": 5, "movie_id": 1, "rating": 4, "rating": 2}',  # which one is meant?
        '{"user_id": 6, "movie_id": 1}',
        '{"user_id": 7, "movie_id": 2, "rating": 3.5}',
    ]
    path = write(tmp_path, "r.jsonl", "\n".join(lines) + "\n")
    summary = system.import_file(path, "ratings", on_error="skip")
    found = {e.line: (e.text, e.field) for e in summary.errors}
    assert found[1][0].startswith("invalid JSON: Exceeds the limit (4300 digits)")
    assert found[2][0] == "field(s) rating given twice in one object"
    assert found[3] == ("rating is required (a number from 1 to 5 in half stars)", "rating")
    assert (summary.imported, summary.rejected) == (1, 3)
    assert [(r.user_id, r.rating) for r in rows(system, ratings)] == [(7, 3.5)]


@pytest.mark.parametrize(
    "kind,header,row",
    [
        ("impressions", IMPRESSIONS_HEADER, "950,11,1,1,0.5,,9999-12-31T23:00:00Z"),
        ("impressions", IMPRESSIONS_HEADER, "950,11,1,1,0.5,,0001-01-01T00:00:00"),
        ("impressions", IMPRESSIONS_HEADER, "950,11,1,1,0.5,,1969-12-31T23:59:59Z"),
        ("impressions", IMPRESSIONS_HEADER, "950,11,1,1,0.5,,2026-11-02T12:00:01Z"),  # the clock: 1 Nov 12:00
        ("dislikes", "user_id,movie_id,created_at\n", "11,1,2150-01-01T00:00:00Z"),
        ("ratings", "user_id,movie_id,rating,rated_at\n", "11,1,4,1900-01-01"),
    ],
)
def test_times_before_1970_or_more_than_a_day_ahead_are_refused(system, tmp_path, kind, header, row):
    load_world(system, tmp_path)
    before = count(system, impressions), count(system, user_dislikes), count(system, ratings)
    summary = system.import_file(write(tmp_path, "x.csv", header + row + "\n"), kind)
    assert summary.aborted and summary.imported == 0
    (error,) = summary.errors
    assert error.line == 2 and error.field in ("shown_at", "created_at", "rated_at")
    assert "must be a time from 1970 to the present (UTC, up to a day ahead)" in error.text
    assert (count(system, impressions), count(system, user_dislikes), count(system, ratings)) == before


def test_a_time_up_to_a_day_ahead_and_one_in_1970_are_accepted(system, tmp_path):
    load_world(system, tmp_path)
    shown = (
        IMPRESSIONS_HEADER + "950,11,1,1,0.5,,2026-11-02T12:00:00Z\n951,11,1,1,0.5,,1970-01-01T00:00:00Z\n"
    )
    summary = system.import_file(write(tmp_path, "x.csv", shown), "impressions")
    assert (summary.imported, summary.rejected) == (2, 0)


def test_a_dislike_without_a_time_before_its_list_says_the_time_is_missing(system, tmp_path):
    system.import_file(write(tmp_path, "m.csv", MOVIES_CSV), "movies")
    # A list shown later today (within the day ahead allowed): a dislike without a time takes
    # the import's, which comes before the list.
    system.import_file(
        write(tmp_path, "i.csv", IMPRESSIONS_HEADER + "960,11,1,1,0.5,,2026-11-01T18:00:00Z\n"), "impressions"
    )
    summary = system.import_file(
        write(tmp_path, "d.csv", "user_id,movie_id,recommendation_set_id\n11,1,960\n"), "dislikes"
    )
    (error,) = summary.errors
    assert error.field == "created_at"
    assert error.text.startswith("created_at is empty, so the dislike would take the time of the import")
    assert error.text.endswith("give the time the dislike was made")


def test_a_stored_list_is_never_changed_by_a_file_that_contradicts_it(system, tmp_path):
    load_world(system, tmp_path)  # list 900: films 1, 2, 3 at ranks 1-3, shown 1 Oct 10:00
    stored = snapshot(system.engine), shown_lists(system)
    other_time = IMPRESSIONS_HEADER + "900,11,5,4,0.30,,2026-10-09T10:00:00Z\n"
    other_score = IMPRESSIONS_HEADER + "900,11,1,1,0.10,,2026-10-01T10:00:00Z\n"
    other_rank = IMPRESSIONS_HEADER + "900,11,2,5,0.85,,2026-10-01T10:00:00Z\n"
    for content, field, text in (
        (other_time, "shown_at", "recommendation_set_id 900 was imported as shown at 2026-10-01 10:00"),
        (
            other_score,
            "predicted_score",
            "movie_id 1 of recommendation_set_id 900 was imported at rank 1 with",
        ),
        (other_rank, "rank", "movie_id 2 of recommendation_set_id 900 was imported at rank 2 with"),
    ):
        summary = system.import_file(write(tmp_path, "again.csv", content), "impressions", on_error="skip")
        (error,) = summary.errors
        assert (error.line, error.field) == (2, field) and error.message.startswith(text), error.message
        assert summary.imported == 0
        assert (snapshot(system.engine), shown_lists(system)) == stored
    # The same rows again, and a new film for the list at its time: accepted.
    same = (
        IMPRESSIONS_HEADER + "900,11,1,1,0.91,,2026-10-01T10:00:00Z\n900,11,5,4,0.30,,2026-10-01T10:00:00Z\n"
    )
    summary = system.import_file(write(tmp_path, "same.csv", same), "impressions")
    assert (summary.imported, summary.already_present, summary.rejected) == (1, 1, 0)


def test_a_list_without_a_time_can_be_imported_again(system, tmp_path, clock):
    load_world(system, tmp_path)
    path = write(tmp_path, "now.csv", IMPRESSIONS_HEADER + "970,11,1,1,0.5,,\n970,11,2,2,0.4,,\n")
    assert system.import_file(path, "impressions").imported == 2
    clock.advance(hours=3)  # an empty shown_at is the import's time: another time on a rerun
    summary = system.import_file(path, "impressions")
    assert (summary.imported, summary.already_present, summary.rejected) == (0, 2, 0)
    assert count(system, recommendation_sets) == 4
