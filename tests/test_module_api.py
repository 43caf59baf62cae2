"""The specification's module-level API, on a default system configured by FEEDBACK_DB_URL."""

from __future__ import annotations

import inspect

import pytest

import feedback_core

# The "Key Functions" of feedback_handler.py and feedback_reinforcement.py in the specification.
SPEC_FUNCTIONS = [
    "init_feedback_tables",
    "save_dislike",
    "get_user_dislikes",
    "calculate_dislike_weight",
    "get_dislike_pattern_analysis",
    "record_feedback_impact",
    "get_model_feedback_metrics",
    "apply_dislike_to_training_data",
    "calculate_feature_adjustment_from_dislike",
    "get_untrained_negative_feedback_count",
    "should_retrain_from_feedback",
    "mark_negative_examples_as_used",
    "get_negative_training_batch",
    "apply_feature_adjustments",
    "get_feedback_improvement_metrics",
]
SPEC_CONSTANTS = {
    "DISLIKE_WEIGHT_MULTIPLIER": 0.8,
    "FEEDBACK_ACCUMULATION_THRESHOLD": 20,
    "GENRE_DEEMPHASIS_FACTOR": 0.15,
    "CAST_DEEMPHASIS_FACTOR": 0.10,
    "FRANCHISE_DEEMPHASIS_FACTOR": 0.12,
}

# The specification's "Recording a Dislike", verbatim.
QUICK_START = """
from feedback_system import save_dislike, apply_dislike_to_training_data

# Record the dislike
dislike_id = save_dislike(
    user_id=123,
    movie_id=456,
    movie_title="Movie Title",
    predicted_score=0.75,
    reason="wrong_genre"
)

# Convert to training data for model improvement
training_data = apply_dislike_to_training_data(
    user_id=123,
    movie_id=456,
    movie_title="Movie Title",
    predicted_score=0.75
)
"""


@pytest.fixture
def default_system(make_system, db_url, monkeypatch):
    """Point FEEDBACK_DB_URL at this test's fresh database and drop any cached default system."""
    prepared = make_system()  # creates the schema on the fresh database
    monkeypatch.setenv("FEEDBACK_DB_URL", db_url)
    feedback_core.set_default_system(None)
    yield prepared
    feedback_core.set_default_system(None)


@pytest.mark.parametrize("name", SPEC_FUNCTIONS)
def test_every_specification_function_exists_at_module_level(name):
    fn = getattr(feedback_core, name)
    assert callable(fn)
    assert fn.__doc__, f"{name} needs a docstring"
    assert name in feedback_core.__all__


def test_specification_constants_exist_at_module_level():
    for name, value in SPEC_CONSTANTS.items():
        assert getattr(feedback_core, name) == value


def test_module_functions_keep_the_specification_keywords():
    params = inspect.signature(feedback_core.FeedbackSystem.save_dislike).parameters
    for keyword in (
        "user_id",
        "movie_id",
        "movie_title",
        "recommendation_set_id",
        "predicted_score",
        "reason",
    ):
        assert keyword in params
    # predicted_score: by default the score its list showed the film with (0 without a list)
    assert params["reason"].default == "not_interested" and params["predicted_score"].default is None
    assert "limit" in inspect.signature(feedback_core.FeedbackSystem.get_user_dislikes).parameters


def test_quick_start_runs_unchanged(default_system):
    namespace: dict = {}
    feedback_core.init_feedback_tables()
    exec(compile(QUICK_START, "quick_start", "exec"), namespace)
    dislike_id, training_data = namespace["dislike_id"], namespace["training_data"]
    assert isinstance(dislike_id, int)
    assert training_data["dislike_id"] == dislike_id
    assert (training_data["error"], training_data["weight"], training_data["label"]) == (0.75, 0.8, 0)
    # the module functions acted on the database FEEDBACK_DB_URL names
    assert default_system.count_rows()["user_dislikes"] == 1
    assert [d["dislike_id"] for d in default_system.get_user_dislikes(123)] == [dislike_id]
    assert feedback_core.get_default_system().settings.database_url == default_system.settings.database_url


