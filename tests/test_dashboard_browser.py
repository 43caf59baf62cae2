"""The dashboard in a real browser: ``streamlit run`` on a free port against a prepared database,
Debian's Chromium driven by Playwright through every page; one adjustment approved and one
retrain started through the confirmation dialogs; a screenshot of each page (in docs/screenshots/ with FEEDBACK_SCREENSHOTS=docs).

Skipped (with the reason) where Chromium or Playwright is missing; CI installs both.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from browser_support import (
    BROWSER_MARKS,
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    streamlit_command,
    wait_until_serving,
)
from dashboard_data import build_sample
from reliability_support import free_port
from sqlalchemy import select

from feedback_core import FeedbackSystem, Settings
from feedback_core.db import make_engine, upgrade_database
from feedback_core.schema import audit_log, feature_adjustments, retrain_jobs

# The pictures in docs/ are refreshed on request (FEEDBACK_SCREENSHOTS=docs), so a test run
# leaves the working tree as it was; otherwise they go to a scratch folder.
SCREENSHOTS = (
    ROOT / "docs" / "screenshots"
    if os.environ.get("FEEDBACK_SCREENSHOTS") == "docs"
    else Path(tempfile.gettempdir()) / "feedback-screenshots"
)
# (navigation label, page title, screenshot name, charts and tables it shows on the sample)
PAGES = [
    ("Overview", "Overview", "overview", 1, 0),
    ("Reasons", "Reasons", "reasons", 3, 2),
    ("Prediction errors", "Prediction errors", "errors", 2, 1),
    ("Model versions", "Model versions", "versions", 1, 2),
    ("Retrain", "Retrain", "retrain", 0, 2),
    ("Adjustments", "Adjustments", "adjustments", 0, 1),
    ("Users", "Users", "users", 1, 3),
    ("Audit log", "Audit log", "audit", 0, 1),
]
OPERATOR = "browser@example.com"
# Seconds a page may take from the click to a finished render on an idle machine (the issue's
# target); on a busy one the budget grows with the load per core.
PAGE_BUDGET_S = float(os.environ.get("FEEDBACK_PAGE_BUDGET_S", "2.0"))


def page_budget() -> float:
    """Return the render budget, scaled by the 1-minute load per core when that exceeds 1."""
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    return PAGE_BUDGET_S * max(1.0, load)


pytestmark = BROWSER_MARKS
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A prepared database and ``streamlit run`` serving the dashboard over it."""
    path = tmp_path_factory.mktemp("browser") / "sample.db"
    url = f"sqlite:///{path}"
    port = free_port()
    env = {
        **os.environ,
        "FEEDBACK_DB_URL": url,
        "FEEDBACK_OPERATOR": OPERATOR,
        "FEEDBACK_OPERATOR_ROLES": "viewer,approver,admin",
    }
    command = streamlit_command(port)
    base = f"http://127.0.0.1:{port}"
    with open(path.with_suffix(".log"), "w") as log:
        # The server reads the database only once a browser connects: build it while the server boots.
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            settings = Settings(database_url=url, FEEDBACK_ACCUMULATION_THRESHOLD=1_000_000)
            engine = make_engine(settings)
            upgrade_database(engine)
            build_sample(FeedbackSystem(engine, settings))
            engine.dispose()
            wait_until_serving(port, process, Path(log.name))
            system = FeedbackSystem.from_url(url)
            yield base, system
            system.close()
        finally:
            process.terminate()
            process.wait(timeout=20)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# The run has finished (nothing running, stale or waiting for its lazily loaded code), the
# page's charts have drawn and its tables are there. "Running" shows only after a moment, so
# the counts are what tell a finished page from one still arriving.
RENDERED = """([charts, tables]) =>
    !document.querySelector('[data-testid="stStatusWidget"], [data-testid="stSkeleton"], [data-stale="true"]')
    && document.querySelectorAll('[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg').length >= charts
    && document.querySelectorAll('[data-testid="stDataFrame"]').length >= tables"""


def wait_until_idle(page, charts: int = 0, tables: int = 0, settle_ms: int = 300) -> None:
    """Wait until the run has finished and what the page shows has drawn, then let it paint."""
    page.wait_for_function(RENDERED, arg=[charts, tables], timeout=30_000)
    if settle_ms:
        page.wait_for_timeout(settle_ms)
        page.wait_for_function(RENDERED, arg=[charts, tables], timeout=30_000)


def screenshot(page, name: str, charts: int, tables: int) -> None:
    """Save the whole page (the main area scrolls on its own, so grow the viewport to fit it)."""
    height = page.evaluate(
        """() => Math.max(...[...document.querySelectorAll('[data-testid="stMain"], [data-testid="stMainBlockContainer"]')]
                             .map(e => e.scrollHeight), document.body.scrollHeight)"""
    )
    page.set_viewport_size({"width": 1400, "height": min(max(int(height) + 40, 900), 8000)})
    wait_until_idle(page, charts, tables)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
    page.set_viewport_size({"width": 1400, "height": 900})


