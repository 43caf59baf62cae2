"""``FeedbackSystem``: the one object that joins settings, an engine and every operation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine

from feedback_core.adjustments import Adjustments
from feedback_core.analytics import Analytics
from feedback_core.catalog import CatalogOps
from feedback_core.db import close_engine, make_engine, to_naive_utc, upgrade_database, utcnow
from feedback_core.importing import ImportOps
from feedback_core.impressions import Impressions
from feedback_core.jobs import Jobs
from feedback_core.recommender import Recommender
from feedback_core.recording import Recording
from feedback_core.reinforcement import Reinforcement
from feedback_core.settings import Settings
from feedback_core.versions import Versions


class FeedbackSystem(
    Recording,
    Impressions,
    Reinforcement,
    Adjustments,
    Analytics,
    CatalogOps,
    ImportOps,
    Recommender,
    Versions,
    Jobs,
):
    """Every operation of the feedback system over one database.

    Build it with ``FeedbackSystem.from_url(url)``, ``FeedbackSystem.from_env()`` or
    ``FeedbackSystem(engine, settings)``; ``clock`` returns "now" (tests and the demo pass
    their own).
    """

    def __init__(
        self,
        engine: Engine,
        settings: Settings | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings or Settings(database_url=engine.url.render_as_string(False))
        self._clock = clock or utcnow

    @classmethod
    def from_settings(
        cls, settings: Settings, clock: Callable[[], datetime] | None = None
    ) -> "FeedbackSystem":
        """Build a system (and its engine) from settings."""
        return cls(make_engine(settings), settings, clock)

    @classmethod
    def from_url(cls, url: str, **overrides) -> "FeedbackSystem":
        """Build a system for a database URL; other settings come from the environment."""
        return cls.from_settings(Settings.from_env(database_url=url, **overrides))

    @classmethod
    def from_env(cls) -> "FeedbackSystem":
        """Build a system entirely from ``FEEDBACK_*`` environment variables."""
        return cls.from_settings(Settings.from_env())

    def now(self) -> datetime:
        """Return the current time (naive UTC) from this system's clock."""
        return to_naive_utc(self._clock())

    def init_feedback_tables(self) -> str:
        """Bring the database to the latest schema (harmless to repeat); return the revision."""
        return upgrade_database(self.engine)

    def close(self) -> None:
        """Release pooled connections (and stop the SQLite checkpointer's thread)."""
        close_engine(self.engine)
