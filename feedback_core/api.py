"""The HTTP API (Flask): the specification's endpoints and the rest of the learning loop.

``create_app(settings=None)`` builds a complete app; ``register_feedback_routes(app)`` mounts
the same blueprint on an existing one (the specification's entry point). Every view is
parse and validate -> one ``FeedbackSystem`` call -> JSON. Errors become
``{"success": false, "error": {"code", "message", "field"}}`` in ``_error_response`` and
nowhere else; no stack trace or exception text of an unexpected error ever leaves the server.

Production: ``gunicorn -w 4 -b 0.0.0.0:8000 'feedback_core.api:create_app()'``.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask import Blueprint, Flask, current_app, g, jsonify, make_response, request
from flask.json.provider import DefaultJSONProvider
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from feedback_core import api_input as inp
from feedback_core.apikeys import TOKEN_PREFIX, KeyVerifier, UserTokens
from feedback_core.authz import Operator, Principal
from feedback_core.db import current_revision, format_ts
from feedback_core.errors import (
    AuthenticationError,
    ConfigError,
    DatabaseUnavailableError,
    FeedbackError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from feedback_core.idempotency import claim_key, complete_key, release_key
from feedback_core.settings import Settings

log = logging.getLogger("feedback_core.api")

EXTENSION = "feedback_api"
# Who may call an endpoint: anyone; an end user (service/admin key + X-User-ID, or a user
# token); any API key; an admin key.
PUBLIC, USER, SERVICE, ADMIN = "public", "user", "service", "admin"
ACCESS: dict[str, str] = {}

bp = Blueprint(EXTENSION, __name__)


# ---------------------------------------------------------------- configuration and state


@dataclass(frozen=True)
class ApiConfig:
    """HTTP-only settings, read from ``FEEDBACK_ENV`` and ``FEEDBACK_API_*`` variables."""

    environment: str = "production"
    max_body_bytes: int = 64 * 1024
    token_secret: str | None = None
    key_cache_seconds: float = 5.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "ApiConfig":
        """Read the API settings from the environment."""
        env = os.environ if environ is None else environ
        try:
            return cls(
                environment=env.get("FEEDBACK_ENV", "production").strip().lower() or "production",
                max_body_bytes=int(env.get("FEEDBACK_API_MAX_BODY_BYTES") or 64 * 1024),
                token_secret=env.get("FEEDBACK_API_SECRET") or None,
                key_cache_seconds=float(env.get("FEEDBACK_API_KEY_CACHE_SECONDS") or 5.0),
            )
        except ValueError as exc:
            raise ConfigError(f"invalid FEEDBACK_API_* setting: {exc}") from None


@dataclass(frozen=True)
class Caller:
    """Who is calling: a key's role or an end-user token, and the user acted for."""

    kind: str  # service / admin / user
    name: str
    scope: str
    user_id: int | None = None


@dataclass
class _State:
    system: Any
    config: ApiConfig
    keys: KeyVerifier
    tokens: UserTokens | None


def _state() -> _State:
    return current_app.extensions[EXTENSION]


def _system():
    return _state().system


class FeedbackJSONProvider(DefaultJSONProvider):
    """JSON in the system's own formats: timestamps as ``YYYY-MM-DD HH:MM:SS``, no NaN."""

    sort_keys = False

    @staticmethod
    def default(o: Any) -> Any:
        if isinstance(o, datetime):
            return format_ts(o)
        if isinstance(o, date):
            return o.isoformat()
        if isinstance(o, Decimal):
            return float(o)
        if isinstance(o, (set, frozenset, tuple)):
            return list(o)
        if hasattr(o, "item"):  # numpy scalars from the model code
            return o.item()
        return DefaultJSONProvider.default(o)

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        import json

        kwargs.setdefault("default", self.default)
        kwargs.setdefault("ensure_ascii", self.ensure_ascii)
        kwargs.setdefault("sort_keys", self.sort_keys)
        try:
            return json.dumps(obj, allow_nan=False, **kwargs)
        except ValueError:  # a NaN or infinity somewhere in a metric: JSON has no such number
            return json.dumps(_finite(obj), allow_nan=False, **kwargs)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


