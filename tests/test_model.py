"""The scoring model, pure: features, training, metrics and ranking on plain arrays."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import pytest

from feedback_core import model
from feedback_core.model import FEATURES, TrainedModel

NOW = datetime(2026, 11, 1, 12, 0, 0)
COL = {name: i for i, name in enumerate(FEATURES)}

# (movie_id, title, genres, cast, franchise, rating_count, rating_sum)
CATALOG_ROWS = [
    (1, "Horror 1", ["Horror"], ["Ann"], None, 0, 0.0),
    (2, "Horror 2", ["Horror"], ["Bob"], None, 0, 0.0),
    (3, "Horror 3", ["Horror"], ["Cy"], None, 0, 0.0),
    (4, "Comedy 1", ["Comedy"], ["Di"], None, 0, 0.0),
    (5, "Horror 4", ["Horror"], ["Ed"], None, 0, 0.0),  # not rated by anyone: the film scored
    (6, "Comedy 2", ["Comedy"], ["Flo"], None, 0, 0.0),
    (7, "Drama 1", ["Drama"], ["Gus"], None, 0, 0.0),
    (8, "Horror Comedy", ["Horror", "Comedy"], ["Hana"], None, 0, 0.0),
    (9, "Saga 1", ["Action"], ["Ann"], "Saga", 0, 0.0),
    (10, "Saga 2", ["Action"], ["Ivan"], "Saga", 0, 0.0),
]


def catalog():
    return model.build_catalog(CATALOG_ROWS)


def features_for(cat, profiles, user_id, movie_ids):
    """Return ``(X, adjustment)`` of one user against the given movies."""
    rows = np.array([cat.index[m] for m in movie_ids])
    users = np.full(len(rows), profiles.user_index[user_id])
    return model.feature_matrix(cat, profiles, users, rows)


def feature(cat, profiles, user_id, movie_id, name):
    X, _ = features_for(cat, profiles, user_id, [movie_id])
    return X[0, COL[name]]


# ------------------------------------------------------------------ catalogue


def test_catalog_popularity_and_quality_follow_the_ratings():
    cat = model.build_catalog(
        [
            (1, "Blockbuster", ["Action"], [], None, 100, 450.0),  # 100 ratings, mean 4.5
            (2, "Flop", ["Action"], [], None, 100, 150.0),  # 100 ratings, mean 1.5
            (3, "Unseen", ["Action"], [], None, 0, 0.0),
        ]
    )
    assert cat.popularity[0] == pytest.approx(1.0) and cat.popularity[2] == 0.0
    # Quality shrinks each mean towards the overall mean (3.0) with 5 pseudo-ratings, over 5 stars.
    assert cat.quality[0] == pytest.approx((450 + 3.0 * 5) / 105 / 5)
    assert cat.quality[1] == pytest.approx((150 + 3.0 * 5) / 105 / 5)
    assert cat.quality[2] == pytest.approx(3.0 / 5)
    assert cat.quality[0] > cat.quality[2] > cat.quality[1]


def test_catalog_counts_only_the_top_five_cast_and_each_value_once():
    cat = model.build_catalog([(1, "A", ["Drama", "Drama"], ["a", "b", "c", "d", "e", "f"], "S", 0, 0.0)])
    assert cat.sizes["genre"][0] == 1
    assert cat.sizes["cast"][0] == 5 and "f" not in cat.vocab["cast"]
    assert cat.sizes["franchise"][0] == 1


# ------------------------------------------------------------------ affinity


def test_liked_horror_films_raise_genre_affinity_for_horror():
    cat = catalog()
    liked = [(1, 1), (1, 2), (1, 3), (1, 4)]  # user 1: three Horror films and one Comedy
    profiles = model.build_profiles(cat, liked, [], [], NOW, users=[2])
    horror = feature(cat, profiles, 1, 5, "genre_affinity")
    comedy = feature(cat, profiles, 1, 6, "genre_affinity")
    drama = feature(cat, profiles, 1, 7, "genre_affinity")
    # The share of the user's liked films that have the film's best-liked genre.
    assert horror == pytest.approx(3 / 4)
    assert comedy == pytest.approx(1 / 4)
    assert drama == 0.0
    # Horror|Comedy: a second, less-liked genre does not dilute the Horror affinity.
    assert feature(cat, profiles, 1, 8, "genre_affinity") == pytest.approx(3 / 4)
    # User 2 liked nothing: no affinity anywhere and no history.
    X, _ = features_for(cat, profiles, 2, [5, 6, 7])
    assert (X[:, COL["genre_affinity"]] == 0).all() and (X[:, COL["has_history"]] == 0).all()
    assert feature(cat, profiles, 1, 7, "has_history") == 1.0


def test_liked_cast_and_franchise_raise_their_affinities():
    cat = catalog()
    profiles = model.build_profiles(cat, [(1, 1), (1, 9)], [], [], NOW)  # liked Ann twice, Saga once
    assert feature(cat, profiles, 1, 10, "franchise_affinity") == pytest.approx(1 / 2)
    assert feature(cat, profiles, 1, 9, "cast_affinity") == pytest.approx(2 / 4)
    assert feature(cat, profiles, 1, 7, "cast_affinity") == 0.0
    assert feature(cat, profiles, 1, 7, "franchise_affinity") == 0.0


def test_likes_of_films_outside_the_catalogue_are_ignored():
    cat = catalog()
    profiles = model.build_profiles(cat, [(1, 1), (1, 999)], [], [], NOW)
    assert profiles.n_liked[profiles.user_index[1]] == 1


# ------------------------------------------------------------------ aversion

# (dislikes of Horror, days since the latest, liked Horror films, expected aversion):
# d = count * max(0.5, 1 - days / 180), aversion = d / (d + likes + 1).
AVERSION_CASES = [
    (0, 0, 0, 0.0),
    (1, 0, 0, 1 / 2),
    (2, 0, 0, 2 / 3),
    (3, 0, 0, 3 / 4),
    (6, 0, 0, 6 / 7),
    (3, 45, 0, 2.25 / 3.25),
    (3, 90, 0, 1.5 / 2.5),
    (3, 180, 0, 1.5 / 2.5),  # the decay floor: old dislikes still count half
    (3, 720, 0, 1.5 / 2.5),
    (3, -5, 0, 3 / 4),  # a dislike "from the future" (clock skew) counts as today's
    (3, 0, 2, 3 / 6),  # liked Horror films temper the aversion
]


@pytest.mark.parametrize("count, days, likes, expected", AVERSION_CASES)
def test_aversion_rises_with_dislikes_and_decays(count, days, likes, expected):
    cat = catalog()
    liked = [(1, m) for m in (1, 2)[:likes]]
    patterns = [(1, "genre", "Horror", count, NOW - timedelta(days=days))]
    profiles = model.build_profiles(cat, liked, patterns, [], NOW, users=[1])
    assert feature(cat, profiles, 1, 5, "genre_aversion") == pytest.approx(expected)
    assert feature(cat, profiles, 1, 7, "genre_aversion") == 0.0  # Drama is not touched


def test_aversion_is_monotone_in_count_and_in_age():
    cat = catalog()

    def aversion(count, days):
        patterns = [(1, "genre", "Horror", count, NOW - timedelta(days=days))]
        return feature(cat, model.build_profiles(cat, [], patterns, [], NOW), 1, 5, "genre_aversion")

    by_count = [aversion(c, 0) for c in range(1, 8)]
    assert all(a < b for a, b in zip(by_count, by_count[1:]))
    by_age = [aversion(3, d) for d in (0, 30, 60, 89)]
    assert all(a > b for a, b in zip(by_age, by_age[1:]))


def test_a_film_takes_the_largest_aversion_of_its_genres():
    cat = catalog()
    patterns = [(1, "genre", "Horror", 3, NOW), (1, "genre", "Comedy", 1, NOW)]
    profiles = model.build_profiles(cat, [], patterns, [], NOW)
    assert feature(cat, profiles, 1, 8, "genre_aversion") == pytest.approx(3 / 4)
    assert feature(cat, profiles, 1, 6, "genre_aversion") == pytest.approx(1 / 2)


def test_cast_and_franchise_aversion():
    cat = catalog()
    patterns = [(1, "cast", "Ann", 2, NOW), (1, "franchise", "Saga", 1, NOW), (1, "genre", "Unknown", 9, NOW)]
    profiles = model.build_profiles(cat, [], patterns, [], NOW)
    assert feature(cat, profiles, 1, 9, "cast_aversion") == pytest.approx(2 / 3)
    assert feature(cat, profiles, 1, 10, "franchise_aversion") == pytest.approx(1 / 2)
    assert feature(cat, profiles, 1, 10, "cast_aversion") == 0.0
    # A pattern naming a value no film has changes nothing.
    X, _ = features_for(cat, profiles, 1, list(range(1, 11)))
    assert (X[:, COL["genre_aversion"]] == 0).all()


def test_aversion_as_of_each_moment_matches_profiles_built_then():
    """Each pair sees the dislikes strictly before its own moment, with that moment's decay: the
    same value as the live profiles built at that moment from those dislikes."""
    cat = catalog()
    rng = np.random.default_rng(5)
    users = [1, 2, 3]
    liked = [(1, 1), (2, 4), (3, 9)]
    values = {
        "genre": ["Horror", "Comedy", "Action", "Unknown"],
        "cast": ["Ann", "Bob", "Hana"],
        "franchise": ["Saga"],
    }
    dislikes = [
        (
            int(rng.choice(users)),
            kind,
            str(rng.choice(values[kind])),
            NOW + timedelta(days=int(rng.integers(0, 200))),
        )
        for kind in model.KINDS
        for _ in range(25)
    ]
    uidx = {u: i for i, u in enumerate(users)}
    base = model.build_profiles(cat, liked, [], [], NOW, users=users)
    seconds = lambda t: (t - datetime(1970, 1, 1)).total_seconds()  # noqa: E731
    events = {}
    for kind in model.KINDS:
        mine = [(u, v, t) for u, k, v, t in dislikes if k == kind and v in cat.vocab[kind]]
        events[kind] = (
            np.array([uidx[u] for u, _, _ in mine], dtype=np.int64),
            np.array([cat.vocab[kind][v] for _, v, _ in mine], dtype=np.int64),
            np.array([seconds(t) for _, _, t in mine]),
        )
    # Moments on dislike times too: a dislike at the very moment is not yet counted.
    moments = sorted({t for *_, t in dislikes})[::7] + [NOW - timedelta(days=1), NOW + timedelta(days=400)]
    pairs = [(u, m, t) for u in users for m in range(1, 11) for t in moments]
    u_rows = np.array([uidx[u] for u, _, _ in pairs])
    m_rows = np.array([cat.index[m] for _, m, _ in pairs])
    history = model.dislike_history(cat, events)
    got = model.aversion_as_of(cat, base, history, u_rows, m_rows, np.array([seconds(t) for *_, t in pairs]))
    checked = 0
    for i, (u, m, t) in enumerate(pairs):
        before: dict[tuple, list] = {}
        for du, kind, value, dt in dislikes:
            if du == u and dt < t:
                entry = before.setdefault((kind, value), [0, dt])
                entry[0] += 1
                entry[1] = max(entry[1], dt)
        patterns = [(u, kind, value, c, last) for (kind, value), (c, last) in before.items()]
        then = model.build_profiles(cat, liked, patterns, [], t, users=users)
        X, _ = features_for(cat, then, u, [m])
        expected = [X[0, COL[f"{kind}_aversion"]] for kind in model.KINDS]
        assert got[i] == pytest.approx(expected), (u, m, t)
        checked += any(expected)
    assert checked > 50  # most pairs had earlier dislikes to see


def test_aversion_as_of_without_dislikes_is_zero():
    cat = catalog()
    profiles = model.build_profiles(cat, [], [], [], NOW, users=[1])
    empty = {k: (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)) for k in model.KINDS}
    history = model.dislike_history(cat, empty)
    got = model.aversion_as_of(cat, profiles, history, np.zeros(3, np.int64), np.arange(3), np.zeros(3))
    assert got.shape == (3, 3) and not got.any()


def test_aversion_lowers_the_prior_models_score():
    cat = catalog()
    prior = model.prior_model()
    plain = model.build_profiles(cat, [], [], [], NOW, users=[1])
    averse = model.build_profiles(cat, [], [(1, "genre", "Horror", 3, NOW)], [], NOW)
    before = prior.predict(*features_for(cat, plain, 1, [5]))
    after = prior.predict(*features_for(cat, averse, 1, [5]))
    assert after[0] < before[0]


# ------------------------------------------------------------------ adjustments

# (applied adjustment sum for Horror, expected offset = clamp(1 + sum, 0.1, 2.0) - 1)
ADJUSTMENT_CASES = [(-0.15, -0.15), (-0.3, -0.3), (0.0, 0.0), (0.25, 0.25), (-5.0, -0.9), (3.0, 1.0)]


@pytest.mark.parametrize("total, offset", ADJUSTMENT_CASES)
def test_adjustment_offset_is_the_clamped_weight_change(total, offset):
    cat = catalog()
    profiles = model.build_profiles(cat, [], [], [(1, "genre", "Horror", total)], NOW)
    _, adj = features_for(cat, profiles, 1, [5, 7, 8])
    assert adj == pytest.approx([offset, 0.0, offset])


def test_adjustment_lowers_scores_even_without_affinity():
    cat = catalog()
    trained = model.prior_model(adjustment_strength=3.0)
    liked = [(1, 4), (1, 6)]  # Comedy only: no Horror affinity to scale down
    plain = model.build_profiles(cat, liked, [], [], NOW)
    adjusted = model.build_profiles(cat, liked, [], [(1, "genre", "Horror", -0.15)], NOW)
    movies = [5, 7, 8]  # Horror, Drama, Horror|Comedy
    X0, a0 = features_for(cat, plain, 1, movies)
    X1, a1 = features_for(cat, adjusted, 1, movies)
    assert X0[0, COL["genre_affinity"]] == 0.0
    np.testing.assert_array_equal(X0, X1)  # the features are the same; only the offset moves
    delta = trained.logits(X1, a1) - trained.logits(X0, a0)
    assert delta == pytest.approx([3.0 * -0.15, 0.0, 3.0 * -0.15])
    p0, p1 = trained.predict(X0, a0), trained.predict(X1, a1)
    assert p1[0] < p0[0] and p1[2] < p0[2] and p1[1] == p0[1]


def test_adjustments_of_one_user_leave_another_alone():
    cat = catalog()
    profiles = model.build_profiles(cat, [], [], [(1, "genre", "Horror", -0.15)], NOW, users=[2])
    _, adj = features_for(cat, profiles, 2, [5, 8])
    assert (adj == 0).all()


def test_cast_and_franchise_adjustments_add_up():
    cat = catalog()
    adjustments = [(1, "cast", "Ann", -0.1), (1, "franchise", "Saga", -0.12), (1, "genre", "Action", -0.05)]
    profiles = model.build_profiles(cat, [], [], adjustments, NOW)
    _, adj = features_for(cat, profiles, 1, [9, 10, 1])
    assert adj == pytest.approx([-0.1 - 0.12 - 0.05, -0.12 - 0.05, -0.1])


# ------------------------------------------------------------------ training


def synthetic(seed: int, n: int = 3000):
    """Rows whose label follows genre affinity up, genre aversion and popularity down."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, len(FEATURES)))
    logit = (
        6 * X[:, COL["genre_affinity"]] - 6 * X[:, COL["genre_aversion"]] - 4 * X[:, COL["popularity"]] + 2
    )
    y = (logit > 0).astype(np.int64)  # separable by construction
    return X, y


