"""Pure input validation: every rule names the field, what was wrong and what is allowed."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from feedback_core.errors import ValidationError
from feedback_core.settings import REASONS, Settings

MAX_ID = 2**63 - 1


class DislikeIn(NamedTuple):
    """A validated dislike, ready to store (a named tuple: made for every dislike, it costs
    half what a frozen dataclass does)."""

    user_id: int
    movie_id: int
    movie_title: str
    recommendation_set_id: int | None
    predicted_score: float | None  # None: not given (the shown list's, else unknown)
    reason: str
    feedback_text: str
    genres: tuple[str, ...] | None
    cast: tuple[str, ...] | None
    franchise: str | None
    idempotency_key: str | None


@dataclass(frozen=True)
class ItemIn:
    """One movie of a recommendation set as shown."""

    movie_id: int
    rank: int
    predicted_score: float | None  # None: shown without a score


def check_id(value: Any, field: str, optional: bool = False) -> int | None:
    """Return ``value`` as a positive integer id, or raise naming ``field``."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        digits = value.strip() if isinstance(value, str) else ""
        if digits.isascii() and digits.isdigit() and len(digits) > len(str(MAX_ID)):
            # (Before int(): Python refuses to read more than 4,300 digits, with a ValueError.)
            shown = digits if len(digits) <= 40 else f"{digits[:20]}... ({len(digits):,} digits)"
            raise ValidationError(
                f"{field} must be a positive integer no larger than {MAX_ID}, got {shown}", field
            )
        if digits.isascii() and digits.isdigit():
            value = int(digits)  # ("²" is a digit to isdigit, not to int)
        elif isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ValidationError(f"{field} must be a positive integer, got {_show(value)}", field)
    if not 0 < value <= MAX_ID:
        limit = f" no larger than {MAX_ID}" if value > MAX_ID else ""
        raise ValidationError(f"{field} must be a positive integer{limit}, got {value}", field)
    return value


def check_score(value: Any, field: str = "predicted_score") -> float:
    """Return ``value`` as a finite float in [0, 1], or raise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(f"{field} must be a number between 0 and 1, got {_show(value)}", field)
    value = float(value)
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValidationError(f"{field} must be a number between 0 and 1, got {value!r}", field)
    return value + 0.0  # -0.0 is 0.0 (it would be stored and answered as -0.0)


def check_moment(value: Any, field: str) -> datetime:
    """Return a moment as naive UTC (the storage format); a naive one is taken to be UTC."""
    if not isinstance(value, datetime):
        raise ValidationError(f"{field} must be a datetime, got {_show(value)}", field)
    if value.tzinfo is None:
        return value
    try:
        return value.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:  # an offset carrying it past year 1 or 9999
        raise ValidationError(
            f"{field} must be between years 1 and 9999 in UTC, got {value!r}", field
        ) from None


EARLIEST = datetime(1970, 1, 1)
LEEWAY = timedelta(days=1)  # clocks of other systems may run ahead of ours


def check_recent(value: Any, field: str, now: datetime) -> datetime:
    """Return a moment as naive UTC (see ``check_moment``) if it lies from 1970 to a day after
    ``now``, or raise.

    Exports write placeholders such as 0001-01-01 or 9999-12-31 for "no date": one of them
    would stretch the dashboard's dates over millennia, and a rating dated in 9999 would stay
    the latest forever.
    """
    moment = check_moment(value, field)
    if not EARLIEST <= moment <= now + LEEWAY:
        raise ValidationError(
            f"{field} must be a time from 1970 to the present (UTC, up to a day ahead), got "
            f"{moment.isoformat(sep=' ')}",
            field,
        )
    return moment


def check_reason(value: Any, field: str = "reason") -> str:
    """Return ``value`` if it is one of the six reasons, or raise listing them."""
    if not isinstance(value, str) or value not in REASONS:
        raise ValidationError(f"{field} must be one of {', '.join(REASONS)}, got {_show(value)}", field)
    return value


def check_text(value: Any, field: str, max_length: int, allow_empty: bool = True) -> str:
    """Return ``value`` as a stripped string within ``max_length`` characters, or raise."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string, got {_show(value)}", field)
    if "\x00" in value:
        raise ValidationError(f"{field} must not contain NUL characters", field)
    value = value.strip()
    if not allow_empty and not value:
        raise ValidationError(f"{field} must not be empty", field)
    if len(value) > max_length:
        raise ValidationError(f"{field} must be at most {max_length} characters, got {len(value)}", field)
    return value


_JOINERS = ("\u200c", "\u200d")  # zero-width non-joiner and joiner: part of how some scripts spell


