"""Retrain jobs: queueing (at most one queued or running), claiming, running, recovery."""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import timedelta

from sqlalchemy import Connection, delete, select, update

from feedback_core import model, training
from feedback_core.db import (
    before_commit,
    format_ts,
    read_connection,
    reading,
    to_naive_utc,
    write_transaction,
)
from feedback_core.errors import ConflictError, DatabaseUnavailableError, FeedbackError, NotFoundError
from feedback_core.recommender import load_active_model
from feedback_core.recording import queue_retrain_if_due, queue_retrain_job, write_audit
from feedback_core.schema import model_versions, negative_examples, retrain_jobs, user_dislikes
from feedback_core.validation import check_id, check_limit, check_text
from feedback_core.versions import activate, active_version_id, insert_version, lock_activations

log = logging.getLogger("feedback_core")

HEARTBEAT_SECONDS = 5.0
STALE_AFTER_SECONDS = 60.0
RETRY_TRIGGER = "retry"  # the job queued again for one whose worker stopped
LONGEST_BACKOFF_SECONDS = 60.0  # a worker that cannot reach the database waits at most this long

# The jobs this process is running, as (job id, started at): whatever its heartbeat looks like
# (a thread starved, a write lock held long), its own recovery never fails one of them. The
# start time tells apart the jobs of several databases this process may use.
_RUNNING_HERE: set[tuple[int, object]] = set()
_RUNNING_LOCK = threading.Lock()


def job_dict(row) -> dict:
    """Shape one retrain_jobs row."""
    return {
        "job_id": row.job_id,
        "status": row.status,
        "trigger": row.trigger,
        "requested_by": row.requested_by,
        "created_at": format_ts(row.created_at),
        "started_at": format_ts(row.started_at),
        "finished_at": format_ts(row.finished_at),
        "heartbeat_at": format_ts(row.heartbeat_at),
        "worker_id": row.worker_id,
        "progress": row.progress,
        "stage": row.stage,
        "error": row.error,
        "result_version_id": row.result_version_id,
        "examples_claimed": row.examples_claimed,
    }


