"""The approval inbox: approve (optionally edited), reject, revert; effective weights; audit."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from conftest import row_counts
from helpers import add_model_version, count, rows

from feedback_core import ConflictError, NotFoundError, ValidationError
from feedback_core.schema import audit_log, dislike_feedback_impact, feature_adjustments


def horror_proposal(system, user_id: int = 1, movie_id: int = 10) -> dict:
    """Dislike a Horror film for its genre and return the single proposal it makes."""
    system.save_dislike(user_id, movie_id, f"M{movie_id}", reason="wrong_genre", genres=["Horror"])
    (proposal,) = system.list_adjustments(user_id=user_id, feature="Horror")
    return proposal


def audits(system, action: str, adjustment_id: int) -> list:
    return rows(system, audit_log, audit_log.c.action == action, audit_log.c.entity_id == str(adjustment_id))


def test_proposals_wait_in_the_inbox_newest_first(system, clock):
    system.save_dislike(1, 10, "A", reason="wrong_genre", genres=["Horror"])
    clock.advance(minutes=1)
    system.save_dislike(2, 11, "B", reason="poor_quality", cast=["Ann"], franchise="Saga")
    inbox = system.list_adjustments()
    assert [(a["user_id"], a["feature_type"], a["feature_value"]) for a in inbox][:1] == [
        (2, "franchise", "Saga")
    ]
    assert {(a["feature_type"], a["feature_value"], round(a["proposed_magnitude"], 6)) for a in inbox} == {
        ("genre", "Horror", -0.15),
        ("cast", "Ann", -0.10),
        ("franchise", "Saga", -0.12),
    }
    assert all(a["status"] == "proposed" and a["decided_by"] is None for a in inbox)
    assert [a["feature_value"] for a in system.list_adjustments(user_id=1)] == ["Horror"]
    assert [a["feature_value"] for a in system.list_adjustments(feature="cast")] == ["Ann"]
    assert [a["user_id"] for a in system.list_adjustments(reason="wrong_genre")] == [1]
    assert system.list_adjustments(status="applied") == []
    for bad in ({"status": "done"}, {"reason": "meh"}, {"limit": 0}):
        with pytest.raises(ValidationError) as err:
            system.list_adjustments(**bad)
        assert err.value.field == next(iter(bad))


def test_the_inbox_lists_the_proposals_waiting_longest_first_when_asked(system, clock):
    from feedback_core import lookups

    for user in (1, 2, 3):
        system.save_dislike(user, 10 + user, f"M{user}", reason="wrong_genre", genres=[f"G{user}"])
        clock.advance(minutes=1)
    system.save_dislike(4, 20, "M20", reason="wrong_genre", genres=["G4"], feedback_text="strong")
    system.save_dislike(4, 21, "M21", reason="wrong_genre", genres=["G4"])  # G4 twice: evidence 2
    for filters in ({}, {"min_evidence": 1}, {"user_id": 4}):
        newest = lookups.list_adjustment_inbox(system, **filters)
        oldest = lookups.list_adjustment_inbox(system, oldest_first=True, **filters)
        assert list(oldest["adjustment_id"]) == sorted(newest["adjustment_id"]), filters
        assert list(newest["adjustment_id"]) == sorted(newest["adjustment_id"], reverse=True)
    # The limit keeps the oldest, not the newest.
    assert list(lookups.list_adjustment_inbox(system, oldest_first=True, limit=2)["user_id"]) == [1, 2]
    assert list(lookups.list_adjustment_inbox(system, limit=2)["user_id"]) == [4, 4]


def test_approve_applies_the_adjustment_now(system, clock):
    proposal = horror_proposal(system)
    assert system.get_effective_weights(1) == {}  # nothing changes before approval
    add_model_version(system, 5, active=True)
    clock.advance(hours=1)
    result = system.approve_adjustment(proposal["adjustment_id"], actor="ana")
    assert result["status"] == "applied"
    assert result["weight_before"] == 1.0 and result["weight_after"] == pytest.approx(0.85)
    assert system.get_effective_weights(1) == {"genre": {"Horror": pytest.approx(0.85)}}
    assert system.get_effective_weights(2) == {}
    stored = system.get_adjustment(proposal["adjustment_id"])
    assert (stored["status"], stored["decided_by"], stored["decided_at"]) == (
        "applied",
        "ana",
        "2026-11-01 13:00:00",
    )
    (impact,) = rows(system, dislike_feedback_impact)
    assert (impact.adjustment_id, impact.dislike_id, impact.user_id) == (
        proposal["adjustment_id"],
        proposal["dislike_id"],
        1,
    )
    assert (impact.adjustment, impact.weight_after, impact.model_version_id, impact.actor) == (
        pytest.approx(-0.15),
        pytest.approx(0.85),
        5,
        "ana",
    )
    (audit,) = audits(system, "adjustment.approved", proposal["adjustment_id"])
    assert audit.actor == "ana" and audit.at == clock()
    assert audit.details["status_before"] == "proposed" and audit.details["status_after"] == "applied"


def test_approve_with_an_edited_magnitude(system):
    proposal = horror_proposal(system)
    system.approve_adjustment(proposal["adjustment_id"], actor="ana", magnitude=-0.05)
    stored = system.get_adjustment(proposal["adjustment_id"])
    assert (stored["proposed_magnitude"], stored["magnitude"]) == (pytest.approx(-0.15), -0.05)
    assert system.get_effective_weights(1) == {"genre": {"Horror": pytest.approx(0.95)}}


def test_deciding_twice_is_a_conflict_with_one_audit_record(system):
    proposal = horror_proposal(system)
    adjustment_id = proposal["adjustment_id"]
    system.approve_adjustment(adjustment_id, actor="ana")
    before = row_counts(system)
    for decide in (
        lambda: system.approve_adjustment(adjustment_id, actor="bo"),
        lambda: system.reject_adjustment(adjustment_id, actor="bo", note="too strong"),
    ):
        with pytest.raises(ConflictError) as err:
            decide()
        assert err.value.status == 409
        assert "already applied by ana" in err.value.message
    assert row_counts(system) == before
    assert len(audits(system, "adjustment.approved", adjustment_id)) == 1
    assert audits(system, "adjustment.rejected", adjustment_id) == []
    assert system.get_effective_weights(1) == {"genre": {"Horror": pytest.approx(0.85)}}


def test_reject_records_who_and_why_and_changes_no_weight(system, clock):
    proposal = horror_proposal(system)
    adjustment_id = proposal["adjustment_id"]
    result = system.reject_adjustment(adjustment_id, actor="bo", note="one dislike is not a pattern")
    assert (result["status"], result["decided_by"], result["note"]) == (
        "rejected",
        "bo",
        "one dislike is not a pattern",
    )
    assert system.get_effective_weights(1) == {}
    assert count(system, dislike_feedback_impact) == 0
    (audit,) = audits(system, "adjustment.rejected", adjustment_id)
    assert audit.details["note"] == "one dislike is not a pattern"
    with pytest.raises(ConflictError):
        system.approve_adjustment(adjustment_id, actor="ana")
    with pytest.raises(ConflictError):
        system.reject_adjustment(adjustment_id, actor="bo")
    assert len(rows(system, audit_log, audit_log.c.entity_id == str(adjustment_id))) == 1


def test_revert_takes_the_adjustment_back_out(system, clock):
    proposal = horror_proposal(system)
    adjustment_id = proposal["adjustment_id"]
    with pytest.raises(ConflictError):
        system.revert_adjustment(adjustment_id, actor="ana")  # not applied yet
    system.approve_adjustment(adjustment_id, actor="ana")
    clock.advance(days=1)
    result = system.revert_adjustment(adjustment_id, actor="cy")
    assert result["status"] == "reverted"
    assert system.get_effective_weights(1) == {}
    impacts = rows(system, dislike_feedback_impact, order_by=dislike_feedback_impact.c.impact_id)
    assert [(i.action, round(i.adjustment, 6), i.actor) for i in impacts] == [
        ("applied", -0.15, "ana"),
        ("reverted", 0.15, "cy"),
    ]
    (audit,) = audits(system, "adjustment.reverted", adjustment_id)
    assert audit.actor == "cy"
    before = row_counts(system)
    with pytest.raises(ConflictError):
        system.revert_adjustment(adjustment_id, actor="cy")
    assert row_counts(system) == before


def test_effective_weight_is_clamped_at_the_floor(system, clock):
    for movie in range(10, 17):  # seven -0.15 adjustments: 1 - 1.05 would be negative
        system.save_dislike(1, movie, f"M{movie}", reason="wrong_genre", genres=["Horror"])
    result = system.approve_adjustments([a["adjustment_id"] for a in system.list_adjustments()], actor="ana")
    assert len(result["decided"]) == 7 and result["skipped"] == []
    assert system.get_effective_weights(1) == {"genre": {"Horror": 0.1}}


def test_bulk_decisions_skip_stale_ids(system):
    first = horror_proposal(system, movie_id=10)
    second = horror_proposal(system, user_id=2, movie_id=11)
    system.reject_adjustment(first["adjustment_id"], actor="bo")
    result = system.approve_adjustments([first["adjustment_id"], second["adjustment_id"], 9999], actor="ana")
    assert result["decided"] == [second["adjustment_id"]]
    assert [s["adjustment_id"] for s in result["skipped"]] == [first["adjustment_id"], 9999]
    with pytest.raises(ValidationError):
        system.reject_adjustments("12", actor="bo")


def test_bad_decisions_change_nothing(system):
    proposal = horror_proposal(system)
    adjustment_id = proposal["adjustment_id"]
    before = row_counts(system)
    cases = [
        (lambda: system.approve_adjustment(adjustment_id, actor=""), ValidationError, "actor"),
        (
            lambda: system.approve_adjustment(adjustment_id, actor="ana", magnitude=1.5),
            ValidationError,
            "magnitude",
        ),
        # A sign typo would turn the dislike's de-emphasis into a boost of what was disliked.
        (
            lambda: system.approve_adjustment(adjustment_id, actor="ana", magnitude=0.2),
            ValidationError,
            "magnitude",
        ),
        (
            lambda: system.approve_adjustment(adjustment_id, actor="ana", magnitude=float("nan")),
            ValidationError,
            "magnitude",
        ),
        (
            lambda: system.approve_adjustment(adjustment_id, actor="ana", magnitude="-0.1"),
            ValidationError,
            "magnitude",
        ),
        (lambda: system.approve_adjustment(0, actor="ana"), ValidationError, "adjustment_id"),
        (lambda: system.approve_adjustment(adjustment_id + 99, actor="ana"), NotFoundError, "adjustment_id"),
        (lambda: system.reject_adjustment(adjustment_id + 99, actor="ana"), NotFoundError, "adjustment_id"),
        (
            lambda: system.reject_adjustment(adjustment_id, actor="ana", note="x" * 2001),
            ValidationError,
            "note",
        ),
    ]
    for decide, error, field in cases:
        with pytest.raises(error) as err:
            decide()
        assert err.value.field == field
        assert row_counts(system) == before
    assert system.get_adjustment(adjustment_id)["status"] == "proposed"


def test_proposals_of_a_retracted_dislike_cannot_be_approved(system):
    proposal = horror_proposal(system)
    system.retract_dislike(proposal["dislike_id"], 1)
    with pytest.raises(ConflictError):
        system.approve_adjustment(proposal["adjustment_id"], actor="ana")
    assert system.get_effective_weights(1) == {}


def test_retracting_a_dislike_reverts_what_was_applied_on_its_evidence(system, clock):
    proposal = horror_proposal(system)
    system.approve_adjustment(proposal["adjustment_id"], actor="ana")
    assert system.get_effective_weights(1) == {"genre": {"Horror": pytest.approx(0.85)}}
    clock.advance(minutes=3)
    outcome = system.retract_dislike(proposal["dislike_id"], 1)
    assert outcome["adjustments_reverted"] == 1
    assert system.get_effective_weights(1) == {}
    reverted = system.get_adjustment(proposal["adjustment_id"])
    assert (reverted["status"], reverted["decided_by"]) == ("reverted", "ana")
    assert reverted["reverted_at"] is not None and reverted["applied_at"] is not None
    impacts = rows(system, dislike_feedback_impact, order_by=dislike_feedback_impact.c.impact_id)
    assert [(i.action, round(i.adjustment, 6), i.actor) for i in impacts] == [
        ("applied", -0.15, "ana"),
        ("reverted", 0.15, "user:1"),
    ]
    (audit,) = audits(system, "adjustment.reverted", proposal["adjustment_id"])
    assert audit.details["why"] == "dislike retracted"
    # Disliked again and approved again: one live dislike, one adjustment's worth.
    again = horror_proposal(system, movie_id=11)
    system.approve_adjustment(again["adjustment_id"], actor="ana")
    assert system.get_effective_weights(1) == {"genre": {"Horror": pytest.approx(0.85)}}
    # A second revert of the retracted one says when it was reverted, not who approved it.
    with pytest.raises(ConflictError) as err:
        system.revert_adjustment(proposal["adjustment_id"], actor="cy")
    assert "already reverted at" in err.value.message and "by ana" not in err.value.message


def test_retracting_an_auto_approved_dislike_leaves_no_weight_behind(make_system):
    system = make_system(auto_approve=True)
    dislike_id = system.save_dislike(1, 10, "A", reason="poor_quality", cast=["Ann"], franchise="Saga")
    assert system.get_effective_weights(1) != {}
    assert system.retract_dislike(dislike_id, 1)["adjustments_reverted"] == 2
    assert system.get_effective_weights(1) == {}


def test_a_bad_id_in_a_bulk_decision_changes_nothing(system):
    first = horror_proposal(system, movie_id=10)
    second = horror_proposal(system, user_id=2, movie_id=11)
    before = row_counts(system)
    with pytest.raises(ValidationError) as err:
        system.approve_adjustments([first["adjustment_id"], "x", second["adjustment_id"]], actor="ana")
    assert err.value.field == "adjustment_ids[1]"
    assert row_counts(system) == before
    assert {system.get_adjustment(a["adjustment_id"])["status"] for a in (first, second)} == {"proposed"}


def test_a_bulk_approval_applies_the_edited_magnitudes_it_is_given(system):
    first = horror_proposal(system, movie_id=10)
    second = horror_proposal(system, user_id=2, movie_id=11)
    ids = [first["adjustment_id"], second["adjustment_id"]]
    before = row_counts(system)
    for magnitudes, field in (({ids[0]: 0.4}, f"magnitudes[{ids[0]}]"), ({9999: -0.2}, "magnitudes")):
        with pytest.raises(ValidationError) as err:  # checked before any is decided
            system.approve_adjustments(ids, actor="ana", magnitudes=magnitudes)
        assert err.value.field == field
        assert row_counts(system) == before
    # Told plainly, naming what was wrong (a string of ids raised a TypeError).
    for bad_ids, magnitudes, field in (
        ("12", {ids[0]: -0.2}, "adjustment_ids"),
        (ids, [(ids[0], -0.2)], "magnitudes"),
        (ids, {"x": -0.2}, "magnitudes"),
        (ids, {ids[0]: 0.5}, f"magnitudes[{ids[0]}]"),
    ):
        with pytest.raises(ValidationError) as err:
            system.approve_adjustments(bad_ids, actor="ana", magnitudes=magnitudes)
        assert err.value.field == field
    assert row_counts(system) == before
    # An id as text names the same adjustment, as the ids themselves may be given.
    result = system.approve_adjustments(ids, actor="ana", magnitudes={str(ids[0]): -0.4})
    assert result["decided"] == ids
    assert system.get_adjustment(ids[0])["magnitude"] == -0.4
    assert system.get_adjustment(ids[1])["magnitude"] == second["proposed_magnitude"]


def test_concurrent_approvals_of_one_feature_record_the_weights_they_really_moved(system):
    import threading

    for movie in range(10, 16):
        system.save_dislike(1, movie, f"M{movie}", reason="wrong_genre", genres=["Horror"])
    ids = [a["adjustment_id"] for a in system.list_adjustments(user_id=1)]
    start = threading.Barrier(len(ids))
    errors = []

    def approve(adjustment_id):
        start.wait()
        try:
            system.approve_adjustment(adjustment_id, actor="ana")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=approve, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    impacts = rows(system, dislike_feedback_impact, order_by=dislike_feedback_impact.c.impact_id)
    steps = [(round(i.weight_before, 6), round(i.weight_after, 6)) for i in impacts]
    expected = [(round(1 - 0.15 * k, 6), round(1 - 0.15 * (k + 1), 6)) for k in range(len(ids))]
    assert steps == expected  # each from where the previous one left the weight
    assert system.get_effective_weights(1) == {"genre": {"Horror": pytest.approx(0.1)}}


def test_an_effect_counts_each_dislike_with_the_impressions_it_is_a_share_of(make_system, clock):
    from feedback_core.lookups import get_adjustment_effects

    system = make_system(min_impressions_for_rate=1)
    system.add_movies([{"movie_id": m, "title": f"M{m}", "genres": ["Horror"]} for m in range(1, 25)])
    before = system.record_recommendation_set(1, list(range(1, 11)))
    system.save_dislike(1, 1, recommendation_set_id=before, reason="wrong_genre")
    (proposal,) = system.list_adjustments(user_id=1)
    clock.advance(hours=1)
    system.approve_adjustment(proposal["adjustment_id"], actor="ana")
    clock.advance(minutes=30)
    for movie in range(2, 7):  # disliked after the approval, shown before it
        system.save_dislike(1, movie, recommendation_set_id=before, reason="other")
    clock.advance(minutes=30)
    system.record_recommendation_set(1, [21, 22, 23])
    (effect,) = get_adjustment_effects(system, 1).to_dict("records")
    assert (effect["impressions_before"], effect["dislikes_before"]) == (10, 6)
    assert (effect["impressions_after"], effect["dislikes_after"]) == (3, 0)
    assert effect["rate_before"] == pytest.approx(0.6) and effect["rate_after"] == 0


def test_an_effect_shows_how_much_of_the_users_lists_carried_the_feature(make_system, clock):
    from feedback_core.lookups import get_adjustment_effects

    system = make_system()
    system.add_movies(
        [
            {"movie_id": m, "title": f"M{m}", "genres": ["Horror" if m <= 10 else "Comedy"]}
            for m in range(1, 21)
        ]
    )
    before = system.record_recommendation_set(1, [1, 2, 3, 4, 11, 12, 13, 14])  # half Horror
    system.save_dislike(1, 1, recommendation_set_id=before, reason="wrong_genre")
    (proposal,) = system.list_adjustments(user_id=1)
    clock.advance(hours=1)
    system.approve_adjustment(proposal["adjustment_id"], actor="ana")
    clock.advance(hours=1)
    system.record_recommendation_set(1, [5, 15, 16, 17])  # a quarter Horror
    (effect,) = get_adjustment_effects(system, 1).to_dict("records")
    # Too few impressions for a rate on either side, but the exposure says what changed.
    assert (effect["exposure_before"], effect["exposure_after"]) == (0.5, 0.25)


def test_auto_approve_applies_proposals_at_once(make_system):
    system = make_system(auto_approve=True)
    system.save_dislike(1, 10, "A", reason="not_interested", genres=["Horror"], franchise="Saga")
    stored = rows(system, feature_adjustments)
    assert {(a.status, a.decided_by) for a in stored} == {("applied", "auto-approve")}
    assert system.get_effective_weights(1) == {
        "franchise": {"Saga": pytest.approx(0.94)},
        "genre": {"Horror": pytest.approx(0.925)},
    }
    assert count(system, audit_log, audit_log.c.action == "adjustment.approved") == 2


def test_a_feature_is_found_in_any_case_of_any_letter_on_both_backends(system):
    from feedback_core import lookups

    system.save_dislike(1, 10, "M10", reason="wrong_genre", genres=["Émile"])
    system.save_dislike(2, 11, "M11", reason="wrong_genre", genres=["Horror"])
    # SQLite's own lower() folds A-Z only: "ÉMILE" found Émile on PostgreSQL, not on SQLite.
    for typed in ("Émile", "émile", "ÉMILE", "  émile "):
        assert [a["feature_value"] for a in system.list_adjustments(feature=typed)] == ["Émile"], typed
        assert system.count_adjustments(feature=typed) == 1
        assert list(lookups.list_adjustment_inbox(system, feature=typed)["feature_value"]) == ["Émile"]
        assert lookups.count_adjustment_inbox(system, feature=typed) == 1
    if system.engine.dialect.name == "sqlite":  # the lower() SQLite is given keeps its other answers
        from sqlalchemy import text

        with system.engine.connect() as conn:
            assert tuple(conn.execute(text("SELECT lower(5), lower(NULL), lower('ÉA')")).one()) == (
                "5",
                None,
                "éa",
            )


def test_the_inbox_says_where_the_weight_stands_and_how_many_of_the_feature_wait(make_system):
    """One proposal per dislike: three dislikes of Horror films wait as three proposals, each
    applying its own step. Every row says the person's weight for it now and how many wait."""
    from feedback_core import lookups

    system = make_system(weight_min=0.5)
    for movie in (10, 11, 12):
        system.save_dislike(1, movie, f"M{movie}", reason="wrong_genre", genres=["Horror"])
    system.save_dislike(2, 13, "M13", reason="wrong_genre", genres=["Horror"])

    def inbox(status: str = "proposed") -> dict:
        frame = lookups.list_adjustment_inbox(system, status=status)
        return {
            int(r.adjustment_id): (int(r.user_id), r.weight_now, r.waiting_for_feature)
            for r in frame.itertuples()
        }

    waiting = inbox()
    assert sorted(waiting.values()) == [(1, 1.0, 3)] * 3 + [(2, 1.0, 1)]
    first = min(i for i, (user, _, _) in waiting.items() if user == 1)
    system.approve_adjustment(first, actor="ana")
    assert sorted(inbox().values()) == [(1, pytest.approx(0.85), 2)] * 2 + [(2, 1.0, 1)]
    assert inbox("applied") == {first: (1, pytest.approx(0.85), None)}  # counted in the inbox only
    # The weight as the model reads it: held at its lower limit however far the sum goes.
    second = min(i for i in inbox() if inbox()[i][0] == 1)
    system.approve_adjustment(second, actor="ana", magnitude=-0.9)
    assert inbox("applied")[second] == (1, pytest.approx(0.5), None)
    # How many an approver rejected for the same person and feature; a proposal withdrawn
    # with its retracted dislike is no rejection.
    system.reject_adjustment(min(i for i in inbox() if inbox()[i][0] == 2), actor="ana")
    system.save_dislike(2, 14, "M14", reason="wrong_genre", genres=["Horror"])
    retracted = system.save_dislike(2, 15, "M15", reason="wrong_genre", genres=["Horror"])
    system.retract_dislike(retracted, 2)
    frame = lookups.list_adjustment_inbox(system, status="proposed", user_id=2)
    assert list(frame["waiting_for_feature"]) == [1]
    (waiting,) = [int(i) for i in frame["adjustment_id"]]
    assert lookups.count_rejected(system, [waiting, first]) == {waiting: 1, first: 0}
    assert lookups.count_rejected(system, []) == {}


