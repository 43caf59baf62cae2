"""The API against hostile or careless callers: every case here once got through (a 500, a
write that should have been refused, a credential that outlived its key, a second spelling of
one request). Each asserts the answer and that a refused request wrote nothing."""

from __future__ import annotations

import io
import json
import math
import socket
import threading

import pytest
from api_support import error_of, make_api, row_counts
from helpers import rows
from werkzeug.serving import make_server

from feedback_core.api import ApiConfig, register_feedback_routes
from feedback_core.apikeys import revoke_api_key
from feedback_core.errors import ValidationError
from feedback_core.schema import (
    audit_log,
    feature_adjustments,
    movies,
    negative_examples,
    ratings,
    user_dislikes,
)
from feedback_core.validation import MAX_ID


@pytest.fixture
def api(system):
    system.add_movies(
        {"movie_id": m, "title": f"Movie {m}", "genres": ["Drama"], "cast": [f"Actor {m}"]}
        for m in range(1, 6)
    )
    return make_api(system)


def raw(api, method: str, path: str, data: bytes = b"", headers: dict | None = None, chunked: bool = False):
    """Send ``data`` as given (``chunked``: without a Content-Length, as a chunked body arrives)."""
    options: dict = {
        "headers": {**api.headers("service"), "Content-Type": "application/json", **(headers or {})}
    }
    if chunked:
        options["input_stream"] = io.BytesIO(data)
        options["environ_overrides"] = {"wsgi.input_terminated": True}
        options["headers"].setdefault("Transfer-Encoding", "chunked")
    else:
        options["data"] = data
    response = api.app.test_client().open(path, method=method, **options)
    assert response.mimetype == "application/json"
    return response


def test_the_largest_user_id_records_and_undoes_a_dislike(api):
    # PostgreSQL's per-user lock once overflowed its key: a 500 for the top ids.
    top = MAX_ID
    r = api.post("/api/dislike", {"movie_id": 1, "reason": "wrong_genre"}, user=top)
    assert r.status_code == 201, r.get_json()
    undone = api.delete(f"/api/dislike/{r.get_json()['dislike_id']}", user=top)
    assert undone.status_code == 200
    assert api.delete("/api/dislike/999", user=top - 1).status_code == 404


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("/api/dislike/1%00", "service"),
        ("/api/model-versions/%00/activate", "admin"),
        ("/api/adjustments/%00/approve", "admin"),
        ("/api/adjustments/1%00/reject", "admin"),
    ],
)
def test_a_nul_in_an_idempotent_path_is_a_400(api, path, key):
    before = row_counts(api.system)
    method = "DELETE" if path.startswith("/api/dislike") else "POST"
    r = api.call(
        method, path, key=key, user=7 if key == "service" else None, headers={"Idempotency-Key": "k1"}
    )
    assert r.status_code == 400
    assert row_counts(api.system) == before


def test_a_nul_in_an_api_key_is_a_401(api):
    for credential in (
        "fbk_\x00abcdefgh",
        "fbk_abc\x00defghijklmnop",
        "fbk_abcdefgh ijk",
        "fbk_é" + "a" * 20,
    ):
        r = api.get("/api/feedback-metrics", key=credential, user=None)
        assert r.status_code == 401, credential


def test_an_oversized_chunked_body_is_413_and_writes_nothing(system):
    api = make_api(system, max_body_bytes=4096)
    system.add_movies([{"movie_id": 2, "title": "Two"}])
    before = row_counts(system)
    padded = b'{"movie_id": 2, "rating": 4}' + b" " * 5000
    r = raw(api, "POST", "/api/ratings", padded, chunked=True)
    assert r.status_code == 413 and error_of(r)["code"] == "payload_too_large"
    assert row_counts(system) == before
    # One exactly at the cap is whole, and taken.
    exact = b'{"movie_id": 2, "rating": 4}'
    exact += b" " * (4096 - len(exact))
    assert raw(api, "POST", "/api/ratings", exact, chunked=True).status_code == 201
    assert len(rows(system, ratings)) == 1