def this_worker_id() -> str:
    """Return ``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _process_alive(worker_id: str | None) -> bool | None:
    """True/False for a worker on this host; None when it runs elsewhere (unknown)."""
    if not worker_id or ":" not in worker_id:
        return None
    host, _, pid = worker_id.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _worker_gone(job, now) -> bool:
    """Say whether a running job's worker is gone: it is not running in this process, and it
    has sent no heartbeat for ``STALE_AFTER_SECONDS`` (a running job's worker beats every
    ``HEARTBEAT_SECONDS``), or its process, on this host, has ended.

    A live process with the job's ``host:pid`` is not taken as its worker once the heartbeat is
    stale: it may be another process that got the same pid (a restarted container's worker is
    often pid 1), or a process whose worker thread died. A pid is looked up in this process's
    pid namespace: worker containers that share a host name (host networking) must share the
    host's pid namespace too (docs/deploy.md), or each takes the other's live jobs for ended."""
    with _RUNNING_LOCK:
        if (job.job_id, job.started_at) in _RUNNING_HERE:
            return False
    stale = job.heartbeat_at is None or now - job.heartbeat_at > timedelta(seconds=STALE_AFTER_SECONDS)
    return stale or _process_alive(job.worker_id) is False


def release_examples(conn: Connection, job_id: int) -> int:
    """Give a failed job's claimed examples back to the pool, but for those of dislikes retracted
    meanwhile (``retract_dislike`` leaves a claimed example to its job): those are dropped, as the
    retraction drops a pending one. Return how many went back."""
    retracted = select(user_dislikes.c.dislike_id).where(user_dislikes.c.retracted_at.is_not(None))
    conn.execute(
        delete(negative_examples).where(
            negative_examples.c.job_id == job_id,
            negative_examples.c.status == "claimed",
            negative_examples.c.dislike_id.in_(retracted),
        )
    )
    return conn.execute(
        update(negative_examples)
        .where(negative_examples.c.job_id == job_id, negative_examples.c.status == "claimed")
        .values(status="pending", job_id=None)
    ).rowcount


class Jobs:
    """Retrain-job operations of ``FeedbackSystem``."""

    def request_retrain(self, actor: str, trigger: str = "manual") -> dict:
        """Queue a retrain by hand; if one is already queued or running, return that one.

        A job whose worker died is failed first, so it never stands in the way.
        """
        actor = check_text(actor, "actor", 120, allow_empty=False)
        with before_commit(None):  # housekeeping: not what a keyed request asked for
            self.recover_stale_jobs()
        with write_transaction(self.engine) as conn:
            now = self.now()
            job_id = queue_retrain_job(conn, at=now, trigger=trigger, actor=actor)
            if job_id is None:
                job_id = conn.execute(
                    select(retrain_jobs.c.job_id).where(retrain_jobs.c.active_slot == 1)
                ).scalar_one()
                created = False
                if trigger != RETRY_TRIGGER:
                    # A person asking while a retry waits: it is their request now too, so a
                    # retry stopped in turn is queued again rather than dropped.
                    conn.execute(
                        update(retrain_jobs)
                        .where(retrain_jobs.c.job_id == job_id, retrain_jobs.c.trigger == RETRY_TRIGGER)
                        .values(trigger=trigger)
                    )
                # The job stays its first requester's (often "system", at the threshold); the
                # audit log keeps who else asked for it, and when.
                write_audit(
                    conn,
                    at=now,
                    actor=actor,
                    action="retrain.requested",
                    entity_type="retrain_job",
                    entity_id=job_id,
                    details={"trigger": trigger, "joined": True},
                )
            else:
                created = True
        return {**self.get_retrain_job(job_id), "created": created}

    def get_retrain_job(self, job_id: int) -> dict:
        """Return one retrain job with its progress."""
        job_id = check_id(job_id, "job_id")
        with read_connection(self.engine) as conn:
            row = conn.execute(select(retrain_jobs).where(retrain_jobs.c.job_id == job_id)).first()
        if row is None:
            raise NotFoundError(f"retrain job {job_id} not found", "job_id")
        return job_dict(row)

    def list_retrain_jobs(self, limit: int = 50) -> list[dict]:
        """Return recent retrain jobs, newest first."""
        limit = check_limit(limit)
        with read_connection(self.engine) as conn:
            rows = conn.execute(
                select(retrain_jobs).order_by(retrain_jobs.c.job_id.desc()).limit(limit)
            ).all()
        return [job_dict(r) for r in rows]

    def recover_stale_jobs(self) -> list[int]:
        """Mark running jobs whose worker stopped as failed, release their examples, queue their
        retrain again (see ``recover_stopped_jobs``); return the failed jobs' ids."""
        return self.recover_stopped_jobs()["failed"]

    def recover_stopped_jobs(self) -> dict:
        """Mark running jobs whose worker stopped as failed and release their examples; queue
        the retrain again unless the job was itself such a retry. Return ``failed`` (ids) and
        ``queued_again`` (the new job's id or None).

        One read when nothing is stale: the worker runs it on every poll, and asking for a
        retrain runs it before deciding.
        """
        now = self.now()
        columns = (
            retrain_jobs.c.job_id,
            retrain_jobs.c.worker_id,
            retrain_jobs.c.heartbeat_at,
            retrain_jobs.c.started_at,
            retrain_jobs.c.trigger,
            retrain_jobs.c.requested_by,
        )
        with read_connection(self.engine) as conn:
            running = conn.execute(select(*columns).where(retrain_jobs.c.status == "running")).all()
        gone = [job.job_id for job in running if _worker_gone(job, now)]
        if not gone:
            return {"failed": [], "queued_again": None}
        failed, queued_again = [], None
        with write_transaction(self.engine) as conn:
            # Read again under the write lock (and, on PostgreSQL, the rows' locks: a heartbeat
            # waiting on a lock commits first and is seen): a heartbeat may have arrived since.
            running = conn.execute(
                select(*columns)
                .where(retrain_jobs.c.job_id.in_(gone), retrain_jobs.c.status == "running")
                .with_for_update()
            ).all()
            for job in running:
                error = f"worker {job.worker_id} stopped while the job was running"
                if _worker_gone(job, now) and self._fail(conn, job.job_id, job.worker_id, error, now):
                    failed.append(job.job_id)
                    again = self._queue_again(conn, job.job_id, job.trigger, job.requested_by, now)
                    queued_again = again or queued_again
        for job_id in failed:
            log.warning("[FEEDBACK] Retrain job %s failed: its worker stopped", job_id)
        return {"failed": failed, "queued_again": queued_again}

    def _queue_again(self, conn: Connection, job_id: int, trigger: str, requested_by: str, now) -> int | None:
        """Queue the retrain a job whose run was cut short (its worker stopped or was stopped)
        was for, as its requester's: the request stands. Once: a job that was itself such a retry
        queues nothing (a run that kills its worker every time would loop); the next dislike past
        the threshold queues the next job, as after any failure. (A person who asks for a retrain
        while a retry waits makes it a manual request again: see ``request_retrain``.)"""
        if trigger == RETRY_TRIGGER:
            return None
        queued = queue_retrain_job(conn, at=now, trigger=RETRY_TRIGGER, actor=requested_by)
        if queued is not None:
            log.warning("[FEEDBACK] Retrain job %s queued again as job %s", job_id, queued)
        return queued

    def claim_next_job(self, worker_id: str | None = None, job_id: int | None = None) -> dict | None:
        """Claim the oldest queued job (row-locked; SKIP LOCKED on PostgreSQL) and mark it running."""
        worker_id = worker_id or this_worker_id()
        now = self.now()
        with write_transaction(self.engine) as conn:
            query = select(retrain_jobs.c.job_id).where(retrain_jobs.c.status == "queued")
            if job_id is not None:
                query = query.where(retrain_jobs.c.job_id == job_id)
            query = query.order_by(retrain_jobs.c.job_id).limit(1).with_for_update(skip_locked=True)
            found = conn.execute(query).scalar()
            if found is None:
                return None
            claimed = conn.execute(
                update(retrain_jobs)
                .where(retrain_jobs.c.job_id == found, retrain_jobs.c.status == "queued")
                .values(
                    status="running",
                    started_at=now,
                    heartbeat_at=now,
                    worker_id=worker_id,
                    progress=1,
                    stage="starting",
                )
            ).rowcount
            if not claimed:
                return None
        return self.get_retrain_job(found)

    def run_worker(
        self,
        once: bool = False,
        poll_seconds: float = 2.0,
        stop: threading.Event | None = None,
        max_jobs: int | None = None,
    ) -> int:
        """Run queued jobs until stopped (``once``: until the queue is empty). Return jobs run.

        Every poll first fails the jobs of workers that stopped, so their examples train again
        (and queues their retrain again). An unreachable database makes the worker wait and try
        again, from ``poll_seconds`` up to a minute apart; with ``once`` it raises.
        """
        stop = stop or threading.Event()
        worker_id = this_worker_id()
        done = 0
        backoff = 0.0
        while not stop.is_set() and (max_jobs is None or done < max_jobs):
            try:
                self.recover_stale_jobs()
                job = self.claim_next_job(worker_id=worker_id)
                if job is not None:
                    self.run_job(job["job_id"], worker_id)
                    done += 1
            except ConflictError as exc:  # another thread of this process started it first
                log.warning("[FEEDBACK] Retrain job not run here: %s", exc.message)
                continue
            except Exception as exc:
                if once:
                    raise
                # A database restart or a network blip (or a bug, its trace logged): wait, longer
                # each time up to a minute, and go on; a worker left dead would train nothing.
                backoff = min(max(backoff * 2, poll_seconds), LONGEST_BACKOFF_SECONDS)
                if isinstance(exc, DatabaseUnavailableError):
                    log.warning("[FEEDBACK] worker waits %.0f s: %s", backoff, exc.message)
                else:
                    log.exception("[FEEDBACK] worker waits %.0f s after an error", backoff)
                stop.wait(backoff)
                continue
            backoff = 0.0
            if job is None:
                if once:
                    break
                stop.wait(poll_seconds)
        return done

    def retrain(self, actor: str, trigger: str = "manual") -> dict:
        """Queue (or reuse the queued) retrain job and run it now, in this process."""
        job = self.request_retrain(actor, trigger)  # fails a dead worker's job first
        if job["status"] == "running":
            raise ConflictError(f"retrain job {job['job_id']} is already running", "job_id")
        worker_id = this_worker_id()
        claimed = self.claim_next_job(worker_id=worker_id, job_id=job["job_id"])
        if claimed is None:
            raise ConflictError(f"retrain job {job['job_id']} was claimed by another worker", "job_id")
        return self.run_job(job["job_id"], worker_id)

    def run_job(self, job_id: int, worker_id: str | None = None) -> dict:
        """Run a job this worker claimed: train, evaluate, store the candidate, maybe promote it.

        Args:
            worker_id: the claimer's id given to ``claim_next_job`` (default: this process).

        Raises:
            ConflictError: the job is not running for ``worker_id`` or has already started;
                nothing is changed.
        """
        job_id = check_id(job_id, "job_id")
        worker_id = worker_id or this_worker_id()
        job, claimed = self._start_job(job_id, worker_id)
        running_here = (job_id, job.started_at)
        stop_beat = threading.Event()
        beat = None
        try:  # from here every way out passes the finally below (the entry is always removed)
            with _RUNNING_LOCK:
                _RUNNING_HERE.add(running_here)
            beat = threading.Thread(target=self._heartbeat, args=(job_id, worker_id, stop_beat), daemon=True)
            beat.start()
            self._train_and_record(job, worker_id, claimed)
        except (ValueError, FeedbackError) as exc:
            # Expected: the data cannot train a model, or the job was taken away; the message
            # says which, a stack trace would add nothing.
            log.warning("[FEEDBACK] Retrain job %s failed: %s", job_id, exc)
            self._fail_own(job_id, worker_id, exc)
        except Exception as exc:  # anything else is a bug: keep its trace, still release the examples
            log.exception("[FEEDBACK] Retrain job %s failed", job_id)
            self._fail_own(job_id, worker_id, exc)
        except BaseException as exc:  # stopped (Ctrl-C, SIGTERM): the request stands, queued again
            log.warning("[FEEDBACK] Retrain job %s stopped: %s", job_id, type(exc).__name__)
            self._fail_own(job_id, worker_id, exc, requeue=True)
            raise
        finally:
            stop_beat.set()
            if beat is not None and beat.is_alive():
                beat.join(timeout=5)
            with _RUNNING_LOCK:
                _RUNNING_HERE.discard(running_here)
        return self.get_retrain_job(job_id)

    # ------------------------------------------------------------ internals

    def _finish_unchanged(self, conn: Connection, job, worker_id: str, same: int, now) -> None:
        """End a job whose training gave the very model of version ``same``, from the same data:
        no version is added (it would be a copy), the job says which version it matches."""
        _record_success(
            conn,
            job,
            worker_id,
            now,
            _unchanged_stage(conn, same),
            {"version_id": None, "unchanged_from": same},
        )
        # Dislikes that came in while it trained may have crossed the threshold, as after any run.
        queue_retrain_if_due(conn, self.settings.FEEDBACK_ACCUMULATION_THRESHOLD, at=now, actor="system")
        log.info(
            "[FEEDBACK] Retrain job %s found nothing new: the same model as version %s", job.job_id, same
        )

    def _heartbeat(self, job_id: int, worker_id: str, stop: threading.Event) -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            try:
                with write_transaction(self.engine) as conn:
                    conn.execute(
                        update(retrain_jobs)
                        .where(*_running_for(job_id, worker_id))
                        .values(heartbeat_at=self.now())
                    )
            except Exception:  # a missed heartbeat is harmless; the next one retries
                log.warning("[FEEDBACK] heartbeat of job %s failed", job_id)

    def _progress(self, job_id: int, percent: int, stage: str) -> None:
        try:
            with write_transaction(self.engine) as conn:
                conn.execute(
                    update(retrain_jobs)
                    .where(retrain_jobs.c.job_id == job_id, retrain_jobs.c.status == "running")
                    .values(progress=percent, stage=stage, heartbeat_at=self.now())
                )
        except DatabaseUnavailableError:  # shown progress only: the run goes on
            log.warning("[FEEDBACK] progress of job %s not recorded: the database is unavailable", job_id)

    def _fail_own(self, job_id: int, worker_id: str, exc: BaseException, requeue: bool = False) -> None:
        """Fail this worker's job, releasing its examples; ``requeue``: queue its retrain again
        (as ``_queue_again`` decides from the job as it is now: a person may have joined it).
        When the database cannot be reached, the job is left running: the next recovery (any
        worker's poll, a retrain request) fails it once it is not run here."""
        if isinstance(exc, Exception):
            message = f"{type(exc).__name__}: {exc}"
        else:  # stopped from outside: Ctrl-C, or what the exception says (SIGTERM)
            how = "Ctrl-C" if isinstance(exc, KeyboardInterrupt) else str(exc) or type(exc).__name__
            message = f"the worker was stopped ({how})"
        try:
            with write_transaction(self.engine) as conn:
                now = self.now()
                if self._fail(conn, job_id, worker_id, message, now) and requeue:
                    # As the job is now: a person may have joined it while it ran.
                    asked = conn.execute(
                        select(retrain_jobs.c.trigger, retrain_jobs.c.requested_by).where(
                            retrain_jobs.c.job_id == job_id
                        )
                    ).first()
                    self._queue_again(conn, job_id, asked.trigger, asked.requested_by, now)
        except DatabaseUnavailableError:
            log.warning(
                "[FEEDBACK] Retrain job %s could not be marked failed: the database is unavailable", job_id
            )

    def _fail(self, conn: Connection, job_id: int, worker_id: str | None, error: str, now) -> bool:
        """Fail the job and release its examples if it is still running for ``worker_id``.

        Return whether it was; a job that finished or was failed meanwhile is left as it is.
        """
        failed = conn.execute(
            update(retrain_jobs)
            .where(*_running_for(job_id, worker_id))
            .values(status="failed", active_slot=None, finished_at=now, error=error[:2000], stage="failed")
        ).rowcount
        if not failed:
            return False
        released = release_examples(conn, job_id)
        write_audit(
            conn,
            at=now,
            actor="system",
            action="retrain.failed",
            entity_type="retrain_job",
            entity_id=job_id,
            details={"error": error[:500], "examples_released": released},
        )
        return True

    def _start_job(self, job_id: int, worker_id: str) -> tuple:
        """Start a job claimed by ``worker_id``: take the pending examples; return (job, examples).

        Raises ConflictError, changing nothing, when the job is not this worker's to start.
        """
        with write_transaction(self.engine) as conn:
            job = conn.execute(
                select(retrain_jobs).where(retrain_jobs.c.job_id == job_id).with_for_update()
            ).first()
            if job is None:
                raise NotFoundError(f"retrain job {job_id} not found", "job_id")
            if job.status != "running":
                raise ConflictError(
                    f"retrain job {job_id} is {job.status}, not running: only a claimed job runs "
                    "(claim_next_job), once",
                    "job_id",
                )
            if job.worker_id != worker_id:
                raise ConflictError(
                    f"retrain job {job_id} was claimed by worker {job.worker_id}, not {worker_id}: "
                    "only the worker that claimed a job runs it",
                    "job_id",
                )
            # claim_next_job leaves the job at stage "starting"; leaving it is the start, which
            # only one caller wins, however many systems of this process try.
            if job.stage != "starting":
                raise ConflictError(
                    f"retrain job {job_id} is already being run (stage {job.stage!r})", "job_id"
                )
            claimed = conn.execute(
                update(negative_examples)
                .where(negative_examples.c.status == "pending")
                .values(status="claimed", job_id=job_id)
            ).rowcount
            conn.execute(
                update(retrain_jobs)
                .where(retrain_jobs.c.job_id == job_id)
                .values(examples_claimed=claimed, progress=10, stage="loading training data")
            )
        return job, claimed

    def _train_and_record(self, job, worker_id: str, claimed: int) -> None:
        s = self.settings
        job_id = job.job_id
        # One snapshot (REPEATABLE READ on PostgreSQL): ratings, lists and examples recorded
        # while the data loads are in every part of it or in none.
        loaded_at = self.now()  # dislikes retracted before this are not in the data read next
        with reading(self.engine), read_connection(self.engine) as conn:
            data = training.load_training_data(conn, (s.weight_min, s.weight_max), job_id)
            active_id, active_model = load_active_model(conn, s.adjustment_strength)
            active_since = None
            if active_id is None:
                # The prior model serves until a version is active: the first candidate is set
                # beside it on every example (it saw none).
                pass
            else:  # what the active version trained on came in before it was recorded
                active_since = to_naive_utc(
                    conn.execute(
                        select(model_versions.c.created_at).where(model_versions.c.version_id == active_id)
                    ).scalar_one()
                )
        self._progress(job_id, 40, "building features")
        trained, metrics, baseline = training.fit_and_evaluate(
            data,
            adjustment_strength=s.adjustment_strength,
            active=active_model,
            progress=lambda p, stage: self._progress(job_id, p, stage),
            active_since=active_since,
        )
        metrics["active_on_same_holdout"] = baseline
        promote, why = _promotion_decision(metrics, baseline, s.promotion_margin, first=active_id is None)
        self._progress(job_id, 95, "recording the new version")
        now = self.now()
        with write_transaction(self.engine) as conn:
            still = conn.execute(
                select(retrain_jobs.c.status, retrain_jobs.c.worker_id, retrain_jobs.c.trigger)
                .where(retrain_jobs.c.job_id == job_id)
                .with_for_update()
            ).first()
            if (still.status, still.worker_id) != ("running", worker_id):
                raise ConflictError(
                    f"retrain job {job_id} was marked {still.status} while training", "job_id"
                )
            # No activation can slip in between reading the active version and promoting.
            lock_activations(conn)
            active_now = active_version_id(conn)
            if active_now != active_id:
                # Someone activated or rolled back meanwhile: the comparison no longer holds, and
                # promoting would silently undo their decision.
                promote = False
                why = (
                    f"not activated: the active version changed from {_version_label(active_id)} to "
                    f"{_version_label(active_now)} while this job trained (it was compared with "
                    f"{_version_label(active_id)}: {why}); an analyst decides"
                )
            # Examples of dislikes retracted after this job claimed them but before it read its
            # data were not trained on: dropped, as a retraction drops an unused example.
            dropped = conn.execute(
                negative_examples.delete().where(
                    negative_examples.c.job_id == job_id,
                    negative_examples.c.status == "claimed",
                    negative_examples.c.dislike_id.in_(
                        select(user_dislikes.c.dislike_id).where(
                            user_dislikes.c.retracted_at.is_not(None),
                            user_dislikes.c.retracted_at <= loaded_at,
                        )
                    ),
                )
            ).rowcount
            claimed -= dropped
            same = _same_as_newest(conn, trained.as_dict(), data, claimed, active_id, s.promotion_margin)
            if same is not None:
                self._finish_unchanged(conn, job, worker_id, same, now)
                return
            metrics["promotion"] = {"promoted": promote, "reason": why, "margin": s.promotion_margin}
            version_id = insert_version(
                conn,
                at=now,
                actor=job.requested_by,
                trigger=still.trigger,  # a person who joined a retry meanwhile made it manual
                parent_id=active_id,
                weights=trained.as_dict(),
                metrics=metrics,
                examples={**data.counts, "new_negative_examples": claimed, "job_id": job_id},
                settings={
                    "DISLIKE_WEIGHT_MULTIPLIER": s.DISLIKE_WEIGHT_MULTIPLIER,
                    "FEEDBACK_ACCUMULATION_THRESHOLD": s.FEEDBACK_ACCUMULATION_THRESHOLD,
                    "adjustment_strength": s.adjustment_strength,
                    "promotion_margin": s.promotion_margin,
                    "folds": training.FOLDS,
                    "seed": training.SEED,
                    "cutoff": data.cutoff.isoformat(sep=" "),
                },
            )
            conn.execute(
                update(negative_examples)
                .where(negative_examples.c.job_id == job_id, negative_examples.c.status == "claimed")
                .values(status="used", used_at=now, used_in_version_id=version_id)
            )
            _record_success(
                conn,
                job,
                worker_id,
                now,
                "done",
                {
                    "version_id": version_id,
                    "auc": metrics.get("auc"),  # its own, cross-validated over every example
                    # What the promotion rule compared: per (user, film), on examples the active
                    # version never saw (the reason quotes these).
                    "compared_auc": (metrics.get("auc_gain") or {}).get("auc_a"),
                    "compared_active_auc": (metrics.get("auc_gain") or {}).get("auc_b"),
                    "promoted": promote,
                    "reason": why,
                },
            )
            if promote:
                activate(conn, version_id, "system", now, why)
            # Dislikes that came in while this job trained may have crossed the threshold again:
            # queue the next job now rather than at the next dislike, which may be long in coming.
            queue_retrain_if_due(conn, s.FEEDBACK_ACCUMULATION_THRESHOLD, at=now, actor="system")
        log.info(
            "[FEEDBACK] Retrain job %s produced version %s (auc %s, promoted %s)",
            job_id,
            version_id,
            metrics.get("auc"),
            promote,
        )


