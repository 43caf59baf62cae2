"""Maintained aggregates: per-user patterns and the daily tables the dashboard reads.

Every function takes a connection inside the caller's transaction and never commits. Rows
are upserted in sorted key order so concurrent transactions lock them in the same order.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import Connection, Table, case
from sqlalchemy.dialects import postgresql, sqlite

from feedback_core.db import Prepared
from feedback_core.schema import (
    daily_dislikes,
    daily_impressions,
    daily_reason_genre,
    daily_score_histogram,
    dislike_patterns,
    movie_dislike_stats,
)

HIGH_SCORE = 0.7  # a dislike above this predicted score is a "confident mistake"


def upsert_add(
    conn: Connection,
    table: Table,
    keys: Sequence[str],
    rows: Iterable[Mapping],
    add: Sequence[str],
    latest: Sequence[str] = (),
) -> None:
    """Insert rows, or add their ``add`` columns to existing ones (and keep the max of ``latest``)."""
    rows = sorted(rows, key=lambda r: tuple(r[k] for k in keys))
    if not rows:
        return
    stmt = _upsert_statement(conn.dialect.name, table, tuple(keys), tuple(add), tuple(latest))
    stmt.execute(conn, rows).close()


@functools.cache
def _upsert_statement(dialect_name: str, table: Table, keys: tuple, add: tuple, latest: tuple) -> Prepared:
    # Built once per shape: constructing the statement cost more than running it.
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    stmt = dialect.insert(table)
    changes = {col: table.c[col] + stmt.excluded[col] for col in add}
    for col in latest:
        # NULL-safe "greatest" that both backends understand.
        current, new = table.c[col], stmt.excluded[col]
        changes[col] = case((current.is_(None), new), (new > current, new), else_=current)
    return Prepared(stmt.on_conflict_do_update(index_elements=list(keys), set_=changes))


def bucket_of(score: float) -> int:
    """Return the histogram bucket (0..9) of a predicted score in [0, 1]."""
    return min(int(score * 10), 9)


def add_dislike(
    conn: Connection,
    *,
    user_id: int,
    movie_id: int,
    reason: str,
    score: float,
    genres: Sequence[str],
    cast: Sequence[str],
    franchise: str | None,
    version_key: int,
    attributed: bool,
    at: datetime,
    sign: int = 1,
) -> None:
    """Count one dislike (``sign=-1`` uncounts a retracted one) in every aggregate."""
    day = at.date()
    patterns = [("total", ""), ("reason", reason)]
    patterns += [("genre", g) for g in genres]
    patterns += [("cast", c) for c in cast]
    if franchise:
        patterns.append(("franchise", franchise))
    upsert_add(
        conn,
        dislike_patterns,
        ("user_id", "pattern_type", "pattern_value"),
        [
            {
                "user_id": user_id,
                "pattern_type": kind,
                "pattern_value": value,
                "dislike_count": sign,
                "score_sum": sign * score,
                "last_disliked_at": at,
            }
            for kind, value in dict.fromkeys(patterns)
        ],
        add=("dislike_count", "score_sum"),
        latest=("last_disliked_at",) if sign > 0 else (),
    )
    upsert_add(
        conn,
        daily_dislikes,
        ("day", "model_version_id", "reason", "attributed"),
        [
            {
                "day": day,
                "model_version_id": version_key,
                "reason": reason,
                "attributed": int(attributed),
                "dislikes": sign,
                "score_sum": sign * score,
            }
        ],
        add=("dislikes", "score_sum"),
    )
    upsert_add(
        conn,
        daily_reason_genre,
        ("day", "reason", "genre"),
        [{"day": day, "reason": reason, "genre": g, "dislikes": sign} for g in dict.fromkeys(genres)],
        add=("dislikes",),
    )
    upsert_add(
        conn,
        daily_score_histogram,
        ("day", "model_version_id", "bucket"),
        [{"day": day, "model_version_id": version_key, "bucket": bucket_of(score), "dislikes": sign}],
        add=("dislikes",),
    )
    upsert_add(
        conn,
        movie_dislike_stats,
        ("movie_id",),
        [
            {
                "movie_id": movie_id,
                "dislikes": sign,
                "high_score_dislikes": sign if score >= HIGH_SCORE else 0,
                "score_sum": sign * score,
                "last_disliked_at": at,
            }
        ],
        add=("dislikes", "high_score_dislikes", "score_sum"),
        latest=("last_disliked_at",) if sign > 0 else (),
    )


def add_impressions(conn: Connection, counts: Mapping[tuple, int]) -> None:
    """Add impression counts keyed by ``(day, version_key)``."""
    upsert_add(
        conn,
        daily_impressions,
        ("day", "model_version_id"),
        [{"day": d, "model_version_id": v, "impressions": n} for (d, v), n in counts.items()],
        add=("impressions",),
    )
