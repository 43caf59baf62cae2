"""db.reading: a dashboard page's reads share one read transaction, so they see one snapshot.

Every test runs on SQLite and, with ``FEEDBACK_TEST_PG_URL`` set, on PostgreSQL; transactions and
pool checkouts are counted with the engine's own events.
"""

from __future__ import annotations

import contextvars
import threading
from collections import Counter
from collections.abc import Callable

import pytest
from conftest import PG_SKIP, PG_URL
from dashboard_data import build_sample
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import DBAPIError

from feedback_core import FeedbackSystem, lookups, queries
from feedback_core.db import read_connection, reading, write_transaction
from feedback_core.errors import DatabaseUnavailableError
from feedback_core.schema import user_dislikes


@pytest.fixture
def sample(system) -> FeedbackSystem:
    build_sample(system, users=8, days=6)
    return system


@pytest.fixture
def opened(system):
    """Count what the system's engine opens: read transactions (``begin``) and pool checkouts."""
    counts: Counter = Counter()

    def on_begin(_conn):
        counts["begin"] += 1

    def on_checkout(*_args):
        counts["checkout"] += 1

    event.listen(system.engine, "begin", on_begin)
    event.listen(system.engine, "checkout", on_checkout)
    yield counts
    event.remove(system.engine, "begin", on_begin)
    event.remove(system.engine, "checkout", on_checkout)


def dashboard_reads(system: FeedbackSystem) -> list[Callable[[], object]]:
    """Every data function the dashboard's pages call, with the arguments a page would pass."""
    bounds = queries.get_data_bounds(system)
    start, end = bounds["first_day"], bounds["last_day"]
    window = (start, end, (), ())
    user = lookups.list_recent_users(system, limit=1)[0]
    adjustment = int(lookups.list_adjustment_inbox(system, limit=1)["adjustment_id"].iloc[0])
    return [
        lambda: queries.get_database_state(system),
        lambda: queries.get_data_bounds(system),
        lambda: queries.list_filter_versions(system),
        lambda: queries.get_overview(system, *window),
        lambda: queries.get_latest_day_check(system, end),
        lambda: queries.list_daily_rates(system, *window),
        lambda: queries.list_version_activations(system),
        lambda: queries.list_reason_counts(system, *window),
        lambda: queries.list_reason_trend(system, *window),
        lambda: queries.list_reason_genre(system, start, end),
        lambda: lookups.list_latest_dislikes(system, *window, limit=100),
        lambda: queries.list_score_histogram(system, start, end),
        lambda: queries.list_error_by_version(system, *window),
        lambda: queries.list_confident_mistakes(system, limit=15),
        lambda: queries.list_versions(system),
        lambda: queries.compare_versions(system, 1, 2),
        lambda: lookups.list_adjustment_inbox(system, status="proposed"),
        lambda: lookups.list_adjustment_inbox(system, status="applied", limit=200),
        lambda: lookups.preview_adjustment(system, adjustment),
        lambda: queries.get_retrain_status(system),
        lambda: queries.list_job_history(system, limit=50),
        lambda: lookups.list_recent_users(system, limit=20),
        lambda: lookups.get_user_profile(system, user),
        lambda: lookups.list_user_lists(system, user, sets=10),
        lambda: lookups.get_adjustment_effects(system, user),
        lambda: lookups.list_audit_facets(system),
        lambda: lookups.list_audit(system, start, end, limit=1000),
    ]


def snapshot(system: FeedbackSystem) -> dict:
    """The numbers a page shows about dislikes, from three data functions."""
    end = system.now().date()
    overview = queries.get_overview(system, end, end)
    latest = lookups.list_latest_dislikes(system, end, end, limit=1000)
    return {
        "dislikes": overview["current"]["dislikes"],
        "latest": sorted(int(i) for i in latest["dislike_id"]),
        "recent_users": lookups.list_recent_users(system, limit=50),
        "reasons": queries.list_reason_counts(system, end, end).to_dict("records"),
    }


def count_dislikes(system: FeedbackSystem) -> int:
    """Count dislikes on a connection of its own, outside any reading session."""
    with system.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(user_dislikes)).scalar_one()


def test_every_data_function_of_every_page_shares_one_transaction(sample, opened):
    reads = dashboard_reads(sample)
    opened.clear()
    for read in reads:
        read()
    alone = opened.copy()
    assert alone["begin"] >= len(reads)  # each opens its own transactions outside a session
    opened.clear()
    with reading(sample.engine):
        for read in reads:
            read()
    assert opened == {"begin": 1, "checkout": 1}


