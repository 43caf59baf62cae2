"""A small, seeded sample database for the dashboard tests (and the bench until the demo lands).

It goes through the library's own recording calls (``record_recommendation_set``,
``record_dislike``) so every aggregate is maintained exactly as in production; only the
catalogue, the model registry and one finished retrain job are inserted directly.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import insert, update

from feedback_core import FeedbackSystem
from feedback_core.db import write_transaction
from feedback_core.model import prior_model
from feedback_core.schema import model_versions, movies, retrain_jobs

HOSTILE_TITLE = '<script>window.__pwned = 1</script> **Bold** [x](javascript:alert(1)) <img src=x onerror="window.__pwned = 2">'
HOSTILE_TEXT = "# Heading\n<b>not bold</b> <script>window.__pwned = 3</script> " + " ".join(["long"] * 200)
GENRES = ["Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi", "Thriller", "Animation"]
REASON_WEIGHTS = {
    "wrong_genre": 5,
    "poor_quality": 3,
    "already_watched": 2,
    "not_interested": 4,
    "irrelevant": 1,
    "other": 1,
}


def build_sample(
    system: FeedbackSystem,
    seed: int = 7,
    users: int = 24,
    days: int = 14,
    end: datetime = datetime(2026, 11, 1, 12, 0, 0),
) -> dict:
    """Fill an empty, migrated database; return what was built (ids, counts, days)."""
    rng = random.Random(seed)
    start = end - timedelta(days=days - 1)
    catalogue = []
    for movie_id in range(1, 61):
        genres = rng.sample(GENRES, rng.randint(1, 2))
        title = HOSTILE_TITLE if movie_id == 13 else f"Film {movie_id}"
        catalogue.append(
            {
                "movie_id": movie_id,
                "title": title,
                "genres": genres,
                "cast": [f"Actor {rng.randint(1, 25)}" for _ in range(3)],
                "franchise": f"Saga {movie_id % 5}" if movie_id % 4 == 0 else None,
                "year": 1980 + movie_id % 40,
                "rating_count": 0,
                "rating_sum": 0.0,
                "like_count": 0,
                "created_at": start - timedelta(days=30),
            }
        )
    switch = start + timedelta(days=days // 2)
    with write_transaction(system.engine) as conn:
        conn.execute(insert(movies), catalogue)
        conn.execute(
            insert(model_versions),
            [
                _version(1, None, "retired", None, "initial", start - timedelta(days=20), 0.70),
                _version(2, 1, "active", 1, "threshold", switch, 0.74),
                _version(3, 2, "candidate", None, "manual", end - timedelta(hours=2), 0.76),
            ],
        )
        conn.execute(
            update(model_versions)
            .where(model_versions.c.version_id == 1)
            .values(activated_at=start - timedelta(days=20))
        )
        conn.execute(
            insert(retrain_jobs).values(
                status="succeeded",
                active_slot=None,
                trigger="manual",
                requested_by="analyst@example.com",
                created_at=end - timedelta(hours=3),
                started_at=end - timedelta(hours=3),
                finished_at=end - timedelta(hours=2),
                progress=100,
                stage="done",
                result_version_id=3,
                examples_claimed=0,
            )
        )
    # Past ratings: the positives a training run needs (4 and above count as liked).
    system.record_ratings(
        [
            (
                user_id,
                movie_id,
                rng.choice([1.0, 2.5, 3.5, 4.0, 4.5, 5.0]),
                start - timedelta(days=10, minutes=i),
            )
            for user_id in range(1, users + 1)
            for i, movie_id in enumerate(rng.sample(range(1, 61), 8))
        ]
    )
    sets = dislikes = shown = 0
    for day in range(days):
        moment = start + timedelta(days=day)
        version = 1 if moment < switch else 2
        # Version 2 is genuinely better: fewer dislikes per impression.
        p_dislike = 0.10 if version == 1 else 0.05
        for user_id in range(1, users + 1):
            # Shown before the sample's clock on its last day: a list is recorded when shown.
            at = moment + timedelta(minutes=user_id - users - 1)
            items = [
                {"movie_id": m, "predicted_score": round(rng.uniform(0.3, 0.99), 3)}
                for m in rng.sample(range(1, 61), 10)
            ]
            if user_id == 1:  # the hostile title is always on show to user 1
                items[0]["movie_id"] = 13 if all(i["movie_id"] != 13 for i in items) else items[0]["movie_id"]
            set_id = system.record_recommendation_set(
                user_id, items, model_version_id=version, source="demo", shown_at=at
            )
            sets += 1
            shown += len(items)
            for item in items:
                hostile = user_id == 1 and item["movie_id"] == 13
                if hostile or rng.random() < p_dislike:
                    reason = rng.choices(list(REASON_WEIGHTS), weights=list(REASON_WEIGHTS.values()))[0]
                    outcome = system.record_dislike(
                        created_at=at + timedelta(seconds=30),
                        user_id=user_id,
                        movie_id=item["movie_id"],
                        movie_title="",
                        recommendation_set_id=set_id,
                        predicted_score=item["predicted_score"],
                        reason="wrong_genre" if hostile else reason,
                        feedback_text=HOSTILE_TEXT if hostile else rng.choice(["", "", "meh", "seen it"]),
                    )
                    dislikes += not outcome["duplicate"]
        # A few dislikes from outside any shown list: counted, but not in any rate; every other
        # one sent without a score, which nothing then knows (in no mean error, no histogram).
        system.record_dislike(
            created_at=moment + timedelta(hours=5),
            user_id=users + 1,
            movie_id=rng.randint(1, 60),
            movie_title="",
            predicted_score=0.5 if day % 2 else None,
            reason="other",
        )
        dislikes += 1
    return {
        "start": start.date(),
        "end": end.date(),
        "switch": switch.date(),
        "sets": sets,
        "impressions": shown,
        "dislikes": dislikes,
        "users": users,
    }


def _version(version_id, parent_id, status, slot, trigger, created_at, accuracy) -> dict:
    """A registry row shaped like the ones training writes."""
    model = prior_model().as_dict()
    model["coefficients"]["genre_aversion"] -= version_id / 2
    metrics = {
        "auc": accuracy + 0.05,
        "log_loss": 0.7 - accuracy / 2,
        "accuracy": accuracy,
        "precision_at_10": accuracy / 3,
        "dislike_top10_share": 0.2 - version_id / 50,
        "held_out": 400,
    }
    if status == "candidate":
        active = {**metrics, "auc": metrics["auc"] - 0.004, "accuracy": accuracy - 0.01}
        metrics["active_on_same_holdout"] = active
        metrics["promotion"] = {"promoted": False, "reason": "not better by the margin; an analyst decides"}
    return {
        "version_id": version_id,
        "parent_id": parent_id,
        "status": status,
        "active_slot": slot,
        "trigger": trigger,
        "created_at": created_at,
        "created_by": "system" if trigger == "threshold" else "analyst@example.com",
        "activated_at": created_at if status == "active" else None,
        "settings": {},
        "weights": model,
        "metrics": metrics,
        "examples": {},
        "accuracy": accuracy,
        "note": None,
    }
