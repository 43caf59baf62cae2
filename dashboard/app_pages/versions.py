"""Model versions: the registry, a two-version comparison with its test, activation and rollback."""

import pandas as pd
import streamlit as st

from dashboard import charts, data, ui
from feedback_core import queries

# Which test gave the p-value: Fisher's exact test when a count is small, else the z-test.
TESTS = {"fisher_exact": "Fisher's exact test", "z_test": "two-proportion z-test"}
LISTED = 5  # versions named in a warning; beyond that, counted
BARELY_BETTER_AUC = 0.55  # an AUC above chance but under this tells little apart

st.title("Model versions")
versions = data.query(queries.list_versions)
if versions.empty:
    st.info("No model version yet: the first training run creates one (see the Retrain page).")
    st.stop()

label = queries.version_label
active = versions.loc[versions["status"] == "active", "version_id"]
active_id = int(active.iloc[0]) if len(active) else None

st.subheader("Registry")
st.caption(
    "Online rates count every impression each version served (all time); a dislike counts with "
    "its list, on the day the list was shown."
)
# A rate on too few impressions is not shown, not even in the raw columns.
shown = {column: versions[column].where(versions["enough"]) for column in ("rate", "ci_low", "ci_high")}
registry = versions.assign(dislike_rate=ui.rate_column(versions), **shown)
# What tells versions apart first (their online rate with its interval), then how they came to be.
first = ["version", "status", "dislike_rate", "impressions", "dislikes"]
registry = registry[first + [c for c in registry.columns if c not in first and c != "version_id"]]
ui.show_table(
    registry,
    "model_versions",
    {
        "created_at": ui.moment_column("created"),
        "activated_at": ui.moment_column(
            "last activated",
            help="The latest activation; every one (and every rollback) is on the Audit log page",
        ),
        "trained_on": st.column_config.NumberColumn(
            "trained on", help="Examples of its training run: ratings, shown films not disliked, dislikes"
        ),
        "new_dislikes": st.column_config.NumberColumn(
            "new dislikes", help="Negative examples from dislikes that no version before it had trained on"
        ),
        "rate": st.column_config.NumberColumn(format="percent"),
        "ci_low": st.column_config.NumberColumn(format="percent"),
        "ci_high": st.column_config.NumberColumn(format="percent"),
        "accuracy_baseline": st.column_config.NumberColumn(
            "accuracy, no model", help="Always answering the commoner label on the same rows"
        ),
        "precision_at_10_baseline": st.column_config.NumberColumn(
            "precision@10, no model", help="Each user's films in a random order, on the same rows"
        ),
    },
)
st.caption(
    "Accuracy and precision@10 rise with the share of liked films whatever a model does: each "
    "stands beside what no model at all would score on the same rows."
)
no_better = [
    f"{row.version} (accuracy {row.accuracy:.4f} vs {row.accuracy_baseline:.4f})"
    for row in versions.itertuples()
    if pd.notna(row.accuracy) and pd.notna(row.accuracy_baseline) and row.accuracy <= row.accuracy_baseline
]
measured = int((versions["accuracy"].notna() & versions["accuracy_baseline"].notna()).sum())


def which(named: list[str], measured: int) -> str:
    """The versions a warning holds: ``all 11 versions`` (``all 9 versions measured (of 11)``
    when some record no such figure) when it holds every one measured, at least three; else the
    first ``LISTED`` named and the rest counted (eleven named at length were a wall nobody read)."""
    if len(named) == measured >= 3:
        return f"all {measured} versions" + (
            f" measured (of {len(versions)})" if measured < len(versions) else ""
        )
    return ", ".join(named[:LISTED]) + (f" and {len(named) - LISTED} more" if len(named) > LISTED else "")


if no_better:
    st.warning(
        "No more accurate than always answering the commoner label, on their own held-out rows: "
        + which(no_better, measured)
        + ". Judge them by AUC and by their online dislike rate.",
        icon=":material/info:",
    )
chance = [
    f"{row.version} (AUC {row.auc:.4f})"
    for row in versions.itertuples()
    if pd.notna(row.auc) and row.auc <= 0.5
]
if chance:
    st.warning(
        "No better than chance at telling disliked films from liked ones (AUC at most 0.5 on their "
        "own held-out rows): " + ", ".join(chance) + ". None is activated by itself; activate one only "
        "for a reason its online dislike rate gives.",
        icon=":material/casino:",
    )
barely = [
    f"{row.version} ({row.auc:.3f})"
    for row in versions.itertuples()
    if pd.notna(row.auc) and 0.5 < row.auc < BARELY_BETTER_AUC
]
if barely:
    st.info(
        f"Barely better than chance (AUC under {BARELY_BETTER_AUC}): "
        f"{which(barely, int(versions['auc'].notna().sum()))}. Their scores hardly tell a "
        "film the person will dislike from one they will like; differences between them in the tables "
        "below are small beside that.",
        icon=":material/casino:",
    )
