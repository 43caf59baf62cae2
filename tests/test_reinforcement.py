"""Reinforcement: negative examples, the retrain threshold, impact records, weight maths."""

from __future__ import annotations

import copy

import pytest
from conftest import row_counts
from helpers import add_model_version, count, finish_retrain_jobs, rows
from sqlalchemy import update

from feedback_core import NotFoundError, ValidationError
from feedback_core.schema import audit_log, dislike_feedback_impact, negative_examples, retrain_jobs

# ---------------------------------------------------------------- training examples


def test_apply_dislike_to_training_data_returns_the_stored_example(system):
    dislike_id = system.save_dislike(
        user_id=123, movie_id=456, movie_title="Movie Title", predicted_score=0.75, reason="wrong_genre"
    )
    before = row_counts(system)
    example = system.apply_dislike_to_training_data(
        user_id=123, movie_id=456, movie_title="Movie Title", predicted_score=0.75
    )
    assert row_counts(system) == before  # never a second example for one dislike
    assert example["dislike_id"] == dislike_id
    assert (example["user_id"], example["movie_id"], example["movie_title"]) == (123, 456, "Movie Title")
    assert (example["label"], example["target"]) == (0, 0.0)
    assert (example["error"], example["predicted_score"], example["weight"]) == (0.75, 0.75, 0.8)
    assert (example["reason"], example["status"]) == ("wrong_genre", "pending")


def test_apply_dislike_to_training_data_needs_a_dislike(system):
    with pytest.raises(NotFoundError) as err:
        system.apply_dislike_to_training_data(1, 2)
    assert "save_dislike" in err.value.message
    with pytest.raises(ValidationError) as err:
        system.apply_dislike_to_training_data(1, 2, predicted_score=1.5)
    assert err.value.field == "predicted_score"


def test_apply_dislike_to_training_data_skips_a_retracted_dislike(system):
    dislike_id = system.save_dislike(1, 10, "A")
    (example,) = system.get_negative_training_batch()
    system.mark_negative_examples_as_used([example["example_id"]])  # used: retracting keeps it
    system.retract_dislike(dislike_id, 1)
    with pytest.raises(NotFoundError) as err:
        system.apply_dislike_to_training_data(1, 10)
    assert "no unretracted dislike of movie 10 by user 1" in err.value.message
    again = system.save_dislike(1, 10, "A")  # disliked once more: that one counts
    assert system.apply_dislike_to_training_data(1, 10)["dislike_id"] == again


def test_get_negative_training_batch_is_oldest_first(system, clock):
    ids = []
    for movie in (30, 10, 20):
        ids.append(system.save_dislike(1, movie, f"M{movie}", predicted_score=movie / 100))
        clock.advance(minutes=1)
    batch = system.get_negative_training_batch()
    assert [e["dislike_id"] for e in batch] == ids
    assert [e["created_at"] for e in batch] == [
        "2026-11-01 12:00:00",
        "2026-11-01 12:01:00",
        "2026-11-01 12:02:00",
    ]
    assert [e["error"] for e in batch] == [0.3, 0.1, 0.2]
    assert [e["dislike_id"] for e in system.get_negative_training_batch(limit=2)] == ids[:2]
    with pytest.raises(ValidationError) as err:
        system.get_negative_training_batch(limit=0)
    assert err.value.field == "limit"


def test_mark_negative_examples_as_used(system, clock):
    for movie in (10, 11, 12):
        system.save_dislike(1, movie, f"M{movie}")
    add_model_version(system, 4)
    first, second, third = (e["example_id"] for e in system.get_negative_training_batch())
    assert system.get_untrained_negative_feedback_count() == 3
    clock.advance(hours=1)
    assert system.mark_negative_examples_as_used([first, second], model_version_id=4) == 2
    assert system.get_untrained_negative_feedback_count() == 1
    assert [e["example_id"] for e in system.get_negative_training_batch()] == [third]
    used = rows(system, negative_examples, negative_examples.c.status == "used")
    assert {(e.example_id, e.used_in_version_id, e.used_at) for e in used} == {
        (first, 4, clock()),
        (second, 4, clock()),
    }
    # used ones stay used and are not counted again; unknown ids change nothing
    assert system.mark_negative_examples_as_used([first, third, third + 100]) == 1
    assert system.get_untrained_negative_feedback_count() == 0


