"""Build the databases bench/record.py measures on: N earlier dislikes, made in bulk, consistent.

    .venv/bin/python bench/prefill.py                 # build the cached SQLite files if missing
    .venv/bin/python bench/prefill.py --rebuild --sizes 10000

Never through ``save_dislike``: one transaction of executemany (SQLite) or COPY (PostgreSQL).
~20k users with a heavy-tailed activity and ~10k movies with a popular head, dislikes spread
over 180 days; every negative example but the last few already used by a retraining (model
versions every 30 days), proposals older than two weeks already decided (rejected: applying
them would need weights, impact and audit rows that save_dislike never reads); then the
aggregates (per-user patterns, daily tables, per-movie stats, exclusions) are computed from the
dislikes with GROUP BY, so every table agrees with the rest.

SQLite files are cached under ``bench/.cache/``, keyed by size, schema revision and generator
version. On PostgreSQL each size lives in its own schema (``bench_record_<size>``) of the given
database, reused while the dislikes earlier runs added stay under 1% of its size.
"""

from __future__ import annotations

import argparse
import bisect
import json
import shutil
import sqlite3
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, event, insert, text
from sqlalchemy.engine import make_url

from feedback_core import Settings
from feedback_core.aggregates import HIGH_SCORE
from feedback_core.db import close_engine, head_revision, make_engine, upgrade_database
from feedback_core.policy import TOP_CAST, propose_adjustments
from feedback_core.schema import model_versions
from feedback_core.settings import BLAMES

GENERATOR_VERSION = 2  # bump when the prefill changes, so cached databases are rebuilt
CACHE = Path(__file__).resolve().parent / ".cache"
USERS, MOVIES, ACTORS, FRANCHISES, DAYS = 20_000, 10_000, 8_000, 400, 180
PENDING_LEFT = 8  # examples not yet used by a retraining (below the threshold of 20)
GENRES = (
    "Drama Comedy Thriller Action Romance Horror Documentary Crime Adventure Animation "
    "Family Fantasy Mystery Sci-Fi War Western Music History"
).split()
REASONS = ("not_interested", "wrong_genre", "poor_quality", "already_watched", "irrelevant", "other")
REASON_SHARES = (0.34, 0.20, 0.15, 0.13, 0.11, 0.07)
TEXTS = ("", "seen it", "not my thing", "too slow", "bad acting", "wrong mood tonight")


# ---------------------------------------------------------------- the synthetic world


