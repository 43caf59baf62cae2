"""Adjustments: the approval inbox with evidence and a re-ranking preview; applied ones and their effect."""

import hashlib
from datetime import timedelta

import pandas as pd
import streamlit as st

from dashboard import data, ui, wording
from dashboard.wording import fmt_change, plural, relative
from feedback_core import effects as effect_queries
from feedback_core import lookups, queries
from feedback_core.adjustments import MAX_NOTE
from feedback_core.errors import ValidationError
from feedback_core.policy import FEATURE_TYPES
from feedback_core.settings import REASONS
from feedback_core.validation import check_id

INBOX_ROWS = 200
# The inbox table's key (its rows are picked by selecting them) and where the proposal ids of
# the rows it showed last are kept, in order.
INBOX_TABLE = "adjustment_inbox"
INBOX_SHOWN = "inbox_shown_ids"
INBOX_DRAWN = "inbox_table_name"  # the name (and so the key) of the inbox table drawn last
INBOX_FILTERED = "inbox_filters_drawn"  # the filters of the inbox table drawn last
INBOX_ASKED = "inbox_asked_ids"  # the proposals this person last asked to decide on
# Magnitudes edited for proposals, by id: kept while other rows are picked (a widget's value is
# forgotten once it is not drawn), and approved with them in bulk.
INBOX_EDITS = "inbox_edited_magnitudes"
LISTED = 10  # picked proposals named one by one; beyond that, counted


# What the pooled comparison measures, as its table names it.
POOLED_MEASURES = {
    "exposure": "exposure to the feature",
    "feature_rate": "dislike rate of its films",
    "overall_rate": "dislike rate of everything",
}
POOLED_WINDOWS = (7, 14, 28)


def pooled_side(row, side: str) -> str:
    """Format one side of a pooled measure: its rate with its resampled interval, or too few."""
    if row[f"enough_{side}"] and (row[f"ci_low_{side}"] is None or pd.isna(row[f"ci_low_{side}"])):
        return f"{ui.fmt_pct(row[f'rate_{side}'], 2)} (no interval: too few people)"
    return ui.fmt_rate(row, f"_{side}", f"trials_{side}")


