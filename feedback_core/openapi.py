"""The OpenAPI 3.1 document of the HTTP API, served at ``GET /api/openapi.json``.

Limits come from the running settings, so the document states the rules the server enforces.
``tests/test_openapi.py`` checks it against the URL map and validates real responses with it;
``tests/test_api_fuzz.py`` generates requests from it.
"""

from __future__ import annotations

from typing import Any

from feedback_core.adjustments import MAX_NOTE
from feedback_core.settings import BLAMES, REASONS, Settings
from feedback_core.validation import MAX_ID

OPENAPI_VERSION = "3.1.0"
REF = "#/components/schemas/"

ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
NAME = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": r"\S"}
TIMESTAMP = {"type": "string", "description": "UTC, formatted YYYY-MM-DD HH:MM:SS"}
NULLABLE_NUMBER = {"type": ["number", "null"]}


def _ref(name: str) -> dict:
    return {"$ref": REF + name}


def _obj(properties: dict, required: tuple[str, ...] = (), closed: bool = False, **extra: Any) -> dict:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    schema.update(extra)
    return schema


def _ok(properties: dict, required: tuple[str, ...] = ()) -> dict:
    """A success body: ``success: true`` plus the given fields."""
    return _obj({"success": {"const": True}, **properties}, ("success", *required))


