"""Dashboard lookups of single rows: each bounded by an index and a limit, never a scan.

The latest dislikes, the approval inbox with its evidence, a re-ranking preview, one user's
history and the audit log. Like ``feedback_core.queries`` every function takes the
``FeedbackSystem`` and returns a DataFrame or a dict.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime, time, timedelta

import pandas as pd
from sqlalchemy import Text, and_, cast, func, literal, select, union_all

from feedback_core import policy
from feedback_core.adjustments import load_user_weights
from feedback_core.db import read_connection
from feedback_core.effects import get_adjustment_effects as get_adjustment_effects  # the page's name for it
from feedback_core.queries import time_column, to_frame, version_condition, version_label
from feedback_core.schema import (
    audit_log,
    dislike_patterns,
    feature_adjustments,
    impressions,
    movies,
    recommendation_sets,
    user_dislikes,
)


def list_latest_dislikes(system, start: date, end: date, versions=(), reasons=(), limit: int = 50):
    """Return the newest dislikes of the window with their text (walks the created_at index)."""
    where = [
        user_dislikes.c.created_at >= datetime.combine(start, time.min),
        user_dislikes.c.created_at < datetime.combine(end + timedelta(days=1), time.min),
        user_dislikes.c.retracted_at.is_(None),
    ]
    if versions:
        where.append(version_condition(user_dislikes.c.model_version_id, versions))
    if reasons:
        where.append(user_dislikes.c.reason.in_(reasons))
    columns = [
        "created_at",
        "dislike_id",
        "user_id",
        "movie_id",
        "movie_title",
        "reason",
        "predicted_score",
        "model_version_id",
        "feedback_text",
    ]
    with read_connection(system.engine) as conn:
        rows = conn.execute(
            select(*(user_dislikes.c[c] for c in columns))
            .where(*where)
            .order_by(user_dislikes.c.created_at.desc(), user_dislikes.c.dislike_id.desc())
            .limit(limit)
        ).all()
    shown = [c for c in columns if c != "model_version_id"] + ["model_version"]
    df = pd.DataFrame([(*r[:-2], r[-1], version_label(r[-2])) for r in rows], columns=shown)
    df["created_at"] = time_column(df["created_at"])
    return df


# ---------------------------------------------------------------- adjustments


def list_adjustment_inbox(
    system,
    status: str | None = "proposed",
    user_id: int | None = None,
    feature: str | None = None,
    reason: str | None = None,
    min_evidence: int = 0,
    within_days: int | None = None,
    limit: int = 200,
) -> pd.DataFrame:
    """Return adjustments, newest first, with their evidence: the user's dislikes of that feature."""
    fa, pat = feature_adjustments, dislike_patterns
    where = []
    if status:
        where.append(fa.c.status == status)
    if user_id:
        where.append(fa.c.user_id == int(user_id))
    if feature:
        where.append(
            (fa.c.feature_type if feature in ("genre", "cast", "franchise") else fa.c.feature_value)
            == feature
        )
    if reason:
        where.append(fa.c.reason == reason)
    evidence_filters = min_evidence > 0 or bool(within_days)
    if not evidence_filters:
        # Pick the newest rows first and join only those: one user's thousands of
        # adjustments are not each joined to their dislike and evidence before the limit.
        order = (fa.c.created_at.desc(), fa.c.adjustment_id.desc())
        fa = select(fa).where(*where).order_by(*order).limit(limit).subquery()
        where = []
    evidence = func.coalesce(pat.c.dislike_count, 0)
    query = (
        select(
            fa.c.adjustment_id,
            fa.c.user_id,
            fa.c.feature_type,
            fa.c.feature_value,
            fa.c.proposed_magnitude,
            fa.c.magnitude,
            fa.c.reason,
            fa.c.status,
            fa.c.created_at,
            user_dislikes.c.movie_title,
            evidence.label("evidence_dislikes"),
            pat.c.last_disliked_at,
            fa.c.decided_by,
            fa.c.decided_at,
            fa.c.note,
        )
        .select_from(fa)
        .join(user_dislikes, user_dislikes.c.dislike_id == fa.c.dislike_id)
        .outerjoin(
            pat,
            and_(
                pat.c.user_id == fa.c.user_id,
                pat.c.pattern_type == fa.c.feature_type,
                pat.c.pattern_value == fa.c.feature_value,
            ),
        )
        .where(*where)
        .order_by(fa.c.created_at.desc(), fa.c.adjustment_id.desc())
        .limit(limit)
    )
    if min_evidence > 0:
        query = query.where(evidence >= min_evidence)
    if within_days:
        query = query.where(pat.c.last_disliked_at >= system.now() - timedelta(days=within_days))
    with read_connection(system.engine) as conn:
        rows = conn.execute(query).all()
    df = to_frame(rows, [c.name for c in query.selected_columns])
    for col in ("created_at", "last_disliked_at", "decided_at"):
        df[col] = time_column(df[col])
    if df["evidence_dislikes"].dtype != "int64":  # no rows
        df["evidence_dislikes"] = df["evidence_dislikes"].astype("int64")
    return df


