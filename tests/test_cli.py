"""The ``feedback-core`` command line: init, info, --db."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PG_SKIP, PG_URL
from sqlalchemy import text

from feedback_core import FeedbackSystem
from feedback_core.cli import main
from feedback_core.db import current_revision, head_revision, migrate

SCRIPT = Path(sys.executable).parent / "feedback-core"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_init_twice_is_harmless(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    code, out, _ = run(capsys, "--db", url, "init")
    assert code == 0
    assert f"schema revision {head_revision()}" in out
    system = FeedbackSystem.from_url(url)
    system.save_dislike(1, 10, "A")
    code, out, _ = run(capsys, "init", "--db", url)  # --db after the command works too
    assert code == 0 and f"schema revision {head_revision()}" in out
    assert system.count_rows()["user_dislikes"] == 1  # the second init kept the data
    system.close()


def test_db_option_overrides_the_environment(tmp_path, capsys, monkeypatch):
    from_env = tmp_path / "env.db"
    chosen = tmp_path / "chosen.db"
    monkeypatch.setenv("FEEDBACK_DB_URL", f"sqlite:///{from_env}")
    assert run(capsys, "--db", f"sqlite:///{chosen}", "init")[0] == 0
    assert chosen.exists() and not from_env.exists()
    assert run(capsys, "init")[0] == 0  # without --db the environment is used
    assert from_env.exists()


def test_info_shows_revision_and_row_counts(tmp_path, capsys):
    url = _bare_file(tmp_path, "info.db")
    code, out, _ = run(capsys, "--db", url, "info")
    assert code == 0 and "empty database: run feedback-core init" in out
    run(capsys, "--db", url, "init")
    system = FeedbackSystem.from_url(url)
    system.save_dislike(1, 10, "A")
    system.close()
    code, out, _ = run(capsys, "--db", url, "info", "--json")
    info = json.loads(out)
    assert info["database_url"] == url
    assert info["schema_revision"] == info["latest_revision"] == head_revision()
    assert info["row_counts"]["user_dislikes"] == 1 and info["row_counts"]["movies"] == 1
    code, out, _ = run(capsys, "--db", url, "info")
    assert code == 0 and "user_dislikes" in out and head_revision() in out


@pytest.mark.skipif(not PG_URL, reason=PG_SKIP)
def test_info_masks_the_password_of_a_postgres_url(capsys):
    password = "postgres"
    assert f":{password}@" in PG_URL
    for argv in (["--db", PG_URL, "info"], ["--db", PG_URL, "info", "--json"], ["--db", PG_URL, "init"]):
        code, out, err = run(capsys, *argv)
        assert code == 0, err
        assert f":{password}@" not in out + err
        assert ":***@" in out


def test_an_unreachable_database_never_leaks_its_password(capsys):
    url = "postgresql+psycopg://feedback:s3cret-pw@127.0.0.1:1/feedback?connect_timeout=2"
    code, out, err = run(capsys, "--db", url, "info")
    assert code == 2
    assert "s3cret-pw" not in out + err
    assert "unavailable" in err


def test_bad_configuration_is_a_clear_error(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("FEEDBACK_ACCUMULATION_THRESHOLD", "lots")
    code, _, err = run(capsys, "--db", f"sqlite:///{tmp_path / 'x.db'}", "init")
    assert code == 2
    assert "FEEDBACK_ACCUMULATION_THRESHOLD" in err and "'lots'" in err


def test_the_installed_console_script(tmp_path):
    """One real process: the entry point pip installed, as an operator would type it."""
    assert SCRIPT.exists(), "pip install -e . creates the feedback-core script"
    url = f"sqlite:///{tmp_path / 'script.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBACK_")}
    done = subprocess.run(
        [str(SCRIPT), "--db", url, "init"], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert f"schema revision {head_revision()}" in done.stdout
    system = FeedbackSystem.from_url(url)
    assert system.count_rows()["user_dislikes"] == 0  # the tables exist
    system.close()


@pytest.mark.parametrize("argv", [["worker", "--once"], ["retrain"]])
def test_loop_commands_on_a_database_without_the_schema_say_run_init(tmp_path, capsys, argv):
    url = _bare_file(tmp_path, "bare.db")
    code, out, err = run(capsys, "--db", url, *argv)
    assert code == 2
    assert err == "error: the database has no feedback schema: run feedback-core init\n"
    assert current_revision_of(url) is None  # nothing was created


@pytest.mark.parametrize("argv", [["worker", "--once"], ["retrain"]])
def test_loop_commands_on_an_old_schema_say_run_init(tmp_path, capsys, argv):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    system = FeedbackSystem.from_url(url)
    migrate(system.engine, "0006")
    system.close()
    code, out, err = run(capsys, "--db", url, *argv)
    assert code == 2
    assert f"schema revision 0006, not the latest {head_revision()}: run feedback-core init" in err
    assert current_revision_of(url) == "0006"


def test_retrain_on_an_empty_database_fails_in_one_clear_line(tmp_path, capsys, caplog):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    run(capsys, "--db", url, "init")
    code, out, err = run(capsys, "--db", url, "retrain")
    assert code == 1
    assert "retrain job 1 failed: ValueError: no ratings, dislikes or shown lists to train on yet" in err
    assert "Traceback" not in out + err
    (record,) = [r for r in caplog.records if "Retrain job 1 failed" in r.getMessage()]
    assert record.exc_info is None and "no ratings, dislikes or shown lists" in record.getMessage()


def test_retrain_prints_its_figures_to_four_decimals(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert run(capsys, "--db", url, "demo", "--users", "5", "--movies", "20", "--days", "1")[0] == 0
    code, out, _ = run(capsys, "--db", url, "retrain")
    assert code == 0
    system = FeedbackSystem.from_url(url)
    version = system.list_model_versions()[0]
    metrics = system.get_model_version(version["version_id"])["metrics"]
    system.close()
    assert out.startswith(
        f"version {version['version_id']} ({version['status']}): AUC {metrics['auc']:.4f}, "
        f"log loss {metrics['log_loss']:.4f}; "
    )
    assert str(metrics["auc"]) not in out


def test_retrain_with_nothing_new_adds_no_copy_of_the_newest_version(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert run(capsys, "--db", url, "demo", "--users", "5", "--movies", "20", "--days", "1")[0] == 0
    assert run(capsys, "--db", url, "retrain")[0] == 0
    system = FeedbackSystem.from_url(url)
    newest = system.list_model_versions()[0]["version_id"]
    code, out, _ = run(capsys, "--db", url, "retrain")
    assert code == 0
    assert out.endswith(f"added no version: nothing new since version {newest}, the same model\n")
    assert system.list_model_versions()[0]["version_id"] == newest
    system.close()


def test_retrain_without_a_cross_validated_auc_says_why(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    run(capsys, "--db", url, "init")
    system = FeedbackSystem.from_url(url)
    system.add_movies([{"movie_id": m, "title": f"Film {m}", "genres": ["Drama"]} for m in (1, 2)])
    system.save_dislike(user_id=1, movie_id=1, reason="wrong_genre")
    system.record_rating(user_id=1, movie_id=2, rating=5)
    system.close()
    code, out, _ = run(capsys, "--db", url, "retrain")
    assert code == 0
    assert out.startswith(
        "version 1 (active): AUC n/a (too few liked and disliked examples to score any by cross-validation), "
        "log loss n/a; first version"
    )


@pytest.mark.parametrize(
    ("metrics", "text"),
    [
        ({"auc": 0.5256846746400949}, "AUC 0.5257"),
        (
            {"auc": None, "held_out": 0},
            "AUC n/a (too few liked and disliked examples to score any by cross-validation)",
        ),
        (
            {"auc": None, "held_out": 1},
            "AUC n/a (cross-validation scored only liked or only disliked examples, 1 of them)",
        ),
        (
            {"auc": None, "held_out": 1200},
            "AUC n/a (cross-validation scored only liked or only disliked examples, 1,200 of them)",
        ),
        ({}, "AUC n/a"),
    ],
)
def test_the_auc_reads_to_four_decimals_or_says_why_there_is_none(metrics, text):
    from feedback_core.cli_loop import _auc_text

    assert _auc_text(metrics) == text


def test_demo_on_a_database_with_data_names_it_and_the_if_empty_option(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    run(capsys, "--db", url, "init")
    system = FeedbackSystem.from_url(url)
    system.add_movies([{"movie_id": 1, "title": "Already here"}])
    system.close()
    code, out, err = run(capsys, "--db", url, "demo", "--users", "5", "--movies", "20", "--days", "1")
    assert (code, out) == (2, "")
    assert err == (
        f"error: the database {url} is not empty (1 film): the demo is built only into an empty "
        "database (it would take the place of all of it); name a new one with --db, or add --if-empty "
        "to leave this one as it is\n"
    )


def test_an_api_key_makes_a_database_one_the_demo_leaves_alone(tmp_path, capsys):
    # `init`, `create-api-key`, then `make run` (demo --if-empty): the key must survive.
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    run(capsys, "--db", url, "init")
    assert run(capsys, "--db", url, "create-api-key", "--name", "prod", "--role", "admin")[0] == 0
    code, out, _ = run(
        capsys, "--db", url, "demo", "--if-empty", "--users", "5", "--movies", "20", "--days", "1"
    )
    assert code == 0 and out == f"database {url} already has data: demo not built\n"
    code, _, err = run(capsys, "--db", url, "demo", "--users", "5", "--movies", "20", "--days", "1")
    assert code == 2 and "is not empty (1 API key)" in err
    code, out, _ = run(capsys, "--db", url, "list-api-keys")
    assert code == 0 and "prod" in out


def test_a_demo_built_into_a_database_others_have_open_is_what_they_read(tmp_path, capsys):
    # A dashboard or an API has the (empty) database open while `demo` fills it: they must read
    # the demo at once, not a file deleted under them (the demo used to be moved into place).
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    run(capsys, "--db", url, "init")
    reader = FeedbackSystem.from_url(url)
    assert reader.count_rows()["movies"] == 0  # its connection is open, pooled
    assert run(capsys, "--db", url, "demo", "--users", "5", "--movies", "20", "--days", "1")[0] == 0
    assert reader.count_rows()["movies"] == 20
    reader.add_movies([{"movie_id": 999, "title": "Written by the open process"}])  # into the same file
    reader.close()
    again = FeedbackSystem.from_url(url)
    assert again.count_rows()["movies"] == 21
    again.close()


def test_an_unexpected_training_failure_is_logged_with_its_traceback(tmp_path, capsys, caplog, monkeypatch):
    from feedback_core import training

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(training, "load_training_data", broken)
    url = f"sqlite:///{tmp_path / 'broken.db'}"
    run(capsys, "--db", url, "init")
    code, _, err = run(capsys, "--db", url, "retrain")
    assert code == 1 and "retrain job 1 failed: RuntimeError: disk on fire" in err
    (record,) = [r for r in caplog.records if "Retrain job 1 failed" in r.getMessage()]
    assert record.exc_info is not None


def current_revision_of(url: str) -> str | None:
    system = FeedbackSystem.from_url(url)
    try:
        return current_revision(system.engine)
    finally:
        system.close()


@pytest.mark.parametrize("url", ["nonsense", "postgresql://bob:s3cret@127.0.0.1:notaport/db", "sqlite//x.db"])
@pytest.mark.parametrize("source", ["--db", "FEEDBACK_DB_URL"])
def test_a_malformed_database_url_is_one_clear_line(capsys, monkeypatch, url, source):
    if source == "--db":
        code, out, err = run(capsys, "--db", url, "info")
    else:
        monkeypatch.setenv("FEEDBACK_DB_URL", url)
        code, out, err = run(capsys, "info")
    assert code == 2
    assert "--db" in err and "FEEDBACK_DB_URL" in err
    assert "s3cret" not in out + err
    assert err.count("\n") == 1


def _bare_file(tmp_path, name: str) -> str:
    """Return the URL of an existing SQLite file without the schema."""
    path = tmp_path / name
    sqlite3.connect(path).execute("CREATE TABLE unrelated (x INTEGER)").connection.close()
    return f"sqlite:///{path}"


@pytest.mark.parametrize(
    "argv",
    [
        ["list-api-keys"],
        ["create-api-key", "--name", "n", "--role", "service"],
        ["revoke-api-key", "--name", "n"],
    ],
)
def test_api_key_commands_on_a_database_without_the_schema_say_run_init(tmp_path, capsys, argv):
    url = _bare_file(tmp_path, "bare.db")
    code, out, err = run(capsys, "--db", url, *argv)
    assert code == 2
    assert err == "error: the database has no feedback schema: run feedback-core init\n"
    assert current_revision_of(url) is None


def _newer_database(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'newer.db'}"
    system = FeedbackSystem.from_url(url)
    system.init_feedback_tables()
    with system.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    system.close()
    return url


@pytest.mark.parametrize(
    "argv",
    [
        ["init"],
        ["demo", "--if-empty"],
        ["import", "movies.csv", "--kind", "movies"],
        ["worker", "--once"],
        ["retrain"],
        ["list-api-keys"],
    ],
)
def test_a_database_newer_than_the_code_says_upgrade_feedback_core(tmp_path, capsys, monkeypatch, argv):
    url = _newer_database(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "movies.csv").write_text("movie_id,title\n1,Heat\n")
    code, out, err = run(capsys, "--db", url, *argv)
    assert code == 2
    assert err == (
        f"error: the database's schema 0099 is unknown to this feedback-core ({head_revision()}): "
        "upgrade feedback-core if a newer release wrote it; if another application's migrations did, give "
        "feedback-core a database of its own\n"
    )
    assert current_revision_of(url) == "0099"


@pytest.mark.parametrize(
    "argv", [["init"], ["demo", "--users", "5"], ["import", "movies.csv", "--kind", "movies"], ["info"]]
)
@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://bob:s3cret-pw@127.0.0.1:1/feedback?connect_timeout=2",
        "postgresql://bob:s3cret-pw@no-such-host.invalid/feedback?connect_timeout=2",
    ],
)
def test_an_unreachable_postgres_is_one_line_for_every_command(tmp_path, capsys, monkeypatch, argv, url):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "movies.csv").write_text("movie_id,title\n1,Heat\n")
    code, out, err = run(capsys, "--db", url, *argv)
    assert code == 2
    assert "unavailable" in err and err.count("\n") == 1
    assert "s3cret-pw" not in out + err


def test_serve_on_an_unreachable_postgres_is_one_line(capsys, monkeypatch):
    from flask import Flask

    monkeypatch.setattr(Flask, "run", lambda *a, **k: pytest.fail("the server must not start"))
    url = "postgresql+psycopg://bob:s3cret-pw@127.0.0.1:1/feedback?connect_timeout=2"
    code, out, err = run(capsys, "--db", url, "serve")
    assert code == 2 and "unavailable" in err and "s3cret-pw" not in out + err


@pytest.mark.parametrize(
    "argv",
    [
        ["info"],
        ["list-api-keys"],
        ["create-api-key", "--name", "n", "--role", "service"],
        ["revoke-api-key", "--name", "n"],
        ["worker", "--once"],
        ["retrain"],
    ],
)
def test_read_only_commands_create_no_database(tmp_path, capsys, argv):
    path = tmp_path / "missing" / "dir" / "x.db"
    code, out, err = run(capsys, "--db", f"sqlite:///{path}", *argv)
    assert code == 2
    assert err == f"error: no database at {path}: run feedback-core init\n"
    assert not (tmp_path / "missing").exists()


def test_simulate_refuses_a_database_with_data(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'real.db'}"
    system = FeedbackSystem.from_url(url)
    system.init_feedback_tables()
    system.save_dislike(1, 10, "A")
    before = system.count_rows()
    system.close()
    code, out, err = run(capsys, "--db", url, "simulate", "--rounds", "1", "--users", "5", "--movies", "20")
    assert code == 2
    assert "not empty" in err
    system = FeedbackSystem.from_url(url)
    assert system.count_rows() == before
    system.close()


def test_an_unreadable_import_file_is_one_line(tmp_path, capsys, monkeypatch):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    path = tmp_path / "movies.csv"
    path.write_text("movie_id,title\n1,Heat\n")
    path.chmod(0)
    if os.geteuid() == 0:  # root reads every file: refuse it the way the kernel would
        real_open = Path.open

        def refusing_open(self, *args, **kwargs):
            if self == path:
                raise PermissionError(13, "Permission denied", str(self))
            return real_open(self, *args, **kwargs)

        monkeypatch.setattr(Path, "open", refusing_open)
    code, out, err = run(capsys, "--db", url, "import", str(path), "--kind", "movies")
    assert code == 2
    assert err.splitlines()[-1] == f"error: cannot read {path}: Permission denied"
    assert "Traceback" not in err


@pytest.mark.parametrize("command", [["import", "--kind", "movies"], ["import-catalog"]])
def test_importing_a_missing_file_creates_and_migrates_nothing(tmp_path, capsys, command):
    target = tmp_path / "new" / "x.db"
    missing = tmp_path / "no-such.csv"
    code, out, err = run(capsys, "--db", f"sqlite:///{target}", command[0], str(missing), *command[1:])
    assert (code, out) == (2, "")
    assert err.splitlines() == [f"error: {missing} does not exist"]
    assert not target.exists() and not target.parent.exists()


@pytest.mark.parametrize("argv", [["init"], ["create-api-key", "--name", "n", "--role", "service"]])
def test_a_read_only_database_file_is_one_line(tmp_path, capsys, argv):
    path = tmp_path / "ro.db"
    system = FeedbackSystem.from_url(f"sqlite:///{path}")
    migrate(system.engine, "0006" if argv == ["init"] else "head")  # init has something to write
    system.close()
    # Opened read-only as a file without write permission is (root ignores permissions).
    code, out, err = run(capsys, "--db", f"sqlite:///file:{path}?mode=ro&uri=true", *argv)
    assert code == 2
    assert err == f"error: {path} is read-only: nothing was written\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--port", "99999"],
        ["serve", "--port", "-1"],
        ["demo", "--users", "0"],
        ["demo", "--movies", "0"],
        ["demo", "--days", "0"],
        ["demo", "--users", "-3"],
        ["simulate", "--rounds", "0"],
        ["simulate", "--users", "0"],
    ],
)
def test_out_of_range_numbers_are_usage_errors(tmp_path, capsys, argv):
    with pytest.raises(SystemExit) as exit_:
        main(["--db", f"sqlite:///{tmp_path / 'x.db'}", *argv])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {argv[1]}" in err and "Traceback" not in err
    assert not (tmp_path / "x.db").exists()


def test_a_closed_output_pipe_is_quiet(tmp_path):
    url = f"sqlite:///{tmp_path / 'pipe.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBACK_")}
    assert subprocess.run([str(SCRIPT), "--db", url, "init"], env=env, timeout=120).returncode == 0
    # The reader is gone before the command writes anything (as with `| head -0`).
    reader, writer = os.pipe()
    os.close(reader)
    try:
        done = subprocess.run(
            [str(SCRIPT), "--db", url, "info"],
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=120,
        )
    finally:
        os.close(writer)
    assert done.stderr == ""


def test_the_worker_logs_the_feedback_lines_without_being_asked_and_a_one_off_command_does_not(tmp_path):
    from loop_support import HORROR, dislike, trained_world

    url = f"sqlite:///{tmp_path / 'loop.db'}"
    system = FeedbackSystem.from_url(url)
    system.init_feedback_tables()
    trained_world(system)
    # Something new since the first version: a retrain on the very same data adds no version.
    dislike(system, 100, HORROR[0])
    job = system.request_retrain("ops@example.com")["job_id"]
    system.close()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    worker = subprocess.run(
        [str(SCRIPT), "--db", url, "worker", "--once"], capture_output=True, text=True, env=env, timeout=300
    )
    assert worker.returncode == 0, worker.stderr
    assert f"INFO [FEEDBACK] Retrain job {job} produced version" in worker.stderr
    assert "running the queued retrain jobs" in worker.stdout and "Ctrl-C" not in worker.stdout
    assert "alembic" not in worker.stderr  # the libraries' INFO lines stay out
    info = subprocess.run(
        [str(SCRIPT), "--db", url, "info"], capture_output=True, text=True, env=env, timeout=120
    )
    assert info.returncode == 0 and info.stderr == ""


def test_a_service_command_run_in_process_gives_the_logger_its_level_back(tmp_path, capsys):
    import logging

    url = f"sqlite:///{tmp_path / 'w.db'}"
    run(capsys, "--db", url, "init")
    system_log = logging.getLogger("feedback_core")
    before = system_log.level
    code, out, _ = run(capsys, "--db", url, "worker", "--once")
    assert code == 0 and "ran 0 job(s)" in out
    assert system_log.level == before


def test_a_database_error_raised_while_a_ctrl_c_unwound_counts_as_the_ctrl_c():
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from feedback_core.cli import interrupted

    # psycopg leaving its pipeline mid-executemany raises "cannot exit pipeline mode while busy"
    # while the Ctrl-C unwinds: the import said "error: database ..." and exited 2, not 130.
    try:
        try:
            try:
                raise KeyboardInterrupt
            finally:
                raise sqlite3.OperationalError("cannot exit pipeline mode while busy")
        except sqlite3.OperationalError as driver_error:
            raise OperationalError("INSERT", {}, driver_error) from driver_error
    except OperationalError as exc:
        assert interrupted(exc)
    assert not interrupted(OperationalError("INSERT", {}, sqlite3.OperationalError("disk I/O error")))
    assert interrupted(KeyboardInterrupt())
