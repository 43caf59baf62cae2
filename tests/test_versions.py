"""Model versions: what retraining records, activation and rollback, and comparisons with statistics."""

from __future__ import annotations

import math
import threading
import time
from datetime import timedelta
from statistics import NormalDist

import pytest
from conftest import row_counts
from helpers import rows
from loop_support import ALL_FILMS, COMEDY, HORROR, build_world, dislike, trained_world
from sqlalchemy import select, text

from feedback_core import ConflictError, NotFoundError, ValidationError
from feedback_core.jobs import _promotion_decision
from feedback_core.model import FEATURES
from feedback_core.schema import audit_log, model_versions, user_dislikes

Z = NormalDist().inv_cdf(0.975)


def active_ids(system) -> list[int]:
    """Ids of every version marked active, by status and by the active slot (they must agree)."""
    by_status = [r.version_id for r in rows(system, model_versions, model_versions.c.status == "active")]
    by_slot = [r.version_id for r in rows(system, model_versions, model_versions.c.active_slot == 1)]
    assert by_status == by_slot
    return by_status


def audits(system, action=None) -> list:
    where = [audit_log.c.entity_type == "model_version"]
    if action:
        where.append(audit_log.c.action == action)
    return rows(system, audit_log, *where, order_by=audit_log.c.audit_id)


def with_dislikes(system, n: int = 40) -> None:
    """Comedy fans disliking Horror: dislikes the training data and the held-out share can use."""
    for i in range(n):
        user = 200 + i % 10
        if i < 10:
            system.record_rating(user, COMEDY[i % len(COMEDY)], 5.0)
        dislike(system, user, HORROR[i % len(HORROR)], "wrong_genre")


def three_versions(system) -> tuple[int, int, int]:
    v1 = trained_world(system)
    dislike(system, 301, HORROR[0])  # something new for each: the same data would add no version
    v2 = system.retrain("analyst@test")["result_version_id"]
    dislike(system, 302, HORROR[1])
    v3 = system.retrain("analyst@test")["result_version_id"]
    return v1, v2, v3


# ------------------------------------------------------------------ what a retrain records


def test_the_first_version_records_everything_and_is_activated(make_system, clock):
    system = make_system(FEEDBACK_ACCUMULATION_THRESHOLD=1000)
    build_world(system)
    with_dislikes(system)
    job = system.retrain("analyst@test")
    assert job["status"] == "succeeded", job["error"]
    version = system.get_model_version(job["result_version_id"])
    assert version["status"] == "active"
    assert version["activated_at"] == version["created_at"] == clock().strftime("%Y-%m-%d %H:%M:%S")
    assert version["parent_id"] is None
    assert version["trigger"] == "manual" and version["created_by"] == "analyst@test"
    assert set(version["weights"]) == set(FEATURES)
    assert all(math.isfinite(w) for w in version["weights"].values())
    metrics = version["metrics"]
    assert 0.0 <= metrics["auc"] <= 1.0
    assert metrics["log_loss"] > 0
    assert 0.0 <= metrics["precision_at_10"] <= 1.0
    assert 0.0 <= metrics["dislike_top10_share"] <= 1.0  # there are held-out dislikes to rank
    assert metrics["held_out"] > 0
    assert metrics["promotion"]["promoted"] is True
    # Set beside the prior model, which served until now, on the same examples (every one).
    prior = metrics["active_on_same_holdout"]
    gain = metrics["auc_gain"]
    assert prior["held_out"] == metrics["held_out"]
    assert gain["auc_a"] > gain["auc_b"] and gain["high"] >= 0
    assert metrics["promotion"]["reason"] == (
        "first version, not worse than the prior model that served: held-out AUC per (user, film) "
        f"{gain['auc_a']:.4f} vs the prior model's {gain['auc_b']:.4f} (difference {gain['difference']:+.4f}, "
        f"95% interval {gain['low']:+.4f} to {gain['high']:+.4f})"
    )
    examples = version["examples"]
    assert examples["new_negative_examples"] == 40 and examples["negative_examples"] == 40
    assert examples["negatives_from_dislikes"] > 0 and examples["positives"] > 0
    assert version["settings"]["DISLIKE_WEIGHT_MULTIPLIER"] == 0.8
    assert version["settings"]["FEEDBACK_ACCUMULATION_THRESHOLD"] == 1000
    assert system.get_active_model_version()["version_id"] == version["version_id"]
    assert active_ids(system) == [version["version_id"]]
    (audit,) = audits(system, "model.activated")
    assert audit.actor == "system" and audit.entity_id == str(version["version_id"])
    assert audit.details["previous_version_id"] is None


