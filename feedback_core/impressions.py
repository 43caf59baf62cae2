"""Shown lists (recommendation sets and their impressions): the denominator of every rate."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from feedback_core import aggregates
from feedback_core.db import format_ts, read_connection, write_transaction
from feedback_core.errors import NotFoundError, ValidationError
from feedback_core.recording import LIST_CLOCK_SKEW
from feedback_core.schema import impressions, movies, recommendation_sets
from feedback_core.validation import check_id, check_recent, validate_items
from feedback_core.versions import require_version


class Impressions:
    """Recommendation-set operations of ``FeedbackSystem``."""

    def record_recommendation_set(
        self,
        user_id: int,
        items: Sequence[Any],
        model_version_id: int | None = None,
        source: str = "api",
        shown_at: datetime | None = None,
    ) -> int:
        """Store one list shown to a user (its impressions) and return the set id."""
        user_id = check_id(user_id, "user_id")
        model_version_id = check_id(model_version_id, "model_version_id", optional=True)
        clean = validate_items(items, self.settings)
        clock = self.now()
        now = clock if shown_at is None else check_recent(shown_at, "shown_at", clock)
        if now > clock + LIST_CLOCK_SKEW:
            # Shown in the future (local time sent as UTC, say): its day would not have begun, and
            # the dashboard's dates would run into it. (An import allows a day ahead.)
            ahead = (now - clock).total_seconds()
            by = f"{ahead / 60:.0f} minutes" if ahead < 3600 else f"{ahead / 3600:.1f} hours"
            raise ValidationError(
                f"shown_at is {by} ahead of this server's clock "
                f"({format_ts(clock)} UTC): send the time the list was shown, in UTC",
                "shown_at",
            )
        with write_transaction(self.engine) as conn:
            set_id = self._insert_set(conn, user_id, clean, model_version_id, source, now)
        return set_id

    def _insert_set(
        self, conn: Connection, user_id, clean, model_version_id, source, now, checked=False
    ) -> int:
        """Insert a set and its impressions; ``checked``: the caller knows the movies exist."""
        if not checked:
            require_version(conn, model_version_id)
        ids = [item.movie_id for item in clean]
        found = (
            ids
            if checked
            else set(conn.execute(select(movies.c.movie_id).where(movies.c.movie_id.in_(ids))).scalars())
        )
        missing = [m for m in ids if m not in found]
        if missing:
            raise ValidationError(
                f"movies not in the catalogue: {', '.join(map(str, missing[:10]))}; add them first",
                "items",
            )
        set_id = conn.execute(
            insert(recommendation_sets)
            .values(user_id=user_id, model_version_id=model_version_id, source=source, created_at=now)
            .returning(recommendation_sets.c.recommendation_set_id)
        ).scalar_one()
        # One multi-row INSERT: far cheaper than an executemany of a handful of rows.
        rows = [
            {
                "recommendation_set_id": set_id,
                "user_id": user_id,
                "movie_id": item.movie_id,
                "rank": item.rank,
                # An item shown without a score: stored as 0, marked unknown.
                "predicted_score": 0.0 if item.predicted_score is None else item.predicted_score,
                "score_known": item.predicted_score is not None,
                "model_version_id": model_version_id,
                "shown_at": now,
            }
            for item in clean
        ]
        conn.execute(insert(impressions).values(rows))
        counts = aggregates.ImpressionCounts()
        counts.add(now.date(), model_version_id or 0, [item.predicted_score for item in clean])
        aggregates.add_impressions(conn, counts)
        return set_id

    def get_recommendation_set(self, recommendation_set_id: int) -> dict:
        """Return one shown list with its items in rank order."""
        set_id = check_id(recommendation_set_id, "recommendation_set_id")
        with read_connection(self.engine) as conn:
            head = conn.execute(
                select(recommendation_sets).where(recommendation_sets.c.recommendation_set_id == set_id)
            ).first()
            if head is None:
                raise NotFoundError(f"recommendation set {set_id} not found", "recommendation_set_id")
            rows = conn.execute(
                select(
                    impressions.c.movie_id,
                    impressions.c.rank,
                    impressions.c.predicted_score,
                    impressions.c.score_known,
                    movies.c.title,
                )
                .join(movies, movies.c.movie_id == impressions.c.movie_id)
                .where(impressions.c.recommendation_set_id == set_id)
                .order_by(impressions.c.rank)
            ).all()
        return {
            "recommendation_set_id": set_id,
            "user_id": head.user_id,
            "model_version_id": head.model_version_id,
            "created_at": format_ts(head.created_at),
            "items": [
                {
                    "movie_id": r.movie_id,
                    "rank": r.rank,
                    "predicted_score": r.predicted_score if r.score_known else None,
                    "title": r.title,
                }
                for r in rows
            ],
        }
