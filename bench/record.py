"""Latency of ``save_dislike`` (the whole transaction) on databases of 10 thousand and 1 million dislikes.

Targets (issue 2): on SQLite, median at most 1 ms at 1 million earlier dislikes, and the 1-million
median at most 1.3 times the 10-thousand median measured in the same process.

    .venv/bin/python bench/record.py                    # SQLite, 10k and 1M, 2000 timed calls each
    .venv/bin/python bench/record.py -n 500 --sizes 10000
    .venv/bin/python bench/record.py --pg postgresql+psycopg://user:pw@host/db   # PostgreSQL too

The databases come from bench/prefill.py (built once, then cached); each run works on a fresh
copy of the cached SQLite file. Every size gets the same calls — varied users, movies, reasons
and scores, a third of them disliking a movie of a recommendation set recorded just before
(untimed), some with the movie's metadata or an idempotency key — in alternating blocks, so a
busy moment on the machine slows every size alike. Exit status 1 when a SQLite target is missed.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import sqlalchemy
from prefill import MOVIES, REASONS, TEXTS, World, pg_database, remove_sqlite, sqlite_database, tidy_pg
from sqlalchemy import create_engine, text

from feedback_core import FeedbackSystem, Settings

TARGET_MEDIAN_MS, TARGET_RATIO = 1.0, 1.3


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
        args = {
            "user_id": user_id,
            "movie_id": movie_id,
            "movie_title": title,
            "predicted_score": float(draws["score"][i]),
            "reason": REASONS[draws["reason"][i]],
            "feedback_text": TEXTS[draws["text"][i]],
        }
        roll = rng.random(3)
        if roll[0] < 0.25:  # the caller sends the metadata instead of relying on the catalogue
            args.update(genres=genres, cast=cast, franchise=franchise)
        if roll[1] < 0.2:
            args["idempotency_key"] = uuid.uuid4().hex
        shown = None
        if roll[2] < 0.3:
            shown = [int(m) for m in rng.choice(MOVIES, size=12, replace=False) + 1 if m != movie_id][:9]
            shown.insert(int(rng.integers(10)), movie_id)
        ops.append({"args": args, "shown": shown})
        if len(ops) == n:
            break
    return ops


def timed_call(system: FeedbackSystem, op: dict) -> tuple[int, float, float]:
    """Show the op's list if it has one (untimed), then time its save_dislike.

    Return the dislike id, the wall-clock ms and the ms of CPU this thread spent (it tells
    waiting for a core from work; on PostgreSQL it leaves out the server's share).
    """
    args = dict(op["args"])
    if op["shown"]:
        items = [
            {
                "movie_id": m,
                "rank": r,
                "predicted_score": args["predicted_score"] if m == args["movie_id"] else 0.5,
            }
            for r, m in enumerate(op["shown"], start=1)
        ]
        args["recommendation_set_id"] = system.record_recommendation_set(args["user_id"], items)
    started, cpu_started = time.perf_counter_ns(), time.thread_time_ns()
    dislike_id = system.save_dislike(**args)
    cpu = time.thread_time_ns() - cpu_started
    return dislike_id, (time.perf_counter_ns() - started) / 1e6, cpu / 1e6


def count_dislikes(system: FeedbackSystem) -> int:
    """Return how many dislikes the database holds."""
    with system.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM user_dislikes")).scalar_one()


def measure(
    urls: dict[int, str], world: World, n: int, warmup: int, seed: int, block: int = 50
) -> dict[int, dict]:
    """Time ``n`` save_dislike calls per database, after ``warmup`` untimed ones.

    Every database gets the same calls, run in alternating blocks of ``block``, so a machine
    that is busier at one moment than another slows every size alike and the ratio stays fair.
    """
    systems = {size: FeedbackSystem.from_settings(Settings(database_url=url)) for size, url in urls.items()}
    earlier = {size: count_dislikes(system) for size, system in systems.items()}
    ops = workload(world, n + warmup, seed)
    latencies: dict[int, list[float]] = {size: [] for size in systems}
    cpu_times: dict[int, list[float]] = {size: [] for size in systems}
    ids: dict[int, set[int]] = {size: set() for size in systems}
    for b, start in enumerate(range(0, len(ops), block)):
        order = list(systems) if b % 2 == 0 else list(reversed(systems))
        for size in order:
            for i in range(start, min(start + block, len(ops))):
                dislike_id, ms, cpu = timed_call(systems[size], ops[i])
                if dislike_id in ids[size]:
                    raise RuntimeError(f"call {i} was answered as a duplicate; the workload must not repeat")
                ids[size].add(dislike_id)
                if i >= warmup:
                    latencies[size].append(ms)
                    cpu_times[size].append(cpu)
    for system in systems.values():
        system.close()
    results = {}
    for size, values in latencies.items():
        ms = np.array(values)
        results[size] = {
            "earlier": earlier[size],
            "calls": len(ms),
            "median": float(np.median(ms)),
            "p90": float(np.percentile(ms, 90)),
            "p99": float(np.percentile(ms, 99)),
            "mean": float(ms.mean()),
            "cpu": float(np.median(cpu_times[size])),
        }
    return results


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
        "cpu model": cpu,
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
    print(
        f"save_dislike latency, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {n} timed calls after {warmup} "
        "warm-up calls per database, sizes interleaved in blocks of 50 calls"
    )
    for key, value in info.items():
        print(f"- {key}: {value}")
    print()
    print("| backend | earlier dislikes | calls | median ms | p90 ms | p99 ms | mean ms | CPU median ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for backend, _, r in rows:
        print(
            f"| {backend} | {r['earlier']:,} | {r['calls']} | {r['median']:.3f} | {r['p90']:.3f} | {r['p99']:.3f} | {r['mean']:.3f} | {r['cpu']:.3f} |"
        )
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
        print(
            f"{'PASS' if ok_median else 'FAIL'}: median at {max(by_size):,} is {large['median']:.3f} ms (target <= {TARGET_MEDIAN_MS} ms)"
        )
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
    load_before = os.getloadavg()[0]
    if not args.no_sqlite:
        paths = {size: sqlite_database(world, size, args.rebuild) for size in sizes}
        results = measure(
            {size: f"sqlite:///{p}" for size, p in paths.items()}, world, args.n, args.warmup, args.seed
        )
        rows += [("sqlite", size, r) for size, r in results.items()]
        for path in paths.values():
            remove_sqlite(path)
    if args.pg:
        urls = {size: pg_database(args.pg, world, size, args.rebuild) for size in sizes}
        results = measure(urls, world, args.n, args.warmup, args.seed)
        rows += [("postgresql", size, r) for size, r in results.items()]
        for url in urls.values():
            tidy_pg(url)
    info = machine(args.pg)
    info["load average (1 min) before / after"] = f"{load_before:.2f} / {os.getloadavg()[0]:.2f}"
    return 0 if report(info, rows, args.n, args.warmup) else 1


if __name__ == "__main__":
    sys.exit(main())