def test_a_first_version_worse_than_the_prior_beyond_chance_is_not_activated():
    from feedback_core.jobs import _promotion_decision

    worse = {"auc_a": 0.41, "auc_b": 0.55, "difference": -0.14, "low": -0.22, "high": -0.06, "p_value": 0.001}
    promote, why = _promotion_decision({"auc_gain": worse}, {"auc": 0.55}, 0.005, first=True)
    assert not promote
    assert why.startswith(
        "first version, but worse than the prior model that serves until a version is active"
    )
    assert "an analyst decides" in why
    # Within the noise, or too few examples to tell: the first version replaces the prior.
    noise = {**worse, "difference": -0.02, "low": -0.08, "high": 0.04, "p_value": 0.5}
    assert _promotion_decision({"auc_gain": noise}, {"auc": 0.55}, 0.005, first=True)[0]
    promote, why = _promotion_decision({"auc_gain": None, "held_out": 16}, {"auc": 0.5}, 0.005, first=True)
    assert promote and why == (
        "first version: nothing active to compare with (too few examples to set it beside the prior model: "
        "16 held out)"
    )


def test_a_version_no_better_than_chance_is_never_activated_by_itself():
    # Seen on random dislikes: a first version at 0.21 "not worse than the prior model" (0.25).
    noise = {
        "auc_a": 0.2128,
        "auc_b": 0.2489,
        "difference": -0.036,
        "low": -0.2,
        "high": 0.13,
        "p_value": 0.7,
    }
    promote, why = _promotion_decision({"auc": 0.2066, "auc_gain": noise}, {"auc": 0.25}, 0.005, first=True)
    assert not promote
    assert why == (
        "cross-validated AUC 0.2066: it tells disliked films from liked ones no better than chance (0.5); "
        "an analyst decides"
    )
    gain = {"auc_a": 0.50, "auc_b": 0.40, "difference": 0.10, "low": 0.05, "high": 0.15, "p_value": 0.001}
    assert not _promotion_decision({"auc": 0.5, "auc_gain": gain}, {"auc": 0.40}, 0.005)[0]
    assert _promotion_decision({"auc": 0.5001, "auc_gain": gain}, {"auc": 0.40}, 0.005)[0]


def test_a_later_version_waits_as_a_candidate_unless_it_beats_the_active_one(make_system):
    system = make_system(promotion_margin=1.0)  # no AUC can beat another by a whole point
    first = trained_world(system)
    with_dislikes(system, 25)
    job = system.retrain("analyst@test")
    assert job["status"] == "succeeded", job["error"]
    candidate = system.get_model_version(job["result_version_id"])
    assert candidate["status"] == "candidate"
    assert candidate["parent_id"] == first
    assert candidate["trigger"] == "threshold"  # 25 dislikes crossed the threshold: the queued job ran
    promotion = candidate["metrics"]["promotion"]
    assert promotion == {"promoted": False, "reason": promotion["reason"], "margin": 1.0}
    assert "an analyst decides" in promotion["reason"]
    baseline = candidate["metrics"]["active_on_same_holdout"]
    assert set(baseline) >= {"auc", "log_loss", "precision_at_10", "dislike_top10_share"}
    assert active_ids(system) == [first]
    assert [v["version_id"] for v in system.list_model_versions()] == [candidate["version_id"], first]
    assert system.recommend(1, k=3)["model_version_id"] == first


