"""The catalogue and ratings: add_movies, record_rating(s) and ``feedback-core import-catalog``."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone

import pytest
from conftest import row_counts
from helpers import count, rows

from feedback_core import ValidationError
from feedback_core.catalog import check_rating, validate_movie
from feedback_core.cli import main
from feedback_core.schema import movies, ratings

HEADER = "movie_id,title,genres,cast,franchise,year\n"


def movie(system, movie_id):
    found = rows(system, movies, movies.c.movie_id == movie_id)
    return found[0] if found else None


def stats(system, movie_id) -> tuple[int, float, int]:
    row = movie(system, movie_id)
    return row.rating_count, row.rating_sum, row.like_count


# ------------------------------------------------------------------ add_movies


def test_add_movies_stores_records_and_splits_pipe_lists(system):
    stored = system.add_movies(
        [
            {
                "movie_id": 1,
                "title": " Alien ",
                "genres": "Horror|Sci-Fi",
                "cast": "Sigourney Weaver| Tom Skerritt",
            },
            {
                "movie_id": "2",
                "title": "Aliens",
                "genres": ["Action", "Sci-Fi"],
                "franchise": "Alien",
                "year": "1986",
            },
            {"movie_id": 3, "title": "Untitled", "year": ""},
        ]
    )
    assert stored == 3
    one, two, three = movie(system, 1), movie(system, 2), movie(system, 3)
    assert (one.title, one.genres, one.cast) == (
        "Alien",
        ["Horror", "Sci-Fi"],
        ["Sigourney Weaver", "Tom Skerritt"],
    )
    assert (two.genres, two.franchise, two.year) == (["Action", "Sci-Fi"], "Alien", 1986)
    assert (three.genres, three.cast, three.franchise, three.year) == ([], [], None, None)
    assert stats(system, 1) == (0, 0.0, 0)


def test_add_movies_updates_metadata_and_keeps_rating_statistics(system):
    system.add_movies([{"movie_id": 1, "title": "Old title", "genres": "Drama"}])
    system.record_rating(7, 1, 4.5)
    system.add_movies([{"movie_id": 1, "title": "New title", "genres": "Drama|War", "year": 1999}])
    row = movie(system, 1)
    assert (row.title, row.genres, row.year) == ("New title", ["Drama", "War"], 1999)
    assert stats(system, 1) == (1, 4.5, 1)
    assert row_counts(system)["movies"] == 1


BAD_MOVIES = [
    ({"title": "No id"}, "movie_id"),
    ({"movie_id": 0, "title": "Zero"}, "movie_id"),
    ({"movie_id": -3, "title": "Negative"}, "movie_id"),
    ({"movie_id": "abc", "title": "Letters"}, "movie_id"),
    ({"movie_id": True, "title": "Bool"}, "movie_id"),
    ({"movie_id": 1}, "title"),
    ({"movie_id": 1, "title": "   "}, "title"),
    ({"movie_id": 1, "title": "x" * 301}, "title"),
    ({"movie_id": 1, "title": "Year", "year": 1500}, "year"),
    ({"movie_id": 1, "title": "Year", "year": "soon"}, "year"),
    ({"movie_id": 1, "title": "Genres", "genres": 5}, "genres"),
    ({"movie_id": 1, "title": "Genres", "genres": ["Drama", ""]}, "genres[1]"),
    ({"movie_id": 1, "title": "Cast", "cast": ["x"] * 51}, "cast"),
    ({"movie_id": 1, "title": "Franchise", "franchise": 12}, "franchise"),
    ("not a record", "record"),
]


@pytest.mark.parametrize("record, field", BAD_MOVIES)
def test_validate_movie_rejects_bad_records(record, field):
    with pytest.raises(ValidationError) as caught:
        validate_movie(record)
    assert caught.value.field == field


def test_a_bad_record_stores_nothing_and_names_its_position(system):
    system.add_movies([{"movie_id": 9, "title": "Already here"}])
    before = row_counts(system)
    batch = [
        {"movie_id": 1, "title": "Fine"},
        {"movie_id": 2, "title": "Also fine"},
        {"movie_id": 3, "year": 2000},
    ]
    with pytest.raises(ValidationError) as caught:
        system.add_movies(batch)
    assert caught.value.field == "records[2].title"
    assert "records[2]" in caught.value.message
    assert row_counts(system) == before
    assert movie(system, 1) is None


# ------------------------------------------------------------------ ratings

RATINGS = [(1, 1.0), (1.5, 1.5), (3, 3.0), (3.5, 3.5), ("4.5", 4.5), (5, 5.0)]
BAD_RATINGS = [0, 0.5, 5.5, 6, 3.3, 4.25, -1, float("nan"), float("inf"), "abc", "", None, True, [4]]


@pytest.mark.parametrize("given, stored", RATINGS)
def test_check_rating_accepts_half_stars(given, stored):
    assert check_rating(given) == stored


@pytest.mark.parametrize("given", BAD_RATINGS)
def test_check_rating_rejects_everything_else(given):
    with pytest.raises(ValidationError) as caught:
        check_rating(given)
    assert caught.value.field == "rating"


def test_ratings_keep_movie_statistics_in_step(system, clock):
    system.add_movies([{"movie_id": 1, "title": "A"}, {"movie_id": 2, "title": "B"}])
    system.record_rating(10, 1, 3.5)
    assert stats(system, 1) == (1, 3.5, 0)
    system.record_rating(11, 1, 4.5)
    assert stats(system, 1) == (2, 8.0, 1)
    clock.advance(days=1)
    system.record_rating(10, 1, 5)  # re-rating replaces: count stays, sum and likes move
    assert stats(system, 1) == (2, 9.5, 2)
    system.record_rating(11, 1, 1.5)  # a like taken back
    assert stats(system, 1) == (2, 6.5, 1)
    assert stats(system, 2) == (0, 0.0, 0)
    stored = {(r.user_id, r.movie_id): (r.rating, r.rated_at) for r in rows(system, ratings)}
    assert stored == {(10, 1): (5.0, clock()), (11, 1): (1.5, clock())}


def test_rating_statistics_equal_a_recount_after_many_changes(system):
    system.add_movies([{"movie_id": m, "title": f"M{m}"} for m in range(1, 6)])
    batch = [(u, 1 + (u * 7 + k) % 5, 1 + ((u + k) % 9) / 2) for u in range(1, 30) for k in range(3)]
    system.record_ratings(batch)
    system.record_ratings([(u, m, 6 - r) for u, m, r in batch[::4]])
    final = {(r.user_id, r.movie_id): r.rating for r in rows(system, ratings)}
    for m in range(1, 6):
        mine = [r for (_, mm), r in final.items() if mm == m]
        count, total, likes = stats(system, m)
        assert count == len(mine)
        assert total == pytest.approx(sum(mine))
        assert likes == sum(1 for r in mine if r >= 4)


def test_malformed_rating_rows_are_refused_naming_the_row_and_nothing_is_stored(system):
    system.add_movies([{"movie_id": 1, "title": "A"}])
    for bad, field in [
        ([(1, 1)], "rows[0]"),
        ([None], "rows[0]"),
        ([(1, 1, 4.5, 7, 8)], "rows[0]"),
        ([(1, 1, 4.5), (1, 1, 4.5, "2024-01-01")], "rated_at"),
        ([(1, 1, 4.5, datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))))], "rated_at"),
    ]:
        with pytest.raises(ValidationError) as err:
            system.record_ratings(bad)
        assert err.value.field == field, err.value.message
    assert count(system, ratings) == 0


def test_a_bulk_rating_naming_a_pair_twice_keeps_the_last(system):
    system.add_movies([{"movie_id": 1, "title": "A"}])
    assert system.record_ratings([(5, 1, 2.0), (5, 1, 4.0)]) == 1
    assert stats(system, 1) == (1, 4.0, 1)


@pytest.mark.parametrize(
    "row, field",
    [
        ((1, 1, 6.0), "rating"),
        ((0, 1, 4.0), "user_id"),
        ((1, "x", 4.0), "movie_id"),
        ((1, 1, float("nan")), "rating"),
    ],
)
def test_bad_ratings_change_nothing(system, row, field):
    system.add_movies([{"movie_id": 1, "title": "A"}])
    system.record_rating(3, 1, 4.0)
    before = row_counts(system)
    with pytest.raises(ValidationError) as caught:
        system.record_ratings([(2, 1, 3.0), row])
    assert caught.value.field == field and "rows[1]" in caught.value.message
    assert row_counts(system) == before
    assert stats(system, 1) == (1, 4.0, 1)


def test_rating_a_film_outside_the_catalogue_is_an_error(system):
    system.add_movies([{"movie_id": 1, "title": "A"}])
    before = row_counts(system)
    with pytest.raises(ValidationError, match="not in the catalogue: 99"):
        system.record_ratings([(2, 1, 3.0), (2, 99, 4.0)])
    assert row_counts(system) == before


# ------------------------------------------------------------------ import-catalog


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_import_catalog_from_csv(system, tmp_path, capsys):
    path = tmp_path / "films.csv"
    path.write_text(
        "\ufeff"  # a byte-order mark, as spreadsheets write
        + HEADER
        + "1,Alien,Horror|Sci-Fi,Sigourney Weaver|Tom Skerritt,Alien,1979\n"
        + '2,"Crouching Tiger, Hidden Dragon",Action|Drama,,,2000\n'
        + "\n"
        + "3,Heat,Crime,Al Pacino|Robert De Niro,,\n",
        encoding="utf-8",
    )
    code, out, err = run(capsys, "--db", system.settings.database_url, "import-catalog", path)
    assert code == 0, err
    assert "3 imported" in out
    assert row_counts(system)["movies"] == 3
    alien, tiger, heat = movie(system, 1), movie(system, 2), movie(system, 3)
    assert (alien.genres, alien.cast, alien.franchise, alien.year) == (
        ["Horror", "Sci-Fi"],
        ["Sigourney Weaver", "Tom Skerritt"],
        "Alien",
        1979,
    )
    assert (tiger.title, tiger.cast, tiger.franchise) == ("Crouching Tiger, Hidden Dragon", [], None)
    assert heat.year is None


def test_import_catalog_from_json_lines_updates_existing_films(system, tmp_path, capsys):
    system.add_movies([{"movie_id": 1, "title": "Old"}])
    system.record_rating(4, 1, 5.0)
    path = tmp_path / "films.jsonl"
    lines = [
        {
            "movie_id": 1,
            "title": "Alien",
            "genres": ["Horror", "Sci-Fi"],
            "cast": "Sigourney Weaver",
            "year": 1979,
        },
        {"movie_id": 2, "title": "Aliens", "genres": "Action|Sci-Fi", "franchise": "Alien"},
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n", encoding="utf-8")
    code, out, err = run(capsys, "--db", system.settings.database_url, "import-catalog", path, "--batch", "1")
    assert code == 0, err
    assert "2 imported" in out
    assert (movie(system, 1).title, movie(system, 1).genres, movie(system, 1).cast) == (
        "Alien",
        ["Horror", "Sci-Fi"],
        ["Sigourney Weaver"],
    )
    assert stats(system, 1) == (1, 5.0, 1)
    assert movie(system, 2).franchise == "Alien"


def test_import_catalog_csv_errors_name_their_lines_and_import_nothing(system, tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text(
        HEADER
        + "1,Fine,Drama,,,1990\n"  # line 2
        + "\n"  # line 3: blank lines are skipped but still counted
        + "2,Bad year,Drama,,,1492\n"  # line 4
        + "3,Too,many,columns,,,,\n"  # line 5
        + "x,Bad id,Drama,,,\n"  # line 6
        + "5,,Drama,,,\n",  # line 7: no title
        encoding="utf-8",
    )
    before = row_counts(system)
    code, out, err = run(capsys, "--db", system.settings.database_url, "import-catalog", path)
    assert code == 2
    assert f"{path}:4: year must be between 1870 and 2100, got 1492" in err
    assert f"{path}:5: expected 6 columns" in err
    assert f"{path}:6: movie_id must be a positive integer" in err
    assert f"{path}:7: title is required (the film's name)" in err
    assert f"{path}:2:" not in err
    assert "4 bad row(s): import stopped, nothing of the failing batch imported" in err
    assert row_counts(system) == before
    assert "0 imported" in out


def test_import_catalog_json_lines_errors_name_their_lines(system, tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"movie_id": 1, "title": "Fine"}\n'
        + '{"movie_id": 2, "title": "Broken"\n'  # line 2
        + "[1, 2]\n"  # line 3
        + '{"movie_id": 4, "title": "Genres", "genres": 7}\n',  # line 4
        encoding="utf-8",
    )
    before = row_counts(system)
    code, _, err = run(capsys, "--db", system.settings.database_url, "import-catalog", path)
    assert code == 2
    assert f"{path}:2: invalid JSON" in err
    assert f"{path}:3: each line must be a JSON object" in err
    assert f"{path}:4: genres must be a list of strings" in err
    assert f"{path}:1:" not in err
    assert "3 bad row(s)" in err
    assert row_counts(system) == before


def test_import_catalog_rejects_a_file_that_is_not_utf8(system, tmp_path, capsys):
    path = tmp_path / "latin1.csv"
    path.write_bytes((HEADER + "1,Fine,Drama,,,\n2,Am\xe9lie,Comedy,,,2001\n").encode("latin-1"))
    before = row_counts(system)
    code, _, err = run(capsys, "--db", system.settings.database_url, "import-catalog", path)
    assert code == 2
    assert f"{path}:3: the line is not valid UTF-8 (byte 5)" in err
    assert row_counts(system) == before


def test_many_errors_are_summarised(system, tmp_path, capsys):
    path = tmp_path / "many.csv"
    path.write_text(HEADER + "".join(f"{i},,Drama,,,\n" for i in range(1, 31)), encoding="utf-8")
    code, _, err = run(capsys, "--db", system.settings.database_url, "import-catalog", path)
    assert code == 2
    assert err.count("title is required") == 20
    assert "... and 10 more bad row(s)" in err
    assert "30 bad row(s): import stopped" in err
    assert row_counts(system)["movies"] == 0


def test_rating_sum_stays_exact_for_half_stars(system):
    system.add_movies([{"movie_id": 1, "title": "A"}])
    system.record_ratings([(u, 1, 0.5 + 0.5 * (u % 9 + 1)) for u in range(1, 101)])
    count, total, _ = stats(system, 1)
    assert count == 100
    assert math.isclose(total, sum(0.5 + 0.5 * (u % 9 + 1) for u in range(1, 101)))


@pytest.mark.parametrize(
    "year,stored",
    [("1999", 1999), (" 2001 ", 2001), (1999.0, 1999), (1999, 1999), ("", None), (None, None)],
)
def test_a_whole_year_is_stored(year, stored):
    assert validate_movie({"movie_id": 1, "title": "T", "year": year}).year == stored


@pytest.mark.parametrize("year", [1999.7, True, "1999.5", "MCMXCIX", [1999], float("nan")])
def test_a_year_that_is_not_whole_is_refused_as_given(year):
    with pytest.raises(ValidationError) as info:
        validate_movie({"movie_id": 1, "title": "T", "year": year})
    assert info.value.field == "year"
    assert info.value.message == f"year must be a whole number such as 1999, got {year!r}"


def test_a_year_of_digits_python_cannot_read_is_refused_not_a_crash():
    with pytest.raises(ValidationError) as info:
        validate_movie({"movie_id": 1, "title": "T", "year": "199²"})  # str.isdigit() says yes
    assert info.value.field == "year"
