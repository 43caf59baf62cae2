"""The OpenAPI document matches the app: same routes, same access rules, same limits, and real
responses validate against it (the ``api`` client checks every response it gets)."""

from __future__ import annotations

import re

import pytest
from api_support import make_api, openapi_path
from jsonschema import Draft202012Validator

from feedback_core.api import ACCESS, PUBLIC, USER
from feedback_core.openapi import build_openapi
from feedback_core.settings import REASONS, Settings

IMPLICIT = {"HEAD", "OPTIONS"}


@pytest.fixture
def api(system):
    """The app over the test's database, with a service key and an admin key."""
    return make_api(system)


def operations(doc: dict):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            yield path, method.upper(), op


def test_every_route_is_documented_and_every_documented_operation_exists(api):
    doc = api.checker.doc
    served = {
        (openapi_path(rule.rule), method)
        for rule in api.app.url_map.iter_rules()
        for method in rule.methods - IMPLICIT
    }
    documented = {(path, method) for path, method, _ in operations(doc)}
    assert served == documented


def test_path_parameters_match_the_routes(api):
    doc = api.checker.doc
    for rule in api.app.url_map.iter_rules():
        path = openapi_path(rule.rule)
        names = set(re.findall(r"{([a-z_]+)}", path))
        for method in rule.methods - IMPLICIT:
            op = doc["paths"][path][method.lower()]
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == names, (method, path)


def test_access_rules_in_the_document_are_the_apps(api):
    doc = api.checker.doc
    for rule in api.app.url_map.iter_rules():
        access = ACCESS[rule.endpoint]
        for method in rule.methods - IMPLICIT:
            op = doc["paths"][openapi_path(rule.rule)][method.lower()]
            assert op["x-access"] == access, rule.rule
            headers = {p["name"] for p in op.get("parameters", []) if p["in"] == "header"}
            assert ("X-User-ID" in headers) == (access == USER), rule.rule
            if access == PUBLIC:
                assert op["security"] == [] and "401" not in op["responses"]
            else:
                assert op["security"] == [{"bearerAuth": []}]
                assert {"401", "403"} <= set(op["responses"])


def test_every_schema_is_valid_json_schema_and_every_error_uses_the_error_schema(api):
    doc = api.checker.doc
    assert doc["openapi"].startswith("3.1")
    for schema in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    for path, method, op in operations(doc):
        for status, response in op["responses"].items():
            schema = response["content"]["application/json"]["schema"]
            if int(status) >= 400:
                assert schema == {"$ref": "#/components/schemas/Error"}, (path, method, status)
        idempotent = any(p["name"] == "Idempotency-Key" for p in op.get("parameters", []))
        if "requestBody" in op:
            assert {"413", "415"} <= set(op["responses"]), (path, method)
        if idempotent:
            assert {"409", "413"} <= set(op["responses"]), (path, method)


def test_limits_in_the_document_follow_the_settings(tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", max_title_length=120, max_list_items=7)
    doc = build_openapi(settings, 4096)
    dislike = doc["components"]["schemas"]["DislikeIn"]
    assert dislike["properties"]["movie_title"]["maxLength"] == 120
    assert dislike["properties"]["genres"]["maxItems"] == 7
    assert dislike["properties"]["reason"]["enum"] == list(REASONS)
    assert dislike["additionalProperties"] is False
    assert "4096 bytes" in doc["info"]["description"]


def test_the_document_is_served_to_key_holders_only(api):
    r = api.get("/api/openapi.json", user=None)
    assert r.status_code == 200
    assert r.get_json() == api.checker.doc
    assert api.get("/api/openapi.json", key=None, user=None).status_code == 401


def test_a_walk_through_the_loop_validates_against_the_document(api):
    # Each call below is checked by the client: documented status, documented body.
    api.system.add_movies({"movie_id": m, "title": f"M{m}", "genres": ["Drama"]} for m in range(1, 9))
    api.post("/api/ratings", {"movie_id": 1, "rating": 5})
    rec = api.get("/api/recommendations?k=3").get_json()
    set_id = rec["recommendation_set_id"]
    api.get(f"/api/recommendation-sets/{set_id}")
    first = rec["items"][0]
    d = api.post(
        "/api/dislike",
        {
            "movie_id": first["movie_id"],
            "recommendation_set_id": set_id,
            "predicted_score": first["predicted_score"],
            "reason": "wrong_genre",
        },
    ).get_json()
    api.get("/api/dislike-history")
    api.get("/api/dislike-patterns")
    api.get("/api/feedback-metrics")
    adjustments = api.get("/api/adjustments", key="admin", user=None).get_json()["adjustments"]
    api.post(f"/api/adjustments/{adjustments[0]['adjustment_id']}/approve", key="admin", user=None)
    job = api.post("/api/retrain-jobs", key="admin", user=None).get_json()["job"]
    api.system.run_worker(once=True)
    done = api.get(f"/api/retrain-jobs/{job['job_id']}", key="admin", user=None).get_json()["job"]
    assert done["status"] == "succeeded", done
    versions = api.get("/api/model-versions", key="admin", user=None).get_json()["model_versions"]
    vid = versions[0]["version_id"]
    api.get(f"/api/model-versions/{vid}", key="admin", user=None)
    api.get(f"/api/model-versions/compare?a={vid}&b={vid}", key="admin", user=None)
    api.post(f"/api/model-versions/{vid}/activate", key="admin", user=None)
    api.get("/api/retrain-jobs", key="admin", user=None)
    api.delete(f"/api/dislike/{d['dislike_id']}")
    api.post("/api/user-tokens", {"user_id": 3}, user=None)
    api.app.test_client().get("/healthz")
