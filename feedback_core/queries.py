"""Dashboard data: one function per question a page asks, aggregated in SQL.

Every function takes the ``FeedbackSystem`` (for its engine, settings and clock) and returns
a pandas DataFrame or a plain dict. Trends and rates read the maintained daily aggregates,
never the raw event tables; the few lists of single rows (latest dislikes, the inbox, one
user's history, the audit log) are bounded by an index and a limit. Filters arrive as
``start``/``end`` dates (inclusive, UTC), ``versions`` (model version ids; 0 means "served by
no version") and ``reasons``; an empty filter means "all".
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import (
    Connection,
    Select,
    String,
    Table,
    bindparam,
    case,
    cast,
    func,
    inspect,
    literal,
    null,
    or_,
    select,
    text,
    union_all,
)

from feedback_core.analytics import active_version_summary
from feedback_core.db import head_revision, read_connection
from feedback_core.frames import as_date, to_frame
from feedback_core.recording import count_pending_examples
from feedback_core.schema import (
    audit_log,
    daily_dislikes,
    daily_impressions,
    daily_reason_genre,
    daily_score_histogram,
    feature_adjustments,
    model_versions,
    movie_dislike_stats,
    movies,
    retrain_jobs,
)
from feedback_core.stats import ProportionTest, Rate, rate_with_interval, two_proportion_test
from feedback_core.validation import check_limit
from feedback_core.versions import METRICS as OFFLINE_METRICS
from feedback_core.versions import select_with_online_rates

ACTIVATION_ACTIONS = ("model.activated", "model.rollback")  # written by versions.activate
PENDING_CAP = 100_000  # counting unused examples stops here: "100,000+" is answer enough


def version_label(version_id: Any) -> str:
    """Return how a model version is named on screen (``v3``; 0/None: ``no version``)."""
    if version_id is None or pd.isna(version_id) or int(version_id) == 0:
        return "no version"
    return f"v{int(version_id)}"


# ---------------------------------------------------------------- helpers


def _day_range(table, start: date, end: date) -> list:
    return [table.c.day >= start, table.c.day <= end]


def _dislike_where(start, end, versions, reasons, table: Table = daily_dislikes) -> list:
    """The window and filters on one of the daily dislike tables (each has day, version, reason)."""
    where = _day_range(table, start, end)
    if versions:
        where.append(table.c.model_version_id.in_(versions))
    if reasons:
        where.append(table.c.reason.in_(reasons))
    return where


def _impression_where(start, end, versions) -> list:
    where = _day_range(daily_impressions, start, end)
    if versions:
        where.append(daily_impressions.c.model_version_id.in_(versions))
    return where


def version_condition(column, versions: Sequence[int]):
    """Match ``versions`` on a column where 0 stands for NULL in the raw tables."""
    wanted = [int(v) for v in versions if int(v) != 0]
    clauses = [column.in_(wanted)] if wanted else []
    if any(int(v) == 0 for v in versions):
        clauses.append(column.is_(None))
    return or_(*clauses)


def counts_possible(events: int, trials: int) -> bool:
    """Say whether ``events`` of ``trials`` can be a rate (none negative, no more events than trials)."""
    return 0 <= events <= trials


def _rate(events: int, trials: int, min_trials: int) -> tuple[Rate, bool]:
    """Return a row's rate and whether it may be shown (``enough``).

    Counts that cannot be a rate (more dislikes than impressions: aggregates gone wrong, or a
    day's dislikes of the day before's lists) get no rate, not a clamped one, and never raise:
    a page shows them flagged. A rate is ``enough`` on at least ``min_trials`` impressions and
    never on none, whatever ``min_trials`` is.
    """
    if not counts_possible(events, trials):
        return Rate(events, trials, None, None, None), False
    rate = rate_with_interval(events, trials)
    return rate, rate.rate is not None and trials >= min_trials


def _rate_row(events: int, trials: int, min_trials: int) -> tuple:
    """Return (rate, ci_low, ci_high, enough) of one row."""
    rate, enough = _rate(events, trials, min_trials)
    return rate.rate, rate.low, rate.high, enough


def rate_fields(events: int, trials: int, min_trials: int) -> dict:
    """Return a rate's fields (events, trials, rate, ci_low, ci_high) and ``enough``."""
    rate, enough = _rate(events, trials, min_trials)
    return {**rate.as_dict(), "enough": enough}


# ---------------------------------------------------------------- database and filters


@functools.cache
def _head_revision() -> str:
    # Reading the migration scripts costs tens of milliseconds; they do not change while we run.
    return head_revision()


# Does any of these have a row? Asked in one statement.
_ANY_DATA = [
    select(column).limit(1).exists()
    for column in (daily_impressions.c.day, daily_dislikes.c.day, model_versions.c.version_id)
]


def get_database_state(system) -> dict:
    """Say whether the database has a schema (``missing``), any data (``empty``/``ready``), and is current."""
    head = _head_revision()
    # One read transaction (the page's, inside a reading session), not one per question.
    with read_connection(system.engine) as conn:
        revision = None
        if inspect(conn).has_table("alembic_version"):  # what db.current_revision asks
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        has_data = revision is not None and any(conn.execute(select(*_ANY_DATA)).one())
    state = {"revision": revision, "head": head, "outdated": revision is not None and revision != head}
    if revision is None:
        return {**state, "status": "missing"}
    return {**state, "status": "ready" if has_data else "empty"}


