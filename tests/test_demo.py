"""The demo and the simulation: deterministic for a seed, and feedback measurably helps.

The simulation tests run on SQLite only: they test what the learning loop does to what people
are shown, which the storage backend cannot change (every storage path they use is proven on
both backends by the other test files), and running them twice would double the slowest tests.
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pytest
from conftest import row_counts
from sqlalchemy import select, text

from feedback_core import FeedbackSystem, Settings
from feedback_core.cli import main
from feedback_core.db import make_engine, upgrade_database
from feedback_core.demo import build_demo as build
from feedback_core.demo import make_world, simulate
from feedback_core.schema import impressions, metadata, model_versions, user_dislikes

DEMO = {"seed": 7, "users": 40, "days": 3, "movies": 300}
END = datetime(2026, 11, 1, 15, 30)
SIMULATION = {"seed": 7, "users": 60, "movies": 600}


def fingerprint(system) -> dict:
    """Everything a second build must reproduce: counts, every dislike, every version."""
    with system.engine.connect() as conn:
        dislikes = conn.execute(
            select(
                user_dislikes.c.user_id,
                user_dislikes.c.movie_id,
                user_dislikes.c.reason,
                user_dislikes.c.created_at,
            ).order_by(user_dislikes.c.dislike_id)
        ).all()
        versions = conn.execute(
            select(
                model_versions.c.version_id,
                model_versions.c.status,
                model_versions.c.trigger,
                model_versions.c.weights,
            ).order_by(model_versions.c.version_id)
        ).all()
    return {
        "rows": row_counts(system),
        "dislikes": [tuple(d) for d in dislikes],
        "versions": [
            (
                v.version_id,
                v.status,
                v.trigger,
                {k: round(w, 9) for k, w in v.weights["coefficients"].items()},
            )
            for v in versions
        ],
    }


def empty_again(system, backend: str, tmp_path) -> Settings:
    """Return settings for a second, empty database (ids restart at 1)."""
    if backend == "sqlite":
        settings = Settings(database_url=f"sqlite:///{tmp_path / 'second.db'}")
        engine = make_engine(settings)
        upgrade_database(engine)
        engine.dispose()
        return settings
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables if t.name != "alembic_version")
    with system.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    return system.settings


def test_build_demo_is_deterministic_for_a_seed(make_system, backend, tmp_path):
    system = make_system()
    first = build(system.settings, now=END, **DEMO)
    first_print = fingerprint(system)
    decisions = {a["status"] for a in system.list_adjustments(status=None, limit=10_000)}
    settings = empty_again(system, backend, tmp_path)
    second = build(settings, now=END, **DEMO)
    rebuilt = system if backend == "postgresql" else FeedbackSystem.from_settings(settings)
    try:
        second_print = fingerprint(rebuilt)
    finally:
        if rebuilt is not system:
            rebuilt.close()

    assert second == first
    assert second["first_day_rate"] == first["first_day_rate"]
    assert second_print == first_print
    # What was built is what the summary says, and the loop really ran.
    counts = first_print["rows"]
    assert first["movies"] == counts["movies"] == 300
    # A sixth of the 40 people a day, 10 films each.
    assert first["impressions"] == counts["impressions"] == 3 * 6 * 10
    assert first["dislikes"] == counts["user_dislikes"] > 0
    assert 0 < first["first_day_rate"] < 1
    assert first["versions"] == counts["model_versions"] >= 2  # the initial one and threshold retrains
    assert counts["ratings"] > 0
    # Approvers decided some proposals and left the rest for a person.
    assert "proposed" in decisions and decisions & {"applied", "rejected"}


def test_a_different_seed_builds_a_different_world():
    a, b, again = make_world(7, 200, 20), make_world(8, 200, 20), make_world(7, 200, 20)
    assert a.movies == again.movies and a.quality == again.quality
    assert all((a.tastes[u] == again.tastes[u]).all() for u in a.tastes)
    assert a.movies != b.movies
    assert any((a.tastes[u] != b.tastes[u]).any() for u in a.tastes)
    assert len(a.movies) == 200 and len(a.tastes) == 20
    assert len({m["movie_id"] for m in a.movies}) == 200


def test_the_demo_command_refuses_a_database_with_data(system, capsys):
    system.add_movies([{"movie_id": 1, "title": "Already here"}])
    url = system.settings.database_url
    assert main(["--db", url, "demo", "--users", "5", "--days", "1", "--movies", "50"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["--db", url, "demo", "--if-empty"]) == 0
    assert "already has data: demo not built" in capsys.readouterr().out
    assert row_counts(system)["movies"] == 1


def _counts(path) -> dict:
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(path)) as con:
        return {
            t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("movies", "user_dislikes")
        }


def test_an_interrupted_demo_build_leaves_the_database_empty_and_the_next_builds_it(tmp_path):
    import os
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    target = tmp_path / "demo.db"
    url = f"sqlite:///{target}"
    assert main(["--db", url, "init"]) == 0
    command = [sys.executable, "-m", "feedback_core.cli", "--db", url, "demo", "--if-empty"]
    size = ["--users", "40", "--days", "30", "--movies", "300"]
    child = subprocess.Popen(command + size, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    building = tmp_path / "demo.db.building"
    deadline = time.monotonic() + 60
    # Killed once the build has written films and dislikes (its first days are done).
    while time.monotonic() < deadline and child.poll() is None:
        try:
            if any(f.exists() and _counts(f)["user_dislikes"] > 0 for f in (building, target)):
                break
        except sqlite3.OperationalError:
            pass  # its schema is not there yet
        time.sleep(0.05)
    assert child.poll() is None, child.communicate()
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert _counts(target) == {"movies": 0, "user_dislikes": 0}

    done = subprocess.run(
        command + ["--users", "20", "--days", "2", "--movies", "100"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "demo ready" in done.stdout
    counts = _counts(target)
    assert counts["movies"] == 100 and counts["user_dislikes"] > 0
    assert sorted(p.name for p in tmp_path.iterdir() if "building" in p.name) == []
    assert FeedbackSystem.from_url(url).count_rows()["movies"] == 100  # a sound database for the library


# ------------------------------------------------------------------ the simulation


def run_simulation(tmp_path, name: str, feedback: bool, rounds: int, **world):
    settings = Settings(database_url=f"sqlite:///{tmp_path / name}.db")
    engine = make_engine(settings)
    upgrade_database(engine)
    results = simulate(settings, rounds=rounds, feedback=feedback, **world)
    return settings, engine, results


def shown_by_round(engine, users: int) -> list[list[tuple[int, int]]]:
    """The (user, movie) pairs shown in each round: everyone gets one list per round, in order."""
    with engine.connect() as conn:
        shown = conn.execute(
            select(
                impressions.c.recommendation_set_id, impressions.c.user_id, impressions.c.movie_id
            ).order_by(impressions.c.recommendation_set_id, impressions.c.rank)
        ).all()
    rounds: dict[int, list] = {}
    for set_id, user, movie in shown:
        rounds.setdefault((set_id - 1) // users, []).append((user, movie))
    return [rounds[r] for r in sorted(rounds)]


def mean_utility(world, pairs) -> float:
    """How much people would enjoy what they were shown (the world's hidden truth)."""
    by_id = {m["movie_id"]: m for m in world.movies}
    return float(np.mean([world.utility(u, by_id[m]) for u, m in pairs]))


@pytest.mark.slow
def test_without_feedback_the_dislike_rate_stays_flat(tmp_path):
    # 300 people x 10 films: 3,000 impressions a round, so binomial noise (about 5% of the rate
    # for a round-to-round difference) is well inside the 15% band. With 60 people (600
    # impressions) a round differs from the first by more than 15% by chance alone.
    users = 300
    _, engine, results = run_simulation(tmp_path, "control", False, rounds=3, seed=7, users=users, movies=600)
    rates = [r.dislike_rate for r in results]
    print(
        f"\nwithout feedback ({users} people, 600 films): dislike rate per round {[f'{r:.4f}' for r in rates]}"
    )
    assert all(r.impressions == users * 10 for r in results)
    assert all(r.ratings == 0 for r in results)  # nothing the people did was recorded
    for rate in rates[1:]:
        assert abs(rate / rates[0] - 1) <= 0.15
    # Nothing was learned, so every round showed everyone exactly the same list.
    rounds = shown_by_round(engine, users)
    assert len(rounds) == 3 and rounds[0] == rounds[1] == rounds[2]
    with engine.connect() as conn:
        assert conn.execute(select(model_versions.c.version_id)).scalars().all() == [1]
    engine.dispose()


@pytest.mark.slow
def test_with_feedback_the_dislike_rate_goes_down(tmp_path):
    _, engine, results = run_simulation(tmp_path, "feedback", True, rounds=6, **SIMULATION)
    rates = [r.dislike_rate for r in results]
    world = make_world(SIMULATION["seed"], SIMULATION["movies"], SIMULATION["users"])
    utilities = [mean_utility(world, pairs) for pairs in shown_by_round(engine, SIMULATION["users"])]
    with engine.connect() as conn:
        versions = conn.execute(select(model_versions.c.version_id)).scalars().all()
    engine.dispose()
    print(
        f"\nwith feedback (60 people, 600 films): dislike rate per round {[f'{r:.4f}' for r in rates]}; "
        f"mean of the last two {np.mean(rates[-2:]):.4f}; hidden utility of what was shown "
        f"{[f'{u:.3f}' for u in utilities]}; {len(versions)} model versions"
    )
    assert all(r.impressions == SIMULATION["users"] * 10 for r in results)
    assert np.mean(rates[-2:]) < rates[0]
    # The noise-free view of the same claim: what people were shown got better for them.
    assert len(utilities) == 6
    assert np.mean(utilities[-2:]) > utilities[0]
    assert len(versions) > 1 and all(math.isfinite(r) for r in rates)
