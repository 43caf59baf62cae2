"""Engines, transactions and schema migrations. No engine exists until someone builds one."""

from __future__ import annotations

import fcntl
import functools
import logging
import operator
import os
import re
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from sqlalchemy import (
    Boolean,
    Connection,
    Date,
    DateTime,
    Engine,
    Executable,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.dialects import sqlite as sqlite_types
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    DisconnectionError,
    InvalidRequestError,
    OperationalError,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from feedback_core.errors import (
    ConfigError,
    DatabaseRefusedError,
    DatabaseUnavailableError,
    SchemaMissingError,
)
from feedback_core.settings import Settings, mask_query_passwords, mask_url

log = logging.getLogger("feedback_core")

# Some connection errors mean "the server is gone", not "the query is wrong".
_UNAVAILABLE_SQLSTATES = {"08000", "08001", "08003", "08004", "08006", "57P01", "57P02", "57P03"}


def utcnow() -> datetime:
    """Return the current time as a naive UTC datetime (the storage format)."""
    return datetime.now(UTC).replace(tzinfo=None)


def to_naive_utc(moment: datetime) -> datetime:
    """Convert an aware datetime to naive UTC; a naive one is taken to be UTC already."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def format_ts(moment: datetime | None) -> str | None:
    """Format a stored timestamp the one way the system shows time: ``YYYY-MM-DD HH:MM:SS`` UTC."""
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return to_naive_utc(moment).strftime("%Y-%m-%d %H:%M:%S")


# The databases this code drives: PostgreSQL through psycopg 3 (``postgresql://`` means it
# here), SQLite through the standard library's sqlite3.
SUPPORTED_DRIVERS = {
    "postgresql": ("postgresql", "postgresql+psycopg"),
    "sqlite": ("sqlite", "sqlite+pysqlite"),
}
URL_FORMS = "postgresql://USER:PASSWORD@HOST:PORT/NAME (postgresql+psycopg:// is the same) or sqlite:///PATH"


def parse_database_url(database_url: str) -> URL:
    """Parse a database URL this code can drive.

    Raises:
        ConfigError: the URL is malformed, or names a database or driver other than
            PostgreSQL through psycopg 3 and SQLite; the message shows the URL as given
            (password masked) and the form to use instead.
    """
    try:
        url = make_url(database_url)
    except (ArgumentError, ValueError):
        # ValueError: make_url's own complaint (a port that is not a number) may echo the password.
        raise ConfigError(
            f"the database URL {mask_url(database_url)!r} (from --db or FEEDBACK_DB_URL) is malformed: "
            f"{_suggest_url(database_url)}"
        ) from None
    backend, _, driver = url.drivername.partition("+")
    if url.drivername in SUPPORTED_DRIVERS.get(backend, ()):
        return url
    if backend in SUPPORTED_DRIVERS:
        what = f"its driver {driver} is not supported (psycopg 3 and sqlite3 are)"
    elif backend == "postgres":
        what = "the scheme is postgresql://, not postgres://"
    else:
        what = f"{backend} is not supported"
    if backend in ("postgresql", "postgres", "sqlite"):
        same = url.set(drivername="sqlite" if backend == "sqlite" else "postgresql")
        hint = f"write {mask_url(same.render_as_string(hide_password=False))}"
    else:
        hint = f"use {URL_FORMS}"
    raise ConfigError(
        f"the database URL {mask_url(database_url)!r} (from --db or FEEDBACK_DB_URL) cannot be used: "
        f"{what}; {hint}"
    )


def _suggest_url(text: str) -> str:
    """Say how to write a malformed database URL: a bare file path, or ``sqlite:`` followed by
    a path without the slashes, becomes its ``sqlite:///`` URL; anything else gets the forms."""
    given = text.strip()
    scheme, colon, rest = given.partition(":")
    path = None
    if not colon and given and not given.lower().startswith(("sqlite", "postgres")):
        path = given  # no scheme at all: a file name
    elif colon and scheme.lower() == "sqlite" and rest and not rest.startswith("//"):
        path = rest  # sqlite:/tmp/a.db, sqlite:a.db
    if path is None:
        return f"use {URL_FORMS}"
    absolute = " (three slashes, then the absolute path)" if path.startswith("/") else ""
    path = mask_query_passwords(path)
    return (
        f"for the SQLite file {path} write sqlite:///{path}{absolute}; "
        "for PostgreSQL postgresql://USER:PASSWORD@HOST:PORT/NAME"
    )


def make_engine(settings: Settings) -> Engine:
    """Build the engine for ``settings.database_url``, configured for concurrent use."""
    url = parse_database_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(settings, url)
    url = url.set(drivername="postgresql+psycopg")
    # hide_parameters: bound values (key digests, user text) stay out of logs and errors.
    engine = create_engine(url, pool_size=5, max_overflow=10, hide_parameters=True)
    _ping_when_idle(engine)
    return engine


PING_AFTER_IDLE_S = 1.0


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use when it has been idle for a while.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout: a round trip per read, and a
    dashboard page makes dozens of reads in a row. A connection that was checked in less than
    ``PING_AFTER_IDLE_S`` ago was working then; one idle for longer (a database restarted in
    between, a connection dropped by a proxy) is pinged, and a dead one is replaced at once,
    so the first request after an outage does not fail.
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn, record):
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn, record, _proxy):
        idle_since = record.info.get("checked_in_at")
        if idle_since is not None and time.monotonic() - idle_since < PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            # The pool discards this connection and tries a fresh one.
            raise DisconnectionError("the pooled connection was lost") from exc


