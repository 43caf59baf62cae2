"""Dashboard lookups of single rows: each bounded by an index and a limit, never a scan.

The latest dislikes, the approval inbox with its evidence, a re-ranking preview, one user's
history and the audit log. Like ``feedback_core.queries`` every function takes the
``FeedbackSystem`` and returns a DataFrame or a dict.
"""

from __future__ import annotations

import functools
import json
import math
from datetime import date, datetime, time, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import (
    Select,
    Text,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    union_all,
)

from feedback_core import policy
from feedback_core.adjustments import load_user_weights
from feedback_core.catalog import LIKED_RATING
from feedback_core.db import format_ts, likely, read_connection
from feedback_core.effects import get_adjustment_effects as get_adjustment_effects  # the page's name for it
from feedback_core.frames import as_column, frame, to_frame
from feedback_core.queries import rate_fields, version_condition, version_label
from feedback_core.recommender import load_user_state
from feedback_core.schema import (
    audit_log,
    dislike_patterns,
    feature_adjustments,
    impressions,
    known_score,
    movies,
    ratings,
    recommendation_sets,
    user_dislikes,
    user_feature_weights,
    withdrawn,
)
from feedback_core.settings import default_reason_policy
from feedback_core.validation import check_id, check_limit


def list_latest_dislikes(system, start: date, end: date, versions=(), reasons=(), limit: int = 50):
    """Return the newest dislikes of the window with their text (walks the created_at index)."""
    where = _latest_dislikes_where(start, end, versions, reasons)
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
            select(
                *(
                    known_score(user_dislikes) if c == "predicted_score" else user_dislikes.c[c]
                    for c in columns
                )
            )
            .where(*where)
            .order_by(user_dislikes.c.created_at.desc(), user_dislikes.c.dislike_id.desc())
            .limit(limit)
        ).all()
    shown = [c for c in columns if c != "model_version_id"] + ["model_version"]
    return to_frame([(*r[:-2], r[-1], version_label(r[-2])) for r in rows], shown, {"created_at": "time"})


DISLIKED_FILMS_READ = 50_000  # the newest dislikes a window's film ranking reads, at most


def _latest_dislikes_where(start: date, end: date, versions, reasons) -> list:
    """The conditions of the window's standing dislikes (by the day each was made)."""
    where = [
        user_dislikes.c.created_at >= datetime.combine(start, time.min),
        user_dislikes.c.created_at < datetime.combine(end + timedelta(days=1), time.min),
        user_dislikes.c.retracted_at.is_(None),
    ]
    if versions:
        where.append(version_condition(user_dislikes.c.model_version_id, versions))
    if reasons:
        where.append(user_dislikes.c.reason.in_(reasons))
    return where


def list_disliked_films(
    system, start: date, end: date, versions=(), reasons=(), limit: int = 20, read: int = DISLIKED_FILMS_READ
) -> dict:
    """Return the films disliked most in the window: which films cause the dislikes this week.

    ``films``: per film (``limit`` of them, most dislikes first), its dislikes, their share of
    the window's, the reason given most with how many gave it, the mean predicted score of those
    whose score is known, its title and genres. Counts, not rates: no per-film count of
    impressions is kept, so a film shown more often collects more dislikes. ``counted``: the
    dislikes ranked; ``capped``: True when the window held more than ``read``, and only its
    newest ``read`` were ranked (the page says so: a window's ranking reads its dislikes,
    newest first through the created_at index, and stops there).
    """
    limit = check_limit(limit)
    where = _latest_dislikes_where(start, end, versions, reasons)
    d = user_dislikes.c
    newest_first = (d.created_at.desc(), d.dislike_id.desc())
    newest = (
        select(d.movie_id, d.reason, known_score(user_dislikes))
        .where(*where)
        .order_by(*newest_first)
        .limit(int(read))
        .subquery()
    )
    with read_connection(system.engine) as conn:
        groups = conn.execute(
            select(
                newest.c.movie_id,
                newest.c.reason,
                func.count(),
                func.sum(newest.c.predicted_score),
                func.count(newest.c.predicted_score),
            ).group_by(newest.c.movie_id, newest.c.reason)
        ).all()
        per_film: dict[int, list] = {}
        for movie_id, reason, n, score_sum, scored in groups:
            film = per_film.setdefault(int(movie_id), [0, {}, 0.0, 0])
            film[0] += int(n)
            film[1][reason] = int(n)
            film[2] += float(score_sum or 0.0)
            film[3] += int(scored)
        counted = sum(f[0] for f in per_film.values())
        # Capped only when the window holds more than were read (exactly ``read``: all of them).
        more = counted >= read and (
            conn.execute(
                select(d.dislike_id).where(*where).order_by(*newest_first).offset(int(read)).limit(1)
            ).first()
            is not None
        )
        top = sorted(per_film.items(), key=lambda item: (-item[1][0], item[0]))[:limit]
        facts = {
            int(m): (title, genres)
            for m, title, genres in conn.execute(
                select(movies.c.movie_id, movies.c.title, movies.c.genres).where(
                    movies.c.movie_id.in_([m for m, _ in top])
                )
            )
        }
    rows = []
    for movie_id, (n, by_reason, score_sum, scored) in top:
        reason, given = min(by_reason.items(), key=lambda item: (-item[1], item[0]))
        title, genres = facts.get(movie_id, ("", []))
        rows.append(
            (
                movie_id,
                title,
                n,
                n / counted,
                reason,
                given,
                score_sum / scored if scored else None,
                ", ".join(genres or []),
            )
        )
    columns = ["movie_id", "title", "dislikes", "share", "top_reason", "top_reason_dislikes"]
    columns += ["mean_predicted_score", "genres"]
    return {"films": to_frame(rows, columns), "counted": counted, "capped": bool(more)}


