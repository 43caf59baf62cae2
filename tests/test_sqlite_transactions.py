"""SQLite transactions: writers take the write lock when they begin, readers never block."""

from __future__ import annotations

import fcntl
import gc
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError, InvalidRequestError, OperationalError

from feedback_core import FeedbackSystem, Settings, db
from feedback_core.db import read_connection, write_transaction
from feedback_core.errors import DatabaseUnavailableError


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


# ---------------------------------------------------------------- checkpoints off the write path


def _checkpointer(system):
    return db._CHECKPOINTERS[system.engine]


def _write_blobs(system, count: int, size: int = 12_000) -> None:
    with write_transaction(system.engine) as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS scratch (blob BLOB)")
    for _ in range(count):
        with write_transaction(system.engine) as conn:
            conn.exec_driver_sql("INSERT INTO scratch VALUES (randomblob(?))", (size,))


def _wait_for(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_commits_leave_checkpointing_to_a_background_thread(sqlite_system, monkeypatch):
    system, path = sqlite_system
    assert db.usual_autocheckpoint(system.engine) == 0
    with read_connection(system.engine) as conn:
        # No COMMIT of these connections runs SQLite's automatic checkpoint.
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    checkpointer = _checkpointer(system)
    monkeypatch.setattr(checkpointer, "RESTART_FRAMES", 300)
    monkeypatch.setattr(checkpointer, "REST_FRAMES", 50)
    before = checkpointer.completed
    _write_blobs(system, 800)  # a steady stream: each commit adds 4 pages to the log
    assert _wait_for(lambda: checkpointer.completed >= before + 5)
    # Past RESTART_FRAMES the thread caught up and a writer copied the rest, so that the
    # writer after it could start the log afresh.
    assert checkpointer.finished_by_writer >= 1
    # Without checkpoints, or with checkpoints that never let a writer restart the log, it
    # would hold every page written (800 x 4 x 4 KiB, ~13 MB).
    unchecked = 800 * 4 * 4096
    assert Path(f"{path}-wal").stat().st_size < unchecked * 0.6
    with read_connection(system.engine) as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM scratch").scalar() == 800


def _write_blobs_in_child(url: str, count: int, go) -> None:
    system = FeedbackSystem.from_settings(Settings(database_url=url))
    go.wait(30)
    _write_blobs(system, count)
    system.close()


def test_the_log_stays_bounded_under_writes_from_several_processes(sqlite_system, monkeypatch):
    system, path = sqlite_system
    monkeypatch.setattr(db._Checkpointer, "RESTART_FRAMES", 300)
    monkeypatch.setattr(db._Checkpointer, "REST_FRAMES", 50)
    _write_blobs(system, 1)
    context = multiprocessing.get_context("fork")
    go = context.Event()
    children = [
        context.Process(target=_write_blobs_in_child, args=(f"sqlite:///{path}", 1500, go)) for _ in range(2)
    ]
    for child in children:
        child.start()
    go.set()
    for child in children:
        child.join(timeout=120)
        assert child.exitcode == 0
    # Each process's COMMITs can land between the other's checkpoint and the next BEGIN: the
    # last step holds writers back so that the log is started afresh all the same. Without
    # it the log keeps every page (3,000 x 4 x 4 KiB, ~49 MB; measured 1.27 x that).
    unchecked = 3000 * 4 * 4096
    assert Path(f"{path}-wal").stat().st_size < unchecked * 0.5
    with read_connection(system.engine) as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM scratch").scalar() == 3001


def test_the_checkpoint_thread_ends_when_idle_and_returns_with_the_next_write(sqlite_system, monkeypatch):
    system, _ = sqlite_system
    checkpointer = _checkpointer(system)
    monkeypatch.setattr(checkpointer, "INTERVAL_S", 0.05)
    monkeypatch.setattr(checkpointer, "IDLE_EXIT_S", 0.2)
    _write_blobs(system, 1)
    assert _wait_for(lambda: checkpointer._thread is None)
    done = checkpointer.completed
    assert done >= 1  # the idle interval checkpointed the last writes before ending
    _write_blobs(system, 2)
    assert checkpointer._thread is not None
    assert _wait_for(lambda: checkpointer.completed > done)
    assert _wait_for(lambda: checkpointer._thread is None)


def _write_in_forked_child(system, queue) -> None:
    # The parent's engine and checkpointer, inherited: its pooled connections are the parent's
    # to close, and its thread did not survive the fork.
    system.engine.dispose(close=False)
    checkpointer = _checkpointer(system)
    checkpointer.INTERVAL_S = 0.05
    done = checkpointer.completed
    _write_blobs(system, 5)
    queue.put(_wait_for(lambda: checkpointer.completed > done, seconds=10))


def test_a_forked_process_checkpoints_its_own_writes(sqlite_system):
    system, _ = sqlite_system
    _write_blobs(system, 3)  # the parent's thread runs while the child is forked
    assert _checkpointer(system)._thread is not None
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_write_in_forked_child, args=(system, queue))
    child.start()
    assert queue.get(timeout=30) is True
    child.join(timeout=30)
    assert child.exitcode == 0


