"""Bulk ingestion: ``feedback-core import`` of impressions and dislikes into an SQLite file.

    .venv/bin/python bench/ingest.py                    # 1M impressions, 100k dislikes
    .venv/bin/python bench/ingest.py --impressions 2000000 --dislikes 300000

Targets (issue 6): at least 100,000 impressions/s and 30,000 dislikes/s through the whole
import (reading the CSV file, checking every row, writing rows, examples, proposals and
aggregates), and at least 0.3 of the rate of a bare ``sqlite3`` ``executemany`` of the same
rows into the same tables of a fresh database, measured in the same run. Exits 1 when a
target is missed.

Also printed, for reading the figures: the rate of a bare ``executemany`` of every row each
import wrote (the dislikes' examples, proposals, exclusions, aggregates, audit row; the shown
lists and daily counts of impressions), read back from the imported database and written into
another fresh one with the import's page cache: what a writer that only inserts rows would need.
"""

from __future__ import annotations

import argparse
import csv
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from feedback_core import FeedbackSystem
from feedback_core.importing import BULK_CACHE_KIB, IMPRESSION_KEYS

REASONS = ("not_interested", "wrong_genre", "poor_quality", "already_watched", "irrelevant", "other")
GENRES = "Drama Comedy Thriller Action Romance Horror Documentary Crime Adventure Animation".split()
START = datetime(2026, 1, 1, tzinfo=UTC)
# The tables each import writes (into a fresh database, all their rows are the import's).
WRITTEN_BY = {
    "impressions": ("recommendation_sets", "impressions", "daily_impressions"),
    "dislikes": (
        "user_dislikes",
        "negative_examples",
        "feature_adjustments",
        "movie_exclusions",
        "dislike_patterns",
        "daily_dislikes",
        "daily_reason_genre",
        "daily_score_histogram",
        "movie_dislike_stats",
        "audit_log",
        "retrain_jobs",
    ),
}


def write_files(folder: Path, n_impressions: int, n_dislikes: int, movies: int, seed: int) -> tuple:
    """Write movies.csv, impressions.csv, dislikes.csv; return the rows as the bare baseline inserts them."""
    rng = np.random.default_rng(seed)
    with (folder / "movies.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["movie_id", "title", "genres", "cast", "franchise", "year"])
        for m in range(1, movies + 1):
            g = "|".join(rng.choice(GENRES, size=2, replace=False))
            w.writerow(
                [
                    m,
                    f"Film {m}",
                    g,
                    f"Actor {m % 700}|Actor {m % 311}",
                    f"Saga {m % 50}" if m % 7 == 0 else "",
                    1950 + m % 75,
                ]
            )
    per_set = 10
    sets = n_impressions // per_set
    users = rng.integers(1, 20_000, size=sets)
    shown = [START + timedelta(seconds=int(s)) for s in np.sort(rng.integers(0, 180 * 86400, size=sets))]
    films = rng.integers(1, movies - per_set, size=sets)
    impression_rows = []
    with (folder / "impressions.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "recommendation_set_id",
                "user_id",
                "movie_id",
                "rank",
                "predicted_score",
                "model_version",
                "shown_at",
            ]
        )
        for s in range(sets):
            at = shown[s].isoformat()
            for r in range(per_set):
                score = round(float(0.95 - 0.05 * r), 3)
                row = (s + 1, int(users[s]), int(films[s]) + r, r + 1, score, "", at)
                w.writerow(row)
                impression_rows.append(row)
    picks = rng.choice(sets, size=min(n_dislikes, sets), replace=False)
    dislike_rows = []
    with (folder / "dislikes.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "user_id",
                "movie_id",
                "recommendation_set_id",
                "predicted_score",
                "reason",
                "feedback_text",
                "created_at",
            ]
        )
        for s in np.sort(picks):
            r = int(rng.integers(0, per_set))
            row = (
                int(users[s]),
                int(films[s]) + r,
                int(s) + 1,
                round(float(0.95 - 0.05 * r), 3),
                REASONS[int(rng.integers(0, len(REASONS)))],
                "",
                (shown[s] + timedelta(minutes=2)).isoformat(),
            )
            w.writerow(row)
            dislike_rows.append(row)
    return impression_rows, dislike_rows


def bare_rate(db: Path, table: str, columns: list[str], rows: list[tuple]) -> float:
    """Rows/s of one sqlite3 executemany of ``rows`` into ``table`` (same schema, same indexes)."""
    return len(rows) / bare_seconds(db, [(table, columns, rows)])