# The first and last day of each daily table, in one statement.
_BOUNDS = select(
    *(
        select(edge(table.c.day)).scalar_subquery()
        for table in (daily_impressions, daily_dislikes)
        for edge in (func.min, func.max)
    )
)


def get_data_bounds(system) -> dict:
    """Return the first and last day with impressions or dislikes (None when there are none)."""
    with read_connection(system.engine) as conn:
        row = conn.execute(_BOUNDS).one()
    days = [d for d in map(as_date, row) if d is not None]
    return {"first_day": min(days) if days else None, "last_day": max(days) if days else None}


_FILTER_VERSIONS = select(model_versions.c.version_id, model_versions.c.status).order_by(
    model_versions.c.version_id.desc()
)


def list_filter_versions(system) -> pd.DataFrame:
    """Return the model versions to filter by (version_id, status), newest first."""
    with read_connection(system.engine) as conn:
        rows = conn.execute(_FILTER_VERSIONS).all()
    return to_frame(rows, ["version_id", "status"])


# ---------------------------------------------------------------- overview


def _window_totals(
    conn: Connection, windows: Sequence[tuple[date, date]], versions, reasons, min_trials: int
) -> list[dict]:
    """Return the totals of each ``(start, end)`` window (windows that do not overlap), with
    ``days_with_impressions`` (a window the data covers only in part).

    One statement for all of them, per day (a few dozen rows), summed here: a round trip per
    window and table is what a page pays for most on PostgreSQL.
    """
    low, high = min(s for s, _ in windows), max(e for _, e in windows)
    per_day = union_all(
        select(
            daily_dislikes.c.day,
            daily_dislikes.c.attributed,
            func.sum(daily_dislikes.c.dislikes),
            func.sum(daily_dislikes.c.score_sum),
            func.sum(daily_dislikes.c.scored),
        )
        .where(*_dislike_where(low, high, versions, reasons))
        .group_by(daily_dislikes.c.day, daily_dislikes.c.attributed),
        # attributed NULL marks the impressions' rows
        select(daily_impressions.c.day, null(), func.sum(daily_impressions.c.impressions), null(), null())
        .where(*_impression_where(low, high, versions))
        .group_by(daily_impressions.c.day),
    )
    sums = [{"shown": 0, "days": 0, 0: [0, 0.0], 1: [0, 0.0], "scored": 0} for _ in windows]
    for day, attributed, n, score_sum, scored in conn.execute(per_day).all():
        day = as_date(day)
        window = next((i for i, (s, e) in enumerate(windows) if s <= day <= e), None)
        if window is None:
            continue
        if attributed is None:
            sums[window]["shown"] += int(n or 0)
            sums[window]["days"] += bool(n)
        else:
            kind = sums[window][1 if int(attributed) == 1 else 0]
            kind[0] += int(n or 0)
            kind[1] += float(score_sum or 0.0)
            sums[window]["scored"] += int(scored or 0)
    totals = []
    for (start, end), counted in zip(windows, sums, strict=True):
        (attributed, attributed_sum), (unattributed, unattributed_sum) = counted[1], counted[0]
        total = attributed + unattributed
        totals.append(
            {
                "start": start,
                "end": end,
                "dislikes": total,
                "attributed_dislikes": attributed,
                "impressions": counted["shown"],
                "days_with_impressions": counted["days"],
                # Of the dislikes whose score is known (none: no mean).
                "mean_predicted_score": (
                    (attributed_sum + unattributed_sum) / counted["scored"] if counted["scored"] else None
                ),
                "scored_dislikes": counted["scored"],
                "dislike_rate": rate_fields(attributed, counted["shown"], min_trials),
            }
        )
    return totals


WAITING_CAP = 10_000
_PROPOSALS_WAITING = select(func.count()).select_from(
    select(feature_adjustments.c.adjustment_id)
    .where(feature_adjustments.c.status == "proposed")
    .limit(bindparam("cap"))
    .subquery()
)


def get_overview(system, start: date, end: date, versions=(), reasons=()) -> dict:
    """Return the headline numbers of the window and of the window of equal length before it,
    each with ``days_with_impressions`` (a window the data covers only in part has counts that
    are not comparable with a full one's)."""
    length = (end - start).days + 1
    previous_end = start - timedelta(days=1)
    previous_start = previous_end - timedelta(days=length - 1)
    min_trials = system.settings.min_impressions_for_rate
    with read_connection(system.engine) as conn:
        current, previous = _window_totals(
            conn, [(start, end), (previous_start, previous_end)], versions, reasons, min_trials
        )
        pending = count_pending_examples(conn, cap=PENDING_CAP)
        waiting = conn.execute(_PROPOSALS_WAITING, {"cap": WAITING_CAP}).scalar_one()
        active = active_version_summary(conn)
    return {
        "current": current,
        "previous": previous,
        "untrained_examples": pending,
        "untrained_capped": pending >= PENDING_CAP,
        # The approval inbox's size (up to WAITING_CAP: "10,000+" is answer enough on a page).
        "proposals_waiting": waiting,
        "proposals_capped": waiting >= WAITING_CAP,
        "retrain_threshold": system.settings.FEEDBACK_ACCUMULATION_THRESHOLD,
        "active_version": active,
    }


