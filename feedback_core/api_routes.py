"""The API's endpoints: each one parses and validates, makes one ``FeedbackSystem`` call and
answers JSON. Routing, authentication, body parsing and errors live in ``feedback_core.api``."""

from __future__ import annotations

from collections.abc import Mapping

from flask import request

from feedback_core import api_input as inp
from feedback_core.adjustments import COUNT_CAP, STATUSES
from feedback_core.api import (
    ADMIN,
    NO_SCHEMA_MESSAGE,
    PUBLIC,
    SERVICE,
    USER,
    api_state,
    body_cap,
    caller,
    current_system,
    json_body,
    json_response,
    ok,
    operator,
    query_args,
    route,
)
from feedback_core.db import current_revision, format_ts
from feedback_core.errors import (
    DatabaseUnavailableError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from feedback_core.idempotency import IdempotencyKeyReusedError
from feedback_core.validation import check_id

# ---------------------------------------------------------------- the specification's endpoints

DISLIKE_FIELDS = {
    "movie_id": ("integer",),
    "movie_title": ("string",),
    "recommendation_set_id": ("integer", "null"),
    "predicted_score": ("number", "null"),  # null: unknown
    "reason": ("string",),
    "feedback_text": ("string", "null"),
    "genres": ("array", "null"),
    "cast": ("array", "null"),
    "franchise": ("string", "null"),
}


@route("/api/dislike", ["POST"], USER, idempotent=True)
def post_dislike():
    """Record a dislike: 201 with its training impact, proposals and the user's patterns."""
    body = json_body()
    inp.check_shape(body, DISLIKE_FIELDS, required=("movie_id",))
    user_id = caller().user_id
    fields = {"movie_title": "", **body}  # the title is optional once the movie is catalogued
    key = request.headers.get("Idempotency-Key")
    outcome = current_system().record_dislike(
        user_id=user_id,
        idempotency_key=key,
        with_patterns=True,
        # A browser holding a user token acts for its user alone: it adds no film to the
        # catalogue every user's recommendations are drawn from.
        add_movie=caller().kind != "user",
        **fields,
    )
    if key is not None and outcome["movie_id"] != fields["movie_id"]:
        # The user's key already named a dislike of another film (sent through another
        # credential: within one, the HTTP layer tells the two bodies apart first).
        raise IdempotencyKeyReusedError(
            f"this Idempotency-Key already recorded user {user_id}'s dislike {outcome['dislike_id']} "
            f"of movie {outcome['movie_id']}; use a new key for every distinct request",
            "Idempotency-Key",
        )
    return ok(
        {
            "dislike_id": outcome["dislike_id"],
            "duplicate": outcome["duplicate"],
            "training_impact": outcome["training_impact"],
            "feature_adjustments": outcome["feature_adjustments"],
            "user_patterns": outcome["user_patterns"],
            **{note: outcome[note] for note in ("score_note", "catalogue_note") if note in outcome},
        },
        200 if outcome["duplicate"] else 201,
    )


@route("/api/dislike/<dislike_id>", ["DELETE"], USER, idempotent=True)
def delete_dislike(dislike_id: str):
    """Undo one of the caller's own dislikes."""
    dislike_id_int = inp.check_positive_int_text(dislike_id, "dislike_id")
    inp.check_shape(json_body(optional=True), {})  # no body, or an empty object: as with a key
    who = caller()
    # The person undid it; through a key, the audit also says which service passed it on.
    actor = f"user:{who.user_id}" if who.kind == "user" else f"user:{who.user_id} via {who.name}"[:120]
    return ok(current_system().retract_dislike(dislike_id_int, who.user_id, actor=actor))


@route("/api/dislike-history", ["GET"], USER)
def get_dislike_history():
    """Return the user's recent dislikes, newest first."""
    limit = inp.query_int(query_args("limit"), "limit", 50, 1, 1000)
    dislikes = current_system().get_user_dislikes(caller().user_id, limit=limit)
    return ok({"count": len(dislikes), "dislikes": dislikes})


@route("/api/dislike-patterns", ["GET"], USER)
def get_dislike_patterns():
    """Return the user's reason distribution, recent trend and most-disliked features."""
    query_args()
    return ok({"patterns": current_system().get_dislike_pattern_analysis(caller().user_id)})


@route("/api/feedback-metrics", ["GET"], SERVICE)
def get_feedback_metrics():
    """Return system-wide feedback metrics and the active model version."""
    query_args()
    return ok(current_system().get_model_feedback_metrics())


# ---------------------------------------------------------------- the rest of the loop


@route("/api/recommendations", ["GET"], USER)
def get_recommendations():
    """Recommend from the active model; the list is recorded as impressions."""
    k = inp.query_int(query_args("k"), "k", 10, 1, 100)
    if request.method == "HEAD":  # Flask answers HEAD with the GET view: it must not record a list
        return ok({})
    return ok(current_system().recommend(caller().user_id, k=k))


ITEM_FIELDS = {"movie_id": ("integer",), "rank": ("integer",), "predicted_score": ("number", "null")}


@route("/api/recommendation-sets", ["POST"], USER, idempotent=True)
def post_recommendation_set():
    """Record a list the caller showed to the user; 201 with its id."""
    body = json_body()
    inp.check_shape(body, {"items": ("array",), "model_version_id": ("integer", "null")}, required=("items",))
    if body.get("model_version_id") is not None and caller().kind == "user":
        # A version's dislike rate is built from the lists it showed: only the service says
        # which version a list came from.
        raise PermissionDeniedError(
            "a user token cannot attribute a list to a model version; the service records those (with "
            "its API key), or GET /api/recommendations does",
            "model_version_id",
        )
    for i, item in enumerate(body["items"][:1000]):
        if isinstance(item, dict):
            inp.check_shape(item, ITEM_FIELDS, required=("movie_id",), where=f"items[{i}].")
        elif not inp.is_json_type(item, "integer"):
            raise ValidationError(
                f"items[{i}] must be a movie id or an object with movie_id, rank, predicted_score",
                f"items[{i}]",
            )
    set_id = current_system().record_recommendation_set(
        caller().user_id, body["items"], model_version_id=body.get("model_version_id")
    )
    return ok(
        {
            "recommendation_set_id": set_id,
            "user_id": caller().user_id,
            "model_version_id": body.get("model_version_id"),
            "item_count": len(body["items"]),
        },
        201,
    )


@route("/api/recommendation-sets/<set_id>", ["GET"], USER)
def get_recommendation_set(set_id: str):
    """Return one list shown to the calling user."""
    query_args()
    found = current_system().get_recommendation_set(
        inp.check_positive_int_text(set_id, "recommendation_set_id")
    )
    if found["user_id"] != caller().user_id:  # another user's list is reported as missing
        raise NotFoundError(f"recommendation set {set_id} not found", "recommendation_set_id")
    return ok(found)


@route("/api/ratings", ["POST"], USER, idempotent=True)
def post_rating():
    """Record (or replace) the user's rating of a movie."""
    body = json_body()
    inp.check_shape(
        body,
        {"movie_id": ("integer",), "rating": ("number",), "rated_at": ("string", "null")},
        required=("movie_id", "rating"),
    )
    rated_at = body.get("rated_at")
    moment = None if rated_at is None else inp.parse_timestamp(rated_at, "rated_at")
    result = current_system().record_rating(
        caller().user_id, body["movie_id"], body["rating"], rated_at=moment
    )
    payload = dict(result) if isinstance(result, Mapping) else {}
    payload.setdefault("user_id", caller().user_id)
    payload.setdefault("movie_id", body["movie_id"])
    payload.setdefault("rating", float(body["rating"]))
    return ok(payload, 201)


@route("/api/user-tokens", ["POST"], SERVICE)
def post_user_token():
    """Issue a short-lived token that lets a browser act for one user only.

    Not replayed under an Idempotency-Key: a retry just issues another token (nothing is
    written), and a stored response would keep a live credential in the database."""
    body = json_body()
    inp.check_shape(body, {"user_id": ("integer",), "ttl_seconds": ("integer",)}, required=("user_id",))
    tokens = api_state().tokens
    if tokens is None:
        raise NotFoundError("user tokens are not enabled on this server (set FEEDBACK_API_SECRET)", None)
    token, expires = tokens.issue(
        body["user_id"], current_system().now(), body.get("ttl_seconds", 900), caller().key_id
    )
    return ok(
        {
            "token": token,
            "token_type": "Bearer",
            "user_id": body["user_id"],
            "expires_at": format_ts(expires),
        },
        201,
    )


# ---------------------------------------------------------------- operators (admin keys)


@route("/api/model-versions", ["GET"], ADMIN)
def list_model_versions():
    """List model versions, newest first."""
    query_args()
    versions = current_system().list_model_versions()
    return ok({"count": len(versions), "model_versions": versions})


@route("/api/model-versions/compare", ["GET"], ADMIN)
def compare_model_versions():
    """Compare two versions' dislike rates with intervals and a significance test."""
    args = query_args("a", "b")
    ids = []
    for name in ("a", "b"):
        if name not in args:
            raise ValidationError(f"{name} is required: the version ids to compare", name)
        ids.append(inp.check_positive_int_text(args[name], name))
    return ok({"comparison": current_system().compare_model_versions(*ids)})


@route("/api/model-versions/<version_id>", ["GET"], ADMIN)
def get_model_version(version_id: str):
    """Return one model version."""
    query_args()
    vid = inp.check_positive_int_text(version_id, "version_id")
    return ok({"model_version": current_system().get_model_version(vid)})


@route("/api/model-versions/<version_id>/activate", ["POST"], ADMIN, idempotent=True)
def activate_model_version(version_id: str):
    """Activate (or roll back to) a model version; with ``expected_active`` (a version id, or
    null for none) only while that version is still the active one (409 otherwise)."""
    body = json_body(optional=True)
    inp.check_shape(body, {"expected_active": ("integer", "null")})
    vid = inp.check_positive_int_text(version_id, "version_id")
    if "expected_active" not in body:
        return ok({"model_version": operator().activate_model_version(vid)})
    expected = body["expected_active"]
    if expected is not None:
        expected = check_id(expected, "expected_active")
    return ok({"model_version": operator().activate_model_version(vid, expected_active=expected)})


@route("/api/retrain-jobs", ["POST"], ADMIN, idempotent=True)
def post_retrain_job():
    """Queue a manual retrain (or return the job already queued or running): 202."""
    inp.check_shape(json_body(optional=True), {})
    return ok({"job": operator().request_retrain()}, 202)


@route("/api/retrain-jobs", ["GET"], ADMIN)
def list_retrain_jobs():
    """List retrain jobs, newest first."""
    limit = inp.query_int(query_args("limit"), "limit", 50, 1, 1000)
    jobs = current_system().list_retrain_jobs(limit=limit)
    return ok({"count": len(jobs), "jobs": jobs})


@route("/api/retrain-jobs/<job_id>", ["GET"], ADMIN)
def get_retrain_job(job_id: str):
    """Return one retrain job with its progress."""
    query_args()
    return ok({"job": current_system().get_retrain_job(inp.check_positive_int_text(job_id, "job_id"))})


@route("/api/adjustments", ["GET"], ADMIN)
def list_adjustments():
    """List feature adjustments (proposed ones by default), newest first."""
    args = query_args("status", "user_id", "feature", "reason", "limit")
    status = args.get("status", "proposed")
    if status not in (*STATUSES, "all"):
        raise ValidationError(f"status must be one of {', '.join(STATUSES)} or all, got {status!r}", "status")
    user_id = args.get("user_id")
    filters = {
        "status": None if status == "all" else status,
        "user_id": None if user_id is None else inp.check_positive_int_text(user_id, "user_id"),
        "feature": args.get("feature") or None,
        "reason": args.get("reason"),
    }
    limit = inp.query_int(args, "limit", 200, 1, 10_000)
    system = current_system()
    adjustments = system.list_adjustments(**filters, limit=limit)
    # The page is "count"; how many match in all is "total" (counted only past a full page).
    total = system.count_adjustments(**filters) if len(adjustments) >= limit else len(adjustments)
    return ok(
        {
            "count": len(adjustments),
            "total": total,
            "total_capped": total >= COUNT_CAP,
            "adjustments": adjustments,
        }
    )


@route("/api/adjustments/<adjustment_id>/approve", ["POST"], ADMIN, idempotent=True)
def approve_adjustment(adjustment_id: str):
    """Approve a proposal (optionally with an edited magnitude); it applies at once."""
    body = json_body(optional=True)
    inp.check_shape(body, {"magnitude": ("number", "null")})
    aid = inp.check_positive_int_text(adjustment_id, "adjustment_id")
    return ok({"adjustment": operator().approve_adjustment(aid, magnitude=body.get("magnitude"))})


@route("/api/adjustments/<adjustment_id>/reject", ["POST"], ADMIN, idempotent=True)
def reject_adjustment(adjustment_id: str):
    """Reject a proposal with an optional note."""
    body = json_body(optional=True)
    inp.check_shape(body, {"note": ("string", "null")})
    aid = inp.check_positive_int_text(adjustment_id, "adjustment_id")
    return ok({"adjustment": operator().reject_adjustment(aid, note=body.get("note") or "")})


@route("/api/adjustments/<adjustment_id>/revert", ["POST"], ADMIN, idempotent=True)
def revert_adjustment(adjustment_id: str):
    """Undo an applied adjustment: its magnitude leaves the user's weight at once."""
    inp.check_shape(json_body(optional=True), {})  # no body, or an empty object
    aid = inp.check_positive_int_text(adjustment_id, "adjustment_id")
    return ok({"adjustment": operator().revert_adjustment(aid)})


# ---------------------------------------------------------------- unauthenticated and meta


@route("/healthz", ["GET"], PUBLIC)
def healthz():
    """Say whether the API and its database are up (no authentication)."""
    if current_revision(current_system().engine) is None:
        raise DatabaseUnavailableError(NO_SCHEMA_MESSAGE)
    return json_response({"status": "ok"})


@route("/api/openapi.json", ["GET"], SERVICE)
def openapi_document():
    """Return the OpenAPI 3 document of this API."""
    from feedback_core.openapi import build_openapi

    query_args()
    return json_response(build_openapi(current_system().settings, body_cap()))
