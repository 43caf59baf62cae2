"""Pure input validation: every rule names the field and says what is allowed."""

from __future__ import annotations

import math

import pytest

from feedback_core import ValidationError
from feedback_core.settings import REASONS, Settings
from feedback_core.validation import (
    MAX_ID,
    ItemIn,
    check_id,
    check_limit,
    check_names,
    check_reason,
    check_score,
    check_text,
    validate_dislike,
    validate_items,
)

SETTINGS = Settings(database_url="sqlite://")


def fails(fn, *args, **kwargs) -> ValidationError:
    with pytest.raises(ValidationError) as err:
        fn(*args, **kwargs)
    return err.value


# ---------------------------------------------------------------- ids


@pytest.mark.parametrize(("value", "expected"), [(1, 1), (456, 456), (MAX_ID, MAX_ID), (" 7 ", 7), (3.0, 3)])
def test_check_id_accepts_positive_integers(value, expected):
    assert check_id(value, "user_id") == expected


@pytest.mark.parametrize(
    "value", [0, -1, True, False, "abc", "", "1.5", "-3", 1.5, math.nan, None, [1], MAX_ID + 1]
)
def test_check_id_rejects(value):
    err = fails(check_id, value, "movie_id")
    assert err.field == "movie_id"
    assert "movie_id must be a positive integer" in err.message


def test_check_id_optional_allows_none():
    assert check_id(None, "recommendation_set_id", optional=True) is None


# ---------------------------------------------------------------- scores


@pytest.mark.parametrize(("value", "expected"), [(0, 0.0), (0.0, 0.0), (1, 1.0), (1.0, 1.0), (0.75, 0.75)])
def test_check_score_accepts_zero_to_one(value, expected):
    result = check_score(value)
    assert result == expected and isinstance(result, float)


@pytest.mark.parametrize(
    "value", [math.nan, math.inf, -math.inf, -0.1, 1.1, 2, -1, "high", "0.5", None, True]
)
def test_check_score_rejects(value):
    err = fails(check_score, value)
    assert err.field == "predicted_score"
    assert "between 0 and 1" in err.message


def test_check_score_message_shows_the_bad_value():
    assert "'high'" in fails(check_score, "high").message


# ---------------------------------------------------------------- reasons and text


@pytest.mark.parametrize("reason", REASONS)
def test_check_reason_accepts_the_six(reason):
    assert check_reason(reason) == reason


def test_there_are_exactly_six_reasons():
    assert set(REASONS) == {
        "wrong_genre",
        "poor_quality",
        "already_watched",
        "not_interested",
        "irrelevant",
        "other",
    }


@pytest.mark.parametrize("value", ["boring", "", "WRONG_GENRE", " wrong_genre", None, 3])
def test_check_reason_rejects_unknown(value):
    err = fails(check_reason, value)
    assert err.field == "reason"
    assert all(r in err.message for r in REASONS)


def test_check_text_strips_and_limits():
    assert check_text("  Alien  ", "movie_title", 10) == "Alien"
    assert check_text(None, "feedback_text", 10) == ""
    assert check_text("x" * 10, "movie_title", 10) == "x" * 10  # exactly at the limit
    err = fails(check_text, "x" * 11, "movie_title", 10)
    assert err.field == "movie_title" and "at most 10 characters" in err.message


@pytest.mark.parametrize("value", [5, b"bytes", ["a"], "nul\x00byte"])
def test_check_text_rejects_non_strings_and_nul(value):
    assert fails(check_text, value, "feedback_text", 100).field == "feedback_text"


def test_check_text_can_require_content():
    assert fails(check_text, "   ", "actor", 100, allow_empty=False).field == "actor"


# ---------------------------------------------------------------- name lists


def test_single_string_is_one_name_not_characters():
    assert check_names("Sci-Fi", "genres", 50) == ("Sci-Fi",)


def test_names_are_stripped_and_deduplicated_in_order():
    assert check_names([" Drama", "War", "Drama"], "genres", 50) == ("Drama", "War")


