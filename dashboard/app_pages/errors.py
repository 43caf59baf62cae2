"""Prediction errors: how confident the model was about what people disliked."""

import streamlit as st

from dashboard import charts, data, ui
from feedback_core import queries

NO_VERSION_NOTE = (
    "No version: dislikes of lists the prior model served (before a version was active), and "
    "dislikes sent without a list, whose score is the one sent with them."
)
UNKNOWN_NOTE = (
    "A dislike whose predicted score nobody knows (sent without one, of a film its list showed "
    "without one) counts in no mean and no bar: a missing score is not a perfect prediction."
)

f = ui.current_filters()
st.title("Prediction errors")
st.caption(f.describe())
st.caption(
    "A dislike's error is the score the model predicted for it (the person's real preference was 0): "
    "a disliked film shown with 0.9 is a confident mistake."
)

histogram = data.query(queries.list_score_histogram, *f.args)
by_version = data.query(queries.list_error_by_version, *f.args)
if by_version.empty:
    st.info("No dislikes in this window: widen the dates or clear the filters.")
    st.stop()
unknown = int(by_version["dislikes"].sum() - by_version["scored"].sum())
if histogram.empty:
    st.info(
        f"None of the {unknown:,} dislikes of this window has a known predicted score: they were sent "
        "without one, of lists that showed none. " + UNKNOWN_NOTE
    )
    st.stop()

cols = st.columns(max(len(by_version), 1))
for col, row in zip(cols, by_version.itertuples(), strict=False):
    mean, shown = row.mean_prediction_error, row.shown_mean_score
    # Beside what the version predicted for everything it showed: a disliked film scored like
    # the rest says the scores did not see the dislike coming; far above them, a confident miss.
    # Its dislikes of those lists only: one sent without a list carries the caller's score.
    compared = row.listed_scored > 0 and row.shown_scored > 0
    gap = f"{row.listed_mean_error - shown:+.3f} vs all shown" if compared else None
    col.metric(
        f"Mean error, {row.version}",
        "—" if row.scored == 0 else f"{mean:.3f}",
        gap,  # (short: a longer one was cut off)
        delta_color="off",
    )
    # Each version's share in the histogram is of this many dislikes: shown, not only hovered.
    if row.scored == row.dislikes:
        over = f"over {row.dislikes:,} dislikes"
    else:
        over = f"over the {row.scored:,} of {row.dislikes:,} dislikes whose score is known"
    col.caption(over + (f"; all it showed: {shown:.3f}" if compared else ""))

st.caption(
    "Under each mean error: how far it is from the mean score the version gave every item it showed in "
    "this window, for its dislikes of those lists (none when it showed nothing with a score in it). Below 0: it scored what was disliked "
    "lower than the rest; near 0: its scores did not see the dislikes coming; above: confident mistakes."
)
st.caption(f"Here and in the histogram below, {ui.ON_LIST_DAY}.")
if (by_version["version"] == queries.version_label(None)).any():
    # Two kinds of dislike share the label: say so, and where their scores come from.
    st.caption(NO_VERSION_NOTE)
if unknown:
    st.caption(f"{unknown:,} dislikes of this window have no known predicted score. {UNKNOWN_NOTE}")

st.subheader("Predicted scores of disliked items")
st.altair_chart(charts.score_histogram_chart(histogram), width="stretch")
with st.expander("The numbers behind the chart"):
    ui.show_table(histogram, "score_histogram", {"share": st.column_config.NumberColumn(format="percent")})

st.subheader("Most confident mistakes, all time")
st.caption(
    "Films most often disliked after a predicted score of 0.7 or more, over all the data: the dates, "
    "versions and reasons picked in the sidebar do not apply to this list."
)
mistakes = data.query(queries.list_confident_mistakes, limit=15)
if mistakes.empty:
    st.info("No film has been disliked after a high predicted score.")
else:
    st.altair_chart(charts.confident_mistakes_chart(mistakes), width="stretch")
    ui.show_table(
        mistakes, "confident_mistakes", {"mean_predicted_score": st.column_config.NumberColumn(format="%.3f")}
    )