def recent_counts(**counts: int) -> dict:
    """A decision summary's ``recent`` figures: those not named are 0."""
    return (
        dict.fromkeys(("proposed", "approved", "auto_approved", "rejected", "withdrawn", "change"), 0)
        | counts
    )


def test_the_decision_summary_counts_each_kind_of_proposal_and_the_inbox_age(make_system, clock):
    from feedback_core import lookups

    system = make_system()
    for movie in (10, 11, 12, 13):  # four wrong_genre -> genre proposals
        system.save_dislike(1, movie, f"M{movie}", reason="wrong_genre", genres=[f"G{movie}"])
    clock.advance(days=8)
    system.save_dislike(2, 20, "M20", reason="poor_quality", cast=["Ann", "Bob"])  # two cast proposals
    genre = [a["adjustment_id"] for a in system.list_adjustments(user_id=1)]
    system.approve_adjustment(genre[0], actor="ana")
    system.approve_adjustment(genre[1], actor="ana")
    system.revert_adjustment(genre[1], actor="ana")
    system.reject_adjustment(genre[2], actor="ana")
    summary = lookups.get_decision_summary(system, stale_days=7)
    kinds = summary["kinds"].set_index(["reason", "feature_type"])
    wrong = kinds.loc[("wrong_genre", "genre")]
    assert (wrong["waiting"], wrong["approved"], wrong["reverted"], wrong["rejected"]) == (1, 2, 1, 1)
    assert wrong["approved_share"] == pytest.approx(2 / 3)
    assert wrong["ci_low"] < 2 / 3 < wrong["ci_high"] and not wrong["enough"]  # 3 decided: too few
    cast = kinds.loc[("poor_quality", "cast")]
    assert (cast["waiting"], cast["approved"], cast["rejected"]) == (2, 0, 0) and pd.isna(
        cast["approved_share"]
    )
    # Waiting: the genre one proposed 8 days ago (stale), the two cast ones today.
    assert (summary["waiting"], summary["stale"]) == (3, 1)
    assert summary["oldest_waiting"] == pd.Timestamp(clock.moment - timedelta(days=8))
    # The last 7 days: the two cast proposals came in; two approvals (one reverted since) and a
    # rejection went out. The inbox held 4 a week ago and 3 now: it shrank by one.
    assert summary["recent"] == recent_counts(proposed=2, approved=2, rejected=1, change=-1)
    longer = lookups.get_decision_summary(system, stale_days=9)  # every proposal came within 9 days
    assert longer["stale"] == 0
    assert longer["recent"] == recent_counts(proposed=6, approved=2, rejected=1, change=3)
    with pytest.raises(ValidationError) as err:
        lookups.get_decision_summary(system, stale_days=0)
    assert err.value.field == "stale_days"


