"""Time the data functions behind each dashboard page on the demo database.

Each page of ``dashboard/app_pages/`` calls a few ``feedback_core.queries`` / ``lookups``
functions with the default filters (the last 28 days up to the last day with data), all in
one reading session (``feedback_core.db.reading``: one read transaction per page view). This
runs each page's functions the same way, without Streamlit's cache, and reports per page the
first (cold) run and the median and 95th percentile of the repeated runs (the session's
``BEGIN`` and ``COMMIT`` included), and per function its share measured inside the session.

    .venv/bin/python bench/dashboard.py                 # the default demo (built once, cached)
    .venv/bin/python bench/dashboard.py --users 60 --days 14 --movies 300   # a smaller demo
    .venv/bin/python bench/dashboard.py --db sqlite:///data/feedback.db      # any database

The demo is built with ``feedback_core.demo.build_demo`` (what ``feedback-core demo`` runs)
into ``bench/.cache/`` and reused while the schema revision and sizes match. Prints the figures
and a Markdown table row for ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from feedback_core import FeedbackSystem, Settings, lookups, queries  # noqa: E402
from feedback_core.db import head_revision, make_engine, reading, upgrade_database  # noqa: E402
from feedback_core.settings import mask_url  # noqa: E402

CACHE = HERE / ".cache"
WINDOW_DAYS = 28  # the dashboard's default window


def demo_database(users: int, days: int, movies: int, seed: int) -> str:
    """Return the URL of a cached demo database of this size (built on first use)."""
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"dashboard_demo_u{users}_d{days}_m{movies}_s{seed}_r{head_revision()}.db"
    url = f"sqlite:///{path}"
    if not path.exists():
        from feedback_core.demo import build_demo

        partial = path.with_suffix(".building")
        partial.unlink(missing_ok=True)
        settings = Settings(database_url=f"sqlite:///{partial}")
        engine = make_engine(settings)
        upgrade_database(engine)
        engine.dispose()
        print(f"building the demo database ({users} people, {days} days, {movies} films); this is done once")
        started = time.perf_counter()
        summary = build_demo(settings, seed=seed, users=users, days=days, movies=movies)
        print(f"  built in {time.perf_counter() - started:.0f} s: {summary}")
        # Everything into the file itself before it is renamed: its log (-wal) would stay behind
        # under the old name, and the renamed file would lack what the log still held.
        raw = sqlite3.connect(partial)
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        raw.close()
        partial.replace(path)
        for suffix in ("-wal", "-shm", "-writer"):
            Path(f"{partial}{suffix}").unlink(missing_ok=True)
    return url


def page_calls(system: FeedbackSystem) -> dict[str, list[tuple[str, Callable[[], object]]]]:
    """Return, per page, the data functions it calls with the dashboard's default filters.

    Time a page with ``run_page``: the dashboard runs them in one reading session.
    """
    bounds = queries.get_data_bounds(system)
    end = bounds["last_day"]
    if end is None:
        raise SystemExit("the database has no impressions or dislikes: load the demo first")
    start = max(bounds["first_day"], end - timedelta(days=WINDOW_DAYS - 1))
    window = (start, end, (), ())
    before = (start - (end - start) - timedelta(days=1), start - timedelta(days=1))
    versions = queries.list_versions(system)
    ids = list(versions["version_id"])
    active = int(versions.loc[versions["status"] == "active", "version_id"].iloc[0]) if len(ids) else None
    other = next((v for v in ids if v != active), active)
    inbox = lookups.list_adjustment_inbox(system, limit=1)
    first_adjustment = int(inbox["adjustment_id"].iloc[0]) if len(inbox) else None
    user = (lookups.list_recent_users(system, limit=1) or [1])[0]
    today = system.now().date()

    def call(fn, *args, **kwargs):
        return (fn.__name__, lambda: fn(system, *args, **kwargs))

    pages = {
        "every page": [
            call(queries.get_database_state),
            call(queries.get_data_bounds),
            call(queries.list_filter_versions),
        ],
        "overview": [
            call(queries.get_overview, *window),
            call(queries.get_latest_day_check, end),
            call(queries.list_daily_rates, *window),
            call(queries.list_version_activations),
        ],
        "reasons": [
            call(queries.list_reason_counts, *window),
            call(queries.list_reason_counts, *before, (), ()),  # the same days before, beside it
            call(queries.list_reason_trend, *window),
            call(queries.list_reason_genre, *window),
            call(queries.count_days_with_impressions, *before, ()),  # how much of them has data
            call(lookups.list_latest_dislikes, *window, limit=100),
        ],
        "errors": [
            call(queries.list_score_histogram, *window),
            call(queries.list_error_by_version, *window),
            call(queries.list_confident_mistakes, limit=15),
        ],
        "versions": [call(queries.list_versions)]
        + ([call(queries.compare_versions, other, active)] if active else []),
        "adjustments": [
            call(
                lookups.list_adjustment_inbox, status="proposed", limit=201
            ),  # as the page: one more than it shows
            call(lookups.count_adjustment_inbox, status="proposed"),  # when more than it shows wait
            # As the page asks for it: the applied last first (0013's index serves that order).
            call(lookups.list_adjustment_inbox, status="applied", limit=200, by_decision=True),
        ]
        + ([call(lookups.preview_adjustment, first_adjustment)] if first_adjustment else []),
        "retrain": [call(queries.get_retrain_status), call(queries.list_job_history, limit=50)],
        "users": [
            call(lookups.list_recent_users, limit=20),
            call(lookups.get_user_profile, user),
            call(lookups.list_user_lists, user, sets=10),
        ],
        "audit": [
            call(lookups.list_audit_facets),
            call(lookups.list_audit, today - timedelta(days=29), today, limit=1000),
        ],
    }
    return pages


def run_page(
    system: FeedbackSystem, calls: list[tuple[str, Callable[[], object]]], session: bool = True
) -> tuple[float, list[float]]:
    """Run one page's calls as the dashboard does, in one reading session; return the milliseconds
    of the whole page (opening and ending the session included) and of each call within it.

    With ``session=False`` every call opens its own read transactions (the dashboard before
    reading sessions), for comparison.
    """
    per_call = []
    started = time.perf_counter()
    with reading(system.engine) if session else contextlib.nullcontext():
        for _, fn in calls:
            began = time.perf_counter()
            fn()
            per_call.append((time.perf_counter() - began) * 1000)
    return (time.perf_counter() - started) * 1000, per_call


def measure(
    system: FeedbackSystem, calls: list[tuple[str, Callable[[], object]]], repeat: int
) -> tuple[tuple[float, float, float], list[tuple[float, float]]]:
    """Return the page's (first run, median, 95th percentile) and each call's (first, median), in ms."""
    first, first_calls = run_page(system, calls)
    totals, per_call = [], []
    for _ in range(repeat):
        total, calls_ms = run_page(system, calls)
        totals.append(total)
        per_call.append(calls_ms)
    totals.sort()
    page = (first, statistics.median(totals), totals[min(len(totals) - 1, int(len(totals) * 0.95))])
    return page, [(f, statistics.median(c)) for f, c in zip(first_calls, zip(*per_call), strict=True)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="database URL to measure (default: the cached demo)")
    parser.add_argument("--users", type=int, default=300, help="demo people (default 300)")
    parser.add_argument("--days", type=int, default=30, help="demo days (default 30)")
    parser.add_argument("--movies", type=int, default=1500, help="demo films (default 1500)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=20, help="timed calls per function (default 20)")
    args = parser.parse_args(argv)

    url = args.db or demo_database(args.users, args.days, args.movies, args.seed)
    system = FeedbackSystem.from_url(url)
    try:
        counts = system.count_rows()
        print(f"database: {mask_url(url)}")
        print(
            f"  {counts['impressions']:,} impressions, {counts['user_dislikes']:,} dislikes, "
            f"{counts['feature_adjustments']:,} adjustments, {counts['model_versions']:,} versions"
        )
        print(
            f"  {platform.platform()}, {platform.processor() or platform.machine()}, Python {platform.python_version()}"
        )
        print()
        print(f"{'page':<12} {'function':<28} {'first ms':>9} {'median ms':>10} {'p95 ms':>8}")
        totals = {}
        for page, calls in page_calls(system).items():
            (first_total, median_total, p95_total), per_call = measure(system, calls, args.repeat)
            for (name, _), (first, median) in zip(calls, per_call, strict=True):
                print(f"{page:<12} {name:<28} {first:>9.1f} {median:>10.1f}")
            totals[page] = (first_total, median_total)
            print(
                f"{page:<12} {'= page (one session)':<28} {first_total:>9.1f} {median_total:>10.1f} {p95_total:>8.1f}"
            )
        print()
        worst = max(totals, key=lambda p: totals[p][1])
        row = " | ".join(f"{p} {m:.0f}" for p, (_, m) in totals.items())
        print("Markdown row (median ms per page, data functions only, no cache):")
        print(
            f"| dashboard data | {counts['impressions']:,} impressions, {counts['user_dislikes']:,} dislikes | {row} |"
        )
        print(f"slowest page: {worst} ({totals[worst][1]:.1f} ms median)")
    finally:
        system.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
