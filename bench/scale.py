"""Pages stay fast as data grows: the dashboard's data functions at 10 million impressions.

Targets (issue 6), on SQLite and on PostgreSQL, at 1 million dislikes and 10 million impressions:
every page's data functions together at most 300 ms (the sum of each page's median), and at
least 20 times faster than the naive approach measured in the same run (bench/scale_naive.py:
the raw tables read into pandas with ``read_sql``, the same numbers computed there). Then the
dashboard server's peak memory while a browser visits every page (bench/dashboard_memory.py)
must stay under 500 MB.

    .venv/bin/python bench/scale.py                                   # SQLite, then memory
    .venv/bin/python bench/scale.py --pg postgresql+psycopg://postgres:postgres@localhost/feedback_test_c
    .venv/bin/python bench/scale.py --impressions 1000000 --dislikes 100000 --skip-memory

The PostgreSQL URL may also come from ``FEEDBACK_BENCH_PG_URL``. The databases come from
bench/scale_data.py (built once, minutes, then cached). The data functions and their arguments
are bench/dashboard.py's ``page_calls``, the list of what each page calls, run as the dashboard
runs them: each page in one reading session (``bench/dashboard.py``'s ``run_page``; with
``--no-session`` each function opens its own read transactions, as before). Each round runs
every page ``--repeat`` times and then the naive pass once, so a busy moment on the machine
slows both sides alike; the figures are medians over ``--rounds`` rounds. The naive
numbers are checked against the data functions' (they must agree: the aggregates are the raw
rows, counted ahead). Exit status 1 when a target is missed or the numbers disagree.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

from prefill import World
from scale_data import pg_scale_database, sqlite_scale_database
from scale_naive import key_numbers, naive_pages
from sqlalchemy import func, select

from feedback_core import FeedbackSystem, effects, lookups, queries
from feedback_core.schema import feature_adjustments, impressions, recommendation_sets
from feedback_core.settings import mask_url

TARGET_TOTAL_MS, TARGET_RATIO, TARGET_MEMORY_MB = 300.0, 20.0, 500.0


def bench_module(name: str):
    """Import a sibling benchmark by file (``dashboard`` alone would name the Streamlit package)."""
    spec = importlib.util.spec_from_file_location(
        f"bench_{name}", Path(__file__).resolve().parent / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure(system: FeedbackSystem, rounds: int, repeat: int, naive: bool, session: bool = True) -> dict:
    """Time every page's data functions and the naive pass, interleaved by rounds."""
    dashboard = bench_module("dashboard")
    pages = dashboard.page_calls(system)
    bounds = queries.get_data_bounds(system)
    end = bounds["last_day"]
    start = max(bounds["first_day"], end - timedelta(days=27))
    user = (lookups.list_recent_users(system, limit=1) or [1])[0]
    today = system.now().date()
    samples: dict[str, list[float]] = {}  # per page: the whole page, its session included
    call_samples: dict[tuple[str, int], list[float]] = {}  # per function, within the page's run
    cold: dict[str, tuple[float, list[float]]] = {}
    naive_s: list[dict] = []
    for page, calls in pages.items():  # the first run of each: caches cold, for the record
        cold[page] = dashboard.run_page(system, calls, session)
    for r in range(rounds):
        for page, calls in pages.items():
            for _ in range(repeat):
                total, per_call = dashboard.run_page(system, calls, session)
                samples.setdefault(page, []).append(total)
                for i, ms in enumerate(per_call):
                    call_samples.setdefault((page, i), []).append(ms)
        if naive:
            numbers, seconds = naive_pages(system.engine, start, end, user, today)
            naive_s.append(seconds)
            print(f"  round {r + 1}: naive pass {seconds['total']:.1f} s (reading {seconds['read']:.1f} s)")
    disagree = []
    if naive:
        ours = key_numbers(system, start, end, user, today)
        disagree = [k for k in ours if ours[k] != numbers[k]]
        for k in disagree:
            print(f"  DISAGREE {k}: data functions {ours[k]!r} vs raw {numbers[k]!r}"[:400])
    # On demand, for one person: the Users page's lookups and the effects of their adjustments.
    applied = lookups.list_adjustment_inbox(system, status="applied", limit=200)
    first_listed = int(applied["user_id"].min()) if len(applied) else user
    heaviest = most_active_user(system)
    per_user = {}
    for who, user_id in (("first listed", first_listed), ("most active", heaviest["user_id"])):
        for name, fn in (
            ("get_user_profile", lookups.get_user_profile),
            ("list_user_lists", lookups.list_user_lists),
            ("get_adjustment_effects", lookups.get_adjustment_effects),
        ):
            times = []
            for _ in range(max(3, rounds)):
                began = time.perf_counter()
                fn(system, user_id)
                times.append((time.perf_counter() - began) * 1000)
            per_user[(who, user_id, name)] = statistics.median(times)
    # On demand too: the Adjustments page's "Do approvals work?" and "How proposals are
    # decided" tabs, read only when opened.
    # And the Reasons page's film ranking, read when its expander is opened.
    pooled, decided, films = [], [], []
    for _ in range(max(3, rounds)):
        began = time.perf_counter()
        effects.get_pooled_adjustment_effects(system, window_days=14)
        pooled.append((time.perf_counter() - began) * 1000)
        began = time.perf_counter()
        lookups.get_decision_summary(system)
        decided.append((time.perf_counter() - began) * 1000)
        began = time.perf_counter()
        lookups.list_disliked_films(system, start, end, limit=20)
        films.append((time.perf_counter() - began) * 1000)
    per_call = {
        page: [
            (name, cold[page][1][i], statistics.median(call_samples[(page, i)]))
            for i, (name, _) in enumerate(calls)
        ]
        for page, calls in pages.items()
    }
    per_page = {page: (cold[page][0], statistics.median(samples[page])) for page in pages}
    return {
        "session": session,
        "calls": per_call,
        "pages": per_page,
        "total_ms": sum(m for _, m in per_page.values()),
        "cold_ms": sum(c for c, _ in per_page.values()),
        "naive_s": statistics.median(s["total"] for s in naive_s) if naive_s else None,
        "naive_read_s": statistics.median(s["read"] for s in naive_s) if naive_s else None,
        "disagree": disagree,
        "window": (start, end),
        "heaviest": heaviest,
        "per_user": per_user,
        "pooled_ms": statistics.median(pooled),
        "decided_ms": statistics.median(decided),
        "films_ms": statistics.median(films),
    }


