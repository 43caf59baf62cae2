"""The ``feedback-core`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sqlite3
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy.exc import DBAPIError, OperationalError

from feedback_core.errors import ConfigError, DatabaseRefusedError, DatabaseUnavailableError, FeedbackError
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
    from feedback_core.system import FeedbackSystem

    overrides = {"database_url": args.db} if args.db else {}
    settings = Settings.from_env(**overrides)
    args.database_url = settings.database_url  # for main's messages about the database file
    path = check_database(settings.database_url)
    if not create and path is not None and not path.exists():
        raise FeedbackError(f"no database at {path}: run feedback-core init")
    return FeedbackSystem.from_settings(settings)


def check_database(database_url: str) -> Path | None:
    """Refuse a database no command can use: an in-memory SQLite one (gone when the command
    ends), or a device or a folder named as the SQLite file. Return the SQLite file, None for
    another database."""
    from feedback_core.db import parse_database_url

    url = parse_database_url(database_url)
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if not database or ":memory:" in database or url.query.get("mode") == "memory":
        shown = database_url if url.password is None else mask_url(database_url)  # as typed
        raise ConfigError(
            f"{shown} is an in-memory SQLite database, gone when the command ends: "
            "name a file, e.g. sqlite:///feedback.db"
        )
    path = _sqlite_path(url)
    if path is not None and path.exists() and not path.is_file():
        # SQLite would fail on it with "disk I/O error", and write a journal beside it first.
        what = "a directory" if path.is_dir() else "not a regular file (a device or a pipe)"
        raise ConfigError(f"the database {path} is {what}: an SQLite database is a file")
    return path


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


def at_least(minimum: int) -> Callable[[str], int]:
    """Return an argparse ``type`` parsing a whole number of ``minimum`` or more."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, got {value}")
        return value

    return parse


