"""Who is using the dashboard, and with which roles.

With an ``[auth]`` section in ``.streamlit/secrets.toml`` people sign in with ``st.login``
(OpenID Connect) and their roles come from ``[feedback_roles]``::

    [feedback_roles]
    default = ["viewer"]              # anyone who signs in

    [feedback_roles.users]
    "alice@example.com" = ["viewer", "approver"]
    "bob@example.com" = ["viewer", "approver", "admin"]

Without it the dashboard runs in local mode as ``FEEDBACK_OPERATOR`` (default
``local-operator``) with ``FEEDBACK_OPERATOR_ROLES`` (default ``viewer,approver,admin``): anyone
who reaches it has those roles. So local mode serves only a dashboard that listens on this machine
alone (``server.address`` 127.0.0.1, as ``.streamlit/config.toml`` sets it), unless
``FEEDBACK_DASHBOARD_TRUST_NETWORK=1`` says the network in front of it is trusted.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import streamlit as st

from feedback_core.authz import Operator, Principal

LOCAL_OPERATOR = "local-operator"
LOCAL_ROLES = "viewer,approver,admin"
TRUST_NETWORK = "FEEDBACK_DASHBOARD_TRUST_NETWORK"


class IdentityError(Exception):
    """The identity configuration is unusable (the message says how to fix it)."""


class LocalModeRefused(IdentityError):
    """Local mode (no sign-in) on a dashboard that other machines can reach."""


@dataclass(frozen=True)
class Identity:
    """The person behind this session and how they were identified (``oidc`` or ``local``)."""

    principal: Principal
    mode: str

    def describe(self) -> str:
        """Return e.g. ``local-operator · viewer, approver, admin (local mode)``."""
        roles = ", ".join(sorted(self.principal.roles)) or "no roles"
        how = "signed in" if self.mode == "oidc" else "local mode"
        return f"{self.principal.name} · {roles} ({how})"

    def can_view(self) -> bool:
        """Say whether this person may look at the pages: any role lets them (viewer, and the
        approver and admin roles include looking); no role, nothing."""
        return bool(self.principal.roles)


def _secret(section: str) -> dict | None:
    try:
        value = st.secrets.get(section)
    except FileNotFoundError:  # no secrets.toml at all: local mode
        return None
    return dict(value) if value else None


def oidc_configured() -> bool:
    """Say whether ``st.login`` is configured (an ``[auth]`` secrets section with a redirect URI)."""
    auth = _secret("auth")
    return bool(auth and auth.get("redirect_uri"))


def _principal(name: str, roles: Iterable[str], source: str) -> Principal:
    try:
        return Principal.of(name, roles)
    except ValueError as exc:
        raise IdentityError(f"{source}: {exc}") from None


def _listed_roles(users: dict, name: str) -> Any:
    """The roles ``[feedback_roles.users]`` gives ``name``: as written, else, for an email address
    (whose case identity providers do not keep alike), in any case; None when it is not listed."""
    if "@" not in name:
        return users.get(name)
    found = {str(k): v for k, v in users.items() if str(k).casefold() == name.casefold()}

    def as_set(roles: Any) -> frozenset:
        return frozenset([roles] if isinstance(roles, str) else roles or ())

    if len({as_set(v) for v in found.values()}) > 1:
        raise IdentityError(
            f"[feedback_roles] in secrets.toml lists {name} as {', '.join(sorted(found))} with different "
            "roles: list the address once"
        )
    return found.get(name, next(iter(found.values()), None))


def current_identity() -> Identity | None:
    """Return who is using this session, or None when OIDC is configured and nobody signed in."""
    if oidc_configured():
        if not st.user.is_logged_in:
            return None
        name = st.user.get("email") or st.user.get("preferred_username") or st.user.get("sub")
        if not name:
            raise IdentityError("the identity provider sent no email, preferred_username or sub claim")
        table = _secret("feedback_roles") or {}
        roles = _listed_roles(dict(table.get("users") or {}), str(name))
        if roles is None:
            roles = table.get("default", ["viewer"])
        return Identity(_principal(str(name), roles, "[feedback_roles] in secrets.toml"), "oidc")
    name = os.environ.get("FEEDBACK_OPERATOR", "").strip() or LOCAL_OPERATOR
    roles = (os.environ.get("FEEDBACK_OPERATOR_ROLES", "").strip() or LOCAL_ROLES).split(",")
    principal = _principal(name, roles, "FEEDBACK_OPERATOR_ROLES")
    _check_local_mode_is_local(principal)
    return Identity(principal, "local")


def _listening_address() -> str:
    return str(st.get_option("server.address") or "").strip()


def _loopback(address: str) -> bool:
    """Say whether ``address`` is this machine only: a loopback IP address (IPv4, IPv6, or IPv4
    written as IPv6) or ``localhost``; a host name that merely starts with "127." is not one."""
    if address.lower() == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def _header(name: str) -> str | None:
    try:
        return st.context.headers.get(name)
    except Exception:  # no request context at all
        return None


def _authority(value: str) -> tuple[str, int | None] | None:
    """``(host, port)`` of a Host header's ``host[:port]``; None when it is anything else (a user
    part, a path: ``localhost:8501@elsewhere``)."""
    try:
        parts = urlsplit("//" + value.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.username is not None or parts.path or parts.query or parts.fragment or not parts.hostname:
        return None
    return parts.hostname, port


def _foreign_request() -> str | None:
    """Say how the session's request came from elsewhere than this machine's own page, or None.

    The name the browser asked for (Host) must be this machine's: a page of another site whose
    name was pointed at 127.0.0.1, or a forwarder that passes on the name it was reached by, is
    not. The page that opened the session (Origin) must be the dashboard's own: a page served on
    another port of this machine, or through a proxy that rewrites Host, is not. A request without
    them (a script run by a test) is not a browser's."""
    return _foreign(_header("Host"), _header("Origin"))