def _sqlite_engine(settings: Settings, url) -> Engine:
    database = url.database
    on_disk = bool(database) and database != ":memory:" and not database.startswith("file:")
    if on_disk:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        # Every connection is a real file handle; a pool avoids re-running the pragmas.
        connect_args={"check_same_thread": False, "timeout": settings.sqlite_busy_timeout_ms / 1000},
        poolclass=NullPool if database in (None, "", ":memory:") else None,
        hide_parameters=True,
    )
    checkpointer = (
        _Checkpointer(os.path.abspath(database), settings.sqlite_busy_timeout_ms)
        if on_disk and not url.query
        else None
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Let SQLAlchemy emit BEGIN itself (below) instead of pysqlite's implicit handling.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(settings.sqlite_busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA synchronous={settings.sqlite_synchronous.upper()}")
        # lower() of every letter (Python's str.lower), near PostgreSQL's: SQLite's own folds A-Z
        # only, so "ÉMILE" did not find Émile on SQLite, where it did on PostgreSQL.
        dbapi_conn.create_function("lower", 1, _unicode_lower, deterministic=True)
        if checkpointer is not None:
            # The background checkpointer below does this work, outside anyone's COMMIT.
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    # Writers take the write lock up front so that check-then-insert sequences cannot
    # interleave; readers use a deferred BEGIN and never block in WAL mode. Done by the
    # dialect's own BEGIN hook rather than a "begin" event: an engine without connection
    # events takes SQLAlchemy's quick paths (a tenth of the time of recording a dislike).
    engine.dialect.do_begin = _sqlite_begin
    if checkpointer is not None:
        _CHECKPOINTERS[engine] = checkpointer
        # On the engine itself: the kept connection refers to the engine, and a table of
        # engines would keep every engine that ever wrote alive.
        writers = engine._feedback_writers = _Writers(
            os.path.abspath(database), settings.sqlite_busy_timeout_ms
        )
        writers.checkpointer = checkpointer
        # A kept connection stays checked out, and a checked-out connection keeps its engine
        # alive: ``engine.dispose()`` lets go of it first, as ``close_engine`` does.
        engine.dispose = _disposing_writers_first(engine.dispose, writers)
    return engine


class _Checkpointer:
    """Copies an SQLite file's write-ahead log back into the database, mostly from a background thread.

    SQLite's automatic checkpoint runs inside the COMMIT of whichever write crosses its
    threshold: that caller waits while ~1,000 pages are copied and synced to disk (30-40 ms
    every few dozen dislikes, about half of the mean cost of recording one). The engine's
    connections turn it off. Instead this thread copies the log (PASSIVE checkpoints: readers
    and writers go on meanwhile) after ``COMMITS_PER_CHECKPOINT`` write transactions of this
    process, or ``INTERVAL_S`` after a write, whichever comes first.

    A writer starts the log afresh only when it finds every frame copied, which never
    happens while a steady stream of writes runs past a background checkpoint. So once the
    log holds more than ``RESTART_FRAMES``, the thread catches up until little is left and
    leaves the last step to the next writer of this process: right after its COMMIT, outside
    its transaction, it copies the few frames written since while holding other writers back
    (tens of ms, once every hundred or so writes), and the writer after it starts a fresh log.

    A crash in the middle of a checkpoint loses nothing (the log stays valid). The thread
    ends after ``IDLE_EXIT_S`` without writes and starts again at the next one; a forked
    child starts its own.
    """

    COMMITS_PER_CHECKPOINT = 50
    INTERVAL_S = 0.5
    IDLE_EXIT_S = 10.0
    RESTART_FRAMES = 4_000  # ~16 MB of log
    REST_FRAMES = 100  # what may be left for the writer to copy
    FORCE_FACTOR = 3  # past 3 x RESTART_FRAMES a writer finishes even a larger rest
    CATCH_UP_ROUNDS = 4
    FINISH_WAIT_MS = 200
    FIRST_BACKOFF_S = 0.25
    MAX_BACKOFF_S = 30.0

    def __init__(self, path: str, busy_timeout_ms: int) -> None:
        self.path = path
        self.busy_timeout_ms = int(busy_timeout_ms)
        self.completed = 0  # background checkpoints and writers' final steps (diagnostics)
        self.finished_by_writer = 0
        self._reset()
        _LIVE_CHECKPOINTERS.add(self)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending = 0
        self._writer_finishes = False
        self._stopping = False
        self._backoff = 0.0  # seconds the last busy final step held off the next one
        self._arm_after = 0.0

    def stop(self, timeout: float = 30.0) -> None:
        """Checkpoint what is left and end the thread (a later write starts it again)."""
        with self._lock:
            thread = self._thread
            if thread is None:
                return
            self._stopping = True
            self._writer_finishes = False
        self._wake.set()
        thread.join(timeout)
        self._stopping = False

    def committed(self, dbapi_conn) -> None:
        """Note one committed write transaction of ``dbapi_conn`` (no transaction open)."""
        with self._lock:
            finish, self._writer_finishes = self._writer_finishes, False
        if finish:
            self._finish(dbapi_conn)
        with self._lock:
            self._pending += 1
            if self._thread is None:
                thread = threading.Thread(
                    target=self._run, name=f"sqlite-checkpoint {Path(self.path).name}", daemon=True
                )
                thread.start()
                self._thread = thread
            elif self._pending >= self.COMMITS_PER_CHECKPOINT:
                self._wake.set()

    def _finish(self, dbapi_conn) -> None:
        # RESTART: copy the rest holding the write lock (taken like any writer's), wait for
        # readers still on the old log, and leave it so that the next writer, of any process,
        # starts it afresh. A PASSIVE one would not do under writes from several processes:
        # another's COMMIT could land in between. The wait is short, so that a long read
        # cannot hold writers back: when busy, the thread arranges another finish later.
        dbapi_conn.execute(f"PRAGMA busy_timeout={self.FINISH_WAIT_MS}")
        began = time.monotonic()
        try:
            busy, _frames, _copied = dbapi_conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        finally:
            dbapi_conn.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms}")
        if busy and time.monotonic() - began < self.FINISH_WAIT_MS / 2000:
            # Answered at once: another process's checkpoint was running. The next writer
            # tries again.
            with self._lock:
                self._writer_finishes = not self._stopping
        elif busy:
            # A reader still on the old log (a dashboard page, another process) made it wait
            # in vain: do not hold writers back again at once; wait longer after each time.
            self._backoff = min(max(self._backoff * 2, self.FIRST_BACKOFF_S), self.MAX_BACKOFF_S)
            self._arm_after = time.monotonic() + self._backoff
        else:
            self._backoff = 0.0
            self.finished_by_writer += 1

    def _run(self) -> None:
        conn = None
        last_write = time.monotonic()
        try:
            while True:
                self._wake.wait(self.INTERVAL_S)
                self._wake.clear()
                with self._lock:
                    pending, self._pending = self._pending, 0
                    stopping = self._stopping
                    if not pending:
                        if stopping or time.monotonic() - last_write >= self.IDLE_EXIT_S:
                            # Decided under the lock: a write from now on starts a new thread.
                            self._thread = None
                            return
                        continue
                last_write = time.monotonic()
                if self._writer_finishes and not stopping:
                    continue  # the next writer copies the rest: a checkpoint now would make it busy
                try:
                    if conn is None:
                        # mode=rw: a database file removed meanwhile is not created anew.
                        uri = f"{Path(self.path).as_uri()}?mode=rw"
                        conn = sqlite3.connect(uri, uri=True, isolation_level=None)
                    if stopping:
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                        self.completed += 1
                        return
                    self._checkpoint(conn)
                    self.completed += 1
                except (sqlite3.Error, OSError):
                    # The next write asks again (on a fresh connection).
                    log.warning("[FEEDBACK] checkpointing %s failed", self.path, exc_info=True)
                    if conn is not None:
                        conn.close()
                        conn = None
        finally:
            with self._lock:
                if self._thread is threading.current_thread():
                    self._thread = None
            if conn is not None:
                conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        _busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if frames <= self.RESTART_FRAMES or time.monotonic() < self._arm_after:
            return
        for _ in range(self.CATCH_UP_ROUNDS):
            # Each round copies what was written during the one before. (Never open the
            # database file outside SQLite, not even to sync it: closing any descriptor of
            # it drops this process's POSIX locks, and SQLite's safety with them.)
            _busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if copied >= 0 and frames - copied <= self.REST_FRAMES:
                break
        else:
            # Not caught up (a reader holds old frames, or writes outrun the copying): the
            # next round tries again rather than leave a large rest to a writer, unless the
            # log has grown so far that a writer's longer final step is the lesser evil.
            if frames < self.RESTART_FRAMES * self.FORCE_FACTOR:
                return
        with self._lock:
            if not self._stopping:
                self._writer_finishes = True


def _unicode_lower(value):
    if value is None or isinstance(value, bytes):
        return value
    return str(value).lower()  # (a number as text, as SQLite's lower() gives it)


