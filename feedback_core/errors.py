"""The exception hierarchy. Each error carries the HTTP status the API answers with."""

from __future__ import annotations


class FeedbackError(Exception):
    """Base of every error the library raises on purpose."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict:
        """Return the JSON error object the API sends."""
        return {"code": self.code, "message": self.message, "field": self.field}


class ValidationError(FeedbackError, ValueError):
    """Input broke a rule; nothing was written."""

    status = 400
    code = "invalid_input"


class NotFoundError(FeedbackError, LookupError):
    """The thing asked for does not exist."""

    status = 404
    code = "not_found"


class ConflictError(FeedbackError):
    """The request contradicts the current state (e.g. deciding an adjustment twice)."""

    status = 409
    code = "conflict"


class PermissionDeniedError(FeedbackError):
    """The caller lacks the role for this action."""

    status = 403
    code = "forbidden"


class AuthenticationError(FeedbackError):
    """No or unknown credentials."""

    status = 401
    code = "unauthorized"


class DatabaseUnavailableError(FeedbackError):
    """The database cannot be reached right now."""

    status = 503
    code = "database_unavailable"


class DatabaseRefusedError(DatabaseUnavailableError):
    """The database refuses this system for a reason that waiting will not mend: a database that
    does not exist, a wrong user or password, a file that is not a database. Someone has to
    correct the database URL (``FEEDBACK_DB_URL``)."""


class SchemaMissingError(DatabaseUnavailableError):
    """The database lacks a table of the feedback schema: it was never initialised (or is older
    than this code). Answered like an unavailable database (503): nothing works until an
    operator runs ``feedback-core init``."""


class ConfigError(FeedbackError):
    """A setting is malformed."""

    status = 500
    code = "configuration_error"