PROMOTION_CASES = [
    # (new metrics, active metrics, margin, promoted, words in the reason)
    ({"auc": 0.7}, None, 0.005, True, "first version"),
    (
        {"auc": 0.80, "dislike_top10_share": 0.1},
        {"auc": 0.70, "dislike_top10_share": 0.2},
        0.005,
        True,
        "beats",
    ),
    ({"auc": 0.704}, {"auc": 0.70}, 0.005, False, "not better by 0.005"),
    ({"auc": 0.705}, {"auc": 0.70}, 0.005, True, "beats"),
    (
        {"auc": 0.80, "dislike_top10_share": 0.3},
        {"auc": 0.70, "dislike_top10_share": 0.2},
        0.005,
        False,
        "top 10",
    ),
    # The same sampled dislikes under both: one more in a top 10 is chance, many more are not.
    (
        {
            "auc": 0.80,
            "dislike_top10_share": 0.21,
            "dislike_top10_test": {"candidate_only": 2, "active_only": 1, "p_value": 0.5},
        },
        {"auc": 0.70, "dislike_top10_share": 0.20},
        0.005,
        True,
        "beats",
    ),
    (
        {
            "auc": 0.80,
            "dislike_top10_share": 0.30,
            "dislike_top10_test": {"candidate_only": 11, "active_only": 1, "p_value": 0.003},
        },
        {"auc": 0.70, "dislike_top10_share": 0.20},
        0.005,
        False,
        "p = 0.003, McNemar's test",
    ),
    ({"auc": None}, {"auc": 0.70}, 0.005, False, "not available"),
    ({"auc": 0.69}, {"auc": 0.70}, -0.02, True, "beats"),
    # Better by the margin, but within the noise of the held-out rows: an analyst decides.
    (
        {"auc": 0.72, "auc_gain": {"difference": 0.02, "low": -0.01, "high": 0.05, "p_value": 0.2}},
        {"auc": 0.70},
        0.005,
        False,
        "within the noise",
    ),
    ({"auc": 0.72, "auc_gain": None}, {"auc": 0.70}, 0.005, False, "too few held-out examples"),
    # The margin is judged per (user, film), where DeLong's test judges the noise: rows of a film
    # shown in many lists make the AUC over rows differ (both ways).
    (
        {"auc": 0.7127, "auc_gain": {"difference": 0.0014, "low": 0.0010, "high": 0.0018, "p_value": 2e-13}},
        {"auc": 0.70},
        0.005,
        False,
        "held-out AUC 0.7127 vs active 0.7000: the gain per (user, film) of +0.0014 is not better by 0.005",
    ),
    # The note quotes the AUCs per (user, film) the gain is the difference of, not the AUCs
    # over rows beside a gain measured otherwise ("0.5388 vs 0.5405: a gain of +0.0005").
    (
        {
            "auc": 0.5388,
            "auc_gain": {
                "auc_a": 0.5441,
                "auc_b": 0.5436,
                "difference": 0.0005,
                "low": -0.01,
                "high": 0.011,
                "p_value": 0.9,
            },
        },
        {"auc": 0.5405},
        0.005,
        False,
        "held-out AUC per (user, film) 0.5441 vs active 0.5436: the gain of +0.0005 is not better",
    ),
    (
        {"auc": 0.702, "auc_gain": {"difference": 0.02, "low": 0.004, "high": 0.036, "p_value": 0.01}},
        {"auc": 0.70},
        0.005,
        True,
        "the AUC gain per (user, film) of +0.0200 is at least 0.005 and beyond chance",
    ),
    (
        {"auc": 0.72, "auc_gain": {"difference": 0.02, "low": 0.004, "high": 0.036, "p_value": 0.01}},
        {"auc": 0.70},
        0.005,
        True,
        "p = 0.01",
    ),
]


@pytest.mark.parametrize("new, old, margin, promoted, words", PROMOTION_CASES)
def test_promotion_decision(new, old, margin, promoted, words):
    decided, reason = _promotion_decision(new, old, margin)
    assert decided is promoted
    assert words in reason


