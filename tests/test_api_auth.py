"""Who may do what: keys (hashed, constant-time), roles, X-User-ID, end-user tokens, the CLI."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from api_support import SECRET, error_of, make_api, row_counts
from helpers import count, rows
from sqlalchemy import event
from sqlalchemy.engine import Engine

from feedback_core import FeedbackSystem, apikeys
from feedback_core.api import ACCESS, ADMIN, NO_SCHEMA_MESSAGE, PUBLIC, SERVICE, USER, ApiConfig, create_app
from feedback_core.apikeys import KeyVerifier, UserTokens, create_api_key, revoke_api_key
from feedback_core.cli import main
from feedback_core.errors import AuthenticationError, ConflictError, ValidationError
from feedback_core.schema import api_keys, audit_log, feature_adjustments, user_dislikes


@pytest.fixture
def api(system):
    """The app over the test's database, with a service key and an admin key."""
    return make_api(system)


def concrete(rule: str) -> str:
    """Fill every path parameter of a Flask rule with 1."""
    return re.sub(r"<[^>]+>", "1", rule)


def every_route(app):
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods):
            yield rule, method


def test_every_route_but_healthz_requires_a_key(api):
    client = api.app.test_client()
    walked = 0
    for rule, method in every_route(api.app):
        path = concrete(rule.rule)
        for headers in ({}, {"Authorization": "Bearer fbk_unknownunknownunknownunknownunknownunknown"}):
            before = row_counts(api.system)
            r = client.open(path, method=method, headers=headers, json={"movie_id": 1})
            if rule.rule == "/healthz":
                assert r.status_code == 200, (method, path)
                continue
            if method == "OPTIONS":
                # Which methods a path allows, no data: a browser's preflight carries no key.
                assert (r.status_code, r.data) == (200, b"") and r.headers["Allow"], (path, headers)
                assert row_counts(api.system) == before
                continue
            assert r.status_code == 401, (method, path, headers, r.status_code)
            if method != "HEAD":
                assert error_of(r)["code"] == "unauthorized"
                assert r.headers["WWW-Authenticate"].startswith("Bearer")
            assert row_counts(api.system) == before
            walked += 1
    assert walked >= 2 * 20  # every documented operation and its HEAD twins


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Token fbk_abc",
        "Bearer fbk_short",
        "Bearer not-a-key-at-all",
        "Bearer fbu.forged.token",
        "Bearer " + "fbk_" + "x" * 500,
    ],
)
def test_malformed_or_unknown_credentials_are_401(api, authorization):
    r = api.get("/api/dislike-history", key=None, headers={"Authorization": authorization})
    assert r.status_code == 401
    assert "fbk_x" not in r.get_data(as_text=True)  # a presented key is never echoed


def test_a_client_sending_only_x_user_id_is_told_what_replaced_it(api):
    # How the specification's front end called the API: the user id, no key.
    before = row_counts(api.system)
    r = api.post("/api/dislike", {"movie_id": 1, "movie_title": "T"}, key=None, user=5)
    assert r.status_code == 401
    message = error_of(r)["message"]
    assert message.startswith("send an API key: Authorization: Bearer <key> (X-User-ID alone is not accepted")
    assert "feedback-core create-api-key" in message
    assert row_counts(api.system) == before
    plain = api.get("/api/dislike-history", key=None, user=None)
    assert error_of(plain)["message"] == "send an API key: Authorization: Bearer <key>"


def test_keys_are_stored_only_as_hashes(api):
    stored = rows(api.system, api_keys)
    assert {r.name for r in stored} == {"recommender", "ops"}
    for key in (api.service_key, api.admin_key):
        row = next(r for r in stored if r.key_hash == hashlib.sha256(key.encode()).hexdigest())
        assert row.prefix == key[:12]
        assert key not in json.dumps([list(map(str, r)) for r in stored])
    assert all(r.last_used_at is not None for r in stored)


def test_keys_are_compared_in_constant_time(api, monkeypatch):
    calls = []
    real = apikeys.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(apikeys.hmac, "compare_digest", spy)
    assert api.get("/api/dislike-history").status_code == 200
    wrong = api.service_key[:12] + "A" * (len(api.service_key) - 12)  # right prefix, wrong secret
    assert api.get("/api/dislike-history", key=wrong).status_code == 401
    assert len(calls) == 2


def test_a_revoked_key_stops_working(api):
    revoke_api_key(api.system.engine, "recommender", api.system.now())
    r = api.get("/api/dislike-history")
    assert r.status_code == 401
    with pytest.raises(ConflictError):
        revoke_api_key(api.system.engine, "recommender", api.system.now())