class FeedbackApp(Flask):
    """A Flask app that refuses to run with the debugger outside development."""

    json_provider_class = FeedbackJSONProvider

    def run(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        debug = kwargs.get("debug")
        _refuse_debug(self, self.debug if debug is None else bool(debug))
        super().run(*args, **kwargs)


def _refuse_debug(app: Flask, debug: bool) -> None:
    environment = app.extensions[EXTENSION].config.environment
    if debug and environment != "development":
        # The Werkzeug debugger runs arbitrary code for whoever reaches it.
        raise ConfigError(
            "refusing to start with Flask debug mode outside development: unset FLASK_DEBUG, or "
            f"set FEEDBACK_ENV=development on a machine nobody else can reach (FEEDBACK_ENV is {environment!r})"
        )


def create_app(
    settings: Settings | None = None,
    *,
    system: Any = None,
    config: ApiConfig | None = None,
    flask_config: Mapping[str, Any] | None = None,
) -> Flask:
    """Build the API app over ``system`` (or one built from ``settings`` or the environment)."""
    if system is None:
        from feedback_core.system import FeedbackSystem

        system = FeedbackSystem.from_settings(settings or Settings.from_env())
    config = config or ApiConfig.from_env()
    app = FeedbackApp(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.config.update(flask_config or {})
    register_feedback_routes(app, system=system, config=config)
    _refuse_debug(app, app.debug)
    # Everything this app serves is the API: every error, routing ones included, is JSON.
    app.register_error_handler(HTTPException, _error_response)
    app.register_error_handler(Exception, _error_response)
    return app


def register_feedback_routes(app: Flask, system: Any = None, config: ApiConfig | None = None) -> None:
    """Mount the API on ``app`` (over ``system``, or the default system from the environment)."""
    if system is None:
        from feedback_core import get_default_system

        system = get_default_system()
    config = config or ApiConfig.from_env()
    app.extensions[EXTENSION] = _State(
        system=system,
        config=config,
        keys=KeyVerifier(system.engine, cache_seconds=config.key_cache_seconds),
        tokens=UserTokens(config.token_secret) if config.token_secret else None,
    )
    if not isinstance(app.json, FeedbackJSONProvider):
        app.json = FeedbackJSONProvider(app)
    app.register_blueprint(bp)


# ---------------------------------------------------------------- errors, in one place


def _error_response(exc: BaseException):
    """Turn any exception into the API's JSON error body and status."""
    if isinstance(exc, FeedbackError):
        status, error = exc.status, exc.to_dict()
        if status >= 500:
            log.error("%s %s: %s", request.method, request.path, exc.message)
    elif isinstance(exc, HTTPException):
        status = exc.code or 500
        code = {
            404: "not_found",
            405: "method_not_allowed",
            413: "payload_too_large",
            415: "unsupported_media_type",
        }.get(status, "http_error")
        message = {
            404: f"no endpoint {request.path}; see GET /api/openapi.json",
            405: f"{request.method} is not allowed on {request.path}",
            413: f"the request body is larger than {_cap()} bytes",
        }.get(status, exc.description or exc.name)
        error = {"code": code, "message": message, "field": None}
    elif isinstance(exc, OperationalError):
        # Not translated by the storage layer (e.g. SQLite's busy timeout ran out): transient.
        log.error("%s %s: database error %s", request.method, request.path, type(exc.orig).__name__)
        status = 503
        error = {"code": "database_unavailable", "message": "the database is busy; retry shortly", "field": None}
    else:
        log.exception("unexpected error in %s %s", request.method, request.path)
        status = 500
        error = {"code": "internal_error", "message": "an internal error occurred; it was logged", "field": None}
    response = jsonify({"success": False, "error": error})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="feedback-core"'
    if status == 503:
        response.headers["Retry-After"] = "5"
    return response


def _cap() -> int:
    return current_app.extensions[EXTENSION].config.max_body_bytes


def _api_http_error(exc: HTTPException):
    # Installed app-wide by the blueprint: only the API's own paths get JSON errors, a host
    # app keeps its own pages for everything else.
    if request.path.startswith("/api/") or request.path == "/healthz":
        return _error_response(exc)
    return exc


bp.register_error_handler(FeedbackError, _error_response)
bp.register_error_handler(HTTPException, _error_response)
bp.register_error_handler(Exception, _error_response)
bp.app_errorhandler(HTTPException)(_api_http_error)


# ---------------------------------------------------------------- authentication


@bp.before_request
def _authenticate() -> None:
    access = ACCESS.get(request.endpoint or "", PUBLIC)
    if access == PUBLIC:
        return
    g.caller = _identify(access)


def _identify(access: str) -> Caller:
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        raise AuthenticationError("send an API key: Authorization: Bearer <key>")
    state = _state()
    now = state.system.now()
    if credential.startswith(TOKEN_PREFIX):
        if state.tokens is None:
            raise AuthenticationError("user tokens are not enabled on this server")
        user_id = state.tokens.verify(credential, now)
        caller = Caller("user", f"user:{user_id}", "token", user_id)
    else:
        key = state.keys.verify(credential, now)
        caller = Caller(key.role, f"api:{key.name}", f"key:{key.key_id}")
    if access == ADMIN and caller.kind != "admin":
        raise PermissionDeniedError("this endpoint needs an admin API key")
    if access == SERVICE and caller.kind == "user":
        raise PermissionDeniedError("this endpoint needs an API key; a user token reaches only user endpoints")
    if access == USER:
        caller = replace(caller, user_id=_acting_user(caller))
    return caller


def _acting_user(caller: Caller) -> int:
    raw = request.headers.get("X-User-ID")
    named = None if raw is None else inp.check_positive_int_text(raw, "X-User-ID")
    if caller.kind == "user":
        if named is not None and named != caller.user_id:
            raise PermissionDeniedError(
                f"this token acts for user {caller.user_id} only, not user {named}", "X-User-ID"
            )
        return caller.user_id  # type: ignore[return-value]
    if named is None:
        raise ValidationError(
            "X-User-ID header is required: name the end user this request acts for", "X-User-ID"
        )
    return named


def _operator() -> Operator:
    # Admin keys act through the same role-checked, audited path as the dashboard.
    return Operator(_system(), Principal.of(g.caller.name, ["admin"]))


# ---------------------------------------------------------------- request helpers


def _raw_body() -> bytes:
    if "raw_body" not in g:
        cap = _cap()
        length = request.content_length
        if length is not None and length > cap:
            raise inp.PayloadTooLargeError(f"the request body is larger than {cap} bytes", None)
        raw = request.stream.read(cap + 1)
        if len(raw) > cap:
            raise inp.PayloadTooLargeError(f"the request body is larger than {cap} bytes", None)
        g.raw_body = raw
    return g.raw_body


def _json_body(optional: bool = False) -> dict:
    """Return the request's JSON object (``{}`` for an absent optional body)."""
    if optional and not request.content_length and "chunked" not in request.headers.get(
        "Transfer-Encoding", ""
    ):
        return {}
    charset = request.mimetype_params.get("charset", "utf-8").lower()
    if not request.is_json or charset not in ("utf-8", "utf8"):
        raise inp.UnsupportedMediaTypeError(
            "send the body as JSON with Content-Type: application/json (UTF-8), "
            f"got {request.headers.get('Content-Type', 'no Content-Type')[:80]!r}",
            None,
        )
    return inp.parse_json_body(_raw_body())


def _query(*allowed: str) -> Mapping[str, str]:
    inp.check_query(request.args, allowed)
    return request.args


def _ok(payload: Mapping[str, Any], status: int = 200):
    response = jsonify({"success": True, **payload})
    response.status_code = status
    return response


def _route(rule: str, methods: list[str], access: str, idempotent: bool = False):
    """Register a view with its access level (and Idempotency-Key support for writes)."""

    def register(view: Callable):
        ACCESS[f"{EXTENSION}.{view.__name__}"] = access
        bp.add_url_rule(rule, view.__name__, _idempotent(view) if idempotent else view, methods=methods)
        return view

    return register


def _idempotent(view: Callable) -> Callable:
    @functools.wraps(view)
    def wrapper(**kwargs: Any):
        raw_key = request.headers.get("Idempotency-Key")
        if raw_key is None:
            return view(**kwargs)
        key = inp.check_idempotency_key(raw_key)
        caller: Caller = g.caller
        path = request.path if len(request.path) <= 120 else hashlib.sha256(request.path.encode()).hexdigest()
        scope = f"{caller.scope}|user:{caller.user_id or '-'}|{request.method} {path}"
        body = _raw_body() if request.content_length else b""
        fingerprint = hashlib.sha256(
            b"\0".join([request.query_string, request.headers.get("Content-Type", "").encode(), body])
        ).hexdigest()
        engine = _system().engine
        stored = claim_key(engine, scope, key, fingerprint, _system().now())
        if stored is not None:
            response = current_app.response_class(
                current_app.json.dumps(stored.body), status=stored.status_code, mimetype="application/json"
            )
            response.headers["Idempotent-Replayed"] = "true"
            return response
        try:
            response = make_response(view(**kwargs))
        except Exception:
            _release_quietly(engine, scope, key)
            raise
        if 200 <= response.status_code < 300:
            complete_key(engine, scope, key, fingerprint, response.status_code, response.get_json())
        else:
            _release_quietly(engine, scope, key)
        return response

    return wrapper


def _release_quietly(engine, scope: str, key: str) -> None:
    try:
        release_key(engine, scope, key)
    except (DatabaseUnavailableError, OperationalError):
        # The request already failed; its claim expires by itself (idempotency.STALE_AFTER).
        log.warning("could not release Idempotency-Key claim for %s", scope)


# ---------------------------------------------------------------- the specification's endpoints

DISLIKE_FIELDS = {
    "movie_id": ("integer",),
    "movie_title": ("string",),
    "recommendation_set_id": ("integer", "null"),
    "predicted_score": ("number",),
    "reason": ("string",),
    "feedback_text": ("string", "null"),
    "genres": ("array", "null"),
    "cast": ("array", "null"),
    "franchise": ("string", "null"),
}


@_route("/api/dislike", ["POST"], USER, idempotent=True)
def post_dislike():
    """Record a dislike: 201 with its training impact, proposals and the user's patterns."""
    body = _json_body()
    inp.check_shape(body, DISLIKE_FIELDS, required=("movie_id",))
    user_id = g.caller.user_id
    fields = {"movie_title": "", **body}  # the title is optional once the movie is catalogued
    outcome = _system().record_dislike(
        user_id=user_id, idempotency_key=request.headers.get("Idempotency-Key"), **fields
    )
    patterns = _system().get_dislike_pattern_analysis(user_id)
    return _ok(
        {
            "dislike_id": outcome["dislike_id"],
            "duplicate": outcome["duplicate"],
            "training_impact": outcome["training_impact"],
            "feature_adjustments": outcome["feature_adjustments"],
            "user_patterns": patterns,
        },
        200 if outcome["duplicate"] else 201,
    )


@_route("/api/dislike/<dislike_id>", ["DELETE"], USER, idempotent=True)
def delete_dislike(dislike_id: str):
    """Undo one of the caller's own dislikes."""
    dislike_id_int = inp.check_positive_int_text(dislike_id, "dislike_id")
    return _ok(_system().retract_dislike(dislike_id_int, g.caller.user_id))


@_route("/api/dislike-history", ["GET"], USER)
def get_dislike_history():
    """Return the user's recent dislikes, newest first."""
    limit = inp.query_int(_query("limit"), "limit", 50, 1, 1000)
    dislikes = _system().get_user_dislikes(g.caller.user_id, limit=limit)
    return _ok({"count": len(dislikes), "dislikes": dislikes})


@_route("/api/dislike-patterns", ["GET"], USER)
def get_dislike_patterns():
    """Return the user's reason distribution, recent trend and most-disliked features."""
    _query()
    return _ok({"patterns": _system().get_dislike_pattern_analysis(g.caller.user_id)})


@_route("/api/feedback-metrics", ["GET"], SERVICE)
def get_feedback_metrics():
    """Return system-wide feedback metrics and the active model version."""
    _query()
    return _ok(_system().get_model_feedback_metrics())


# ---------------------------------------------------------------- the rest of the loop


@_route("/api/recommendations", ["GET"], USER)
def get_recommendations():
    """Recommend from the active model; the list is recorded as impressions."""
    k = inp.query_int(_query("k"), "k", 10, 1, 100)
    return _ok(_system().recommend(g.caller.user_id, k=k))


ITEM_FIELDS = {"movie_id": ("integer",), "rank": ("integer",), "predicted_score": ("number",)}


@_route("/api/recommendation-sets", ["POST"], USER, idempotent=True)
def post_recommendation_set():
    """Record a list the caller showed to the user; 201 with its id."""
    body = _json_body()
    inp.check_shape(
        body, {"items": ("array",), "model_version_id": ("integer", "null")}, required=("items",)
    )
    for i, item in enumerate(body["items"][:1000]):
        if isinstance(item, dict):
            inp.check_shape(item, ITEM_FIELDS, required=("movie_id",), where=f"items[{i}].")
        elif not inp.is_json_type(item, "integer"):
            raise ValidationError(
                f"items[{i}] must be a movie id or an object with movie_id, rank, predicted_score",
                f"items[{i}]",
            )
    set_id = _system().record_recommendation_set(
        g.caller.user_id, body["items"], model_version_id=body.get("model_version_id")
    )
    return _ok(
        {
            "recommendation_set_id": set_id,
            "user_id": g.caller.user_id,
            "model_version_id": body.get("model_version_id"),
            "item_count": len(body["items"]),
        },
        201,
    )


@_route("/api/recommendation-sets/<set_id>", ["GET"], USER)
def get_recommendation_set(set_id: str):
    """Return one list shown to the calling user."""
    _query()
    found = _system().get_recommendation_set(inp.check_positive_int_text(set_id, "recommendation_set_id"))
    if found["user_id"] != g.caller.user_id:  # another user's list is reported as missing
        raise NotFoundError(f"recommendation set {set_id} not found", "recommendation_set_id")
    return _ok(found)


@_route("/api/ratings", ["POST"], USER, idempotent=True)
def post_rating():
    """Record (or replace) the user's rating of a movie."""
    body = _json_body()
    inp.check_shape(
        body,
        {"movie_id": ("integer",), "rating": ("number",), "rated_at": ("string", "null")},
        required=("movie_id", "rating"),
    )
    rated_at = body.get("rated_at")
    moment = None if rated_at is None else inp.parse_timestamp(rated_at, "rated_at")
    result = _system().record_rating(g.caller.user_id, body["movie_id"], body["rating"], rated_at=moment)
    payload = dict(result) if isinstance(result, Mapping) else {}
    payload.setdefault("user_id", g.caller.user_id)
    payload.setdefault("movie_id", body["movie_id"])
    payload.setdefault("rating", float(body["rating"]))
    return _ok(payload, 201)


@_route("/api/user-tokens", ["POST"], SERVICE)
def post_user_token():
    """Issue a short-lived token that lets a browser act for one user only."""
    body = _json_body()
    inp.check_shape(body, {"user_id": ("integer",), "ttl_seconds": ("integer",)}, required=("user_id",))
    tokens = _state().tokens
    if tokens is None:
        raise NotFoundError("user tokens are not enabled on this server (set FEEDBACK_API_SECRET)", None)
    token, expires = tokens.issue(body["user_id"], _system().now(), body.get("ttl_seconds", 900))
    return _ok(
        {"token": token, "token_type": "Bearer", "user_id": body["user_id"], "expires_at": format_ts(expires)},
        201,
    )


# ---------------------------------------------------------------- operators (admin keys)


@_route("/api/model-versions", ["GET"], ADMIN)
def list_model_versions():
    """List model versions, newest first."""
    _query()
    versions = _system().list_model_versions()
    return _ok({"count": len(versions), "model_versions": versions})


@_route("/api/model-versions/compare", ["GET"], ADMIN)
def compare_model_versions():
    """Compare two versions' dislike rates with intervals and a significance test."""
    args = _query("a", "b")
    ids = []
    for name in ("a", "b"):
        if name not in args:
            raise ValidationError(f"{name} is required: the version ids to compare", name)
        ids.append(inp.check_positive_int_text(args[name], name))
    return _ok({"comparison": _system().compare_model_versions(*ids)})


@_route("/api/model-versions/<version_id>", ["GET"], ADMIN)
def get_model_version(version_id: str):
    """Return one model version."""
    _query()
    vid = inp.check_positive_int_text(version_id, "version_id")
    return _ok({"model_version": _system().get_model_version(vid)})


@_route("/api/model-versions/<version_id>/activate", ["POST"], ADMIN, idempotent=True)
def activate_model_version(version_id: str):
    """Activate (or roll back to) a model version."""
    inp.check_shape(_json_body(optional=True), {})
    vid = inp.check_positive_int_text(version_id, "version_id")
    return _ok({"model_version": _operator().activate_model_version(vid)})


@_route("/api/retrain-jobs", ["POST"], ADMIN, idempotent=True)
def post_retrain_job():
    """Queue a manual retrain (or return the job already queued or running): 202."""
    inp.check_shape(_json_body(optional=True), {})
    return _ok({"job": _operator().request_retrain()}, 202)


@_route("/api/retrain-jobs", ["GET"], ADMIN)
def list_retrain_jobs():
    """List retrain jobs, newest first."""
    limit = inp.query_int(_query("limit"), "limit", 50, 1, 1000)
    jobs = _system().list_retrain_jobs(limit=limit)
    return _ok({"count": len(jobs), "jobs": jobs})


@_route("/api/retrain-jobs/<job_id>", ["GET"], ADMIN)
def get_retrain_job(job_id: str):
    """Return one retrain job with its progress."""
    _query()
    return _ok({"job": _system().get_retrain_job(inp.check_positive_int_text(job_id, "job_id"))})


@_route("/api/adjustments", ["GET"], ADMIN)
def list_adjustments():
    """List feature adjustments (proposed ones by default), newest first."""
    args = _query("status", "user_id", "feature", "reason", "limit")
    status = args.get("status", "proposed")
    user_id = args.get("user_id")
    adjustments = _system().list_adjustments(
        status=None if status == "all" else status,
        user_id=None if user_id is None else inp.check_positive_int_text(user_id, "user_id"),
        feature=args.get("feature") or None,
        reason=args.get("reason"),
        limit=inp.query_int(args, "limit", 200, 1, 10_000),
    )
    return _ok({"count": len(adjustments), "adjustments": adjustments})


@_route("/api/adjustments/<adjustment_id>/approve", ["POST"], ADMIN, idempotent=True)
def approve_adjustment(adjustment_id: str):
    """Approve a proposal (optionally with an edited magnitude); it applies at once."""
    body = _json_body(optional=True)
    inp.check_shape(body, {"magnitude": ("number", "null")})
    aid = inp.check_positive_int_text(adjustment_id, "adjustment_id")
    return _ok({"adjustment": _operator().approve_adjustment(aid, magnitude=body.get("magnitude"))})


@_route("/api/adjustments/<adjustment_id>/reject", ["POST"], ADMIN, idempotent=True)
def reject_adjustment(adjustment_id: str):
    """Reject a proposal with an optional note."""
    body = _json_body(optional=True)
    inp.check_shape(body, {"note": ("string", "null")})
    aid = inp.check_positive_int_text(adjustment_id, "adjustment_id")
    return _ok({"adjustment": _operator().reject_adjustment(aid, note=body.get("note") or "")})


# ---------------------------------------------------------------- unauthenticated and meta


@_route("/healthz", ["GET"], PUBLIC)
def healthz():
    """Say whether the API and its database are up (no authentication)."""
    if current_revision(_system().engine) is None:
        raise DatabaseUnavailableError("the database has no schema yet: run feedback-core init")
    return jsonify({"status": "ok"})


@_route("/api/openapi.json", ["GET"], SERVICE)
def openapi_document():
    """Return the OpenAPI 3 document of this API."""
    from feedback_core.openapi import build_openapi

    return jsonify(build_openapi(_system().settings, _cap()))


__all__ = ["ApiConfig", "FeedbackApp", "bp", "create_app", "register_feedback_routes"]
