"""Feature adjustments: the approval inbox, decisions, effective per-user weights."""

from __future__ import annotations

import logging
import math
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, or_, select, update

from feedback_core import policy
from feedback_core.aggregates import Upsert
from feedback_core.catalog import LIKED_RATING
from feedback_core.db import format_ts, read_connection, write_transaction
from feedback_core.errors import ConflictError, NotFoundError, ValidationError
from feedback_core.recording import lock_user, write_audit
from feedback_core.schema import (
    dislike_feedback_impact,
    dislike_patterns,
    feature_adjustments,
    movies,
    ratings,
    user_dislikes,
    user_feature_weights,
)
from feedback_core.settings import REASONS
from feedback_core.validation import check_id, check_limit, check_text
from feedback_core.versions import active_version_id

log = logging.getLogger("feedback_core")

STATUSES = ("proposed", "approved", "rejected", "applied", "reverted")
_WEIGHTS = Upsert(
    user_feature_weights,
    ("user_id", "feature_type", "feature_value", "adjustment_sum", "updated_at"),
    keys=3,
    add=("adjustment_sum",),
    latest=("updated_at",),
)


def _adjustment_dict(row) -> dict:
    return {
        "adjustment_id": row.adjustment_id,
        "dislike_id": row.dislike_id,
        "user_id": row.user_id,
        "feature_type": row.feature_type,
        "feature_value": row.feature_value,
        "proposed_magnitude": row.proposed_magnitude,
        "magnitude": row.magnitude,
        "reason": row.reason,
        "status": row.status,
        "created_at": format_ts(row.created_at),
        "decided_by": row.decided_by,
        "decided_at": format_ts(row.decided_at),
        "note": row.note,
        "applied_at": format_ts(row.applied_at),
        "reverted_at": format_ts(row.reverted_at),
    }


def load_user_weights(conn: Connection, user_id: int) -> dict[tuple[str, str], float]:
    """Return ``{(feature_type, value): adjustment_sum}`` of a user's applied adjustments."""
    rows = conn.execute(
        select(
            user_feature_weights.c.feature_type,
            user_feature_weights.c.feature_value,
            user_feature_weights.c.adjustment_sum,
        ).where(user_feature_weights.c.user_id == user_id)
    ).all()
    return {(t, v): s for t, v, s in rows if abs(s) > 1e-12}


def _check_magnitude(value: Any) -> float:
    # A proposal comes from a dislike, which de-emphasises: a sign typo must not turn it into
    # a boost of what the person disliked (as the reason policy's own numbers, -1 to 0).
    rule = "a number between -1 and 0 (a dislike de-emphasises; 0 leaves the weight as it is)"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(f"magnitude must be {rule}, got {value!r}", "magnitude")
    if not -1.0 <= value <= 0.0:
        raise ValidationError(f"magnitude must be {rule}, got {value!r}", "magnitude")
    return float(value)


COUNT_CAP = 100_000  # counting adjustments stops here: "100,000 or more" is answer enough
MAX_NOTE = 2000  # characters of a rejection's note, wherever it is written


def _adjustment_filters(
    status: str | None, user_id: int | None, feature: str | None, reason: str | None
) -> list:
    """The conditions of ``list_adjustments``' filters, each checked."""
    where = []
    if status is not None:
        if status not in STATUSES:
            raise ValidationError(f"status must be one of {', '.join(STATUSES)}, got {status!r}", "status")
        where.append(feature_adjustments.c.status == status)
    if user_id is not None:
        where.append(feature_adjustments.c.user_id == check_id(user_id, "user_id"))
    if feature and str(feature).strip():  # (blank: no filter, as on the dashboard)
        # A feature type, a value in any case ("horror" finds Horror) or both as decisions
        # name them ("genre:Horror"); in the composed form names are stored in (NFC).
        exact = unicodedata.normalize("NFC", check_text(feature, "feature", 200).strip())
        kind, _, named = exact.partition(":")
        if named.strip() and kind.strip().lower() in policy.FEATURE_TYPES:
            where.append(feature_adjustments.c.feature_type == kind.strip().lower())
            exact = named.strip()
        if exact.lower() in policy.FEATURE_TYPES:
            where.append(feature_adjustments.c.feature_type == exact.lower())
        else:
            # (lower() folds every letter on both backends: feedback_core.db gives SQLite one.)
            value = feature_adjustments.c.feature_value
            where.append(or_(value == exact, func.lower(value) == exact.lower()))
    if reason is not None:
        if reason not in REASONS:
            raise ValidationError(f"reason must be one of {', '.join(REASONS)}, got {reason!r}", "reason")
        where.append(feature_adjustments.c.reason == reason)
    return where


