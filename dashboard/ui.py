"""Shared page furniture: filters, tables with CSV export, number formats, guidance, confirmations.

Text that came from users (titles, feedback, feature names, actor names) is only ever shown
through ``st.text``, ``st.dataframe`` or widget options, never through markdown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import data, identity
from feedback_core.errors import FeedbackError
from feedback_core.queries import version_label
from feedback_core.settings import REASONS

DEFAULT_WINDOW_DAYS = 28


# ---------------------------------------------------------------- filters


@dataclass(frozen=True)
class Filters:
    """The sidebar's selection, shared by every page."""

    start: date
    end: date
    versions: tuple[int, ...]
    reasons: tuple[str, ...]

    @property
    def args(self) -> tuple:
        """Return ``(start, end, versions, reasons)`` for the queries that take all four."""
        return (self.start, self.end, self.versions, self.reasons)


def sidebar_filters(bounds: dict, versions: pd.DataFrame) -> None:
    """Create the shared filters in the sidebar (once, in the entry script, with keys)."""
    last = bounds.get("last_day") or date.today()
    first = bounds.get("first_day") or last
    if "filter_dates" not in st.session_state:
        st.session_state["filter_dates"] = (max(first, last - timedelta(days=DEFAULT_WINDOW_DAYS - 1)), last)
    st.sidebar.date_input(
        "Dates (UTC)", key="filter_dates", help="Inclusive; compared with the window before it"
    )
    options = [int(v) for v in versions["version_id"]] + [0]
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


def current_filters() -> Filters:
    """Return the sidebar's current selection."""
    picked = st.session_state.get("filter_dates") or (date.today(),)
    if not isinstance(picked, (tuple, list)):
        picked = (picked,)
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


def show_table(df: pd.DataFrame, name: str, column_config: dict | None = None, height: Any = "auto") -> None:
    """Show a table (plain text cells) with a CSV download of exactly its rows."""
    st.dataframe(df, hide_index=True, column_config=column_config, height=height, key=f"table_{name}")
    st.download_button(
        "Download CSV",
        df.to_csv(index=False).encode("utf-8"),
        file_name=f"{name}.csv",
        mime="text/csv",
        key=f"csv_{name}",
        on_click="ignore",
        icon=":material/download:",
    )


# ---------------------------------------------------------------- states of the database


def show_unreachable(message: str) -> None:
    """Explain that the database cannot be reached."""
    st.error("The feedback database cannot be reached right now.", icon=":material/cloud_off:")
    st.text(message)
    st.markdown(
        "Check that the database server is running and that `FEEDBACK_DB_URL` points at it, "
        "then reload this page. Nothing needs restarting: the dashboard reconnects by itself."
    )


def show_guidance(status: str, masked_url: str) -> None:
    """Explain how to fill an empty (or uninitialised) database."""
    st.title("Welcome: there is no feedback yet")
    st.text(f"Database: {masked_url}")
    if status == "missing":
        st.warning("This database has no tables yet.", icon=":material/database:")
    st.markdown(
        """
**Try it with demo data** (a few weeks of synthetic users, lists, dislikes and model versions):

```bash
feedback-core init    # create the tables (harmless to repeat)
feedback-core demo    # load the demo data
```

then reload this page. `make run` does both and opens the dashboard.

**Or connect your recommender** through the HTTP API so real feedback arrives:

```bash
feedback-core create-api-key --name recommender --role service   # prints the key once
feedback-core serve                                              # the API; see the README's "API" section
```

- `POST /api/recommendation-sets` records each list you show (the impressions every rate needs);
- `POST /api/dislike` records a thumbs-down with its reason;
- or `GET /api/recommendations` lets the active model choose the list and records it.

Point the dashboard at another database with `FEEDBACK_DB_URL`.
"""
    )


# ---------------------------------------------------------------- flash messages


