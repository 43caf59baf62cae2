"""Model versions: the registry, activation and rollback, and comparisons with statistics."""

from __future__ import annotations

import functools
import logging

from sqlalchemy import Connection, Select, bindparam, func, insert, null, select, text, union_all, update

from feedback_core import stats
from feedback_core.db import format_ts, read_connection, write_transaction
from feedback_core.errors import ConflictError, NotFoundError, ValidationError
from feedback_core.frames import as_date
from feedback_core.recording import write_audit
from feedback_core.schema import daily_dislikes, daily_impressions, model_versions
from feedback_core.validation import check_id, check_text

log = logging.getLogger("feedback_core")

METRICS = (
    "auc",
    "log_loss",
    "accuracy",
    "accuracy_baseline",
    "precision_at_10",
    "precision_at_10_baseline",
    "dislike_top10_share",
)

# ``expected_active`` left out: activate whatever is active now (None means "no version is").
ANY_ACTIVE = object()


def active_version_id(conn: Connection) -> int | None:
    """Return the id of the active model version, or None before the first one."""
    return conn.execute(select(model_versions.c.version_id).where(model_versions.c.active_slot == 1)).scalar()


def require_version(conn: Connection, version_id: int | None, field: str = "model_version_id") -> None:
    """Raise ValidationError naming ``field`` unless ``version_id`` is None or an existing version."""
    if version_id is None:
        return
    found = conn.execute(select(model_versions.c.version_id).where(model_versions.c.version_id == version_id))
    if found.first() is None:
        raise ValidationError(f"{field} {version_id} does not exist", field)


def version_dict(row) -> dict:
    """Shape one model_versions row."""
    weights = row.weights or {}
    return {
        "version_id": row.version_id,
        "parent_id": row.parent_id,
        "status": row.status,
        "trigger": row.trigger,
        "created_at": format_ts(row.created_at),
        "created_by": row.created_by,
        "activated_at": format_ts(row.activated_at),
        "accuracy": row.accuracy,
        "metrics": row.metrics or {},
        "examples": row.examples or {},
        "settings": row.settings or {},
        "weights": weights.get("coefficients", {}),
        "intercept": weights.get("intercept"),
        "adjustment_strength": weights.get("adjustment_strength"),
        "note": row.note,
    }


def insert_version(
    conn: Connection,
    *,
    at,
    actor: str,
    trigger: str,
    parent_id: int | None,
    weights: dict,
    metrics: dict,
    examples: dict,
    settings: dict,
    note: str | None = None,
) -> int:
    """Store a new candidate version and return its number."""
    return conn.execute(
        insert(model_versions)
        .values(
            parent_id=parent_id,
            status="candidate",
            active_slot=None,
            trigger=trigger,
            created_at=at,
            created_by=actor,
            settings=settings,
            weights=weights,
            metrics=metrics,
            examples=examples,
            accuracy=metrics.get("accuracy"),
            note=note,
        )
        .returning(model_versions.c.version_id)
    ).scalar_one()


