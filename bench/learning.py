"""Benchmarks of the learning loop: training on 1 million examples, and ``recommend`` latency.

    python bench/learning.py [--examples 1000000] [--films 10000] [--calls 300]

Targets (issue 3): training on 1 million examples in at most 60 s with at most 2 GB peak
memory; ``recommend`` over a 10,000-film catalogue with a median of at most 20 ms.
Baselines measured in the same run: a bare scikit-learn ``LogisticRegression`` fit on the same
feature matrix (training), and a bare numpy scoring of the same catalogue (recommend).
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from feedback_core import FeedbackSystem, Settings  # noqa: E402
from feedback_core.demo import GENRES  # noqa: E402


def machine() -> str:
    """Describe where the figures come from (the same facts bench/record.py prints)."""
    from record import machine as machine_facts  # bench/ is on the path when run as a script

    return ", ".join(f"{key} {value}" for key, value in machine_facts(None).items())


def fill(
    path: str, films: int, users: int, ratings_per_user: int, shown: int, dislikes: int, seed: int = 1
) -> int:
    """Bulk-load a catalogue, ratings, shown lists and used negative examples; return examples."""
    system = FeedbackSystem.from_url(f"sqlite:///{path}")
    system.init_feedback_tables()
    system.close()
    rng = np.random.default_rng(seed)
    now = datetime(2026, 11, 1)
    con = sqlite3.connect(path)
    cast_pool = [f"Actor {i}" for i in range(20_000)]
    movie_genres = {}
    rows = []
    for m in range(1, films + 1):
        genres = list(rng.choice(GENRES, int(rng.integers(1, 4)), replace=False))
        cast = list(rng.choice(cast_pool, 5, replace=False))
        movie_genres[m] = (genres, cast)
        rows.append(
            (m, f"Film {m}", json.dumps(genres), json.dumps(cast), None, 2000, 0, 0.0, 0, now.isoformat(" "))
        )
    con.executemany("INSERT INTO movies VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
    ratings = {}
    for u in range(1, users + 1):
        for m in rng.choice(films, ratings_per_user, replace=False) + 1:
            ratings[(u, int(m))] = float(rng.integers(2, 11) / 2)
    con.executemany(
        "INSERT INTO ratings VALUES (?,?,?,?)",
        [
            (u, m, r, (now - timedelta(days=int(rng.integers(60)))).isoformat(" "))
            for (u, m), r in ratings.items()
        ],
    )
    # Shown lists of 10, then dislikes of some shown films with their used negative examples.
    set_rows, imp_rows = [], []
    n_sets = shown // 10
    set_users = rng.integers(1, users + 1, n_sets)
    for s in range(1, n_sets + 1):
        t = (now - timedelta(minutes=int(rng.integers(60 * 24 * 60)))).isoformat(" ")
        set_rows.append((s, int(set_users[s - 1]), None, "import", t))
        for rank, m in enumerate(rng.choice(films, 10, replace=False) + 1, start=1):
            imp_rows.append(
                (len(imp_rows) + 1, s, int(set_users[s - 1]), int(m), rank, float(rng.random()), None, t)
            )
    con.executemany(
        "INSERT INTO recommendation_sets (recommendation_set_id, user_id, model_version_id, source, created_at) "
        "VALUES (?,?,?,?,?)",
        set_rows,
    )
    con.executemany("INSERT INTO impressions VALUES (?,?,?,?,?,?,?,?)", imp_rows)
    picks = rng.choice(len(imp_rows), dislikes, replace=False)
    dis_rows, ex_rows = [], []
    for i, p in enumerate(picks, start=1):
        _, s, u, m, _, score, _, t = imp_rows[p]
        genres, cast = movie_genres[m]
        dis_rows.append(
            (
                i,
                u,
                m,
                f"Film {m}",
                s,
                None,
                score,
                "wrong_genre",
                "",
                json.dumps(genres),
                json.dumps(cast),
                None,
                None,
                t,
                None,
            )
        )
        ex_rows.append((i, i, u, m, 0.8, score, t, "used", None, None, t))
    con.executemany("INSERT INTO user_dislikes VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", dis_rows)
    con.executemany("INSERT INTO negative_examples VALUES (?,?,?,?,?,?,?,?,?,?,?)", ex_rows)
    con.commit()
    con.close()
    return len(ratings) + len(imp_rows)


def train_once(path: str) -> None:
    """Child process: run one retrain job and print its timings as JSON."""
    from feedback_core import training

    system = FeedbackSystem.from_url(f"sqlite:///{path}")
    start = time.perf_counter()
    job = system.retrain("bench")
    elapsed = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    version = system.get_model_version(job["result_version_id"]) if job["result_version_id"] else {}
    # Baseline: a bare scikit-learn fit on the same feature matrix.
    from sklearn.linear_model import LogisticRegression

    from feedback_core.db import read_connection

    with read_connection(system.engine) as conn:
        data = training.load_training_data(conn, (0.1, 2.0), None)
    X, _ = training.features(data, data.users, data.movies, data.times)
    base_start = time.perf_counter()
    LogisticRegression(max_iter=300).fit(X, data.labels, sample_weight=data.weights)
    baseline = time.perf_counter() - base_start
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "peak_mb": peak_mb,
                "status": job["status"],
                "error": job["error"],
                "examples": int(len(data.labels)),
                "baseline_fit_seconds": baseline,
                "auc": version.get("metrics", {}).get("auc"),
            }
        )
    )


def bench_training(examples: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/train.db"
        # Sized so that about ``examples`` rows become training examples: training keeps the
        # events after its time cutoff (about half), ratings >= 4 or <= 2 (two thirds of the
        # ratings), at most 300k shown-and-not-disliked films, and the dislikes.
        users = max(int(examples * 2.2) // 20, 100)
        n = fill(
            path,
            films=10_000,
            users=users,
            ratings_per_user=20,
            shown=int(examples * 0.6),
            dislikes=int(examples * 0.2),
        )
        out = subprocess.run(
            [sys.executable, __file__, "--train-child", path], capture_output=True, text=True, check=True
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["rows_loaded"] = n
        return result


def bench_recommend(films: int, calls: int) -> dict:
    from feedback_core import model
    from feedback_core.db import read_connection
    from feedback_core.recommender import load_active_model

    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/rec.db"
        fill(path, films=films, users=2_000, ratings_per_user=20, shown=20_000, dislikes=2_000)
        system = FeedbackSystem.from_settings(Settings(database_url=f"sqlite:///{path}"))
        system.retrain("bench")
        rng = np.random.default_rng(3)
        users = [int(u) for u in rng.integers(1, 2_000, calls)]
        system.recommend(users[0])  # warm the catalogue cache
        times = []
        for u in users:
            start = time.perf_counter()
            system.recommend(u, k=10)
            times.append((time.perf_counter() - start) * 1000)
        with read_connection(system.engine) as conn:
            catalog = system._catalog(conn)
            _, trained = load_active_model(conn)
        X = np.random.default_rng(0).random((catalog.size, len(model.FEATURES)))
        base = []
        for _ in range(calls):
            start = time.perf_counter()
            scores = trained.predict(X, np.zeros(catalog.size))
            np.argpartition(-scores, 10)[:10]
            base.append((time.perf_counter() - start) * 1000)
        return {
            "median_ms": statistics.median(times),
            "p90_ms": float(np.percentile(times, 90)),
            "p99_ms": float(np.percentile(times, 99)),
            "baseline_median_ms": statistics.median(base),
        }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=1_000_000)
    parser.add_argument("--films", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--train-child", help=argparse.SUPPRESS)
    parser.add_argument("--skip-recommend", action="store_true", help="run only the training benchmark")
    args = parser.parse_args()
    if args.train_child:
        train_once(args.train_child)
        return 0
    print(f"machine: {machine()}")
    if not args.skip_recommend:
        report_recommend(args.films, bench_recommend(args.films, args.calls))
    tr = bench_training(args.examples)
    ok = tr["status"] == "succeeded" and tr["seconds"] <= 60 and tr["peak_mb"] <= 2048
    ok = ok and tr["examples"] >= 0.9 * args.examples  # the data gave the examples asked for
    print(
        f"training on {tr['examples']:,} examples ({tr['rows_loaded']:,} rows loaded): {tr['seconds']:.1f} s, "
        f"peak {tr['peak_mb']:.0f} MB, status {tr['status']}, AUC {tr['auc']}; bare sklearn fit on the same "
        f"matrix {tr['baseline_fit_seconds']:.1f} s (ratio {tr['seconds'] / tr['baseline_fit_seconds']:.1f}x) -> "
        f"{'PASS' if ok else 'FAIL'} (target <= 60 s and <= 2048 MB)"
    )
    return 0


def report_recommend(films: int, rec: dict) -> None:
    """Print the recommend figures and the verdict."""
    verdict = "PASS" if rec["median_ms"] <= 20 else "FAIL"
    print(
        f"recommend over {films:,} films: median {rec['median_ms']:.1f} ms, p90 {rec['p90_ms']:.1f} ms, "
        f"p99 {rec['p99_ms']:.1f} ms; bare numpy scoring median {rec['baseline_median_ms']:.2f} ms "
        f"(ratio {rec['median_ms'] / rec['baseline_median_ms']:.0f}x) -> {verdict} (target <= 20 ms)"
    )


if __name__ == "__main__":
    sys.exit(main())
