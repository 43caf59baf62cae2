"""Fixtures: a fresh database per test, on SQLite and (when a URL is set) on PostgreSQL.

Set ``FEEDBACK_TEST_PG_URL`` (``.ci/run`` does) to run every storage test on PostgreSQL too.
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text

from feedback_core import FeedbackSystem, Settings
from feedback_core.db import close_engine, make_engine, upgrade_database
from feedback_core.schema import metadata

PG_URL = os.environ.get("FEEDBACK_TEST_PG_URL")
PG_SKIP = "FEEDBACK_TEST_PG_URL is not set: PostgreSQL tests need a server (.ci/run starts one)"

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.skipif(not PG_URL, reason=PG_SKIP)),
]


class Clock:
    """A settable clock for the system under test."""

    def __init__(self, start: datetime) -> None:
        self.moment = start

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, **delta) -> datetime:
        self.moment += timedelta(**delta)
        return self.moment


_pg_migrated = False


def _fresh_pg(settings: Settings):
    global _pg_migrated
    engine = make_engine(settings)
    if not _pg_migrated:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        upgrade_database(engine)
        _pg_migrated = True
    # Emptying only the tables the last test wrote is several times faster than truncating
    # all of them; every sequence starts again at 1, as after a fresh migration.
    probe = " UNION ALL ".join(
        f"(SELECT '{t.name}' FROM \"{t.name}\" LIMIT 1)" for t in metadata.sorted_tables
    )
    with engine.begin() as conn:
        used = [name for (name,) in conn.execute(text(probe))]
        if used:
            names = ", ".join(f'"{name}"' for name in used)
            conn.execute(text(f"TRUNCATE {names} CASCADE"))
        conn.execute(
            text(
                "SELECT setval(c.oid, 1, false) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind = 'S' AND n.nspname = current_schema()"
            )
        ).all()
    return engine


def _fresh_sqlite(template: Path, database: Path) -> None:
    """Put a migrated, empty database at ``database``: a copy of one migrated once per run."""
    if not template.exists():
        # Migrated under another name and renamed when complete: a failed migration leaves no
        # half-built template for the next tests to copy.
        building = template.with_name("building.db")
        engine = make_engine(Settings(database_url=f"sqlite:///{building}"))
        upgrade_database(engine)
        close_engine(engine)  # its checkpointer too, before the file is renamed
        leftovers = [p.name for p in template.parent.iterdir() if p != building]
        assert not leftovers, f"the migrated template left {leftovers} beside it"
        building.rename(template)
    shutil.copyfile(template, database)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """Where the run's migrated SQLite template goes (built on first use)."""
    return tmp_path_factory.mktemp("template") / "feedback.db"


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 1, 12, 0, 0))


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def db_url(backend, tmp_path) -> str:
    return PG_URL if backend == "postgresql" else f"sqlite:///{tmp_path / 'feedback.db'}"


@pytest.fixture
def make_system(db_url, backend, clock, sqlite_template):
    """Build systems on the test's fresh database, with optional setting overrides."""
    built: list[FeedbackSystem] = []
    prepared = False

    def make(**overrides) -> FeedbackSystem:
        nonlocal prepared
        settings = Settings(database_url=db_url, **overrides)
        if not prepared:
            if backend == "postgresql":
                _fresh_pg(settings).dispose()
            else:
                _fresh_sqlite(sqlite_template, Path(db_url.removeprefix("sqlite:///")))
            prepared = True
        system = FeedbackSystem.from_settings(settings, clock=clock)
        built.append(system)
        return system

    yield make
    for system in built:
        system.close()


@pytest.fixture
def system(make_system) -> FeedbackSystem:
    return make_system()


def row_counts(system: FeedbackSystem) -> dict[str, int]:
    """Count the rows of every table: tests compare before and after a rejected call."""
    return system.count_rows()


EMPTY_SCHEMA = "feedback_no_schema"


@pytest.fixture
def empty_url(backend, tmp_path):
    """The URL of a database that has no feedback schema: a new SQLite file, or on PostgreSQL
    an empty schema first on the search path (the migrated one the other tests share is left
    alone)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {EMPTY_SCHEMA} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {EMPTY_SCHEMA}"))
    separator = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{separator}options={quote(f'-csearch_path={EMPTY_SCHEMA}')}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {EMPTY_SCHEMA} CASCADE"))
    admin.dispose()
