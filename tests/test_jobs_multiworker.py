"""Several retrain workers on one PostgreSQL database: every job runs exactly once.

Three real ``feedback-core worker`` processes poll the same queue while the test submits ten
retrain jobs. The schema allows one queued or running retrain at a time (the unique
``active_slot``: a second queued job would only retrain on the same examples), so ten jobs
cannot be queued at once; they are submitted one after another, each as soon as the previous
one has finished, while all three workers are polling and race to claim it (``FOR UPDATE SKIP
LOCKED`` plus the ``status = 'queued'`` guard of the claiming UPDATE).

Runs only on PostgreSQL (``FEEDBACK_TEST_PG_URL``): SQLite serialises writers, so several
worker processes there prove nothing about row locks.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import PG_SKIP, PG_URL, _fresh_pg
from helpers import rows
from loop_support import COMEDY, HORROR, build_world, dislike

from feedback_core import FeedbackSystem, Settings
from feedback_core.schema import audit_log, model_versions, negative_examples, retrain_jobs

pytestmark = pytest.mark.skipif(not PG_URL, reason=PG_SKIP)

WORKERS, JOBS, DISLIKES_PER_JOB = 3, 10, 2
WORKER_COMMAND = Path(sys.executable).with_name("feedback-core")


@pytest.fixture
def system():
    settings = Settings(database_url=PG_URL, FEEDBACK_ACCUMULATION_THRESHOLD=1_000_000)
    _fresh_pg(settings).dispose()
    system = FeedbackSystem.from_settings(settings)
    yield system
    system.close()


@pytest.fixture
def workers(system):
    """Three worker processes polling the queue every 50 ms; their pids."""
    env = {**os.environ, "FEEDBACK_DB_URL": system.settings.database_url}
    command = [str(WORKER_COMMAND), "worker", "--poll", "0.05"]
    started = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(WORKERS)
    ]
    try:
        for worker in started:
            # Each says it is waiting once it has recovered stale jobs and starts polling.
            ready, _, _ = select.select([worker.stdout], [], [], 60)
            line = worker.stdout.readline() if ready else ""
            assert "waiting for retrain jobs" in line, line or worker.stderr.read()
        yield [w.pid for w in started]
    finally:
        for worker in started:
            worker.terminate()
        for worker in started:
            worker.wait(timeout=30)
            worker.stdout.close()
            worker.stderr.close()


def wait_until_finished(system: FeedbackSystem, job_id: int, timeout_s: float = 40.0) -> dict:
    """Poll the job until it has succeeded or failed (a bounded wait, not a sleep for time)."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = system.get_retrain_job(job_id)
        if job["status"] in ("succeeded", "failed"):
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {job['status']} after {timeout_s} s"
        time.sleep(0.05)


def test_three_workers_run_ten_jobs_each_exactly_once(system, workers):
    build_world(system)
    submitted, dislike_ids = [], []
    for i in range(JOBS):
        for k in range(DISLIKES_PER_JOB):  # new examples for this job to claim
            film = (HORROR + COMEDY)[(i * DISLIKES_PER_JOB + k) % len(HORROR + COMEDY)]
            dislike_ids.append(dislike(system, 500 + i, film)["dislike_id"])
        job = system.request_retrain(f"tester-{i}")
        assert job["created"] and job["status"] in ("queued", "running")
        submitted.append(job["job_id"])
        done = wait_until_finished(system, job["job_id"])
        assert done["status"] == "succeeded", done["error"]

    jobs = {j.job_id: j for j in rows(system, retrain_jobs)}
    assert sorted(jobs) == sorted(submitted)
    worker_ids = {f"{socket.gethostname()}:{pid}" for pid in workers}
    for job_id in submitted:
        job = jobs[job_id]
        assert (job.status, job.active_slot, job.examples_claimed) == ("succeeded", None, DISLIKES_PER_JOB)
        assert job.worker_id in worker_ids
        assert job.started_at is not None and job.finished_at >= job.started_at
    # Each job ran once: one version per job, one success record per job, and each example
    # was used by exactly the version of the job that claimed it.
    versions = rows(system, model_versions)
    assert Counter(v.examples["job_id"] for v in versions) == Counter(submitted)
    assert {jobs[j].result_version_id for j in submitted} == {v.version_id for v in versions}
    succeeded = rows(system, audit_log, audit_log.c.action == "retrain.succeeded")
    assert Counter(int(a.entity_id) for a in succeeded) == Counter(submitted)
    version_of_job = {j: jobs[j].result_version_id for j in submitted}
    examples = rows(system, negative_examples)
    assert sorted(e.dislike_id for e in examples) == sorted(dislike_ids)
    for e in examples:
        assert e.status == "used" and e.used_in_version_id == version_of_job[e.job_id]
    # The workers really shared the queue (all ten going to one of three: odds of 1 in 19,683).
    assert len({jobs[j].worker_id for j in submitted}) >= 2