st.altair_chart(charts.version_rates_chart(versions), width="stretch")
# A version that never served has no impressions at all: not "too few".
never = versions.loc[~versions["enough"] & (versions["impressions"] == 0), "version"].tolist()
few = versions.loc[~versions["enough"] & (versions["impressions"] > 0), "version"].tolist()
unrated = [
    f"{what}: {', '.join(names)}"
    for what, names in (("never served (no impressions)", never), ("too few impressions", few))
    if names
]
if unrated:
    st.caption(f"Not drawn: {'; '.join(unrated)}.")

st.subheader("Compare two versions")
ids = [int(v) for v in versions["version_id"]]
if len(ids) < 2:
    st.info("Only one version so far: a comparison needs a second one (see the Retrain page).")
else:
    parents = {int(v): p for v, p in zip(versions["version_id"], versions["parent"])}
    # The active version against the one it replaced; a first version, which replaced none, is
    # the baseline of the newest version trained against it (else of the newest other).
    judged = active_id if active_id in ids else ids[0]
    if not parents[judged] and len(ids) > 1:
        children = [v for v in ids if parents[v] == label(judged)]
        judged = children[0] if children else next(v for v in ids if v != judged)
    default_b = ids.index(judged)
    left, right = st.columns(2)
    # A on the left, B on the right, as the figures below; B is chosen first (the one judged).
    b = right.selectbox(
        "Version B (the one you judge)", ids, index=default_b, format_func=label, key="compare_b"
    )
    others = [v for v in ids if v != b]
    parent = versions.loc[versions["version_id"] == b, "parent"].iloc[0]
    # The baseline of the active version is the one it replaced when last activated (after a
    # rollback, not its parent: v6 rolled back to stood against v3, not against v8 it replaced).
    replaced = None
    moments = [int(v) for v in data.query(queries.list_version_activations)["model_version_id"]]
    if b == active_id:
        last = max((i for i, v in enumerate(moments) if v == b), default=None)
        replaced = int(moments[last - 1]) if last else None
    baseline = replaced if replaced in others else next((v for v in others if label(v) == parent), None)
    if baseline is None and (not parent or parent not in {label(v) for v in ids}):
        # A first version has no parent (or one no longer in the registry): it stands against
        # the version that replaced it when it last served, else the oldest trained against it
        # (the newest of all, a candidate that never served, gave "no verdict yet").
        after = [moments[i + 1] for i, v in enumerate(moments[:-1]) if v == b and moments[i + 1] != b]
        children = sorted(v for v in others if parents[v] == label(b))
        baseline = after[-1] if after else (children[0] if children else None)
    default_a = others.index(baseline) if baseline in others else 0
    # A follows B: another B is judged against its own baseline. The browser keeps a widget's
    # value while it is still one of the options (A stayed v6 when B went from v8 to v5, whose
    # parent is v3), so A is set here whenever B changed since the last run, or A is still the
    # default B had then and that default changed (an activation: the active B's baseline is
    # the version it replaced; A kept the parent until a reload); a baseline picked by hand for
    # the same B stays.
    last_b, last_default = st.session_state.get("compare_a_follows") or (None, None)
    current_a = st.session_state.get("compare_a")
    if current_a not in others or (last_b is not None and (last_b != b or current_a == last_default)):
        st.session_state["compare_a"] = others[default_a]
    st.session_state["compare_a_follows"] = (b, others[default_a])
    a = left.selectbox("Version A (the baseline)", others, format_func=label, key="compare_a")

    comparison = data.query(queries.compare_versions, a, b)
    periods = comparison["online"].to_dict("records")
    st.caption(
        "All-time figures: "
        + "; ".join(f"{row['version']} served {ui.fmt_days(row)}" for row in periods)
        + ". Dislikes count on the day their list was shown."
    )
    judged = comparison
    shared = comparison["shared_days"]
    both_served = all(row["days"] for row in periods)  # one that never served has no period to differ
    if both_served and not comparison["same_days"]:
        scope = "all days"
        if shared is not None:
            scope = st.radio(
                "Compare over",
                ["all days", "shared days"],
                format_func=lambda s: (
                    "All days each served"
                    if s == "all days"
                    else f"Only the days both served ({ui.fmt_days(shared)})"
                ),
                horizontal=True,
                key="compare_scope",
            )
        if scope == "shared days":
            judged = shared
            st.info(
                f"Both over the same days: {ui.fmt_days(shared)}, the days both versions served.",
                icon=":material/event_available:",
            )
        else:
            st.warning(
                "The two versions served on different days: a change between those days (adjustments "
                "approved meanwhile, which change every later score of their users; users, catalogue, "
                "season) shows up as a difference between the versions.",
                icon=":material/event_busy:",
            )
    today = data.get_system().now().date()
    includes_today = any(row["last_day"] == today for row in judged["online"].to_dict("records"))
    if includes_today:
        st.caption(
            "The figures include today, whose lists are still collecting dislikes: its rate can only rise."
        )
    # The colour follows the direction: a lower rate for B is good news, a higher one bad. The
    # verdict carries its caveats itself: a reader may look at the box alone.
    caveats = []
    if judged is comparison and both_served and not comparison["same_days"]:
        caveats.append("over different days")
    if includes_today:
        caveats.append("today still counting")
    # Over different days the difference may be the days' (the warning above): never coloured
    # as good or bad news then, as the Overview leaves a change against thin days uncoloured.
    coloured = "over different days" not in caveats
    box = {"lower": st.success, "higher": st.error}.get(judged["outcome"], st.info) if coloured else st.info
    box(judged["verdict"] + (f" ({'; '.join(caveats)})" if caveats else ""), icon=":material/balance:")
    if judged["difference"] is not None:
        st.caption(
            f"Difference B − A: {judged['difference'] * 100:+.2f} points "
            f"(95% interval {judged['difference_low'] * 100:+.2f} to {judged['difference_high'] * 100:+.2f}), "
            f"{TESTS.get(judged['test'], 'test')} {ui.fmt_p(judged['p_value'])}."
        )
    online = judged["online"]
    cols = st.columns(2)
    for col, row in zip(cols, online.to_dict("records"), strict=True):
        col.metric(
            f"Dislike rate of {row['version']}, {ui.fmt_days(row)}",
            ui.fmt_rate(row, trials="impressions"),
            help=f"{row['dislikes']:,} dislikes / {row['impressions']:,} impressions, {ui.fmt_days(row)}",
        )
    same = data.query(queries.same_examples_comparison, a, b)
    gain = same["gain"] if same else None
    # "the 2,223 examples"; "the examples" when training recorded no count.
    held_out = f"{same['examples']:,} " if same and same["examples"] else ""
    if gain is not None and not all(row["days"] for row in periods):
        # One of them never served: no online verdict, but training measured both on the same
        # examples. Said here, beside the verdict it stands in for.
        st.caption(
            f"Offline, on the same {held_out}held-out examples (below): AUC per (user, film) "
            f"{label(b)} − {label(a)} {gain['difference']:+.4f} (95% interval {gain['low']:+.4f} to "
            f"{gain['high']:+.4f}), DeLong {ui.fmt_p(gain.get('p_value'))}."
        )
    tab_offline, tab_weights = st.tabs(["Offline metrics", "Weights side by side"])
    with tab_offline:
        if same is not None:
            trained, other = same["trained"], b if same["trained"] == a else a
            st.markdown(
                f"**On the same examples**: {label(trained)} was trained against {label(other)} and "
                f"both were measured on the {held_out}examples {label(other)} never saw "
                "(as the Retrain page compares them)."
            )
            ui.show_table(ui.named_metrics(same["offline"]), f"same_examples_{label(a)}_{label(b)}")
            st.markdown("**Each on its own training run** (other examples: indicative only)")
        st.caption(
            "Each version's offline figures come from its own training run, on the examples of that "
            "moment: their difference is indicative only. The Retrain page compares a candidate with "
            "the version it was trained against on the same examples."
        )
        ui.show_table(ui.named_metrics(comparison["offline"]), f"offline_metrics_{label(a)}_{label(b)}")
    with tab_weights:
        if comparison["weights"].empty:
            st.info("Neither version records feature weights.")
        else:
            ui.show_table(comparison["weights"], f"weights_{label(a)}_{label(b)}")