def flat_prior() -> TrainedModel:
    return TrainedModel(dict.fromkeys(FEATURES, 0.0), 0.0, 3.0)


def test_train_recovers_signs_and_ordering_on_separable_data():
    X, y = synthetic(seed=11)
    assert 0.2 < y.mean() < 0.8
    trained = model.train(X, y, np.ones(len(y)), prior=flat_prior(), prior_strength=1e-3)
    w = trained.coefficients
    assert w["genre_affinity"] > 0
    assert w["genre_aversion"] < 0
    assert w["popularity"] < 0  # a free coefficient follows the data, not the prior's +1
    irrelevant = max(abs(w[f]) for f in ("cast_affinity", "franchise_affinity", "has_history"))
    assert min(abs(w["genre_affinity"]), abs(w["genre_aversion"]), abs(w["popularity"])) > 5 * irrelevant
    assert abs(w["genre_affinity"]) > abs(w["popularity"])  # 6 vs 4 in the truth
    # Held-out rows from the same process are ranked almost perfectly.
    X_test, y_test = synthetic(seed=12, n=1000)
    adj = np.zeros(len(y_test))
    metrics = model.evaluate(trained, X_test, adj, y_test, np.arange(len(y_test)) % 50)
    assert metrics["auc"] > 0.98 and metrics["accuracy"] > 0.95