# ------------------------------------------------------------------ activation and rollback


def test_activate_and_roll_back_are_audited_and_keep_exactly_one_active(make_system, clock):
    system = make_system(promotion_margin=1.0)
    v1, v2, v3 = three_versions(system)
    assert active_ids(system) == [v1]

    clock.advance(hours=1)
    result = system.activate_model_version(v3, "analyst@test", reason="better dislike rate")
    assert result["changed"] is True and result["previous_version_id"] == v1
    assert result["version"]["status"] == "active"
    assert active_ids(system) == [v3]
    statuses = {r.version_id: r.status for r in rows(system, model_versions)}
    assert statuses == {v1: "retired", v2: "candidate", v3: "active"}
    assert system.recommend(1, k=2)["model_version_id"] == v3
    activated = audits(system, "model.activated")[-1]
    assert (activated.actor, activated.entity_id, activated.at) == ("analyst@test", str(v3), clock())
    assert activated.details == {"previous_version_id": v1, "reason": "better dislike rate"}

    # An older version that never served is activated, not rolled back to (it was "model.rollback").
    clock.advance(hours=1)
    system.activate_model_version(v2, "oncall@test")
    assert audits(system, "model.activated")[-1].entity_id == str(v2)
    assert audits(system, "model.rollback") == []
    assert system.get_model_version(v2)["activated_at"] is not None
    clock.advance(hours=1)
    back = system.activate_model_version(v1, "oncall@test", reason="v2 misbehaves")
    assert back["previous_version_id"] == v2
    assert active_ids(system) == [v1]
    (rollback,) = audits(system, "model.rollback")
    assert (rollback.actor, rollback.entity_id) == ("oncall@test", str(v1))
    assert rollback.details == {"previous_version_id": v2, "reason": "v2 misbehaves"}

    # Activating the active version again changes and records nothing.
    before = row_counts(system)
    again = system.activate_model_version(v1, "oncall@test")
    assert again["changed"] is False
    assert row_counts(system) == before


def test_activation_refuses_when_another_version_became_active(make_system):
    system = make_system(promotion_margin=1.0)
    v1, v2, v3 = three_versions(system)
    before = row_counts(system)
    # The caller saw v2 active; v1 is: someone else acted meanwhile.
    with pytest.raises(
        ConflictError, match=rf"version {v1} is active, where version {v2} was expected \(another activation"
    ):
        system.activate_model_version(v3, "analyst@test", expected_active=v2)
    with pytest.raises(ConflictError, match=r"where no version was expected"):
        system.activate_model_version(v3, "analyst@test", expected_active=None)
    assert row_counts(system) == before and active_ids(system) == [v1]
    assert system.activate_model_version(v3, "analyst@test", expected_active=v1)["changed"] is True
    # Already active: nothing to refuse and nothing changes, whatever the caller saw.
    again = system.activate_model_version(v3, "analyst@test", expected_active=v2)
    assert again["changed"] is False and active_ids(system) == [v3]


@pytest.mark.parametrize(
    "version_id, actor, error",
    [(999, "analyst@test", NotFoundError), (0, "analyst@test", ValidationError), (1, "", ValidationError)],
)
def test_bad_activations_change_nothing(system, version_id, actor, error):
    trained_world(system)
    before = row_counts(system)
    active = active_ids(system)
    with pytest.raises(error):
        system.activate_model_version(version_id, actor)
    assert row_counts(system) == before
    assert active_ids(system) == active


