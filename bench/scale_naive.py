"""The naive dashboard bench/scale.py compares with: raw tables into pandas, every number computed there.

One run reads each raw table the pages need once, with ``pandas.read_sql`` (in chunks, so the
transient Python rows stay bounded), and computes every page's numbers from those frames: the
cheapest a dashboard without maintained aggregates could do per refresh, so the ratio is a
lower bound. ``naive_pages`` returns the numbers keyed like ``key_numbers`` returns them from
the real data functions, and bench/scale.py checks the two agree.
"""

from __future__ import annotations

import json
import time
from datetime import date, timedelta

import numpy as np
import pandas as pd

from feedback_core import lookups, queries
from feedback_core.policy import blamed_features
from feedback_core.stats import rate_with_interval, two_proportion_test

ACTIVATIONS = ("model.activated", "model.rollback")
HIGH_SCORE = 0.7


def read(engine, sql: str, dates: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read a query into a DataFrame, 500,000 rows at a time."""
    with engine.connect() as conn:
        frames = list(pd.read_sql(sql, conn, chunksize=500_000, parse_dates=list(dates)))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def read_raw(engine) -> dict[str, pd.DataFrame]:
    """Read the raw tables the pages need."""
    return {
        "impressions": read(
            engine,
            "SELECT recommendation_set_id, user_id, movie_id, rank, predicted_score, model_version_id, shown_at "
            "FROM impressions",
            ("shown_at",),
        ),
        "dislikes": read(
            engine,
            "SELECT dislike_id, user_id, movie_id, movie_title, recommendation_set_id, model_version_id, "
            'predicted_score, reason, feedback_text, genres, "cast", franchise, created_at FROM user_dislikes '
            "WHERE retracted_at IS NULL",
            ("created_at",),
        ),
        "examples": read(engine, "SELECT status FROM negative_examples"),
        "adjustments": read(
            engine,
            "SELECT adjustment_id, dislike_id, user_id, feature_type, feature_value, proposed_magnitude, "
            "magnitude, reason, status, created_at, decided_by, decided_at FROM feature_adjustments",
            ("created_at", "decided_at"),
        ),
        "movies": read(engine, "SELECT movie_id, title FROM movies"),
        "versions": read(
            engine, "SELECT version_id, status, activated_at FROM model_versions", ("activated_at",)
        ),
        "jobs": read(engine, "SELECT * FROM retrain_jobs ORDER BY job_id DESC"),
        "audit": read(engine, "SELECT * FROM audit_log", ("at",)),
        "weights": read(engine, "SELECT * FROM user_feature_weights"),
    }


def _as_list(value) -> list:
    # SQLite hands JSON columns over as text, psycopg as parsed lists.
    return json.loads(value) if isinstance(value, str) else list(value or [])


def _features(row) -> list[tuple[str, str]]:
    """The feature values a dislike counts against (``policy.blamed_features``)."""
    genres, cast, franchise = blamed_features(
        row.reason, _as_list(row.genres), _as_list(row.cast), row.franchise
    )
    values = [("genre", g) for g in genres] + [("cast", c) for c in cast]
    return values + ([("franchise", franchise)] if franchise else [])


def naive_pages(engine, start: date, end: date, user_id: int, today: date) -> tuple[dict, dict]:
    """Read the raw tables and compute every page's numbers; return (numbers, seconds per step)."""
    started = time.perf_counter()
    raw = read_raw(engine)
    read_s = time.perf_counter() - started
    imp, dis = raw["impressions"], raw["dislikes"]
    imp["day"] = imp["shown_at"].dt.normalize()
    imp["version"] = imp["model_version_id"].fillna(0).astype("int64")
    # A dislike of a shown list counts on the day the list was shown (beside its impressions).
    shown_on = imp.groupby("recommendation_set_id")["day"].min()
    dis["day"] = dis["recommendation_set_id"].map(shown_on).fillna(dis["created_at"].dt.normalize())
    dis["version"] = dis["model_version_id"].fillna(0).astype("int64")
    dis["attributed"] = dis["recommendation_set_id"].notna()
    lo, hi = pd.Timestamp(start), pd.Timestamp(end)
    length = (end - start).days + 1

    def window(a: pd.Timestamp, b: pd.Timestamp) -> dict:
        d = dis[(dis["day"] >= a) & (dis["day"] <= b)]
        shown = int(((imp["day"] >= a) & (imp["day"] <= b)).sum())
        return {"dislikes": len(d), "attributed": int(d["attributed"].sum()), "impressions": shown}

    out: dict = {}
    # overview
    out["overview.current"] = window(lo, hi)
    out["overview.previous"] = window(lo - pd.Timedelta(days=length), lo - pd.Timedelta(days=1))
    out["overview.pending"] = int((raw["examples"]["status"] == "pending").sum())
    latest = imp.loc[imp["day"] <= hi, "day"].max()
    day, base = window(latest, latest), window(latest - pd.Timedelta(days=7), latest - pd.Timedelta(days=1))
    two_proportion_test(base["attributed"], base["impressions"], day["attributed"], day["impressions"])
    in_window = (imp["day"] >= lo) & (imp["day"] <= hi)
    shown = imp[in_window].groupby(["day", "version"]).size().rename("impressions")
    d_win = dis[(dis["day"] >= lo) & (dis["day"] <= hi)]
    hit = d_win[d_win["attributed"]].groupby(["day", "version"]).size().rename("dislikes")
    rates = pd.concat([shown, hit], axis=1).fillna(0).astype("int64").reset_index()
    rates["rate"] = [rate_with_interval(x, n).rate for x, n in zip(rates["dislikes"], rates["impressions"])]
    out["overview.daily"] = (int(rates["impressions"].sum()), int(rates["dislikes"].sum()), len(rates))
    audit = raw["audit"]
    activations = audit[audit["action"].isin(ACTIVATIONS) & (audit["outcome"] == "ok")]
    out["overview.activations"] = len(activations)
    # reasons
    counts = d_win.groupby("reason").agg(dislikes=("dislike_id", "size"), score=("predicted_score", "mean"))
    out["reasons.counts"] = {r: int(n) for r, n in counts["dislikes"].items()}
    out["reasons.trend"] = int(d_win.groupby(["day", "reason"]).size().sum())
    genres = d_win[["reason", "genres"]].assign(genre=d_win["genres"].map(_as_list)).explode("genre")
    by_genre = genres.groupby("genre").size().sort_values(ascending=False).head(15)
    out["reasons.genre"] = int(
        genres[genres["genre"].isin(by_genre.index)].groupby(["reason", "genre"]).size().sum()
    )
    latest100 = d_win.sort_values(["created_at", "dislike_id"], ascending=False).head(100)
    out["reasons.latest"] = [int(i) for i in latest100["dislike_id"]]
    # errors
    buckets = np.minimum((d_win["predicted_score"] * 10).astype("int64"), 9)
    out["errors.histogram"] = int(d_win.groupby(["version", buckets]).size().sum())
    out["errors.by_version"] = {int(v): int(n) for v, n in d_win.groupby("version").size().items()}
    per_movie = dis.groupby("movie_id").agg(
        dislikes=("dislike_id", "size"), high=("predicted_score", lambda s: int((s >= HIGH_SCORE).sum()))
    )
    top = per_movie[per_movie["high"] > 0].reset_index()
    top = top.sort_values(["high", "dislikes", "movie_id"], ascending=[False, False, True]).head(15)
    out["errors.mistakes"] = [int(m) for m in top.merge(raw["movies"], on="movie_id")["movie_id"]]
    # versions: all-time online rate per version
    shown_v = imp.groupby("version").size()
    hit_v = dis[dis["attributed"]].groupby("version").size()
    out["versions.online"] = {
        int(v): (int(hit_v.get(v, 0)), int(shown_v.get(v, 0))) for v in raw["versions"]["version_id"]
    }
    # adjustments: the inbox with its evidence (the user's dislikes of that feature)
    adj = raw["adjustments"]
    for status in ("proposed", "applied"):
        rows = (
            adj[adj["status"] == status]
            .sort_values(["created_at", "adjustment_id"], ascending=False)
            .head(200)
        )
        rows = rows.merge(dis[["dislike_id", "movie_title"]], on="dislike_id", how="left")
        mine = dis[dis["user_id"].isin(rows["user_id"])]
        evidence: dict[tuple, int] = {}
        for r in mine.itertuples():
            for kind, value in dict.fromkeys(_features(r)):
                evidence[(r.user_id, kind, value)] = evidence.get((r.user_id, kind, value), 0) + 1
        rows["evidence"] = [
            evidence.get((u, k, v), 0)
            for u, k, v in zip(rows["user_id"], rows["feature_type"], rows["feature_value"])
        ]
        out[f"adjustments.{status}"] = [int(i) for i in rows["adjustment_id"]]
    # retrain
    out["retrain.jobs"] = len(raw["jobs"].head(50))
    # users: recent users, one user's profile and lists
    recent = dis.sort_values("created_at", ascending=False)["user_id"].head(400)
    out["users.recent"] = [int(u) for u in dict.fromkeys(recent)][:20]
    own = dis[dis["user_id"] == user_id]
    reasons = own.groupby("reason").size()
    features: dict[tuple, int] = {}
    for r in own.itertuples():
        for key in dict.fromkeys(_features(r)):
            features[key] = features.get(key, 0) + 1
    since = pd.Timestamp(today) - pd.Timedelta(days=30)
    out["users.profile"] = (
        len(own),
        int(reasons.sum()),
        int((own["created_at"] >= since).sum()),
        len(features),
    )
    sets = imp[imp["user_id"] == user_id]
    last_sets = sets.groupby("recommendation_set_id")["shown_at"].max().sort_values(ascending=False).head(10)
    lists = sets[sets["recommendation_set_id"].isin(last_sets.index)]
    lists = lists.merge(
        dis[["recommendation_set_id", "movie_id", "reason"]],
        on=["recommendation_set_id", "movie_id"],
        how="left",
    )
    out["users.lists"] = (len(lists), int(lists["reason"].notna().sum()))
    # audit
    out["audit.facets"] = (sorted(audit["action"].unique()), sorted(audit["actor"].unique()))
    recent_audit = audit[audit["at"] >= pd.Timestamp(today - timedelta(days=29))]
    out["audit.log"] = len(recent_audit.sort_values(["at", "audit_id"], ascending=False).head(1000))
    return out, {"read": read_s, "total": time.perf_counter() - started}


def key_numbers(system, start: date, end: date, user_id: int, today: date) -> dict:
    """Return the same numbers as ``naive_pages``, from the dashboard's data functions."""
    window = (start, end, (), ())
    out: dict = {}
    overview = queries.get_overview(system, *window)
    for side in ("current", "previous"):
        o = overview[side]
        out[f"overview.{side}"] = {
            "dislikes": o["dislikes"],
            "attributed": o["attributed_dislikes"],
            "impressions": o["impressions"],
        }
    out["overview.pending"] = overview["untrained_examples"]
    rates = queries.list_daily_rates(system, *window)
    out["overview.daily"] = (int(rates["impressions"].sum()), int(rates["dislikes"].sum()), len(rates))
    counts = queries.list_reason_counts(system, *window)
    out["reasons.counts"] = dict(zip(counts["reason"], counts["dislikes"].astype(int), strict=True))
    out["reasons.trend"] = int(queries.list_reason_trend(system, *window)["dislikes"].sum())
    out["reasons.genre"] = int(queries.list_reason_genre(system, *window)["dislikes"].sum())
    out["reasons.latest"] = [
        int(i) for i in lookups.list_latest_dislikes(system, *window, limit=100)["dislike_id"]
    ]
    out["errors.histogram"] = int(queries.list_score_histogram(system, *window)["dislikes"].sum())
    by_version = queries.list_error_by_version(system, *window)
    out["errors.by_version"] = dict(
        zip(by_version["model_version_id"].astype(int), by_version["dislikes"].astype(int))
    )
    out["errors.mistakes"] = [int(m) for m in queries.list_confident_mistakes(system, limit=15)["movie_id"]]
    versions = queries.list_versions(system)
    out["versions.online"] = {
        int(v): (int(x), int(n))
        for v, x, n in zip(versions["version_id"], versions["dislikes"], versions["impressions"], strict=True)
    }
    for status in ("proposed", "applied"):
        inbox = lookups.list_adjustment_inbox(system, status=status, limit=200)
        out[f"adjustments.{status}"] = [int(i) for i in inbox["adjustment_id"]]
    out["users.recent"] = lookups.list_recent_users(system, limit=20)
    return out
