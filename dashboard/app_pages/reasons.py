"""Reasons: how dislikes split by reason, over time and by genre; the latest dislikes with their text."""

from datetime import timedelta

import pandas as pd
import streamlit as st

from dashboard import charts, data, ui, wording
from feedback_core import lookups, queries

TOP_GENRES = 15  # the heatmap's columns: more would not fit a screen's width
FILMS_LISTED = 20

f = ui.current_filters()
st.title("Reasons")
st.caption(f.describe())

counts = data.query(queries.list_reason_counts, *f.args)
if counts.empty:
    st.info("No dislikes in this window: widen the dates or clear the filters.")
    st.stop()

left, right = st.columns([2, 3])
with left:
    st.subheader("Distribution")
    st.altair_chart(charts.reason_bar_chart(counts), width="stretch")
with right:
    st.subheader("Over time")
    trend = data.query(queries.list_reason_trend, *f.args)
    # A day's lists collect dislikes until it has settled: until then its bar is lighter, not a drop.
    last_settled = queries.last_settled_day(data.get_system().now())
    st.altair_chart(charts.reason_trend_chart(trend, last_settled), width="stretch")
    if (trend["day"] > pd.Timestamp(last_settled)).any():
        st.caption(
            "Lighter bars: days not settled, their lists still collecting dislikes until "
            f"{int(queries.DAY_SETTLES.total_seconds() // 3600)} hours after the day ends (UTC)."
        )

# The table the width of the page: beside the chart, its rates were cut off.
# Each reason's own rate beside its share: one surging reason shrinks the others' shares
# while their rates stay as they were. And the same rate over as many days before: "which
# reasons grew this week" without a second window picked by hand.
days = (f.end - f.start).days + 1
before = data.query(
    queries.list_reason_counts,
    f.start - timedelta(days=days),
    f.start - timedelta(days=1),
    f.versions,
    f.reasons,
).set_index("reason")
minimum = data.get_system().settings.min_impressions_for_rate
# How much of the window before has data, said in its column's name: "the 28 days before" with
# impressions on two of them compares with two days, and a rate "before" from them is no trend.
shown_before = data.query(
    queries.count_days_with_impressions,
    f.start - timedelta(days=days),
    f.start - timedelta(days=1),
    f.versions,
)
before_name = wording.days_before(days, shown_before)


def rate_before(reason: str) -> str:
    if reason in before.index:
        return ui.fmt_rate(before.loc[reason], trials="impressions")
    if before.empty:  # no dislike at all before: its impressions are not counted here
        return "no dislikes"
    shown = int(before["impressions"].iloc[0])  # every row holds the window's impressions
    return ui.fmt_rate(queries.rate_fields(0, shown, minimum) | {"impressions": shown}, trials="impressions")


earlier = [rate_before(r) for r in counts["reason"]]
# The rates first: the table is narrower than its columns, and they were cut off.
table = counts[["reason", "dislikes"]].assign(
    dislike_rate=ui.rate_column(counts, "impressions"),
    rate_before=earlier,
    share=counts["share"],
    mean_predicted_score=counts["mean_predicted_score"],
)
ui.show_table(
    table,
    "reason_counts",
    {
        "share": st.column_config.NumberColumn("share of dislikes", format="percent"),
        "mean_predicted_score": st.column_config.NumberColumn("mean predicted score", format="%.3f"),
        "dislike_rate": st.column_config.TextColumn("dislike rate (95% interval)"),
        "rate_before": st.column_config.TextColumn(before_name),
    },
)
st.caption(
    "Share: of this window's dislikes. Dislike rate: the reason's dislikes on shown lists per "
    f"impression ({int(counts['impressions'].iloc[0]):,} in this window), which another reason's surge "
    "does not move."
)

st.caption(f"Distribution, over time and reason × genre: {ui.ON_LIST_DAY}.")

st.subheader("Reason × genre")
st.caption(
    f"The {TOP_GENRES} genres most disliked in this selection. A dislike counts once for each genre of "
    "its film, so a row can add up to more than its reason's count."
)
matrix = data.query(queries.list_reason_genre, *f.args, top_genres=TOP_GENRES)
if matrix.empty:
    st.info("None of these dislikes had genres.")
else:
    st.altair_chart(charts.reason_genre_heatmap(matrix), width="stretch")

# On request: ranking a window's films reads its dislikes one by one (no per-film daily counts
# are kept), up to a quarter of a second at a million dislikes; the page itself reads aggregates.
films_box = st.expander(
    "Most disliked films", key="reasons_films", on_change="rerun", icon=":material/movie:"
)
if films_box.open:
    with films_box:
        ranked = data.query(lookups.list_disliked_films, *f.args, limit=FILMS_LISTED)
        films = ranked["films"]
        if films.empty:
            st.info("No standing dislike was made in this window.")
        else:
            st.caption(
                wording.films_ranked(ranked["counted"], ranked["capped"], len(films)) + f"; {ui.ON_DAY_MADE}."
            )
            ui.show_table(
                films.assign(top_reason=films["top_reason"].str.replace("_", " ")),
                "disliked_films",
                {
                    "movie_id": st.column_config.NumberColumn("film", format="%d", width="small"),
                    "title": st.column_config.TextColumn("title", width="medium"),
                    "share": st.column_config.NumberColumn("share of dislikes", format="percent"),
                    "top_reason": st.column_config.TextColumn("reason given most"),
                    "top_reason_dislikes": st.column_config.NumberColumn("of them"),
                    "mean_predicted_score": st.column_config.NumberColumn(
                        "mean predicted score", format="%.3f"
                    ),
                },
            )

st.subheader("Latest dislikes")
st.caption(f"The newest 100 of the window; {ui.ON_DAY_MADE}.")
latest = data.query(lookups.list_latest_dislikes, *f.args, limit=100)
# What was said first, the ids last: at the right of nine columns the feedback was cut off.
said_first = ["created_at", "movie_title", "reason", "feedback_text", "predicted_score"]
ui.show_table(
    latest[said_first + [c for c in latest.columns if c not in said_first]],
    "latest_dislikes",
    {
        "created_at": ui.moment_column("when"),
        "predicted_score": st.column_config.NumberColumn(format="%.3f"),
        "feedback_text": st.column_config.TextColumn("feedback", width="large"),
    },
)