def test_train_is_deterministic():
    X, y = synthetic(seed=3, n=500)
    a = model.train(X, y, np.ones(len(y)))
    b = model.train(X, y, np.ones(len(y)))
    assert a == b


def test_sign_bounds_hold_against_the_data():
    rng = np.random.default_rng(5)
    X = rng.random((2000, len(FEATURES)))
    # The data say better films and liked genres are disliked: the bounds refuse to learn it.
    y = (X[:, COL["quality"]] + X[:, COL["genre_affinity"]] < 1.0).astype(np.int64)
    trained = model.train(X, y, np.ones(len(y)), prior=flat_prior(), prior_strength=1e-3)
    assert trained.coefficients["quality"] == 0.0
    assert trained.coefficients["genre_affinity"] == 0.0
    for name, (low, high) in model.SIGN_BOUNDS.items():
        value = trained.coefficients[name]
        assert (low is None or value >= low) and (high is None or value <= high), name


def test_strong_prior_keeps_weights_near_it_with_little_data():
    X, y = synthetic(seed=4, n=30)
    prior = model.prior_model()
    trained = model.train(X, y, np.ones(len(y)), prior=prior, prior_strength=1e6)
    for name in FEATURES:
        assert trained.coefficients[name] == pytest.approx(prior.coefficients[name], abs=1e-2)