# ---------------------------------------------------------------- adjustments


_INBOX_COLUMNS = ["adjustment_id", "user_id", "feature_type", "feature_value", "proposed_magnitude"]
_INBOX_COLUMNS += ["magnitude", "reason", "status", "created_at", "movie_title", "evidence_dislikes"]
_INBOX_COLUMNS += ["last_disliked_at", "decided_by", "decided_at", "note"]
# The person's weight for the feature now, and (in the inbox of proposals; else None) how many
# proposals of that feature wait for them.
_INBOX_COLUMNS += ["weight_now", "waiting_for_feature"]
_INBOX_DTYPES = {
    "created_at": "time",
    "last_disliked_at": "time",
    "decided_at": "time",
    "evidence_dislikes": "int64",
    "weight_now": "float64",
}


def list_adjustment_inbox(
    system,
    status: str | None = "proposed",
    user_id: int | None = None,
    feature: str | None = None,
    reason: str | None = None,
    min_evidence: int = 0,
    within_days: int | None = None,
    limit: int = 200,
    by_decision: bool = False,
    oldest_first: bool = False,
) -> pd.DataFrame:
    """Return adjustments, newest first (``by_decision``: latest decided first; ``oldest_first``:
    the proposals waiting longest first, as a backlog is worked through), with their evidence:
    the user's dislikes of that feature."""
    params, shape = _inbox_params(system, status, user_id, feature, reason, min_evidence, within_days)
    # Decided last first: the applied ones have an index in that order.
    query = _inbox_statement(
        *shape,
        "applied" if by_decision and status == "applied" else bool(by_decision),
        bool(oldest_first) and not by_decision,
    )
    with read_connection(system.engine) as conn:
        rows = conn.execute(query, params | {"limit": int(limit)}).all()
        # How many of a feature wait is counted for the proposals only (the inbox): it reads
        # each listed person's proposals (19 ms for 200 rows at 2 million adjustments).
        counting = status == "proposed"
        context = _same_feature(conn, {(r.user_id, r.feature_type, r.feature_value) for r in rows}, counting)
    low, high = system.settings.weight_min, system.settings.weight_max
    rows = [
        (*r, policy.effective_weight(applied, low, high), waiting if counting else None)
        for r in rows
        for applied, waiting in [context.get((r.user_id, r.feature_type, r.feature_value), (0.0, 0))]
    ]
    return to_frame(rows, _INBOX_COLUMNS, _INBOX_DTYPES)