def test_a_chunked_body_is_read_whatever_the_case_of_its_header(api):
    api.post("/api/dislike", {"movie_id": 1, "reason": "wrong_genre"})
    (proposal,) = rows(api.system, feature_adjustments)
    admin = {"Authorization": f"Bearer {api.admin_key}"}
    headers = {**admin, "Transfer-Encoding": "Chunked"}
    path = f"/api/adjustments/{proposal.adjustment_id}/approve"
    bogus = raw(api, "POST", path, b'{"bogus": 1}', headers=headers, chunked=True)
    assert bogus.status_code == 400 and error_of(bogus)["field"] == "bogus"
    edited = raw(api, "POST", path, b'{"magnitude": -0.01}', headers=headers, chunked=True)
    assert edited.status_code == 200
    (applied,) = rows(api.system, feature_adjustments)
    assert (applied.status, applied.magnitude) == ("applied", -0.01)


def test_a_user_token_ends_with_the_key_that_issued_it(api):
    token = api.post("/api/user-tokens", {"user_id": 5}, user=None).get_json()["token"]
    assert api.get("/api/dislike-history", key=token, user=None).status_code == 200
    revoke_api_key(api.system.engine, "recommender", api.system.now())
    r = api.get("/api/dislike-history", key=token, user=None)
    assert r.status_code == 401 and "revoked" in error_of(r)["message"]


def test_a_user_token_cannot_add_films_to_the_catalogue(api):
    token = api.post("/api/user-tokens", {"user_id": 5}, user=None).get_json()["token"]
    before = row_counts(api.system)
    r = api.post(
        "/api/dislike",
        {"movie_id": 500, "movie_title": "<img src=x onerror=alert(1)>", "genres": ["Drama"]},
        key=token,
        user=None,
    )
    assert r.status_code == 400 and error_of(r)["field"] == "movie_id"
    assert "catalogue" in error_of(r)["message"]
    assert row_counts(api.system) == before
    # A catalogued film is the token's to dislike; the service key still adds new ones.
    assert api.post("/api/dislike", {"movie_id": 2}, key=token, user=None).status_code == 201
    assert api.post("/api/dislike", {"movie_id": 500, "movie_title": "New"}, user=5).status_code == 201
    assert {m.movie_id for m in rows(api.system, movies)} == {1, 2, 3, 4, 5, 500}


def test_a_field_named_twice_is_refused(api):
    before = row_counts(api.system)
    r = raw(api, "POST", "/api/dislike", b'{"movie_id": "x", "movie_id": 2, "reason": "wrong_genre"}')
    assert r.status_code == 400
    assert error_of(r)["field"] == "movie_id" and "more than once" in error_of(r)["message"]
    nested = raw(api, "POST", "/api/recommendation-sets", b'{"items": [{"movie_id": 1, "movie_id": 2}]}')
    assert nested.status_code == 400 and error_of(nested)["field"] == "movie_id"
    assert row_counts(api.system) == before


@pytest.mark.parametrize("query", ["limit=1&limit=abc", "limit=abc&limit=1", "limit=1&limit=1"])
def test_a_query_parameter_given_twice_is_refused(api, query):
    r = api.get(f"/api/dislike-history?{query}")
    assert r.status_code == 400 and error_of(r)["field"] == "limit"
    compare = api.get("/api/model-versions/compare?a=1&b=1&a=2", key="admin", user=None)
    assert compare.status_code == 400 and error_of(compare)["field"] == "a"


def test_whose_lists_exist_is_not_told(api):
    theirs = api.post("/api/recommendation-sets", {"items": [3]}, user=8).get_json()["recommendation_set_id"]
    before = row_counts(api.system)
    answers = []
    for set_id in (theirs, theirs + 1000):
        r = api.post("/api/dislike", {"movie_id": 3, "recommendation_set_id": set_id})
        assert r.status_code == 400 and error_of(r)["field"] == "recommendation_set_id"
        answers.append(error_of(r)["message"].replace(str(set_id), "N"))
    assert answers[0] == answers[1]
    assert row_counts(api.system) == before