def test_memory_databases_keep_sqlites_own_checkpoints():
    system = FeedbackSystem.from_settings(Settings(database_url="sqlite://"))
    try:
        assert db.usual_autocheckpoint(system.engine) == 1000
        with read_connection(system.engine) as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    finally:
        system.close()


def test_an_import_checkpoints_itself_and_leaves_connections_as_usual(sqlite_system, monkeypatch):
    system, path = sqlite_system
    movies_csv = path.parent / "movies.csv"
    movies_csv.write_text(
        "movie_id,title,genres,cast,franchise,year\n"
        + "".join(f"{i},Film {i},Drama|Comedy,Someone,,2001\n" for i in range(1, 3001))
    )
    checkpointer = _checkpointer(system)
    monkeypatch.setattr(checkpointer, "INTERVAL_S", 0.05)
    monkeypatch.setattr(checkpointer, "IDLE_EXIT_S", 0.2)
    _write_blobs(system, 1)
    assert _wait_for(lambda: checkpointer._thread is None)  # its round done, then idle
    before = checkpointer.completed
    pooled = [system.engine.connect() for _ in range(3)]  # the pool holds several connections
    for conn in pooled:
        conn.close()
    summary = system.import_file(movies_csv, kind="movies", batch_size=500)
    assert summary.imported == 3000 and summary.batches == 6
    # Bulk batches are not the background thread's work (its rounds are made for small writes).
    assert checkpointer._pending == 0 and checkpointer.completed == before
    # The import's settings stayed on its own connection, which got the usual ones back: no
    # pooled connection keeps a 128 MiB cache or an inline checkpoint threshold.
    connections = [system.engine.connect() for _ in range(4)]
    try:
        for conn in connections:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
            assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -2000
    finally:
        for conn in connections:
            conn.close()
    # The import's last step copied its log into the database file.
    probe = sqlite3.connect(path, isolation_level=None)
    try:
        _busy, frames, copied = probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    finally:
        probe.close()
    assert frames == copied


def test_closing_the_system_ends_the_thread_and_removes_the_log(tmp_path):
    path = tmp_path / "closing.db"
    system = FeedbackSystem.from_settings(Settings(database_url=f"sqlite:///{path}"))
    system.init_feedback_tables()
    checkpointer = _checkpointer(system)
    _write_blobs(system, 20)
    thread = checkpointer._thread
    assert thread is not None and Path(f"{path}-wal").exists()
    system.close()
    assert not thread.is_alive() and checkpointer._thread is None
    # No connection is left open: the last one to close copied the log and removed it.
    assert not Path(f"{path}-wal").exists()
    reopened = FeedbackSystem.from_settings(Settings(database_url=f"sqlite:///{path}"))
    try:
        with read_connection(reopened.engine) as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM scratch").scalar() == 20
    finally:
        reopened.close()


