"""Shared by the reliability tests: worker processes, a full recount of the aggregates from the
raw rows, gunicorn and a private PostgreSQL cluster.

Worker functions run in separate processes (``process_context``: forked from a clean fork
server, nothing inherited from the test process, as a second server would be): they build
their own ``FeedbackSystem`` from the URL, wait for the start signal, and report every
exception they saw instead of raising it.
"""

from __future__ import annotations

import http.client
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import types
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Date, inspect, select, text

from feedback_core.schema import (
    daily_dislikes,
    daily_reason_genre,
    daily_score_histogram,
    dislike_patterns,
    movie_dislike_stats,
    recommendation_sets,
    user_dislikes,
)

ROOT = Path(__file__).resolve().parent.parent
REASONS = ["wrong_genre", "poor_quality", "not_interested", "irrelevant", "other", "already_watched"]
GENRE_POOL = ["Drama", "War", "Comedy", "Horror", "Sci-Fi"]
HIGH_SCORE = 0.7  # aggregates.HIGH_SCORE, restated: the recount must not trust the code it checks


# ---------------------------------------------------------------- load: many processes


@contextmanager
def _bare_main() -> Iterator[None]:
    # A child started by spawn or forkserver first re-imports the parent's __main__. Under pytest
    # that is pytest itself, and after any AppTest has run it is dashboard/app.py (Streamlit
    # leaves the last script there), which every child would then run. Children need neither:
    # their targets are importable functions of this module.
    saved = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = saved


def start_process(process) -> None:
    """Start a worker process without re-running the parent's ``__main__`` in it."""
    with _bare_main():
        process.start()


def process_context():
    """Fresh interpreters for worker processes, cheaply: a fork server that imported the library once.

    Like ``spawn`` (nothing inherited from the test process: no engine, no pytest state), but
    each child is forked from a server that has already imported ``feedback_core``, so eight
    children do not each spend a second and a half importing it on a 2-core machine.
    """
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(
        ["feedback_core.system", "feedback_core.training", "scipy.optimize", "reliability_support"]
    )
    return ctx


def load_call(worker: int, i: int, users: int, workers: int) -> dict:
    """The ``i``-th save_dislike call of ``worker``: distinct (user, movie) pairs over all workers.

    Workers interleave (call ``k = i * workers + worker``), so at any moment they touch the same
    users (per-user locks), neighbouring movies (shared movie rows) and the same daily rows.
    """
    k = i * workers + worker
    user_id = 1 + k % users
    movie_id = 1 + k // users
    score = ((k * 37) % 1000) / 1000  # spreads over every histogram bucket, 0.0 included
    call = {
        "user_id": user_id,
        "movie_id": movie_id,
        "movie_title": f"Load movie {movie_id}",
        "predicted_score": score,
        "reason": REASONS[k % len(REASONS)],
        "feedback_text": "" if k % 3 else f"call {k}",
    }
    if k % 4 == 0:  # some give their own metadata, the rest take the catalogue's
        call["genres"] = [GENRE_POOL[k % 5], GENRE_POOL[(k + 2) % 5]]
        call["cast"] = [f"Actor {k % 7}", f"Actor {(k + 1) % 7}"]
        call["franchise"] = f"Saga {k % 3}"
    if k % 2 == 0:
        call["idempotency_key"] = f"load-{k}"
    return call


