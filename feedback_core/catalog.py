"""The movie catalogue and the positive signal (ratings)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from feedback_core.db import format_ts, write_transaction
from feedback_core.errors import ConflictError, ValidationError
from feedback_core.recording import lock_users
from feedback_core.schema import movies, ratings
from feedback_core.validation import check_id, check_name, check_names, check_recent, check_title

LIKED_RATING = 4.0


@dataclass(frozen=True)
class MovieIn:
    """A validated catalogue record."""

    movie_id: int
    title: str
    genres: tuple[str, ...]
    cast: tuple[str, ...]
    franchise: str | None
    year: int | None
    # The optional fields the record named: stored over what a catalogued film has. A field
    # the record leaves out keeps what is stored (a file of titles alone erased every genre).
    given: frozenset[str] = frozenset(("genres", "cast", "franchise", "year"))


OPTIONAL_MOVIE_FIELDS = ("genres", "cast", "franchise", "year")
ALL_MOVIE_FIELDS = frozenset(OPTIONAL_MOVIE_FIELDS)
# What exports write for a film without genres (MovieLens): no genre, not one of that name.
NO_GENRES = frozenset({"(no genres listed)"})


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split("|") if part.strip()]
    return value


def _genres(value: Any) -> Any:
    names = _split(value)
    if isinstance(names, list):
        return [name for name in names if not (isinstance(name, str) and name.casefold() in NO_GENRES)]
    return names


def validate_movie(record: Any) -> MovieIn:
    """Validate one catalogue record (lists may be pipe-separated strings)."""
    if not isinstance(record, dict):
        raise ValidationError("a movie record must be an object with movie_id and title", "record")
    year = record.get("year")
    if year is None or (isinstance(year, str) and not year.strip()):
        year = None
    else:
        given = year
        if isinstance(year, str):
            year = year.strip()
            if year.endswith(".0") and year[:-2].isdecimal():
                year = year[:-2]  # 1999.0 from a spreadsheet's export, as JSON's 1999.0 is taken
            year = int(year) if year.isdecimal() and year.isascii() else None
        elif isinstance(year, float) and year.is_integer():
            year = int(year)  # 1999.0 from a JSON writer that knows only numbers
        if isinstance(year, bool) or not isinstance(year, int):  # 1999.7, true, "MCMXCIX"
            raise ValidationError(f"year must be a whole number such as 1999, got {given!r}", "year")
        if not 1870 <= year <= 2100:
            raise ValidationError(f"year must be between 1870 and 2100, got {year}", "year")
    return MovieIn(
        movie_id=check_id(record.get("movie_id"), "movie_id"),
        title=check_title(record.get("title"), "title", 300, allow_empty=False),
        genres=check_names(_genres(record.get("genres")), "genres", 50) or (),
        cast=check_names(_split(record.get("cast")), "cast", 50) or (),
        franchise=check_name(record.get("franchise"), "franchise", 200, allow_empty=True) or None,
        year=year,
        given=frozenset(name for name in OPTIONAL_MOVIE_FIELDS if name in record),
    )


def check_rating(value: Any) -> float:
    """Return a rating from 1 to 5 in half stars, or raise."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(f"rating must be a number from 1 to 5 in half stars, got {value!r}", "rating")
    if not 1.0 <= value <= 5.0 or (value * 2) != int(value * 2):
        raise ValidationError(f"rating must be a number from 1 to 5 in half stars, got {value!r}", "rating")
    return float(value)


def upsert_movies(conn: Connection, records: list[MovieIn], now: datetime) -> None:
    """Insert movies or update their metadata (rating statistics are kept). A catalogued film
    keeps the optional fields its record does not name (``MovieIn.given``); records of one film
    apply in their order, each over the fields it names."""
    if not records:
        return
    merged: dict[int, MovieIn] = {}
    for record in records:
        earlier = merged.get(record.movie_id)
        merged[record.movie_id] = record if earlier is None else _over(earlier, record)
    films = sorted(merged.values(), key=lambda r: r.movie_id)  # one order for every writer
    partial = [r.movie_id for r in films if r.given != ALL_MOVIE_FIELDS]
    if partial:
        # What those records leave out comes from the stored film, read under its row lock
        # (on PostgreSQL; SQLite's write lock holds the whole file) so that nothing written
        # between the read and the upsert is undone by it.
        stored = {}
        for start in range(0, len(partial), 500):
            chunk = partial[start : start + 500]
            fields = [movies.c[name] for name in OPTIONAL_MOVIE_FIELDS]
            query = select(movies.c.movie_id, *fields).where(movies.c.movie_id.in_(chunk))
            for row in conn.execute(query.order_by(movies.c.movie_id).with_for_update()):
                stored[row.movie_id] = row
        films = [_over(_stored_film(stored[r.movie_id]), r) if r.movie_id in stored else r for r in films]
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(movies)
    stmt = stmt.on_conflict_do_update(
        index_elements=["movie_id"],
        set_={c: stmt.excluded[c] for c in ("title", *OPTIONAL_MOVIE_FIELDS)},
    )
    conn.execute(
        stmt,
        [
            {
                "movie_id": r.movie_id,
                "title": r.title,
                "genres": list(r.genres),
                "cast": list(r.cast),
                "franchise": r.franchise,
                "year": r.year,
                "rating_count": 0,
                "rating_sum": 0.0,
                "like_count": 0,
                "created_at": now,
            }
            for r in films
        ],
    )