def test_activation_is_atomic(make_system, monkeypatch):
    system = make_system(promotion_margin=1.0)
    v1, v2, _ = three_versions(system)
    before = {r.version_id: (r.status, r.active_slot, r.activated_at) for r in rows(system, model_versions)}
    audit_rows = row_counts(system)["audit_log"]

    def broken_audit(*args, **kwargs):
        raise RuntimeError("the audit log is full")

    monkeypatch.setattr("feedback_core.versions.write_audit", broken_audit)
    with pytest.raises(RuntimeError):
        system.activate_model_version(v2, "analyst@test")
    # The retirement of v1 and the activation of v2 were rolled back together.
    after = {r.version_id: (r.status, r.active_slot, r.activated_at) for r in rows(system, model_versions)}
    assert after == before
    assert active_ids(system) == [v1]
    assert row_counts(system)["audit_log"] == audit_rows


def locks_waited_on(system) -> int:
    """Count this database's sessions waiting for a lock (PostgreSQL)."""
    with system.engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
        ).scalar_one()


def test_concurrent_activations_are_serialised(make_system, backend):
    system = make_system(promotion_margin=1.0)
    v1, v2, v3 = three_versions(system)
    results: list[dict] = []
    errors: list[BaseException] = []

    def activate(version_id):
        try:
            results.append(system.activate_model_version(version_id, f"analyst-{version_id}"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=activate, args=(v,)) for v in (v2, v3)]
    if backend == "postgresql":
        # Hold the active version's row so that both activations queue up behind it, then let go:
        # the interleaving a busy dashboard (or an analyst and a finishing retrain) produces.
        with system.engine.connect() as holder:
            transaction = holder.begin()
            holder.execute(
                select(model_versions.c.version_id).where(model_versions.c.active_slot == 1).with_for_update()
            )
            for t in threads:
                t.start()
            deadline = time.monotonic() + 60
            while locks_waited_on(system) < 2:
                assert time.monotonic() < deadline, "the activations never reached the lock"
                time.sleep(0.01)
            transaction.commit()
    else:
        for t in threads:
            t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [r["changed"] for r in results] == [True, True]
    (last,) = active_ids(system)
    assert last in (v2, v3)
    first = v3 if last == v2 else v2
    assert {r.version_id: r.status for r in rows(system, model_versions)} == {
        v1: "retired",
        first: "retired",
        last: "active",
    }
    recorded = audits(system)
    assert [(r.entity_id, r.details["previous_version_id"]) for r in recorded[-2:]] == [
        (str(first), v1),
        (str(last), first),
    ]


# ------------------------------------------------------------------ comparisons


def show_and_dislike(
    system, version_id: int, lists: int, per_list: int, dislikes: int, first_user: int
) -> None:
    """Record ``lists`` shown lists of ``per_list`` films on a version and ``dislikes`` dislikes of them."""
    left = dislikes
    for n in range(lists):
        user = first_user + n
        items = [
            {"movie_id": m, "rank": r, "predicted_score": 0.5} for r, m in enumerate(ALL_FILMS[:per_list], 1)
        ]
        set_id = system.record_recommendation_set(user, items, model_version_id=version_id)
        take = min(left, per_list)
        for m in ALL_FILMS[:take]:
            dislike(system, user, m, "other", recommendation_set_id=set_id, predicted_score=0.5)
        left -= take
    assert left == 0


def wilson(x: int, n: int) -> tuple[float, float]:
    p = x / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return centre - half, centre + half


def pooled_p_value(xa, na, xb, nb) -> float:
    pooled = (xa + xb) / (na + nb)
    z = (xb / nb - xa / na) / math.sqrt(pooled * (1 - pooled) * (1 / na + 1 / nb))
    return math.erfc(abs(z) / math.sqrt(2))