def test_mark_negative_examples_skips_examples_a_retrain_job_holds(system):
    for movie in (10, 11):
        system.save_dislike(1, movie, f"M{movie}")
    free, held = (e["example_id"] for e in system.get_negative_training_batch())
    job = system.request_retrain("analyst@test")
    system.claim_next_job(worker_id="w1")
    with system.engine.begin() as conn:  # what the running job did when it started
        conn.execute(
            update(negative_examples)
            .where(negative_examples.c.example_id == held)
            .values(status="claimed", job_id=job["job_id"])
        )
    assert system.mark_negative_examples_as_used([free, held]) == 1
    by_id = {e.example_id: e for e in rows(system, negative_examples)}
    assert (by_id[free].status, by_id[free].job_id) == ("used", None)
    assert (by_id[held].status, by_id[held].job_id, by_id[held].used_at) == ("claimed", job["job_id"], None)


def test_mark_negative_examples_rejects_bad_input_and_changes_nothing(system):
    system.save_dislike(1, 10, "A")
    (example,) = system.get_negative_training_batch()
    before = row_counts(system)
    cases = [
        (("1",), {}, "example_ids"),
        ((5,), {}, "example_ids"),
        (([example["example_id"], 0],), {}, "example_ids[1]"),
        (([example["example_id"]],), {"model_version_id": 99}, "model_version_id"),
    ]
    for args, kwargs, field in cases:
        with pytest.raises(ValidationError) as err:
            system.mark_negative_examples_as_used(*args, **kwargs)
        assert err.value.field == field
        assert row_counts(system) == before


# ---------------------------------------------------------------- the retrain threshold


def test_should_retrain_at_threshold_minus_one_and_at_threshold(make_system):
    system = make_system(FEEDBACK_ACCUMULATION_THRESHOLD=3)
    system.save_dislike(1, 10, "A")
    system.save_dislike(1, 11, "B")
    assert system.get_untrained_negative_feedback_count() == 2
    assert system.should_retrain_from_feedback() is False  # threshold - 1
    assert count(system, retrain_jobs) == 0
    system.save_dislike(1, 12, "C")  # reaches the threshold: the job is queued in the same transaction
    (job,) = rows(system, retrain_jobs)
    assert (job.status, job.trigger, job.requested_by) == ("queued", "threshold", "system")
    # a job is already waiting, so there is nothing more to decide
    assert system.should_retrain_from_feedback() is False
    finish_retrain_jobs(system)
    # at the threshold with no job under way (the examples were not consumed)
    assert system.should_retrain_from_feedback() is True
    assert count(system, retrain_jobs) == 1  # asking does not queue
    assert system.should_retrain_from_feedback(queue=True, actor="ops@example.com") is True
    assert count(system, retrain_jobs, retrain_jobs.c.status == "queued") == 1
    assert system.should_retrain_from_feedback(queue=True) is False
    assert count(system, retrain_jobs) == 2


def test_crossing_the_threshold_queues_exactly_one_job(make_system):
    system = make_system(FEEDBACK_ACCUMULATION_THRESHOLD=4)
    for movie in range(1, 16):
        system.save_dislike(1, movie, f"M{movie}")
    assert system.get_untrained_negative_feedback_count() == 15
    (job,) = rows(system, retrain_jobs)
    assert job.status == "queued" and job.active_slot == 1
    (audit,) = rows(system, audit_log, audit_log.c.action == "retrain.queued")
    assert audit.entity_id == str(job.job_id)


def test_examples_used_by_training_do_not_count_toward_the_threshold(make_system):
    system = make_system(FEEDBACK_ACCUMULATION_THRESHOLD=2)
    system.save_dislike(1, 10, "A")
    system.mark_negative_examples_as_used([e["example_id"] for e in system.get_negative_training_batch()])
    system.save_dislike(1, 11, "B")
    assert system.get_untrained_negative_feedback_count() == 1
    assert count(system, retrain_jobs) == 0