def list_daily_rates(system, start: date, end: date, versions=(), reasons=()) -> pd.DataFrame:
    """Return the dislike rate per day and serving version, with intervals and ``enough``."""
    dis_where = [*_dislike_where(start, end, versions, reasons), daily_dislikes.c.attributed == 1]
    imp_where = _impression_where(start, end, versions)
    counts: dict[tuple, list[int]] = {}
    both = union_all(  # one round trip: impressions rows have dislikes NULL, and the other way round
        select(
            daily_impressions.c.day,
            daily_impressions.c.model_version_id,
            daily_impressions.c.impressions,
            null(),
        ).where(*imp_where),
        select(
            daily_dislikes.c.day,
            daily_dislikes.c.model_version_id,
            null(),
            func.sum(daily_dislikes.c.dislikes),
        )
        .where(*dis_where)
        .group_by(daily_dislikes.c.day, daily_dislikes.c.model_version_id),
    )
    with read_connection(system.engine) as conn:
        for day, version, shown, disliked in conn.execute(both).all():
            row = counts.setdefault((as_date(day), int(version)), [0, 0])
            if disliked is None:
                row[0] += int(shown or 0)
            else:
                row[1] += int(disliked or 0)
    min_trials = system.settings.min_impressions_for_rate
    rows = []
    for (day, version), (shown, disliked) in sorted(counts.items()):
        rows.append(
            (day, version, shown, disliked, version_label(version), *_rate_row(disliked, shown, min_trials))
        )
    columns = ["day", "model_version_id", "impressions", "dislikes", "version"]
    columns += ["rate", "ci_low", "ci_high", "enough"]
    dtypes = {"day": "day", "model_version_id": "int64", "impressions": "int64", "dislikes": "int64"}
    return to_frame(rows, columns, dtypes)


_ACTIVATIONS = union_all(  # one round trip; the registry's ids as text, like the audit log's
    select(audit_log.c.entity_id, audit_log.c.at, audit_log.c.action).where(
        audit_log.c.entity_type == "model_version",
        audit_log.c.outcome == "ok",
        audit_log.c.action.in_(ACTIVATION_ACTIONS),
    ),
    select(cast(model_versions.c.version_id, String), model_versions.c.activated_at, null()).where(
        model_versions.c.activated_at.is_not(None)
    ),
)


def list_version_activations(system) -> pd.DataFrame:
    """Return when each model version was activated (from the audit log and the registry), with
    a ``label`` saying how: activated, activated again, or a rollback (to an older version)."""
    with read_connection(system.engine) as conn:
        found = conn.execute(_ACTIVATIONS).all()
    # Every audited activation; the registry's (its latest per version) only where no audit
    # record of it is within a second (activations made before they were audited).
    audited = [(int(v), pd.Timestamp(at), action) for v, at, action in found if action and str(v).isdigit()]
    registry = [
        (int(v), pd.Timestamp(at), None) for v, at, action in found if not action and str(v).isdigit()
    ]
    events = audited + [
        (v, at, None)
        for v, at, _ in registry
        if not any(v == w and abs(at - when) < pd.Timedelta(seconds=1) for w, when, _ in audited)
    ]
    seen: set[int] = set()
    listed = []
    for v, exact, action in sorted(events, key=lambda event: event[1]):
        at = exact.floor("s")
        label = version_label(v)
        if action == "model.rollback":
            label += " activated (rollback)"
        elif v in seen:
            label += " activated again"
        else:
            label += " activated"
        listed.append((v, at, version_label(v), label))
        seen.add(v)
    return to_frame(listed, ["model_version_id", "activated_at", "version", "label"])


# A day is judged this long after it ends (UTC): the lists shown late in it are still
# collecting dislikes after midnight.
DAY_SETTLES = timedelta(hours=6)


def last_settled_day(now: datetime) -> date:
    """Return the latest day settled at ``now`` (UTC): ended ``DAY_SETTLES`` ago or more."""
    return (now - DAY_SETTLES).date() - timedelta(days=1)


