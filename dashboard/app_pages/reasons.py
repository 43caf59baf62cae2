"""Reasons: how dislikes split by reason, over time and by genre; the latest dislikes with their text."""

import streamlit as st

from dashboard import charts, data, ui
from feedback_core import lookups, queries

TOP_GENRES = 15  # the heatmap's columns: more would not fit a screen's width

f = ui.current_filters()
st.title("Reasons")

counts = data.query(queries.list_reason_counts, *f.args)
if counts.empty:
    st.info("No dislikes in this window: widen the dates or clear the filters.")
    st.stop()

left, right = st.columns([2, 3])
with left:
    st.subheader("Distribution")
    st.altair_chart(charts.reason_bar_chart(counts), width="stretch")
    ui.show_table(
        counts,
        "reason_counts",
        {
            "share": st.column_config.NumberColumn(format="percent"),
            "mean_predicted_score": st.column_config.NumberColumn(format="%.3f"),
        },
    )
with right:
    st.subheader("Over time")
    st.altair_chart(
        charts.reason_trend_chart(data.query(queries.list_reason_trend, *f.args)), width="stretch"
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

st.subheader("Latest dislikes")
st.caption(f"The newest 100 of the window; {ui.ON_DAY_MADE}.")
latest = data.query(lookups.list_latest_dislikes, *f.args, limit=100)
ui.show_table(
    latest,
    "latest_dislikes",
    {
        "created_at": st.column_config.DatetimeColumn("when (UTC)", format="YYYY-MM-DD HH:mm"),
        "predicted_score": st.column_config.NumberColumn(format="%.3f"),
        "feedback_text": st.column_config.TextColumn("feedback", width="large"),
    },
)
