"""Reads: dislike history, weights, patterns, system metrics. Served from indexes and aggregates."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from sqlalchemy import Float, Integer, bindparam, case, cast, func, null, select, union_all

from feedback_core import policy
from feedback_core.db import format_ts, read_connection
from feedback_core.schema import (
    daily_dislikes,
    daily_impressions,
    dislike_patterns,
    model_versions,
    negative_examples,
    user_dislikes,
)
from feedback_core.stats import rate_with_interval
from feedback_core.validation import check_id, check_limit

TOP_N = 5


def _dislike_dict(row) -> dict:
    return {
        "dislike_id": row.dislike_id,
        "movie_id": row.movie_id,
        "movie_title": row.movie_title,
        "recommendation_set_id": row.recommendation_set_id,
        "predicted_score": row.predicted_score if row.score_known else None,  # None: unknown
        "reason": row.reason,
        "feedback_text": row.feedback_text,
        "genres": list(row.genres or []),
        "cast": list(row.cast or []),
        "franchise": row.franchise,
        "created_at": format_ts(row.created_at),
    }


def active_version_summary(conn) -> dict | None:
    """Return ``{version_id, created_at, accuracy, accuracy_baseline, auc}`` of the active model
    version (the baseline: what always answering the commoner label scores on the same rows;
    None for versions recorded before it was measured; ``auc``: its held-out AUC, which says
    whether it tells disliked films from liked ones where accuracy rises with the share of liked
    ones whatever a model does), or None."""
    row = conn.execute(
        select(
            model_versions.c.version_id,
            model_versions.c.created_at,
            model_versions.c.accuracy,
            model_versions.c.metrics,
        ).where(model_versions.c.active_slot == 1)
    ).first()
    if row is None:
        return None
    return {
        "version_id": row.version_id,
        "created_at": format_ts(row.created_at),
        "accuracy": row.accuracy,
        "accuracy_baseline": (row.metrics or {}).get("accuracy_baseline"),
        "auc": (row.metrics or {}).get("auc"),
    }


# A user's dislike patterns, as (pattern_type, pattern_value, dislike_count, None), and one row
# (None, None, dislikes since, their mean predicted score) for the recent trend: one statement.
_PATTERNS_AND_RECENT = union_all(
    select(
        dislike_patterns.c.pattern_type,
        dislike_patterns.c.pattern_value,
        dislike_patterns.c.dislike_count,
        cast(null(), Float),
        cast(null(), Integer),
    ).where(dislike_patterns.c.user_id == bindparam("user_id"), dislike_patterns.c.dislike_count > 0),
    # (The mean of the known scores: AVG leaves out the NULLs of the unknown ones.)
    select(
        null(),
        null(),
        func.count(),
        func.avg(case((user_dislikes.c.score_known, user_dislikes.c.predicted_score), else_=null())),
        func.count(case((user_dislikes.c.score_known, 1), else_=null())),
    ).where(
        user_dislikes.c.user_id == bindparam("user_id"),
        user_dislikes.c.created_at >= bindparam("since"),
        user_dislikes.c.retracted_at.is_(None),
    ),
)


def pattern_analysis(rows) -> dict:
    """Summarise a user's dislike patterns: rows of (pattern_type, pattern_value, dislike_count, _,
    _) and one row (None, None, recent dislikes, their mean known predicted score, how many have
    one)."""
    grouped: dict[str, list] = defaultdict(list)
    total, recent_count, recent_avg, recent_scored = 0, 0, None, 0
    for kind, value, count, mean, scored in rows:
        if kind is None:
            recent_count, recent_avg, recent_scored = count, mean, int(scored or 0)
        elif kind == "total":
            total = count
        else:
            grouped[kind].append((-count, value))

    def top(kind: str) -> list[dict]:
        return [{"name": value, "count": -n} for n, value in sorted(grouped[kind])[:TOP_N]]

    return {
        "reason_distribution": {value: -n for n, value in sorted(grouped["reason"])},
        "recent_trend": {
            "days": 30,
            "total_dislikes": recent_count,
            "avg_predicted_score": None if recent_avg is None else round(float(recent_avg), 4),
            "scored_dislikes": recent_scored,  # the dislikes the mean is of (their score known)
        },
        "total_dislikes": total,
        "top_genres": top("genre"),
        "top_cast": top("cast"),
        "top_franchises": top("franchise"),
    }


class Analytics:
    """Read operations of ``FeedbackSystem``."""

    def get_user_dislikes(self, user_id: int, limit: int = 50) -> list[dict]:
        """Return a user's dislikes, newest first (ties broken by id)."""
        user_id = check_id(user_id, "user_id")
        limit = check_limit(limit)
        with read_connection(self.engine) as conn:
            rows = conn.execute(
                select(user_dislikes)
                .where(user_dislikes.c.user_id == user_id, user_dislikes.c.retracted_at.is_(None))
                .order_by(user_dislikes.c.created_at.desc(), user_dislikes.c.dislike_id.desc())
                .limit(limit)
            ).all()
        return [_dislike_dict(r) for r in rows]

    def get_user_disliked_movies(self, user_id: int) -> list[int]:
        """Return the ids of movies the user disliked (not retracted), most recent first."""
        user_id = check_id(user_id, "user_id")
        with read_connection(self.engine) as conn:
            rows = conn.execute(
                select(user_dislikes.c.movie_id, func.max(user_dislikes.c.created_at).label("latest"))
                .where(user_dislikes.c.user_id == user_id, user_dislikes.c.retracted_at.is_(None))
                .group_by(user_dislikes.c.movie_id)
                .order_by(func.max(user_dislikes.c.created_at).desc(), user_dislikes.c.movie_id)
            ).all()
        return [r.movie_id for r in rows]

    def calculate_dislike_weight(self, user_id: int, movie_id: int) -> float:
        """Return ``min(count / 3, 1) * decay`` for the user's dislikes of a movie (0 if none)."""
        user_id = check_id(user_id, "user_id")
        movie_id = check_id(movie_id, "movie_id")
        with read_connection(self.engine) as conn:
            count, latest = conn.execute(
                select(func.count(), func.max(user_dislikes.c.created_at)).where(
                    user_dislikes.c.user_id == user_id,
                    user_dislikes.c.movie_id == movie_id,
                    user_dislikes.c.retracted_at.is_(None),
                )
            ).one()
        if isinstance(latest, str):  # SQLite returns max() of a DateTime column as text
            from datetime import datetime

            latest = datetime.fromisoformat(latest)
        return policy.dislike_weight(count, latest, self.now())

    def get_dislike_pattern_analysis(self, user_id: int) -> dict:
        """Return a user's reason distribution, 30-day trend, total and most-disliked features."""
        user_id = check_id(user_id, "user_id")
        since = self.now() - timedelta(days=30)
        with read_connection(self.engine) as conn:
            rows = conn.execute(_PATTERNS_AND_RECENT, {"user_id": user_id, "since": since}).all()
        return pattern_analysis(rows)

    def get_model_feedback_metrics(self) -> dict:
        """Return system-wide negative-example metrics and the active model version."""
        with read_connection(self.engine) as conn:
            count, total_error, scored = conn.execute(
                select(
                    func.coalesce(func.sum(daily_dislikes.c.dislikes), 0),
                    func.coalesce(func.sum(daily_dislikes.c.score_sum), 0.0),
                    func.coalesce(func.sum(daily_dislikes.c.scored), 0),
                )
            ).one()
            # Both extremes walk the index on error from its end to the first example of a live
            # dislike whose score is known (a retracted dislike's used example stays, as training
            # data). An unknown score is stored as 0, so the lowest walks past every example of
            # one: 39 ms at 300,000 of them on SQLite, nothing when scores are sent.
            extreme = (
                select(negative_examples.c.error)
                .join(user_dislikes, user_dislikes.c.dislike_id == negative_examples.c.dislike_id)
                .where(user_dislikes.c.retracted_at.is_(None), user_dislikes.c.score_known)
                .limit(1)
            )
            max_error = conn.execute(extreme.order_by(negative_examples.c.error.desc())).scalar()
            min_error = conn.execute(extreme.order_by(negative_examples.c.error)).scalar()
            examples = conn.execute(select(func.count()).select_from(negative_examples)).scalar_one()
            pending = conn.execute(
                select(func.count()).where(negative_examples.c.status == "pending")
            ).scalar_one()
            impressions = conn.execute(
                select(func.coalesce(func.sum(daily_impressions.c.impressions), 0))
            ).scalar_one()
            attributed = conn.execute(
                select(func.coalesce(func.sum(daily_dislikes.c.dislikes), 0)).where(
                    daily_dislikes.c.attributed == 1
                )
            ).scalar_one()
            active = active_version_summary(conn)
        count = int(count)
        # (No rate for counts no rate can come from: dislikes of more items than were shown.)
        rate = (
            rate_with_interval(int(attributed), int(impressions))
            if impressions and attributed <= impressions
            else None
        )
        return {
            "metrics": {
                "total_negative_examples": examples,
                "total_dislikes": count,
                "untrained_negative_examples": pending,
                "retrain_threshold": self.settings.FEEDBACK_ACCUMULATION_THRESHOLD,
                # Of the dislikes whose predicted score is known.
                "avg_prediction_error": round(total_error / int(scored), 4) if scored else None,
                "scored_dislikes": int(scored),
                "max_error": max_error,
                "min_error": min_error,
                "total_impressions": int(impressions),
                # With whether it rests on enough impressions to be shown (the dashboard's rule).
                "dislike_rate": (
                    {
                        **rate.as_dict(),
                        "enough": rate.trials >= self.settings.min_impressions_for_rate,
                        "min_impressions": self.settings.min_impressions_for_rate,
                    }
                    if rate
                    else None
                ),
            },
            "active_model_version": active,
        }

    def get_feedback_improvement_metrics(self) -> dict:
        """Return the dislike rate per model version and per week, with relative changes."""
        with read_connection(self.engine) as conn:
            dis = conn.execute(
                select(
                    daily_dislikes.c.day,
                    daily_dislikes.c.model_version_id,
                    func.sum(daily_dislikes.c.dislikes),
                    func.sum(daily_dislikes.c.score_sum),
                    func.sum(daily_dislikes.c.scored),
                )
                .where(daily_dislikes.c.attributed == 1)
                .group_by(daily_dislikes.c.day, daily_dislikes.c.model_version_id)
            ).all()
            imp = conn.execute(
                select(
                    daily_impressions.c.day,
                    daily_impressions.c.model_version_id,
                    daily_impressions.c.impressions,
                )
            ).all()
        # [dislikes, impressions, score sum, dislikes whose score is known]
        by_version: dict[int, list[float]] = defaultdict(lambda: [0, 0, 0.0, 0])
        by_week: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0, 0])
        for day, version, n, score_sum, scored in dis:
            for group in (by_version[version], by_week[_week_start(day)]):
                group[0] += int(n)
                group[2] += float(score_sum)
                group[3] += int(scored)
        for day, version, n in imp:
            by_version[version][1] += int(n)
            by_week[_week_start(day)][1] += int(n)

        def rows(groups: dict, key_name: str, skip_unversioned: bool) -> list[dict]:
            out = []
            for key in sorted(groups):
                if skip_unversioned and key == 0:
                    continue
                dislikes, shown, score_sum, scored = groups[key]
                rate = rate_with_interval(dislikes, shown) if dislikes <= shown else None
                out.append(
                    {
                        key_name: key,
                        "dislikes": dislikes,
                        "impressions": shown,
                        "dislike_rate": rate and rate.rate,
                        "ci_low": rate and rate.low,
                        "ci_high": rate and rate.high,
                        "mean_prediction_error": round(score_sum / scored, 4) if scored else None,
                    }
                )
            _relative_changes(out)
            return out

        return {
            "per_version": rows(by_version, "model_version_id", skip_unversioned=True),
            "per_week": rows(by_week, "week_start", skip_unversioned=False),
        }

    def count_rows(self) -> dict[str, int]:
        """Return the row count of every table (for ``feedback-core info`` and the dashboard)."""
        from feedback_core.schema import metadata

        with read_connection(self.engine) as conn:
            return {
                name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for name, table in sorted(metadata.tables.items())
            }


def _week_start(day) -> str:
    if isinstance(day, str):
        from datetime import date

        day = date.fromisoformat(day)
    return (day - timedelta(days=day.weekday())).isoformat()


def _relative_changes(rows: list[dict]) -> None:
    first = next((r["dislike_rate"] for r in rows if r["dislike_rate"]), None)
    previous = None
    for r in rows:
        rate = r["dislike_rate"]
        r["change_vs_first"] = None if rate is None or not first else round(rate / first - 1, 4)
        r["change_vs_previous"] = None if rate is None or not previous else round(rate / previous - 1, 4)
        if rate is not None:
            previous = rate
