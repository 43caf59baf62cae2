"""Shared page furniture: filters, tables with CSV export, number formats, guidance, confirmations.

Text that came from users (titles, feedback, feature names, actor names) is only ever shown
through ``st.text``, ``st.dataframe`` or widget options, never through markdown.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import data, identity
from feedback_core.authz import PERMISSIONS
from feedback_core.errors import DatabaseRefusedError, DatabaseUnavailableError, FeedbackError
from feedback_core.queries import version_label
from feedback_core.settings import REASONS
from feedback_core.versions import ANY_ACTIVE

DEFAULT_WINDOW_DAYS = 28
# Which day a figure counts a dislike on. The charts put a dislike beside the impressions it is
# a share of (its list's day); the lists of single dislikes keep the day it was made. Near a
# window's edges the two give different totals, and the captions say which one a figure uses.
ON_LIST_DAY = "a dislike counts on the day its list was shown (one without a list, on the day it was made)"
ON_DAY_MADE = "a dislike counts on the day it was made"


# ---------------------------------------------------------------- filters


FILTER_KEYS = ("filter_dates", "filter_versions", "filter_reasons")


@dataclass(frozen=True)
class Filters:
    """The sidebar's selection, shared by the pages that draw it (see ``app.FILTERED_PAGES``)."""

    start: date
    end: date
    versions: tuple[int, ...]
    reasons: tuple[str, ...]

    @property
    def args(self) -> tuple:
        """Return ``(start, end, versions, reasons)`` for the queries that take all four."""
        return (self.start, self.end, self.versions, self.reasons)

    def describe(self) -> str:
        """Say what the pages show: ``03 Nov 2026 – 30 Nov 2026 (28 days) · all versions · all reasons``.

        Written where the page starts, so a date typed outside the picker's range (which the
        picker refuses, in red, keeping the window before) is not taken for the one shown.
        """
        versions = ", ".join(version_label(v) for v in self.versions) if self.versions else "all versions"
        reasons = ", ".join(r.replace("_", " ") for r in self.reasons) if self.reasons else "all reasons"
        return f"{self.window()} · {versions} · {reasons}"

    def window(self) -> str:
        """The dates: ``03 Nov 2026 – 30 Nov 2026 (28 days)``, or one day."""
        days = (self.end - self.start).days + 1
        if days == 1:
            return f"{self.start:%d %b %Y}"
        return f"{self.start:%d %b %Y} – {self.end:%d %b %Y} ({days} days)"


def keep_filters() -> None:
    """Keep the filters' values while a page that does not draw them is shown.

    Streamlit forgets a widget's value in a run that does not draw it. Each value is also kept
    under a key of its own (``kept_<key>``), which ``sidebar_filters`` gives back to its widget
    before drawing it: a value set on a widget's key in an earlier run still applied, but the
    multiselects showed nothing ("All versions" over a page filtered to one).
    """
    remember_widgets(FILTER_KEYS)


def _restore_filters() -> None:
    restore_widgets(FILTER_KEYS)


def remember_widgets(keys) -> None:
    """Keep these widgets' values under keys of their own (``kept_<key>``): Streamlit forgets a
    widget's value in a run that does not draw it (another page's)."""
    for key in keys:
        if key in st.session_state:
            st.session_state[f"kept_{key}"] = st.session_state[key]


def restore_widgets(keys) -> None:
    """Give these widgets back the values ``remember_widgets`` kept, before they are drawn."""
    for key in keys:
        kept = st.session_state.get(f"kept_{key}")
        if kept is not None and key not in st.session_state:
            st.session_state[key] = kept


def utc_today() -> date:
    """Today in UTC, the days every page counts in (the server's own zone may be another)."""
    return data.get_system().now().date()


def _in_order(picked: Any) -> tuple:
    """Return the picked dates earliest first (a range picked backwards is read forwards)."""
    if isinstance(picked, date):
        picked = (picked,)
    return tuple(sorted(picked))


