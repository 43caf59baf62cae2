"""Commands of the learning loop: demo, simulate, worker, retrain, import, import-catalog."""

from __future__ import annotations

import argparse
import math
import shlex
import signal
import sys
import tempfile
import threading

from tqdm import tqdm

from feedback_core.cli import (
    at_least,
    build_system,
    check_database,
    command,
    interrupted,
    positive_int,
    schema_ready,
)
from feedback_core.settings import Settings, mask_url


def _world_arguments(p: argparse.ArgumentParser) -> None:
    from feedback_core.demo import LIST_SIZE, MIN_MOVIES, MIN_USERS, PAST_RATINGS

    p.add_argument("--seed", type=at_least(0), default=7, help="random seed, 0 or more (default 7)")
    p.add_argument(
        "--users",
        type=at_least(MIN_USERS),
        default=300,
        help=f"simulated people, {MIN_USERS} or more: with fewer, their past ratings may not give "
        "the initial model both liked and disliked films (default 300)",
    )
    p.add_argument(
        "--movies",
        type=at_least(MIN_MOVIES),
        default=1500,
        help=f"catalogue size, {MIN_MOVIES} or more: the up to {PAST_RATINGS} films each person rated "
        f"before are not recommended again, and a list shows {LIST_SIZE} (default 1500)",
    )


def _demo_arguments(p: argparse.ArgumentParser) -> None:
    _world_arguments(p)
    p.add_argument("--days", type=positive_int, default=30, help="simulated days, 1 or more (default 30)")
    p.add_argument("--if-empty", action="store_true", help="do nothing when the database has data")


@command("demo", "build a realistic demo database (deterministic for a seed)", _demo_arguments)
def cmd_demo(args: argparse.Namespace) -> int:
    from feedback_core.demo import build_demo

    system = build_system(args, create=True)
    system.init_feedback_tables()
    held = _held_data(system.count_rows())
    if held:
        if args.if_empty:
            print(f"database {mask_url(system.settings.database_url)} already has data: demo not built")
            return 0
        print(
            f"error: the database {mask_url(system.settings.database_url)} is not empty "
            f"({', '.join(held)}): the demo is built only into an empty database (it would take the "
            "place of all of it); name a new one with --db, or add --if-empty to leave this one as it is",
            file=sys.stderr,
        )
        return 2
    system.close()
    with tqdm(total=args.days + 1, desc="building demo", unit="step", file=sys.stderr) as bar:

        def progress(n: int, text: str) -> None:
            bar.set_postfix_str(text)
            bar.update(n)

        def build(settings: Settings) -> dict:
            return build_demo(settings, args.seed, args.users, args.days, args.movies, progress)

        summary = _build_whole(system.settings, build)
    print(
        f"demo ready: {count(summary['movies'], 'film')}, {count(summary['users'], 'person', 'people')}, "
        f"{count(summary['days'], 'day')}, {count(summary['impressions'], 'impression')}, "
        f"{count(summary['dislikes'], 'dislike')}, {count(summary['versions'], 'model version')}; "
        f"dislike rate {summary['first_day_rate']:.1%} on day 1, {summary['last_day_rate']:.1%} on the last day"
    )
    return 0


# What a database may hold that the demo would take the place of (counted as in `info`).
_HELD = (
    ("movies", "film"),
    ("user_dislikes", "dislike"),
    ("ratings", "rating"),
    ("recommendation_sets", "shown list"),
    ("model_versions", "model version"),
    ("api_keys", "API key"),
)


def _held_data(counts: dict[str, int]) -> list[str]:
    """What the database holds that a demo built into it would replace: ["2 API keys", ...]."""
    return [count(counts[table], noun) for table, noun in _HELD if counts.get(table)]