class _Writers:
    """How this process's write transactions on one SQLite file begin and end.

    Writers take turns. SQLite makes a writer that finds the write lock taken sleep 1, 2, 5,
    10 ms... before it tries again, however soon the lock is free: with two API workers
    recording dislikes (about a millisecond each) a tenth of their time went to such sleeps.
    Here a writer first takes a lock (``flock``) on a file next to the database
    (``<database>-writer``) that every process using it shares, asking again every few tens
    of microseconds up to a millisecond, so it starts soon after the writer before it ends.
    Programs that do not take that lock (``sqlite3``, other tools) are still kept out by
    SQLite's own. A writer whose turn has not come within the busy timeout goes straight to
    SQLite's lock, which then reports the database busy as it always did. The lock goes with
    the process's open file: the kernel releases it when the process ends, and a forked child
    closes its copy of the file at once, so that it never holds the lock for a parent that died.

    The connection of the last write transaction is kept for the next one (writers take
    turns, so one is nearly always enough): checking a connection out of the pool and back in
    costs more than the BEGIN and COMMIT of a small write transaction. It is dropped when the
    engine is disposed of (its pool replaced) and closed by ``close_engine``.
    """

    FIRST_WAIT_S = 0.00005
    LONGEST_WAIT_S = 0.001
    RETRY_FILE_AFTER_S = 60.0

    def __init__(self, path: str, busy_timeout_ms: int) -> None:
        self.path = f"{path}-writer"
        self.busy_timeout_ms = int(busy_timeout_ms)
        self.checkpointer: _Checkpointer | None = None  # the engine's, told of every commit
        self._reset()
        _LIVE_WRITERS.add(self)

    def _reset(self) -> None:
        # Also in a forked child. Its copy of the lock file shares the parent's open file, and
        # with it the lock: closed here (the parent's stays open), the child opens its own. The
        # kept connection it inherited is the parent's: set aside, never used, never closed
        # (closing it would let SQLite act on the parent's files from here).
        inherited = getattr(self, "_file", None)
        if inherited is not None:
            inherited.close()
        _INHERITED.extend(conn for conn, _ in getattr(self, "_kept", ()))
        self._turns = threading.Lock()
        self._file = None
        self._no_file_until = 0.0
        self._kept: list[tuple[Connection, object]] = []  # (connection, the pool it came from)
        self._kept_lock = threading.Lock()

    def close(self, close_connections: bool = True) -> None:
        """Let go of the kept connection and close the lock file (the engine is being disposed
        of; ``close_connections`` as ``Engine.dispose``'s ``close``: False in a forked child,
        whose connections are its parent's to close)."""
        with self._kept_lock:
            kept, self._kept = self._kept, []
        for conn, _ in kept:
            if close_connections:
                conn.close()
            else:
                _INHERITED.append(conn)
        # Not while a write of this process holds its turn (a dispose inside a write transaction
        # would wait for itself): the file then closes when the engine goes.
        if self._turns.acquire(timeout=1.0):
            try:
                if self._file is not None:
                    self._file.close()
                    self._file = None
            finally:
                self._turns.release()

    def _take(self, engine: Engine) -> tuple[Connection, object] | None:
        with self._kept_lock:
            taken = self._kept.pop() if self._kept else None
        if taken is not None and taken[1] is not engine.pool:  # disposed of meanwhile
            taken[0].close()
            return None
        return taken

    def _keep(self, engine: Engine, conn: Connection, pool: object) -> None:
        if pool is engine.pool:
            with self._kept_lock:
                if not self._kept:
                    self._kept.append((conn, pool))
                    return
        conn.close()

    def _take_turn(self) -> tuple[bool, bool | None]:
        """Wait for this writer's turn among the process's threads and among processes; return
        whether the process's own came and the lock file's lock (``_lock``), both within the
        busy timeout. ``_end_turn`` gives back what was taken."""
        deadline = time.monotonic() + self.busy_timeout_ms / 1000
        if not self._turns.acquire(timeout=self.busy_timeout_ms / 1000):
            return False, False
        try:
            return True, self._lock(deadline)
        except BaseException:
            self._turns.release()
            raise

    def _end_turn(self, taken: tuple[bool, bool | None]) -> None:
        own, locked = taken
        try:
            if locked:
                fcntl.flock(self._file, fcntl.LOCK_UN)
        finally:
            if own:
                self._turns.release()

    def _lock(self, deadline: float) -> bool | None:
        """Take the lock file's lock: True, False when the busy timeout went by first, None
        when there is no lock file to take (SQLite's lock alone then)."""
        if self._file is None and not self._open():
            return None
        wait = self.FIRST_WAIT_S
        while True:
            try:
                fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(wait)
                wait = min(wait * 2, self.LONGEST_WAIT_S)

    def _open(self) -> bool:
        if time.monotonic() < self._no_file_until:
            return False
        # A file of its own, never the database: closing any descriptor of the database file
        # would drop the POSIX locks SQLite holds on it. Read-only will do for a lock (another
        # user's process may have made the file).
        for flags in (os.O_RDWR | os.O_CREAT, os.O_RDONLY):
            try:
                self._file = _LockFile(self.path, flags)
                return True
            except OSError:
                continue
        log.warning(
            "[FEEDBACK] cannot open %s: writers wait on SQLite's lock alone for the next %.0f s",
            self.path,
            self.RETRY_FILE_AFTER_S,
        )
        self._no_file_until = time.monotonic() + self.RETRY_FILE_AFTER_S
        return False


class _WriteTransaction:
    """One write transaction on an SQLite file (see ``write_transaction``).

    ``BEGIN IMMEDIATE`` goes straight to the driver's connection, in turn, and SQLAlchemy's
    transaction is then opened over it (``_sqlite_begin`` sends nothing more): a transaction
    object and a context manager per step cost more than SQLite takes to begin and commit a
    small write. The end goes through SQLAlchemy: a commit that fails is rolled back before
    the error is raised, so a connection never goes back to the pool inside a transaction.
    """

    __slots__ = ("_writers", "_engine", "_bulk", "_owned", "_conn", "_pool", "_taken")

    def __init__(self, writers: _Writers, engine: Engine, bulk: bool, connection: Connection | None) -> None:
        self._writers, self._engine, self._bulk = writers, engine, bulk
        self._owned = connection is None
        self._conn, self._pool, self._taken = connection, None, None

    def __enter__(self) -> Connection:
        writers, engine = self._writers, self._engine
        try:
            if self._owned:
                taken = None if self._bulk else writers._take(engine)
                self._conn, self._pool = taken if taken is not None else (engine.connect(), engine.pool)
            conn = self._conn
            if conn.in_transaction():
                raise InvalidRequestError("a write transaction needs a connection with no transaction open")
            self._taken = writers._take_turn()
            try:
                dbapi_conn = conn.connection.dbapi_connection
                own, locked = self._taken
                if own and locked is not False:
                    _driver_call(conn, dbapi_conn, "BEGIN IMMEDIATE")
                else:
                    # The busy timeout went by waiting for a turn: SQLite's lock answers at once.
                    dbapi_conn.execute("PRAGMA busy_timeout=0")
                    try:
                        _driver_call(conn, dbapi_conn, "BEGIN IMMEDIATE")
                    finally:
                        dbapi_conn.execute(f"PRAGMA busy_timeout={writers.busy_timeout_ms}")
                try:
                    conn.begin()
                except BaseException:
                    dbapi_conn.rollback()
                    raise
            except BaseException:
                writers._end_turn(self._taken)
                raise
        except BaseException as exc:
            self._release(keep=False)
            _raise_translated(exc)
        return conn

    def __exit__(self, exc_type, exc, tb) -> None:
        conn = self._conn
        committed = False
        try:
            try:
                if exc_type is None:
                    _commit(conn)
                    committed = True
                    if not self._bulk and self._writers.checkpointer is not None:
                        _note_commit(self._writers.checkpointer, conn)
                else:
                    _roll_back(conn)
            finally:
                self._writers._end_turn(self._taken)
        except BaseException as failure:
            self._release(keep=False)
            if exc_type is None:
                _raise_translated(failure)
            log.warning("[FEEDBACK] rolling back a failed write transaction failed", exc_info=True)
        else:
            self._release(keep=committed and not self._bulk)
        if isinstance(exc, (OperationalError, DBAPIError)):
            translated = _translate(exc)
            if translated is not exc:
                raise translated from exc

    def _release(self, keep: bool) -> None:
        conn = self._conn
        if not self._owned or conn is None:
            return  # the caller's
        if keep and not (conn.closed or conn.invalidated or conn.in_transaction()):
            self._writers._keep(self._engine, conn, self._pool)
        else:
            conn.close()


