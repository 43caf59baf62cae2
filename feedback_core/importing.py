"""Bulk import of movies, ratings, shown lists (impressions) and dislikes from CSV or JSON lines.

A file is read as a stream and written in batches, one transaction each. Every row is
checked with the rules of the live path; a bad row is reported with its line number and,
under ``on_error="abort"`` (the default), stops the import before its batch is written, so
nothing of a failed batch is kept. Re-running a file imports only what is missing: movies
and ratings are upserts, a shown list is known by the id it had in the file
(``recommendation_sets.external_id``) and gets the items it lacks, and a dislike is known by
an idempotency key made from its content or, when it names a list, by the shown item it
dislikes (one dislike an item, as the live path keeps). Imported dislikes get the negative
examples, proposals, exclusions and aggregates a live one gets. On PostgreSQL the batches of
one kind take turns, so two imports of one file at once store it once. Reading the file and
checking its fields is ``import_reader``'s.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, insert, select, text
from sqlalchemy.exc import DBAPIError

from feedback_core import aggregates
from feedback_core.catalog import MovieIn, check_rating, store_ratings, upsert_movies, validate_movie
from feedback_core.db import Prepared, format_ts, usual_autocheckpoint, write_transaction
from feedback_core.errors import ValidationError
from feedback_core.import_reader import (
    KINDS,
    RecordReader,
    _blank,
    _id,
    _int_in,
    _moment,
    _Reject,
    _score,
    _whole,
    check_import_path,
)
from feedback_core.memory import collector_paused
from feedback_core.policy import AUTO_APPROVER, propose_adjustments
from feedback_core.recording import (
    PROPOSAL_KEYS,
    UNSCORED,
    exclusion_insert,
    lock_users,
    proposal_rows,
    queue_retrain_if_due,
    recorded_score,
    write_audit,
)
from feedback_core.schema import (
    feature_adjustments,
    impressions,
    model_versions,
    movies,
    negative_examples,
    recommendation_sets,
    user_dislikes,
)
from feedback_core.settings import REASONS
from feedback_core.validation import (
    MAX_ID,
    DislikeIn,
    validate_dislike,
)

log = logging.getLogger("feedback_core")

ON_ERROR = ("abort", "skip")
DEFAULT_BATCH = 50_000
BULK_CACHE_KIB = 131_072  # SQLite page cache while importing (128 MiB)
BULK_CHECKPOINT_PAGES = 20_000
KEPT_ERRORS = 1_000  # row errors kept in the summary (all are counted)


@dataclass(frozen=True)
class RowError:
    """A rejected row: where it is and what was wrong."""

    line: int
    message: str
    field: str | None = None

    @property
    def text(self) -> str:
        """The message, led by the field unless it already names it."""
        if self.field and not self.message.startswith(self.field):
            return f"{self.field}: {self.message}"
        return self.message

    def __str__(self) -> str:
        return f"line {self.line}: {self.text}"


@dataclass
class ImportSummary:
    """What an import did: rows read, imported, already there, rejected; whether it stopped."""

    kind: str
    path: str
    rows_read: int = 0
    imported: int = 0
    already_present: int = 0
    rejected: int = 0
    batches: int = 0
    seconds: float = 0.0
    aborted: bool = False
    errors: list[RowError] = field(default_factory=list)
    # The file itself cannot be imported (its header row names the wrong columns, say): nothing
    # was read past it, whatever ``on_error`` says.
    file_error: str | None = None
    # Dislikes imported with a predicted_score other than the one their list showed the film
    # with: the list's was recorded (as a live dislike's ``score_note`` says).
    scores_from_lists: int = 0

    def reject(self, error: RowError) -> None:
        self.rejected += 1
        if len(self.errors) < KEPT_ERRORS:
            self.errors.append(error)

    @property
    def rate(self) -> float:
        """Rows read per second."""
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "path": self.path,
            "rows_read": self.rows_read,
            "imported": self.imported,
            "already_present": self.already_present,
            "rejected": self.rejected,
            "batches": self.batches,
            "seconds": round(self.seconds, 3),
            "aborted": self.aborted,
            "file_error": self.file_error,
            "scores_from_lists": self.scores_from_lists,
            "errors": [str(e) for e in self.errors],
        }


# ---------------------------------------------------------------- statements

_NEXT_IDS = {
    # How many new ids a batch needs, taken before it is written (PostgreSQL: from the sequence;
    # SQLite: after the largest, under the write lock BEGIN IMMEDIATE holds).
    ("postgresql", "recommendation_sets"): text(
        "SELECT nextval(pg_get_serial_sequence('recommendation_sets', 'recommendation_set_id')) "
        "FROM generate_series(1, :n)"
    ),
    ("postgresql", "user_dislikes"): text(
        "SELECT nextval(pg_get_serial_sequence('user_dislikes', 'dislike_id')) FROM generate_series(1, :n)"
    ),
    ("sqlite", "recommendation_sets"): select(func.max(recommendation_sets.c.recommendation_set_id)),
    ("sqlite", "user_dislikes"): select(func.max(user_dislikes.c.dislike_id)),
}
_INSERT_SETS = Prepared(insert(recommendation_sets))
_SET_KEYS = ("recommendation_set_id", "user_id", "model_version_id", "source", "created_at", "external_id")
IMPRESSION_KEYS = (
    "recommendation_set_id",
    "user_id",
    "movie_id",
    "rank",
    "predicted_score",
    "score_known",
    "model_version_id",
    "shown_at",
)
_INSERT_IMPRESSIONS = Prepared(insert(impressions))
_INSERT_DISLIKES = Prepared(insert(user_dislikes))
_INSERT_EXAMPLES = Prepared(insert(negative_examples))
_INSERT_PROPOSALS = Prepared(insert(feature_adjustments))
CHUNK = 500  # ids per IN (...) lookup
_TAKE_TURNS = text("SELECT pg_advisory_xact_lock(:k)")
# A lock per kind of import, apart from the other locks of the system (7216354-7216355;
# lock_user's are two-key locks, another key space).
_TURN_KEYS = {"movies": 7216360, "ratings": 7216361, "impressions": 7216362, "dislikes": 7216363}


def _new_ids(conn: Connection, table: str, n: int) -> list[int]:
    if n == 0:
        return []
    stmt = _NEXT_IDS[(conn.dialect.name, table)]
    if conn.dialect.name == "postgresql":
        return list(conn.execute(stmt, {"n": n}).scalars())
    start = (conn.execute(stmt).scalar() or 0) + 1
    return list(range(start, start + n))


def _chunks(values: list, size: int = CHUNK) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _existing_pairs(
    conn: Connection, table: str, first: str, second: str, pairs: list[tuple], also: tuple[str, ...] = ()
) -> set[tuple]:
    """Return which ``(first, second)`` pairs exist in ``table``, each found through its index
    (followed by the row's columns ``also``, when given).

    A join with a list of values: SQLite scans the whole table for ``(a, b) IN (VALUES ...)``.
    """
    extra = "".join(f", t.{column}" for column in also)
    found: set[tuple] = set()
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    for chunk in _chunks(pairs):
        values = ", ".join([f"({mark}, {mark})"] * len(chunk))
        sql = (
            f"WITH wanted(a, b) AS (VALUES {values}) SELECT t.{first}, t.{second}{extra} FROM wanted "
            f"JOIN {table} t ON t.{first} = wanted.a AND t.{second} = wanted.b"
        )
        params = tuple(value for pair in chunk for value in pair)
        found.update(tuple(row) for row in conn.exec_driver_sql(sql, params))
    return found


def _shown_score(score: float | None) -> str:
    return "no predicted_score" if score is None else f"predicted_score {score}"


def _double_clicks(conn: Connection, batch: list, present: set, window: timedelta) -> set[int]:
    """Return the positions in ``batch`` of its dislikes without a list that repeat another of
    the same film by the same person within ``window`` (``record_dislike``'s "repeat"): a
    stored one, retracted or not (a rerun does not bring back a click merged into one since
    undone), or one of the batch, taken in time order as they were made."""
    rows = [
        (d.user_id, d.movie_id, at, i)
        for i, (_, (d, set_ext, at, key)) in enumerate(batch)
        if set_ext is None and (d.user_id, key) not in present
    ]
    if not rows:
        return set()
    times = _listless_times(conn, sorted({(u, m) for u, m, _, _ in rows}))
    repeats = set()
    for user_id, movie_id, at, i in sorted(rows):
        made = times.setdefault((user_id, movie_id), [])
        k = bisect.bisect_left(made, at - window)
        if k < len(made) and made[k] <= at + window:
            repeats.add(i)
        else:
            bisect.insort(made, at)
    return repeats


def _listless_times(conn: Connection, pairs: list[tuple[int, int]]) -> dict[tuple[int, int], list[datetime]]:
    """Map ``(user, movie)`` pairs to the sorted times of their stored dislikes without a list."""
    stored = user_dislikes.c.created_at.type.dialect_impl(conn.dialect)
    to_time = stored.result_processor(conn.dialect, None) or (lambda value: value)  # SQLite: from text
    found: dict[tuple[int, int], list[datetime]] = {}
    for user_id, movie_id, at, set_id in _existing_pairs(
        conn, "user_dislikes", "user_id", "movie_id", pairs, also=("created_at", "recommendation_set_id")
    ):
        if set_id is None:
            found.setdefault((user_id, movie_id), []).append(to_time(at))
    for made in found.values():
        made.sort()
    return found


# ---------------------------------------------------------------- the importer


class _BatchRejected(Exception):
    """A batch with bad rows under ``--on-error abort``: its transaction is rolled back."""

    def __init__(self, errors: list) -> None:
        super().__init__(f"{len(errors)} bad row(s)")
        self.errors = errors


class Importer:
    """One import run of one file into one system."""

    def __init__(
        self,
        system,
        path: str | Path,
        kind: str,
        on_error: str = "abort",
        batch_size: int = DEFAULT_BATCH,
        progress: Callable[[int, int, ImportSummary], None] | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValidationError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}", "kind")
        if on_error not in ON_ERROR:
            raise ValidationError(f"on_error must be abort or skip, got {on_error!r}", "on_error")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValidationError(f"batch_size must be a positive integer, got {batch_size!r}", "batch_size")
        path = check_import_path(path)
        self.system = system
        self.settings = system.settings
        self.kind, self.on_error, self.batch_size = kind, on_error, batch_size
        self.reader = RecordReader(path, kind)
        self.summary = ImportSummary(kind=kind, path=str(path))
        self.progress = progress
        self.now = system.now()
        self._movies: dict[int, tuple] | None = None  # movie_id -> (title, genres, cast, franchise)
        self._versions: set[int] | None = None
        self._seen_sets: set[int] = set()
        self._last_stamp: tuple = (object(), None)
        self._conn: Connection | None = None
        self._checking = False  # the writers look rows up and return their errors, writing nothing

    # -- driving ------------------------------------------------------------------------

    def run(self) -> ImportSummary:
        with collector_paused():
            return self._run()

    def _run(self) -> ImportSummary:
        started = time.perf_counter()
        convert = getattr(self, f"_convert_{self.kind}")
        batch: list[tuple[int, Any]] = []
        last_set = None
        failed = False  # a bad row under "abort": finish reading its batch (all its errors), keep none
        try:
            for line, record, error in self.reader:
                self.summary.rows_read += 1
                item = where = None
                if error is None:
                    try:
                        item = convert(record)
                    except _Reject as exc:
                        error, where = exc.message, exc.field
                # A full batch is complete once a row that cannot join it comes, good or bad: it
                # is written before that row counts, so a bad row never takes it down too.
                if len(batch) >= self.batch_size and self._ends_batch(item, record, last_set):
                    if failed:
                        self._check(batch)
                        self.summary.rows_read -= 1  # read to see the batch end, never taken up
                        break
                    if not self._flush(batch):
                        self.summary.rows_read -= 1
                        break
                    batch = []
                if error is not None and self.reader.file_problem is not None:
                    # The file cannot be read on: its pending batch is not written, whatever
                    # on_error says (complete batches before it are kept; a rerun adds the rest).
                    self.summary.errors.append(RowError(line, error, where))
                    self.summary.rows_read -= 1  # a header row or a damaged stretch is no row
                    self.summary.file_error = error
                    failed = True
                    break
                if error is not None:
                    self.summary.reject(RowError(line, error, where))
                    failed = failed or self.on_error == "abort"
                    continue
                if self.kind == "impressions":
                    last_set = item[0]
                batch.append((line, item))
            else:
                if batch and failed:
                    self._check(batch)
                elif batch:
                    self._flush(batch)
            self.summary.aborted = self.summary.aborted or failed
            self.summary.errors.sort(key=lambda e: e.line)
            return self.summary
        finally:
            self.summary.seconds = time.perf_counter() - started
            self._settle()
            self._report()
            if self.kind == "movies":
                self.system._catalog_cache = None

    def _ends_batch(self, item: Any, record: dict | None, last_set: int | None) -> bool:
        """Whether a row (``item``, or the ``record`` of a bad row) cannot join the batch before it.

        Rows of one shown list stay in one batch: a bad row ends it only when the list it names
        can be read and is another one.
        """
        if self.kind != "impressions":
            return True
        if item is not None:
            return item[0] != last_set
        if record is None:
            return False
        try:
            return _id(record, "recommendation_set_id") != last_set
        except _Reject:
            return False

    def _connection(self) -> Connection:
        """The import's own connection, for all of its batches (returned by ``_settle``)."""
        if self._conn is None:
            conn = self.system.engine.connect()
            if conn.dialect.name == "sqlite":
                # Bulk writes: a page cache that holds the indexes being filled, and a WAL
                # checkpoint every ~80 MB (each one syncs the file), run by this connection.
                conn.exec_driver_sql(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
                conn.exec_driver_sql(f"PRAGMA wal_autocheckpoint={BULK_CHECKPOINT_PAGES}")
                conn.commit()
            self._conn = conn
        return self._conn

    @contextmanager
    def _batch_transaction(self) -> Iterator[Connection]:
        """The transaction of one batch, on the import's own connection."""
        with write_transaction(self.system.engine, bulk=True, connection=self._connection()) as conn:
            if conn.dialect.name == "postgresql":
                # Batches of one kind take turns, so that two imports of one file never both
                # find a row missing and both insert it (SQLite's BEGIN IMMEDIATE already does).
                conn.execute(_TAKE_TURNS, {"k": _TURN_KEYS[self.kind]})
            yield conn

    def _flush(self, batch: list[tuple[int, Any]]) -> bool:
        """Write one batch in one transaction; return False when the import stopped."""
        try:
            with self._batch_transaction() as conn:
                errors = getattr(self, f"_write_{self.kind}")(conn, batch)
                if errors and self.on_error == "abort":
                    raise _BatchRejected(errors)  # rolls the batch back
        except _BatchRejected as rejected:
            for error in rejected.errors:
                self.summary.reject(error)
            self.summary.aborted = True
            return False
        for error in errors:
            self.summary.reject(error)
        self.summary.batches += 1
        self._report()
        return True

    def _check(self, batch: list[tuple[int, Any]]) -> None:
        """Under "abort", the good rows of a batch that has bad ones: looked up in the database
        (the catalogue, the shown lists) and not written, so that every error of the batch is
        reported at once. A movie row meets no such check."""
        if not batch or self.kind == "movies":
            return
        counts = (self.summary.imported, self.summary.already_present)
        self._checking = True
        try:
            with self._batch_transaction() as conn:
                errors = getattr(self, f"_write_{self.kind}")(conn, batch)
        finally:
            self._checking = False
            self.summary.imported, self.summary.already_present = counts
        for error in errors:
            self.summary.reject(error)

    def _settle(self) -> None:
        """Give the import's connection back its usual SQLite settings, checkpoint the WAL and
        return the connection to the pool."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if conn.dialect.name == "sqlite" and not conn.invalidated:
                conn.exec_driver_sql("PRAGMA cache_size=-2000")
                conn.exec_driver_sql(f"PRAGMA wal_autocheckpoint={usual_autocheckpoint(self.system.engine)}")
                if self.summary.batches:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except DBAPIError:
            # Its settings cannot be trusted: the pool gets a fresh connection instead.
            log.warning("[FEEDBACK] could not restore the import connection's settings", exc_info=True)
            conn.invalidate()
        finally:
            conn.close()

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(self.reader.bytes_read, self.reader.size, self.summary)

    # -- lookups ------------------------------------------------------------------------

    def _movie_facts(self, conn: Connection) -> dict[int, tuple]:
        if self._movies is None:
            self._movies = {
                row[0]: (row[1], row[2] or [], row[3] or [], row[4])
                for row in conn.execute(
                    select(
                        movies.c.movie_id, movies.c.title, movies.c.genres, movies.c.cast, movies.c.franchise
                    )
                )
            }
        return self._movies

    def _model_versions(self, conn: Connection) -> set[int]:
        if self._versions is None:
            self._versions = set(conn.execute(select(model_versions.c.version_id)).scalars())
        return self._versions

    # -- movies -------------------------------------------------------------------------

    def _convert_movies(self, record: dict) -> MovieIn:
        # Missing is "required", as in the other kinds (validate_movie would say "empty").
        for name, what in (("movie_id", "a positive integer"), ("title", "the film's name")):
            if _blank(record.get(name)):
                raise _Reject(f"{name} is required ({what})", name)
        try:
            return validate_movie(record)
        except ValidationError as exc:
            raise _Reject(exc.message, exc.field) from None

    def _write_movies(self, conn: Connection, batch: list) -> list[RowError]:
        # Rows of one film apply in file order, each over the fields it names (upsert_movies).
        upsert_movies(conn, [movie for _, movie in batch], self.now)
        self.summary.imported += len(batch)
        self._movies = None
        return []

    # -- ratings ------------------------------------------------------------------------

    def _convert_ratings(self, record: dict) -> tuple:
        user_id, movie_id = _id(record, "user_id"), _id(record, "movie_id")
        value = record.get("rating")
        if _blank(value):
            raise _Reject("rating is required (a number from 1 to 5 in half stars)", "rating")
        try:
            rating = check_rating(value.strip() if isinstance(value, str) else value)
        except ValidationError as exc:
            raise _Reject(exc.message, "rating") from None
        at, given = _moment(record, "rated_at", self.now)
        return user_id, movie_id, rating, at if given else None  # None: now, unless stored alike

    def _write_ratings(self, conn: Connection, batch: list) -> list[RowError]:
        known = self._movie_facts(conn)
        errors, rows = [], []
        for line, row in batch:
            if row[1] not in known:
                errors.append(RowError(line, _not_in_catalogue(row[1]), "movie_id"))
            else:
                rows.append(row)
        if (errors and self.on_error == "abort") or self._checking:
            return errors
        written = store_ratings(conn, rows, self.now).written
        self.summary.imported += written
        # A rating the database already holds, or one older than the one it holds, is kept out.
        self.summary.already_present += len(rows) - written
        return errors

    # -- impressions --------------------------------------------------------------------

    def _convert_impressions(self, record: dict) -> tuple:
        try:  # the common case, a clean CSV row: plain conversions, no messages built
            set_id, user_id = _whole(record["recommendation_set_id"]), _whole(record["user_id"])
            movie_id, rank = _whole(record["movie_id"]), _whole(record["rank"])
            score = record["predicted_score"]
            if score.__class__ is bool:
                raise TypeError(score)
            score = float(score) + 0.0  # -0.0 is 0.0
            version = record.get("model_version")
            if (
                0 < set_id <= MAX_ID
                and 0 < user_id <= MAX_ID
                and 0 < movie_id <= MAX_ID
                and 1 <= rank <= 100_000
                and 0.0 <= score <= 1.0
            ):
                if version is None or version == "":
                    return (
                        set_id,
                        user_id,
                        movie_id,
                        rank,
                        score,
                        None,
                        self._shown_at(record.get("shown_at")),
                    )
        except (KeyError, TypeError, ValueError):
            pass  # checked field by field below, for the message
        set_id = _id(record, "recommendation_set_id")
        user_id = _id(record, "user_id")
        movie_id = _id(record, "movie_id")
        rank = _int_in(record, "rank", 1, 100_000)
        score = _score(record, "predicted_score", optional=True)  # empty: shown without a score
        version = _id(record, "model_version", optional=True)
        shown_at, _ = _moment(record, "shown_at", self.now)
        return set_id, user_id, movie_id, rank, score, version, shown_at

    def _shown_at(self, value: Any) -> datetime:
        # Rows of one shown list repeat its time: parse it once.
        if value != self._last_stamp[0]:
            self._last_stamp = (value, _moment({"shown_at": value}, "shown_at", self.now)[0])
        return self._last_stamp[1]

    def _write_impressions(self, conn: Connection, batch: list) -> list[RowError]:
        sets, errors = self._group_sets(conn, batch)
        stored = self._stored_sets(conn, list(sets))
        errors += self._check_stored_sets(sets, stored)
        # A list stored before, whole or in part (by a run that skipped some of its rows): the
        # items it lacks are added to it, as it was shown; those it has must be the same.
        wanted = [(stored[ext][0], item[1]) for ext in stored for item in sets[ext]["items"]]
        shown = {
            (set_id, movie_id): (rank, score if known else None)
            for set_id, movie_id, rank, score, known in _existing_pairs(
                conn,
                "impressions",
                "recommendation_set_id",
                "movie_id",
                wanted,
                also=("rank", "predicted_score", "score_known"),
            )
        }
        errors += self._check_stored_items(sets, stored, shown)
        errors.sort(key=lambda error: error.line)
        if (errors and self.on_error == "abort") or self._checking:
            return errors
        self._seen_sets.update(sets)
        new = [ext for ext in sets if ext not in stored and sets[ext]["items"]]
        ids = _new_ids(conn, "recommendation_sets", len(new))
        set_rows, item_rows, counts = [], [], aggregates.ImpressionCounts()
        for set_id, ext in zip(ids, new, strict=True):
            head = sets[ext]
            user_id, version, shown_at = head["user_id"], head["version"], head["shown_at"]
            set_rows.append((set_id, user_id, version, "import", shown_at, ext))
            item_rows += [
                (set_id, user_id, movie_id, rank, score or 0.0, score is not None, version, shown_at)
                for _, movie_id, rank, score in head["items"]
            ]
            counts.add(shown_at.date(), version or 0, [item[3] for item in head["items"]])
        for ext, (set_id, user_id, version, shown_at) in stored.items():
            missing = [item for item in sets[ext]["items"] if (set_id, item[1]) not in shown]
            self.summary.already_present += len(sets[ext]["items"]) - len(missing)
            if missing:
                item_rows += [
                    (set_id, user_id, m, rank, score or 0.0, score is not None, version, shown_at)
                    for _, m, rank, score in missing
                ]
                counts.add(shown_at.date(), version or 0, [item[3] for item in missing])
        if set_rows:
            _INSERT_SETS.execute_rows(conn, _SET_KEYS, set_rows).close()
        if item_rows:
            _INSERT_IMPRESSIONS.execute_rows(conn, IMPRESSION_KEYS, item_rows).close()
            aggregates.add_impressions(conn, counts)
        self.summary.imported += len(item_rows)
        return errors

    def _group_sets(self, conn: Connection, batch: list) -> tuple[dict[int, dict], list[RowError]]:
        """Gather a batch's rows into shown lists by their id in the file, checking each row
        against the catalogue and the rows of its list before it."""
        known_movies = self._movie_facts(conn)
        known_versions = self._model_versions(conn)
        sets: dict[int, dict] = {}
        errors: list[RowError] = []
        previous = None
        for line, (ext, user_id, movie_id, rank, score, version, shown_at) in batch:
            head = sets.get(ext)
            if head is None or ext != previous:
                if head is not None or ext in self._seen_sets:
                    errors.append(
                        RowError(
                            line,
                            f"rows of recommendation_set_id {ext} must be consecutive in the file",
                            "recommendation_set_id",
                        )
                    )
                    continue
                head = sets[ext] = {
                    "user_id": user_id,
                    "version": version,
                    "shown_at": shown_at,
                    "items": [],
                    "movies": set(),
                }
            previous = ext
            problem = None
            if movie_id not in known_movies:
                problem = (_not_in_catalogue(movie_id), "movie_id")
            elif version is not None and version not in known_versions:
                problem = (f"model_version {version} does not exist", "model_version")
            elif user_id != head["user_id"]:
                problem = (
                    f"recommendation_set_id {ext} was shown to user {head['user_id']}; this row names "
                    f"user {user_id}",
                    "user_id",
                )
            elif version != head["version"]:
                problem = (
                    f"rows of recommendation_set_id {ext} name different model versions",
                    "model_version",
                )
            elif shown_at != head["shown_at"]:
                problem = (
                    f"rows of recommendation_set_id {ext} name different times ({head['shown_at']} "
                    f"and {shown_at}); a list is shown at one time",
                    "shown_at",
                )
            elif movie_id in head["movies"]:
                problem = (f"movie_id {movie_id} appears twice in recommendation_set_id {ext}", "movie_id")
            if problem is not None:
                errors.append(RowError(line, *problem))
                continue
            head["movies"].add(movie_id)
            head["items"].append((line, movie_id, rank, score))
        return sets, errors

    def _stored_sets(self, conn: Connection, ext_ids: list[int]) -> dict[int, tuple]:
        """Map the lists of ``ext_ids`` imported before to (set id, user, version, shown at)."""
        stored: dict[int, tuple] = {}
        for chunk in _chunks(ext_ids):
            for ext, *head in conn.execute(
                select(
                    recommendation_sets.c.external_id,
                    recommendation_sets.c.recommendation_set_id,
                    recommendation_sets.c.user_id,
                    recommendation_sets.c.model_version_id,
                    recommendation_sets.c.created_at,
                ).where(recommendation_sets.c.external_id.in_(chunk))
            ):
                stored[ext] = tuple(head)
        return stored

    def _check_stored_sets(self, sets: dict[int, dict], stored: dict[int, tuple]) -> list[RowError]:
        """Refuse (and drop) the rows of a list stored before that name another user, version or time."""
        errors: list[RowError] = []
        for ext, (_, owner, stored_version, stored_at) in stored.items():
            head = sets[ext]
            if owner != head["user_id"]:
                problem = (
                    f"recommendation_set_id {ext} was shown to user {owner}; this row names user "
                    f"{head['user_id']}",
                    "recommendation_set_id",
                )
            elif stored_version != head["version"]:
                problem = (
                    f"recommendation_set_id {ext} was imported with model_version "
                    f"{stored_version or 'none'}; this row names {head['version'] or 'none'}",
                    "model_version",
                )
            elif head["shown_at"] is not self.now and head["shown_at"] != stored_at:
                # (An empty shown_at means "now": a rerun of such a file names another moment.)
                problem = (
                    f"recommendation_set_id {ext} was imported as shown at {format_ts(stored_at)}; "
                    f"this row says {format_ts(head['shown_at'])}",
                    "shown_at",
                )
            else:
                continue
            errors += [RowError(item[0], *problem) for item in head["items"]]
            head["items"] = []
        return errors

    def _check_stored_items(
        self, sets: dict[int, dict], stored: dict[int, tuple], shown: dict[tuple, tuple]
    ) -> list[RowError]:
        """Refuse (and drop) the rows of a stored list's items stored with another rank or score."""
        errors: list[RowError] = []
        for ext, (set_id, *_) in stored.items():
            head, kept = sets[ext], []
            for item in head["items"]:
                line, movie_id, rank, score = item
                before = shown.get((set_id, movie_id))
                if before is None or before == (rank, score):
                    kept.append(item)
                    continue
                errors.append(
                    RowError(
                        line,
                        f"movie_id {movie_id} of recommendation_set_id {ext} was imported at rank "
                        f"{before[0]} with {_shown_score(before[1])}; this row says rank {rank} with "
                        f"{_shown_score(score)}",
                        "predicted_score" if before[0] == rank else "rank",
                    )
                )
            head["items"] = kept
        return errors

    # -- dislikes -----------------------------------------------------------------------

    def _convert_dislikes(self, record: dict) -> tuple:
        d = self._fast_dislike(record)
        if d is not None:
            set_ext = _id(record, "recommendation_set_id", optional=True)
            created_at, stamp = _moment(record, "created_at", self.now)
        else:  # field by field, in column order, so the first fault is the one reported
            user_id = _id(record, "user_id")
            movie_id = _id(record, "movie_id")
            set_ext = _id(record, "recommendation_set_id", optional=True)
            score = _score(record, "predicted_score", optional=True)
            created_at, stamp = _moment(record, "created_at", self.now)
            reason = record.get("reason")
            if _blank(reason):
                reason = "not_interested"
            elif isinstance(reason, str):
                reason = reason.strip()
            try:
                d = validate_dislike(
                    self.settings,
                    user_id=user_id,
                    movie_id=movie_id,
                    predicted_score=score,
                    reason=reason,
                    feedback_text=record.get("feedback_text"),  # None is "", 0 and false are refused
                )
            except ValidationError as exc:
                raise _Reject(exc.message, exc.field) from None
        # The same user, film, list and moment is the same dislike, however often imported.
        key = f"import:{d.movie_id}:{set_ext or ''}:{stamp}"
        return d, set_ext, created_at, key

    def _fast_dislike(self, record: dict) -> DislikeIn | None:
        """The common case, a clean CSV row, without building messages; None to check slowly."""
        try:
            user_id, movie_id = _whole(record["user_id"]), _whole(record["movie_id"])
            score = record.get("predicted_score")
            if score is None or score == "":
                score = None  # the shown list's, else unknown (as a live dislike's)
            elif score.__class__ is bool:
                return None
            else:
                score = float(score) + 0.0  # -0.0 is 0.0
        except (KeyError, TypeError, ValueError):
            return None
        reason = record.get("reason")
        if reason is None or reason == "":
            reason = "not_interested"
        text = record.get("feedback_text")
        if text is None:
            text = ""
        if (
            0 < user_id <= MAX_ID
            and 0 < movie_id <= MAX_ID
            and (score is None or 0.0 <= score <= 1.0)
            and reason in REASONS
            and isinstance(text, str)
            and len(text) <= self.settings.max_feedback_text_length
            and text == text.strip()
            and "\x00" not in text
        ):
            return DislikeIn(user_id, movie_id, "", None, score, reason, text, None, None, None, None)
        return None

    def _write_dislikes(self, conn: Connection, batch: list) -> list[RowError]:
        # What these people disliked is read, then added to: live dislikes of the same people
        # wait meanwhile (on PostgreSQL; SQLite's write lock already makes them), or one shown
        # item could be disliked by both.
        lock_users(conn, {d.user_id for _, (d, _, _, _) in batch})
        facts = self._movie_facts(conn)
        errors: list[RowError] = []
        # Which of these are already stored (an earlier run) or repeated in this batch.
        pairs = list(dict.fromkeys((d.user_id, key) for _, (d, _, _, key) in batch))
        present = _existing_pairs(conn, "user_dislikes", "user_id", "idempotency_key", pairs)
        sets = self._resolve_sets(conn, {(s, d.movie_id) for _, (d, s, _, _) in batch if s is not None})
        # One shown item is disliked once, as record_dislike keeps it (its "repeat"): a row of a
        # list whose film its user disliked there, and has not retracted, is already present.
        disliked = self._disliked_items(conn, [head[0] for head in sets.values()])
        # Without a list, one within the double-click window of another of the same film by the
        # same person is that one again, as record_dislike finds its "repeat".
        window = timedelta(seconds=self.settings.duplicate_window_seconds)
        repeats = _double_clicks(conn, batch, present, window)
        fresh, seen = [], set()
        for position, (line, (d, set_ext, created_at, key)) in enumerate(batch):
            if (d.user_id, key) in present or (d.user_id, key) in seen or position in repeats:
                self.summary.already_present += 1
                continue
            item = None
            if set_ext is not None and set_ext in sets:
                item = (d.user_id, sets[set_ext][0], d.movie_id)
                if item in disliked:
                    self.summary.already_present += 1
                    continue
            problem = None
            if d.movie_id not in facts:
                problem = (_not_in_catalogue(d.movie_id), "movie_id")
            elif set_ext is not None:
                found = sets.get(set_ext)
                if found is None:
                    problem = (
                        f"recommendation_set_id {set_ext} is not an imported shown list; import its "
                        "impressions first",
                        "recommendation_set_id",
                    )
                elif found[1] != d.user_id:
                    problem = (
                        f"recommendation_set_id {set_ext} was not shown to user {d.user_id}",
                        "recommendation_set_id",
                    )
                elif d.movie_id not in found[3]:
                    problem = (
                        f"movie_id {d.movie_id} was not in recommendation_set_id {set_ext}",
                        "recommendation_set_id",
                    )
                elif created_at < found[4] and created_at is self.now:
                    problem = (
                        f"created_at is empty, so the dislike would take the time of the import "
                        f"({format_ts(created_at)}), before recommendation_set_id {set_ext} was shown "
                        f"({format_ts(found[4])}): give the time the dislike was made",
                        "created_at",
                    )
                elif created_at < found[4]:
                    problem = (
                        f"created_at {format_ts(created_at)} is before recommendation_set_id {set_ext} "
                        f"was shown ({format_ts(found[4])}): a dislike of a list comes after it",
                        "created_at",
                    )
            if problem is not None:
                errors.append(RowError(line, *problem))
                continue
            seen.add((d.user_id, key))
            if item is not None:
                disliked.add(item)
            fresh.append((d, set_ext, created_at, key))
        if (errors and self.on_error == "abort") or self._checking:
            return errors
        self._store_dislikes(conn, fresh, facts, sets)
        self.summary.imported += len(fresh)
        return errors

    def _disliked_items(self, conn: Connection, set_ids: list[int]) -> set[tuple[int, int, int]]:
        """Return (user, set id, movie) of the dislikes of these lists that are not retracted."""
        found: set[tuple[int, int, int]] = set()
        for chunk in _chunks(sorted(set_ids)):
            found.update(
                tuple(row)
                for row in conn.execute(
                    select(
                        user_dislikes.c.user_id,
                        user_dislikes.c.recommendation_set_id,
                        user_dislikes.c.movie_id,
                    ).where(
                        user_dislikes.c.recommendation_set_id.in_(chunk),
                        user_dislikes.c.retracted_at.is_(None),
                    )
                )
            )
        return found

    def _resolve_sets(self, conn: Connection, wanted: set[tuple[int, int]]) -> dict[int, tuple]:
        """Map imported set ids to (set id, user, version, the wanted movies it showed with the
        score of each (``UNSCORED`` when it showed one without a score), shown at)."""
        stored = self._stored_sets(conn, sorted({ext for ext, _ in wanted}))
        found = {
            ext: (set_id, user_id, version, {}, shown_at)
            for ext, (set_id, user_id, version, shown_at) in stored.items()
        }
        pairs = sorted((found[ext][0], movie_id) for ext, movie_id in wanted if ext in found)
        by_id = {head[0]: head for head in found.values()}
        for set_id, movie_id, score, known in _existing_pairs(
            conn,
            "impressions",
            "recommendation_set_id",
            "movie_id",
            pairs,
            also=("predicted_score", "score_known"),
        ):
            by_id[set_id][3][movie_id] = score if known else UNSCORED
        return found

    def _store_dislikes(self, conn: Connection, fresh: list, facts: dict, sets: dict) -> None:
        if not fresh:
            return
        policy = self.settings.reason_policy
        weight = self.settings.DISLIKE_WEIGHT_MULTIPLIER
        ids = _new_ids(conn, "user_dislikes", len(fresh))
        dislikes, examples, proposals, exclusions = [], [], [], []
        counts = aggregates.DislikeCounts()
        for dislike_id, (d, set_ext, at, key) in zip(ids, fresh, strict=True):
            title, genres, cast, franchise = facts[d.movie_id]
            set_id, version = (sets[set_ext][0], sets[set_ext][2]) if set_ext is not None else (None, None)
            # The list's score for the film, else the one given, else unknown (as live).
            score, replaced = recorded_score(d, None if set_id is None else sets[set_ext][3][d.movie_id])
            self.summary.scores_from_lists += replaced is not None
            dislikes.append(
                {
                    "dislike_id": dislike_id,
                    "user_id": d.user_id,
                    "movie_id": d.movie_id,
                    "movie_title": title,
                    "recommendation_set_id": set_id,
                    "model_version_id": version,
                    "predicted_score": 0.0 if score is None else score,
                    "score_known": score is not None,
                    "reason": d.reason,
                    "feedback_text": d.feedback_text,
                    "genres": list(genres),
                    "cast": list(cast),
                    "franchise": franchise,
                    "idempotency_key": key,
                    "created_at": at,
                }
            )
            examples.append(
                {
                    "dislike_id": dislike_id,
                    "user_id": d.user_id,
                    "movie_id": d.movie_id,
                    "weight": weight,
                    "error": 0.0 if score is None else score,
                    "created_at": at,
                    "status": "pending",
                }
            )
            rule = policy[d.reason]
            proposals += proposal_rows(
                dislike_id, d.user_id, d.reason, propose_adjustments(rule, genres, cast, franchise), at
            )
            if rule.exclude_movie:
                exclusions.append(
                    {"user_id": d.user_id, "movie_id": d.movie_id, "dislike_id": dislike_id, "created_at": at}
                )
            counts.add(
                d.user_id,
                d.movie_id,
                d.reason,
                score,
                genres,
                cast,
                franchise,
                version or 0,
                set_id is not None,
                at,
                shown_on=sets[set_ext][4].date() if set_ext is not None else None,
            )
        _INSERT_DISLIKES.execute(conn, dislikes).close()
        _INSERT_EXAMPLES.execute(conn, examples).close()
        if proposals:
            _INSERT_PROPOSALS.execute_rows(conn, PROPOSAL_KEYS, proposals).close()
        if exclusions:
            exclusion_insert(conn.dialect.name).execute(conn, exclusions).close()
        counts.write(conn)
        if proposals and self.settings.auto_approve:
            # By this batch's own ids: on PostgreSQL, live dislikes can take ids between them.
            adjustment_ids: list[int] = []
            for chunk in _chunks(ids):
                adjustment_ids += conn.execute(
                    select(feature_adjustments.c.adjustment_id).where(
                        feature_adjustments.c.dislike_id.in_(chunk),
                        feature_adjustments.c.status == "proposed",
                    )
                ).scalars()
            for adjustment_id in sorted(adjustment_ids):
                self.system._apply_adjustment(
                    conn, adjustment_id, actor=AUTO_APPROVER, magnitude=None, now=self.now
                )
        write_audit(
            conn,
            at=self.now,
            actor="import",
            action="dislikes.imported",
            entity_type="import",
            entity_id=None,
            details={
                "file": self.reader.path.name,
                "dislikes": len(fresh),
                "first_id": ids[0],
                "last_id": ids[-1],
            },
        )
        queue_retrain_if_due(conn, self.settings.FEEDBACK_ACCUMULATION_THRESHOLD, at=self.now, actor="import")


def _not_in_catalogue(movie_id: int) -> str:
    return f"movie_id {movie_id} is not in the catalogue; import the movies first"


class ImportOps:
    """The import operation of ``FeedbackSystem``."""

    def import_file(
        self,
        path: str | Path,
        kind: str,
        *,
        on_error: str = "abort",
        batch_size: int = DEFAULT_BATCH,
        progress: Callable[[int, int, ImportSummary], None] | None = None,
    ) -> ImportSummary:
        """Import a CSV or JSON-lines file of ``kind`` (movies, ratings, impressions, dislikes).

        Batches are written one transaction each; ``on_error="abort"`` stops at the first bad
        row and keeps nothing of its batch, ``"skip"`` reports bad rows and imports the rest.
        ``progress(bytes_read, total_bytes, summary)`` is called after every batch.
        """
        summary = Importer(self, path, kind, on_error, batch_size, progress).run()
        log.info(
            "[FEEDBACK] Import of %s (%s): %s imported, %s already present, %s rejected%s",
            summary.path,
            kind,
            summary.imported,
            summary.already_present,
            summary.rejected,
            " (stopped at the first bad row)" if summary.aborted else "",
        )
        return summary
