"""What real exports bring to an import: films in several files, MovieLens's placeholders, a
quote never closed, JSON arrays, double clicks, ids and times in the wrong form, and what the
command line says when an import stops or is interrupted.

Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
import signal
import subprocess
from datetime import datetime

from helpers import count, rows
from reliability_support import recount_differences
from sqlalchemy import select
from test_import import (
    DISLIKES_HEADER,
    MOVIES_CSV,
    import_in_a_child,
    load_world,
    run,
    write,
)

from feedback_core.schema import (
    feature_adjustments,
    impressions,
    movies,
    negative_examples,
    ratings,
    user_dislikes,
)


def films(system) -> dict[int, tuple]:
    with system.engine.connect() as conn:
        return {
            r.movie_id: (r.title, r.genres, r.cast, r.franchise, r.year)
            for r in conn.execute(select(movies).order_by(movies.c.movie_id))
        }


# ---------------------------------------------------------------- films


def test_a_file_without_some_columns_keeps_what_the_catalogue_has(system, tmp_path):
    system.import_file(write(tmp_path, "movies.csv", MOVIES_CSV), "movies")
    before = films(system)
    # A file of titles alone (a MovieLens-style first file, a later one of cast): it erased every
    # genre, cast member, franchise and year of the films it named.
    summary = system.import_file(
        write(tmp_path, "titles.csv", "movie_id,title\n1,Alien (1979)\n7,Ran\n"), "movies"
    )
    assert (summary.imported, summary.rejected) == (2, 0)
    after = films(system)
    assert after[1] == ("Alien (1979)", *before[1][1:])
    assert after[7] == ("Ran", [], [], None, None)  # a new film: what the file gives
    assert {k: v for k, v in after.items() if k not in (1, 7)} == {k: v for k, v in before.items() if k != 1}
    # A column the file has, with an empty cell, clears the field.
    system.import_file(write(tmp_path, "cast.csv", "movie_id,title,cast,year\n2,Aliens,,\n"), "movies")
    assert films(system)[2] == ("Aliens", before[2][1], [], before[2][3], None)
    # JSON lines: a field left out keeps, a null clears.
    lines = '{"movie_id": 4, "title": "Heat", "year": null}\n{"movie_id": 5, "title": "Amelie"}\n'
    system.import_file(write(tmp_path, "m.jsonl", lines), "movies")
    assert films(system)[4] == ("Heat", *before[4][1:4], None)
    assert films(system)[5] == ("Amelie", *before[5][1:])
    # The library's add_movies is the same: a record without genres keeps the film's genres.
    system.add_movies([{"movie_id": 6, "title": "Up!"}])
    assert films(system)[6] == ("Up!", *before[6][1:])


def test_a_csv_year_written_as_a_float_is_taken_as_json_s_is(system, tmp_path):
    content = "movie_id,title,year\n1,A,1999.0\n2,B,1999.5\n"
    summary = system.import_file(write(tmp_path, "m.csv", content), "movies", on_error="skip")
    assert films(system)[1][4] == 1999
    assert [(e.line, e.field) for e in summary.errors] == [(3, "year")]


def test_rows_of_one_film_apply_in_order_whatever_the_batches(system, tmp_path):
    lines = (
        '{"movie_id": 1, "title": "Old", "genres": ["Drama"], "year": 1990}\n'
        '{"movie_id": 1, "title": "New title"}\n'
        '{"movie_id": 1, "title": "Newer", "year": null}\n'
    )
    path = write(tmp_path, "m.jsonl", lines)
    for batch_size in (1, 1000):  # one batch held the last row alone: the first row's fields were lost
        system.add_movies([{"movie_id": 1, "title": "Before", "genres": [], "cast": ["X"], "year": 1980}])
        system.import_file(path, "movies", batch_size=batch_size)
        assert films(system)[1] == ("Newer", ["Drama"], ["X"], None, None), batch_size
    # add_movies alike: the later record's title, the earlier one's genres.
    system.add_movies([{"movie_id": 2, "title": "A", "genres": ["Comedy"]}, {"movie_id": 2, "title": "B"}])
    assert films(system)[2][:2] == ("B", ["Comedy"])


def test_movielens_no_genres_listed_is_no_genre(system, tmp_path):
    content = "movie_id,title,genres\n1,Untitled,(no genres listed)\n2,Half known,Drama|(No Genres Listed)\n"
    system.import_file(write(tmp_path, "movies.csv", content), "movies")
    assert {k: v[1] for k, v in films(system).items()} == {1: [], 2: ["Drama"]}
    system.record_dislike(
        user_id=5, movie_id=1, movie_title="Untitled", reason="wrong_genre", predicted_score=0.5
    )
    # No proposal to turn down a genre called "(no genres listed)".
    assert [r.feature_value for r in rows(system, feature_adjustments)] == []


# ---------------------------------------------------------------- the file itself


def test_a_quote_never_closed_stops_the_import_instead_of_swallowing_rows(system, tmp_path):
    system.import_file(write(tmp_path, "movies.csv", MOVIES_CSV), "movies")
    good = [f"{u},{1 + u % 6},4\n" for u in range(1, 400)]
    body = "".join(good[:100]) + '100,"1,4\n' + "".join(good[100:])  # line 102 opens a quote
    path = write(tmp_path, "r.csv", "user_id,movie_id,rating\n" + body)
    summary = system.import_file(path, "ratings", on_error="skip", batch_size=50)
    # Skipped as one bad row, it took the 298 lines after it along, unreported.
    assert summary.file_error is not None and summary.aborted
    assert "a quote opened on line 102 seems never to be closed, so lines 102 to" in summary.file_error
    assert [e.line for e in summary.errors] == [102]
    assert summary.imported == 100 and count(system, ratings) == 100  # the complete batches before it
    # Near the end of the file: the same, not one film quietly lost.
    content = MOVIES_CSV + '7,"Ran,Drama,,,1985\n8,Ikiru,Drama,,,1952\n'
    summary = system.import_file(write(tmp_path, "m.csv", content), "movies", on_error="skip")
    assert summary.file_error is not None and "line 8" in summary.file_error
    assert 8 not in films(system) and 7 not in films(system)


def test_a_quote_left_open_on_the_last_line_also_stops_the_import(system, tmp_path):
    content = MOVIES_CSV + '7,"Ran,Drama,,,1985\n'
    summary = system.import_file(write(tmp_path, "m.csv", content), "movies", on_error="skip")
    assert (
        summary.file_error is not None
        and "a quote opened on line 8 seems never to be closed;" in summary.file_error
    )


def test_a_field_past_the_csv_limit_is_a_bad_row_not_an_open_quote(system, tmp_path):
    content = MOVIES_CSV + f"7,{'x' * 140_000},Drama,,,1985\n8,Ikiru,Drama,,,1952\n"
    summary = system.import_file(write(tmp_path, "m.csv", content), "movies", on_error="skip")
    assert summary.file_error is None
    assert [(e.line, e.text) for e in summary.errors] == [
        (8, "a field is longer than the 131,072 characters a CSV field may have")
    ]
    assert 8 in films(system) and 7 not in films(system)


def test_a_json_array_is_named_as_such(system, tmp_path):
    content = '[\n{"movie_id": 1, "title": "A"},\n{"movie_id": 2, "title": "B"}\n]\n'
    summary = system.import_file(write(tmp_path, "movies.json", content), "movies", on_error="skip")
    assert summary.file_error is not None and summary.file_error.startswith("the file is a JSON array")
    assert "jq -c '.[]'" in summary.file_error
    assert count(system, movies) == 0  # before: the one line that parsed alone was imported
    # Whatever its name says: its content starts a JSON array (it was read as CSV).
    summary = system.import_file(write(tmp_path, "movies.txt", content), "movies")
    assert summary.file_error is not None and summary.file_error.startswith("the file is a JSON array")


def test_row_messages_say_what_was_wrong_and_what_is_allowed(system, tmp_path):
    lines = (
        '{"movie_id": 1, "title": "A", "imdb_id": "tt1"}\n'  # a field, not a column
        '{"movie_id": 9223372036854775808, "title": "B"}\n'  # positive, but too large
    )
    summary = system.import_file(write(tmp_path, "m.jsonl", lines), "movies", on_error="skip")
    texts = [e.text for e in summary.errors]
    assert texts[0].startswith("unknown field(s) imdb_id; a movies file has movie_id, title")
    assert (
        texts[1]
        == "movie_id must be a positive integer no larger than 9223372036854775807, got 9223372036854775808"
    )
    load_world(system, tmp_path)
    summary = system.import_file(
        write(tmp_path, "d.jsonl", '{"user_id": 11, "movie_id": 1, "created_at": 1700000000}\n'), "dislikes"
    )
    assert summary.errors[0].text.endswith("(text), got 1700000000")


# ---------------------------------------------------------------- dislikes


def test_a_double_click_without_a_list_is_one_dislike_as_live(system, tmp_path):
    load_world(system, tmp_path)
    times = ["2026-10-05T10:00:00", "2026-10-05T10:00:03", "2026-10-05T10:05:00"]
    body = "".join(f"21,1,,0.5,wrong_genre,,{t}Z\n" for t in times)
    path = write(tmp_path, "d.csv", DISLIKES_HEADER + body)
    summary = system.import_file(path, "dislikes")
    # The second click, 3 s after the first, is the first again (10 s window), as live.
    assert (summary.imported, summary.already_present, summary.rejected) == (2, 1, 0)
    for t in times:
        system.record_dislike(
            user_id=22,
            movie_id=1,
            movie_title="Alien",
            reason="wrong_genre",
            predicted_score=0.5,
            created_at=datetime.fromisoformat(t),
        )

    def of(table, user_id):
        return sum(1 for r in rows(system, table) if r.user_id == user_id)

    for table in (user_dislikes, negative_examples, feature_adjustments):
        assert of(table, 21) == of(table, 22) and of(table, 21) > 0, table.name
    assert of(user_dislikes, 21) == 2
    summary = system.import_file(path, "dislikes")
    assert (summary.imported, summary.already_present) == (0, 3)
    assert recount_differences(system.engine) == []


def test_double_clicks_are_taken_in_time_order_across_batches_and_undo(system, tmp_path):
    load_world(system, tmp_path)
    # 8 s first, then 0 and 16 (window 10 s): in time order 0 stays, 8 repeats it, 16 stays.
    body = "".join(f"31,1,,0.5,other,,2026-10-05T10:00:{s:02d}Z\n" for s in (8, 0, 16))
    for user, batch_size in ((31, 1000), (32, 1)):
        path = write(tmp_path, f"d{user}.csv", DISLIKES_HEADER + body.replace("31,", f"{user},"))
        summary = system.import_file(path, "dislikes", batch_size=batch_size)
        stored = sorted(r.created_at.second for r in rows(system, user_dislikes) if r.user_id == user)
        if batch_size == 1:  # batch by batch, in file order: 8 stays, 0 and 16 repeat it
            assert stored == [8] and (summary.imported, summary.already_present) == (1, 2)
        else:
            assert stored == [0, 16] and (summary.imported, summary.already_present) == (2, 1)
    # Undone since, the first click does not come back through its repeat on a rerun.
    first = next(
        r.dislike_id for r in rows(system, user_dislikes) if r.user_id == 31 and r.created_at.second == 0
    )
    system.retract_dislike(first, 31)
    summary = system.import_file(write(tmp_path, "d31.csv", DISLIKES_HEADER + body), "dislikes")
    assert (summary.imported, summary.already_present) == (0, 3)


# ---------------------------------------------------------------- the command line


def test_an_aborted_import_accounts_for_every_row_read(system, tmp_path, capsys):
    load_world(system, tmp_path)
    good = [f"11,{m},,0.5,other,,2026-10-0{m}T10:00:00Z\n" for m in (1, 2, 3, 4, 5, 6)]
    body = good[0] + good[1] + "11,2,,0.5,bored,,\n" + "".join(good[2:])
    path = write(tmp_path, "d.csv", DISLIKES_HEADER + body)
    code, out, err = run(
        capsys, "--db", system.settings.database_url, "import", path, "--kind", "dislikes", "--batch", "2"
    )
    assert code == 2
    # 5 read: 2 imported (the first batch), 1 rejected, and 2 more read with the failing batch;
    # not the row read to see that batch end, nor those after it.
    assert (
        "5 rows read, 2 imported, 0 already present, 1 rejected, 2 good row(s) left out with the failing batch"
        in out
    )


def test_ctrl_c_says_what_was_kept_and_that_a_rerun_finishes(system, tmp_path):
    child, _, base = import_in_a_child(system, tmp_path, 3000, subprocess.PIPE)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    kept = count(system, impressions) - base
    assert 0 < kept < 9000, "the import must be interrupted mid-file"
    said = re.search(r"interrupted: ([\d,]+) row\(s\) in ([\d,]+) complete batch", err)
    assert said is not None, err[-400:]
    # What it says was kept is; the batch it stopped may have committed just before (30 rows).
    reported = int(said.group(1).replace(",", ""))
    assert reported % 30 == 0 and reported <= kept <= reported + 30
    assert "run the same command again to import the rest" in err