def show_pooled_effects() -> None:
    """Approved against rejected features, pooled over people: what followed each decision."""
    left, right = st.columns(2)
    with left:
        window = st.segmented_control(
            "Days before and after each decision",
            POOLED_WINDOWS,
            default=14,
            key="pooled_window",
            format_func=lambda d: f"{d} days",
        )
    with right:
        kind = st.segmented_control(
            "Features",
            ["every kind", *FEATURE_TYPES],
            default="every kind",
            key="pooled_kind",
            help="Only the genres, cast members or franchises among the decisions read",
        )
    window = window or 14  # a second click on the selected option unselects it
    only = None if kind in (None, "every kind") else kind
    with st.spinner("Reading the lists shown around the newest decisions…"):
        pooled = data.query(
            effect_queries.get_pooled_adjustment_effects, window_days=window, feature_type=only
        )
    summary, difference = pooled["summary"], pooled["difference"].set_index("measure")
    counts = summary.drop_duplicates("group").set_index("group")
    approved, rejected = counts.loc["approved"], counts.loc["rejected"]
    if not approved["decisions"] or not rejected["decisions"]:
        missing = "approved" if not approved["decisions"] else "rejected"
        of_kind = f" for a {only}" if only else ""
        st.info(
            f"Nothing to compare yet: no proposal{of_kind} was {missing} {window} days ago or earlier (a decision "
            f"is compared once the {window} days after it have passed; a shorter window reaches later "
            "ones). This compares features approved for a person with features rejected for one, "
            "before and after the decision.",
            icon=":material/info:",
        )
        return
    rows = summary.set_index(["measure", "group"])
    sure = wording.measured(rows)
    tone, text = wording.headline(rows, difference, window)
    if tone == "higher":
        st.warning(text, icon=":material/warning:")
    else:
        st.info(text, icon=":material/trending_down:" if tone == "lower" else ":material/info:")

    # One tile a measure: both groups' changes, then how they compare.
    st.caption("Relative change after the decision, approved vs rejected features:")
    for column, (measure, name) in zip(st.columns(len(POOLED_MEASURES)), POOLED_MEASURES.items()):
        with column:
            a, b = rows.loc[(measure, "approved")], rows.loc[(measure, "rejected")]
            compared, why = wording.compared(rows, difference, measure)
            value = (
                f"{relative(a['change'])} vs {relative(b['change'])}"
                if sure[(measure, "approved")] and sure[(measure, "rejected")]
                else "—"
            )
            st.metric(name.capitalize(), value)
            st.caption(f"approved against rejected: {compared}" if compared else why)
    table = pd.DataFrame(
        {
            "measure": summary["measure"].map(POOLED_MEASURES),
            "group": summary["group"],
            "measured": summary["measured"],  # the decisions with impressions on both sides
            "before": summary.apply(pooled_side, axis=1, side="before"),
            "after": summary.apply(pooled_side, axis=1, side="after"),
            "change": [
                fmt_change(r) if sure[(r["measure"], r["group"])] else "— (too few impressions)"
                for r in summary.to_dict("records")
            ],
        }
    )
    order = {m: i for i, m in enumerate(POOLED_MEASURES.values())}
    table = table.sort_values(["measure", "group"], key=lambda c: c.map(order) if c.name == "measure" else c)
    ui.show_table(table.reset_index(drop=True), f"pooled_effects_{window}")
    first_day = data.query(queries.get_data_bounds)["first_day"]
    decided_from, decided_to = pooled["decided_from"], pooled["decided_to"]
    span = f"Decided {decided_from:%d %b} – {decided_to:%d %b %Y}. " if decided_from is not None else ""
    if decided_from is not None and first_day is not None:
        if (decided_from - timedelta(days=window)).date() < first_day:
            span += (
                f"The data start on {first_day:%d %b %Y}: decisions made in the {window} days after it have "
                'a shorter "before" than the others. '
            )
    st.caption(
        span + 'What approving costs (the proposals waiting, and how each kind is decided) is on "How '
        'proposals are decided".'
    )
    st.caption(
        (f"Only the {only} features among the decisions read. " if only else "")
        + f"The newest {pooled['decisions_read']:,} proposals approved and as many rejected, {window} days ago "
        f"or earlier: {plural(int(approved['decisions']), 'feature')} approved for "
        f"{plural(int(approved['people']), 'person')} (an approval reverted since is still an approval), "
        f"{plural(int(rejected['decisions']), 'feature')} only ever rejected for "
        f"{plural(int(rejected['people']), 'person')}. Each is measured over the person's lists shown in the "
        f"{window} days before its first decision and the {window} days after, leaving out the lists whose "
        "dislikes made the proposals (chosen for a dislike of the feature, they would raise every "
        '"before"); a dislike counts on the side its list was shown on. A decision counts for a figure only '
        'when the person was shown what it measures on both sides ("measured": how many did). Exposure: the share of the person\'s '
        "impressions that carried the feature; dislike rate of its films: of those, how many the person "
        "disliked; dislike rate of everything: all their dislikes over all their impressions. Changes are "
        'relative (after / before − 1); "approved against rejected" is how much more the approved group\'s '
        "figure changed than the rejected group's, which also changes without any weight change (retraining, "
        "other approvals, regression to the mean). Intervals are 95%, from resampling people, given only "
        f"with at least {effect_queries.MIN_PEOPLE_FOR_INTERVAL} people a group. Approvers chose what to "
        "approve, so the rejected features are a comparison, not a randomised control."
    )


SELDOM_APPROVED = 0.10  # a kind approved less often than this is worth a word (under half: "nearly every")


