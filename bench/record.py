"""Latency of ``save_dislike`` (the whole transaction) on databases of 10 thousand and 1 million dislikes.

Targets (issue 2): on SQLite, median at most 1 ms at 1 million earlier dislikes, and the 1-million
median at most 1.3 times the 10-thousand median measured in the same process.

    .venv/bin/python bench/record.py                    # SQLite, 10k and 1M, 2000 timed calls each
    .venv/bin/python bench/record.py -n 500 --sizes 10000
    .venv/bin/python bench/record.py --pg postgresql+psycopg://user:pw@host/db   # PostgreSQL too

The prefilled databases are built in bulk (one transaction, executemany or COPY), never through
``save_dislike``: ~20k users with a heavy-tailed activity, ~10k movies with a popular head, spread
over 180 days; every example but the last few already used by a retraining, old proposals already
decided; the aggregates are then computed from the dislikes with GROUP BY, so every table agrees.
SQLite files are cached under ``bench/.cache/`` (keyed by size, schema revision and generator
version) and copied before each run, so every run starts from the same file. On PostgreSQL each
size lives in its own schema (``bench_record_<size>``) of the given database, reused while the
dislikes earlier runs added stay under 1% of its size.

Exit status 1 when a SQLite target is missed.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import platform
import shutil
import sqlite3
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import sqlalchemy
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from feedback_core import FeedbackSystem, Settings
from feedback_core.aggregates import HIGH_SCORE
from feedback_core.db import head_revision, make_engine, upgrade_database
from feedback_core.policy import propose_adjustments
from feedback_core.schema import model_versions

GENERATOR_VERSION = 1  # bump when the prefill changes, so cached databases are rebuilt
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
TARGET_MEDIAN_MS, TARGET_RATIO = 1.0, 1.3


# ---------------------------------------------------------------- the synthetic world


class World:
    """Catalogue and activity distributions shared by the prefill and the timed workload."""

    def __init__(self, seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        genre_p = _zipf(len(GENRES), 0.9)
        actor_p = _zipf(ACTORS, 0.9)
        self.movies = []
        for movie_id in range(1, MOVIES + 1):
            genres = list(rng.choice(GENRES, size=int(rng.integers(1, 4)), replace=False, p=genre_p))
            cast = [f"Actor {a:04d}" for a in rng.choice(ACTORS, size=int(rng.integers(3, 7)), replace=False, p=actor_p)]
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


# ---------------------------------------------------------------- prefill


def prefill(engine, world: World, size: int, now: datetime, seed: int = 11) -> None:
    """Fill a freshly migrated database with ``size`` dislikes and everything they imply."""
    rng = np.random.default_rng(seed)
    pg = engine.dialect.name == "postgresql"
    ts = (lambda m: m) if pg else (lambda m: m.strftime("%Y-%m-%d %H:%M:%S.%f"))
    policy = Settings(database_url="sqlite://").reason_policy
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
        bulk_insert(conn, "movies", MOVIE_COLS, ((*m[:2], json.dumps(m[2]), json.dumps(m[3]), *m[4:], 0, 0.0, 0, ts(start)) for m in world.movies))
        for chunk in _chunks(range(size), 50_000):
            dislikes, examples, proposals = [], [], []
            for i in chunk:
                dislike_id, at = i + 1, times[i]
                movie_id, title, genres, cast, franchise, _ = world.movies[int(draws["movie"][i]) - 1]
                user_id, reason = int(draws["user"][i]), REASONS[draws["reason"][i]]
                score = float(draws["score"][i])
                dislikes.append((dislike_id, user_id, movie_id, title, None, None, score, reason, TEXTS[draws["text"][i]], json.dumps(genres), json.dumps(cast), franchise, None, ts(at), None))
                used = i < size - PENDING_LEFT
                version = bisect.bisect_left(version_times, at) + 1 if used else None
                examples.append((dislike_id, dislike_id, user_id, movie_id, 0.8, score, ts(at), "used" if used else "pending", version, ts(version_times[version - 1]) if used else None))
                decided = at < now - timedelta(days=14)
                for p in propose_adjustments(policy[reason], genres, cast, franchise):
                    proposals.append((dislike_id, user_id, p.feature_type, p.feature_value, p.magnitude, p.magnitude, reason, "rejected" if decided else "proposed", ts(at), "bench:prefill" if decided else None, ts(at + timedelta(days=1)) if decided else None))
            bulk_insert(conn, "user_dislikes", DISLIKE_COLS, dislikes)
            bulk_insert(conn, "negative_examples", EXAMPLE_COLS, examples)
            bulk_insert(conn, "feature_adjustments", PROPOSAL_COLS, proposals)
        for statement in aggregate_sql(pg):
            conn.execute(text(statement))
        if pg:
            for table, column in (("user_dislikes", "dislike_id"), ("negative_examples", "example_id"), ("feature_adjustments", "adjustment_id"), ("model_versions", "version_id")):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), (SELECT max({column}) FROM {table}))"))


MOVIE_COLS = ("movie_id", "title", "genres", "cast", "franchise", "year", "rating_count", "rating_sum", "like_count", "created_at")
DISLIKE_COLS = ("dislike_id", "user_id", "movie_id", "movie_title", "recommendation_set_id", "model_version_id", "predicted_score", "reason", "feedback_text", "genres", "cast", "franchise", "idempotency_key", "created_at", "retracted_at")
EXAMPLE_COLS = ("example_id", "dislike_id", "user_id", "movie_id", "weight", "error", "created_at", "status", "used_in_version_id", "used_at")
PROPOSAL_COLS = ("dislike_id", "user_id", "feature_type", "feature_value", "proposed_magnitude", "magnitude", "reason", "status", "created_at", "decided_by", "decided_at")


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
    day = "CAST(d.created_at AS DATE)" if pg else "substr(d.created_at, 1, 10)"
    bucket = "LEAST(CAST(FLOOR(d.predicted_score * 10) AS INTEGER), 9)" if pg else "min(CAST(d.predicted_score * 10 AS INTEGER), 9)"

    def each(column: str) -> str:
        return f"json_array_elements_text(d.{column}) AS j(value)" if pg else f"json_each(d.{column}) AS j"

    cast_column = '"cast"'  # a reserved word on both backends
    pattern = "INSERT INTO dislike_patterns (user_id, pattern_type, pattern_value, dislike_count, score_sum, last_disliked_at) SELECT d.user_id, {kind}, {value}, count(*), sum(d.predicted_score), max(d.created_at) FROM user_dislikes AS d{join} {where} GROUP BY d.user_id, {value}"
    return [
        pattern.format(kind="'total'", value="''", join="", where=""),
        pattern.format(kind="'reason'", value="d.reason", join="", where=""),
        pattern.format(kind="'genre'", value="j.value", join=f" CROSS JOIN {each('genres')}", where=""),
        pattern.format(kind="'cast'", value="j.value", join=f" CROSS JOIN {each(cast_column)}", where=""),
        pattern.format(kind="'franchise'", value="d.franchise", join="", where="WHERE d.franchise IS NOT NULL AND d.franchise <> ''"),
        "INSERT INTO daily_dislikes (day, model_version_id, reason, attributed, dislikes, score_sum) "
        f"SELECT {day}, coalesce(d.model_version_id, 0), d.reason, CASE WHEN d.recommendation_set_id IS NULL THEN 0 ELSE 1 END, "
        "count(*), sum(d.predicted_score) FROM user_dislikes AS d GROUP BY 1, 2, 3, 4",
        f"INSERT INTO daily_reason_genre (day, reason, genre, dislikes) SELECT {day}, d.reason, j.value, count(*) "
        f"FROM user_dislikes AS d CROSS JOIN {each('genres')} GROUP BY 1, 2, 3",
        f"INSERT INTO daily_score_histogram (day, model_version_id, bucket, dislikes) SELECT {day}, "
        f"coalesce(d.model_version_id, 0), {bucket}, count(*) FROM user_dislikes AS d GROUP BY 1, 2, 3",
        "INSERT INTO movie_dislike_stats (movie_id, dislikes, high_score_dislikes, score_sum, last_disliked_at) "
        f"SELECT d.movie_id, count(*), sum(CASE WHEN d.predicted_score >= {HIGH_SCORE} THEN 1 ELSE 0 END), "
        "sum(d.predicted_score), max(d.created_at) FROM user_dislikes AS d GROUP BY d.movie_id",
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
        _remove_sqlite(building)
        started = time.perf_counter()
        engine = make_engine(Settings(database_url=f"sqlite:///{building}"))
        upgrade_database(engine)
        prefill(engine, world, size, _utcnow())
        engine.dispose()
        with sqlite3.connect(building) as raw:
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        raw.close()
        building.replace(cached)
        _remove_sqlite(building)
        print(f"built {cached.name} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    work = CACHE / f"run-{size}.db"
    _remove_sqlite(work)
    shutil.copyfile(cached, work)
    return work


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def pg_database(base_url: str, world: World, size: int, rebuild: bool) -> str:
    """Return a URL whose search_path is the prefilled schema of ``size`` dislikes."""
    schema = f"bench_record_{size}"
    key = f"{head_revision()}-g{GENERATOR_VERSION}"
    url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    admin = create_engine(base_url)
    with admin.begin() as conn:
        comment = conn.execute(text("SELECT obj_description(to_regnamespace(:s), 'pg_namespace')"), {"s": schema}).scalar()
        count = conn.execute(text(f'SELECT count(*) FROM "{schema}".user_dislikes')).scalar() if comment == key else None
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
        conn.execute(text("UPDATE negative_examples SET status = 'used', used_at = now() WHERE status = 'pending'"))
        conn.execute(text("UPDATE retrain_jobs SET status = 'succeeded', active_slot = NULL, finished_at = now() WHERE active_slot = 1"))
    engine.dispose()


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# ---------------------------------------------------------------- the timed workload


def workload(world: World, n: int, seed: int) -> list[dict]:
    """Return ``n`` varied dislikes; about 30% of them follow a recorded recommendation set."""
    rng = np.random.default_rng(seed)
    draws = world.sample(rng, n * 2)
    ops, seen = [], set()
    for i in range(n * 2):
        user_id, movie_id = int(draws["user"][i]), int(draws["movie"][i])
        if (user_id, movie_id) in seen:  # a repeat would be answered as a double click
            continue
        seen.add((user_id, movie_id))
        _, title, genres, cast, franchise, _ = world.movies[movie_id - 1]
        args = {"user_id": user_id, "movie_id": movie_id, "movie_title": title, "predicted_score": float(draws["score"][i]), "reason": REASONS[draws["reason"][i]], "feedback_text": TEXTS[draws["text"][i]]}
        roll = rng.random(3)
        if roll[0] < 0.25:  # the caller sends the metadata instead of relying on the catalogue
            args.update(genres=genres, cast=cast, franchise=franchise)
        if roll[1] < 0.2:
            args["idempotency_key"] = uuid.uuid4().hex
        shown = None
        if roll[2] < 0.3:
            others = [int(m) for m in rng.choice(MOVIES, size=12, replace=False) + 1 if m != movie_id][:9]
            shown = others[:]
            shown.insert(int(rng.integers(10)), movie_id)
        ops.append({"args": args, "shown": shown})
        if len(ops) == n:
            break
    return ops


def time_calls(system: FeedbackSystem, ops: list[dict], warmup: int) -> list[float]:
    """Run every op; return the latencies in ms of ``save_dislike`` after the warm-up ones."""
    latencies, ids = [], set()
    for i, op in enumerate(ops):
        args = dict(op["args"])
        if op["shown"]:
            items = [{"movie_id": m, "rank": r, "predicted_score": args["predicted_score"] if m == args["movie_id"] else 0.5} for r, m in enumerate(op["shown"], start=1)]
            args["recommendation_set_id"] = system.record_recommendation_set(args["user_id"], items)
        started = time.perf_counter_ns()
        dislike_id = system.save_dislike(**args)
        elapsed = time.perf_counter_ns() - started
        if dislike_id in ids:
            raise RuntimeError(f"call {i} was answered as a duplicate; the workload must not repeat")
        ids.add(dislike_id)
        if i >= warmup:
            latencies.append(elapsed / 1e6)
    return latencies


def count_dislikes(system: FeedbackSystem) -> int:
    """Return how many dislikes the database holds."""
    with system.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM user_dislikes")).scalar_one()


def measure(url: str, world: World, n: int, warmup: int, seed: int) -> dict:
    """Time ``n`` save_dislike calls (after ``warmup`` untimed ones) on the database at ``url``."""
    system = FeedbackSystem.from_settings(Settings(database_url=url))
    earlier = count_dislikes(system)
    latencies = time_calls(system, workload(world, n + warmup, seed), warmup)
    system.close()
    ms = np.array(latencies)
    return {"earlier": earlier, "calls": len(ms), "median": float(np.median(ms)), "p90": float(np.percentile(ms, 90)), "p99": float(np.percentile(ms, 99)), "mean": float(ms.mean())}


# ---------------------------------------------------------------- report


def machine(pg_url: str | None) -> dict[str, str]:
    """Describe where the figures come from."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__,
        "sqlite synchronous": Settings(database_url="sqlite://").sqlite_synchronous,
    }
    if pg_url:
        engine = create_engine(pg_url)
        with engine.connect() as conn:
            info["postgresql"] = conn.execute(text("SHOW server_version")).scalar_one()
        engine.dispose()
    return info


