"""Small helpers shared by the storage tests: put rows the library has no public writer for yet."""

from __future__ import annotations

from sqlalchemy import func, insert, select, update

from feedback_core import FeedbackSystem
from feedback_core.schema import model_versions, movies, retrain_jobs


def add_movie(
    system: FeedbackSystem,
    movie_id: int,
    title: str,
    genres: list[str] | None = None,
    cast: list[str] | None = None,
    franchise: str | None = None,
    year: int | None = None,
) -> int:
    """Insert one catalogue row and return its id."""
    with system.engine.begin() as conn:
        conn.execute(
            insert(movies).values(
                movie_id=movie_id,
                title=title,
                genres=genres or [],
                cast=cast or [],
                franchise=franchise,
                year=year,
                created_at=system.now(),
            )
        )
    return movie_id


def add_movies(system: FeedbackSystem, movie_ids, genres: list[str] | None = None) -> None:
    """Insert a catalogue row per id (titled ``Movie <id>``) in one statement."""
    with system.engine.begin() as conn:
        conn.execute(
            insert(movies),
            [
                {
                    "movie_id": m,
                    "title": f"Movie {m}",
                    "genres": list(genres or []),
                    "cast": [],
                    "franchise": None,
                    "created_at": system.now(),
                }
                for m in movie_ids
            ],
        )


def add_model_version(system: FeedbackSystem, version_id: int, active: bool = False, accuracy=None) -> int:
    """Insert one model version (the training issue adds the real writer) and return its id."""
    with system.engine.begin() as conn:
        conn.execute(
            insert(model_versions).values(
                version_id=version_id,
                status="active" if active else "candidate",
                active_slot=1 if active else None,
                trigger="initial",
                created_at=system.now(),
                created_by="test",
                accuracy=accuracy,
            )
        )
    return version_id


def finish_retrain_jobs(system: FeedbackSystem) -> None:
    """Mark every queued/running retrain job as succeeded (what a worker will do)."""
    with system.engine.begin() as conn:
        conn.execute(
            update(retrain_jobs)
            .where(retrain_jobs.c.active_slot == 1)
            .values(status="succeeded", active_slot=None, finished_at=system.now())
        )


def count(system: FeedbackSystem, table, *where) -> int:
    """Count the rows of ``table`` matching ``where``."""
    with system.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def rows(system: FeedbackSystem, table, *where, order_by=None) -> list:
    """Return the rows of ``table`` matching ``where``."""
    query = select(table).where(*where)
    if order_by is not None:
        query = query.order_by(order_by)
    with system.engine.connect() as conn:
        return conn.execute(query).all()


def add_bare_versions(conn, n: int) -> list[int]:
    """Add ``n`` model versions with nothing in them (rows for the rate tables to name); return
    their numbers."""
    from datetime import datetime

    from feedback_core.versions import insert_version

    return [
        insert_version(
            conn,
            at=datetime(2026, 10, 1),
            actor="analyst",
            trigger="manual",
            parent_id=None,
            weights={},
            metrics={},
            examples={},
            settings={},
        )
        for _ in range(n)
    ]


def add_version(system, parent_id: int | None, metrics: dict, weights: dict | None = None) -> int:
    """Record a model version now, with these offline figures (and the prior model's weights
    unless given); return its number."""
    from feedback_core.db import write_transaction
    from feedback_core.model import prior_model
    from feedback_core.versions import insert_version

    with write_transaction(system.engine) as conn:
        return insert_version(
            conn,
            at=system.now(),
            actor="t",
            trigger="manual",
            parent_id=parent_id,
            weights=prior_model().as_dict() if weights is None else weights,
            metrics=metrics,
            examples={},
            settings={},
        )