def go_to(page, label: str, title: str, charts: int = 0, tables: int = 0) -> float:
    """Click a page in the sidebar; return the seconds until it has rendered."""
    started = time.monotonic()
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=label, exact=True).click()
    page.get_by_role("heading", name=title, level=1).wait_for(timeout=30_000)
    wait_until_idle(page, charts, tables, settle_ms=0)
    elapsed = time.monotonic() - started
    wait_until_idle(page, charts, tables)
    return elapsed


def test_every_page_approve_one_adjustment_and_start_a_retrain(server, browser):
    base, system = server
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    alerts: list[str] = []
    page.on("dialog", lambda d: (alerts.append(d.message), d.dismiss()))
    page.goto(base)
    page.get_by_role("heading", name="Overview", level=1).wait_for(timeout=60_000)
    wait_until_idle(page, charts=1)
    timings = {}
    for label, title, name, charts, tables in PAGES:
        timings[name] = go_to(page, label, title, charts, tables)
        assert page.locator('[data-testid="stException"]').count() == 0, name
        assert page.get_by_text(f"Signed in as {OPERATOR}").count() == 1, name
        # Hostile titles and feedback: shown as text, nothing executed, no element injected, layout intact.
        assert page.evaluate("() => window.__pwned === undefined"), name
        assert page.evaluate(
            """() => !document.querySelector('img[src="x"]')
                   && ![...document.scripts].some(s => s.textContent.includes('__pwned'))"""
        ), name
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1"), name

        if name == "adjustments":
            approved = approve_first_adjustment(page, system)
            pick_adjustment(page, approved - 1)  # the screenshot shows a preview
        if name == "retrain":
            start_retrain(page, system)
        if name == "users":  # the user who is always shown the hostile title
            page.get_by_label("User id").fill("1")
            page.get_by_label("User id").press("Enter")
            page.get_by_text("Recent lists").wait_for()
            wait_until_idle(page, charts, tables)
        screenshot(page, name, charts, tables)
    assert alerts == []
    # Best of two visits: one slow visit on a busy machine is noise, two are a slow page.
    budget = page_budget()
    for label, title, name, charts, tables in PAGES:
        if timings[name] > budget:
            go_to(page, "Audit log", "Audit log")
            timings[name] = min(timings[name], go_to(page, label, title, charts, tables))
    print(f"page render seconds (budget {budget:.1f}):", {k: round(v, 2) for k, v in timings.items()})
    slow = {k: round(v, 2) for k, v in timings.items() if v > budget}
    assert not slow, (
        f"pages over {budget:.1f}s (FEEDBACK_PAGE_BUDGET_S={PAGE_BUDGET_S} x load per core): {slow}"
    )


# The inbox table's header and each of its rows are this many pixels high (Streamlit's default).
INBOX_ROW_PX = 35


def inbox_table(page):
    """The Adjustments page's inbox table (only a table whose rows can be selected has this class)."""
    return page.locator('[class*="st-key-table_adjustment_inbox_"]')  # named after the rows it shows


def tick_inbox_row(page, adjustment_id: int) -> None:
    """Click the box at the start of the inbox row showing this proposal (a row in view)."""
    table = inbox_table(page)
    # The table is drawn on a canvas; its accessible copy says which row shows the proposal.
    cell = table.locator('td[aria-colindex="1"]').filter(has_text=re.compile(rf"^{adjustment_id}$"))
    row = int(cell.get_attribute("data-testid").rsplit("-", 1)[1])
    assert row < 9, f"#{adjustment_id} is in row {row}, below the rows in view"
    canvas = table.locator("canvas").first
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    page.mouse.click(box["x"] + INBOX_ROW_PX / 2, box["y"] + INBOX_ROW_PX * (row + 1.5))


def ticked_inbox_rows(page) -> list[int]:
    """The proposals whose inbox rows are selected, as the browser shows them."""
    return [
        int(text)
        for text in inbox_table(page)
        .locator('tr[aria-selected="true"] td[aria-colindex="1"]')
        .all_inner_texts()
    ]


def pick_adjustment(page, adjustment_id: int) -> None:
    """Select one proposal's row in the inbox table and wait for its preview."""
    tick_inbox_row(page, adjustment_id)
    page.get_by_role("button", name=f"Approve adjustment #{adjustment_id}").wait_for(timeout=30_000)
    wait_until_idle(page, tables=3)  # the inbox, what would leave and what would enter


