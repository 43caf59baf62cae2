"""Audit log: every decision and action, who and when, filterable and exportable."""

from datetime import timedelta

import streamlit as st

from dashboard import data, ui
from feedback_core import lookups

PERIODS = {"Last 24 hours": 1, "Last 7 days": 7, "Last 30 days": 30, "Last 365 days": 365}

st.title("Audit log")
facets = data.query(lookups.list_audit_facets)
c1, c2, c3, c4 = st.columns(4)
period = c1.selectbox("Period", list(PERIODS), index=2, key="audit_period")
actor = c2.selectbox("Who", [None, *facets["actors"]], format_func=lambda a: a or "anyone", key="audit_actor")
action = c3.selectbox(
    "Action", [None, *facets["actions"]], format_func=lambda a: a or "any", key="audit_action"
)
outcome = c4.selectbox(
    "Outcome", [None, "ok", "denied"], format_func=lambda o: o or "any", key="audit_outcome"
)

today = data.get_system().now().date()
SHOWN = 1000
# One more than shown: whether older records match too, without counting them all.
log = data.query(
    lookups.list_audit,
    today - timedelta(days=PERIODS[period] - 1),
    today,
    actor,
    action,
    outcome,
    limit=SHOWN + 1,
)
more = len(log) > SHOWN
log = log.iloc[:SHOWN]
if log.empty:
    st.info("No audit records match: decisions, retrains and activations appear here as they happen.")
else:
    denied = int((log["outcome"] == "denied").sum())
    refused = f"; {denied} refused" if denied else ""
    if more:
        st.caption(
            f"The newest {SHOWN:,} of the records that match, newest first{refused}: older ones match too; "
            "a shorter period, or a person or action picked, reaches them."
        )
    else:
        st.caption(f"{len(log):,} records, newest first{refused}.")
    ui.show_table(
        log,
        "audit_log",
        {
            "at": ui.moment_column("when", seconds=True),
            "details": st.column_config.TextColumn(width="large"),
        },
    )
