"""API keys (stored only as hashes) and short-lived signed end-user tokens.

A key is ``fbk_`` followed by 43 random URL-safe characters. The database keeps its first 12
characters (to find the row) and its SHA-256 digest; the key itself is shown once, when it is
created. Keys carry 256 bits of entropy, so a fast unsalted digest is enough: there is nothing
to brute-force. The presented key's digest is compared in constant time.

An end-user token lets a browser call the user endpoints for one user only. It is signed with
the server's secret (``FEEDBACK_API_SECRET``) by ``itsdangerous``, expires after minutes, and
names the key that issued it: revoking that key ends its tokens too.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import namedtuple
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import Engine, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from feedback_core.db import Prepared, format_ts, read_connection, write_transaction
from feedback_core.errors import AuthenticationError, ConflictError, NotFoundError, ValidationError
from feedback_core.recording import write_audit
from feedback_core.schema import api_keys
from feedback_core.validation import MAX_ID

KEY_PREFIX = "fbk_"
TOKEN_PREFIX = "fbu."
KEY_ROLES = ("service", "admin")
LOOKUP_CHARS = 12  # "fbk_" and 8 random characters: enough to find the row, useless to an attacker
MAX_TOKEN_TTL_SECONDS = 3600
# What a key can look like (``generate_key``'s alphabet): anything else is refused before any
# lookup, a NUL byte for one (PostgreSQL cannot even compare such a string).
_KEY_SHAPE = re.compile(r"fbk_[A-Za-z0-9_-]{8,196}")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,99}$")
# last_used_at: when the key last authenticated a request, accepted or refused afterwards (an
# operator looking for a leaked key wants both), written at most this often per key: a write per
# request would serialise them.
TOUCH_INTERVAL = timedelta(minutes=5)
_KEY_COLUMNS = ("key_id", "name", "role", "key_hash", "revoked_at", "last_used_at")
_KeyRow = namedtuple("_KeyRow", _KEY_COLUMNS)
_KEYS_BY_PREFIX = Prepared(
    select(*(api_keys.c[c] for c in _KEY_COLUMNS)).where(api_keys.c.prefix == bindparam("prefix"))
)
_KEY_REVOKED = Prepared(select(api_keys.c.revoked_at).where(api_keys.c.key_id == bindparam("key_id")))
_INSERT_KEY = Prepared(insert(api_keys).returning(api_keys.c.key_id))


@dataclass(frozen=True)
class ApiKey:
    """A verified API key: who is calling and with which role."""

    key_id: int
    name: str
    role: str


def hash_key(key: str) -> str:
    """Return the stored digest of a key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def generate_key() -> str:
    """Return a new random key (shown once, never stored)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def check_key_name(name: object) -> str:
    """Return a valid key name or raise naming the rule."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValidationError(
            "name must be 1-100 characters of letters, digits and . _ @ : - (starting with a "
            f"letter or digit), got {name!r}",
            "name",
        )
    return name


def check_role(role: object) -> str:
    """Return a valid key role or raise listing the roles."""
    if role not in KEY_ROLES:
        raise ValidationError(f"role must be one of {', '.join(KEY_ROLES)}, got {role!r}", "role")
    return role  # type: ignore[return-value]


def create_api_key(engine: Engine, name: str, role: str, now: datetime) -> tuple[ApiKey, str]:
    """Create a key; return its record and the plaintext key (the only time it exists)."""
    name = check_key_name(name)
    role = check_role(role)
    key = generate_key()
    try:
        with write_transaction(engine) as conn:
            key_id = _INSERT_KEY.scalar(
                conn,
                {
                    "name": name,
                    "role": role,
                    "prefix": key[:LOOKUP_CHARS],
                    "key_hash": hash_key(key),
                    "created_at": now,
                },
            )
            write_audit(
                conn,
                at=now,
                actor="cli",
                action="api_key.created",
                entity_type="api_key",
                entity_id=key_id,
                details={"name": name, "role": role},
            )
    except IntegrityError:  # the unique name: a second key of that name must not be created
        raise ConflictError(f"an API key named {name!r} already exists; pick another name", "name") from None
    return ApiKey(key_id, name, role), key


def revoke_api_key(engine: Engine, name: str, now: datetime) -> ApiKey:
    """Revoke a key by name: it stops working at once."""
    name = check_key_name(name)
    with write_transaction(engine) as conn:
        row = conn.execute(select(api_keys).where(api_keys.c.name == name)).first()
        if row is None:
            raise NotFoundError(f"no API key named {name!r}", "name")
        if row.revoked_at is not None:
            raise ConflictError(f"API key {name!r} was already revoked", "name")
        conn.execute(update(api_keys).where(api_keys.c.key_id == row.key_id).values(revoked_at=now))
        write_audit(
            conn,
            at=now,
            actor="cli",
            action="api_key.revoked",
            entity_type="api_key",
            entity_id=row.key_id,
            details={"name": name},
        )
    return ApiKey(row.key_id, row.name, row.role)


def list_api_keys(engine: Engine) -> list[dict]:
    """List keys (never their digests): name, role, prefix, dates."""
    with read_connection(engine) as conn:
        rows = conn.execute(select(api_keys).order_by(api_keys.c.key_id)).all()
    return [
        {
            "key_id": r.key_id,
            "name": r.name,
            "role": r.role,
            "prefix": r.prefix,
            "created_at": format_ts(r.created_at),
            "revoked_at": format_ts(r.revoked_at),
            "last_used_at": format_ts(r.last_used_at),
        }
        for r in rows
    ]