def test_the_key_cache_forgets_a_revoked_key_after_its_ttl(system):
    _, key = create_api_key(system.engine, "cached", "service", system.now())
    ticks = [0.0]
    verifier = KeyVerifier(system.engine, cache_seconds=5.0, clock=lambda: ticks[0])
    assert verifier.verify(key, system.now()).name == "cached"
    revoke_api_key(system.engine, "cached", system.now())
    ticks[0] = 4.0
    assert verifier.verify(key, system.now()).name == "cached"  # still within the cache window
    ticks[0] = 5.5
    with pytest.raises(AuthenticationError):
        verifier.verify(key, system.now())


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer not-a-key-at-all", "Bearer fbk_" + "Z" * 43, "user token"],
)
@pytest.mark.parametrize(
    "method, path",
    [("GET", "/api/dislike-history"), ("GET", "/api/feedback-metrics"), ("POST", "/api/dislike")],
)
def test_a_database_without_schema_is_a_503_not_a_refused_key(empty_url, authorization, method, path):
    empty = FeedbackSystem.from_url(empty_url)
    app = create_app(system=empty, config=ApiConfig(token_secret=SECRET, key_cache_seconds=0.0))
    if authorization == "user token":
        token, _ = UserTokens(SECRET).issue(7, empty.now(), 600, issuer=1)
        authorization = f"Bearer {token}"
    headers = {"Authorization": authorization, "X-User-ID": "7"}
    r = app.test_client().open(path, method=method, headers=headers, json={"movie_id": 1})
    assert r.status_code == 503
    assert error_of(r) == {"code": "database_unavailable", "message": NO_SCHEMA_MESSAGE, "field": None}
    assert r.headers["Retry-After"]
    assert app.test_client().get("/healthz").get_json()["error"]["message"] == NO_SCHEMA_MESSAGE
    empty.init_feedback_tables()  # once initialised, an unknown key is the caller's fault again
    assert (
        app.test_client().open(path, method=method, headers=headers, json={"movie_id": 1}).status_code == 401
    )
    empty.close()


def test_refused_keys_cost_one_schema_check_per_process_not_one_per_request(api):
    # A flood of wrong keys must not add reads of its own: once the schema was seen, a refused
    # key is answered 401 at once.
    asked = []

    def note(conn, cursor, statement, parameters, context, executemany):
        if "alembic_version" in statement:
            asked.append(statement)

    event.listen(Engine, "before_cursor_execute", note)
    try:
        client = api.app.test_client()
        for n in range(5):
            r = client.get("/api/dislike-history", headers={"Authorization": f"Bearer fbk_wrong{n}"})
            assert r.status_code == 401
    finally:
        event.remove(Engine, "before_cursor_execute", note)
    assert len(asked) <= 2  # the first refusal's check (a table lookup and the revision)


def test_service_keys_are_refused_on_every_operator_endpoint(api):
    api.post("/api/dislike", {"movie_id": 1, "movie_title": "A", "genres": ["Horror"]})
    adjustment_id = rows(api.system, feature_adjustments)[0].adjustment_id
    client = api.app.test_client()
    checked = 0
    for rule, method in every_route(api.app):
        if ACCESS.get(rule.endpoint) != ADMIN or method in ("HEAD", "OPTIONS"):
            continue
        path = re.sub(r"<[^>]+>", str(adjustment_id), rule.rule)
        before = row_counts(api.system)
        r = client.open(path, method=method, headers=api.headers("service"))
        assert r.status_code == 403, (method, path)
        assert error_of(r)["code"] == "forbidden"
        assert row_counts(api.system) == before
        checked += 1
    assert checked == 11
    assert rows(api.system, feature_adjustments)[0].status == "proposed"


def test_the_access_table_covers_every_route(api):
    for rule in api.app.url_map.iter_rules():
        assert ACCESS.get(rule.endpoint) in (PUBLIC, USER, SERVICE, ADMIN), rule.rule
    assert [r.rule for r in api.app.url_map.iter_rules() if ACCESS[r.endpoint] == PUBLIC] == ["/healthz"]


def test_an_admin_key_may_act_for_a_user(api):
    r = api.post("/api/dislike", {"movie_id": 1, "movie_title": "A"}, key="admin", user=12)
    assert r.status_code == 201
    assert rows(api.system, user_dislikes)[0].user_id == 12


@pytest.mark.parametrize("value", [None, "", "abc", "0", "-3", "1.5", "99999999999999999999", "7 8"])
def test_a_service_key_must_name_a_valid_user(api, value):
    before = row_counts(api.system)
    headers = {} if value is None else {"X-User-ID": value}
    r = api.post("/api/dislike", {"movie_id": 1, "movie_title": "A"}, user=None, headers=headers)
    assert r.status_code == 400
    error = error_of(r)
    assert error["field"] == "X-User-ID"
    assert row_counts(api.system) == before