class World:
    """Catalogue and activity distributions shared by the prefill and the timed workload."""

    def __init__(self, seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        genre_cdf, actor_cdf = np.cumsum(_zipf(len(GENRES), 0.9)), np.cumsum(_zipf(ACTORS, 0.9))
        self.movies = []
        for movie_id in range(1, MOVIES + 1):
            genres = [GENRES[i] for i in _distinct(rng, genre_cdf, int(rng.integers(1, 4)))]
            cast = [f"Actor {a:04d}" for a in _distinct(rng, actor_cdf, int(rng.integers(3, 7)))]
            franchise = f"Franchise {int(rng.integers(FRANCHISES)):03d}" if rng.random() < 0.15 else None
            title = f"Movie {movie_id:05d}" + (f" ({franchise})" if franchise else "")
            self.movies.append((movie_id, title, genres, cast, franchise, int(rng.integers(1950, 2026))))
        self.user_p = rng.lognormal(0.0, 1.2, USERS)
        self.user_p /= self.user_p.sum()
        self.movie_p = rng.permutation(_zipf(MOVIES, 0.8))

    def sample(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        """Draw ``n`` dislikes: users, movies, reasons and predicted scores."""
        return {
            "user": rng.choice(USERS, size=n, p=self.user_p) + 1,
            "movie": rng.choice(MOVIES, size=n, p=self.movie_p) + 1,
            "reason": rng.choice(len(REASONS), size=n, p=REASON_SHARES),
            # Recommended movies were predicted to be liked: scores lean high.
            "score": np.round(rng.beta(5, 2, size=n), 3),
            "text": rng.choice(len(TEXTS), size=n, p=(0.9, 0.02, 0.02, 0.02, 0.02, 0.02)),
        }


def _zipf(n: int, s: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** s
    return weights / weights.sum()


def _distinct(rng: np.random.Generator, cdf: np.ndarray, k: int) -> list[int]:
    """Draw ``k`` distinct indices, each with the probability its step of ``cdf`` gives."""
    chosen: list[int] = []
    while len(chosen) < k:
        i = min(int(np.searchsorted(cdf, rng.random())), len(cdf) - 1)
        if i not in chosen:
            chosen.append(i)
    return chosen


# ---------------------------------------------------------------- prefill


def prefill(engine, world: World, size: int, now: datetime, seed: int = 11) -> None:
    """Fill a freshly migrated database with ``size`` dislikes and everything they imply."""
    rng = np.random.default_rng(seed)
    pg = engine.dialect.name == "postgresql"
    ts = (lambda m: m) if pg else (lambda m: m.strftime("%Y-%m-%d %H:%M:%S.%f"))
    settings = Settings(database_url="sqlite://")  # the defaults the application records with
    start, end = now - timedelta(days=DAYS), now - timedelta(hours=1)
    offsets = np.sort(rng.random(size)) * (end - start).total_seconds()
    times = [start + timedelta(seconds=float(s)) for s in offsets]
    # Retrainings every 30 days; the last one just before the last few dislikes.
    version_times = [start - timedelta(days=1)] + [start + timedelta(days=d) for d in range(30, DAYS, 30)]
    version_times.append(times[-PENDING_LEFT - 1] + timedelta(seconds=1) if size > PENDING_LEFT else start)
    draws = world.sample(rng, size)
    with engine.begin() as conn:
        for i, at in enumerate(version_times, start=1):
            active = i == len(version_times)
            conn.execute(
                insert(model_versions).values(
                    version_id=i,
                    parent_id=i - 1 or None,
                    status="active" if active else "retired",
                    active_slot=1 if active else None,
                    trigger="initial" if i == 1 else "threshold",
                    created_at=at,
                    created_by="bench:prefill",
                    activated_at=at,
                )
            )
        bulk_insert(
            conn,
            "movies",
            MOVIE_COLS,
            (
                (*m[:2], json.dumps(m[2]), json.dumps(m[3]), *m[4:], 0, 0.0, 0, ts(start))
                for m in world.movies
            ),
        )
        for chunk in _chunks(range(size), 50_000):
            dislikes, examples, proposals = [], [], []
            for i in chunk:
                dislike_id, at = i + 1, times[i]
                movie_id, title, genres, cast, franchise, _ = world.movies[int(draws["movie"][i]) - 1]
                user_id, reason = int(draws["user"][i]), REASONS[draws["reason"][i]]
                score = float(draws["score"][i])
                dislikes.append(
                    (
                        dislike_id,
                        user_id,
                        movie_id,
                        title,
                        None,
                        None,
                        score,
                        reason,
                        TEXTS[draws["text"][i]],
                        json.dumps(genres),
                        json.dumps(cast),
                        franchise,
                        None,
                        ts(at),
                        None,
                    )
                )
                used = i < size - PENDING_LEFT
                version = bisect.bisect_left(version_times, at) + 1 if used else None
                examples.append(
                    (
                        dislike_id,
                        dislike_id,
                        user_id,
                        movie_id,
                        settings.DISLIKE_WEIGHT_MULTIPLIER,
                        score,
                        ts(at),
                        "used" if used else "pending",
                        version,
                        ts(version_times[version - 1]) if used else None,
                    )
                )
                decided = at < now - timedelta(days=14)
                for p in propose_adjustments(settings.reason_policy[reason], genres, cast, franchise):
                    proposals.append(
                        (
                            dislike_id,
                            user_id,
                            p.feature_type,
                            p.feature_value,
                            p.magnitude,
                            p.magnitude,
                            reason,
                            "rejected" if decided else "proposed",
                            ts(at),
                            "bench:prefill" if decided else None,
                            ts(at + timedelta(days=1)) if decided else None,
                        )
                    )
            bulk_insert(conn, "user_dislikes", DISLIKE_COLS, dislikes)
            bulk_insert(conn, "negative_examples", EXAMPLE_COLS, examples)
            bulk_insert(conn, "feature_adjustments", PROPOSAL_COLS, proposals)
        for statement in aggregate_sql(pg):
            conn.execute(text(statement))
        if pg:
            for table, column in (
                ("user_dislikes", "dislike_id"),
                ("negative_examples", "example_id"),
                ("feature_adjustments", "adjustment_id"),
                ("model_versions", "version_id"),
            ):
                conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), (SELECT max({column}) FROM {table}))"
                    )
                )


