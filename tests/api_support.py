"""Shared by the API tests: an app over the test's database, keys, and a client that checks
every response against the OpenAPI document (its status must be documented, its body must
match the documented schema)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from sqlalchemy import func, select

from feedback_core.api import ApiConfig, create_app
from feedback_core.apikeys import create_api_key
from feedback_core.openapi import build_openapi
from feedback_core.schema import metadata

SECRET = "test-secret-" + "x" * 40
DOC_URI = "urn:feedback-core:openapi"


def openapi_path(rule: str) -> str:
    """``/api/dislike/<dislike_id>`` -> ``/api/dislike/{dislike_id}``."""
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule)


def _pointer(*parts: str) -> str:
    return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


class DocumentChecker:
    """Validate responses against the OpenAPI document."""

    def __init__(self, doc: dict) -> None:
        self.doc = doc
        self.registry = Registry().with_resource(
            DOC_URI, Resource.from_contents(doc, default_specification=DRAFT202012)
        )
        self._validators: dict[str, Draft202012Validator] = {}

    def validator(self, *parts: str) -> Draft202012Validator:
        key = "/".join(parts)
        if key not in self._validators:
            self._validators[key] = Draft202012Validator(
                {"$ref": DOC_URI + _pointer(*parts)}, registry=self.registry
            )
        return self._validators[key]

    def check(self, method: str, path_template: str, status: int, body: Any) -> None:
        """Assert that ``status`` is documented for the operation and ``body`` matches it."""
        operation = self.doc["paths"][path_template][method.lower()]
        documented = operation["responses"]
        assert str(status) in documented, (
            f"{method} {path_template} answered {status}, documented: {sorted(documented)}; body {body}"
        )
        parts = ("paths", path_template, method.lower(), "responses", str(status), "content")
        parts += ("application/json", "schema")
        errors = sorted(self.validator(*parts).iter_errors(body), key=lambda e: list(e.path))
        assert not errors, f"{method} {path_template} {status}: {errors[0].message} at {list(errors[0].path)}"


@dataclass
class Api:
    """The app under test with a service and an admin key, and a checking client."""

    system: Any
    app: Any
    service_key: str
    admin_key: str
    checker: DocumentChecker
    user: int = 7
    responses: list = field(default_factory=list)

    def headers(self, key: str | None = "service", user: int | None | str = "default", **extra: str) -> dict:
        out: dict[str, str] = {}
        if key == "service":
            out["Authorization"] = f"Bearer {self.service_key}"
        elif key == "admin":
            out["Authorization"] = f"Bearer {self.admin_key}"
        elif key is not None:
            out["Authorization"] = f"Bearer {key}"
        if user == "default":
            user = self.user
        if user is not None:
            out["X-User-ID"] = str(user)
        out.update(extra)
        return out

    def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: bytes | str | None = None,
        key: str | None = "service",
        user: int | None | str = "default",
        headers: dict | None = None,
        content_type: str | None = None,
        check: bool = True,
    ):
        """Send a request; check the response against the document; return it."""
        all_headers = self.headers(key, user)
        all_headers.update(headers or {})
        kwargs: dict[str, Any] = {"headers": all_headers}
        if json_body is not None:
            kwargs["data"] = json.dumps(json_body)
            kwargs["content_type"] = content_type or "application/json"
        elif data is not None:
            kwargs["data"] = data
            if content_type is not None:
                kwargs["content_type"] = content_type
        response = self.app.test_client().open(path, method=method, **kwargs)
        assert response.mimetype == "application/json", response.data[:200]
        body = response.get_json()
        assert body is not None
        text = response.get_data(as_text=True)
        assert "Traceback" not in text and 'File "' not in text
        if check:
            self.check(method, path, response.status_code, body)
        return response

    def check(self, method: str, path: str, status: int, body: Any) -> None:
        adapter = self.app.url_map.bind("localhost")
        rule, _ = adapter.match(path.split("?")[0], method=method, return_rule=True)
        self.checker.check(method, openapi_path(rule.rule), status, body)

    def get(self, path: str, **kw):
        return self.call("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw):
        return self.call("POST", path, json_body=body, **kw)

    def delete(self, path: str, **kw):
        return self.call("DELETE", path, **kw)


def make_api(system, **config: Any) -> Api:
    """Build the app over ``system`` with a service key ``recommender`` and an admin key ``ops``."""
    _, service = create_api_key(system.engine, "recommender", "service", system.now())
    _, admin = create_api_key(system.engine, "ops", "admin", system.now())
    options = {"token_secret": SECRET, "key_cache_seconds": 0.0, **config}
    app = create_app(system=system, config=ApiConfig(**options), flask_config={"TESTING": True})
    doc = build_openapi(system.settings, ApiConfig(**options).max_body_bytes)
    api = Api(system, app, service, admin, DocumentChecker(doc))
    # First use stamps last_used_at; do it now so later "no row changed" checks see only the test.
    api.get("/api/feedback-metrics")
    api.get("/api/feedback-metrics", key="admin")
    return api


def error_of(response) -> dict:
    """Return the error object of an error response, checking its shape."""
    body = response.get_json()
    assert body["success"] is False
    assert set(body["error"]) == {"code", "message", "field"}
    assert body["error"]["message"]
    return body["error"]


_COUNT_ALL = select(
    *[select(func.count()).select_from(t).scalar_subquery().label(t.name) for t in metadata.sorted_tables]
)


def row_counts(system) -> dict[str, int]:
    """Count the rows of every table in one statement (cheap enough to run around every request)."""
    with system.engine.connect() as conn:
        return dict(conn.execute(_COUNT_ALL).one()._mapping)