def flash(kind: str, message: str) -> None:
    """Keep a message to show at the top of the next run (after an action's rerun)."""
    st.session_state.setdefault("flash", []).append((kind, message))


def show_flashes() -> None:
    """Show and forget the kept messages (as plain text: they may quote user data)."""
    for kind, message in st.session_state.pop("flash", []):
        box = st.success if kind == "success" else st.error
        box(
            escape_markdown(message),
            icon=":material/check_circle:" if kind == "success" else ":material/error:",
        )


def escape_markdown(text: str) -> str:
    """Escape markdown so a message from the library is displayed literally."""
    return "".join("\\" + ch if ch in "\\`*_{}[]()<>#+-.!|~$" else ch for ch in str(text))


# ---------------------------------------------------------------- confirmed actions


def _approve(op, ids: list[int], magnitude: float | None = None) -> str:
    if len(ids) == 1:
        result = op.approve_adjustment(ids[0], magnitude)
        return f"Adjustment {ids[0]} approved and applied: weight {result['weight_before']:.2f} → {result['weight_after']:.2f}"
    return _bulk_message("approved", op.approve_adjustments(ids))


def _reject(op, ids: list[int], note: str = "") -> str:
    if len(ids) == 1:
        op.reject_adjustment(ids[0], note)
        return f"Adjustment {ids[0]} rejected"
    return _bulk_message("rejected", op.reject_adjustments(ids, note))


def _bulk_message(verb: str, result: dict) -> str:
    message = f"{len(result['decided'])} adjustments {verb}"
    if result["skipped"]:
        message += f"; {len(result['skipped'])} skipped: " + "; ".join(
            s["error"] for s in result["skipped"][:3]
        )
    return message


def _revert(op, adjustment_id: int) -> str:
    op.revert_adjustment(adjustment_id)
    return f"Adjustment {adjustment_id} reverted"


def _retrain(op) -> str:
    job = op.request_retrain()
    if not job.get("created", True):
        return f"Retrain job {job['job_id']} was already {job['status']}: one at a time"
    return f"Retrain job {job['job_id']} queued"


def _activate(op, version_id: int) -> str:
    op.activate_model_version(version_id)
    return f"{version_label(version_id)} is now the active model version"


ACTIONS: dict[str, Callable[..., str]] = {
    "approve": _approve,
    "reject": _reject,
    "revert": _revert,
    "retrain": _retrain,
    "activate": _activate,
}


def ask_to_confirm(kind: str, summary: str, verb: str, **args: Any) -> None:
    """Queue an action; the confirmation dialog opens in this run and it runs only on "Confirm"."""
    st.session_state["pending_action"] = {"kind": kind, "summary": summary, "verb": verb, "args": args}


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
        run_action(pending["kind"], **pending["args"])
        st.rerun()
    if right.button("Cancel", key="cancel_action", width="stretch"):
        _forget_pending()
        st.rerun()


def run_action(kind: str, **args: Any) -> None:
    """Take an action as the current person, keep its outcome as a message, refresh the data."""
    try:
        operator = identity.get_operator(data.get_system())
        flash("success", ACTIONS[kind](operator, **args))
    except FeedbackError as exc:  # refused, already decided, invalid, database down: all told plainly
        flash("error", exc.message)
    except identity.IdentityError as exc:
        flash("error", str(exc))
    finally:
        data.refresh()


def confirm_pending() -> None:
    """Open the confirmation dialog when an action waits for it (called by the entry script)."""
    if "pending_action" in st.session_state:
        _confirm_dialog()


def action_button(label: str, action: str, key: str, disabled: bool = False, **kwargs: Any) -> bool:
    """A button disabled (with the reason) for people without the role; a courtesy, not the guard."""
    allowed = identity.can(action)
    help_text = None if allowed else "Your roles do not allow this; ask an admin."
    return st.button(label, key=key, disabled=disabled or not allowed, help=help_text, **kwargs)
