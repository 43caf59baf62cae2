"""Do approvals work? Approved against rejected features, pooled over people, before and after."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from feedback_core import ValidationError
from feedback_core.effects import get_pooled_adjustment_effects

HORROR, COMEDY = range(1, 11), range(11, 21)


def catalogue(system) -> None:
    system.add_movies(
        [
            {"movie_id": m, "title": f"M{m}", "genres": ["Horror" if m in HORROR else "Comedy"]}
            for m in range(1, 21)
        ]
    )


def proposal(system, user_id: int, movie_id: int, set_id: int) -> int:
    """Dislike a Horror film of a list for its genre; return the proposal it made."""
    system.save_dislike(user_id, movie_id, recommendation_set_id=set_id, reason="wrong_genre")
    return max(a["adjustment_id"] for a in system.list_adjustments(user_id=user_id, status="proposed"))


def measured(result: dict) -> dict:
    """(measure, group) -> the summary row."""
    return {(r["measure"], r["group"]): r for r in result["summary"].to_dict("records")}


def test_each_side_of_a_decision_counts_what_its_lists_showed(make_system, clock):
    """Hand-counted: one person's Horror approved, another's rejected; their lists before and
    after, a list older than the window, the lists whose dislikes made the proposals (left
    out), a dislike made after the decision of a list shown before it, and a retracted dislike."""
    system = make_system(min_impressions_for_rate=1)
    catalogue(system)
    system.record_recommendation_set(1, [9, 10, 17, 18])  # 20 days before: outside 14 days
    clock.advance(days=20)
    first = system.record_recommendation_set(1, [1, 2, 11, 12])  # made the proposal: left out
    earlier = system.record_recommendation_set(1, [3, 4, 13, 14])  # half Horror
    second = system.record_recommendation_set(2, [3, 4, 5, 13])  # made the proposal: left out
    other = system.record_recommendation_set(2, [5, 6, 7, 15])  # three quarters Horror
    approved = proposal(system, 1, 1, first)
    rejected = proposal(system, 2, 3, second)
    system.save_dislike(2, 5, recommendation_set_id=other, reason="other")
    clock.advance(days=1)
    system.approve_adjustment(approved, actor="ana")
    system.reject_adjustment(rejected, actor="ana")
    clock.advance(hours=1)
    # Shown before the approval, disliked after it: counted before, with its list.
    system.save_dislike(1, 4, recommendation_set_id=earlier, reason="other")
    clock.advance(days=1)
    third = system.record_recommendation_set(1, [11, 13, 14, 6])  # a quarter Horror
    fourth = system.record_recommendation_set(2, [7, 8, 15, 16])  # half Horror
    system.save_dislike(1, 13, recommendation_set_id=third, reason="other")
    system.save_dislike(2, 7, recommendation_set_id=fourth, reason="other")
    retracted = system.save_dislike(2, 8, recommendation_set_id=fourth, reason="other")
    system.retract_dislike(retracted, 2)
    assert measured(get_pooled_adjustment_effects(system))[("exposure", "approved")]["decisions"] == 0
    clock.advance(days=13)  # the decisions are 14 days old: a whole window after them has passed

    result = get_pooled_adjustment_effects(system, window_days=14)
    decided = clock.moment - timedelta(days=14, hours=1)  # both decided then
    assert (result["decided_from"], result["decided_to"]) == (decided, decided)
    rows = measured(result)
    expected = {
        # (measure, group): (events before, trials before, events after, trials after)
        ("exposure", "approved"): (2, 4, 1, 4),
        ("feature_rate", "approved"): (1, 2, 0, 1),
        ("overall_rate", "approved"): (1, 4, 1, 4),
        ("exposure", "rejected"): (3, 4, 2, 4),
        ("feature_rate", "rejected"): (1, 3, 1, 2),
        ("overall_rate", "rejected"): (1, 4, 1, 4),
    }
    for key, (k0, n0, k1, n1) in expected.items():
        row = rows[key]
        assert (row["events_before"], row["trials_before"], row["events_after"], row["trials_after"]) == (
            k0,
            n0,
            k1,
            n1,
        ), key
        assert row["rate_before"] == pytest.approx(k0 / n0) and row["rate_after"] == pytest.approx(k1 / n1)
        assert row["change"] == pytest.approx((k1 / n1) / (k0 / n0) - 1)
        assert (row["decisions"], row["people"]) == (1, 1)
    difference = result["difference"].set_index("measure")
    assert difference.loc["exposure", "difference"] == pytest.approx(0.5 / (2 / 3) - 1)
    assert difference.loc["feature_rate", "difference"] == pytest.approx(0 / 1.5 - 1)
    assert difference.loc["overall_rate", "difference"] == pytest.approx(0)
    # One person a group: every resample would be that person, an interval as narrow as the
    # point itself. Too few people to say how sure: no interval at all.
    assert pd.isna(difference.loc["exposure", "ci_low"]) and pd.isna(difference.loc["exposure", "ci_high"])
    assert pd.isna(rows[("exposure", "approved")]["ci_low_before"])

    # A shorter window leaves out what is further from the decision than it: with one day,
    # the lists shown a day (and an hour) away. The approval keeps its list 24 h before but
    # none after (25 h): measured on one side only, it counts on neither.
    short = measured(get_pooled_adjustment_effects(system, window_days=1))
    assert short[("overall_rate", "approved")]["decisions"] == 1
    assert short[("overall_rate", "approved")]["measured"] == 0
    assert short[("overall_rate", "approved")]["trials_before"] == 0
    assert short[("overall_rate", "approved")]["trials_after"] == 0
    assert pd.isna(short[("overall_rate", "approved")]["rate_after"])


def test_the_after_side_is_a_whole_window_from_the_decision_on(make_system, clock):
    """A list shown at the moment of the decision is after it, one shown a whole window later
    is not; a decision is read only once that window has passed. An empty group has no figures."""
    system = make_system(min_impressions_for_rate=1)
    catalogue(system)
    shown = system.record_recommendation_set(1, [1, 11])
    system.record_recommendation_set(1, [1, 2, 11, 12])
    approved = proposal(system, 1, 1, shown)
    clock.advance(hours=1)
    system.approve_adjustment(approved, actor="ana")
    system.record_recommendation_set(1, [2, 12, 13, 14])  # at the moment of the decision
    clock.advance(days=13, hours=23)
    assert (
        measured(get_pooled_adjustment_effects(system, window_days=14))[("exposure", "approved")]["decisions"]
        == 0
    )  # not yet: 14 days after it have not all passed
    clock.advance(hours=1)
    system.record_recommendation_set(1, [3, 4, 5, 6])  # a whole window after: outside it
    rows = measured(get_pooled_adjustment_effects(system, window_days=14))
    assert (
        rows[("exposure", "approved")]["trials_before"],
        rows[("exposure", "approved")]["trials_after"],
    ) == (4, 4)
    assert rows[("exposure", "approved")]["rate_before"] == pytest.approx(0.5)
    assert rows[("exposure", "approved")]["rate_after"] == pytest.approx(0.25)
    # Nothing rejected: that group is empty, its figures and the comparison none.
    assert rows[("exposure", "rejected")]["decisions"] == 0
    assert pd.isna(rows[("exposure", "rejected")]["rate_before"])
    assert get_pooled_adjustment_effects(system)["difference"]["difference"].isna().all()


def test_which_group_a_feature_falls_in(make_system, clock):
    """A feature approved and rejected for one person is approved; one rejected whose weight
    was changed by an earlier approval the newest decisions do not reach is left out."""
    system = make_system()
    catalogue(system)
    lists = {user: system.record_recommendation_set(user, list(range(1, 11))) for user in (1, 2)}
    early = proposal(system, 2, 1, lists[2])
    system.approve_adjustment(early, actor="ana")
    clock.advance(hours=1)
    both = [proposal(system, 1, movie, lists[1]) for movie in (1, 2)]
    system.approve_adjustment(both[0], actor="ana")
    system.reject_adjustment(both[1], actor="ana")
    clock.advance(hours=1)
    late = proposal(system, 2, 2, lists[2])
    system.reject_adjustment(late, actor="ana")
    clock.advance(days=14)

    def groups(**kwargs) -> tuple[int, int]:
        rows = measured(get_pooled_adjustment_effects(system, **kwargs))
        return rows[("exposure", "approved")]["decisions"], rows[("exposure", "rejected")]["decisions"]

    assert groups() == (2, 0)  # both people's Horror approved at some point
    # The newest approval (person 1's) and the newest rejection (person 2's, whose Horror
    # weight an older approval changed): that rejection compares nothing.
    assert groups(decisions=1) == (1, 0)


def test_the_figures_are_the_same_on_every_call(make_system, clock):
    """The intervals come from a seeded resampling: the same data gives the same intervals."""
    system = make_system(min_impressions_for_rate=1)
    catalogue(system)
    for user in range(1, 25):
        shown = system.record_recommendation_set(user, [1, 2, 3, 11, 12, 13])
        system.record_recommendation_set(user, [1, 2, 3, 11, 12, 13][user % 3 :])
        adjustment = proposal(system, user, 1 + user % 3, shown)
        clock.advance(minutes=10)
        if user % 2:
            system.approve_adjustment(adjustment, actor="ana")
        else:
            system.reject_adjustment(adjustment, actor="ana")
        clock.advance(hours=2)
        horror = [4, 5, 6][: 1 + user % 3]  # people differ: 1-3 Horror films of 4
        system.record_recommendation_set(user, horror + [14, 15, 16, 17][: 4 - len(horror)])
    clock.advance(days=14)
    first, second = (get_pooled_adjustment_effects(system) for _ in range(2))
    assert first["summary"].equals(second["summary"]) and first["difference"].equals(second["difference"])
    difference = first["difference"].set_index("measure").loc["exposure"]
    assert difference["ci_low"] <= difference["difference"] <= difference["ci_high"]
    assert difference["ci_low"] < difference["ci_high"]  # twelve people a group: resamples differ


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"window_days": 0}, "window_days"),
        ({"window_days": 91}, "window_days"),
        ({"window_days": 1.5}, "window_days"),
        ({"window_days": True}, "window_days"),
        ({"decisions": 0}, "decisions"),
    ],
)
def test_bad_arguments_name_the_field(system, kwargs, field):
    with pytest.raises(ValidationError) as err:
        get_pooled_adjustment_effects(system, **kwargs)
    assert err.value.field == field


def test_nothing_decided_measures_nothing(system):
    result = get_pooled_adjustment_effects(system)
    assert set(result["summary"]["decisions"]) == {0}
    assert result["summary"]["rate_before"].isna().all()
    assert result["difference"]["difference"].isna().all()


def test_the_number_of_people_bounds_no_statement_s_parameters(make_system, clock):
    """Up to 2 x 100,000 people decided for: PostgreSQL takes at most 65,535 bound values a
    statement, so no statement may carry one per person."""
    from sqlalchemy import event

    system = make_system()
    catalogue(system)
    for user in range(1, 31):
        shown = system.record_recommendation_set(user, [1, 11])
        system.reject_adjustment(proposal(system, user, 1, shown), actor="ana")
    clock.advance(days=14)
    most = []

    def count(conn, cursor, statement, parameters, context, executemany):
        most.append(len(parameters) if isinstance(parameters, (dict, list, tuple)) else 0)

    event.listen(system.engine, "before_cursor_execute", count)
    try:
        rows = measured(get_pooled_adjustment_effects(system, decisions=100_000))
    finally:
        event.remove(system.engine, "before_cursor_execute", count)
    assert rows[("exposure", "rejected")]["people"] == 30
    assert max(most) < 30


def test_an_approval_reverted_since_is_still_an_approval(make_system, clock):
    """Reverting is how an approval that backfired is undone: leaving reverted ones out would
    count only the approvals that worked."""
    system = make_system(min_impressions_for_rate=1)
    catalogue(system)
    approvals = []
    for user in (1, 2):
        shown = system.record_recommendation_set(user, [1, 2, 11, 12])
        system.record_recommendation_set(user, [2, 3, 11, 12])  # before, not the proposal's
        approvals.append(proposal(system, user, 1, shown))
    clock.advance(hours=1)
    for adjustment in approvals:
        system.approve_adjustment(adjustment, actor="ana")
    clock.advance(days=1)
    worse = system.record_recommendation_set(2, [11, 12, 13, 14])
    for movie in (11, 12, 13):
        system.save_dislike(2, movie, recommendation_set_id=worse, reason="other")
    system.record_recommendation_set(1, [11, 12, 13, 14])
    clock.advance(days=1)
    system.revert_adjustment(approvals[1], actor="ana")
    clock.advance(days=13)

    rows = measured(get_pooled_adjustment_effects(system, window_days=14))
    overall = rows[("overall_rate", "approved")]
    assert (overall["decisions"], overall["people"]) == (2, 2)
    assert (overall["events_after"], overall["trials_after"]) == (3, 8)


def test_before_and_after_pool_the_same_decisions(make_system, clock):
    """Nobody's dislike rate changes. Half the approvals were decided an hour ago, for people
    who dislike more: they have lists before and none after yet. Pooled into the before side
    only, they made the approved group's rate seem to fall by two thirds; they are not read
    until a whole window has passed after them."""
    system = make_system(min_impressions_for_rate=1)
    catalogue(system)
    films = [1, 2, 11, 12, 13, 14, 15, 16, 17, 18]

    def person(user: int, decided_ago: timedelta, approve: bool, dislikes: int, after: bool) -> None:
        decided = clock.moment - decided_ago
        now = clock.moment
        adjustment = None
        for days in (6, 4) + ((-2, -4) if after else ()):
            clock.moment = decided - timedelta(days=days)
            shown = system.record_recommendation_set(user, films)
            # Each list as many dislikes; the first one's Horror film among them, for the proposal.
            for movie in films[2 : 2 + dislikes - (adjustment is None)]:
                system.save_dislike(user, movie, recommendation_set_id=shown, reason="other")
            if adjustment is None:
                system.save_dislike(user, 1, recommendation_set_id=shown, reason="wrong_genre")
                adjustment = max(
                    a["adjustment_id"] for a in system.list_adjustments(user_id=user, status="proposed")
                )
                clock.moment = decided
                (system.approve_adjustment if approve else system.reject_adjustment)(adjustment, actor="ana")
        clock.moment = now

    clock.advance(days=30)
    for user in range(1, 11):
        person(user, timedelta(days=20), True, 1, after=True)
        person(100 + user, timedelta(hours=1), True, 5, after=False)
        person(200 + user, timedelta(days=20), False, 3, after=True)
    rows = measured(get_pooled_adjustment_effects(system, window_days=14))
    approved = rows[("overall_rate", "approved")]
    assert approved["change"] == pytest.approx(0)
    assert (approved["decisions"], approved["measured"], approved["measured_people"]) == (10, 10, 10)
    assert rows[("overall_rate", "rejected")]["change"] == pytest.approx(0)
    difference = get_pooled_adjustment_effects(system)["difference"].set_index("measure")
    assert difference.loc["overall_rate", "difference"] == pytest.approx(0)


def test_an_infinite_resample_is_a_value_beyond_the_others_not_a_missing_one():
    """Resamples whose ratio is infinite (something over nothing) are the far end of the
    distribution: 3% of them put the upper end of a 95% interval at infinity, so there is no
    interval; leaving them out gave a finite upper end, as if they had never been drawn."""
    import numpy as np

    from feedback_core.effects import BOOTSTRAP_RESAMPLES, _interval

    values = np.linspace(-0.5, 0.5, BOOTSTRAP_RESAMPLES)
    three_percent = values.copy()
    three_percent[-30:] = np.inf
    assert _interval(three_percent) == (None, None)
    one_percent = values.copy()
    one_percent[-10:] = np.inf
    low, high = _interval(one_percent)
    # The 97.5th of all 1,000, not of the 990 finite ones.
    assert high == pytest.approx(values[974], abs=1e-9)
    assert low == pytest.approx(values[24], abs=1e-9)
    # Nothing to divide by (NaN) is still no measurement: up to 5% of them are left out.
    some_nan = values.copy()
    some_nan[::50] = np.nan
    assert _interval(some_nan)[0] is not None


def test_a_proposal_withdrawn_with_its_dislike_is_no_rejection(make_system, clock):
    """Retracting a dislike withdraws its waiting proposals, stored as rejected: nobody decided
    them, so they are not in the rejected group."""
    system = make_system(min_impressions_for_rate=1)
    catalogue(system)
    for user in (1, 2):
        shown = system.record_recommendation_set(user, [1, 2, 11, 12])
        system.record_recommendation_set(user, [2, 3, 11, 12])
        system.save_dislike(user, 1, recommendation_set_id=shown, reason="wrong_genre")
    (withdrawn,) = system.list_adjustments(user_id=1, status="proposed")
    (rejected,) = system.list_adjustments(user_id=2, status="proposed")
    clock.advance(hours=1)
    system.retract_dislike(withdrawn["dislike_id"], 1)
    system.reject_adjustment(rejected["adjustment_id"], actor="ana")
    assert system.get_adjustment(withdrawn["adjustment_id"])["status"] == "rejected"
    clock.advance(days=1)
    for user in (1, 2):
        system.record_recommendation_set(user, [3, 13, 14, 15])
    clock.advance(days=14)
    rows = measured(get_pooled_adjustment_effects(system))
    assert (rows[("exposure", "rejected")]["decisions"], rows[("exposure", "rejected")]["people"]) == (1, 1)


def test_one_kind_of_feature_is_compared_alone(make_system, clock):
    """With a kind, only those features among the decisions read: a genre approved and a
    franchise rejected for one person each fall in their own kind's comparison."""
    system = make_system(min_impressions_for_rate=1)
    system.add_movies(
        [{"movie_id": m, "title": f"M{m}", "genres": ["Horror"], "franchise": "Saga"} for m in range(1, 11)]
        + [{"movie_id": m, "title": f"M{m}", "genres": ["Comedy"]} for m in range(11, 21)]
    )
    for user, reason in ((1, "wrong_genre"), (2, "not_interested")):
        shown = system.record_recommendation_set(user, [1, 2, 11, 12])
        system.record_recommendation_set(user, [2, 3, 11, 13])
        system.save_dislike(user, 1, recommendation_set_id=shown, reason=reason)
    clock.advance(hours=1)
    for a in system.list_adjustments(user_id=1, status="proposed"):
        system.approve_adjustment(a["adjustment_id"], actor="ana")
    for a in system.list_adjustments(user_id=2, status="proposed"):
        if a["feature_type"] == "franchise":
            system.reject_adjustment(a["adjustment_id"], actor="ana")
    clock.advance(days=1)
    for user in (1, 2):
        system.record_recommendation_set(user, [4, 14, 15, 16])
    clock.advance(days=14)

    def groups(kind):
        rows = measured(get_pooled_adjustment_effects(system, feature_type=kind))
        return rows[("exposure", "approved")]["decisions"], rows[("exposure", "rejected")]["decisions"]

    assert groups(None) == (1, 1)
    assert groups("genre") == (1, 0)
    assert groups("franchise") == (0, 1)
    assert groups("cast") == (0, 0)
    with pytest.raises(ValidationError) as err:
        get_pooled_adjustment_effects(system, feature_type="Genre")
    assert err.value.field == "feature_type"
