"""Strict parsing of HTTP input: JSON bodies, field types, headers, query strings.

Pure functions over bytes, dicts and strings (no Flask), so the rules are testable on their
own. Each violation raises a ``FeedbackError`` whose ``field`` names what was wrong; ranges and
lengths are left to ``feedback_core.validation``, which the service calls anyway.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from feedback_core.db import to_naive_utc
from feedback_core.errors import FeedbackError, ValidationError
from feedback_core.validation import MAX_ID

MAX_DEPTH = 32
_POSITIVE = re.compile(r"[1-9][0-9]{0,18}")  # as written by any JSON encoder: no sign, no padding
# Visible ASCII, inner spaces allowed: UUIDs, ULIDs and the like all fit.
_IDEMPOTENCY_KEY = re.compile(r"^[!-~](?:[ -~]{0,198}[!-~])?$")

JSON_TYPES = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "array": "a list",
    "object": "an object",
    "null": "null",
}


class UnsupportedMediaTypeError(FeedbackError):
    """The body is not JSON."""

    status = 415
    code = "unsupported_media_type"


class PayloadTooLargeError(FeedbackError):
    """The body is larger than the configured cap."""

    status = 413
    code = "payload_too_large"


def parse_json_body(raw: bytes) -> dict:
    """Decode a UTF-8 JSON object; reject NaN, Infinity, huge numbers, deep nesting, bad text."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(f"the body is not valid UTF-8 (byte {exc.start})", None) from None
    try:
        data = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
            object_pairs_hook=_unique_keys,
        )
    except RecursionError:
        raise ValidationError(f"the body is nested more than {MAX_DEPTH} levels deep", None) from None
    except _DuplicateKey as exc:
        raise ValidationError(str(exc), exc.field) from None
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", None
        ) from None
    except ValueError as exc:  # raised by the parse_* hooks below, with a message for the caller
        raise ValidationError(str(exc), None) from None
    if not isinstance(data, dict):
        raise ValidationError(f"the body must be a JSON object, got {json_type(data)}", None)
    check_strings(data)
    return data


class _DuplicateKey(ValueError):
    def __init__(self, name: str) -> None:
        self.field = name if len(name) <= 60 else name[:57] + "..."
        super().__init__(f"the body names {self.field!r} more than once; send each field once")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    # A repeated name would leave the last value standing, and a proxy or a log that read the
    # first would see another request than the one acted on.
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise _DuplicateKey(name)
            seen.add(name)
    return data


def _reject_constant(name: str):
    raise ValueError(f"the body contains {name}, which is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the body contains a number too large to represent: {text[:40]}")
    return value


def _bounded_int(text: str) -> int:
    # Python refuses to parse ints over 4300 digits with a ValueError of its own; anything past
    # 64 bits is out of range for every field here, so stop early with a clear message.
    if len(text.lstrip("-")) > 20:
        raise ValueError(f"the body contains an integer too large for any field: {text[:40]}...")
    return int(text)


def check_strings(data: Any) -> None:
    """Reject nesting deeper than ``MAX_DEPTH`` and strings that are not valid Unicode text."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValidationError(f"the body is nested more than {MAX_DEPTH} levels deep", None)
        if isinstance(value, str):
            _check_unicode(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                _check_unicode(key)
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)


def _check_unicode(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # "\ud800" escapes decode to lone surrogates, which no database column can store.
        raise ValidationError("the body contains a lone UTF-16 surrogate (\\ud800-\\udfff)", None) from None


def json_type(value: Any) -> str:
    """Name the JSON type of a parsed value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def is_json_type(value: Any, kind: str) -> bool:
    """Say whether a parsed JSON value is of the named JSON type (booleans are not numbers)."""
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "array":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, dict)
    return value is None