def _check_ids(ids: Any) -> list[int]:
    """Return a bulk decision's ids, each checked, or raise naming the first bad one."""
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Sequence):
        raise ValidationError("adjustment_ids must be a list of ids", "adjustment_ids")
    return [check_id(i, f"adjustment_ids[{n}]") for n, i in enumerate(ids)]


class Adjustments:
    """Adjustment operations of ``FeedbackSystem``."""

    def list_adjustments(
        self,
        status: str | None = "proposed",
        user_id: int | None = None,
        feature: str | None = None,
        reason: str | None = None,
        limit: int = 200,
    ) -> list[dict]:
        """List adjustments, newest first, filtered by status, user, feature type/value and reason."""
        where = _adjustment_filters(status, user_id, feature, reason)
        limit = check_limit(limit, "limit", 1, 10_000)
        query = (
            select(feature_adjustments)
            .where(*where)
            .order_by(feature_adjustments.c.created_at.desc(), feature_adjustments.c.adjustment_id.desc())
            .limit(limit)
        )
        with read_connection(self.engine) as conn:
            return [_adjustment_dict(r) for r in conn.execute(query)]

    def count_adjustments(
        self,
        status: str | None = "proposed",
        user_id: int | None = None,
        feature: str | None = None,
        reason: str | None = None,
        cap: int = COUNT_CAP,
    ) -> int:
        """Count the adjustments ``list_adjustments`` would list without its limit, up to ``cap``
        (a count of ``cap`` means at least that many)."""
        where = _adjustment_filters(status, user_id, feature, reason)
        capped = select(feature_adjustments.c.adjustment_id).where(*where).limit(cap).subquery()
        with read_connection(self.engine) as conn:
            return conn.execute(select(func.count()).select_from(capped)).scalar_one()

    def get_adjustment(self, adjustment_id: int) -> dict:
        """Return one adjustment."""
        adjustment_id = check_id(adjustment_id, "adjustment_id")
        with read_connection(self.engine) as conn:
            row = conn.execute(
                select(feature_adjustments).where(feature_adjustments.c.adjustment_id == adjustment_id)
            ).first()
        if row is None:
            raise NotFoundError(f"adjustment {adjustment_id} not found", "adjustment_id")
        return _adjustment_dict(row)

    def approve_adjustment(self, adjustment_id: int, actor: str, magnitude: float | None = None) -> dict:
        """Approve a proposal (optionally with an edited magnitude) and apply it at once."""
        adjustment_id = check_id(adjustment_id, "adjustment_id")
        actor = check_text(actor, "actor", 120, allow_empty=False)
        if magnitude is not None:
            magnitude = _check_magnitude(magnitude)
        with write_transaction(self.engine) as conn:
            result = self._apply_adjustment(conn, adjustment_id, actor, magnitude, self.now())
        log.info("[FEEDBACK] Feature adjustments applied: %s by %s", result, actor)
        return result

    def reject_adjustment(self, adjustment_id: int, actor: str, note: str = "") -> dict:
        """Reject a proposal with a note."""
        adjustment_id = check_id(adjustment_id, "adjustment_id")
        actor = check_text(actor, "actor", 120, allow_empty=False)
        note = check_text(note, "note", MAX_NOTE)
        now = self.now()
        with write_transaction(self.engine) as conn:
            row = self._lock_adjustment(conn, adjustment_id)
            self._require_status(row, "proposed")
            conn.execute(
                update(feature_adjustments)
                .where(feature_adjustments.c.adjustment_id == adjustment_id)
                .values(status="rejected", decided_by=actor, decided_at=now, note=note)
            )
            write_audit(
                conn,
                at=now,
                actor=actor,
                action="adjustment.rejected",
                entity_type="adjustment",
                entity_id=adjustment_id,
                details={
                    "user_id": row.user_id,
                    "feature": f"{row.feature_type}:{row.feature_value}",
                    "status_before": row.status,
                    "status_after": "rejected",
                    "note": note,
                },
            )
            return _adjustment_dict(self._lock_adjustment(conn, adjustment_id))

    def approve_adjustments(
        self, adjustment_ids: Sequence[int], actor: str, magnitudes: Mapping[int, float] | None = None
    ) -> dict:
        """Approve many proposals (``magnitudes``: edited magnitudes of some of them, by id);
        report which were applied and which were already decided."""
        ids = _check_ids(adjustment_ids)
        if magnitudes is not None and not isinstance(magnitudes, Mapping):
            raise ValidationError("magnitudes must map adjustment ids to magnitudes", "magnitudes")
        edited: dict[int, float] = {}
        for key, value in (magnitudes or {}).items():  # all checked before any is decided
            try:
                i = check_id(key, "magnitudes")
            except ValidationError:
                raise ValidationError(
                    f"magnitudes must map adjustment ids to magnitudes; {str(key)[:40]!r} is not an adjustment id",
                    "magnitudes",
                ) from None
            if i not in ids:
                raise ValidationError(
                    f"magnitudes names adjustment {i}, which is not among those approved", "magnitudes"
                )
            try:
                edited[i] = _check_magnitude(value)
            except ValidationError as exc:
                raise ValidationError(f"adjustment {i}'s {exc.message}", f"magnitudes[{i}]") from None
        return self._bulk(ids, lambda i: self.approve_adjustment(i, actor, magnitude=edited.get(i)))

    def reject_adjustments(self, adjustment_ids: Sequence[int], actor: str, note: str = "") -> dict:
        """Reject many proposals; report which were rejected and which were already decided."""
        return self._bulk(adjustment_ids, lambda i: self.reject_adjustment(i, actor, note))

    def _bulk(self, ids: Sequence[int], decide) -> dict:
        ids = _check_ids(ids)  # every id before any is decided: a bad one changes nothing
        done, skipped = [], []
        for i in ids:
            try:
                done.append(decide(i)["adjustment_id"])
            except (ConflictError, NotFoundError) as exc:  # one stale id must not stop the rest
                skipped.append({"adjustment_id": i, "error": exc.message})
        return {"decided": done, "skipped": skipped}

    def revert_adjustment(self, adjustment_id: int, actor: str) -> dict:
        """Undo an applied adjustment: its magnitude leaves the user's weight now."""
        adjustment_id = check_id(adjustment_id, "adjustment_id")
        actor = check_text(actor, "actor", 120, allow_empty=False)
        now = self.now()
        with write_transaction(self.engine) as conn:
            row = self._lock_for_weights(conn, adjustment_id)
            self._require_status(row, "applied")
            details = self._revert(conn, row, actor, now)
            # The adjustment, with what the revert changed (as an approval answers).
            return {**_adjustment_dict(self._lock_adjustment(conn, adjustment_id)), **details}

    def _revert(self, conn: Connection, row, actor: str, now: datetime, why: str | None = None) -> dict:
        """Take an applied adjustment out of its user's weight (under the user's lock); return
        what changed."""
        before, after = self._add_to_weight(
            conn, row.user_id, row.feature_type, row.feature_value, -row.magnitude, now
        )
        conn.execute(
            update(feature_adjustments)
            .where(feature_adjustments.c.adjustment_id == row.adjustment_id)
            .values(status="reverted", reverted_at=now)
        )
        self._impact(conn, row, -row.magnitude, before, after, actor, "reverted", now)
        details = {
            "user_id": row.user_id,
            "feature": f"{row.feature_type}:{row.feature_value}",
            "weight_before": before,
            "weight_after": after,
            "status_before": "applied",
            "status_after": "reverted",
        }
        if why:
            details["why"] = why
        write_audit(
            conn,
            at=now,
            actor=actor,
            action="adjustment.reverted",
            entity_type="adjustment",
            entity_id=row.adjustment_id,
            details=details,
        )
        return details

    def get_feature_evidence(self, user_id: int) -> dict[tuple[str, str], dict]:
        """Return, per (feature type, value), the user's dislikes, latest dislike and liked films."""
        user_id = check_id(user_id, "user_id")
        with read_connection(self.engine) as conn:
            patterns = conn.execute(
                select(
                    dislike_patterns.c.pattern_type,
                    dislike_patterns.c.pattern_value,
                    dislike_patterns.c.dislike_count,
                    dislike_patterns.c.last_disliked_at,
                ).where(
                    dislike_patterns.c.user_id == user_id,
                    dislike_patterns.c.pattern_type.in_(policy.FEATURE_TYPES),
                    dislike_patterns.c.dislike_count > 0,
                )
            ).all()
            liked = conn.execute(
                select(movies.c.genres, movies.c.cast, movies.c.franchise)
                .join(ratings, ratings.c.movie_id == movies.c.movie_id)
                .where(ratings.c.user_id == user_id, ratings.c.rating >= LIKED_RATING)
            ).all()
        evidence: dict[tuple[str, str], dict] = {}
        for kind, value, count, last in patterns:
            evidence[(kind, value)] = {"dislikes": count, "last_disliked_at": format_ts(last), "likes": 0}
        for genres, cast, franchise in liked:
            for key in policy.feature_keys(genres, cast, franchise):
                entry = evidence.setdefault(key, {"dislikes": 0, "last_disliked_at": None, "likes": 0})
                entry["likes"] += 1
        return evidence

    def get_effective_weights(self, user_id: int) -> dict[str, dict[str, float]]:
        """Return a user's effective feature weights (only those changed from 1.0)."""
        user_id = check_id(user_id, "user_id")
        with read_connection(self.engine) as conn:
            sums = load_user_weights(conn, user_id)
        out: dict[str, dict[str, float]] = {}
        for (kind, value), total in sorted(sums.items()):
            out.setdefault(kind, {})[value] = policy.effective_weight(
                total, self.settings.weight_min, self.settings.weight_max
            )
        return out

    # ------------------------------------------------------------ inside a transaction

    def _lock_adjustment(self, conn: Connection, adjustment_id: int):
        row = conn.execute(
            select(feature_adjustments)
            .where(feature_adjustments.c.adjustment_id == adjustment_id)
            .with_for_update()
        ).first()
        if row is None:
            raise NotFoundError(f"adjustment {adjustment_id} not found", "adjustment_id")
        return row

    def _lock_for_weights(self, conn: Connection, adjustment_id: int):
        """Lock the adjustment's user, then the adjustment: one user's weights change one
        decision at a time (PostgreSQL; SQLite's write lock already does), so each records the
        weight it really moved from. The user first, as retracting a dislike does, so that the
        two never wait for each other in opposite orders."""
        user_id = conn.execute(
            select(feature_adjustments.c.user_id).where(feature_adjustments.c.adjustment_id == adjustment_id)
        ).scalar()
        if user_id is None:
            raise NotFoundError(f"adjustment {adjustment_id} not found", "adjustment_id")
        lock_user(conn, user_id)
        return self._lock_adjustment(conn, adjustment_id)

    @staticmethod
    def _require_status(row, wanted: str) -> None:
        if row.status != wanted:
            if row.status == "reverted":  # the revert's actor is in its impact and audit records
                who, when = "", f" at {format_ts(row.reverted_at)}" if row.reverted_at else ""
            else:
                who = f" by {row.decided_by}" if row.decided_by else ""
                when = f" at {format_ts(row.decided_at)}" if row.decided_at else ""
            raise ConflictError(
                f"adjustment {row.adjustment_id} is already {row.status}{who}{when}; only "
                f"{wanted} adjustments can take this decision",
                "adjustment_id",
            )

    def _add_to_weight(self, conn, user_id, kind, value, delta, now) -> tuple[float, float]:
        current = (
            conn.execute(
                select(user_feature_weights.c.adjustment_sum).where(
                    user_feature_weights.c.user_id == user_id,
                    user_feature_weights.c.feature_type == kind,
                    user_feature_weights.c.feature_value == value,
                )
            ).scalar()
            or 0.0
        )
        low, high = self.settings.weight_min, self.settings.weight_max
        _WEIGHTS.write(conn, [(user_id, kind, value, delta, now)])
        return policy.effective_weight(current, low, high), policy.effective_weight(
            current + delta, low, high
        )

    def _impact(self, conn, row, delta, before, after, actor, action, now: datetime) -> None:
        active = active_version_id(conn)
        conn.execute(
            insert(dislike_feedback_impact).values(
                dislike_id=row.dislike_id,
                adjustment_id=row.adjustment_id,
                user_id=row.user_id,
                feature_type=row.feature_type,
                feature_value=row.feature_value,
                adjustment=delta,
                weight_before=before,
                weight_after=after,
                model_version_id=active,
                action=action,
                actor=actor,
                created_at=now,
            )
        )

    def _apply_adjustment(self, conn, adjustment_id: int, actor: str, magnitude: float | None, now) -> dict:
        row = self._lock_for_weights(conn, adjustment_id)
        self._require_status(row, "proposed")
        retracted = conn.execute(
            select(user_dislikes.c.retracted_at).where(user_dislikes.c.dislike_id == row.dislike_id)
        ).scalar()
        if retracted is not None:
            raise ConflictError(f"adjustment {adjustment_id} belongs to a retracted dislike", "adjustment_id")
        value = row.proposed_magnitude if magnitude is None else magnitude
        before, after = self._add_to_weight(
            conn, row.user_id, row.feature_type, row.feature_value, value, now
        )
        conn.execute(
            update(feature_adjustments)
            .where(feature_adjustments.c.adjustment_id == adjustment_id)
            .values(status="applied", magnitude=value, decided_by=actor, decided_at=now, applied_at=now)
        )
        self._impact(conn, row, value, before, after, actor, "applied", now)
        details = {
            "user_id": row.user_id,
            "feature": f"{row.feature_type}:{row.feature_value}",
            "proposed_magnitude": row.proposed_magnitude,
            "magnitude": value,
            "weight_before": before,
            "weight_after": after,
            "status_before": row.status,
            "status_after": "applied",
        }
        write_audit(
            conn,
            at=now,
            actor=actor,
            action="adjustment.approved",
            entity_type="adjustment",
            entity_id=adjustment_id,
            details=details,
        )
        # The adjustment as reject and revert give it, with what the approval changed.
        return {**_adjustment_dict(self._lock_adjustment(conn, adjustment_id)), **details}
