"""A simulated world of films and people with hidden tastes, for the demo and the simulation.

Each simulated person loves some genres and hates others; films have a hidden quality. Shown
a list, a person dislikes films that clash with their tastes (with a reason that follows from
why), rates some films they liked, and ignores the rest. Everything is deterministic for a seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

# fmt: off
GENRES = (
    "Action", "Adventure", "Animation", "Comedy", "Crime", "Documentary", "Drama", "Family",
    "Fantasy", "History", "Horror", "Music", "Mystery", "Romance", "Sci-Fi", "Thriller", "War",
    "Western",
)
FIRST = (
    "Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kara", "Liam",
    "Maya", "Nikos", "Olga", "Pablo", "Quinn", "Rosa", "Sami", "Tara", "Uma", "Victor", "Wen", "Xavi",
    "Yara", "Zane", "Amir", "Bea", "Carlos", "Dana", "Emil", "Fay", "Gus", "Hana", "Ivan", "June",
    "Kofi", "Lena", "Marco", "Nora",
)
LAST = (
    "Abbott", "Bauer", "Castillo", "Dubois", "Eriksen", "Fischer", "Garcia", "Hughes", "Ito", "Jensen",
    "Kowalski", "Laurent", "Moreau", "Novak", "Okafor", "Petrov", "Quist", "Rossi", "Sato", "Tanaka",
    "Ueda", "Varga", "Weber", "Xu", "Young", "Zhou", "Alves", "Brandt", "Costa", "Diaz", "Evans",
    "Ferreira", "Gomez", "Haddad", "Iqbal", "Jovanovic", "Kim", "Lopez", "Mendes", "Nakamura",
)
ADJECTIVES = (
    "Silent", "Broken", "Golden", "Last", "Hidden", "Crimson", "Endless", "Lost", "Savage", "Quiet",
    "Electric", "Frozen", "Midnight", "Wild", "Distant", "Burning", "Hollow", "Iron", "Velvet", "Final",
)
NOUNS = (
    "Harbor", "Kingdom", "Signal", "Garden", "Frontier", "Echo", "Empire", "River", "Machine", "Storm",
    "Promise", "Orchard", "Protocol", "Horizon", "Mirror", "Circus", "Voyage", "Citadel", "Lantern", "Tide",
)
# fmt: on
TEXTS = {
    "wrong_genre": ("Not my kind of film", "I never watch {g}", "Too much {g} for me", ""),
    "poor_quality": ("Weak script", "Bad acting", "Boring sequel", ""),
    "already_watched": ("Seen it already", "Watched it last year", ""),
    "not_interested": ("Not interested", "Meh", ""),
    "irrelevant": ("Why was this recommended?", "No idea why I got this", ""),
    "other": ("", "Just no", "Hated the ending", "Not for me tonight"),
}
PAST_RATINGS = 8  # films each person rated before the simulated days (at most: repeats are dropped)
LIST_SIZE = 10  # films in each recommendation list
# The smallest world worth simulating. Films a person rated are never recommended to them again,
# so PAST_RATINGS + LIST_SIZE films fill everyone's first list. The past ratings of MIN_USERS
# people give the initial model both liked and disliked films to learn from: with fewer, some
# seeds give it none of one kind, and it is not trained.
MIN_MOVIES = PAST_RATINGS + LIST_SIZE
MIN_USERS = 5


@dataclass
class World:
    """Films with hidden quality and people with hidden genre tastes."""

    movies: list[dict]
    quality: dict[int, float]
    tastes: dict[int, np.ndarray]  # user -> per-genre taste (-1.5 hate, 0, +1 love)
    rng: np.random.Generator

    def utility(self, user_id: int, movie: dict) -> float:
        """Return how much a person would enjoy a film (hidden from the system).

        One genre the person cannot stand spoils the film; otherwise genres average out.
        """
        tastes = self.tastes[user_id][[GENRES.index(g) for g in movie["genres"]]]
        base = tastes.min() if tastes.min() < 0 else tastes.mean()
        return float(base + 0.35 * self.quality[movie["movie_id"]])

    def respond(self, user_id: int, movie: dict) -> tuple[str | None, float | None]:
        """Return ``(dislike reason or None, rating or None)`` for one film shown to a person."""
        rng = self.rng
        u = self.utility(user_id, movie)
        if rng.random() < 0.02:
            return "already_watched", None
        p_dislike = 1.0 / (1.0 + math.exp(2.5 * u + 1.5))
        if rng.random() < p_dislike:
            taste = self.tastes[user_id]
            genre_taste = [taste[GENRES.index(g)] for g in movie["genres"]]
            if min(genre_taste) < 0:
                return ("wrong_genre" if rng.random() < 0.8 else "not_interested"), None
            if self.quality[movie["movie_id"]] < -0.5:
                return ("poor_quality" if rng.random() < 0.8 else "other"), None
            if max(genre_taste) <= 0:
                # None of the film's genres is one the person wants.
                return ("wrong_genre" if rng.random() < 0.6 else "not_interested"), None
            return str(rng.choice(["not_interested", "irrelevant", "other"], p=[0.5, 0.3, 0.2])), None
        if u > 0.3 and rng.random() < 0.35:
            rating = float(np.clip(round((3.4 + 1.2 * u + rng.normal(0, 0.4)) * 2) / 2, 1, 5))
            return None, rating
        return None, None

    def feedback_text(self, reason: str, movie: dict) -> str:
        """Return a short comment a person might write."""
        choice = str(self.rng.choice(TEXTS[reason]))
        return choice.format(g=movie["genres"][0])


def make_world(seed: int, n_movies: int = 1500, n_users: int = 300) -> World:
    """Generate the catalogue and the people."""
    rng = np.random.default_rng(seed)
    cast_pool = [f"{f} {last}" for f in FIRST for last in LAST]
    rng.shuffle(cast_pool)
    star_power = rng.pareto(2.0, len(cast_pool)) + 1
    star_p = star_power / star_power.sum()
    genre_p = rng.dirichlet(np.ones(len(GENRES)) * 2)
    movies, quality = [], {}
    franchises: list[tuple[str, list[str], list[str]]] = []
    movie_id = 1
    while len(movies) < n_movies:
        if franchises and rng.random() < 0.12:
            name, genres, core_cast = franchises[rng.integers(len(franchises))]
            number = sum(1 for m in movies if m["franchise"] == name) + 1
            title = f"{name} {number}"
            cast = core_cast[:3] + list(rng.choice(cast_pool, 2, replace=False, p=star_p))
            franchise = name
        else:
            k = int(rng.choice([1, 2, 3], p=[0.3, 0.5, 0.2]))
            genres = list(rng.choice(GENRES, k, replace=False, p=genre_p))
            cast = list(rng.choice(cast_pool, 5, replace=False, p=star_p))
            title = f"The {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
            if any(m["title"] == title for m in movies[-200:]):
                title = f"{title} ({1970 + int(rng.integers(55))})"
            franchise = None
            if rng.random() < 0.05 and len(franchises) < 60:
                franchise = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} Saga"
                franchises.append((franchise, genres, cast))
                title = f"{franchise} 1"
        movies.append(
            {
                "movie_id": movie_id,
                "title": title,
                "genres": [str(g) for g in genres],
                "cast": [str(c) for c in dict.fromkeys(cast)],
                "franchise": franchise,
                "year": 1970 + int(rng.integers(56)),
            }
        )
        quality[movie_id] = float(rng.normal(0, 1))
        movie_id += 1
    tastes = {}
    for user_id in range(1, n_users + 1):
        taste = np.zeros(len(GENRES))
        picks = rng.choice(len(GENRES), 6, replace=False)
        taste[picks[:3]] = 1.0
        taste[picks[3:]] = -1.5
        tastes[user_id] = taste
    return World(movies, quality, tastes, rng)


def seed_history(world: World, per_user: int = PAST_RATINGS) -> list[tuple[int, int, float]]:
    """Return each person's past ratings: mostly films of genres they love."""
    rng = world.rng
    by_genre: dict[str, list[dict]] = {g: [] for g in GENRES}
    for m in world.movies:
        for g in m["genres"]:
            by_genre[g].append(m)
    rows = []
    for user_id, taste in world.tastes.items():
        loved = [GENRES[i] for i in np.flatnonzero(taste > 0)]
        seen: set[int] = set()
        for i in range(per_user):
            # A small catalogue may have no film of a loved genre: then any film will do.
            pool = (by_genre[loved[i % len(loved)]] if i < per_user - 3 else None) or world.movies
            movie = pool[int(rng.integers(len(pool)))]
            if movie["movie_id"] in seen:
                continue
            seen.add(movie["movie_id"])
            u = world.utility(user_id, movie)
            rating = float(np.clip(round((3.2 + 1.3 * u + rng.normal(0, 0.5)) * 2) / 2, 1, 5))
            rows.append((user_id, movie["movie_id"], rating))
    return rows