@pytest.mark.parametrize("negative_weight", [1.0, 3.0, 0.25])
def test_example_weights_shift_the_fit(negative_weight):
    # No feature carries information: the intercept alone fits, at log(positives / weighted negatives).
    y = np.array([1] * 50 + [0] * 50)
    X = np.zeros((100, len(FEATURES)))
    weights = np.where(y == 1, 1.0, negative_weight)
    trained = model.train(X, y, weights)
    assert trained.intercept == pytest.approx(-math.log(negative_weight), abs=1e-3)


@pytest.mark.parametrize("labels", [[1, 1, 1], [0, 0, 0]])
def test_train_refuses_a_single_class(labels):
    y = np.array(labels)
    with pytest.raises(ValueError, match="both"):
        model.train(np.zeros((3, len(FEATURES))), y, np.ones(3))


def test_trained_model_round_trips_through_json():
    X, y = synthetic(seed=8, n=300)
    trained = model.train(X, y, np.ones(len(y)), adjustment_strength=2.5)
    assert TrainedModel.from_dict(trained.as_dict()) == trained
    assert set(trained.coefficients) == set(FEATURES)


# ------------------------------------------------------------------ evaluation


def probability_model():
    """A model whose prediction is sigmoid of the popularity column: the tests set p directly."""
    return TrainedModel({"popularity": 1.0}, 0.0, 3.0)


