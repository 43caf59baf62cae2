"""SQLite transactions: writers take the write lock when they begin, readers never block."""

from __future__ import annotations

import sqlite3

import pytest

from feedback_core import FeedbackSystem, Settings
from feedback_core.db import read_connection, write_transaction


@pytest.fixture
def sqlite_system(tmp_path):
    system = FeedbackSystem.from_settings(Settings(database_url=f"sqlite:///{tmp_path / 'tx.db'}"))
    system.init_feedback_tables()
    yield system, tmp_path / "tx.db"
    system.close()


def _other_writer_can_begin(path) -> bool:
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return False
    else:
        other.execute("ROLLBACK")
        return True
    finally:
        other.close()


def test_a_write_transaction_holds_the_write_lock_from_its_start(sqlite_system):
    system, path = sqlite_system
    with write_transaction(system.engine) as conn:
        # Nothing written yet: the lock was taken by BEGIN IMMEDIATE, so a check-then-insert
        # inside cannot interleave with another writer's.
        assert conn.connection.dbapi_connection.in_transaction
        assert not _other_writer_can_begin(path)
    assert _other_writer_can_begin(path)


def test_a_read_transaction_leaves_writers_free(sqlite_system):
    system, path = sqlite_system
    with read_connection(system.engine) as conn:
        assert conn.connection.dbapi_connection.in_transaction
        assert _other_writer_can_begin(path)
    # A write that begins after a read on the same thread is still a write transaction.
    with write_transaction(system.engine):
        assert not _other_writer_can_begin(path)


def test_a_read_opened_inside_a_write_is_not_a_writer(sqlite_system):
    system, path = sqlite_system
    with write_transaction(system.engine):
        with system.engine.connect() as other:
            with other.begin():  # deferred: it would deadlock against the writer otherwise
                assert other.connection.dbapi_connection.in_transaction
