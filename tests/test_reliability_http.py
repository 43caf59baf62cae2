"""HTTP load: gunicorn with several workers over a real database, several clients at once,
some requests retried: no 5xx, and exactly one stored dislike per acknowledged one (issue 7)."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter

from helpers import count, rows
from reliability_support import free_port, recount_differences, start_gunicorn, stop_process

from feedback_core.apikeys import create_api_key, hash_key
from feedback_core.schema import idempotent_requests, negative_examples, user_dislikes

SERVER_WORKERS = 3
CLIENTS = 4
PER_CLIENT = 20  # logical dislikes per client; retries come on top
USERS = 10  # shared by every client: the per-user lock and the same users' rows are contended


def send(port: int, body: dict, headers: dict) -> tuple[int | str, dict, dict]:
    """POST /api/dislike on a fresh connection; return (status or error name, body, headers)."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request(
            "POST", "/api/dislike", json.dumps(body), {"Content-Type": "application/json", **headers}
        )
        response = conn.getresponse()
        raw = response.read()
        conn.close()
    except OSError as exc:  # a dropped connection is a failure the test reports
        return type(exc).__name__, {}, {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = {"unparsable": raw[:200].decode("latin-1")}
    return response.status, parsed, dict(response.getheaders())


def plan(client: int) -> list[dict]:
    """The logical dislikes of one client and how each is retried.

    ``sequential``: sent again with the same Idempotency-Key after the answer (a lost response);
    ``concurrent``: sent twice at the same moment with the same key (a client timeout);
    ``double_click``: no key, sent twice (stored once within the duplicate window).
    """
    out = []
    for j in range(PER_CLIENT):
        movie = 1 + client * PER_CLIENT + j
        kind = ("sequential", "concurrent", "double_click", "once", "once")[j % 5]
        out.append(
            {
                "name": f"c{client}-{j}",
                "user": 1 + j % USERS,
                "body": {
                    "movie_id": movie,
                    "predicted_score": round((movie * 7 % 100) / 100, 2),
                    "reason": ("wrong_genre", "poor_quality", "not_interested", "other")[movie % 4],
                },
                "key": None if kind == "double_click" else f"http-c{client}-{j}",
                "kind": kind,
            }
        )
    return out


def run_client(port: int, service_key: str, client: int, results: list, errors: list) -> None:
    try:
        for item in plan(client):
            headers = {"Authorization": f"Bearer {service_key}", "X-User-ID": str(item["user"])}
            if item["key"]:
                headers["Idempotency-Key"] = item["key"]
            answers = []
            if item["kind"] == "concurrent":
                twin: list = []
                other = threading.Thread(
                    target=lambda t=twin, b=item["body"], h=headers: t.append(send(port, b, h))
                )
                other.start()
                answers.append(send(port, item["body"], headers))
                other.join()
                answers += twin
                if any(a[0] == 409 for a in answers):  # "still in progress": both are done now, retry
                    answers.append(send(port, item["body"], headers))
            else:
                answers.append(send(port, item["body"], headers))
                if item["kind"] != "once":
                    answers.append(send(port, item["body"], headers))
            results.append((item, answers))
    except Exception as exc:  # reported by the test
        errors.append(repr(exc))


def test_gunicorn_under_concurrent_clients_with_retries_stores_each_dislike_once(
    make_system, db_url, backend, tmp_path
):
    system = make_system()
    system.add_movies(
        {
            "movie_id": m,
            "title": f"Film {m}",
            "genres": ["Drama", "War"][: 1 + m % 2],
            "cast": [f"Actor {m % 9}"],
        }
        for m in range(1, CLIENTS * PER_CLIENT + 1)
    )
    _, service_key = create_api_key(system.engine, "load-client", "service", system.now())
    port = free_port()
    server = start_gunicorn(db_url, port, SERVER_WORKERS, tmp_path / "gunicorn.log")
    results: list = []
    errors: list = []
    try:
        began = time.perf_counter()
        clients = [
            threading.Thread(target=run_client, args=(port, service_key, c, results, errors))
            for c in range(CLIENTS)
        ]
        for t in clients:
            t.start()
        for t in clients:
            t.join()
        seconds = time.perf_counter() - began
    finally:
        stop_process(server)
    log = (tmp_path / "gunicorn.log").read_text()

    assert errors == []
    assert len(results) == CLIENTS * PER_CLIENT
    statuses = Counter(status for _, answers in results for status, _, _ in answers)
    assert not [s for s in statuses if not isinstance(s, int) or s >= 500], statuses
    assert set(statuses) <= {200, 201, 409}, statuses

    acknowledged: dict[str, int] = {}
    for item, answers in results:
        ok = [(status, body, headers) for status, body, headers in answers if status in (200, 201)]
        assert ok, f"{item['name']} was never acknowledged: {answers}"
        ids = {body["dislike_id"] for _, body, _ in ok}
        assert len(ids) == 1, f"{item['name']} got different dislikes: {answers}"
        acknowledged[item["name"]] = ids.pop()
        firsts = [status for status, body, headers in ok if "Idempotent-Replayed" not in headers]
        if item["kind"] == "double_click":
            assert [s for s, _, _ in ok] == [201, 200] and ok[1][1]["duplicate"] is True
        else:
            # One first response; every other acknowledgement is a replay of it.
            assert firsts == [201], f"{item['name']} ran more than once: {answers}"
        for status, body, _ in answers:
            if status == 409:
                assert body["error"]["code"] == "request_in_progress", body

    # The stored rows are exactly the acknowledged dislikes, each once.
    assert len(set(acknowledged.values())) == len(acknowledged) == CLIENTS * PER_CLIENT
    stored = rows(system, user_dislikes)
    assert {r.dislike_id for r in stored} == set(acknowledged.values())
    by_id = {r.dislike_id: r for r in stored}
    for item, _ in results:
        row = by_id[acknowledged[item["name"]]]
        assert (row.user_id, row.movie_id, row.idempotency_key) == (
            item["user"],
            item["body"]["movie_id"],
            item["key"],
        )
    assert count(system, negative_examples) == len(stored)
    keyed = sum(1 for item, _ in results if item["key"])
    assert count(system, idempotent_requests) == keyed
    assert count(system, idempotent_requests, idempotent_requests.c.status_code == 0) == 0
    assert recount_differences(system.engine) == []
    # gunicorn ran at --log-level debug with an access log: no stack trace, no key, no digest.
    assert "Traceback" not in log and "POST /api/dislike" in log
    assert service_key not in log and service_key[12:] not in log and hash_key(service_key) not in log

    sent = sum(statuses.values())
    print(
        f"\n[{backend}] gunicorn {SERVER_WORKERS} workers, {CLIENTS} clients: {sent} requests for "
        f"{len(acknowledged)} dislikes in {seconds:.1f} s ({sent / seconds:.0f} req/s); statuses {dict(statuses)}"
    )