def test_names_are_one_feature_however_typed_and_never_invisible(api):
    api.post(
        "/api/dislike", {"movie_id": 100, "movie_title": "A", "reason": "wrong_genre", "genres": ["Café"]}
    )
    decomposed = "Cafe\u0301"
    api.post(
        "/api/dislike", {"movie_id": 101, "movie_title": "B", "reason": "wrong_genre", "genres": [decomposed]}
    )
    assert {a.feature_value for a in rows(api.system, feature_adjustments)} == {"Café"}
    before = row_counts(api.system)
    for name in ("Drama\u200b", "Dra\u202ema", "Dra\x07ma"):
        body = {"movie_id": 102, "movie_title": "C", "reason": "wrong_genre", "genres": [name]}
        r = api.post("/api/dislike", body)
        assert r.status_code == 400 and error_of(r)["field"] == "genres[0]", name
        r = api.post("/api/dislike", {**body, "genres": ["Drama"], "franchise": name})
        assert r.status_code == 400 and error_of(r)["field"] == "franchise", name
    assert row_counts(api.system) == before
    persian = "علی\u200cرضا"  # spelled with a zero-width non-joiner
    r = api.post(
        "/api/dislike", {"movie_id": 103, "movie_title": "D", "reason": "poor_quality", "cast": [persian]}
    )
    assert r.status_code == 201 and r.get_json()["feature_adjustments"]["cast_adjustments"] == {persian: -0.1}


@pytest.mark.parametrize("spelling", ["02", "%202", "2%0A", "%C2%A02", "+2"])
def test_an_id_has_one_spelling(api, spelling):
    r = api.post("/api/dislike", {"movie_id": 2})
    dislike_id = r.get_json()["dislike_id"]
    assert dislike_id == 1  # so that "02" and the rest name it
    before = row_counts(api.system)
    odd = api.delete(
        f"/api/dislike/{spelling.replace('2', str(dislike_id))}", headers={"Idempotency-Key": "u1"}
    )
    assert odd.status_code == 400 and error_of(odd)["field"] == "dislike_id"
    assert row_counts(api.system) == before
    assert api.post("/api/dislike", {"movie_id": 3}, user="007").status_code == 400


def test_the_openapi_document_refuses_unknown_query_parameters(api):
    r = api.get("/api/openapi.json?x=1", user=None)
    assert r.status_code == 400 and error_of(r)["field"] == "x"


def test_a_rating_error_names_the_field_alone(api):
    r = api.post("/api/ratings", {"movie_id": 2, "rating": 9})
    assert r.status_code == 400 and error_of(r)["field"] == "rating"
    assert "rows[" not in error_of(r)["message"]


def test_a_dislike_without_a_score_records_the_score_its_list_showed(api):
    shown = api.post(
        "/api/recommendation-sets", {"items": [{"movie_id": 3, "rank": 1, "predicted_score": 0.92}]}
    ).get_json()["recommendation_set_id"]
    r = api.post("/api/dislike", {"movie_id": 3, "recommendation_set_id": shown, "reason": "wrong_genre"})
    assert r.status_code == 201
    assert r.get_json()["training_impact"]["error_recorded"] == 0.92
    (dislike,) = rows(api.system, user_dislikes)
    (example,) = rows(api.system, negative_examples)
    assert (dislike.predicted_score, example.error) == (0.92, 0.92)
    # A score given is the caller's; without a list or a score it is unknown (null), not 0.
    given = api.post("/api/dislike", {"movie_id": 4, "predicted_score": 0.5}).get_json()
    assert given["training_impact"]["error_recorded"] == 0.5
    bare = api.post("/api/dislike", {"movie_id": 5}).get_json()
    assert bare["training_impact"]["error_recorded"] is None
    assert api.post("/api/dislike", {"movie_id": 2, "predicted_score": None}).status_code == 201
    stored = {r.movie_id: (r.predicted_score, r.score_known) for r in rows(api.system, user_dislikes)}
    assert stored == {3: (0.92, True), 4: (0.5, True), 5: (0.0, False), 2: (0.0, False)}
    history = api.get("/api/dislike-history").get_json()["dislikes"]
    assert {d["movie_id"]: d["predicted_score"] for d in history} == {3: 0.92, 4: 0.5, 5: None, 2: None}


