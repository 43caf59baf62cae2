"""Maintained aggregates: per-user patterns and the daily tables the dashboard reads.

Every function takes a connection inside the caller's transaction and never commits. Rows
are upserted in sorted key order so concurrent transactions lock them in the same order.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import Connection, Table, case, select, update
from sqlalchemy.dialects import postgresql, sqlite

from feedback_core.db import Prepared
from feedback_core.policy import blamed_features
from feedback_core.schema import (
    daily_dislikes,
    daily_impressions,
    daily_reason_genre,
    daily_score_histogram,
    dislike_patterns,
    movie_dislike_stats,
    user_dislikes,
)

HIGH_SCORE = 0.7  # a dislike at or above this predicted score is a "confident mistake"


class Upsert:
    """ "Insert these rows, or add them to the existing ones" for one table, built once.

    Rows are tuples of values in ``columns`` order whose first ``keys`` columns are the
    primary key (plain tuples: on the path of every dislike, a mapping per row cost more than
    the upsert itself). The ``add`` columns are added to an existing row's, the ``latest``
    ones keep the later of the two values (a NULL never replaces a value). Rows are written
    in key order so that concurrent transactions lock them in the same order.
    """

    def __init__(
        self,
        table: Table,
        columns: Sequence[str],
        *,
        keys: int,
        add: Sequence[str],
        latest: Sequence[str] = (),
    ) -> None:
        self.table, self.columns, self.keys = table, tuple(columns), keys
        self.add, self.latest = tuple(add), tuple(latest)
        self._key_of = operator.itemgetter(*range(keys))
        self._statements: dict[str, Prepared] = {}  # by dialect name

    def write(self, conn: Connection, rows: Sequence[tuple]) -> None:
        """Upsert ``rows`` in the caller's transaction."""
        if rows:
            Prepared.execute_all(conn, [self.run(conn, rows)])

    def run(
        self, conn: Connection, rows: Sequence[tuple]
    ) -> tuple[Prepared, tuple[str, ...], Sequence[tuple]]:
        """The upsert of ``rows`` as a step of ``Prepared.execute_all``: statement, keys, rows."""
        stmt = self._statements.get(conn.dialect.name)
        if stmt is None:
            stmt = self._statements[conn.dialect.name] = self._statement(conn.dialect.name)
        return stmt, self.columns, rows if len(rows) < 2 else sorted(rows, key=self._key_of)

    def _statement(self, dialect_name: str) -> Prepared:
        dialect = postgresql if dialect_name == "postgresql" else sqlite
        table = self.table
        stmt = dialect.insert(table)
        changes = {col: table.c[col] + stmt.excluded[col] for col in self.add}
        for col in self.latest:
            # NULL-safe "greatest" that both backends understand.
            current, new = table.c[col], stmt.excluded[col]
            changes[col] = case((current.is_(None), new), (new > current, new), else_=current)
        return Prepared(
            stmt.on_conflict_do_update(index_elements=list(self.columns[: self.keys]), set_=changes)
        )


_PATTERNS = Upsert(
    dislike_patterns,
    ("user_id", "pattern_type", "pattern_value", "dislike_count", "score_sum", "last_disliked_at"),
    keys=3,
    add=("dislike_count", "score_sum"),
    latest=("last_disliked_at",),
)
_DAILY = Upsert(
    daily_dislikes,
    ("day", "model_version_id", "reason", "attributed", "dislikes", "score_sum", "scored"),
    keys=4,
    add=("dislikes", "score_sum", "scored"),
)
_REASON_GENRE = Upsert(
    daily_reason_genre, ("day", "model_version_id", "reason", "genre", "dislikes"), keys=4, add=("dislikes",)
)
_HISTOGRAM = Upsert(
    daily_score_histogram,
    ("day", "model_version_id", "reason", "bucket", "dislikes"),
    keys=4,
    add=("dislikes",),
)
_MOVIES = Upsert(
    movie_dislike_stats,
    ("movie_id", "dislikes", "high_score_dislikes", "score_sum", "last_disliked_at", "scored"),
    keys=1,
    add=("dislikes", "high_score_dislikes", "score_sum", "scored"),
    latest=("last_disliked_at",),
)
_IMPRESSIONS = Upsert(
    daily_impressions,
    ("day", "model_version_id", "impressions", "score_sum", "scored"),
    keys=2,
    add=("impressions", "score_sum", "scored"),
)


def bucket_of(score: float) -> int:
    """Return the histogram bucket (0..9) of a predicted score in [0, 1]."""
    return min(int(score * 10), 9)