def lock_activations(conn: Connection) -> None:
    """Take turns with every activation until the caller's transaction ends (PostgreSQL; an
    SQLite write transaction already holds the only write lock)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(7216355)"))


def activate(
    conn: Connection, version_id: int, actor: str, at, reason: str, expected_active=ANY_ACTIVE
) -> dict:
    """Make one version active and retire the previous one, inside the caller's transaction.

    Raises:
        ConflictError: ``expected_active`` was given and another version (or none) is active:
            the caller decided on what it saw, and that changed meanwhile. Nothing is written.
    """
    # Two activations at once must take turns, or the second would miss the first's change.
    lock_activations(conn)
    row = conn.execute(
        select(model_versions).where(model_versions.c.version_id == version_id).with_for_update()
    ).first()
    if row is None:
        raise NotFoundError(f"model version {version_id} not found", "version_id")
    previous = conn.execute(
        select(model_versions.c.version_id).where(model_versions.c.active_slot == 1).with_for_update()
    ).scalar()
    if previous == version_id:
        return {"version_id": version_id, "previous_version_id": previous, "changed": False}
    if expected_active is not ANY_ACTIVE and previous != expected_active:
        raise ConflictError(
            f"{_describe(previous)} is active, where {_describe(expected_active)} was expected (another "
            "activation came after you looked, or the expected one is wrong), so "
            f"version {version_id} was not activated: nothing changed; look again and decide",
            "expected_active",
        )
    if previous is not None:
        conn.execute(
            update(model_versions)
            .where(model_versions.c.version_id == previous)
            .values(status="retired", active_slot=None)
        )
    conn.execute(
        update(model_versions)
        .where(model_versions.c.version_id == version_id)
        .values(status="active", active_slot=1, activated_at=at)
    )
    # A rollback returns to an older version that served before; a never-served one is activated.
    returning = row.activated_at is not None
    action = (
        "model.rollback"
        if previous is not None and version_id < previous and returning
        else "model.activated"
    )
    write_audit(
        conn,
        at=at,
        actor=actor,
        action=action,
        entity_type="model_version",
        entity_id=version_id,
        details={"previous_version_id": previous, "reason": reason},
    )
    log.info("[FEEDBACK] Model version %s activated by %s (previous %s)", version_id, actor, previous)
    return {"version_id": version_id, "previous_version_id": previous, "changed": True}


def _describe(version_id: int | None) -> str:
    return "no version" if version_id is None else f"version {version_id}"


@functools.cache
def select_with_online_rates(by_id: bool = False, columns: tuple = ()) -> Select:
    """Select model versions (those in the bound list ``version_ids`` when ``by_id``, else all;
    newest first; ``columns``, else every column) with each one's all-time online counts as two
    more columns: ``online_dislikes`` (attributed dislikes) and ``online_impressions``, summed
    from the daily aggregates.

    One statement for what a page shows of the registry (built once per shape); a version
    without counts has 0.
    """
    shown = select(
        daily_impressions.c.model_version_id.label("version_id"),
        func.sum(daily_impressions.c.impressions).label("n"),
    ).group_by(daily_impressions.c.model_version_id)
    disliked = (
        select(
            daily_dislikes.c.model_version_id.label("version_id"),
            func.sum(daily_dislikes.c.dislikes).label("n"),
        )
        .where(daily_dislikes.c.attributed == 1)
        .group_by(daily_dislikes.c.model_version_id)
    )
    query = select(*columns) if columns else select(model_versions)
    if by_id:
        wanted = bindparam("version_ids", expanding=True)
        query = query.where(model_versions.c.version_id.in_(wanted))
        shown = shown.where(daily_impressions.c.model_version_id.in_(wanted))
        disliked = disliked.where(daily_dislikes.c.model_version_id.in_(wanted))
    shown, disliked = shown.subquery("shown"), disliked.subquery("disliked")
    return (
        query.add_columns(
            func.coalesce(disliked.c.n, 0).label("online_dislikes"),
            func.coalesce(shown.c.n, 0).label("online_impressions"),
        )
        .outerjoin(shown, shown.c.version_id == model_versions.c.version_id)
        .outerjoin(disliked, disliked.c.version_id == model_versions.c.version_id)
        .order_by(model_versions.c.version_id.desc())
    )


class Versions:
    """Model-version operations of ``FeedbackSystem``."""

    def list_model_versions(self) -> list[dict]:
        """Return every model version, newest first, each with its all-time online dislike rate
        (``online``: dislikes of its lists over its impressions, with the 95% interval and
        ``enough_data``), as the dashboard's registry shows it."""
        with read_connection(self.engine) as conn:
            rows = conn.execute(select_with_online_rates()).all()
        min_n = self.settings.min_impressions_for_rate
        return [
            {
                **version_dict(r),
                "online": _online_rate(int(r.online_dislikes), int(r.online_impressions), min_n),
            }
            for r in rows
        ]

    def get_model_version(self, version_id: int) -> dict:
        """Return one model version."""
        version_id = check_id(version_id, "version_id")
        with read_connection(self.engine) as conn:
            row = conn.execute(
                select(model_versions).where(model_versions.c.version_id == version_id)
            ).first()
        if row is None:
            raise NotFoundError(f"model version {version_id} not found", "version_id")
        return version_dict(row)

    def get_active_model_version(self) -> dict | None:
        """Return the active model version, or None before the first one."""
        with read_connection(self.engine) as conn:
            row = conn.execute(select(model_versions).where(model_versions.c.active_slot == 1)).first()
        return version_dict(row) if row is not None else None

    def activate_model_version(
        self, version_id: int, actor: str, reason: str = "manual", *, expected_active=ANY_ACTIVE
    ) -> dict:
        """Activate a version (or roll back to an earlier one): atomic and audited.

        Pass ``expected_active`` (a version id, or None for none) to act only if that is still
        the active version, checked inside the activation's transaction; else ``ConflictError``.
        Activating the version already active changes nothing (``changed`` is False).
        """
        version_id = check_id(version_id, "version_id")
        actor = check_text(actor, "actor", 120, allow_empty=False)
        if expected_active is not ANY_ACTIVE and expected_active is not None:
            expected_active = check_id(expected_active, "expected_active")
        with write_transaction(self.engine) as conn:
            result = activate(conn, version_id, actor, self.now(), reason, expected_active)
        return {**result, "version": self.get_model_version(version_id)}

    def compare_model_versions(self, a: int, b: int) -> dict:
        """Compare two versions: offline metrics, online dislike rates, the test and a verdict.

        The online figures are all time: each side's ``online`` says the days it served
        (``first_day``, ``last_day``, ``days``). Versions that served on different days also
        differ by what changed between those days, so ``shared_days`` repeats the comparison
        on the days both served (None when there are none).
        """
        a = check_id(a, "a")
        b = check_id(b, "b")
        with read_connection(self.engine) as conn:  # both versions and their counts at once
            found = conn.execute(select_with_online_rates(by_id=True), {"version_ids": [a, b]}).all()
            per_day = conn.execute(_VERSION_DAYS, {"version_ids": [a, b]}).all()
        rows = {r.version_id: r for r in found}
        for side, version_id in (("a", a), ("b", b)):
            if version_id not in rows:
                raise NotFoundError(f"model version {version_id} not found", side)
        va, vb = version_dict(rows[a]), version_dict(rows[b])
        (xa, na), (xb, nb) = ((int(rows[v].online_dislikes), int(rows[v].online_impressions)) for v in (a, b))
        min_n = self.settings.min_impressions_for_rate
        days = _days_served(per_day)
        served_a, served_b = days.get(a, {}), days.get(b, {})
        shared = sorted(set(served_a) & set(served_b))
        shared_days = None
        if shared:
            (sxa, sna), (sxb, snb) = (
                (sum(served[d][1] for d in shared), sum(served[d][0] for d in shared))
                for served in (served_a, served_b)
            )
            shared_days = {
                "first_day": shared[0],
                "last_day": shared[-1],
                "days": len(shared),
                "a": _online_rate(sxa, sna, min_n),
                "b": _online_rate(sxb, snb, min_n),
                **_judge(a, b, sxa, sna, sxb, snb, min_n),
            }
        features = sorted(set(va["weights"]) | set(vb["weights"]))
        return {
            "a": {**va, "online": {**_online_rate(xa, na, min_n), **_period(served_a)}},
            "b": {**vb, "online": {**_online_rate(xb, nb, min_n), **_period(served_b)}},
            "offline": {
                m: {
                    "a": va["metrics"].get(m),
                    "b": vb["metrics"].get(m),
                    "difference": _diff(va["metrics"].get(m), vb["metrics"].get(m)),
                }
                for m in METRICS
            },
            "offline_note": OFFLINE_NOTE,
            "weights": {f: {"a": va["weights"].get(f), "b": vb["weights"].get(f)} for f in features},
            "same_days": set(served_a) == set(served_b),
            "shared_days": shared_days,
            **_judge(a, b, xa, na, xb, nb, min_n),
        }