def sidebar_filters(bounds: dict, versions: pd.DataFrame) -> None:
    """Create the shared filters in the sidebar (once, in the entry script, with keys)."""
    today = utc_today()
    last = bounds.get("last_day") or today
    first = bounds.get("first_day") or last
    # Days with data and up to today: the picker refuses others (a date ten years back showed
    # the window before under the date typed).
    lowest, highest = min(first, last), max(last, today)
    _restore_filters()
    options = [int(v) for v in versions["version_id"]] + [0]
    if "filter_dates" not in st.session_state:
        # A new session: a shared link's filters (what another person was looking at) come first.
        linked = _filters_from_url(lowest, highest, options)
        ignored = _ignored_in_url(linked)
        st.session_state.update(linked)
        if ignored:
            # Said, or the person given the link would take the default window for the sender's.
            st.sidebar.warning(
                f"The link's {ignored} could not be used (not in this data): left at the default.",
                icon=":material/link_off:",
            )
    default = (max(first, last - timedelta(days=DEFAULT_WINDOW_DAYS - 1)), last)
    kept = _in_order(st.session_state.get("filter_dates") or ())
    if "filter_dates" not in st.session_state:
        st.session_state["filter_dates"] = default
    elif kept and (kept[-1] < lowest or kept[0] > highest):
        # A window kept from before the data changed that shares no day with the days offered:
        # squeezed into them it became one edge day (today, with no data), not a window.
        st.session_state["filter_dates"] = default
    elif kept:
        # Before the widget is drawn, so that it shows the range the pages use, inside the
        # picker's bounds (a window kept from before the data changed may lie outside them).
        st.session_state["filter_dates"] = _in_order(min(max(d, lowest), highest) for d in kept)
    st.sidebar.date_input(
        "Dates (UTC)",
        key="filter_dates",
        min_value=lowest,
        max_value=highest,
        help=f"Inclusive, {lowest:%d %b %Y} to {highest:%d %b %Y}; compared with the window before it",
    )
    st.sidebar.caption(f"Showing {current_filters().window()}")
    st.sidebar.multiselect(
        "Model versions",
        options,
        key="filter_versions",
        format_func=version_label,
        placeholder="All versions",
    )
    st.sidebar.multiselect(
        "Reasons",
        list(REASONS),
        key="filter_reasons",
        format_func=lambda r: r.replace("_", " "),
        placeholder="All reasons",
    )
    keep_filters()
    _filters_to_url(current_filters())


# The filters in the page's address, so that a link shows what its sender saw:
# ?dates=2026-11-03&dates=2026-11-30&version=2&reason=wrong_genre.
URL_PARAMS = ("dates", "version", "reason")


def _ignored_in_url(found: dict) -> str | None:
    """Name the filters a link gave that ``_filters_from_url`` could not use (None: none)."""
    named = {"dates": ("filter_dates", "dates"), "version": ("filter_versions", "versions")}
    named["reason"] = ("filter_reasons", "reasons")
    missed = [said for p, (key, said) in named.items() if st.query_params.get_all(p) and key not in found]
    return " and ".join(missed) or None


def _filters_from_url(lowest: date, highest: date, versions: list[int]) -> dict:
    """The filters a link carries, each checked against what the sidebar offers; one that is not
    valid (a day outside the data's, a version that does not exist) is left at its default."""
    found: dict[str, Any] = {}
    try:
        days = [date.fromisoformat(d) for d in st.query_params.get_all("dates")]
    except ValueError:
        days = []
    if len(days) in (1, 2) and all(lowest <= d <= highest for d in days):
        found["filter_dates"] = _in_order(days) if len(days) == 2 else (days[0], days[0])
    picked = {int(v) for v in st.query_params.get_all("version") if v.isdigit() and int(v) in versions}
    if picked:
        found["filter_versions"] = sorted(picked)
    reasons = {r for r in st.query_params.get_all("reason") if r in REASONS}
    if reasons:
        found["filter_reasons"] = sorted(reasons)
    return found


def _filters_to_url(f: Filters) -> None:
    """Write the filters into the page's address (replacing what was there), in one change and
    only when they differ: each change of st.query_params is a new entry in the browser's
    history, so writing them one by one on every run filled it with copies of the page and the
    Back button stayed on it."""
    wanted = {"dates": [f.start.isoformat(), f.end.isoformat()]}
    if f.versions:
        wanted["version"] = [str(v) for v in f.versions]
    if f.reasons:
        wanted["reason"] = list(f.reasons)
    _set_url_filters(wanted)