def test_users_cannot_reach_each_others_data(api):
    dislike_id = api.post("/api/dislike", {"movie_id": 1, "movie_title": "A"}, user=1).get_json()[
        "dislike_id"
    ]
    assert api.get("/api/dislike-history", user=2).get_json()["count"] == 0
    assert api.get("/api/dislike-patterns", user=2).get_json()["patterns"]["total_dislikes"] == 0
    before = row_counts(api.system)
    assert api.delete(f"/api/dislike/{dislike_id}", user=2).status_code == 404
    assert row_counts(api.system) == before
    assert rows(api.system, user_dislikes)[0].retracted_at is None


# ---------------------------------------------------------------- end-user tokens


def mint(api, user_id: int, **extra) -> str:
    r = api.post("/api/user-tokens", {"user_id": user_id, **extra}, user=None)
    assert r.status_code == 201
    body = r.get_json()
    assert body["user_id"] == user_id and body["token_type"] == "Bearer"
    return body["token"]


def test_a_token_is_never_stored_for_a_replay(api):
    before = row_counts(api.system)
    r = api.post("/api/user-tokens", {"user_id": 5}, user=None, headers={"Idempotency-Key": "mint-1"})
    assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers
    assert row_counts(api.system) == before  # issuing writes nothing, not even a stored response
    assert "Idempotency-Key" not in json.dumps(api.checker.doc["paths"]["/api/user-tokens"])


def test_a_user_token_acts_for_its_user_only(api):
    api.system.add_movies([{"movie_id": m, "title": t} for m, t in ((1, "A"), (2, "B"))])
    token = mint(api, 5)
    assert (
        api.post("/api/dislike", {"movie_id": 1, "movie_title": "A"}, key=token, user=None).status_code == 201
    )
    assert rows(api.system, user_dislikes)[0].user_id == 5
    assert api.get("/api/dislike-history", key=token, user=5).get_json()["count"] == 1

    before = row_counts(api.system)
    other = api.post("/api/dislike", {"movie_id": 2, "movie_title": "B"}, key=token, user=6)
    assert other.status_code == 403 and error_of(other)["field"] == "X-User-ID"
    for path in ("/api/feedback-metrics", "/api/model-versions", "/api/adjustments", "/api/openapi.json"):
        assert api.get(path, key=token, user=None).status_code == 403, path
    minted = api.post("/api/user-tokens", {"user_id": 6}, key=token, user=None)
    assert minted.status_code == 403  # a token cannot mint tokens for someone else
    assert row_counts(api.system) == before


def test_a_user_token_expires(api, clock):
    token = mint(api, 5, ttl_seconds=60)
    assert api.get("/api/dislike-history", key=token, user=None).status_code == 200
    clock.advance(seconds=61)
    r = api.get("/api/dislike-history", key=token, user=None)
    assert r.status_code == 401 and "expired" in error_of(r)["message"]


def test_a_tampered_or_foreign_token_is_refused(api):
    token = mint(api, 5)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert api.get("/api/dislike-history", key=tampered, user=None).status_code == 401
    foreign, _ = UserTokens("another-secret-" + "y" * 40).issue(5, api.system.now(), 600, 1)
    assert api.get("/api/dislike-history", key=foreign, user=None).status_code == 401


def test_token_lifetimes_are_bounded(api):
    for ttl in (0, 59, 3601, 10**9):
        r = api.post("/api/user-tokens", {"user_id": 5, "ttl_seconds": ttl}, user=None)
        assert r.status_code == 400 and error_of(r)["field"] == "ttl_seconds"
    assert api.post("/api/user-tokens", {"user_id": 0}, user=None).status_code == 400


def test_tokens_are_off_without_a_secret(system):
    api = make_api(system, token_secret=None)
    r = api.post("/api/user-tokens", {"user_id": 5}, user=None)
    assert r.status_code == 404 and "FEEDBACK_API_SECRET" in error_of(r)["message"]
    token, _ = UserTokens("some-secret-" + "z" * 40).issue(5, system.now(), 600, 1)
    assert api.get("/api/dislike-history", key=token, user=None).status_code == 401


def test_a_short_secret_is_refused(system):
    with pytest.raises(ValidationError, match="32 characters"):
        create_app(system=system, config=ApiConfig(token_secret="short"))


# ---------------------------------------------------------------- audit and the CLI


def test_operator_actions_through_the_api_are_audited_with_the_key_name(api):
    api.post("/api/retrain-jobs", key="admin", user=None)
    (entry,) = rows(api.system, audit_log, audit_log.c.action == "retrain.queued")
    assert entry.actor == "api:ops"


