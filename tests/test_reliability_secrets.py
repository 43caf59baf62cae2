"""Security (issue 7): no secret, neither an API key, nor its stored digest, nor the database
password, appears in logs (at DEBUG), error bodies, the command line's output or the dashboard.

The database is a private PostgreSQL cluster whose password is random, so finding it anywhere is
a leak (the shared test server's password is ``postgres``, also its user name). Raw keys in the
API's logs and bodies are also checked on both backends by ``test_api_auth.py``; this adds the
digests, the password, the CLI and the dashboard (gunicorn's own log is checked for keys and
digests by ``test_reliability_http.py``).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from reliability_support import private_cluster_or_skip
from streamlit.testing.v1 import AppTest

from dashboard import data
from feedback_core import FeedbackSystem
from feedback_core.api import ApiConfig, create_app
from feedback_core.apikeys import create_api_key, hash_key
from feedback_core.cli import main

APP = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
PAGES = ["overview", "reasons", "errors", "versions", "retrain", "adjustments", "users", "audit"]
BOGUS_KEY = "fbk_" + "Q7" * 21 + "x"  # well-formed, unknown: someone's mistyped key is a secret too


@pytest.fixture(scope="module")
def world():
    """A private cluster with the schema, a catalogue, a service and an admin key."""
    cluster = private_cluster_or_skip()
    try:
        system = FeedbackSystem.from_url(cluster.url)
        system.init_feedback_tables()
        system.add_movies(
            [{"movie_id": m, "title": f"Film {m}", "genres": ["Drama", "War"]} for m in (1, 2, 3)]
        )
        _, service = create_api_key(system.engine, "recommender", "service", system.now())
        _, admin = create_api_key(system.engine, "ops", "admin", system.now())
        system.close()
        secrets = {
            "database password": cluster.password,
            "service key": service,
            "admin key": admin,
            "unknown key": BOGUS_KEY,
            "service key digest": hash_key(service),
            "admin key digest": hash_key(admin),
            "unknown key digest": hash_key(BOGUS_KEY),
            # The part after the 12-character lookup prefix (which is stored and listed on purpose).
            "service key tail": service[12:],
            "admin key tail": admin[12:],
        }
        yield cluster, service, admin, secrets
    finally:
        cluster.destroy()


def leaks(text: str, secrets: dict[str, str]) -> list[str]:
    """Name every secret found in ``text``."""
    return [name for name, value in secrets.items() if value in text]


EXPECTED = {
    "201": 201,
    "replay": 201,
    "409 key reused": 409,
    "400": 400,
    "401 unknown key": 401,
    "401 no bearer": 401,
    "403 service on admin": 403,
    "200 admin": 200,
    "404": 404,
    "200 metrics": 200,
}


def exchanges(client, service: str, admin: str) -> list[tuple[str, int, dict, str]]:
    """Requests that succeed and fail in every way; return (what, status, headers, body) of each."""
    user = {"X-User-ID": "7"}
    dislike = {"movie_id": 1, "predicted_score": 0.9, "reason": "wrong_genre"}
    calls = [
        ("201", "POST", "/api/dislike", service, dislike, {"Idempotency-Key": "secret-test-1"}),
        ("replay", "POST", "/api/dislike", service, dislike, {"Idempotency-Key": "secret-test-1"}),
        (
            "409 key reused",
            "POST",
            "/api/dislike",
            service,
            {**dislike, "movie_id": 2},
            {"Idempotency-Key": "secret-test-1"},
        ),
        ("400", "POST", "/api/dislike", service, {"movie_id": "one", "password": "x"}, {}),
        ("401 unknown key", "GET", "/api/dislike-history", BOGUS_KEY, None, {}),
        ("401 no bearer", "GET", "/api/dislike-history", None, None, {"Authorization": service}),
        ("403 service on admin", "GET", "/api/model-versions", service, None, {}),
        ("200 admin", "GET", "/api/adjustments", admin, None, {}),
        ("404", "GET", "/api/nowhere", service, None, {}),
        ("200 metrics", "GET", "/api/feedback-metrics", service, None, {}),
    ]
    out = []
    for what, method, path, key, body, extra in calls:
        headers = {**user, **({"Authorization": f"Bearer {key}"} if key else {}), **extra}
        if body is not None:
            headers["Content-Type"] = "application/json"
        out.append((what, *client(method, path, json.dumps(body) if body is not None else None, headers)))
    assert {what: status for what, status, _, _ in out} == EXPECTED
    return out


def page_text(at: AppTest) -> str:
    """Everything a page shows: every element's protobuf, and each table's cells."""
    parts = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    parts += [frame.value.to_csv() for frame in at.dataframe]
    return "\n".join(parts)


def test_no_secret_in_debug_logs_error_bodies_cli_output_or_the_dashboard(world, caplog, capsys, monkeypatch):
    cluster, service, admin, secrets = world
    for name in [k for k in os.environ if k.startswith("FEEDBACK_")]:
        monkeypatch.delenv(name)
    # Everything at DEBUG, except SQLAlchemy's statement echo, which stays off as it does unless
    # someone turns it on (test_key_digests_stay_out_of_sqlalchemy_echo below).
    caplog.set_level(logging.DEBUG)
    for name in ("feedback_core", "feedback_core.api", "alembic", "werkzeug", "streamlit", "psycopg"):
        caplog.set_level(logging.DEBUG, logger=name)

    # The API, built from a URL that carries the password, as a deployment would.
    app = create_app(FeedbackSystem.from_url(cluster.url).settings, config=ApiConfig(key_cache_seconds=0.0))
    test_client = app.test_client()

    def client(method, path, body, headers):
        r = test_client.open(path, method=method, data=body, headers=headers)
        return r.status_code, dict(r.headers), r.get_data(as_text=True)

    auth = {"Authorization": f"Bearer {service}", "X-User-ID": "7"}
    answered = exchanges(client, service, admin)
    # An unexpected error is logged with its traceback: still nothing secret in it.
    system = app.extensions["feedback_api"].system
    with monkeypatch.context() as patch:
        patch.setattr(system, "get_dislike_pattern_analysis", lambda *a: 1 / 0)
        answered.append(("500", *client("GET", "/api/dislike-patterns", None, auth)))
    assert answered[-1][1] == 500 and "ZeroDivisionError" in caplog.text

    # The command line, output and errors.
    outputs = []
    for argv in (
        ["info"],
        ["info", "--json"],
        ["list-api-keys"],
        ["list-api-keys", "--json"],
        ["init"],
        ["worker", "--once"],
        ["create-api-key", "--name", "ops", "--role", "admin"],  # a conflict: the name is taken
    ):
        code = main(["--db", cluster.url, *argv])
        out, err = capsys.readouterr()
        outputs.append((argv, code, out + err))
    assert [code for _, code, _ in outputs] == [0, 0, 0, 0, 0, 0, 2], outputs
    assert ":***@" in outputs[0][2]

    # The dashboard, every page, over the same URL.
    monkeypatch.setenv("FEEDBACK_DB_URL", cluster.url)
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    shown = []
    for page in PAGES:
        at.switch_page(f"app_pages/{page}.py").run()
        assert not at.exception, (page, [e.value for e in at.exception])
        shown.append((page, page_text(at)))
        if page == "overview":  # the page shows the data, not a guidance or error page
            assert next(m.value for m in at.metric if m.label == "Dislikes") == "1"

    # The database going away: 503 bodies and what is logged about it.
    cluster.stop()
    try:
        down = client(
            "POST", "/api/dislike", json.dumps({"movie_id": 3}), {**auth, "Content-Type": "application/json"}
        )
        code = main(["--db", cluster.url, "info"])
        out, err = capsys.readouterr()
        data.refresh()  # forget cached results (60 s), as a reload after the TTL would
        at.run()
        unreachable = page_text(at)
    finally:
        cluster.start()
    assert down[0] == 503 and code == 2 and "cannot be reached" in unreachable
    answered.append(("503", *down))
    outputs.append((["info", "(database down)"], code, out + err))
    shown.append(("unreachable", unreachable))

    found = {
        "logs": leaks(caplog.text, secrets),
        **{
            f"response {what}": leaks(json.dumps(headers) + body, secrets)
            for what, _, headers, body in answered
        },
        **{f"cli {' '.join(argv)}": leaks(text, secrets) for argv, _, text in outputs},
        **{f"dashboard {page}": leaks(text, secrets) for page, text in shown},
    }
    assert {where: names for where, names in found.items() if names} == {}
    assert len(caplog.records) > 20  # the logs were really captured at DEBUG


def test_key_digests_stay_out_of_sqlalchemy_echo(tmp_path, caplog):
    # What an operator does to see the SQL (the same as create_engine(echo="debug")).
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")
    system = FeedbackSystem.from_url(f"sqlite:///{tmp_path / 'echo.db'}")
    system.init_feedback_tables()
    _, key = create_api_key(system.engine, "recommender", "service", system.now())
    client = create_app(system=system, config=ApiConfig(key_cache_seconds=0.0)).test_client()
    r = client.get("/api/dislike-history", headers={"Authorization": f"Bearer {key}", "X-User-ID": "3"})
    assert r.status_code == 200
    system.close()
    assert "SELECT" in caplog.text  # the echo is on
    assert leaks(caplog.text, {"key": key, "digest": hash_key(key), "tail": key[12:]}) == []