def test_compare_versions_with_a_significant_difference(make_system):
    system = make_system(promotion_margin=1.0, FEEDBACK_ACCUMULATION_THRESHOLD=1000)
    v1, v2, _ = three_versions(system)
    show_and_dislike(system, v1, lists=10, per_list=20, dislikes=60, first_user=1000)  # 60 / 200
    show_and_dislike(system, v2, lists=10, per_list=20, dislikes=10, first_user=2000)  # 10 / 200
    dislike(system, 3000, 1, "other")  # not from a shown list: in no version's rate
    report = system.compare_model_versions(v1, v2)

    a, b = report["a"]["online"], report["b"]["online"]
    assert (a["events"], a["trials"], a["rate"]) == (60, 200, 0.3)
    assert (b["events"], b["trials"], b["rate"]) == (10, 200, 0.05)
    assert (a["ci_low"], a["ci_high"]) == pytest.approx(wilson(60, 200))
    assert (b["ci_low"], b["ci_high"]) == pytest.approx(wilson(10, 200))
    assert a["ci_low"] < 0.3 < a["ci_high"] and a["enough_data"] is True
    diff = report["difference"]
    (low_a, high_a), (low_b, high_b) = wilson(60, 200), wilson(10, 200)
    assert diff["rate"] == pytest.approx(-0.25)
    # Newcombe's interval (method 10): each side's distance from the two Wilson intervals.
    newcombe = (
        -0.25 - math.hypot(0.05 - low_b, high_a - 0.3),
        -0.25 + math.hypot(high_b - 0.05, 0.3 - low_a),
    )
    assert (diff["ci_low"], diff["ci_high"]) == pytest.approx(newcombe)
    assert report["p_value"] == pytest.approx(pooled_p_value(60, 200, 10, 200), rel=1e-6)
    assert report["p_value"] < 0.001
    assert report["verdict"] == f"v{v2}'s dislike rate is 25.0 points lower, p < 0.001"

    va, vb = system.get_model_version(v1), system.get_model_version(v2)
    for metric in ("auc", "log_loss", "precision_at_10", "dislike_top10_share"):
        side = report["offline"][metric]
        assert (side["a"], side["b"]) == (va["metrics"].get(metric), vb["metrics"].get(metric))
    assert report["offline"]["auc"]["difference"] == pytest.approx(
        vb["metrics"]["auc"] - va["metrics"]["auc"]
    )
    assert set(report["weights"]) == set(FEATURES)
    assert report["a"]["version_id"] == v1 and report["b"]["version_id"] == v2

    # The other way round, B is the worse one.
    reverse = system.compare_model_versions(v2, v1)
    assert reverse["verdict"] == f"v{v1}'s dislike rate is 25.0 points higher, p < 0.001"
    assert reverse["p_value"] == pytest.approx(report["p_value"])


def test_compare_versions_without_enough_evidence(make_system):
    system = make_system(promotion_margin=1.0, FEEDBACK_ACCUMULATION_THRESHOLD=1000)
    v1, v2, v3 = three_versions(system)
    show_and_dislike(system, v1, lists=5, per_list=20, dislikes=20, first_user=1000)  # 20 / 100
    show_and_dislike(system, v2, lists=5, per_list=20, dislikes=18, first_user=2000)  # 18 / 100
    report = system.compare_model_versions(v1, v2)
    assert report["p_value"] == pytest.approx(pooled_p_value(20, 100, 18, 100), rel=1e-6)
    assert report["p_value"] > 0.05
    z_power = NormalDist().inv_cdf(0.8)
    needed = math.ceil((Z + z_power) ** 2 * (0.2 * 0.8 + 0.18 * 0.82) / 0.02**2)
    assert report["verdict"] == (
        f"no significant difference yet (p = {report['p_value']:.3f}): need about {needed - 100:,} more "
        "impressions per version to detect a 2.0-point difference"
    )

    # A version nobody has seen yet: no rate, no test, a verdict that says so.
    unseen = system.compare_model_versions(v1, v3)
    assert unseen["b"]["online"]["rate"] is None and unseen["b"]["online"]["enough_data"] is False
    assert unseen["p_value"] is None and unseen["difference"]["rate"] is None
    assert unseen["verdict"] == f"no verdict yet: v{v3} has no impressions"
    # A rate on fewer impressions than min_impressions_for_rate (30) is flagged.
    show_and_dislike(system, v3, lists=1, per_list=20, dislikes=1, first_user=3000)
    small = system.compare_model_versions(v1, v3)
    assert small["b"]["online"]["trials"] == 20 and small["b"]["online"]["enough_data"] is False
    assert small["a"]["online"]["enough_data"] is True
    with pytest.raises(NotFoundError):
        system.compare_model_versions(v1, 999)