def _same_feature(
    conn, pairs: set[tuple[int, str, str]], count_waiting: bool = True
) -> dict[tuple[int, str, str], tuple[float, int]]:
    """Return, per (user, feature type, value), the sum of its applied adjustments and how many
    of its proposals wait (0 unless ``count_waiting``): one approval of several waiting for one
    feature applies only its own step, and the next one starts from where it left the weight."""
    if not pairs:
        return {}
    fa, w = feature_adjustments.c, user_feature_weights.c
    # Every row of these people, each person's read once through an index on user_id (per
    # pair, or as row values, read a person's rows once a feature: 50-180 ms for 200 rows at
    # 2 million adjustments); the pairs not shown are dropped here. Only the proposals are
    # counted: counting the rejected ones too read four times as many rows (90 ms on
    # PostgreSQL); those are counted for the proposals picked (``count_rejected``).
    users = sorted({user for user, _, _ in pairs})
    applied = conn.execute(
        select(w.user_id, w.feature_type, w.feature_value, w.adjustment_sum).where(w.user_id.in_(users))
    ).all()
    waiting = (
        conn.execute(
            select(fa.user_id, fa.feature_type, fa.feature_value, func.count())
            .where(fa.user_id.in_(users), fa.status == literal_column("'proposed'"))
            .group_by(fa.user_id, fa.feature_type, fa.feature_value)
        ).all()
        if count_waiting
        else []
    )
    found = {(r[0], r[1], r[2]): [float(r[3]), 0] for r in applied if (r[0], r[1], r[2]) in pairs}
    for user, kind, value, n in waiting:
        if (user, kind, value) in pairs:
            found.setdefault((user, kind, value), [0.0, 0])[1] = int(n)
    return {key: tuple(v) for key, v in found.items()}


def count_rejected(system, adjustment_ids) -> dict[int, int]:
    """Return, per proposal, how many proposals of the same person and feature an approver
    rejected (a proposal withdrawn with its retracted dislike is no rejection): a feature judged
    once before for the person is worth a look before approving it now. One statement."""
    ids = sorted({check_id(i, "adjustment id") for i in adjustment_ids})
    if not ids:
        return {}
    fa = feature_adjustments
    picked = fa.alias("picked")
    statement = (
        select(picked.c.adjustment_id, func.count(fa.c.adjustment_id))
        .select_from(
            picked.outerjoin(
                fa,
                and_(
                    fa.c.user_id == picked.c.user_id,
                    fa.c.feature_type == picked.c.feature_type,
                    fa.c.feature_value == picked.c.feature_value,
                    fa.c.status == literal_column("'rejected'"),
                    ~withdrawn(fa),
                ),
            )
        )
        .where(picked.c.adjustment_id.in_(ids))
        .group_by(picked.c.adjustment_id)
    )
    with read_connection(system.engine) as conn:
        return {int(i): int(n) for i, n in conn.execute(statement).all()}


def _inbox_params(system, status, user_id, feature, reason, min_evidence, within_days) -> tuple[dict, tuple]:
    """Return the inbox's bound values and the shape of its statement (which filters it has)."""
    # A feature type or value, in any case ("horror" finds Horror, "Genre" every genre).
    exact = feature.strip() if feature else None
    feature = exact.lower() if exact else None
    params = {"status": status, "user_id": int(user_id) if user_id else None, "feature": feature}
    params |= {"feature_exact": exact, "reason": reason, "min_evidence": min_evidence}
    if within_days:
        params["since"] = system.now() - timedelta(days=within_days)
    by_type = feature in policy.FEATURE_TYPES if feature else None
    return params, (bool(status), bool(user_id), by_type, bool(reason), min_evidence > 0, bool(within_days))


@functools.lru_cache(maxsize=64)
def _inbox_statement(
    status: bool,
    user: bool,
    by_type: bool | None,
    reason: bool,
    min_evidence: bool,
    within: bool,
    by_decision: bool | str = False,
    oldest_first: bool = False,
) -> Select:
    """Build the inbox's statement for one combination of filters, their values bound later
    (building it costs more than running it)."""
    fa, pat = feature_adjustments, dislike_patterns
    if by_decision == "applied":
        # The status as a literal, not a bound value: only then may the planner read the
        # applied ones in the order they were decided, from their partial index (a bound value
        # could be any status); and said to match most rows, or SQLite reads them all by
        # status and sorts them.
        where = _inbox_filters(False, user, by_type, reason)
        where.append(likely(fa.c.status == literal_column("'applied'")))
    else:
        where = _inbox_filters(status, user, by_type, reason)

    def newest(t):
        first = t.c.decided_at if by_decision else t.c.created_at
        if oldest_first:
            return (first.asc(), t.c.adjustment_id.asc())
        return (first.desc(), t.c.adjustment_id.desc())

    if not (min_evidence or within):
        # Pick the newest rows first and join only those: one user's thousands of
        # adjustments are not each joined to their dislike and evidence before the limit.
        fa = select(fa).where(*where).order_by(*newest(fa)).limit(bindparam("limit")).subquery()
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
    )
    query = _evidence_join(query, fa).where(*where).order_by(*newest(fa)).limit(bindparam("limit"))
    if min_evidence:
        query = query.where(evidence >= bindparam("min_evidence"))
    if within:
        query = query.where(pat.c.last_disliked_at >= bindparam("since"))
    return query


