"""The HTTP API (Flask): app factory, authentication, strict request parsing, errors.

``create_app(settings=None)`` builds a complete app; ``register_feedback_routes(app)`` mounts
the same blueprint on an existing one (the specification's entry point). The endpoints
themselves are in ``feedback_core.api_routes``; each is parse and validate -> one
``FeedbackSystem`` call -> JSON. Errors become
``{"success": false, "error": {"code", "message", "field"}}`` in ``_error_response`` and
nowhere else; no stack trace or exception text of an unexpected error ever leaves the server.

Production: ``gunicorn -w 4 -b 0.0.0.0:8000 'feedback_core.api:create_app()'``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask import Blueprint, Flask, current_app, g, make_response, request
from flask.json.provider import DefaultJSONProvider
from flask.logging import default_handler
from sqlalchemy.exc import IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from feedback_core import api_input as inp
from feedback_core.apikeys import TOKEN_PREFIX, KeyVerifier, UserTokens
from feedback_core.authz import Operator, Principal
from feedback_core.db import before_commit, current_revision, format_ts
from feedback_core.errors import (
    AuthenticationError,
    ConfigError,
    DatabaseRefusedError,
    DatabaseUnavailableError,
    FeedbackError,
    PermissionDeniedError,
    SchemaMissingError,
    ValidationError,
)
from feedback_core.idempotency import STALE_AFTER, claim_key, complete_key, mark_done, release_key
from feedback_core.settings import ENVIRONMENTS, Settings

log = logging.getLogger("feedback_core.api")

EXTENSION = "feedback_api"
# What /healthz and every authenticated endpoint answer (503) on a database never initialised.
NO_SCHEMA_MESSAGE = "the database has no schema yet: run feedback-core init"
# Who may call an endpoint: anyone; an end user (service/admin key + X-User-ID, or a user
# token); any API key; an admin key.
PUBLIC, USER, SERVICE, ADMIN = "public", "user", "service", "admin"
ACCESS: dict[str, str] = {}

bp = Blueprint(EXTENSION, __name__)
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")
# What a browser page may send and read across origins (CORS).
CORS_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "X-User-ID"]


# ---------------------------------------------------------------- configuration and state


@dataclass(frozen=True)
class ApiConfig:
    """HTTP-only settings, read from ``FEEDBACK_ENV`` and ``FEEDBACK_API_*`` variables."""

    environment: str = "production"
    max_body_bytes: int = 64 * 1024
    token_secret: str | None = None
    key_cache_seconds: float = 5.0
    # Origins whose pages may call the API from a browser (CORS), e.g. the front end's
    # "https://app.example.com" using user tokens; none by default (same origin only).
    cors_origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.environment not in ENVIRONMENTS:
            # A misspelt "development" would leave debug mode refused without saying why; a
            # misspelt "production" would look deliberate.
            raise ConfigError(
                f"FEEDBACK_ENV must be one of {', '.join(ENVIRONMENTS)}, got {self.environment!r}"
            )
        for origin in self.cors_origins:
            if not _ORIGIN.fullmatch(origin):
                raise ConfigError(
                    f"FEEDBACK_API_CORS_ORIGINS: {origin!r} is not an origin; give scheme and host (and port), "
                    "e.g. https://app.example.com, comma-separated"
                )

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
                cors_origins=tuple(
                    o.strip().rstrip("/")
                    for o in env.get("FEEDBACK_API_CORS_ORIGINS", "").split(",")
                    if o.strip()
                ),
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
    key_id: int | None = None  # the API key's, for a key


@dataclass
class _State:
    system: Any
    config: ApiConfig
    keys: KeyVerifier
    tokens: UserTokens | None
    json: "FeedbackJSONProvider"  # the API's JSON, leaving the host app's own as it is


def api_state() -> _State:
    return current_app.extensions[EXTENSION]


def caller() -> Caller:
    """Return who is calling (set by authentication before the view runs)."""
    return g.caller


def current_system():
    return api_state().system


def json_response(payload: Any):
    """Answer ``payload`` as JSON in the API's formats (not the host app's, which it keeps)."""
    return api_state().json.response(payload)


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
        if debug is None:
            _refuse_debug(self, self.debug)
        elif debug:
            refuse_debug(
                self.extensions[EXTENSION].config, "run(debug=True)", "call run() without debug=True"
            )
        super().run(*args, **kwargs)


def _refuse_debug(app: Flask, debug: bool) -> None:
    if debug:
        refuse_debug(
            app.extensions[EXTENSION].config,
            "FLASK_DEBUG",
            "unset FLASK_DEBUG (and DEBUG in the app's config)",
        )


def refuse_debug(config: ApiConfig, asked_by: str, instead: str) -> None:
    """Raise ConfigError when Flask debug mode, which ``asked_by`` turned on, is asked for
    outside development; ``instead`` says how to turn it off."""
    if config.environment != "development":
        # The Werkzeug debugger runs arbitrary code for whoever reaches it.
        raise ConfigError(
            f"refusing to start with Flask debug mode ({asked_by}) outside development: {instead}, or set "
            "FEEDBACK_ENV=development on a machine nobody else can reach "
            f"(FEEDBACK_ENV is {config.environment!r})"
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
        json=app.json if isinstance(app.json, FeedbackJSONProvider) else FeedbackJSONProvider(app),
    )
    app.register_blueprint(bp)
    if config.cors_origins:
        from flask_cors import CORS

        # Only the API's paths, only the listed origins; credentials travel in a header the
        # page sets (Authorization), never in cookies.
        CORS(
            app,
            resources={r"/api/*": {"origins": list(config.cors_origins)}},
            allow_headers=CORS_HEADERS,
            expose_headers=["Idempotent-Replayed", "Retry-After"],
            methods=["GET", "POST", "DELETE", "OPTIONS"],
            supports_credentials=False,
            max_age=600,
        )
    _log_like_the_app()


def _log_like_the_app() -> None:
    """Send the system's ``[FEEDBACK]`` lines (INFO and up) where Flask sends the app's own when
    the host configured no logging at all: the specification's monitoring greps the app's log
    for them. A host that configures logging decides for itself."""
    system_log = logging.getLogger("feedback_core")
    if not system_log.handlers and not logging.getLogger().handlers and system_log.level == logging.NOTSET:
        system_log.addHandler(default_handler)
        system_log.setLevel(logging.INFO)


# ---------------------------------------------------------------- errors, in one place


def _error_response(exc: BaseException):
    """Turn any exception into the API's JSON error body and status."""
    if isinstance(exc, FeedbackError):
        status, error = exc.status, exc.to_dict()
        if status >= 500:
            log.error("[FEEDBACK] %s %s: %s", request.method, request.path, exc.message)
        if isinstance(exc, DatabaseRefusedError):
            # The reason (a database name, a user) is for the operator, in the log.
            error["message"] = (
                "the database refuses this server's connection: its database URL needs correcting "
                "(the server's log says why); retrying will not help"
            )
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
            413: f"the request body is larger than {body_cap()} bytes",
        }.get(status, exc.description or exc.name)
        error = {"code": code, "message": message, "field": None}
    elif isinstance(exc, IntegrityError):
        # A unique constraint lost a race with a concurrent request: retrying is safe.
        log.warning(
            "[FEEDBACK] %s %s: integrity error %s", request.method, request.path, type(exc.orig).__name__
        )
        status = 409
        error = {
            "code": "conflict",
            "message": "the request conflicted with a concurrent one; retry it",
            "field": None,
        }
    elif isinstance(exc, OperationalError):
        # Not translated by the storage layer (e.g. SQLite's busy timeout ran out): transient.
        log.error(
            "[FEEDBACK] %s %s: database error %s", request.method, request.path, type(exc.orig).__name__
        )
        status = 503
        error = {
            "code": "database_unavailable",
            "message": "the database is busy; retry shortly",
            "field": None,
        }
    else:
        log.exception("[FEEDBACK] unexpected error in %s %s", request.method, request.path)
        status = 500
        error = {
            "code": "internal_error",
            "message": "an internal error occurred; it was logged",
            "field": None,
        }
    response = json_response({"success": False, "error": error})
    response.status_code = status
    if isinstance(exc, HTTPException) and status == 405:
        response.headers["Allow"] = dict(exc.get_headers()).get("Allow", "")
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="feedback-core"'
    if status == 503 and not isinstance(exc, DatabaseRefusedError):
        response.headers["Retry-After"] = "5"
    return response