def _build_whole(settings: Settings, build) -> dict:
    """Run ``build`` so that an interrupted build leaves the database as it was (empty).

    An SQLite database is built in a file beside it (``<file>.building``), copied into it only
    once complete (or moved in place, when there was no file yet); a build stopped half-way would
    otherwise leave a partial demo that the next ``demo --if-empty`` (``make run``) keeps as
    "already has data". A build that fails removes its file. Other databases are built in place,
    in their own transactions.
    """
    import os
    import sqlite3
    from contextlib import closing

    from feedback_core.cli import _sqlite_path
    from feedback_core.db import parse_database_url
    from feedback_core.system import FeedbackSystem

    url = parse_database_url(settings.database_url)
    target = _sqlite_path(url)
    if target is None:
        return build(settings)
    building = target.with_name(target.name + ".building")
    _remove_sqlite_files(building)
    scratch = settings.with_(
        database_url=url.set(database=str(building)).render_as_string(hide_password=False)
    )
    try:
        system = FeedbackSystem.from_settings(scratch)
        try:
            system.init_feedback_tables()
        finally:
            system.close()
        summary = build(scratch)
        with closing(sqlite3.connect(building)) as con:  # the file alone holds everything
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except BaseException:
        _remove_sqlite_files(building)  # half a demo is of no use to the next build
        raise
    if target.exists():
        # Copied into the file itself rather than a new file put in its place: a dashboard or an
        # API that has the database open goes on reading the file it opened, and would never
        # see a replaced one (and would write into a deleted file). SQLite's backup copies the
        # pages under its own locks, so they see the demo at their next read.
        with (
            closing(sqlite3.connect(building)) as source,
            closing(sqlite3.connect(target, timeout=30)) as dest,
        ):
            source.backup(dest)
    else:
        os.replace(building, target)
    _remove_sqlite_files(building)
    return summary


def _remove_sqlite_files(path, suffixes=("", "-wal", "-shm", "-journal", "-writer")) -> None:
    """Remove an SQLite file and what SQLite and the engine keep beside it."""
    for suffix in suffixes:
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def _simulate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rounds", type=positive_int, default=10, help="rounds to simulate (default 10)")
    p.add_argument("--no-feedback", action="store_true", help="record nothing users do (the control)")
    _world_arguments(p)


@command(
    "simulate",
    "run the learning loop on a scratch database and print the dislike rate per round",
    _simulate_arguments,
)
def cmd_simulate(args: argparse.Namespace) -> int:
    from feedback_core.demo import simulate
    from feedback_core.system import FeedbackSystem

    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{tmp}/simulation.db"
        args.database_url = url  # for main's messages about the database
        check_database(url)
        settings = Settings.from_env(database_url=url)
        system = FeedbackSystem.from_settings(settings)
        system.init_feedback_tables()
        counts = system.count_rows()
        system.close()
        if counts["movies"] or counts["user_dislikes"]:
            # The simulation writes thousands of made-up rows: never into a real database.
            print(
                f"error: the database {mask_url(url)} is not empty; simulate needs a new (scratch) database",
                file=sys.stderr,
            )
            return 2
        mode = "without feedback" if args.no_feedback else "with feedback"
        print(f"simulating {args.rounds} rounds {mode}: {args.users} people, {args.movies} films")
        print(f"{'round':>5}  {'impressions':>11}  {'dislikes':>8}  {'dislike rate':>12}")

        def report(r) -> None:
            print(
                f"{r.round:>5}  {r.impressions:>11,}  {r.dislikes:>8,}  {r.dislike_rate:>11.1%}", flush=True
            )

        results = simulate(
            settings, args.rounds, not args.no_feedback, args.seed, args.users, args.movies, report
        )
    first, last = results[0].dislike_rate, results[-1].dislike_rate
    change = (last / first - 1) if first else 0.0
    print(f"dislike rate: first round {first:.1%}, last round {last:.1%} ({change:+.0%})")
    return 0


POLL_RANGE = (0.01, 3600.0)