def test_a_catalogued_films_own_features_are_what_a_dislike_counts_against(api):
    r = api.post(
        "/api/dislike",
        {"movie_id": 1, "reason": "wrong_genre", "genres": ["family"], "cast": ["Someone Else"]},
    )
    assert r.status_code == 201
    assert r.get_json()["feature_adjustments"]["genre_adjustments"] == {"Drama": -0.15}
    (dislike,) = rows(api.system, user_dislikes)
    assert (dislike.genres, dislike.cast) == (["Drama"], ["Actor 1"])
    assert json.dumps(api.get("/api/dislike-patterns").get_json()).count("family") == 0


def test_a_missing_version_in_a_comparison_is_named_by_its_side(api):
    from helpers import add_model_version

    add_model_version(api.system, 1, active=True, accuracy=0.7)
    for query, side in (("a=1&b=999", "b"), ("a=999&b=1", "a")):
        r = api.get(f"/api/model-versions/compare?{query}", key="admin", user=None)
        assert r.status_code == 404 and error_of(r)["field"] == side, query


def test_an_undo_takes_no_body_with_or_without_a_key(api):
    made = [api.post("/api/dislike", {"movie_id": m}).get_json()["dislike_id"] for m in (1, 2, 3)]
    before = row_counts(api.system)
    for headers in ({}, {"Idempotency-Key": "undo-1"}):
        big = raw(api, "DELETE", f"/api/dislike/{made[0]}", b"{" + b" " * 70_000 + b"}", headers=headers)
        assert big.status_code == 413, headers
        text = raw(
            api, "DELETE", f"/api/dislike/{made[0]}", b"x", headers={**headers, "Content-Type": "text/plain"}
        )
        assert text.status_code == 415, headers
        field = raw(api, "DELETE", f"/api/dislike/{made[0]}", b'{"why": "oops"}', headers=headers)
        assert field.status_code == 400 and error_of(field)["field"] == "why", headers
    assert row_counts(api.system) == before
    assert raw(api, "DELETE", f"/api/dislike/{made[1]}", b"{}").status_code == 200
    assert api.delete(f"/api/dislike/{made[2]}").status_code == 200  # no body at all


def test_a_user_token_neither_names_a_catalogued_films_features_nor_attributes_lists(api):
    token = api.post("/api/user-tokens", {"user_id": 5}, user=None).get_json()["token"]
    r = api.post(
        "/api/dislike",
        {"movie_id": 1, "movie_title": "Anything", "reason": "poor_quality", "franchise": "Injected Saga"},
        key=token,
        user=None,
    )
    assert r.status_code == 201
    assert r.get_json()["feature_adjustments"]["franchise_adjustments"] == {}  # film 1 has none
    (dislike,) = rows(api.system, user_dislikes)
    assert (dislike.movie_title, dislike.franchise) == ("Movie 1", None)
    before = row_counts(api.system)
    listed = api.post("/api/recommendation-sets", {"items": [2], "model_version_id": 1}, key=token, user=None)
    assert listed.status_code == 403 and error_of(listed)["field"] == "model_version_id"
    assert row_counts(api.system) == before
    assert api.post("/api/recommendation-sets", {"items": [2]}, key=token, user=None).status_code == 201


