"""Recommendations from the active model version, recorded as impressions."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
from sqlalchemy import (
    JSON,
    Connection,
    DateTime,
    String,
    bindparam,
    cast,
    func,
    literal,
    null,
    select,
    union_all,
)

from feedback_core import model
from feedback_core.db import read_connection, write_transaction
from feedback_core.errors import ValidationError
from feedback_core.schema import (
    dislike_patterns,
    model_versions,
    movie_exclusions,
    movies,
    ratings,
    user_dislikes,
    user_feature_weights,
)
from feedback_core.validation import ItemIn, check_id, check_limit

CATALOG_TTL_SECONDS = 60.0  # popularity and quality are refreshed at least this often
CATALOG_CHECK_SECONDS = 5.0  # new movies from other processes are noticed within this


@dataclass
class _CachedCatalog:
    catalog: model.Catalog
    stamp: tuple
    loaded_at: float
    checked_at: float


def load_catalog(conn: Connection) -> model.Catalog:
    """Read the whole catalogue into matrices."""
    rows = conn.execute(
        select(
            movies.c.movie_id,
            movies.c.title,
            movies.c.genres,
            movies.c.cast,
            movies.c.franchise,
            movies.c.rating_count,
            movies.c.rating_sum,
        ).order_by(movies.c.movie_id)
    ).all()
    return model.build_catalog(rows)


def load_active_model(
    conn: Connection, adjustment_strength: float = 3.0
) -> tuple[int | None, model.TrainedModel]:
    """Return the active version id and its model (the prior model, with ``adjustment_strength``,
    when none is active)."""
    row = conn.execute(
        select(model_versions.c.version_id, model_versions.c.weights).where(model_versions.c.active_slot == 1)
    ).first()
    if row is None:
        return None, model.prior_model(adjustment_strength)
    return row.version_id, model.TrainedModel.from_dict(row.weights)


# One statement for everything scoring needs of one user, as rows of
# (kind, an integer, a number, a feature type, a feature value, a time, the model's weights).
_RATED, _DISLIKED, _EXCLUDED, _PATTERN, _WEIGHT, _ACTIVE = range(6)
_USER = bindparam("user_id")
# Typed NULLs in the first branch: PostgreSQL resolves each UNION's column types pairwise, and
# SQLAlchemy converts the results (SQLite's times and JSON) by the first branch's types.
_NO = {t: cast(null(), t) for t in (String, DateTime, JSON)}
_USER_STATE = union_all(
    select(
        literal(_RATED),
        ratings.c.movie_id,
        ratings.c.rating,
        _NO[String],
        _NO[String],
        _NO[DateTime],
        _NO[JSON],
    ).where(ratings.c.user_id == _USER),
    select(literal(_DISLIKED), user_dislikes.c.movie_id, *[null()] * 5).where(
        user_dislikes.c.user_id == _USER, user_dislikes.c.retracted_at.is_(None)
    ),
    select(literal(_EXCLUDED), movie_exclusions.c.movie_id, *[null()] * 5).where(
        movie_exclusions.c.user_id == _USER
    ),
    select(
        literal(_PATTERN),
        dislike_patterns.c.dislike_count,
        null(),
        dislike_patterns.c.pattern_type,
        dislike_patterns.c.pattern_value,
        dislike_patterns.c.last_disliked_at,
        null(),
    ).where(dislike_patterns.c.user_id == _USER),
    select(
        literal(_WEIGHT),
        null(),
        user_feature_weights.c.adjustment_sum,
        user_feature_weights.c.feature_type,
        user_feature_weights.c.feature_value,
        null(),
        null(),
    ).where(user_feature_weights.c.user_id == _USER),
    select(literal(_ACTIVE), model_versions.c.version_id, *[null()] * 4, model_versions.c.weights).where(
        model_versions.c.active_slot == 1
    ),
)


@dataclass
class UserState:
    """What scoring reads of one user, and the active model it scores with."""

    user_id: int
    version_id: int | None  # the active version; None before the first one
    stored_weights: dict  # the active version's stored weights ({} before the first one)
    rated: list[tuple[int, float]]  # (movie_id, rating)
    disliked: list[int]  # films disliked (not retracted)
    excluded: list[int]  # films never to show again
    patterns: list[tuple]  # (user_id, pattern_type, pattern_value, dislike_count, last_disliked_at)
    weights: list[tuple]  # (user_id, feature_type, feature_value, adjustment_sum)

    def model(self, adjustment_strength: float) -> model.TrainedModel:
        """Return the active model (before the first version, the prior model with the
        configured strength of approved adjustments; a version keeps the strength it was
        trained with)."""
        if self.version_id is None:
            return model.prior_model(adjustment_strength)
        return model.TrainedModel.from_dict(self.stored_weights)

    @property
    def liked(self) -> list[tuple[int, int]]:
        """Return (user_id, movie_id) of the films the user liked."""
        return [(self.user_id, m) for m, r in self.rated if r >= model.LIKED_RATING]

    @property
    def hidden(self) -> set[int]:
        """Return the films not to recommend: rated, disliked or excluded."""
        return {m for m, _ in self.rated} | set(self.disliked) | set(self.excluded)


def load_user_state(conn: Connection, user_id: int) -> UserState:
    """Read a user's ratings, dislikes, exclusions, dislike patterns and weights, and the active
    model, in one statement (six round trips before)."""
    state = UserState(user_id, None, {}, [], [], [], [], [])
    rows = conn.execute(_USER_STATE, {"user_id": user_id}).all()  # fetched at once, not row by row
    for kind, number, value, feature_type, feature_value, at, stored in rows:
        if kind == _RATED:
            state.rated.append((number, value))
        elif kind == _DISLIKED:
            state.disliked.append(number)
        elif kind == _EXCLUDED:
            state.excluded.append(number)
        elif kind == _PATTERN:
            state.patterns.append((user_id, feature_type, feature_value, number, at))
        elif kind == _WEIGHT:
            state.weights.append((user_id, feature_type, feature_value, value))
        else:
            state.version_id, state.stored_weights = number, stored or {}
    return state


class Recommender:
    """Recommendation operations of ``FeedbackSystem``."""

    _catalog_cache: _CachedCatalog | None = None
    _catalog_lock = threading.Lock()

    def _catalog(self, conn: Connection) -> model.Catalog:
        cached = self._catalog_cache
        now = time.monotonic()
        if cached is not None and now - cached.checked_at < CATALOG_CHECK_SECONDS:
            return cached.catalog
        stamp = tuple(conn.execute(select(func.count(), func.max(movies.c.movie_id))).one())
        if cached is not None and cached.stamp == stamp and now - cached.loaded_at < CATALOG_TTL_SECONDS:
            cached.checked_at = now
            return cached.catalog
        with self._catalog_lock:
            catalog = load_catalog(conn)
            self._catalog_cache = _CachedCatalog(catalog, stamp, now, now)
        return catalog

    def _score_user(
        self,
        conn: Connection,
        user_id: int,
        movie_rows: np.ndarray | None = None,
        state: UserState | None = None,
    ):
        catalog = self._catalog(conn)
        state = state or load_user_state(conn, user_id)
        profiles = model.build_profiles(
            catalog,
            state.liked,
            state.patterns,
            state.weights,
            self.now(),
            (self.settings.weight_min, self.settings.weight_max),
            users=[user_id],
        )
        rows = np.arange(catalog.size) if movie_rows is None else movie_rows
        users = np.full(len(rows), profiles.user_index[user_id])
        X, adjustment = model.feature_matrix(catalog, profiles, users, rows)
        scorer = state.model(self.settings.adjustment_strength)
        return catalog, state.version_id, scorer.predict(X, adjustment), state.hidden

    def score_movies(self, user_id: int, movie_ids: list[int]) -> list[dict]:
        """Score movies for a user with the active version, without recording anything."""
        user_id = check_id(user_id, "user_id")
        if not isinstance(movie_ids, (list, tuple)) or not movie_ids:
            raise ValidationError("movie_ids must be a non-empty list of movie ids", "movie_ids")
        ids = [check_id(m, f"movie_ids[{i}]") for i, m in enumerate(movie_ids)]
        with read_connection(self.engine) as conn:
            return self.score_loaded(conn, user_id, ids)

    def score_loaded(
        self, conn: Connection, user_id: int, movie_ids: list[int], state: UserState | None = None
    ) -> list[dict]:
        """Score checked movie ids like ``score_movies``, in the caller's read transaction and
        from the user's state when it was read already (``load_user_state``)."""
        catalog = self._catalog(conn)
        missing = [m for m in movie_ids if m not in catalog.index]
        if missing:
            raise ValidationError(f"movies not in the catalogue: {missing[:10]}", "movie_ids")
        rows = np.array([catalog.index[m] for m in movie_ids])
        _, version_id, scores, _ = self._score_user(conn, user_id, rows, state)
        return [
            {"movie_id": m, "predicted_score": round(float(s), 6), "model_version_id": version_id}
            for m, s in zip(movie_ids, scores)
        ]

    def recommend(self, user_id: int, k: int = 10) -> dict:
        """Rank the catalogue for a user, record the list as impressions and return it."""
        user_id = check_id(user_id, "user_id")
        k = check_limit(k, "k", 1, 100)
        with read_connection(self.engine) as conn:
            if self._catalog(conn).size == 0:
                return {
                    "recommendation_set_id": None,
                    "user_id": user_id,
                    "model_version_id": None,
                    "items": [],
                }
            catalog, version_id, scores, hidden = self._score_user(conn, user_id)
        excluded = np.array([catalog.index[m] for m in hidden if m in catalog.index], dtype=np.int64)
        best = model.top_k(scores, k, excluded)
        items = [
            ItemIn(int(catalog.movie_ids[i]), rank, round(float(scores[i]), 6))
            for rank, i in enumerate(best, start=1)
        ]
        if not items:  # every film hidden from this user (disliked, rated, excluded)
            return {
                "recommendation_set_id": None,
                "user_id": user_id,
                "model_version_id": version_id,
                "items": [],
            }
        with write_transaction(self.engine) as conn:
            set_id = self._insert_set(conn, user_id, items, version_id, "recommend", self.now(), checked=True)
        return {
            "recommendation_set_id": set_id,
            "user_id": user_id,
            "model_version_id": version_id,
            "items": [
                {
                    "movie_id": item.movie_id,
                    "title": catalog.titles[i],
                    "genres": catalog.genres[i],
                    "rank": item.rank,
                    "predicted_score": item.predicted_score,
                }
                for item, i in zip(items, best)
            ],
        }