def test_the_decision_summary_does_not_count_a_retracted_dislikes_proposals_as_rejected(make_system):
    """Retracting a dislike withdraws its waiting proposals (status rejected, note "dislike
    retracted"): no approver rejected them, so they are neither decided nor rejected."""
    from feedback_core import lookups

    system = make_system()
    kept = system.save_dislike(1, 10, "M10", reason="wrong_genre", genres=["Horror"])
    withdrawn = system.save_dislike(1, 11, "M11", reason="wrong_genre", genres=["Comedy", "Drama"])
    horror = next(a for a in system.list_adjustments(user_id=1) if a["feature_value"] == "Horror")
    system.approve_adjustment(horror["adjustment_id"], actor="ana")
    system.retract_dislike(withdrawn, 1)
    assert kept != withdrawn
    wrong = lookups.get_decision_summary(system)["kinds"].set_index(["reason", "feature_type"])
    row = wrong.loc[("wrong_genre", "genre")]
    assert (row["approved"], row["rejected"], row["waiting"]) == (1, 0, 0)  # was rejected 2
    assert row["withdrawn"] == 2
    assert row["approved_share"] == pytest.approx(1.0)
    # Withdrawn ones left the inbox without a decision: they are not counted as decided.
    recent = lookups.get_decision_summary(system)["recent"]
    assert recent == recent_counts(proposed=3, approved=1, withdrawn=2)


