"""The dashboard's one ``FeedbackSystem`` and its cached queries.

The system (and its engine) is built once per database URL and process; query results are
cached for ``QUERY_TTL_S`` seconds and the whole cache is cleared after every write. With
``FEEDBACK_DASHBOARD_READ_URL`` set (a PostgreSQL read replica), the cached queries read there
while actions (approvals, activations, retrain requests) still go to ``FEEDBACK_DB_URL``.

The entry script runs each page inside ``reading()``: the queries the cache cannot answer are
answered from one snapshot, in one read transaction. Answers taken from the cache were read
earlier (up to ``QUERY_TTL_S`` seconds), each when it was first asked.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import streamlit as st

from feedback_core import FeedbackSystem, Settings, effects, lookups, queries
from feedback_core.db import reading as reading_session
from feedback_core.errors import ConfigError

QUERY_TTL_S = 60
MODULES = {module.__name__: module for module in (queries, lookups, effects)}


def database_url() -> str:
    """Return the configured database URL (``FEEDBACK_DB_URL``, else the embedded SQLite file)."""
    return Settings.from_env().database_url


def read_url() -> str:
    """Return the URL the page queries read: ``FEEDBACK_DASHBOARD_READ_URL``, else the main database."""
    return os.environ.get("FEEDBACK_DASHBOARD_READ_URL", "").strip() or database_url()


@st.cache_resource(show_spinner=False)
def _system_for(url: str) -> FeedbackSystem:
    return FeedbackSystem.from_url(url)


@st.cache_resource(show_spinner=False)
def _worker_for(url: str) -> threading.Thread:
    """Run retrain jobs in this process, so `make run` needs no second command."""
    system = _system_for(url)
    thread = threading.Thread(
        target=system.run_worker, kwargs={"poll_seconds": 2.0}, name="feedback-worker", daemon=True
    )
    thread.start()
    return thread


def start_worker_if_enabled() -> bool:
    """Start the in-process retrain worker when ``FEEDBACK_DASHBOARD_WORKER=1`` (``make run`` sets it)."""
    if os.environ.get("FEEDBACK_DASHBOARD_WORKER", "0").strip().lower() not in ("1", "true", "yes", "on"):
        return False
    return _worker_for(database_url()).is_alive()


def get_system() -> FeedbackSystem:
    """Return the process-wide system for the configured database."""
    return _system_for(database_url())


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False, max_entries=500)
def _cached_query(url: str, module: str, name: str, args: tuple, kwargs: tuple) -> Any:
    return getattr(MODULES[module], name)(_system_for(url), *args, **dict(kwargs))


def query(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a ``feedback_core.queries``/``lookups`` function on the configured database, through the cache."""
    return _cached_query(read_url(), fn.__module__, fn.__name__, args, tuple(sorted(kwargs.items())))


def fresh(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a query function now, past the cache: for the figures an action is decided on (the
    Retrain page's candidate, active version, jobs and untrained examples), which must not be a
    minute old when someone promotes or starts a retrain."""
    return fn(_system_for(read_url()), *args, **kwargs)


@contextmanager
def reading() -> Iterator[None]:
    """Answer the block's queries from one snapshot of the database they read (one transaction).

    The transaction opens at the first query the cache cannot answer (a rerun answered from
    the cache opens none) and ends with the block. Actions write through ``get_system()``
    and are seen by the next run, not by the rest of this block.
    """
    try:
        engine = _system_for(read_url()).engine
    except ConfigError:
        # Nothing can be read; the entry script's database check says what is wrong.
        yield
        return
    with reading_session(engine):
        yield


def refresh() -> None:
    """Forget every cached result (called after each write)."""
    _cached_query.clear()
