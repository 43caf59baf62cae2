"""Acceptance of the learning loop: feedback measurably lowers the dislike rate.

The simulated people have hidden tastes (loved and hated genres); the same seed gives the same
world, so the two runs below differ only in whether what people do reaches the system.
"""

from __future__ import annotations

import pytest

from feedback_core import FeedbackSystem, Settings
from feedback_core.demo import simulate

ROUNDS, USERS, MOVIES, SEED = 10, 60, 1500, 7


def _run(tmp_path, feedback: bool):
    settings = Settings(database_url=f"sqlite:///{tmp_path / ('on.db' if feedback else 'off.db')}")
    FeedbackSystem.from_settings(settings).init_feedback_tables()
    return simulate(settings, rounds=ROUNDS, feedback=feedback, seed=SEED, users=USERS, movies=MOVIES)


@pytest.mark.slow
def test_feedback_halves_the_dislike_rate(tmp_path):
    rounds = _run(tmp_path, feedback=True)
    first, last = rounds[0].dislike_rate, rounds[-1].dislike_rate
    assert all(r.impressions == USERS * 10 for r in rounds)
    assert first > 0.1, "the first round must have something to learn from"
    assert last <= first / 2, f"dislike rate went from {first:.1%} to {last:.1%}"


@pytest.mark.slow
def test_without_feedback_the_dislike_rate_stays_put(tmp_path):
    rounds = _run(tmp_path, feedback=False)
    first = rounds[0].dislike_rate
    for r in rounds[1:]:
        assert abs(r.dislike_rate / first - 1) <= 0.15, (
            f"round {r.round}: {r.dislike_rate:.1%} against {first:.1%} in round 1"
        )
