"""Acceptance of the learning loop: feedback measurably lowers the dislike rate.

The simulated people have hidden tastes (loved and hated genres); the same seed gives the same
world, so the two runs below differ only in whether what people do reaches the system. Rates
are compared over the last three rounds (one round of 600 impressions is noisy).
"""

from __future__ import annotations

import pytest

from feedback_core import FeedbackSystem, Settings
from feedback_core.demo import simulate

ROUNDS, USERS, MOVIES, SEED = 10, 60, 1500, 7


def _run(folder, feedback: bool):
    settings = Settings(database_url=f"sqlite:///{folder / ('on.db' if feedback else 'off.db')}")
    FeedbackSystem.from_settings(settings).init_feedback_tables()
    return simulate(settings, rounds=ROUNDS, feedback=feedback, seed=SEED, users=USERS, movies=MOVIES)


def _late_rate(rounds) -> float:
    late = rounds[-3:]
    return sum(r.dislikes for r in late) / sum(r.impressions for r in late)


@pytest.fixture(scope="module")
def without_feedback(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("simulation"), feedback=False)


@pytest.mark.slow
def test_feedback_halves_the_dislike_rate_against_the_same_world_without_it(tmp_path, without_feedback):
    rounds = _run(tmp_path, feedback=True)
    assert all(r.impressions == USERS * 10 for r in rounds)
    first = rounds[0].dislike_rate
    assert first > 0.1, "the first round must have something to learn from"
    on, off = _late_rate(rounds), _late_rate(without_feedback)
    assert on <= 0.5 * off, f"last three rounds: {on:.1%} with feedback, {off:.1%} without"
    assert on <= 0.5 * first, f"dislike rate went from {first:.1%} to {on:.1%}"


@pytest.mark.slow
def test_without_feedback_the_dislike_rate_stays_put(without_feedback):
    first = without_feedback[0].dislike_rate
    for r in without_feedback[1:]:
        assert abs(r.dislike_rate / first - 1) <= 0.15, (
            f"round {r.round}: {r.dislike_rate:.1%} against {first:.1%} in round 1"
        )
