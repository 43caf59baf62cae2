"""A database without the feedback schema: every operation says how to create it.

Each test runs on a database of its own that was never initialised: a new SQLite file, or on
PostgreSQL (``FEEDBACK_TEST_PG_URL``) a new, empty schema put first on the search path, so
that the migrated schema the other tests share is left alone.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from feedback_core import FeedbackSystem, SchemaMissingError
from feedback_core.db import read_connection, write_transaction
from feedback_core.errors import DatabaseUnavailableError, FeedbackError


@pytest.fixture
def empty(empty_url):
    system = FeedbackSystem.from_url(empty_url)
    yield system
    system.close()


OPERATIONS = {
    "save_dislike": lambda s: s.save_dislike(user_id=1, movie_id=2, reason="irrelevant"),
    "get_user_dislikes": lambda s: s.get_user_dislikes(1),
    "add_movies": lambda s: s.add_movies([{"movie_id": 1, "title": "Heat"}]),
    "list_adjustments": lambda s: s.list_adjustments(),
    "get_model_feedback_metrics": lambda s: s.get_model_feedback_metrics(),
}


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_an_operation_on_a_database_without_schema_says_how_to_create_it(empty, operation):
    with pytest.raises(SchemaMissingError) as missing:
        OPERATIONS[operation](empty)
    message = missing.value.message
    assert message.startswith("the database has no feedback schema yet (no table ")
    assert "run feedback-core init, or call init_feedback_tables() on the FeedbackSystem" in message
    # Caught as any error of the library, and answered 503 like an unusable database.
    assert isinstance(missing.value, FeedbackError)
    assert isinstance(missing.value, DatabaseUnavailableError)
    assert missing.value.status == 503


def test_the_schema_once_created_the_same_call_works(empty):
    with pytest.raises(SchemaMissingError, match="no table movies"):
        empty.add_movies([{"movie_id": 1, "title": "Heat"}])
    empty.init_feedback_tables()
    empty.add_movies([{"movie_id": 1, "title": "Heat"}])
    assert empty.count_rows()["movies"] == 1


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM no_such_table",  # a table the schema does not have
        "SELECT no_such_column FROM movies",  # a column of a table that does exist
    ],
)
def test_other_missing_objects_stay_the_drivers_errors(empty, sql):
    empty.init_feedback_tables()
    with pytest.raises(DBAPIError) as failed:
        with read_connection(empty.engine) as conn:
            conn.execute(text(sql))
    assert not isinstance(failed.value, FeedbackError)
    with pytest.raises(DBAPIError) as failed:
        with write_transaction(empty.engine) as conn:
            conn.execute(text(sql))
    assert not isinstance(failed.value, FeedbackError)


def test_a_table_removed_from_a_current_schema_is_not_blamed_on_a_missing_init(tmp_path):
    # init cannot bring back a table of a schema already at the latest revision: the message
    # says what to do then, instead of sending the operator round in a circle.
    system = FeedbackSystem.from_url(f"sqlite:///{tmp_path / 'damaged.db'}")
    system.init_feedback_tables()
    system.add_movies([{"movie_id": 1, "title": "Heat"}])
    with system.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE ratings")
    with pytest.raises(SchemaMissingError) as missing:
        system.record_rating(1, 1, 4.0)
    assert "(no table ratings)" in missing.value.message
    assert missing.value.message.endswith(
        "if `feedback-core info` shows the latest schema revision, the table was removed: restore the "
        "database from a backup"
    )
    system.close()