def test_a_session_reads_one_snapshot_while_a_write_commits(sample, opened):
    before = snapshot(sample)
    stored = count_dislikes(sample)
    with reading(sample.engine):
        first = snapshot(sample)
        with read_connection(sample.engine) as reader, write_transaction(sample.engine) as writer:
            assert writer is not reader  # the write has a connection (and transaction) of its own
        recorded = sample.record_dislike(user_id=901, movie_id=7, predicted_score=0.9, reason="other")
        assert count_dislikes(sample) == stored + 1  # committed: other connections see it at once
        assert snapshot(sample) == first == before  # the session's reads do not
    after = snapshot(sample)
    assert after["dislikes"] == before["dislikes"] + 1
    assert recorded["dislike_id"] in after["latest"] and 901 in after["recent_users"]
    assert opened["begin"] >= 2  # the write's transaction, then the reads after the session


def test_nested_reads_share_the_connection_and_begin_once(system, opened):
    with reading(system.engine):
        with reading(system.engine):  # an inner session leaves the transaction to the outer one
            with read_connection(system.engine) as outer:
                with read_connection(system.engine) as inner:
                    assert inner is outer
                    inner.execute(text("SELECT 1"))
            with read_connection(system.engine) as later:
                assert later is outer and later.in_transaction()
        with read_connection(system.engine) as still:
            assert still is outer
    assert opened == {"begin": 1, "checkout": 1}
    assert outer.closed  # the session ended: back to the pool
    with read_connection(system.engine) as own:
        assert own is not outer
    assert opened == {"begin": 2, "checkout": 2}


def test_a_session_without_reads_opens_nothing(system, opened):
    with reading(system.engine):
        pass  # a page answered from the cache
    assert opened == {}


def test_the_session_reads_one_snapshot_only_and_the_pool_forgets_it(system, backend):
    with reading(system.engine):
        with read_connection(system.engine) as conn:
            if backend == "postgresql":
                # READ COMMITTED would take a new snapshot per statement.
                assert conn.execute(text("SHOW transaction_isolation")).scalar() == "repeatable read"
                assert conn.execute(text("SHOW transaction_read_only")).scalar() == "on"
            else:
                conn.execute(text("SELECT count(*) FROM user_dislikes"))
    # The pooled connection goes back to ordinary transactions: writes work, reads see them.
    recorded = system.record_dislike(
        user_id=902, movie_id=3, movie_title="Film 3", predicted_score=0.2, reason="other"
    )
    with read_connection(system.engine) as conn:
        if backend == "postgresql":
            assert conn.execute(text("SHOW transaction_isolation")).scalar() == "read committed"
        found = conn.execute(
            select(user_dislikes.c.user_id).where(user_dislikes.c.dislike_id == recorded["dislike_id"])
        ).scalar()
    assert found == 902


def test_a_failed_read_ends_the_transaction_and_the_next_read_opens_another(sample, opened):
    with reading(sample.engine):
        users = lookups.list_recent_users(sample, limit=5)
        with pytest.raises(DBAPIError) as failed:
            with read_connection(sample.engine) as conn:
                conn.execute(text("SELECT * FROM no_such_table"))
        assert not isinstance(failed.value, DatabaseUnavailableError)  # a wrong query stays one
        # On PostgreSQL a failed statement spoils its transaction; the session starts another.
        assert lookups.list_recent_users(sample, limit=5) == users
    assert opened == {"begin": 2, "checkout": 2}


def test_a_connection_lost_inside_a_session_says_the_database_is_unavailable(sample, backend):
    if backend != "postgresql":
        pytest.skip("a server connection to terminate is PostgreSQL's")
    with reading(sample.engine):
        with read_connection(sample.engine) as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        with sample.engine.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            admin.commit()
        with pytest.raises(DatabaseUnavailableError):
            lookups.list_recent_users(sample, limit=5)
        assert lookups.list_recent_users(sample, limit=5)  # the next read reconnects
    assert lookups.list_recent_users(sample, limit=5)


def test_a_session_belongs_to_its_thread(system):
    seen = {}

    def read(name: str) -> None:
        with read_connection(system.engine) as conn:
            conn.execute(text("SELECT 1"))
            seen[name] = conn

    with reading(system.engine):
        read("own")
        read("own again")
        # A thread given a copy of this context must not use the session's connection at once.
        worker = threading.Thread(target=contextvars.copy_context().run, args=(read, "thread"))
        worker.start()
        worker.join()
    assert seen["own"] is seen["own again"]
    assert seen["thread"] is not seen["own"]


