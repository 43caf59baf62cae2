"""The dashboard's data functions (queries.py, lookups.py): every key number equals a recount
from the raw rows, on SQLite and on PostgreSQL.

One sample database per backend is built for the module (it takes seconds); tests that add
their own rows put them on users and days nobody else uses, and every recount is taken from
the database as it is at that moment.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import date, datetime, time, timedelta

import pandas as pd
import pytest
from conftest import BACKENDS, PG_URL, Clock, _fresh_pg
from dashboard_data import build_sample
from helpers import add_bare_versions, add_version
from reliability_support import BLAMED
from sqlalchemy import delete, func, insert, select, update

from feedback_core import FeedbackSystem, NotFoundError, Settings, frames, lookups, queries
from feedback_core.db import format_ts, make_engine, upgrade_database, write_transaction
from feedback_core.schema import (
    audit_log,
    daily_dislikes,
    daily_impressions,
    feature_adjustments,
    impressions,
    model_versions,
    movies,
    recommendation_sets,
    retrain_jobs,
    user_dislikes,
)
from feedback_core.stats import wilson_interval

SAMPLE_END = datetime(2026, 11, 1, 12, 0, 0)
FAR = date(2031, 3, 1)  # crafted scenarios live here, far from the sample's days


@pytest.fixture(scope="module", params=BACKENDS)
def sample(request, tmp_path_factory):
    """A sample database per backend: (system, what was built)."""
    if request.param == "postgresql":
        settings = Settings(database_url=PG_URL, FEEDBACK_ACCUMULATION_THRESHOLD=1_000_000)
        _fresh_pg(settings).dispose()
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('queries') / 'sample.db'}"
        settings = Settings(database_url=url, FEEDBACK_ACCUMULATION_THRESHOLD=1_000_000)
        engine = make_engine(settings)
        upgrade_database(engine)
        engine.dispose()
    system = FeedbackSystem.from_settings(settings, clock=Clock(SAMPLE_END))
    built = build_sample(system, users=12, days=10, end=SAMPLE_END)
    yield system, built
    system.close()


# ---------------------------------------------------------------- recounts from raw rows


def raw_dislikes(system) -> pd.DataFrame:
    with system.engine.connect() as conn:
        rows = conn.execute(select(user_dislikes).where(user_dislikes.c.retracted_at.is_(None))).all()
        shown = dict(
            conn.execute(
                select(recommendation_sets.c.recommendation_set_id, recommendation_sets.c.created_at)
            ).all()
        )
    df = pd.DataFrame([r._mapping for r in rows])
    # A dislike of a list counts on the day the list was shown (beside its impressions).
    df["day"] = [
        pd.Timestamp(shown[s] if pd.notna(s) else at).date()
        for s, at in zip(df["recommendation_set_id"], df["created_at"], strict=True)
    ]
    df["version"] = df["model_version_id"].fillna(0).astype(int)
    df["attributed"] = df["recommendation_set_id"].notna()
    # The predicted score where it is known, else NaN (left out of every mean, as pandas does).
    df["score"] = df["predicted_score"].where(df["score_known"].astype(bool))
    return df


def raw_impressions(system) -> pd.DataFrame:
    with system.engine.connect() as conn:
        rows = conn.execute(
            select(
                impressions.c.shown_at,
                impressions.c.model_version_id,
                impressions.c.predicted_score,
                impressions.c.score_known,
            )
        ).all()
    df = pd.DataFrame(rows, columns=["shown_at", "model_version_id", "predicted_score", "score_known"])
    df["score"] = df["predicted_score"].where(df["score_known"].astype(bool))
    df["day"] = pd.to_datetime(df["shown_at"]).dt.date
    df["version"] = df["model_version_id"].fillna(0).astype(int)
    return df


def in_window(df, start, end, versions=(), reasons=()):
    keep = (df["day"] >= start) & (df["day"] <= end)
    if versions:
        keep &= df["version"].isin(versions)
    if reasons and "reason" in df:
        keep &= df["reason"].isin(reasons)
    return df[keep]


FILTERS = [
    pytest.param((), (), id="everything"),
    pytest.param((2,), (), id="version-2"),
    pytest.param((), ("wrong_genre", "poor_quality"), id="two-reasons"),
    pytest.param((1, 0), ("other",), id="version-1-and-none-other"),
]


@pytest.mark.parametrize("versions,reasons", FILTERS)
def test_overview_equals_a_recount(sample, versions, reasons):
    system, built = sample
    start, end = built["start"] + timedelta(days=3), built["end"]
    overview = queries.get_overview(system, start, end, versions, reasons)
    dis, imp = raw_dislikes(system), raw_impressions(system)
    length = (end - start).days + 1
    previous = (start - timedelta(days=length), start - timedelta(days=1))
    for window, (s, e) in (("current", (start, end)), ("previous", previous)):
        got = overview[window]
        d = in_window(dis, s, e, versions, reasons)
        n = len(in_window(imp, s, e, versions))
        x = int(d["attributed"].sum())
        assert (got["start"], got["end"]) == (s, e)
        assert got["dislikes"] == len(d)
        assert got["attributed_dislikes"] == x
        assert got["impressions"] == n
        assert got["scored_dislikes"] == int(d["score"].notna().sum())
        if got["scored_dislikes"]:
            assert got["mean_predicted_score"] == pytest.approx(d["score"].mean())
        else:
            assert got["mean_predicted_score"] is None
        rate = got["dislike_rate"]
        if n:
            assert rate["rate"] == pytest.approx(x / n)
            assert (rate["ci_low"], rate["ci_high"]) == pytest.approx(wilson_interval(x, n))
        else:
            assert rate["rate"] is None
        assert rate["enough"] == (n >= system.settings.min_impressions_for_rate)
    pending = system.get_untrained_negative_feedback_count()
    assert overview["untrained_examples"] == pending
    assert overview["active_version"]["version_id"] == 2


def test_overview_over_everything_agrees_with_the_system_metrics(sample):
    system, _ = sample
    bounds = queries.get_data_bounds(system)
    overview = queries.get_overview(system, bounds["first_day"], bounds["last_day"])
    metrics = system.get_model_feedback_metrics()["metrics"]
    assert overview["current"]["dislikes"] == metrics["total_dislikes"]
    assert overview["current"]["impressions"] == metrics["total_impressions"]
    for key in ("rate", "ci_low", "ci_high"):
        assert overview["current"]["dislike_rate"][key] == pytest.approx(metrics["dislike_rate"][key])


@pytest.mark.parametrize("versions,reasons", FILTERS)
def test_daily_rates_equal_a_recount(sample, versions, reasons):
    system, built = sample
    start, end = built["start"], built["end"]
    rates = queries.list_daily_rates(system, start, end, versions, reasons)
    dis = in_window(raw_dislikes(system), start, end, versions, reasons)
    imp = in_window(raw_impressions(system), start, end, versions)
    shown = Counter(zip(imp["day"], imp["version"]))
    disliked = Counter(zip(dis.loc[dis["attributed"], "day"], dis.loc[dis["attributed"], "version"]))
    keys = set(shown) | set(disliked)
    assert len(rates) == len(keys)
    for row in rates.itertuples():
        key = (row.day.date(), row.model_version_id)
        n, x = shown[key], disliked[key]
        assert (row.impressions, row.dislikes) == (n, x)
        assert row.rate == pytest.approx(x / n)
        assert (row.ci_low, row.ci_high) == pytest.approx(wilson_interval(x, n))
        assert row.enough == (n >= system.settings.min_impressions_for_rate)
        assert row.version == queries.version_label(row.model_version_id)


def test_reason_counts_trend_and_genres_equal_a_recount(sample):
    system, built = sample
    start, end = built["start"], built["end"]
    dis = in_window(raw_dislikes(system), start, end)
    counts = queries.list_reason_counts(system, start, end)
    expected = dis["reason"].value_counts()
    assert dict(zip(counts["reason"], counts["dislikes"])) == expected.to_dict()
    assert counts["share"].sum() == pytest.approx(1.0)
    assert list(counts["dislikes"]) == sorted(counts["dislikes"], reverse=True)
    mean = dis.groupby("reason")["score"].mean()  # of the known scores
    assert dis.loc[dis["reason"] == "other", "score"].isna().any()  # the sample has unknown ones
    for row in counts.itertuples():
        assert row.mean_predicted_score == pytest.approx(mean[row.reason])

    trend = queries.list_reason_trend(system, start, end)
    recount = Counter(zip(dis["day"], dis["reason"]))
    assert {(r.day.date(), r.reason): r.dislikes for r in trend.itertuples()} == dict(recount)

    matrix = queries.list_reason_genre(system, start, end, top_genres=3)
    per_pair = Counter((r.reason, g) for r in dis.itertuples() for g in dict.fromkeys(r.genres))
    per_genre = Counter()
    for (_, genre), n in per_pair.items():
        per_genre[genre] += n
    top = sorted(per_genre, key=lambda g: (-per_genre[g], g))[:3]
    assert set(matrix["genre"]) == set(top)
    assert {(r.reason, r.genre): r.dislikes for r in matrix.itertuples()} == {
        k: v for k, v in per_pair.items() if k[1] in top
    }


def test_score_histogram_errors_and_confident_mistakes_equal_a_recount(sample):
    system, built = sample
    start, end = built["start"], built["end"]
    dis = in_window(raw_dislikes(system), start, end)
    histogram = queries.list_score_histogram(system, start, end)
    known = dis[dis["score"].notna()]
    assert len(known) < len(dis)  # the sample has dislikes whose score nobody knows: in no bucket
    buckets = Counter(zip(known["version"], known["score"].map(lambda s: min(int(s * 10), 9))))
    assert {(r.model_version_id, r.bucket): r.dislikes for r in histogram.itertuples()} == dict(buckets)
    for _, shares in histogram.groupby("model_version_id")["share"]:
        assert shares.sum() == pytest.approx(1.0)

    errors = queries.list_error_by_version(system, start, end)
    mean = dis.groupby("version")["score"].mean()
    assert {r.model_version_id: r.mean_prediction_error for r in errors.itertuples()} == pytest.approx(
        mean.to_dict()
    )
    assert {r.model_version_id: (r.dislikes, r.scored) for r in errors.itertuples()} == {
        v: (len(group), int(group["score"].notna().sum())) for v, group in dis.groupby("version")
    }
    # Beside each, the mean score the version gave everything it showed in the window, and the
    # mean error of its dislikes of those lists.
    imp = in_window(raw_impressions(system), start, end)
    for row in errors.itertuples():
        shown = imp.loc[imp["version"] == row.model_version_id, "score"]
        assert row.shown_scored == int(shown.notna().sum())
        if row.shown_scored:
            assert row.shown_mean_score == pytest.approx(shown.mean())
        listed = dis.loc[(dis["version"] == row.model_version_id) & dis["attributed"], "score"]
        assert row.listed_scored == int(listed.notna().sum())
        assert row.listed_mean_error == pytest.approx(listed.mean(), nan_ok=True)
    assert errors["shown_scored"].sum() > 0

    everything = raw_dislikes(system)
    high = everything[everything["score"] >= 0.7].groupby("movie_id").size()
    mistakes = queries.list_confident_mistakes(system, limit=5)
    assert list(mistakes["high_score_dislikes"]) == sorted(high, reverse=True)[:5]
    for row in mistakes.itertuples():
        assert row.high_score_dislikes == high[row.movie_id]
        assert row.dislikes == int((everything["movie_id"] == row.movie_id).sum())


@pytest.mark.parametrize("versions,reasons", FILTERS)
def test_genres_and_scores_answer_every_filter_on_the_lists_day(sample, versions, reasons):
    system, built = sample
    start, end = built["start"] + timedelta(days=3), built["end"] - timedelta(days=2)
    dis = in_window(raw_dislikes(system), start, end, versions, reasons)
    assert len(dis) > 0

    matrix = queries.list_reason_genre(system, start, end, versions, reasons, top_genres=1000)
    per_pair = Counter((r.reason, g) for r in dis.itertuples() for g in dict.fromkeys(r.genres))
    assert {(r.reason, r.genre): r.dislikes for r in matrix.itertuples()} == dict(per_pair)

    histogram = queries.list_score_histogram(system, start, end, versions, reasons)
    known = dis[dis["score"].notna()]
    buckets = Counter(zip(known["version"], known["score"].map(lambda s: min(int(s * 10), 9))))
    assert {(r.model_version_id, r.bucket): r.dislikes for r in histogram.itertuples()} == dict(buckets)
    # The panels of a page agree: the histogram holds the dislikes the mean errors average.
    errors = queries.list_error_by_version(system, start, end, versions, reasons)
    assert histogram.groupby("model_version_id")["dislikes"].sum().to_dict() == {
        r.model_version_id: r.scored for r in errors.itertuples() if r.scored
    }
    imp = in_window(raw_impressions(system), start, end, versions)  # (no reason on an impression)
    for row in errors.itertuples():
        shown = imp.loc[imp["version"] == row.model_version_id, "score"]
        assert (row.shown_scored, row.shown_mean_score) == (
            int(shown.notna().sum()),
            pytest.approx(shown.mean(), nan_ok=True),
        )


def test_a_dislike_after_midnight_counts_in_genres_and_scores_on_its_lists_day(make_system, clock):
    system = make_system()
    system.add_movies([{"movie_id": m, "title": f"Film {m}", "genres": ["Horror"]} for m in (1, 2)])
    with write_transaction(system.engine) as conn:
        add_bare_versions(conn, 1)
    shown_day = date(2026, 11, 1)
    clock.moment = datetime.combine(shown_day, time(23, 50))
    shown = system.record_recommendation_set(7, [1, 2], model_version_id=1)
    clock.moment = datetime.combine(shown_day + timedelta(days=1), time(0, 10))
    system.save_dislike(7, 1, recommendation_set_id=shown, reason="wrong_genre", predicted_score=0.85)
    for day, expected in ((shown_day, 1), (shown_day + timedelta(days=1), 0)):
        matrix = queries.list_reason_genre(system, day, day, (1,), ("wrong_genre",))
        histogram = queries.list_score_histogram(system, day, day, (1,), ("wrong_genre",))
        reasons = queries.list_reason_counts(system, day, day, (1,), ("wrong_genre",))
        assert int(matrix["dislikes"].sum()) == int(histogram["dislikes"].sum()) == expected
        assert int(reasons["dislikes"].sum()) == expected  # the distribution beside them agrees
    assert queries.list_score_histogram(system, shown_day, shown_day)["bucket"].tolist() == [8]


def test_versions_and_comparison_equal_a_recount(sample):
    system, _ = sample
    dis, imp = raw_dislikes(system), raw_impressions(system)
    versions = queries.list_versions(system)
    assert list(versions["version_id"]) == [v["version_id"] for v in system.list_model_versions()]
    for row in versions.itertuples():
        n = int((imp["version"] == row.version_id).sum())
        x = int((dis["attributed"] & (dis["version"] == row.version_id)).sum())
        assert (row.impressions, row.dislikes) == (n, x)
        assert row.enough == (n >= system.settings.min_impressions_for_rate)
        if n:
            assert row.rate == pytest.approx(x / n)
    comparison = queries.compare_versions(system, 1, 2)
    reference = system.compare_model_versions(1, 2)
    assert comparison["p_value"] == pytest.approx(reference["p_value"])
    assert comparison["verdict"] == reference["verdict"]
    online = comparison["online"].set_index("version_id")
    for side, version in (("a", 1), ("b", 2)):
        assert online.loc[version, "rate"] == pytest.approx(reference[side]["online"]["rate"])
        assert online.loc[version, "impressions"] == int((imp["version"] == version).sum())
    assert comparison["difference"] == pytest.approx(online.loc[2, "rate"] - online.loc[1, "rate"])
    assert set(comparison["weights"]["feature"]) == set(reference["weights"])


def test_a_version_compared_with_itself_differs_by_nothing(sample):
    system, _ = sample
    comparison = queries.compare_versions(system, 2, 2)
    assert list(comparison["offline"].columns) == ["metric", "v2 (A)", "v2 (B)", "difference"]
    assert (comparison["weights"]["difference"] == 0).all()
    assert comparison["difference"] == 0


def test_latest_dislikes_are_the_newest_rows(sample):
    system, built = sample
    latest = lookups.list_latest_dislikes(
        system, built["start"], built["end"], (2,), ("wrong_genre",), limit=7
    )
    dis = raw_dislikes(system)
    dis = dis[(dis["version"] == 2) & (dis["reason"] == "wrong_genre")]
    expected = dis.sort_values(["created_at", "dislike_id"], ascending=False).head(7)
    assert list(latest["dislike_id"]) == list(expected["dislike_id"])
    assert list(latest["feedback_text"]) == list(expected["feedback_text"])


def test_the_most_disliked_films_are_the_windows_dislikes_counted_by_film(sample):
    system, built = sample
    dis = raw_dislikes(system)
    start, end = built["start"] + timedelta(days=3), built["end"] - timedelta(days=2)
    made = dis["created_at"].dt.date
    for versions, reasons in (
        ((), ()),
        ((2,), ()),
        ((), ("wrong_genre", "poor_quality")),
        ((0, 1), ("other",)),
    ):
        ranked = lookups.list_disliked_films(system, start, end, versions, reasons, limit=8)
        # By the day each was made (as the latest dislikes), the filters of the sidebar.
        mine = dis[(made >= start) & (made <= end)]
        if versions:
            mine = mine[mine["version"].isin(versions)]
        if reasons:
            mine = mine[mine["reason"].isin(reasons)]
        assert ranked["counted"] == len(mine) and not ranked["capped"]
        counts = mine.groupby("movie_id").size()
        expected = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:8]
        films = ranked["films"]
        assert list(zip(films["movie_id"], films["dislikes"], strict=True)) == expected, (versions, reasons)
        for row in films.itertuples():
            of_film = mine[mine["movie_id"] == row.movie_id]
            given = of_film["reason"].value_counts()
            assert row.top_reason_dislikes == given.max()
            assert row.top_reason == min(r for r, n in given.items() if n == given.max())
            assert row.share == pytest.approx(len(of_film) / len(mine))
            known = of_film["score"].dropna()
            if len(known):
                assert row.mean_predicted_score == pytest.approx(known.mean())
            else:
                assert pd.isna(row.mean_predicted_score)
    # Only the newest ``read`` are ranked when the window holds more, and it says so.
    few = lookups.list_disliked_films(system, start, end, read=50)
    newest = dis[(made >= start) & (made <= end)].sort_values(["created_at", "dislike_id"]).tail(50)
    assert few["capped"] and few["counted"] == 50
    assert int(few["films"]["dislikes"].iloc[0]) == int(newest.groupby("movie_id").size().max())
    # Exactly as many as are read: all of them, not capped.
    window = int(((made >= start) & (made <= end)).sum())
    whole = lookups.list_disliked_films(system, start, end, read=window)
    assert whole["counted"] == window and not whole["capped"]
    assert lookups.list_disliked_films(system, start, end, read=window - 1)["capped"]
    empty = lookups.list_disliked_films(system, date(2001, 1, 1), date(2001, 1, 7))
    assert empty["films"].empty and empty["counted"] == 0 and not empty["capped"]


def test_inbox_evidence_equals_the_users_dislikes_of_the_feature(sample):
    system, _ = sample
    inbox = lookups.list_adjustment_inbox(system, feature="genre", limit=50)
    assert len(inbox) == 50 and set(inbox["feature_type"]) == {"genre"}
    assert list(inbox["created_at"]) == sorted(inbox["created_at"], reverse=True)
    dis = raw_dislikes(system)
    for row in inbox.head(10).itertuples():
        mine = dis[dis["user_id"] == row.user_id]
        blaming = mine[["genre" in BLAMED[why] for why in mine["reason"]]]  # the reasons that blame genres
        assert row.evidence_dislikes == sum(row.feature_value in g for g in blaming["genres"])
    strong = lookups.list_adjustment_inbox(system, min_evidence=4, limit=500)
    assert len(strong) and (strong["evidence_dislikes"] >= 4).all()
    assert lookups.list_adjustment_inbox(system, reason="other").empty  # "other" proposes nothing


@pytest.mark.parametrize(
    "shift,expected",
    [
        pytest.param(0.0, list(range(1, 11)), id="no-change"),
        pytest.param(-50.0, list(range(3, 13)), id="feature-drops-out"),
        pytest.param(50.0, [1, 2, 14, *range(3, 10)], id="feature-climbs"),
    ],
)
def test_rerank_moves_only_films_with_the_feature(shift, expected):
    candidates = pd.DataFrame(
        {
            "movie_id": range(1, 15),
            "title": [f"F{i}" for i in range(1, 15)],
            "score": [0.95 - i * 0.05 for i in range(14)],
            "has_feature": [i in (1, 2, 14) for i in range(1, 15)],
        }
    )
    before, after = lookups.rerank(candidates, shift, k=10)
    assert list(before["movie_id"]) == list(range(1, 11))
    assert list(after["movie_id"]) == expected
    assert list(after["rank"]) == list(range(1, 11))
    plain = after[~after["has_feature"]].set_index("movie_id")["score"]
    assert plain.to_dict() == candidates.set_index("movie_id")["score"].reindex(plain.index).to_dict()


def test_preview_scores_with_the_active_model_and_shifts_the_feature(sample):
    system, _ = sample
    adjustment = lookups.list_adjustment_inbox(system, feature="genre", limit=1).iloc[0]
    preview = lookups.preview_adjustment(system, int(adjustment.adjustment_id), magnitude=-1.0)
    assert preview["lists"] == 5 and preview["candidates"] > 10
    assert preview["weight_after"] == pytest.approx(max(preview["weight_before"] - 1.0, 0.1))
    scored = {
        s["movie_id"]: s["predicted_score"]
        for s in system.score_movies(int(adjustment.user_id), [int(m) for m in preview["before"]["movie_id"]])
    }
    assert list(preview["before"]["score"]) == pytest.approx(
        [scored[m] for m in preview["before"]["movie_id"]]
    )
    assert list(preview["before"]["score"]) == sorted(preview["before"]["score"], reverse=True)
    # Films with the feature fall, the rest keep their scores; what left had the feature.
    assert preview["leaving"]["has_feature"].all()
    assert not preview["entering"]["has_feature"].any()
    assert len(preview["leaving"]) == len(preview["entering"])


def test_effects_user_lists_and_audit_after_an_approval(sample):
    system, built = sample
    row = lookups.list_adjustment_inbox(system, user_id=3, limit=1).iloc[0]
    system.approve_adjustment(int(row.adjustment_id), "approver@test")
    effects = lookups.get_adjustment_effects(system, 3)
    effect = effects.set_index("adjustment_id").loc[int(row.adjustment_id)]
    kind, value = row.feature_type, row.feature_value
    with system.engine.connect() as conn:
        shown = conn.execute(
            select(impressions.c.shown_at, movies.c.genres, movies.c.cast, movies.c.franchise)
            .join(movies, movies.c.movie_id == impressions.c.movie_id)
            .where(impressions.c.user_id == 3)
        ).all()
    carrying = [r for r in shown if lookups.has_feature(r._mapping, kind, value)]
    assert effect["impressions_before"] + effect["impressions_after"] == len(carrying)
    dis = raw_dislikes(system)
    mine = dis[(dis["user_id"] == 3) & dis["attributed"]]
    assert effect["dislikes_before"] + effect["dislikes_after"] == sum(
        lookups.has_feature(r, kind, value) for r in mine.to_dict("records")
    )

    lists = lookups.list_user_lists(system, 3, sets=4)
    assert lists["recommendation_set_id"].nunique() == 4
    disliked = set(zip(mine["recommendation_set_id"], mine["movie_id"]))
    for r in lists.itertuples():
        assert r.disliked == ((r.recommendation_set_id, r.movie_id) in disliked)

    today = system.now().date()
    audit = lookups.list_audit(system, today, today, actor="approver@test")
    with system.engine.connect() as conn:
        expected = (
            conn.execute(
                select(audit_log.c.audit_id)
                .where(audit_log.c.actor == "approver@test")
                .order_by(audit_log.c.audit_id.desc())
            )
            .scalars()
            .all()
        )
    assert list(audit["audit_id"]) == expected
    facets = lookups.list_audit_facets(system)
    assert "adjustment.approved" in facets["actions"]
    with system.engine.connect() as conn:  # the database's own order (its collation), not Python's
        for name, column in (("actions", audit_log.c.action), ("actors", audit_log.c.actor)):
            assert facets[name] == conn.execute(select(column).distinct().order_by(column)).scalars().all()


def test_preview_leaves_out_the_films_the_user_disliked(sample):
    system, _ = sample
    adjustment = lookups.list_adjustment_inbox(system, limit=1).iloc[0]
    user = int(adjustment.user_id)
    preview = lookups.preview_adjustment(system, int(adjustment.adjustment_id))
    with system.engine.connect() as conn:
        latest = (
            select(recommendation_sets.c.recommendation_set_id)
            .where(recommendation_sets.c.user_id == user)
            .order_by(recommendation_sets.c.created_at.desc())
            .limit(5)
        )
        shown = set(
            conn.execute(
                select(impressions.c.movie_id).where(impressions.c.recommendation_set_id.in_(latest))
            )
            .scalars()
            .all()
        )
    dis = raw_dislikes(system)
    disliked = set(dis.loc[dis["user_id"] == user, "movie_id"])
    assert shown & disliked  # the sample's users dislike what they were shown
    assert preview["candidates"] == len(shown - disliked)
    ranked = set(preview["before"]["movie_id"]) | set(preview["after"]["movie_id"])
    assert ranked <= shown - disliked


def test_retrain_status_names_the_job_under_way_and_the_newest_candidate(sample):
    system, _ = sample
    status = queries.get_retrain_status(system)
    candidates = [v["version_id"] for v in system.list_model_versions() if v["status"] == "candidate"]
    assert status["job"] is None and status["candidate_version_id"] == max(candidates)
    job = system.request_retrain("ops@test")
    try:
        status = queries.get_retrain_status(system)
        assert status["job"]["job_id"] == job["job_id"] and status["job"]["status"] == "queued"
        assert status["candidate_version_id"] == max(candidates)
    finally:  # the module's other tests expect no job under way
        with write_transaction(system.engine) as conn:
            conn.execute(delete(retrain_jobs).where(retrain_jobs.c.job_id == job["job_id"]))


def test_user_profile_matches_the_systems_reads(sample):
    system, _ = sample
    profile = lookups.get_user_profile(system, 1)
    assert profile["patterns"] == system.get_dislike_pattern_analysis(1)
    assert list(profile["dislikes"]["dislike_id"]) == [
        d["dislike_id"] for d in system.get_user_dislikes(1, 500)
    ]
    recent = lookups.list_recent_users(system, limit=5)
    assert len(recent) == len(set(recent)) == 5


def _crafted_days(system, user_id: int, per_day: list[tuple[int, int]], first: date) -> None:
    """Record, per day, one list of ``n`` films served by v3 of which ``x`` were disliked."""
    # Written by a system whose clock stands at the end of those days: times ahead are refused.
    system = FeedbackSystem(
        system.engine, system.settings, Clock(datetime.combine(first + timedelta(days=len(per_day)), time(9)))
    )
    for offset, (n, x) in enumerate(per_day):
        at = datetime.combine(first + timedelta(days=offset), datetime.min.time()) + timedelta(hours=9)
        items = [{"movie_id": m, "predicted_score": 0.8} for m in range(1, n + 1)]
        set_id = system.record_recommendation_set(user_id, items, model_version_id=3, shown_at=at)
        for movie_id in range(1, x + 1):
            system.record_dislike(
                created_at=at,
                user_id=user_id,
                movie_id=movie_id,
                movie_title="",
                recommendation_set_id=set_id,
                predicted_score=0.8,
                reason="irrelevant",
            )


@pytest.mark.parametrize(
    "latest,status",
    [
        pytest.param((60, 12), "worse", id="worse"),
        pytest.param((60, 2), "steady", id="steady"),
        pytest.param((10, 9), "insufficient", id="too-few-impressions"),
    ],
)
def test_latest_day_check(sample, latest, status):
    system, _ = sample
    first = FAR + timedelta(days=30 * ["worse", "steady", "insufficient"].index(status))
    user = 5000 + first.toordinal() % 1000
    _crafted_days(system, user, [(60, 2)] * 7 + [latest], first)
    end = first + timedelta(days=7)
    # Judged the morning after: the latest day has ended.
    after = FeedbackSystem(
        system.engine, system.settings, Clock(datetime.combine(end, time(9)) + timedelta(days=1))
    )
    check = queries.get_latest_day_check(after, end, versions=(3,))
    assert check["status"] == status
    assert check["latest_day"] == end
    assert (check["latest"]["events"], check["latest"]["trials"]) == (latest[1], latest[0])
    assert (check["baseline"]["events"], check["baseline"]["trials"]) == (14, 420)
    if status == "insufficient":
        rates = queries.list_daily_rates(system, end, end, (3,))
        assert not rates["enough"].any()


def test_latest_day_check_judges_the_latest_complete_day_not_today(sample):
    system, _ = sample
    first = FAR + timedelta(days=120)
    today = first + timedelta(days=7)
    # Seven complete days at 10%, and today's list with only the dislikes that arrived so far.
    _crafted_days(system, 5900, [(60, 6)] * 7 + [(60, 1)], first)
    morning = FeedbackSystem(system.engine, system.settings, Clock(datetime.combine(today, time(10))))
    check = queries.get_latest_day_check(morning, today, versions=(3,))
    assert check["latest_day"] == today - timedelta(days=1)
    assert (check["latest"]["events"], check["latest"]["trials"]) == (6, 60)
    assert check["status"] == "steady"
    assert check["today"] == today
    assert (check["today_so_far"]["events"], check["today_so_far"]["trials"]) == (1, 60)
    # Just after midnight yesterday's lists are still collecting dislikes: the day before is judged.
    night = FeedbackSystem(system.engine, system.settings, Clock(datetime.combine(today, time(0, 30))))
    assert queries.get_latest_day_check(night, today, versions=(3,))["latest_day"] == today - timedelta(
        days=2
    )
    # A window that ends before today: no "today so far".
    earlier = queries.get_latest_day_check(morning, today - timedelta(days=1), versions=(3,))
    assert earlier["latest_day"] == today - timedelta(days=1) and earlier["today_so_far"] is None


@pytest.mark.parametrize(
    ("now", "settled"),
    [
        (datetime(2026, 11, 30, 0, 0), date(2026, 11, 28)),  # yesterday has only just ended
        (datetime(2026, 11, 30, 5, 59, 59), date(2026, 11, 28)),
        (datetime(2026, 11, 30, 6, 0), date(2026, 11, 29)),  # exactly DAY_SETTLES after it ended
        (datetime(2026, 11, 30, 23, 59, 59), date(2026, 11, 29)),  # today never
        (datetime(2027, 1, 1, 6, 0), date(2026, 12, 31)),
    ],
)
def test_a_day_settles_six_hours_after_it_ends(now, settled):
    assert queries.last_settled_day(now) == settled


def test_no_rate_is_enough_without_impressions_even_with_no_minimum(sample):
    system, built = sample
    # FEEDBACK_MIN_IMPRESSIONS_FOR_RATE=0 is allowed: a rate still needs an impression.
    zero = FeedbackSystem(system.engine, system.settings.with_(min_impressions_for_rate=0), system.now)
    start = built["start"]
    overview = queries.get_overview(zero, start, start)
    assert overview["previous"]["impressions"] == 0  # the day before the sample
    assert overview["previous"]["dislike_rate"]["enough"] is False
    assert overview["current"]["dislike_rate"]["enough"] is True
    check = queries.get_latest_day_check(zero, start)  # nothing in the 7 days before it
    assert check["status"] == "insufficient" and check["p_value"] is None
    assert queries.rate_fields(0, 0, min_trials=0)["enough"] is False


@pytest.mark.parametrize(
    "events,trials,min_trials,rate,enough",
    [
        (3, 30, 30, 0.1, True),
        (3, 29, 30, 3 / 29, False),
        (0, 0, 0, None, False),
        (0, 1, 0, 0.0, True),
        (5, 3, 0, None, False),  # more dislikes than impressions: no rate, never a clamped 100%
        (2, 0, 30, None, False),
    ],
)
def test_rate_fields_are_enough_only_on_real_impressions(events, trials, min_trials, rate, enough):
    got = queries.rate_fields(events, trials, min_trials)
    assert (got["events"], got["trials"], got["rate"], got["enough"]) == (events, trials, rate, enough)
    assert (got["ci_low"] is None) == (rate is None)


def test_more_dislikes_than_impressions_give_no_rate_and_never_raise(make_system):
    system = make_system()
    day = date(2026, 10, 30)
    with write_transaction(system.engine) as conn:
        add_bare_versions(conn, 2)
        # Broken aggregates: v1 counts 50 dislikes of 40 impressions on the latest day.
        shown = [(day - timedelta(days=d), v, 400 if d else 40) for d in range(8) for v in (1, 2)]
        conn.execute(
            insert(daily_impressions),
            [{"day": d, "model_version_id": v, "impressions": n} for d, v, n in shown],
        )
        conn.execute(
            insert(daily_dislikes),
            [
                {
                    "day": d,
                    "model_version_id": v,
                    "reason": "other",
                    "attributed": 1,
                    "dislikes": x,
                    "score_sum": 0.0,
                }
                for d, v, n in shown
                for x in [50 if (d, v) == (day, 1) else n // 10]
            ],
        )
    rates = queries.list_daily_rates(system, day, day)
    broken = rates.set_index("model_version_id").loc[1]
    assert (broken["dislikes"], broken["impressions"]) == (50, 40)
    assert pd.isna(broken["rate"]) and pd.isna(broken["ci_low"]) and not broken["enough"]
    assert rates.set_index("model_version_id").loc[2, "enough"]
    overview = queries.get_overview(system, day, day)
    assert overview["current"]["dislike_rate"]["rate"] == pytest.approx(54 / 80)  # both versions
    assert queries.get_overview(system, day, day, versions=(1,))["current"]["dislike_rate"]["rate"] is None
    check = queries.get_latest_day_check(system, day, versions=(1,))
    assert check["status"] == "inconsistent" and check["p_value"] is None
    assert check["latest"]["rate"] is None and not check["latest"]["enough"]
    assert queries.get_latest_day_check(system, day, versions=(2,))["status"] == "steady"
    versions = queries.list_versions(system).set_index("version_id")
    assert versions.loc[1, "dislikes"] == 50 + 7 * 40 and versions.loc[1, "impressions"] == 40 + 7 * 400
    assert versions.loc[1, "enough"]  # all time the counts are possible
    # All time, too many dislikes for v2: the comparison shows counts, no rate and no test.
    with write_transaction(system.engine) as conn:
        conn.execute(
            daily_dislikes.update()
            .where(daily_dislikes.c.model_version_id == 2)
            .values(dislikes=daily_dislikes.c.dislikes + 1000)
        )
    versions = queries.list_versions(system).set_index("version_id")
    assert pd.isna(versions.loc[2, "rate"]) and not versions.loc[2, "enough"]
    comparison = queries.compare_versions(system, 1, 2)
    assert comparison["p_value"] is None and comparison["difference"] is None and comparison["test"] is None
    impossible = 8 * 1000 + 4 + 7 * 40
    assert (
        comparison["verdict"]
        == f"no verdict: v2 counts more dislikes ({impossible:,}) than impressions (2,840)"
    )
    online = comparison["online"].set_index("version_id")
    assert pd.isna(online.loc[2, "rate"]) and not online.loc[2, "enough"] and online.loc[1, "enough"]


def test_few_dislikes_are_tested_exactly_and_the_interval_agrees(make_system):
    system = make_system(min_impressions_for_rate=0)
    catalogue = [{"movie_id": m, "title": f"Film {m}", "genres": ["Drama"]} for m in range(1, 101)]
    system.add_movies(catalogue)
    with write_transaction(system.engine) as conn:
        add_bare_versions(conn, 3)
    for user in range(1, 11):  # v1: 0 dislikes in 1,000 impressions
        items = [{"movie_id": m, "predicted_score": 0.5} for m in range(1, 101)]
        system.record_recommendation_set(user, items, model_version_id=1)
    items = [{"movie_id": m, "predicted_score": 0.5} for m in range(1, 31)]
    set_id = system.record_recommendation_set(99, items, model_version_id=2)  # v2: 1 in 30
    system.record_dislike(
        user_id=99, movie_id=1, recommendation_set_id=set_id, reason="other", predicted_score=0.5
    )
    comparison = queries.compare_versions(system, 1, 2)
    # Fisher's exact test: 30 / 1030. The pooled z-test said p = 7.6e-9 beside an interval
    # from -3.1 to +9.8 points.
    assert comparison["test"] == "fisher_exact"
    assert comparison["p_value"] == pytest.approx(30 / 1030)
    assert 0 < comparison["difference_low"] < comparison["difference"] < comparison["difference_high"]
    assert comparison["verdict"] == "v2's dislike rate is 3.3 points higher, p = 0.029"
    # With no minimum, a rate still needs impressions: v3 never served.
    versions = queries.list_versions(system).set_index("version_id")
    assert versions.loc[3, "impressions"] == 0 and not versions.loc[3, "enough"]
    assert versions.loc[2, "enough"] and versions.loc[1, "enough"]
    assert system.compare_model_versions(2, 3)["b"]["online"]["enough_data"] is False


def test_empty_and_missing_databases(tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'empty.db'}")
    system = FeedbackSystem.from_settings(settings)
    try:
        assert queries.get_database_state(system)["status"] == "missing"
        system.init_feedback_tables()
        assert queries.get_database_state(system)["status"] == "empty"
        day = date(2026, 11, 1)
        assert queries.get_data_bounds(system) == {"first_day": None, "last_day": None}
        assert queries.get_overview(system, day, day)["current"]["dislike_rate"]["rate"] is None
        assert queries.get_latest_day_check(system, day)["status"] == "no_data"
        for fn, args in [
            (queries.list_daily_rates, (day, day)),
            (queries.list_version_activations, ()),
            (queries.list_reason_counts, (day, day)),
            (queries.list_reason_trend, (day, day)),
            (queries.list_reason_genre, (day, day)),
            (queries.list_score_histogram, (day, day)),
            (queries.list_error_by_version, (day, day)),
            (queries.list_confident_mistakes, ()),
            (queries.list_versions, ()),
            (queries.list_job_history, ()),
            (lookups.list_latest_dislikes, (day, day)),
            (lookups.list_adjustment_inbox, ()),
            (lookups.list_user_lists, (1,)),
            (lookups.get_adjustment_effects, (1,)),
            (lookups.list_audit, (day, day)),
        ]:
            assert fn(system, *args).empty, fn.__name__
        assert queries.get_retrain_status(system)["job"] is None
        assert lookups.list_recent_users(system) == []
        assert not math.isnan(len(queries.list_filter_versions(system)))
    finally:
        system.close()


def test_version_activations_come_from_the_registry_and_the_audit_log(sample):
    system, _ = sample
    before = queries.list_version_activations(system)
    assert set(before["model_version_id"]) == {1, 2}
    clock = system._clock
    clock.advance(hours=1)
    system.activate_model_version(1, "admin@test")  # a rollback, audited as model.rollback
    clock.advance(hours=1)
    system.activate_model_version(2, "admin@test")
    after = queries.list_version_activations(system)
    # The sample inserted its first activations without audit records, and the registry keeps
    # only the latest: what is left is the audited rollback and re-activation.
    assert list(after["model_version_id"]) == [1, 2]
    assert list(after["activated_at"]) == [pd.Timestamp(SAMPLE_END + timedelta(hours=h)) for h in (1, 2)]
    # Each says how it came: the chart drew a rollback as "v1 activated".
    assert list(after["label"]) == ["v1 activated (rollback)", "v2 activated"]
    clock.advance(hours=1)
    system.activate_model_version(1, "admin@test")
    clock.advance(hours=1)
    system.activate_model_version(2, "admin@test")
    assert list(queries.list_version_activations(system)["label"])[-2:] == [
        "v1 activated (rollback)",
        "v2 activated again",
    ]
    # Two within one second keep their order (v1 is active at the end, and last on the chart).
    clock.advance(hours=1)
    system.activate_model_version(1, "admin@test")
    clock.advance(seconds=0.4)
    system.activate_model_version(2, "admin@test")
    clock.advance(seconds=0.4)
    system.activate_model_version(1, "admin@test")
    assert list(queries.list_version_activations(system)["label"])[-3:] == [
        "v1 activated (rollback)",
        "v2 activated again",
        "v1 activated (rollback)",
    ]


# ---------------------------------------------------------------- merged reads agree with the system's


def test_a_users_weights_show_the_sum_a_limit_holds(system):
    system.add_movies([{"movie_id": 10, "title": "Gore", "genres": ["Horror"], "cast": ["A"]}])
    system.save_dislike(1, 10, "Gore", reason="wrong_genre")
    (proposal,) = system.list_adjustments(user_id=1)
    system.approve_adjustment(proposal["adjustment_id"], "ana", magnitude=-1.0)
    weights = lookups.get_user_profile(system, 1)["weights"]
    row = weights[weights["feature_value"] == "Horror"].iloc[0]
    assert (row.weight, row.applied_sum) == (pytest.approx(0.1), -1.0)  # the weight alone said 0.1


def test_the_version_list_carries_each_versions_online_rate_as_the_comparison_does(sample):
    system, _ = sample
    listed = {v["version_id"]: v["online"] for v in system.list_model_versions()}
    compared = system.compare_model_versions(1, 2)
    for side in ("a", "b"):
        version = compared[side]
        online = version["online"]
        assert listed[version["version_id"]] == {
            k: online[k] for k in ("events", "trials", "rate", "ci_low", "ci_high", "enough_data")
        }
    assert any(o["trials"] > 0 for o in listed.values())  # the sample's versions served


def test_each_reason_has_its_own_dislike_rate_of_the_windows_impressions(sample):
    system, _ = sample
    bounds = queries.get_data_bounds(system)
    window = (bounds["first_day"], bounds["last_day"])
    counts = queries.list_reason_counts(system, *window)
    overview = queries.get_overview(system, *window)["current"]
    # Of the dislikes on shown lists, per impression of the same window (the share is of dislikes).
    assert counts["on_lists"].sum() == overview["attributed_dislikes"]
    assert set(counts["impressions"]) == {overview["impressions"]}
    for row in counts.itertuples():
        assert row.rate == pytest.approx(row.on_lists / row.impressions)
        low, high = wilson_interval(row.on_lists, row.impressions)
        assert (row.ci_low, row.ci_high) == (pytest.approx(low), pytest.approx(high))


def test_user_profile_frames_are_the_systems_reads(sample):
    system, _ = sample
    for user in (1, 2, 424242):  # the last one has nothing at all
        profile = lookups.get_user_profile(system, user)
        # What the page built from FeedbackSystem's own reads before they were merged.
        dislikes = pd.DataFrame(
            system.get_user_dislikes(user, limit=500),
            columns=["created_at", "dislike_id", "movie_id", "movie_title", "reason", "predicted_score"]
            + ["feedback_text", "recommendation_set_id", "genres", "cast", "franchise"],
        )
        dislikes["created_at"] = frames.time_column(dislikes["created_at"])
        for col in ("genres", "cast"):
            dislikes[col] = [", ".join(v) if isinstance(v, list) else v for v in dislikes[col]]
        pd.testing.assert_frame_equal(profile["dislikes"], dislikes, check_exact=True)
        weights = pd.DataFrame(
            [
                {"feature_type": kind, "feature_value": value, "weight": weight}
                for kind, values in system.get_effective_weights(user).items()
                for value, weight in values.items()
            ],
            columns=["feature_type", "feature_value", "weight"],
        )
        pd.testing.assert_frame_equal(
            profile["weights"].drop(columns="applied_sum"), weights, check_exact=True
        )
        # Beside each weight, the sum it comes from (a sum past a limit is held there).
        for row in profile["weights"].itertuples():
            held = min(max(1.0 + row.applied_sum, 0.1), 2.0)
            assert row.weight == pytest.approx(held), row
        assert profile["patterns"] == system.get_dislike_pattern_analysis(user)
        assert list(profile["adjustments"]["adjustment_id"]) == [
            a["adjustment_id"] for a in system.list_adjustments(status=None, user_id=user, limit=500)
        ]


def test_preview_counts_lists_weights_and_evidence_as_the_system_does(sample):
    system, _ = sample
    inbox = lookups.list_adjustment_inbox(system, status=None, limit=500)
    # One adjustment per feature type, of users with liked films among the evidence.
    picked = inbox.drop_duplicates("feature_type").head(3)
    assert len(picked) >= 2
    for row in picked.itertuples():
        user, key = int(row.user_id), (row.feature_type, row.feature_value)
        for lists in (5, 2):
            preview = lookups.preview_adjustment(system, int(row.adjustment_id), lists=lists)
            with system.engine.connect() as conn:
                sets = conn.execute(
                    select(func.count()).where(recommendation_sets.c.user_id == user)
                ).scalar_one()
            assert preview["lists"] == min(lists, sets)
        evidence = system.get_feature_evidence(user).get(key, {})
        assert preview["evidence_dislikes"] == evidence.get("dislikes", 0)
        assert preview["evidence_likes"] == evidence.get("likes", 0)
        assert preview["last_disliked_at"] == evidence.get("last_disliked_at")
        current = system.get_effective_weights(user).get(key[0], {}).get(key[1], 1.0)
        assert preview["weight_before"] == pytest.approx(current)
    assert any(
        lookups.preview_adjustment(system, int(r.adjustment_id))["evidence_likes"] for r in inbox.itertuples()
    )
    # Once applied, the feature's weight before the preview is the user's effective weight.
    row = lookups.list_adjustment_inbox(system, user_id=9, limit=1).iloc[0]
    system.approve_adjustment(int(row.adjustment_id), "approver@test")
    weight = system.get_effective_weights(9)[row.feature_type][row.feature_value]
    assert weight != 1.0
    assert lookups.preview_adjustment(system, int(row.adjustment_id))["weight_before"] == pytest.approx(
        weight
    )


def test_preview_of_a_user_without_lists(sample):
    system, _ = sample
    user = 6100  # nobody else's
    system.record_dislike(
        created_at=SAMPLE_END,
        user_id=user,
        movie_id=4,
        movie_title="",
        predicted_score=0.6,
        reason="wrong_genre",
    )
    adjustment = lookups.list_adjustment_inbox(system, status=None, user_id=user, limit=1)
    assert len(adjustment) == 1
    preview = lookups.preview_adjustment(system, int(adjustment["adjustment_id"].iloc[0]))
    assert (preview["lists"], preview["candidates"]) == (0, 0)
    for part in ("before", "after", "leaving", "entering"):
        frame = preview[part]
        assert frame.empty and list(frame.columns) == ["movie_id", "title", "score", "has_feature", "rank"]
        assert frame["rank"].dtype == "int64"


def _rerank_with_iloc(candidates, shift, k):
    """The re-ranking as it was written with DataFrame steps: the reference for its types."""
    ids = candidates["movie_id"].tolist()

    def shifted(p):
        p = min(max(p, 1e-9), 1 - 1e-9)
        return 1 / (1 + math.exp(-(math.log(p / (1 - p)) + shift)))

    def top(scores):
        best = sorted(range(len(ids)), key=lambda i: (-scores[i], ids[i]))[:k]
        ranked = candidates.iloc[best].reset_index(drop=True)
        return ranked.assign(score=[scores[i] for i in best], rank=range(1, len(best) + 1))

    before = candidates["score"].tolist()
    after = [shifted(p) if has else p for p, has in zip(before, candidates["has_feature"].tolist())]
    return top(before), top(after)


@pytest.mark.parametrize("rows", [pytest.param(14, id="fourteen"), pytest.param(0, id="none")])
@pytest.mark.parametrize("shift", [0.0, -3.0])
def test_rerank_keeps_the_candidates_column_types(rows, shift):
    candidates = pd.DataFrame(
        {
            "movie_id": list(range(1, rows + 1)),
            "title": [f"F{i}" for i in range(1, rows + 1)],
            "score": [0.9 - i * 0.05 for i in range(rows)],
            "has_feature": [i % 3 == 0 for i in range(rows)],
        },
        columns=["movie_id", "title", "score", "has_feature"],
    )
    for ranked, expected in zip(
        lookups.rerank(candidates, shift, k=10), _rerank_with_iloc(candidates, shift, 10)
    ):
        pd.testing.assert_frame_equal(ranked, expected, check_exact=True)


@pytest.mark.parametrize("a,b,missing", [(1, 99999, 99999), (99999, 1, 99999), (99998, 99999, 99998)])
def test_comparing_a_missing_version_names_the_first_missing(sample, a, b, missing):
    system, _ = sample
    with pytest.raises(NotFoundError, match=f"model version {missing} not found"):
        system.compare_model_versions(a, b)


def test_compare_a_version_with_itself(sample):
    system, _ = sample
    same = system.compare_model_versions(2, 2)
    assert same["a"]["online"] == same["b"]["online"] and same["difference"]["rate"] == 0
    assert {k: v for k, v in same["a"].items() if k != "online"} == system.get_model_version(2)


def test_retrain_status_and_job_history_are_the_registrys_and_the_jobs(sample):
    system, _ = sample
    status = queries.get_retrain_status(system)
    active, candidate = (
        system.get_active_model_version(),
        system.get_model_version(status["candidate_version_id"]),
    )
    assert status["active_version_id"] == active["version_id"]
    baseline = candidate["metrics"].get("active_on_same_holdout") or active["metrics"]
    for row in status["comparison"].itertuples():
        assert (row.active, row.candidate) == (baseline.get(row.metric), candidate["metrics"].get(row.metric))
    assert status["candidate_note"] == candidate["metrics"]["promotion"]["reason"]
    history = queries.list_job_history(system)
    jobs = system.list_retrain_jobs(50)
    assert list(history["job_id"]) == [j["job_id"] for j in jobs]
    assert [format_ts(t) for t in history["created_at"]] == [j["created_at"] for j in jobs]
    assert list(history["result_version"]) == [
        f"v{j['result_version_id']}" if j["result_version_id"] else "" for j in jobs
    ]


def test_limits_may_be_numpy_integers(sample):
    """Limits are bound as parameters of prebuilt statements: a numpy integer (a widget's or a
    frame's value) is taken like an int, as a literal LIMIT took it."""
    import numpy as np

    system, _ = sample
    assert len(lookups.list_adjustment_inbox(system, limit=np.int64(3))) == 3
    assert len(queries.list_confident_mistakes(system, limit=np.int64(2))) == 2
    assert lookups.list_user_lists(system, 1, sets=np.int64(2))["recommendation_set_id"].nunique() == 2
    adjustment = int(lookups.list_adjustment_inbox(system, limit=1)["adjustment_id"].iloc[0])
    assert lookups.preview_adjustment(system, adjustment, lists=np.int64(2))["lists"] == 2


def test_a_candidate_is_compared_with_the_version_active_when_it_was_trained(make_system):
    """After another version was activated, the candidate's recorded comparison is still with
    the version it was trained against, and says so; without a recorded one, the active
    version's own figures are given, marked as from other examples."""
    system = make_system()

    def version(parent, metrics) -> int:
        return add_version(system, parent, metrics)

    first = version(None, {"auc": 0.60})
    system.activate_model_version(first, "t")
    candidate = version(first, {"auc": 0.65, "active_on_same_holdout": {"auc": 0.61}})
    status = queries.get_retrain_status(system)
    assert (status["candidate_version_id"], status["baseline_version_id"]) == (candidate, first)
    assert status["baseline_on_same_examples"] is True
    auc = status["comparison"].set_index("metric").loc["auc"]
    assert (auc["active"], auc["candidate"]) == (0.61, 0.65)

    assert status["superseded_candidate_id"] is None

    # Promoted over it: the older candidate, trained against the version it replaced, is not
    # offered beside the newer active version, but named as superseded.
    later = version(first, {"auc": 0.70})
    system.activate_model_version(later, "t")
    assert system.get_model_version(candidate)["status"] == "candidate"
    status = queries.get_retrain_status(system)
    assert status["active_version_id"] == later
    assert (status["candidate_version_id"], status["superseded_candidate_id"]) == (None, candidate)
    # Rolled back to the version it was trained against, it is offered again.
    system.activate_model_version(first, "t")
    status = queries.get_retrain_status(system)
    assert (status["candidate_version_id"], status["superseded_candidate_id"]) == (candidate, None)
    # Trained after the active version, against another, it is offered: beside the version it
    # was compared with, not under the active version's name.
    system.activate_model_version(later, "t")
    with write_transaction(system.engine) as conn:
        conn.execute(
            model_versions.update().where(model_versions.c.version_id == candidate).values(status="retired")
        )
    after = version(first, {"auc": 0.65, "active_on_same_holdout": {"auc": 0.61}})
    status = queries.get_retrain_status(system)
    assert (status["candidate_version_id"], status["active_version_id"]) == (after, later)
    assert status["baseline_version_id"] == first  # not the active version's name on its figures
    assert status["comparison"].set_index("metric").loc["auc", "active"] == 0.61
    with write_transaction(system.engine) as conn:  # out of the way of what follows
        conn.execute(
            model_versions.update().where(model_versions.c.version_id == after).values(status="retired")
        )

    newest = version(later, {"auc": 0.66})  # no comparison recorded
    status = queries.get_retrain_status(system)
    assert (status["candidate_version_id"], status["baseline_version_id"]) == (newest, later)
    # A newer candidate trained against a version no longer active does not take its place
    # (it was offered, the newest, beside the active version it was never compared with).
    stale = version(first, {"auc": 0.99})
    assert queries.get_retrain_status(system)["candidate_version_id"] == newest
    with write_transaction(system.engine) as conn:  # out of the way of what follows
        conn.execute(
            model_versions.update().where(model_versions.c.version_id == stale).values(status="retired")
        )
    assert status["baseline_on_same_examples"] is False
    assert status["comparison"].set_index("metric").loc["auc", "active"] == 0.70

    # Recorded on the examples the active version never saw: the candidate's column is its
    # figures on those same examples, not its figures on every example.
    fair = version(
        later,
        {
            "auc": 0.66,
            "active_on_same_holdout": {"auc": 0.58, "held_out": 120},
            "candidate_on_same_holdout": {"auc": 0.63, "held_out": 120, "since": "2026-11-30 12:00:00"},
            "auc_gain": {"auc_a": 0.64, "auc_b": 0.57, "difference": 0.07, "low": 0.01, "high": 0.13},
        },
    )
    status = queries.get_retrain_status(system)
    assert (status["candidate_version_id"], status["baseline_version_id"]) == (fair, later)
    auc = status["comparison"].set_index("metric").loc["auc"]
    assert (auc["active"], auc["candidate"]) == (0.58, 0.63)
    assert (status["compared_examples"], status["compared_since"]) == (120, "2026-11-30 12:00:00")
    # and the AUCs per (user, film) the promotion rule judged, beside those over rows
    per_pair = status["comparison"].set_index("metric").loc["auc_per_user_film"]
    assert (per_pair["active"], per_pair["candidate"]) == (0.57, 0.64)


def test_adjustment_effects_count_dislikes_by_the_catalogues_features(make_system, clock):
    system = make_system(auto_approve=False, min_impressions_for_rate=1)
    catalogue = [{"movie_id": m, "title": f"Film {m}", "genres": ["Drama"]} for m in range(1, 21)]
    catalogue += [{"movie_id": m, "title": f"Film {m}", "genres": ["Comedy"]} for m in range(21, 41)]
    system.add_movies(catalogue)
    system.save_dislike(1, 1, reason="wrong_genre")  # proposes de-emphasising Drama
    proposal = lookups.list_adjustment_inbox(system, user_id=1).set_index("feature_value").loc["Drama"]
    system.approve_adjustment(int(proposal["adjustment_id"]), "approver@test")
    clock.advance(hours=1)
    drama = system.record_recommendation_set(
        1, [{"movie_id": m, "predicted_score": 0.5} for m in range(1, 21)], model_version_id=None
    )
    for m in (2, 3):  # Drama films, sent with the client's own spelling of the genre
        system.save_dislike(1, m, recommendation_set_id=drama, reason="wrong_genre", genres=["drama"])
    comedy = system.record_recommendation_set(
        1, [{"movie_id": m, "predicted_score": 0.5} for m in range(21, 31)], model_version_id=None
    )
    for m in (21, 22, 23):  # Comedy films, sent as if they were Drama
        system.save_dislike(1, m, recommendation_set_id=comedy, reason="wrong_genre", genres=["Drama"])
    effect = lookups.get_adjustment_effects(system, 1).set_index("feature").loc["genre:Drama"]
    assert (effect["impressions_before"], effect["dislikes_before"]) == (0, 0)
    assert (effect["impressions_after"], effect["dislikes_after"]) == (20, 2)
    assert effect["rate_after"] == pytest.approx(2 / 20)


def test_recent_users_are_people_with_live_dislikes(make_system, clock):
    system = make_system()
    system.add_movies([{"movie_id": m, "title": f"Film {m}", "genres": ["Drama"]} for m in (1, 2)])
    system.save_dislike(1, 1, reason="other")
    clock.advance(minutes=1)
    system.save_dislike(2, 1, reason="other")  # user 2: one retracted, one live
    clock.advance(minutes=1)
    retracted = system.save_dislike(2, 2, reason="other")
    clock.advance(minutes=1)
    gone = system.save_dislike(3, 1, reason="other")  # user 3: nothing left
    system.retract_dislike(gone, 3)
    system.retract_dislike(retracted, 2)
    assert lookups.list_recent_users(system) == [2, 1]


def test_audit_details_show_figures_to_four_decimals(make_system):
    from feedback_core.db import write_transaction
    from feedback_core.recording import write_audit

    system = make_system()
    with write_transaction(system.engine) as conn:
        write_audit(
            conn,
            at=system.now(),
            actor="system",
            action="retrain.succeeded",
            entity_type="retrain_job",
            entity_id=1,
            details={
                "auc": 0.5475944991646989,
                "version_id": 3,
                "promoted": False,
                "tiny": 2e-7,
                "zero": 0.0,
            },
        )
    today = system.now().date()
    (details,) = lookups.list_audit(system, today, today)["details"]
    assert details == "auc=0.5476, version_id=3, promoted=False, tiny=2.0e-07, zero=0"


def test_the_overview_counts_the_proposals_waiting_up_to_its_cap(sample, monkeypatch):
    system, built = sample
    with system.engine.connect() as conn:
        proposed = conn.execute(
            select(func.count())
            .select_from(feature_adjustments)
            .where(feature_adjustments.c.status == "proposed")
        ).scalar_one()
    assert proposed > 3
    overview = queries.get_overview(system, built["start"], built["end"])
    assert (overview["proposals_waiting"], overview["proposals_capped"]) == (proposed, False)
    monkeypatch.setattr(queries, "WAITING_CAP", 3)
    overview = queries.get_overview(system, built["start"], built["end"])
    assert (overview["proposals_waiting"], overview["proposals_capped"]) == (3, True)


def test_the_registry_says_what_each_version_was_trained_on(sample):
    system, _ = sample
    versions = queries.list_versions(system).set_index("version_id")
    assert versions["trained_on"].isna().all()  # the sample's versions were recorded without counts
    counts = {
        "positives": 40,
        "negatives_from_ratings": 7,
        "shown_not_disliked": 120,
        "negatives_from_dislikes": 9,
    }
    with write_transaction(system.engine) as conn:
        conn.execute(
            update(model_versions)
            .where(model_versions.c.version_id == 2)
            .values(examples={**counts, "negative_examples": 9, "new_negative_examples": 4, "job_id": 1})
        )
    versions = queries.list_versions(system).set_index("version_id")
    assert (versions.loc[2, "trained_on"], versions.loc[2, "new_dislikes"]) == (176, 4)
    with write_transaction(system.engine) as conn:  # as it was, for the module's other tests
        conn.execute(update(model_versions).where(model_versions.c.version_id == 2).values(examples={}))


def test_two_versions_are_compared_on_the_same_examples_when_one_was_trained_against_the_other(make_system):
    """The Model versions page shows, beside each version's own run, the figures training
    recorded for both on the examples the older one never saw, whichever side each is on."""
    system = make_system()

    def version(parent, metrics) -> int:
        return add_version(system, parent, metrics)

    first = version(None, {"auc": 0.60})
    second = version(
        first,
        {
            "auc": 0.70,  # its own run: not what the comparison shows
            "active_on_same_holdout": {"auc": 0.55, "log_loss": 0.50, "held_out": 300},
            "candidate_on_same_holdout": {"auc": 0.58, "log_loss": 0.47, "held_out": 300},
            "auc_gain": {
                "auc_a": 0.59,
                "auc_b": 0.56,
                "difference": 0.03,
                "low": 0.01,
                "high": 0.05,
                "p_value": 0.004,
            },
        },
    )
    unrelated = version(None, {"auc": 0.65})
    same = queries.same_examples_comparison(system, first, second)
    assert (same["trained"], same["examples"]) == (second, 300)
    table = same["offline"].set_index("metric")
    assert list(table.columns) == [f"v{first}", f"v{second}", "difference"]
    assert tuple(table.loc["auc"]) == pytest.approx((0.55, 0.58, 0.03))
    assert tuple(table.loc["auc_per_user_film"]) == pytest.approx((0.56, 0.59, 0.03))
    assert same["gain"]["difference"] == pytest.approx(0.03)
    # The other way round: A is the one trained, B's figures and gain are the older one's.
    back = queries.same_examples_comparison(system, second, first)
    table = back["offline"].set_index("metric")
    assert tuple(table.loc["auc"]) == pytest.approx((0.58, 0.55, -0.03))
    assert tuple(table.loc["auc_per_user_film"]) == pytest.approx((0.59, 0.56, -0.03))
    assert (back["gain"]["difference"], back["gain"]["low"], back["gain"]["high"]) == pytest.approx(
        (-0.03, -0.05, -0.01)
    )
    assert queries.same_examples_comparison(system, first, unrelated) is None
    assert queries.same_examples_comparison(system, second, unrelated) is None