def clear_filters_from_url() -> None:
    """Take the filters out of the address of a page they do not apply to."""
    _set_url_filters({})


def _set_url_filters(wanted: dict[str, list[str]]) -> None:
    others = {k: st.query_params.get_all(k) for k in st.query_params if k not in URL_PARAMS}
    current = {k: st.query_params.get_all(k) for k in URL_PARAMS if k in st.query_params}
    if current != wanted:
        st.query_params.from_dict({**others, **wanted})


def current_filters() -> Filters:
    """Return the sidebar's current selection."""
    picked = _in_order(st.session_state.get("filter_dates") or (utc_today(),))
    start = picked[0]
    end = picked[1] if len(picked) > 1 else start  # while a range is half picked
    return Filters(
        start=start,
        end=end,
        versions=tuple(sorted(st.session_state.get("filter_versions") or ())),
        reasons=tuple(sorted(st.session_state.get("filter_reasons") or ())),
    )


# ---------------------------------------------------------------- numbers


def fmt_pct(value: float | None, digits: int = 1) -> str:
    """Format a proportion as a percentage (``—`` for none)."""
    return "—" if value is None or pd.isna(value) else f"{value * 100:.{digits}f}%"


def fmt_rate(rate: dict | pd.Series, suffix: str = "", trials: str = "trials") -> str:
    """Format a rate with its 95% interval, or say it rests on too few impressions.

    ``rate`` holds ``rate``, ``ci_low``, ``ci_high``, ``enough`` (each name + ``suffix``) and ``trials``.
    """
    value = rate[f"rate{suffix}"]
    if value is None or pd.isna(value):
        # Impressions but no rate: the counts cannot be one (more dislikes than impressions).
        return "more dislikes than impressions" if rate[trials] else "no impressions"
    if not rate[f"enough{suffix}"]:
        return f"too few impressions ({int(rate[trials])})"
    return f"{fmt_pct(value, 2)} ({fmt_interval(rate, suffix)})"


def fmt_interval(rate: dict | pd.Series, suffix: str = "") -> str:
    """Format a rate's 95% interval as ``7.1–9.0%``."""
    return f"{rate[f'ci_low{suffix}'] * 100:.1f}–{rate[f'ci_high{suffix}'] * 100:.1f}%"


def fmt_days(period: dict | pd.Series) -> str:
    """Format the days a figure covers (``first_day``, ``last_day``, ``days``): ``20–29 Nov 2026 (10 days)``."""
    first, last, days = period["first_day"], period["last_day"], int(period["days"])
    if first is None or pd.isna(first):
        return "on no day"
    if first == last:
        return f"on {first:%d %b %Y}"
    span = f"{first:%d %b %Y} – {last:%d %b %Y}"
    covered = last.toordinal() - first.toordinal() + 1
    # Days without impressions inside the span are said, or "10 days" would be misread.
    return f"{span} ({days} days)" if days == covered else f"{span} ({days} of {covered} days)"


def fmt_p(p: float | None) -> str:
    """Format a p-value the way the verdicts do: ``p = 0.023`` or ``p < 0.001``."""
    if p is None or pd.isna(p):
        return "p n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def rate_column(df: pd.DataFrame, trials: str = "impressions", suffix: str = "") -> pd.Series:
    """Return a text column "rate (low–high)" / "too few impressions (n)" for a table."""
    if df.empty:
        return pd.Series(dtype=str, index=df.index)
    return df.apply(lambda r: fmt_rate(r, suffix, trials), axis=1)


# ---------------------------------------------------------------- tables

# How the offline metrics read in comparison tables (the others keep their names).
METRIC_NAMES = {
    "auc": "AUC (higher is better)",
    "auc_per_user_film": "AUC per (user, film) (what promotion judges)",
    "log_loss": "log loss (lower is better)",
    "accuracy": "accuracy",
    "accuracy_baseline": "accuracy, no model (always the commoner label)",
    "precision_at_10": "precision@10",
    "precision_at_10_baseline": "precision@10, no model (random order)",
    "dislike_top10_share": "share of held-out dislikes still in a top 10 (lower is better)",
}


