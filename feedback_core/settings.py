"""Settings: one object, read once from the environment, handed to whoever needs it."""

from __future__ import annotations

import difflib
import json
import logging
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from feedback_core.errors import ConfigError

log = logging.getLogger("feedback_core")

REASONS = (
    "wrong_genre",
    "poor_quality",
    "already_watched",
    "not_interested",
    "irrelevant",
    "other",
)
# What each reason says the user holds against a film's features (the README's "How it learns"): a dislike counts
# against those only, and its reason's rule may propose changes to those only. "The film itself
# disappointed" blames its cast and franchise, not its genres; "seen it" and "other" blame nothing.
BLAMES = {
    "wrong_genre": ("genre",),
    "poor_quality": ("cast", "franchise"),
    "already_watched": (),
    "not_interested": ("genre", "franchise"),
    "irrelevant": ("genre",),
    "other": (),
}


@dataclass(frozen=True)
class ReasonPolicy:
    """What one dislike reason proposes: signed deltas per feature kind, and exclusion."""

    genre: float = 0.0
    cast: float = 0.0
    franchise: float = 0.0
    exclude_movie: bool = False
    cast_limit: int = 5


def default_reason_policy(
    genre_factor: float = 0.15, cast_factor: float = 0.10, franchise_factor: float = 0.12
) -> Mapping[str, ReasonPolicy]:
    """Build the default policy (the README's configuration table) from the three de-emphasis factors."""
    return MappingProxyType(
        {
            "wrong_genre": ReasonPolicy(genre=-genre_factor),
            "poor_quality": ReasonPolicy(cast=-cast_factor, franchise=-franchise_factor),
            "already_watched": ReasonPolicy(exclude_movie=True),
            "not_interested": ReasonPolicy(genre=-genre_factor / 2, franchise=-franchise_factor / 2),
            "irrelevant": ReasonPolicy(genre=-genre_factor / 3),
            "other": ReasonPolicy(),
        }
    )


def default_database_url() -> str:
    """Return the embedded SQLite file under ``data/`` of the current working directory."""
    return f"sqlite:///{Path.cwd() / 'data' / 'feedback.db'}"