def show_decisions() -> None:
    """How each kind of proposal (reason and feature type) was decided, and how old the inbox is."""
    with st.spinner("Counting every proposal by reason, feature type and decision…"):
        decided = data.query(lookups.get_decision_summary)
    now = pd.Timestamp(data.get_system().now())
    left, middle, right = st.columns(3)
    left.metric("Proposals waiting", f"{decided['waiting']:,}")
    oldest = decided["oldest_waiting"]
    if oldest is None:
        middle.metric("Oldest waiting", "—")
    else:
        middle.metric("Oldest waiting", plural(max((now - oldest).days, 0), "day"))
        middle.caption(f"proposed {oldest:%d %b %Y %H:%M} UTC")
    right.metric(f"Waiting over {decided['stale_days']} days", f"{decided['stale']:,}")
    # Whether approvers keep up: the waiting count alone does not say if it grows.
    recent, days = decided["recent"], decided["stale_days"]
    came, left, change = st.columns(3)
    came.metric(f"Proposed, last {days} days", f"{recent['proposed']:,}")
    left.metric(f"Decided, last {days} days", f"{recent['approved'] + recent['rejected']:,}")
    left.caption(wording.decided_recently(recent))
    change.metric(
        f"Inbox change, last {days} days",
        f"{recent['change']:+,}",
        help="Proposed, less decided, auto-approved and withdrawn (their dislike retracted), over these days",
    )
    change.caption(wording.inbox_trend(recent, days))
    kinds = decided["kinds"]
    if kinds.empty:
        st.info(
            "No proposal yet: dislikes with a reason that blames a feature make them.", icon=":material/info:"
        )
        return
    decided_counts = kinds["approved"] + kinds["rejected"]
    # The kinds approvers approve least first: where their time goes for the least.
    order = kinds["approved_share"].fillna(2.0).sort_values(kind="stable").index
    kinds, decided_counts = kinds.loc[order], decided_counts.loc[order]
    waiting_share = kinds["waiting"] / max(int(kinds["waiting"].sum()), 1)
    decided_share = decided_counts / max(int(decided_counts.sum()), 1)
    shares = kinds.rename(columns={"approved_share": "rate"}).assign(trials=decided_counts)
    table = pd.DataFrame(
        {
            "reason": kinds["reason"].str.replace("_", " "),
            "feature": kinds["feature_type"],
            "approved (of decided)": [
                ui.fmt_rate(r, trials="trials").replace("too few impressions", "too few decided")
                if r["trials"]
                else "none decided"
                for r in shares.to_dict("records")
            ],
            "of all decisions": decided_share * 100,  # percent, one decimal as the shares
            "approved": kinds["approved"],
            "rejected": kinds["rejected"],
            "waiting": kinds["waiting"],
            "reverted since": kinds["reverted"],
            "withdrawn": kinds["withdrawn"],
        }
    )
    percent = {"of all decisions": st.column_config.NumberColumn("of all decisions", format="%.1f%%")}
    ui.show_table(table.reset_index(drop=True), "decisions_by_kind", percent)
    seldom = kinds[kinds["enough"] & (kinds["approved_share"] < SELDOM_APPROVED)]
    for key, row in seldom.iterrows():
        how = "nearly every" if row["ci_high"] < SELDOM_APPROVED / 2 else "most"
        st.info(
            f"Approvers reject {how} {row['reason'].replace('_', ' ')} → {row['feature_type']} "
            f"proposal{'s' if how == 'most' else ''} "
            f"({ui.fmt_pct(row['approved_share'])} approved, 95% interval {ui.fmt_pct(row['ci_low'])}–"
            f"{ui.fmt_pct(row['ci_high'])}); they are {ui.fmt_pct(decided_share[key], 0)} of all decisions and "
            f"{ui.fmt_pct(waiting_share[key], 0)} of the proposals waiting. The policy could stop proposing "
            f"them ({row['stop_with']} proposes none of them, and changes no other kind; see the README).",
            icon=":material/lightbulb:",
        )
    st.caption(
        "Every proposal ever made, by the reason of the dislike that made it and the kind of feature it "
        "changes. Approved counts those reverted since; withdrawn, those whose dislike was retracted before "
        "anyone decided (neither decided nor rejected); the share approved is of those decided, with its "
        "95% interval. A kind approvers nearly always reject costs their time and is one the policy could "
        'stop proposing; whether approvals lower dislikes is on "Do approvals work?".'
    )


# Kept while another page is shown (the filters, and the note being written), so that looking
# a person up on the Users page and coming back finds the inbox as it was left.
INBOX_WIDGETS = (
    "inbox_user",
    "inbox_feature",
    "inbox_reason",
    "inbox_evidence",
    "inbox_within",
    "inbox_order",
)
ORDERS = {"newest first": False, "oldest first": True}  # oldest: a backlog worked through


def inbox_filters() -> dict:
    """Return the inbox filters (user, feature, reason, evidence strength)."""
    c1, c2, c3, c4, c5 = st.columns(5)
    user = c1.number_input("User", min_value=0, step=1, key="inbox_user", help="0: every user")
    feature = c2.text_input(
        "Feature",
        key="inbox_feature",
        placeholder="e.g. Horror or cast",
        help="A feature type (genre, cast, franchise) or a name such as Horror, in any case",
    )
    reason = c3.selectbox("Reason", [None, *REASONS], key="inbox_reason", format_func=lambda r: r or "any")
    evidence = c4.number_input("At least … dislikes of it", min_value=0, step=1, key="inbox_evidence")
    within = c5.selectbox(
        "Last disliked within",
        [None, 7, 30, 90],
        key="inbox_within",
        format_func=lambda d: "any time" if d is None else f"{d} days",
    )
    return {
        "user_id": int(user) or None,
        "feature": feature.strip() or None,
        "reason": reason,
        "min_evidence": int(evidence),
        "within_days": within,
    }