def report(info: dict, rows: list[tuple[str, int, dict]], n: int, warmup: int) -> bool:
    """Print the machine, a markdown table and the verdicts; return whether SQLite passed."""
    print(f"save_dislike latency, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {n} timed calls after {warmup} warm-up calls per database")
    for key, value in info.items():
        print(f"- {key}: {value}")
    print()
    print("| backend | earlier dislikes | calls | median ms | p90 ms | p99 ms | mean ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for backend, _, r in rows:
        print(f"| {backend} | {r['earlier']:,} | {r['calls']} | {r['median']:.3f} | {r['p90']:.3f} | {r['p99']:.3f} | {r['mean']:.3f} |")
    print()
    passed = True
    for backend in dict.fromkeys(b for b, _, _ in rows):
        by_size = {size: r for b, size, r in rows if b == backend}
        small, large = by_size.get(min(by_size)), by_size.get(max(by_size))
        if len(by_size) > 1:
            ratio = large["median"] / small["median"]
            print(f"{backend}: median ratio {max(by_size):,} / {min(by_size):,} = {ratio:.2f}")
        if backend != "sqlite":
            continue  # the targets are for the embedded database; PostgreSQL is reported alongside
        ok_median = large["median"] <= TARGET_MEDIAN_MS
        print(f"{'PASS' if ok_median else 'FAIL'}: median at {max(by_size):,} is {large['median']:.3f} ms (target <= {TARGET_MEDIAN_MS} ms)")
        passed &= ok_median
        if len(by_size) > 1:
            ok_ratio = ratio <= TARGET_RATIO
            print(f"{'PASS' if ok_ratio else 'FAIL'}: ratio {ratio:.2f} (target <= {TARGET_RATIO})")
            passed &= ok_ratio
    return passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="timed calls per database (default 2000)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed calls first (default 200)")
    parser.add_argument("--sizes", default="10000,1000000", help="earlier dislikes, comma-separated")
    parser.add_argument("--pg", metavar="URL", help="also run on this PostgreSQL database")
    parser.add_argument("--no-sqlite", action="store_true", help="run only on PostgreSQL")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the prefilled databases")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    world = World()
    rows = []
    if not args.no_sqlite:
        for size in sizes:
            path = sqlite_database(world, size, args.rebuild)
            rows.append(("sqlite", size, measure(f"sqlite:///{path}", world, args.n, args.warmup, args.seed)))
            _remove_sqlite(path)
    if args.pg:
        for size in sizes:
            url = pg_database(args.pg, world, size, args.rebuild)
            rows.append(("postgresql", size, measure(url, world, args.n, args.warmup, args.seed)))
            tidy_pg(url)
    return 0 if report(machine(args.pg), rows, args.n, args.warmup) else 1


if __name__ == "__main__":
    sys.exit(main())
