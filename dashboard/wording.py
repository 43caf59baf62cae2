"""What pages say about their readings, as plain functions of the library's answers (most of
them the "Do approvals work?" tab's, of ``effects.get_pooled_adjustment_effects``), so that
every sentence can be checked against the figures it was made from."""

from __future__ import annotations

import pandas as pd

from dashboard import ui
from feedback_core.effects import MIN_PEOPLE_FOR_INTERVAL


def fmt_change(row, prefix: str = "change", low: str = "change_low", high: str = "change_high") -> str:
    """Format a relative change with its interval: ``-37% (-43 to -30%)``."""
    value = row[prefix]
    if value is None or pd.isna(value):
        return "—"
    if row[low] is None or pd.isna(row[low]):
        return f"{value * 100:+.0f}% (no interval: too few people, or too little on one side)"
    return f"{value * 100:+.0f}% ({row[low] * 100:+.0f} to {row[high] * 100:+.0f}%)"


def days_before(days: int, shown: int) -> str:
    """Name the window a window of ``days`` is compared with, and how much of it has data
    (``shown``: its days with impressions): "the 28 days before (impressions on 2 of them)"."""
    name = "the day before" if days == 1 else f"the {days} days before"
    if shown == 0:
        return f"{name} (no impressions in them)" if days > 1 else f"{name} (no impressions)"
    if shown < days:
        return f"{name} (impressions on {shown} of them)"
    return name


def plural(n: int, word: str) -> str:
    """``1 person``, ``2 people``, ``3 features``."""
    many = {"person": "people"}.get(word, word + "s")
    return f"{n:,} {word if n == 1 else many}"


def relative(change: float | None) -> str:
    """``-50%``; ``—`` when there is none (nothing before to change from)."""
    return "—" if change is None or pd.isna(change) else f"{change * 100:+.0f}%"


def measured(rows: pd.DataFrame) -> pd.Series:
    """Per (measure, group) of the summary indexed so: whether both sides rest on enough
    impressions (a change is said only then; a comparison when both groups' are)."""
    return rows[["enough_before", "enough_after"]].all(axis=1)


def compared(rows: pd.DataFrame, difference: pd.DataFrame, measure: str) -> tuple[str | None, str]:
    """The comparison of one measure as text, or None and why there is none."""
    sure = measured(rows)
    judged = difference.loc[measure]
    if not (sure[(measure, "approved")] and sure[(measure, "rejected")]):
        shown = rows.loc[("exposure", "approved")]
        # Only when the approved side is the one short of films (the rejected side may be the
        # thin one) and their exposure itself rests on enough impressions (numpy's booleans
        # are never ``False`` by identity: ``is not False`` held for every one).
        if (
            measure == "feature_rate"
            and not sure[(measure, "approved")]
            and sure[("exposure", "approved")]
            and (shown["change"] or 0) < -0.5
        ):
            return None, (
                f"approved features were hardly shown again (exposure {relative(shown['change'])}): "
                "too few of their films after to measure how they were disliked"
            )
        return None, "too few impressions on one side"
    if judged["ci_low"] is None or pd.isna(judged["ci_low"]):
        fewest = int(rows.loc[measure, "measured_people"].min())
        if fewest < MIN_PEOPLE_FOR_INTERVAL:
            return None, f"{plural(fewest, 'person')} measured in a group: too few for an interval"
        return None, "no interval: a change of −100% in the rejected group, or too uneven"
    return fmt_change(judged, "difference", "ci_low", "ci_high"), ""


def points(row) -> str:
    """The change in percentage points: ``fell 7.4 points (17.3% → 9.9%)``."""
    if not (row["enough_before"] and row["enough_after"]):
        return "could not be measured (too few impressions)"
    moved = (row["rate_after"] - row["rate_before"]) * 100
    rates = f"({ui.fmt_pct(row['rate_before'])} → {ui.fmt_pct(row['rate_after'])})"
    if round(abs(moved), 1) == 0:
        return f"stayed level {rates}"
    return f"{'fell' if moved < 0 else 'rose'} {abs(moved):.1f} points {rates}"


def followed(rows: pd.DataFrame, lower: bool) -> str:
    """How the approved people's rate moved against the rejected ones' (their difference is
    below 0 when ``lower``), in words true of both directions: "a larger fall" when both fell,
    "a smaller rise" when both rose."""
    mine, theirs = (rows.loc[("overall_rate", group), "change"] for group in ("approved", "rejected"))
    if lower:
        return "a larger fall" if theirs <= 0 else ("a fall" if mine < 0 else "a smaller rise")
    return "a larger rise" if theirs >= 0 else ("a rise" if mine > 0 else "a smaller fall")