def named_metrics(table: pd.DataFrame) -> pd.DataFrame:
    """A comparison table with readable metric names; no difference for the no-model figures,
    which each side measured on its own rows."""
    out = table.copy()
    baseline = out["metric"].astype(str).str.endswith("_baseline")
    if "difference" in out.columns:
        out["difference"] = out["difference"].where(~baseline)
    out["metric"] = out["metric"].map(lambda m: METRIC_NAMES.get(m, m))
    return out


# What makes a spreadsheet read a cell as a formula (OWASP's list for CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _as_text(value: Any) -> Any:
    """``value`` with an apostrophe in front when a spreadsheet would run it as a formula (text
    starting with one of ``FORMULA_START`` that is not merely a number, such as "-0.15")."""
    if not isinstance(value, str) or not value.startswith(FORMULA_START):
        return value
    try:
        float(value)
    except ValueError:
        return "'" + value
    return value


def spreadsheet_safe(df: pd.DataFrame) -> pd.DataFrame:
    """The table with every text cell, and column name, that a spreadsheet would run as a formula
    (a title, a note, a feature value people sent: "=HYPERLINK(...)") prefixed with an apostrophe,
    which shows it as text. Numbers stay numbers, however they start."""
    out = df.copy()
    for column in out.columns:
        values = out[column]
        if values.dtype == object or pd.api.types.is_string_dtype(values):
            out[column] = values.map(_as_text)
    return out.rename(columns=_as_text)


def moment_column(label: str, seconds: bool = False, help: str | None = None):
    """A table column of times in UTC, labelled so (``created (UTC)``), wide enough for its
    label: sized to its values alone, "last disliked (UTC)" read "last disliked (UT"."""
    return st.column_config.DatetimeColumn(
        f"{label} (UTC)",
        format="YYYY-MM-DD HH:mm:ss" if seconds else "YYYY-MM-DD HH:mm",
        width="medium",
        help=help,
    )


def show_table(
    df: pd.DataFrame,
    name: str,
    column_config: dict | None = None,
    height: Any = "auto",
    csv_name: str | None = None,
    **selection: Any,
) -> None:
    """Show a table (plain text cells) with a CSV download of exactly its rows.

    ``csv_name``: the download's file name, when not ``name``. ``selection``: ``on_select`` and
    ``selection_mode`` of ``st.dataframe``, for a table whose rows are picked (read them from
    ``st.session_state["table_<name>"]``).
    """
    st.dataframe(
        df, hide_index=True, column_config=column_config, height=height, key=f"table_{name}", **selection
    )
    st.download_button(
        "Download CSV",
        spreadsheet_safe(df).to_csv(index=False).encode("utf-8"),
        file_name=f"{csv_name or name}.csv",
        mime="text/csv",
        key=f"csv_{name}",
        on_click="ignore",
        icon=":material/download:",
    )


# ---------------------------------------------------------------- states of the database


def show_unreachable(error: DatabaseUnavailableError) -> None:
    """Explain that the database cannot be reached, or refuses the dashboard for good."""
    if isinstance(error, DatabaseRefusedError):
        st.error("The feedback database refuses the dashboard's connection.", icon=":material/key_off:")
        st.text(error.message)
        st.markdown(
            "Waiting will not mend this: correct `FEEDBACK_DB_URL` (the database's name, the user or "
            "the password, or the path of the SQLite file) and restart the dashboard."
        )
        return
    st.error("The feedback database cannot be reached right now.", icon=":material/cloud_off:")
    st.text(error.message)
    st.markdown(
        "Check that the database server is running and that `FEEDBACK_DB_URL` points at it, "
        "then reload this page. Nothing needs restarting: the dashboard reconnects by itself."
    )


def show_guidance(status: str, masked_url: str) -> None:
    """Explain how to fill an empty (or uninitialised) database, with commands for this one."""
    st.title("Welcome: there is no feedback yet")
    st.text(f"Database: {masked_url}")
    if status == "missing":
        st.warning("This database has no tables yet.", icon=":material/database:")
    db = f"--db {shlex.quote(masked_url)}"
    hidden = (
        "\nThe password in the URL is hidden here: put the real one in place of `***`.\n"
        if "***" in masked_url
        else ""
    )
    st.markdown(
        f"""
**Try it with demo data** (a few weeks of synthetic users, lists, dislikes and model versions),
from the project folder:

```bash
.venv/bin/feedback-core {db} init    # create the tables (harmless to repeat)
.venv/bin/feedback-core {db} demo    # load the demo data
```
{hidden}
then reload this page. `make run` does both for the default database and opens the dashboard.

**Or connect your recommender** through the HTTP API so real feedback arrives:

```bash
.venv/bin/feedback-core {db} create-api-key --name recommender --role service   # prints the key once
.venv/bin/feedback-core {db} serve        # the API; see the README's "API" section
```

- `POST /api/recommendation-sets` records each list you show (the impressions every rate needs);
- `POST /api/dislike` records a thumbs-down with its reason;
- or `GET /api/recommendations` lets the active model choose the list and records it.

Point the dashboard at another database with `FEEDBACK_DB_URL`.
"""
    )


