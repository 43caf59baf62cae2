"""Which database URLs the library accepts: PostgreSQL through psycopg 3, SQLite through sqlite3.

Anything else is refused by ``FeedbackSystem.from_url`` (and ``make_engine``) with a
ConfigError that names the forms to use, before any driver is imported or any file made.
"""

from __future__ import annotations

import pytest

from feedback_core import FeedbackSystem, Settings
from feedback_core.db import close_engine, make_engine, parse_database_url
from feedback_core.errors import ConfigError


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgresql+psycopg2://bob:s3cret@localhost/feedback", "psycopg2"),
        ("postgresql+asyncpg://bob:s3cret@localhost/feedback", "asyncpg"),
        ("postgresql+pg8000://bob:s3cret@localhost/feedback", "pg8000"),
    ],
)
def test_another_postgresql_driver_is_refused_with_the_url_to_use(url, driver):
    with pytest.raises(ConfigError) as refused:
        FeedbackSystem.from_url(url)
    assert refused.value.message == (
        f"the database URL 'postgresql+{driver}://bob:***@localhost/feedback' (from --db or FEEDBACK_DB_URL) "
        f"cannot be used: its driver {driver} is not supported (psycopg 3 and sqlite3 are); "
        "write postgresql://bob:***@localhost/feedback"
    )


def test_another_database_is_refused_naming_the_supported_forms(tmp_path):
    with pytest.raises(ConfigError, match=r"mssql is not supported; use postgresql://USER:PASSWORD@HOST"):
        make_engine(Settings(database_url="mssql+pyodbc://bob:s3cret@dsn"))
    with pytest.raises(ConfigError, match="its driver aiosqlite is not supported"):
        make_engine(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"))
    assert list(tmp_path.iterdir()) == []


def test_a_path_given_as_the_url_is_refused_with_its_sqlite_url(tmp_path):
    path = tmp_path / "x.db"
    with pytest.raises(ConfigError) as refused:
        FeedbackSystem.from_url(str(path))
    assert f"'{path}' (from --db or FEEDBACK_DB_URL) is malformed" in refused.value.message
    assert f"write sqlite:///{path} (three slashes, then the absolute path)" in refused.value.message


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://bob:s3cret@localhost/feedback",
        "postgresql+psycopg://bob:s3cret@localhost/feedback",
        "sqlite:///{tmp}/x.db",
        "sqlite+pysqlite:///{tmp}/x.db",
    ],
)
def test_the_supported_forms_build_an_engine(tmp_path, url):
    engine = make_engine(Settings(database_url=url.format(tmp=tmp_path)))  # connects on first use only
    try:
        assert engine.dialect.driver in ("psycopg", "pysqlite")
    finally:
        close_engine(engine)


@pytest.mark.parametrize(
    "url",
    [
        "postgres://u@h/db?password=S3cret",
        "postgresql+psycopg2://u@h/db?password=S3cret",
        "sqlite:a.db?password=S3cret",
    ],
)
def test_the_url_suggested_instead_never_shows_a_password(url):
    with pytest.raises(ConfigError) as refused:
        parse_database_url(url)
    assert "S3cret" not in refused.value.message and "password=***" in refused.value.message