def table_name(ids: list[int]) -> str:
    """The inbox table's name for these rows: another table whenever the rows change.

    A browser that sorted the table keeps its ticks on the rows it shows; when the proposals
    under them change while their positions in the data do not, a tick would stay on a row
    that now shows another proposal, and the next click would act on it. A new table starts
    with the selection this page gives it, in the order of the data.
    """
    digest = hashlib.blake2b(" ".join(map(str, ids)).encode(), digest_size=6).hexdigest()
    return f"{INBOX_TABLE}_{digest}"


def picked_proposals(ids: list[int]) -> tuple[str, list[int], list[int]]:
    """Return the name of the inbox table to draw, the proposals selected in it and those
    selected that it no longer shows (left out of the selection); ``ids``: the rows it shows now.

    The table reports its selection as row positions in the rows it showed when they were
    picked. A decision, a filter or fresh data changes those rows, and the same positions would
    then pick other proposals: they are read against the ids shown then, and the selection moves
    onto the same proposals' rows of the new table, without the ones no longer shown.
    """
    shown = st.session_state.get(INBOX_SHOWN, [])
    drawn = st.session_state.get(INBOX_DRAWN)
    state = (st.session_state.get(f"table_{drawn}") if drawn else None) or {}
    selected = sorted(set(state.get("selection", {}).get("rows", [])))
    chosen = {shown[r] for r in selected if 0 <= r < len(shown)}
    positions = [p for p, i in enumerate(ids) if i in chosen]
    name = table_name(ids)
    if name != drawn:
        st.session_state[f"table_{name}"] = {"selection": {"rows": positions}}  # before it is drawn
    return name, [ids[p] for p in positions], sorted(chosen - set(ids))


def say_unselected(unselected: list[int], filters: dict) -> None:
    """Say which selected proposals left the selection because the table no longer shows them,
    unless this person's own decision took them out."""
    changed = st.session_state.get(INBOX_FILTERED, filters) != filters
    st.session_state[INBOX_FILTERED] = filters
    if not changed:
        unselected = [i for i in unselected if i not in st.session_state.get(INBOX_ASKED, ())]
    if "pending_action" not in st.session_state:
        # The decision asked for was taken (its proposals left just now, above) or cancelled:
        # either way, later departures of those proposals are news again.
        st.session_state.pop(INBOX_ASKED, None)
    if not unselected:
        return
    one = len(unselected) == 1
    named = ", ".join(f"#{i}" for i in unselected[:LISTED]) + (", …" if len(unselected) > LISTED else "")
    what = f"#{unselected[0]}" if one else f"{len(unselected)} proposals ({named})"
    if changed:
        why = f"the filters now hide {'it' if one else 'them'}"
    else:
        why = (
            f"{'it' if one else 'they'} left this list: decided by someone else, or no longer among "
            f"the {INBOX_ROWS} newest"
        )
    st.info(f"Unselected {what}: {why}.", icon=":material/info:")


# What a decision rests on first (the change, then its evidence): the table is narrower than its
# columns at common widths, and the evidence was cut off at the right.
DECIDING = ["adjustment_id", "user_id", "feature_type", "feature_value", "reason", "magnitude"]
DECIDING += ["evidence_dislikes", "weight_now", "waiting_for_feature", "last_disliked_at"]
DECIDING += ["movie_title"]
# How the columns saying where the person's weight stands read, in both tables; and the plain
# names of the others (the CSV keeps the data's names).
PROPOSAL_COLUMNS = {
    "adjustment_id": st.column_config.NumberColumn("id", format="%d"),
    "user_id": st.column_config.NumberColumn("user", format="%d"),
    "feature_type": st.column_config.TextColumn("type"),
    "feature_value": st.column_config.TextColumn("feature"),
    "magnitude": st.column_config.NumberColumn("magnitude", format="%+.3f"),
    "proposed_magnitude": st.column_config.NumberColumn("proposed", format="%+.3f"),
    "evidence_dislikes": st.column_config.NumberColumn(
        "evidence", help="How often this user disliked films with this feature for a reason that blames it"
    ),
    "decided_by": st.column_config.TextColumn("decided by"),
    # A title is the widest cell: sized by its header, the Applied tab cut every one short.
    "movie_title": st.column_config.TextColumn("from the dislike of", width="medium"),
    "weight_now": st.column_config.NumberColumn("weight now", format="%.3f"),
    "waiting_for_feature": st.column_config.NumberColumn(
        "waiting",
        help="How many proposals of this feature wait for this person, this one included: each "
        "applies its own step when approved",
    ),
}