def _driver_call(conn: Connection, dbapi_conn, sql: str) -> None:
    """Run ``sql`` on the driver's connection, its errors raised as SQLAlchemy's."""
    try:
        dbapi_conn.execute(sql)
    except conn.dialect.loaded_dbapi.Error as exc:
        _raise_driver_error(conn, dbapi_conn, None, sql, exc)


def _commit(conn: Connection) -> None:
    """Commit the write transaction of ``conn``; if that fails, roll it back, then raise."""
    if conn.closed:
        raise InvalidRequestError(
            "the connection was closed inside its write transaction: nothing was committed"
        )
    if conn.invalidated:
        _roll_back(conn)
        raise DatabaseUnavailableError("the database is unavailable (the connection was lost); retry shortly")
    transaction = conn.get_transaction()
    if transaction is None or not transaction.is_active:
        _roll_back(conn)
        raise InvalidRequestError("the write transaction had already ended before its commit")
    try:
        transaction.commit()
    except BaseException:
        try:
            _roll_back(conn)
        except Exception:
            log.warning("[FEEDBACK] rolling back after a failed commit failed", exc_info=True)
        raise


def _roll_back(conn: Connection) -> None:
    """Roll back whatever ``conn`` has open, SQLAlchemy's transaction and the driver's; a
    connection that cannot be rolled back is invalidated (never used again)."""
    if conn.closed:
        return  # closing rolled it back
    try:
        if conn.get_transaction() is not None:
            conn.rollback()
        if not conn.invalidated:
            dbapi_conn = conn.connection.dbapi_connection
            if dbapi_conn.in_transaction:
                dbapi_conn.rollback()
    except BaseException as exc:
        if not (conn.closed or conn.invalidated):
            conn.invalidate(exc if isinstance(exc, Exception) else None)
        raise


def _note_commit(checkpointer: _Checkpointer, conn: Connection) -> None:
    try:
        checkpointer.committed(conn.connection.dbapi_connection)
    except Exception:
        # The write is committed: a checkpoint that failed must not make it look failed.
        log.warning("[FEEDBACK] checkpointing %s after a write failed", checkpointer.path, exc_info=True)


def _raise_translated(exc: BaseException, missing_schema: bool = True) -> None:
    """Raise ``exc``, a lost or unreachable database as DatabaseUnavailableError (and, with
    ``missing_schema``, a missing table of the schema as SchemaMissingError)."""
    if isinstance(exc, (OperationalError, DBAPIError)):
        translated = _translate(exc, missing_schema)
        if translated is not exc:
            raise translated from exc
    raise exc


class _LockFile:
    """A descriptor of a lock file, closed exactly once: by ``close``, or when dropped."""

    __slots__ = ("fd",)

    def __init__(self, path: str, flags: int) -> None:
        self.fd = -1  # until it opens (a failed open leaves nothing to close)
        self.fd = os.open(path, flags | os.O_CLOEXEC, 0o644)

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    __del__ = close


def _disposing_writers_first(dispose, writers: _Writers):
    def dispose_engine(close: bool = True) -> None:
        writers.close(close)
        dispose(close)

    dispose_engine.__doc__ = dispose.__doc__
    return dispose_engine


def _writers(engine: Engine) -> _Writers | None:
    """The writers' turns of an SQLite file engine (None for other engines)."""
    return getattr(engine, "_feedback_writers", None)


_LIVE_WRITERS: weakref.WeakSet[_Writers] = weakref.WeakSet()
_INHERITED: list[Connection] = []  # a forked child's copies of its parent's kept connections
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: [w._reset() for w in list(_LIVE_WRITERS)])


# Checkpointers by engine, and every one alive (a forked child resets them: no thread and
# no lock of the parent's survives the fork).
_CHECKPOINTERS: weakref.WeakKeyDictionary[Engine, _Checkpointer] = weakref.WeakKeyDictionary()
_LIVE_CHECKPOINTERS: weakref.WeakSet[_Checkpointer] = weakref.WeakSet()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: [c._reset() for c in list(_LIVE_CHECKPOINTERS)])


def close_engine(engine: Engine) -> None:
    """Release ``engine``'s pooled connections, after its background checkpointer has copied
    what is left of the SQLite log and ended (the last connection to close removes the log)."""
    checkpointer = _CHECKPOINTERS.get(engine)
    if checkpointer is not None:
        checkpointer.stop()
    engine.dispose()  # on an SQLite file also lets go of the writers' kept connection


def usual_autocheckpoint(engine: Engine) -> int:
    """The ``wal_autocheckpoint`` an SQLite connection of ``engine`` has: 0 when a background
    thread checkpoints (file databases), else SQLite's default of 1,000 pages."""
    return 0 if engine in _CHECKPOINTERS else 1000


def _wrote(conn: Connection) -> None:
    """Note that ``conn`` committed a write transaction (its SQLite log then gets checkpointed)."""
    checkpointer = _CHECKPOINTERS.get(conn.engine)
    if checkpointer is not None:
        _note_commit(checkpointer, conn)


def write_transaction(engine: Engine, bulk: bool = False, connection: Connection | None = None):
    """Open one write transaction (a context manager giving its connection): commit on
    success, roll back on any error.

    ``bulk``: a transaction of thousands of rows (an import batch) whose connection checkpoints
    the SQLite log itself, with a large threshold (``PRAGMA wal_autocheckpoint``): the
    background checkpointer, made for a stream of small writes, is not told of it.
    ``connection``: run on this connection (no transaction open), which stays the caller's.
    The block ends the transaction by returning (commit) or raising (roll back), never by
    calling the connection's ``commit()`` or ``rollback()``.
    """
    writers = _writers(engine)
    if writers is not None:  # an SQLite file
        transaction = _WriteTransaction(writers, engine, bulk, connection)
    else:
        transaction = _write_transaction(engine, connection)
    hook = _BEFORE_COMMIT.get()
    return transaction if hook is None else _WithBeforeCommit(transaction, hook)


# A statement every write transaction of this context runs last, inside it (``before_commit``).
_BEFORE_COMMIT: ContextVar[Callable[[Connection], None] | None] = ContextVar(
    "feedback_before_commit", default=None
)


@contextmanager
def before_commit(hook: Callable[[Connection], None] | None) -> Iterator[None]:
    """Run ``hook(conn)`` at the end of every write transaction opened in this block (this thread
    or task) that wrote something, inside it: what the hook writes commits with the
    transaction's writes, or not at all. A transaction that wrote nothing does not run it.
    ``None``: no hook in the block (housekeeping that is not the caller's effect)."""
    token = _BEFORE_COMMIT.set(hook)
    try:
        yield
    finally:
        _BEFORE_COMMIT.reset(token)


_ROWS_WRITTEN = text(
    "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_xact_user_tables"
)