def body_cap() -> int:
    """Return the largest request body accepted, in bytes."""
    return current_app.extensions[EXTENSION].config.max_body_bytes


def _api_http_error(exc: HTTPException):
    # Installed app-wide by the blueprint: only the API's own routes, and API paths no route
    # matched, get JSON errors; a host app keeps its own answers for everything else, its own
    # routes under /api/ included.
    if request.blueprint == bp.name:
        return _error_response(exc)
    if request.url_rule is None and (request.path.startswith("/api/") or request.path == "/healthz"):
        return _error_response(exc)
    return exc


bp.register_error_handler(FeedbackError, _error_response)
bp.register_error_handler(HTTPException, _error_response)
bp.register_error_handler(Exception, _error_response)
bp.app_errorhandler(HTTPException)(_api_http_error)


# ---------------------------------------------------------------- authentication


@bp.before_request
def _authenticate() -> None:
    # An endpoint missing from the table is treated as admin-only: fail closed.
    access = ACCESS.get(request.endpoint or "", ADMIN)
    if access == PUBLIC or request.method == "OPTIONS":
        # OPTIONS says which methods a path allows (and, to a listed origin, what CORS allows):
        # no data, and a browser's preflight carries no credentials.
        return
    try:
        g.caller = _identify(access)
    except (AuthenticationError, SchemaMissingError):
        # No key can be valid in a database that was never initialised: say what is wrong
        # with the server (as /healthz does) rather than blame the key. Once a schema was seen,
        # refused keys cost no more reads (a flood of wrong keys must not double the load).
        engine = current_system().engine
        if engine not in _SCHEMA_SEEN:
            if current_revision(engine) is None:
                raise SchemaMissingError(NO_SCHEMA_MESSAGE) from None
            _SCHEMA_SEEN.add(engine)
        raise