def get_latest_day_check(system, end: date, versions=(), reasons=(), baseline_days: int = 7) -> dict:
    """Test whether the latest settled day's dislike rate differs significantly from the days before it.

    A day is settled ``DAY_SETTLES`` after it has ended (UTC) by the system's clock. A dislike
    counts on its list's day, so a day whose lists are still collecting dislikes has a rate
    that only rises, and judging it would report improvements that are not there. The current
    day (when ``end`` reaches it) comes back as ``today``, its rate so far, without a verdict
    (None when it has no impressions yet).
    """
    min_trials = system.settings.min_impressions_for_rate
    now = system.now()
    today = now.date()
    last_complete = min(end, last_settled_day(now))
    with read_connection(system.engine) as conn:
        where = [daily_impressions.c.day <= last_complete]
        if versions:
            where.append(daily_impressions.c.model_version_id.in_(versions))
        latest = as_date(conn.execute(select(func.max(daily_impressions.c.day)).where(*where)).scalar())
        windows = [(today, today)] if end >= today else []
        if latest is not None:
            base_start, base_end = latest - timedelta(days=baseline_days), latest - timedelta(days=1)
            windows += [(latest, latest), (base_start, base_end)]
        totals = _window_totals(conn, windows, versions, reasons, min_trials) if windows else []
    so_far = totals.pop(0) if end >= today else None
    current = {
        "today": today,
        "today_so_far": so_far["dislike_rate"] if so_far and so_far["impressions"] else None,
    }
    if latest is None:
        return {"status": "no_data", "latest_day": None, **current}
    day, base = totals
    x_b, n_b = day["attributed_dislikes"], day["impressions"]
    x_a, n_a = base["attributed_dislikes"], base["impressions"]
    latest_rate, baseline_rate = day["dislike_rate"], base["dislike_rate"]
    if not (counts_possible(x_a, n_a) and counts_possible(x_b, n_b)):
        # More dislikes than impressions: there is no rate to test, and the page says why.
        status, test = "inconsistent", ProportionTest(None, None, None, None)
    else:
        test = two_proportion_test(x_a, n_a, x_b, n_b)
        if not (latest_rate["enough"] and baseline_rate["enough"]):
            status = "insufficient"
        elif test.p_value >= 0.05:
            status = "steady"
        else:
            status = "worse" if test.difference > 0 else "better"
    return {
        "status": status,
        "latest_day": latest,
        "baseline_start": base_start,
        "baseline_end": base_end,
        "latest": latest_rate,
        "baseline": baseline_rate,
        "baseline_days": base["days_with_impressions"],
        "difference": test.difference,
        "p_value": test.p_value,
        "test": test.method,
        **current,
    }


# ---------------------------------------------------------------- reasons


def count_days_with_impressions(system, start: date, end: date, versions=()) -> int:
    """Return on how many days of the window the selection showed anything: a window "before"
    that the data covers on two of its 28 days compares with two days, not four weeks."""
    with read_connection(system.engine) as conn:
        return int(
            conn.execute(
                select(func.count(func.distinct(daily_impressions.c.day))).where(
                    *_impression_where(start, end, versions), daily_impressions.c.impressions > 0
                )
            ).scalar_one()
        )


def list_reason_counts(system, start: date, end: date, versions=(), reasons=()) -> pd.DataFrame:
    """Return dislikes per reason in the window, with their share, mean predicted score and the
    reason's own dislike rate: its dislikes on shown lists over the window's impressions (with
    ``impressions``, ``rate``, ``ci_low``, ``ci_high``, ``enough``). A share moves when another
    reason surges; a reason's rate moves only with its own dislikes."""
    attributed = func.sum(case((daily_dislikes.c.attributed == 1, daily_dislikes.c.dislikes), else_=0))
    with read_connection(system.engine) as conn:
        rows = conn.execute(
            select(
                daily_dislikes.c.reason,
                func.sum(daily_dislikes.c.dislikes),
                func.sum(daily_dislikes.c.score_sum),
                attributed,
                func.sum(daily_dislikes.c.scored),
            )
            .where(*_dislike_where(start, end, versions, reasons))
            .group_by(daily_dislikes.c.reason)
        ).all()
        shown = conn.execute(
            select(func.coalesce(func.sum(daily_impressions.c.impressions), 0)).where(
                *_impression_where(start, end, versions)
            )
        ).scalar_one()
    min_trials = system.settings.min_impressions_for_rate
    counted = [
        (reason, int(n), float(score_sum or 0.0), int(on_lists or 0), int(scored or 0))
        for reason, n, score_sum, on_lists, scored in rows
        if n and int(n) > 0
    ]
    counted.sort(key=lambda r: (-r[1], r[0]))  # most dislikes first
    total = sum(r[1] for r in counted)
    records = []
    for reason, n, score_sum, on_lists, scored in counted:
        rate = rate_fields(on_lists, int(shown), min_trials)
        records.append(
            (
                reason,
                n,
                n / total,
                score_sum / scored if scored else None,  # of the dislikes whose score is known
                on_lists,
                int(shown),
                rate["rate"],
                rate["ci_low"],
                rate["ci_high"],
                rate["enough"],
            )
        )
    columns = ["reason", "dislikes", "share", "mean_predicted_score", "on_lists", "impressions"]
    columns += ["rate", "ci_low", "ci_high", "enough"]
    dtypes = {"dislikes": "int64", "share": "float64", "mean_predicted_score": "float64", "on_lists": "int64"}
    return to_frame(records, columns, dtypes | {"impressions": "int64", "enough": "bool"})


def list_reason_trend(system, start: date, end: date, versions=(), reasons=()) -> pd.DataFrame:
    """Return dislikes per day and reason."""
    with read_connection(system.engine) as conn:
        rows = conn.execute(
            select(daily_dislikes.c.day, daily_dislikes.c.reason, func.sum(daily_dislikes.c.dislikes))
            .where(*_dislike_where(start, end, versions, reasons))
            .group_by(daily_dislikes.c.day, daily_dislikes.c.reason)
            .order_by(daily_dislikes.c.day, daily_dislikes.c.reason)
        ).all()
    rows = [(day, reason, int(n)) for day, reason, n in rows if n and int(n) > 0]
    return to_frame(rows, ["day", "reason", "dislikes"], {"day": "day", "dislikes": "int64"})


