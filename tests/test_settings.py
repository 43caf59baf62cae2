"""Settings: read once from the environment, every constant of the specification overridable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import feedback_core
from feedback_core.errors import ConfigError
from feedback_core.settings import REASONS, ReasonPolicy, Settings, mask_url

URL = "sqlite:///tmp/x.db"


def from_env(**env: str) -> Settings:
    return Settings.from_env(environ={"FEEDBACK_DB_URL": URL, **env})


def test_defaults_match_the_specification():
    s = Settings.from_env(environ={})
    assert s.DISLIKE_WEIGHT_MULTIPLIER == 0.8
    assert s.FEEDBACK_ACCUMULATION_THRESHOLD == 20
    assert s.GENRE_DEEMPHASIS_FACTOR == 0.15
    assert s.CAST_DEEMPHASIS_FACTOR == 0.10
    assert s.FRANCHISE_DEEMPHASIS_FACTOR == 0.12
    assert (s.weight_min, s.weight_max, s.auto_approve) == (0.1, 2.0, False)
    assert set(s.reason_policy) == set(REASONS)


def test_default_database_is_an_sqlite_file_under_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = Settings.from_env(environ={})
    assert s.database_url == f"sqlite:///{Path(tmp_path) / 'data' / 'feedback.db'}"


def test_module_constants_carry_the_specification_defaults():
    assert feedback_core.DISLIKE_WEIGHT_MULTIPLIER == 0.8
    assert feedback_core.FEEDBACK_ACCUMULATION_THRESHOLD == 20
    assert feedback_core.GENRE_DEEMPHASIS_FACTOR == 0.15
    assert feedback_core.CAST_DEEMPHASIS_FACTOR == 0.10
    assert feedback_core.FRANCHISE_DEEMPHASIS_FACTOR == 0.12


def test_database_url_comes_from_feedback_db_url():
    assert from_env().database_url == URL


@pytest.mark.parametrize(
    ("var", "raw", "field", "expected"),
    [
        # the specification's own constant names
        ("FEEDBACK_ACCUMULATION_THRESHOLD", "5", "FEEDBACK_ACCUMULATION_THRESHOLD", 5),
        ("DISLIKE_WEIGHT_MULTIPLIER", "0.5", "DISLIKE_WEIGHT_MULTIPLIER", 0.5),
        ("GENRE_DEEMPHASIS_FACTOR", "0.3", "GENRE_DEEMPHASIS_FACTOR", 0.3),
        ("CAST_DEEMPHASIS_FACTOR", "0.2", "CAST_DEEMPHASIS_FACTOR", 0.2),
        ("FRANCHISE_DEEMPHASIS_FACTOR", "0", "FRANCHISE_DEEMPHASIS_FACTOR", 0.0),
        # the FEEDBACK_-prefixed spellings
        ("FEEDBACK_DISLIKE_WEIGHT_MULTIPLIER", "1.5", "DISLIKE_WEIGHT_MULTIPLIER", 1.5),
        ("FEEDBACK_FEEDBACK_ACCUMULATION_THRESHOLD", "7", "FEEDBACK_ACCUMULATION_THRESHOLD", 7),
        # the rest
        ("FEEDBACK_AUTO_APPROVE", "yes", "auto_approve", True),
        ("FEEDBACK_AUTO_APPROVE", "off", "auto_approve", False),
        ("FEEDBACK_DUPLICATE_WINDOW_SECONDS", "2.5", "duplicate_window_seconds", 2.5),
        ("FEEDBACK_WEIGHT_MIN", "0.2", "weight_min", 0.2),
        ("FEEDBACK_MAX_TITLE_LENGTH", "80", "max_title_length", 80),
        ("FEEDBACK_SQLITE_SYNCHRONOUS", "full", "sqlite_synchronous", "full"),
    ],
)
def test_from_env_parses(var, raw, field, expected):
    s = from_env(**{var: raw})
    assert getattr(s, field) == expected
    assert type(getattr(s, field)) is type(expected)


@pytest.mark.parametrize(
    ("usual", "other", "field", "value"),
    [
        (
            "FEEDBACK_ACCUMULATION_THRESHOLD",
            "FEEDBACK_FEEDBACK_ACCUMULATION_THRESHOLD",
            "FEEDBACK_ACCUMULATION_THRESHOLD",
            "5",
        ),
        (
            "FEEDBACK_DISLIKE_WEIGHT_MULTIPLIER",
            "DISLIKE_WEIGHT_MULTIPLIER",
            "DISLIKE_WEIGHT_MULTIPLIER",
            "0.4",
        ),
        ("FEEDBACK_GENRE_DEEMPHASIS_FACTOR", "GENRE_DEEMPHASIS_FACTOR", "GENRE_DEEMPHASIS_FACTOR", "0.4"),
    ],
)
def test_two_names_of_one_setting_with_different_values_are_refused(usual, other, field, value):
    for first, second in ((usual, other), (other, usual)):  # whichever the environment lists first
        with pytest.raises(ConfigError) as refused:
            from_env(**{first: value, second: "1"})
        assert refused.value.message == (
            f"{usual}={(value if first == usual else '1')!r} and {other}={('1' if first == usual else value)!r} "
            f"are two names of one setting, set to different values: set only one of them ({usual} is its "
            "usual name)"
        )
    # The same value under both names is no contradiction.
    assert getattr(from_env(**{usual: value, other: value}), field) == float(value)


def test_empty_variable_means_default():
    assert from_env(FEEDBACK_ACCUMULATION_THRESHOLD="").FEEDBACK_ACCUMULATION_THRESHOLD == 20


def test_from_env_reads_the_process_environment(monkeypatch):
    monkeypatch.setenv("FEEDBACK_DB_URL", URL)
    monkeypatch.setenv("FEEDBACK_ACCUMULATION_THRESHOLD", "3")
    s = Settings.from_env()
    assert (s.database_url, s.FEEDBACK_ACCUMULATION_THRESHOLD) == (URL, 3)


def test_keyword_overrides_win_over_the_environment():
    s = Settings.from_env(environ={"FEEDBACK_ACCUMULATION_THRESHOLD": "3"}, FEEDBACK_ACCUMULATION_THRESHOLD=9)
    assert s.FEEDBACK_ACCUMULATION_THRESHOLD == 9


def test_factors_drive_the_derived_reason_policy():
    s = from_env(GENRE_DEEMPHASIS_FACTOR="0.3", FRANCHISE_DEEMPHASIS_FACTOR="0.2")
    p = s.reason_policy
    assert p["wrong_genre"].genre == pytest.approx(-0.3)
    assert p["not_interested"].genre == pytest.approx(-0.15)
    assert p["not_interested"].franchise == pytest.approx(-0.1)
    assert p["irrelevant"].genre == pytest.approx(-0.1)
    assert p["poor_quality"].franchise == pytest.approx(-0.2)
    assert p["poor_quality"].cast == pytest.approx(-0.10)


def test_reason_policy_json_overrides_reason_by_reason():
    policy = {"irrelevant": {"genre": -0.02}, "wrong_genre": {"genre": -0.3, "exclude_movie": True}}
    s = from_env(FEEDBACK_REASON_POLICY=json.dumps(policy))
    assert s.reason_policy["irrelevant"] == ReasonPolicy(genre=-0.02)
    assert s.reason_policy["wrong_genre"] == ReasonPolicy(genre=-0.3, exclude_movie=True)
    # reasons not named keep their defaults
    assert s.reason_policy["poor_quality"] == ReasonPolicy(cast=-0.10, franchise=-0.12)
    assert s.reason_policy["already_watched"].exclude_movie is True


def test_a_reason_may_propose_changes_only_to_what_it_blames():
    with pytest.raises(ConfigError) as err:
        Settings(database_url=URL, reason_policy={"poor_quality": {"genre": -0.1}})
    assert err.value.message == (
        "reason policy for 'poor_quality': genre must be 0, because poor_quality dislikes blame "
        'the film\'s cast and franchise only (see "How it learns" in the README); got -0.1'
    )
    with pytest.raises(ConfigError) as err:
        Settings(database_url=URL, reason_policy={"irrelevant": {"cast": -0.1}})
    assert err.value.message == (
        "reason policy for 'irrelevant': cast must be 0, because irrelevant dislikes blame "
        'the film\'s genre only (see "How it learns" in the README); got -0.1'
    )
    with pytest.raises(ConfigError, match="other dislikes blame no feature of the film"):
        Settings(database_url=URL, reason_policy={"other": ReasonPolicy(cast=-0.05)})
    # Zero is allowed anywhere: it proposes nothing.
    assert (
        Settings(database_url=URL, reason_policy={"other": {"genre": 0}}).reason_policy["other"]
        == ReasonPolicy()
    )


def test_reason_policy_is_read_only():
    s = from_env()
    with pytest.raises(TypeError):
        s.reason_policy["other"] = ReasonPolicy(genre=-1.0)


@pytest.mark.parametrize(
    ("var", "raw"),
    [
        ("FEEDBACK_ACCUMULATION_THRESHOLD", "abc"),
        ("FEEDBACK_ACCUMULATION_THRESHOLD", "2.5"),
        ("FEEDBACK_ACCUMULATION_THRESHOLD", "0"),
        ("FEEDBACK_ACCUMULATION_THRESHOLD", "-4"),
        ("DISLIKE_WEIGHT_MULTIPLIER", "nan"),
        ("DISLIKE_WEIGHT_MULTIPLIER", "inf"),
        ("DISLIKE_WEIGHT_MULTIPLIER", "0"),
        ("DISLIKE_WEIGHT_MULTIPLIER", "heavy"),
        ("GENRE_DEEMPHASIS_FACTOR", "1.5"),
        ("CAST_DEEMPHASIS_FACTOR", "-0.1"),
        ("FEEDBACK_AUTO_APPROVE", "maybe"),
        ("FEEDBACK_SQLITE_SYNCHRONOUS", "sometimes"),
        ("FEEDBACK_DUPLICATE_WINDOW_SECONDS", "-1"),
        ("FEEDBACK_WEIGHT_MIN", "0"),
        ("FEEDBACK_WEIGHT_MAX", "0.5"),
        ("FEEDBACK_MAX_TITLE_LENGTH", "0"),
        ("FEEDBACK_REASON_POLICY", "not json"),
        ("FEEDBACK_REASON_POLICY", "[1, 2]"),
        ("FEEDBACK_REASON_POLICY", '{"boring": {"genre": -0.1}}'),
        ("FEEDBACK_REASON_POLICY", '{"other": {"colour": -0.1}}'),
        ("FEEDBACK_REASON_POLICY", '{"other": 5}'),
        ("FEEDBACK_REASON_POLICY", '{"other": {"genre": "abc"}}'),
        ("FEEDBACK_REASON_POLICY", '{"other": {"genre": NaN}}'),
        ("FEEDBACK_REASON_POLICY", '{"other": {"genre": -3}}'),
        ("FEEDBACK_REASON_POLICY", '{"other": {"exclude_movie": "no"}}'),
        ("FEEDBACK_REASON_POLICY", '{"other": {"cast_limit": -1}}'),
        # A dislike never boosts: a positive change would make disliking a genre raise it.
        ("FEEDBACK_REASON_POLICY", '{"wrong_genre": {"genre": 0.5}}'),
        # A reason proposes changes only to what its dislikes count against (settings.BLAMES).
        ("FEEDBACK_REASON_POLICY", '{"other": {"genre": -0.02}}'),
        ("FEEDBACK_REASON_POLICY", '{"poor_quality": {"genre": -0.1}}'),
        ("FEEDBACK_ADJUSTMENT_STRENGTH", "-3"),
        ("FEEDBACK_ADJUSTMENT_STRENGTH", "0"),
        ("FEEDBACK_PROMOTION_MARGIN", "-5"),
    ],
)
def test_bad_values_raise_config_error_naming_the_variable(var, raw):
    with pytest.raises(ConfigError) as err:
        from_env(**{var: raw})
    message = err.value.message
    # the operator must learn which setting to fix
    assert var.removeprefix("FEEDBACK_") in message or "reason" in message.lower(), message


def test_direct_construction_validates_too():
    with pytest.raises(ConfigError):
        Settings(database_url=URL, FEEDBACK_ACCUMULATION_THRESHOLD=0)
    with pytest.raises(ConfigError):
        Settings(database_url=URL, reason_policy={"other": {"genre": float("nan")}})
    # Wrong types name the setting (they used to fail inside arithmetic, naming nothing).
    for changes, named in [
        ({"GENRE_DEEMPHASIS_FACTOR": "0.2"}, "GENRE_DEEMPHASIS_FACTOR must be a number"),
        ({"FEEDBACK_ACCUMULATION_THRESHOLD": 2.5}, "FEEDBACK_ACCUMULATION_THRESHOLD must be a whole number"),
        ({"auto_approve": "yes"}, "FEEDBACK_AUTO_APPROVE must be a true or false"),
        ({"reason_policy": [1]}, "FEEDBACK_REASON_POLICY must be a mapping"),
    ]:
        with pytest.raises(ConfigError) as err:
            Settings(database_url=URL, **changes)
        assert named in err.value.message


def test_a_misspelt_variable_is_reported_with_the_setting_it_is_close_to(caplog):
    with caplog.at_level("WARNING", logger="feedback_core"):
        settings = from_env(FEEDBACK_GENRE_DEEMPHASIS_FACTR="0.5", FEEDBACK_AUTOAPPROVE="true")
    assert settings.GENRE_DEEMPHASIS_FACTOR == 0.15 and settings.auto_approve is False
    assert (
        "FEEDBACK_GENRE_DEEMPHASIS_FACTR is not a setting and is ignored; did you mean "
        "FEEDBACK_GENRE_DEEMPHASIS_FACTOR?" in caplog.text
    )
    assert "did you mean FEEDBACK_AUTO_APPROVE?" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="feedback_core"):
        from_env(
            FEEDBACK_TEST_PG_URL="postgresql://x", FEEDBACK_DASHBOARD_READ_URL="sqlite://", FEEDBACK_ZZZ="1"
        )
    assert caplog.text == ""  # known elsewhere, or nothing like a setting


def test_with_returns_a_changed_copy():
    s = from_env()
    t = s.with_(FEEDBACK_ACCUMULATION_THRESHOLD=4)
    assert (s.FEEDBACK_ACCUMULATION_THRESHOLD, t.FEEDBACK_ACCUMULATION_THRESHOLD) == (20, 4)


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("postgresql+psycopg://feedback:s3cret@db.example:5432/feedback", "s3cret"),
        ("postgresql://u:p%40ss@localhost/db", "p%40ss"),
        ("not a url at all :pw@", "pw@"),
    ],
)
def test_mask_url_hides_passwords(url, secret):
    masked = mask_url(url)
    assert secret not in masked
    assert "***" in masked


def test_mask_url_leaves_passwordless_urls_readable():
    assert mask_url("sqlite:////srv/data/feedback.db") == "sqlite:////srv/data/feedback.db"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        # Not URLs SQLAlchemy parses: shown as typed (they are what the person has to correct)...
        ("/tmp/x.db", "/tmp/x.db"),
        ("feedback.db", "feedback.db"),
        ("sqlite:/tmp/a.db", "sqlite:/tmp/a.db"),
        ("sqlite//x.db", "sqlite//x.db"),
        # ...but for anything between the user's colon and the last @, a password perhaps.
        ("postgresql://bob:s3cret@localhost:notaport/db", "postgresql://bob:***@localhost:notaport/db"),
        ("postgresql://bob:s3/cr@t@localhost:x/db", "postgresql://bob:***@localhost:x/db"),
        ("bob:s3cret@localhost/db", "bob:***@localhost/db"),
    ],
)
def test_mask_url_shows_an_unparsable_url_as_typed_but_for_a_password(url, masked):
    assert mask_url(url) == masked


@pytest.mark.parametrize(
    "url,shown",
    [
        ("postgresql://h:54x2/db?password=S3cret", "postgresql://h:54x2/db?password=***"),  # unparsable
        ("postgresql://h/db?sslmode=require&password=S3cret&x=1", "password=***"),
        ("postgresql://h/db?PASSWORD=S3cret", "PASSWORD=***"),
        ("postgresql://h/db?sslpassword=S3cret", "sslpassword=***"),
    ],
)
def test_mask_url_hides_a_password_given_as_a_query_parameter(url, shown):
    # psycopg takes the password from the query string too: masking only the user part showed it.
    masked = mask_url(url)
    assert "S3cret" not in masked and shown in masked


def test_a_raw_at_sign_in_a_password_is_masked_whole():
    # Parsed, the password ends at its first "@" and the rest of it showed as the host.
    masked = mask_url("postgresql://u:p@w@rd@localhost/db")
    assert masked == "postgresql://u:***@localhost/db" and "w@rd" not in masked


@pytest.mark.parametrize(
    "name,value,says",
    [
        ("FEEDBACK_ACCUMULATION_THRESHOLD", "abc", "must be a whole number, got 'abc'"),
        ("FEEDBACK_DISLIKE_WEIGHT_MULTIPLIER", "heavy", "must be a number, got 'heavy'"),
        ("FEEDBACK_AUTO_APPROVE", "maybe", "must be true or false (1/0, yes/no, on/off), got 'maybe'"),
    ],
)
def test_a_malformed_environment_value_says_what_kind_it_must_be(name, value, says):
    with pytest.raises(ConfigError) as bad:
        Settings.from_env({name: value})
    assert says in bad.value.message
