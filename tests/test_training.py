"""Training data and what a retrain learns from dislikes.

A user's aversions are taken as they stood when the model scored each example (its list's
shown time), so a retrain learns how earlier dislikes predict the next: strongly where people
keep disliking what they disliked before, hardly where dislikes fall at random.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from helpers import count
from loop_support import ALL_FILMS, COMEDY, HORROR, dislike, trained_world
from sqlalchemy import func, select

from feedback_core import FeedbackSystem, Settings, model, training
from feedback_core.db import read_connection
from feedback_core.model import FEATURES, prior_model
from feedback_core.schema import audit_log, model_versions, movies, ratings

USERS = range(200, 240)
DAYS = 6


def _load(system):
    """Retrain (so the pending dislikes become used examples) and read the training data."""
    done = system.retrain("analyst@test")
    assert done["status"] == "succeeded", done["error"]
    with read_connection(system.engine) as conn:
        return training.load_training_data(conn, (0.1, 2.0), None)


def _show_lists(system, clock, disliked) -> None:
    """Each day show every user two Horror and two Comedy films (new ones each day); ``disliked``
    picks which of a list the user dislikes."""
    for day in range(DAYS):
        clock.advance(days=1)
        for user in USERS:
            films = [
                HORROR[(2 * day) % 8],
                HORROR[(2 * day + 1) % 8],
                COMEDY[(2 * day) % 8],
                COMEDY[(2 * day + 1) % 8],
            ]
            set_id = system.record_recommendation_set(user, films)
            for film in disliked(user, day, films):
                dislike(system, user, film, "not_interested", recommendation_set_id=set_id)
            clock.advance(seconds=30)


def _aversion_after_retrain(system) -> float:
    done = system.retrain("analyst@test")
    assert done["status"] == "succeeded", done["error"]
    return system.get_model_version(done["result_version_id"])["weights"]["genre_aversion"]


def test_a_dislike_example_sees_the_dislikes_before_its_list_was_shown_not_its_own(system, clock):
    trained_world(system)
    user = 77
    clock.advance(hours=1)
    first = system.record_recommendation_set(user, [HORROR[0], COMEDY[0]])
    clock.advance(minutes=5)
    dislike(system, user, HORROR[0], recommendation_set_id=first)
    clock.advance(hours=1)
    second = system.record_recommendation_set(user, [HORROR[1], COMEDY[1]])
    clock.advance(minutes=5)
    dislike(system, user, HORROR[1], recommendation_set_id=second)
    data = _load(system)
    X, _ = training.features(data, data.users, data.movies, data.times)
    u = data.profiles.user_index[user]
    aversion = FEATURES.index("genre_aversion")

    def row(film):
        (i,) = np.flatnonzero((data.users == u) & (data.movies == data.catalog.index[film]))
        return i

    assert X[row(HORROR[0]), aversion] == 0.0  # nothing disliked before its list was shown
    assert X[row(HORROR[1]), aversion] == pytest.approx(0.5, abs=1e-3)  # the first dislike: 1 / (1 + 0 + 1)
    assert X[row(COMEDY[0]), aversion] == 0.0  # shown with the first list: before any dislike
    assert X[row(COMEDY[1]), aversion] == 0.0  # Comedy was never disliked
    assert list(data.labels[[row(HORROR[0]), row(HORROR[1])]]) == [0, 0]


def test_a_dislike_counts_in_later_examples_only_against_what_its_reason_blames(system, clock):
    trained_world(system)
    user = 78
    same_cast = HORROR[4]  # "Star 1", like HORROR[0]
    assert same_cast % 4 == HORROR[0] % 4
    clock.advance(hours=1)
    first = system.record_recommendation_set(user, [HORROR[0]])
    clock.advance(minutes=5)
    dislike(system, user, HORROR[0], "poor_quality", recommendation_set_id=first)  # the film, not Horror
    clock.advance(hours=1)
    second = system.record_recommendation_set(user, [same_cast])
    clock.advance(minutes=5)
    dislike(system, user, same_cast, "wrong_genre", recommendation_set_id=second)
    data = _load(system)
    X, _ = training.features(data, data.users, data.movies, data.times)
    (i,) = np.flatnonzero(
        (data.users == data.profiles.user_index[user]) & (data.movies == data.catalog.index[same_cast])
    )
    assert X[i, FEATURES.index("genre_aversion")] == 0.0
    assert X[i, FEATURES.index("cast_aversion")] == pytest.approx(0.5, abs=1e-3)


def test_every_example_is_scored_by_a_model_that_did_not_train_on_it(system, clock):
    trained_world(system)
    _show_lists(system, clock, lambda user, day, films: films[:1] if (user + day) % 3 == 0 else [])
    data = _load(system)
    trained, metrics, _ = training.fit_and_evaluate(data, 3.0, None)
    assert metrics["held_out"] == len(data.labels)  # cross-validated: every example, none left out
    # The same folds by hand: each fifth scored by a model of the other four fifths.
    X, adj = training.features(data, data.users, data.movies, data.times)
    pair = data.users * (int(data.movies.max()) + 1) + data.movies
    fold = training.folds(pair, np.random.default_rng(training.SEED))
    scores = np.empty(len(data.labels))
    for k in range(training.FOLDS):
        test = fold == k
        by_others = model.train(X[~test], data.labels[~test], data.weights[~test], 3.0)
        scores[test] = by_others.predict(X[test], adj[test])
    assert metrics["auc"] == pytest.approx(model.auc(data.labels, scores), abs=1e-3)
    # The stored model itself is trained on every example.
    assert trained == model.train(X, data.labels, data.weights, 3.0)
    # Against an active version: the top-10 shares on the same sampled dislikes, and the paired
    # counts behind McNemar's test.
    _, metrics, baseline = training.fit_and_evaluate(data, 3.0, prior_model())
    sampled = min(training.TOP10_SAMPLE, int(data.is_dislike.sum()))
    paired, own = metrics["dislike_top10_test"], metrics["candidate_on_same_holdout"]
    assert own["held_out"] == baseline["held_out"] == len(data.labels)  # nothing seen: every example
    difference = round((own["dislike_top10_share"] - baseline["dislike_top10_share"]) * sampled)
    assert paired["candidate_only"] - paired["active_only"] == difference
    assert 0.0 < paired["p_value"] <= 1.0


def _created_at(system, version_id: int):
    with read_connection(system.engine) as conn:
        return conn.execute(
            select(model_versions.c.created_at).where(model_versions.c.version_id == version_id)
        ).scalar_one()


def test_the_active_version_is_compared_only_on_examples_it_never_saw(system, clock):
    # A model scored on examples it trained on looks better than it is: here by more than the
    # promotion margin, which held back candidates that were as good or better.
    first = system.get_model_version(trained_world(system))["metrics"]
    # Set beside the prior model (what served before it) on every example: the prior saw none.
    assert first["candidate_on_same_holdout"]["held_out"] == first["held_out"] > 0
    assert first["candidate_on_same_holdout"]["since"] is None
    # A second version from a rating dated before the first version: no example came in after it.
    system.record_rating(9999, ALL_FILMS[-1], 4.0, rated_at=clock() - timedelta(days=30))
    second = system.get_model_version(system.retrain("analyst@test")["result_version_id"])
    assert second["metrics"]["held_out"] > 0
    assert second["metrics"]["candidate_on_same_holdout"]["held_out"] == 0
    assert not second["metrics"]["promotion"]["promoted"]
    assert "never saw (0 examples)" in second["metrics"]["promotion"]["reason"]

    # Lists shown, a version trained on them made active, more lists shown: the next candidate
    # is compared with it on the later lists' examples alone.
    _show_lists(system, clock, lambda user, day, films: films[:1] if (user + day) % 3 == 0 else [])
    third = system.retrain("analyst@test")["result_version_id"]
    clock.advance(hours=1)
    if system.get_active_model_version()["version_id"] != third:
        system.activate_model_version(third, "analyst@test")
    _show_lists(system, clock, lambda user, day, films: films[1:2] if (user + day) % 2 == 0 else [])
    job = system.retrain("analyst@test")
    fourth = system.get_model_version(job["result_version_id"])
    with read_connection(system.engine) as conn:
        data = training.load_training_data(conn, (0.1, 2.0), None)
    since = training._seconds([_created_at(system, third)])[0]
    unseen = int((data.observed > since).sum())
    assert 0 < unseen < len(data.labels)
    # A film shown again after that version was trained is still one it trained on (shown
    # before, not disliked): none of its rows counts as unseen.
    shown = np.flatnonzero((data.labels == 1) & ~data.is_dislike)
    first_shown: dict[tuple, float] = {}
    for i in shown:
        key = (data.users[i], data.movies[i])
        first_shown[key] = min(first_shown.get(key, data.times[i]), data.times[i])
    again = [i for i in shown if data.times[i] > since >= first_shown[(data.users[i], data.movies[i])]]
    assert again and all(data.observed[i] <= since for i in again)
    metrics = fourth["metrics"]
    assert metrics["held_out"] == len(data.labels)  # its own figures: every example
    assert metrics["candidate_on_same_holdout"]["held_out"] == unseen
    assert metrics["active_on_same_holdout"]["held_out"] == unseen
    assert metrics["candidate_on_same_holdout"]["since"] == str(_created_at(system, third))
    # The audit record carries the AUCs the promotion note quotes, beside the version's own.
    with read_connection(system.engine) as conn:
        details = conn.execute(
            select(audit_log.c.details).where(
                audit_log.c.action == "retrain.succeeded", audit_log.c.entity_id == str(job["job_id"])
            )
        ).scalar_one()
    gain = metrics["auc_gain"]
    assert (details["compared_auc"], details["compared_active_auc"]) == (gain["auc_a"], gain["auc_b"])
    assert details["auc"] == metrics["auc"]


def test_a_dislike_example_weighs_what_its_stored_examples_weigh(make_system, clock):
    system = make_system(DISLIKE_WEIGHT_MULTIPLIER=0.5)
    trained_world(system)
    clock.advance(hours=1)
    lists = [system.record_recommendation_set(77, [HORROR[0], COMEDY[0]]) for _ in range(2)]
    dislike(system, 77, HORROR[0], recommendation_set_id=lists[0])
    dislike(system, 77, HORROR[0], recommendation_set_id=lists[1])  # the same film from another list
    dislike(system, 78, HORROR[1])
    data = _load(system)
    weights = {
        (user, film): data.weights[
            (data.users == data.profiles.user_index[user])
            & (data.movies == data.catalog.index[film])
            & data.is_dislike
        ]
        for user, film in ((77, HORROR[0]), (78, HORROR[1]))
    }
    assert list(weights[(77, HORROR[0])]) == [pytest.approx(1.0)]  # one example: 2 x 0.5
    assert list(weights[(78, HORROR[1])]) == [pytest.approx(0.5)]


def test_the_same_data_give_the_same_model_and_the_version_records_its_cutoff(system, clock):
    trained_world(system)
    _show_lists(system, clock, lambda user, day, films: films[:1] if user % 3 == 0 else [])
    clock.advance(hours=1)
    first = system.retrain("analyst@test")
    versions = count(system, model_versions)
    # Nothing new: the same examples train the very same model (the same weights, to the last
    # bit), so the job adds no copy of the version and says which one it matches.
    second = system.retrain("analyst@test")
    assert first["job_id"] != second["job_id"]
    assert (second["status"], second["result_version_id"]) == ("succeeded", None)
    assert second["stage"] == (
        f"unchanged: nothing new since version {first['result_version_id']}, the same model"
    )
    assert count(system, model_versions) == versions
    a = system.get_model_version(first["result_version_id"])
    with read_connection(system.engine) as conn:
        cutoff = training.load_training_data(conn, (0.1, 2.0), None).cutoff
    assert a["settings"]["cutoff"] == str(cutoff)
    # Anything new (a rating here) gives a version again.
    system.record_rating(9999, ALL_FILMS[-1], 4.0)
    assert system.retrain("analyst@test")["result_version_id"] > first["result_version_id"]


def test_the_examples_and_figures_do_not_depend_on_the_order_the_database_returns_rows(tmp_path, clock):
    """The same data stored in another order (rows inserted the other way round, ids
    renumbered) give the same examples in the same order, so the same sampled dislikes and
    the same figures."""
    import shutil
    import sqlite3

    system = _fresh(tmp_path, "one.db", clock)
    trained_world(system)
    _show_lists(system, clock, lambda user, day, films: films[:1] if user % 3 == 0 else films[2:3])
    assert system.retrain("analyst@test")["status"] == "succeeded"  # every example used
    system.close()
    shutil.copyfile(tmp_path / "one.db", tmp_path / "other.db")
    with sqlite3.connect(tmp_path / "other.db") as raw:  # foreign keys are not enforced here
        for table in ("user_dislikes", "negative_examples", "feature_adjustments", "movie_exclusions"):
            raw.execute(f"UPDATE {table} SET dislike_id = -dislike_id")
        raw.execute("UPDATE negative_examples SET example_id = -example_id")
        raw.execute("CREATE TEMP TABLE kept AS SELECT * FROM ratings")
        raw.execute("DELETE FROM ratings")
        raw.execute("INSERT INTO ratings SELECT * FROM kept ORDER BY user_id DESC, movie_id DESC")
    loaded = []
    for name in ("one.db", "other.db"):
        with read_connection(_fresh(tmp_path, name, clock).engine) as conn:
            loaded.append(training.load_training_data(conn, (0.1, 2.0), None))
    one, other = loaded
    assert one.is_dislike.sum() > training.TOP10_SAMPLE  # the share is taken from a sample
    for column in ("users", "movies", "times", "labels", "weights", "is_dislike"):
        assert np.array_equal(getattr(one, column), getattr(other, column)), column
    active = prior_model()
    (_, a, a_active), (_, b, b_active) = (training.fit_and_evaluate(d, 3.0, active) for d in loaded)
    assert a["dislike_top10_share"] == b["dislike_top10_share"]
    assert a_active["dislike_top10_share"] == b_active["dislike_top10_share"]
    assert a["auc"] == pytest.approx(b["auc"], abs=1e-9)


def test_with_every_rating_an_example_a_films_quality_leaves_out_the_ratings_after_it(tmp_path, clock):
    """Too little data to split: every rating is an example, and the stored figures of its film
    count it. Ratings at random (1 or 5, whatever the film) hold nothing to learn, so the
    cross-validated AUC stays near 0.5 and no feature predicts the label."""
    system = _fresh(tmp_path, "small.db", clock)
    rng = np.random.default_rng(7)
    system.add_movies(
        {
            "movie_id": m,
            "title": f"Film {m}",
            "genres": [("Drama", "Comedy", "Horror")[m % 3]],
            "cast": [f"Star {m}"],
        }
        for m in range(1, 61)
    )
    rows = [
        (1000 + 2 * m + k, m, float(rng.choice([1.0, 5.0])), clock.moment - timedelta(hours=m + k))
        for m in range(1, 61)
        for k in range(1 + m % 2)
    ]
    system.record_ratings(rows)
    with read_connection(system.engine) as conn:
        data = training.load_training_data(conn, (0.1, 2.0), None)
    assert data.cutoff == min(r[3] for r in rows) and data.film_figures is not None
    quality = FEATURES.index("quality")
    stored, _ = training.features(data, data.users, data.movies, data.times)
    assert model.auc(data.labels, stored[:, quality]) > 0.9  # what the stored figures give away
    X, _ = training.example_features(data)
    assert 0.35 < model.auc(data.labels, X[:, quality]) < 0.65
    # A film's first rating sees no rating of it; its second sees the first.
    first = data.times == data.times.min()
    assert np.all(X[first, FEATURES.index("popularity")] == 0.0)
    done = system.retrain("analyst@test")
    assert 0.35 < system.get_model_version(done["result_version_id"])["metrics"]["auc"] < 0.65
    system.close()


def _fresh(tmp_path, name, clock) -> FeedbackSystem:
    system = FeedbackSystem.from_settings(Settings(database_url=f"sqlite:///{tmp_path / name}"), clock=clock)
    system.init_feedback_tables()
    return system


def test_a_retrain_learns_how_strongly_dislikes_predict_the_next(tmp_path, clock):
    """Where users who disliked Horror dislike the next Horror films too, the genre aversion
    weight grows beyond its starting point; where each list's dislike falls on a film at random,
    it shrinks towards zero. (Training needs no second backend: it reads through the library.)"""
    prior = prior_model().coefficients["genre_aversion"]
    start = clock.moment

    repeat = _fresh(tmp_path, "repeat.db", clock)
    trained_world(repeat)
    # Half the users dislike every Horror film they are shown.
    _show_lists(repeat, clock, lambda user, day, films: films[:2] if user % 2 == 0 else [])
    learned_repeat = _aversion_after_retrain(repeat)
    repeat.close()

    clock.moment = start
    rng = np.random.default_rng(4)
    chance = _fresh(tmp_path, "chance.db", clock)
    trained_world(chance)
    # Every user dislikes one film of each list, whatever its genre.
    _show_lists(chance, clock, lambda user, day, films: [films[int(rng.integers(4))]])
    learned_chance = _aversion_after_retrain(chance)
    chance.close()

    assert learned_repeat < prior - 0.5, (learned_repeat, prior)
    assert learned_chance > prior + 0.5, (learned_chance, prior)


def test_training_reads_the_films_popularity_and_quality_from_before_the_cutoff(system, clock):
    """A rating that is an example must not raise its own film's quality: the stored figures
    include every rating, the training catalogue only those before the cutoff."""
    from feedback_core import model

    trained_world(system)
    clock.advance(hours=1)
    film = COMEDY[3]
    system.record_ratings([(500 + i, film, 5.0, clock.advance(minutes=1)) for i in range(30)])
    data = _load(system)
    with read_connection(system.engine) as conn:
        rows = conn.execute(
            select(ratings.c.movie_id, ratings.c.rating, ratings.c.rated_at).where(
                ratings.c.rated_at < data.cutoff
            )
        ).all()
    counts, sums = np.zeros(data.catalog.size), np.zeros(data.catalog.size)
    for m, r, _ in rows:
        counts[data.catalog.index[m]] += 1
        sums[data.catalog.index[m]] += r
    popularity, quality = model.popularity_and_quality(counts, sums)
    assert data.cutoff < clock.moment - timedelta(minutes=30)  # the 30 new ratings are examples
    assert data.catalog.quality == pytest.approx(quality)
    assert data.catalog.popularity == pytest.approx(popularity)
    with read_connection(system.engine) as conn:  # the live model sees every rating
        stored = conn.execute(select(movies.c.rating_count).where(movies.c.movie_id == film)).scalar_one()
        every = conn.execute(select(func.count()).where(ratings.c.movie_id == film)).scalar_one()
    assert stored == every >= counts[data.catalog.index[film]] + 30


def test_a_dislike_never_sees_itself_when_its_list_is_stamped_after_it(system, clock):
    """A list's shown time comes from the caller (or an import): one stamped after the dislike
    (clock skew) must not make the dislike part of its own example's features."""
    trained_world(system)
    clock.advance(hours=1)
    later = clock.moment + timedelta(seconds=5)
    shown = system.record_recommendation_set(77, [HORROR[0], COMEDY[0]], shown_at=later)
    dislike(system, 77, HORROR[0], recommendation_set_id=shown)
    data = _load(system)
    X, _ = training.features(data, data.users, data.movies, data.times)
    mine = np.flatnonzero(
        (data.users == data.profiles.user_index[77]) & (data.movies == data.catalog.index[HORROR[0]])
    )
    assert len(mine) == 1 and X[mine[0], FEATURES.index("genre_aversion")] == 0.0


def test_delongs_observations_are_one_per_user_film_and_label():
    """A film shown in several lists is one observation; one its user both liked and disliked
    is two, one of each label (not the label of whichever row came first)."""
    pair = np.array([5, 5, 5, 7, 7])
    labels = np.array([1, 1, 0, 0, 0])
    observed, per_group = training.by_pair(pair, labels)
    assert observed.tolist() == [0, 1, 0]
    assert per_group(np.array([0.2, 0.4, 0.9, 0.1, 0.3])) == pytest.approx([0.9, 0.3, 0.2])