def test_a_database_removed_under_the_thread_is_not_created_again(tmp_path, monkeypatch, caplog):
    path = tmp_path / "removed.db"
    system = FeedbackSystem.from_settings(Settings(database_url=f"sqlite:///{path}"))
    system.init_feedback_tables()
    checkpointer = _checkpointer(system)
    monkeypatch.setattr(checkpointer, "INTERVAL_S", 0.05)
    monkeypatch.setattr(checkpointer, "IDLE_EXIT_S", 0.3)
    # A checkpoint round is due, and its connection does not exist yet when the file goes.
    with checkpointer._lock:
        checkpointer._pending += 1
        checkpointer._thread = threading.Thread(target=checkpointer._run, daemon=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        checkpointer._thread.start()
    assert _wait_for(lambda: checkpointer._thread is None)
    assert not path.exists()
    assert "checkpointing" in caplog.text  # reported, then the thread ended as when idle
    system.engine.dispose()


def test_a_failing_final_step_does_not_fail_the_committed_write(sqlite_system, monkeypatch, caplog):
    system, _ = sqlite_system
    checkpointer = _checkpointer(system)
    _write_blobs(system, 1)

    def broken(_dbapi_conn):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(checkpointer, "_finish", broken)
    checkpointer._writer_finishes = True
    with write_transaction(system.engine) as conn:
        conn.exec_driver_sql("INSERT INTO scratch VALUES (x'00')")
    assert "after a write failed" in caplog.text
    with read_connection(system.engine) as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM scratch").scalar() == 2


def _in_another_process(path, sql: str):
    """Open the database in a fresh process, run ``sql``, commit, close: return the first value."""
    code = (
        "import sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1], timeout=30)\n"
        "row = c.execute(sys.argv[2]).fetchone()\n"
        "c.commit()\n"
        "c.close()\n"
        "print(row[0] if row else '')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path), sql], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_checkpointing_keeps_the_locks_that_protect_the_log_from_other_processes(sqlite_system, monkeypatch):
    # Closing any descriptor of the database file drops all of this process's POSIX locks on
    # it; another process closing its last connection would then take the file for unused and
    # delete the log under this process's feet, and two histories would part.
    system, path = sqlite_system
    checkpointer = _checkpointer(system)
    monkeypatch.setattr(checkpointer, "RESTART_FRAMES", 200)
    monkeypatch.setattr(checkpointer, "REST_FRAMES", 50)
    _write_blobs(system, 400, size=6_000)
    assert _wait_for(lambda: checkpointer.completed >= 3)
    _write_blobs(system, 30, size=6_000)  # past the catch-up rounds, a writer's final step
    assert checkpointer.finished_by_writer >= 1
    assert _in_another_process(path, "SELECT count(*) FROM scratch") == "430"
    assert Path(f"{path}-wal").exists()  # the other process knew it was not the last user
    _write_blobs(system, 3, size=10)
    _in_another_process(path, "INSERT INTO scratch VALUES (x'01')")
    with read_connection(system.engine) as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM scratch").scalar() == 434
    system.close()
    assert _in_another_process(path, "SELECT count(*) FROM scratch") == "434"


def test_a_reader_on_the_old_log_makes_the_final_step_back_off(sqlite_system):
    system, path = sqlite_system
    checkpointer = _checkpointer(system)
    _write_blobs(system, 5)
    reader = sqlite3.connect(path, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM scratch").fetchone()  # a snapshot that uses the log
        finished = checkpointer.finished_by_writer
        with checkpointer._lock:
            checkpointer._writer_finishes = True
        began = time.monotonic()
        _write_blobs(system, 1)
        waited = time.monotonic() - began
        # It waited its short while for the reader, gave up, and holds off the next attempt.
        assert checkpointer.FINISH_WAIT_MS / 1000 * 0.5 <= waited < 2.0
        assert checkpointer.finished_by_writer == finished
        assert checkpointer._arm_after > time.monotonic() - 0.01
        assert not checkpointer._writer_finishes
        began = time.monotonic()
        _write_blobs(system, 1)
        assert time.monotonic() - began < checkpointer.FINISH_WAIT_MS / 1000 * 0.5
    finally:
        reader.close()
    with read_connection(system.engine) as conn:
        # The step's own short wait is undone: the connection waits as configured again.
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == system.settings.sqlite_busy_timeout_ms


# ---------------------------------------------------------------- writers take turns


def _writers(system) -> db._Writers:
    return db._writers(system.engine)


def _turn_is_free(path) -> bool:
    """Whether a writer could take its turn now (the file lock, from a descriptor of our own)."""
    fd = os.open(f"{path}-writer", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


def _hold_a_write_in_another_process(url: str, seconds: float) -> subprocess.Popen:
    """Start a process that holds a write transaction of the library for ``seconds``; return
    once it holds it."""
    code = (
        "import sys, time\n"
        "from feedback_core import FeedbackSystem, Settings\n"
        "from feedback_core.db import write_transaction\n"
        "system = FeedbackSystem.from_settings(Settings(database_url=sys.argv[1]))\n"
        "with write_transaction(system.engine) as conn:\n"
        "    conn.exec_driver_sql('INSERT INTO scratch VALUES (x\\'02\\')')\n"
        "    print('holding', flush=True)\n"
        "    time.sleep(float(sys.argv[2]))\n"
        "system.close()\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, url, str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "holding"
    return holder


def test_a_write_transaction_holds_the_turn_every_process_shares(sqlite_system):
    system, path = sqlite_system
    with write_transaction(system.engine):
        assert not _turn_is_free(path)
    assert _turn_is_free(path)
    # A failed transaction gives its turn back too.
    with pytest.raises(RuntimeError):
        with write_transaction(system.engine):
            raise RuntimeError("boom")
    assert _turn_is_free(path)


def test_a_writer_of_another_process_waits_for_its_turn_and_goes_on(sqlite_system):
    system, path = sqlite_system
    _write_blobs(system, 1)
    holder = _hold_a_write_in_another_process(f"sqlite:///{path}", 0.6)
    try:
        assert not _turn_is_free(path)
        began = time.monotonic()
        _write_blobs(system, 1)  # waits for the holder's turn to end, then writes
        waited = time.monotonic() - began
    finally:
        holder.wait(timeout=30)
    assert holder.returncode == 0
    assert 0.3 < waited < 5
    with read_connection(system.engine) as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM scratch").scalar() == 3


def test_a_writer_whose_turn_does_not_come_reports_the_database_busy_after_the_timeout(tmp_path):
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    system = FeedbackSystem.from_settings(Settings(database_url=url, sqlite_busy_timeout_ms=500))
    system.init_feedback_tables()
    _write_blobs(system, 1)
    holder = _hold_a_write_in_another_process(url, 2)
    try:
        began = time.monotonic()
        with pytest.raises(OperationalError, match="locked"):
            _write_blobs(system, 1)
        waited = time.monotonic() - began
    finally:
        holder.wait(timeout=30)
    # The busy timeout once: waiting for the turn used it up, then SQLite's lock answered at
    # once (it would have waited the timeout a second time).
    assert 0.45 <= waited < 0.9
    # Every connection still has its usual timeout, the one that failed among them.
    connections = [system.engine.connect() for _ in range(3)]
    try:
        assert [c.exec_driver_sql("PRAGMA busy_timeout").scalar() for c in connections] == [500] * 3
    finally:
        for c in connections:
            c.close()
    _write_blobs(system, 1)
    system.close()


def _try_the_parents_turn(system, queue) -> None:
    system.engine.dispose(close=False)  # the parent's connections are the parent's
    writers = _writers(system)
    queue.put(writers._lock(time.monotonic()))  # no waiting: is the turn free for this process?


def test_a_forked_process_takes_turns_with_its_parent(sqlite_system):
    system, _ = sqlite_system
    _write_blobs(system, 1)  # the parent has its descriptor of the turn's file open
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    with write_transaction(system.engine):
        child = context.Process(target=_try_the_parents_turn, args=(system, queue))
        child.start()
        # A copy of the parent's descriptor would share its lock and find the turn free.
        assert queue.get(timeout=30) is False
        child.join(timeout=30)
    assert child.exitcode == 0


def test_write_transactions_reuse_one_connection_but_not_a_failed_ones(sqlite_system):
    system, _ = sqlite_system
    with write_transaction(system.engine) as conn:
        first = conn.connection.dbapi_connection
    with write_transaction(system.engine) as conn:
        assert conn.connection.dbapi_connection is first
    assert len(_writers(system)._kept) == 1
    with pytest.raises(RuntimeError):
        with write_transaction(system.engine) as conn:
            raise RuntimeError("boom")
    assert _writers(system)._kept == []  # back to the pool instead
    with write_transaction(system.engine):
        assert _writers(system)._kept == []  # in use
    assert len(_writers(system)._kept) == 1


def test_writes_go_on_when_the_turns_file_cannot_be_made(sqlite_system, caplog):
    system, path = sqlite_system
    system.close()
    Path(f"{path}-writer").unlink(missing_ok=True)
    Path(f"{path}-writer").symlink_to(path.parent / "no-such-folder" / "x")  # cannot be opened
    system = FeedbackSystem.from_settings(Settings(database_url=f"sqlite:///{path}"))
    _write_blobs(system, 2)
    _write_blobs(system, 1)
    assert caplog.text.count("writers wait on SQLite's lock alone") == 1
    with read_connection(system.engine) as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM scratch").scalar() == 3
    system.close()


def test_a_forked_child_does_not_hold_the_turn_of_a_parent_that_died(tmp_path):
    # The lock belongs to the open file, which a fork shares: were the child's copy left open,
    # a parent killed during its turn would leave every other writer waiting the busy timeout.
    url = f"sqlite:///{tmp_path / 'orphan.db'}"
    system = FeedbackSystem.from_settings(Settings(database_url=url, sqlite_busy_timeout_ms=3000))
    system.init_feedback_tables()
    _write_blobs(system, 1)
    code = (
        "import os, sys, time\n"
        "from feedback_core import FeedbackSystem, Settings\n"
        "from feedback_core.db import write_transaction\n"
        "system = FeedbackSystem.from_settings(Settings(database_url=sys.argv[1]))\n"
        "with write_transaction(system.engine) as conn:\n"
        "    conn.exec_driver_sql('INSERT INTO scratch VALUES (x\\'03\\')')\n"
        "child = os.fork()\n"
        "if child == 0:\n"
        "    time.sleep(30)\n"
        "    os._exit(0)\n"
        "with write_transaction(system.engine):\n"
        "    print(child, flush=True)\n"
        "    time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code, url], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    try:
        parent.kill()  # in the middle of its turn
        parent.wait(timeout=30)
        began = time.monotonic()
        _write_blobs(system, 1)
        assert time.monotonic() - began < 1.5  # not the 3 s busy timeout
    finally:
        os.kill(child, 9)
    system.close()


def test_closed_systems_leave_no_lock_file_open_and_disposed_engines_go(tmp_path):
    def open_files() -> int:
        return len(os.listdir("/proc/self/fd"))

    def one(name: str) -> FeedbackSystem:
        system = FeedbackSystem.from_settings(Settings(database_url=f"sqlite:///{tmp_path / name}"))
        _write_blobs(system, 2)
        return system

    one("warm.db").close()
    before = open_files()
    for i in range(10):
        one(f"s{i}.db").close()
    assert open_files() <= before + 1
    # An engine disposed of without close_engine (as some tools do) is not kept alive by the
    # connection its writers kept.
    system = one("disposed.db")
    engine = weakref.ref(system.engine)
    system.engine.dispose()
    del system
    gc.collect()
    assert engine() is None


def test_a_connection_closed_by_its_transaction_is_not_kept(sqlite_system):
    system, _ = sqlite_system
    # Closing rolled the block back: reported, not taken for a commit.
    with pytest.raises(InvalidRequestError, match="closed inside"):
        with write_transaction(system.engine) as conn:
            conn.close()
    assert _writers(system)._kept == []
    _write_blobs(system, 1)  # the next write has a working connection
    with write_transaction(system.engine):
        pass  # ...and a disposed engine's kept connection is not reused
    system.engine.dispose()
    with write_transaction(system.engine) as conn:
        assert conn.engine.pool is system.engine.pool
        assert conn.exec_driver_sql("SELECT count(*) FROM scratch").scalar() == 1


def test_disposing_of_the_engine_inside_a_write_does_not_wait_for_itself(sqlite_system):
    system, _ = sqlite_system

    def write_then_dispose() -> None:
        with write_transaction(system.engine) as conn:
            conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS scratch (blob BLOB)")
            system.engine.dispose()

    writer = threading.Thread(target=write_then_dispose, daemon=True)  # a hang fails, not blocks
    writer.start()
    writer.join(timeout=10)
    assert not writer.is_alive()
    _write_blobs(system, 1)  # and writes go on


# ---------------------------------------------------------------- begun on the driver's connection


def _scratch(system) -> list[int]:
    with read_connection(system.engine) as conn:
        return [row[0] for row in conn.exec_driver_sql("SELECT n FROM numbers ORDER BY n")]


@pytest.fixture
def numbers(sqlite_system):
    system, path = sqlite_system
    with write_transaction(system.engine) as conn:
        conn.exec_driver_sql("CREATE TABLE numbers (n INTEGER PRIMARY KEY)")
    return system, path


def _insert_on_driver(conn, n: int) -> None:
    """A write that SQLAlchemy does not see (as Prepared statements run)."""
    conn.connection.dbapi_connection.execute("INSERT INTO numbers VALUES (?)", (n,))


def test_writes_through_the_driver_and_through_sqlalchemy_share_one_transaction(numbers):
    system, path = numbers
    with write_transaction(system.engine) as conn:
        _insert_on_driver(conn, 1)
        assert not _other_writer_can_begin(path)  # the write lock is held from the start
        conn.exec_driver_sql("INSERT INTO numbers VALUES (2)")  # SQLAlchemy begins nothing new
        with conn.begin_nested():
            conn.exec_driver_sql("INSERT INTO numbers VALUES (3)")
        with pytest.raises(RuntimeError):
            with conn.begin_nested():
                conn.exec_driver_sql("INSERT INTO numbers VALUES (4)")
                raise RuntimeError("undo this savepoint only")
        _insert_on_driver(conn, 5)
    assert _scratch(system) == [1, 2, 3, 5]
    assert _other_writer_can_begin(path)


@pytest.mark.parametrize("through_sqlalchemy", [False, True])
def test_an_error_rolls_back_every_write_of_the_transaction(numbers, through_sqlalchemy):
    system, path = numbers
    with pytest.raises(RuntimeError):
        with write_transaction(system.engine) as conn:
            _insert_on_driver(conn, 1)
            if through_sqlalchemy:
                conn.exec_driver_sql("INSERT INTO numbers VALUES (2)")
            raise RuntimeError("boom")
    assert _scratch(system) == []
    assert _other_writer_can_begin(path)
    with write_transaction(system.engine) as conn:  # the next one starts clean, on a kept connection
        assert not conn.in_transaction() or conn.connection.dbapi_connection.in_transaction
        _insert_on_driver(conn, 7)
    assert _scratch(system) == [7]


@pytest.mark.parametrize("callers_connection", [False, True])
@pytest.mark.parametrize("through_sqlalchemy", [False, True])
def test_a_failing_commit_raises_keeps_nothing_and_gives_the_turn_back(
    numbers, through_sqlalchemy, callers_connection
):
    system, path = numbers
    with write_transaction(system.engine) as conn:
        conn.exec_driver_sql("CREATE TABLE parents (id INTEGER PRIMARY KEY)")
        conn.exec_driver_sql("CREATE TABLE children (parent INTEGER REFERENCES parents (id))")
    own = system.engine.connect() if callers_connection else None
    try:
        with pytest.raises(IntegrityError, match="FOREIGN KEY"):
            with write_transaction(system.engine, connection=own) as conn:
                if through_sqlalchemy:
                    conn.exec_driver_sql("INSERT INTO numbers VALUES (1)")
                else:
                    _insert_on_driver(conn, 1)
                # Checked at COMMIT: the commit itself fails.
                conn.connection.dbapi_connection.execute("PRAGMA defer_foreign_keys=ON")
                conn.connection.dbapi_connection.execute("INSERT INTO children VALUES (99)")
        # Rolled back: no lock held, nothing for a later reader of a pooled connection to see.
        assert _turn_is_free(path) and _other_writer_can_begin(path)
        assert _scratch(system) == []
        assert all(not kept.connection.dbapi_connection.in_transaction for kept, _ in _writers(system)._kept)
        if own is not None:
            assert not own.in_transaction() and not own.connection.dbapi_connection.in_transaction
        with write_transaction(system.engine, connection=own) as conn:  # the caller goes on
            _insert_on_driver(conn, 2)
    finally:
        if own is not None:
            own.close()
    assert _scratch(system) == [2]


@pytest.mark.parametrize("through_sqlalchemy", [False, True])
def test_a_transaction_ended_inside_its_block_is_an_error_not_a_silent_commit(numbers, through_sqlalchemy):
    system, _ = numbers
    with pytest.raises(InvalidRequestError, match="already ended"):
        with write_transaction(system.engine) as conn:
            if through_sqlalchemy:
                conn.exec_driver_sql("INSERT INTO numbers VALUES (1)")
            else:
                _insert_on_driver(conn, 1)  # what SQLAlchemy does not see is rolled back too
            conn.rollback()
    assert _scratch(system) == []
    with system.engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")  # a connection in a transaction already
        with pytest.raises(InvalidRequestError, match="no transaction open"):
            with write_transaction(system.engine, connection=conn):
                pass


def test_times_are_written_as_sqlalchemys_sqlite_datetime_writes_them():
    from datetime import UTC, date, datetime, timedelta, timezone

    from sqlalchemy.dialects import sqlite as sqlite_types

    impl = sqlite_types.DATETIME()
    own = impl.bind_processor(sqlite_types.dialect())
    quick = db._quicker(impl, own)
    assert quick is not own  # the default format: the quicker path is taken
    values = [
        datetime(2026, 11, 30, 2, 17, 11, 123456),
        datetime(2026, 11, 30, 2, 17, 11),  # no microseconds: still six digits
        datetime(5, 1, 2, 3, 4, 5, 6),  # a year below 1000: padded to four digits
        datetime(2026, 11, 30, 2, 17, 11, 99, tzinfo=UTC),
        datetime(2026, 11, 30, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
        date(2026, 11, 30),  # a date given for a time: midnight
        None,
    ]
    assert [quick(v) for v in values] == [own(v) for v in values]
    # A custom format keeps the type's own processor.
    truncated = sqlite_types.DATETIME(truncate_microseconds=True)
    processor = truncated.bind_processor(sqlite_types.dialect())
    assert db._quicker(truncated, processor) is processor


def test_a_database_that_cannot_be_opened_is_reported_unavailable(tmp_path):
    folder = tmp_path / "gone"
    system = FeedbackSystem.from_settings(Settings(database_url=f"sqlite:///{folder / 'db.db'}"))
    system.init_feedback_tables()
    system.close()  # no pooled or kept connection left
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    with pytest.raises(DatabaseUnavailableError):
        with write_transaction(system.engine):
            pass


def test_a_callers_connection_lost_inside_the_block_can_be_used_again(numbers):
    system, _ = numbers
    own = system.engine.connect()
    try:
        with pytest.raises(DatabaseUnavailableError):
            with write_transaction(system.engine, connection=own) as conn:
                conn.exec_driver_sql("INSERT INTO numbers VALUES (1)")
                conn.invalidate()
        assert not own.in_transaction()
        with write_transaction(system.engine, connection=own) as conn:
            _insert_on_driver(conn, 2)
    finally:
        own.close()
    assert _scratch(system) == [2]