def test_retracted_dislikes_leave_the_online_rate(make_system):
    system = make_system(promotion_margin=1.0, FEEDBACK_ACCUMULATION_THRESHOLD=1000)
    v1, v2, _ = three_versions(system)
    show_and_dislike(system, v1, lists=2, per_list=20, dislikes=4, first_user=1000)
    show_and_dislike(system, v2, lists=2, per_list=20, dislikes=4, first_user=2000)
    mine = rows(system, user_dislikes, user_dislikes.c.user_id == 2000)
    system.retract_dislike(mine[0].dislike_id, 2000)
    report = system.compare_model_versions(v1, v2)
    assert (report["b"]["online"]["events"], report["b"]["online"]["trials"]) == (3, 40)
    assert report["a"]["online"]["enough_data"] is True


def test_no_verdict_on_a_rate_with_too_few_impressions_to_show(make_system):
    system = make_system(promotion_margin=1.0, FEEDBACK_ACCUMULATION_THRESHOLD=1000)
    v1, _, v3 = three_versions(system)
    show_and_dislike(system, v1, lists=10, per_list=20, dislikes=10, first_user=1000)  # 10 / 200
    show_and_dislike(system, v3, lists=1, per_list=20, dislikes=8, first_user=3000)  # 8 / 20, under 30
    small = system.compare_model_versions(v1, v3)
    assert small["b"]["online"]["enough_data"] is False
    assert small["outcome"] == "too_few"
    assert small["p_value"] is None and small["difference"]["rate"] is None and small["test"] is None
    assert small["verdict"] == (f"no verdict: too few impressions to compare (v{v3} has 20; a rate needs 30)")


def test_a_comparison_names_the_days_each_version_served_and_compares_the_shared_ones(make_system, clock):
    system = make_system(promotion_margin=1.0, FEEDBACK_ACCUMULATION_THRESHOLD=1000)
    v1, v2, _ = three_versions(system)
    first = clock().date()
    show_and_dislike(system, v1, lists=5, per_list=20, dislikes=30, first_user=1000)  # day 1: v1 only
    clock.advance(days=1)
    show_and_dislike(system, v1, lists=5, per_list=20, dislikes=10, first_user=1100)  # day 2: both
    show_and_dislike(system, v2, lists=5, per_list=20, dislikes=9, first_user=2000)
    clock.advance(days=1)
    show_and_dislike(system, v2, lists=5, per_list=20, dislikes=2, first_user=2100)  # day 3: v2 only
    report = system.compare_model_versions(v1, v2)
    second, third = first + timedelta(days=1), first + timedelta(days=2)
    a, b = report["a"]["online"], report["b"]["online"]
    assert (a["events"], a["trials"], a["first_day"], a["last_day"], a["days"]) == (40, 200, first, second, 2)
    assert (b["events"], b["trials"], b["first_day"], b["last_day"], b["days"]) == (11, 200, second, third, 2)
    assert report["same_days"] is False
    assert report["outcome"] == "lower"  # all time: 20% against 5.5%
    shared = report["shared_days"]
    assert (shared["first_day"], shared["last_day"], shared["days"]) == (second, second, 1)
    assert (shared["a"]["events"], shared["a"]["trials"]) == (10, 100)
    assert (shared["b"]["events"], shared["b"]["trials"]) == (9, 100)
    assert shared["outcome"] == "no_difference"  # on the same day: 10% against 9%
    assert shared["p_value"] == pytest.approx(pooled_p_value(10, 100, 9, 100), rel=1e-6)
    assert shared["verdict"].startswith("no significant difference yet")
    # A version against itself served on the same days.
    same = system.compare_model_versions(v1, v1)
    assert same["same_days"] is True and same["shared_days"]["days"] == 2
    # A version that never served shares no day.
    assert system.compare_model_versions(v1, 3)["shared_days"] is None