def same_feature_note(
    rows: dict, picked: list[int], edits: dict[int, float] | None = None, low: float = 0.1, high: float = 2.0
) -> str:
    """Say when approving these adds steps to one person's feature: several of them are of the
    same person and feature, or more of it wait (each approval applies its own step). The steps
    are the magnitudes applied (``edits`` where edited), and the weight stays within
    ``low``..``high`` (a weight held at its limit does not move however many steps)."""
    edits = edits or {}
    pairs: dict[tuple, list[int]] = {}
    for i in picked:
        pairs.setdefault((int(rows[i].user_id), rows[i].feature_type, rows[i].feature_value), []).append(i)
    notes = []

    def move(ids: list[int]) -> tuple[float, float, float]:
        """The steps these apply together, the weight now and where it ends. The weight shown is
        already clamped: a step (never positive) from it ends where the whole sum would, held
        at the limit when it goes past it."""
        step = sum(float(edits.get(i, rows[i].magnitude)) for i in ids)
        now = float(rows[ids[0]].weight_now)
        return step, now, min(max(now + step, low), high)

    def first_three(names: list[str]) -> str:
        return ", ".join(names[:3]) + (", …" if len(names) > 3 else "")

    together = [(key, ids) for key, ids in pairs.items() if len(ids) > 1]
    if together:
        (user, kind, value), ids = together[0]
        step, now, after = move(ids)
        more = (
            f" (and {len(together) - 1} more such feature{'s' if len(together) > 2 else ''})"
            if len(together) > 1
            else ""
        )
        notes.append(
            f"{len(ids)} of them are user {user}'s {kind} {value}{more}: their steps add up ({step:+.3f} together)."
        )
        if step and abs(after - now) < 1e-9:
            notes.append(f"Its weight stays at {now:.3f}, its limit: these steps change no score now.")
        elif step:
            held = ", its limit" if abs(after - (now + step)) > 1e-9 else ""
            notes.append(f"Its weight goes from {now:.3f} to {after:.3f}{held}.")
    if len(pairs) > 1:
        # Several people or features: where each weight goes, not only the first one's.
        moves = []
        for (user, kind, value), ids in list(pairs.items())[:LISTED]:
            step, now, after = move(ids)
            held = " (held at its limit)" if step and abs(after - (now + step)) > 1e-9 else ""
            steps = f", {len(ids)} steps" if len(ids) > 1 else ""
            moves.append(f"user {user} {kind} {value} {now:.3f} → {after:.3f}{held}{steps}")
        rest = f"; and {len(pairs) - LISTED} more" if len(pairs) > LISTED else ""
        notes.append("Weights: " + "; ".join(moves) + rest + ".")
    # Counted for the proposals picked only (for every row of the inbox it read four times as
    # many rows): a feature an approver rejected before for the person.
    rejected = data.query(lookups.count_rejected, tuple(sorted(picked))) if picked else {}
    judged = [(key, rejected.get(ids[0], 0)) for key, ids in pairs.items() if rejected.get(ids[0], 0)]
    if judged:
        named = first_three(
            [f"user {u}'s {k} {v} ({n} time{'s' if n > 1 else ''})" for (u, k, v), n in judged]
        )
        notes.append(
            f"Rejected before for the same person: {named}. Look at why on the Audit log before "
            "approving it now."
        )
    waiting = {key: int(rows[ids[0]].waiting_for_feature) - len(ids) for key, ids in pairs.items()}
    waiting = {key: n for key, n in waiting.items() if n > 0}
    left = sum(waiting.values())
    if left:
        named = first_three([f"user {u}'s {k} {v}" for u, k, v in waiting])
        notes.append(
            f"{left} more proposal{'s' if left > 1 else ''} of the same person and feature "
            f"{'wait' if left > 1 else 'waits'} ({named}): each applies its own step when approved."
        )
    return (" " + " ".join(notes)) if notes else ""


def deciding_first(frame: pd.DataFrame) -> pd.DataFrame:
    first = [c for c in DECIDING if c in frame.columns]
    return frame[first + [c for c in frame.columns if c not in first]]


