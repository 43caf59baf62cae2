"""Imports and live writes of the same people: which rating wins, and what happens when both
write at once. Every test runs on SQLite and PostgreSQL (where they truly run side by side).
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

import pytest
from helpers import rows
from test_import import DISLIKES_HEADER, load_world, write

from feedback_core import ConflictError, ValidationError, importing
from feedback_core.catalog import store_ratings
from feedback_core.db import write_transaction
from feedback_core.schema import movies, ratings, recommendation_sets, user_dislikes

RATINGS_HEADER = "user_id,movie_id,rating,rated_at\n"


def rating_statistics_differences(system) -> list[str]:
    """Compare each film's rating count, sum and likes with a recount of its ratings."""
    recount: dict[int, list] = {}
    for r in rows(system, ratings):
        kept = recount.setdefault(r.movie_id, [0, 0.0, 0])
        kept[0] += 1
        kept[1] += r.rating
        kept[2] += r.rating >= 4
    problems = []
    for m in rows(system, movies):
        want = recount.get(m.movie_id, [0, 0.0, 0])
        have = [m.rating_count, m.rating_sum, m.like_count]
        if [want[0], round(want[1], 6), want[2]] != [have[0], round(have[1], 6), have[2]]:
            problems.append(f"movie {m.movie_id}: recount {want}, stored {have}")
    return problems


def stored_ratings(system) -> dict:
    return {(r.user_id, r.movie_id): (r.rating, r.rated_at) for r in rows(system, ratings)}


def test_the_latest_rating_is_kept_whatever_order_the_files_come_in(system, tmp_path):
    load_world(system, tmp_path)
    newer = write(
        tmp_path, "new.csv", RATINGS_HEADER + "1,1,5,2025-06-01T00:00:00Z\n1,2,4,2025-06-01T00:00:00Z\n"
    )
    older = write(
        tmp_path, "old.csv", RATINGS_HEADER + "1,1,1,2020-01-01T00:00:00Z\n1,2,4,2019-01-01T00:00:00Z\n"
    )
    assert system.import_file(newer, "ratings").imported == 2
    summary = system.import_file(older, "ratings")
    # An old export loaded after a newer one undoes nothing, not even the time of an equal rating.
    assert (summary.imported, summary.already_present) == (0, 2)
    assert stored_ratings(system) == {
        (1, 1): (5.0, datetime(2025, 6, 1)),
        (1, 2): (4.0, datetime(2025, 6, 1)),
    }
    # Within one file too, the later rating wins, wherever its line is.
    both = write(
        tmp_path, "both.csv", RATINGS_HEADER + "2,3,5,2025-06-01T00:00:00Z\n2,3,1,2020-01-01T00:00:00Z\n"
    )
    summary = system.import_file(both, "ratings")
    assert (summary.imported, summary.already_present) == (1, 1)
    assert stored_ratings(system)[(2, 3)] == (5.0, datetime(2025, 6, 1))
    # A live rating dated before the stored one is refused, saying why; a newer one replaces it.
    with pytest.raises(ConflictError) as info:
        system.record_rating(1, 1, 2, rated_at=datetime(2021, 1, 1))
    assert info.value.field == "rated_at"
    assert info.value.message == (
        "user 1 rated movie 1 5 at 2025-06-01 00:00:00, later than this rating (2021-01-01 00:00:00): "
        "the later rating is kept"
    )
    assert stored_ratings(system)[(1, 1)] == (5.0, datetime(2025, 6, 1))
    system.record_rating(1, 1, 2.5)
    assert stored_ratings(system)[(1, 1)][0] == 2.5
    assert rating_statistics_differences(system) == []


def test_a_rerun_without_times_moves_no_rating(system, tmp_path, clock):
    load_world(system, tmp_path)
    path = write(tmp_path, "r.csv", RATINGS_HEADER + "3,1,4,\n3,2,2.5,\n")
    assert system.import_file(path, "ratings").imported == 2
    first = stored_ratings(system)
    clock.advance(days=2)  # an empty rated_at is the import's time: later on the rerun
    summary = system.import_file(path, "ratings")
    assert (summary.imported, summary.already_present) == (0, 2)
    assert stored_ratings(system) == first


def test_a_live_rating_waits_for_a_batch_rating_the_same_film_and_counts_once(make_system, tmp_path):
    system, live = make_system(), make_system()
    load_world(system, tmp_path)
    done = []
    with write_transaction(system.engine) as conn:
        store_ratings(
            conn, [(5, 1, 4.0, datetime(2026, 10, 1))], datetime(2026, 11, 1)
        )  # a batch not yet committed
        # The same person rates the same film meanwhile: a first rating, as far as it can see.
        other = threading.Thread(target=lambda: done.append(live.record_rating(5, 1, 2.0)))
        other.start()
        time.sleep(0.5)  # long enough to read the ratings and reach its write
    other.join(10)
    assert done == [None]
    assert stored_ratings(system)[(5, 1)][0] == 2.0
    film = rows(system, movies, movies.c.movie_id == 1)[0]
    assert (film.rating_count, film.rating_sum, film.like_count) == (1, 2.0, 0)
    assert rating_statistics_differences(system) == []


