"""What an applied adjustment changed: one user's dislike rate of films with its feature, before and after.

Reads only this user's rows, through indexes (see ``get_adjustment_effects``); the dashboard's
Adjustments page shows it for one user at a time.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Select, Text, bindparam, cast, func, literal_column, select, union

from feedback_core.db import Prepared, read_connection
from feedback_core.errors import ValidationError
from feedback_core.policy import FEATURE_TYPES, feature_keys
from feedback_core.queries import rate_fields
from feedback_core.schema import (
    feature_adjustments,
    impressions,
    movies,
    recommendation_sets,
    user_dislikes,
    user_feature_weights,
    withdrawn,
)
from feedback_core.validation import check_limit

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


def _films_shown(shown: Select) -> Prepared:
    """The features of the films ``shown`` (a select of impressions) holds, each film once:
    (film, genres JSON text, cast JSON text, franchise)."""
    return Prepared(
        select(
            movies.c.movie_id, cast(movies.c.genres, Text), cast(movies.c["cast"], Text), movies.c.franchise
        ).where(movies.c.movie_id.in_(shown.with_only_columns(impressions.c.movie_id)))
    )


_USER_FILMS = _films_shown(_SHOWN_TO_USER)
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


# ---------------------------------------------------------------- do approvals work, pooled

# How many of the newest decisions of each kind the pooled comparison reads.
POOLED_DECISIONS = 2000
# Resamples of the people for the intervals (seeded: the same data, the same intervals).
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 20261201
# Fewer people than this in a group, no interval: resampling two or three people gives an
# interval as narrow as their agreement (one person, the point itself), not the uncertainty.
MIN_PEOPLE_FOR_INTERVAL = 10
# The counts kept per (person, feature): the feature's impressions, its dislikes, all the
# person's impressions, all their dislikes, each before and after the decision.
_COUNTS = [
    f"{what}_{side}" for side in ("before", "after") for what in ("shown", "disliked", "all", "all_disliked")
]
_MEASURES = {
    # measure: (events, trials) per side
    "exposure": ("shown", "all"),
    "feature_rate": ("disliked", "shown"),
    "overall_rate": ("all_disliked", "all"),
}


# What was decided either way. An approval later reverted was still approved: leaving it out
# would keep only the approvals nobody regretted (reverting is how a failed one is undone).
APPROVED = ("applied", "reverted")
REJECTED = ("rejected",)


def _newest_decisions(statuses: tuple[str, ...], limit):
    """The newest ``limit`` proposals (by when proposed: the index's order) decided with one of
    ``statuses`` no later than ``:settled`` (a whole window after them has passed), with the list
    of the dislike that made each (None for a dislike without one)."""
    fa = feature_adjustments.c
    decided_at = func.coalesce(fa.applied_at, fa.decided_at)
    return (
        select(
            fa.user_id,
            fa.feature_type,
            fa.feature_value,
            decided_at.label("at"),
            user_dislikes.c.recommendation_set_id,
        )
        .join(user_dislikes, user_dislikes.c.dislike_id == fa.dislike_id)
        # Statuses as literals, so the (status, created_at) index serves the order. A proposal
        # withdrawn because its dislike was retracted is stored as rejected: nobody decided it.
        .where(
            fa.status.in_([literal_column(f"'{s}'") for s in statuses]),
            decided_at <= bindparam("settled"),
            ~withdrawn(feature_adjustments),
        )
        .order_by(fa.created_at.desc())
        .limit(limit)
    )


def _decided_users():
    """The people of the newest ``:decisions`` approvals and as many rejections (one statement)."""
    newest = [
        _newest_decisions(statuses, bindparam("decisions")).subquery() for statuses in (APPROVED, REJECTED)
    ]
    return union(*(select(sub.c.user_id) for sub in newest)).subquery()


_DECIDED = _decided_users()
# Their lists shown between :lo and :hi, through the (user, time) index.
_IN_WINDOW = (
    recommendation_sets.c.user_id.in_(select(_DECIDED.c.user_id)),
    recommendation_sets.c.created_at >= bindparam("lo"),
    recommendation_sets.c.created_at < bindparam("hi"),
)
_SHOWN_IN_WINDOW = (
    select(
        recommendation_sets.c.user_id,
        recommendation_sets.c.created_at,
        impressions.c.movie_id,
        recommendation_sets.c.recommendation_set_id,
    )
    .join(impressions, impressions.c.recommendation_set_id == recommendation_sets.c.recommendation_set_id)
    .where(*_IN_WINDOW)
)
_WINDOW_ITEMS = Prepared(_SHOWN_IN_WINDOW)
_WINDOW_FILMS = _films_shown(_SHOWN_IN_WINDOW)
# Their live dislikes of those lists, each at the time its list was shown.
_WINDOW_DISLIKES = Prepared(
    select(
        recommendation_sets.c.user_id,
        recommendation_sets.c.created_at,
        user_dislikes.c.movie_id,
        recommendation_sets.c.recommendation_set_id,
    )
    .join(
        recommendation_sets,
        recommendation_sets.c.recommendation_set_id == user_dislikes.c.recommendation_set_id,
    )
    .where(*_IN_WINDOW, user_dislikes.c.retracted_at.is_(None))
)


def _pooled_pairs(conn, params: dict) -> tuple[dict[tuple[int, str, str], tuple[str, datetime]], dict]:
    """Return (user, type, value) -> (group, moment) for the newest decided proposals, and per
    (user, type, value) the lists of the dislikes that made the proposals read.

    A feature whose weight was ever changed for the person (a weight row exists, also after a
    revert) is in the approved group, from its first approval read (reverted since or not); one
    only ever rejected is in the rejected group, from its first rejection read.
    """
    pairs: dict[tuple[int, str, str], tuple[str, datetime]] = {}
    triggers: dict[tuple[int, str, str], set[int]] = {}
    for group, statuses in (("approved", APPROVED), ("rejected", REJECTED)):
        for row in conn.execute(_newest_decisions(statuses, params["decisions"]), params):
            key = (int(row.user_id), row.feature_type, row.feature_value)
            at = _moment(row.at)
            held = pairs.get(key)
            # Approvals are read first: a feature both approved and rejected stays approved.
            if held is None or (held[0] == group and at < held[1]):
                pairs[key] = (group, at)
            if row.recommendation_set_id is not None:
                triggers.setdefault(key, set()).add(int(row.recommendation_set_id))
    # The people by the same subquery the window reads use, not a list of ids: up to twice
    # ``decisions`` people would be as many bound values (PostgreSQL takes at most 65,535).
    weighted = {
        (int(r[0]), r[1], r[2])
        for r in conn.execute(
            select(
                user_feature_weights.c.user_id,
                user_feature_weights.c.feature_type,
                user_feature_weights.c.feature_value,
            ).where(user_feature_weights.c.user_id.in_(select(_DECIDED.c.user_id))),
            params,
        )
    }
    # A rejected feature whose weight changed anyway (another of its proposals approved before
    # the newest decisions read) compares nothing: left out.
    pairs = {k: v for k, v in pairs.items() if v[0] == "approved" or k not in weighted}
    return pairs, triggers


def _moment(value) -> datetime:
    return pd.Timestamp(value).to_pydatetime().replace(tzinfo=None)


def get_pooled_adjustment_effects(
    system, window_days: int = 14, decisions: int = POOLED_DECISIONS, feature_type: str | None = None
) -> dict:
    """Return, pooled over people, what approving a proposal changed against rejecting one.

    For each (person, feature) of the newest ``decisions`` approvals (also those reverted since)
    and as many rejections, among those decided at least ``window_days`` ago (so that a whole
    window has passed after each), counts the person's impressions and dislikes in the
    ``window_days`` before the decision and after it: of films with the feature and of
    everything. The lists whose dislikes made the proposals read are left out (chosen for a
    dislike of the feature, they would raise every "before"). A dislike falls on the side its
    list was shown on, as in ``get_adjustment_effects``. A decision counts for a measure only
    when it has impressions on both sides (``measured`` of ``decisions``).

    Pooled per group: the feature's share of what the person was shown (``exposure``), the
    dislike rate of films with it (``feature_rate``) and the person's dislike rate of everything
    (``overall_rate``), each before and after, and its relative ``change`` (after / before - 1).
    ``difference`` is, per measure, how much more the approved group's measure changed,
    relatively, than the rejected group's: (1 + approved change) / (1 + rejected change) - 1, so
    -0.5 means approving halved it against what happened to rejected features anyway. Every
    interval is 95%, from resampling people (a person's decisions together, in both groups at
    once), and none with fewer than ``MIN_PEOPLE_FOR_INTERVAL`` people measured. Impressions
    and dislikes are counted once per decision: a person's impressions count for each feature
    decided for them.

    With ``feature_type`` (genre, cast or franchise), only the features of that kind among the
    decisions read.

    Approvers chose what to approve: the rejected group is a comparison, not a randomised control.
    """
    if feature_type is not None and feature_type not in FEATURE_TYPES:
        raise ValidationError(
            f"feature_type must be one of {', '.join(FEATURE_TYPES)} (or none for every kind), got {feature_type!r}",
            "feature_type",
        )
    window_days = check_limit(window_days, "window_days", 1, 90)
    decisions = check_limit(decisions, "decisions", 1, 100_000)
    min_trials = system.settings.min_impressions_for_rate
    now = _moment(system.now())
    span = np.timedelta64(window_days * 86_400_000_000, "us")
    # Only decisions a whole window old: one made yesterday has a day of lists after it and
    # fourteen before, and pooled with the others it would weigh its person into one side more.
    params = {"decisions": decisions, "settled": now - timedelta(days=window_days)}
    with read_connection(system.engine) as conn:
        pairs, triggers = _pooled_pairs(conn, params)
        if feature_type is not None:
            pairs = {key: v for key, v in pairs.items() if key[1] == feature_type}
        counts = np.zeros((len(pairs), len(_COUNTS)), dtype=np.int64)
        moments = [m for _, m in pairs.values()]
        if pairs:
            params |= {
                "lo": min(moments) - timedelta(days=window_days),
                "hi": max(moments) + timedelta(days=window_days),
            }
            items, films, disliked = (
                _fetch_all(stmt, conn, params) for stmt in (_WINDOW_ITEMS, _WINDOW_FILMS, _WINDOW_DISLIKES)
            )
    if pairs:
        carrying = _films_by_feature(films)
        # Films by position: a feature's films are a mask, looked up without sorting.
        ids = np.array(sorted({int(f[0]) for f in films}), dtype=np.int64)
        shown = _by_user(items, ids)
        # A dislike of a film its lists never showed is a share of no impression: left out.
        known = set(ids.tolist())
        disliked_by = _by_user([d for d in disliked if int(d[2]) in known], ids)
        end = np.datetime64(now, "us") + np.timedelta64(1, "us")  # a list shown now is after
        by_feature: dict[tuple[str, str], list[int]] = {}
        for row, key in enumerate(pairs):
            by_feature.setdefault(key[1:], []).append(row)
        keys = list(pairs)
        for feature, rows in by_feature.items():  # one mask at a time
            mask = np.zeros(len(ids), dtype=bool)
            mask[np.searchsorted(ids, carrying.get(feature, _NO_FILMS))] = True
            for row in rows:
                user, at = keys[row][0], np.datetime64(pairs[keys[row]][1], "us")
                # The lists whose dislikes made the proposals are left out: chosen for holding
                # a dislike of the feature, they would raise every "before" by construction.
                chosen = np.array(sorted(triggers.get(keys[row], ())), dtype=np.int64)
                for offset, (times, films_at, lists) in enumerate(
                    (shown.get(user, _NONE), disliked_by.get(user, _NONE))
                ):
                    # Each person's rows are in time order: a window is a slice.
                    start, middle, stop = np.searchsorted(times, [at - span, at, min(at + span, end)])
                    # columns: shown, disliked, all, all_disliked (before, then after)
                    for side, (a, b) in ((0, (start, middle)), (4, (middle, max(middle, stop)))):
                        seen = films_at[a:b]
                        if len(chosen):
                            seen = seen[~np.isin(lists[a:b], chosen)]
                        counts[row, side + offset] = int(mask[seen].sum())
                        counts[row, side + 2 + offset] = len(seen)
    groups = np.array([group for group, _ in pairs.values()], dtype=object)
    people = np.array([key[0] for key in pairs], dtype=np.int64)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    # One draw of people for both groups: most people approved for one feature were rejected
    # for another, and their two groups' figures move together in the difference.
    draws = _draw_people(people, rng)
    summary, sampled_changes = [], {}
    for group in ("approved", "rejected"):
        mine, whose = counts[groups == group], people[groups == group]
        mine_draws = None if draws is None or not len(mine) else (draws[0][groups == group], draws[1])
        for measure, (events, trials) in _MEASURES.items():
            # Before and after pool the same decisions: one measured on one side only (decided
            # too recently for a list after it, or its feature no longer shown) would weigh its
            # person into one side and not the other, and the change would be who, not what.
            seen = (mine[:, _COUNTS.index(f"{trials}_before")] > 0) & (
                mine[:, _COUNTS.index(f"{trials}_after")] > 0
            )
            used = np.where(seen[:, None], mine, 0)
            total = dict(zip(_COUNTS, used.sum(axis=0).tolist()))
            measured_people = len(set(whose[seen].tolist()))
            sampled = _resample_people(used, mine_draws, measured_people)
            row = {
                "measure": measure,
                "group": group,
                "decisions": len(mine),
                "people": len(set(whose.tolist())),
                "measured": int(seen.sum()),
                "measured_people": measured_people,
            }
            for side in ("before", "after"):
                k, n = total[f"{events}_{side}"], total[f"{trials}_{side}"]
                low, high = _interval(_ratio(sampled, events, trials, side))
                row |= {
                    f"events_{side}": k,
                    f"trials_{side}": n,
                    f"rate_{side}": k / n if n else None,
                    f"ci_low_{side}": low,
                    f"ci_high_{side}": high,
                    f"enough_{side}": n >= min_trials,
                }
            with np.errstate(divide="ignore", invalid="ignore"):
                change = (
                    _ratio(sampled, events, trials, "after") / _ratio(sampled, events, trials, "before") - 1
                )
            sampled_changes[(measure, group)] = change
            both = row["rate_after"] is not None and row["rate_before"]
            row["change"] = row["rate_after"] / row["rate_before"] - 1 if both else None
            row["change_low"], row["change_high"] = _interval(change)
            summary.append(row)
    difference = []
    changes = {(r["measure"], r["group"]): r["change"] for r in summary}
    for measure in _MEASURES:
        a, b = changes[(measure, "approved")], changes[(measure, "rejected")]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = (sampled_changes[(measure, "approved")] + 1) / (
                sampled_changes[(measure, "rejected")] + 1
            ) - 1
        low, high = _interval(ratio)
        both = a is not None and b is not None and b != -1
        difference.append(
            {
                "measure": measure,
                "difference": (a + 1) / (b + 1) - 1 if both else None,
                "ci_low": low,
                "ci_high": high,
            }
        )
    return {
        "window_days": window_days,
        "decisions_read": decisions,
        # When the decisions compared were made (None without any).
        "decided_from": min(moments) if moments else None,
        "decided_to": max(moments) if moments else None,
        "summary": pd.DataFrame(summary),
        "difference": pd.DataFrame(difference),
    }


_NONE = (np.array([], dtype="datetime64[us]"), np.array([], dtype=np.int64), np.array([], dtype=np.int64))
_NO_FILMS = np.array([], dtype=np.int64)


def _by_user(rows, ids: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Return user -> (shown times in order, film positions in ``ids``, list ids) of (user,
    shown_at, film, list) driver rows."""
    if not rows:
        return {}
    users = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    times = _times([r[1] for r in rows])
    films = np.searchsorted(ids, np.fromiter((r[2] for r in rows), dtype=np.int64, count=len(rows)))
    lists = np.fromiter((r[3] for r in rows), dtype=np.int64, count=len(rows))
    order = np.lexsort((times, users))
    users, times, films, lists = users[order], times[order], films[order], lists[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    stops = np.r_[starts[1:], len(users)]
    return {int(users[a]): (times[a:b], films[a:b], lists[a:b]) for a, b in zip(starts, stops)}


def _films_by_feature(films) -> dict[tuple[str, str], np.ndarray]:
    """Return (type, value) -> the ids of the films that carry it, of (film, genres, cast, franchise) rows."""
    carrying: dict[tuple[str, str], list[int]] = {}
    for film, features in zip(films, _decode_features(films)):
        for key in feature_keys(*features):
            carrying.setdefault(key, []).append(int(film[0]))
    return {key: np.array(ids, dtype=np.int64) for key, ids in carrying.items()}


def _draw_people(people: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray] | None:
    """Return each decision's person (an index) and, per resample of ``BOOTSTRAP_RESAMPLES``,
    how often each person was drawn (with replacement); None without decisions."""
    if not len(people):
        return None
    _, person = np.unique(people, return_inverse=True)
    n = int(person.max()) + 1
    return person, rng.multinomial(n, np.full(n, 1.0 / n), size=BOOTSTRAP_RESAMPLES)


def _resample_people(counts: np.ndarray, draws, measured_people: int) -> dict[str, np.ndarray]:
    """Return, per count, its sum over each resample of the people of ``draws`` (each person
    with all their decisions: one person's decisions are not independent). Without decisions,
    or with fewer than ``MIN_PEOPLE_FOR_INTERVAL`` people measured, NaN sums (no interval)."""
    if draws is None or measured_people < MIN_PEOPLE_FOR_INTERVAL:
        return {name: np.full(BOOTSTRAP_RESAMPLES, np.nan) for name in _COUNTS}
    person, weights = draws
    per_person = np.zeros((weights.shape[1], counts.shape[1]), dtype=np.float64)
    np.add.at(per_person, person, counts)
    return dict(zip(_COUNTS, (weights @ per_person).T))


def _ratio(sampled: dict[str, np.ndarray], events: str, trials: str, side: str) -> np.ndarray:
    """Return each resample's events / trials on one side (NaN where it has no trials)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return sampled[f"{events}_{side}"] / sampled[f"{trials}_{side}"]


def _interval(resampled: np.ndarray) -> tuple[float | None, float | None]:
    """Return the 95% percentile interval of resampled values, or (None, None) unless nearly
    every resample could measure it (0 / 0 cannot), or when it has no end.

    A resample whose ratio is infinite (something over nothing: a rate from none before, or
    against a change of -100%) measured a value beyond every other, not nothing: it stays in.
    Left out, the end it belongs to would come out finite, and too close to the others."""
    measured = resampled[~np.isnan(resampled)]
    if len(measured) < 0.95 * BOOTSTRAP_RESAMPLES:
        return None, None
    if np.isinf(measured).any():
        # An order statistic, not an interpolation: between an infinite value and a finite one
        # there is nothing to interpolate.
        low, high = np.percentile(measured, [2.5, 97.5], method="inverted_cdf")
        if not (np.isfinite(low) and np.isfinite(high)):
            return None, None
        return float(low), float(high)
    return float(np.percentile(measured, 2.5)), float(np.percentile(measured, 97.5))