def add_dislike(
    conn: Connection,
    *,
    user_id: int,
    movie_id: int,
    reason: str,
    score: float | None,
    genres: Sequence[str],
    cast: Sequence[str],
    franchise: str | None,
    version_key: int,
    attributed: bool,
    at: datetime,
    sign: int = 1,
    shown_on: date | None = None,
) -> None:
    """Count one dislike (``sign=-1`` uncounts a retracted one) in every aggregate.

    ``score``: its predicted score, None when unknown: such a dislike is counted, but in no
    score sum, ``scored`` count or histogram bucket (an unknown score is no perfect prediction).

    ``shown_on``: the day its list was shown, for a dislike that names one. The daily tables
    count it on that day, beside the impressions it is a share of, so that a day's (or a
    version's) dislike rate never counts a dislike whose impression it does not, and every
    daily table counts the same dislikes on the same day (a dislike without a list: on the
    day it was made).

    The rows ``DislikeCounts`` would count for this one dislike, built directly: on the path
    of every live dislike its dictionaries cost a tenth of the aggregates' time.
    """
    rate_day = shown_on if shown_on is not None else at.date()
    last = at if sign > 0 else None
    scored = 0 if score is None else sign
    weighted = 0.0 if score is None else sign * score
    kinds = pattern_keys(reason, genres, cast, franchise)
    high = sign if score is not None and score >= HIGH_SCORE else 0
    patterns = [(user_id, kind, value, sign, weighted, last) for kind, value in kinds]
    steps = [
        _PATTERNS.run(conn, patterns),
        _DAILY.run(conn, [(rate_day, version_key, reason, int(attributed), sign, weighted, scored)]),
        _REASON_GENRE.run(
            conn, [(rate_day, version_key, reason, genre, sign) for genre in dict.fromkeys(genres)]
        ),
        _MOVIES.run(conn, [(movie_id, sign, high, weighted, last, scored)]),
    ]
    if score is not None:
        steps.append(_HISTOGRAM.run(conn, [(rate_day, version_key, reason, bucket_of(score), sign)]))
    Prepared.execute_all(conn, steps)


def pattern_keys(reason: str, genres, cast, franchise: str | None) -> list[tuple[str, str]]:
    """The ``dislike_patterns`` keys (kind, value) one dislike counts in, each once: its total,
    its reason and the feature values its reason blames (``policy.blamed_features``)."""
    genres, cast, franchise = blamed_features(reason, genres, cast, franchise)
    keys = [("total", ""), ("reason", reason)] + [("genre", g) for g in genres] + [("cast", c) for c in cast]
    if franchise:
        keys.append(("franchise", franchise))
    return list(dict.fromkeys(keys))


def settle_latest_after_retraction(
    conn: Connection,
    *,
    user_id: int,
    movie_id: int,
    reason: str,
    genres: Sequence[str],
    cast: Sequence[str],
    franchise: str | None,
    at: datetime,
) -> None:
    """After a retracted dislike (made ``at``) was uncounted: the "last disliked" moments it set
    fall back to the latest live dislike's, or to NULL where none is left. Only rows whose latest
    moment was this dislike's change; the retracted row must already be marked retracted."""
    kinds = set(pattern_keys(reason, genres, cast, franchise))
    stale = {
        (kind, value): count
        for kind, value, count in conn.execute(
            select(
                dislike_patterns.c.pattern_type,
                dislike_patterns.c.pattern_value,
                dislike_patterns.c.dislike_count,
            ).where(dislike_patterns.c.user_id == user_id, dislike_patterns.c.last_disliked_at == at)
        )
        if (kind, value) in kinds
    }
    latest: dict[tuple[str, str], datetime | None] = {key: None for key, count in stale.items() if count <= 0}
    wanted = {key for key, count in stale.items() if count > 0}
    if wanted:
        # The user's live dislikes newest first (their own index), until each row has its moment.
        for created, why, their_genres, their_cast, their_franchise in conn.execute(
            select(
                user_dislikes.c.created_at,
                user_dislikes.c.reason,
                user_dislikes.c.genres,
                user_dislikes.c.cast,
                user_dislikes.c.franchise,
            )
            .where(user_dislikes.c.user_id == user_id, user_dislikes.c.retracted_at.is_(None))
            .order_by(user_dislikes.c.created_at.desc(), user_dislikes.c.dislike_id.desc())
        ):
            theirs = set(pattern_keys(why, their_genres or [], their_cast or [], their_franchise))
            for key in wanted & theirs:
                latest[key] = created
            wanted -= theirs
            if not wanted:
                break
    for (kind, value), moment in latest.items():
        conn.execute(
            update(dislike_patterns)
            .where(
                dislike_patterns.c.user_id == user_id,
                dislike_patterns.c.pattern_type == kind,
                dislike_patterns.c.pattern_value == value,
            )
            .values(last_disliked_at=moment)
        )
    film = conn.execute(
        select(movie_dislike_stats.c.dislikes, movie_dislike_stats.c.last_disliked_at).where(
            movie_dislike_stats.c.movie_id == movie_id
        )
    ).first()
    if film is not None and film.last_disliked_at == at:
        moment = None
        if film.dislikes > 0:
            # Newest first through the index on time, to the film's latest live dislike.
            moment = conn.execute(
                select(user_dislikes.c.created_at)
                .where(user_dislikes.c.movie_id == movie_id, user_dislikes.c.retracted_at.is_(None))
                .order_by(user_dislikes.c.created_at.desc())
                .limit(1)
            ).scalar()
        conn.execute(
            update(movie_dislike_stats)
            .where(movie_dislike_stats.c.movie_id == movie_id)
            .values(last_disliked_at=moment)
        )


