"""Security (issue 7): every action the dashboard offers is refused in ``feedback_core`` to a
person without the role, the refusal is recorded under their name, and nothing else changes.

The dashboard reaches these through ``authz.Operator`` (``dashboard/identity.py``);
``test_dashboard_apptest.py`` shows one refusal through the page (activate, admin revoked).
Here every action is checked at the library boundary, so no page can bypass the rule.
"""

from __future__ import annotations

import pytest
from api_support import row_counts
from helpers import add_model_version, add_movie, rows

from feedback_core.authz import PERMISSIONS, Operator, Principal
from feedback_core.errors import PermissionDeniedError
from feedback_core.schema import audit_log

# (Operator method, action checked, arguments from the fixture's ids)
ACTIONS = [
    ("approve_adjustment", "adjustment.approve", lambda ids: (ids["proposed"],)),
    ("approve_adjustments", "adjustment.approve", lambda ids: ([ids["proposed"], ids["other"]],)),
    ("reject_adjustment", "adjustment.reject", lambda ids: (ids["proposed"],)),
    ("reject_adjustments", "adjustment.reject", lambda ids: ([ids["proposed"], ids["other"]],)),
    ("revert_adjustment", "adjustment.revert", lambda ids: (ids["applied"],)),
    ("request_retrain", "retrain.request", lambda ids: ()),
    ("activate_model_version", "model.activate", lambda ids: (ids["candidate"],)),
]


def test_every_operator_action_is_listed_here():
    methods = {name for name in vars(Operator) if not name.startswith("_")}
    assert methods == {name for name, _, _ in ACTIONS}
    assert {action for _, action, _ in ACTIONS} == set(PERMISSIONS)


def test_the_roles_are_the_documented_ones():
    """A fixed copy of the README's "Who may do what": the refusal test below derives who lacks
    a role from the table itself, so a widened table would widen it too."""
    assert PERMISSIONS == {
        "adjustment.approve": {"approver", "admin"},
        "adjustment.reject": {"approver", "admin"},
        "adjustment.revert": {"approver", "admin"},
        "retrain.request": {"admin"},
        "model.activate": {"admin"},
    }


def test_an_approver_starts_no_retrain_and_activates_no_version(system):
    add_movie(system, 1, "Film 1", genres=["Horror"])
    add_model_version(system, 1, active=True)
    add_model_version(system, 2)
    approver = Operator(system, Principal.of("ann@test", ["approver"]))
    with pytest.raises(PermissionDeniedError, match="needs the admin role"):
        approver.request_retrain()
    with pytest.raises(PermissionDeniedError, match="needs the admin role"):
        approver.activate_model_version(2)
    assert system.list_retrain_jobs(10) == []
    assert system.get_active_model_version()["version_id"] == 1
    denied = [(r.action, r.outcome) for r in rows(system, audit_log, order_by=audit_log.c.audit_id)[-2:]]
    assert denied == [("retrain.request", "denied"), ("model.activate", "denied")]


def test_every_action_without_its_role_is_refused_recorded_and_changes_nothing(system):
    add_movie(system, 1, "Film 1", genres=["Horror", "Drama"])
    add_movie(system, 2, "Film 2", genres=["Comedy"])
    add_model_version(system, 1, active=True)
    add_model_version(system, 2)
    first = system.record_dislike(user_id=5, movie_id=1, movie_title="", reason="wrong_genre")
    second = system.record_dislike(user_id=5, movie_id=2, movie_title="", reason="wrong_genre")
    proposed = [p["adjustment_id"] for p in system.list_adjustments(status="proposed")]
    assert len(proposed) == 3 and first["dislike_id"] != second["dislike_id"]
    system.approve_adjustment(proposed[2], "approver@test")
    ids = {"proposed": proposed[0], "other": proposed[1], "applied": proposed[2], "candidate": 2}

    for method, action, args in ACTIONS:
        allowed = PERMISSIONS[action]
        lacking = sorted({"viewer", "approver", "admin"} - allowed) or ["viewer"]
        for roles in ([], lacking):
            who = Operator(system, Principal.of("mallory@test", roles))
            before = row_counts(system)
            with pytest.raises(PermissionDeniedError, match=f"needs the {' or '.join(sorted(allowed))} role"):
                getattr(who, method)(*args(ids))
            after = row_counts(system)
            assert after == {**before, "audit_log": before["audit_log"] + 1}, (method, roles)
            record = rows(system, audit_log, order_by=audit_log.c.audit_id)[-1]
            assert (record.actor, record.action, record.outcome) == ("mallory@test", action, "denied")
            assert record.details == {"roles": sorted(roles)}, (method, record.details)

    # Nothing was decided, applied or activated by the refused calls.
    assert [a["status"] for a in system.list_adjustments(status="proposed")] == ["proposed", "proposed"]
    assert system.get_adjustment(ids["applied"])["status"] == "applied"
    assert system.get_active_model_version()["version_id"] == 1
    assert system.list_retrain_jobs() == []
    # And the same call with the role goes through, under the person's name.
    Operator(system, Principal.of("alice@test", ["approver"])).approve_adjustment(ids["proposed"])
    assert system.get_adjustment(ids["proposed"])["decided_by"] == "alice@test"
    Operator(system, Principal.of("bob@test", ["admin"])).activate_model_version(2)
    assert system.get_active_model_version()["version_id"] == 2