@dataclass(frozen=True)
class Settings:
    """Every tunable of the system. Build with ``Settings.from_env()`` or directly in tests."""

    database_url: str = field(default_factory=default_database_url)
    DISLIKE_WEIGHT_MULTIPLIER: float = 0.8
    FEEDBACK_ACCUMULATION_THRESHOLD: int = 20
    GENRE_DEEMPHASIS_FACTOR: float = 0.15
    CAST_DEEMPHASIS_FACTOR: float = 0.10
    FRANCHISE_DEEMPHASIS_FACTOR: float = 0.12
    # None means "derive from the three factors above"; a mapping overrides it reason by reason.
    reason_policy: Mapping[str, ReasonPolicy] | None = None
    duplicate_window_seconds: float = 10.0
    weight_min: float = 0.1
    weight_max: float = 2.0
    auto_approve: bool = False
    promotion_margin: float = 0.005
    adjustment_strength: float = 3.0
    min_impressions_for_rate: int = 30
    sqlite_busy_timeout_ms: int = 30_000
    sqlite_synchronous: str = "NORMAL"
    max_title_length: int = 300
    max_feedback_text_length: int = 2000
    max_list_items: int = 50

    def __post_init__(self) -> None:
        self._check_types()
        if self.reason_policy is None:
            policy = default_reason_policy(
                self.GENRE_DEEMPHASIS_FACTOR,
                self.CAST_DEEMPHASIS_FACTOR,
                self.FRANCHISE_DEEMPHASIS_FACTOR,
            )
            object.__setattr__(self, "reason_policy", policy)
        else:
            merged = dict(
                default_reason_policy(
                    self.GENRE_DEEMPHASIS_FACTOR,
                    self.CAST_DEEMPHASIS_FACTOR,
                    self.FRANCHISE_DEEMPHASIS_FACTOR,
                )
            )
            for reason, rule in self.reason_policy.items():
                if reason not in REASONS:
                    raise ConfigError(
                        f"reason policy names unknown reason {reason!r}; allowed: {', '.join(REASONS)}"
                    )
                merged[reason] = _reason_rule(reason, rule)
            object.__setattr__(self, "reason_policy", MappingProxyType(merged))
        self._check()

    def _check_types(self) -> None:
        # Settings built in Python skip from_env's parsing: a string where a number belongs
        # would otherwise fail later with a message that names no setting.
        for f in fields(self):
            value, kind = getattr(self, f.name), str(f.type)
            if kind == "float":
                wrong = isinstance(value, bool) or not isinstance(value, (int, float))
            elif kind == "int":
                wrong = isinstance(value, bool) or not isinstance(value, int)
            elif kind == "bool":
                wrong = not isinstance(value, bool)
            elif kind == "str":
                wrong = not isinstance(value, str)
            else:  # the reason policy
                wrong = value is not None and not isinstance(value, Mapping)
                kind = "mapping of reason to rule"
            if wrong:
                name = f.name if f.name.isupper() else _env_names(f.name)[0]
                kind = {"float": "number", "int": "whole number", "bool": "true or false"}.get(kind, kind)
                raise ConfigError(f"{name} must be a {kind}, got {value!r}")

    def _check(self) -> None:
        if not 0 < self.DISLIKE_WEIGHT_MULTIPLIER <= 10:
            raise ConfigError("DISLIKE_WEIGHT_MULTIPLIER must be in (0, 10]")
        if self.FEEDBACK_ACCUMULATION_THRESHOLD < 1:
            raise ConfigError("FEEDBACK_ACCUMULATION_THRESHOLD must be a positive integer")
        for name in ("GENRE_DEEMPHASIS_FACTOR", "CAST_DEEMPHASIS_FACTOR", "FRANCHISE_DEEMPHASIS_FACTOR"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value <= 1):
                raise ConfigError(f"{name} must be a number between 0 and 1, got {value!r}")
        if self.sqlite_synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ConfigError("FEEDBACK_SQLITE_SYNCHRONOUS must be OFF, NORMAL, FULL or EXTRA")
        if not (math.isfinite(self.duplicate_window_seconds) and self.duplicate_window_seconds >= 0):
            raise ConfigError(
                f"FEEDBACK_DUPLICATE_WINDOW_SECONDS must be 0 or more, got {self.duplicate_window_seconds!r}"
            )
        # Every effective weight starts at 1.0, so the clamp range must contain it.
        if not (0 < self.weight_min <= 1.0 <= self.weight_max and math.isfinite(self.weight_max)):
            raise ConfigError(
                "FEEDBACK_WEIGHT_MIN and FEEDBACK_WEIGHT_MAX must satisfy 0 < WEIGHT_MIN <= 1 <= WEIGHT_MAX, "
                f"got {self.weight_min!r} and {self.weight_max!r}"
            )
        for name in (
            "max_title_length",
            "max_feedback_text_length",
            "max_list_items",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"FEEDBACK_{name.upper()} must be a positive integer")
        for name in ("min_impressions_for_rate", "sqlite_busy_timeout_ms"):
            if getattr(self, name) < 0:
                raise ConfigError(f"FEEDBACK_{name.upper()} must be 0 or more")
        if not (math.isfinite(self.promotion_margin) and 0 <= self.promotion_margin <= 1):
            # A candidate is promoted only if it beats the active version by this much.
            raise ConfigError(
                f"FEEDBACK_PROMOTION_MARGIN must be a number between 0 and 1, got {self.promotion_margin!r}"
            )
        if not (math.isfinite(self.adjustment_strength) and 0 < self.adjustment_strength <= 100):
            # 0 would make approvals change nothing, a negative value turn them upside down.
            raise ConfigError(
                "FEEDBACK_ADJUSTMENT_STRENGTH must be a number above 0 and at most 100, "
                f"got {self.adjustment_strength!r}"
            )

    def with_(self, **changes: Any) -> "Settings":
        """Return a copy with some settings changed."""
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        """Read settings from ``FEEDBACK_*`` variables (and the specification's constant names)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "reason_policy":
                continue
            found = [(var, env[var]) for var in _env_names(f.name) if env.get(var, "") != ""]
            for var, raw in found:
                value = _parse(var, raw, f.type)
                if f.name not in values:
                    values[f.name], first, first_raw = value, var, raw
                elif value != values[f.name]:
                    # Two names of one setting (FEEDBACK_X and the specification's X): neither
                    # may quietly win.
                    raise ConfigError(
                        f"{first}={first_raw!r} and {var}={raw!r} are two names of one setting, set to "
                        f"different values: set only one of them ({env_variable(f.name)} is its usual name)"
                    )
        policy = env.get("FEEDBACK_REASON_POLICY")
        if policy:
            try:
                values["reason_policy"] = json.loads(policy)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"FEEDBACK_REASON_POLICY is not valid JSON: {exc.msg}") from None
            if not isinstance(values["reason_policy"], dict):
                raise ConfigError("FEEDBACK_REASON_POLICY must be a JSON object keyed by reason")
        values.update(overrides)
        _warn_about_likely_typos(env)
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"invalid settings: {exc}") from None


# The values of FEEDBACK_ENV (read by the API): Flask's debug mode is allowed in development only.
ENVIRONMENTS = ("production", "development")

# FEEDBACK_* variables read elsewhere (the API, the dashboard, the operator tools, tests).
OTHER_VARIABLES = (
    "FEEDBACK_ENV",
    "FEEDBACK_API_SECRET",
    "FEEDBACK_API_MAX_BODY_BYTES",
    "FEEDBACK_API_KEY_CACHE_SECONDS",
    "FEEDBACK_OPERATOR",
    "FEEDBACK_OPERATOR_ROLES",
    "FEEDBACK_DASHBOARD_READ_URL",
    "FEEDBACK_DASHBOARD_WORKER",
    "FEEDBACK_DASHBOARD_TRUST_NETWORK",
    "FEEDBACK_PAGE_BUDGET_S",
    "FEEDBACK_TEST_PG_URL",
    "FEEDBACK_BENCH_PG_URL",
)


def known_variables() -> set[str]:
    """Every environment variable the system reads."""
    names = {var for f in fields(Settings) for var in _env_names(f.name)}
    return names | set(OTHER_VARIABLES)


def _warn_about_likely_typos(env: Mapping[str, str]) -> None:
    """Log a ``FEEDBACK_*`` variable that is no setting but nearly one: a misspelt setting
    would otherwise be ignored without a word, its default silently in force."""
    known = known_variables()
    for var in env:
        if var.startswith("FEEDBACK_") and var not in known:
            close = difflib.get_close_matches(var, sorted(known), n=1, cutoff=0.85)
            if close:
                log.warning("[FEEDBACK] %s is not a setting and is ignored; did you mean %s?", var, close[0])


def _reason_rule(reason: str, rule: Any) -> ReasonPolicy:
    """Build and check one reason's rule from a ``ReasonPolicy`` or a JSON-like mapping."""
    if not isinstance(rule, ReasonPolicy):
        if not isinstance(rule, Mapping):
            raise ConfigError(
                f"reason policy for {reason!r} must be an object like "
                f'{{"genre": -0.15, "cast": 0, "franchise": 0, "exclude_movie": false}}, got {rule!r}'
            )
        allowed = {f.name for f in fields(ReasonPolicy)}
        unknown = sorted(set(rule) - allowed)
        if unknown:
            raise ConfigError(
                f"reason policy for {reason!r} has unknown keys {unknown}; allowed: {sorted(allowed)}"
            )
        rule = ReasonPolicy(**rule)
    for kind in ("genre", "cast", "franchise"):
        value = getattr(rule, kind)
        # A string or NaN here would only fail later, inside a dislike's transaction.
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"reason policy for {reason!r}: {kind} must be a number, got {value!r}")
        if not -1.0 <= value <= 0.0:
            # A dislike de-emphasises: a positive change would make disliking a genre boost it.
            raise ConfigError(f"reason policy for {reason!r}: {kind} must be between -1 and 0, got {value!r}")
        if value and kind not in BLAMES[reason]:
            # Its dislikes count against nothing else: such proposals would have no evidence.
            blamed = " and ".join(BLAMES[reason])
            blamed = f"the film's {blamed} only" if blamed else "no feature of the film"
            raise ConfigError(
                f"reason policy for {reason!r}: {kind} must be 0, because {reason} dislikes blame "
                f'{blamed} (see "How it learns" in the README); got {value!r}'
            )
    if not isinstance(rule.exclude_movie, bool):
        raise ConfigError(
            f"reason policy for {reason!r}: exclude_movie must be true or false, got {rule.exclude_movie!r}"
        )
    if isinstance(rule.cast_limit, bool) or not isinstance(rule.cast_limit, int) or rule.cast_limit < 0:
        raise ConfigError(
            f"reason policy for {reason!r}: cast_limit must be a non-negative integer, got {rule.cast_limit!r}"
        )
    return rule