class _WithBeforeCommit:
    """A write transaction that runs a hook on its connection before it commits, if it wrote."""

    __slots__ = ("_transaction", "_hook", "_conn", "_changes")

    def __init__(self, transaction, hook: Callable[[Connection], None]) -> None:
        self._transaction, self._hook = transaction, hook

    def __enter__(self) -> Connection:
        self._conn = self._transaction.__enter__()
        self._changes = self._changes_so_far()
        return self._conn

    def _changes_so_far(self) -> int:
        """The rows this connection has inserted, updated and deleted so far: SQLite's count, or
        PostgreSQL's count for the transaction (which may also hold earlier transactions' not yet
        reported: only its growth counts). A row locked FOR UPDATE, or an upsert that did
        nothing, is no change."""
        if self._conn.dialect.name == "sqlite":
            return self._conn.connection.dbapi_connection.total_changes
        return int(self._conn.execute(_ROWS_WRITTEN).scalar())

    def _wrote(self) -> bool:
        return self._changes_so_far() != self._changes

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            try:
                if self._wrote():
                    self._hook(self._conn)
            except BaseException as error:
                # Rolled back like any failure inside the block (the transaction may raise its own).
                if not self._transaction.__exit__(type(error), error, error.__traceback__):
                    raise
                return None
        return self._transaction.__exit__(exc_type, exc, tb)


@contextmanager
def _write_transaction(engine: Engine, connection: Connection | None) -> Iterator[Connection]:
    try:
        with engine.connect() if connection is None else nullcontext(connection) as conn:
            with _begin_write(conn):
                yield conn
    except (OperationalError, DBAPIError) as exc:
        translated = _translate(exc)
        if translated is exc:
            raise
        raise translated from exc


# Set while a write transaction begins: SQLite's BEGIN is then BEGIN IMMEDIATE.
_BEGINNING_WRITE: ContextVar[bool] = ContextVar("feedback_beginning_write", default=False)


def _sqlite_begin(dbapi_conn) -> None:
    if dbapi_conn.in_transaction:
        return  # a write transaction begun on the driver's connection (``_WriteTransaction``)
    dbapi_conn.execute("BEGIN IMMEDIATE" if _BEGINNING_WRITE.get() else "BEGIN")


def _begin_write(conn: Connection):
    """Begin ``conn``'s transaction as a write transaction; return it (a context manager)."""
    token = _BEGINNING_WRITE.set(True)
    try:
        return conn.begin()
    finally:
        _BEGINNING_WRITE.reset(token)


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """Open a connection for reads in one transaction; inside ``reading(engine)``, share its transaction.

    Outside a reading session each call checks a connection out and runs its own ``BEGIN`` and
    ``COMMIT``. Inside one, the first call opens the session's transaction and every call
    (nested ones too) gets that connection without beginning or committing anything.
    """
    session = _reading_session(engine)
    try:
        if session is None:
            with engine.connect() as conn:
                with conn.begin():
                    yield conn
        else:
            with session.borrow() as conn:
                yield conn
    except (OperationalError, DBAPIError) as exc:
        translated = _translate(exc)
        if translated is exc:
            raise
        raise translated from exc


@contextmanager
def reading(engine: Engine) -> Iterator[None]:
    """Run every ``read_connection(engine)`` of the block in one read transaction: one snapshot.

    A dashboard page asks a dozen questions; answered in one transaction they agree with each
    other (a dislike recorded meanwhile is in all of the numbers or in none), and PostgreSQL
    is spared a pool checkout, ``BEGIN`` and ``COMMIT`` per question. The transaction starts at
    the block's first read (a block whose reads all come from a cache opens nothing) and ends
    with the block. On PostgreSQL it is ``REPEATABLE READ READ ONLY``, so that every statement
    sees the snapshot of the first (``READ COMMITTED`` takes one per statement); SQLite's
    deferred ``BEGIN`` in WAL mode keeps its first snapshot anyway.

    Writes (``write_transaction``) inside the block use their own connection and commit as
    usual, but the block's later reads do not see them: write after the block, or read
    outside it. A read that raises ends the session's transaction (a failed statement spoils
    a PostgreSQL transaction), and the next read of the block opens a fresh one. Blocks nest
    (the outermost one owns the transaction) and belong to the thread that opened them.
    """
    if _reading_session(engine) is not None:
        yield
        return
    session = _ReadingSession(engine)
    token = _READING.set({**(_READING.get() or {}), engine: session})
    try:
        try:
            yield
        except BaseException:
            session.end(commit=False)
            raise
        try:
            session.end(commit=True)
        except (OperationalError, DBAPIError) as exc:
            translated = _translate(exc)
            if translated is exc:
                raise
            raise translated from exc
    finally:
        _READING.reset(token)


class _ReadingSession:
    """The read transaction a ``reading`` block shares, opened at its first read."""

    __slots__ = ("engine", "thread", "conn", "transaction")

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.thread = threading.get_ident()
        self.conn: Connection | None = None
        self.transaction = None

    @contextmanager
    def borrow(self) -> Iterator[Connection]:
        if self.conn is None:
            self._open()
        try:
            yield self.conn
        except BaseException:
            self.end(commit=False)
            raise

    def _open(self) -> None:
        conn = self.engine.connect()
        try:
            if conn.dialect.name == "postgresql":
                # Sent with the BEGIN (psycopg keeps them as connection attributes; the pool
                # resets them at check-in): no round trip of its own.
                conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            self.transaction = conn.begin()
        except BaseException:
            conn.close()
            raise
        self.conn = conn

    def end(self, commit: bool) -> None:
        """Commit (or roll back) and return the connection; the next read opens a new transaction."""
        conn, transaction = self.conn, self.transaction
        self.conn = self.transaction = None
        if conn is None:
            return
        try:
            if commit:
                transaction.commit()
            elif conn.in_transaction():
                try:
                    transaction.rollback()
                except (OperationalError, DBAPIError):
                    # Ending after an error: that error is the one to report, and a connection
                    # that cannot even roll back is discarded by the pool.
                    log.debug("[FEEDBACK] rolling back a reading session failed", exc_info=True)
        finally:
            conn.close()


# The reading sessions open in this context, by engine (a new mapping for each session opened).
_READING: ContextVar[Mapping[Engine, _ReadingSession] | None] = ContextVar("feedback_reading", default=None)


def _reading_session(engine: Engine) -> _ReadingSession | None:
    """Return the reading session this thread has open on ``engine``, if any."""
    session = (_READING.get() or {}).get(engine)
    if session is None or session.thread != threading.get_ident():
        # A context copied into another thread must not share the connection.
        return None
    return session


def pipelined(conn: Connection):
    """Send the statements of the block without waiting for each answer (PostgreSQL pipeline
    mode; elsewhere nothing changes). For writes whose results are not read inside the block:
    their errors are raised when it ends, and the transaction is then rolled back as usual."""
    return _pipeline(conn) if conn.dialect.name == "postgresql" else _NO_PIPELINE


_NO_PIPELINE = nullcontext()


@contextmanager
def _pipeline(conn: Connection) -> Iterator[None]:
    dbapi_conn = conn.connection.dbapi_connection
    try:
        with dbapi_conn.pipeline():
            yield
    except conn.dialect.loaded_dbapi.Error as exc:
        gone = conn.dialect.is_disconnect(exc, dbapi_conn, None)
        if gone:
            conn.invalidate(exc)
        raise DBAPIError.instance(
            "pipelined statements",
            None,
            exc,
            conn.dialect.loaded_dbapi.Error,
            connection_invalidated=gone,
            dialect=conn.dialect,
        ) from exc