def test_cli_creates_lists_and_revokes_keys(system, db_url, capsys):
    assert main(["--db", db_url, "create-api-key", "--name", "backend", "--role", "service"]) == 0
    out = capsys.readouterr().out
    key = re.search(r"fbk_[A-Za-z0-9_-]{43}", out).group(0)
    (row,) = rows(system, api_keys, api_keys.c.name == "backend")
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest() and row.role == "service"
    assert count(system, audit_log, audit_log.c.action == "api_key.created") == 1

    assert main(["--db", db_url, "create-api-key", "--name", "backend", "--role", "admin"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["--db", db_url, "create-api-key", "--name", "bad name!", "--role", "admin"]) == 2
    assert "name must be" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--db", db_url, "create-api-key", "--name", "x", "--role", "root"])
    capsys.readouterr()

    assert main(["--db", db_url, "list-api-keys"]) == 0
    listing = capsys.readouterr().out
    assert "backend" in listing and key not in listing and key[:12] in listing

    assert main(["--db", db_url, "revoke-api-key", "--name", "backend"]) == 0
    assert rows(system, api_keys, api_keys.c.name == "backend")[0].revoked_at is not None
    app = create_app(system=system, config=ApiConfig(key_cache_seconds=0))
    r = app.test_client().get("/api/feedback-metrics", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 401


def test_cli_json_output_carries_the_key_once(system, db_url, capsys):
    assert main(["--db", db_url, "create-api-key", "--name", "ops-json", "--role", "admin", "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["role"] == "admin" and created["key"].startswith("fbk_")
    assert main(["--db", db_url, "list-api-keys", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [k["name"] for k in listed] == ["ops-json"] and "key" not in listed[0]


def test_serve_refuses_debug_mode_outside_development(system, db_url, monkeypatch, capsys):
    monkeypatch.setenv("FEEDBACK_ENV", "production")
    assert main(["--db", db_url, "serve", "--debug", "--port", "0"]) == 2
    assert "debug mode" in capsys.readouterr().err


@pytest.mark.parametrize("environment", [None, "production"])
def test_serve_debug_is_refused_first_naming_the_option(tmp_path, monkeypatch, capsys, environment):
    from flask import Flask

    monkeypatch.setattr(Flask, "run", lambda *a, **k: pytest.fail("the server must not start"))
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    if environment is None:
        monkeypatch.delenv("FEEDBACK_ENV", raising=False)
    else:
        monkeypatch.setenv("FEEDBACK_ENV", environment)
    target = tmp_path / "x.db"
    assert main(["--db", f"sqlite:///{target}", "serve", "--debug", "--port", "0"]) == 2
    out, err = capsys.readouterr()
    assert out == ""  # no "feedback-core API on ..." before the refusal
    assert err == (
        "error: refusing to start with Flask debug mode (--debug) outside development: drop --debug, or set "
        "FEEDBACK_ENV=development on a machine nobody else can reach (FEEDBACK_ENV is 'production')\n"
    )
    assert not target.exists()


def test_serve_debug_runs_in_development(tmp_path, monkeypatch, capsys):
    from flask import Flask

    ran = {}
    monkeypatch.setattr(Flask, "run", lambda app, **kwargs: ran.update(kwargs))
    monkeypatch.setenv("FEEDBACK_ENV", "development")
    assert main(["--db", f"sqlite:///{tmp_path / 'x.db'}", "serve", "--debug", "--port", "0"]) == 0
    assert ran["debug"] is True
    assert capsys.readouterr().out.startswith("feedback-core API on http://127.0.0.1:")


@pytest.mark.parametrize("environment", ["prod", "dev", "staging"])
def test_serve_refuses_an_unknown_feedback_env(tmp_path, monkeypatch, capsys, environment):
    from flask import Flask

    monkeypatch.setattr(Flask, "run", lambda *a, **k: pytest.fail("the server must not start"))
    monkeypatch.setenv("FEEDBACK_ENV", environment)
    target = tmp_path / "x.db"
    assert main(["--db", f"sqlite:///{target}", "serve", "--port", "0"]) == 2
    out, err = capsys.readouterr()
    assert (out, err) == (
        "",
        f"error: FEEDBACK_ENV must be one of production, development, got {environment!r}\n",
    )
    assert not target.exists()


def test_no_key_reaches_the_logs_or_error_bodies(api, caplog, monkeypatch):
    caplog.set_level("DEBUG")
    bogus = "fbk_" + "Z" * 43
    bodies = [
        api.get("/api/dislike-history").get_data(as_text=True),
        api.get("/api/dislike-history", key=bogus).get_data(as_text=True),
        api.get("/api/model-versions").get_data(as_text=True),
    ]

    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(api.system, "get_dislike_pattern_analysis", explode)
    bodies.append(api.get("/api/dislike-patterns", check=False).get_data(as_text=True))
    assert "RuntimeError" in caplog.text  # something was logged, and it holds no key
    for secret in (api.service_key, api.admin_key, bogus, api.service_key[12:], api.admin_key[12:]):
        assert secret not in caplog.text
        assert all(secret not in body for body in bodies)