class DislikeCounts:
    """Dislikes counted in memory, then written to every aggregate in one upsert per table.

    One dislike (the live path) or a batch of thousands (an import) take the same route, so
    the aggregates cannot depend on how a dislike arrived.
    """

    def __init__(self) -> None:
        self.patterns: dict[tuple, list] = {}  # (user, kind, value) -> [count, score_sum, last]
        # (day, version, reason, attributed) -> [count, score_sum, scored]
        self.daily: dict[tuple, list] = {}
        self.reason_genre: dict[tuple, int] = {}
        self.histogram: dict[tuple, int] = {}
        self.movies: dict[int, list] = {}  # movie -> [count, high, score_sum, last, scored]

    def add(
        self,
        user_id: int,
        movie_id: int,
        reason: str,
        score: float | None,
        genres: Sequence[str],
        cast: Sequence[str],
        franchise: str | None,
        version_key: int,
        attributed: bool,
        at: datetime,
        sign: int = 1,
        shown_on: date | None = None,
    ) -> None:
        """Count one dislike; ``sign=-1`` uncounts a retracted one (``score`` and ``shown_on``:
        as for ``add_dislike``)."""
        rate_day = shown_on if shown_on is not None else at.date()
        last = at if sign > 0 else None
        patterns = self.patterns
        scored = 0 if score is None else sign
        weighted = 0.0 if score is None else sign * score
        for kind, value in pattern_keys(reason, genres, cast, franchise):
            row = patterns.get((user_id, kind, value))
            if row is None:
                patterns[(user_id, kind, value)] = [sign, weighted, last]
            else:
                row[0] += sign
                row[1] += weighted
                if last is not None and (row[2] is None or last > row[2]):
                    row[2] = last
        row = self.daily.get((rate_day, version_key, reason, int(attributed)))
        if row is None:
            self.daily[(rate_day, version_key, reason, int(attributed))] = [sign, weighted, scored]
        else:
            row[0] += sign
            row[1] += weighted
            row[2] += scored
        for genre in dict.fromkeys(genres):
            key = (rate_day, version_key, reason, genre)
            self.reason_genre[key] = self.reason_genre.get(key, 0) + sign
        high = 0
        if score is not None:
            key = (rate_day, version_key, reason, bucket_of(score))
            self.histogram[key] = self.histogram.get(key, 0) + sign
            high = sign if score >= HIGH_SCORE else 0
        row = self.movies.get(movie_id)
        if row is None:
            self.movies[movie_id] = [sign, high, weighted, last, scored]
        else:
            row[0] += sign
            row[1] += high
            row[2] += weighted
            row[4] += scored
            if last is not None and (row[3] is None or last > row[3]):
                row[3] = last

    def write(self, conn: Connection) -> None:
        """Upsert the counted rows into the aggregate tables (in the caller's transaction)."""
        Prepared.execute_all(
            conn,
            [
                _PATTERNS.run(conn, [(*key, *values) for key, values in self.patterns.items()]),
                _DAILY.run(conn, [(*key, *values) for key, values in self.daily.items()]),
                _REASON_GENRE.run(conn, [(*key, n) for key, n in self.reason_genre.items()]),
                _HISTOGRAM.run(conn, [(*key, n) for key, n in self.histogram.items()]),
                _MOVIES.run(conn, [(movie, *values) for movie, values in self.movies.items()]),
            ],
        )


class ImpressionCounts(dict):
    """Impressions counted per ``(day, version_key)``: ``[count, score sum, scored]``."""

    def add(self, day: date, version_key: int, scores: Sequence[float | None]) -> None:
        """Count the items of one list shown on ``day`` with these scores (None: without one)."""
        known = [s for s in scores if s is not None]
        row = self.get((day, version_key))
        if row is None:
            self[(day, version_key)] = [len(scores), float(sum(known)), len(known)]
        else:
            row[0] += len(scores)
            row[1] += sum(known)
            row[2] += len(known)


def add_impressions(conn: Connection, counts: ImpressionCounts) -> None:
    """Add the impressions counted in ``counts`` to the daily table."""
    _IMPRESSIONS.write(conn, [(*key, *values) for key, values in counts.items()])
