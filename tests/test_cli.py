"""The ``feedback-core`` command line: init, info, --db."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PG_SKIP, PG_URL

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
    url = f"sqlite:///{tmp_path / 'info.db'}"
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
    url = f"sqlite:///{tmp_path / 'bare.db'}"
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
