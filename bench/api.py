"""Requests per second of ``POST /api/dislike`` through gunicorn, against a bare Flask endpoint.

Both apps run under the same gunicorn settings (2 sync workers on 127.0.0.1), side by side,
and are driven by the same client: several processes, each sending one request per fresh
connection. After a warm-up of each, they are measured in alternating slices (bare, API, API,
bare, ...), so that a change in the load of a shared machine falls on both alike. Their log goes
to a file, as in production, and the benchmark checks that every dislike logged its line. The bare endpoint parses
the same JSON body and returns a small JSON object, so the difference is what the API itself
costs: authentication, validation, the dislike transaction and the user's patterns.

Target (issue 4): the API's rate is at least 0.5 of the bare endpoint's.

    .venv/bin/python bench/api.py                          # SQLite file in a temporary folder
    .venv/bin/python bench/api.py --seconds 20 --clients 4
    .venv/bin/python bench/api.py --db postgresql+psycopg://user:pw@localhost/db

Prints the figures and a Markdown table row for ``docs/benchmarks.md``. Exit status 1 when the
target is missed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET_RATIO = 0.5
MOVIES = 1000
BARE, API = "bare Flask", "POST /api/dislike"
USERS_PER_RUN = 20_000_000  # each run's users: clients x 1,000,000 after its base


def bare_app():
    """The baseline: a Flask endpoint that parses the JSON body and answers JSON."""
    from flask import Flask, jsonify, request

    app = Flask("bare")

    @app.post("/api/dislike")
    def dislike():
        body = request.get_json()
        return jsonify({"success": True, "dislike_id": 1, "movie_id": body["movie_id"]}), 201

    @app.get("/healthz")
    def healthz():
        return jsonify({"status": "ok"})

    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(
    app_spec: str, port: int, env: dict, workers: int, worker_class: str, log: Path | None = None
) -> subprocess.Popen:
    """Start gunicorn and wait until it answers; its log (stderr) goes to ``log`` when given."""
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        str(workers),
        "--worker-class",
        worker_class,
        "--bind",
        f"127.0.0.1:{port}",
        "--chdir",
        str(HERE),
        "--log-level",
        "warning",
        "--backlog",
        "256",
        app_spec,
    ]
    sink = open(log, "ab") if log is not None else None  # noqa: SIM115 (the child keeps its own copy)
    try:
        server = subprocess.Popen(command, env=env, stderr=sink)
    finally:
        if sink is not None:
            sink.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited with {server.returncode} for {app_spec}{_tail(log)}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return server
        except OSError:
            pass
        time.sleep(0.2)
    server.terminate()
    raise SystemExit(f"gunicorn did not answer on port {port}{_tail(log)}")


def _tail(log: Path | None, lines: int = 20) -> str:
    if log is None or not log.exists():
        return ""
    return "; the end of its log:\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def client(
    index: int, port: int, key: str, warmup: float, seconds: float, start: float, base: int, out
) -> None:
    """Send dislikes until the deadline; report latencies (after the warm-up) and failures."""
    latencies: list[float] = []
    failures: dict[str, int] = {}
    measure_from, stop_at = start + warmup, start + warmup + seconds
    i = 0
    while True:
        now = time.monotonic()
        if now >= stop_at:
            break
        # Every (user, movie) pair is new: no request is a duplicate of an earlier one.
        user = base + index * 1_000_000 + i // MOVIES + 1
        body = json.dumps(
            {
                "movie_id": i % MOVIES + 1,
                "movie_title": f"Bench movie {i % MOVIES + 1}",
                "predicted_score": 0.72,
                "reason": "wrong_genre",
                "feedback_text": "not tonight",
                "genres": ["Drama", "Comedy"],
            }
        )
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {key}",
            "X-User-ID": str(user),
        }
        began = time.perf_counter()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", "/api/dislike", body, headers)
            response = conn.getresponse()
            response.read()
            status = response.status
            conn.close()
        except OSError as exc:
            status = type(exc).__name__
        elapsed = time.perf_counter() - began
        i += 1
        if now < measure_from:
            continue
        if status == 201:
            latencies.append(elapsed)
        else:
            failures[str(status)] = failures.get(str(status), 0) + 1
    out.put((latencies, failures))


def drive(port: int, key: str, clients: int, warmup: float, seconds: float, base: int) -> dict:
    """One run of ``clients`` processes; their users start after ``base`` (every run's are new)."""
    out: mp.Queue = mp.Queue()
    start = time.monotonic() + 0.5
    procs = [
        mp.Process(target=client, args=(i, port, key, warmup, seconds, start, base, out))
        for i in range(clients)
    ]
    for p in procs:
        p.start()
    latencies: list[float] = []
    failures: dict[str, int] = {}
    for _ in procs:
        lat, fail = out.get()
        latencies += lat
        for k, v in fail.items():
            failures[k] = failures.get(k, 0) + v
    for p in procs:
        p.join()
    return {"latencies": latencies, "failures": failures, "seconds": seconds}


def summary(runs: list[dict]) -> dict:
    """Rate, latency percentiles and failures of one endpoint's runs taken together."""
    latencies = sorted(x for r in runs for x in r["latencies"])
    seconds = sum(r["seconds"] for r in runs)
    failures: dict[str, int] = {}
    for r in runs:
        for k, v in r["failures"].items():
            failures[k] = failures.get(k, 0) + v
    n = len(latencies)
    return {
        "requests": n,
        "rate": n / seconds if seconds else 0.0,
        "p50_ms": latencies[n // 2] * 1000 if n else float("nan"),
        "p99_ms": latencies[min(n - 1, int(n * 0.99))] * 1000 if n else float("nan"),
        "failures": failures,
    }


def prepare(db_url: str) -> str:
    """Create the schema, a service key and the catalogue; return the key."""
    from feedback_core.apikeys import create_api_key
    from feedback_core.system import FeedbackSystem

    system = FeedbackSystem.from_url(db_url)
    system.init_feedback_tables()
    system.add_movies(
        {"movie_id": m, "title": f"Bench movie {m}", "genres": ["Drama", "Comedy"], "cast": [f"Actor {m}"]}
        for m in range(1, MOVIES + 1)
    )
    _, key = create_api_key(system.engine, f"bench-{os.getpid()}-{time.time_ns()}", "service", system.now())
    system.close()
    return key


def count_dislikes(db_url: str) -> int:
    from feedback_core.system import FeedbackSystem

    system = FeedbackSystem.from_url(db_url)
    try:
        return system.count_rows()["user_dislikes"]
    finally:
        system.close()


def breakdown(db_url: str, key: str, log: Path, calls: int = 300) -> dict:
    """Where one request's time goes, in one process: the two library calls and the whole view
    (its ``[FEEDBACK]`` lines written to ``log``, as the server's are)."""
    import logging

    from feedback_core.api import ApiConfig, create_app
    from feedback_core.system import FeedbackSystem

    feedback_log = logging.getLogger("feedback_core")
    feedback_log.addHandler(logging.FileHandler(log))
    feedback_log.setLevel(logging.INFO)

    system = FeedbackSystem.from_url(db_url)
    client = create_app(system=system, config=ApiConfig()).test_client()

    def fields(i: int) -> dict:
        return {
            "movie_id": i % MOVIES + 1,
            "movie_title": f"Bench movie {i % MOVIES + 1}",
            "predicted_score": 0.72,
            "reason": "wrong_genre",
            "feedback_text": "not tonight",
            "genres": ["Drama", "Comedy"],
        }

    timings = {}
    began = time.perf_counter()
    for i in range(calls):
        system.record_dislike(user_id=1_000_000_000 + i // 50, **fields(i))
    timings["record_dislike"] = (time.perf_counter() - began) / calls * 1000
    began = time.perf_counter()
    for i in range(calls):
        system.get_dislike_pattern_analysis(1_000_000_000 + i // 50)
    timings["get_dislike_pattern_analysis"] = (time.perf_counter() - began) / calls * 1000
    began = time.perf_counter()
    for i in range(calls):
        response = client.post(
            "/api/dislike",
            data=json.dumps(fields(i)),
            content_type="application/json",
            headers={"Authorization": f"Bearer {key}", "X-User-ID": str(1_100_000_000 + i // 50)},
        )
        assert response.status_code == 201, response.get_data(as_text=True)
    timings["whole view (test client)"] = (time.perf_counter() - began) / calls * 1000
    system.close()
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per endpoint")
    parser.add_argument("--slices", type=int, default=5, help="alternating measured slices per endpoint")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first, per endpoint")
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--worker-class", default="sync", help="gunicorn worker class")
    args = parser.parse_args()
    if not 1 <= args.clients <= 20 or args.slices < 1:
        parser.error("--clients must be 1 to 20 and --slices at least 1")

    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        db_url = args.db or f"sqlite:///{Path(tmp) / 'feedback.db'}"
        key = prepare(db_url)
        already = count_dislikes(db_url)  # a reused --db holds earlier runs' dislikes
        env = {**os.environ, "FEEDBACK_DB_URL": db_url, "FEEDBACK_ENV": "production"}
        env.pop("FLASK_DEBUG", None)
        # The servers' log goes to a file, as in production (the specification greps app.log).
        log = Path(tmp) / "app.log"
        endpoints = {
            BARE: "api:bare_app()",
            API: "feedback_core.api:create_app()",
        }
        servers: dict[str, tuple[subprocess.Popen, int]] = {}
        runs: dict[str, list[dict]] = {name: [] for name in endpoints}
        try:
            for name, spec in endpoints.items():
                port = free_port()
                servers[name] = (start_gunicorn(spec, port, env, args.workers, args.worker_class, log), port)
            for n, name in enumerate(endpoints):  # warm-up, unmeasured
                drive(servers[name][1], key, args.clients, args.warmup, 0.0, base=n * USERS_PER_RUN)
            # Both endpoints measured in alternating slices (bare, API, API, bare, ...): on a
            # shared machine the load changes within seconds, and each slice's pair sees the same.
            order = list(endpoints)
            for k in range(args.slices):
                for name in order if k % 2 == 0 else order[::-1]:
                    base = (2 + 2 * k + order.index(name)) * USERS_PER_RUN
                    runs[name].append(
                        drive(servers[name][1], key, args.clients, 0.0, args.seconds / args.slices, base)
                    )
        finally:
            for server, _ in servers.values():
                stop(server)
        results = {name: summary(r) for name, r in runs.items()}
        slice_ratios = [
            len(a["latencies"]) / len(b["latencies"]) if b["latencies"] else 0.0
            for a, b in zip(runs[API], runs[BARE], strict=True)
        ]

        logged = sum("[FEEDBACK] Dislike" in line for line in log.read_text(errors="replace").splitlines())
        recorded = count_dislikes(db_url) - already
        inside = breakdown(db_url, key, Path(tmp) / "inside.log")

    backend = "PostgreSQL" if db_url.startswith("postgresql") else "SQLite"
    bare, api = results[BARE], results[API]
    ratio = api["rate"] / bare["rate"] if bare["rate"] else 0.0
    load = os.getloadavg()[0]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {load:.1f}; gunicorn {args.workers} {args.worker_class} workers, {args.clients} clients, "
        f"{args.seconds:.0f} s each in {args.slices} alternating slices"
    )
    for name, r in results.items():
        print(
            f"{name:<20} {r['rate']:8.1f} req/s   p50 {r['p50_ms']:6.2f} ms   p99 {r['p99_ms']:6.2f} ms"
            f"   failures {r['failures'] or 0}"
        )
    print("in one process, ms per call: " + ", ".join(f"{k} {v:.2f}" for k, v in inside.items()))
    log_ok = logged == recorded
    print(
        f"server log: {logged:,} '[FEEDBACK] Dislike' lines for {recorded:,} dislikes this run recorded"
        + ("" if log_ok else " (MISMATCH: every dislike must log one line)")
    )
    print("ratio per slice: " + " ".join(f"{r:.2f}" for r in slice_ratios))
    verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
    print(f"ratio {ratio:.2f} (target >= {TARGET_RATIO}: {verdict})")
    print()
    print("| backend | bare Flask req/s | API req/s | ratio | API p50 ms | API p99 ms | bare p50 / p99 ms |")
    print(
        f"| {backend} | {bare['rate']:.0f} | {api['rate']:.0f} | {ratio:.2f} | {api['p50_ms']:.1f} | "
        f"{api['p99_ms']:.1f} | {bare['p50_ms']:.1f} / {bare['p99_ms']:.1f} |"
    )
    failed = any(r["failures"] for r in results.values())
    return 1 if failed or not log_ok or ratio < TARGET_RATIO else 0


if __name__ == "__main__":
    sys.exit(main())
