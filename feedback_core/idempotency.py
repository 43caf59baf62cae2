"""Idempotent HTTP requests: the first response to a key is stored and replayed on retry.

A request with an ``Idempotency-Key`` first *claims* the key (a placeholder row with status 0,
committed at once), then runs, then *completes* the row with its response, or *releases* it if
it failed, so that a corrected retry can run. A second request arriving while the first is
still running is told so (409) instead of running twice.

Every transaction of the request that writes rows marks the placeholder *done* (status 1) inside
itself (``mark_done``, through ``db.before_commit``), so the mark commits exactly when the
request's writes do. A placeholder left by a crashed worker is taken over after ``stale_after``
only while it is not marked: a request whose writes committed before the crash is never run
again; its retry is told that it was carried out and its answer lost (409). A request that
answers with an error releases its claim, marked or not: its answer invites a retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from feedback_core.db import write_transaction
from feedback_core.errors import ConflictError
from feedback_core.schema import idempotent_requests

IN_PROGRESS = 0
DONE = 1  # its writes are committed; its answer is not stored yet (or was lost)
STALE_AFTER = timedelta(seconds=60)


class IdempotencyKeyReusedError(ConflictError):
    """The key was already used for a different request."""

    code = "idempotency_key_reused"


class RequestInProgressError(ConflictError):
    """The first request with this key has not finished yet."""

    code = "request_in_progress"


class AnswerLostError(ConflictError):
    """The first request with this key was carried out, but its answer was never stored (the
    server stopped in between): it is not carried out again."""

    code = "answer_lost"


@dataclass(frozen=True)
class StoredResponse:
    """The first response to an idempotent request."""

    status_code: int
    body: dict


def claim_key(
    engine: Engine,
    scope: str,
    key: str,
    fingerprint: str,
    now: datetime,
    stale_after: timedelta = STALE_AFTER,
    also: tuple[str, ...] = (),
) -> StoredResponse | None:
    """Claim ``key`` for a new request (return None) or return the stored first response.

    ``also``: other fingerprints of the same request, as earlier versions computed them (a key
    stored by one of them is still this request's)."""
    table = idempotent_requests
    same = {fingerprint, *also}
    where = (table.c.scope == scope, table.c.idempotency_key == key)
    try:
        with write_transaction(engine) as conn:
            # Locked: of several retries taking over a stale claim at once, one does (on
            # PostgreSQL the others wait here, then read the claim it renewed).
            row = conn.execute(select(table).where(*where).with_for_update()).first()
            if row is None:
                conn.execute(
                    insert(table).values(
                        scope=scope,
                        idempotency_key=key,
                        status_code=IN_PROGRESS,
                        body={"fingerprint": fingerprint},
                        created_at=now,
                    )
                )
                return None
            if row.status_code == DONE and now - row.created_at >= stale_after:
                if (row.body or {}).get("fingerprint") not in same:
                    raise IdempotencyKeyReusedError(
                        "this Idempotency-Key was already used for a different request; use a new key "
                        "for every distinct request",
                        "Idempotency-Key",
                    )
                raise AnswerLostError(
                    "the first request with this Idempotency-Key was carried out, but the server stopped "
                    "before it could store the answer: it is not carried out again; read the outcome "
                    "instead (for example GET /api/dislike-history)",
                    "Idempotency-Key",
                )
            if row.status_code == IN_PROGRESS and now - row.created_at >= stale_after:
                # The first attempt died without finishing (or without releasing its claim after
                # failing): this one takes its place, whatever that one's body was, if the claim
                # is still the one it read.
                taken = conn.execute(
                    update(table)
                    .where(*where, table.c.status_code == IN_PROGRESS, table.c.created_at == row.created_at)
                    .values(created_at=now, body={"fingerprint": fingerprint})
                ).rowcount
                if taken == 1:
                    return None
            if (row.body or {}).get("fingerprint") not in same:
                raise IdempotencyKeyReusedError(
                    "this Idempotency-Key was already used for a different request; use a new key "
                    "for every distinct request",
                    "Idempotency-Key",
                )
            if row.status_code not in (IN_PROGRESS, DONE):
                return StoredResponse(row.status_code, row.body["response"])
            raise RequestInProgressError(
                "a request with this Idempotency-Key is still being processed; retry shortly",
                "Idempotency-Key",
            )
    except IntegrityError:  # a concurrent first attempt inserted the placeholder just now
        raise RequestInProgressError(
            "a request with this Idempotency-Key is still being processed; retry shortly",
            "Idempotency-Key",
        ) from None


def mark_done(conn: Connection, scope: str, key: str) -> None:
    """Mark a claimed request's writes as committed, inside the transaction that makes them."""
    table = idempotent_requests
    conn.execute(
        update(table)
        .where(table.c.scope == scope, table.c.idempotency_key == key, table.c.status_code == IN_PROGRESS)
        .values(status_code=DONE)
    )


def complete_key(
    engine: Engine, scope: str, key: str, fingerprint: str, status_code: int, body: dict
) -> None:
    """Store the response of a claimed request so that retries replay it."""
    table = idempotent_requests
    with write_transaction(engine) as conn:
        conn.execute(
            update(table)
            .where(table.c.scope == scope, table.c.idempotency_key == key)
            .values(status_code=status_code, body={"fingerprint": fingerprint, "response": body})
        )


def release_key(engine: Engine, scope: str, key: str) -> None:
    """Forget a claim whose request failed, so that a retry (the failure's answer invites one)
    runs again: also when a transaction of it was committed before it failed (marked done)."""
    table = idempotent_requests
    with write_transaction(engine) as conn:
        conn.execute(
            delete(table).where(
                table.c.scope == scope,
                table.c.idempotency_key == key,
                table.c.status_code.in_((IN_PROGRESS, DONE)),
            )
        )