def env_variable(field_name: str) -> str:
    """Return the environment variable that sets a setting (the one the README lists)."""
    return _env_names(field_name)[0]


def _env_names(field_name: str) -> tuple[str, ...]:
    """Every variable that sets a setting, its usual name first. The specification's constants
    are read by their own names too, with or without the FEEDBACK_ prefix (so the threshold,
    FEEDBACK_ACCUMULATION_THRESHOLD, also as FEEDBACK_FEEDBACK_ACCUMULATION_THRESHOLD)."""
    if field_name == "database_url":
        return ("FEEDBACK_DB_URL",)
    if field_name.startswith("FEEDBACK_"):
        return (field_name, f"FEEDBACK_{field_name}")
    if field_name.isupper():
        return (f"FEEDBACK_{field_name}", field_name)
    return (f"FEEDBACK_{field_name.upper()}",)


def _parse(var: str, raw: str, type_name: Any) -> Any:
    kind = str(type_name)
    try:
        if kind == "float":
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError
            return value
        if kind == "int":
            return int(raw)
        if kind == "bool":
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError
    except ValueError:
        wanted = {"float": "a number", "int": "a whole number", "bool": "true or false (1/0, yes/no, on/off)"}
        raise ConfigError(f"{var} must be {wanted.get(kind, 'a ' + kind)}, got {raw!r}") from None
    return raw