def _inbox_filters(status: bool, user: bool, by_type: bool | None, reason: bool) -> list:
    """The inbox's conditions on the adjustments themselves, their values bound later."""
    fa = feature_adjustments
    where = []
    if status:
        where.append(fa.c.status == bindparam("status"))
    if user:
        where.append(fa.c.user_id == bindparam("user_id"))
    if by_type:
        where.append(fa.c.feature_type == bindparam("feature"))
    elif by_type is not None:
        # (lower() folds every letter on both backends: feedback_core.db gives SQLite one.)
        where.append(
            or_(
                fa.c.feature_value == bindparam("feature_exact"),
                func.lower(fa.c.feature_value) == bindparam("feature"),
            )
        )
    if reason:
        where.append(fa.c.reason == bindparam("reason"))
    return where


def _evidence_join(query: Select, fa=feature_adjustments) -> Select:
    """``query`` over the adjustments (``fa``: the table or a subquery of it) joined to the
    evidence: the user's pattern of the feature."""
    pat = dislike_patterns
    return query.outerjoin(
        pat,
        and_(
            pat.c.user_id == fa.c.user_id,
            pat.c.pattern_type == fa.c.feature_type,
            pat.c.pattern_value == fa.c.feature_value,
        ),
    )


INBOX_COUNT_CAP = 100_000  # counting the inbox stops here: "100,000 or more" is answer enough


def count_adjustment_inbox(
    system,
    status: str | None = "proposed",
    user_id: int | None = None,
    feature: str | None = None,
    reason: str | None = None,
    min_evidence: int = 0,
    within_days: int | None = None,
    cap: int = INBOX_COUNT_CAP,
) -> int:
    """Count what ``list_adjustment_inbox`` would list without its limit, up to ``cap``."""
    params, shape = _inbox_params(system, status, user_id, feature, reason, min_evidence, within_days)
    with read_connection(system.engine) as conn:
        return conn.execute(_inbox_count_statement(*shape), params | {"cap": int(cap)}).scalar_one()


@functools.lru_cache(maxsize=64)
def _inbox_count_statement(
    status: bool, user: bool, by_type: bool | None, reason: bool, min_evidence: bool, within: bool
) -> Select:
    fa, pat = feature_adjustments, dislike_patterns
    query = select(fa.c.adjustment_id).select_from(fa)
    if min_evidence or within:
        query = _evidence_join(query)
    query = query.where(*_inbox_filters(status, user, by_type, reason))
    if min_evidence:
        query = query.where(func.coalesce(pat.c.dislike_count, 0) >= bindparam("min_evidence"))
    if within:
        query = query.where(pat.c.last_disliked_at >= bindparam("since"))
    return select(func.count()).select_from(query.limit(bindparam("cap")).subquery())


def has_feature(features, feature_type: str, feature_value: str) -> bool:
    """Say whether a film (a mapping with genres, cast, franchise) carries a feature value."""
    if feature_type == "genre":
        return feature_value in (features["genres"] or [])
    if feature_type == "cast":  # like the model and the proposals: the top five billed
        return feature_value in (features["cast"] or [])[: policy.TOP_CAST]
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
        ranked = _take(candidates, best)
        # The scores typed as assigning their list made them (a float column when empty).
        ranked["score"] = as_column([scores[i] for i in best]) if best else np.array([], dtype=np.float64)
        ranked["rank"] = np.arange(1, len(best) + 1, dtype=np.int64)
        return pd.DataFrame(ranked)

    before = candidates["score"].tolist()
    after = [
        shifted(p) if has else p for p, has in zip(before, candidates["has_feature"].tolist(), strict=True)
    ]
    return top(before), top(after)


def _take(df: pd.DataFrame, positions: list[int]) -> dict:
    """Return the columns of ``df`` at these row positions, keeping their types (``iloc`` without
    building a frame per step)."""
    positions = np.array(positions, dtype=np.intp)
    return {name: df[name].array.take(positions) for name in df.columns}