def test_the_decision_summary_does_not_count_auto_approvals_as_approvers_decisions(make_system):
    """With FEEDBACK_AUTO_APPROVE nobody decides: what it applies leaves the inbox (the change
    counts it) but is no approver's decision, and a shrinking inbox it explains is not said to be
    approvers catching up."""
    from dashboard import wording
    from feedback_core import lookups

    system = make_system(auto_approve=True)
    system.save_dislike(1, 10, "M10", reason="wrong_genre", genres=["Horror", "Drama"])
    recent = lookups.get_decision_summary(system)["recent"]
    assert recent == recent_counts(proposed=2, auto_approved=2)
    assert wording.decided_recently(recent) == "0 approved · 0 rejected · 2 auto-approved"
    # Shrinking with no approver's decision at all (imported proposals from before the week,
    # auto-approved now; or withdrawals): not the approvers' doing.
    shrinking = recent_counts(proposed=1, auto_approved=11, change=-10)
    assert "approvers are catching up" not in wording.inbox_trend(shrinking, 7)
    withdrawn = recent_counts(withdrawn=7, change=-7)
    assert "approvers are catching up" not in wording.inbox_trend(withdrawn, 7)
    caught_up = recent_counts(proposed=3, approved=5, rejected=5, change=-7)
    assert wording.inbox_trend(caught_up, 7) == "Shrinking by about 1.0 a day: approvers are catching up."


