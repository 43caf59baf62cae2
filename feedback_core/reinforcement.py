"""Reinforcement: negative training examples, retrain decisions, feature-adjustment maths."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import insert, select, update

from feedback_core import policy
from feedback_core.db import format_ts, read_connection, write_transaction
from feedback_core.errors import NotFoundError, ValidationError
from feedback_core.recording import count_pending_examples, queue_retrain_job
from feedback_core.schema import (
    dislike_feedback_impact,
    negative_examples,
    retrain_jobs,
    user_dislikes,
)
from feedback_core.validation import (
    check_id,
    check_limit,
    check_name,
    check_names,
    check_reason,
    check_score,
    check_text,
)
from feedback_core.versions import require_version

log = logging.getLogger("feedback_core")


def _example_dict(row) -> dict:
    return {
        "example_id": row.example_id,
        "dislike_id": row.dislike_id,
        "user_id": row.user_id,
        "movie_id": row.movie_id,
        "movie_title": row.movie_title,
        "label": 0,
        "target": 0.0,
        "predicted_score": row.error if row.score_known else None,  # None: unknown (stored as 0)
        "error": row.error if row.score_known else None,
        "weight": row.weight,
        "reason": row.reason,
        "status": row.status,
        "created_at": format_ts(row.created_at),
    }


def _example_query():
    return select(
        negative_examples,
        user_dislikes.c.movie_title,
        user_dislikes.c.reason,
        user_dislikes.c.score_known,
    ).join(user_dislikes, user_dislikes.c.dislike_id == negative_examples.c.dislike_id)


class Reinforcement:
    """Reinforcement operations of ``FeedbackSystem``."""

    def apply_dislike_to_training_data(
        self,
        user_id: int,
        movie_id: int,
        movie_title: str | None = None,
        predicted_score: float | None = None,
    ) -> dict:
        """Return the negative training example of the user's latest dislike of a movie.

        ``save_dislike`` already creates the example in the same transaction as the dislike,
        so this never creates a second one; it returns the stored example.
        """
        user_id = check_id(user_id, "user_id")
        movie_id = check_id(movie_id, "movie_id")
        if predicted_score is not None:
            check_score(predicted_score)
        with read_connection(self.engine) as conn:
            row = conn.execute(
                _example_query()
                .where(
                    negative_examples.c.user_id == user_id,
                    negative_examples.c.movie_id == movie_id,
                    user_dislikes.c.retracted_at.is_(None),
                )
                .order_by(negative_examples.c.example_id.desc())
                .limit(1)
            ).first()
        if row is None:
            raise NotFoundError(
                f"no unretracted dislike of movie {movie_id} by user {user_id}; call save_dislike first",
                "movie_id",
            )
        return _example_dict(row)

    def calculate_feature_adjustment_from_dislike(
        self,
        reason: str,
        genres: Sequence[str] | str | None = None,
        cast: Sequence[str] | str | None = None,
        franchise: str | None = None,
    ) -> dict:
        """Return the adjustments a dislike would propose under the configured reason policy."""
        return calculate_feature_adjustment_from_dislike(
            reason, genres, cast, franchise, settings=self.settings
        )

    def get_untrained_negative_feedback_count(self) -> int:
        """Count negative examples not yet consumed by a training run (nor claimed by one)."""
        with read_connection(self.engine) as conn:
            return count_pending_examples(conn)

    def should_retrain_from_feedback(self, queue: bool = False, actor: str = "system") -> bool:
        """Say whether enough unused examples wait and no retrain is under way.

        With ``queue=True`` a job is queued when the answer is yes (at most one ever waits).
        A job whose worker died is failed first: it is not under way.
        """
        self.recover_stale_jobs()
        threshold = self.settings.FEEDBACK_ACCUMULATION_THRESHOLD
        with write_transaction(self.engine) as conn:
            pending = count_pending_examples(conn, cap=threshold)
            active = (
                conn.execute(select(retrain_jobs.c.job_id).where(retrain_jobs.c.active_slot == 1)).first()
                is not None
            )
            decision = policy.should_retrain(pending, threshold, active)
            if decision and queue:
                queue_retrain_job(conn, at=self.now(), trigger="threshold", actor=actor)
        return decision

    def get_negative_training_batch(self, limit: int = 1000) -> list[dict]:
        """Return unused negative examples, oldest first."""
        limit = check_limit(limit, "limit", 1, 1_000_000)
        with read_connection(self.engine) as conn:
            rows = conn.execute(
                _example_query()
                .where(negative_examples.c.status == "pending")
                .order_by(negative_examples.c.example_id)
                .limit(limit)
            ).all()
        return [_example_dict(r) for r in rows]

    def mark_negative_examples_as_used(
        self, example_ids: Sequence[int], model_version_id: int | None = None
    ) -> int:
        """Mark pending examples consumed by a training run; return how many were marked.

        Skipped, and not counted: examples already used, examples a retrain job has claimed
        (that job marks them used, or gives them back if it fails) and unknown ids.
        """
        if isinstance(example_ids, (str, bytes)) or not isinstance(example_ids, Sequence):
            raise ValidationError("example_ids must be a list of example ids", "example_ids")
        ids = [check_id(e, f"example_ids[{i}]") for i, e in enumerate(example_ids)]
        version = check_id(model_version_id, "model_version_id", optional=True)
        now = self.now()
        with write_transaction(self.engine) as conn:
            require_version(conn, version)
            changed = 0
            for start in range(0, len(ids), 500):
                changed += conn.execute(
                    update(negative_examples)
                    .where(
                        negative_examples.c.example_id.in_(ids[start : start + 500]),
                        negative_examples.c.status == "pending",
                    )
                    .values(status="used", used_at=now, used_in_version_id=version)
                ).rowcount
        log.info(
            "[FEEDBACK] %s negative examples marked as used (%s used, claimed or unknown skipped)",
            changed,
            len(set(ids)) - changed,
        )
        return changed

    def record_feedback_impact(
        self,
        dislike_id: int | None,
        user_id: int,
        feature_type: str,
        feature_value: str,
        adjustment: float,
        model_version_id: int | None = None,
        actor: str = "system",
        weight_before: float | None = None,
        weight_after: float | None = None,
        action: str = "applied",
    ) -> int:
        """Record that an adjustment was applied (or reverted) and return the record id."""
        dislike_id = check_id(dislike_id, "dislike_id", optional=True)
        user_id = check_id(user_id, "user_id")
        if feature_type not in policy.FEATURE_TYPES:
            raise ValidationError(
                f"feature_type must be one of {', '.join(policy.FEATURE_TYPES)}, got {feature_type!r}",
                "feature_type",
            )
        feature_value = check_name(feature_value, "feature_value", 200)
        if (
            isinstance(adjustment, bool)
            or not isinstance(adjustment, (int, float))
            or not -2 <= adjustment <= 2
        ):
            raise ValidationError(
                f"adjustment must be a number between -2 and 2, got {adjustment!r}", "adjustment"
            )
        model_version_id = check_id(model_version_id, "model_version_id", optional=True)
        if action not in ("applied", "reverted"):
            raise ValidationError(f"action must be applied or reverted, got {action!r}", "action")
        weight_before = _optional_weight(weight_before, "weight_before")
        weight_after = _optional_weight(weight_after, "weight_after")
        actor = check_text(actor, "actor", 120, allow_empty=False)
        with write_transaction(self.engine) as conn:
            # Checked here rather than left to the foreign keys, so the caller gets a 400 naming
            # the field instead of an IntegrityError.
            if dislike_id is not None:
                owner = conn.execute(
                    select(user_dislikes.c.user_id).where(user_dislikes.c.dislike_id == dislike_id)
                ).scalar()
                if owner != user_id:
                    raise ValidationError(
                        f"dislike_id {dislike_id} is not a dislike of user {user_id}", "dislike_id"
                    )
            require_version(conn, model_version_id)
            return conn.execute(
                insert(dislike_feedback_impact)
                .values(
                    dislike_id=dislike_id,
                    user_id=user_id,
                    feature_type=feature_type,
                    feature_value=feature_value,
                    adjustment=float(adjustment),
                    weight_before=weight_before,
                    weight_after=weight_after,
                    model_version_id=model_version_id,
                    action=action,
                    actor=actor,
                    created_at=self.now(),
                )
                .returning(dislike_feedback_impact.c.impact_id)
            ).scalar_one()

    def apply_feature_adjustments(
        self, current_weights: Mapping[str, Mapping[str, float]] | None, adjustments: Mapping
    ) -> dict:
        """Return new weights with adjustments added and clamped (pure; input untouched)."""
        return policy.apply_feature_adjustments(
            current_weights, adjustments, self.settings.weight_min, self.settings.weight_max
        )


def _optional_weight(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(f"{field} must be a finite number or None, got {value!r}", field)
    return float(value)


def calculate_feature_adjustment_from_dislike(
    reason: str,
    genres: Sequence[str] | str | None = None,
    cast: Sequence[str] | str | None = None,
    franchise: str | None = None,
    settings: Any = None,
) -> dict:
    """Return the specification's ``feature_adjustments`` object for one dislike (pure)."""
    from feedback_core.settings import Settings

    settings = settings or Settings.from_env()
    reason = check_reason(reason)
    genre_list = check_names(genres, "genres", settings.max_list_items) or ()
    cast_list = check_names(cast, "cast", settings.max_list_items) or ()
    franchise = check_name(franchise, "franchise", 200, allow_empty=True) or None
    rule = settings.reason_policy[reason]
    proposals = policy.propose_adjustments(rule, genre_list, cast_list, franchise)
    return {**policy.adjustments_as_dict(reason, proposals), "exclude_movie": rule.exclude_movie}