@pytest.mark.parametrize(("host_limit", "accepted", "refused_over"), [(4096, 4096, 4096), (1000, 1000, 1000)])
def test_a_host_apps_body_limit_and_the_apis_cap_both_hold_for_chunked_bodies(
    system, host_limit, accepted, refused_over
):
    from flask import Flask

    from feedback_core.api import ApiConfig, register_feedback_routes
    from feedback_core.apikeys import create_api_key

    system.add_movies([{"movie_id": 2, "title": "Two"}])
    host = Flask("host")
    host.config["MAX_CONTENT_LENGTH"] = host_limit
    register_feedback_routes(host, system=system, config=ApiConfig(key_cache_seconds=0, max_body_bytes=4096))
    _, key = create_api_key(system.engine, "svc", "service", system.now())

    def send(size: int):
        body = b'{"movie_id": 2, "rating": 4}'
        return host.test_client().post(
            "/api/ratings",
            input_stream=io.BytesIO(body + b" " * (size - len(body))),
            environ_overrides={"wsgi.input_terminated": True},
            headers={
                "Authorization": f"Bearer {key}",
                "X-User-ID": "7",
                "Content-Type": "application/json",
                "Transfer-Encoding": "chunked",
            },
        )

    over = send(refused_over + 1)
    assert over.status_code == 413 and f"larger than {refused_over} bytes" in error_of(over)["message"]
    assert rows(system, ratings) == []
    assert send(accepted).status_code == 201


def test_listed_origins_may_call_from_a_browser_and_others_may_not(system):
    from feedback_core.api import ApiConfig, create_app
    from feedback_core.errors import ConfigError

    api = make_api(system, cors_origins=("https://app.example.com",))
    client = api.app.test_client()
    preflight = client.open(
        "/api/dislike",
        method="OPTIONS",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
        },
    )  # a browser's preflight carries no credentials: it must not be a 401
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "idempotency-key" in preflight.headers["Access-Control-Allow-Headers"].lower()
    listed = client.get(
        "/api/dislike-history", headers={**api.headers("service"), "Origin": "https://app.example.com"}
    )
    assert (
        listed.status_code == 200
        and listed.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    )
    other = client.get(
        "/api/dislike-history", headers={**api.headers("service"), "Origin": "https://elsewhere.example"}
    )
    assert "Access-Control-Allow-Origin" not in other.headers  # the browser withholds the answer
    assert (
        "Access-Control-Allow-Origin"
        not in client.get("/healthz", headers={"Origin": "https://app.example.com"}).headers
    )
    # Without the setting, no page of another origin may read an answer.
    plain = create_app(
        system=system, config=ApiConfig(key_cache_seconds=0), flask_config={"TESTING": True}
    ).test_client()
    r = plain.get(
        "/api/dislike-history", headers={**api.headers("service"), "Origin": "https://app.example.com"}
    )
    assert r.status_code == 200 and "Access-Control-Allow-Origin" not in r.headers
    for bad in ("app.example.com", "https://app.example.com/path", "*"):
        with pytest.raises(ConfigError, match="FEEDBACK_API_CORS_ORIGINS"):
            ApiConfig(cors_origins=(bad,))
    assert ApiConfig.from_env(
        {"FEEDBACK_API_CORS_ORIGINS": " https://a.example , http://b.example:8080/ "}
    ).cors_origins == (
        "https://a.example",
        "http://b.example:8080",
    )