# Engines whose database was seen with a schema (a schema is not removed under a running API).
_SCHEMA_SEEN: weakref.WeakSet = weakref.WeakSet()


def _identify(access: str) -> Caller:
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        message = "send an API key: Authorization: Bearer <key>"
        if request.headers.get("X-User-ID") is not None:
            # A client written for the specification, which trusted X-User-ID alone.
            message += (
                " (X-User-ID alone is not accepted: the key says who may act for that user; an operator "
                "creates one with feedback-core create-api-key)"
            )
        raise AuthenticationError(message)
    state = api_state()
    now = state.system.now()
    if credential.startswith(TOKEN_PREFIX):
        if state.tokens is None:
            raise AuthenticationError("user tokens are not enabled on this server")
        user_id, issuer = state.tokens.verify(credential, now)
        state.keys.check_issuer(issuer)
        who = Caller("user", f"user:{user_id}", "token", user_id)
    else:
        key = state.keys.verify(credential, now)
        who = Caller(key.role, f"api:{key.name}", f"key:{key.key_id}", key_id=key.key_id)
    if access == ADMIN and who.kind != "admin":
        raise PermissionDeniedError("this endpoint needs an admin API key")
    if access == SERVICE and who.kind == "user":
        raise PermissionDeniedError(
            "this endpoint needs an API key; a user token reaches only user endpoints"
        )
    if access == USER:
        who = replace(who, user_id=_acting_user(who))
    return who