def poll_seconds(text: str) -> float:
    """Parse the seconds between queue checks (an argparse ``type``).

    Less than 10 ms would keep the database busy with checks (0 or less: without a pause);
    more than an hour would leave a retrain request waiting longer than anyone expects.
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    low, high = POLL_RANGE
    if not (math.isfinite(value) and low <= value <= high):
        raise argparse.ArgumentTypeError(f"must be from {low:g} to {high:g} seconds, got {text}")
    return value


def _worker_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--once", action="store_true", help="run what is queued, then exit")
    p.add_argument(
        "--poll",
        type=poll_seconds,
        default=2.0,
        help=f"seconds between queue checks, {POLL_RANGE[0]:g} to {POLL_RANGE[1]:g} (default 2)",
    )


class _Terminated(BaseException):
    """SIGTERM reached the worker command (not an Exception: nothing may take it for an error)."""


def _terminate(_signum, _frame) -> None:
    raise _Terminated("SIGTERM")


@command("worker", "claim queued retrain jobs and run them", _worker_arguments)
def cmd_worker(args: argparse.Namespace) -> int:
    system = build_system(args)
    if not schema_ready(system):
        return 2
    recovered = system.recover_stale_jobs()
    if recovered:
        print(f"marked failed (their worker had died): jobs {recovered}")
    doing = "running the queued retrain jobs" if args.once else "waiting for retrain jobs (Ctrl-C stops)"
    print(f"worker {mask_url(system.settings.database_url)}: {doing}")
    if threading.current_thread() is threading.main_thread():
        # A service manager stops it with SIGTERM: the job under way is failed (its examples
        # released, its retrain queued again) rather than left for recovery to find, and the
        # worker ends cleanly (exit 0: a stop asked for is no failure).
        signal.signal(signal.SIGTERM, _terminate)
    try:
        done = system.run_worker(once=args.once, poll_seconds=args.poll)
    except _Terminated:
        print("worker stopped (SIGTERM)")
        return 0
    print(f"ran {done} job(s)")
    return 0


def _retrain_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--actor", default="cli", help="who asks (recorded in the audit log)")


@command("retrain", "train a new model version now, in this process", _retrain_arguments)
def cmd_retrain(args: argparse.Namespace) -> int:
    system = build_system(args)
    if not schema_ready(system):
        return 2
    job = system.retrain(args.actor)
    if job["status"] != "succeeded":
        print(f"retrain job {job['job_id']} failed: {job['error']}", file=sys.stderr)
        return 1
    if job["result_version_id"] is None:  # trained on the very data of the newest version
        print(f"retrain job {job['job_id']} added no version: {job['stage'].removeprefix('unchanged: ')}")
        return 0
    version = system.get_model_version(job["result_version_id"])
    metrics = version["metrics"]
    print(
        f"version {version['version_id']} ({version['status']}): {_auc_text(metrics)}, "
        f"log loss {_figure(metrics.get('log_loss'))}; {metrics.get('promotion', {}).get('reason', '')}"
    )
    return 0


def _figure(value: float | None) -> str:
    """A metric to four decimals; n/a when there is none."""
    return "n/a" if value is None else f"{value:.4f}"


def _auc_text(metrics: dict) -> str:
    """The cross-validated AUC, or why there is none."""
    if metrics.get("auc") is not None:
        return f"AUC {metrics['auc']:.4f}"
    held_out = metrics.get("held_out")
    if held_out is None:
        return "AUC n/a"
    if held_out == 0:
        # A fold is scored only by a model trained on both labels (training.fit_and_evaluate).
        return "AUC n/a (too few liked and disliked examples to score any by cross-validation)"
    return f"AUC n/a (cross-validation scored only liked or only disliked examples, {held_out:,} of them)"


def count(n: int, singular: str, plural: str | None = None) -> str:
    """``n`` and the noun, singular for one: "1 batch", "2 batches"."""
    if n == 1:
        return f"1 {singular}"
    return f"{n:,} {plural or (singular + 'es' if singular.endswith(('s', 'sh', 'ch', 'x')) else singular + 's')}"


def _import_arguments(p: argparse.ArgumentParser) -> None:
    from feedback_core.import_reader import KINDS
    from feedback_core.importing import DEFAULT_BATCH

    p.add_argument("file", help="CSV with a header row, or JSON lines (.jsonl)")
    p.add_argument("--kind", required=True, choices=KINDS, help="what the file holds")
    p.add_argument(
        "--on-error",
        choices=("abort", "skip"),
        default="abort",
        help="abort: stop at the batch of the first bad row, report all of that batch's bad rows "
        "and keep none of it (default); skip: report bad rows and import the rest",
    )
    p.add_argument(
        "--batch",
        type=positive_int,
        default=DEFAULT_BATCH,
        help=f"rows per transaction, 1 or more (default {DEFAULT_BATCH:,})",
    )


@command(
    "import", "import movies, ratings, impressions or dislikes from CSV or JSON lines", _import_arguments
)
def cmd_import(args: argparse.Namespace) -> int:
    return _run_import(args, args.kind, args.on_error, args.batch, "or use --on-error skip")


def _catalog_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="CSV with a header row, or JSON lines")
    p.add_argument(
        "--batch",
        type=positive_int,
        default=10**9,
        help="rows per transaction, 1 or more (default: the whole file)",
    )


@command(
    "import-catalog",
    "import movies (movie_id, title, genres, cast, franchise, year); all or nothing",
    _catalog_arguments,
)
def cmd_import_catalog(args: argparse.Namespace) -> int:
    # By default the whole file is one batch: a bad line imports nothing.
    advice = f"or import the good rows alone: feedback-core import {shlex.quote(args.file)} --kind movies --on-error skip"
    return _run_import(args, "movies", "abort", args.batch, advice)


def _run_import(args: argparse.Namespace, kind: str, on_error: str, batch: int, advice: str) -> int:
    """Import ``args.file``; ``advice``: what else to try when bad rows stop the import."""
    from feedback_core.errors import ValidationError
    from feedback_core.import_reader import check_import_path

    try:  # before the database is created or migrated: a mistyped name changes nothing
        check_import_path(args.file)
    except ValidationError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    system = build_system(args, create=True)
    system.init_feedback_tables()
    latest: list = []  # the import's summary as it goes, for an interruption
    with tqdm(total=0, desc=f"importing {kind}", unit="B", unit_scale=True, file=sys.stderr) as bar:

        def progress(done: int, total: int, summary) -> None:
            if not latest or summary.batches > latest[0][1]:
                # What the committed batches hold: the summary counts a batch before it commits.
                latest[:] = [(summary.imported, summary.batches)]
            bar.total = total
            bar.update(done - bar.n)
            present = f"{summary.already_present:,} already present, " if summary.already_present else ""
            bar.set_postfix_str(f"{summary.imported:,} imported, {present}{summary.rejected:,} rejected")

        try:
            summary = system.import_file(
                args.file, kind, on_error=on_error, batch_size=batch, progress=progress
            )
        except ValidationError as exc:
            bar.close()
            print(f"error: {exc.field}: {exc.message}", file=sys.stderr)
            return 2
        except OSError as exc:
            bar.close()
            print(f"error: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        except BaseException as exc:  # Ctrl-C, also in a database error raised while it unwound
            if not interrupted(exc):
                raise
            bar.close()
            imported, batches = latest[0] if latest else (0, 0)
            kept = f"{imported:,} row(s) in {count(batches, 'complete batch')}" if batches else "nothing"
            # A Ctrl-C that lands while a batch commits may come just after its commit: said so.
            print(
                f"interrupted: {kept} imported before it (and the batch it stopped, if its commit had "
                "already happened); run the same command again to import the rest (rows already "
                "imported are recognised, not added twice)",
                file=sys.stderr,
            )
            return 130
    # The file's own problem (its header row, a damaged compressed stretch) is told last, once.
    row_errors = [e for e in summary.errors if summary.file_error is None or e.message != summary.file_error]
    for error in row_errors[:20]:
        print(f"{args.file}:{error.line}: {error.text}", file=sys.stderr)
    if summary.rejected > 20:
        print(f"... and {summary.rejected - 20:,} more bad row(s)", file=sys.stderr)
    # Under abort, the good rows of the failing batch were read and checked, never written.
    left_out = summary.rows_read - summary.imported - summary.already_present - summary.rejected
    left_text = f", {left_out:,} good row(s) left out with the failing batch" if left_out > 0 else ""
    print(
        f"{kind}: {count(summary.rows_read, 'row')} read, {summary.imported:,} imported, "
        f"{summary.already_present:,} already present, {summary.rejected:,} rejected{left_text}, "
        f"{count(summary.batches, 'batch')} in {summary.seconds:.1f} s ({summary.rate:,.0f} rows/s) "
        f"into {mask_url(system.settings.database_url)}"
    )
    if summary.scores_from_lists:
        print(
            f"note: {summary.scores_from_lists:,} dislike(s) gave a predicted_score other than the one their "
            "list showed the film with: the list's was recorded (it is what the model predicted when shown)",
            file=sys.stderr,
        )
    if summary.file_error is not None:
        # Skipping rows cannot help: nothing after this point of the file could be read.
        line = next((e.line for e in summary.errors if e.message == summary.file_error), None)
        where = f"{args.file}:{line}" if line is not None else args.file
        kept = " (the complete batches before it are kept)" if summary.imported else ""
        # (A damaged compressed file is found before its first row is read.)
        tail = f"nothing after it was read{kept}" if summary.rows_read else "nothing of it was imported"
        print(f"error: {where}: the file cannot be imported: {summary.file_error}; {tail}", file=sys.stderr)
        return 2
    if summary.aborted:
        print(
            f"{summary.rejected:,} bad row(s): import stopped, nothing of the failing batch imported "
            f"(earlier batches are kept; fix the rows and run again, {advice})",
            file=sys.stderr,
        )
        return 2
    return 0