def _schemas(settings: Settings) -> dict:
    names = {"type": "array", "items": NAME, "maxItems": settings.max_list_items}
    adjustments = {"type": "object", "additionalProperties": {"type": "number"}}
    counted = {"type": "array", "items": _obj({"name": {"type": "string"}, "count": {"type": "integer"}})}

    def blamed(what: str, kind: str) -> str:
        reasons = ", ".join(r for r, kinds in BLAMES.items() if kind in kinds)
        return f"the user's most-disliked {what}, counting the dislikes whose reason blames them ({reasons})"

    return {
        "Error": _obj(
            {
                "success": {"const": False},
                "error": _obj(
                    {
                        "code": {"type": "string", "description": "stable machine-readable code"},
                        "message": {"type": "string", "description": "what was wrong and how to fix it"},
                        "field": {
                            "type": ["string", "null"],
                            "description": "the body field, query parameter or header at fault",
                        },
                    },
                    ("code", "message", "field"),
                ),
            },
            ("success", "error"),
        ),
        "DislikeIn": _obj(
            {
                "movie_id": ID,
                "movie_title": {
                    "type": "string",
                    "maxLength": settings.max_title_length,
                    "description": "required when the movie is not in the catalogue yet",
                },
                "recommendation_set_id": {
                    **ID,
                    "type": ["integer", "null"],
                    "description": "the shown list the movie came from; it must contain the movie",
                },
                "predicted_score": {
                    "type": ["number", "null"],
                    "minimum": 0,
                    "maximum": 1,
                    "description": "the score the model gave; the one the list showed the movie with is recorded "
                    "when it has one (score_note says so when they differ). Absent or null without a "
                    "scored list: unknown, left out of every prediction error",
                },
                "reason": {"enum": list(REASONS), "default": "not_interested"},
                "feedback_text": {"type": ["string", "null"], "maxLength": settings.max_feedback_text_length},
                "genres": {
                    **names,
                    "type": ["array", "null"],
                    "description": "for a movie not in the catalogue yet (so too cast and franchise): a catalogued "
                    "one counts its own",
                },
                "cast": {**names, "type": ["array", "null"]},
                "franchise": {"type": ["string", "null"], "maxLength": 200},
            },
            ("movie_id",),
            closed=True,
        ),
        "Patterns": _obj(
            {
                "reason_distribution": {"type": "object", "additionalProperties": {"type": "integer"}},
                "recent_trend": _obj(
                    {
                        "days": {"type": "integer"},
                        "total_dislikes": {"type": "integer"},
                        "avg_predicted_score": {
                            **NULLABLE_NUMBER,
                            "description": "mean of the known predicted scores (scored_dislikes of them)",
                        },
                        "scored_dislikes": {"type": "integer"},
                    },
                    ("total_dislikes", "avg_predicted_score"),
                ),
                "total_dislikes": {"type": "integer"},
                "top_genres": {**counted, "description": blamed("genres", "genre")},
                "top_cast": {**counted, "description": blamed("cast", "cast")},
                "top_franchises": {**counted, "description": blamed("franchises", "franchise")},
            },
            ("reason_distribution", "recent_trend", "total_dislikes"),
        ),
        "DislikeOut": _ok(
            {
                "dislike_id": ID,
                "duplicate": {"type": "boolean", "description": "true when this repeats an earlier dislike"},
                "training_impact": _obj(
                    {
                        "error_recorded": {
                            **NULLABLE_NUMBER,
                            "description": "null: the predicted score is unknown",
                        },
                        "weight": {"type": "number"},
                    },
                    ("error_recorded", "weight"),
                ),
                "feature_adjustments": _obj(
                    {
                        "genre_adjustments": adjustments,
                        "cast_adjustments": adjustments,
                        "franchise_adjustments": adjustments,
                        "reason": {"enum": list(REASONS)},
                        "exclude_movie": {"type": "boolean"},
                    },
                    ("genre_adjustments", "cast_adjustments", "reason"),
                ),
                "user_patterns": _obj(
                    {
                        "reason_distribution": {
                            "type": "object",
                            "additionalProperties": {"type": "integer"},
                        },
                        "total_dislikes": {"type": "integer"},
                    },
                    ("reason_distribution", "total_dislikes"),
                ),
                "score_note": {
                    "type": "string",
                    "description": "present when the predicted_score sent differs from the one the list showed "
                    "the movie with: the list's was recorded",
                },
                "catalogue_note": {
                    "type": "string",
                    "description": "present when the film is catalogued with another title, genres, cast or "
                    "franchise than those sent: the catalogue's were used",
                },
            },
            ("dislike_id", "training_impact", "feature_adjustments", "user_patterns"),
        ),
        "Dislike": _obj(
            {
                "dislike_id": ID,
                "movie_id": ID,
                "movie_title": {"type": "string"},
                "recommendation_set_id": {"type": ["integer", "null"]},
                "predicted_score": {**NULLABLE_NUMBER, "description": "null: unknown"},
                "reason": {"enum": list(REASONS)},
                "feedback_text": {"type": "string"},
                "genres": {"type": "array", "items": {"type": "string"}},
                "cast": {"type": "array", "items": {"type": "string"}},
                "franchise": {"type": ["string", "null"]},
                "created_at": TIMESTAMP,
            },
            ("dislike_id", "movie_id", "movie_title", "predicted_score", "reason", "created_at"),
        ),
        "ActiveModelVersion": _obj(
            {
                "version_id": ID,
                "created_at": TIMESTAMP,
                "accuracy": NULLABLE_NUMBER,
                "accuracy_baseline": NULLABLE_NUMBER,
                "auc": {
                    **NULLABLE_NUMBER,
                    "description": "held-out AUC: 0.5 is chance (accuracy rises with the share of liked films "
                    "whatever a model does)",
                },
            },
            ("version_id", "created_at", "accuracy", "accuracy_baseline", "auc"),
        ),
        "RecommendationItemIn": _obj(
            {
                "movie_id": ID,
                "rank": {"type": "integer", "minimum": 1, "maximum": 100_000},
                "predicted_score": {
                    "type": ["number", "null"],
                    "minimum": 0,
                    "maximum": 1,
                    "description": "absent or null: shown without a score (unknown)",
                },
            },
            ("movie_id",),
            closed=True,
        ),
        "RecommendationSetIn": _obj(
            {
                "items": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 500,
                    "items": {"oneOf": [ID, _ref("RecommendationItemIn")]},
                    "description": "movie ids in rank order, or objects with rank and predicted_score",
                },
                "model_version_id": {**ID, "type": ["integer", "null"]},
            },
            ("items",),
            closed=True,
        ),
        "RecommendationSet": _ok(
            {
                "recommendation_set_id": ID,
                "user_id": ID,
                "model_version_id": {"type": ["integer", "null"]},
                "created_at": TIMESTAMP,
                "items": {
                    "type": "array",
                    "items": _obj(
                        {
                            "movie_id": ID,
                            "rank": {"type": "integer"},
                            "predicted_score": {**NULLABLE_NUMBER, "description": "null: shown without one"},
                            "title": {"type": "string"},
                        },
                        ("movie_id", "rank", "predicted_score"),
                    ),
                },
            },
            ("recommendation_set_id", "user_id", "items"),
        ),
        "Recommendations": _ok(
            {
                "recommendation_set_id": {"type": ["integer", "null"]},
                "model_version_id": {"type": ["integer", "null"]},
                "items": {
                    "type": "array",
                    "items": _obj(
                        {
                            "movie_id": ID,
                            "title": {"type": "string"},
                            "rank": {"type": "integer"},
                            "predicted_score": {"type": "number"},
                            "genres": {"type": "array", "items": {"type": "string"}},
                        },
                        ("movie_id", "title", "rank", "predicted_score", "genres"),
                    ),
                },
            },
            ("recommendation_set_id", "model_version_id", "items"),
        ),
        "RatingIn": _obj(
            {
                "movie_id": ID,
                "rating": {
                    "type": "number",
                    "minimum": 1,
                    "maximum": 5,
                    "multipleOf": 0.5,
                    "description": "1 to 5 in half stars; 4 and above counts as liked",
                },
                "rated_at": {
                    "type": ["string", "null"],
                    "description": "ISO 8601, e.g. 2025-11-30T18:00:00Z; now when absent",
                },
            },
            ("movie_id", "rating"),
            closed=True,
        ),
        "UserTokenIn": _obj(
            {
                "user_id": ID,
                "ttl_seconds": {"type": "integer", "minimum": 60, "maximum": 3600, "default": 900},
            },
            ("user_id",),
            closed=True,
        ),
        "Adjustment": _obj(
            {
                "adjustment_id": ID,
                "status": {"enum": ["proposed", "approved", "rejected", "applied", "reverted"]},
            },
            ("adjustment_id", "status"),
        ),
        "ApproveIn": _obj(
            {"magnitude": {"type": ["number", "null"], "minimum": -1, "maximum": 0}}, closed=True
        ),
        "RejectIn": _obj({"note": {"type": ["string", "null"], "maxLength": MAX_NOTE}}, closed=True),
        "Empty": _obj({}, closed=True),
        "ActivateIn": _obj({"expected_active": {"type": ["integer", "null"], "minimum": 1}}, closed=True),
        "ModelVersion": _obj(
            {
                "version_id": ID,
                "online": {
                    "type": "object",
                    "description": "in the list: the version's all-time online dislike rate (dislikes of "
                    "its lists / its impressions), its 95% interval and enough_data",
                    "properties": {
                        "events": {"type": "integer"},
                        "trials": {"type": "integer"},
                        "rate": {"type": ["number", "null"]},
                        "ci_low": {"type": ["number", "null"]},
                        "ci_high": {"type": ["number", "null"]},
                        "enough_data": {"type": "boolean"},
                    },
                },
            },
            ("version_id",),
        ),
        "RetrainJob": _obj(
            {
                "job_id": ID,
                "status": {"enum": ["queued", "running", "succeeded", "failed"]},
                "progress": {"type": "number"},
                "stage": {"type": "string"},
            },
            ("job_id", "status", "progress", "stage"),
        ),
    }