def test_the_specifications_module_names_answer_with_feedback_cores(default_system):
    from feedback_system.feedback_api import register_feedback_routes
    from feedback_system.feedback_handler import get_dislike_pattern_analysis, save_dislike
    from feedback_system.feedback_reinforcement import FEEDBACK_ACCUMULATION_THRESHOLD

    import feedback_system

    assert register_feedback_routes is feedback_core.register_feedback_routes
    assert FEEDBACK_ACCUMULATION_THRESHOLD == feedback_core.FEEDBACK_ACCUMULATION_THRESHOLD == 20
    save_dislike(user_id=5, movie_id=6, movie_title="Six", reason="poor_quality")
    assert get_dislike_pattern_analysis(5)["total_dislikes"] == 1
    assert default_system.count_rows()["user_dislikes"] == 1
    for module in (feedback_system, feedback_system.feedback_reinforcement):
        # "Modify in feedback_reinforcement.py": assigning would change nothing the system reads.
        with pytest.raises(AttributeError, match="FEEDBACK_ACCUMULATION_THRESHOLD=5 before the first call"):
            module.FEEDBACK_ACCUMULATION_THRESHOLD = 5
        assert module.FEEDBACK_ACCUMULATION_THRESHOLD == 20
        with pytest.raises(AttributeError, match="feedback_system.* has no attribute 'no_such_name'"):
            module.no_such_name  # noqa: B018
    assert set(feedback_core.__all__) <= set(dir(feedback_system.feedback_handler))
    import importlib.util

    assert importlib.util.find_spec("feedback_system.feedback_reinforcement").name == (
        "feedback_system.feedback_reinforcement"
    )


def test_the_adjustment_calculation_follows_the_default_systems_settings(default_system, db_url):
    from feedback_core import FeedbackSystem

    assert feedback_core.calculate_feature_adjustment_from_dislike("wrong_genre", ["Horror"])[
        "genre_adjustments"
    ] == {"Horror": pytest.approx(-0.15)}
    given = feedback_core.Settings(database_url=db_url, GENRE_DEEMPHASIS_FACTOR=0.3)
    assert feedback_core.calculate_feature_adjustment_from_dislike("wrong_genre", ["Horror"], settings=given)[
        "genre_adjustments"
    ] == {"Horror": pytest.approx(-0.3)}
    feedback_core.set_default_system(FeedbackSystem.from_url(db_url, GENRE_DEEMPHASIS_FACTOR=0.5))
    proposed = feedback_core.calculate_feature_adjustment_from_dislike("wrong_genre", ["Horror"])
    assert proposed["genre_adjustments"] == {"Horror": pytest.approx(-0.5)}
    saved = feedback_core.get_default_system().record_dislike(
        user_id=9, movie_id=10, movie_title="Ten", genres=["Horror"], reason="wrong_genre"
    )
    assert saved["feature_adjustments"]["genre_adjustments"] == proposed["genre_adjustments"]


def test_module_functions_share_one_default_system(default_system):
    feedback_core.save_dislike(user_id=5, movie_id=6, movie_title="Six", reason="poor_quality", cast=["Ann"])
    assert feedback_core.get_dislike_pattern_analysis(5)["total_dislikes"] == 1
    assert feedback_core.get_untrained_negative_feedback_count() == 1
    assert feedback_core.should_retrain_from_feedback() is False
    assert feedback_core.calculate_dislike_weight(5, 6) == pytest.approx(1 / 3, abs=1e-3)
    assert feedback_core.get_model_feedback_metrics()["metrics"]["total_negative_examples"] == 1
    assert feedback_core.calculate_feature_adjustment_from_dislike("poor_quality", cast=["Ann"])[
        "cast_adjustments"
    ] == {"Ann": pytest.approx(-0.10)}
    assert feedback_core.get_default_system() is feedback_core.get_default_system()


def test_set_default_system_replaces_the_default(default_system):
    feedback_core.set_default_system(default_system)
    assert feedback_core.get_default_system() is default_system
    feedback_core.save_dislike(7, 8, "Eight")
    assert default_system.count_rows()["user_dislikes"] == 1


def test_the_constants_show_the_settings_in_force(monkeypatch, tmp_path):
    feedback_core.set_default_system(None)
    monkeypatch.setenv("FEEDBACK_DB_URL", f"sqlite:///{tmp_path / 'movies.db'}")
    monkeypatch.setenv("FEEDBACK_ACCUMULATION_THRESHOLD", "5")
    monkeypatch.setenv("GENRE_DEEMPHASIS_FACTOR", "0.2")
    try:
        assert feedback_core.FEEDBACK_ACCUMULATION_THRESHOLD == 5
        assert feedback_core.GENRE_DEEMPHASIS_FACTOR == 0.2
        assert feedback_core.DB_PATH == str(tmp_path / "movies.db")  # the specification's DB_PATH
        namespace: dict = {}
        exec("from feedback_core import FEEDBACK_ACCUMULATION_THRESHOLD, DB_PATH", namespace)
        assert namespace["FEEDBACK_ACCUMULATION_THRESHOLD"] == 5
        # Once a default system exists, its settings are the ones in force.
        feedback_core.set_default_system(
            feedback_core.FeedbackSystem.from_settings(
                feedback_core.Settings(database_url="sqlite://", FEEDBACK_ACCUMULATION_THRESHOLD=7)
            )
        )
        assert feedback_core.FEEDBACK_ACCUMULATION_THRESHOLD == 7
        assert feedback_core.DB_PATH in ("", None)  # an in-memory database has no file
        with pytest.raises(AttributeError):
            feedback_core.NO_SUCH_CONSTANT  # noqa: B018
    finally:
        feedback_core.set_default_system(None)