def newest_proposal(system) -> int:
    """The id of the newest proposal still waiting (the first the inbox lists)."""
    with system.engine.connect() as conn:
        return conn.execute(
            select(feature_adjustments.c.adjustment_id)
            .where(feature_adjustments.c.status == "proposed")
            .order_by(feature_adjustments.c.created_at.desc(), feature_adjustments.c.adjustment_id.desc())
            .limit(1)
        ).scalar_one()


def approve_first_adjustment(page, system) -> int:
    """Approve the newest proposal through the dialog; return its id."""
    proposed = newest_proposal(system)
    pick_adjustment(page, proposed)
    page.get_by_role("button", name=f"Approve adjustment #{proposed}").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Approve", exact=True).click()
    page.get_by_text(f"Adjustment {proposed} approved and applied").wait_for(timeout=30_000)
    wait_until_idle(page, tables=1)
    with system.engine.connect() as conn:
        status, decided_by = conn.execute(
            select(feature_adjustments.c.status, feature_adjustments.c.decided_by).where(
                feature_adjustments.c.adjustment_id == proposed
            )
        ).one()
        audited = (
            conn.execute(
                select(audit_log.c.actor).where(
                    audit_log.c.action == "adjustment.approved", audit_log.c.entity_id == str(proposed)
                )
            )
            .scalars()
            .all()
        )
    assert (status, decided_by, audited) == ("applied", OPERATOR, [OPERATOR])
    return proposed


def start_retrain(page, system) -> None:
    page.get_by_role("button", name="Start a retrain").click()
    page.get_by_role("dialog").get_by_role("button", name="Start retrain").click()
    page.get_by_text("queued").first.wait_for(timeout=30_000)
    wait_until_idle(page, tables=2)
    with system.engine.connect() as conn:
        jobs = conn.execute(
            select(retrain_jobs.c.status, retrain_jobs.c.requested_by).where(
                retrain_jobs.c.status == "queued"
            )
        ).all()
    assert [tuple(j) for j in jobs] == [("queued", OPERATOR)]
    assert page.get_by_role("button", name="Start a retrain").is_disabled()


def test_the_sidebar_shows_the_filters_that_apply_after_another_page(server, browser):
    base, system = server
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(base)
    page.get_by_role("heading", name="Overview", level=1).wait_for(timeout=60_000)
    wait_until_idle(page)
    sidebar = page.locator('[data-testid="stSidebar"]')
    versions = sidebar.locator('[data-testid="stMultiSelect"]').first
    dislikes = page.locator('[data-testid="stMetric"]').first

    versions.click()
    page.get_by_role("option").first.click()
    page.keyboard.press("Escape")
    wait_until_idle(page)
    picked = versions.inner_text().replace("Model versions", "").strip()
    filtered = dislikes.inner_text()
    assert picked, "no version was picked"

    go_to(page, "Model versions", "Model versions")
    go_to(page, "Overview", "Overview")
    # Once, the figures stayed filtered while the sidebar showed "All versions".
    assert versions.inner_text().replace("Model versions", "").strip() == picked
    assert dislikes.inner_text() == filtered
    page.close()


def test_the_overview_opens_at_its_bookmarked_address(server, browser):
    base, _ = server
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    alerts: list[str] = []
    page.on("dialog", lambda d: (alerts.append(d.message), d.dismiss()))
    page.goto(f"{base}/overview")
    page.get_by_role("heading", name="Overview", level=1).wait_for(timeout=60_000)
    wait_until_idle(page, charts=1)
    # Streamlit serves its default page at "/" only: /overview ran it under a "Page not found" dialog.
    assert page.get_by_text("Page not found").count() == 0
    assert page.get_by_role("dialog").count() == 0
    assert page.locator('[data-testid="stException"]').count() == 0
    # At its address, which also carries the filters shown (a link shows what its sender saw).
    address, _, filters = page.url.partition("?")
    assert address == f"{base}/overview" and filters.startswith("dates=") and alerts == []
    # The same page as at "/": its sidebar filters, its headline numbers.
    assert page.locator('[data-testid="stSidebar"] [data-testid="stMultiSelect"]').count() >= 1
    assert page.locator('[data-testid="stMetric"]').count() >= 4
    page.close()


def test_a_rejection_note_is_empty_in_the_browser_once_used(server, browser):
    base, system = server
    proposed = newest_proposal(system)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(base)
    page.get_by_role("heading", name="Overview", level=1).wait_for(timeout=60_000)
    go_to(page, "Adjustments", "Adjustments", tables=1)
    pick_adjustment(page, proposed)
    note = page.get_by_label("Note (kept with a rejection)")
    note.fill("not enough evidence")
    note.press("Enter")
    wait_until_idle(page, tables=3)
    page.get_by_role("button", name=f"Reject adjustment #{proposed}").click()
    page.get_by_role("dialog").get_by_role("button", name="Reject", exact=True).click()
    page.get_by_text(f"Adjustment {proposed} rejected").wait_for(timeout=30_000)
    wait_until_idle(page, tables=1)
    # Once, the field kept the note, and the next rejection would have been recorded with it.
    assert page.get_by_label("Note (kept with a rejection)").input_value() == ""
    with system.engine.connect() as conn:
        note_kept = conn.execute(
            select(feature_adjustments.c.note).where(feature_adjustments.c.adjustment_id == proposed)
        ).scalar_one()
    assert note_kept == "not enough evidence"
    page.close()