def inbox_table(proposals: pd.DataFrame, name: str) -> None:
    """Show the inbox with selectable rows and a CSV download of exactly its rows."""
    ui.show_table(
        deciding_first(proposals),
        name,
        {
            "created_at": ui.moment_column("proposed"),
            "last_disliked_at": ui.moment_column("last disliked"),
            **PROPOSAL_COLUMNS,
        },
        csv_name=INBOX_TABLE,
        on_select="rerun",
        selection_mode="multi-row",
    )
    # Kept once drawn: a run stopped before this leaves the browser showing the rows before.
    st.session_state[INBOX_SHOWN] = [int(i) for i in proposals["adjustment_id"]]
    st.session_state[INBOX_DRAWN] = name


def describe(row, edited: float | None = None) -> str:
    """One proposal on a line: ``#12 · user 3 · genre: Drama -0.150`` (and its edited magnitude)."""
    text = (
        f"#{row.adjustment_id} · user {row.user_id} · {row.feature_type}: {row.feature_value} "
        f"{row.proposed_magnitude:+.3f}"
    )
    return text if edited is None else f"{text}, edited to {edited:+.3f}"


def at_limit(preview: dict | None, magnitude: float) -> bool:
    """Whether applying changes nothing now: the weight is held at its limit (0.1 or 2.0)."""
    return (
        preview is not None
        and magnitude != 0
        and abs(preview["weight_after"] - preview["weight_before"]) < 1e-9
    )


def show_preview(adjustment_id: int, magnitude: float) -> dict:
    """Show what would leave and enter the user's top 10 if the adjustment were applied; return
    the preview."""
    preview = data.query(lookups.preview_adjustment, adjustment_id, magnitude=magnitude)
    if at_limit(preview, magnitude):
        st.warning(
            f"This user's weight for {preview['feature']} is already held at {preview['weight_before']:.2f}, "
            "the limit a weight stays within (0.1 to 2.0): approving records the decision but changes no "
            "score now (it counts again if other adjustments of it are reverted).",
            icon=":material/vertical_align_bottom:",
        )
    st.markdown("**Preview:** the user's recent lists re-ranked as if this were applied")
    st.text(
        f"User {preview['user_id']}, {preview['feature']}: weight {preview['weight_before']:.2f} → "
        f"{preview['weight_after']:.2f}. Evidence: {preview['evidence_dislikes']} disliked for it and "
        f"{preview['evidence_likes']} liked films with it (last dislike {preview['last_disliked_at'] or 'never'}). "
        f"Re-ranked: {preview['candidates']} films from {preview['lists']} recent lists, scored by the active model."
    )
    if preview["lists"] == 0:
        st.info("This user has no recorded lists to re-rank.")
        return preview
    if preview["leaving"].empty and preview["entering"].empty:
        st.info(
            "No change to the top 10 of these lists: the films it would move stay in or out of it "
            "(the order within may change; see below).",
            icon=":material/check:",
        )
    left, right = st.columns(2)
    with left:
        st.caption("Would leave the top 10")
        ui.show_table(preview["leaving"][["rank", "title", "score"]], f"preview_leaving_{adjustment_id}")
    with right:
        st.caption("Would enter the top 10")
        ui.show_table(preview["entering"][["rank", "title", "score"]], f"preview_entering_{adjustment_id}")
    with st.expander("Top 10 before and after"):
        left, right = st.columns(2)
        with left:
            ui.show_table(preview["before"], f"preview_before_{adjustment_id}")
        with right:
            ui.show_table(preview["after"], f"preview_after_{adjustment_id}")
    return preview


st.title("Adjustments")
# Tracked (a widget of its own): the run after a decision opens the tab it was taken on, not
# the first one (a revert sent the person back to the Inbox).
inbox_tab, applied_tab, pooled_tab, decided_tab = st.tabs(
    ["Inbox", "Applied and their effect", "Do approvals work?", "How proposals are decided"],
    key="adjustments_tab",
    on_change="rerun",
)

