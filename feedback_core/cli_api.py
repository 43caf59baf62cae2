"""Command-line commands of the HTTP API: ``serve`` and API key management."""

from __future__ import annotations

import argparse
import json
import socket

from feedback_core.cli import build_system, command, port_number, schema_ready
from feedback_core.errors import FeedbackError


def _serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=port_number, default=5000, help="port; 0: any free one (default 5000)")
    p.add_argument(
        "--debug",
        action="store_true",
        help="Flask debug mode (refused unless FEEDBACK_ENV=development)",
    )


@command(
    "serve",
    "run the HTTP API with Flask's development server (production: gunicorn, see the README)",
    _serve_arguments,
)
def cmd_serve(args: argparse.Namespace) -> int:
    from feedback_core.api import ApiConfig, create_app, refuse_debug

    # Refused before anything is created or said: FEEDBACK_ENV's value, and debug mode.
    config = ApiConfig.from_env()
    if args.debug:
        refuse_debug(config, "--debug", "drop --debug")
    system = build_system(args, create=True)
    system.init_feedback_tables()
    app = create_app(system=system, config=config)
    port = args.port or _free_port(args.host)  # the address printed must be the one to use
    print(f"feedback-core API on http://{args.host}:{port} (development server; Ctrl-C to stop)")
    app.run(host=args.host, port=port, debug=args.debug, use_reloader=False)
    return 0


def _free_port(host: str) -> int:
    """Return a port that is free on ``host`` (the kernel's pick), for ``--port 0``.

    Werkzeug would pick one too, but only its own log would say which.
    """
    try:
        family, kind, _, _, address = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind) as probe:
            probe.bind(address)
            return probe.getsockname()[1]
    except OSError as exc:
        raise FeedbackError(f"cannot listen on {host}: {exc.strerror or exc}") from None


def _create_key_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", required=True, help="who the key is for, e.g. recommender-backend")
    p.add_argument(
        "--role",
        required=True,
        choices=("service", "admin"),
        help="service: acts for the user in X-User-ID; admin: also the operator endpoints",
    )
    p.add_argument("--json", action="store_true", help="print JSON")


@command(
    "create-api-key", "create an API key and print it once (only its hash is stored)", _create_key_arguments
)
def cmd_create_api_key(args: argparse.Namespace) -> int:
    from feedback_core.apikeys import create_api_key

    system = build_system(args)
    if not schema_ready(system):
        return 2
    record, key = create_api_key(system.engine, args.name, args.role, system.now())
    if args.json:
        print(json.dumps({"key_id": record.key_id, "name": record.name, "role": record.role, "key": key}))
        return 0
    print(f"API key {record.name!r} (role {record.role}) created. Store it now; it is not shown again:")
    print()
    print(f"    {key}")
    print()
    print(f"Use it as: Authorization: Bearer {key[:12]}...")
    return 0


def _name_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", required=True, help="the key's name")


@command("revoke-api-key", "revoke an API key by name (it stops working within seconds)", _name_argument)
def cmd_revoke_api_key(args: argparse.Namespace) -> int:
    from feedback_core.apikeys import revoke_api_key

    system = build_system(args)
    if not schema_ready(system):
        return 2
    record = revoke_api_key(system.engine, args.name, system.now())
    print(f"API key {record.name!r} revoked")
    return 0


def _list_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON")


@command("list-api-keys", "list API keys (names, roles, prefixes; never the keys)", _list_arguments)
def cmd_list_api_keys(args: argparse.Namespace) -> int:
    from feedback_core.apikeys import list_api_keys

    system = build_system(args)
    if not schema_ready(system):
        return 2
    keys = list_api_keys(system.engine)
    if args.json:
        print(json.dumps(keys, indent=2))
        return 0
    if not keys:
        print("no API keys: create one with feedback-core create-api-key --name NAME --role service")
    for k in keys:
        state = (
            f"revoked {k['revoked_at']}" if k["revoked_at"] else f"last used {k['last_used_at'] or 'never'}"
        )
        print(f"{k['name']:<30} {k['role']:<8} {k['prefix']}...  created {k['created_at']}  {state}")
    return 0