def rows_for(p):
    p = np.asarray(p, dtype=float)
    X = np.zeros((len(p), len(FEATURES)))
    X[:, COL["popularity"]] = np.log(p / (1 - p))
    return X, np.zeros(len(p))


def _delong_by_definition(y, a, b):
    """DeLong's variance of AUC(a) - AUC(b) from its definition, pair by pair."""
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)

    def psi(s, i, j):
        return 1.0 if s[i] > s[j] else 0.5 if s[i] == s[j] else 0.0

    d10 = np.array([np.mean([psi(a, i, j) - psi(b, i, j) for j in neg]) for i in pos])
    d01 = np.array([np.mean([psi(a, i, j) - psi(b, i, j) for i in pos]) for j in neg])
    return d10.mean(), d10.var(ddof=1) / len(pos) + d01.var(ddof=1) / len(neg)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_compare_aucs_matches_delong_by_definition(seed):
    rng = np.random.default_rng(seed)
    y = (rng.random(60) < 0.4).astype(int)
    a = np.round(y + rng.normal(0, 1.0, 60), 1)  # rounded: ties count half
    b = np.round(y + rng.normal(0, 1.5, 60), 1)
    got = model.compare_aucs(y, a, b)
    difference, variance = _delong_by_definition(y, a, b)
    assert got["difference"] == pytest.approx(difference)
    assert got["difference"] == pytest.approx(model.auc(y, a) - model.auc(y, b))
    assert got["standard_error"] == pytest.approx(math.sqrt(variance))
    assert got["low"] < got["difference"] < got["high"]