# Why two versions' offline figures differ by more than their models do.
OFFLINE_NOTE = (
    "each version's offline figures come from its own training run, on the examples of that moment: their "
    "difference is indicative only; a candidate's promotion note (metrics.candidate_on_same_holdout and "
    "metrics.auc_gain) compares it with the version it was trained against on the same examples"
)


# Each version's impressions and attributed dislikes per day (dislikes on their list's day,
# beside the impressions they are a share of): a few rows per day served.
_WANTED = bindparam("version_ids", expanding=True)
_VERSION_DAYS = union_all(
    select(
        daily_impressions.c.day,
        daily_impressions.c.model_version_id,
        daily_impressions.c.impressions,
        null(),
    ).where(daily_impressions.c.model_version_id.in_(_WANTED)),
    select(
        daily_dislikes.c.day,
        daily_dislikes.c.model_version_id,
        null(),
        func.sum(daily_dislikes.c.dislikes),
    )
    .where(
        daily_dislikes.c.attributed == 1,
        daily_dislikes.c.model_version_id.in_(_WANTED),
    )
    .group_by(daily_dislikes.c.day, daily_dislikes.c.model_version_id),
)


def _days_served(rows) -> dict[int, dict]:
    """Return ``{version: {day: [impressions, dislikes]}}`` for the days each version had impressions."""
    counts: dict[int, dict] = {}
    for day, version, shown, disliked in rows:
        row = counts.setdefault(int(version), {}).setdefault(as_date(day), [0, 0])
        if disliked is None:
            row[0] += int(shown or 0)
        else:
            row[1] += int(disliked or 0)
    return {v: {d: c for d, c in per_day.items() if c[0] > 0} for v, per_day in counts.items()}