def load_catalogue(users: int, calls: int) -> list[dict]:
    """The films ``load_call`` dislikes, with genres, cast and (some) a franchise."""
    return [
        {
            "movie_id": m,
            "title": f"Load movie {m}",
            "genres": [GENRE_POOL[m % 5]],
            "cast": [f"Actor {m % 11}"],
            "franchise": f"Saga {m % 3}" if m % 2 else None,
        }
        for m in range(1, calls // users + 2)
    ]


def save_dislikes_worker(url, worker, calls, overrides, ready, go, stop, out) -> None:
    """Child process: after ``go``, save each of ``calls`` (until ``stop``, if given).

    Puts ``(worker, ids, failures, seconds)`` on ``out``: the ids save_dislike returned and the
    traceback of every exception a call raised.
    """
    failures: list[str] = []
    ids: list[int] = []
    seconds = 0.0
    try:
        from feedback_core import FeedbackSystem, Settings

        system = FeedbackSystem.from_settings(Settings(database_url=url, **overrides))
        ready.put(worker)
        go.wait(120)
        began = time.perf_counter()
        for call in calls:
            if stop is not None and stop.is_set():
                break
            try:
                ids.append(system.save_dislike(**call))
            except Exception:  # reported to the parent, which asserts there were none
                failures.append(traceback.format_exc(limit=6))
        seconds = time.perf_counter() - began
        system.close()
    except BaseException:
        failures.append(traceback.format_exc())
        ready.put(worker)
    out.put((worker, ids, failures, seconds))


def retrain_worker(url, overrides, stop, out) -> None:
    """Child process: the retrain worker loop (``run_worker``) until ``stop``; put (jobs run, failures)."""
    try:
        from feedback_core import FeedbackSystem, Settings

        system = FeedbackSystem.from_settings(Settings(database_url=url, **overrides))
        done = system.run_worker(poll_seconds=0.02, stop=stop)
        system.close()
        out.put((done, []))
    except BaseException:
        out.put((0, [traceback.format_exc()]))


def held_api_request(url, moment, path, body, headers, reached) -> None:
    """Child process: send one request through the API (in this process, the system's clock at
    ``moment``) and hold still once its writes are committed, before its answer is stored, until
    killed. Puts ``("committed", pid)`` on ``reached`` when it holds (or ``("answered", status)``/a
    traceback)."""
    try:
        import threading

        import feedback_core.api as api_module
        from feedback_core import FeedbackSystem, Settings
        from feedback_core.api import ApiConfig, create_app

        def hold(*args, **kwargs) -> None:
            reached.put(("committed", os.getpid()))
            threading.Event().wait()

        api_module.complete_key = hold
        system = FeedbackSystem.from_settings(Settings(database_url=url), clock=lambda: moment)
        app = create_app(system=system, config=ApiConfig(key_cache_seconds=0))
        answer = app.test_client().open(path, method="POST", json=body, headers=headers)
        reached.put(("answered", answer.status_code))
    except BaseException:
        reached.put(("error", traceback.format_exc()))


def held_retrain_worker(url, point, reached) -> None:
    """Child process: run one queued job for real, but hold still at ``point`` until killed.

    ``training``: right after the real fit, the job at stage "training" with its examples claimed;
    ``writing``: inside the transaction that stores the result, after the version row, the
    examples' "used" marks and the job's "succeeded" are written, before the commit.
    Puts ``(point, pid)`` on ``reached`` when it holds (or ``("finished", pid)``/a traceback).
    """
    try:
        import threading

        from feedback_core import FeedbackSystem, Settings, jobs, model

        def hold(what: str) -> None:
            reached.put((what, os.getpid()))
            threading.Event().wait()

        if point == "training":
            real_train = model.train

            def train_then_hold(*args, **kwargs):
                real_train(*args, **kwargs)
                hold("training")

            model.train = train_then_hold
        else:
            real_audit = jobs.write_audit

            def audit_then_hold(conn, **kwargs):
                real_audit(conn, **kwargs)
                if kwargs["action"] == "retrain.succeeded":
                    hold("writing")

            jobs.write_audit = audit_then_hold
        system = FeedbackSystem.from_settings(Settings(database_url=url))
        system.run_worker(once=True, max_jobs=1)
        reached.put(("finished", os.getpid()))
    except BaseException:
        reached.put((traceback.format_exc(), os.getpid()))


def run_cli(argv, out) -> None:
    """Child process: run the ``feedback-core`` command line; put (exit code, what it printed)."""
    import contextlib
    import io

    from feedback_core.cli import main

    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            code = main(argv)
    except BaseException:
        code, printed = -1, io.StringIO(traceback.format_exc())
    out.put((code, printed.getvalue()))


def start_writers(ctx, url: str, plans: list[list[dict]], overrides: dict, stop=None):
    """Start one save_dislikes_worker per plan and wait until each is ready; return (procs, go, out)."""
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [
        ctx.Process(
            target=save_dislikes_worker, args=(url, w, calls, overrides, ready, go, stop, out), daemon=True
        )
        for w, calls in enumerate(plans)
    ]
    for p in procs:
        start_process(p)
    for _ in procs:
        ready.get(timeout=120)
    return procs, go, out


def collect_writers(procs, out) -> tuple[list[int], list[str], list[float]]:
    """Wait for every writer's report; return (ids, failures, seconds per writer)."""
    ids: list[int] = []
    failures: list[str] = []
    seconds: list[float] = []
    try:
        for _ in procs:
            _, got, failed, took = out.get(timeout=240)
            ids += got
            failures += failed
            seconds.append(took)
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    assert [p.exitcode for p in procs] == [0] * len(procs)
    return ids, failures, seconds


# ---------------------------------------------------------------- the recount


def _close(a: float, b: float) -> bool:
    return abs(float(a) - float(b)) <= 1e-6 * max(1.0, abs(float(a)), abs(float(b)))


# The features each reason's dislikes count against (what each reason means: README, "How it learns").
BLAMED = {
    "wrong_genre": {"genre"},
    "poor_quality": {"cast", "franchise"},
    "already_watched": set(),
    "not_interested": {"genre", "franchise"},
    "irrelevant": {"genre"},
    "other": set(),
}


def recount_differences(
    engine, blamed: dict[str, set[str]] = BLAMED, top_cast: int | None = 5, before_0010: bool = False
) -> list[str]:
    """Recount every maintained aggregate from the live dislike rows; return every mismatch
    (``blamed``: what each reason's dislikes count against in the per-user patterns; of the
    cast, the first ``top_cast``, or all of them; ``before_0010``: the reason x genre and score
    tables as they were before migration 0010, on the day a dislike was made and without its
    version or reason)."""
    with engine.connect() as conn:
        # Since migration 0011 a dislike may have no known score, and the daily and per-film
        # rows count the scored ones.
        scored = "scored" in {c["name"] for c in inspect(conn).get_columns("daily_dislikes")}
        dislike_columns = [c for c in user_dislikes.c if scored or c.name != "score_known"]
        live = conn.execute(select(*dislike_columns).where(user_dislikes.c.retracted_at.is_(None))).all()
        # A dislike that names a list counts in daily_dislikes on the day the list was shown.
        shown_on = {
            r.recommendation_set_id: r.created_at.date()
            for r in conn.execute(
                select(recommendation_sets.c.recommendation_set_id, recommendation_sets.c.created_at)
            )
        }

        def counted(*columns: str) -> tuple:
            return tuple(columns) + (("scored",) if scored else ())

        daily_columns = counted("day", "model_version_id", "reason", "attributed", "dislikes", "score_sum")
        movie_columns = counted(
            "movie_id", "dislikes", "high_score_dislikes", "score_sum", "last_disliked_at"
        )
        stored = {
            "dislike_patterns": {
                (r.user_id, r.pattern_type, r.pattern_value): (
                    r.dislike_count,
                    r.score_sum,
                    r.last_disliked_at,
                )
                for r in conn.execute(select(dislike_patterns))
            },
            "daily_dislikes": {
                tuple(r[:4]): tuple(r[4:])
                for r in conn.execute(select(*(daily_dislikes.c[c] for c in daily_columns)))
            },
            "daily_reason_genre": {
                tuple(key): (n,)
                for *key, n in conn.execute(
                    text("SELECT day, reason, genre, dislikes FROM daily_reason_genre").columns(day=Date)
                    if before_0010
                    else select(daily_reason_genre)
                )
            },
            "daily_score_histogram": {
                tuple(key): (n,)
                for *key, n in conn.execute(
                    text("SELECT day, model_version_id, bucket, dislikes FROM daily_score_histogram").columns(
                        day=Date
                    )
                    if before_0010
                    else select(daily_score_histogram)
                )
            },
            "movie_dislike_stats": {
                r[0]: tuple(r[1:])
                for r in conn.execute(select(*(movie_dislike_stats.c[c] for c in movie_columns)))
            },
        }
    patterns: dict = defaultdict(lambda: [0, 0.0, None])
    daily: dict = defaultdict(lambda: [0, 0.0, 0] if scored else [0, 0.0])
    by_genre: Counter = Counter()
    histogram: Counter = Counter()
    per_movie: dict = defaultdict(lambda: [0, 0, 0.0, None, 0] if scored else [0, 0, 0.0, None])
    for d in live:
        day, version = d.created_at.date(), d.model_version_id or 0
        known = d.score_known if scored else True
        score = d.predicted_score if known else 0.0
        kinds = blamed[d.reason]
        keys = [("total", ""), ("reason", d.reason)]
        keys += [("genre", g) for g in d.genres if "genre" in kinds]
        keys += [("cast", c) for c in d.cast[:top_cast] if "cast" in kinds]
        keys += [("franchise", d.franchise)] if d.franchise and "franchise" in kinds else []
        for kind, value in set(keys):
            p = patterns[(d.user_id, kind, value)]
            p[0] += 1
            p[1] += score
            p[2] = d.created_at if p[2] is None else max(p[2], d.created_at)
        rate_day = day if d.recommendation_set_id is None else shown_on[d.recommendation_set_id]
        entry = daily[(rate_day, version, d.reason, int(d.recommendation_set_id is not None))]
        entry[0] += 1
        entry[1] += score
        bucket = min(int(score * 10), 9)
        if before_0010:
            for g in set(d.genres):
                by_genre[(day, d.reason, g)] += 1
            histogram[(day, version, bucket)] += 1
        else:  # since 0010, on the same day as daily_dislikes, by version and reason
            for g in set(d.genres):
                by_genre[(rate_day, version, d.reason, g)] += 1
            if known:
                histogram[(rate_day, version, d.reason, bucket)] += 1
        m = per_movie[d.movie_id]
        m[0] += 1
        m[1] += known and score >= HIGH_SCORE
        m[2] += score
        m[3] = d.created_at if m[3] is None else max(m[3], d.created_at)
        if scored:
            entry[2] += known
            m[4] += known
    expected = {
        "dislike_patterns": {k: tuple(v) for k, v in patterns.items()},
        "daily_dislikes": {k: tuple(v) for k, v in daily.items()},
        "daily_reason_genre": {k: (v,) for k, v in by_genre.items()},
        "daily_score_histogram": {k: (v,) for k, v in histogram.items()},
        "movie_dislike_stats": {k: tuple(v) for k, v in per_movie.items()},
    }
    problems = []
    for table, want in expected.items():
        # A row whose count went back to 0 (a retraction) is the same as no row.
        have = {k: v for k, v in stored[table].items() if v[0] != 0}
        for key in sorted(set(want) | set(have), key=repr):
            a, b = want.get(key), have.get(key)
            if a is None or b is None or len(a) != len(b):
                problems.append(f"{table} {key}: recount {a}, stored {b}")
                continue
            for x, y in zip(a, b):
                if not (_close(x, y) if isinstance(x, float) else x == y):
                    problems.append(f"{table} {key}: recount {a}, stored {b}")
                    break
    return problems


# ---------------------------------------------------------------- servers


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra: str) -> dict:
    """The environment for a child server: no FEEDBACK_* from the caller, no debug mode."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBACK_") and k != "FLASK_DEBUG"}
    env.update(extra)
    return env


def start_gunicorn(url: str, port: int, workers: int, log_path: Path, **env: str) -> subprocess.Popen:
    """Start gunicorn over ``url``; wait until /healthz answers 200. Its output goes to ``log_path``."""
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        str(workers),
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "debug",
        "--access-logfile",
        "-",
        "--graceful-timeout",
        "5",
        "feedback_core.api:create_app()",
    ]
    log = open(log_path, "w")  # noqa: SIM115 - the server writes to it until stop_process
    server = subprocess.Popen(
        command,
        env=clean_env(FEEDBACK_DB_URL=url, FEEDBACK_ENV="production", **env),
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        start_new_session=True,
    )
    log.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"gunicorn exited with {server.returncode}: {log_path.read_text()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return server
            conn.close()
        except OSError:
            pass
        time.sleep(0.1)  # polling for the server to come up, not waiting for time to pass
    stop_process(server)
    raise AssertionError(f"gunicorn did not answer on port {port}: {log_path.read_text()[-2000:]}")


def stop_process(process: subprocess.Popen) -> None:
    """Stop a child we started (SIGTERM, then SIGKILL after 20 s)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)