class SimClock:
    """A clock the simulation moves forward."""

    def __init__(self, start: datetime) -> None:
        self.moment = start

    def __call__(self) -> datetime:
        return self.moment


@dataclass
class RoundResult:
    """What happened in one round (one simulated day)."""

    round: int
    impressions: int
    dislikes: int
    ratings: int

    @property
    def dislike_rate(self) -> float:
        """Return dislikes / impressions of the round."""
        return self.dislikes / self.impressions if self.impressions else 0.0


def run_round(
    system,
    world: World,
    clock: SimClock,
    users: list[int],
    feedback: bool,
    number: int,
    decide: Callable[[], None] | None = None,
    retrain: bool = True,
) -> RoundResult:
    """Show each person a list, record what they do (when ``feedback``), decide, retrain."""
    by_id = {m["movie_id"]: m for m in world.movies}
    day_start = clock.moment
    impressions = dislikes = rated = 0
    for i, user_id in enumerate(users):
        clock.moment = day_start + timedelta(seconds=int(i * 80000 / max(len(users), 1)))
        shown = system.recommend(user_id, k=LIST_SIZE)
        impressions += len(shown["items"])
        ratings = []
        for item in shown["items"]:
            movie = by_id[item["movie_id"]]
            reason, rating = world.respond(user_id, movie)
            if reason is not None:
                dislikes += 1
                if feedback:
                    system.record_dislike(
                        user_id=user_id,
                        movie_id=movie["movie_id"],
                        movie_title=movie["title"],
                        recommendation_set_id=shown["recommendation_set_id"],
                        predicted_score=item["predicted_score"],
                        reason=reason,
                        feedback_text=world.feedback_text(reason, movie),
                    )
            elif rating is not None:
                ratings.append((user_id, movie["movie_id"], rating))
        if feedback and ratings:
            rated += system.record_ratings(ratings)
    clock.moment = day_start + timedelta(hours=23)
    if feedback:
        if decide is not None:
            decide()
        if retrain:
            system.run_worker(once=True)
    clock.moment = day_start + timedelta(days=1)
    return RoundResult(number, impressions, dislikes, rated)