MOVIE_COLS = (
    "movie_id",
    "title",
    "genres",
    "cast",
    "franchise",
    "year",
    "rating_count",
    "rating_sum",
    "like_count",
    "created_at",
)
DISLIKE_COLS = (
    "dislike_id",
    "user_id",
    "movie_id",
    "movie_title",
    "recommendation_set_id",
    "model_version_id",
    "predicted_score",
    "reason",
    "feedback_text",
    "genres",
    "cast",
    "franchise",
    "idempotency_key",
    "created_at",
    "retracted_at",
)
EXAMPLE_COLS = (
    "example_id",
    "dislike_id",
    "user_id",
    "movie_id",
    "weight",
    "error",
    "created_at",
    "status",
    "used_in_version_id",
    "used_at",
)
PROPOSAL_COLS = (
    "dislike_id",
    "user_id",
    "feature_type",
    "feature_value",
    "proposed_magnitude",
    "magnitude",
    "reason",
    "status",
    "created_at",
    "decided_by",
    "decided_at",
)


def bulk_insert(conn, table: str, cols: tuple[str, ...], rows) -> None:
    """Insert many rows on the driver: COPY on PostgreSQL, executemany on SQLite."""
    names = ", ".join(f'"{c}"' for c in cols)
    cursor = conn.connection.driver_connection.cursor()
    if conn.dialect.name == "postgresql":
        with cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row)
    else:
        cursor.executemany(f'INSERT INTO "{table}" ({names}) VALUES ({", ".join("?" * len(cols))})', rows)
    cursor.close()


def aggregate_sql(pg: bool) -> list[str]:
    """Return the statements that derive every maintained aggregate from the dislikes."""
    # The daily tables count a dislike of a shown list on the list's day (recording's shown_on).
    moment = "coalesce(s.created_at, d.created_at)"
    day = f"CAST({moment} AS DATE)" if pg else f"substr({moment}, 1, 10)"
    with_lists = "user_dislikes AS d LEFT JOIN recommendation_sets AS s ON s.recommendation_set_id = d.recommendation_set_id"
    bucket = (
        "LEAST(CAST(FLOOR(d.predicted_score * 10) AS INTEGER), 9)"
        if pg
        else "min(CAST(d.predicted_score * 10 AS INTEGER), 9)"
    )

    def each(column: str) -> str:
        return f"json_array_elements_text(d.{column}) AS j(value)" if pg else f"json_each(d.{column}) AS j"

    cast_column = '"cast"'  # a reserved word on both backends
    # Of the cast, the first TOP_CAST billed (their position in the list, from 0).
    billed = (
        f"json_array_elements_text(d.{cast_column}) WITH ORDINALITY AS j(value, n)"
        if pg
        else f"json_each(d.{cast_column}) AS j"
    )
    position = "j.n - 1" if pg else "j.key"

    def blaming(kind: str) -> str:
        """A dislike counts against a feature only when its reason blames it (settings.BLAMES)."""
        reasons = ", ".join(f"'{r}'" for r, kinds in BLAMES.items() if kind in kinds)
        return f"d.reason IN ({reasons})"

    def patterns(kind: str, value: str | None, join: str = "", where: str = "") -> str:
        group = f"d.user_id, {value}" if value else "d.user_id"
        return (
            "INSERT INTO dislike_patterns (user_id, pattern_type, pattern_value, dislike_count, score_sum, "
            f"last_disliked_at) SELECT d.user_id, '{kind}', {value or repr('')}, count(*), "
            f"sum(d.predicted_score), max(d.created_at) FROM user_dislikes AS d{join} {where} GROUP BY {group}"
        )

    return [
        patterns("total", None),
        patterns("reason", "d.reason"),
        patterns("genre", "j.value", join=f" CROSS JOIN {each('genres')}", where=f"WHERE {blaming('genre')}"),
        patterns(
            "cast",
            "j.value",
            join=f" CROSS JOIN {billed}",
            where=f"WHERE {blaming('cast')} AND {position} < {TOP_CAST}",
        ),
        patterns(
            "franchise",
            "d.franchise",
            where=f"WHERE d.franchise IS NOT NULL AND d.franchise <> '' AND {blaming('franchise')}",
        ),
        # (Every generated dislike's score is known: scored = dislikes.)
        "INSERT INTO daily_dislikes (day, model_version_id, reason, attributed, dislikes, score_sum, scored) "
        f"SELECT {day}, coalesce(d.model_version_id, 0), d.reason, CASE WHEN d.recommendation_set_id IS NULL THEN 0 ELSE 1 END, "
        f"count(*), sum(d.predicted_score), count(*) FROM {with_lists} GROUP BY 1, 2, 3, 4",
        "INSERT INTO daily_reason_genre (day, model_version_id, reason, genre, dislikes) "
        f"SELECT {day}, coalesce(d.model_version_id, 0), d.reason, j.value, count(*) "
        f"FROM {with_lists} CROSS JOIN {each('genres')} GROUP BY 1, 2, 3, 4",
        f"INSERT INTO daily_score_histogram (day, model_version_id, reason, bucket, dislikes) SELECT {day}, "
        f"coalesce(d.model_version_id, 0), d.reason, {bucket}, count(*) FROM {with_lists} GROUP BY 1, 2, 3, 4",
        "INSERT INTO movie_dislike_stats (movie_id, dislikes, high_score_dislikes, score_sum, last_disliked_at, "
        f"scored) SELECT d.movie_id, count(*), sum(CASE WHEN d.predicted_score >= {HIGH_SCORE} THEN 1 ELSE 0 END), "
        "sum(d.predicted_score), max(d.created_at), count(*) FROM user_dislikes AS d GROUP BY d.movie_id",
        "INSERT INTO movie_exclusions (user_id, movie_id, dislike_id, created_at) SELECT d.user_id, d.movie_id, "
        "min(d.dislike_id), min(d.created_at) FROM user_dislikes AS d WHERE d.reason = 'already_watched' "
        "GROUP BY d.user_id, d.movie_id",
    ]