class Prepared:
    """A Core statement compiled once per dialect and run straight on the driver's cursor.

    SQLAlchemy's execution layer costs several times what SQLite takes to run a small
    statement, and recording a dislike runs a dozen of them in one transaction. Statements
    on that path are compiled once, their parameters bound through the same type processors
    SQLAlchemy uses (so stored values are identical), and driver errors are raised as
    SQLAlchemy's exceptions. They run in the caller's transaction but bypass SQLAlchemy's
    execution events (and ``echo`` logging). Rows come back as plain tuples, their values
    converted by the column types as SQLAlchemy would.
    """

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._last: tuple = (None, {})  # (dialect, its compiled forms): the usual case, no lookup

    def execute(self, conn: Connection, params: Mapping | Sequence[Mapping]):
        """Run with one parameter set, or many (executemany); return the driver cursor."""
        return self._run(conn, params)[0]

    def first(self, conn: Connection, params: Mapping) -> tuple | None:
        """Run and return the first row as a tuple, or None."""
        cursor, converters = self._run(conn, params)
        try:
            row = cursor.fetchone()
            if row is None:
                return None
            self._learn_converters(conn, cursor, converters)
        finally:
            cursor.close()
        return tuple(v if f is None else f(v) for f, v in zip(converters, row, strict=True))

    def first_row(self, conn: Connection, keys: tuple[str, ...], row: tuple) -> tuple | None:
        """``first`` with the parameters given as one row of values in ``keys`` order."""
        sql, bind, converters = self._compiled_for(conn.dialect, keys)
        cursor = self._execute(conn, sql, bind.row(row), False)
        try:
            found = cursor.fetchone()
            if found is None:
                return None
            self._learn_converters(conn, cursor, converters)
        finally:
            cursor.close()
        return tuple(v if f is None else f(v) for f, v in zip(converters, found, strict=True))

    def all(self, conn: Connection, params: Mapping) -> list[tuple]:
        """Run and return every row as a tuple."""
        cursor, converters = self._run(conn, params)
        try:
            rows = cursor.fetchall()
            if rows:
                self._learn_converters(conn, cursor, converters)
        finally:
            cursor.close()
        return [tuple(v if f is None else f(v) for f, v in zip(converters, row, strict=True)) for row in rows]

    def _learn_converters(self, conn: Connection, cursor, converters: list) -> None:
        if converters:
            return
        # Known only now: a result processor may depend on the driver's column type.
        columns = list(getattr(self.statement, "exported_columns", ()))
        found = [None] * len(cursor.description)
        if len(columns) == len(found):  # a text() statement has no typed columns
            found = [
                col.type.dialect_impl(conn.dialect).result_processor(conn.dialect, desc[1])
                for col, desc in zip(columns, cursor.description, strict=True)
            ]
        converters[:] = found

    def scalar(self, conn: Connection, params: Mapping):
        """Run and return the first column of the first row, or None."""
        row = self.first(conn, params)
        return None if row is None else row[0]

    def execute_rows(self, conn: Connection, keys: tuple[str, ...], rows: Sequence[tuple]):
        """Run an executemany of ``rows``, tuples of values in ``keys`` order (no mapping per
        row: the bulk path of an import); return the driver cursor."""
        if len(rows) == 1:
            return self.execute_row(conn, keys, rows[0])
        return self._run(conn, _Rows(keys, rows))[0]

    def execute_row(self, conn: Connection, keys: tuple[str, ...], row: tuple):
        """Run with one row of values in ``keys`` order; return the driver cursor. The lean
        path of a live dislike's aggregates: a statement's own cost there is a few microseconds."""
        sql, bind, _ = self._compiled_for(conn.dialect, keys)
        return self._execute(conn, sql, bind.row(row), False)

    @staticmethod
    def execute_all(
        conn: Connection, runs: Sequence[tuple[Prepared, tuple[str, ...], Sequence[tuple]]]
    ) -> None:
        """Run several statements in turn on one cursor: ``(statement, keys, rows)`` each, rows
        as for ``execute_rows`` (none: skipped). A dislike's aggregates: five statements whose
        own cost is mostly getting to the cursor."""
        dialect = conn.dialect
        dbapi_conn = conn.connection.dbapi_connection
        cursor = dbapi_conn.cursor()
        sql = ""
        try:
            try:
                for statement, keys, rows in runs:
                    if not rows:
                        continue
                    sql, bind, _ = statement._compiled_for(dialect, keys)
                    if len(rows) == 1:
                        cursor.execute(sql, bind.row(rows[0]))
                    else:
                        cursor.executemany(sql, bind.tuples(rows))
            except dialect.loaded_dbapi.Error as exc:
                _raise_driver_error(conn, dbapi_conn, cursor, sql, exc)
        finally:
            _close_quietly(cursor)

    def _compiled_for(self, dialect, keys: tuple) -> tuple:
        last = self._last
        if last[0] is dialect:
            per_dialect = last[1]
        else:
            per_dialect = self._compiled.get(dialect)
            if per_dialect is None:
                per_dialect = self._compiled[dialect] = {}
            self._last = (dialect, per_dialect)
        found = per_dialect.get(keys)
        if found is None:
            found = per_dialect[keys] = _binder(self.statement, dialect, keys)
        return found

    def _run(self, conn: Connection, params):
        many = isinstance(params, (list, tuple, _Rows))
        if many and len(params) == 1 and not isinstance(params, _Rows):
            # One row: a plain execute (psycopg runs executemany as a pipeline, a round trip more).
            params, many = params[0], False
        keys = params.keys if isinstance(params, _Rows) else tuple(params[0] if many else params)
        sql, bind, converters = self._compiled_for(conn.dialect, keys)
        if isinstance(params, _Rows):
            values = bind.tuples(params.rows)  # several: ``execute_rows`` runs one row alone
        else:
            values = bind.many(params) if many else bind(params)
        return self._execute(conn, sql, values, many), converters

    @staticmethod
    def _execute(conn: Connection, sql: str, values, many: bool):
        dialect = conn.dialect
        dbapi_conn = conn.connection.dbapi_connection
        cursor = dbapi_conn.cursor()
        try:
            if many:
                cursor.executemany(sql, values)
            else:
                cursor.execute(sql, values)
        except dialect.loaded_dbapi.Error as exc:
            try:
                _raise_driver_error(conn, dbapi_conn, cursor, sql, exc)
            finally:
                _close_quietly(cursor)
        return cursor


def _close_quietly(cursor) -> None:
    # After a lost connection was invalidated its cursors may refuse even to close: the error
    # being raised is the one to see.
    try:
        cursor.close()
    except Exception:
        pass


def _raise_driver_error(conn: Connection, dbapi_conn, cursor, sql: str, exc: Exception) -> None:
    """Raise a driver's error as SQLAlchemy's execution would: a lost connection is not put
    back in the pool, and the values stay out of messages and logs (``hide_parameters``)."""
    dialect = conn.dialect
    gone = dialect.is_disconnect(exc, dbapi_conn, cursor)
    if gone:
        conn.invalidate(exc)
    raise DBAPIError.instance(
        sql,
        None,
        exc,
        dialect.loaded_dbapi.Error,
        hide_parameters=True,
        connection_invalidated=gone,
        dialect=dialect,
    ) from exc