def _acting_user(who: Caller) -> int:
    raw = request.headers.get("X-User-ID")
    named = None if raw is None else inp.check_positive_int_text(raw, "X-User-ID")
    if who.kind == "user":
        if named is not None and named != who.user_id:
            raise PermissionDeniedError(
                f"this token acts for user {who.user_id} only, not user {named}", "X-User-ID"
            )
        return who.user_id  # type: ignore[return-value]
    if named is None:
        raise ValidationError(
            "X-User-ID header is required: name the end user this request acts for", "X-User-ID"
        )
    return named


def operator() -> Operator:
    # Admin keys act through the same role-checked, audited path as the dashboard.
    return Operator(current_system(), Principal.of(caller().name, ["admin"]))


# ---------------------------------------------------------------- request helpers


def _raw_body() -> bytes:
    if "raw_body" not in g:
        cap = body_cap()
        host_cap = current_app.config.get("MAX_CONTENT_LENGTH")  # a host app's own, when lower
        if host_cap is not None:
            cap = min(cap, host_cap)
        too_large = inp.PayloadTooLargeError(f"the request body is larger than {cap} bytes", None)
        length = request.content_length
        if length is not None and length > cap:
            raise too_large
        stream = request.stream
        if length is None and request.environ.get("wsgi.input_terminated"):
            # Sent in chunks: read by this code to its end or past the cap. Werkzeug's stream
            # would end silently at the app's MAX_CONTENT_LENGTH (a cut body looks whole), or
            # refuse a body of exactly that size.
            stream = request.environ["wsgi.input"]
        parts, size = [], 0
        try:
            while part := stream.read(min(65536, cap + 1 - size)):
                parts.append(part)
                size += len(part)
                if size > cap:
                    raise too_large
        except RequestEntityTooLarge:
            raise too_large from None
        except inp.PayloadTooLargeError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever the server's reader raises for it
            # A chunk that is malformed or cut off (the client's fault, not the server's): the
            # reader of Werkzeug's server raises ValueError or OSError, gunicorn's its own.
            log.info(
                "[FEEDBACK] %s %s: unreadable body (%s)", request.method, request.path, type(exc).__name__
            )
            raise ValidationError(
                "the request body could not be read: a chunk of it is malformed or the body was cut "
                "off before its end; send it again whole",
                None,
            ) from None
        g.raw_body = b"".join(parts)
    return g.raw_body


def json_body(optional: bool = False) -> dict:
    """Return the request's JSON object (``{}`` for an absent optional body)."""
    if (
        optional
        and not request.content_length
        and "chunked" not in request.headers.get("Transfer-Encoding", "").lower()
    ):
        return {}
    charset = request.mimetype_params.get("charset", "utf-8").lower()
    # application/json only: a body sent as another JSON type (merge-patch+json, ...) means
    # something else to its sender than what this endpoint would do with it.
    if request.mimetype != "application/json" or charset not in ("utf-8", "utf8"):
        raise inp.UnsupportedMediaTypeError(
            "send the body as JSON with Content-Type: application/json (UTF-8), "
            f"got {request.headers.get('Content-Type', 'no Content-Type')[:80]!r}",
            None,
        )
    return _parsed_body()


def _parsed_body() -> dict:
    """The body's JSON object, parsed once a request (an Idempotency-Key's fingerprint reads it
    before the view does); a body that is not one raises its error each time it is asked for."""
    if "parsed_body" not in g:
        try:
            g.parsed_body = inp.parse_json_body(_raw_body())
        except FeedbackError as exc:
            g.parsed_body = exc
    if isinstance(g.parsed_body, FeedbackError):
        raise g.parsed_body
    return g.parsed_body


