"""Shared by the learning-loop tests: a small seeded catalogue with a crowd's ratings.

Everything goes through the library's own writers (``add_movies``, ``record_ratings``,
``record_dislike``) so the rating statistics and aggregates are kept as in production.
"""

from __future__ import annotations

import random
from datetime import timedelta

from feedback_core import FeedbackSystem

GENRES = {"Horror": range(1, 9), "Comedy": range(11, 19), "Drama": range(21, 29)}
HORROR = list(GENRES["Horror"])
COMEDY = list(GENRES["Comedy"])
DRAMA = list(GENRES["Drama"])
ALL_FILMS = HORROR + COMEDY + DRAMA
BLOCKBUSTER = 21  # rated by the whole crowd, 4.5 on average
POPULAR_FLOP = 28  # rated by the whole crowd, 1.5 on average
CROWD = range(100, 140)


def films() -> list[dict]:
    return [
        {
            "movie_id": m,
            "title": f"{genre} {m}",
            "genres": [genre],
            "cast": [f"Star {m % 4}"],
            "year": 2000 + m,
        }
        for genre, ids in GENRES.items()
        for m in ids
    ]


def build_world(system: FeedbackSystem, seed: int = 3) -> int:
    """Add the catalogue and the crowd's past ratings (no shown lists); return ratings stored."""
    system.add_movies(films())
    rng = random.Random(seed)
    now = system.now()
    rows = []
    for user in CROWD:
        for m in ALL_FILMS:
            if m in (BLOCKBUSTER, POPULAR_FLOP) or rng.random() < 0.25:
                base = 4.5 if m == BLOCKBUSTER else 1.5 if m == POPULAR_FLOP else 3.0 + (m % 3) / 2
                rating = min(5.0, max(1.0, base + rng.choice([-0.5, 0.0, 0.5])))
                rows.append(
                    (user, m, rating, now - timedelta(days=rng.randint(1, 20), minutes=rng.randint(0, 600)))
                )
    return system.record_ratings(rows)


def dislike(
    system: FeedbackSystem, user_id: int, movie_id: int, reason: str = "wrong_genre", **fields
) -> dict:
    """Record one dislike of a catalogue film."""
    return system.record_dislike(user_id=user_id, movie_id=movie_id, movie_title="", reason=reason, **fields)


def trained_world(system: FeedbackSystem, actor: str = "test") -> int:
    """Build the world, train the first version (activated automatically) and return its id."""
    build_world(system)
    job = system.retrain(actor)
    assert job["status"] == "succeeded", job["error"]
    return job["result_version_id"]