def bare_seconds(db: Path, writes: list[tuple[str, list[str], list[tuple]]], cache_kib: int = 0) -> float:
    """Seconds of one transaction of sqlite3 ``executemany`` calls, one per ``(table, columns,
    rows)``; ``cache_kib`` sets the page cache (0: SQLite's default)."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=OFF")
    if cache_kib:
        conn.execute(f"PRAGMA cache_size=-{cache_kib}")
    started = time.perf_counter()
    conn.execute("BEGIN")
    for table, columns, rows in writes:
        names = ", ".join(f'"{c}"' for c in columns)
        sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})"
        conn.executemany(sql, rows)
    conn.execute("COMMIT")
    seconds = time.perf_counter() - started
    conn.close()
    return seconds


def written_rows(db: Path, tables: tuple[str, ...]) -> list[tuple[str, list[str], list[tuple]]]:
    """Every row of ``tables`` in ``db``, as ``(table, columns, rows)``."""
    conn = sqlite3.connect(db)
    found = []
    for table in tables:
        cursor = conn.execute(f"SELECT * FROM {table}")
        found.append((table, [d[0] for d in cursor.description], cursor.fetchall()))
    conn.close()
    return found


def fresh(folder: Path, name: str) -> FeedbackSystem:
    system = FeedbackSystem.from_url(f"sqlite:///{folder / name}")
    system.init_feedback_tables()
    return system


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--impressions", type=int, default=1_000_000)
    parser.add_argument("--dislikes", type=int, default=100_000)
    parser.add_argument("--movies", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"writing {args.impressions:,} impressions and {args.dislikes:,} dislikes ...", flush=True)
        impression_rows, dislike_rows = write_files(
            folder, args.impressions, args.dislikes, args.movies, args.seed
        )

        system = fresh(folder, "import.db")
        system.import_file(folder / "movies.csv", "movies")
        imp = system.import_file(folder / "impressions.csv", "impressions")
        dis = system.import_file(folder / "dislikes.csv", "dislikes")
        assert imp.imported == len(impression_rows) and not imp.rejected, imp.as_dict()
        assert dis.imported == len(dislike_rows) and not dis.rejected, dis.as_dict()
        system.close()
        # What each import wrote, table by table: the floor of a writer that only inserts rows.
        imported_rows = {
            kind: written_rows(folder / "import.db", tables) for kind, tables in WRITTEN_BY.items()
        }

        # The baseline: the same rows, as tuples already in memory, into the same tables.
        base = fresh(folder, "bare.db")
        base.import_file(folder / "movies.csv", "movies")
        base.close()
        bare_imp = bare_rate(
            folder / "bare.db",
            "impressions",
            list(IMPRESSION_KEYS),
            [(s, u, m, r, p, True, None, t) for s, u, m, r, p, _, t in impression_rows],
        )
        bare_dis = bare_rate(
            folder / "bare.db",
            "user_dislikes",
            [
                "user_id",
                "movie_id",
                "movie_title",
                "recommendation_set_id",
                "predicted_score",
                "reason",
                "feedback_text",
                "genres",
                "cast",
                "created_at",
            ],
            [(u, m, "t", None, p, r, f, "[]", "[]", t) for u, m, _, p, r, f, t in dislike_rows],
        )
        floors = {}
        for kind, writes in imported_rows.items():
            target = fresh(folder, f"floor-{kind}.db")
            target.import_file(folder / "movies.csv", "movies")
            target.close()
            floors[kind] = bare_seconds(folder / f"floor-{kind}.db", writes, cache_kib=BULK_CACHE_KIB)
        written = {kind: sum(len(rows) for _, _, rows in writes) for kind, writes in imported_rows.items()}

    imp_rate, dis_rate = imp.imported / imp.seconds, dis.imported / dis.seconds
    print(
        f"impressions: {imp.imported:,} in {imp.seconds:.2f} s = {imp_rate:,.0f}/s; bare executemany {bare_imp:,.0f}/s; ratio {imp_rate / bare_imp:.2f}"
    )
    print(
        f"dislikes:    {dis.imported:,} in {dis.seconds:.2f} s = {dis_rate:,.0f}/s; bare executemany {bare_dis:,.0f}/s; ratio {dis_rate / bare_dis:.2f}"
    )
    for kind, summary in (("impressions", imp), ("dislikes", dis)):
        floor_rate = summary.imported / floors[kind]
        print(
            f"  {kind}: every row the import wrote ({written[kind]:,} in {len(WRITTEN_BY[kind])} tables) by bare "
            f"executemany in {floors[kind]:.2f} s = {floor_rate:,.0f} {kind}/s; import / that {summary.imported / summary.seconds / floor_rate:.2f}"
        )
    for name, rate, target, ratio in (
        ("impressions", imp_rate, 100_000, imp_rate / bare_imp),
        ("dislikes", dis_rate, 30_000, dis_rate / bare_dis),
    ):
        met = rate >= target and ratio >= 0.3
        ok = ok and met
        print(f"  {name}: {'met' if met else 'MISSED'} (target {target:,}/s and ratio >= 0.3)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