def list_reason_genre(
    system, start: date, end: date, versions=(), reasons=(), top_genres: int = 15
) -> pd.DataFrame:
    """Return dislikes per reason and genre for the most disliked genres of the window."""
    where = _dislike_where(start, end, versions, reasons, daily_reason_genre)
    with read_connection(system.engine) as conn:
        # One pass over the window's (reason, genre) totals: a few hundred rows at most.
        rows = conn.execute(
            select(
                daily_reason_genre.c.reason,
                daily_reason_genre.c.genre,
                func.sum(daily_reason_genre.c.dislikes),
            )
            .where(*where)
            .group_by(daily_reason_genre.c.reason, daily_reason_genre.c.genre)
        ).all()
    rows = [(reason, genre, int(n)) for reason, genre, n in rows if n and int(n) > 0]
    per_genre: dict[str, int] = {}
    for _, genre, n in rows:
        per_genre[genre] = per_genre.get(genre, 0) + n
    top = set(sorted(per_genre, key=lambda g: (-per_genre[g], g))[:top_genres])
    kept = sorted((genre, reason, n) for reason, genre, n in rows if genre in top)
    return to_frame([(r, g, n) for g, r, n in kept], ["reason", "genre", "dislikes"], {"dislikes": "int64"})


# ---------------------------------------------------------------- prediction errors


def list_score_histogram(system, start: date, end: date, versions=(), reasons=()) -> pd.DataFrame:
    """Return the predicted scores of dislikes in ten buckets per version, with each bucket's share."""
    where = _dislike_where(start, end, versions, reasons, daily_score_histogram)
    with read_connection(system.engine) as conn:
        rows = conn.execute(
            select(
                daily_score_histogram.c.model_version_id,
                daily_score_histogram.c.bucket,
                func.sum(daily_score_histogram.c.dislikes),
            )
            .where(*where)
            .group_by(daily_score_histogram.c.model_version_id, daily_score_histogram.c.bucket)
        ).all()
    rows = sorted((int(v), int(b), int(n)) for v, b, n in rows if n and int(n) > 0)
    per_version: dict[int, int] = {}
    for version, _, n in rows:
        per_version[version] = per_version.get(version, 0) + n
    records = [(v, b, n, b / 10, (b + 1) / 10, n / per_version[v], version_label(v)) for v, b, n in rows]
    columns = ["model_version_id", "bucket", "dislikes", "bucket_start", "bucket_end", "share", "version"]
    dtypes = {"model_version_id": "int64", "bucket": "int64", "dislikes": "int64", "share": "float64"}
    return to_frame(records, columns, dtypes)


def list_error_by_version(system, start: date, end: date, versions=(), reasons=()) -> pd.DataFrame:
    """Return dislikes and their mean predicted score (the mean error) per version, with
    ``scored``: the dislikes the mean is of (those whose score is known; none: no mean), and
    ``shown_mean_score``: the mean score the version gave every item it showed in the window
    (of ``shown_scored`` items shown with one), beside ``listed_mean_error``: the mean error of
    its dislikes of those lists (of ``listed_scored``). A mean error says how confident the
    model was about what was disliked only beside what it predicted for everything it showed;
    dislikes sent without a list (no version) carry the caller's scores, not those of the
    lists, and stay out of that comparison."""
    dis, imp = daily_dislikes.c, daily_impressions.c
    listed = dis.attributed == 1
    with read_connection(system.engine) as conn:
        rows = conn.execute(
            union_all(
                select(
                    dis.model_version_id,
                    literal(1),
                    func.sum(dis.dislikes),
                    func.sum(dis.score_sum),
                    func.sum(dis.scored),
                    func.sum(case((listed, dis.score_sum), else_=0.0)),
                    func.sum(case((listed, dis.scored), else_=0)),
                )
                .where(*_dislike_where(start, end, versions, reasons))
                .group_by(dis.model_version_id),
                select(
                    imp.model_version_id,
                    literal(0),
                    func.sum(imp.impressions),
                    func.sum(imp.score_sum),
                    func.sum(imp.scored),
                    literal(0.0),
                    literal(0),
                )
                .where(*_impression_where(start, end, versions))
                .group_by(imp.model_version_id),
            )
        ).all()
    shown = {int(r[0]): (float(r[3] or 0.0), int(r[4] or 0)) for r in rows if not r[1]}
    records = []
    for v, disliked, n, score_sum, scored, listed_sum, listed_scored in rows:
        if not disliked or not n or int(n) <= 0:
            continue
        shown_sum, shown_scored = shown.get(int(v), (0.0, 0))
        scored, listed_scored = int(scored or 0), int(listed_scored or 0)
        records.append(
            (
                int(v),
                int(n),
                float(score_sum or 0.0) / scored if scored else None,
                version_label(v),
                scored,
                shown_sum / shown_scored if shown_scored else None,
                shown_scored,
                float(listed_sum or 0.0) / listed_scored if listed_scored else None,
                listed_scored,
            )
        )
    records.sort()
    columns = ["model_version_id", "dislikes", "mean_prediction_error", "version", "scored"]
    columns += ["shown_mean_score", "shown_scored", "listed_mean_error", "listed_scored"]
    dtypes = {
        "model_version_id": "int64",
        "dislikes": "int64",
        "mean_prediction_error": "float64",
        "scored": "int64",
        "shown_mean_score": "float64",
        "shown_scored": "int64",
        "listed_mean_error": "float64",
        "listed_scored": "int64",
    }
    return to_frame(records, columns, dtypes)