def test_a_live_dislike_of_an_item_an_import_is_writing_is_stored_once(make_system, tmp_path, monkeypatch):
    system, live = make_system(), make_system()
    load_world(system, tmp_path)
    (shown,) = [r.recommendation_set_id for r in rows(system, recommendation_sets) if r.external_id == 900]
    found = importing.Importer._disliked_items
    outcomes = []

    def dislike_live_meanwhile(self, conn, set_ids):
        disliked = found(self, conn, set_ids)  # the batch now holds the item as not disliked
        other = threading.Thread(
            target=lambda: outcomes.append(
                live.record_dislike(user_id=11, movie_id=1, recommendation_set_id=shown, reason="wrong_genre")
            )
        )
        other.start()
        other.join(1.0)  # done by now, unless it waits for the batch to be written
        return disliked

    monkeypatch.setattr(importing.Importer, "_disliked_items", dislike_live_meanwhile)
    csv = DISLIKES_HEADER + "11,1,900,0.91,wrong_genre,,2026-10-01T10:05:00Z\n"
    summary = system.import_file(write(tmp_path, "d.csv", csv), "dislikes")
    deadline = time.monotonic() + 10
    while not outcomes and time.monotonic() < deadline:
        time.sleep(0.05)
    # One shown item, one dislike: the live one, had it gone first, would make the import's a repeat.
    assert summary.imported == 1 and outcomes[0]["duplicate"] is True
    assert [(r.user_id, r.movie_id) for r in rows(system, user_dislikes)] == [(11, 1)]


def test_an_equal_rating_at_a_later_time_moves_its_time_so_an_older_file_cannot_win(system, tmp_path):
    load_world(system, tmp_path)
    for name, rating, at in (
        ("jan.csv", 5, "2026-01-01"),
        ("mar.csv", 5, "2026-03-01"),  # the same rating, given again later
        ("feb.csv", 2, "2026-02-01"),  # an export older than March's
    ):
        system.import_file(
            write(tmp_path, name, RATINGS_HEADER + f"7,1,{rating},{at}T00:00:00Z\n"), "ratings"
        )
    assert stored_ratings(system)[(7, 1)] == (5.0, datetime(2026, 3, 1))
    assert rating_statistics_differences(system) == []


def test_a_live_rating_dated_out_of_range_is_refused_and_changes_nothing(system, clock):
    system.add_movies([{"movie_id": 1, "title": "A"}])
    for at in (
        datetime(9999, 12, 31),
        datetime(1, 1, 1),
        datetime(1969, 12, 31),
        clock() + timedelta(days=2),
    ):
        with pytest.raises(ValidationError) as info:
            system.record_rating(8, 1, 5, rated_at=at)
        assert info.value.field == "rated_at" and "from 1970 to the present" in info.value.message
    assert stored_ratings(system) == {}
    system.record_rating(8, 1, 1, rated_at=clock() + timedelta(hours=23))  # a clock a little ahead
    with pytest.raises(ConflictError):
        system.record_rating(8, 1, 2)  # now: earlier than the stored one
    assert stored_ratings(system)[(8, 1)][0] == 1.0


def test_an_import_of_many_people_in_one_batch_locks_their_slots_not_each_of_them(system, tmp_path):
    # On PostgreSQL a lock per person made a batch of 15,000 people fail ("out of shared memory").
    load_world(system, tmp_path)
    path = write(
        tmp_path,
        "many.csv",
        RATINGS_HEADER + "".join(f"{u},1,4,2026-01-01T00:00:00Z\n" for u in range(1, 20_001)),
    )
    summary = system.import_file(path, "ratings")
    assert (summary.imported, summary.rejected, summary.aborted) == (20_000, 0, False)
    film = rows(system, movies, movies.c.movie_id == 1)[0]
    assert (film.rating_count, film.like_count) == (20_000, 20_000)


def test_a_live_rating_without_a_time_confirms_an_equal_one_so_an_older_export_cannot_win(
    system, tmp_path, clock
):
    load_world(system, tmp_path)
    system.record_rating(2, 1, 5, rated_at=datetime(2025, 1, 1))
    system.record_rating(2, 1, 5)  # the person gives 5 again today
    assert stored_ratings(system)[(2, 1)] == (5.0, clock())
    summary = system.import_file(
        write(tmp_path, "mar.csv", RATINGS_HEADER + "2,1,1,2026-03-01T00:00:00Z\n"), "ratings"
    )
    assert (summary.imported, summary.already_present) == (0, 1)
    assert stored_ratings(system)[(2, 1)] == (5.0, clock())


def test_many_live_ratings_with_one_older_than_the_stored_write_none(system, tmp_path):
    load_world(system, tmp_path)
    system.record_rating(1, 1, 5, rated_at=datetime(2026, 6, 1))
    with pytest.raises(ConflictError) as info:
        system.record_ratings([(1, 1, 2, datetime(2026, 1, 1)), (1, 2, 4, datetime(2026, 1, 1))])
    assert info.value.field == "rated_at" and "the later rating is kept" in info.value.message
    assert stored_ratings(system) == {(1, 1): (5.0, datetime(2026, 6, 1))}  # (1, 2) not written either
    assert rating_statistics_differences(system) == []
    assert (
        system.record_ratings([(1, 1, 5), (1, 2, 4, datetime(2026, 1, 1))]) == 2
    )  # 5 again, now: its time moves