def _version_label(version_id: int | None) -> str:
    return "no version" if version_id is None else f"version {version_id}"


def _record_success(conn: Connection, job, worker_id: str, now, stage: str, details: dict) -> None:
    """Mark the running job succeeded (its result: ``details["version_id"]``) and audit it."""
    conn.execute(
        update(retrain_jobs)
        .where(*_running_for(job.job_id, worker_id))
        .values(
            status="succeeded",
            active_slot=None,
            finished_at=now,
            progress=100,
            stage=stage,
            result_version_id=details["version_id"],
        )
    )
    write_audit(
        conn,
        at=now,
        actor=job.requested_by,
        action="retrain.succeeded",
        entity_type="retrain_job",
        entity_id=job.job_id,
        details=details,
    )


def _running_for(job_id: int, worker_id: str | None) -> tuple:
    """Conditions matching the job only while it is running for ``worker_id``."""
    return (
        retrain_jobs.c.job_id == job_id,
        retrain_jobs.c.status == "running",
        retrain_jobs.c.worker_id == worker_id,
    )


TOP10_SIGNIFICANCE = 0.05  # a candidate that keeps more dislikes in a top 10 than this chance allows


CHANCE_AUC = 0.5  # what ranking the held-out examples at random scores


def _promotion_decision(
    metrics: dict, baseline: dict | None, margin: float, first: bool = False
) -> tuple[bool, str]:
    own_auc = metrics.get("auc")
    if own_auc is not None and own_auc <= CHANCE_AUC:
        # Whatever it is compared with: a model that orders held-out dislikes and likes no better
        # than a coin (or in reverse) is not put in front of users without a person's look.
        return False, (
            f"cross-validated AUC {own_auc:.4f}: it tells disliked films from liked ones no better than "
            f"chance ({CHANCE_AUC}); an analyst decides"
        )
    if first:
        return _first_version_decision(metrics, baseline)
    if baseline is None:
        return True, "first version: nothing active to compare with"
    # Both on the examples the active version never saw (``training.fit_and_evaluate``).
    own = metrics.get("candidate_on_same_holdout") or metrics
    new, old = own.get("auc"), baseline.get("auc")
    if new is None or old is None:
        held_out = own.get("held_out")
        return False, (
            "AUC not available on held-out data"
            + ("" if held_out is None else f" the active version never saw ({held_out:,} examples)")
            + "; an analyst decides"
        )
    gain = metrics.get("auc_gain")
    if "auc_gain" in metrics and gain is None:
        return False, (
            f"held-out AUC {new:.4f} vs active {old:.4f}: too few held-out examples to tell a gain "
            f"from luck (fewer than {model.MIN_ROWS_PER_LABEL} (user, film)s of a label); an analyst decides"
        )
    # The margin and the noise are judged on one measure: the AUCs with one row per (user,
    # film) (DeLong's test's), not the AUCs over rows, where a film shown in several lists
    # counts several times; the note quotes the AUCs the gain is the difference of.
    per_pair = gain is not None and "auc_a" in gain  # (older versions recorded only the gain)
    if per_pair:
        new, old = gain["auc_a"], gain["auc_b"]
    basis = "held-out AUC per (user, film)" if per_pair else "held-out AUC"
    the_gain = "the gain" if per_pair else "the gain per (user, film)"
    if new < old + margin if gain is None else gain["difference"] < margin:
        measured = "" if gain is None else f"{the_gain} of {gain['difference']:+.4f} is "
        return False, (
            f"{basis} {new:.4f} vs active {old:.4f}: {measured}not better by {margin}; an analyst decides"
        )
    if gain is not None and not gain["low"] > 0:
        return False, (
            f"{basis} {new:.4f} vs active {old:.4f}: {the_gain} of {gain['difference']:+.4f} is within "
            f"the noise of the held-out sample (95% interval {gain['low']:+.4f} to {gain['high']:+.4f}, "
            f"p = {gain['p_value']:.2g}, DeLong's test); an analyst decides"
        )
    new_share, old_share = own.get("dislike_top10_share"), baseline.get("dislike_top10_share")
    paired = metrics.get("dislike_top10_test")
    if paired is not None:
        # On the same sampled dislikes: refused when the candidate puts more of them in a top
        # 10 than the active version beyond what chance gives (one film in a hundred is not).
        worse = paired["p_value"] < TOP10_SIGNIFICANCE
    else:
        worse = new_share is not None and old_share is not None and new_share > old_share
    if gain is None:
        passed = f"held-out AUC {new:.4f} beats the active version's {old:.4f} by at least {margin}"
    else:
        passed = (
            f"the AUC gain per (user, film) of {gain['difference']:+.4f} is at least {margin} and beyond "
            f"chance (p = {gain['p_value']:.2g}, DeLong's test; {basis} {new:.4f} vs active {old:.4f})"
        )
    if worse:
        return False, (
            f"{passed}, but {new_share:.1%} of held-out dislikes would still reach a top 10 (active: "
            f"{old_share:.1%}"
            + ("" if paired is None else f"; p = {paired['p_value']:.2g}, McNemar's test")
            + "); an analyst decides"
        )
    return True, passed