def mask_url(url: str) -> str:
    """Return a database URL with any password replaced by ``***``: the user part's, and a
    ``password`` (or ``sslpassword``) query parameter's, which psycopg takes as well."""
    from sqlalchemy.engine import make_url

    scheme, separator, rest = url.partition("://")
    if separator and rest.split("/", 1)[0].count("@") > 1:
        # A raw "@" in a password: parsed, the password would end at the first one and the rest
        # of it show as the host. Masked up to the last "@" instead.
        shown = _mask_unparsed(url)
    else:
        try:
            shown = make_url(url).render_as_string(hide_password=True)
        except Exception:
            shown = _mask_unparsed(url)
    return mask_query_passwords(shown)


def mask_query_passwords(text: str) -> str:
    """Return ``text`` with the value of every ``password=`` (``sslpassword=``...) query
    parameter in it replaced by ``***``."""
    return _QUERY_SECRET.sub(r"\1***", text)


# A query parameter that carries a password, up to the next parameter (or the end).
_QUERY_SECRET = re.compile(r"(?i)([?&](?:ssl)?pass(?:word|wd)?=)[^&]*")


def _mask_unparsed(text: str) -> str:
    """Return a URL that does not parse as typed, but for anything that could be a password:
    from the first colon of its user part to the last ``@`` (more than a password, never less)."""
    scheme, separator, rest = text.partition("://")
    if not separator:
        scheme, rest = "", text
    userinfo, at, host = rest.rpartition("@")
    user, colon, _password = userinfo.partition(":")
    if not (at and colon):
        return text  # no user:password@ part (a query parameter's password is masked after)
    return f"{scheme}{separator}{user}:***@{host}"
