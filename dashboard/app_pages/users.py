"""Users: one person's dislikes, patterns, effective weights and recent lists."""

import pandas as pd
import streamlit as st

from dashboard import charts, data, ui
from feedback_core import lookups

st.title("Users")
recent = data.query(lookups.list_recent_users, limit=20)
left, right = st.columns([1, 3])
user_id = int(
    left.number_input("User id", min_value=1, value=recent[0] if recent else 1, step=1, key="user_id")
)
if recent:
    right.caption("Recently active: " + ", ".join(str(u) for u in recent))

profile = data.query(lookups.get_user_profile, user_id)
lists = data.query(lookups.list_user_lists, user_id, sets=10)
patterns = profile["patterns"]
if patterns["total_dislikes"] == 0 and lists.empty:
    st.info(f"No lists or dislikes recorded for user {user_id}.")
    st.stop()

trend = patterns["recent_trend"]
cols = st.columns(4)
cols[0].metric("Dislikes", f"{patterns['total_dislikes']:,}")
cols[1].metric("Last 30 days", f"{trend['total_dislikes']:,}")
mean = trend["avg_predicted_score"]
cols[2].metric("Mean predicted score (30 days)", "—" if mean is None else f"{mean:.3f}")
if trend["scored_dislikes"] < trend["total_dislikes"]:
    # A mean of some of the dislikes counted beside it: say of how many.
    cols[2].caption(f"of the {trend['scored_dislikes']:,} whose score is known")
cols[3].metric("Adjusted features", f"{len(profile['weights']):,}")

st.caption("Last 30 days: dislikes made in the last 30 days, by the time each was made.")

st.subheader("Patterns")
left, right = st.columns(2)
with left:
    reasons = pd.DataFrame(
        [{"reason": r, "dislikes": n} for r, n in patterns["reason_distribution"].items()],
        columns=["reason", "dislikes"],
    )
    reasons["share"] = reasons["dislikes"] / max(int(reasons["dislikes"].sum()), 1)
    if not reasons.empty:
        st.altair_chart(charts.reason_bar_chart(reasons), width="stretch")
with right:
    top = pd.DataFrame(
        [
            {"kind": kind, "name": item["name"], "dislikes": item["count"]}
            for kind in ("genres", "cast", "franchises")
            for item in patterns[f"top_{kind}"]
        ],
        columns=["kind", "name", "dislikes"],
    )
    ui.show_table(top, f"user_{user_id}_top_features")
    st.caption(
        "A dislike counts against what its reason blames: wrong genre and irrelevant the film's "
        "genres, poor quality its cast and franchise, not interested its genres and franchise, "
        "already watched and other nothing."
    )

st.subheader("Effective feature weights")
if profile["weights"].empty:
    st.info("No applied adjustment: every feature weighs 1.0 for this user.")
else:
    st.altair_chart(charts.weights_chart(profile["weights"]), width="stretch")
    ui.show_table(profile["weights"], f"user_{user_id}_weights")
    st.caption(
        "weight = 1 + applied_sum (the sum of the feature's applied adjustments), held between 0.1 "
        "and 2.0: past a limit, a further adjustment changes nothing until others are reverted."
    )

st.subheader("Recent lists")
if lists.empty:
    st.info("No recorded lists for this user.")
else:
    ui.show_table(
        lists,
        f"user_{user_id}_lists",
        {
            "shown_at": ui.moment_column("shown"),
            "disliked": st.column_config.CheckboxColumn("disliked"),
            "predicted_score": st.column_config.NumberColumn(format="%.3f"),
        },
    )

st.subheader("Dislikes")
ui.show_table(
    profile["dislikes"],
    f"user_{user_id}_dislikes",
    {"created_at": ui.moment_column("when")},
)

st.subheader("Adjustments")
ui.show_table(
    profile["adjustments"],
    f"user_{user_id}_adjustments",
    {
        "created_at": ui.moment_column("proposed"),
        "decided_at": ui.moment_column("decided"),
        "last_disliked_at": ui.moment_column("last disliked"),
    },
)