# ---------------------------------------------------------------- flash messages


FLASH_BOXES = {
    "success": (st.success, ":material/check_circle:"),
    "info": (st.info, ":material/info:"),
    "warning": (st.warning, ":material/warning:"),
    "error": (st.error, ":material/error:"),
}


def flash(kind: str, message: str) -> None:
    """Keep a message (``success``, ``info``, ``warning`` or ``error``) to show at the top of the next run."""
    st.session_state.setdefault("flash", []).append((kind, message))


def show_message(kind: str, message: str) -> None:
    """Show one message box now (``success``, ``info``, ``warning`` or ``error``), as plain text."""
    box, icon = FLASH_BOXES[kind]
    box(escape_markdown(message), icon=icon)


def show_flashes() -> None:
    """Show and forget the kept messages (as plain text: they may quote user data)."""
    for kind, message in st.session_state.pop("flash", []):
        show_message(kind, message)


def escape_markdown(text: str) -> str:
    """Escape markdown so a message from the library is displayed literally."""
    return "".join("\\" + ch if ch in "\\`*_{}[]()<>#+-.!|~$" else ch for ch in str(text))


# ---------------------------------------------------------------- confirmed actions

# Each action returns its outcome as (flash kind, message): only what changed something is a success.
Outcome = tuple[str, str]


def _approve(op, ids: list[int], magnitude: float | None = None, magnitudes: dict | None = None) -> Outcome:
    if len(ids) == 1:
        result = op.approve_adjustment(ids[0], magnitude)
        return (
            "success",
            f"Adjustment {ids[0]} approved and applied: weight {result['weight_before']:.2f} → {result['weight_after']:.2f}",
        )
    # (Ids kept as text keys through the session's pending action: back to ints.)
    edited = {int(i): float(m) for i, m in (magnitudes or {}).items()}
    return _bulk_outcome("approved", op.approve_adjustments(ids, edited or None))


def _reject(op, ids: list[int], note: str = "") -> Outcome:
    if len(ids) == 1:
        op.reject_adjustment(ids[0], note)
        return "success", f"Adjustment {ids[0]} rejected"
    return _bulk_outcome("rejected", op.reject_adjustments(ids, note))


def _bulk_outcome(verb: str, result: dict) -> Outcome:
    decided, skipped = len(result["decided"]), result["skipped"]
    message = f"{decided or 'No'} adjustment{'' if decided == 1 else 's'} {verb}"
    if skipped:
        message += f"; {len(skipped)} skipped: " + "; ".join(s["error"] for s in skipped[:3])
    if not decided:
        return "error", message
    return ("warning" if skipped else "success"), message


def _revert(op, adjustment_id: int) -> Outcome:
    result = op.revert_adjustment(adjustment_id)
    return (
        "success",
        f"Adjustment {adjustment_id} reverted (user {result['user_id']}, {result['feature']}): "
        f"weight {result['weight_before']:.2f} → {result['weight_after']:.2f}",
    )


def _retrain(op) -> Outcome:
    job = op.request_retrain()
    if not job.get("created", True):
        return (
            "info",
            f"Retrain job {job['job_id']} was already {job['status']}: one at a time, so none was added",
        )
    return "success", f"Retrain job {job['job_id']} queued"


def _activate(op, version_id: int, expected_active: Any = ANY_ACTIVE) -> Outcome:
    result = op.activate_model_version(version_id, expected_active=expected_active)
    if not result["changed"]:
        return "info", f"{version_label(version_id)} is already the active model version: nothing changed"
    return "success", f"{version_label(version_id)} is now the active model version"