def has_feature(features, feature_type: str, feature_value: str) -> bool:
    """Say whether a film (a mapping with genres, cast, franchise) carries a feature value."""
    if feature_type == "genre":
        return feature_value in (features["genres"] or [])
    if feature_type == "cast":  # like the model and the proposals: the top five billed
        return feature_value in (features["cast"] or [])[:5]
    return features["franchise"] == feature_value


def rerank(candidates: pd.DataFrame, shift: float, k: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the top ``k`` before and after adding ``shift`` to the logit of films with the feature.

    ``candidates`` has ``movie_id``, ``title``, ``score`` (a probability) and ``has_feature``.
    Pure: the scoring model adds ``adjustment_strength * (weight - 1)`` per feature to the logit.
    """

    def shifted(p: float) -> float:
        p = min(max(p, 1e-9), 1 - 1e-9)
        return 1 / (1 + math.exp(-(math.log(p / (1 - p)) + shift)))

    ids = candidates["movie_id"].tolist()

    def top(scores: list[float]) -> pd.DataFrame:
        # Sorting a few dozen rows in Python costs a fraction of a DataFrame sort.
        best = sorted(range(len(ids)), key=lambda i: (-scores[i], ids[i]))[:k]
        ranked = candidates.iloc[best].reset_index(drop=True)
        return ranked.assign(score=[scores[i] for i in best], rank=range(1, len(best) + 1))

    before = candidates["score"].tolist()
    after = [
        shifted(p) if has else p for p, has in zip(before, candidates["has_feature"].tolist(), strict=True)
    ]
    return top(before), top(after)


def preview_adjustment(
    system, adjustment_id: int, magnitude: float | None = None, lists: int = 5, k: int = 10
) -> dict:
    """Re-rank the user's recent lists as if the adjustment were applied: what leaves, what enters.

    The films of the user's last ``lists`` lists (less those they disliked since) are scored
    now by the active model, then re-scored with the changed feature weight.
    """
    adj = system.get_adjustment(adjustment_id)
    user_id, kind, value = adj["user_id"], adj["feature_type"], adj["feature_value"]
    with read_connection(system.engine) as conn:
        sets = (
            select(recommendation_sets.c.recommendation_set_id)
            .where(recommendation_sets.c.user_id == user_id)
            .order_by(recommendation_sets.c.created_at.desc())
            .limit(lists)
        )
        set_ids = conn.execute(sets).scalars().all()
        disliked = (
            select(user_dislikes.c.dislike_id)
            .where(
                user_dislikes.c.user_id == user_id,
                user_dislikes.c.movie_id == movies.c.movie_id,
                user_dislikes.c.retracted_at.is_(None),
            )
            .exists()
        )
        rows = conn.execute(  # less the films the user has disliked since, in the same round trip
            select(movies.c.movie_id, movies.c.title, movies.c.genres, movies.c.cast, movies.c.franchise)
            .where(
                movies.c.movie_id.in_(
                    select(impressions.c.movie_id).where(impressions.c.recommendation_set_id.in_(set_ids))
                ),
                ~disliked,
            )
            .order_by(movies.c.movie_id)
        ).all()
        current = load_user_weights(conn, user_id).get((kind, value), 0.0)
    scores = system.score_movies(user_id, [r.movie_id for r in rows]) if rows else []
    candidates = pd.DataFrame(
        {
            "movie_id": [r.movie_id for r in rows],
            "title": [r.title for r in rows],
            "score": [s["predicted_score"] for s in scores],
            "has_feature": [has_feature(r._mapping, kind, value) for r in rows],
        },
        columns=["movie_id", "title", "score", "has_feature"],
    )
    low, high = system.settings.weight_min, system.settings.weight_max
    delta = adj["proposed_magnitude"] if magnitude is None else magnitude
    weight_before = policy.effective_weight(current, low, high)
    weight_after = policy.effective_weight(current + delta, low, high)
    active = system.get_active_model_version() or {}
    strength = active.get("adjustment_strength") or system.settings.adjustment_strength
    before, after = rerank(candidates, strength * (weight_after - weight_before), k)
    evidence = system.get_feature_evidence(user_id).get((kind, value), {})
    return {
        "user_id": user_id,
        "feature": f"{kind}:{value}",
        "lists": len(set_ids),
        "candidates": len(candidates),
        "weight_before": weight_before,
        "weight_after": weight_after,
        "evidence_dislikes": evidence.get("dislikes", 0),
        "evidence_likes": evidence.get("likes", 0),
        "last_disliked_at": evidence.get("last_disliked_at"),
        "before": before,
        "after": after,
        "leaving": before[~before["movie_id"].isin(after["movie_id"])].reset_index(drop=True),
        "entering": after[~after["movie_id"].isin(before["movie_id"])].reset_index(drop=True),
    }


# ---------------------------------------------------------------- users


def list_recent_users(system, limit: int = 30) -> list[int]:
    """Return users with the most recent dislikes (newest first, from the created_at index)."""
    with read_connection(system.engine) as conn:
        rows = conn.execute(
            select(user_dislikes.c.user_id).order_by(user_dislikes.c.created_at.desc()).limit(limit * 20)
        ).scalars()
        return list(dict.fromkeys(rows))[:limit]


def list_user_lists(system, user_id: int, sets: int = 10) -> pd.DataFrame:
    """Return a user's latest shown lists, item by item, marking what they disliked and why."""
    # The latest lists as a subquery: one round trip, not one for their ids and one for their items.
    set_ids = (
        select(recommendation_sets.c.recommendation_set_id)
        .where(recommendation_sets.c.user_id == user_id)
        .order_by(recommendation_sets.c.created_at.desc())
        .limit(sets)
    )
    with read_connection(system.engine) as conn:
        rows = conn.execute(
            select(
                impressions.c.recommendation_set_id,
                impressions.c.shown_at,
                impressions.c.model_version_id,
                impressions.c.rank,
                impressions.c.movie_id,
                movies.c.title,
                impressions.c.predicted_score,
                user_dislikes.c.reason,
                user_dislikes.c.feedback_text,
            )
            .join(movies, movies.c.movie_id == impressions.c.movie_id)
            .outerjoin(
                user_dislikes,
                and_(
                    user_dislikes.c.recommendation_set_id == impressions.c.recommendation_set_id,
                    user_dislikes.c.movie_id == impressions.c.movie_id,
                    user_dislikes.c.retracted_at.is_(None),
                ),
            )
            .where(impressions.c.recommendation_set_id.in_(set_ids))
            .order_by(
                impressions.c.shown_at.desc(), impressions.c.recommendation_set_id.desc(), impressions.c.rank
            )
        ).all()
    columns = ["recommendation_set_id", "shown_at", "rank", "movie_id", "title"]
    columns += ["predicted_score", "disliked_reason", "feedback_text", "model_version", "disliked"]
    df = pd.DataFrame(
        [(r[0], r[1], *r[3:], version_label(r[2]), r[7] is not None) for r in rows], columns=columns
    )
    df["shown_at"] = time_column(df["shown_at"])
    return df


def get_user_profile(system, user_id: int) -> dict:
    """Return one user's dislike history, patterns, effective weights and adjustments."""
    dislikes = pd.DataFrame(
        system.get_user_dislikes(user_id, limit=500),
        columns=["created_at", "dislike_id", "movie_id", "movie_title", "reason", "predicted_score"]
        + ["feedback_text", "recommendation_set_id", "genres", "cast", "franchise"],
    )
    dislikes["created_at"] = time_column(dislikes["created_at"])
    for col in ("genres", "cast"):
        dislikes[col] = [", ".join(v) if isinstance(v, list) else v for v in dislikes[col]]
    weights = pd.DataFrame(
        [
            {"feature_type": kind, "feature_value": value, "weight": weight}
            for kind, values in system.get_effective_weights(user_id).items()
            for value, weight in values.items()
        ],
        columns=["feature_type", "feature_value", "weight"],
    )
    return {
        "user_id": user_id,
        "patterns": system.get_dislike_pattern_analysis(user_id),
        "dislikes": dislikes,
        "weights": weights,
        "adjustments": list_adjustment_inbox(system, status=None, user_id=user_id, limit=500),
    }


# ---------------------------------------------------------------- audit


def _hops(column, name: str):
    """Return a column's distinct values as rows of (value, hop), hop 0 the smallest.

    ``SELECT DISTINCT`` reads every entry of the index, millions in a long-lived audit log
    (PostgreSQL has no skip scan); this recursive query asks the index for "the next value
    after" once per distinct value instead (a loose index scan).
    """
    hops = select(func.min(column).label("value"), literal(0).label("hop")).cte(name, recursive=True)
    following = select(func.min(column)).where(column > hops.c.value).scalar_subquery()
    hops = hops.union_all(select(following, hops.c.hop + 1).where(hops.c.value.is_not(None)))
    return select(hops.c.value, hops.c.hop).where(hops.c.value.is_not(None))


def list_audit_facets(system) -> dict:
    """Return the distinct actions and actors in the audit log (loose index scans)."""
    facets = {"actions": audit_log.c.action, "actors": audit_log.c.actor}
    both = union_all(  # one round trip for both
        *(
            _hops(column, f"{name}_hops").add_columns(literal(name).label("facet"))
            for name, column in facets.items()
        )
    )
    with read_connection(system.engine) as conn:
        rows = sorted(conn.execute(both).all(), key=lambda r: r[1])  # ascending, by hop
    return {name: [value for value, _, facet in rows if facet == name] for name in facets}


def list_audit(
    system,
    start: date,
    end: date,
    actor: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    limit: int = 500,
) -> pd.DataFrame:
    """Return audit records of the window, newest first."""
    where = [
        audit_log.c.at >= datetime.combine(start, time.min),
        audit_log.c.at < datetime.combine(end + timedelta(days=1), time.min),
    ]
    if actor:
        where.append(audit_log.c.actor == actor)
    if action:
        where.append(audit_log.c.action == action)
    if outcome:
        where.append(audit_log.c.outcome == outcome)
    columns = ["audit_id", "at", "actor", "action", "entity_type", "entity_id", "outcome"]
    with read_connection(system.engine) as conn:
        rows = conn.execute(
            # The details as text, decoded below in one call rather than one per row.
            select(*(audit_log.c[c] for c in columns), cast(audit_log.c.details, Text))
            .where(*where)
            .order_by(audit_log.c.at.desc(), audit_log.c.audit_id.desc())
            .limit(limit)
        ).all()
    details = json.loads("[" + ",".join(r[-1] or "{}" for r in rows) + "]")
    # One text column keeps the table flat and the CSV readable.
    records = [
        (*r[:-1], ", ".join(f"{k}={v}" for k, v in (d or {}).items()))
        for r, d in zip(rows, details, strict=True)
    ]
    df = pd.DataFrame(records, columns=[*columns, "details"])
    df["at"] = time_column(df["at"])
    return df