def _foreign(host: str | None, origin: str | None) -> str | None:
    """``_foreign_request`` for these Host and Origin headers (None: not sent)."""
    if host is None:
        return None
    asked = _authority(host)
    if asked is None or not _loopback(asked[0]):
        return f"was reached as {host.strip()}, not as this machine (localhost or 127.0.0.1)"
    if origin is None:
        return None
    try:
        page = urlsplit(origin.strip())
        default = {"http": 80, "https": 443}.get(page.scheme)
        page_port = page.port or default
    except ValueError:
        page, default, page_port = None, None, None
    # A browser opens the session at the address of the page it shows: the same name and port
    # (the port its scheme implies when the Host header names none).
    own_port = asked[1] or default
    if page is None or page.hostname != asked[0] or page_port != own_port:
        own = f"{asked[0]}:{own_port}" if own_port else asked[0]
        return f"was opened by the page {origin.strip()}, not by its own ({own})"
    return None


def _check_local_mode_is_local(principal: Principal) -> None:
    """Refuse local mode (no sign-in) on a dashboard that listens beyond this machine, or that
    was reached under another name than this machine's: everyone who reached it would act with
    the local operator's roles. (A page elsewhere whose name was made to point at 127.0.0.1, or a
    forwarder on this host, reaches a loopback listener: the name it asked for gives it away.)"""
    trusted = os.environ.get(TRUST_NETWORK, "").strip().lower() in ("1", "true", "yes", "on")
    address = _listening_address()
    roles = ", ".join(sorted(principal.roles)) or "no roles"
    if _loopback(address):
        foreign = _foreign_request()
        if foreign is None or trusted:
            return
        raise LocalModeRefused(
            f"This dashboard {foreign}, without sign-in: whoever did would act as {principal.name} "
            f"with the roles {roles}. "
            "Open it as http://localhost:PORT on this machine, or configure sign-in (an [auth] "
            'section in .streamlit/secrets.toml; README, "Dashboard") when it is reached through a '
            f"proxy or another name; if the network in front of it is trusted, set {TRUST_NETWORK}=1."
        )
    if trusted:
        return
    where = f"on {address}" if address else "on every network interface (server.address is not set)"
    raise LocalModeRefused(
        f"This dashboard listens {where} without sign-in: everyone who reaches it would act as "
        f"{principal.name} with the roles {roles}. Configure sign-in (an [auth] section in "
        '.streamlit/secrets.toml; README, "Dashboard"), or listen on this machine only '
        "(--server.address 127.0.0.1, behind a proxy that signs people in), or, if the network in "
        f"front of it is trusted, set {TRUST_NETWORK}=1."
    )


def get_operator(system) -> Operator:
    """Return an ``Operator`` for the person as they are *now* (roles re-read at the action)."""
    identity = current_identity()
    if identity is None:
        raise IdentityError("you are signed out; sign in again to act")
    return Operator(system, identity.principal)


def can(action: str) -> bool:
    """Say whether the current person may take ``action`` (to enable buttons; not a guard)."""
    identity = current_identity()
    return identity is not None and identity.principal.can(action)
