"""Overview: headline numbers against the previous window, the daily dislike rate, an alert."""

import pandas as pd
import streamlit as st

from dashboard import charts, data, ui, wording
from feedback_core import queries, stats

f = ui.current_filters()
st.title("Overview")
days = (f.end - f.start).days + 1
overview = data.query(queries.get_overview, *f.args)
now, before = overview["current"], overview["previous"]
# How much of the window before has data, said where the comparison is named: "the 28 days
# before" with impressions on two of them compares with two days, not four weeks.
shown_before = before["days_with_impressions"]
st.caption(f"{f.start:%d %b %Y} – {f.end:%d %b %Y}, compared with {wording.days_before(days, shown_before)}")
# Counts are compared only when the data covers both windows, every day of each: against an
# empty or partly covered one, "+1,603" would read as a surge (or "-76" as good news when this
# window runs past the data). Rates compare either way, when both have enough impressions.
had_before = before["impressions"] > 0 or before["dislikes"] > 0
length = (f.end - f.start).days + 1
clock = data.get_system().now()
today = clock.date()
# A day is over for these counts once its lists have collected their dislikes (DAY_SETTLES after
# it ends): a window reaching a later day holds one still filling, "-420 impressions" being the
# part of today still to come, not a drop.
last_settled = queries.last_settled_day(clock)
unsettled = f.end > last_settled
covered = (
    had_before and not unsettled and before["days_with_impressions"] == now["days_with_impressions"] == length
)
# The window's numbers, the rate widest (its change was cut off); the loop's state on a row of
# its own below.
cols = st.columns([1, 1, 1.6])
cols[0].metric(
    "Dislikes",
    f"{now['dislikes']:,}",
    f"{now['dislikes'] - before['dislikes']:+,}" if covered else None,
    # Never coloured: a count moves with what was shown (fewer lists, fewer dislikes); whether
    # it is good news is the rate's to say, tested beside it.
    delta_color="off",
    delta_arrow="auto" if now["dislikes"] != before["dislikes"] else "off",
    help="Every live dislike; only those of shown lists are in the rate",
)
# Dislikes without a list are a share of no impression: say how many the rate leaves out.
cols[0].caption(
    f"{now['attributed_dislikes']:,} on shown lists (in the rate), "
    f"{now['dislikes'] - now['attributed_dislikes']:,} without a list"
)
shown_change = now["impressions"] - before["impressions"]
cols[1].metric(
    "Impressions",
    f"{now['impressions']:,}",
    f"{shown_change:+,}" if covered else None,
    delta_color="off",  # a count, as the dislikes': more lists shown is neither good nor bad news
    delta_arrow="auto" if shown_change else "off",  # and "+0" is no change: no arrow up
)
rate, previous_rate = now["dislike_rate"], before["dislike_rate"]
# Days not settled alone are not compared: their lists are still collecting dislikes, so their
# rate only rises.
only_unsettled = f.start > last_settled
# Said only when the selection showed something on such a day: a version that stopped serving
# before them has nothing still counting.
rates = data.query(queries.list_daily_rates, *f.args)
filling = unsettled and bool((pd.to_datetime(rates["day"]) > pd.Timestamp(last_settled)).any())
# The change is taken over the window's settled days: today's rate, low while its lists still
# collect dislikes, pulled the window's down and read as an improvement.
# Summed from the day rows the chart draws (same filters): no second read of the window.
compared = now
if filling and not only_unsettled:
    settled = rates[pd.to_datetime(rates["day"]) <= pd.Timestamp(last_settled)]
    x, n = int(settled["dislikes"].sum()), int(settled["impressions"].sum())
    minimum = data.get_system().settings.min_impressions_for_rate
    compared = {
        "attributed_dislikes": x,
        "impressions": n,
        "dislike_rate": queries.rate_fields(x, n, minimum),
    }
comparable = compared["dislike_rate"]["enough"] and previous_rate["enough"] and not only_unsettled
change, significant = None, False
if comparable:
    # Coloured (better, worse) only when the two-proportion test and the interval of the
    # difference agree: a green arrow over a baseline of two days' noise misled.
    outcome, test = stats.compare_rates(
        before["attributed_dislikes"],
        before["impressions"],
        compared["attributed_dislikes"],
        compared["impressions"],
    )
    significant = outcome in ("lower", "higher")
    change = f"{(compared['dislike_rate']['rate'] - previous_rate['rate']) * 100:+.2f} points" + (
        f" ({ui.fmt_p(test.p_value)})" if significant else ", not significant"
    )