def test_compare_aucs_tells_a_real_gain_from_noise():
    rng = np.random.default_rng(9)
    y = (rng.random(4000) < 0.3).astype(int)
    signal = y + rng.normal(0, 1.0, 4000)
    better, worse = signal, signal + rng.normal(0, 2.0, 4000)
    assert model.compare_aucs(y, better, worse)["p_value"] < 1e-6
    # Two equally good models (independent noise): no significant difference, either way.
    twin_a, twin_b = y + rng.normal(0, 1.0, 4000), y + rng.normal(0, 1.0, 4000)
    same = model.compare_aucs(y, twin_a, twin_b)
    assert same["low"] < 0 < same["high"] and same["p_value"] > 0.05
    assert model.compare_aucs(y, better, better) == {
        "auc_a": model.auc(y, better),
        "auc_b": model.auc(y, better),
        "difference": 0.0,
        "standard_error": 0.0,
        "low": 0.0,
        "high": 0.0,
        "p_value": 1.0,
    }
    assert model.compare_aucs(np.ones(5), np.arange(5.0), np.arange(5.0)) is None
    # One row of a label leaves no variance to estimate: no verdict, rather than "certain".
    assert model.compare_aucs(np.array([1, 0, 0, 0]), np.arange(4.0), -np.arange(4.0)) is None