with inbox_tab:
    ui.restore_widgets([*INBOX_WIDGETS, ui.renewable_key("reject_note")])
    # One more than shown: enough to tell "200" from "200 of more" without counting them all.
    filters = inbox_filters()
    order = st.radio("Order", list(ORDERS), key="inbox_order", horizontal=True, label_visibility="collapsed")
    inbox = data.query(
        lookups.list_adjustment_inbox,
        status="proposed",
        limit=INBOX_ROWS + 1,
        oldest_first=ORDERS[order],
        **filters,
    )
    more = len(inbox) > INBOX_ROWS
    inbox = inbox.head(INBOX_ROWS)
    if more:  # counted only then: the page shows the newest, the caption says how many wait
        # (Read a moment after the list: never said to be fewer than the list found.)
        total = max(data.query(lookups.count_adjustment_inbox, status="proposed", **filters), INBOX_ROWS + 1)
        waiting = f"{total:,}" + (" or more" if total >= lookups.INBOX_COUNT_CAP else "")
        which = "oldest" if ORDERS[order] else "newest"
        shown = f"The {INBOX_ROWS} {which} of {waiting} proposals (narrow the filters to reach the others)"
    else:
        shown = f"{len(inbox):,} proposal{'' if len(inbox) == 1 else 's'}"
    in_use = wording.inbox_filters_in_use(filters)
    if in_use:
        st.caption(in_use)
    st.caption(
        shown + ". "
        "Evidence: how often this user disliked films with this feature for a reason that blames "
        "it (wrong genre, not interested and irrelevant blame genres; poor quality the cast and "
        "franchise; not interested the franchise too), and when last."
    )
    ids = [int(i) for i in inbox["adjustment_id"]]
    rows = {int(r.adjustment_id): r for r in inbox.itertuples()}
    name, picked, unselected = picked_proposals(ids)
    say_unselected(unselected, filters)
    inbox_table(inbox.drop(columns=["status", "decided_by", "decided_at", "note"]), name)
    count = len(picked)
    what = f"adjustment #{picked[0]}" if count == 1 else f"{count} adjustments"
    edits: dict[int, float] = st.session_state.setdefault(INBOX_EDITS, {})
    if not count:
        st.caption("Select a proposal's row (its box at the left) to preview and edit it, or several rows.")
    else:
        # As text: feature values come from the catalogue.
        listed = [describe(rows[i], edits.get(i) if count > 1 else None) for i in picked[:LISTED]]
        if count > LISTED:
            listed.append(f"and {count - LISTED} more")
        st.text(f"Selected ({count}):\n" + "\n".join(listed))
    # A bulk decision's dialog names the proposals: the rows selected may be scrolled out of view.
    named = (
        f" ({', '.join(f'#{i}' for i in picked[:LISTED])}{', …' if count > LISTED else ''})"
        if count > 1
        else ""
    )
    edited, preview = None, None
    if count == 1:
        proposed = float(rows[picked[0]].proposed_magnitude)
        magnitude = st.number_input(
            "Magnitude (edit before approving if you like)",
            min_value=-1.0,
            max_value=0.0,  # a dislike de-emphasises: no sign typo turns it into a boost
            value=edits.get(picked[0], proposed),
            step=0.01,
            format="%.3f",
            key=f"magnitude_{picked[0]}",
        )
        edited = magnitude if abs(magnitude - proposed) > 1e-9 else None
        if edited is None:
            edits.pop(picked[0], None)
        else:
            edits[picked[0]] = edited
        preview = show_preview(picked[0], magnitude)
    bulk_edits = {i: edits[i] for i in picked if i in edits} if count > 1 else {}
    note = st.text_input(
        "Note (kept with a rejection)", key=ui.renewable_key("reject_note"), max_chars=MAX_NOTE
    )
    ui.remember_widgets([*INBOX_WIDGETS, ui.renewable_key("reject_note")])
    buttons = st.container(horizontal=True)
    with buttons:
        approve = ui.action_button(
            f"Approve {what}" if count else "Approve",
            "adjustment.approve",
            key="approve_selected",
            disabled=not count,
            type="primary",
        )
        reject = ui.action_button(
            f"Reject {what}" if count else "Reject",
            "adjustment.reject",
            key="reject_selected",
            disabled=not count,
        )
    if approve or reject:
        st.session_state[INBOX_ASKED] = picked  # their leaving the table is no news
    if approve:
        # The dialog names every magnitude it applies: an edit the field refused (out of range)
        # or one made before other rows were picked is never applied unseen.
        if count == 1:
            change = (
                f" at {edited:+.3f} instead of the proposed {proposed:+.3f}"
                if edited is not None
                else f" at {proposed:+.3f}, as proposed"
            )
        elif bulk_edits:
            change = ", with the edited magnitudes " + ", ".join(
                f"#{i} {m:+.3f}" for i, m in bulk_edits.items()
            )
        else:
            change = ", each at its proposed magnitude"
        chosen = (edited if edited is not None else proposed) if count == 1 else None
        limits = (data.get_system().settings.weight_min, data.get_system().settings.weight_max)
        if chosen == 0:
            effect = "A magnitude of 0 changes no weight: the decision is recorded, no score changes."
        elif chosen is not None and at_limit(preview, chosen):
            effect = f"Its weight stays at {preview['weight_before']:.2f}, its limit: no score changes now."
        elif count > 1 and all(float(rows[i].weight_now) <= limits[0] + 1e-9 for i in picked):
            # (A step is never positive: from the lower limit none of them moves a weight.)
            effect = "Every weight they change is held at its lower limit: no score changes now."
        elif len({int(rows[i].user_id) for i in picked}) == 1:
            effect = "The user's scores change at once."
        else:
            effect = "The users' scores change at once."
        ui.ask_to_confirm(
            "approve",
            f"Approve and apply {what}{named}{change}? {effect}{same_feature_note(rows, picked, bulk_edits, *limits)}",
            "Approve",
            ids=picked,
            **({"magnitude": edited} if edited is not None else {}),
            **({"magnitudes": bulk_edits} if bulk_edits else {}),
        )
    if reject:
        ui.ask_to_confirm(
            "reject",
            f"Reject {what}{named}?" + (f" Note: {note}" if note else ""),
            "Reject",
            reset=("reject_note",),  # the note was about these; the next rejection starts blank
            ids=picked,
            note=note,
        )