def _over(base: MovieIn, record: MovieIn) -> MovieIn:
    """``record`` over ``base``: its title and the fields it names, ``base``'s others."""
    kept = {name: getattr(base, name) for name in OPTIONAL_MOVIE_FIELDS if name not in record.given}
    return replace(record, given=base.given | record.given, **kept)


def _stored_film(row) -> MovieIn:
    return MovieIn(
        movie_id=row.movie_id,
        title="",
        genres=tuple(row.genres or ()),
        cast=tuple(row.cast or ()),
        franchise=row.franchise,
        year=row.year,
    )


@dataclass(frozen=True)
class RatingsStored:
    """What ``store_ratings`` did: how many it wrote, and the ratings it kept out because the
    database holds a later one (``(user, movie) -> (stored rating, its time, the time of the
    one kept out)``)."""

    written: int
    later_stored: dict[tuple[int, int], tuple[float, datetime, datetime]]


def store_ratings(
    conn: Connection, rows: list[tuple[int, int, float, datetime | None]], now: datetime
) -> RatingsStored:
    """Insert or replace ratings ``(user, movie, rating, rated_at)`` and keep each movie's
    rating statistics in step.

    Of a person's ratings of a film the latest by ``rated_at`` is kept, so that loading an old
    export never undoes a newer rating: a rating older than the stored one is kept out; a
    later one replaces it, and a later equal one moves its time. A rating without a time
    (``None``) takes ``now``, unless the stored rating is the same (a rerun of a file without
    times moves nothing).
    """
    if not rows:
        return RatingsStored(0, {})
    ids = sorted({m for _, m, _, _ in rows})
    known = set()
    for start in range(0, len(ids), 900):
        known |= set(
            conn.execute(
                select(movies.c.movie_id).where(movies.c.movie_id.in_(ids[start : start + 900]))
            ).scalars()
        )
    missing = [m for m in ids if m not in known]
    if missing:
        raise ValidationError(f"movies not in the catalogue: {', '.join(map(str, missing[:10]))}", "movie_id")
    latest: dict[tuple[int, int], tuple[float, datetime, bool]] = {}  # (rating, time, timed)
    for user, movie, rating, at in rows:
        kept = latest.get((user, movie))
        moment = now if at is None else at
        if kept is None or moment >= kept[1]:  # the later one; of two at one moment, the last given
            latest[(user, movie)] = (rating, moment, at is not None)
    users = sorted({u for u, _ in latest})
    # Each person's ratings are read, then changed: writers of one person take turns (on
    # PostgreSQL; SQLite's write lock already serialises them), or two would both find no
    # rating and both count one into the film's statistics.
    lock_users(conn, users)
    previous: dict[tuple[int, int], tuple[float, datetime]] = {}
    for start in range(0, len(users), 900):
        for u, m, r, at in conn.execute(
            select(ratings.c.user_id, ratings.c.movie_id, ratings.c.rating, ratings.c.rated_at).where(
                ratings.c.user_id.in_(users[start : start + 900])
            )
        ):
            if (u, m) in latest:
                previous[(u, m)] = (r, at)
    changed, later_stored = {}, {}
    for key, (rating, at, timed) in latest.items():
        before = previous.get(key)
        if before is None:
            changed[key] = (rating, at)
        elif at < before[1]:
            later_stored[key] = (*before, at)
        elif rating != before[0] or (timed and at > before[1]):
            changed[key] = (rating, at)
    if not changed:
        return RatingsStored(0, later_stored)
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(ratings)
    stmt = stmt.on_conflict_do_update(
        index_elements=["user_id", "movie_id"],
        set_={"rating": stmt.excluded.rating, "rated_at": stmt.excluded.rated_at},
    )
    conn.execute(
        stmt,
        [
            {"user_id": u, "movie_id": m, "rating": changed[(u, m)][0], "rated_at": changed[(u, m)][1]}
            for u, m in sorted(changed)
        ],
    )
    deltas: dict[int, list[float]] = {}
    for (u, m), (rating, _) in changed.items():
        d = deltas.setdefault(m, [0, 0.0, 0])
        old = previous[(u, m)][0] if (u, m) in previous else None
        d[0] += 0 if old is not None else 1
        d[1] += rating - (old or 0.0)
        d[2] += int(rating >= LIKED_RATING) - int(old is not None and old >= LIKED_RATING)
    for movie_id in sorted(deltas):
        n, s, likes = deltas[movie_id]
        conn.execute(
            update(movies)
            .where(movies.c.movie_id == movie_id)
            .values(
                rating_count=movies.c.rating_count + n,
                rating_sum=movies.c.rating_sum + s,
                like_count=movies.c.like_count + likes,
            )
        )
    return RatingsStored(len(changed), later_stored)