@pytest.mark.parametrize(
    ("name", "variable", "value"),
    [
        ("FEEDBACK_ACCUMULATION_THRESHOLD", "FEEDBACK_ACCUMULATION_THRESHOLD", 1),
        ("DISLIKE_WEIGHT_MULTIPLIER", "FEEDBACK_DISLIKE_WEIGHT_MULTIPLIER", 0.5),
        ("GENRE_DEEMPHASIS_FACTOR", "FEEDBACK_GENRE_DEEMPHASIS_FACTOR", 0.3),
        ("CAST_DEEMPHASIS_FACTOR", "FEEDBACK_CAST_DEEMPHASIS_FACTOR", 0.2),
        ("FRANCHISE_DEEMPHASIS_FACTOR", "FEEDBACK_FRANCHISE_DEEMPHASIS_FACTOR", 0.2),
    ],
)
def test_assigning_a_constant_is_refused_saying_how_to_set_it(name, variable, value):
    feedback_core.set_default_system(None)
    before = getattr(feedback_core, name)
    with pytest.raises(AttributeError) as refused:
        setattr(feedback_core, name, value)
    assert str(refused.value) == (
        f"feedback_core.{name} cannot be assigned: it shows the setting in force, which assigning would not "
        f"change. Set the environment variable {variable}={value} before the first call, or give the system "
        f"the value: set_default_system(FeedbackSystem.from_url(URL, {name}={value!r}))"
    )
    assert getattr(feedback_core, name) == before == SPEC_CONSTANTS[name]
    with pytest.raises(AttributeError, match="cannot be assigned"):
        delattr(feedback_core, name)
    # What the message advises works.
    try:
        feedback_core.set_default_system(feedback_core.FeedbackSystem.from_url("sqlite://", **{name: value}))
        assert getattr(feedback_core, name) == value
    finally:
        feedback_core.set_default_system(None)


def test_assigning_db_path_is_refused_naming_feedback_db_url():
    with pytest.raises(AttributeError, match="^feedback_core.DB_PATH cannot be assigned: .*FEEDBACK_DB_URL"):
        feedback_core.DB_PATH = "/tmp/other.db"
    assert "DB_PATH" not in vars(feedback_core)
    feedback_core.anything_else = 1  # the package's other attributes are as assignable as any module's
    del feedback_core.anything_else


def test_a_host_app_without_logging_gets_the_feedback_lines_in_its_log(tmp_path):
    import subprocess
    import sys

    host = (
        "from flask import Flask\n"
        "from feedback_core import init_feedback_tables, register_feedback_routes, save_dislike\n"
        "app = Flask('host')\n"
        "init_feedback_tables()\n"
        "register_feedback_routes(app)\n"
        "save_dislike(user_id=1, movie_id=2, movie_title='T', predicted_score=0.5, reason='wrong_genre',"
        " genres=['Drama'])\n"
    )
    env = {"PATH": "/usr/bin:/bin", "FEEDBACK_DB_URL": f"sqlite:///{tmp_path / 'app.db'}"}
    done = subprocess.run([sys.executable, "-c", host], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # What the specification's monitoring greps: "[FEEDBACK]" and "Feature adjustments".
    (line,) = [line for line in done.stderr.splitlines() if "[FEEDBACK] Dislike 1 recorded" in line]
    assert "Feature adjustments proposed: {'genre:Drama': -0.15}" in line, line


def test_every_log_line_carries_the_feedback_prefix():
    import re
    from pathlib import Path

    source = Path(feedback_core.__file__).parent
    calls = re.compile(r"\blog\.(?:debug|info|warning|error|exception|critical)\(\s*f?\"([^\"]*)")
    unprefixed = [
        f"{path.name}: {message[:50]}"
        for path in sorted(source.rglob("*.py"))
        for message in calls.findall(path.read_text(encoding="utf-8"))
        if not message.startswith("[FEEDBACK]")
    ]
    assert unprefixed == []
