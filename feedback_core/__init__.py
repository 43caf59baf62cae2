"""Recommendation feedback system: record dislikes, learn from them, show whether it worked.

``FeedbackSystem`` is the explicit way in. The module-level functions below carry the
specification's names and act on a default system configured from ``FEEDBACK_DB_URL``
(built on first use, never at import).
"""

from __future__ import annotations

import sys
import threading
import types
from typing import Any

from sqlalchemy.engine import make_url

from feedback_core import reinforcement as _reinforcement
from feedback_core.errors import (
    AuthenticationError,
    ConflictError,
    DatabaseUnavailableError,
    FeedbackError,
    NotFoundError,
    PermissionDeniedError,
    SchemaMissingError,
    ValidationError,
)
from feedback_core.settings import REASONS, ReasonPolicy, Settings, env_variable
from feedback_core.system import FeedbackSystem

_default: FeedbackSystem | None = None
_default_lock = threading.Lock()

# The specification's configuration constants, read as module attributes: the values in force
# (the default system's, else the environment's), not the defaults. They are set through the
# environment (FEEDBACK_ACCUMULATION_THRESHOLD=5 ...), not by assigning to them.
_CONSTANTS = (
    "DISLIKE_WEIGHT_MULTIPLIER",
    "FEEDBACK_ACCUMULATION_THRESHOLD",
    "GENRE_DEEMPHASIS_FACTOR",
    "CAST_DEEMPHASIS_FACTOR",
    "FRANCHISE_DEEMPHASIS_FACTOR",
)


def __getattr__(name: str) -> Any:
    if name in _CONSTANTS or name == "DB_PATH":
        settings = _settings_in_force()
        if name == "DB_PATH":  # the specification's database file: the SQLite file in use
            url = make_url(settings.database_url)
            return url.database if url.get_backend_name() == "sqlite" else None
        return getattr(settings, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Package(types.ModuleType):
    """This package as a module whose configuration constants cannot be assigned: an assignment
    would change nothing the system reads, yet every later read would return it."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _CONSTANTS or name == "DB_PATH":
            raise AttributeError(_how_to_set(name, value))
        super().__setattr__(name, value)

    def __delattr__(self, name: str) -> None:
        if name in _CONSTANTS or name == "DB_PATH":
            raise AttributeError(_how_to_set(name, None))
        super().__delattr__(name)


def _how_to_set(name: str, value: Any) -> str:
    shown = "VALUE" if value is None else repr(value)
    if name == "DB_PATH":
        return (
            "feedback_core.DB_PATH cannot be assigned: it shows the SQLite file in use. Name the database "
            "in the environment variable FEEDBACK_DB_URL (sqlite:///PATH) before the first call, or "
            "set_default_system(FeedbackSystem.from_url(URL))"
        )
    variable = env_variable(name)
    return (
        f"feedback_core.{name} cannot be assigned: it shows the setting in force, which assigning would not "
        f"change. Set the environment variable {variable}={'VALUE' if value is None else value} before the "
        f"first call, or give the system the value: set_default_system(FeedbackSystem.from_url(URL, "
        f"{name}={shown}))"
    )


sys.modules[__name__].__class__ = _Package


def _settings_in_force() -> Settings:
    """The default system's settings, else the environment's (without building a system)."""
    return _default.settings if _default is not None else Settings.from_env()


def calculate_feature_adjustment_from_dislike(
    reason: str,
    genres: Any = None,
    cast: Any = None,
    franchise: str | None = None,
    settings: Settings | None = None,
) -> dict:
    """Return the specification's ``feature_adjustments`` object for one dislike (pure), under
    ``settings``' reason policy and factors, else those in force: the default system's, as
    ``save_dislike`` proposes."""
    return _reinforcement.calculate_feature_adjustment_from_dislike(
        reason, genres, cast, franchise, settings=settings or _settings_in_force()
    )


def get_default_system() -> FeedbackSystem:
    """Return the process-wide system built from the environment (created on first call)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = FeedbackSystem.from_env()
        return _default


def set_default_system(system: FeedbackSystem | None) -> None:
    """Replace the process-wide system (None: rebuild from the environment on next use)."""
    global _default
    with _default_lock:
        if _default is not None and _default is not system:
            _default.close()
        _default = system


def _delegate(name: str):
    method = getattr(FeedbackSystem, name)

    def call(*args: Any, **kwargs: Any):
        return getattr(get_default_system(), name)(*args, **kwargs)

    call.__name__ = name
    call.__qualname__ = name
    call.__doc__ = method.__doc__
    return call


_OPERATIONS = (
    # the specification's names
    "init_feedback_tables",
    "save_dislike",
    "get_user_dislikes",
    "get_user_disliked_movies",
    "calculate_dislike_weight",
    "get_dislike_pattern_analysis",
    "record_feedback_impact",
    "get_model_feedback_metrics",
    "apply_dislike_to_training_data",
    "get_untrained_negative_feedback_count",
    "should_retrain_from_feedback",
    "get_negative_training_batch",
    "mark_negative_examples_as_used",
    "apply_feature_adjustments",
    "get_feedback_improvement_metrics",
    # the rest of the loop
    "record_dislike",
    "retract_dislike",
    "record_recommendation_set",
    "get_recommendation_set",
    "list_adjustments",
    "get_adjustment",
    "approve_adjustment",
    "reject_adjustment",
    "approve_adjustments",
    "reject_adjustments",
    "revert_adjustment",
    "get_effective_weights",
    # the learning loop
    "add_movies",
    "record_rating",
    "record_ratings",
    "recommend",
    "score_movies",
    "list_model_versions",
    "get_model_version",
    "get_active_model_version",
    "activate_model_version",
    "compare_model_versions",
    "request_retrain",
    "get_retrain_job",
    "list_retrain_jobs",
    "run_worker",
    "retrain",
)

for _name in _OPERATIONS:
    globals()[_name] = _delegate(_name)

# The HTTP API; register_feedback_routes fetches the default system only when called.
from feedback_core.api import create_app, register_feedback_routes  # noqa: E402

__all__ = [
    "AuthenticationError",
    "CAST_DEEMPHASIS_FACTOR",
    "ConflictError",
    "DB_PATH",
    "DISLIKE_WEIGHT_MULTIPLIER",
    "DatabaseUnavailableError",
    "FEEDBACK_ACCUMULATION_THRESHOLD",
    "FRANCHISE_DEEMPHASIS_FACTOR",
    "FeedbackError",
    "FeedbackSystem",
    "GENRE_DEEMPHASIS_FACTOR",
    "NotFoundError",
    "PermissionDeniedError",
    "REASONS",
    "ReasonPolicy",
    "SchemaMissingError",
    "Settings",
    "ValidationError",
    "calculate_feature_adjustment_from_dislike",
    "create_app",
    "get_default_system",
    "register_feedback_routes",
    "set_default_system",
    *_OPERATIONS,
]
