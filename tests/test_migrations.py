"""Migrations: ``init`` brings an empty database to head, and the result is exactly schema.py."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from conftest import PG_SKIP, PG_URL
from helpers import add_bare_versions
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from feedback_core import FeedbackSystem, Settings
from feedback_core.db import current_revision, head_revision, make_engine, migrate, upgrade_database
from feedback_core.errors import ConfigError
from feedback_core.schema import metadata

# Migrations on PostgreSQL run in a schema of their own inside the test database, so the shared
# "public" schema the other tests use is never dropped under them.
PG_SCHEMA = "migration_check"


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(not PG_URL, reason=PG_SKIP))],
)
def migrated(request, tmp_path_factory):
    """An empty database, then ``init`` run on it: ``(engine, revision before, revision returned)``."""
    admin = None
    if request.param == "sqlite":
        engine = make_engine(
            Settings(database_url=f"sqlite:///{tmp_path_factory.mktemp('mig') / 'empty.db'}")
        )
    else:
        admin = make_engine(Settings(database_url=PG_URL))
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {PG_SCHEMA}"))
        url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={PG_SCHEMA}"})
        engine = make_engine(Settings(database_url=url.render_as_string(hide_password=False)))
        assert inspect(engine).default_schema_name == PG_SCHEMA
    before = current_revision(engine)
    returned = upgrade_database(engine)
    yield engine, before, returned
    engine.dispose()
    if admin is not None:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
        admin.dispose()


def test_init_on_an_empty_database_reaches_head_and_is_harmless_to_repeat(migrated):
    engine, before, returned = migrated
    head = head_revision()
    assert before is None and head
    assert returned == head and current_revision(engine) == head
    assert set(metadata.tables) <= set(inspect(engine).get_table_names())
    system = FeedbackSystem(engine, Settings(database_url="sqlite://"))
    system.save_dislike(1, 10, "A")
    assert system.init_feedback_tables() == head  # again: no error, data kept
    assert system.count_rows()["user_dislikes"] == 1


def test_schema_from_migrations_matches_schema_py(migrated):
    engine = migrated[0]
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        diffs = compare_metadata(context, metadata)
    assert diffs == []


def test_every_query_path_has_an_index(migrated):
    """The hot paths of recording and reading are served by an index, not a scan."""
    inspector = inspect(migrated[0])

    def leading_columns(table: str) -> set[tuple[str, ...]]:
        found = {tuple(ix["column_names"]) for ix in inspector.get_indexes(table)}
        found |= {tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)}
        found.add(tuple(inspector.get_pk_constraint(table)["constrained_columns"]))
        return found

    def covered(table: str, *columns: str) -> bool:
        return any(cols[: len(columns)] == columns for cols in leading_columns(table))

    assert covered("user_dislikes", "user_id", "created_at")  # history, newest first
    assert covered("user_dislikes", "user_id", "movie_id")  # double clicks, dislike weight
    assert covered("user_dislikes", "user_id", "idempotency_key")
    assert covered("user_dislikes", "recommendation_set_id")
    assert covered("negative_examples", "status", "example_id")  # training batch, pending count
    assert covered("negative_examples", "dislike_id")
    assert covered("feature_adjustments", "status", "created_at")  # the inbox
    assert covered("feature_adjustments", "dislike_id")
    assert covered("impressions", "recommendation_set_id", "movie_id")
    assert covered("dislike_patterns", "user_id", "pattern_type")


def test_dislike_patterns_lose_their_rowid_on_sqlite_and_keep_their_rows(tmp_path):
    engine = make_engine(Settings(database_url=f"sqlite:///{tmp_path / 'rowid.db'}"))
    try:

        def at(revision: str, downgrade: bool = False) -> None:
            migrate(engine, revision, downgrade)

        def table_sql() -> str:
            with engine.connect() as conn:
                return conn.execute(
                    text("SELECT sql FROM sqlite_master WHERE name = 'dislike_patterns'")
                ).scalar_one()

        def patterns() -> list[tuple]:
            with engine.connect() as conn:
                return [
                    tuple(r) for r in conn.execute(text("SELECT * FROM dislike_patterns ORDER BY 1, 2, 3"))
                ]

        at("0004")
        assert "WITHOUT ROWID" not in table_sql()
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO dislike_patterns VALUES (2, 'genre', 'Drama', 3, 2.1, '2026-11-01 10:00:00'),"
                    " (1, 'reason', 'wrong_genre', 1, 0.9, NULL), (2, 'cast', 'Al Pacino', 2, 1.5, NULL)"
                )
            )
        before = patterns()
        at("0005")  # (0009 recounts the feature rows from the dislikes: this test has none)
        assert table_sql().rstrip().endswith("WITHOUT ROWID")
        assert patterns() == before
        with engine.connect() as conn:
            pk = inspect(conn).get_pk_constraint("dislike_patterns")
        assert pk["name"] == "pk_dislike_patterns"
        assert pk["constrained_columns"] == ["user_id", "pattern_type", "pattern_value"]
        at("0004", downgrade=True)
        assert "WITHOUT ROWID" not in table_sql() and patterns() == before
    finally:
        engine.dispose()


def test_only_applied_adjustments_enter_the_index_of_a_persons_applied_ones(migrated):
    from feedback_core.effects import APPLIED_TO_USER

    engine = migrated[0]
    inspector = inspect(engine)
    indexes = {ix["name"]: ix for ix in inspector.get_indexes("feature_adjustments")}
    assert "ix_feature_adjustments_user" not in indexes  # (user_id, status): every proposal
    assert indexes["ix_feature_adjustments_applied"]["column_names"] == ["user_id"]
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            definition = conn.execute(
                text("SELECT sql FROM sqlite_master WHERE name = 'ix_feature_adjustments_applied'")
            ).scalar_one()
            # The query the effects page runs is answered through it.
            compiled = APPLIED_TO_USER.compile(dialect=engine.dialect)
            plan = " ".join(
                str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", (7,)).all()
            )
            assert "ix_feature_adjustments_applied" in plan
        else:
            definition = conn.execute(
                text(
                    "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_feature_adjustments_applied'"
                    " AND schemaname = current_schema()"
                )
            ).scalar_one()
    assert "WHERE" in definition.upper() and "'applied'" in definition


def test_the_applied_adjustments_index_migrates_both_ways(tmp_path):
    engine = make_engine(Settings(database_url=f"sqlite:///{tmp_path / 'applied.db'}"))
    try:

        def at(revision: str, downgrade: bool = False) -> set[str]:
            migrate(engine, revision, downgrade)
            return {ix["name"] for ix in inspect(engine).get_indexes("feature_adjustments")}

        assert {"ix_feature_adjustments_user"} <= at("0005")
        after = at("0006")
        assert "ix_feature_adjustments_applied" in after and "ix_feature_adjustments_user" not in after
        back = at("0005", downgrade=True)
        assert "ix_feature_adjustments_user" in back and "ix_feature_adjustments_applied" not in back
    finally:
        engine.dispose()


def _plan(conn, statement, params: dict) -> str:
    """The query plan of a Core statement with ``params``, as one string."""
    compiled = statement.compile(dialect=conn.dialect)
    values = compiled.construct_params(params)
    if compiled.positional:
        values = tuple(values[name] for name in compiled.positiontup)
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", values)
        return " ".join(str(row[-1]) for row in rows)
    conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
    rows = conn.exec_driver_sql(f"EXPLAIN {compiled}", values)
    return " ".join(str(row[0]) for row in rows)


def test_the_applied_adjustments_are_read_in_the_order_they_were_decided_from_their_index(migrated):
    """The Adjustments page's list of the applied last (0013): the first 200 of a partial index
    in that order, not every applied adjustment read by status and sorted (SQLite, without
    statistics, chose the status index while the status was bound or not said to be common)."""
    from feedback_core.lookups import _inbox_statement

    engine = migrated[0]
    statement = _inbox_statement(True, False, None, False, False, False, "applied")
    with engine.begin() as conn:
        plan = _plan(conn, statement, {"limit": 200})
    assert "ix_feature_adjustments_applied_decided" in plan, plan
    assert "ix_feature_adjustments_status" not in plan, plan


def test_the_index_of_applied_adjustments_by_decision_migrates_both_ways_with_statistics(tmp_path):
    """A database someone ran ANALYZE on gets statistics for the new index too: without them
    SQLite kept choosing the indexes it had statistics for."""
    url = f"sqlite:///{tmp_path / 'decided.db'}"
    engine = make_engine(Settings(database_url=url))
    name = "ix_feature_adjustments_applied_decided"
    try:
        upgrade_database(engine)
        system = FeedbackSystem.from_url(url)
        system.save_dislike(1, 10, "M10", reason="wrong_genre", genres=["Horror"])
        system.approve_adjustment(system.list_adjustments()[0]["adjustment_id"], actor="ana")
        system.close()
        migrate(engine, "0012", downgrade=True)
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        migrate(engine, "0013")
        assert name in {ix["name"] for ix in inspect(engine).get_indexes("feature_adjustments")}
        with engine.connect() as conn:
            assert conn.execute(
                text("SELECT count(*) FROM sqlite_stat1 WHERE idx = :n"), {"n": name}
            ).scalar()
        migrate(engine, "0012", downgrade=True)
        assert name not in {ix["name"] for ix in inspect(engine).get_indexes("feature_adjustments")}
    finally:
        engine.dispose()


def test_only_set_keys_and_lists_enter_the_dislikes_key_and_list_indexes(migrated):
    from sqlalchemy.exc import IntegrityError

    from feedback_core.lookups import _USER_LISTS
    from feedback_core.recording import _BEFORE_DISLIKE

    engine = migrated[0]
    indexes = {ix["name"]: ix for ix in inspect(engine).get_indexes("user_dislikes")}
    assert indexes["uq_user_dislikes_idempotency"]["unique"]
    assert indexes["uq_user_dislikes_idempotency"]["column_names"] == ["user_id", "idempotency_key"]
    assert indexes["ix_user_dislikes_set"]["column_names"] == ["recommendation_set_id"]
    assert not inspect(engine).get_unique_constraints("user_dislikes")
    with engine.connect() as conn:
        for name, condition in (
            ("uq_user_dislikes_idempotency", "idempotency_key is not null"),
            ("ix_user_dislikes_set", "recommendation_set_id is not null"),
        ):
            if engine.dialect.name == "sqlite":
                sql = "SELECT sql FROM sqlite_master WHERE name = :n"
            else:
                sql = "SELECT indexdef FROM pg_indexes WHERE indexname = :n AND schemaname = current_schema()"
            definition = conn.execute(text(sql), {"n": name}).scalar_one().lower()
            assert condition in definition.replace("(", "").replace(")", "")

    system = FeedbackSystem(engine, Settings(database_url="sqlite://"))
    system.add_movies([{"movie_id": m, "title": f"Film {m}"} for m in (501, 502, 503)])
    first = system.save_dislike(77, 501, "Film 501", idempotency_key="k-1")
    system.save_dislike(77, 502, "Film 502")  # no key: any number of them
    system.save_dislike(77, 503, "Film 503")
    system.save_dislike(78, 501, "Film 501", idempotency_key="k-1")  # another person's key
    assert system.save_dislike(77, 503, "Film 503", idempotency_key="k-1") == first
    with pytest.raises(IntegrityError):
        with engine.begin() as conn:  # the index itself, not only the code, keeps keys unique
            conn.execute(
                text(
                    "INSERT INTO user_dislikes (user_id, movie_id, movie_title, predicted_score, reason,"
                    ' feedback_text, genres, "cast", idempotency_key, created_at)'
                    " VALUES (77, 502, 'x', 0.5, 'not_interested', '', '[]', '[]', 'k-1', '2026-11-30 00:00:00')"
                )
            )
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM user_dislikes WHERE user_id = 77")).scalar() == 3
    # Recording's lookups by key and by list, and the lists page's join, use the indexes.
    with engine.connect() as conn:
        with conn.begin():
            before = _plan(
                conn,
                _BEFORE_DISLIKE.statement,
                {
                    "user_id": 77,
                    "movie_id": 501,
                    "idempotency_key": "k-1",
                    "set_id": 5,
                    "since": datetime(2026, 11, 30),
                    "until": datetime(2026, 11, 30, 0, 1),
                    "cap": 20,
                },
            )
            lists = _plan(conn, _USER_LISTS, {"user_id": 77, "sets": 3})
    assert "uq_user_dislikes_idempotency" in before
    assert "ix_user_dislikes_set" in lists


@contextmanager
def scratch_engine(kind: str, sqlite_path, pg_schema: str) -> Iterator:
    """An engine on an empty SQLite file, or on an empty schema of its own in the PostgreSQL test
    database (dropped afterwards)."""
    admin = None
    if kind == "sqlite":
        engine = make_engine(Settings(database_url=f"sqlite:///{sqlite_path}"))
    else:
        admin = make_engine(Settings(database_url=PG_URL))
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {pg_schema} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {pg_schema}"))
        url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={pg_schema}"})
        engine = make_engine(Settings(database_url=url.render_as_string(hide_password=False)))
    try:
        yield engine
    finally:
        engine.dispose()
        if admin is not None:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {pg_schema} CASCADE"))
            admin.dispose()


@pytest.mark.parametrize(
    "kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(not PG_URL, reason=PG_SKIP))]
)
def test_the_partial_dislike_indexes_migrate_both_ways_keeping_every_row(kind, tmp_path):
    with scratch_engine(kind, tmp_path / "partial.db", "migration_0007") as engine:

        def dump() -> dict[str, list[tuple]]:
            with engine.connect() as conn:
                return {
                    table: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY 1"))]
                    for table in (
                        "user_dislikes",
                        "negative_examples",
                        "feature_adjustments",
                        "movie_exclusions",
                    )
                }

        def shape() -> tuple[set[str], list]:
            inspector = inspect(engine)
            names = {ix["name"] for ix in inspector.get_indexes("user_dislikes")}
            return names, [u["name"] for u in inspector.get_unique_constraints("user_dislikes")]

        # The rows are written by today's code (at the head revision), then carried down to 0006.
        upgrade_database(engine)
        system = FeedbackSystem(engine, Settings(database_url="sqlite://"))
        system.add_movies([{"movie_id": m, "title": f"Film {m}", "genres": ["Drama"]} for m in range(1, 6)])
        shown = system.record_recommendation_set(3, [{"movie_id": 2, "rank": 1, "predicted_score": 0.8}])
        system.save_dislike(3, 1, reason="wrong_genre", idempotency_key="a")
        system.save_dislike(3, 2, recommendation_set_id=shown, reason="already_watched", predicted_score=0.8)
        gone = system.save_dislike(4, 3, reason="wrong_genre")
        system.retract_dislike(gone, 4)
        migrate(engine, "0006", downgrade=True)
        before = dump()
        assert shape()[1] == ["uq_user_dislikes_idempotency"]

        migrate(engine, "0007")
        names, constraints = shape()
        assert constraints == [] and {"uq_user_dislikes_idempotency", "ix_user_dislikes_set"} <= names
        assert dump() == before
        upgrade_database(engine)
        system.save_dislike(3, 4, reason="wrong_genre", idempotency_key="b")  # ids go on from the last

        migrate(engine, "0006", downgrade=True)
        names, constraints = shape()
        assert constraints == ["uq_user_dislikes_idempotency"]
        # (PostgreSQL lists a constraint's own index among the indexes too)
        assert kind == "postgresql" or "uq_user_dislikes_idempotency" not in names
        assert "ix_user_dislikes_set" in names
        after = dump()
        assert after["user_dislikes"][: len(before["user_dislikes"])] == before["user_dislikes"]
        assert len(after["user_dislikes"]) == len(before["user_dislikes"]) + 1
        if kind == "sqlite":
            with engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1  # on again afterwards
                assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []


@pytest.mark.parametrize(
    "kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(not PG_URL, reason=PG_SKIP))]
)
def test_dislikes_of_a_list_move_to_its_day_and_back(kind, tmp_path):
    from reliability_support import recount_differences

    with scratch_engine(kind, tmp_path / "days.db", "migration_0008") as engine:

        def days() -> dict:
            with engine.connect() as conn:
                rows = conn.execute(
                    text(
                        "SELECT day, attributed, SUM(dislikes) FROM daily_dislikes "
                        "GROUP BY day, attributed HAVING SUM(dislikes) > 0 ORDER BY day, attributed"
                    )
                ).all()
            return {(str(day)[:10], attributed): int(n) for day, attributed, n in rows}

        upgrade_database(engine)
        now = [datetime(2026, 1, 10, 23, 50)]
        system = FeedbackSystem(engine, Settings(database_url="sqlite://"), clock=lambda: now[0])
        system.add_movies([{"movie_id": m, "title": f"Film {m}"} for m in range(1, 4)])
        shown = system.record_recommendation_set(3, [1, 2])  # 10 Jan 23:50
        now[0] = datetime(2026, 1, 11, 0, 10)
        system.save_dislike(3, 1, recommendation_set_id=shown)  # counts on the 10th
        now[0] = datetime(2026, 1, 11, 0, 20)
        system.save_dislike(3, 3)  # no list: on the 11th
        after = {("2026-01-10", 1): 1, ("2026-01-11", 0): 1}
        assert days() == after and recount_differences(engine) == []

        migrate(engine, "0007", downgrade=True)
        assert days() == {("2026-01-11", 0): 1, ("2026-01-11", 1): 1}  # as 0007 counted them
        migrate(engine, "0008")
        assert days() == after and recount_differences(engine, before_0010=True) == []


@pytest.mark.parametrize(
    "kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(not PG_URL, reason=PG_SKIP))]
)
def test_patterns_are_recounted_by_what_each_reason_blames_and_back(kind, tmp_path):
    from reliability_support import BLAMED, recount_differences

    with scratch_engine(kind, tmp_path / "blames.db", "migration_0009") as engine:

        def patterns() -> dict:
            with engine.connect() as conn:
                rows = conn.execute(
                    text(
                        "SELECT user_id, pattern_type, pattern_value, dislike_count, score_sum, "
                        "last_disliked_at FROM dislike_patterns WHERE dislike_count > 0"
                    )
                ).all()
            return {(u, k, v): (n, round(s, 9), str(t)) for u, k, v, n, s, t in rows}

        upgrade_database(engine)
        now = [datetime(2026, 1, 10, 12)]
        system = FeedbackSystem(engine, Settings(database_url="sqlite://"), clock=lambda: now[0])
        system.add_movies(
            [
                {"movie_id": m, "title": f"Film {m}", "genres": ["Horror", "Drama"], "cast": ["Ann", "Bob"]}
                | ({"franchise": "Saga"} if m % 2 else {})
                for m in range(1, 8)
            ]
        )
        for movie, (user, reason) in enumerate(
            [
                (1, "wrong_genre"),
                (1, "poor_quality"),
                (1, "already_watched"),
                (2, "not_interested"),
                (2, "irrelevant"),
                (2, "other"),
                (1, "poor_quality"),
            ],
            start=1,
        ):
            now[0] += timedelta(hours=1)
            system.save_dislike(user, movie, reason=reason, predicted_score=movie / 10)
        # Films new to the catalogue, added with the features their dislikes give.
        system.save_dislike(
            2, 8, "Film 8", reason="wrong_genre", genres=["War", "War"], cast=["Cy"]
        )  # War once
        billed = ["Al", "Bo", "Cy", "Di", "Ed", "Fay"]  # of the cast, the first five count
        system.save_dislike(2, 9, "Film 9", reason="poor_quality", cast=billed, predicted_score=0.9)
        retracted = system.save_dislike(2, 10, "Film 10", reason="poor_quality", cast=["Cy"])
        system.retract_dislike(retracted, 2)
        every = {reason: {"genre", "cast", "franchise"} for reason in BLAMED}
        blamed = patterns()
        assert (1, "genre", "Horror") in blamed and (1, "cast", "Ann") in blamed
        assert (2, "cast", "Ann") not in blamed and blamed[(2, "cast", "Cy")][0] == 1  # not film 8's
        assert blamed[(2, "genre", "War")][0] == 1 and recount_differences(engine) == []
        assert blamed[(2, "cast", "Ed")][0] == 1 and (2, "cast", "Fay") not in blamed

        migrate(engine, "0008", downgrade=True)
        # What 0008 counted: every value of every dislike, the whole cast.
        assert recount_differences(engine, every, top_cast=None, before_0010=True) == []
        assert patterns()[(2, "cast", "Ann")][0] == 3
        migrate(engine, "0009")
        assert patterns() == blamed and recount_differences(engine, before_0010=True) == []


@pytest.mark.parametrize(
    "kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(not PG_URL, reason=PG_SKIP))]
)
def test_genre_and_score_counts_move_to_the_lists_day_by_version_and_reason_and_back(kind, tmp_path):
    from reliability_support import recount_differences

    with scratch_engine(kind, tmp_path / "dims.db", "migration_0010") as engine:

        def rows(table: str, columns: str) -> set:
            with engine.connect() as conn:
                found = conn.execute(
                    text(f"SELECT {columns}, dislikes FROM {table} WHERE dislikes > 0")
                ).all()
            return {(str(first)[:10], *rest) for first, *rest in found}

        upgrade_database(engine)
        now = [datetime(2026, 1, 10, 23, 50)]
        system = FeedbackSystem(engine, Settings(database_url="sqlite://"), clock=lambda: now[0])
        genres = ["Horror", "Drama", "Horror"]  # Horror listed twice: counted once
        system.add_movies([{"movie_id": m, "title": f"Film {m}", "genres": genres} for m in range(1, 5)])
        with engine.begin() as conn:
            (version,) = add_bare_versions(conn, 1)
        shown = system.record_recommendation_set(3, [1, 2], model_version_id=version)  # 10 Jan 23:50
        now[0] = datetime(2026, 1, 11, 0, 10)
        system.save_dislike(3, 1, recommendation_set_id=shown, predicted_score=0.95, reason="wrong_genre")
        system.save_dislike(3, 2, recommendation_set_id=shown, predicted_score=0.35, reason="poor_quality")
        system.save_dislike(3, 3, predicted_score=0.3)  # no list: on the 11th, no version
        gone = system.save_dislike(4, 4, predicted_score=0.5)
        system.retract_dislike(gone, 4)
        genre_rows = "day, model_version_id, reason, genre"
        score_rows = "day, model_version_id, reason, bucket"
        by_list_day = {
            "genre": {
                ("2026-01-10", version, "wrong_genre", "Horror", 1),
                ("2026-01-10", version, "wrong_genre", "Drama", 1),
                ("2026-01-10", version, "poor_quality", "Horror", 1),
                ("2026-01-10", version, "poor_quality", "Drama", 1),
                ("2026-01-11", 0, "not_interested", "Horror", 1),
                ("2026-01-11", 0, "not_interested", "Drama", 1),
            },
            "score": {
                ("2026-01-10", version, "wrong_genre", 9, 1),
                ("2026-01-10", version, "poor_quality", 3, 1),
                ("2026-01-11", 0, "not_interested", 3, 1),
            },
        }
        assert rows("daily_reason_genre", genre_rows) == by_list_day["genre"]
        assert rows("daily_score_histogram", score_rows) == by_list_day["score"]
        assert recount_differences(engine) == []

        migrate(engine, "0009", downgrade=True)
        # As 0009 counted them: on the day each was made, genres without version, scores without reason.
        assert rows("daily_reason_genre", "day, reason, genre") == {
            ("2026-01-11", "wrong_genre", "Horror", 1),
            ("2026-01-11", "wrong_genre", "Drama", 1),
            ("2026-01-11", "poor_quality", "Horror", 1),
            ("2026-01-11", "poor_quality", "Drama", 1),
            ("2026-01-11", "not_interested", "Horror", 1),
            ("2026-01-11", "not_interested", "Drama", 1),
        }
        assert rows("daily_score_histogram", "day, model_version_id, bucket") == {
            ("2026-01-11", version, 9, 1),
            ("2026-01-11", version, 3, 1),
            ("2026-01-11", 0, 3, 1),
        }
        assert recount_differences(engine, before_0010=True) == []
        migrate(engine, "0010")
        assert rows("daily_reason_genre", genre_rows) == by_list_day["genre"]
        assert rows("daily_score_histogram", score_rows) == by_list_day["score"]
        assert recount_differences(engine) == []


def test_the_user_dislikes_rebuild_refuses_to_run_with_foreign_keys_on(tmp_path):
    from alembic import command

    from feedback_core.db import _alembic_config

    engine = make_engine(Settings(database_url=f"sqlite:///{tmp_path / 'refuse.db'}"))
    try:
        migrate(engine, "0006")
        with pytest.raises(RuntimeError, match="feedback-core init"):
            with engine.begin() as conn:  # foreign keys on, as on every connection of the engine
                command.upgrade(_alembic_config(conn), "0007")
        assert current_revision(engine) == "0006"
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(not PG_URL, reason=PG_SKIP))]
)
def test_init_refuses_a_database_whose_tables_another_application_made(kind, tmp_path):
    # The specification kept its tables in the application's own movies.db, beside its movies.
    with scratch_engine(kind, tmp_path / "movies.db", "migration_foreign") as engine:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE movies (id INTEGER PRIMARY KEY, title TEXT, genres TEXT)"))
            conn.execute(text("CREATE TABLE ratings (id INTEGER PRIMARY KEY)"))
            conn.execute(text("INSERT INTO movies VALUES (1, 'Their film', 'Drama')"))
        with pytest.raises(ConfigError) as raised:
            upgrade_database(engine)
        message = str(raised.value)
        assert "already has tables named movies, ratings" in message
        assert "a database of its own" in message and "nothing was changed" in message
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) == {"movies", "ratings"}
            assert conn.execute(text("SELECT * FROM movies")).all() == [(1, "Their film", "Drama")]
        assert current_revision(engine) is None


@pytest.mark.parametrize(
    "kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(not PG_URL, reason=PG_SKIP))]
)
def test_init_names_foreign_tables_in_any_case_views_and_beside_another_applications_alembic(kind, tmp_path):
    with scratch_engine(kind, tmp_path / "app.db", "migration_foreign_alembic") as engine:
        with engine.begin() as conn:
            conn.execute(text('CREATE TABLE "Movies" (id INTEGER PRIMARY KEY)'))
            conn.execute(text("CREATE VIEW ratings AS SELECT 1 AS id"))
            conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
            conn.execute(text("INSERT INTO alembic_version VALUES ('3f2a1b9c8d7e')"))  # Flask-Migrate's
        with pytest.raises(ConfigError) as raised:
            upgrade_database(engine)
        assert str(raised.value).startswith(
            "this database already has tables named Movies, ratings and an Alembic revision of its own "
            "(3f2a1b9c8d7e), which feedback-core did not create"
        )
        assert current_revision(engine) == "3f2a1b9c8d7e"


def test_a_newer_release_of_this_schema_is_not_taken_for_another_applications(tmp_path):
    engine = make_engine(Settings(database_url=f"sqlite:///{tmp_path / 'newer.db'}"))
    upgrade_database(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    with pytest.raises(ConfigError, match="schema 0099 is unknown to this feedback-core .*a newer release"):
        upgrade_database(engine)
    engine.dispose()


@pytest.mark.parametrize(
    "kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(not PG_URL, reason=PG_SKIP))]
)
def test_unknown_scores_migrate_both_ways_and_every_aggregate_recounts(kind, tmp_path):
    from reliability_support import recount_differences

    with scratch_engine(kind, tmp_path / "scores.db", "migration_0011") as engine:

        def flags() -> tuple[list, list, list]:
            with engine.connect() as conn:
                return tuple(
                    [tuple(r) for r in conn.execute(text(sql))]
                    for sql in (
                        "SELECT movie_id, predicted_score, score_known FROM user_dislikes ORDER BY dislike_id",
                        "SELECT movie_id, score_known FROM impressions ORDER BY impression_id",
                        "SELECT dislikes, scored FROM daily_dislikes ORDER BY day, reason, attributed",
                    )
                )

        upgrade_database(engine)
        now = [datetime(2026, 1, 10, 12, 0)]
        system = FeedbackSystem(engine, Settings(database_url="sqlite://"), clock=lambda: now[0])
        system.add_movies([{"movie_id": m, "title": f"Film {m}", "genres": ["Drama"]} for m in range(1, 6)])
        shown = system.record_recommendation_set(3, [1, {"movie_id": 2, "predicted_score": 0.8}, 5])
        now[0] += timedelta(minutes=5)
        system.save_dislike(3, 1, recommendation_set_id=shown, reason="wrong_genre")  # unknown
        system.save_dislike(3, 2, recommendation_set_id=shown, reason="wrong_genre")  # the list's 0.8
        system.save_dislike(4, 3, predicted_score=0.3)
        system.save_dislike(4, 4)  # unknown
        flagged = (
            [(1, 0.0, False), (2, 0.8, True), (3, 0.3, True), (4, 0.0, False)],
            [(1, False), (2, True), (5, False)],
            [(2, 1), (2, 1)],
        )
        assert flags() == flagged
        assert recount_differences(engine) == []
        # A bare list shown at 23:50 and disliked at 00:10 (counted on the list's day), and
        # retracted dislikes with and without a score: the migration's recount must keep all three.
        now[0] = datetime(2026, 1, 10, 23, 50)
        late_list = system.record_recommendation_set(6, [3, 4])
        now[0] = datetime(2026, 1, 11, 0, 10)
        system.save_dislike(6, 3, recommendation_set_id=late_list)
        for movie, score in ((4, None), (2, 0.6)):
            system.retract_dislike(system.save_dislike(9, movie, predicted_score=score), 9)
        flagged = flags()
        assert recount_differences(engine) == []

        # Down: the flags go, the unknown scores are the 0s they were stored as, in every count
        # (as the code before stored and counted them).
        migrate(engine, "0010", downgrade=True)
        columns = {
            t: {c["name"] for c in inspect(engine).get_columns(t)}
            for t in ("user_dislikes", "daily_dislikes")
        }
        assert "score_known" not in columns["user_dislikes"] and "scored" not in columns["daily_dislikes"]
        assert recount_differences(engine) == []
        # Up: a stored score of exactly 0 is one nobody gave (a bare list's items, a dislike sent
        # without one), taken out of the scored counts and the histogram: as recorded since.
        migrate(engine, "0011")
        assert flags() == flagged
        assert recount_differences(engine) == []
        # Left known, the bare list's 0 overrode the score a later dislike of it sends.
        late = system.record_dislike(user_id=3, movie_id=5, recommendation_set_id=shown, predicted_score=0.9)
        assert late["training_impact"]["error_recorded"] == 0.9 and "score_note" not in late
        assert recount_differences(engine) == []


@pytest.mark.parametrize(
    "kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(not PG_URL, reason=PG_SKIP))]
)
def test_impression_scores_are_summed_from_the_stored_impressions(kind, tmp_path):
    with scratch_engine(kind, tmp_path / "shown.db", "migration_0012") as engine:

        def daily() -> dict:
            with engine.connect() as conn:
                found = conn.execute(
                    text(
                        "SELECT day, model_version_id, impressions, score_sum, scored FROM daily_impressions"
                    )
                ).all()
            return {(str(day)[:10], v): (n, round(total, 6), scored) for day, v, n, total, scored in found}

        upgrade_database(engine)
        now = [datetime(2026, 1, 10, 23, 59)]
        system = FeedbackSystem(engine, Settings(database_url="sqlite://"), clock=lambda: now[0])
        system.add_movies([{"movie_id": m, "title": f"Film {m}", "genres": ["Drama"]} for m in range(1, 4)])
        with engine.begin() as conn:
            (version,) = add_bare_versions(conn, 1)
        system.record_recommendation_set(3, [1, {"movie_id": 2, "predicted_score": 0.8}])
        system.record_recommendation_set(
            4, [{"movie_id": 3, "predicted_score": 0.5}], model_version_id=version
        )
        now[0] = datetime(2026, 1, 11, 0, 1)
        system.record_recommendation_set(3, [{"movie_id": 3, "predicted_score": 0.25}, 2])
        expected = {
            ("2026-01-10", 0): (2, 0.8, 1),
            ("2026-01-10", version): (1, 0.5, 1),
            ("2026-01-11", 0): (2, 0.25, 1),
        }
        assert daily() == expected

        migrate(engine, "0011", downgrade=True)
        assert "score_sum" not in {c["name"] for c in inspect(engine).get_columns("daily_impressions")}
        migrate(engine, "0012")  # counted again from the impressions, each on the day it was shown
        assert daily() == expected