ACTIONS: dict[str, Callable[..., Outcome]] = {
    "approve": _approve,
    "reject": _reject,
    "revert": _revert,
    "retrain": _retrain,
    "activate": _activate,
}


def ask_to_confirm(
    kind: str, summary: str, verb: str, *, origin: str = "", reset: tuple[str, ...] = (), **args: Any
) -> None:
    """Queue an action; the confirmation dialog opens in this run and it runs only on "Confirm".

    ``origin`` names the button that asked (see ``pending_action``); ``reset`` lists the names
    of widgets (``renewable_key``) to empty once the action has done something (a note that
    was used, say).
    """
    st.session_state["pending_action"] = {
        "kind": kind,
        "summary": summary,
        "verb": verb,
        "origin": origin,
        "reset": reset,
        "args": args,
        "page": st.session_state.get(PAGE_SHOWN),
    }


def pending_action(origin: str) -> dict | None:
    """Return the arguments of the action waiting for confirmation if ``origin`` asked for it."""
    pending = st.session_state.get("pending_action")
    return pending["args"] if pending is not None and pending["origin"] == origin else None


def withdraw_pending(message: str) -> None:
    """Close the confirmation dialog unanswered (what it asked about changed) and say why."""
    _forget_pending()
    st.warning(escape_markdown(message), icon=":material/warning:")


def _forget_pending() -> None:
    st.session_state.pop("pending_action", None)


@st.dialog("Please confirm", on_dismiss=_forget_pending)
def _confirm_dialog() -> None:
    pending = st.session_state["pending_action"]
    st.text(pending["summary"])
    who = identity.current_identity()
    if who is not None:
        st.text(f"Recorded in the audit log as {who.principal.name}.")
    left, right = st.columns(2)
    if left.button(pending["verb"], type="primary", key="confirm_action", width="stretch"):
        _forget_pending()
        run_action(pending["kind"], reset=pending["reset"], **pending["args"])
        st.rerun()
    if right.button("Cancel", key="cancel_action", width="stretch"):
        _forget_pending()
        st.rerun()


def renewable_key(name: str) -> str:
    """Return the key of a widget that an action empties (see ``ask_to_confirm``'s ``reset``):
    a new key each time, since the browser keeps showing what was typed into a widget whose
    value was only dropped on the server."""
    return f"{name}#{st.session_state.get(f'generation_{name}', 0)}"


def run_action(kind: str, reset: tuple[str, ...] = (), **args: Any) -> None:
    """Take an action as the current person, keep its outcome as a message, refresh the data.

    The widgets named in ``reset`` start empty on the next run unless the action did nothing.
    """
    try:
        operator = identity.get_operator(data.get_system())
        outcome, message = ACTIONS[kind](operator, **args)
        flash(outcome, message)
        if outcome != "error":
            for name in reset:
                st.session_state.pop(renewable_key(name), None)
                st.session_state[f"generation_{name}"] = st.session_state.get(f"generation_{name}", 0) + 1
    except FeedbackError as exc:  # refused, already decided, invalid, database down: all told plainly
        flash("error", exc.message)
    except identity.IdentityError as exc:
        flash("error", str(exc))
    finally:
        data.refresh()


PAGE_SHOWN = "page_shown"  # the url path of the page this run shows (set by the entry script)


def confirm_pending() -> None:
    """Open the confirmation dialog when an action waits for it (called by the entry script);
    one asked on another page is dropped: it would ask about what this page does not show."""
    pending = st.session_state.get("pending_action")
    if pending is None:
        return
    if pending.get("page") != st.session_state.get(PAGE_SHOWN):
        _forget_pending()
        st.info(
            "The decision waiting for confirmation on the page you left was not made.",
            icon=":material/undo:",
        )
        return
    _confirm_dialog()


def action_button(label: str, action: str, key: str, disabled: bool = False, **kwargs: Any) -> bool:
    """A button disabled (with the reason) for people without the role; a courtesy, not the guard."""
    allowed = identity.can(action)
    needed = " or ".join(sorted(PERMISSIONS[action]))
    help_text = None if allowed else f"This needs the {needed} role, which you do not have; ask an admin."
    return st.button(label, key=key, disabled=disabled or not allowed, help=help_text, **kwargs)
