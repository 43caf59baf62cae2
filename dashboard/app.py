"""The feedback dashboard: ``streamlit run dashboard/app.py`` (``make run`` loads the demo first).

This entry script runs on every page view: it identifies the person (and stops a person without
a role), checks the database, creates the shared sidebar filters on the pages they filter, then
runs the selected page from ``app_pages/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run dashboard/app.py` puts only dashboard/ on the path; the pages import `dashboard.*`.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402
from streamlit.errors import StreamlitAuthError  # noqa: E402

from dashboard import data, identity, ui  # noqa: E402
from feedback_core import queries  # noqa: E402
from feedback_core.errors import ConfigError, DatabaseUnavailableError  # noqa: E402
from feedback_core.settings import mask_url  # noqa: E402

st.set_page_config(page_title="Dislike feedback", page_icon=":material/thumb_down:", layout="wide")

# Streamlit serves the default page at "/" only, whatever its url_path, so /overview (the address
# people bookmark) showed "Page not found". A hidden second entry serves the Overview there too;
# the default's url_path is empty, leaving "overview" to it. (A redirect from one address to the
# other would leave a history entry that the Back button returns to and bounces off.)
PAGES = {
    "Monitor": [
        st.Page(
            "app_pages/overview.py", title="Overview", icon=":material/monitoring:", url_path="", default=True
        ),
        st.Page(
            "app_pages/overview.py",
            title="Overview",
            icon=":material/monitoring:",
            url_path="overview",
            visibility="hidden",
        ),
        st.Page("app_pages/reasons.py", title="Reasons", icon=":material/category:", url_path="reasons"),
        st.Page(
            "app_pages/errors.py", title="Prediction errors", icon=":material/target:", url_path="errors"
        ),
    ],
    "Model": [
        st.Page(
            "app_pages/versions.py", title="Model versions", icon=":material/layers:", url_path="versions"
        ),
        st.Page(
            "app_pages/retrain.py", title="Retrain", icon=":material/model_training:", url_path="retrain"
        ),
    ],
    "Decide": [
        st.Page(
            "app_pages/adjustments.py", title="Adjustments", icon=":material/tune:", url_path="adjustments"
        ),
    ],
    "Look up": [
        st.Page("app_pages/users.py", title="Users", icon=":material/person_search:", url_path="users"),
        st.Page("app_pages/audit.py", title="Audit log", icon=":material/history:", url_path="audit"),
    ],
}


# The pages the sidebar's dates, versions and reasons filter (the Overview at both its addresses);
# the others read what they show whole (or have their own filters), so the sidebar does not
# offer a choice they would ignore.
FILTERED_PAGES = PAGES["Monitor"]


# Without sign-in, whoever can use the page acts as the operator: a page of another site that
# shows it in a frame, or opens it in a window it keeps a hold on, could have the operator click
# its buttons. The guard (in a frame of the dashboard's own origin) empties the dashboard then.
FRAME_GUARD = """<script>
if (window.parent.parent !== window.parent) {
  window.parent.document.body.textContent =
    "This dashboard cannot be shown inside another page without sign-in: open it on its own.";
} else if (window.parent.opener) {
  // Opened by a script of another page (a link opens it without an opener), which could steer it.
  window.parent.document.body.textContent =
    "This dashboard was opened by another page, which could steer it: open it on its own.";
}
</script>"""


def _refuse_to_be_framed() -> None:
    import streamlit.components.v1 as components

    components.html(FRAME_GUARD, height=0)


def _identify() -> identity.Identity:
    try:
        who = identity.current_identity()
    except identity.LocalModeRefused as exc:
        st.error("Sign-in is needed: other machines can reach this dashboard.", icon=":material/lock:")
        st.text(str(exc))
        st.stop()
    except identity.IdentityError as exc:
        st.error("The dashboard's identity configuration is invalid.", icon=":material/badge:")
        st.text(str(exc))
        st.stop()
    if who is None:
        st.title("Dislike feedback")
        st.write("Sign in to see the feedback dashboard.")
        if st.button("Sign in", type="primary", key="login"):
            try:
                st.login()
            except StreamlitAuthError as exc:  # e.g. Authlib missing, or [auth] incomplete
                st.error("Sign-in is configured but cannot start.", icon=":material/badge:")
                st.text(str(exc))
        st.stop()
    if who.mode == "local":
        _refuse_to_be_framed()
    if not who.can_view():
        st.title("Dislike feedback")
        st.warning(
            "You have no role here, so there is nothing to show you: ask an admin to give you one "
            "(the viewer role lets you look at every page).",
            icon=":material/lock:",
        )
        st.text(f"Signed in as {who.describe()}")
        if who.mode == "oidc" and st.button("Sign out", key="logout"):
            st.logout()
        st.stop()
    return who


def _database_state() -> dict:
    try:
        url = data.database_url()
        state = data.query(queries.get_database_state)
        if state["status"] != "ready" or state["outdated"]:
            # A database being set up (init, the demo, an import in another process) is read
            # afresh on every view, so following the page's own advice shows at the next reload.
            data.refresh()
            state = data.query(queries.get_database_state)
        return {**state, "url": mask_url(url)}
    except ConfigError as exc:
        st.error("The dashboard's database configuration is invalid.", icon=":material/settings:")
        st.text(exc.message)
        st.stop()
    except DatabaseUnavailableError as exc:
        ui.show_unreachable(exc)
        st.stop()


def main() -> None:
    """Render the page the person asked for."""
    who = _identify()
    navigation = st.navigation(PAGES)
    try:
        # Every number of the page from one snapshot, read in one transaction: they agree.
        with data.reading():
            shown = _show_page(who, navigation)
        if shown:
            ui.confirm_pending()  # an action writes: after the page's reads, outside their snapshot
    except DatabaseUnavailableError as exc:
        ui.show_unreachable(exc)


def _show_page(who: identity.Identity, navigation) -> bool:
    """Check the database, draw the sidebar and run the page; say whether a page was shown."""
    state = _database_state()
    with st.sidebar:
        st.text(f"Signed in as {who.describe()}")
        if who.mode == "oidc" and st.button("Sign out", key="logout"):
            st.logout()
    if state["status"] in ("missing", "empty"):
        ui.show_guidance(state["status"], state["url"])
        return False
    if state["outdated"]:
        st.warning(
            f"The database schema is at revision {state['revision']} but this code expects "
            f"{state['head']}: run `feedback-core init` to upgrade it.",
            icon=":material/upgrade:",
        )
    data.start_worker_if_enabled()
    if navigation in FILTERED_PAGES:
        ui.sidebar_filters(data.query(queries.get_data_bounds), data.query(queries.list_filter_versions))
    else:
        ui.keep_filters()
        ui.clear_filters_from_url()
    ui.show_flashes()
    st.session_state[ui.PAGE_SHOWN] = navigation.url_path  # where a decision asked here belongs
    navigation.run()
    return True


main()