def _confident_mistakes() -> Select:
    stats = movie_dislike_stats
    order = (stats.c.high_score_dislikes.desc(), stats.c.dislikes.desc(), stats.c.movie_id)
    # The top films first, then their titles: joining the whole catalogue before the top-N
    # sort cost PostgreSQL several times more.
    top = (
        select(stats)
        .where(stats.c.high_score_dislikes > 0)
        .order_by(*order)
        .limit(bindparam("limit"))
        .subquery()
    )
    return (
        select(
            top.c.movie_id,
            movies.c.title,
            top.c.dislikes,
            top.c.high_score_dislikes,
            top.c.score_sum,
            top.c.last_disliked_at,
            top.c.scored,
        )
        .join(movies, movies.c.movie_id == top.c.movie_id)
        .order_by(top.c.high_score_dislikes.desc(), top.c.dislikes.desc(), top.c.movie_id)
    )


_CONFIDENT_MISTAKES = _confident_mistakes()  # built once: it costs more than it runs


def list_confident_mistakes(system, limit: int = 15) -> pd.DataFrame:
    """Return the films with the most high-score dislikes (all time)."""
    with read_connection(system.engine) as conn:
        rows = conn.execute(_CONFIDENT_MISTAKES, {"limit": int(limit)}).all()
    # (A row counted by a release before 0011 beside this one can lack its scored count.)
    records = [
        (m, title, n, high, last, score_sum / scored if scored else None)
        for m, title, n, high, score_sum, last, scored in rows
    ]
    columns = ["movie_id", "title", "dislikes", "high_score_dislikes", "last_disliked_at"]
    return to_frame(records, [*columns, "mean_predicted_score"], {"last_disliked_at": "time"})


# ---------------------------------------------------------------- model versions


# The kinds of example a training run counts (training.py): their sum is what it trained on.
TRAINING_KINDS = ("positives", "negatives_from_ratings", "shown_not_disliked", "negatives_from_dislikes")


def list_versions(system) -> pd.DataFrame:
    """Return the registry: each version's metadata, what it was trained on (``trained_on``
    examples, ``new_dislikes``: the negative examples from dislikes it was the first to use;
    None for a version recorded without them), offline metrics and all-time online rate."""
    mv = model_versions.c
    columns = (mv.version_id, mv.status, mv.trigger, mv.parent_id, mv.created_at, mv.created_by)
    columns += (mv.activated_at, mv.metrics, mv.examples)
    with read_connection(system.engine) as conn:  # the registry and its counts in one statement
        rows = conn.execute(select_with_online_rates(columns=columns)).all()
    min_trials = system.settings.min_impressions_for_rate
    records = []
    for (
        version_id,
        status,
        trigger,
        parent,
        created_at,
        created_by,
        activated_at,
        metrics,
        used,
        x,
        n,
    ) in rows:
        metrics, used = metrics or {}, used or {}
        kinds = [used.get(k) for k in TRAINING_KINDS]
        trained_on = sum(kinds) if all(isinstance(k, int) for k in kinds) else None
        x, n = int(x or 0), int(n or 0)
        records.append(
            (
                version_id,
                version_label(version_id),
                status,
                trigger,
                version_label(parent) if parent else "",
                created_at,
                created_by,
                activated_at,
                trained_on,
                used.get("new_negative_examples"),
                *(metrics.get(m) for m in OFFLINE_METRICS),
                x,
                n,
                *_rate_row(x, n, min_trials),
            )
        )
    names = ["version_id", "version", "status", "trigger", "parent", "created_at", "created_by"]
    names += ["activated_at", "trained_on", "new_dislikes", *OFFLINE_METRICS]
    names += ["dislikes", "impressions", "rate", "ci_low", "ci_high"]
    names += ["enough"]
    # Shown to the second, as the registry's own reads format them.
    return to_frame(records, names, {"created_at": "seconds", "activated_at": "seconds"})


def compare_versions(system, a: int, b: int) -> dict:
    """Return ``FeedbackSystem.compare_model_versions`` with its parts as tables for the page."""
    result = system.compare_model_versions(a, b)
    name_a, name_b = version_label(a), version_label(b)
    if name_a == name_b:  # a version against itself: the tables still need two columns
        name_a, name_b = f"{name_a} (A)", f"{name_b} (B)"
    offline = pd.DataFrame(
        [
            {"metric": m, name_a: v["a"], name_b: v["b"], "difference": v["difference"]}
            for m, v in result["offline"].items()
        ],
        columns=["metric", name_a, name_b, "difference"],
    )
    online = _online_frame(result, {side: result[side]["online"] for side in ("a", "b")})
    shared = result["shared_days"]
    if shared is not None:
        period = {k: shared[k] for k in ("first_day", "last_day", "days")}
        rates = {side: {**shared[side], **period} for side in ("a", "b")}
        shared = {**period, "online": _online_frame(result, rates), **_judged(shared)}
    weights = pd.DataFrame(
        [{"feature": f, name_a: w["a"], name_b: w["b"]} for f, w in result["weights"].items()],
        columns=["feature", name_a, name_b],
    )
    weights["difference"] = pd.to_numeric(weights[name_b]) - pd.to_numeric(weights[name_a])
    return {
        "a": a,
        "b": b,
        "offline": offline,
        "online": online,
        **_judged(result),
        "same_days": result["same_days"],
        "shared_days": shared,
        "weights": weights,
    }