def most_active_user(system: FeedbackSystem) -> dict:
    """Return the user with the most shown lists, with their impressions and applied adjustments."""
    sets = recommendation_sets
    with system.engine.connect() as conn:
        user_id = conn.execute(
            select(sets.c.user_id).group_by(sets.c.user_id).order_by(func.count().desc()).limit(1)
        ).scalar_one()
        shown = conn.execute(select(func.count()).where(impressions.c.user_id == user_id)).scalar_one()
        applied = conn.execute(
            select(func.count()).where(
                feature_adjustments.c.user_id == user_id, feature_adjustments.c.status == "applied"
            )
        ).scalar_one()
    return {"user_id": int(user_id), "impressions": int(shown), "applied": int(applied)}


def report(backend: str, url: str, result: dict, counts: dict) -> list[str]:
    """Print one backend's figures; return the targets it missed."""
    print(f"\n{backend}: {mask_url(url)}")
    print(
        f"  {counts['impressions']:,} impressions, {counts['user_dislikes']:,} dislikes, "
        f"{counts['feature_adjustments']:,} adjustments, {counts['audit_log']:,} audit records; "
        f"window {result['window'][0]} to {result['window'][1]}"
    )
    how = "one reading session per page" if result["session"] else "no session: own transactions per function"
    print(f"  {'page':<12} {'function':<28} {'cold ms':>8} {'median ms':>10}   ({how})")
    for page, calls in result["calls"].items():
        for name, cold, median in calls:
            print(f"  {page:<12} {name:<28} {cold:>8.1f} {median:>10.1f}")
        cold, median = result["pages"][page]
        print(f"  {page:<12} {'= page':<28} {cold:>8.1f} {median:>10.1f}")
    total = result["total_ms"]
    print(
        f"  all pages: {total:.1f} ms (median per page, summed); cold first runs {result['cold_ms']:.0f} ms"
    )
    h = result["heaviest"]
    print(
        f"  one user on demand (median ms); the most active is {h['user_id']} with {h['impressions']:,} "
        f"impressions and {h['applied']} applied adjustments:"
    )
    for (who, user_id, name), ms in result["per_user"].items():
        print(f"    {who:<13} {user_id:>6} {name:<24} {ms:>8.1f}")
    print(f"  approvals pooled on demand (Do approvals work?, 14 days): {result['pooled_ms']:,.0f} ms")
    print(f"  proposals by kind on demand (How proposals are decided): {result['decided_ms']:,.0f} ms")
    print(f"  films ranked on demand (Reasons, Most disliked films): {result['films_ms']:,.0f} ms")
    missed = []
    if total > TARGET_TOTAL_MS:
        missed.append(f"{backend}: all pages {total:.0f} ms > {TARGET_TOTAL_MS:.0f} ms")
    if result["naive_s"] is not None:
        ratio = result["naive_s"] * 1000 / total
        print(
            f"  naive (raw tables into pandas): {result['naive_s']:.1f} s, of which reading "
            f"{result['naive_read_s']:.1f} s; ratio {ratio:,.0f} x"
        )
        if ratio < TARGET_RATIO:
            missed.append(f"{backend}: only {ratio:.1f} x faster than naive")
        if result["disagree"]:
            missed.append(f"{backend}: numbers disagree with the raw rows: {', '.join(result['disagree'])}")
    return missed