def _limit(default: int, high: int, name: str = "limit") -> dict:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": high, "default": default},
    }


def _path_id(name: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": ID}


USER_HEADER = {
    "name": "X-User-ID",
    "in": "header",
    "required": False,
    "description": "the end user a service or admin key acts for (required with a key); with a user "
    "token it may be omitted and must otherwise match the token's user",
    "schema": ID,
}
IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "a retried request with the same key (and the same body) returns the first "
    "response and writes nothing new; 1-200 visible ASCII characters",
    "schema": {"type": "string", "pattern": r"^[!-~](?:[ -~]{0,198}[!-~])?$"},
}

ERROR_TEXT = {
    "400": "invalid input: error.field names what, error.message the rule",
    "401": "no API key or token, or an unknown, revoked or expired one",
    "403": "the key's role (or the token's user) does not allow this",
    "404": "not found (another user's data is reported as not found)",
    "409": (
        "conflicts with the current state, or an Idempotency-Key in use, reused, or whose first request was "
        "carried out without its answer being stored (answer_lost)"
    ),
    "413": "the body is larger than the cap",
    "415": "the body is not JSON",
    "503": "the database is unavailable (retry shortly), or has no schema yet (run feedback-core init)",
}


def _operation(
    summary: str,
    access: str,
    ok_status: str,
    ok_schema: dict,
    *,
    params: tuple[dict, ...] = (),
    body: str | None = None,
    body_optional: bool = False,
    errors: tuple[str, ...] = (),
    tag: str,
    idempotent: bool = True,
) -> dict:
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "x-access": access}
    parameters = list(params)
    if access == "user":
        parameters.append(USER_HEADER)
    codes = {"400", "503"}
    if access != "public":
        op["security"] = [{"bearerAuth": []}]
        codes |= {"401", "403"}
    else:
        op["security"] = []
    if body is not None:
        op["requestBody"] = {
            "required": not body_optional,
            "content": {"application/json": {"schema": _ref(body)}},
        }
        if idempotent:
            parameters.append(IDEMPOTENCY_HEADER)
        codes |= {"413", "415"}
    if IDEMPOTENCY_HEADER in parameters:
        # A retry is told from another request by its body too, so the body is read (and
        # capped) even where the operation takes none.
        codes |= {"409", "413"}
    if parameters:
        op["parameters"] = parameters
    codes |= set(errors)
    responses = {
        ok_status: {"description": "success", "content": {"application/json": {"schema": ok_schema}}}
    }
    for code in sorted(codes):
        responses[code] = {
            "description": ERROR_TEXT[code],
            "content": {"application/json": {"schema": _ref("Error")}},
        }
    op["responses"] = responses
    return op