positive_int = at_least(1)


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
    if sys.stdout is None:
        # Started with standard output closed (`>&-`): nothing could say what the command did.
        print(
            "error: standard output is closed: nothing was done (send it to /dev/null to discard it)",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    system_log = logging.getLogger("feedback_core")
    level = system_log.level
    if args.command in SERVICES:
        # A service's log is what its operators read (and grep for [FEEDBACK]).
        system_log.setLevel(logging.INFO)
    stdout = sys.stdout
    sys.stdout = _Output(stdout)
    try:
        code = args.handler(args)
        sys.stdout.flush()  # inside the try: a closed pipe fails here, not at exit
        return code
    except OutputError as exc:
        _discard_output(stdout)  # the flush at exit must not fail again
        # A closed pipe means the reader went away (`| head`): stop quietly.
        if not isinstance(exc.error, BrokenPipeError):
            print(
                f"error: cannot write to standard output: {exc.error.strerror or exc.error}", file=sys.stderr
            )
        return 1
    except DatabaseUnavailableError as exc:
        if interrupted(exc):
            print("interrupted", file=sys.stderr)
            return 130
        problem = _database_failure(exc, args) or f"{exc.message} ({_database_name(args)})"
        print(f"error: {problem}", file=sys.stderr)
        return 2
    except FeedbackError as exc:
        where = f" ({exc.field})" if exc.field else ""
        print(f"error{where}: {exc.message}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        _discard_output(stdout)  # written past the wrapper (by a library holding the real stream)
        return 1
    except OSError as exc:
        # A file the command was given (or the database file) that cannot be read or written.
        print(f"error: {_os_problem(exc, args)}", file=sys.stderr)
        return 2
    except (DBAPIError, sqlite3.Error) as exc:
        if interrupted(exc):
            print("interrupted", file=sys.stderr)
            return 130
        if _read_only(exc):
            print(f"error: {_database_name(args)} is read-only: nothing was written", file=sys.stderr)
            return 2
        problem = _database_failure(exc, args)
        if problem is None:
            raise  # an error in the program's own SQL: its traceback is what finds it
        print(f"error: {problem}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        sys.stdout = stdout
        system_log.setLevel(level)  # main() may be called in a process that goes on


class OutputError(Exception):
    """Standard output could not be written (a full disk, a closed pipe): not the database's fault."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


class _Output:
    """Standard output whose write errors are raised as OutputError, so that main() does not
    blame them on the database file (an OSError without a file name)."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as exc:
            raise OutputError(exc) from exc

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            raise OutputError(exc) from exc

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _discard_output(stream) -> None:
    """Point standard output at devnull: Python's documented recipe for a closed pipe, so that
    the flush at exit does not fail again."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
    except (OSError, ValueError):
        pass  # not a file descriptor (output captured in-process): nothing is flushed at exit


def _os_problem(exc: OSError, args: argparse.Namespace) -> str:
    """Say which file an OSError is about (the database's when it names none), and why."""
    from feedback_core.db import parse_database_url

    reason = exc.strerror or str(exc)
    if exc.filename is None:
        return f"{_database_name(args)}: {reason}"
    url = getattr(args, "database_url", None)
    path = _sqlite_path(parse_database_url(url)) if url else None
    if path is not None and Path(exc.filename) in path.parents:
        return f"cannot create the folder of the database {path}: {exc.filename}: {reason}"
    return f"{exc.filename}: {reason}"


def interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` is, or was raised while handling, a Ctrl-C: psycopg leaving its pipeline
    mode (an executemany) mid-statement raises "cannot exit pipeline mode while busy", which
    took the Ctrl-C's place as a database error."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _read_only(exc: Exception) -> bool:
    """Tell whether a driver error means the database (file) refuses writes."""
    message = str(getattr(exc, "orig", exc)).lower()
    return "readonly database" in message or "read-only" in message


# SQLite's result codes for trouble with the file or the machine (not with the program's SQL).
_SQLITE_TROUBLE = (
    "SQLITE_NOTADB",
    "SQLITE_CORRUPT",
    "SQLITE_IOERR",
    "SQLITE_FULL",
    "SQLITE_CANTOPEN",
    "SQLITE_PERM",
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_NOLFS",
    "SQLITE_NOMEM",
    "SQLITE_PROTOCOL",
)
# PostgreSQL's SQLSTATEs of the same: connection (08), authorization (28), no such database
# (3D), insufficient resources such as a full disk (53), operator intervention (57), system
# errors such as I/O (58); and a role lacking a privilege (42501).
_POSTGRES_TROUBLE = ("08", "28", "3D", "53", "57", "58", "42501")


def _database_failure(exc: Exception, args: argparse.Namespace) -> str | None:
    """Return one line naming the database and what went wrong with it (a file that is no
    database, a full disk, a missing PostgreSQL database, a wrong password); None when the
    error is none of those (a bug, which keeps its traceback)."""
    cause = exc.__cause__ if isinstance(exc, DatabaseUnavailableError) else exc
    driver_error = getattr(cause, "orig", cause)
    name = _database_name(args)
    code = getattr(driver_error, "sqlite_errorname", None)
    if code is not None:
        if not code.startswith(_SQLITE_TROUBLE):
            return None
        if code.startswith("SQLITE_CANTOPEN"):
            # Not something a retry mends (a folder without write permission, /proc/x.db).
            return f"cannot open the database file {name}: {_why_unopenable(args) or driver_error}"
        return f"database {name}: {driver_error} ({code})"
    state = getattr(driver_error, "sqlstate", False)
    if state is not False and (
        (state is None and isinstance(cause, OperationalError))  # refused before any SQL: connecting
        or (state is not None and state.startswith(_POSTGRES_TROUBLE))
    ):
        cause_text = _hide_password(_first_reason(str(driver_error)), args)
        if isinstance(exc, DatabaseUnavailableError) and not isinstance(exc, DatabaseRefusedError):
            return f"the database {name} is unavailable ({cause_text}); retry shortly"
        return f"database {name}: {cause_text}"
    return None


def _first_reason(message: str) -> str:
    """The reason in a driver's message, without its preamble (which host, which attempt)."""
    line = message.strip().splitlines()[0] if message.strip() else message
    for marker in ("FATAL:", " failed: "):
        if marker in line:
            line = line.rsplit(marker, 1)[1]
            break
    return " ".join(line.split())


def _hide_password(text: str, args: argparse.Namespace) -> str:
    """Mask the database URL's password should a driver's message repeat it."""
    from feedback_core.db import parse_database_url

    url = getattr(args, "database_url", None)
    password = parse_database_url(url).password if url else None
    return text.replace(password, "***") if password else text


def _database_name(args: argparse.Namespace) -> str:
    """Name the command's database for a message: its file, or its URL with the password masked."""
    from feedback_core.db import parse_database_url

    url = getattr(args, "database_url", None)
    if url is None:
        return "the database"
    path = _sqlite_path(parse_database_url(url))
    return str(path) if path is not None else mask_url(url)


def _why_unopenable(args: argparse.Namespace) -> str | None:
    """Ask the operating system why the database file cannot be opened for writing (SQLite only
    says "unable to open database file"); None for a database that is no file."""
    from feedback_core.db import parse_database_url

    url = getattr(args, "database_url", None)
    path = _sqlite_path(parse_database_url(url)) if url else None
    if path is None:
        return None
    created = not path.exists()
    try:
        fd = os.open(path, os.O_RDWR | (os.O_CREAT | os.O_EXCL if created else 0), 0o644)
    except OSError as exc:
        return exc.strerror or str(exc)
    os.close(fd)
    if created:
        path.unlink()  # only a probe: SQLite could not use it
    return f"unable to open database file (SQLite also writes files beside it, in {path.parent})"


if __name__ == "__main__":
    # Run as ``python -m feedback_core.cli``: use the importable module, where commands register.
    from feedback_core.cli import main as _main

    sys.exit(_main())