def query_args(*allowed: str) -> Mapping[str, str]:
    """Return the query parameters after refusing any the endpoint does not know."""
    inp.check_query(request.args, allowed)
    return request.args


def ok(payload: Mapping[str, Any], status: int = 200):
    """Answer ``{"success": true, ...payload}`` with ``status``."""
    response = json_response({"success": True, **payload})
    response.status_code = status
    return response


def route(rule: str, methods: list[str], access: str, idempotent: bool = False):
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
        who = caller()
        path = request.path
        if len(path) > 120 or not (path.isascii() and path.isprintable()):
            # Stored as text: long or odd paths (a NUL, which PostgreSQL refuses) by their digest.
            path = hashlib.sha256(path.encode("utf-8", "surrogatepass")).hexdigest()
        scope = f"{who.scope}|user:{who.user_id or '-'}|{request.method} {path}"
        # The same key with another body is a different request, not a retry; the same JSON
        # spaced or ordered otherwise is the same body.
        parts = [request.query_string, request.mimetype.encode(), _canonical_body()]
        fingerprint = hashlib.sha256(b"\0".join(parts)).hexdigest()
        # The fingerprint of the body's bytes, as earlier versions stored it: a retry of a
        # request they answered (another worker, during an upgrade) is still that request.
        raw = [request.query_string, request.headers.get("Content-Type", "").encode(), _raw_body()]
        legacy = hashlib.sha256(b"\0".join(raw)).hexdigest()
        engine = current_system().engine
        stored = claim_key(engine, scope, key, fingerprint, current_system().now(), also=(legacy,))
        if stored is not None:
            response = json_response(stored.body)  # written as the first answer was
            response.status_code = stored.status_code
            response.headers["Idempotent-Replayed"] = "true"
            return response
        try:
            # The claim is marked done inside each transaction that writes the request's effects:
            # after a crash, its retry knows whether they were committed.
            with before_commit(lambda conn: mark_done(conn, scope, key)):
                response = make_response(view(**kwargs))
        except Exception:
            _release_quietly(engine, scope, key)
            raise
        if 200 <= response.status_code < 300:
            _complete_quietly(engine, scope, key, fingerprint, response)
        else:
            _release_quietly(engine, scope, key)
        return response

    return wrapper


def _canonical_body() -> bytes:
    """The body as its JSON value, keys sorted and without spaces (the raw bytes when the body
    is not JSON the API reads: the view refuses it)."""
    try:
        value = _parsed_body()
    except FeedbackError:
        return _raw_body()
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8", "surrogatepass"
    )


def _complete_quietly(engine, scope: str, key: str, fingerprint: str, response) -> None:
    """Store a successful response for replay. The request's own writes are committed by now:
    if storing fails too, the caller is still told the truth (its success), not a 503 that
    would invite a retry; the claim then stays until it goes stale (idempotency.STALE_AFTER)."""
    try:
        # Read back as the API wrote it (a host app's own JSON provider may read numbers otherwise).
        stored = json.loads(response.get_data())
        complete_key(engine, scope, key, fingerprint, response.status_code, stored)
    except (DatabaseUnavailableError, OperationalError):
        log.error(
            "[FEEDBACK] could not store the response to an Idempotency-Key request for %s: a retry after %s "
            "may run it again",
            scope,
            STALE_AFTER,
            exc_info=True,
        )


def _release_quietly(engine, scope: str, key: str) -> None:
    try:
        release_key(engine, scope, key)
    except (DatabaseUnavailableError, OperationalError):
        # The request already failed; its claim expires by itself (idempotency.STALE_AFTER).
        log.warning("[FEEDBACK] could not release Idempotency-Key claim for %s", scope)


# The views register themselves on ``bp`` when imported; they import the helpers above.
from feedback_core import api_routes  # noqa: E402,F401

__all__ = ["ApiConfig", "FeedbackApp", "bp", "create_app", "register_feedback_routes"]