def check_shape(
    body: Mapping[str, Any],
    fields: Mapping[str, tuple[str, ...]],
    required: Iterable[str] = (),
    where: str = "",
) -> None:
    """Reject unknown fields, missing required ones and values of the wrong JSON type."""
    for name in body:
        if name not in fields:
            shown = name if len(name) <= 60 else name[:57] + "..."
            allowed = ", ".join(fields) or "none"
            raise ValidationError(
                f"unknown field {where}{shown!r}; allowed fields: {allowed}", f"{where}{shown}"
            )
    for name in required:
        if name not in body:
            raise ValidationError(f"{where}{name} is required", f"{where}{name}")
    for name, kinds in fields.items():
        if name in body and not any(is_json_type(body[name], kind) for kind in kinds):
            wanted = " or ".join(JSON_TYPES[kind] for kind in kinds)
            raise ValidationError(
                f"{where}{name} must be {wanted}, got {json_type(body[name])}", f"{where}{name}"
            )


def check_positive_int_text(raw: str, field: str) -> int:
    """Parse a header or path segment that must be a positive 64-bit integer, in plain digits
    (one id, one spelling: ``02`` or `` 2`` would be another path to the same row)."""
    if not _POSITIVE.fullmatch(raw) or not 0 < int(raw) <= MAX_ID:
        shown = raw if len(raw) <= 40 else raw[:37] + "..."
        raise ValidationError(
            f"{field} must be a positive integer in plain digits (no sign, spaces or leading zeros), "
            f"got {shown!r}",
            field,
        )
    return int(raw)


def check_query(args: Mapping[str, str], allowed: Iterable[str]) -> None:
    """Reject unknown query parameters (a typo must not go unnoticed) and control characters."""
    allowed = tuple(allowed)
    lists = args.lists() if hasattr(args, "lists") else ((name, [value]) for name, value in args.items())
    for name, values in lists:
        if name in allowed and len(values) > 1:
            # Only one would be used, and the others never checked.
            raise ValidationError(f"{name} is given {len(values)} times; give it once", name)
        value = values[0]
        if name not in allowed:
            shown = name if len(name) <= 60 else name[:57] + "..."
            known = ", ".join(allowed) or "none"
            raise ValidationError(f"unknown query parameter {shown!r}; allowed: {known}", shown)
        if any(ord(c) < 0x20 for c in value):
            # NUL in particular: PostgreSQL cannot even compare such a string.
            raise ValidationError(f"{name} must not contain control characters", name)


def query_int(args: Mapping[str, str], name: str, default: int | None, low: int, high: int) -> int | None:
    """Return an integer query parameter within ``[low, high]`` (or the default when absent)."""
    raw = args.get(name)
    if raw is None:
        return default
    # Plain digits, as ids are: ``05`` or `` 5`` would be a second spelling of one request.
    if not re.fullmatch(r"-?(0|[1-9][0-9]{0,18})", raw) or not low <= int(raw) <= high:
        shown = raw if len(raw) <= 40 else raw[:37] + "..."
        raise ValidationError(
            f"{name} must be an integer between {low} and {high} in plain digits (no spaces or leading "
            f"zeros), got {shown!r}",
            name,
        )
    return int(raw)


def check_idempotency_key(raw: str) -> str:
    """Return a valid Idempotency-Key: 1-200 visible ASCII characters."""
    if not _IDEMPOTENCY_KEY.match(raw):
        raise ValidationError(
            "Idempotency-Key must be 1-200 visible ASCII characters (a UUID is a good choice)",
            "Idempotency-Key",
        )
    return raw


def parse_timestamp(value: str, field: str) -> datetime:
    """Parse an ISO 8601 timestamp (``2025-11-30T18:00:00Z``); naive means UTC."""
    try:
        # A zone offset can carry a moment past year 1 or 9999 in UTC: OverflowError.
        return to_naive_utc(datetime.fromisoformat(value))
    except (ValueError, OverflowError):
        shown = value if len(value) <= 40 else value[:37] + "..."
        raise ValidationError(
            f"{field} must be an ISO 8601 timestamp such as 2025-11-30T18:00:00Z between years 1 "
            f"and 9999 in UTC, got {shown!r}",
            field,
        ) from None