class CatalogOps:
    """Catalogue and rating operations of ``FeedbackSystem``."""

    def add_movies(self, records: Iterable[dict]) -> int:
        """Add or update catalogue records; all or nothing. Return how many were stored. A
        catalogued film keeps the genres, cast, franchise or year its record leaves out."""
        clean = []
        for i, record in enumerate(records):
            try:
                clean.append(validate_movie(record))
            except ValidationError as exc:
                raise ValidationError(f"records[{i}]: {exc.message}", f"records[{i}].{exc.field}") from None
        with write_transaction(self.engine) as conn:
            upsert_movies(conn, clean, self.now())
        self._catalog_cache = None
        return len(clean)

    def record_rating(
        self, user_id: int, movie_id: int, rating: float, rated_at: datetime | None = None
    ) -> None:
        """Record a user's rating (1 to 5, half stars; 4 and above counts as liked).

        Raises ConflictError when a later rating of the film by the person is stored.
        """
        now = self.now()
        clean = _rating_row(user_id, movie_id, rating, rated_at, now)
        with write_transaction(self.engine) as conn:
            _refuse_older(store_ratings(conn, [clean], now))

    def record_ratings(self, rows: Iterable[Sequence]) -> int:
        """Record many ratings ``(user_id, movie_id, rating[, rated_at])`` in one transaction;
        return how many were written (a rating equal to the stored one, and no later, is not).

        Raises ConflictError, writing none of them, when one is older than the rating stored
        for its person and film (as ``record_rating`` does).
        """
        clean = []
        now = self.now()
        for i, row in enumerate(rows):
            if isinstance(row, (str, bytes)) or not isinstance(row, Sequence) or not 3 <= len(row) <= 4:
                raise ValidationError(
                    f"rows[{i}] must be (user_id, movie_id, rating) or (user_id, movie_id, rating, "
                    f"rated_at), got {row!r}",
                    f"rows[{i}]",
                )
            user_id, movie_id, rating, *rest = row
            try:
                clean.append(_rating_row(user_id, movie_id, rating, rest[0] if rest else None, now))
            except ValidationError as exc:
                raise ValidationError(f"rows[{i}]: {exc.message}", exc.field) from None
        with write_transaction(self.engine) as conn:
            stored = store_ratings(conn, clean, now)
            _refuse_older(stored)  # inside the transaction: nothing of the batch is kept
        return stored.written


def _refuse_older(stored: RatingsStored) -> None:
    """Tell the caller of a live rating that a later one of the same film is kept (raise)."""
    if stored.later_stored:
        refused = sorted(stored.later_stored.items())
        (user, movie), (rating, at, this) = refused[0]
        more = f" ({len(refused) - 1} more ratings like it)" if len(refused) > 1 else ""
        raise ConflictError(
            f"user {user} rated movie {movie} {rating:g} at {format_ts(at)}, later than this rating "
            f"({format_ts(this)}): the later rating is kept{more}",
            "rated_at",
        )


def _rating_row(user_id: Any, movie_id: Any, rating: Any, rated_at: Any, now: datetime) -> tuple:
    """Return one live rating checked, as stored: (user, movie, rating, naive UTC moment).

    Without a time it is given now: the person rates now (confirming an equal rating moves its
    time), unlike an imported row without one (see ``store_ratings``).
    """
    at = now if rated_at is None else check_recent(rated_at, "rated_at", now)
    return check_id(user_id, "user_id"), check_id(movie_id, "movie_id"), check_rating(rating), at