def _first_version_decision(metrics: dict, prior: dict | None) -> tuple[bool, str]:
    """The first version replaces the prior model (what serves while no version is active) unless
    it does worse than the prior beyond chance on the same examples."""
    gain = metrics.get("auc_gain")
    if prior is None or gain is None:
        held = (metrics.get("candidate_on_same_holdout") or metrics).get("held_out") or 0
        return True, (
            "first version: nothing active to compare with (too few examples to set it beside the "
            f"prior model: {held:,} held out)"
        )
    figures = (
        f"held-out AUC per (user, film) {gain['auc_a']:.4f} vs the prior model's {gain['auc_b']:.4f} "
        f"(difference {gain['difference']:+.4f}, 95% interval {gain['low']:+.4f} to {gain['high']:+.4f})"
    )
    if gain["high"] < 0:
        return False, (
            f"first version, but worse than the prior model that serves until a version is active: "
            f"{figures}, p = {gain['p_value']:.2g} (DeLong's test); an analyst decides"
        )
    return True, f"first version, not worse than the prior model that served: {figures}"


def _same_as_newest(
    conn: Connection, weights: dict, data, claimed: int, active_id: int | None, margin: float
) -> int | None:
    """The newest version's number if it holds exactly these weights, trained on the same data
    (no example claimed now, the same counts and cutoff), while the active version is that one or
    the one it was compared with (after another activation the same model is judged anew against
    the version now active); else None."""
    if claimed:
        return None
    newest = conn.execute(
        select(
            model_versions.c.version_id,
            model_versions.c.parent_id,
            model_versions.c.weights,
            model_versions.c.examples,
            model_versions.c.settings,
        )
        .order_by(model_versions.c.version_id.desc())
        .limit(1)
    ).first()
    if newest is None or newest.weights != weights or active_id not in (newest.version_id, newest.parent_id):
        return None
    recorded = {k: v for k, v in (newest.examples or {}).items() if k in data.counts}
    settings = newest.settings or {}
    if recorded != data.counts or settings.get("cutoff") != data.cutoff.isoformat(sep=" "):
        return None
    if settings.get("promotion_margin") != margin:  # judged by another rule now
        return None
    return newest.version_id


def _unchanged_stage(conn: Connection, same: int) -> str:
    """The stage of a job that matched version ``same``: what it found, and, when that version
    no longer serves (rolled back from), where to bring it back."""
    status = conn.execute(select(model_versions.c.status).where(model_versions.c.version_id == same)).scalar()
    stage = f"unchanged: nothing new since version {same}, the same model"
    if status == "retired":
        stage += "; it is retired: activate it on Model versions"
    return stage