def headline(rows: pd.DataFrame, difference: pd.DataFrame, window: int) -> tuple[str, str]:
    """Return the tab's headline: its kind ("lower" when approvals were followed by a lower
    rate than rejections, surely; "higher"; else "unclear") and its text. Never good news by
    colour: approvers chose what to approve, so it is an observation, not a proof."""
    sure = measured(rows)
    overall, why = compared(rows, difference, "overall_rate")
    approved, rejected = rows.loc[("overall_rate", "approved")], rows.loc[("overall_rate", "rejected")]
    said = (
        f"In the {window} days after an approval the person's dislike rate of everything "
        f"{points(approved)}; after a rejection it {points(rejected)}."
    )
    if sure[("overall_rate", "approved")] and sure[("overall_rate", "rejected")]:
        moved = [row["rate_after"] - row["rate_before"] for row in (approved, rejected)]
        # Only where the approved people did fall more: "their larger fall" says so. Approvers
        # approve where the person dislikes more: a high rate partly settles back by itself,
        # and that part is no effect of the approval.
        if approved["rate_before"] > rejected["rate_before"] and moved[0] < min(moved[1], 0):
            said += (
                " Approved people started higher, and a high rate partly falls back by itself: "
                "part of their larger fall is that."
            )
    judged = difference.loc["overall_rate"]
    if overall is None:
        return "unclear", f"Not enough yet to compare approvals with rejections ({why}). {said}"
    if judged["ci_high"] < 0:
        return "lower", (
            f"{said} Relative to rejections, approvals were followed by {followed(rows, True)}: {overall}. "
            "Not a randomised comparison: approvers chose what to approve."
        )
    if judged["ci_low"] > 0:
        return "higher", (
            f"{said} Relative to rejections, approvals were followed by {followed(rows, False)}: "
            f"{overall}. Look at what was approved."
        )
    return "unclear", f"{said} No clear difference between approvals and rejections: {overall}."


def fmt_gain(gain: dict, against: str) -> str:
    """The AUC gain a promotion check decided on: ``AUC gain per (user, film), candidate − v8:
    -0.0018 (95% interval -0.0070 to +0.0034, DeLong's test p = 0.494)``."""
    return (
        f"AUC gain per (user, film), candidate − {against}: {gain['difference']:+.4f} (95% interval "
        f"{gain['low']:+.4f} to {gain['high']:+.4f}, DeLong's test {ui.fmt_p(gain['p_value'])})"
    )


def promotion_question(candidate: str, active: str, passed: bool, note: str | None, gain: str | None) -> str:
    """What the promotion dialog asks: for a candidate training did not promote, why not and
    the gain it measured come first, so that "Confirm" is not pressed on the question alone."""
    question = (
        f"Promote {candidate} to active? It serves every recommendation from now on; {active} can be "
        "restored from the Model versions page."
    )
    if passed:
        return question
    doubts = f"Training did not promote {candidate}" + (f": {note}" if note else ".")
    if gain:
        doubts = doubts.rstrip(".") + f". {gain}."
    return f"{doubts} It has served nothing yet, so its effect on the dislike rate is unknown. {question}"


def inbox_filters_in_use(filters: dict) -> str | None:
    """Say which inbox filters the list answers (None: none): a number typed out of range is
    refused by its field, in red, which keeps the value before; this says which one holds."""
    said = []
    if filters.get("user_id"):
        said.append(f"user {filters['user_id']}")
    if filters.get("feature"):
        said.append(f"feature {filters['feature']!r}")
    if filters.get("reason"):
        said.append(f"reason {filters['reason'].replace('_', ' ')}")
    if filters.get("min_evidence"):
        said.append(f"at least {plural(int(filters['min_evidence']), 'dislike')} of it")
    if filters.get("within_days"):
        said.append(f"last disliked within {filters['within_days']} days")
    return f"Filters in use: {' · '.join(said)}." if said else None


def decided_recently(recent: dict) -> str:
    """``312 approved · 1,204 rejected · 9 withdrawn`` (withdrawn: their dislike retracted)."""
    said = f"{recent['approved']:,} approved · {recent['rejected']:,} rejected"
    if recent.get("auto_approved"):  # applied by FEEDBACK_AUTO_APPROVE: no approver's decision
        said += f" · {recent['auto_approved']:,} auto-approved"
    return said + (f" · {recent['withdrawn']:,} withdrawn with their dislike" if recent["withdrawn"] else "")


def inbox_trend(recent: dict, days: int) -> str:
    """Whether approvers keep up with what comes in, in proposals a day."""
    per_day = abs(recent["change"]) / days
    pace = f"{per_day:,.0f}" if per_day >= 10 else f"{per_day:.1f}"
    if recent["change"] > 0:
        return f"Growing by about {pace} a day: more come in than are decided."
    if recent["change"] < 0:
        if recent["approved"] + recent["rejected"] > recent["proposed"]:
            return f"Shrinking by about {pace} a day: approvers are catching up."
        # Approvers decided no more than came in: withdrawals or auto-approvals emptied it.
        return f"Shrinking by about {pace} a day, by proposals withdrawn or auto-approved, not by approvers."
    return "Steady: as many left as came in."


def films_ranked(counted: int, capped: bool, listed: int) -> str:
    """What the film ranking read: "The 20 films with most of this window's 388 dislikes"."""
    which = (
        f"the newest {counted:,} of this window's dislikes (it holds more)"
        if capped
        else (f"this window's {plural(counted, 'dislike')}")
    )
    return (
        f"The {plural(listed, 'film')} with most of {which}. Counts, not rates: a film shown more often "
        "collects more dislikes"
    )