class KeyVerifier:
    """Verify presented keys against the database, remembering recent answers briefly.

    The cache holds only digests of keys that verified, for ``cache_seconds`` (so a revoked key
    stops working within that time in every worker); 0 disables it.
    """

    def __init__(self, engine: Engine, cache_seconds: float = 5.0, clock=time.monotonic) -> None:
        self.engine = engine
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, ApiKey]] = {}
        self._live: dict[int, float] = {}  # key id -> when it was last found not revoked
        self._lock = threading.Lock()

    def verify(self, presented: str, now: datetime) -> ApiKey:
        """Return the key's record, or raise ``AuthenticationError`` (unknown or revoked)."""
        if not _KEY_SHAPE.fullmatch(presented):
            raise AuthenticationError("the API key is not valid")
        digest = hash_key(presented)
        if self.cache_seconds > 0:
            with self._lock:
                hit = self._cache.get(digest)
            if hit is not None and self._clock() - hit[0] < self.cache_seconds:
                return hit[1]
        key = self._verify_in_database(presented, digest, now)
        if self.cache_seconds > 0:
            with self._lock:
                if len(self._cache) > 1000:  # a bound, not an LRU: keys are few
                    self._cache.clear()
                self._cache[digest] = (self._clock(), key)
        return key

    def _verify_in_database(self, presented: str, digest: str, now: datetime) -> ApiKey:
        with read_connection(self.engine) as conn:
            # Straight on the driver (db.Prepared): the digests never pass through SQLAlchemy's
            # statement logging, even with echo on.
            rows = [_KeyRow(*row) for row in _KEYS_BY_PREFIX.all(conn, {"prefix": presented[:LOOKUP_CHARS]})]
        found = None
        for row in rows:
            # compare_digest on every candidate: the time taken does not depend on the digest.
            if hmac.compare_digest(str(row.key_hash).encode(), digest.encode()) and row.revoked_at is None:
                found = row
        if found is None:
            raise AuthenticationError("the API key is not valid")
        if found.last_used_at is None or now - found.last_used_at >= TOUCH_INTERVAL:
            with write_transaction(self.engine) as conn:
                conn.execute(
                    update(api_keys).where(api_keys.c.key_id == found.key_id).values(last_used_at=now)
                )
        return ApiKey(found.key_id, found.name, found.role)

    def check_issuer(self, key_id: int) -> None:
        """Raise ``AuthenticationError`` unless the key ``key_id`` (a user token's issuer) exists
        and is not revoked; remembered like verified keys, for ``cache_seconds``."""
        if self.cache_seconds > 0:
            with self._lock:
                seen = self._live.get(key_id)
            if seen is not None and self._clock() - seen < self.cache_seconds:
                return
        with read_connection(self.engine) as conn:
            row = _KEY_REVOKED.first(conn, {"key_id": key_id})
        if row is None or row[0] is not None:
            raise AuthenticationError(
                "the API key that issued this user token was revoked; ask the service for a new token"
            )
        if self.cache_seconds > 0:
            with self._lock:
                if len(self._live) > 1000:
                    self._live.clear()
                self._live[key_id] = self._clock()


# ---------------------------------------------------------------- end-user tokens


class UserTokens:
    """Issue and verify signed tokens that act for exactly one user until they expire."""

    def __init__(self, secret: str, max_ttl_seconds: int = MAX_TOKEN_TTL_SECONDS) -> None:
        if len(secret) < 32:
            raise ValidationError("FEEDBACK_API_SECRET must be at least 32 characters", "secret")
        self._serializer = URLSafeSerializer(secret, salt="feedback-core.user-token")
        self.max_ttl_seconds = max_ttl_seconds

    def issue(self, user_id: int, now: datetime, ttl_seconds: int, issuer: int) -> tuple[str, datetime]:
        """Return a token for ``user_id``, issued by the key ``issuer``, and the moment it expires."""
        if not 0 < user_id <= MAX_ID:
            raise ValidationError(f"user_id must be a positive integer, got {user_id}", "user_id")
        if not 60 <= ttl_seconds <= self.max_ttl_seconds:
            raise ValidationError(
                f"ttl_seconds must be an integer between 60 and {self.max_ttl_seconds}, got {ttl_seconds}",
                "ttl_seconds",
            )
        expires = now + timedelta(seconds=ttl_seconds)
        payload = {"u": user_id, "exp": _epoch(expires), "k": issuer}
        return TOKEN_PREFIX + self._serializer.dumps(payload), expires

    def verify(self, token: str, now: datetime) -> tuple[int, int]:
        """Return the token's user id and issuing key's id, or raise ``AuthenticationError``
        (whether that key is still valid is ``KeyVerifier.check_issuer``'s to say)."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 500:
            raise AuthenticationError("the user token is not valid")
        try:
            payload = self._serializer.loads(token[len(TOKEN_PREFIX) :])
        except BadSignature:
            raise AuthenticationError("the user token is not valid") from None
        if not isinstance(payload, dict):
            raise AuthenticationError("the user token is not valid")
        user_id, expires, issuer = payload.get("u"), payload.get("exp"), payload.get("k")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (user_id, expires, issuer)):
            # Tokens from before tokens named their issuer are refused too: they last an hour at most.
            raise AuthenticationError("the user token is not valid; ask the service for a new one")
        if _epoch(now) >= expires:
            raise AuthenticationError("the user token has expired; ask the service for a new one")
        return user_id, issuer


def _epoch(moment: datetime) -> int:
    # Stored times are naive UTC; a naive datetime's .timestamp() would assume local time.
    return int(moment.replace(tzinfo=UTC).timestamp())