def _binder(statement: Executable, dialect, keys: tuple):
    """Compile ``statement`` for parameter sets with ``keys``: return its SQL, a binder and the
    (still empty) list of result converters.

    The binder does what ``construct_params`` and the type processors do at execution, with
    every decision (which value feeds which placeholder, which processor) taken here, once.
    """
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    if compiled.insert_prefetch or compiled.update_prefetch:
        # Python-side column defaults are applied by SQLAlchemy's execution context.
        raise ValueError(f"a Prepared statement must be given every defaulted column: {compiled}")
    if compiled.escaped_bind_names or "__[POSTCOMPILE" in compiled.string:
        raise ValueError(f"a Prepared statement cannot have escaped or expanding parameters: {compiled}")
    if compiled.positional:
        names = list(compiled.positiontup)
        binds = [compiled.binds[name] for name in names]
    else:
        names, binds = list(compiled.bind_names.values()), list(compiled.bind_names)
    slots = []  # (key in the parameters or None, fixed value, processor)
    for name, param in zip(names, binds, strict=True):
        impl = param.type.dialect_impl(dialect)
        processor = impl.bind_processor(dialect)
        key = param.key if param.key in keys else name if name in keys else None
        if key is not None:
            if processor is not None and isinstance(param.type, (Date, DateTime)):
                processor = _memoised(dialect.name, repr(impl), _quicker(impl, processor))
            slots.append((key, None, processor))
            continue
        if param.required or param.callable:
            raise ValueError(f"a Prepared statement needs a value for {param.key!r}: {compiled}")
        slots.append((None, param.value if processor is None else processor(param.value), None))

    def bind(params: Mapping):
        values = [
            fixed if key is None else params[key] if processor is None else processor(params[key])
            for key, fixed, processor in slots
        ]
        return tuple(values) if compiled.positional else dict(zip(names, values))

    fixed_slots = any(key is None for key, _, _ in slots)
    # Each placeholder's position in a row given in ``keys`` order, and its processor.
    columns_in = [(keys.index(key), processor) for key, _, processor in slots] if not fixed_slots else []

    def bind_many(rows: Sequence[Mapping]) -> list:
        # Many rows (an import, an aggregate upsert): one itemgetter per row, then by column.
        if fixed_slots:
            return [bind(p) for p in rows]
        getter = operator.itemgetter(*keys)
        return bind_tuples([(getter(p),) for p in rows] if len(keys) == 1 else [getter(p) for p in rows])

    # Rows whose values are already in placeholder order need only the columns whose type
    # converts the value processed (a date, a time, a JSON list): most of a row is as given.
    in_order = compiled.positional and [i for i, _ in columns_in] == list(range(len(keys)))
    to_process = [(i, processor) for i, processor in columns_in if processor is not None]

    def bind_tuples(rows: Sequence[tuple]):
        if fixed_slots:
            return [bind(dict(zip(keys, row))) for row in rows]
        if len(rows) < 8 and in_order and all(len(row) == len(keys) for row in rows):
            # A few rows (a dislike's): row by row, touching only the converted columns.
            return [bind_row(row) for row in rows]
        if len(rows) < 8:
            # A few rows (a dislike's aggregates): row by row costs less than transposing.
            bound = [
                tuple([row[i] if processor is None else processor(row[i]) for i, processor in columns_in])
                for row in rows
            ]
        else:
            # Rows already in ``keys`` order: work column by column (the loops run in C), each
            # column reordered to its placeholder and processed where its type needs it.
            columns = list(zip(*rows))
            bound = list(
                zip(
                    *[
                        columns[i] if processor is None else list(map(processor, columns[i]))
                        for i, processor in columns_in
                    ]
                )
            )
        return bound if compiled.positional else [dict(zip(names, values)) for values in bound]

    def bind_row(row: tuple):
        # One row (a live dislike's): as given, but for the converted columns.
        if in_order and len(row) == len(keys):
            if not to_process:
                return row
            values = list(row)
            for i, processor in to_process:
                values[i] = processor(values[i])
            return tuple(values)
        return bind_tuples([row])[0]

    bind.many = bind_many
    bind.tuples = bind_tuples
    bind.row = bind_row
    return compiled.string, bind, []  # the result converters, filled by the first row


def _quicker(impl, processor):
    """SQLite's DATETIME text written by ``datetime.isoformat`` (in C) when the type keeps its
    default format: the same text as its own processor, at half the cost. Anything else (a
    date, a custom format) goes to the type's processor."""
    default = getattr(sqlite_types.DATETIME, "_storage_format", None)
    if not (
        isinstance(impl, sqlite_types.DATETIME)
        and default
        and getattr(impl, "_storage_format", None) == default
    ):
        return processor

    def datetime_text(value):
        if type(value) is datetime:
            if value.tzinfo is not None:
                value = value.replace(tzinfo=None)  # as the type does: the clock time as given
            return value.isoformat(" ", "microseconds")
        return processor(value)

    return datetime_text


def _memoised(dialect_name: str, type_repr: str, processor):
    """Format each distinct date or time once: they repeat, across the rows of a batch and
    across the statements of one transaction (a dislike's time goes into seven of them).
    Shared by every statement whose type prints the same (same type, same arguments), since
    such types convert alike; the first processor seen does the work for all of them."""
    key = (dialect_name, type_repr)
    with _memo_lock:
        shared = _memos.get(key)
        if shared is None:
            shared = _memos[key] = functools.lru_cache(maxsize=4096, typed=True)(processor)
    return shared


_memos: dict[tuple[str, str], object] = {}
_memo_lock = threading.Lock()


class _Rows:
    """Rows given as tuples in the order of ``keys`` (see ``Prepared.execute_rows``)."""

    __slots__ = ("keys", "rows")

    def __init__(self, keys: tuple[str, ...], rows: Sequence[tuple]) -> None:
        self.keys, self.rows = tuple(keys), rows

    def __len__(self) -> int:
        return len(self.rows)


def _translate(exc: DBAPIError, missing_schema: bool = True) -> Exception:
    """Turn "the database is unreachable" into DatabaseUnavailableError and, with
    ``missing_schema``, a missing table of the feedback schema into SchemaMissingError; keep
    the rest."""
    if missing_schema:
        missing = _missing_schema(exc)
        if missing is not None:
            return missing
    refused = _refusal(exc)
    if refused is not None:
        return DatabaseRefusedError(
            f"the database refuses the connection: {refused}; correct the database URL (FEEDBACK_DB_URL)"
        )
    if exc.connection_invalidated:
        return DatabaseUnavailableError(
            "the database is unavailable (the connection was lost); retry shortly"
        )
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate in _UNAVAILABLE_SQLSTATES:
        return DatabaseUnavailableError("the database is unavailable; retry shortly")
    message = str(exc.orig).lower() if exc.orig is not None else ""
    if any(
        hint in message
        for hint in (
            "connection refused",
            "could not connect",
            "server closed",
            "unable to open",
            "failed to resolve host",
            "could not translate host name",
            "name or service not known",
            "timeout expired",
            "not currently accepting connections",  # closed for maintenance (ALLOW_CONNECTIONS false)
            "the database system is",  # starting up, shutting down, in recovery mode
            "too many clients",
        )
    ):
        return DatabaseUnavailableError("the database is unavailable; retry shortly")
    return exc


# PostgreSQL's reasons for refusing a connection that retrying will not change.
_REFUSALS = re.compile(
    r'FATAL:\s+(password authentication failed for user "[^"]*"'
    r'|(?:role|database) "[^"]*" does not exist'
    r"|no pg_hba\.conf entry[^\n]*"
    r'|permission denied for database "?[^"\s]*"?)'
)


def _refusal(exc: DBAPIError) -> str | None:
    """The reason, in the driver's words, when the database refuses this system for good (no
    such database or role, a wrong password, a file that is not a database); else None."""
    driver_error = exc.orig
    if getattr(driver_error, "sqlite_errorname", None) == "SQLITE_NOTADB":
        return "the file is not an SQLite database"
    found = _REFUSALS.search(str(driver_error)) if driver_error is not None else None
    return " ".join(found.group(1).split()) if found else None


