"""dashboard/data.py: page queries read FEEDBACK_DASHBOARD_READ_URL when set, actions the main database."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import Engine, event

from dashboard import data
from feedback_core import FeedbackSystem, Settings, queries
from feedback_core.db import make_engine, upgrade_database


@pytest.fixture
def two_databases(tmp_path, monkeypatch):
    """A migrated, empty main database and a "replica" URL of a file without a schema."""
    main = f"sqlite:///{tmp_path / 'main.db'}"
    engine = make_engine(Settings(database_url=main))
    upgrade_database(engine)
    engine.dispose()
    monkeypatch.setenv("FEEDBACK_DB_URL", main)
    data.refresh()
    yield main, f"sqlite:///{tmp_path / 'replica.db'}"
    data.refresh()


def test_queries_read_the_main_database_without_a_read_url(two_databases, monkeypatch):
    main, _ = two_databases
    monkeypatch.delenv("FEEDBACK_DASHBOARD_READ_URL", raising=False)
    assert data.read_url() == main
    assert data.query(queries.get_database_state)["status"] == "empty"


def test_queries_read_the_replica_and_actions_use_the_main_database(two_databases, monkeypatch):
    main, replica = two_databases
    monkeypatch.setenv("FEEDBACK_DASHBOARD_READ_URL", replica)
    assert data.read_url() == replica
    assert data.query(queries.get_database_state)["status"] == "missing"  # read where pointed
    system = data.get_system()
    assert isinstance(system, FeedbackSystem) and system.settings.database_url == main


def test_a_page_reads_the_replica_in_one_transaction_and_not_the_main_database(two_databases, monkeypatch):
    main, replica = two_databases
    engine = make_engine(Settings(database_url=replica))
    upgrade_database(engine)
    engine.dispose()
    monkeypatch.setenv("FEEDBACK_DASHBOARD_READ_URL", replica)
    opened: Counter = Counter()

    def on_begin(conn):
        opened[conn.engine.url.render_as_string()] += 1

    event.listen(Engine, "begin", on_begin)
    try:
        with data.reading():
            assert data.query(queries.get_database_state)["status"] == "empty"
            assert data.query(queries.get_data_bounds) == {"first_day": None, "last_day": None}
            assert data.query(queries.list_filter_versions).empty
    finally:
        event.remove(Engine, "begin", on_begin)
    assert opened == {replica: 1}