def check_name(value: Any, field: str, max_length: int = 200, allow_empty: bool = False) -> str:
    """Return a feature's name (a genre, a cast member, a franchise) in Unicode's composed form
    (NFC), so that one name typed two ways is one feature; refuse invisible characters (zero
    widths, direction overrides, controls), which would make a name look like another. The
    zero-width (non-)joiners that Persian and Indic names are spelled with stay."""
    name = check_text(value, field, max_length, allow_empty)
    if name.isascii() and name.isprintable():
        return name
    name = unicodedata.normalize("NFC", name)
    for char in name:
        if unicodedata.category(char) in ("Cc", "Cf") and char not in _JOINERS:
            raise ValidationError(
                f"{field} must not contain control or invisible characters, got U+{ord(char):04X}", field
            )
    return name


def check_title(value: Any, field: str, max_length: int, allow_empty: bool = True) -> str:
    """Return a film's title as given (``check_text``), refusing control characters (a bell, an
    escape, a line break: never part of a title, and they garble every page that shows it).
    Format characters stay: the direction marks and zero widths of real titles in other scripts."""
    title = check_text(value, field, max_length, allow_empty)
    if not (title.isascii() and title.isprintable()):
        for char in title:
            if unicodedata.category(char) == "Cc":
                raise ValidationError(
                    f"{field} must not contain control characters, got U+{ord(char):04X}", field
                )
    return title


def check_names(value: Any, field: str, max_items: int, max_length: int = 200) -> tuple[str, ...] | None:
    """Return a list of names (``check_name``); a single string is one name, not a sequence of
    characters."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise ValidationError(f"{field} must be a list of strings, got {_show(value)}", field)
    if len(value) > max_items:
        raise ValidationError(f"{field} must have at most {max_items} items, got {len(value)}", field)
    names: list[str] = []
    for i, item in enumerate(value):
        name = check_name(item, f"{field}[{i}]", max_length)
        if name not in names:
            names.append(name)
    return tuple(names)


def check_limit(value: Any, field: str = "limit", low: int = 1, high: int = 1000) -> int:
    """Return ``value`` as an integer in ``[low, high]``, or raise."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(
            f"{field} must be an integer between {low} and {high}, got {_show(value)}", field
        )
    return value


def validate_dislike(
    settings: Settings,
    *,
    user_id: Any,
    movie_id: Any,
    movie_title: Any = "",
    recommendation_set_id: Any = None,
    predicted_score: Any = None,
    reason: Any = "not_interested",
    feedback_text: Any = "",
    genres: Any = None,
    cast: Any = None,
    franchise: Any = None,
    idempotency_key: Any = None,
) -> DislikeIn:
    """Validate the arguments of ``save_dislike``; raise ``ValidationError`` on the first fault."""
    franchise_clean = check_name(franchise, "franchise", 200, allow_empty=True) or None
    key = None
    if idempotency_key is not None:
        key = check_text(idempotency_key, "idempotency_key", 200, allow_empty=False)
    return DislikeIn(
        user_id=check_id(user_id, "user_id"),
        movie_id=check_id(movie_id, "movie_id"),
        movie_title=check_title(movie_title, "movie_title", settings.max_title_length),
        recommendation_set_id=check_id(recommendation_set_id, "recommendation_set_id", optional=True),
        predicted_score=None if predicted_score is None else check_score(predicted_score),
        reason=check_reason(reason),
        feedback_text=check_text(feedback_text, "feedback_text", settings.max_feedback_text_length),
        genres=check_names(genres, "genres", settings.max_list_items),
        cast=check_names(cast, "cast", settings.max_list_items),
        franchise=franchise_clean,
        idempotency_key=key,
    )


def validate_items(items: Any, settings: Settings, max_items: int = 500) -> list[ItemIn]:
    """Validate a shown list: movie ids with rank and predicted score (rank defaults to order)."""
    if not isinstance(items, (list, tuple)) or not items:
        raise ValidationError("items must be a non-empty list of movies shown", "items")
    if len(items) > max_items:
        raise ValidationError(f"items must have at most {max_items} entries, got {len(items)}", "items")
    clean: list[ItemIn] = []
    seen: set[int] = set()
    for i, item in enumerate(items):
        where = f"items[{i}]"
        if isinstance(item, dict):
            movie_id = check_id(item.get("movie_id"), f"{where}.movie_id")
            rank = item.get("rank", i + 1)
            if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= 100_000:
                raise ValidationError(
                    f"{where}.rank must be an integer between 1 and 100000, got {_show(rank)}",
                    f"{where}.rank",
                )
            score = item.get("predicted_score")
            if score is not None:
                score = check_score(score, f"{where}.predicted_score")
        else:
            movie_id = check_id(item, f"{where}.movie_id")
            rank, score = i + 1, None
        if movie_id in seen:
            raise ValidationError(
                f"{where}.movie_id {movie_id} appears twice in one list", f"{where}.movie_id"
            )
        seen.add(movie_id)
        clean.append(ItemIn(movie_id, rank, score))
    return clean


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def as_sequence(value: Sequence[str] | None) -> list[str]:
    """Return a list for a possibly-missing sequence of names."""
    return list(value) if value else []
