"""The ``feedback-core`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence

from feedback_core.errors import FeedbackError
from feedback_core.settings import Settings, mask_url

COMMANDS: dict[str, tuple[Callable, Callable[[argparse.ArgumentParser], None], str]] = {}


def command(name: str, help_text: str, arguments: Callable[[argparse.ArgumentParser], None] = lambda p: None):
    """Register a subcommand: ``fn(system_factory, args) -> exit code``."""

    def register(fn):
        COMMANDS[name] = (fn, arguments, help_text)
        return fn

    return register


def build_system(args: argparse.Namespace):
    """Build the system for the command's ``--db`` (or the environment)."""
    from feedback_core.system import FeedbackSystem

    overrides = {"database_url": args.db} if args.db else {}
    return FeedbackSystem.from_settings(Settings.from_env(**overrides))


def schema_problem(system) -> str | None:
    """Say why the loop cannot run on this database (no schema, or an old one); None when current."""
    from feedback_core.db import current_revision, head_revision

    revision, latest = current_revision(system.engine), head_revision()
    if revision is None:
        return "the database has no feedback schema: run feedback-core init"
    if revision != latest:
        return (
            f"the database is at schema revision {revision}, not the latest {latest}: run feedback-core init"
        )
    return None


@command("init", "create or upgrade the database schema (harmless to repeat)")
def cmd_init(args: argparse.Namespace) -> int:
    system = build_system(args)
    revision = system.init_feedback_tables()
    print(f"database {mask_url(system.settings.database_url)} is at schema revision {revision}")
    return 0


def _info_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON")


@command(
    "info", "show the schema version, row counts and the database URL (password masked)", _info_arguments
)
def cmd_info(args: argparse.Namespace) -> int:
    from feedback_core.db import current_revision, head_revision

    system = build_system(args)
    revision = current_revision(system.engine)
    info = {
        "database_url": mask_url(system.settings.database_url),
        "schema_revision": revision,
        "latest_revision": head_revision(),
        "row_counts": system.count_rows() if revision else {},
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"database:        {info['database_url']}")
    print(
        f"schema revision: {revision or '(empty database: run feedback-core init)'}"
        f" (latest {info['latest_revision']})"
    )
    for table, count in info["row_counts"].items():
        print(f"  {table:<26} {count:>12,}")
    return 0


def make_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every registered command."""
    _load_commands()
    parser = argparse.ArgumentParser(prog="feedback-core", description="Recommendation feedback system")
    parser.add_argument("--db", help="database URL (overrides FEEDBACK_DB_URL)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log [FEEDBACK] lines to stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (fn, arguments, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        # --db is accepted after the command too: `feedback-core init --db URL`.
        p.add_argument("--db", default=argparse.SUPPRESS, help="database URL (overrides FEEDBACK_DB_URL)")
        arguments(p)
        p.set_defaults(handler=fn)
    return parser


def _load_commands() -> None:
    # Later modules register their own commands; importing them here keeps start-up lazy.
    for module in ("feedback_core.cli_loop", "feedback_core.cli_api"):
        try:
            __import__(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = make_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    try:
        return args.handler(args)
    except FeedbackError as exc:
        where = f" ({exc.field})" if exc.field else ""
        print(f"error{where}: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # Run as ``python -m feedback_core.cli``: use the importable module, where commands register.
    from feedback_core.cli import main as _main

    sys.exit(_main())