# ---------------------------------------------------------------- a private PostgreSQL cluster

PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PrivateCluster:
    """A throwaway PostgreSQL cluster in a temporary folder, on its own port, owned by the test.

    The server refuses to run as root, so when the tests run as root its binaries run as the
    ``postgres`` OS user. Only this cluster is ever stopped or started.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="feedback-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.password = "cluster-" + os.urandom(6).hex()
        self._as_postgres: list[str] = []

    @staticmethod
    def skip_reason() -> str | None:
        """Why this machine cannot run a private cluster, or None."""
        for tool in ("initdb", "pg_ctl", "postgres"):
            if not (PG_BIN / tool).exists():
                return f"PostgreSQL 15 server binaries not found in {PG_BIN} (apt install postgresql-15)"
        if os.geteuid() == 0 and shutil.which("runuser") is None:
            return "running as root and runuser is missing: the PostgreSQL server refuses to run as root"
        if os.geteuid() == 0:
            try:
                import pwd

                pwd.getpwnam("postgres")
            except KeyError:
                return "running as root and there is no postgres OS user to run the server as"
        return None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres:{self.password}@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [*self._as_postgres, *args], capture_output=True, text=True, timeout=timeout, cwd=self.folder
        )
        if done.returncode != 0:
            raise AssertionError(f"{args[0]} failed ({done.returncode}): {done.stdout}\n{done.stderr}")
        return done

    def create(self) -> None:
        """initdb with a password for the postgres role, listening on 127.0.0.1 only."""
        if os.geteuid() == 0:
            import pwd

            user = pwd.getpwnam("postgres")
            os.chown(self.folder, user.pw_uid, user.pw_gid)
            self._as_postgres = ["runuser", "-u", "postgres", "--"]
        secret = self.folder / "pwfile"
        secret.write_text(self.password + "\n")
        if os.geteuid() == 0:
            os.chown(secret, user.pw_uid, user.pw_gid)
        self._run(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=scram-sha-256",
            f"--pwfile={secret}",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )
        secret.unlink()

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=off "
            "-c shared_buffers=16MB -c max_connections=40"
        )
        self._run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start"
        )

    def stop(self) -> None:
        """Stop the server at once (open connections are cut, as in a crash or failover)."""
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def destroy(self) -> None:
        """Stop the server if it runs and remove its folder."""
        if (self.data / "postmaster.pid").exists():
            try:
                self.stop()
            except AssertionError:
                pass
        shutil.rmtree(self.folder, ignore_errors=True)


def private_cluster_or_skip() -> PrivateCluster:
    """Create and start a private cluster, or skip the test saying why it cannot."""
    reason = PrivateCluster.skip_reason()
    if reason:
        pytest.skip(reason)
    cluster = PrivateCluster()
    try:
        cluster.create()
        cluster.start()
    except BaseException:
        cluster.destroy()
        raise
    return cluster