def test_the_setting_that_stops_a_kind_of_proposal_stops_that_kind_only(make_system):
    """The genre factor sizes the genre proposals of three reasons (the franchise factor, of
    two): setting it to 0 to stop 'irrelevant → genre' stopped 'wrong_genre → genre' too. The
    setting named stops the one kind, and stops it (an overridden reason ignores the factors)."""
    import json

    from feedback_core import Settings, lookups

    system = make_system()
    system.save_dislike(1, 10, "M10", reason="irrelevant", genres=["Horror"])
    system.save_dislike(1, 11, "M11", reason="not_interested", genres=["Drama"], franchise="Saga")
    system.save_dislike(1, 12, "M12", reason="poor_quality", cast=["Ann"], franchise="Saga")
    kinds = lookups.get_decision_summary(system)["kinds"].set_index(["reason", "feature_type"])["stop_with"]
    assert kinds[("poor_quality", "cast")] == "FEEDBACK_CAST_DEEMPHASIS_FACTOR set to 0"  # cast: one reason
    for (reason, kind), said in kinds.items():
        if "REASON_POLICY" not in said:
            continue
        rules = json.loads(said.split(" set to ", 1)[1].split(" (", 1)[0])
        after = Settings(database_url="sqlite://", reason_policy=rules).reason_policy
        before = system.settings.reason_policy
        for other_reason, other_kind in [(r, k) for r in before for k in ("genre", "cast", "franchise")]:
            stopped = (other_reason, other_kind) == (reason, kind)
            expected = 0 if stopped else getattr(before[other_reason], other_kind)
            assert getattr(after[other_reason], other_kind) == pytest.approx(expected), (reason, kind)
    assert set(kinds.index) == {
        ("irrelevant", "genre"),
        ("not_interested", "genre"),
        ("not_interested", "franchise"),
        ("poor_quality", "cast"),
        ("poor_quality", "franchise"),
    }
    assert all("FACTOR" not in kinds[k] for k in kinds.index if k != ("poor_quality", "cast"))