def test_statements_run_in_turn_on_one_cursor_raise_as_sqlalchemy_does_and_roll_back(system):
    from datetime import date

    from sqlalchemy.exc import IntegrityError

    from feedback_core.aggregates import _DAILY, _HISTOGRAM
    from feedback_core.db import Prepared
    from feedback_core.schema import daily_dislikes, daily_score_histogram

    day = date(2026, 11, 30)
    with pytest.raises(IntegrityError) as caught:
        with write_transaction(system.engine) as conn:
            Prepared.execute_all(
                conn,
                [
                    _DAILY.run(conn, [(day, 0, "wrong_genre", 0, 1, 0.5, 1)]),
                    _HISTOGRAM.run(conn, []),  # nothing to write: skipped
                    _HISTOGRAM.run(conn, [(day, 987654, "other", 3, None)]),  # dislikes may not be NULL
                ],
            )
    # Bound values stay out of the message, as with SQLAlchemy's hide_parameters (PostgreSQL's
    # own detail may still name the failing row: error bodies never carry messages).
    assert "[parameters:" not in str(caught.value)
    assert system.engine.dialect.name != "sqlite" or "987654" not in str(caught.value)
    with read_connection(system.engine) as conn:
        assert conn.execute(select(func.count()).select_from(daily_dislikes)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(daily_score_histogram)).scalar() == 0
    with write_transaction(system.engine) as conn:  # the connection works on
        Prepared.execute_all(conn, [_HISTOGRAM.run(conn, [(day, 0, "other", 3, 2), (day, 0, "other", 1, 1)])])
    with read_connection(system.engine) as conn:
        rows = conn.execute(
            select(daily_score_histogram.c.bucket, daily_score_histogram.c.dislikes).order_by(
                daily_score_histogram.c.bucket
            )
        ).all()
    assert [tuple(r) for r in rows] == [(1, 1), (3, 2)]


def test_the_before_commit_hook_runs_only_in_transactions_that_wrote_rows(system):
    from sqlalchemy import insert

    from feedback_core.db import before_commit
    from feedback_core.schema import movies

    called = []
    engine = system.engine
    system.add_movies([{"movie_id": 1, "title": "Heat", "genres": ["Crime"]}])
    with before_commit(
        lambda conn: called.append(conn.execute(select(func.count()).select_from(movies)).scalar())
    ):
        with write_transaction(engine) as conn:  # rows locked (FOR UPDATE on PostgreSQL), none written
            conn.execute(select(movies.c.movie_id).where(movies.c.movie_id == 1).with_for_update())
        assert called == []
        with write_transaction(engine) as conn:
            conn.execute(
                insert(movies).values(
                    movie_id=2,
                    title="Ran",
                    genres=[],
                    cast=[],
                    rating_count=0,
                    rating_sum=0.0,
                    like_count=0,
                    created_at=system.now(),
                )
            )
        assert called == [2]  # inside the transaction: it sees the new row
        with pytest.raises(ZeroDivisionError), write_transaction(engine) as conn:
            conn.execute(text("DELETE FROM movies WHERE movie_id = 2"))
            raise ZeroDivisionError
        assert called == [2]  # rolled back: not run
        with before_commit(None), write_transaction(engine) as conn:  # housekeeping, not the caller's effect
            conn.execute(text("UPDATE movies SET title = 'Ran (1985)' WHERE movie_id = 2"))
        assert called == [2]
    with write_transaction(engine) as conn:  # outside the block: no hook
        conn.execute(text("DELETE FROM movies WHERE movie_id = 2"))
    assert called == [2]


@pytest.mark.skipif(not PG_URL, reason=PG_SKIP)
def test_a_database_closed_for_maintenance_is_unavailable_not_refused():
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    from feedback_core.errors import DatabaseRefusedError

    admin = create_engine(make_url(PG_URL), isolation_level="AUTOCOMMIT")
    name = "feedback_closed_check"
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(text(f"CREATE DATABASE {name}"))
        conn.execute(text(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
    closed = FeedbackSystem.from_url(
        make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    )
    try:
        with pytest.raises(DatabaseUnavailableError) as raised:
            closed.get_model_feedback_metrics()
        # It opens again after the maintenance: a retry is the right advice, not "correct the URL".
        assert not isinstance(raised.value, DatabaseRefusedError)
        assert raised.value.message == "the database is unavailable; retry shortly"
    finally:
        closed.close()
        with admin.connect() as conn:
            conn.execute(text(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
            conn.execute(text(f"DROP DATABASE {name}"))
        admin.dispose()