def _list_of(key: str, item: str) -> dict:
    return _ok({"count": {"type": "integer"}, key: {"type": "array", "items": _ref(item)}}, ("count", key))


def build_openapi(settings: Settings, max_body_bytes: int) -> dict:
    """Return the OpenAPI document for an API running with ``settings``."""
    user, service, admin = "user", "service", "admin"
    loop, spec, ops = "learning loop", "specification", "operators"
    paths = {
        "/api/dislike": {
            "post": _operation(
                "Record a dislike (201; 200 with duplicate=true when it repeats an earlier one)",
                user,
                "201",
                _ref("DislikeOut"),
                body="DislikeIn",
                tag=spec,
            ),
        },
        "/api/dislike/{dislike_id}": {
            "delete": _operation(
                "Undo one of the user's own dislikes",
                user,
                "200",
                _ok({"dislike_id": ID, "retracted": {"const": True}}, ("dislike_id", "retracted")),
                params=(_path_id("dislike_id"), IDEMPOTENCY_HEADER),
                # No body; one sent anyway must be an empty JSON object.
                errors=("404", "409", "413", "415"),
                tag=loop,
            )
        },
        "/api/dislike-history": {
            "get": _operation(
                "The user's dislikes, newest first",
                user,
                "200",
                _ok(
                    {"count": {"type": "integer"}, "dislikes": {"type": "array", "items": _ref("Dislike")}},
                    ("count", "dislikes"),
                ),
                params=(_limit(50, 1000),),
                tag=spec,
            )
        },
        "/api/dislike-patterns": {
            "get": _operation(
                "The user's dislike patterns",
                user,
                "200",
                _ok({"patterns": _ref("Patterns")}, ("patterns",)),
                tag=spec,
            )
        },
        "/api/feedback-metrics": {
            "get": _operation(
                "System-wide feedback metrics and the active model version",
                service,
                "200",
                _ok(
                    {
                        "metrics": _obj(
                            {
                                "total_negative_examples": {
                                    "type": "integer",
                                    "description": "every negative example made; a dislike undone after its "
                                    "example trained a version keeps it, so this can exceed total_dislikes",
                                },
                                "avg_prediction_error": {
                                    **NULLABLE_NUMBER,
                                    "description": "mean predicted score of the dislikes whose score is known "
                                    "(scored_dislikes)",
                                },
                                "scored_dislikes": {"type": "integer"},
                                "max_error": NULLABLE_NUMBER,
                                "min_error": NULLABLE_NUMBER,
                                "dislike_rate": {
                                    "oneOf": [
                                        {
                                            "type": "object",
                                            "properties": {
                                                "events": {"type": "integer"},
                                                "trials": {"type": "integer"},
                                                "rate": {"type": "number"},
                                                "ci_low": {"type": "number"},
                                                "ci_high": {"type": "number"},
                                                "enough": {
                                                    "type": "boolean",
                                                    "description": "at least min_impressions impressions: "
                                                    "the rate may be shown (the dashboard greys out the others)",
                                                },
                                                "min_impressions": {"type": "integer"},
                                            },
                                            "required": ["events", "trials", "rate", "enough"],
                                        },
                                        {"type": "null"},
                                    ],
                                    "description": "dislikes on shown lists / impressions, with its 95% Wilson interval",
                                },
                            },
                            ("total_negative_examples", "avg_prediction_error", "max_error", "min_error"),
                        ),
                        "active_model_version": {"oneOf": [_ref("ActiveModelVersion"), {"type": "null"}]},
                    },
                    ("metrics", "active_model_version"),
                ),
                tag=spec,
            )
        },
        "/api/recommendations": {
            "get": _operation(
                "Recommend from the active model; the list is recorded as impressions",
                user,
                "200",
                _ref("Recommendations"),
                params=(_limit(10, 100, "k"),),
                errors=("404", "409"),
                tag=loop,
            )
        },
        "/api/recommendation-sets": {
            "post": _operation(
                "Record a list the caller showed the user (its impressions)",
                user,
                "201",
                _ok(
                    {
                        "recommendation_set_id": ID,
                        "user_id": ID,
                        "model_version_id": {"type": ["integer", "null"]},
                        "item_count": {"type": "integer"},
                    },
                    ("recommendation_set_id",),
                ),
                body="RecommendationSetIn",
                tag=loop,
            )
        },
        "/api/recommendation-sets/{set_id}": {
            "get": _operation(
                "One list shown to the user",
                user,
                "200",
                _ref("RecommendationSet"),
                params=(_path_id("set_id"),),
                errors=("404",),
                tag=loop,
            )
        },
        "/api/ratings": {
            "post": _operation(
                "Record (or replace) the user's rating of a movie; 409 when a later rating of it is stored",
                user,
                "201",
                _ok(
                    {"user_id": ID, "movie_id": ID, "rating": {"type": "number"}},
                    ("user_id", "movie_id", "rating"),
                ),
                body="RatingIn",
                errors=("409",),
                tag=loop,
            )
        },
        "/api/user-tokens": {
            "post": _operation(
                "Issue a short-lived token acting for one user (needs FEEDBACK_API_SECRET)",
                service,
                "201",
                _ok(
                    {
                        "token": {"type": "string"},
                        "token_type": {"const": "Bearer"},
                        "user_id": ID,
                        "expires_at": TIMESTAMP,
                    },
                    ("token", "user_id", "expires_at"),
                ),
                body="UserTokenIn",
                # Issuing writes nothing, and a token must never be stored for a replay.
                idempotent=False,
                errors=("404",),
                tag=loop,
            )
        },
        "/api/model-versions": {
            "get": _operation(
                "List model versions", admin, "200", _list_of("model_versions", "ModelVersion"), tag=ops
            )
        },
        "/api/model-versions/compare": {
            "get": _operation(
                "Compare two model versions",
                admin,
                "200",
                _ok({"comparison": {"type": "object"}}, ("comparison",)),
                params=(
                    {"name": "a", "in": "query", "required": True, "schema": ID},
                    {"name": "b", "in": "query", "required": True, "schema": ID},
                ),
                errors=("404",),
                tag=ops,
            )
        },
        "/api/model-versions/{version_id}": {
            "get": _operation(
                "One model version",
                admin,
                "200",
                _ok({"model_version": _ref("ModelVersion")}, ("model_version",)),
                params=(_path_id("version_id"),),
                errors=("404",),
                tag=ops,
            )
        },
        "/api/model-versions/{version_id}/activate": {
            "post": _operation(
                "Activate (or roll back to) a model version",
                admin,
                "200",
                _ok({"model_version": {"type": "object"}}, ("model_version",)),
                params=(_path_id("version_id"),),
                body="ActivateIn",
                body_optional=True,
                errors=("404",),
                tag=ops,
            )
        },
        "/api/retrain-jobs": {
            "post": _operation(
                "Queue a manual retrain (202)",
                admin,
                "202",
                _ok({"job": _ref("RetrainJob")}, ("job",)),
                body="Empty",
                body_optional=True,
                tag=ops,
            ),
            "get": _operation(
                "List retrain jobs, newest first",
                admin,
                "200",
                _list_of("jobs", "RetrainJob"),
                params=(_limit(50, 1000),),
                tag=ops,
            ),
        },
        "/api/retrain-jobs/{job_id}": {
            "get": _operation(
                "One retrain job and its progress",
                admin,
                "200",
                _ok({"job": _ref("RetrainJob")}, ("job",)),
                params=(_path_id("job_id"),),
                errors=("404",),
                tag=ops,
            )
        },
        "/api/adjustments": {
            "get": _operation(
                "List feature adjustments (proposed by default)",
                admin,
                "200",
                _ok(
                    {
                        "count": {
                            "type": "integer",
                            "description": "adjustments in this answer (at most limit)",
                        },
                        "total": {
                            "type": "integer",
                            "description": "adjustments matching the filters in all, counted up to 100,000",
                        },
                        "total_capped": {
                            "type": "boolean",
                            "description": "true when total stopped at 100,000: at least that many match",
                        },
                        "adjustments": {"type": "array", "items": _ref("Adjustment")},
                    },
                    ("count", "total", "total_capped", "adjustments"),
                ),
                params=(
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {
                            "enum": ["proposed", "approved", "rejected", "applied", "reverted", "all"],
                            "default": "proposed",
                        },
                    },
                    {"name": "user_id", "in": "query", "schema": ID},
                    {
                        "name": "feature",
                        "in": "query",
                        "schema": {"type": "string", "maxLength": 200},
                        "description": "genre, cast or franchise, or one feature value",
                    },
                    {"name": "reason", "in": "query", "schema": {"enum": list(REASONS)}},
                    _limit(200, 10_000),
                ),
                tag=ops,
            )
        },
        "/api/adjustments/{adjustment_id}/approve": {
            "post": _operation(
                "Approve (and apply) a proposed adjustment",
                admin,
                "200",
                _ok({"adjustment": _ref("Adjustment")}, ("adjustment",)),
                params=(_path_id("adjustment_id"),),
                body="ApproveIn",
                body_optional=True,
                errors=("404",),
                tag=ops,
            )
        },
        "/api/adjustments/{adjustment_id}/reject": {
            "post": _operation(
                "Reject a proposed adjustment",
                admin,
                "200",
                _ok({"adjustment": _ref("Adjustment")}, ("adjustment",)),
                params=(_path_id("adjustment_id"),),
                body="RejectIn",
                body_optional=True,
                errors=("404",),
                tag=ops,
            )
        },
        "/api/adjustments/{adjustment_id}/revert": {
            "post": _operation(
                "Revert an applied adjustment (its magnitude leaves the user's weight); 409 unless applied",
                admin,
                "200",
                _ok({"adjustment": _ref("Adjustment")}, ("adjustment",)),
                params=(_path_id("adjustment_id"),),
                body="Empty",
                body_optional=True,
                errors=("404", "409"),
                tag=ops,
            )
        },
        "/api/openapi.json": {
            "get": _operation(
                "This document", service, "200", {"type": "object", "required": ["openapi", "paths"]}, tag=ops
            )
        },
        "/healthz": {
            "get": _operation(
                "Liveness and database check (no authentication)",
                "public",
                "200",
                _obj({"status": {"const": "ok"}}, ("status",)),
                tag=ops,
            )
        },
    }
    paths["/api/dislike"]["post"]["responses"]["200"] = {
        "description": "a repeat of an earlier dislike (same list, or a double click): duplicate is "
        "true and dislike_id is the first one's; nothing new is written",
        "content": {"application/json": {"schema": _ref("DislikeOut")}},
    }
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "feedback-core API",
            "version": "1",
            "description": (
                "Record dislikes, ratings and shown lists; read a user's history and patterns; "
                "operate model versions, retraining and feature adjustments. Authenticate with "
                "Authorization: Bearer <key> (feedback-core create-api-key). A service key acts for "
                "the user named in X-User-ID; an admin key also reaches the operator endpoints. "
                f"Bodies are JSON objects of at most {max_body_bytes} bytes. Errors are "
                '{"success": false, "error": {"code", "message", "field"}}.'
            ),
        },
        "paths": paths,
        "components": {
            "schemas": _schemas(settings),
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "an API key (fbk_...) or an end-user token (fbu....)",
                }
            },
        },
    }