def run_backend(backend: str, url: str, args) -> list[str]:
    """Measure one backend and report it."""
    system = FeedbackSystem.from_url(url)
    try:
        counts = system.count_rows()
        result = measure(system, args.rounds, args.repeat, not args.skip_naive, not args.no_session)
        return report(backend, url, result, counts)
    finally:
        system.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--impressions", type=int, default=10_000_000)
    parser.add_argument("--dislikes", type=int, default=1_000_000)
    parser.add_argument(
        "--pg", default=os.environ.get("FEEDBACK_BENCH_PG_URL"), help="PostgreSQL database URL"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds (each: functions, then one naive pass)")
    parser.add_argument("--repeat", type=int, default=5, help="timed calls per function and round")
    parser.add_argument("--skip-naive", action="store_true", help="time the data functions only")
    parser.add_argument("--skip-memory", action="store_true", help="do not start the dashboard server")
    parser.add_argument("--skip-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument(
        "--no-session",
        action="store_true",
        help="run each function in its own read transactions (as before reading sessions), for comparison",
    )
    parser.add_argument("--rebuild", action="store_true", help="rebuild the databases")
    args = parser.parse_args(argv)

    print(f"{platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    world = World()
    missed: list[str] = []
    path = None
    if not args.skip_sqlite or not args.skip_memory:
        path = sqlite_scale_database(world, args.dislikes, args.impressions, args.rebuild)
    if not args.skip_sqlite:
        missed += run_backend("sqlite", f"sqlite:///{path}", args)
    if args.pg:
        url = pg_scale_database(args.pg, world, args.dislikes, args.impressions, args.rebuild)
        missed += run_backend("postgresql", url, args)
    else:
        print("\npostgresql: skipped (give --pg URL or set FEEDBACK_BENCH_PG_URL)")
    if not args.skip_memory:
        from dashboard_memory import measure_memory, report_memory

        missed += report_memory(measure_memory(f"sqlite:///{path}"), TARGET_MEMORY_MB)
    print(f"\nload average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for line in missed:
        print(f"TARGET MISSED: {line}")
    if not missed:
        print("all targets met")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