def _decider(system, world: World, leave_share: float, actor: str):
    """Return a callable that decides open proposals the way a careful approver would.

    An approver looks at the evidence (the user's dislikes of that feature against the films
    with it they liked): approve with at least two dislikes that outweigh the likes, reject
    where the user likes the feature at least as often, and leave ``leave_share`` in the inbox.
    """

    left: set[int] = set()  # proposals the approver chose to leave in the inbox

    def decide() -> None:
        pending = system.list_adjustments(status="proposed", limit=10_000)
        evidence: dict[int, dict] = {}
        for adjustment in sorted(pending, key=lambda a: a["adjustment_id"]):
            if adjustment["adjustment_id"] in left:
                continue
            if world.rng.random() < leave_share:
                left.add(adjustment["adjustment_id"])
                continue
            user_id = adjustment["user_id"]
            if user_id not in evidence:
                evidence[user_id] = system.get_feature_evidence(user_id)
            seen = evidence[user_id].get((adjustment["feature_type"], adjustment["feature_value"]), {})
            dislikes, likes = seen.get("dislikes", 0), seen.get("likes", 0)
            if dislikes >= 2 and dislikes > likes:
                system.approve_adjustment(adjustment["adjustment_id"], actor)
            elif likes >= dislikes:
                note = f"user liked {likes} film(s) with {adjustment['feature_value']}"
                system.reject_adjustment(adjustment["adjustment_id"], actor, note)

    return decide