def test_compare_aucs_gives_no_verdict_on_a_handful_of_rows():
    # Two of each label against a model that scores every row alike: no variance, so the test
    # said p = 0 and a zero-width interval, and a candidate was promoted on four observations.
    y, candidate, constant = np.array([1, 1, 0, 0]), np.array([0.9, 0.8, 0.2, 0.1]), np.full(4, 0.5)
    assert model.compare_aucs(y, candidate, constant) is None
    few = model.MIN_ROWS_PER_LABEL - 1
    rng = np.random.default_rng(3)
    y = np.array([1] * few + [0] * 40)
    assert model.compare_aucs(y, y + rng.normal(0, 0.5, len(y)), rng.random(len(y))) is None
    y = np.array([1] * (few + 1) + [0] * 40)
    assert model.compare_aucs(y, y + rng.normal(0, 0.5, len(y)), rng.random(len(y))) is not None
    # Enough rows, and a perfect ranking against a constant one: no variance, and no doubt either.
    y = np.array([1] * 50 + [0] * 50)
    perfect = model.compare_aucs(y, y.astype(float), np.full(100, 0.5))
    assert (perfect["difference"], perfect["standard_error"], perfect["p_value"]) == (0.5, 0.0, 0.0)


def test_evaluate_on_a_known_tiny_case():
    X, adj = rows_for([0.9, 0.8, 0.3, 0.1])
    y = np.array([1, 0, 1, 0])
    metrics = model.evaluate(probability_model(), X, adj, y, np.array([7, 7, 7, 7]))
    # Positive/negative pairs ranked right: (0.9 > 0.8), (0.9 > 0.1), (0.3 > 0.1); wrong: (0.3 < 0.8).
    assert metrics["auc"] == pytest.approx(3 / 4)
    assert metrics["log_loss"] == pytest.approx(
        -(math.log(0.9) + math.log(0.2) + math.log(0.3) + math.log(0.9)) / 4
    )
    assert metrics["accuracy"] == pytest.approx(2 / 4)
    assert metrics["accuracy_baseline"] == pytest.approx(2 / 4)  # always "liked", or always not
    assert metrics["precision_at_10"] == pytest.approx(2 / 4)
    assert metrics["precision_at_10_baseline"] == pytest.approx(2 / 4)
    assert metrics["held_out"] == 4


def test_accuracy_is_reported_beside_what_always_answering_liked_would_score():
    # 8 of 10 rows liked: a model that always answers "liked" is right 80% of the time. A model
    # right on 7 of 10 looks good until set beside that.
    X, adj = rows_for([0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.4, 0.4, 0.9, 0.1])
    y = np.array([1, 1, 1, 1, 1, 1, 1, 1, 0, 0])
    metrics = model.evaluate(probability_model(), X, adj, y, np.array([1] * 5 + [2] * 5))
    assert metrics["accuracy"] == pytest.approx(7 / 10)
    assert metrics["accuracy_baseline"] == pytest.approx(8 / 10)
    # A random order of user 1's films gives 5/5 liked in its top 10, user 2's 3/5.
    assert metrics["precision_at_10_baseline"] == pytest.approx((5 / 5 + 3 / 5) / 2)


def test_precision_at_10_is_per_user_and_skips_users_without_positives():
    # User 1: 12 films, the 3 liked ones ranked first -> 3 of the top 10. User 2: 2 of 2.
    # User 3 liked nothing shown and is left out of the mean.
    p1 = [0.99, 0.98, 0.97] + [0.5 - 0.01 * i for i in range(9)]
    y1 = [1, 1, 1] + [0] * 9
    p2, y2 = [0.2, 0.1], [1, 1]
    p3, y3 = [0.9, 0.8], [0, 0]
    X, adj = rows_for(p1 + p2 + p3)
    y = np.array(y1 + y2 + y3)
    users = np.array([1] * 12 + [2] * 2 + [3] * 2)
    order = np.random.default_rng(0).permutation(len(y))  # row order must not matter
    metrics = model.evaluate(probability_model(), X[order], adj[order], y[order], users[order])
    assert metrics["precision_at_10"] == pytest.approx((3 / 10 + 2 / 2) / 2)
    assert metrics["precision_at_10_baseline"] == pytest.approx((3 / 12 + 2 / 2) / 2)