with applied_tab:
    applied = data.query(lookups.list_adjustment_inbox, status="applied", limit=200, by_decision=True)
    st.caption(
        "The 200 applied last (newest decision first). Pick a user, or type any user's id, to "
        "measure what changed afterwards and to revert one of theirs."
    )
    ui.show_table(
        deciding_first(applied.drop(columns=["status", "note", "waiting_for_feature"])),
        "applied_adjustments",
        {
            "created_at": ui.moment_column("proposed"),
            "decided_at": ui.moment_column("decided"),
            "last_disliked_at": ui.moment_column("last disliked"),
            **PROPOSAL_COLUMNS,
        },
    )
    users = sorted({int(u) for u in applied["user_id"]})
    # Measured for the user picked, not on every view: it reads that user's whole history. Any
    # user can be typed: one whose adjustments were applied before the 200 above too.
    typed = st.selectbox(
        "User",
        users,
        index=None,
        placeholder="Pick or type a user id",
        key="effect_user",
        accept_new_options=True,
    )
    effect_user = None
    if typed is not None:
        try:
            effect_user = check_id(str(typed).strip(), "user id")  # "²" and 10**20 were crashes
        except ValidationError as exc:
            st.error(exc.message, icon=":material/error:")
    if effect_user is not None:
        effects = data.query(lookups.get_adjustment_effects, effect_user)
        if effects.empty:
            st.info(f"User {effect_user} has no applied adjustments.", icon=":material/info:")
        else:
            effects["before"] = ui.rate_column(effects, "impressions_before", "_before")
            effects["after"] = ui.rate_column(effects, "impressions_after", "_after")
            st.caption(
                "Exposure: the share of this user's impressions that carried the feature, before and after "
                "it was applied. Dislike rate: of those films, how many the user disliked; a dislike counts "
                "at the time its list was shown."
            )
            # The rates before and after first: they are what the table is for, and were cut off.
            columns = ["adjustment_id", "feature", "magnitude", "before", "after", "exposure_before"]
            columns += ["exposure_after", "impressions_before", "dislikes_before", "impressions_after"]
            columns += ["dislikes_after", "applied_at", "decided_by"]
            ui.show_table(
                effects[columns],
                f"adjustment_effects_user_{effect_user}",
                {
                    "applied_at": ui.moment_column("applied"),
                    "before": st.column_config.TextColumn("dislike rate before"),
                    "after": st.column_config.TextColumn("dislike rate after"),
                    "exposure_before": st.column_config.NumberColumn("exposure before", format="percent"),
                    "exposure_after": st.column_config.NumberColumn("exposure after", format="percent"),
                },
            )
            target = st.selectbox(
                "Revert",
                [int(i) for i in effects["adjustment_id"]],
                key="revert_target",
                format_func=lambda i: f"#{i}",
            )
            if ui.action_button(f"Revert #{target}", "adjustment.revert", key="revert_adjustment"):
                ui.ask_to_confirm(
                    "revert",
                    f"Revert adjustment #{target}? Its change leaves the user's weight at once.",
                    "Revert",
                    adjustment_id=target,
                )

with pooled_tab:
    # Only when open: it reads the lists shown around thousands of decisions (about 1.6 s at a
    # million dislikes), which the inbox's visits should not wait for.
    if pooled_tab.open:
        show_pooled_effects()

with decided_tab:
    # Only when open: it groups every proposal ever made (1.3 s at 2 million on SQLite).
    if decided_tab.open:
        show_decisions()
