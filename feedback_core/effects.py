"""What an applied adjustment changed: one user's dislike rate of films with its feature, before and after.

Reads only this user's rows, through indexes (see ``get_adjustment_effects``); the dashboard's
Adjustments page shows it for one user at a time.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from sqlalchemy import Text, bindparam, cast, literal_column, select

from feedback_core.db import Prepared, read_connection
from feedback_core.policy import feature_keys
from feedback_core.queries import rate_fields
from feedback_core.schema import feature_adjustments, impressions, movies, recommendation_sets, user_dislikes

# A person's applied adjustments. The status is a literal: only then may the planner use the
# partial index of applied adjustments (a bound value could be any status).
APPLIED_TO_USER = (
    select(feature_adjustments)
    .where(
        feature_adjustments.c.user_id == bindparam("user_id"),
        feature_adjustments.c.status == literal_column("'applied'"),
    )
    .order_by(feature_adjustments.c.applied_at)
)
_USER_SETS = Prepared(
    select(recommendation_sets.c.recommendation_set_id, recommendation_sets.c.created_at).where(
        recommendation_sets.c.user_id == bindparam("user_id")
    )
)
# Every film of every list shown to the user: (list, film).
_SHOWN_TO_USER = (
    select(impressions.c.recommendation_set_id, impressions.c.movie_id)
    .join(
        recommendation_sets,
        recommendation_sets.c.recommendation_set_id == impressions.c.recommendation_set_id,
    )
    .where(recommendation_sets.c.user_id == bindparam("user_id"))
)
_USER_ITEMS = Prepared(_SHOWN_TO_USER)


_USER_FILMS = Prepared(
    select(
        movies.c.movie_id, cast(movies.c.genres, Text), cast(movies.c["cast"], Text), movies.c.franchise
    ).where(movies.c.movie_id.in_(_SHOWN_TO_USER.with_only_columns(impressions.c.movie_id)))
)
# The user's live dislikes of shown films, each at the time its list was shown: a dislike falls
# on the same side of an adjustment as the impression it is a share of (a list shown before an
# approval and disliked after it counts before, with its impressions). Its film's features come
# from the catalogue, as the impressions' do, never from what the client sent with the dislike.
_USER_DISLIKES = Prepared(
    select(recommendation_sets.c.created_at, user_dislikes.c.movie_id)
    .join(
        recommendation_sets,
        recommendation_sets.c.recommendation_set_id == user_dislikes.c.recommendation_set_id,
    )
    .where(
        user_dislikes.c.user_id == bindparam("user_id"),
        user_dislikes.c.retracted_at.is_(None),
        user_dislikes.c.recommendation_set_id.is_not(None),
    )
)


def _fetch_all(statement: Prepared, conn, params: dict) -> list[tuple]:
    """Run a prepared statement and return its raw driver rows."""
    cursor = statement.execute(conn, params)
    try:
        return cursor.fetchall()
    finally:
        cursor.close()


def _decode_features(rows) -> list[tuple]:
    """Return ``(genres, cast, franchise)`` of rows ending in (genres JSON text, cast JSON text, franchise).

    One ``json.loads`` of all the rows' arrays together costs a fraction of one call per value.
    """
    texts = [part for r in rows for part in (r[-3] or "[]", r[-2] or "[]")]
    decoded = json.loads("[" + ",".join(texts) + "]")
    return [(decoded[2 * i], decoded[2 * i + 1], r[-1]) for i, r in enumerate(rows)]


def _times(values: list) -> np.ndarray:
    """Return driver timestamps (datetimes, or SQLite's ISO text) as datetime64[us]."""
    return pd.to_datetime(values, format="ISO8601").to_numpy().astype("datetime64[us]")


def get_adjustment_effects(system, user_id: int) -> pd.DataFrame:
    """Return, per applied adjustment of a user, the dislike rate of films with that feature before and after.

    Reads only this user's rows, through indexes: their lists (user and time), the films of
    each list (the unique (list, film) index, without touching the impressions table), those
    films' features once each, and their dislikes. Counting is one vectorised pass per feature.
    """
    min_trials = system.settings.min_impressions_for_rate
    with read_connection(system.engine) as conn:
        applied = conn.execute(APPLIED_TO_USER, {"user_id": user_id}).all()
        if not applied:
            return pd.DataFrame(columns=["adjustment_id", "feature", "magnitude", "applied_at"])
        # A list's films are shown when the list is recorded: its created_at is their shown_at.
        # Thousands of plain rows for an active user: read straight off the driver's cursor.
        shown_sets, items, films, disliked = (
            _fetch_all(stmt, conn, {"user_id": user_id})
            for stmt in (_USER_SETS, _USER_ITEMS, _USER_FILMS, _USER_DISLIKES)
        )
    wanted = {(a.feature_type, a.feature_value) for a in applied}
    # Per wanted feature: which shown films carry it, and when each impression of them was shown.
    position = {m: i for i, m in enumerate(int(f[0]) for f in films)}
    carries = {key: np.zeros(len(films), dtype=bool) for key in wanted}
    for i, features in enumerate(_decode_features(films)):
        for key in feature_keys(*features) & wanted:
            carries[key][i] = True
    set_ids = np.array([r[0] for r in shown_sets], dtype=np.int64)
    order = np.argsort(set_ids)
    set_times = _times([r[1] for r in shown_sets])[order]
    set_ids = set_ids[order]
    item_sets = np.fromiter((r[0] for r in items), dtype=np.int64, count=len(items))
    item_films = np.fromiter((position[r[1]] for r in items), dtype=np.int64, count=len(items))
    item_times = set_times[np.searchsorted(set_ids, item_sets)] if len(items) else set_times[:0]
    shown_times = {key: np.sort(item_times[mask[item_films]]) for key, mask in carries.items()}
    every_shown = np.sort(item_times)
    # A dislike of a film its lists never showed is a share of no impression: left out.
    disliked = [d for d in disliked if d[1] in position]
    dislike_times = _times([d[0] for d in disliked])
    dislike_films = np.fromiter((position[d[1]] for d in disliked), dtype=np.int64, count=len(disliked))
    disliked_times = {key: np.sort(dislike_times[mask[dislike_films]]) for key, mask in carries.items()}
    records = []
    for adj in applied:
        at = adj.applied_at or adj.decided_at
        key = (adj.feature_type, adj.feature_value)
        moment = np.datetime64(at, "us")
        shown_before = int(np.searchsorted(shown_times[key], moment, side="left"))
        disliked_before = int(np.searchsorted(disliked_times[key], moment, side="left"))
        all_before = int(np.searchsorted(every_shown, moment, side="left"))
        all_after = len(every_shown) - all_before
        counts = {
            "impressions_before": shown_before,
            "impressions_after": len(shown_times[key]) - shown_before,
            "dislikes_before": disliked_before,
            "dislikes_after": len(disliked_times[key]) - disliked_before,
        }
        row = {
            "adjustment_id": adj.adjustment_id,
            "feature": f"{adj.feature_type}:{adj.feature_value}",
            "magnitude": adj.magnitude,
            "applied_at": pd.Timestamp(at),
            "decided_by": adj.decided_by,
            **counts,
            # Exposure: the share of the user's impressions that carried the feature. A
            # de-emphasis that works shows here first, as the rate's impressions dwindle.
            "exposure_before": shown_before / all_before if all_before else None,
            "exposure_after": (counts["impressions_after"] / all_after) if all_after else None,
        }
        for side in ("before", "after"):
            rate = rate_fields(counts[f"dislikes_{side}"], counts[f"impressions_{side}"], min_trials)
            row |= {
                f"rate_{side}": rate["rate"],
                f"ci_low_{side}": rate["ci_low"],
                f"ci_high_{side}": rate["ci_high"],
                f"enough_{side}": rate["enough"],
            }
        records.append(row)
    return pd.DataFrame(records)