def _chunks(seq, n: int):
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


# ---------------------------------------------------------------- databases per backend


def sqlite_database(world: World, size: int, rebuild: bool) -> Path:
    """Return a fresh copy of the cached SQLite file of ``size`` dislikes (built if missing)."""
    CACHE.mkdir(exist_ok=True)
    cached = CACHE / f"sqlite-{size}-{head_revision()}-g{GENERATOR_VERSION}.db"
    if rebuild or not cached.exists():
        building = cached.with_suffix(".building")
        remove_sqlite(building)
        started = time.perf_counter()
        engine = make_engine(Settings(database_url=f"sqlite:///{building}"))
        upgrade_database(engine)
        close_engine(engine)  # its checkpointer too: the bulk pragmas below need the file alone
        # A file under construction needs no journal: if the build fails it is thrown away.
        event.listen(engine, "connect", _bulk_load_pragmas)
        prefill(engine, world, size, _utcnow())
        engine.dispose()
        raw = sqlite3.connect(building)
        raw.execute("PRAGMA journal_mode=WAL")  # what the application's engine sets anyway
        raw.close()
        building.replace(cached)
        remove_sqlite(building)
        for stale in CACHE.glob(f"sqlite-{size}-*.db"):  # built by another schema or generator
            if stale != cached:
                remove_sqlite(stale)
        print(f"built {cached.name} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    work = CACHE / f"run-{size}.db"
    remove_sqlite(work)
    shutil.copyfile(cached, work)
    return work


def _bulk_load_pragmas(dbapi_conn, _record) -> None:
    for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-1000000"):
        dbapi_conn.execute(f"PRAGMA {pragma}")


def remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal", "-writer"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def pg_database(base_url: str, world: World, size: int, rebuild: bool) -> str:
    """Return a URL whose search_path is the prefilled schema of ``size`` dislikes."""
    schema = f"bench_record_{size}"
    key = f"{head_revision()}-g{GENERATOR_VERSION}"
    url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    admin = create_engine(base_url)
    with admin.begin() as conn:
        comment = conn.execute(
            text("SELECT obj_description(to_regnamespace(:s), 'pg_namespace')"), {"s": schema}
        ).scalar()
        count = (
            conn.execute(text(f'SELECT count(*) FROM "{schema}".user_dislikes')).scalar()
            if comment == key
            else None
        )
    if rebuild or count is None or count > size * 1.01:
        started = time.perf_counter()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine = make_engine(Settings(database_url=url.render_as_string(hide_password=False)))
        upgrade_database(engine)
        prefill(engine, world, size, _utcnow())
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))  # what autovacuum does shortly after a bulk load
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"COMMENT ON SCHEMA \"{schema}\" IS '{key}'"))
        print(f"built schema {schema} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    admin.dispose()
    return url.render_as_string(hide_password=False)


def tidy_pg(url: str) -> None:
    """Leave the reused schema as after a retraining: no pending examples, no queued job."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE negative_examples SET status = 'used', used_at = now() WHERE status = 'pending'")
        )
        conn.execute(
            text(
                "UPDATE retrain_jobs SET status = 'succeeded', active_slot = NULL, finished_at = now() WHERE active_slot = 1"
            )
        )
    engine.dispose()


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,1000000", help="earlier dislikes, comma-separated")
    parser.add_argument("--rebuild", action="store_true", help="rebuild even if cached")
    args = parser.parse_args(argv)
    world = World()
    for size in sorted(int(s) for s in args.sizes.split(",")):
        path = sqlite_database(world, size, args.rebuild)
        remove_sqlite(path)  # only the cached file is wanted here, not a working copy
        print(f"{size:,} dislikes: cached")
    return 0


if __name__ == "__main__":
    sys.exit(main())