st.subheader("Activate or roll back")
choices = [v for v in ids if v != active_id]
if not choices:
    st.info("There is no other version to activate.")
else:
    # Offered first: the version that served last before the active one (what a rollback
    # usually means), else the newest.
    served = versions[versions["version_id"].isin(choices) & versions["activated_at"].notna()]
    previous = int(served.sort_values("activated_at").iloc[-1]["version_id"]) if len(served) else None
    target = st.selectbox(
        "Version",
        choices,
        index=choices.index(previous) if previous in choices else 0,
        format_func=label,
        key="activate_target",
    )
    row = versions.loc[versions["version_id"] == target].iloc[0]
    # As the audit log names it: back to an older version that served before (a never-served
    # candidate is activated, not rolled back to).
    older = active_id is not None and target < active_id and pd.notna(row["activated_at"])
    st.caption(
        f"{label(target)} ({row['status']}, trigger {row['trigger']}) will serve every new list; "
        f"{label(active_id) if active_id else 'nothing'} stops serving."
    )
    verb = "Roll back to" if older else "Activate"
    # Not the page's primary action: most visits read the registry, and a coloured button below
    # it invited a rollback nobody asked for.
    if ui.action_button(f"{verb} {label(target)}", "model.activate", key="activate_version"):
        ui.ask_to_confirm(
            "activate",
            f"{verb} {label(target)}? It replaces {label(active_id) if active_id else 'no active version'} "
            "for every recommendation from now on.",
            f"{verb} {label(target)}",
            version_id=int(target),
            expected_active=active_id,  # refused if another activation happens before "Confirm"
        )