def _online_frame(result: dict, online: dict) -> pd.DataFrame:
    """Return the two versions' online counts and rates as rows (A first), with the days they cover."""
    records = []
    for side in ("a", "b"):
        rate = period = online[side]
        records.append(
            {
                "version_id": result[side]["version_id"],
                "version": version_label(result[side]["version_id"]),
                "dislikes": rate["events"],
                "impressions": rate["trials"],
                "rate": rate["rate"],
                "ci_low": rate["ci_low"],
                "ci_high": rate["ci_high"],
                "enough": rate["enough_data"],
                "first_day": period["first_day"],
                "last_day": period["last_day"],
                "days": period["days"],
            }
        )
    return pd.DataFrame(records)


def _judged(result: dict) -> dict:
    """Return a comparison's difference, test, outcome and verdict as flat fields."""
    return {
        "difference": result["difference"]["rate"],
        "difference_low": result["difference"]["ci_low"],
        "difference_high": result["difference"]["ci_high"],
        "p_value": result["p_value"],
        "test": result["test"],
        "outcome": result["outcome"],
        "verdict": result["verdict"],
    }


# ---------------------------------------------------------------- retrain


def get_retrain_status(system) -> dict:
    """Return untrained examples against the threshold, the job under way, and candidate vs active.

    The candidate is compared with the version that was active when it was trained, both
    evaluated on the candidate's examples that version never saw, when training recorded that
    (the fair comparison; that version is ``baseline_version_id``, which may no longer be the
    active one; ``compared_examples`` and ``compared_since`` say which examples), else with
    the active version's own metrics (``baseline_on_same_examples`` False). The comparison's
    ``active`` column holds the baseline's figures.
    """
    with read_connection(system.engine) as conn:
        pending = count_pending_examples(conn, cap=PENDING_CAP)
        rows = conn.execute(_RETRAIN_STATE).all()
    job, candidate_id, newest_id = rows[0].job_id, rows[0].candidate_id, rows[0].newest_candidate_id
    active = candidate = None  # their metrics
    active_id = parent_id = None
    for row in rows:
        if row.active_slot == 1:
            active_id, active = row.version_id, row.metrics or {}
        if candidate_id is not None and row.version_id == candidate_id:
            candidate, parent_id = row.metrics or {}, row.parent_id
    # What the candidate is compared with: the version active when it was trained, scored on
    # the candidate's own examples (which may no longer be the active one), else the active
    # version's own figures.
    baseline = baseline_id = None
    same_examples = False
    own = candidate
    if candidate is not None:
        if candidate.get("active_on_same_holdout"):
            baseline, baseline_id, same_examples = candidate["active_on_same_holdout"], parent_id, True
            # The candidate on those same examples (older versions recorded only its own figures).
            own = candidate.get("candidate_on_same_holdout") or candidate
        else:
            baseline, baseline_id = active, active_id
    gain = (candidate or {}).get("auc_gain") if same_examples else None
    comparison = _side_by_side(baseline, own, gain, ["metric", "active", "candidate"])
    promotion = (candidate or {}).get("promotion") or {}
    return {
        "untrained_examples": pending,
        "untrained_capped": pending >= PENDING_CAP,
        "retrain_threshold": system.settings.FEEDBACK_ACCUMULATION_THRESHOLD,
        "job": system.get_retrain_job(job) if job else None,
        "active_version_id": active_id,
        "candidate_version_id": candidate_id,
        # Without one to offer, the newest candidate trained before the active version (None
        # when there is none): superseded by it, it can still be activated from the registry.
        "superseded_candidate_id": newest_id if candidate_id is None else None,
        "baseline_version_id": baseline_id,
        "baseline_on_same_examples": same_examples,
        "compared_examples": (baseline or {}).get("held_out") if same_examples else None,
        "compared_since": (own or {}).get("since") if same_examples else None,
        "candidate_note": promotion.get("reason"),
        # False when training judged it no better than the version it was set beside.
        "candidate_passed": promotion.get("promoted"),
        # The AUC gain the promotion check judged, with its interval and DeLong's p (None
        # without one on the same examples).
        "candidate_gain": gain if gain and "low" in gain else None,
        "comparison": comparison,
    }


def _side_by_side(
    baseline: dict | None, own: dict | None, gain: dict | None, columns: list[str]
) -> pd.DataFrame:
    """Return the offline metrics of a baseline and a candidate as rows (``columns``: metric,
    baseline, candidate) with their difference; with the AUC gain the promotion check judged,
    its AUCs per (user, film) second."""
    figures = [(m, (baseline or {}).get(m), own.get(m) if own is not None else None) for m in OFFLINE_METRICS]
    # Versions recorded before the baselines were measured have none to show.
    figures = [f for f in figures if not (f[0].endswith("_baseline") and f[1] is None and f[2] is None)]
    if gain and "auc_a" in gain:
        # What the promotion rule judged: one row per (user, film) (the note quotes these).
        figures.insert(1, ("auc_per_user_film", gain["auc_b"], gain["auc_a"]))
    frame = to_frame(figures, columns)
    frame["difference"] = pd.to_numeric(frame[columns[2]]) - pd.to_numeric(frame[columns[1]])
    return frame