def prepare_world(system, world: World, start: datetime, actor: str) -> None:
    """Load the catalogue and past ratings, and train the initial version."""
    clock = system._clock
    system.add_movies(world.movies)
    history = seed_history(world)
    offsets = world.rng.integers(0, 30 * 24 * 60, len(history))
    past = [
        (u, m, r, start - timedelta(days=30) + timedelta(minutes=int(o)))
        for (u, m, r), o in zip(history, offsets)
    ]
    system.record_ratings(past)
    if isinstance(clock, SimClock):
        clock.moment = start
    system.retrain(actor, trigger="initial")


def build_demo(
    settings,
    seed: int = 7,
    users: int = 300,
    days: int = 30,
    movies: int = 1500,
    progress: Callable[[int, str], None] = lambda n, text: None,
    now: datetime | None = None,
) -> dict:
    """Fill an empty database with a realistic history ending now; return a summary."""
    from feedback_core.db import utcnow
    from feedback_core.system import FeedbackSystem

    end = (now or utcnow()).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    clock = SimClock(start)
    system = FeedbackSystem.from_settings(settings, clock=clock)
    try:
        world = make_world(seed, movies, users)
        prepare_world(system, world, start, "demo-setup")
        progress(1, "catalogue, past ratings and the initial model")
        decide = _decider(system, world, leave_share=0.3, actor="approver@demo")
        results = []
        for day in range(days):
            active = sorted(int(u) for u in world.rng.choice(users, max(users // 6, 1), replace=False) + 1)
            # Approvers go through the inbox every third evening and the worker runs queued
            # retrains the night after; the last days' proposals stay in the inbox for a person.
            last = day == days - 1
            chosen = decide if day % 3 == 1 and not last else None
            results.append(
                run_round(system, world, clock, active, True, day + 1, chosen, retrain=day % 3 == 2 or last)
            )
            progress(1, f"day {day + 1}/{days}: dislike rate {results[-1].dislike_rate:.1%}")
        return {
            "movies": len(world.movies),
            "users": users,
            "days": days,
            "impressions": sum(r.impressions for r in results),
            "dislikes": sum(r.dislikes for r in results),
            "first_day_rate": results[0].dislike_rate,
            "last_day_rate": results[-1].dislike_rate,
            "versions": len(system.list_model_versions()),
        }
    finally:
        system.close()


def simulate(
    settings,
    rounds: int = 10,
    feedback: bool = True,
    seed: int = 7,
    users: int = 300,
    movies: int = 1500,
    report: Callable[[RoundResult], None] = lambda r: None,
) -> list[RoundResult]:
    """Run the loop for ``rounds`` rounds, every person shown one list per round."""
    from feedback_core.db import utcnow
    from feedback_core.system import FeedbackSystem

    start = utcnow().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=rounds)
    clock = SimClock(start)
    system = FeedbackSystem.from_settings(settings, clock=clock)
    try:
        world = make_world(seed, movies, users)
        prepare_world(system, world, start, "simulation")
        decide = _decider(system, world, leave_share=0.0, actor="approver@simulation")
        results = []
        everyone = list(range(1, users + 1))
        for number in range(1, rounds + 1):
            result = run_round(system, world, clock, everyone, feedback, number, decide)
            results.append(result)
            report(result)
        return results
    finally:
        system.close()