def test_evaluate_edge_cases():
    empty = model.evaluate(
        probability_model(), np.zeros((0, len(FEATURES))), np.zeros(0), np.zeros(0), np.zeros(0)
    )
    assert empty == {
        "auc": None,
        "log_loss": None,
        "accuracy": None,
        "accuracy_baseline": None,
        "precision_at_10": None,
        "precision_at_10_baseline": None,
        "held_out": 0,
    }
    X, adj = rows_for([0.6, 0.7])
    one_class = model.evaluate(probability_model(), X, adj, np.array([0, 0]), np.array([1, 1]))
    assert one_class["auc"] is None and one_class["precision_at_10"] is None
    assert one_class["log_loss"] == pytest.approx(-(math.log(0.4) + math.log(0.3)) / 2)
    # Tied scores across the classes count half: no ranking information at all.
    X, adj = rows_for([0.5, 0.5, 0.5, 0.5])
    ties = model.evaluate(probability_model(), X, adj, np.array([1, 0, 1, 0]), np.array([1, 1, 2, 2]))
    assert ties["auc"] == pytest.approx(0.5)
    # A certain and wrong prediction gives a large but finite log loss.
    X, adj = rows_for([1 - 1e-12, 1e-12])
    wrong = model.evaluate(probability_model(), X, adj, np.array([0, 1]), np.array([1, 1]))
    assert math.isfinite(wrong["log_loss"]) and wrong["log_loss"] > 10
    assert wrong["auc"] == 0.0


# ------------------------------------------------------------------ ranking

TOP_K_CASES = [
    ([0.1, 0.9, 0.5], 2, None, [1, 2]),
    ([0.5, 0.9, 0.5, 0.5], 3, None, [1, 0, 2]),  # ties by index
    ([0.1, 0.9, 0.5], 2, [1], [2, 0]),
    ([0.1, 0.9, 0.5], 3, [0, 1, 2], []),
    ([0.3, 0.2], 5, None, [0, 1]),  # k beyond the catalogue
    ([0.3, 0.2], 0, None, []),
    ([float("nan"), 0.2, 0.4], 3, None, [2, 1]),  # a NaN score is never recommended
    ([float("-inf"), 0.0, 1.0], 3, None, [2, 1]),
    ([], 10, None, []),
]


@pytest.mark.parametrize("scores, k, excluded, expected", TOP_K_CASES)
def test_top_k(scores, k, excluded, expected):
    scores = np.array(scores, dtype=float)
    before = scores.copy()
    excluded = None if excluded is None else np.array(excluded, dtype=np.int64)
    assert model.top_k(scores, k, excluded).tolist() == expected
    np.testing.assert_array_equal(scores, before)  # the caller's scores are not touched


def test_top_k_breaks_ties_at_the_cut_by_index():
    assert model.top_k(np.array([1.0, 1.0, 2.0, 2.0]), 1).tolist() == [2]
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 50, 2000).astype(float)  # many ties
    excluded = rng.choice(2000, 300, replace=False)
    expected = [i for i in sorted(range(2000), key=lambda i: (-scores[i], i)) if i not in set(excluded)][:25]
    assert model.top_k(scores, 25, excluded).tolist() == expected


def test_prior_model_puts_popular_good_films_first_for_a_new_user():
    cat = model.build_catalog(
        [
            (1, "Obscure flop", ["Drama"], [], None, 2, 2.0),
            (2, "Blockbuster", ["Drama"], [], None, 200, 900.0),
            (3, "Niche gem", ["Drama"], [], None, 10, 48.0),
            (4, "Popular flop", ["Drama"], [], None, 200, 300.0),
        ]
    )
    profiles = model.build_profiles(cat, [], [], [], NOW, users=[1])
    X, adj = features_for(cat, profiles, 1, [1, 2, 3, 4])
    scores = model.prior_model().predict(X, adj)
    ranked = [int(cat.movie_ids[i]) for i in model.top_k(scores, 4)]
    assert ranked[0] == 2
    assert ranked.index(1) > ranked.index(3)  # good beats bad among the obscure
