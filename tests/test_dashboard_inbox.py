"""The approval inbox's proposals are picked by selecting their rows in the inbox table.

The selection follows the proposals, not the row positions: once some are decided, filtered out
or the list changes, no other proposal takes their place. AppTest cannot click a table's rows,
so its tests set the selection the browser would send; the browser tests click the rows.
"""

from __future__ import annotations

import time

import pytest
import test_dashboard_apptest as in_apptest
import test_dashboard_browser as in_browser
from sqlalchemy import select
from test_dashboard_apptest import confirm, inbox_key, open_page, pick, select_rows, table
from test_dashboard_browser import (
    OPERATOR,
    go_to,
    inbox_table,
    pick_adjustment,
    tick_inbox_row,
    ticked_inbox_rows,
    wait_until_idle,
)

from dashboard import data
from feedback_core import lookups
from feedback_core.schema import feature_adjustments

# Their fixtures, for these tests too (this module gets its own sample database and server).
sample_file, dashboard_env, own_db = in_apptest.sample_file, in_apptest.dashboard_env, in_apptest.own_db
server, browser = in_browser.server, in_browser.browser


def decisions(system) -> dict[int, tuple]:
    """Every adjustment's (status, decided_by): tests compare them before and after."""
    with system.engine.connect() as conn:
        rows = conn.execute(
            select(
                feature_adjustments.c.adjustment_id,
                feature_adjustments.c.status,
                feature_adjustments.c.decided_by,
            )
        )
        return {r.adjustment_id: (r.status, r.decided_by) for r in rows}


def changed(before: dict, after: dict) -> dict:
    return {i: after[i] for i in after if before.get(i) != after[i]}


def selected_rows(at) -> list[int]:
    return list(at.session_state[inbox_key(at)]["selection"]["rows"])


def unselected_notes(at) -> list[str]:
    return [i.value for i in at.info if i.value.startswith("Unselected")]


def shown_ids(at) -> list[int]:
    return [int(i) for i in table(at, "adjustment_id", "evidence_dislikes")["adjustment_id"]]


# ---------------------------------------------------------------- AppTest


def test_the_selected_row_is_the_proposal_previewed_and_decided(own_db):
    at = open_page("adjustments")
    assert not [m for m in at.multiselect if m.label == "Decide on"]  # no picker matching ids loosely
    shown = shown_ids(at)
    before = decisions(own_db)
    select_rows(at, 2)
    target = shown[2]
    proposal = own_db.get_adjustment(target)
    assert any(
        t.value.startswith(f"Selected (1):\n#{target} · user {proposal['user_id']} · ") for t in at.text
    )
    assert at.number_input(key=f"magnitude_{target}").value == pytest.approx(proposal["proposed_magnitude"])
    preview = lookups.preview_adjustment(own_db, target)
    assert any(
        t.value.startswith(f"User {preview['user_id']}, {preview['feature']}: weight") for t in at.text
    )
    assert at.button(key="reject_selected").label == f"Reject adjustment #{target}"
    at.button(key="reject_selected").click().run()
    confirm(at)
    assert changed(before, decisions(own_db)) == {target: ("rejected", "ops@example.com")}
    assert shown_ids(at)[:3] == [shown[0], shown[1], shown[3]] and selected_rows(at) == []


def test_decided_rows_leave_the_selection_and_no_other_row_takes_their_place(own_db):
    at = open_page("adjustments")
    shown = shown_ids(at)
    before = decisions(own_db)
    select_rows(at, 0, 1)
    assert at.button(key="approve_selected").label == "Approve 2 adjustments"
    at.button(key="approve_selected").click().run()
    assert any(
        f"2 adjustments (#{shown[0]}, #{shown[1]}), each at its proposed magnitude?" in t.value
        for t in at.text
    )  # the dialog names them, and what it applies
    confirm(at)
    assert changed(before, decisions(own_db)) == {
        shown[0]: ("applied", "ops@example.com"),
        shown[1]: ("applied", "ops@example.com"),
    }
    # The rows now first are other proposals: they were not selected, and stay unselected.
    assert shown_ids(at)[:2] == shown[2:4]
    assert unselected_notes(at) == []  # the person's own decision took them out: no news
    for _ in range(2):
        assert selected_rows(at) == []
        assert not any(t.value.startswith("Selected (") for t in at.text)
        button = at.button(key="approve_selected")
        assert (button.label, button.disabled) == ("Approve", True)
        at.run()


