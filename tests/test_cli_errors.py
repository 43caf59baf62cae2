"""The command line's errors: bad arguments, unusable files and databases, broken output.

Each failure ends in one ``error: ...`` line that says what was wrong and where, never a
traceback; arguments out of range are refused before anything is created.
"""

from __future__ import annotations

import gzip
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PG_SKIP, PG_URL
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from feedback_core import FeedbackSystem
from feedback_core.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def usage_error(capsys, *argv: str) -> str:
    """Run a command argparse must refuse; return its stderr."""
    with pytest.raises(SystemExit) as exit_:
        main(list(argv))
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def command_line(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    """Run this checkout's command line in a process of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBACK_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "feedback_core.cli", *argv], env=env, timeout=300, **kwargs)


def one_error_line(err: str) -> str:
    """The last line of stderr (after any progress bar), checked to be the only error."""
    assert "Traceback" not in err
    assert err.count("error:") == 1, err
    return err.strip().splitlines()[-1]


def movies_file(path: Path, rows: int = 2) -> Path:
    path.write_text("movie_id,title\n" + "".join(f"{i},Film {i}\n" for i in range(1, rows + 1)))
    return path


# ------------------------------------------------------------------ the file to import


@pytest.mark.parametrize("command", [["import", "--kind", "movies"], ["import-catalog"]])
@pytest.mark.parametrize("name", ["-", "a-folder"])
def test_standard_input_or_a_folder_is_refused_before_the_database_is_made(tmp_path, capsys, command, name):
    target = tmp_path / "new" / "x.db"
    (tmp_path / "a-folder").mkdir()
    path = name if name == "-" else str(tmp_path / name)
    code, out, err = run(capsys, "--db", f"sqlite:///{target}", command[0], path, *command[1:])
    assert (code, out) == (2, "")
    expected = "reading standard input is not supported" if name == "-" else f"{path} is a directory"
    assert err.startswith(f"error: {expected}") and err.count("\n") == 1
    assert not target.parent.exists()


def test_a_pipe_as_dev_stdin_is_refused_before_the_database_is_made(tmp_path):
    target = tmp_path / "x.db"
    done = command_line(
        "--db",
        f"sqlite:///{target}",
        "import",
        "/dev/stdin",
        "--kind",
        "movies",
        input="movie_id,title\n1,Heat\n",
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: /dev/stdin is not a regular file") and done.stderr.count("\n") == 1
    assert not target.exists()


@pytest.mark.parametrize("on_error", ["abort", "skip"])
def test_a_header_row_naming_the_wrong_columns_says_the_file_cannot_be_imported(tmp_path, capsys, on_error):
    path = tmp_path / "films.csv"
    path.write_text("id,name\n1,Heat\n")
    url = f"sqlite:///{tmp_path / 'x.db'}"
    code, out, err = run(capsys, "--db", url, "import", str(path), "--kind", "movies", "--on-error", on_error)
    assert code == 2
    line = one_error_line(err)
    assert line.startswith(f"error: {path}:1: the file cannot be imported: missing column(s) movie_id, title")
    assert line.endswith("; nothing of it was imported")
    assert "--on-error skip" not in err  # skipping rows would not help
    assert "0 imported" in out


@pytest.mark.parametrize("command", [["import", "--kind", "movies"], ["import-catalog"]])
def test_an_empty_csv_file_says_so_in_one_error_line(tmp_path, capsys, command):
    path = tmp_path / "films.csv"
    path.write_bytes(b"")
    url = f"sqlite:///{tmp_path / 'x.db'}"
    code, out, err = run(capsys, "--db", url, command[0], str(path), *command[1:])
    assert code == 2
    assert one_error_line(err) == (
        f"error: {path}:1: the file cannot be imported: the file is empty, without the header row a movies "
        "CSV file starts with (movie_id, title, and optionally genres, cast, franchise, year); nothing of it "
        "was imported"
    )
    assert out.startswith("movies: 0 rows read, 0 imported")


def test_the_import_summary_counts_in_the_singular_for_one(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    code, out, _ = run(
        capsys, "--db", url, "import", str(movies_file(tmp_path / "one.csv", 1)), "--kind", "movies"
    )
    assert code == 0
    assert out.startswith("movies: 1 row read, 1 imported, 0 already present, 0 rejected, 1 batch in ")
    code, out, _ = run(
        capsys,
        "--db",
        url,
        "import",
        str(movies_file(tmp_path / "three.csv", 3)),
        "--kind",
        "movies",
        "--batch",
        "2",
    )
    assert out.startswith("movies: 3 rows read, 3 imported, 0 already present, 0 rejected, 2 batches in ")


def test_a_cut_off_compressed_file_imports_nothing(tmp_path, capsys):
    whole = gzip.compress(movies_file(tmp_path / "films.csv", 20_000).read_bytes())
    path = tmp_path / "films.csv.gz"
    path.write_bytes(whole[: len(whole) // 2])
    url = f"sqlite:///{tmp_path / 'x.db'}"
    code, out, err = run(capsys, "--db", url, "import", str(path), "--kind", "movies", "--batch", "1000")
    assert code == 2
    line = one_error_line(err)
    assert line.startswith(f"error: {path}:") and "the file cannot be imported: the compressed file" in line
    assert line.endswith("; nothing of it was imported")
    assert "--on-error skip" not in err
    system = FeedbackSystem.from_url(url)
    assert system.count_rows()["movies"] == 0  # found before any row was written
    system.close()


def test_import_catalog_advises_what_it_can_do_with_bad_rows(tmp_path, capsys):
    path = tmp_path / "films.csv"
    path.write_text("movie_id,title\n1,Heat\nx,Alien\n")
    code, out, err = run(capsys, "--db", f"sqlite:///{tmp_path / 'x.db'}", "import-catalog", str(path))
    assert code == 2
    assert "or use --on-error skip" not in err  # import-catalog has no such option
    assert f"feedback-core import {path} --kind movies --on-error skip" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["import", "films.csv", "--kind", "movies", "--batch", "0"],
        ["import", "films.csv", "--kind", "movies", "--batch", "-3"],
        ["import-catalog", "films.csv", "--batch", "0"],
        ["import-catalog", "films.csv", "--batch", "many"],
    ],
)
def test_a_batch_size_below_one_is_a_usage_error(tmp_path, capsys, monkeypatch, argv):
    monkeypatch.chdir(tmp_path)
    movies_file(tmp_path / "films.csv")
    err = usage_error(capsys, "--db", f"sqlite:///{tmp_path / 'x.db'}", *argv)
    assert "argument --batch: must be" in err
    assert not (tmp_path / "x.db").exists()


# ------------------------------------------------------------------ the database


def test_a_file_that_is_no_database_is_one_line(tmp_path, capsys):
    path = movies_file(tmp_path / "films.csv")
    for command in ("init", "info"):
        code, out, err = run(capsys, "--db", f"sqlite:///{path}", command)
        assert code == 2
        assert err == f"error: database {path}: file is not a database (SQLITE_NOTADB)\n"
    assert path.read_text().startswith("movie_id,title")


@pytest.mark.parametrize("where", ["/dev/null", "folder"])
def test_a_device_or_a_folder_as_the_database_is_one_line(tmp_path, capsys, where):
    path = Path(where) if where.startswith("/") else tmp_path
    what = "a directory" if path.is_dir() else "not a regular file (a device or a pipe)"
    for command in ("init", "info", "import"):
        argv = (
            [command]
            if command != "import"
            else ["import", str(movies_file(tmp_path / "f.csv")), "--kind", "movies"]
        )
        code, out, err = run(capsys, "--db", f"sqlite:///{path}", *argv)
        assert code == 2
        assert err == f"error: the database {path} is {what}: an SQLite database is a file\n"


def test_a_database_file_that_cannot_be_created_says_where_and_why(capsys):
    code, out, err = run(capsys, "--db", "sqlite:////proc/feedback-test.db", "init")
    assert code == 2
    assert err.startswith("error: cannot open the database file /proc/feedback-test.db: ")
    assert "retry" not in err and err.count("\n") == 1  # waiting would not help


def test_a_database_folder_that_cannot_be_created_says_where_and_why(tmp_path, capsys):
    blocker = movies_file(tmp_path / "films.csv")  # a file where the folder would go
    code, out, err = run(capsys, "--db", f"sqlite:///{blocker}/x.db", "init")
    assert code == 2
    assert err == f"error: cannot create the folder of the database {blocker}/x.db: {blocker}: File exists\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder")
def test_a_folder_without_write_permission_says_where_and_why(tmp_path, capsys):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        code, out, err = run(capsys, "--db", f"sqlite:///{folder / 'x.db'}", "init")
    finally:
        folder.chmod(0o700)
    assert code == 2
    assert err == f"error: cannot open the database file {folder / 'x.db'}: Permission denied\n"


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&uri=true"]
)
@pytest.mark.parametrize(
    "argv",
    [
        ["init"],
        ["info"],
        ["import", "films.csv", "--kind", "movies"],
        ["import-catalog", "films.csv"],
        ["demo", "--users", "5", "--movies", "20", "--days", "1"],
        ["simulate", "--rounds", "1", "--users", "5", "--movies", "20"],
        ["worker", "--once"],
        ["retrain"],
        ["serve"],
        ["list-api-keys"],
    ],
)
def test_an_in_memory_sqlite_database_is_refused(tmp_path, capsys, monkeypatch, url, argv):
    from flask import Flask

    monkeypatch.setattr(Flask, "run", lambda *a, **k: pytest.fail("the server must not start"))
    monkeypatch.chdir(tmp_path)
    movies_file(tmp_path / "films.csv")
    code, out, err = run(capsys, "--db", url, *argv)
    assert (code, out) == (2, "")
    assert err == (
        f"error: {url} is an in-memory SQLite database, gone when the command ends: "
        "name a file, e.g. sqlite:///feedback.db\n"
    )


def test_the_library_still_accepts_an_in_memory_database():
    # Only the command line refuses it: tests build systems on it.
    system = FeedbackSystem.from_url("sqlite://")
    system.close()


FORMS = "postgresql://USER:PASSWORD@HOST:PORT/NAME (postgresql+psycopg:// is the same) or sqlite:///PATH"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (
            "postgresql+psycopg2://bob:s3cret@localhost/feedback",
            "its driver psycopg2 is not supported (psycopg 3 and sqlite3 are); "
            "write postgresql://bob:***@localhost/feedback",
        ),
        (
            "postgresql+asyncpg://bob:s3cret@localhost/feedback",
            "its driver asyncpg is not supported (psycopg 3 and sqlite3 are); "
            "write postgresql://bob:***@localhost/feedback",
        ),
        (
            "postgres://bob:s3cret@localhost/feedback",
            "the scheme is postgresql://, not postgres://; write postgresql://bob:***@localhost/feedback",
        ),
        (
            "sqlite+aiosqlite:////srv/feedback.db",
            "its driver aiosqlite is not supported (psycopg 3 and sqlite3 are); write sqlite:////srv/feedback.db",
        ),
        ("mysql://bob:s3cret@localhost/feedback", f"mysql is not supported; use {FORMS}"),
    ],
)
@pytest.mark.parametrize("source", ["--db", "FEEDBACK_DB_URL"])
def test_an_unsupported_database_driver_is_one_line_naming_the_forms_to_use(
    tmp_path, capsys, monkeypatch, url, problem, source
):
    monkeypatch.chdir(tmp_path)
    if source == "--db":
        code, out, err = run(capsys, "--db", url, "init")
    else:
        monkeypatch.setenv("FEEDBACK_DB_URL", url)
        code, out, err = run(capsys, "init")
    assert (code, out) == (2, "")
    shown = url.replace("s3cret", "***")
    assert err == (
        f"error: the database URL {shown!r} (from --db or FEEDBACK_DB_URL) cannot be used: {problem}\n"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("url", "advice"),
    [
        (
            "/srv/data/x.db",
            "for the SQLite file /srv/data/x.db write sqlite:////srv/data/x.db (three slashes, then the absolute path)",
        ),
        (
            "sqlite:/srv/data/a.db",
            "for the SQLite file /srv/data/a.db write sqlite:////srv/data/a.db (three slashes, then the absolute path)",
        ),
        ("feedback.db", "for the SQLite file feedback.db write sqlite:///feedback.db"),
        ("sqlite:feedback.db", "for the SQLite file feedback.db write sqlite:///feedback.db"),
    ],
)
def test_a_malformed_database_url_is_shown_as_typed_with_the_url_to_write(
    tmp_path, capsys, monkeypatch, url, advice
):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "--db", url, "info")
    assert (code, out) == (2, "")
    assert err == (
        f"error: the database URL {url!r} (from --db or FEEDBACK_DB_URL) is malformed: {advice}; "
        "for PostgreSQL postgresql://USER:PASSWORD@HOST:PORT/NAME\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_malformed_database_url_hides_only_its_password(capsys):
    code, out, err = run(capsys, "--db", "postgresql://bob:s3cret@localhost:notaport/feedback", "info")
    assert (code, out) == (2, "")
    assert err == (
        "error: the database URL 'postgresql://bob:***@localhost:notaport/feedback' (from --db or "
        f"FEEDBACK_DB_URL) is malformed: use {FORMS}\n"
    )


def _pg_url(**changes) -> str:
    return make_url(PG_URL).set(**changes).render_as_string(hide_password=False)


@pytest.mark.skipif(not PG_URL, reason=PG_SKIP)
@pytest.mark.parametrize("command", ["init", "info"])
def test_a_postgres_database_that_does_not_exist_is_one_line(capsys, command):
    url = _pg_url(database="feedback_no_such_database")
    code, out, err = run(capsys, "--db", url, command)
    assert code == 2
    masked = make_url(url).render_as_string(hide_password=True)
    assert err == f'error: database {masked}: database "feedback_no_such_database" does not exist\n'


@pytest.mark.skipif(not PG_URL, reason=PG_SKIP)
@pytest.mark.parametrize("command", ["init", "info"])
def test_a_wrong_postgres_password_is_one_line_without_the_password(capsys, command):
    url = _pg_url(password="wrong-pw-4711")
    engine = create_engine(url)
    try:
        engine.connect().close()
        pytest.skip("the server lets this user in without checking passwords (trust authentication)")
    except OperationalError:
        pass
    finally:
        engine.dispose()
    code, out, err = run(capsys, "--db", url, command)
    assert code == 2
    user = make_url(url).username
    assert err.endswith(f': password authentication failed for user "{user}"\n') and err.count("\n") == 1
    assert err.startswith(f"error: database {make_url(url).render_as_string(hide_password=True)}")
    assert "wrong-pw-4711" not in out + err


def test_a_full_disk_during_an_import_is_one_line(tmp_path):
    """The file size limit (RLIMIT_FSIZE) stands in for a full disk: writes past it fail."""
    db = tmp_path / "full.db"
    url = f"sqlite:///{db}"
    system = FeedbackSystem.from_url(url)
    system.init_feedback_tables()
    system.add_movies([{"movie_id": m, "title": f"Film {m}"} for m in range(1, 201)])
    system.close()
    shown = tmp_path / "impressions.csv"
    with shown.open("w") as f:
        f.write("recommendation_set_id,user_id,movie_id,rank,predicted_score\n")
        for s in range(1, 5001):
            f.writelines(f"{s},{s % 50 + 1},{(s * 7 + r) % 200 + 1},{r},0.5\n" for r in range(1, 11))
    limit = db.stat().st_size + 256 * 1024

    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = command_line(
        "--db",
        url,
        "import",
        str(shown),
        "--kind",
        "impressions",
        "--batch",
        "5000",
        capture_output=True,
        text=True,
        preexec_fn=small_disk,
    )
    assert done.returncode == 2, done.stderr
    line = one_error_line(done.stderr)
    assert line.startswith(f"error: database {db}: disk I/O error (SQLITE_IOERR"), line


def test_a_bug_in_the_programs_sql_keeps_its_traceback(tmp_path, capsys, monkeypatch):
    def broken(self):
        with self.engine.connect() as conn:
            conn.execute(text("SELECT * FROM no_such_table"))

    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert run(capsys, "--db", url, "init")[0] == 0
    monkeypatch.setattr(FeedbackSystem, "count_rows", broken)
    with pytest.raises(OperationalError, match="no such table"):
        main(["--db", url, "info"])


# ------------------------------------------------------------------ numbers out of range


@pytest.mark.parametrize("poll", ["-1", "0", "0.005", "nan", "inf", "-inf", "1e308", "3601", "soon"])
def test_a_worker_poll_out_of_range_is_a_usage_error(tmp_path, capsys, poll):
    err = usage_error(capsys, "--db", f"sqlite:///{tmp_path / 'x.db'}", "worker", f"--poll={poll}")
    assert "argument --poll: must be" in err
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize("poll", ["0.01", "0.05", "2", "3600"])
def test_a_worker_poll_in_range_is_accepted(poll):
    from feedback_core.cli import make_parser

    assert make_parser().parse_args(["worker", "--poll", poll]).poll == float(poll)


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "--seed", "-5"],
        ["demo", "--movies", "17"],
        ["demo", "--users", "4"],
        ["simulate", "--seed", "-1"],
        ["simulate", "--movies", "17"],
        ["simulate", "--users", "4"],
    ],
)
def test_a_world_too_small_or_a_negative_seed_is_a_usage_error(tmp_path, capsys, argv):
    err = usage_error(capsys, "--db", f"sqlite:///{tmp_path / 'x.db'}", *argv)
    assert f"argument {argv[1]}: must be" in err
    assert not (tmp_path / "x.db").exists()


def test_the_smallest_demo_builds_with_full_lists_and_a_model(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'small.db'}"
    code, out, err = run(capsys, "--db", url, "demo", "--movies", "18", "--users", "5", "--days", "1")
    assert code == 0, err
    # One person a day (a sixth of them, at least one) shown a full list; the initial model.
    assert "18 films, 5 people, 1 day, 10 impressions" in out and "1 model version;" in out


@pytest.mark.parametrize("seed", range(12))
def test_past_ratings_come_from_any_film_when_no_film_has_a_loved_genre(seed):
    from feedback_core.demo import make_world, seed_history

    # 18 films cannot cover 18 genres: some people love a genre no film has.
    rows = seed_history(make_world(seed, 18, 5))
    assert 0 < len(rows) <= 8 * 5


def test_a_failed_demo_build_removes_its_files(tmp_path, monkeypatch):
    from feedback_core import demo

    def failing(settings, *args, **kwargs):
        system = FeedbackSystem.from_settings(settings)
        system.add_movies([{"movie_id": 1, "title": "Half a demo"}])
        system.close()
        raise RuntimeError("the build failed half-way")

    monkeypatch.setattr(demo, "build_demo", failing)
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    with pytest.raises(RuntimeError, match="half-way"):
        main(["--db", url, "demo", "--users", "5", "--movies", "20", "--days", "1"])
    assert [p.name for p in tmp_path.iterdir() if "building" in p.name] == []
    system = FeedbackSystem.from_url(url)
    assert system.count_rows()["movies"] == 0  # the database is as it was
    system.close()


def test_serve_on_port_0_prints_the_port_it_listens_on(tmp_path, capsys, monkeypatch):
    from flask import Flask

    ran = {}
    monkeypatch.setattr(Flask, "run", lambda app, **kwargs: ran.update(kwargs))
    code, out, err = run(capsys, "--db", f"sqlite:///{tmp_path / 'x.db'}", "serve", "--port", "0")
    assert code == 0, err
    assert 0 < ran["port"] <= 65535
    assert out.startswith(f"feedback-core API on http://127.0.0.1:{ran['port']} (development server")


# ------------------------------------------------------------------ the output


def test_a_full_output_blames_the_output_not_the_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert command_line("--db", url, "init", capture_output=True).returncode == 0
    with open("/dev/full", "w") as full:
        done = command_line("--db", url, "info", stdout=full, stderr=subprocess.PIPE, text=True)
    assert done.returncode == 1
    assert done.stderr == "error: cannot write to standard output: No space left on device\n"


def test_a_closed_output_is_refused_before_anything_is_done(tmp_path):
    target = tmp_path / "x.db"
    done = command_line(
        "--db",
        f"sqlite:///{target}",
        "init",
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: os.close(1),
    )
    assert done.returncode == 2
    assert done.stderr == (
        "error: standard output is closed: nothing was done (send it to /dev/null to discard it)\n"
    )
    assert not target.exists()