def test_a_job_that_ends_while_the_retrain_page_watches_is_told_once(server, browser):
    base, system = server
    with system.engine.connect() as conn:
        waiting = conn.execute(select(retrain_jobs.c.job_id).where(retrain_jobs.c.active_slot == 1)).scalar()
    job_id = waiting or system.request_retrain(OPERATOR)["job_id"]
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(base)
    page.get_by_role("heading", name="Overview", level=1).wait_for(timeout=60_000)
    go_to(page, "Retrain", "Retrain", tables=2)
    page.get_by_text(f"Job {job_id}: queued").wait_for(timeout=30_000)
    assert system.run_worker(once=True) == 1  # a worker elsewhere ends it while the page polls
    told = page.locator('[data-testid="stAlert"]').filter(has_text=f"Retrain job {job_id} ")
    told.first.wait_for(timeout=30_000)
    wait_until_idle(page, tables=2)
    page.wait_for_timeout(2_500)  # past the next poll: nothing more to say
    # Once, the poll that saw the end and the page it redrew both said so.
    assert told.count() == 1, told.all_inner_texts()
    page.close()


def test_no_headline_figure_is_cut_off_on_a_1280_pixel_screen(server, browser):
    base, _ = server
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    # An ellipsis is drawn by an element inside each figure: every one of them is looked at.
    cut = """els => els.flatMap(e => [e, ...e.querySelectorAll('*')])
        .filter(e => e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1).map(e => e.innerText)"""
    for path, title, charts in (("", "Overview", 1), ("errors", "Prediction errors", 1)):
        page.goto(f"{base}/{path}")
        page.get_by_role("heading", name=title, level=1).wait_for(timeout=60_000)
        wait_until_idle(page, charts=charts)
        figures = page.locator(
            '[data-testid="stMetricLabel"], [data-testid="stMetricValue"], [data-testid="stMetricDelta"]'
        )
        assert figures.count() >= 6, title
        # A sixth tile cut "Untrained examples" and the rate change's p-value to "p = 0.…".
        assert figures.evaluate_all(cut) == [], title
    page.close()


def picked(page, label: str) -> str:
    """What a selectbox shows as picked."""
    return page.get_by_role("combobox", name=label).input_value()


def pick_option(page, label: str, option: str) -> None:
    """Pick an option of a selectbox as a person does (type to narrow, click it), then wait for the run."""
    box = page.get_by_role("combobox", name=label)
    box.scroll_into_view_if_needed()
    box.click()
    box.fill(option)
    options = page.get_by_role("option")
    options.first.wait_for(timeout=10_000)
    texts = [options.nth(i).inner_text() for i in range(options.count())]
    options.nth(texts.index(option)).click()
    page.wait_for_function(
        '([label, option]) => document.querySelector(`input[aria-label="${label}"]`)?.value === option',
        arg=[label, option],
        timeout=30_000,
    )
    wait_until_idle(page)


def test_version_a_follows_the_version_b_picked_in_the_browser(server, browser):
    """The browser keeps a selectbox's value while it is still an option: Version A stayed the
    old B's baseline when another B was picked (AppTest did not show it)."""
    base, system = server
    parents = {v["version_id"]: v["parent_id"] for v in system.list_model_versions()}
    a_label, b_label = "Version A (the baseline)", "Version B (the one you judge)"
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{base}/versions")
    page.get_by_role("heading", name="Model versions", level=1).wait_for(timeout=60_000)
    wait_until_idle(page)
    first_b = int(picked(page, b_label).removeprefix("v"))
    assert picked(page, a_label) == f"v{parents[first_b]}"
    child = next(v for v, p in parents.items() if p is not None and v != first_b and p != parents[first_b])
    pick_option(page, b_label, f"v{child}")
    assert picked(page, a_label) == f"v{parents[child]}"
    # A baseline picked by hand stays while B does; another B brings its own baseline again.
    other = next(v for v in parents if v not in (child, parents[child]))
    pick_option(page, a_label, f"v{other}")
    assert (picked(page, a_label), picked(page, b_label)) == (f"v{other}", f"v{child}")
    pick_option(page, b_label, f"v{first_b}")
    assert picked(page, a_label) == f"v{parents[first_b]}"
    page.close()