def test_the_selection_follows_its_proposals_when_the_rows_shift(own_db):
    at = open_page("adjustments")
    shown = shown_ids(at)
    select_rows(at, 1, 2)
    kept, gone = shown[1], shown[2]
    # Meanwhile another person decides the row above and one of the two selected.
    own_db.reject_adjustments([shown[0], gone], "other@example.com", "duplicate")
    data.refresh()
    before = decisions(own_db)
    at.run()
    assert shown_ids(at)[0] == kept and selected_rows(at) == [0]
    assert unselected_notes(at) == [
        f"Unselected #{gone}: it left this list: decided by someone else, or no longer among the 200 newest."
    ]
    assert at.button(key="approve_selected").label == f"Approve adjustment #{kept}"
    at.button(key="approve_selected").click().run()
    confirm(at)
    assert changed(before, decisions(own_db)) == {kept: ("applied", "ops@example.com")}


def test_a_cancelled_decision_does_not_hide_that_its_proposals_left_later(own_db):
    at = open_page("adjustments")
    shown = shown_ids(at)
    select_rows(at, 0)
    at.button(key="approve_selected").click().run()
    at.button(key="cancel_action").click().run()  # asked, then thought better of it
    assert selected_rows(at) == [0] and unselected_notes(at) == []
    own_db.reject_adjustments([shown[0]], "other@example.com", "duplicate")  # someone else decides
    data.refresh()
    at.run()
    assert unselected_notes(at) == [
        f"Unselected #{shown[0]}: it left this list: decided by someone else, or no longer among the 200 newest."
    ]


def test_new_rows_get_a_new_table_so_no_sorted_browser_keeps_a_tick_on_another_proposal(own_db):
    # A browser that sorted the table keeps its ticks on the rows it shows. When the rows change
    # while a selected proposal keeps its place in the data, the same table would keep the tick
    # where another proposal now shows, and the next click would act on that one.
    at = open_page("adjustments")
    shown = shown_ids(at)
    select_rows(at, 1)
    first_key = inbox_key(at)
    at.run()  # nothing changed: the same table, its sorting and scrolling kept
    assert inbox_key(at) == first_key and selected_rows(at) == [1]
    own_db.reject_adjustments([shown[5]], "other@example.com", "duplicate")  # below the selected row
    data.refresh()
    at.run()
    assert shown_ids(at)[1] == shown[1]  # the selected proposal kept its place in the data
    assert inbox_key(at) != first_key  # but the rows changed: another table, with the selection
    assert selected_rows(at) == [1]
    assert at.button(key="approve_selected").label == f"Approve adjustment #{shown[1]}"


def test_a_filter_keeps_the_selected_proposals_it_still_shows(own_db):
    at = open_page("adjustments")
    inbox = table(at, "adjustment_id", "user_id")
    first, user = int(inbox["adjustment_id"].iloc[3]), int(inbox["user_id"].iloc[3])
    other = int(inbox[inbox["user_id"] != user]["adjustment_id"].iloc[0])
    pick(at, [first, other])
    assert at.button(key="approve_selected").label == "Approve 2 adjustments"
    at.number_input(key="inbox_user").set_value(user).run()
    assert shown_ids(at)[selected_rows(at)[0]] == first and len(selected_rows(at)) == 1
    assert unselected_notes(at) == [f"Unselected #{other}: the filters now hide it."]
    at.run()
    assert unselected_notes(at) == []  # said once
    assert at.button(key="approve_selected").label == f"Approve adjustment #{first}"
    # Back to every user: the proposal hidden meanwhile was left out; the other is on its row again.
    at.number_input(key="inbox_user").set_value(0).run()
    assert selected_rows(at) == [3] and unselected_notes(at) == []
    before = decisions(own_db)
    at.button(key="approve_selected").click().run()
    confirm(at)
    assert changed(before, decisions(own_db)) == {first: ("applied", "ops@example.com")}


# ---------------------------------------------------------------- in a browser


def in_a_browser(test):
    """Mark a test as the browser tests are (skipped where Chromium is missing)."""
    for mark in in_browser.pytestmark:
        test = mark(test)
    return test


def open_inbox(base: str, browser) -> object:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(base)
    page.get_by_role("heading", name="Overview", level=1).wait_for(timeout=60_000)
    go_to(page, "Adjustments", "Adjustments", tables=1)
    return page


def shown_rows(page) -> list[int]:
    """The proposals of the inbox's first rows, top down (none while a new table is drawn)."""
    return [int(t) for t in inbox_table(page).locator('td[aria-colindex="1"]').all_inner_texts()]


def rows_in_view(page) -> list[int]:
    """The proposals of the inbox's first rows, top down."""
    ids = shown_rows(page)
    assert ids, "no inbox table with rows to select"
    return ids


def wait_for_rows(page, first: list[int]) -> None:
    """Wait until the inbox's first rows show these proposals (the rows changed: a new table)."""
    deadline = time.monotonic() + 30
    while shown_rows(page)[: len(first)] != first:
        assert time.monotonic() < deadline, f"the inbox does not start with {first}"
        page.wait_for_timeout(100)