def same_examples_comparison(system, a: int, b: int) -> dict | None:
    """Return A and B on the same held-out examples when one was trained against the other
    and its training measured both on the examples the other never saw (the fair offline
    comparison, as the Retrain page shows it): ``offline`` (metric, A, B, difference),
    ``examples`` (how many), ``gain`` (B's AUC gain per (user, film) over A with its interval
    and DeLong's p, when recorded), ``trained`` (which of them was trained against the other).
    None when neither was."""
    versions = {v: system.get_model_version(v) for v in (a, b)}
    for trained, against in ((b, a), (a, b)):
        metrics = versions[trained].get("metrics") or {}
        if versions[trained].get("parent_id") != against or not metrics.get("active_on_same_holdout"):
            continue
        baseline = metrics["active_on_same_holdout"]
        own = metrics.get("candidate_on_same_holdout") or metrics
        gain = metrics.get("auc_gain")
        name_a, name_b = version_label(a), version_label(b)
        if trained == b:
            frame = _side_by_side(baseline, own, gain, ["metric", name_a, name_b])
        else:  # A was trained against B: the same figures, B's side first
            swapped = (
                {**gain, "auc_a": gain["auc_b"], "auc_b": gain["auc_a"]} if gain and "auc_a" in gain else None
            )
            frame = _side_by_side(own, baseline, swapped, ["metric", name_a, name_b])
        if gain and "low" in gain and trained == a:
            # Gains are the trained one's over the other: B over A is its opposite.
            gain = {**gain, "difference": -gain["difference"], "low": -gain["high"], "high": -gain["low"]}
        return {
            "offline": frame,
            "examples": baseline.get("held_out"),
            "gain": gain if gain and "low" in gain else None,
            "trained": trained,
        }
    return None


def _retrain_state() -> Select:
    """Select the job under way and the candidate's id (the newest trained against the active
    version, or against the prior model when none is active; else the newest trained after the
    active version, whose comparison the page says is with the version active when it was
    trained), the newest candidate of all, each row with the metrics of the active version or of
    that candidate (one row without either): one statement.

    The newest of all was offered even when an older candidate had been trained against the
    version active now (after a rollback, say).
    """
    mv = model_versions.c
    served = model_versions.alias("served")  # its own FROM: never correlated with the candidates'
    active = select(served.c.version_id).where(served.c.active_slot == 1).scalar_subquery()
    against_active = select(func.max(mv.version_id)).where(
        mv.status == "candidate", mv.parent_id.is_not_distinct_from(active)
    )
    # Else the newest trained after the active version was: one trained before it, against an
    # older version, was superseded by it and is not offered (it stays in the registry).
    newest = select(func.max(mv.version_id)).where(
        mv.status == "candidate", mv.version_id > func.coalesce(active, 0)
    )
    superseded = select(func.max(mv.version_id)).where(mv.status == "candidate")
    ids = select(
        select(retrain_jobs.c.job_id)
        .where(retrain_jobs.c.active_slot == 1)
        .scalar_subquery()
        .label("job_id"),
        func.coalesce(against_active.scalar_subquery(), newest.scalar_subquery()).label("candidate_id"),
        superseded.scalar_subquery().label("newest_candidate_id"),
    ).subquery()
    return select(
        ids.c.job_id,
        ids.c.candidate_id,
        ids.c.newest_candidate_id,
        mv.version_id,
        mv.active_slot,
        mv.parent_id,
        mv.metrics,
    ).select_from(
        ids.outerjoin(model_versions, or_(mv.active_slot == 1, mv.version_id == ids.c.candidate_id))
    )


_RETRAIN_STATE = _retrain_state()


def list_job_history(system, limit: int = 50) -> pd.DataFrame:
    """Return the latest retrain jobs, newest first."""
    columns = ["job_id", "status", "trigger", "requested_by", "created_at", "started_at", "finished_at"]
    columns += ["stage", "progress", "examples_claimed", "error"]
    limit = check_limit(limit)  # as FeedbackSystem.list_retrain_jobs checks it
    with read_connection(system.engine) as conn:
        rows = conn.execute(
            select(*(retrain_jobs.c[c] for c in columns), retrain_jobs.c.result_version_id)
            .order_by(retrain_jobs.c.job_id.desc())
            .limit(limit)
        ).all()
    jobs = [(*r[:-1], version_label(r[-1]) if r[-1] else "") for r in rows]
    # Times to the second, as the jobs' own reads format them; without rows the labels are a
    # float column, as pandas made it when the list was assigned to an empty frame.
    dtypes = {"created_at": "seconds", "started_at": "seconds", "finished_at": "seconds"}
    return to_frame(
        jobs, [*columns, "result_version"], dtypes | ({} if jobs else {"result_version": "float64"})
    )