def _not_in(df: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
    """Return the rows of ``df`` whose film is not in ``other``, renumbered from 0."""
    theirs = set(other["movie_id"].tolist())
    return pd.DataFrame(_take(df, [i for i, m in enumerate(df["movie_id"].tolist()) if m not in theirs]))


_CANDIDATE, _LIKED, _LISTS = range(3)  # the rows of a preview's one read of films


def _preview_films():
    """Select, in one statement, the films of the user's last ``lists`` lists less those they
    disliked (the candidates), the films they liked (the evidence's likes), and how many lists
    there were: rows of (kind, movie_id or the count, title, genres, cast, franchise)."""
    user_id = bindparam("user_id")
    latest = (
        select(recommendation_sets.c.recommendation_set_id)
        .where(recommendation_sets.c.user_id == user_id)
        .order_by(recommendation_sets.c.created_at.desc())
        .limit(bindparam("lists"))
    )
    disliked = (
        select(user_dislikes.c.dislike_id)
        .where(
            user_dislikes.c.user_id == user_id,
            user_dislikes.c.movie_id == movies.c.movie_id,
            user_dislikes.c.retracted_at.is_(None),
        )
        .exists()
    )
    films = (movies.c.movie_id, movies.c.title, movies.c.genres, movies.c.cast, movies.c.franchise)
    both = union_all(
        select(literal(_CANDIDATE).label("kind"), *films).where(
            movies.c.movie_id.in_(
                select(impressions.c.movie_id).where(impressions.c.recommendation_set_id.in_(latest))
            ),
            ~disliked,
        ),
        select(literal(_LIKED), *films)
        .join(ratings, ratings.c.movie_id == movies.c.movie_id)
        .where(ratings.c.user_id == user_id, ratings.c.rating >= LIKED_RATING),
        select(literal(_LISTS), func.count(), *[null()] * 4).select_from(latest.subquery()),
    )
    return both.order_by(both.selected_columns.kind, both.selected_columns.movie_id)


_PREVIEW_FILMS = _preview_films()  # built once: it costs more than it runs


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
        # Three statements: the films, the user's state (which also scores them) and, every few
        # seconds, the catalogue's stamp.
        rows = conn.execute(_PREVIEW_FILMS, {"user_id": user_id, "lists": int(lists)}).all()
        state = load_user_state(conn, user_id)
        candidates = [r for r in rows if r.kind == _CANDIDATE]
        ids = [r.movie_id for r in candidates]
        scores = system.score_loaded(conn, user_id, ids, state) if ids else []
    set_count = next(r.movie_id for r in rows if r.kind == _LISTS)
    candidates = pd.DataFrame(
        {
            "movie_id": ids,
            "title": [r.title for r in candidates],
            "score": [s["predicted_score"] for s in scores],
            "has_feature": [has_feature(r._mapping, kind, value) for r in candidates],
        },
        columns=["movie_id", "title", "score", "has_feature"],
    )
    applied = {(t, v): total for _, t, v, total in state.weights if abs(total) > 1e-12}  # load_user_weights
    current = applied.get((kind, value), 0.0)
    low, high = system.settings.weight_min, system.settings.weight_max
    delta = adj["proposed_magnitude"] if magnitude is None else magnitude
    weight_before = policy.effective_weight(current, low, high)
    weight_after = policy.effective_weight(current + delta, low, high)
    strength = state.stored_weights.get("adjustment_strength") or system.settings.adjustment_strength
    before, after = rerank(candidates, strength * (weight_after - weight_before), k)
    evidence = _feature_evidence(state, [r for r in rows if r.kind == _LIKED], kind, value)
    return {
        "user_id": user_id,
        "feature": f"{kind}:{value}",
        "lists": set_count,
        "candidates": len(candidates),
        "weight_before": weight_before,
        "weight_after": weight_after,
        "evidence_dislikes": evidence["dislikes"],
        "evidence_likes": evidence["likes"],
        "last_disliked_at": evidence["last_disliked_at"],
        "before": before,
        "after": after,
        "leaving": _not_in(before, after),
        "entering": _not_in(after, before),
    }


def _feature_evidence(state, liked_films, kind: str, value: str) -> dict:
    """Return one feature's evidence as ``FeedbackSystem.get_feature_evidence`` counts it: the
    user's dislikes of it, their latest, and how often it appears among the films they liked."""
    evidence = {"dislikes": 0, "last_disliked_at": None, "likes": 0}
    if kind in policy.FEATURE_TYPES:
        for _, pattern_type, pattern_value, count, last in state.patterns:
            if pattern_type == kind and pattern_value == value and count > 0:
                evidence.update(dislikes=count, last_disliked_at=format_ts(last))
    for film in liked_films:
        evidence["likes"] += (kind, value) in policy.feature_keys(film.genres, film.cast, film.franchise)
    return evidence


# ---------------------------------------------------------------- users


def list_recent_users(system, limit: int = 30) -> list[int]:
    """Return users with the most recent live dislikes (newest first, from the created_at index)."""
    with read_connection(system.engine) as conn:
        rows = conn.execute(
            select(user_dislikes.c.user_id)
            .where(user_dislikes.c.retracted_at.is_(None))
            .order_by(user_dislikes.c.created_at.desc())
            .limit(limit * 20)
        ).scalars()
        return list(dict.fromkeys(rows))[:limit]


def _user_lists() -> Select:
    # The latest lists as a subquery: one round trip, not one for their ids and one for their items.
    set_ids = (
        select(recommendation_sets.c.recommendation_set_id)
        .where(recommendation_sets.c.user_id == bindparam("user_id"))
        .order_by(recommendation_sets.c.created_at.desc())
        .limit(bindparam("sets"))
    )
    return (
        select(
            impressions.c.recommendation_set_id,
            impressions.c.shown_at,
            impressions.c.model_version_id,
            impressions.c.rank,
            impressions.c.movie_id,
            movies.c.title,
            known_score(impressions),
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
    )


_USER_LISTS = _user_lists()  # built once: it costs more than it runs


def list_user_lists(system, user_id: int, sets: int = 10) -> pd.DataFrame:
    """Return a user's latest shown lists, item by item, marking what they disliked and why."""
    with read_connection(system.engine) as conn:
        rows = conn.execute(_USER_LISTS, {"user_id": user_id, "sets": int(sets)}).all()
    columns = ["recommendation_set_id", "shown_at", "rank", "movie_id", "title"]
    columns += ["predicted_score", "disliked_reason", "feedback_text", "model_version", "disliked"]
    rows = [(r[0], r[1], *r[3:], version_label(r[2]), r[7] is not None) for r in rows]
    return to_frame(rows, columns, {"shown_at": "time"})


_PROFILE_DISLIKES = ["created_at", "dislike_id", "movie_id", "movie_title", "reason", "predicted_score"]
_PROFILE_DISLIKES += ["feedback_text", "recommendation_set_id", "genres", "cast", "franchise"]


def get_user_profile(system, user_id: int) -> dict:
    """Return one user's dislike history, patterns, effective weights and adjustments."""
    checked = check_id(user_id, "user_id")
    ud = user_dislikes.c
    with read_connection(system.engine) as conn:
        rows = conn.execute(
            # What FeedbackSystem.get_user_dislikes returns, the lists as their JSON text:
            # decoded below in one call rather than one per value.
            select(
                *(
                    known_score(user_dislikes) if c == "predicted_score" else ud[c]
                    for c in _PROFILE_DISLIKES[:-3]
                ),
                cast(ud.genres, Text),
                cast(ud.cast, Text),
            )
            .add_columns(ud.franchise)
            .where(ud.user_id == checked, ud.retracted_at.is_(None))
            .order_by(ud.created_at.desc(), ud.dislike_id.desc())
            .limit(500)
        ).all()
    lists = json.loads("[" + ",".join(f"{r[-3] or 'null'},{r[-2] or 'null'}" for r in rows) + "]")
    dislikes = [
        (*r[:-3], ", ".join(list(lists[2 * i] or [])), ", ".join(list(lists[2 * i + 1] or [])), r[-1])
        for i, r in enumerate(rows)
    ]
    with read_connection(system.engine) as conn:
        sums = load_user_weights(conn, checked)
    # Beside each weight, the sum of its applied adjustments: a sum past the limits is held at
    # them (0.1 and 2.0), and the weight alone hid how far past it went.
    weights = [
        (kind, value, weight, round(sums.get((kind, value), 0.0), 6))
        for kind, values in system.get_effective_weights(checked).items()
        for value, weight in values.items()
    ]
    # created_at to the second, as get_user_dislikes formats it; without rows the joined lists
    # are float columns, as pandas made them when they were assigned to an empty frame.
    dtypes = {"created_at": "seconds"} | ({} if rows else {"genres": "float64", "cast": "float64"})
    return {
        "user_id": user_id,
        "patterns": system.get_dislike_pattern_analysis(checked),
        "dislikes": to_frame(dislikes, _PROFILE_DISLIKES, dtypes),
        "weights": to_frame(weights, ["feature_type", "feature_value", "weight", "applied_sum"]),
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


_FACETS = {"actions": audit_log.c.action, "actors": audit_log.c.actor}
_FACET_HOPS = union_all(  # one round trip for both; built once (it costs more than it runs)
    *(
        _hops(column, f"{name}_hops").add_columns(literal(name).label("facet"))
        for name, column in _FACETS.items()
    )
)


def list_audit_facets(system) -> dict:
    """Return the distinct actions and actors in the audit log (loose index scans)."""
    with read_connection(system.engine) as conn:
        rows = sorted(conn.execute(_FACET_HOPS).all(), key=lambda r: r[1])  # ascending, by hop
    return {name: [value for value, _, facet in rows if facet == name] for name in _FACETS}


def _shown(value) -> str:
    """An audit detail as text: a number to four decimals, anything else as it is."""
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if value == 0 or abs(value) >= 1e-4 else f"{value:.1e}"
    return str(value)


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
    *fields, texts = zip(*rows, strict=True) if rows else ((),) * (len(columns) + 1)
    values = dict(zip(columns, fields, strict=True))
    details = json.loads("[" + ",".join(t or "{}" for t in texts) + "]")
    # One text column keeps the table flat and the CSV readable; figures to four decimals (an
    # AUC of 0.5475944991646989 is read as 0.5476).
    values["details"] = [", ".join([f"{k}={_shown(v)}" for k, v in (d or {}).items()]) for d in details]
    return frame(values, {"at": "time"})


# ---------------------------------------------------------------- how proposals are decided

# A proposal withdrawn with its retracted dislike (stored as rejected) counts apart from the
# approvers' rejections: nobody decided it.
_DECIDED_STATUS = case(
    (withdrawn(feature_adjustments), literal_column("'withdrawn'")),
    else_=feature_adjustments.c.status,
)
_DECIDED_KINDS = select(
    feature_adjustments.c.reason,
    feature_adjustments.c.feature_type,
    _DECIDED_STATUS.label("status"),
    func.count().label("n"),
    func.min(feature_adjustments.c.created_at).label("oldest"),
    # What came into the inbox and what left it since a moment (every way out sets decided_at).
    func.sum(case((feature_adjustments.c.created_at >= bindparam("since"), 1), else_=0)).label("came"),
    func.sum(case((feature_adjustments.c.decided_at >= bindparam("since"), 1), else_=0)).label("left"),
    # Of those, the ones FEEDBACK_AUTO_APPROVE applied: they left the inbox, no approver decided them.
    func.sum(
        case(
            (
                and_(
                    feature_adjustments.c.decided_at >= bindparam("since"),
                    feature_adjustments.c.decided_by == literal_column(f"'{policy.AUTO_APPROVER}'"),
                ),
                1,
            ),
            else_=0,
        )
    ).label("auto"),
).group_by(feature_adjustments.c.reason, feature_adjustments.c.feature_type, _DECIDED_STATUS)


# Where each status counts (an approval not applied yet is an approval).
_DECISION_OF = {"proposed": "waiting", "approved": "applied", "applied": "applied"}
_DECISION_OF |= {"reverted": "reverted", "rejected": "rejected", "withdrawn": "withdrawn"}


_FACTORS = {"genre": "GENRE_DEEMPHASIS_FACTOR", "cast": "CAST_DEEMPHASIS_FACTOR"}
_FACTORS |= {"franchise": "FRANCHISE_DEEMPHASIS_FACTOR"}


def stopping_setting(settings, reason: str, kind: str) -> str:
    """Say which setting stops ``reason``'s proposals of ``kind`` and nothing else.

    A de-emphasis factor sizes the proposals of its kind for every reason whose rule derives
    from it (the genre factor: three reasons), and none of a reason ``FEEDBACK_REASON_POLICY``
    overrides: it is named only when it stops exactly this kind. Otherwise the reason's rule,
    which ``FEEDBACK_REASON_POLICY`` replaces whole, with this kind at 0 and the rest as now.
    """
    rules = settings.reason_policy
    if reason not in rules or not getattr(rules[reason], kind):
        return "no setting (the policy no longer proposes them)"
    derived = policy_rules_from_factors(settings)
    others = [r for r, rule in rules.items() if r != reason and getattr(rule, kind)]
    if rules.get(reason) == derived.get(reason) and not others:
        return f"FEEDBACK_{_FACTORS[kind]} set to 0"
    rule = rules[reason]
    kept = {k: round(getattr(rule, k), 6) for k in ("genre", "cast", "franchise") if getattr(rule, k)}
    kept[kind] = 0
    if rule.exclude_movie:
        kept["exclude_movie"] = True
    if rule.cast_limit != policy.TOP_CAST:
        kept["cast_limit"] = rule.cast_limit
    rules_json = json.dumps({reason: kept})
    return f"FEEDBACK_REASON_POLICY set to {rules_json} (beside the reasons it already sets)"


def policy_rules_from_factors(settings):
    """The rules the three de-emphasis factors alone would make (no reason overridden)."""
    return default_reason_policy(
        settings.GENRE_DEEMPHASIS_FACTOR,
        settings.CAST_DEEMPHASIS_FACTOR,
        settings.FRANCHISE_DEEMPHASIS_FACTOR,
    )


def get_decision_summary(system, stale_days: int = 7) -> dict:
    """Return how the proposals of each reason and feature type were decided, and the inbox's age.

    ``recent``: over the last ``stale_days`` days, how many were ``proposed``, ``approved`` and
    ``rejected`` (by people), ``auto_approved`` (``FEEDBACK_AUTO_APPROVE``: no approver decided
    them) and ``withdrawn``, and ``change``, how much the inbox grew (negative: shrank): whether
    approvers keep up, which the waiting count alone does not say.

    ``kinds``: per (reason, feature type), proposals waiting, approved (applied, or reverted
    since: ``reverted`` of them), rejected, ``withdrawn`` (their dislike retracted before anyone
    decided: not decided, not rejected), and the share of the decided ones approved with its
    95% Wilson interval (``enough`` once ``min_impressions_for_rate`` were decided). A kind
    approvers nearly always reject is one the policy could stop proposing: ``stop_with`` names the
    setting that stops that kind alone. ``waiting``, the proposals waiting, ``oldest_waiting`` when the oldest was proposed, and ``stale``, how many
    wait longer than ``stale_days`` days. Reads every proposal once (grouped in the database).
    """
    stale_days = check_limit(stale_days, "stale_days", 1, 365)
    since = system.now() - timedelta(days=stale_days)
    fa = feature_adjustments.c
    with read_connection(system.engine) as conn:
        rows = conn.execute(_DECIDED_KINDS, {"since": since}).all()
        stale = conn.execute(
            select(func.count()).where(fa.status == literal_column("'proposed'"), fa.created_at < since)
        ).scalar_one()
    kinds: dict[tuple[str, str], dict] = {}
    oldest = None
    recent = {"proposed": 0, "approved": 0, "auto_approved": 0, "rejected": 0, "withdrawn": 0}
    for reason, kind, status, n, first, came, left, auto in rows:
        counts = kinds.setdefault(
            (reason, kind), {"waiting": 0, "applied": 0, "reverted": 0, "rejected": 0, "withdrawn": 0}
        )
        decision = _DECISION_OF[status]
        counts[decision] += int(n)
        recent["proposed"] += int(came or 0)
        if decision != "waiting":  # an approval reverted since was an approval when made
            auto = int(auto or 0)
            recent["auto_approved"] += auto
            recent[{"applied": "approved", "reverted": "approved"}.get(decision, decision)] += (
                int(left or 0) - auto
            )
        if status == "proposed":
            first = pd.Timestamp(first)
            oldest = first if oldest is None or first < oldest else oldest
    min_decided = system.settings.min_impressions_for_rate
    records = []
    for (reason, kind), c in sorted(kinds.items()):
        approved = c["applied"] + c["reverted"]
        decided = approved + c["rejected"]
        share = rate_fields(approved, decided, min_decided) if decided else None
        records.append(
            {
                "reason": reason,
                "feature_type": kind,
                "waiting": c["waiting"],
                "approved": approved,
                "reverted": c["reverted"],
                "rejected": c["rejected"],
                "withdrawn": c["withdrawn"],
                "approved_share": share["rate"] if share else None,
                "ci_low": share["ci_low"] if share else None,
                "ci_high": share["ci_high"] if share else None,
                "enough": bool(share and share["enough"]),
                "stop_with": stopping_setting(system.settings, reason, kind),
            }
        )
    columns = ["reason", "feature_type", "waiting", "approved", "reverted", "rejected", "withdrawn"]
    columns += ["approved_share"]
    columns += ["ci_low", "ci_high", "enough", "stop_with"]
    return {
        "kinds": pd.DataFrame(records, columns=columns),
        "waiting": sum(c["waiting"] for c in kinds.values()),
        "oldest_waiting": oldest,
        "stale": int(stale),
        "stale_days": stale_days,
        "recent": {
            **recent,
            "change": recent["proposed"]
            - recent["approved"]
            - recent["auto_approved"]
            - recent["rejected"]
            - recent["withdrawn"],
        },
    }