@in_a_browser
def test_ticking_rows_in_the_inbox_approves_exactly_those(server, browser):
    base, system = server
    page = open_inbox(base, browser)
    shown = rows_in_view(page)
    first, second = shown[1], shown[3]
    before = decisions(system)
    tick_inbox_row(page, first)
    page.get_by_role("button", name=f"Approve adjustment #{first}").wait_for(timeout=30_000)
    wait_until_idle(page, tables=3)
    tick_inbox_row(page, second)
    page.get_by_role("button", name="Approve 2 adjustments").wait_for(timeout=30_000)
    wait_until_idle(page, tables=1)
    assert ticked_inbox_rows(page) == [first, second]
    page.get_by_role("button", name="Approve 2 adjustments").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text(
        f"Approve and apply 2 adjustments (#{first}, #{second}), each at its proposed magnitude?"
    ).wait_for(timeout=30_000)
    dialog.get_by_role("button", name="Approve", exact=True).click()
    page.get_by_text("2 adjustments approved").wait_for(timeout=30_000)
    wait_until_idle(page, tables=1)
    assert changed(before, decisions(system)) == {first: ("applied", OPERATOR), second: ("applied", OPERATOR)}
    # Their rows are gone (the new table's rows may still be drawing), and the rows that took
    # their places are not selected.
    wait_for_rows(page, [shown[0], shown[2], shown[4]])
    assert ticked_inbox_rows(page) == []
    assert page.get_by_role("button", name="Approve", exact=True).is_disabled()
    page.close()


@in_a_browser
def test_ticking_one_row_previews_it_and_rejects_only_it(server, browser):
    base, system = server
    page = open_inbox(base, browser)
    target = rows_in_view(page)[2]
    before = decisions(system)
    pick_adjustment(page, target)
    assert page.get_by_text("Would leave the top 10").count() == 1
    magnitude = page.get_by_label("Magnitude (edit before approving if you like)")
    assert float(magnitude.input_value()) == pytest.approx(
        system.get_adjustment(target)["proposed_magnitude"]
    )
    page.get_by_role("button", name=f"Reject adjustment #{target}").click()
    page.get_by_role("dialog").get_by_role("button", name="Reject", exact=True).click()
    page.get_by_text(f"Adjustment {target} rejected").wait_for(timeout=30_000)
    wait_until_idle(page, tables=1)
    assert changed(before, decisions(system)) == {target: ("rejected", OPERATOR)}
    assert ticked_inbox_rows(page) == []
    page.close()


@in_a_browser
def test_a_ticked_row_stays_with_its_proposal_when_a_filter_changes(server, browser):
    base, system = server
    page = open_inbox(base, browser)
    target = rows_in_view(page)[4]
    user = system.get_adjustment(target)["user_id"]
    pick_adjustment(page, target)
    user_filter = page.get_by_role("spinbutton", name="User")
    for only in (user, None):  # that user's proposals, then everyone's again
        user_filter.fill(str(only or 0))
        user_filter.press("Enter")
        first = [
            int(i) for i in lookups.list_adjustment_inbox(system, user_id=only, limit=5)["adjustment_id"]
        ]
        wait_for_rows(page, first)
        wait_until_idle(page, tables=3)
        assert ticked_inbox_rows(page) == [target], only
        assert (rows_in_view(page).index(target) == 4) == (only is None), only  # filtered, on another row
        page.get_by_role("button", name=f"Approve adjustment #{target}").wait_for(timeout=30_000)
    page.close()


@in_a_browser
def test_a_revert_leaves_the_person_on_the_applied_tab(server, browser):
    base, system = server
    proposal = lookups.list_adjustment_inbox(system, limit=1).iloc[0]
    target, user = int(proposal.adjustment_id), int(proposal.user_id)
    system.approve_adjustment(target, "ops@example.com")
    data.refresh()
    page = open_inbox(base, browser)
    page.get_by_role("tab", name="Applied and their effect").click()
    chooser = page.get_by_role("combobox", name="User")
    chooser.click()
    chooser.fill(str(user))
    page.keyboard.press("Enter")
    page.get_by_role("button", name=f"Revert #{target}").wait_for(timeout=30_000)
    wait_until_idle(page, tables=2)
    page.get_by_role("button", name=f"Revert #{target}").click()
    page.get_by_role("dialog").get_by_role("button", name="Revert", exact=True).click()
    page.get_by_text(f"Adjustment {target} reverted").wait_for(timeout=30_000)
    wait_until_idle(page, tables=1)
    assert system.get_adjustment(target)["status"] == "reverted"
    # Still where the person was: the page went back to the Inbox tab after every revert.
    selected = page.get_by_role("tab", selected=True)
    assert selected.inner_text().strip() == "Applied and their effect"
    page.close()
