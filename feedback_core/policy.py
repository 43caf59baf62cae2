"""Pure rules: dislike weights, proposed adjustments, effective weights, retrain decisions.

Nothing here touches storage; time and settings come in as arguments.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import NamedTuple

from feedback_core.errors import ValidationError
from feedback_core.settings import BLAMES, ReasonPolicy

FEATURE_TYPES = ("genre", "cast", "franchise")
TOP_CAST = 5  # the cast members a film is known by: the model's features and the patterns use these


def blamed_features(
    reason: str, genres: Sequence[str], cast: Sequence[str], franchise: str | None
) -> tuple[Sequence[str], Sequence[str], str | None]:
    """Return the (genres, cast, franchise) one dislike counts against: those its reason blames
    (``settings.BLAMES``), of the cast the ``TOP_CAST`` billed first; the rest empty."""
    blamed = BLAMES[reason]
    return (
        genres if "genre" in blamed else (),
        cast[:TOP_CAST] if "cast" in blamed else (),
        franchise if franchise and "franchise" in blamed else None,
    )


class ProposedAdjustment(NamedTuple):
    """One signed change to one user's weight for one feature value."""

    feature_type: str
    feature_value: str
    magnitude: float


def feature_keys(genres, cast, franchise) -> set[tuple[str, str]]:
    """Return the (type, value) features a film carries, as the model reads them: its genres,
    the ``TOP_CAST`` billed first, its franchise."""
    keys = {("genre", g) for g in genres or []} | {("cast", c) for c in (cast or [])[:TOP_CAST]}
    return keys | ({("franchise", franchise)} if franchise else set())


def decay_factor(days_since_latest: float) -> float:
    """Return ``max(0.5, 1 - days / 180)``: recent dislikes count fully, old ones half."""
    return max(0.5, 1.0 - max(days_since_latest, 0.0) / 180.0)


def dislike_weight(count: int, latest: datetime | None, now: datetime) -> float:
    """Return how strongly a user dislikes a movie: ``min(count / 3, 1) * decay`` (0 if none)."""
    if count <= 0 or latest is None:
        return 0.0
    # Whole days: a dislike from today decays not at all, one from yesterday a day (whatever the hours).
    days = (now.date() - latest.date()).days
    return min(count / 3.0, 1.0) * decay_factor(days)


def propose_adjustments(
    rule: ReasonPolicy,
    genres: Sequence[str] = (),
    cast: Sequence[str] = (),
    franchise: str | None = None,
) -> list[ProposedAdjustment]:
    """Return the adjustments one dislike proposes under one reason's rule, each magnitude to
    six decimals (a third of 0.15 is -0.05, not -0.049999999999999996, wherever it is shown)."""
    proposals: list[ProposedAdjustment] = []
    if rule.genre:
        proposals += [ProposedAdjustment("genre", g, round(rule.genre, 6)) for g in _unique(genres)]
    if rule.cast:
        top = _unique(cast)[: rule.cast_limit]
        proposals += [ProposedAdjustment("cast", c, round(rule.cast, 6)) for c in top]
    if rule.franchise and franchise:
        proposals.append(ProposedAdjustment("franchise", franchise, round(rule.franchise, 6)))
    return proposals


def adjustments_as_dict(reason: str, proposals: Iterable[ProposedAdjustment]) -> dict:
    """Shape proposals like the specification's ``feature_adjustments`` object."""
    shaped: dict = {
        "genre_adjustments": {},
        "cast_adjustments": {},
        "franchise_adjustments": {},
        "reason": reason,
    }
    for p in proposals:
        shaped[f"{p.feature_type}_adjustments"][p.feature_value] = round(p.magnitude, 6)
    return shaped


# The note of a proposal withdrawn (stored as rejected) because its dislike was retracted: no
# approver decided it.
RETRACTED_NOTE = "dislike retracted"

# Who decided a proposal FEEDBACK_AUTO_APPROVE applied at once: no approver.
AUTO_APPROVER = "auto-approve"


def clamp_weight(value: float, low: float = 0.1, high: float = 2.0) -> float:
    """Clamp an effective weight into ``[low, high]``."""
    return min(max(value, low), high)


def effective_weight(adjustment_sum: float, low: float = 0.1, high: float = 2.0) -> float:
    """Return ``clamp(1.0 + sum of applied adjustments)``."""
    return clamp_weight(1.0 + adjustment_sum, low, high)


def apply_feature_adjustments(
    current_weights: Mapping[str, Mapping[str, float]] | None,
    adjustments: Mapping,
    low: float = 0.1,
    high: float = 2.0,
) -> dict[str, dict[str, float]]:
    """Return new weights with ``adjustments`` added and clamped; the input is never mutated.

    ``current_weights`` maps a feature kind (``genre``/``cast``/``franchise``) to
    ``{value: weight}``; a value not present starts at 1.0. ``adjustments`` is the
    specification's shape (``genre_adjustments``, ``cast_adjustments``, ...).
    """
    result = {kind: dict(values) for kind, values in (current_weights or {}).items()}
    for kind in FEATURE_TYPES:
        for value, delta in (adjustments.get(f"{kind}_adjustments") or {}).items():
            if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not math.isfinite(delta):
                # ValidationError (a ValueError) so the API answers 400, not 500.
                raise ValidationError(
                    f"{kind}_adjustments[{value!r}] must be a finite number, got {delta!r}",
                    f"{kind}_adjustments",
                )
            bucket = result.setdefault(kind, {})
            bucket[value] = clamp_weight(bucket.get(value, 1.0) + delta, low, high)
    return result


def should_retrain(untrained_count: int, threshold: int, job_active: bool) -> bool:
    """Decide whether to queue a retrain: enough unused examples and none under way."""
    return untrained_count >= threshold and not job_active


def _unique(values: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for v in values:
        if v not in seen:
            seen[v] = None
    return list(seen)