# Against days before that mostly hold no data, a significant change is still said, uncoloured:
# four weeks set against two days of them is no like-for-like comparison.
thin = comparable and 0 < before["days_with_impressions"] * 2 < days
cols[2].metric(
    "Dislike rate",
    # Without a rate to show, a dash; what stands in its way goes below (a long value is cut).
    ui.fmt_pct(rate["rate"], 2) if rate["enough"] else "—",
    change,
    delta_color="inverse" if significant and not thin else "off",
    help="Dislikes on shown lists / impressions; the change is coloured only when significant "
    "(two-proportion test and the 95% interval of the difference)",
)
still_counting = " (with days not settled, their lists still collecting dislikes)" if filling else ""
if rate["enough"]:
    cols[2].caption(f"95% interval {ui.fmt_interval(rate)}{still_counting}")
    if compared is not now and comparable:
        cols[2].caption(
            f"The change: this window to {last_settled:%d %b} ({ui.fmt_pct(compared['dislike_rate']['rate'], 2)}), "
            "its days settled, against the days before."
        )
    if thin:
        cols[2].caption(
            f"Not coloured: the days before have impressions on {before['days_with_impressions']} of {days}."
        )
else:
    cols[2].caption(f"No rate: {ui.fmt_rate(rate)}")
pending, threshold = overview["untrained_examples"], overview["retrain_threshold"]
loop = st.columns(3)
loop[0].metric(
    "Untrained examples",
    f"{pending:,}{'+' if overview['untrained_capped'] else ''} / {threshold:,}",
    help="Negative examples not yet used by a training run, against the retrain threshold",
)
waiting = overview["proposals_waiting"]
loop[1].metric(
    "Proposals waiting",
    f"{waiting:,}{'+' if overview['proposals_capped'] else ''}",
    help="Feature adjustments proposed from dislikes, waiting for a decision in the Adjustments page's inbox",
)
active = overview["active_version"]
loop[2].metric("Active version", queries.version_label(active["version_id"]) if active else "none")
st.caption(f"Days: {ui.ON_LIST_DAY}.")
if had_before and unsettled:
    st.caption(
        "Counts are not compared with the days before: the window's last day has not settled (its "
        "lists collect dislikes until "
        + f"{int(queries.DAY_SETTLES.total_seconds() // 3600)} hours after it ends, UTC)."
        + (" Nor is the rate: no day of it has settled." if only_unsettled else "")
    )
elif had_before and not covered:
    st.caption(
        f"Of these {length} days, {now['days_with_impressions']} have impressions; of the {length} before, "
        f"{before['days_with_impressions']}: counts are not compared"
        + (", the rate is." if comparable else ", nor is the rate (too few impressions on a side).")
    )
if f.reasons:
    st.caption("Rates count only the selected reasons.")

