"""A job whose worker died never blocks retraining: it is failed when a retrain is asked for or
the worker polls, not only when a worker starts."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest
from helpers import rows
from loop_support import HORROR, dislike, films, trained_world
from sqlalchemy import update

from feedback_core.schema import audit_log, negative_examples, retrain_jobs

# A pid that cannot belong to a live process: the kernel's limit is below 2**22.
DEAD_WORKER = f"{socket.gethostname()}:{2**22 + 17}"


def job_of_a_dead_worker(system, dislikes: int = 6) -> tuple[int, list[int]]:
    """Queue a job, let a worker that then died claim it and its examples; return (job, dislikes)."""
    ids = [dislike(system, 300, film)["dislike_id"] for film in HORROR[:dislikes]]
    job_id = system.request_retrain("analyst@test")["job_id"]
    assert system.claim_next_job(worker_id=DEAD_WORKER, job_id=job_id)["worker_id"] == DEAD_WORKER
    # What the worker's run_job did before it died: take the pending examples for its job.
    with system.engine.begin() as conn:
        conn.execute(
            update(negative_examples)
            .where(negative_examples.c.status == "pending")
            .values(status="claimed", job_id=job_id)
        )
    return job_id, ids


def assert_failed_and_released(system, job_id: int, dislikes: int) -> None:
    dead = system.get_retrain_job(job_id)
    assert dead["status"] == "failed"
    assert dead["error"] == f"worker {DEAD_WORKER} stopped while the job was running"
    assert rows(system, negative_examples, negative_examples.c.job_id == job_id) == []  # released
    (audit,) = rows(system, audit_log, audit_log.c.action == "retrain.failed")
    assert (audit.entity_id, audit.details["examples_released"]) == (str(job_id), dislikes)


def test_request_retrain_fails_the_job_of_a_dead_worker_and_queues_a_new_one(system):
    trained_world(system)
    dead, _ = job_of_a_dead_worker(system)
    fresh = system.request_retrain("analyst@test")
    # The dead job's request stands: it is queued again (its requester's), and this request
    # joins it, which makes it a person's request again (stopped in turn, it would be requeued).
    assert (fresh["created"], fresh["status"], fresh["trigger"]) == (False, "queued", "manual")
    assert fresh["requested_by"] == "analyst@test"
    assert fresh["job_id"] != dead
    assert_failed_and_released(system, dead, 6)
    assert system.get_untrained_negative_feedback_count() == 6


def test_a_dislike_retracted_while_its_example_was_claimed_stays_out_of_the_pool(system):
    trained_world(system)
    dead, ids = job_of_a_dead_worker(system)
    system.retract_dislike(ids[0], user_id=300)  # the example is the job's: the retraction leaves it
    assert len(rows(system, negative_examples, negative_examples.c.dislike_id == ids[0])) == 1
    fresh = system.request_retrain("analyst@test")  # fails the dead job, releasing its examples
    assert fresh["job_id"] != dead
    assert rows(system, negative_examples, negative_examples.c.dislike_id == ids[0]) == []
    assert system.get_untrained_negative_feedback_count() == len(ids) - 1
    (audit,) = rows(system, audit_log, audit_log.c.action == "retrain.failed")
    assert audit.details["examples_released"] == len(ids) - 1


def test_retrain_after_a_dead_worker_trains_on_its_released_examples(system):
    trained_world(system)
    dead, ids = job_of_a_dead_worker(system)
    done = system.retrain("analyst@test")  # refused for ever ("already running") before
    assert done["status"] == "succeeded", done["error"]
    assert done["examples_claimed"] == len(ids)
    assert_failed_and_released(system, dead, len(ids))
    mine = rows(system, negative_examples, negative_examples.c.dislike_id.in_(ids))
    assert {(e.status, e.job_id) for e in mine} == {("used", done["job_id"])}


def test_the_threshold_queues_a_job_once_a_dead_workers_job_is_failed(make_system):
    system = make_system(FEEDBACK_ACCUMULATION_THRESHOLD=3)
    system.add_movies(films())
    dead, _ = job_of_a_dead_worker(system, dislikes=2)
    dislike(system, 301, HORROR[0])  # 3 examples now, but the dead job still holds the slot
    # Failing it queues its retrain again, which takes the 3 examples: nothing more to queue.
    assert system.should_retrain_from_feedback(queue=True) is False
    assert_failed_and_released(system, dead, 2)
    assert [(j.status, j.trigger) for j in rows(system, retrain_jobs, order_by=retrain_jobs.c.job_id)] == [
        ("failed", "manual"),
        ("queued", "retry"),
    ]
    # A retry that dies queues nothing; the next check past the threshold queues the next job.
    system.claim_next_job(worker_id=DEAD_WORKER)
    assert system.should_retrain_from_feedback(queue=True) is True
    assert [(j.status, j.trigger) for j in rows(system, retrain_jobs, order_by=retrain_jobs.c.job_id)] == [
        ("failed", "manual"),
        ("failed", "retry"),
        ("queued", "threshold"),
    ]


def test_a_polling_worker_fails_a_job_whose_worker_stopped_after_it_started(system, clock, monkeypatch):
    # The worker on another host holds a job with a fresh heartbeat when our worker starts.
    job = system.request_retrain("analyst@test")
    system.claim_next_job(worker_id="elsewhere.example:4242", job_id=job["job_id"])
    polled = threading.Event()
    real_claim = system.claim_next_job

    def claim_and_tell(*args, **kwargs):
        found = real_claim(*args, **kwargs)
        polled.set()
        return found

    monkeypatch.setattr(system, "claim_next_job", claim_and_tell)
    stop = threading.Event()
    worker = threading.Thread(target=system.run_worker, kwargs={"poll_seconds": 0.01, "stop": stop})
    worker.start()
    try:
        assert polled.wait(60), "the worker never polled"
        assert system.get_retrain_job(job["job_id"])["status"] == "running"  # alive at start-up
        clock.advance(minutes=5)  # then its heartbeat stops
        deadline = time.monotonic() + 60
        while system.get_retrain_job(job["job_id"])["status"] == "running":
            assert time.monotonic() < deadline, "the polling worker never failed the stale job"
            time.sleep(0.01)
    finally:
        stop.set()
        worker.join(timeout=60)
    failed = system.get_retrain_job(job["job_id"])
    assert failed["status"] == "failed"
    assert failed["error"] == "worker elsewhere.example:4242 stopped while the job was running"


@pytest.mark.parametrize("worker_id", [f"{socket.gethostname()}:{os.getpid()}", "w1"])
def test_asking_for_a_retrain_leaves_a_live_workers_job_alone(system, worker_id):
    job = system.request_retrain("analyst@test")
    system.claim_next_job(worker_id=worker_id, job_id=job["job_id"])
    again = system.request_retrain("someone-else@test")
    assert (again["job_id"], again["status"], again["created"]) == (job["job_id"], "running", False)
    assert system.should_retrain_from_feedback(queue=True) is False
    assert rows(system, audit_log, audit_log.c.action == "retrain.failed") == []
