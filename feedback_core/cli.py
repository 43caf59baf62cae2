"""The ``feedback-core`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy.exc import DBAPIError

from feedback_core.errors import FeedbackError
from feedback_core.settings import Settings, mask_url

COMMANDS: dict[str, tuple[Callable, Callable[[argparse.ArgumentParser], None], str]] = {}


def command(name: str, help_text: str, arguments: Callable[[argparse.ArgumentParser], None] = lambda p: None):
    """Register a subcommand: ``fn(system_factory, args) -> exit code``."""

    def register(fn):
        COMMANDS[name] = (fn, arguments, help_text)
        return fn

    return register


def build_system(args: argparse.Namespace, create: bool = False):
    """Build the system for the command's ``--db`` (or the environment).

    Args:
        create: the command may create the database (an SQLite file and its folders); a
            command that only reads or changes existing data says "run init" instead.
    """
    from feedback_core.db import parse_database_url
    from feedback_core.system import FeedbackSystem

    overrides = {"database_url": args.db} if args.db else {}
    settings = Settings.from_env(**overrides)
    args.database_url = settings.database_url  # for main's messages about the database file
    path = _sqlite_path(parse_database_url(settings.database_url))
    if not create and path is not None and not path.exists():
        raise FeedbackError(f"no database at {path}: run feedback-core init")
    return FeedbackSystem.from_settings(settings)


def _sqlite_path(url) -> Path | None:
    """Return the file of an on-disk SQLite URL, None for anything else."""
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or ":memory:" in database:
        return None
    # A URI filename (sqlite:///file:PATH?mode=ro&uri=true) names its file after "file:".
    return Path(database.removeprefix("file:"))


def schema_problem(system) -> str | None:
    """Say why the loop cannot run on this database (no schema, an old or a newer one); None when current."""
    from feedback_core.db import current_revision, head_revision, newer_schema_problem

    revision, latest = current_revision(system.engine), head_revision()
    if revision is None:
        return "the database has no feedback schema: run feedback-core init"
    newer = newer_schema_problem(revision)
    if newer is not None:
        return newer
    if revision != latest:
        return (
            f"the database is at schema revision {revision}, not the latest {latest}: run feedback-core init"
        )
    return None


def schema_ready(system) -> bool:
    """Say so (and return False) when the database needs ``feedback-core init`` first."""
    problem = schema_problem(system)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
    return problem is None


def positive_int(text: str) -> int:
    """Parse a whole number of 1 or more (an argparse ``type``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def port_number(text: str) -> int:
    """Parse a TCP port, 0 (any free one) to 65535 (an argparse ``type``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port between 0 (any free one) and 65535, got {value}")
    return value


@command("init", "create or upgrade the database schema (harmless to repeat)")
def cmd_init(args: argparse.Namespace) -> int:
    system = build_system(args, create=True)
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


# Long-running commands: they log the system's [FEEDBACK] lines (INFO) without -v.
SERVICES = ("serve", "worker")


def make_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every registered command."""
    _load_commands()
    parser = argparse.ArgumentParser(prog="feedback-core", description="Recommendation feedback system")
    parser.add_argument("--db", help="database URL (overrides FEEDBACK_DB_URL)")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log every INFO line to stderr (serve and worker log the [FEEDBACK] lines without it)",
    )
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
    system_log = logging.getLogger("feedback_core")
    level = system_log.level
    if args.command in SERVICES:
        # A service's log is what its operators read (and grep for [FEEDBACK]).
        system_log.setLevel(logging.INFO)
    try:
        code = args.handler(args)
        sys.stdout.flush()  # inside the try: a closed pipe fails here, not at exit
        return code
    except FeedbackError as exc:
        where = f" ({exc.field})" if exc.field else ""
        print(f"error{where}: {exc.message}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly. Python's documented recipe: point
        # stdout at devnull so the flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:
        # A file the command was given (or the database file) that cannot be read or written.
        print(f"error: {exc.filename or _database_name(args)}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except DBAPIError as exc:
        if not _read_only(exc):
            raise
        print(f"error: {_database_name(args)} is read-only: nothing was written", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        system_log.setLevel(level)  # main() may be called in a process that goes on


def _read_only(exc: Exception) -> bool:
    """Tell whether a driver error means the database (file) refuses writes."""
    message = str(getattr(exc, "orig", exc)).lower()
    return "readonly database" in message or "read-only" in message


def _database_name(args: argparse.Namespace) -> str:
    """Name the command's database for a message: its file, or its URL with the password masked."""
    from feedback_core.db import parse_database_url

    url = getattr(args, "database_url", None)
    if url is None:
        return "the database"
    path = _sqlite_path(parse_database_url(url))
    return str(path) if path is not None else mask_url(url)


if __name__ == "__main__":
    # Run as ``python -m feedback_core.cli``: use the importable module, where commands register.
    from feedback_core.cli import main as _main

    sys.exit(_main())