def _send_raw(port: int, request: bytes) -> tuple[int, dict]:
    """Send ``request`` as bytes over a socket; return the status and the JSON body answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        conn.shutdown(socket.SHUT_WR)  # the body ends here, whatever its chunks promised
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


@pytest.mark.parametrize(
    "chunks",
    [
        b'5\r\n{"mov\r\nZZ\r\n',  # a chunk size that is not hexadecimal
        b'40\r\n{"movie_id": 1',  # cut off inside a chunk
    ],
)
def test_a_malformed_or_cut_off_chunked_body_is_a_400_through_a_real_server(api, chunks):
    server = make_server("127.0.0.1", 0, api.app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        before = row_counts(api.system)
        head = (
            "POST /api/dislike HTTP/1.1\r\nHost: localhost\r\n"
            f"Authorization: Bearer {api.service_key}\r\nX-User-ID: 7\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        status, body = _send_raw(server.port, head.encode() + chunks)
        assert status == 400, body
        assert body["success"] is False and "could not be read" in body["error"]["message"]
        assert row_counts(api.system) == before
        whole = json.dumps({"movie_id": 1, "reason": "other"}).encode()
        good = head.encode() + b"%x\r\n%s\r\n0\r\n\r\n" % (len(whole), whole)
        assert _send_raw(server.port, good)[0] == 201
    finally:
        server.shutdown()


def test_another_json_content_type_is_a_415_and_writes_nothing(api):
    before = row_counts(api.system)
    for content_type in ("application/merge-patch+json", "application/vnd.api+json", "text/json"):
        r = api.call("POST", "/api/dislike", data='{"movie_id": 1}', content_type=content_type)
        assert r.status_code == 415, content_type
        assert "application/json" in error_of(r)["message"]
    assert row_counts(api.system) == before
    ok = api.call(
        "POST", "/api/dislike", data='{"movie_id": 1}', content_type="application/json; charset=utf-8"
    )
    assert ok.status_code == 201


@pytest.mark.parametrize("limit", ["05", "%205", "5%20", "+5", "00"])
def test_a_limit_in_other_than_plain_digits_is_refused(api, limit):
    r = api.get(f"/api/dislike-history?limit={limit}")
    assert r.status_code == 400 and error_of(r)["field"] == "limit"
    assert "plain digits" in error_of(r)["message"]
    assert api.get("/api/dislike-history?limit=5").status_code == 200


def post_dislike(api, body: str, headers: dict, content_type: str = "application/json"):
    """POST ``body`` as given (its spacing, its order) to /api/dislike."""
    return api.call("POST", "/api/dislike", data=body, headers=headers, content_type=content_type)


def test_a_retry_whose_json_is_spaced_or_ordered_otherwise_is_the_same_request(api):
    headers = {"Idempotency-Key": "spacing-1"}
    first = post_dislike(api, '{"movie_id": 3, "reason": "other"}', headers)
    assert first.status_code == 201
    before = row_counts(api.system)
    again = post_dislike(
        api, '{ "reason":"other",\n "movie_id":3 }', headers, "application/json; charset=utf-8"
    )
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert row_counts(api.system) == before
    other = post_dislike(api, '{"movie_id": 4, "reason": "other"}', headers)
    assert other.status_code == 409 and error_of(other)["code"] == "idempotency_key_reused"
    assert row_counts(api.system) == before


def test_a_score_of_minus_zero_is_zero(api):
    r = api.post("/api/dislike", {"movie_id": 2, "predicted_score": -0.0})
    assert r.status_code == 201
    recorded = r.get_json()["training_impact"]["error_recorded"]
    assert recorded == 0.0 and math.copysign(1.0, recorded) == 1.0
    assert '"error_recorded":-0.0' not in r.get_data(as_text=True).replace(" ", "")


@pytest.mark.parametrize("title", ["Bell\u0007", "Esc\x1b[31mred", "Two\nlines", "C1\u009b"])
def test_a_film_title_with_a_control_character_is_refused_and_writes_nothing(api, title):
    before = row_counts(api.system)
    r = api.post("/api/dislike", {"movie_id": 900, "movie_title": title})
    assert r.status_code == 400 and error_of(r)["field"] == "movie_title"
    assert "control characters" in error_of(r)["message"]
    assert row_counts(api.system) == before
    with pytest.raises(ValidationError, match="title must not contain control characters"):
        api.system.add_movies([{"movie_id": 901, "title": title}])
    assert row_counts(api.system) == before


def test_the_adjustments_filter_takes_all_any_spelling_of_a_name_and_type_colon_value(api):
    api.system.add_movies([{"movie_id": 20, "title": "Cafe film", "genres": ["Café"]}])
    api.post("/api/dislike", {"movie_id": 20, "reason": "wrong_genre"})
    api.post("/api/dislike", {"movie_id": 1, "reason": "wrong_genre"})

    def found(query: str) -> list[str]:
        r = api.get(f"/api/adjustments?{query}", key="admin", user=None)
        assert r.status_code == 200, r.get_json()
        return sorted(a["feature_value"] for a in r.get_json()["adjustments"])

    assert found("status=all") == ["Café", "Drama"]
    assert found("feature=Caf%C3%A9") == ["Café"]  # composed
    assert found("feature=Cafe%CC%81") == ["Café"]  # decomposed: the same name
    assert found("feature=genre:Drama") == ["Drama"]  # as decisions name a feature
    assert found("feature=genre%3A%20drama") == ["Drama"]
    assert found("feature=cast:Drama") == []
    assert found("feature=genre") == ["Café", "Drama"]
    r = api.get("/api/adjustments?status=bogus", key="admin", user=None)
    assert r.status_code == 400 and error_of(r)["field"] == "status"
    assert "or all" in error_of(r)["message"]


def test_a_host_apps_own_api_routes_keep_their_own_errors(system):
    from flask import Flask, abort

    host = Flask("host")

    @host.get("/api/own")
    def own():
        abort(418)

    register_feedback_routes(host, system=system, config=ApiConfig(key_cache_seconds=0))
    client = host.test_client()
    answer = client.get("/api/own")
    assert answer.status_code == 418 and answer.mimetype == "text/html"  # the host's, untouched
    missing = client.get("/api/missing")  # no route at all under /api/: the API's JSON 404
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    unauthorised = client.get("/api/dislike-history")  # the API's own route
    assert unauthorised.status_code == 401 and unauthorised.get_json()["success"] is False


def test_an_undo_through_a_user_token_is_the_users_own_in_the_audit(api):
    token = api.post("/api/user-tokens", {"user_id": 5}, user=None).get_json()["token"]
    made = api.post("/api/dislike", {"movie_id": 2, "reason": "wrong_genre"}, key=token, user=None)
    undone = api.delete(f"/api/dislike/{made.get_json()['dislike_id']}", key=token, user=None)
    assert undone.status_code == 200
    (audit,) = rows(api.system, audit_log, audit_log.c.action == "dislike.retracted")
    assert audit.actor == "user:5"
    (withdrawn,) = rows(api.system, feature_adjustments)
    assert (withdrawn.status, withdrawn.decided_by) == ("rejected", "user:5")


def test_a_retry_of_a_request_first_answered_before_bodies_were_compared_as_json_still_replays(api):
    """A key stored with the fingerprint of the body's bytes (as servers before the JSON
    comparison stored them, e.g. by another worker during a rolling upgrade) still replays the
    retry of that very request instead of calling it another request (409)."""
    import hashlib

    from sqlalchemy import select, update

    from feedback_core.schema import idempotent_requests

    body = '{"movie_id": 3, "reason": "other"}'
    headers = {"Idempotency-Key": "before-upgrade-1"}
    first = post_dislike(api, body, headers)
    assert first.status_code == 201
    raw = hashlib.sha256(b"\0".join([b"", b"application/json", body.encode()])).hexdigest()
    table = idempotent_requests
    with api.system.engine.begin() as conn:
        stored = conn.execute(select(table.c.body)).scalar_one()
        assert stored["fingerprint"] != raw  # the bytes are not the canonical JSON
        conn.execute(update(table).values(body={**stored, "fingerprint": raw}))
    before = row_counts(api.system)
    again = post_dislike(api, body, headers)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert row_counts(api.system) == before
    other = post_dislike(api, '{"movie_id": 4, "reason": "other"}', headers)
    assert other.status_code == 409 and error_of(other)["code"] == "idempotency_key_reused"