check = data.query(queries.get_latest_day_check, f.end, f.versions, f.reasons)
# The check judges the latest settled day (UTC): a day's lists keep gaining dislikes for a
# while after it ends, so its rate only rises until then.
settles = int(queries.DAY_SETTLES.total_seconds() // 3600)
# Named as what it is: with versions picked, or dates ending earlier, not the latest day there is.
day = (
    f"{check['latest_day']:%d %b}, the latest settled day (UTC) with impressions in this selection"
    if check["latest_day"]
    else ""
)
# A day judged must be one of the window's: with only today, or days not settled yet, in it,
# the latest settled day before them was judged under "in this selection".
outside = check["latest_day"] is not None and check["latest_day"] < f.start
if outside:
    check = {**check, "status": "outside"}
    if only_unsettled:  # (a past window without impressions is said to be so by the chart)
        st.info(
            f"No day of this window has settled yet: a day is judged {settles} hours after it ends (UTC), "
            "when its lists have collected their dislikes.",
            icon=":material/hourglass_empty:",
        )
# A version activated on the day judged or the week before it: the rates mix versions.
activations_all = data.query(queries.list_version_activations)
if check["latest_day"] is not None and not outside and len(activations_all):
    since = pd.Timestamp(check["latest_day"]) - pd.Timedelta(days=7)
    until = pd.Timestamp(check["latest_day"]) + pd.Timedelta(days=1)
    moments = pd.to_datetime(activations_all["activated_at"])
    released = activations_all[(moments >= since) & (moments < until)]
    # (With one version picked, its rates are its own: nothing is mixed.)
    if len(released) and len(f.versions) != 1:
        st.caption(
            "Activated on the day judged or the week before it: "
            + ", ".join(
                f"{r.label} {pd.Timestamp(r.activated_at):%d %b %H:%M}" for r in released.itertuples()
            )
            + ". The rates mix the versions that served; the Model versions page compares them."
        )
# The baseline says how much of it the data covers (a week with two days of data is no week).
covered_days = check.get("baseline_days", 7)
baseline = "the 7 days before" + (f" ({covered_days} of them with impressions)" if covered_days < 7 else "")
if check["status"] == "worse":
    st.error(
        f"{day}: the dislike rate, {ui.fmt_rate(check['latest'])}, is significantly "
        f"higher than {baseline}, {ui.fmt_rate(check['baseline'])} ({ui.fmt_p(check['p_value'])}).",
        icon=":material/warning:",
    )
elif check["status"] == "better":
    st.success(
        f"{day}: the dislike rate, {ui.fmt_rate(check['latest'])}, is significantly "
        f"lower than {baseline}, {ui.fmt_rate(check['baseline'])} ({ui.fmt_p(check['p_value'])}).",
        icon=":material/trending_down:",
    )
elif check["status"] == "steady":
    st.info(
        f"{day}: no significant change against {baseline} "
        f"({ui.fmt_rate(check['latest'])} vs {ui.fmt_rate(check['baseline'])}, {ui.fmt_p(check['p_value'])}).",
        icon=":material/trending_flat:",
    )
elif check["status"] == "insufficient":
    st.info(
        f"{day}: too few impressions to compare it with {baseline}.",
        icon=":material/hourglass_empty:",
    )
elif check["status"] == "inconsistent":
    st.warning(
        f"{day}: more dislikes than impressions were counted on it or the "
        "7 days before, so there is no rate to compare.",
        icon=":material/error:",
    )
if check["today_so_far"] is not None:
    st.caption(
        f"Today so far ({check['today']:%d %b}): {ui.fmt_rate(check['today_so_far'], trials='trials')}. "
        f"No verdict until {settles} hours after the day ends: its lists are still collecting dislikes."
    )

st.subheader("Dislike rate per day")
activations = data.query(queries.list_version_activations)
in_window = activations[
    (activations["activated_at"] >= pd.Timestamp(f.start))
    & (activations["activated_at"] < pd.Timestamp(f.end) + pd.Timedelta(days=1))
]
if rates.empty:
    st.info("No impressions in this window: widen the dates or clear the version filter.")
else:
    st.altair_chart(charts.daily_rate_chart(rates, in_window, today), width="stretch")
    # Impressions but no rate: more dislikes than impressions, which cannot be a rate.
    impossible = int((rates["rate"].isna() & (rates["impressions"] > 0)).sum())
    sparse = int((~rates["enough"]).sum()) - impossible
    if sparse:
        st.caption(
            f"▼ {sparse} day/version slices had fewer than "
            f"{data.get_system().settings.min_impressions_for_rate} impressions: no rate is drawn for them."
        )
    if impossible:
        st.caption(f"▼ {impossible} day/version slices counted more dislikes than impressions: no rate.")
    # A rate on too few impressions is not shown, not even in the raw columns.
    shown = {column: rates[column].where(rates["enough"]) for column in ("rate", "ci_low", "ci_high")}
    table = rates.assign(dislike_rate=ui.rate_column(rates), **shown)[
        ["day", "version", "impressions", "dislikes", "dislike_rate", "rate", "ci_low", "ci_high", "enough"]
    ]
    with st.expander("The numbers behind the chart"):
        ui.show_table(table, "daily_dislike_rates", {"day": st.column_config.DateColumn(format="YYYY-MM-DD")})