# The drivers' words for a table that does not exist (SQLite may name it ``main.movies``,
# PostgreSQL ``public.movies``).
_NO_SUCH_TABLE = {
    "sqlite": re.compile(r"no such table: (?:\w+\.)?(\w+)"),
    "postgresql": re.compile(r'relation "(?:\w+\.)?(\w+)" does not exist'),
}


def _missing_schema(exc: DBAPIError) -> SchemaMissingError | None:
    """Say how to create the schema when ``exc`` is about a table of the feedback schema that
    does not exist. Any other missing object (a column, a table the schema does not have) is
    left alone: that is a bug in the SQL, and its traceback is what finds it."""
    driver_error = exc.orig
    if getattr(driver_error, "sqlstate", None) == "42P01":  # undefined_table
        pattern = _NO_SUCH_TABLE["postgresql"]
    elif getattr(driver_error, "sqlite_errorname", None) == "SQLITE_ERROR":
        pattern = _NO_SUCH_TABLE["sqlite"]
    else:
        return None
    found = pattern.search(str(driver_error))
    if found is None:
        return None
    from feedback_core.schema import metadata

    table = found.group(1)
    if table not in metadata.tables:
        return None
    return SchemaMissingError(
        f"the database has no feedback schema yet (no table {table}): run feedback-core init, or call "
        "init_feedback_tables() on the FeedbackSystem (either also upgrades an older schema); if "
        "`feedback-core info` shows the latest schema revision, the table was removed: restore the "
        "database from a backup"
    )


_migrate_lock = threading.Lock()


def _alembic_config(connection: Connection):
    from alembic.config import Config

    config = Config()
    location = resources.files("feedback_core") / "migrations"
    config.set_main_option("script_location", str(location))
    config.attributes["connection"] = connection
    return config


def upgrade_database(engine: Engine) -> str:
    """Bring the database to the latest schema (harmless to repeat); return the revision.

    Raises:
        ConfigError: the database is at a revision this code does not know (a newer one).
        DatabaseUnavailableError: the database cannot be reached.
    """
    migrate(engine, "head")
    return current_revision(engine) or ""


def newer_schema_problem(revision: str | None) -> str | None:
    """Say so when ``revision`` is unknown to this code (a newer release wrote it); else None."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    if revision is None:
        return None
    try:
        ScriptDirectory.from_config(_alembic_config(None)).get_revision(revision)
    except CommandError:
        return (
            f"the database's schema {revision} is unknown to this feedback-core ({head_revision()}): "
            "upgrade feedback-core if a newer release wrote it; if another application's migrations did, "
            "give feedback-core a database of its own"
        )
    return None


def migrate(engine: Engine, revision: str, downgrade: bool = False) -> None:
    """Upgrade (or downgrade) the schema to ``revision`` in one write transaction.

    On SQLite the migrations run with foreign keys off, as SQLite's procedure for rebuilding
    a table requires (dropping the old copy would otherwise delete its rows' references); a
    migration that rebuilds a table checks the references it could break before it ends.
    """
    from alembic.util import CommandError

    try:
        _migrate(engine, revision, downgrade)
    except (OperationalError, DBAPIError) as exc:
        # A table missing in the middle of a migration is the migration's problem: "run
        # feedback-core init" would send whoever runs it round in a circle.
        _raise_translated(exc, missing_schema=False)
    except CommandError:
        # Alembic cannot step from a revision it does not know: say which, and what to do.
        problem = newer_schema_problem(current_revision(engine))
        if problem is None:
            raise
        raise ConfigError(problem) from None


def _migrate(engine: Engine, revision: str, downgrade: bool) -> None:
    from alembic import command

    sqlite = engine.dialect.name == "sqlite"
    with _migrate_lock:
        with engine.connect() as conn:
            # Outside any transaction: the pragma is ignored inside one.
            raw = conn.connection.dbapi_connection if sqlite else None
            if raw is not None:
                raw.execute("PRAGMA foreign_keys=OFF")
            try:
                with _begin_write(conn):
                    if not sqlite:
                        # Two processes migrating at once would race on CREATE TABLE.
                        conn.execute(text("SELECT pg_advisory_xact_lock(7216354)"))
                    if not downgrade:
                        _refuse_foreign_tables(conn)
                    (command.downgrade if downgrade else command.upgrade)(_alembic_config(conn), revision)
                _wrote(conn)
            finally:
                if raw is not None and not conn.invalidated:
                    raw.execute("PRAGMA foreign_keys=ON")


# Tables only this system makes, together (the specification's own system had some of them).
_OWN_TABLES = frozenset({"negative_examples", "retrain_jobs", "model_versions", "daily_dislikes"})


def _refuse_foreign_tables(conn: Connection) -> None:
    """Raise ConfigError when a database without this system's schema already has tables of
    its names (another application's ``movies``, say): creating the schema there would fail
    half-way, and writing into them would mix two applications' data."""
    from feedback_core.schema import metadata

    found = inspect(conn)
    # Names as the database compares them (SQLite ignores case), tables and views alike.
    present = {name.casefold(): name for name in [*found.get_table_names(), *found.get_view_names()]}
    revision = None
    if "alembic_version" in present:
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        if revision is None or newer_schema_problem(revision) is None:
            return  # this system's schema (or its empty beginning)
        if _OWN_TABLES <= present.keys():
            return  # this system's schema at a revision a newer release wrote: migrate says so
    taken = sorted(present[name] for name in present.keys() & {t.casefold() for t in metadata.tables})
    if taken:
        whose = f" and an Alembic revision of its own ({revision})" if revision is not None else ""
        raise ConfigError(
            f"this database already has tables named {', '.join(taken)}{whose}, which feedback-core did "
            "not create (another application's?): give feedback-core a database of its own "
            "(FEEDBACK_DB_URL=sqlite:///PATH/feedback.db, or another PostgreSQL database or schema); "
            "nothing was changed"
        )


def current_revision(engine: Engine) -> str | None:
    """Return the schema revision the database is at, or None for an empty database."""
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except (OperationalError, DBAPIError) as exc:
        translated = _translate(exc)
        if translated is exc:
            raise
        raise translated from exc


def head_revision() -> str:
    """Return the newest revision the code knows."""
    from alembic.script import ScriptDirectory

    location = resources.files("feedback_core") / "migrations"
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(location))
    return ScriptDirectory.from_config(config).get_current_head() or ""


class likely(ColumnElement):  # noqa: N801 - named as the SQL function it stands for
    """A condition, which SQLite's planner is told most rows meet (``likely(...)``); the condition
    itself on other databases.

    Without statistics (``ANALYZE`` is never run) SQLite takes an equality on an index's first
    column for a handful of rows. For ``status = 'applied' ORDER BY decided_at DESC LIMIT 200``
    it read every applied adjustment through the (status, created_at) index and sorted them
    (92 ms at 42,000), instead of reading the first 200 of the partial index kept in that order.
    Said to match most rows, the condition no longer makes that index look cheap; a partial
    index whose condition it is still serves it.
    """

    type = Boolean()
    _is_implicitly_boolean = True  # a condition as it stands: never compared with 1
    inherit_cache = True
    _traverse_internals = [("condition", InternalTraversal.dp_clauseelement)]

    def __init__(self, condition: ColumnElement) -> None:
        self.condition = condition


@compiles(likely)
def _likely(element: likely, compiler, **kw) -> str:
    return compiler.process(element.condition, **kw)


@compiles(likely, "sqlite")
def _likely_on_sqlite(element: likely, compiler, **kw) -> str:
    return f"likely({compiler.process(element.condition, **kw)})"
