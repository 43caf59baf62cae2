"""Faults (issue 7): a retrain worker killed with SIGKILL, and the database going away under the
API and the dashboard.

``test_jobs.py`` already kills a worker that hangs before it loads any data and recovers the job
by calling ``recover_stale_jobs`` itself. Here the worker trains for real and is killed at the two
moments that matter, right after the fit and inside the transaction that stores the new version,
and recovery is what the next worker to start does (the ``feedback-core worker`` command).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
from helpers import count, rows
from loop_support import COMEDY, HORROR, dislike, trained_world
from reliability_support import (
    held_api_request,
    held_retrain_worker,
    private_cluster_or_skip,
    process_context,
    run_cli,
    start_process,
)
from streamlit.testing.v1 import AppTest

from dashboard import data
from feedback_core import FeedbackSystem, lookups, queries
from feedback_core.api import ApiConfig, create_app
from feedback_core.apikeys import create_api_key
from feedback_core.errors import DatabaseUnavailableError
from feedback_core.schema import (
    audit_log,
    model_versions,
    negative_examples,
    ratings,
    recommendation_sets,
    retrain_jobs,
    user_dislikes,
)

APP = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
THRESHOLD = 10


# ---------------------------------------------------------------- SIGKILL mid-retrain


def kill_after_commit(db_url: str, moment, path: str, body: dict, headers: dict) -> None:
    """Send a request in a child process and SIGKILL it between its commit and storing its answer."""
    ctx = process_context()
    reached = ctx.Queue()
    child = ctx.Process(
        target=held_api_request, args=(db_url, moment, path, body, headers, reached), daemon=True
    )
    start_process(child)
    try:
        what, pid = reached.get(timeout=120)
        assert what == "committed", pid
        os.kill(pid, signal.SIGKILL)
        child.join(timeout=60)
    finally:
        if child.is_alive():
            child.kill()
            child.join(timeout=10)
    assert child.exitcode == -signal.SIGKILL


def test_a_request_committed_before_its_worker_died_is_never_carried_out_again(make_system, db_url, clock):
    system = make_system()
    system.add_movies([{"movie_id": m, "title": f"Film {m}", "genres": ["Drama"]} for m in range(1, 6)])
    _, key = create_api_key(system.engine, "recommender", "service", system.now())
    who = {"Authorization": f"Bearer {key}", "X-User-ID": "4"}
    shown = {**who, "Idempotency-Key": "list-1"}
    kill_after_commit(db_url, clock(), "/api/recommendation-sets", {"items": [1, 2, 3]}, shown)
    rated = {**who, "Idempotency-Key": "rating-A"}
    kill_after_commit(db_url, clock(), "/api/ratings", {"movie_id": 1, "rating": 2}, rated)
    assert count(system, recommendation_sets) == 1 and [r.rating for r in rows(system, ratings)] == [2.0]
    client = create_app(system=system, config=ApiConfig(key_cache_seconds=0)).test_client()
    # A later rating of the same film, acknowledged while the first's claim waits.
    later = client.post(
        "/api/ratings", json={"movie_id": 1, "rating": 5}, headers={**who, "Idempotency-Key": "rating-B"}
    )
    assert later.status_code == 201
    before = system.count_rows()
    soon = client.post("/api/recommendation-sets", json={"items": [1, 2, 3]}, headers=shown)
    assert soon.status_code == 409 and soon.get_json()["error"]["code"] == "request_in_progress"
    clock.advance(minutes=2)  # the claims are stale: a crashed request's would be taken over
    for path, body, headers in (
        ("/api/recommendation-sets", {"items": [1, 2, 3]}, shown),
        ("/api/ratings", {"movie_id": 1, "rating": 2}, rated),
    ):
        retry = client.post(path, json=body, headers=headers)
        assert retry.status_code == 409, retry.get_json()
        error = retry.get_json()["error"]
        assert (error["code"], error["field"]) == ("answer_lost", "Idempotency-Key")
        assert "carried out" in error["message"] and "not carried out again" in error["message"]
    assert system.count_rows() == before  # no second list, and the acknowledged 5 stands
    assert [r.rating for r in rows(system, ratings)] == [5.0]
    # The same key with another body is still another request.
    other = client.post("/api/recommendation-sets", json={"items": [4, 5]}, headers=shown)
    assert other.get_json()["error"]["code"] == "idempotency_key_reused"


def kill_worker_at(db_url: str, point: str, job_id: int, system) -> int:
    """Start a real worker on the queued job, SIGKILL it once it holds at ``point``; return its pid."""
    ctx = process_context()
    reached = ctx.Queue()
    worker = ctx.Process(target=held_retrain_worker, args=(db_url, point, reached), daemon=True)
    start_process(worker)
    try:
        what, pid = reached.get(timeout=120)
        assert what == point, what
        held = system.get_retrain_job(job_id)
        assert (held["status"], held["worker_id"]) == ("running", f"{socket.gethostname()}:{pid}")
        if point == "training":
            assert held["stage"] == "training"
        # Even while the version is being written, nobody sees it: it is not committed.
        assert count(system, model_versions) == 1
        os.kill(pid, signal.SIGKILL)
        worker.join(timeout=60)
    finally:
        if worker.is_alive():
            worker.kill()
            worker.join(timeout=10)
    assert worker.exitcode == -signal.SIGKILL
    return pid


def assert_nothing_half_written(system, first_version: int, job_id: int) -> None:
    assert system.get_active_model_version()["version_id"] == first_version
    assert [v.version_id for v in rows(system, model_versions)] == [first_version]
    assert system.get_retrain_job(job_id)["status"] == "running"  # until a worker notices
    mine = rows(system, negative_examples, negative_examples.c.job_id == job_id)
    assert mine and {(e.status, e.used_in_version_id, e.used_at) for e in mine} == {("claimed", None, None)}
    assert count(system, audit_log, audit_log.c.action == "retrain.succeeded") == 1  # the first version's


def test_a_worker_killed_mid_retrain_leaves_no_trace_and_its_examples_train_next(make_system, db_url):
    system = make_system(FEEDBACK_ACCUMULATION_THRESHOLD=THRESHOLD)
    first = trained_world(system)
    ids = [dislike(system, 500 + i // 8, HORROR[i % 8])["dislike_id"] for i in range(THRESHOLD)]
    (job_a,) = rows(system, retrain_jobs, retrain_jobs.c.status == "queued")  # queued by the threshold

    # 1. Killed right after the fit.
    dead = kill_worker_at(db_url, "training", job_a.job_id, system)
    assert_nothing_half_written(system, first, job_a.job_id)

    # Recovery (what every worker's poll and every retrain request does first) marks the job
    # failed, releases its examples and queues the retrain again: the request stands.
    assert system.recover_stale_jobs() == [job_a.job_id]
    failed = system.get_retrain_job(job_a.job_id)
    assert failed["status"] == "failed"
    assert failed["error"] == f"worker {socket.gethostname()}:{dead} stopped while the job was running"
    released = rows(system, negative_examples)
    assert len(released) == THRESHOLD and {(e.status, e.job_id) for e in released} == {("pending", None)}
    (audit,) = rows(system, audit_log, audit_log.c.action == "retrain.failed")
    assert audit.details["examples_released"] == THRESHOLD
    (job_b,) = rows(system, retrain_jobs, retrain_jobs.c.status == "queued")
    assert (job_b.trigger, job_b.requested_by) == ("retry", "system")

    # 2. The retry's worker is killed inside the transaction storing the version.
    ids.append(dislike(system, 600, COMEDY[0])["dislike_id"])
    kill_worker_at(db_url, "writing", job_b.job_id, system)
    assert_nothing_half_written(system, first, job_b.job_id)
    assert len(rows(system, negative_examples, negative_examples.c.job_id == job_b.job_id)) == THRESHOLD + 1

    # 3. The next worker to start (`feedback-core worker`, a new process) recovers that job too. A
    # retry is not retried, nor replaced (a run that kills its worker would loop).
    ctx = process_context()
    out = ctx.Queue()
    cli = ctx.Process(target=run_cli, args=(["--db", db_url, "worker", "--once"], out), daemon=True)
    start_process(cli)
    code, printed = out.get(timeout=120)
    cli.join(timeout=30)
    assert code == 0, printed
    assert f"marked failed (their worker had died): jobs [{job_b.job_id}]" in printed
    assert "ran 0 job(s)" in printed
    assert system.get_retrain_job(job_b.job_id)["status"] == "failed"
    assert rows(system, retrain_jobs, retrain_jobs.c.status == "queued") == []
    # The next dislike crosses the threshold again; the next training uses every example, once.
    ids.append(dislike(system, 601, COMEDY[1])["dislike_id"])
    assert system.run_worker(once=True) == 1
    (job_c,) = rows(
        system, retrain_jobs, retrain_jobs.c.status == "succeeded", retrain_jobs.c.job_id > job_b.job_id
    )
    assert job_c.trigger == "threshold"
    assert job_c.examples_claimed == len(ids) == THRESHOLD + 2
    version = system.get_model_version(job_c.result_version_id)
    assert version["examples"]["new_negative_examples"] == len(ids)
    used = rows(system, negative_examples, negative_examples.c.dislike_id.in_(ids))
    assert {(e.status, e.used_in_version_id) for e in used} == {("used", job_c.result_version_id)}
    assert [v.version_id for v in rows(system, model_versions, order_by=model_versions.c.version_id)] == [
        first,
        job_c.result_version_id,
    ]
    assert [j.status for j in rows(system, retrain_jobs, order_by=retrain_jobs.c.job_id)] == [
        "succeeded",
        "failed",
        "failed",
        "succeeded",
    ]


# ---------------------------------------------------------------- the database going away


@pytest.fixture
def cluster():
    """A PostgreSQL cluster this test owns, so it may stop and start it."""
    owned = private_cluster_or_skip()
    yield owned
    owned.destroy()


DASHBOARD_READS = [
    (queries.get_database_state, ()),
    (queries.get_data_bounds, ()),
    (queries.list_filter_versions, ()),
    (queries.list_versions, ()),
    (queries.get_retrain_status, ()),
    (queries.list_job_history, ()),
    (lookups.list_recent_users, ()),
    (lookups.list_audit_facets, ()),
]


def page_errors(at: AppTest) -> list[str]:
    assert not at.exception, [e.value for e in at.exception]
    return [e.value for e in at.error]


def test_the_api_and_dashboard_answer_cleanly_while_postgresql_is_down_and_recover(cluster, monkeypatch):
    for name in [k for k in os.environ if k.startswith("FEEDBACK_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("FEEDBACK_DB_URL", cluster.url)
    system = FeedbackSystem.from_url(cluster.url)
    system.init_feedback_tables()
    system.add_movies([{"movie_id": m, "title": f"Film {m}", "genres": ["Drama"]} for m in (1, 2, 3)])
    _, key = create_api_key(system.engine, "recommender", "service", system.now())
    # No key cache: every request reaches the database, authentication included.
    client = create_app(system=system, config=ApiConfig(key_cache_seconds=0.0)).test_client()
    auth = {"Authorization": f"Bearer {key}", "X-User-ID": "5"}

    def post(movie: int, idempotency_key: str):
        return client.post(
            "/api/dislike",
            json={"movie_id": movie, "predicted_score": 0.6, "reason": "wrong_genre"},
            headers={**auth, "Idempotency-Key": idempotency_key},
        )

    assert post(1, "up-1").status_code == 201
    data.refresh()
    assert data.query(queries.get_database_state)["status"] == "ready"
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert page_errors(at) == []

    cluster.stop()
    down = [
        ("POST /api/dislike", lambda: post(2, "down-1")),
        ("GET /api/dislike-history", lambda: client.get("/api/dislike-history", headers=auth)),
        ("GET /api/dislike-patterns", lambda: client.get("/api/dislike-patterns", headers=auth)),
        ("GET /api/feedback-metrics", lambda: client.get("/api/feedback-metrics", headers=auth)),
        ("GET /api/recommendations", lambda: client.get("/api/recommendations", headers=auth)),
        ("GET /healthz", lambda: client.get("/healthz")),
    ]
    slowest = 0.0
    for name, call in down:
        began = time.perf_counter()
        r = call()
        slowest = max(slowest, time.perf_counter() - began)
        assert r.status_code == 503, (name, r.status_code, r.get_data(as_text=True)[:300])
        assert r.headers["Retry-After"] == "5", name
        body = r.get_json()
        assert body["success"] is False and body["error"]["code"] == "database_unavailable", (name, body)
        assert "unavailable" in body["error"]["message"] and "retry" in body["error"]["message"], body
        assert "Traceback" not in r.get_data(as_text=True)
    assert slowest < 10, f"a request took {slowest:.1f} s to say the database is down"

    # The dashboard's data layer raises the one error its pages turn into "cannot be reached".
    data.refresh()
    for fn, args in DASHBOARD_READS:
        with pytest.raises(DatabaseUnavailableError):
            data.query(fn, *args)
    at.run()
    assert "The feedback database cannot be reached right now." in page_errors(at)

    cluster.start()
    # The same app and the same dashboard process, not restarted: they work at once.
    again = post(2, "down-1")  # the retried request's key was not used up by the failure
    assert again.status_code == 201, again.get_data(as_text=True)
    assert client.get("/healthz").status_code == 200
    history = client.get("/api/dislike-history", headers=auth).get_json()
    assert [d["movie_id"] for d in history["dislikes"]] == [2, 1]
    assert count(system, user_dislikes) == 2 and count(system, negative_examples) == 2
    data.refresh()
    for fn, args in DASHBOARD_READS:
        data.query(fn, *args)
    at.run()
    assert page_errors(at) == []
    assert next(m.value for m in at.metric if m.label == "Dislikes") == "2"
    system.close()
    print(f"\n[private cluster] {len(down)} requests while down: all 503, slowest {slowest * 1000:.0f} ms")


def test_a_worker_waits_out_a_postgresql_outage_and_runs_the_next_job(cluster, caplog):
    system = FeedbackSystem.from_url(cluster.url)
    system.init_feedback_tables()
    trained_world(system)
    for i in range(6):
        dislike(system, 500 + i, HORROR[i])
    caplog.set_level(logging.WARNING, logger="feedback_core")
    stop = threading.Event()
    ran: list[int] = []
    worker = threading.Thread(
        target=lambda: ran.append(system.run_worker(poll_seconds=0.2, stop=stop)), daemon=True
    )
    worker.start()
    try:
        cluster.stop()
        deadline = time.monotonic() + 60
        while not any("worker waits" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, "the worker never noticed the outage"
            time.sleep(0.1)
        assert worker.is_alive()  # it waits: a worker that died would train nothing again
        cluster.start()
        job = system.request_retrain("analyst@test")
        deadline = time.monotonic() + 120
        while system.get_retrain_job(job["job_id"])["status"] in ("queued", "running"):
            assert time.monotonic() < deadline and worker.is_alive(), "the worker did not run the job"
            time.sleep(0.2)
        assert system.get_retrain_job(job["job_id"])["status"] == "succeeded"
    finally:
        stop.set()
        worker.join(timeout=120)
        system.close()
    assert ran == [1]
    waits = [r.getMessage() for r in caplog.records if "worker waits" in r.getMessage()]
    assert all("database is unavailable" in m for m in waits), waits