def _period(served: dict) -> dict:
    """Return the first and last day a version served, and on how many days."""
    days = sorted(served)
    return {"first_day": days[0] if days else None, "last_day": days[-1] if days else None, "days": len(days)}


def _judge(a: int, b: int, xa: int, na: int, xb: int, nb: int, min_n: int) -> dict:
    """Return the difference, test, outcome and verdict of B's counts against A's."""
    impossible = [(v, x, n) for v, x, n in ((a, xa, na), (b, xb, nb)) if not 0 <= x <= n]
    if impossible:
        # More dislikes than impressions: the aggregates are wrong, and a rate or a test
        # from them would be fiction. Show the counts and say so.
        v, x, n = impossible[0]
        outcome, test = "inconsistent", stats.ProportionTest(None, None, None, None)
        verdict = f"no verdict: v{v} counts more dislikes ({x:,}) than impressions ({n:,})"
    else:
        outcome, test = stats.compare_rates(xa, na, xb, nb, min_trials=min_n)
        # Named as the registry and the dashboard name versions ("v8").
        verdict = stats.verdict(f"v{a}", f"v{b}", xa, na, xb, nb, min_trials=min_n)
    return {
        "difference": {"rate": test.difference, "ci_low": test.low, "ci_high": test.high},
        "p_value": test.p_value,
        "test": test.method,
        "outcome": outcome,
        "verdict": verdict,
    }


def _online_rate(dislikes: int, impressions: int, min_impressions: int) -> dict:
    """Return a version's online rate and ``enough_data``: no rate from impossible counts or none."""
    if not 0 <= dislikes <= impressions:
        rate = stats.Rate(dislikes, impressions, None, None, None)
    else:
        rate = stats.rate_with_interval(dislikes, impressions)
    return {**rate.as_dict(), "enough_data": rate.rate is not None and impressions >= min_impressions}


def _diff(x, y):
    return None if x is None or y is None else y - x