# ---------------------------------------------------------------- adjustment maths and impact records


def test_adjustment_maths_use_the_system_settings_and_write_nothing(make_system):
    system = make_system(GENRE_DEEMPHASIS_FACTOR=0.2, weight_min=0.5, weight_max=1.5)
    before = row_counts(system)
    out = system.calculate_feature_adjustment_from_dislike("irrelevant", genres="Drama")
    assert out["genre_adjustments"] == {"Drama": pytest.approx(-0.2 / 3, abs=1e-6)}
    assert out["reason"] == "irrelevant" and out["exclude_movie"] is False
    current = {"genre": {"Horror": 0.6, "Drama": 1.4}}
    snapshot = copy.deepcopy(current)
    weights = system.apply_feature_adjustments(
        current, {"genre_adjustments": {"Horror": -0.15, "Drama": 0.2, "War": -0.1}}
    )
    assert weights == {"genre": {"Horror": 0.5, "Drama": 1.5, "War": pytest.approx(0.9)}}
    assert current == snapshot
    assert row_counts(system) == before


def test_record_feedback_impact(system, clock):
    dislike_id = system.save_dislike(1, 10, "A", reason="wrong_genre", genres=["Horror"])
    add_model_version(system, 2, active=True)
    impact_id = system.record_feedback_impact(
        dislike_id,
        1,
        "genre",
        "Horror",
        -0.15,
        model_version_id=2,
        actor="ana",
        weight_before=1.0,
        weight_after=0.85,
    )
    (row,) = rows(system, dislike_feedback_impact)
    assert (row.impact_id, row.dislike_id, row.user_id, row.feature_type, row.feature_value) == (
        impact_id,
        dislike_id,
        1,
        "genre",
        "Horror",
    )
    assert (row.adjustment, row.weight_before, row.weight_after) == (-0.15, 1.0, 0.85)
    assert (row.model_version_id, row.actor, row.action, row.created_at) == (2, "ana", "applied", clock())
    # a manual record need not come from a dislike
    assert system.record_feedback_impact(None, 1, "cast", "Ann", 0.1) != impact_id


def test_record_feedback_impact_rejects_bad_input_and_changes_nothing(system):
    dislike_id = system.save_dislike(1, 10, "A")
    before = row_counts(system)
    cases = [
        ((dislike_id, 1, "mood", "dark", -0.1), {}, "feature_type"),
        ((dislike_id, 1, "genre", "", -0.1), {}, "feature_value"),
        ((dislike_id, 1, "genre", "Horror", float("nan")), {}, "adjustment"),
        ((dislike_id, 1, "genre", "Horror", 3), {}, "adjustment"),
        ((dislike_id, 1, "genre", "Horror", "-0.1"), {}, "adjustment"),
        ((dislike_id, 0, "genre", "Horror", -0.1), {}, "user_id"),
        ((dislike_id, 1, "genre", "Horror", -0.1), {"action": "undone"}, "action"),
        ((dislike_id, 1, "genre", "Horror", -0.1), {"weight_after": float("inf")}, "weight_after"),
        ((dislike_id, 1, "genre", "Horror", -0.1), {"weight_before": "high"}, "weight_before"),
        ((dislike_id, 1, "genre", "Horror", -0.1), {"actor": ""}, "actor"),
        ((dislike_id + 50, 1, "genre", "Horror", -0.1), {}, "dislike_id"),  # no such dislike
        ((dislike_id, 2, "genre", "Horror", -0.1), {}, "dislike_id"),  # not this user's
        ((dislike_id, 1, "genre", "Horror", -0.1), {"model_version_id": 77}, "model_version_id"),
    ]
    for args, kwargs, field in cases:
        with pytest.raises(ValidationError) as err:
            system.record_feedback_impact(*args, **kwargs)
        assert err.value.field == field, (args, kwargs)
        assert row_counts(system) == before, (args, kwargs)
