"""Migrations: ``init`` brings an empty database to head, and the result is exactly schema.py."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from conftest import PG_SKIP, PG_URL
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from feedback_core import FeedbackSystem, Settings
from feedback_core.db import current_revision, head_revision, make_engine, upgrade_database
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
    from alembic import command

    from feedback_core.db import _alembic_config

    engine = make_engine(Settings(database_url=f"sqlite:///{tmp_path / 'rowid.db'}"))
    try:

        def at(revision: str, downgrade: bool = False) -> None:
            with engine.begin() as conn:
                (command.downgrade if downgrade else command.upgrade)(_alembic_config(conn), revision)

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
        at("head")
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
    from alembic import command

    from feedback_core.db import _alembic_config

    engine = make_engine(Settings(database_url=f"sqlite:///{tmp_path / 'applied.db'}"))
    try:

        def at(revision: str, downgrade: bool = False) -> set[str]:
            with engine.begin() as conn:
                (command.downgrade if downgrade else command.upgrade)(_alembic_config(conn), revision)
            return {ix["name"] for ix in inspect(engine).get_indexes("feature_adjustments")}

        assert {"ix_feature_adjustments_user"} <= at("0005")
        after = at("0006")
        assert "ix_feature_adjustments_applied" in after and "ix_feature_adjustments_user" not in after
        back = at("0005", downgrade=True)
        assert "ix_feature_adjustments_user" in back and "ix_feature_adjustments_applied" not in back
    finally:
        engine.dispose()