def test_names_none_stays_none_and_empty_list_stays_empty():
    assert check_names(None, "genres", 50) is None
    assert check_names([], "genres", 50) == ()


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ([1, 2], "genres[0]"),
        (["Drama", None], "genres[1]"),
        (["Drama", ""], "genres[1]"),
        ({"Drama"}, "genres"),
        ({"Drama": 1}, "genres"),
        (42, "genres"),
        (["g"] * 51, "genres"),
        (["x" * 201], "genres[0]"),
    ],
)
def test_names_reject_non_lists_of_strings(value, field):
    assert fails(check_names, value, "genres", 50).field == field


# ---------------------------------------------------------------- limits


@pytest.mark.parametrize("value", [1, 50, 1000, "20"])
def test_check_limit_accepts_1_to_1000(value):
    assert check_limit(value) == int(value)


@pytest.mark.parametrize("value", [0, -1, 1001, True, 2.5, "ten", None])
def test_check_limit_rejects(value):
    err = fails(check_limit, value)
    assert err.field == "limit" and "between 1 and 1000" in err.message


# ---------------------------------------------------------------- whole dislikes and lists


def test_validate_dislike_returns_clean_values():
    d = validate_dislike(
        SETTINGS,
        user_id=1,
        movie_id=2,
        movie_title=" Alien ",
        predicted_score=1,
        reason="wrong_genre",
        genres="Horror",
        cast=["Sigourney Weaver"],
        franchise="",
        idempotency_key="k-1",
    )
    assert (d.movie_title, d.predicted_score, d.genres, d.cast) == (
        "Alien",
        1.0,
        ("Horror",),
        ("Sigourney Weaver",),
    )
    assert d.franchise is None and d.idempotency_key == "k-1" and d.recommendation_set_id is None


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"user_id": 0}, "user_id"),
        ({"movie_id": "x"}, "movie_id"),
        ({"recommendation_set_id": -4}, "recommendation_set_id"),
        ({"predicted_score": math.nan}, "predicted_score"),
        ({"reason": "meh"}, "reason"),
        ({"movie_title": "t" * 301}, "movie_title"),
        ({"feedback_text": "t" * 2001}, "feedback_text"),
        ({"franchise": 7}, "franchise"),
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"cast": [None]}, "cast[0]"),
    ],
)
def test_validate_dislike_names_the_field(overrides, field):
    fields = {"user_id": 1, "movie_id": 2, "movie_title": "Alien", **overrides}
    assert fails(validate_dislike, SETTINGS, **fields).field == field


def test_text_limits_come_from_settings():
    tight = Settings(database_url="sqlite://", max_title_length=5)
    assert (
        fails(validate_dislike, tight, user_id=1, movie_id=2, movie_title="Too long").field == "movie_title"
    )


def test_validate_items_accepts_ids_and_dicts():
    items = validate_items([7, {"movie_id": 8, "rank": 5, "predicted_score": 0.9}, {"movie_id": 9}], SETTINGS)
    # An item without a score was shown without one: unknown, not 0.
    assert items == [ItemIn(7, 1, None), ItemIn(8, 5, 0.9), ItemIn(9, 3, None)]


@pytest.mark.parametrize(
    ("items", "field"),
    [
        ([], "items"),
        ("7,8", "items"),
        (None, "items"),
        ([7, 7], "items[1].movie_id"),
        ([{"movie_id": 0}], "items[0].movie_id"),
        ([{"movie_id": 3, "rank": 0}], "items[0].rank"),
        ([{"movie_id": 3, "rank": "1"}], "items[0].rank"),
        ([{"movie_id": 3, "predicted_score": 1.5}], "items[0].predicted_score"),
        (list(range(1, 502)), "items"),
    ],
)
def test_validate_items_rejects(items, field):
    assert fails(validate_items, items, SETTINGS).field == field


def test_an_id_of_thousands_of_digits_is_refused_plainly():
    from feedback_core.validation import check_id

    # int() refuses past 4,300 digits with a ValueError, which reached the dashboard as a crash.
    with pytest.raises(ValidationError) as refused:
        check_id("9" * 5000, "user id")
    assert refused.value.message.startswith("user id must be a positive integer no larger than")
    assert "(5,000 digits)" in refused.value.message
    with pytest.raises(ValidationError):
        check_id("²", "user id")  # a digit to str.isdigit, not to int()
    assert check_id(" 12 ", "user id") == 12
