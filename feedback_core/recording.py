"""Recording: dislikes, their training examples and proposals, shown lists, the audit log.

Storage functions take a connection and never commit; ``Recording`` (mixed into
``FeedbackSystem``) opens one transaction per logical operation.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, case, func, insert, literal, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from feedback_core import aggregates
from feedback_core.db import Prepared, pipelined, write_transaction
from feedback_core.errors import ConflictError, NotFoundError, ValidationError
from feedback_core.policy import (
    AUTO_APPROVER,
    RETRACTED_NOTE,
    ProposedAdjustment,
    adjustments_as_dict,
    propose_adjustments,
)
from feedback_core.schema import (
    audit_log,
    dislike_patterns,
    feature_adjustments,
    impressions,
    movie_exclusions,
    movies,
    negative_examples,
    recommendation_sets,
    retrain_jobs,
    user_dislikes,
)
from feedback_core.validation import DislikeIn, check_id, check_recent, validate_dislike

log = logging.getLogger("feedback_core")

# The statements of the recording path, built once: building a statement costs more than
# running it, and save_dislike must stay well under a millisecond (bench/record.py).
_MOVIE_FACTS = Prepared(
    select(movies.c.title, movies.c.genres, movies.c.cast, movies.c.franchise).where(
        movies.c.movie_id == bindparam("movie_id")
    )
)
_PENDING_UP_TO_CAP = (
    select(func.count())
    .select_from(
        select(negative_examples.c.example_id)
        .where(negative_examples.c.status == "pending")
        .limit(bindparam("cap"))
        .subquery()
    )
    .scalar_subquery()
)
_ACTIVE_JOB = Prepared(select(retrain_jobs.c.job_id).where(retrain_jobs.c.active_slot == 1))


# What the lookup before a dislike reads for a film its list showed without a score.
UNSCORED = -1.0


def _before_dislike_statement() -> Prepared:
    """Everything recording a dislike reads before it writes, in one statement (each statement
    costs tens of microseconds on this path, far more than these index lookups):

    ``by_key``, ``repeat``: an earlier copy of this dislike (same idempotency key; the same
    movie of the same list, or without a list the same movie from ``since`` to ``until``); the movie's
    ``title, genres, cast, franchise`` (NULLs when it is not in the catalogue); the list's
    ``owner, version_id, shown_at`` (NULLs without a list or when it does not exist), ``shown``:
    the score the list showed the movie with (NULL when it did not show it, ``UNSCORED`` when
    it showed it without a score); ``pending``
    examples counted up to ``cap`` and the queued or running ``active_job``.
    """
    live = (user_dislikes.c.user_id == bindparam("user_id")) & (
        user_dislikes.c.movie_id == bindparam("movie_id")
    )
    live = live & user_dislikes.c.retracted_at.is_(None)
    set_id = bindparam("set_id", type_=recommendation_sets.c.recommendation_set_id.type)
    by_key = select(user_dislikes.c.dislike_id).where(
        user_dislikes.c.user_id == bindparam("user_id"),
        user_dislikes.c.idempotency_key == bindparam("idempotency_key"),
    )
    in_set = select(user_dislikes.c.dislike_id).where(live, user_dislikes.c.recommendation_set_id == set_id)
    no_set = select(user_dislikes.c.dislike_id).where(
        live,
        set_id.is_(None),
        user_dislikes.c.recommendation_set_id.is_(None),
        user_dislikes.c.created_at >= bindparam("since"),
        user_dislikes.c.created_at <= bindparam("until"),  # a dislike recorded with a past time
    )
    the_set = recommendation_sets.c.recommendation_set_id == set_id
    shown = (
        select(case((impressions.c.score_known, impressions.c.predicted_score), else_=literal(UNSCORED)))
        .where(impressions.c.recommendation_set_id == set_id, impressions.c.movie_id == bindparam("movie_id"))
        .limit(1)
        .scalar_subquery()
    )
    one_row = select(literal(1).label("one")).subquery()
    active_job = _ACTIVE_JOB.statement.scalar_subquery()
    return Prepared(
        select(
            by_key.scalar_subquery().label("by_key"),
            func.coalesce(
                in_set.order_by(user_dislikes.c.created_at).limit(1).scalar_subquery(),
                no_set.order_by(user_dislikes.c.created_at).limit(1).scalar_subquery(),
            ).label("repeat"),
            movies.c.title,
            movies.c.genres,
            movies.c.cast,
            movies.c.franchise,
            recommendation_sets.c.user_id.label("owner"),
            recommendation_sets.c.model_version_id.label("version_id"),
            recommendation_sets.c.created_at.label("shown_at"),
            shown.label("shown"),
            # Counted only when no job is queued or running: otherwise nothing depends on it.
            case((active_job.is_(None), _PENDING_UP_TO_CAP), else_=None).label("pending"),
            active_job.label("active_job"),
        ).select_from(
            # One row whatever is found: the film and the list, each when there is one.
            one_row.outerjoin(movies, movies.c.movie_id == bindparam("movie_id")).outerjoin(
                recommendation_sets, the_set
            )
        )
    )


_BEFORE_DISLIKE = _before_dislike_statement()
# Pending examples counted up to the threshold, and the queued or running retrain job.
_RETRAIN_STATE = Prepared(select(_PENDING_UP_TO_CAP, _ACTIVE_JOB.statement.scalar_subquery()))
_COUNT_PENDING_UP_TO_CAP = Prepared(select(_PENDING_UP_TO_CAP))
_COUNT_PENDING = Prepared(select(func.count()).where(negative_examples.c.status == "pending"))
_INSERT_DISLIKE = Prepared(insert(user_dislikes).returning(user_dislikes.c.dislike_id))
_INSERT_EXAMPLE = Prepared(insert(negative_examples))
# Rows of one dislike given as tuples, in each table's column order (bound as given but for
# the JSON lists and the times).
DISLIKE_KEYS = (
    "user_id",
    "movie_id",
    "movie_title",
    "recommendation_set_id",
    "model_version_id",
    "predicted_score",
    "score_known",
    "reason",
    "feedback_text",
    "genres",
    "cast",
    "franchise",
    "idempotency_key",
    "created_at",
)
EXAMPLE_KEYS = ("dislike_id", "user_id", "movie_id", "weight", "error", "created_at", "status")
EXCLUSION_KEYS = ("user_id", "movie_id", "dislike_id", "created_at")
_INSERT_PROPOSALS = Prepared(insert(feature_adjustments))
# Two 32-bit keys: a space of its own (apart from the single 64-bit keys of the other locks)
# and the person's slot (_user_lock_key).
_LOCK_USER = Prepared(text("SELECT pg_advisory_xact_lock(:space, :k)"))
# In the order of the keys: the subquery's order is the order the locks are taken in.
_LOCK_USERS = Prepared(
    text(
        "SELECT count(*) FROM (SELECT pg_advisory_xact_lock(:space, k) FROM "
        "(SELECT k FROM unnest(CAST(:keys AS integer[])) AS k ORDER BY k) AS ordered) AS locked"
    )
)
USER_LOCK_SPACE = 7216370
_USER_REASONS = Prepared(
    select(
        dislike_patterns.c.pattern_type, dislike_patterns.c.pattern_value, dislike_patterns.c.dislike_count
    )
    .where(
        dislike_patterns.c.user_id == bindparam("user_id"),
        or_(dislike_patterns.c.pattern_type == "reason", dislike_patterns.c.pattern_type == "total"),
    )
    .order_by(dislike_patterns.c.pattern_type, dislike_patterns.c.pattern_value)
)


# ---------------------------------------------------------------- storage functions


def write_audit(
    conn: Connection,
    *,
    at: datetime,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: Any = None,
    details: dict | None = None,
    outcome: str = "ok",
) -> None:
    """Append one audit record."""
    conn.execute(
        insert(audit_log).values(
            at=at,
            actor=actor,
            action=action,
            entity_type=entity_type,
            entity_id=None if entity_id is None else str(entity_id),
            outcome=outcome,
            details=details or {},
        )
    )


def read_before_dislike(conn: Connection, d: DislikeIn, now: datetime, window_s: float, cap: int) -> tuple:
    """Return what recording ``d`` needs to know first (see ``_before_dislike_statement``).

    One impression can be disliked once: the same movie of the same shown list is always the
    same dislike. Without a list, only a repeat within the double-click window (either side of
    its moment: one recorded with a past time is not a repeat of a later one) is.
    """
    return _BEFORE_DISLIKE.first(
        conn,
        {
            "user_id": d.user_id,
            "movie_id": d.movie_id,
            "idempotency_key": d.idempotency_key,
            "set_id": d.recommendation_set_id,
            "since": now - timedelta(seconds=window_s),
            "until": now + timedelta(seconds=window_s),
            "cap": cap,
        },
    )


USER_LOCK_SLOTS = 1024


def _user_lock_key(user_id: int) -> int:
    """A user's lock in USER_LOCK_SPACE: one of USER_LOCK_SLOTS, by the id.

    A batch of an import locks the slots of all its people at once, and PostgreSQL keeps every
    lock of a transaction in a shared table of a few thousand entries (64 per connection by
    default): a lock per person made a batch of 15,000 people fail for "out of shared
    memory". Two people of one slot take turns: for the milliseconds of a live write, or for
    a whole import batch, which with a thousand people or more holds most slots (every live
    write then waits for the batch: up to about a second at 50,000 rows; a smaller --batch
    shortens it).
    """
    return user_id % USER_LOCK_SLOTS


def lock_user(conn: Connection, user_id: int) -> None:
    """Serialise writes of one user on PostgreSQL (SQLite's BEGIN IMMEDIATE already does)."""
    if conn.dialect.name == "postgresql":
        _LOCK_USER.first(conn, {"space": USER_LOCK_SPACE, "k": _user_lock_key(user_id)})


def lock_users(conn: Connection, user_ids) -> None:
    """``lock_user`` for many users at once (a batch of an import), in one order every writer
    of several users follows, so that two such writers never wait for each other."""
    if conn.dialect.name == "postgresql":
        keys = sorted({_user_lock_key(u) for u in user_ids})
        if keys:
            _LOCK_USERS.first(conn, {"space": USER_LOCK_SPACE, "keys": keys})


def count_pending_examples(conn: Connection, cap: int | None = None) -> int:
    """Count unused negative examples; with ``cap``, stop counting there (cheap at any size)."""
    if cap is None:
        return _COUNT_PENDING.scalar(conn, {})
    return _COUNT_PENDING_UP_TO_CAP.scalar(conn, {"cap": cap})


PROPOSAL_KEYS = (
    "dislike_id",
    "user_id",
    "feature_type",
    "feature_value",
    "proposed_magnitude",
    "magnitude",
    "reason",
    "status",
    "created_at",
)


def proposal_rows(dislike_id: int, user_id: int, reason: str, proposals, at: datetime) -> list[tuple]:
    """The ``feature_adjustments`` rows (``PROPOSAL_KEYS`` order) of a dislike's proposals, all
    ``proposed``."""
    return [
        (
            dislike_id,
            user_id,
            p.feature_type,
            p.feature_value,
            p.magnitude,
            p.magnitude,
            reason,
            "proposed",
            at,
        )
        for p in proposals
    ]


def user_pattern_summary(conn: Connection, user_id: int) -> dict:
    """The user's reason distribution and total, read from the maintained patterns."""
    reasons, total = {}, 0
    for kind, value, n in _USER_REASONS.execute(conn, {"user_id": user_id}).fetchall():
        if kind == "total":
            total = n
        elif n:
            reasons[value] = n
    return {"reason_distribution": reasons, "total_dislikes": total}


def queue_retrain_if_due(conn: Connection, threshold: int, *, at: datetime, actor: str) -> int | None:
    """Queue a retrain job when enough examples wait and none is queued or running."""
    pending, active_job = _RETRAIN_STATE.first(conn, {"cap": threshold})
    if pending >= threshold and active_job is None:
        return queue_retrain_job(conn, at=at, trigger="threshold", actor=actor)
    return None


def queue_retrain_job(conn: Connection, *, at: datetime, trigger: str, actor: str) -> int | None:
    """Queue a retrain job unless one is queued or running; return its id or None."""
    # The unique active_slot makes a second queued/running job impossible; a savepoint keeps a
    # losing racer's transaction usable.
    existing = _ACTIVE_JOB.scalar(conn, {})
    if existing is not None:
        return None
    from sqlalchemy.exc import IntegrityError

    try:
        with conn.begin_nested():
            job_id = conn.execute(
                insert(retrain_jobs)
                .values(
                    status="queued",
                    active_slot=1,
                    trigger=trigger,
                    requested_by=actor,
                    created_at=at,
                    progress=0,
                    stage="queued",
                    examples_claimed=0,
                )
                .returning(retrain_jobs.c.job_id)
            ).scalar_one()
    except IntegrityError:
        return None
    write_audit(
        conn,
        at=at,
        actor=actor,
        action="retrain.queued",
        entity_type="retrain_job",
        entity_id=job_id,
        details={"trigger": trigger},
    )
    if trigger == "threshold":
        log.info("[FEEDBACK] Feedback threshold reached: retrain job %s queued (threshold)", job_id)
    else:
        log.info("[FEEDBACK] Retrain job %s queued by %s (%s)", job_id, actor, trigger)
    return job_id


def _ignored_details(d: DislikeIn, title: str, genres: list, cast: list, franchise: str | None) -> list[str]:
    """The details a dislike sent that differ from its catalogued film's (which are used)."""
    ignored = []
    if d.movie_title and d.movie_title != title:
        ignored.append("movie_title")
    for name, sent, stored in (("genres", d.genres, genres), ("cast", d.cast, cast)):
        if sent and set(sent) != set(stored):
            ignored.append(name)
    if d.franchise and d.franchise != franchise:
        ignored.append("franchise")
    return ignored


# Clocks of the servers that record lists and dislikes may differ by this much: a dislike up to
# this long before its list's time is taken (counted with the list, on its day).
LIST_CLOCK_SKEW = timedelta(minutes=5)


def check_set(
    d: DislikeIn,
    owner: int | None,
    shown: float | None,
    shown_at: datetime | None = None,
    at: datetime | None = None,
    at_given: bool = False,
) -> None:
    """Refuse a dislike citing a list that does not exist, was someone else's, lacked the movie,
    or was shown after the dislike (``at``, given with it when ``at_given``) was made."""
    if d.recommendation_set_id is None:
        return
    if owner != d.user_id:
        # One answer whether the list is missing or another user's: whose lists exist is not
        # for this caller to learn.
        raise ValidationError(
            f"recommendation_set_id {d.recommendation_set_id} is not a list shown to user {d.user_id}: "
            "record the list first (POST /api/recommendation-sets, record_recommendation_set) and send "
            "the id it returns, or leave recommendation_set_id out",
            "recommendation_set_id",
        )
    if shown is None:
        raise ValidationError(
            f"movie_id {d.movie_id} was not in recommendation_set_id {d.recommendation_set_id}",
            "recommendation_set_id",
        )
    if shown_at is not None and at is not None and at < shown_at - LIST_CLOCK_SKEW:
        # Counted with its list, the dislike would fall on a later day than it was made (as
        # imports refuse it). The time given with the dislike, or else the list's, is wrong.
        field = "created_at" if at_given else "recommendation_set_id"
        wrong = "this created_at is likely wrong" if at_given else "the list's time is likely wrong"
        raise ValidationError(
            f"recommendation_set_id {d.recommendation_set_id} was shown at {shown_at.isoformat(sep=' ')} "
            f"(UTC), after this dislike ({at.isoformat(sep=' ', timespec='seconds')}): a dislike of a list "
            f"comes after it; {wrong} (send times in UTC)",
            field,
        )


def recorded_score(d: DislikeIn, shown: float | None) -> tuple[float | None, str | None]:
    """The predicted score a dislike is recorded with (None: unknown), and a note when the score
    sent with it was not used.

    A list's own score for the film wins: it is what the model predicted when the film was
    shown (a score sent again may be rounded or recomputed). Without one, the score sent;
    without either, nothing says what the model predicted, and no guess is stored as one."""
    if shown is None or shown == UNSCORED:
        return d.predicted_score, None
    note = None
    if d.predicted_score is not None and abs(d.predicted_score - shown) > 1e-9:
        note = (
            f"recommendation_set_id {d.recommendation_set_id} showed movie {d.movie_id} with predicted_score "
            f"{shown!r}: that score is recorded, not the {d.predicted_score!r} sent"
        )
    return float(shown), note


# ---------------------------------------------------------------- the service


class Recording:
    """Recording operations of ``FeedbackSystem``."""

    def save_dislike(
        self,
        user_id: int,
        movie_id: int,
        movie_title: str = "",
        recommendation_set_id: int | None = None,
        predicted_score: float | None = None,
        reason: str = "not_interested",
        feedback_text: str = "",
        genres: Sequence[str] | str | None = None,
        cast: Sequence[str] | str | None = None,
        franchise: str | None = None,
        idempotency_key: str | None = None,
    ) -> int:
        """Record a dislike with its example, proposals and aggregates; return its id.

        The error recorded is the score the list (``recommendation_set_id``) showed the movie
        with, else ``predicted_score``; with neither it is unknown, and left out of every
        prediction error (stored as 0). A catalogued film's own title, genres, cast
        and franchise count (what the model knows it by); those given add a film not yet in
        the catalogue."""
        return self._record_dislike(
            created_at=None,
            with_patterns=False,
            full=False,
            user_id=user_id,
            movie_id=movie_id,
            movie_title=movie_title,
            recommendation_set_id=recommendation_set_id,
            predicted_score=predicted_score,
            reason=reason,
            feedback_text=feedback_text,
            genres=genres,
            cast=cast,
            franchise=franchise,
            idempotency_key=idempotency_key,
        )

    def record_dislike(
        self,
        created_at: datetime | None = None,
        with_patterns: bool = False,
        add_movie: bool = True,
        **fields: Any,
    ) -> dict:
        """Record a dislike and return what happened (id, duplicate flag, impact, proposals).

        ``with_patterns``: also return the user's ``user_patterns`` (reason distribution and
        total) as they stand after this dislike, read in the same transaction.
        ``add_movie``: False refuses a film not in the catalogue instead of adding it.
        """
        return self._record_dislike(created_at, with_patterns, True, add_movie=add_movie, **fields)

    def _record_dislike(
        self, created_at: datetime | None, with_patterns: bool, full: bool, add_movie: bool = True, **fields
    ):
        """``record_dislike``; not ``full``, only the dislike's id is returned (what
        ``save_dislike`` gives back: the rest would be built for nothing)."""
        d = validate_dislike(self.settings, **fields)
        now = self.now() if created_at is None else check_recent(created_at, "created_at", self.now())
        with write_transaction(self.engine) as conn:
            lock_user(conn, d.user_id)
            threshold = self.settings.FEEDBACK_ACCUMULATION_THRESHOLD
            before = read_before_dislike(conn, d, now, self.settings.duplicate_window_seconds, threshold)
            by_key, repeat, *movie, owner, version_id, shown_at, shown, pending, active_job = before
            existing = by_key if by_key is not None else repeat
            if existing is not None:
                if not full:
                    return existing
                outcome = self._dislike_outcome(conn, existing, duplicate=True)
                if with_patterns:
                    outcome["user_patterns"] = user_pattern_summary(conn, d.user_id)
                return outcome
            title, movie_genres, movie_cast, movie_franchise = self._resolve_movie(
                conn, d, now, movie, add_movie
            )
            # A catalogued film is what the catalogue says (its title and features, as an
            # imported dislike's): the model knows it by those, and a proposal for a name it does
            # not know would change nothing. What the dislike sent served a film new to it.
            genres, cast, franchise = list(movie_genres or []), list(movie_cast or []), movie_franchise
            ignored = _ignored_details(d, title, genres, cast, franchise) if movie[0] is not None else []
            check_set(d, owner, shown, shown_at, now, at_given=created_at is not None)
            score, score_note = recorded_score(d, shown)
            dislike_id = _INSERT_DISLIKE.first_row(
                conn,
                DISLIKE_KEYS,
                (
                    d.user_id,
                    d.movie_id,
                    title,
                    d.recommendation_set_id,
                    version_id,
                    0.0 if score is None else score,
                    score is not None,
                    d.reason,
                    d.feedback_text,
                    genres,
                    cast,
                    franchise,
                    d.idempotency_key,
                    now,
                ),
            )[0]
            weight = self.settings.DISLIKE_WEIGHT_MULTIPLIER
            rule = self.settings.reason_policy[d.reason]
            proposals = propose_adjustments(rule, genres, cast, franchise)
            # Writes whose results nobody reads: one round trip on PostgreSQL.
            with pipelined(conn):
                _INSERT_EXAMPLE.execute_row(
                    conn,
                    EXAMPLE_KEYS,
                    (
                        dislike_id,
                        d.user_id,
                        d.movie_id,
                        weight,
                        0.0 if score is None else score,
                        now,
                        "pending",
                    ),
                ).close()
                self._store_proposals(conn, dislike_id, d, proposals, now)
                if rule.exclude_movie:
                    self._exclude_movie(conn, d.user_id, d.movie_id, dislike_id, now)
                aggregates.add_dislike(
                    conn,
                    user_id=d.user_id,
                    movie_id=d.movie_id,
                    reason=d.reason,
                    score=score,
                    genres=genres,
                    cast=cast,
                    franchise=franchise,
                    version_key=version_id or 0,
                    attributed=d.recommendation_set_id is not None,
                    at=now,
                    shown_on=None if shown_at is None else shown_at.date(),
                )
            if proposals:
                self._auto_approve(conn, dislike_id, now)
            # The count was read under this transaction's write lock, before this example.
            if active_job is None and pending + 1 >= threshold:
                queue_retrain_job(conn, at=now, trigger="threshold", actor="system")
            outcome = dislike_id
            if full:
                outcome = {
                    "dislike_id": dislike_id,
                    "movie_id": d.movie_id,
                    "duplicate": False,
                    "training_impact": {"error_recorded": score, "weight": weight},
                    "feature_adjustments": {
                        **adjustments_as_dict(d.reason, proposals),
                        "exclude_movie": rule.exclude_movie,
                    },
                }
                if score_note:
                    outcome["score_note"] = score_note
                if ignored:
                    outcome["catalogue_note"] = (
                        f"movie {d.movie_id} is in the catalogue as {title!r}: its catalogue entry was used, "
                        f"not the {', '.join(ignored)} sent (the catalogue changes through import-catalog or "
                        "add_movies)"
                    )
            if with_patterns:
                outcome["user_patterns"] = user_pattern_summary(conn, d.user_id)
        if log.isEnabledFor(logging.INFO):
            # One line per dislike, its proposals on it: every line is a write to the log.
            proposed = ""
            if proposals:
                changes = {f"{p.feature_type}:{p.feature_value}": p.magnitude for p in proposals}
                proposed = f"; Feature adjustments proposed: {changes}"
            log.info(
                "[FEEDBACK] Dislike %s recorded: user %s movie %s reason %s score %s%s",
                dislike_id,
                d.user_id,
                d.movie_id,
                d.reason,
                "unknown" if score is None else f"{score:.3f}",
                proposed,
            )
        return outcome

    def _resolve_movie(
        self, conn: Connection, d: DislikeIn, now: datetime, movie: Sequence, add: bool = True
    ) -> tuple:
        """Return the movie's (title, genres, cast, franchise) as read (``movie``), adding it to
        the catalogue if it is new (and ``add``)."""
        if movie[0] is not None:  # the title is never NULL in the catalogue
            return tuple(movie)
        if not add:
            raise ValidationError(
                f"movie_id {d.movie_id} is not in the catalogue, and a user token cannot add films to "
                "it: the service adds them (with its API key) or imports the catalogue",
                "movie_id",
            )
        if not d.movie_title:
            raise ValidationError(
                f"movie_id {d.movie_id} is not in the catalogue; give movie_title (and genres, "
                "cast) so it can be added",
                "movie_title",
            )
        # Two users may be first to dislike the same new film at once (PostgreSQL locks per
        # user): the loser's insert does nothing and it reads the winner's row.
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        conn.execute(
            dialect.insert(movies)
            .values(
                movie_id=d.movie_id,
                title=d.movie_title,
                genres=list(d.genres or []),
                cast=list(d.cast or []),
                franchise=d.franchise,
                rating_count=0,
                rating_sum=0.0,
                like_count=0,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["movie_id"])
        )
        return _MOVIE_FACTS.first(conn, {"movie_id": d.movie_id})

    def _store_proposals(self, conn: Connection, dislike_id: int, d: DislikeIn, proposals, now) -> None:
        if not proposals:
            return
        rows = proposal_rows(dislike_id, d.user_id, d.reason, proposals, now)
        _INSERT_PROPOSALS.execute_rows(conn, PROPOSAL_KEYS, rows).close()

    def _auto_approve(self, conn: Connection, dislike_id: int, now) -> None:
        """Apply a dislike's proposals at once (``FEEDBACK_AUTO_APPROVE``)."""
        if self.settings.auto_approve:
            ids = (
                conn.execute(
                    select(feature_adjustments.c.adjustment_id).where(
                        feature_adjustments.c.dislike_id == dislike_id
                    )
                )
                .scalars()
                .all()
            )
            for adjustment_id in ids:
                self._apply_adjustment(conn, adjustment_id, actor=AUTO_APPROVER, magnitude=None, now=now)

    def _exclude_movie(self, conn: Connection, user_id: int, movie_id: int, dislike_id: int, now) -> None:
        # An earlier exclusion of the same movie stands (and keeps its dislike).
        exclusion_insert(conn.dialect.name).execute_row(
            conn, EXCLUSION_KEYS, (user_id, movie_id, dislike_id, now)
        ).close()

    def _dislike_outcome(self, conn: Connection, dislike_id: int, duplicate: bool) -> dict:
        row = conn.execute(select(user_dislikes).where(user_dislikes.c.dislike_id == dislike_id)).one()
        example = conn.execute(
            select(negative_examples.c.weight).where(negative_examples.c.dislike_id == dislike_id)
        ).scalar()
        proposals = [
            ProposedAdjustment(*p)
            for p in conn.execute(
                select(
                    feature_adjustments.c.feature_type,
                    feature_adjustments.c.feature_value,
                    feature_adjustments.c.proposed_magnitude,
                ).where(feature_adjustments.c.dislike_id == dislike_id)
            )
        ]
        rule = self.settings.reason_policy[row.reason]
        return {
            "dislike_id": dislike_id,
            "movie_id": row.movie_id,
            "duplicate": duplicate,
            "training_impact": {
                "error_recorded": row.predicted_score if row.score_known else None,
                "weight": example if example is not None else self.settings.DISLIKE_WEIGHT_MULTIPLIER,
            },
            "feature_adjustments": {
                **adjustments_as_dict(row.reason, proposals),
                "exclude_movie": rule.exclude_movie,
            },
        }

    def retract_dislike(self, dislike_id: int, user_id: int, actor: str | None = None) -> dict:
        """Undo a dislike: drop its unused example, withdraw its pending proposals, revert its
        applied adjustments, keep an audit record."""
        dislike_id = check_id(dislike_id, "dislike_id")
        user_id = check_id(user_id, "user_id")
        now = self.now()
        with write_transaction(self.engine) as conn:
            lock_user(conn, user_id)
            row = conn.execute(select(user_dislikes).where(user_dislikes.c.dislike_id == dislike_id)).first()
            # Someone else's dislike is reported as missing: its existence is not theirs to learn.
            if row is None or row.user_id != user_id:
                raise NotFoundError(f"dislike {dislike_id} not found for user {user_id}", "dislike_id")
            if row.retracted_at is not None:
                raise ConflictError(f"dislike {dislike_id} was already retracted", "dislike_id")
            conn.execute(
                update(user_dislikes).where(user_dislikes.c.dislike_id == dislike_id).values(retracted_at=now)
            )
            shown_at = None
            if row.recommendation_set_id is not None:
                shown_at = conn.execute(
                    select(recommendation_sets.c.created_at).where(
                        recommendation_sets.c.recommendation_set_id == row.recommendation_set_id
                    )
                ).scalar()
            removed_example = conn.execute(
                negative_examples.delete().where(
                    negative_examples.c.dislike_id == dislike_id,
                    negative_examples.c.status == "pending",
                )
            ).rowcount
            withdrawn = conn.execute(
                update(feature_adjustments)
                .where(
                    feature_adjustments.c.dislike_id == dislike_id,
                    feature_adjustments.c.status == "proposed",
                )
                .values(
                    status="rejected",
                    decided_by=actor or f"user:{user_id}",
                    decided_at=now,
                    note=RETRACTED_NOTE,
                )
            ).rowcount
            # What was applied on its evidence leaves the user's weights with it (recorded as a
            # revert with the reason): an undone dislike must not go on shaping the scores.
            applied = conn.execute(
                select(feature_adjustments)
                .where(
                    feature_adjustments.c.dislike_id == dislike_id,
                    feature_adjustments.c.status == "applied",
                )
                .order_by(feature_adjustments.c.adjustment_id)
                .with_for_update()
            ).all()
            for adjustment in applied:
                self._revert(conn, adjustment, actor or f"user:{user_id}", now, why=RETRACTED_NOTE)
            conn.execute(movie_exclusions.delete().where(movie_exclusions.c.dislike_id == dislike_id))
            # Another live dislike that excludes the film keeps it excluded.
            excluding = [r for r, rule in self.settings.reason_policy.items() if rule.exclude_movie]
            other = conn.execute(
                select(user_dislikes.c.dislike_id)
                .where(
                    user_dislikes.c.user_id == row.user_id,
                    user_dislikes.c.movie_id == row.movie_id,
                    user_dislikes.c.retracted_at.is_(None),
                    user_dislikes.c.reason.in_(excluding),
                )
                .order_by(user_dislikes.c.dislike_id)
                .limit(1)
            ).scalar()
            if other is not None:
                self._exclude_movie(conn, row.user_id, row.movie_id, other, now)
            aggregates.add_dislike(
                conn,
                user_id=row.user_id,
                movie_id=row.movie_id,
                reason=row.reason,
                score=row.predicted_score if row.score_known else None,
                genres=row.genres or [],
                cast=row.cast or [],
                franchise=row.franchise,
                version_key=row.model_version_id or 0,
                attributed=row.recommendation_set_id is not None,
                at=row.created_at,
                sign=-1,
                shown_on=None if shown_at is None else shown_at.date(),
            )
            aggregates.settle_latest_after_retraction(
                conn,
                user_id=row.user_id,
                movie_id=row.movie_id,
                reason=row.reason,
                genres=row.genres or [],
                cast=row.cast or [],
                franchise=row.franchise,
                at=row.created_at,
            )
            details = {
                "example_removed": bool(removed_example),
                "proposals_withdrawn": withdrawn,
                "adjustments_reverted": len(applied),
            }
            write_audit(
                conn,
                at=now,
                actor=actor or f"user:{user_id}",
                action="dislike.retracted",
                entity_type="dislike",
                entity_id=dislike_id,
                details=details,
            )
        log.info("[FEEDBACK] Dislike %s retracted by user %s", dislike_id, user_id)
        return {"dislike_id": dislike_id, "retracted": True, **details}


@functools.cache
def exclusion_insert(dialect_name: str) -> Prepared:
    """``INSERT`` of movie exclusions; an earlier exclusion of the same film stands."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    return Prepared(
        dialect.insert(movie_exclusions).on_conflict_do_nothing(index_elements=["user_id", "movie_id"])
    )
