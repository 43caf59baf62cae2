"""Retrain jobs: queued once at the threshold, claimed once, examples used or released, dead workers found."""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from conftest import row_counts
from helpers import count, finish_retrain_jobs, rows
from loop_support import ALL_FILMS, COMEDY, HORROR, build_world, dislike, trained_world
from sqlalchemy import event, text

from feedback_core import ConflictError, FeedbackSystem, ValidationError
from feedback_core.schema import audit_log, model_versions, negative_examples, ratings, retrain_jobs


def jobs(system) -> list:
    return rows(system, retrain_jobs, order_by=retrain_jobs.c.job_id)


def examples(system) -> list:
    return rows(system, negative_examples, order_by=negative_examples.c.example_id)


def some_dislikes(system, n: int, first_user: int = 300) -> list[int]:
    """Record ``n`` dislikes of distinct (user, film) pairs; return their ids."""
    ids = []
    for i in range(n):
        ids.append(dislike(system, first_user + i // len(HORROR), HORROR[i % len(HORROR)])["dislike_id"])
    return ids


# ------------------------------------------------------------------ queueing


def test_crossing_the_threshold_queues_exactly_one_job(make_system, clock):
    system = make_system(FEEDBACK_ACCUMULATION_THRESHOLD=5)
    build_world(system)
    some_dislikes(system, 4)
    assert jobs(system) == []
    some_dislikes(system, 1, first_user=400)
    (job,) = jobs(system)
    assert (job.status, job.trigger, job.requested_by, job.created_at) == (
        "queued",
        "threshold",
        "system",
        clock(),
    )
    some_dislikes(system, 30, first_user=500)  # however many follow
    assert [j.job_id for j in jobs(system)] == [job.job_id]
    assert count(system, audit_log, audit_log.c.action == "retrain.queued") == 1

    # Once the job has used the examples, the next crossing queues the next job.
    assert system.run_worker(once=True) == 1
    assert system.get_retrain_job(job.job_id)["status"] == "succeeded"
    some_dislikes(system, 4, first_user=600)
    assert len(jobs(system)) == 1
    some_dislikes(system, 1, first_user=700)
    assert [j.status for j in jobs(system)] == ["succeeded", "queued"]


def test_the_log_says_threshold_only_when_the_threshold_queued_the_job(make_system, caplog, monkeypatch):
    system = make_system(FEEDBACK_ACCUMULATION_THRESHOLD=5)
    build_world(system)
    caplog.set_level(logging.INFO, logger="feedback_core")

    def said(text: str) -> list[str]:
        return [r.getMessage() for r in caplog.records if text in r.getMessage()]

    manual = system.request_retrain("analyst@test")["job_id"]
    assert said("Feedback threshold reached") == []
    assert said(f"Retrain job {manual} queued by analyst@test (manual)")
    finish_retrain_jobs(system)
    some_dislikes(system, 5)
    (line,) = said("Feedback threshold reached")
    assert line.startswith("[FEEDBACK] Feedback threshold reached: retrain job")
    # Dislikes that cross the threshold again while the job trains queue one follow-up job when
    # it ends, said once.
    from feedback_core import training

    real_fit = training.fit_and_evaluate

    def fit_while_dislikes_arrive(*args, **kwargs):
        some_dislikes(system, 5, first_user=900)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(training, "fit_and_evaluate", fit_while_dislikes_arrive)
    caplog.clear()
    job = system.claim_next_job(worker_id="w1")
    assert system.run_job(job["job_id"], worker_id="w1")["status"] == "succeeded"
    (follow_up,) = [j for j in jobs(system) if j.status == "queued"]
    assert (follow_up.trigger, follow_up.requested_by) == ("threshold", "system")
    assert said("Feedback threshold reached") == [
        f"[FEEDBACK] Feedback threshold reached: retrain job {follow_up.job_id} queued (threshold)"
    ]


def test_racing_dislikes_past_the_threshold_queue_one_job(make_system):
    system = make_system(FEEDBACK_ACCUMULATION_THRESHOLD=5)
    build_world(system)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def post(user):
        barrier.wait()
        try:
            for m in HORROR[:3]:
                dislike(system, user, m)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=post, args=(800 + i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert count(system, negative_examples) == 24
    assert len(jobs(system)) == 1


def test_request_retrain_returns_the_job_already_queued(system, clock):
    build_world(system)
    first = system.request_retrain("analyst@test")
    assert first["created"] is True and first["status"] == "queued" and first["trigger"] == "manual"
    assert first["requested_by"] == "analyst@test"
    clock.advance(minutes=5)
    second = system.request_retrain("someone-else@test")
    assert second["created"] is False
    assert second["job_id"] == first["job_id"] and second["requested_by"] == "analyst@test"
    # The audit log keeps who else asked for the job, and when.
    (joined,) = rows(system, audit_log, audit_log.c.action == "retrain.requested")
    assert (joined.actor, joined.entity_id, joined.at) == ("someone-else@test", str(first["job_id"]), clock())
    assert joined.details == {"trigger": "manual", "joined": True}
    # While it runs, still the same job.
    system.claim_next_job(worker_id="w1")
    third = system.request_retrain("someone-else@test")
    assert (third["job_id"], third["status"], third["created"]) == (first["job_id"], "running", False)
    with pytest.raises(ConflictError):
        system.retrain("someone-else@test")
    assert len(jobs(system)) == 1
    finish_retrain_jobs(system)
    assert system.request_retrain("analyst@test")["created"] is True


@pytest.mark.parametrize("actor", ["", "   ", None, 5, "x" * 121])
def test_request_retrain_needs_an_actor(system, actor):
    with pytest.raises(ValidationError):
        system.request_retrain(actor)
    assert jobs(system) == []


# ------------------------------------------------------------------ running


def test_a_successful_job_marks_its_examples_used_with_the_new_version(system, clock, monkeypatch):
    first = trained_world(system)
    ids = some_dislikes(system, 12)
    assert [j.status for j in jobs(system)] == ["succeeded"]  # 12 is under the threshold of 20

    # A dislike that arrives while the job trains is not the job's: it stays pending.
    from feedback_core import training

    real_load = training.load_training_data
    late: list[int] = []

    def load_and_meanwhile_dislike(*args, **kwargs):
        late.append(dislike(system, 999, COMEDY[0])["dislike_id"])
        return real_load(*args, **kwargs)

    monkeypatch.setattr(training, "load_training_data", load_and_meanwhile_dislike)
    clock.advance(hours=2)
    done = system.retrain("analyst@test")
    assert done["status"] == "succeeded", done["error"]
    assert (done["progress"], done["stage"], done["error"]) == (100, "done", None)
    assert done["examples_claimed"] == 12
    version = done["result_version_id"]
    assert version != first
    assert system.get_model_version(version)["examples"]["new_negative_examples"] == 12

    by_dislike = {e.dislike_id: e for e in examples(system)}
    for dislike_id in ids:
        e = by_dislike[dislike_id]
        assert (e.status, e.used_in_version_id, e.job_id, e.used_at) == (
            "used",
            version,
            done["job_id"],
            clock(),
        )
    (late_id,) = late
    assert (by_dislike[late_id].status, by_dislike[late_id].job_id) == ("pending", None)
    assert system.get_untrained_negative_feedback_count() == 1
    (audit,) = rows(
        system,
        audit_log,
        audit_log.c.action == "retrain.succeeded",
        audit_log.c.entity_id == str(done["job_id"]),
    )
    assert audit.details["version_id"] == version


def test_dislikes_that_crossed_the_threshold_while_a_job_trained_queue_the_next_at_its_end(
    make_system, clock, monkeypatch
):
    system = make_system(FEEDBACK_ACCUMULATION_THRESHOLD=3)
    trained_world(system)
    from feedback_core import training

    real_load = training.load_training_data

    def load_and_meanwhile_dislike(*args, **kwargs):
        # Three more while the job trains: the threshold is crossed again, with a job running.
        for film in COMEDY[:3]:
            dislike(system, 998, film)
        return real_load(*args, **kwargs)

    some_dislikes(system, 2)
    monkeypatch.setattr(training, "load_training_data", load_and_meanwhile_dislike)
    done = system.retrain("analyst@test")
    monkeypatch.undo()
    assert done["status"] == "succeeded", done["error"]
    assert system.get_untrained_negative_feedback_count() == 3
    queued = [j for j in jobs(system) if j.status == "queued"]
    assert [(j.trigger, j.requested_by) for j in queued] == [("threshold", "system")]


def test_a_disliked_film_is_no_liked_example_from_another_list(system, clock):
    from feedback_core import training
    from feedback_core.db import read_connection

    trained_world(system)
    user, film = 77, COMEDY[0]
    clock.advance(hours=1)
    first = system.record_recommendation_set(user, [film, COMEDY[1]])
    clock.advance(hours=1)
    second = system.record_recommendation_set(user, [film, COMEDY[2]])
    dislike(system, user, film, "other", recommendation_set_id=second)
    assert first != second
    done = system.retrain("analyst@test")
    assert done["status"] == "succeeded", done["error"]
    with read_connection(system.engine) as conn:
        data = training.load_training_data(conn, (0.1, 2.0), None)
    u, m = data.profiles.user_index[user], data.catalog.index[film]
    mine = (data.users == u) & (data.movies == m)
    assert list(data.labels[mine]) == [0]  # the dislike only, not also the first list's showing
    other = (data.users == u) & (data.movies == data.catalog.index[COMEDY[1]])
    assert list(data.labels[other]) == [1]  # shown and not disliked: a liked example still


def test_training_profiles_hold_only_the_adjustments_in_force_at_the_cutoff(system, clock):
    from feedback_core import training
    from feedback_core.db import read_connection

    trained_world(system)  # ratings over the 20 days before now: the cutoff falls among them
    now = clock.moment
    clock.moment = now - timedelta(days=19)  # an adjustment approved long before the cutoff
    dislike(system, 78, HORROR[1], "wrong_genre")
    (early,) = system.list_adjustments(user_id=78)
    system.approve_adjustment(early["adjustment_id"], "approver@test")
    clock.moment = now
    dislike(system, 77, HORROR[0], "wrong_genre")
    (proposal,) = system.list_adjustments(user_id=77)
    system.approve_adjustment(proposal["adjustment_id"], "approver@test")
    assert system.get_effective_weights(77) == {"genre": {"Horror": pytest.approx(0.85)}}
    with read_connection(system.engine) as conn:
        data = training.load_training_data(conn, (0.1, 2.0), None)
    assert now - timedelta(days=19) < data.cutoff < now
    # Approved after the cutoff (from a dislike that is itself an example): not in the profiles.
    genre = data.profiles.adjust["genre"]
    assert genre[data.profiles.user_index[78]].nnz == 1  # in force at the cutoff
    assert sum(matrix.nnz for matrix in data.profiles.adjust.values()) == 1  # and only that one


def test_a_failed_job_releases_its_examples_and_leaves_the_active_version(system, clock):
    first = trained_world(system)
    # Take every like back (3 stars is neither liked nor disliked): with no shown lists either,
    # nothing is left to learn "liked" from, so training must fail.
    liked = [(r.user_id, r.movie_id, 3.0) for r in rows(system, ratings, ratings.c.rating >= 4)]
    assert liked
    system.record_ratings(liked)
    ids = some_dislikes(system, 10)
    clock.advance(hours=1)
    failed = system.retrain("analyst@test")

    assert failed["status"] == "failed"
    assert failed["error"] == "ValueError: training needs both liked films and negative examples"
    assert failed["finished_at"] is not None and failed["result_version_id"] is None
    for e in examples(system):
        assert e.dislike_id in ids
        assert (e.status, e.job_id, e.used_in_version_id) == ("pending", None, None)
    assert system.get_active_model_version()["version_id"] == first
    assert count(system, model_versions) == 1
    (audit,) = rows(system, audit_log, audit_log.c.action == "retrain.failed")
    assert audit.details["examples_released"] == 10
    assert "training needs both" in audit.details["error"]
    # The failed job no longer blocks the queue.
    assert system.request_retrain("analyst@test")["created"] is True


def test_a_job_that_cannot_train_at_all_fails_cleanly(system):
    # A database with dislikes but not one rating or shown list.
    system.add_movies([{"movie_id": m, "title": f"Film {m}", "genres": ["Horror"]} for m in ALL_FILMS])
    some_dislikes(system, 3)
    failed = system.retrain("analyst@test")
    assert failed["status"] == "failed" and "both liked films" in failed["error"]
    assert system.get_active_model_version() is None
    assert {e.status for e in examples(system)} == {"pending"}


def test_run_worker_runs_what_is_queued_and_stops(system):
    build_world(system)
    assert system.run_worker(once=True) == 0
    job = system.request_retrain("analyst@test")
    assert system.run_worker(once=True) == 1
    assert system.get_retrain_job(job["job_id"])["status"] == "succeeded"
    assert system.get_active_model_version() is not None
    assert system.run_worker(once=True) == 0


# ------------------------------------------------------------------ claiming


def race_to_claim(system, claimers: int) -> list:
    """Let ``claimers`` threads call claim_next_job at the same moment; return what each got."""
    barrier = threading.Barrier(claimers)
    claims: list = []
    errors: list[BaseException] = []

    def claim(i):
        barrier.wait()
        try:
            claims.append(system.claim_next_job(worker_id=f"host:{1000 + i}"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(claimers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return claims


def test_claim_next_job_never_hands_a_job_to_two_claimers(system):
    build_world(system)
    for _round in range(3):
        job = system.request_retrain("analyst@test")
        claims = race_to_claim(system, 8)
        won = [c for c in claims if c is not None]
        assert len(won) == 1 and len(claims) == 8
        assert won[0]["job_id"] == job["job_id"] and won[0]["status"] == "running"
        stored = system.get_retrain_job(job["job_id"])
        assert stored["worker_id"] == won[0]["worker_id"]
        assert system.claim_next_job(worker_id="late") is None
        finish_retrain_jobs(system)


def test_claim_takes_the_oldest_queued_job_and_marks_it_running(system, clock):
    job = system.request_retrain("analyst@test")
    clock.advance(seconds=30)
    claimed = system.claim_next_job(worker_id="box:42")
    assert claimed["job_id"] == job["job_id"]
    assert (claimed["status"], claimed["worker_id"], claimed["stage"]) == ("running", "box:42", "starting")
    assert claimed["started_at"] == claimed["heartbeat_at"] == clock().strftime("%Y-%m-%d %H:%M:%S")
    assert system.claim_next_job(worker_id="box:43") is None


# ------------------------------------------------------------------ dead workers

HANGING_WORKER = """
import sys, threading
from feedback_core import FeedbackSystem, Settings, training

def hang(*args, **kwargs):
    # The examples are claimed; now the worker "trains" until it is killed.
    print("claimed", flush=True)
    threading.Event().wait()

training.load_training_data = hang
system = FeedbackSystem.from_settings(Settings(database_url=sys.argv[1]))
job = system.claim_next_job()
if job is None:
    print("no job", flush=True)
    sys.exit(1)
system.run_job(job["job_id"])
"""


def test_a_job_whose_worker_died_is_failed_and_its_examples_released(system, clock):
    trained_world(system)
    ids = some_dislikes(system, 6)
    job = system.request_retrain("analyst@test")
    worker = subprocess.Popen(
        [sys.executable, "-c", HANGING_WORKER, system.settings.database_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Wait (at most two minutes, so a stuck worker cannot hang the suite) for it to hold the job.
        ready, _, _ = select.select([worker.stdout], [], [], 120)
        assert ready, "the worker never claimed the job"
        line = worker.stdout.readline().strip()
        assert line == "claimed", worker.stderr.read() if worker.poll() is not None else line
        running = system.get_retrain_job(job["job_id"])
        assert running["status"] == "running"
        assert running["worker_id"] == f"{socket.gethostname()}:{worker.pid}"
        assert running["examples_claimed"] == 6
        assert {(e.status, e.job_id) for e in examples(system)} == {("claimed", job["job_id"])}

        # Alive and beating: a worker starting now leaves the job alone.
        assert system.recover_stale_jobs() == []
        assert system.get_retrain_job(job["job_id"])["status"] == "running"
    finally:
        worker.kill()
        worker.wait(timeout=60)
        worker.stdout.close()
        worker.stderr.close()

    assert system.recover_stale_jobs() == [job["job_id"]]
    failed = system.get_retrain_job(job["job_id"])
    assert failed["status"] == "failed"
    assert failed["error"] == f"worker {socket.gethostname()}:{worker.pid} stopped while the job was running"
    assert failed["finished_at"] == clock().strftime("%Y-%m-%d %H:%M:%S")
    for e in examples(system):
        assert e.dislike_id in ids and (e.status, e.job_id) == ("pending", None)
    (audit,) = rows(system, audit_log, audit_log.c.action == "retrain.failed")
    assert audit.details["examples_released"] == 6
    assert system.recover_stale_jobs() == []  # nothing left to recover
    # The request stands: the retrain is queued again and trains on the released examples.
    again = system.list_retrain_jobs(limit=1)[0]
    # Queued again as its requester's.
    assert (again["status"], again["trigger"], again["requested_by"]) == ("queued", "retry", "analyst@test")
    done = system.retrain("analyst@test")
    assert done["job_id"] == again["job_id"]
    assert done["status"] == "succeeded" and done["examples_claimed"] == 6


def test_a_job_on_another_host_is_failed_only_when_its_heartbeat_is_stale(system, clock):
    job = system.request_retrain("analyst@test")
    system.claim_next_job(worker_id="elsewhere.example:4242")
    clock.advance(seconds=59)
    assert system.recover_stale_jobs() == []
    clock.advance(seconds=2)
    assert system.recover_stale_jobs() == [job["job_id"]]
    assert system.get_retrain_job(job["job_id"])["status"] == "failed"


def test_a_live_process_on_this_host_whose_heartbeat_stopped_loses_its_job(system, clock):
    # A process that lives on without running the job (a dashboard whose worker thread died, a
    # hung worker) no longer holds it once its heartbeat is stale.
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        job = system.request_retrain("analyst@test")
        system.claim_next_job(worker_id=f"{socket.gethostname()}:{other.pid}")
        clock.advance(seconds=59)
        assert system.recover_stale_jobs() == []
        clock.advance(seconds=2)
        assert other.poll() is None  # still alive
        assert system.recover_stale_jobs() == [job["job_id"]]
    finally:
        other.kill()
        other.wait(timeout=60)


def test_a_job_marked_for_this_process_id_is_failed_only_once_its_heartbeat_is_stale(system, clock):
    # A worker restarted with its predecessor's host and pid (pid 1 in a container) finds the job
    # marked running for "itself"; two containers with the same host name and pid would each find
    # the other's. Neither is taken for its own: the heartbeat says whether someone runs it.
    job = system.request_retrain("analyst@test")
    with system.engine.begin() as conn:
        conn.execute(
            retrain_jobs.update()
            .where(retrain_jobs.c.job_id == job["job_id"])
            .values(status="running", worker_id=f"{socket.gethostname()}:{os.getpid()}", heartbeat_at=clock())
        )
    clock.advance(seconds=59)
    assert system.recover_stopped_jobs() == {"failed": [], "queued_again": None}
    clock.advance(seconds=2)
    recovered = system.recover_stopped_jobs()
    assert recovered["failed"] == [job["job_id"]]
    assert system.get_retrain_job(job["job_id"])["status"] == "failed"
    again = system.get_retrain_job(recovered["queued_again"])
    assert (again["status"], again["trigger"]) == ("queued", "retry")


def test_a_job_whose_start_failed_does_not_block_retraining(system, clock):
    # Claimed, then its run could not start (the database went away in between): nobody runs it,
    # and once its heartbeat is stale any recovery in this process fails it.
    job = system.request_retrain("analyst@test")
    system.claim_next_job()
    system.close()  # the run that should follow never comes
    assert system.recover_stale_jobs() == []
    clock.advance(seconds=61)
    assert system.recover_stale_jobs() == [job["job_id"]]
    # The retry waits; a person asking for a retrain joins it, which makes it theirs as well.
    joined = system.request_retrain("analyst@test")
    assert (joined["created"], joined["trigger"]) == (False, "manual")


def test_a_stopped_retry_queues_nothing_and_the_next_dislike_past_the_threshold_does(make_system, clock):
    system = make_system(FEEDBACK_ACCUMULATION_THRESHOLD=5)
    build_world(system)
    some_dislikes(system, 4)
    dead = f"{socket.gethostname()}:{2**22 + 17}"  # no live process has this pid
    first = system.request_retrain("analyst@test")["job_id"]
    system.claim_next_job(worker_id=dead)
    retry = system.recover_stopped_jobs()["queued_again"]
    system.claim_next_job(worker_id=dead)
    some_dislikes(system, 1, first_user=400)  # 5 examples wait, but a job holds the slot
    # The retry stopped too: nothing is queued again, not even by the threshold (a run that kills
    # its worker every time would otherwise be queued for ever).
    assert system.recover_stopped_jobs() == {"failed": [retry], "queued_again": None}
    assert [(j.job_id, j.status, j.trigger) for j in jobs(system)] == [
        (first, "failed", "manual"),
        (retry, "failed", "retry"),
    ]
    some_dislikes(system, 1, first_user=500)  # the next dislike past the threshold queues one
    (queued,) = [j for j in jobs(system) if j.status == "queued"]
    assert queued.trigger == "threshold"


INTERRUPTED_WORKER = """
import sys, threading
from feedback_core import FeedbackSystem, Settings, training

def hang(*args, **kwargs):
    print("training", flush=True)
    threading.Event().wait()  # until Ctrl-C

training.load_training_data = hang
system = FeedbackSystem.from_settings(Settings(database_url=sys.argv[1]))
try:
    system.run_worker(once=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


def test_a_worker_stopped_with_ctrl_c_fails_its_job_and_queues_it_again(system):
    trained_world(system)
    some_dislikes(system, 6)
    job = system.request_retrain("analyst@test")
    worker = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED_WORKER, system.settings.database_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([worker.stdout], [], [], 120)
        assert ready and worker.stdout.readline().strip() == "training"
        worker.send_signal(signal.SIGINT)
        out, err = worker.communicate(timeout=60)
    finally:
        worker.kill()
    assert out.strip() == "interrupted", err
    stopped = system.get_retrain_job(job["job_id"])
    assert (stopped["status"], stopped["error"]) == ("failed", "the worker was stopped (Ctrl-C)")
    assert {(e.status, e.job_id) for e in examples(system) if e.status != "used"} == {("pending", None)}
    again = system.list_retrain_jobs(limit=1)[0]
    assert (again["status"], again["trigger"]) == ("queued", "retry")
    assert system.run_worker(once=True) == 1
    assert system.get_retrain_job(again["job_id"])["examples_claimed"] == 6


TERMINATED_WORKER = """
import sys, threading
from feedback_core import training
from feedback_core.cli import main

def hang(*args, **kwargs):
    print("training", flush=True)
    threading.Event().wait()  # until stopped

training.load_training_data = hang
sys.exit(main(["--db", sys.argv[1], "worker", "--poll", "0.1"]))
"""


def test_the_worker_command_stopped_with_sigterm_fails_its_job_and_queues_it_again(system):
    trained_world(system)
    some_dislikes(system, 6)
    job = system.request_retrain("analyst@test")
    worker = subprocess.Popen(
        [sys.executable, "-c", TERMINATED_WORKER, system.settings.database_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while worker.stdout.readline().strip() != "training":  # after the command's own lines
            assert time.monotonic() < deadline and worker.poll() is None, worker.stderr.read()
        worker.terminate()  # SIGTERM, as a service manager stops it
        out, err = worker.communicate(timeout=60)
    finally:
        worker.kill()
    # A stop asked for is no failure: exit 0, as a service manager expects.
    assert worker.returncode == 0 and out.endswith("worker stopped (SIGTERM)\n"), (
        worker.returncode,
        out,
        err,
    )
    stopped = system.get_retrain_job(job["job_id"])
    assert (stopped["status"], stopped["error"]) == ("failed", "the worker was stopped (SIGTERM)")
    again = system.list_retrain_jobs(limit=1)[0]
    assert (again["status"], again["trigger"]) == ("queued", "retry")


def test_training_data_is_read_from_one_snapshot(system, backend):
    # On PostgreSQL, READ COMMITTED takes a snapshot per statement: a rating recorded between two
    # of the training data's statements would be in one part of the data and not in another.
    trained_world(system)
    some_dislikes(system, 6)
    levels = set()

    def note(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "FROM ratings" in statement:
            levels.add(conn.get_isolation_level())

    event.listen(system.engine, "before_cursor_execute", note)
    try:
        assert system.retrain("analyst@test")["status"] == "succeeded"
    finally:
        event.remove(system.engine, "before_cursor_execute", note)
    assert levels == ({"REPEATABLE READ"} if backend == "postgresql" else {"SERIALIZABLE"})


def test_an_example_retracted_before_the_run_read_its_data_is_dropped_not_marked_used(system, monkeypatch):
    from feedback_core import training

    trained_world(system)
    ids = some_dislikes(system, 6)
    job = system.request_retrain("analyst@test")
    system.claim_next_job(job_id=job["job_id"])
    real_load = training.load_training_data

    def retract_then_load(conn, bounds, job_id):
        # The user undoes a dislike after the job claimed its example, before the data are read.
        system.retract_dislike(ids[0], 300)
        return real_load(conn, bounds, job_id)

    monkeypatch.setattr(training, "load_training_data", retract_then_load)
    done = system.run_job(job["job_id"])
    assert done["status"] == "succeeded" and done["examples_claimed"] == 6
    mine = {e.dislike_id: (e.status, e.used_in_version_id) for e in examples(system) if e.dislike_id in ids}
    assert ids[0] not in mine  # not "used in" a version that never saw it
    assert set(mine.values()) == {("used", done["result_version_id"])} and len(mine) == 5
    version = system.get_model_version(done["result_version_id"])
    assert version["examples"]["new_negative_examples"] == 5


def test_a_dead_pid_on_this_host_is_failed_at_once(system):
    # A pid that cannot belong to a live process: the kernel's limit is below 2**22.
    job = system.request_retrain("analyst@test")
    system.claim_next_job(worker_id=f"{socket.gethostname()}:{2**22 + 17}")
    assert system.recover_stale_jobs() == [job["job_id"]]
    own = system.request_retrain("analyst@test")
    system.claim_next_job(worker_id=f"{socket.gethostname()}:{os.getpid()}")
    assert system.recover_stale_jobs() == []  # this very process is alive
    assert system.get_retrain_job(own["job_id"])["status"] == "running"


# ------------------------------------------------------------------ who runs a job


def test_run_job_refuses_a_finished_job_and_changes_nothing(system):
    trained_world(system)
    (job,) = jobs(system)
    before = row_counts(system)
    with pytest.raises(ConflictError) as err:
        system.run_job(job.job_id)
    assert "succeeded, not running" in err.value.message
    assert jobs(system) == [job] and row_counts(system) == before


def test_run_job_refuses_a_job_another_worker_claimed(system):
    build_world(system)
    some_dislikes(system, 3)
    job = system.request_retrain("analyst@test")
    system.claim_next_job(worker_id="elsewhere.example:4242")
    held = jobs(system)
    with pytest.raises(ConflictError) as err:
        system.run_job(job["job_id"])
    assert "claimed by worker elsewhere.example:4242" in err.value.message
    assert jobs(system) == held
    assert {(e.status, e.job_id) for e in examples(system)} == {("pending", None)}
    with pytest.raises(ConflictError):
        system.run_job(job["job_id"], worker_id="elsewhere.example:4243")
    assert jobs(system) == held


def test_a_claimed_job_run_twice_at_once_trains_once(make_system, monkeypatch):
    system, other = make_system(), make_system()  # e.g. a worker thread and a script
    trained_world(system)
    ids = some_dislikes(system, 5)
    job = system.request_retrain("analyst@test")
    system.claim_next_job(job_id=job["job_id"])

    # The first run holds inside training while the second one is asked for.
    from feedback_core import training

    real_fit = training.fit_and_evaluate
    inside, go = threading.Event(), threading.Event()

    def fit_and_hold(*args, **kwargs):
        if threading.current_thread() is first:
            inside.set()
            assert go.wait(120)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(training, "fit_and_evaluate", fit_and_hold)
    results: list = []
    first = threading.Thread(target=lambda: results.append(system.run_job(job["job_id"])))
    first.start()
    try:
        assert inside.wait(120), "the first run never reached training"
        held = jobs(system)
        with pytest.raises(ConflictError) as err:
            other.run_job(job["job_id"])
        assert "already being run" in err.value.message
        assert jobs(system) == held
    finally:
        go.set()
        first.join(timeout=120)
    (done,) = results
    assert (done["status"], done["error"], done["examples_claimed"]) == ("succeeded", None, 5)
    assert [v.version_id for v in rows(system, model_versions, model_versions.c.version_id > 1)] == [
        done["result_version_id"]
    ]
    used = rows(system, negative_examples, negative_examples.c.dislike_id.in_(ids))
    assert {(e.status, e.used_in_version_id) for e in used} == {("used", done["result_version_id"])}


def test_a_job_failed_by_recovery_while_it_trained_stays_as_recovery_left_it(system, clock, monkeypatch):
    from feedback_core import jobs as jobs_module

    trained_world(system)
    some_dislikes(system, 4)
    job = system.request_retrain("analyst@test")
    system.claim_next_job(worker_id="elsewhere.example:4242")
    from feedback_core import training

    real_fit = training.fit_and_evaluate

    def fit_while_declared_dead(*args, **kwargs):
        # Its heartbeat looks stale to another process (which does not run it: this process's
        # recovery leaves its own runs alone), which fails the job and frees its examples.
        clock.advance(minutes=5)
        with jobs_module._RUNNING_LOCK:
            own = set(jobs_module._RUNNING_HERE)
            jobs_module._RUNNING_HERE.clear()
        try:
            assert system.recover_stale_jobs() == [job["job_id"]]
        finally:
            with jobs_module._RUNNING_LOCK:
                jobs_module._RUNNING_HERE.update(own)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(training, "fit_and_evaluate", fit_while_declared_dead)
    done = system.run_job(job["job_id"], worker_id="elsewhere.example:4242")
    assert (done["status"], done["result_version_id"]) == ("failed", None)
    assert done["error"] == "worker elsewhere.example:4242 stopped while the job was running"
    assert count(system, audit_log, audit_log.c.action == "retrain.failed") == 1
    assert count(system, model_versions) == 1
    assert {(e.status, e.job_id) for e in examples(system)} == {("pending", None)}


def test_this_process_never_fails_a_job_it_is_running_however_stale_its_heartbeat(system, clock, monkeypatch):
    # A heartbeat can stall (a thread starved, a write lock held long): the process that runs the
    # job knows it runs it, and its own recovery (the dashboard's Retrain page polls it) leaves it.
    trained_world(system)
    some_dislikes(system, 4)
    job = system.request_retrain("analyst@test")
    system.claim_next_job()
    from feedback_core import training

    real_fit = training.fit_and_evaluate
    seen = []

    def fit_with_a_stale_heartbeat(*args, **kwargs):
        clock.advance(minutes=5)
        seen.append(system.recover_stale_jobs())
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(training, "fit_and_evaluate", fit_with_a_stale_heartbeat)
    done = system.run_job(job["job_id"])
    assert seen == [[]]
    assert done["status"] == "succeeded" and done["result_version_id"] is not None
    # Once the run is over, nothing of it is left to protect a later job with the same number.
    from feedback_core import jobs as jobs_module

    assert not jobs_module._RUNNING_HERE


def test_a_heartbeat_held_behind_a_lock_is_seen_by_the_recovery_that_waited_for_it(
    system, backend, monkeypatch
):
    # PostgreSQL: the recovery reads the heartbeat stale, then waits for the job's row while the
    # heartbeat waits too; once the row is free the heartbeat commits first, and the recovery,
    # reading the row again under its lock, sees it and leaves the job alone.
    if backend != "postgresql":
        pytest.skip("SQLite's write lock already orders the two")
    from feedback_core import jobs as jobs_module
    from feedback_core.db import write_transaction

    monkeypatch.setattr(jobs_module, "STALE_AFTER_SECONDS", 2.0)
    real = FeedbackSystem.from_url(system.settings.database_url)  # the real clock: real waits
    job = real.request_retrain("analyst@test")["job_id"]
    real.claim_next_job(worker_id="elsewhere.example:7", job_id=job)
    locker = real.engine.connect()
    held = locker.begin()
    locker.execute(text("SELECT 1 FROM retrain_jobs WHERE job_id = :j FOR UPDATE"), {"j": job})
    outcome = {}

    def heartbeat():
        time.sleep(1.0)
        with write_transaction(real.engine) as conn:
            conn.execute(
                retrain_jobs.update()
                .where(*jobs_module._running_for(job, "elsewhere.example:7"))
                .values(heartbeat_at=real.now())
            )

    def recovery():
        time.sleep(2.5)  # the heartbeat seen last is 2.5 s old: stale
        outcome["failed"] = real.recover_stale_jobs()

    threads = [threading.Thread(target=heartbeat), threading.Thread(target=recovery)]
    for t in threads:
        t.start()
    time.sleep(3.5)
    held.rollback()
    locker.close()
    for t in threads:
        t.join(timeout=30)
    assert outcome["failed"] == []
    assert real.get_retrain_job(job)["status"] == "running"
    real.close()


def test_a_retrain_with_nothing_new_still_queues_the_next_job_when_dislikes_came_in(make_system, monkeypatch):
    system = make_system(FEEDBACK_ACCUMULATION_THRESHOLD=3)
    trained_world(system)
    job = system.request_retrain("analyst@test")["job_id"]
    system.claim_next_job(job_id=job)
    from feedback_core import training

    real_load = training.load_training_data

    def load_then_dislikes(*args, **kwargs):
        data = real_load(*args, **kwargs)
        some_dislikes(system, 4, first_user=700)  # they come in while the job trains
        return data

    monkeypatch.setattr(training, "load_training_data", load_then_dislikes)
    done = system.run_job(job)
    assert (done["status"], done["result_version_id"]) == ("succeeded", None)  # its data: nothing new
    (queued,) = [j for j in jobs(system) if j.status == "queued"]  # but the 4 dislikes wait for one
    assert queued.trigger == "threshold"


def test_the_same_model_is_judged_anew_after_another_version_was_activated(system):
    v1 = trained_world(system)
    dislike(system, 301, HORROR[0])
    v2 = system.retrain("analyst@test")["result_version_id"]
    system.activate_model_version(v2, "analyst@test")
    system.activate_model_version(v1, "analyst@test")  # rolled back: v2 was judged against v1
    dislike(system, 302, HORROR[1])
    v3 = system.retrain("analyst@test")["result_version_id"]
    system.activate_model_version(v3, "analyst@test")
    # Nothing new since v3, but v3 is now the active one: a candidate trained now is compared with
    # it (the Retrain page's advice after an activation), so it is recorded, not skipped.
    again = system.retrain("analyst@test")
    assert again["result_version_id"] is None  # v3 is the newest and was compared with v1...
    system.activate_model_version(v1, "analyst@test")
    rolled_back = system.retrain("analyst@test")  # ...and v1 is active again
    assert rolled_back["result_version_id"] is None
    assert rolled_back["stage"] == (
        f"unchanged: nothing new since version {v3}, the same model; it is retired: activate it on Model versions"
    )
    system.activate_model_version(v2, "analyst@test")
    fresh = system.retrain("analyst@test")["result_version_id"]  # active v2: not what v3 saw
    assert fresh is not None and system.get_model_version(fresh)["parent_id"] == v2


def test_a_retry_a_person_joined_is_queued_again_when_it_stops(system):
    dead = f"{socket.gethostname()}:{2**22 + 17}"
    system.request_retrain("alice@test")
    system.claim_next_job(worker_id=dead)
    retry = system.recover_stopped_jobs()["queued_again"]
    assert system.request_retrain("bob@test")["job_id"] == retry  # bob joins the waiting retry
    system.claim_next_job(worker_id=dead)
    again = system.recover_stopped_jobs()["queued_again"]  # bob's request stands
    assert again is not None and system.get_retrain_job(again)["trigger"] == "retry"


def test_a_run_that_cannot_start_its_heartbeat_fails_and_holds_nothing(system, monkeypatch):
    from feedback_core import jobs as jobs_module

    trained_world(system)
    some_dislikes(system, 3)
    job = system.request_retrain("analyst@test")
    system.claim_next_job()

    class NoThreads(threading.Thread):
        def start(self):
            raise RuntimeError("can't start new thread")

    monkeypatch.setattr(jobs_module.threading, "Thread", NoThreads)
    done = system.run_job(job["job_id"])
    assert (done["status"], done["error"]) == ("failed", "RuntimeError: can't start new thread")
    assert not jobs_module._RUNNING_HERE  # nothing left to shield a job nobody runs
    assert {(e.status, e.job_id) for e in examples(system) if e.status != "used"} == {("pending", None)}


def test_a_person_who_joined_a_running_retry_keeps_their_request_when_it_is_stopped(system, monkeypatch):
    from feedback_core import training

    trained_world(system)
    some_dislikes(system, 3)
    dead = f"{socket.gethostname()}:{2**22 + 17}"
    system.request_retrain("alice@test")
    system.claim_next_job(worker_id=dead)
    retry = system.recover_stopped_jobs()["queued_again"]
    system.claim_next_job(job_id=retry)

    def join_then_stop(*args, **kwargs):
        assert system.request_retrain("bob@test")["job_id"] == retry  # bob joins it while it runs
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "fit_and_evaluate", join_then_stop)
    with pytest.raises(KeyboardInterrupt):
        system.run_job(retry)
    assert system.get_retrain_job(retry)["status"] == "failed"
    (queued,) = [j for j in jobs(system) if j.status == "queued"]  # bob's request stands
    assert queued.trigger == "retry" and queued.job_id > retry


def test_a_changed_promotion_margin_judges_the_same_model_anew(system):
    import dataclasses

    trained_world(system)
    dislike(system, 301, HORROR[0])
    newest = system.retrain("analyst@test")["result_version_id"]
    assert system.retrain("analyst@test")["result_version_id"] is None  # nothing new
    stricter = FeedbackSystem(
        system.engine, dataclasses.replace(system.settings, promotion_margin=0.5), clock=system._clock
    )
    again = stricter.retrain("analyst@test")["result_version_id"]
    assert again is not None and again > newest
    assert stricter.get_model_version(again)["settings"]["promotion_margin"] == 0.5


# ------------------------------------------------------------------ promotion and rollback


def test_a_rollback_while_a_job_trains_is_not_overridden(system, monkeypatch):
    from feedback_core import jobs as jobs_module

    # Every new version beats the one it was compared with.
    monkeypatch.setattr(jobs_module, "_promotion_decision", lambda *args, **kwargs: (True, "better"))
    v1 = trained_world(system)
    some_dislikes(system, 4)
    v2 = system.retrain("analyst@test")["result_version_id"]
    assert system.get_active_model_version()["version_id"] == v2
    some_dislikes(system, 4, first_user=400)

    from feedback_core import training

    real_fit = training.fit_and_evaluate

    def fit_while_rolled_back(*args, **kwargs):
        fitted = real_fit(*args, **kwargs)
        system.activate_model_version(v1, "analyst@test", reason="rollback: v2 is bad")
        return fitted

    monkeypatch.setattr(training, "fit_and_evaluate", fit_while_rolled_back)
    done = system.retrain("analyst@test")
    assert done["status"] == "succeeded", done["error"]
    v3 = system.get_model_version(done["result_version_id"])
    assert system.get_active_model_version()["version_id"] == v1  # the rollback stands
    assert (v3["status"], v3["parent_id"], v3["activated_at"]) == ("candidate", v2, None)
    promotion = v3["metrics"]["promotion"]
    assert promotion["promoted"] is False
    assert promotion["reason"].startswith(
        f"not activated: the active version changed from version {v2} to version {v1} while this job trained"
    )
    (audit,) = rows(
        system,
        audit_log,
        audit_log.c.action == "retrain.succeeded",
        audit_log.c.entity_id == str(done["job_id"]),
    )
    assert audit.details["promoted"] is False and audit.details["reason"] == promotion["reason"]
    # With nothing changed meanwhile, the next job is promoted as before.
    monkeypatch.setattr(training, "fit_and_evaluate", real_fit)
    some_dislikes(system, 4, first_user=500)
    v4 = system.retrain("analyst@test")["result_version_id"]
    assert system.get_active_model_version()["version_id"] == v4
