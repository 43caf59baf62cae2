"""Training data: load positives and weighted negatives, build features, train and evaluate.

Features must never see the label they predict. Every run picks a cutoff time: the films a
user liked come from ratings before it, and the examples are the events from it on. A user's
aversions (dislikes per genre, cast, franchise) are taken as they stood at each example's own
time, from the dislikes strictly before it. That time is the moment the model scored the
example: when a rated film was rated, when a shown film's list (or a disliked film's list) was
shown. A disliked film's example so sees what the recommender knew when it chose the film, never
its own dislike, and the model learns how past dislikes predict the next one: the relation the
live model uses, the past only.

Each disliked (user, film) pair is one negative example weighted by the sum of its stored
negative examples' weights (``DISLIKE_WEIGHT_MULTIPLIER`` when each was recorded).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import Connection, String, func, or_, select, type_coerce

from feedback_core import model
from feedback_core.memory import collector_paused
from feedback_core.policy import blamed_features
from feedback_core.recommender import load_catalog
from feedback_core.schema import (
    feature_adjustments,
    impressions,
    negative_examples,
    ratings,
    recommendation_sets,
    user_dislikes,
)

FOLDS = 5  # cross-validation: each example is scored by a model trained on the other folds
PROFILE_SHARE = 0.5  # the earliest half of the events builds the profiles
MIN_EXAMPLES = 50
LOW_RATING = 2.0  # ratings at or below this are negatives too
TOP10_SAMPLE = 100
# Films shown and not disliked are weak positives: they contrast dislikes with what the same
# lists offered, so the model learns what gets disliked among what it actually shows.
SHOWN_POSITIVE_WEIGHT = 0.25
MAX_SHOWN_POSITIVES = 300_000
# The folds depend on the data only: the same data give the same model and the same figures.
SEED = 20261130


@dataclass
class TrainingData:
    """Everything one training run needs, read in one snapshot."""

    catalog: model.Catalog
    profiles: model.Profiles
    users: np.ndarray  # profile row per example
    movies: np.ndarray  # catalogue row per example
    labels: np.ndarray
    weights: np.ndarray
    is_dislike: np.ndarray
    times: np.ndarray  # seconds since the epoch, per example: the moment its features are taken at
    # Seconds since the epoch, per example: when its (user, film, label) was first known (its
    # rating, the first showing of a film not disliked, the first dislike of a disliked one).
    # A version trained before that moment never saw the example.
    observed: np.ndarray
    dislikes: model.DislikeHistory  # every dislike read, for aversions as of each example
    seen_by_user: dict[int, np.ndarray]  # profile row -> catalogue rows rated before the cutoff
    cutoff: datetime
    counts: dict[str, int]
    # Per example, its film's (popularity, quality) as of its moment, when there is no rating
    # before the cutoff (every event an example): else the catalogue's figures of the past.
    film_figures: tuple[np.ndarray, np.ndarray] | None = None


def _naive(value) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _raw(column):
    """Read a column as the driver gives it, without the column type's processing: SQLite's
    moments (text) are parsed by ``_naive`` several times faster (millions of rows here), JSON
    lists are decoded once per distinct text. PostgreSQL gives datetimes as they are."""
    return type_coerce(column, String)


_EPOCH = datetime(1970, 1, 1)


def _seconds(moments: list[datetime]) -> np.ndarray:
    """Return naive UTC moments as seconds since the epoch (numpy's own datetime conversion of
    Python objects is several times slower)."""
    return np.array([(t - _EPOCH).total_seconds() for t in moments], dtype=float)


def _dislike_events(catalog: model.Catalog, uidx: dict[int, int], dislike_rows) -> dict:
    """Return, per kind, every dislike's (profile row, vocabulary index, time) of the values it
    counts against (the catalogue's vocabulary only: other values score no film)."""
    seconds = _seconds([d[2] for d in dislike_rows])
    vocab = catalog.vocab
    found: dict[str, tuple[list, list, list]] = {kind: ([], [], []) for kind in model.KINDS}
    genre_of, cast_of, franchise_of = found["genre"], found["cast"], found["franchise"]
    for i, (u, _, _, genres, cast, franchise, *_) in enumerate(dislike_rows):
        row = uidx[u]
        for kind_vocab, into, names in (
            (vocab["genre"], genre_of, genres),
            (vocab["cast"], cast_of, cast),
            (vocab["franchise"], franchise_of, (franchise,) if franchise else ()),
        ):
            for name in dict.fromkeys(names):
                j = kind_vocab.get(name)
                if j is not None:
                    into[0].append(row)
                    into[1].append(j)
                    into[2].append(i)
    return {
        kind: (
            np.array(rows, dtype=np.int64),
            np.array(values, dtype=np.int64),
            seconds[np.array(which, dtype=np.int64)],
        )
        for kind, (rows, values, which) in found.items()
    }


def features(data: "TrainingData", users: np.ndarray, movies: np.ndarray, times: np.ndarray):
    """Return ``(X, adjustment)`` for pairs at the given moments (aversions as of each)."""
    aversion = model.aversion_as_of(data.catalog, data.profiles, data.dislikes, users, movies, times)
    return model.feature_matrix(data.catalog, data.profiles, users, movies, aversion)


def example_features(data: "TrainingData"):
    """``features`` of every example, with its film's figures as of its moment when the data
    have them (``film_figures``)."""
    X, adj = features(data, data.users, data.movies, data.times)
    if data.film_figures is not None:
        X[:, model.FEATURES.index("popularity")], X[:, model.FEATURES.index("quality")] = data.film_figures
    return X, adj


def _film_figures_as_of(
    rating_rows: list[tuple], midx: dict[int, int], movies: np.ndarray, times: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each example's film's popularity and quality from the ratings made before the example's
    moment (scaled by the final counts and mean): a rating that is an example does not count in
    its own film's figures."""
    rated = [(midx[m], r, t) for _, m, r, t in rating_rows if m in midx]
    film = np.array([f for f, _, _ in rated], dtype=np.int64)
    value = np.array([r for _, r, _ in rated], dtype=float)
    when = _seconds([t for _, _, t in rated])
    # Moments as ranks, so that (film, moment) is one exact integer key.
    moments = np.unique(np.concatenate([when, times]))
    width = len(moments) + 1
    order = np.lexsort((when, film))
    key = film[order] * width + np.searchsorted(moments, when[order])
    cumulative = np.concatenate([[0.0], np.cumsum(value[order])])
    first = np.searchsorted(key, movies * width)
    before = np.searchsorted(key, movies * width + np.searchsorted(moments, times))  # strictly earlier
    return model.popularity_and_quality(
        before - first,
        cumulative[before] - cumulative[first],
        most=np.bincount(film).max() if len(film) else 0,
        prior=value.mean() if len(value) else 3.5,
    )


def _cutoff(times: list[datetime]) -> datetime:
    """Return the time that splits events into profile-building and examples."""
    ordered = sorted(times)
    cut = ordered[int(len(ordered) * PROFILE_SHARE)]
    examples_after = len(ordered) - int(len(ordered) * PROFILE_SHARE)
    if examples_after < MIN_EXAMPLES:
        # Too little data to split: every event is an example, profiles start empty.
        return ordered[0]
    return cut


def _both_labels_from(cutoff: datetime, rating_rows, dislike_rows, shown_rows, films, rated: set) -> bool:
    """Say whether events from ``cutoff`` on make both a positive and a negative example (by the
    rules ``load_training_data`` adds them with: films of the catalogue, a shown film only when
    its viewer did not rate it, ``rated`` holding the (user, film) pairs rated)."""
    positive = any(t >= cutoff and m in films and (u, m) not in rated for u, m, t in shown_rows) or any(
        t >= cutoff and r >= model.LIKED_RATING and m in films for _, m, r, t in rating_rows
    )
    negative = any(d[2] >= cutoff and d[1] in films for d in dislike_rows) or any(
        t >= cutoff and r <= LOW_RATING and m in films for _, m, r, t in rating_rows
    )
    return positive and negative


def folds(groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return each example's fold (0 .. ``FOLDS`` - 1), drawn at random per group: the examples
    of one group (one user and film, shown in several lists) fall in the same fold, or a model
    would be evaluated on pairs it trained on."""
    _, group_of = np.unique(groups, return_inverse=True)
    return rng.integers(FOLDS, size=group_of.max() + 1 if len(group_of) else 0)[group_of]


def load_training_data(
    conn: Connection, weight_bounds: tuple[float, float], job_id: int | None
) -> TrainingData:
    """Read ratings, shown lists and negative examples (used, or claimed by ``job_id``)."""
    with collector_paused():
        return _load_training_data(conn, weight_bounds, job_id)


def _load_training_data(
    conn: Connection, weight_bounds: tuple[float, float], job_id: int | None
) -> TrainingData:
    catalog = load_catalog(conn)
    rating_rows = [
        (u, m, r, _naive(t))
        for u, m, r, t in conn.execute(
            select(ratings.c.user_id, ratings.c.movie_id, ratings.c.rating, _raw(ratings.c.rated_at))
        )
    ]
    status_ok = negative_examples.c.status == "used"
    if job_id is not None:
        status_ok = status_ok | (negative_examples.c.job_id == job_id)
    decoded: dict[str | None, list] = {None: []}  # lists repeat (one per film): decode each once

    def names(text: str | list | None) -> list:
        if isinstance(text, list):  # PostgreSQL's driver decodes JSON itself
            return text
        if text not in decoded:
            decoded[text] = json.loads(text)
        return decoded[text]

    dislike_rows = [
        (
            u,
            m,
            _naive(t),
            # Only the feature values its reason blames count against them, as in the patterns.
            *blamed_features(why, names(genres) or [], names(cast) or [], franchise),
            weight,
            min(_naive(shown or t), _naive(t)),
        )
        for u, m, t, why, genres, cast, franchise, weight, shown in conn.execute(
            select(
                user_dislikes.c.user_id,
                user_dislikes.c.movie_id,
                _raw(user_dislikes.c.created_at),
                user_dislikes.c.reason,
                _raw(user_dislikes.c.genres),
                _raw(user_dislikes.c.cast),
                user_dislikes.c.franchise,
                negative_examples.c.weight,
                _raw(recommendation_sets.c.created_at),
            )
            .join(negative_examples, negative_examples.c.dislike_id == user_dislikes.c.dislike_id)
            .outerjoin(
                recommendation_sets,
                recommendation_sets.c.recommendation_set_id == user_dislikes.c.recommendation_set_id,
            )
            .where(status_ok, user_dislikes.c.retracted_at.is_(None))
        )
    ]
    disliked_shown = (
        select(user_dislikes.c.dislike_id)
        .where(
            user_dislikes.c.recommendation_set_id == impressions.c.recommendation_set_id,
            user_dislikes.c.movie_id == impressions.c.movie_id,
        )
        .exists()
    )
    shown_rows = [
        (u, m, _naive(t))
        for u, m, t in conn.execute(
            select(impressions.c.user_id, impressions.c.movie_id, _raw(impressions.c.shown_at))
            .where(~disliked_shown)
            .order_by(impressions.c.impression_id.desc())
            .limit(MAX_SHOWN_POSITIVES)
        )
    ]
    times = [r[3] for r in rating_rows] + [d[2] for d in dislike_rows] + [s[2] for s in shown_rows]
    if not times:
        raise ValueError("no ratings, dislikes or shown lists to train on yet")
    cutoff = _cutoff(times)
    rated_pairs = {(u, m) for u, m, _, _ in rating_rows}
    if not _both_labels_from(cutoff, rating_rows, dislike_rows, shown_rows, catalog.index, rated_pairs):
        # A burst of one kind of event (a flood of dislikes after a short rating history) can
        # put every event of the other label before the split, and training would fail until
        # more ratings came in, each retry queued again by the next dislike. As with too little
        # data: every event is an example, the profiles start empty.
        cutoff = min(times)
    # The adjustments in force at the cutoff, as the profiles: one approved later (perhaps from
    # a dislike that is itself an example here) must not score that example.
    fa = feature_adjustments
    adjustments = conn.execute(
        select(fa.c.user_id, fa.c.feature_type, fa.c.feature_value, func.sum(fa.c.magnitude))
        .where(
            fa.c.status.in_(("applied", "reverted")),
            fa.c.applied_at < cutoff,
            or_(fa.c.reverted_at.is_(None), fa.c.reverted_at >= cutoff),
        )
        .group_by(fa.c.user_id, fa.c.feature_type, fa.c.feature_value)
    ).all()

    # Profiles from the past only.
    liked_before = [(u, m) for u, m, r, t in rating_rows if t < cutoff and r >= model.LIKED_RATING]
    all_users = {r[0] for r in rating_rows} | {d[0] for d in dislike_rows} | {s[0] for s in shown_rows}
    profiles = model.build_profiles(
        catalog,
        liked_before,
        [],  # aversions are taken as of each example, from ``dislikes`` (see ``features``)
        adjustments,
        cutoff,
        weight_bounds,
        users=all_users,
    )
    uidx, midx = profiles.user_index, catalog.index

    # (profile row, catalogue row, moment, label, weight, from a dislike, observed) per example
    examples: list[tuple] = []
    add = examples.append

    seen_by_user: dict[int, list[int]] = {}
    counts = {
        "positives": 0,
        "negatives_from_ratings": 0,
        "shown_not_disliked": 0,
        "negatives_from_dislikes": 0,
    }
    rated_before, rating_before = [], []
    for u, m, r, t in rating_rows:
        j = midx.get(m)
        if j is None:
            continue
        if t < cutoff:
            seen_by_user.setdefault(uidx[u], []).append(j)
            rated_before.append(j)
            rating_before.append(r)
        elif r >= model.LIKED_RATING:
            add((uidx[u], j, t, 1, 1.0, False, t))
            counts["positives"] += 1
        elif r <= LOW_RATING:
            add((uidx[u], j, t, 0, 1.0, False, t))
            counts["negatives_from_ratings"] += 1
    # The films' popularity and quality from the past only too, or a rating that is an example
    # would raise its own film's figures (the stored ones include it). With no rating before the
    # cutoff (too little data to split) the stored figures stay, or every film would look alike
    # to both the candidate and the active version.
    if rated_before:
        catalog.popularity, catalog.quality = model.popularity_and_quality(
            np.bincount(rated_before, minlength=catalog.size),
            np.bincount(rated_before, weights=rating_before, minlength=catalog.size),
        )
    # A film the user disliked is no liked example from another list it was shown in either.
    disliked_pairs = {(u, m) for u, m, *_ in dislike_rows}
    for u, m, t in shown_rows:
        if t >= cutoff and m in midx and (u, m) not in rated_pairs and (u, m) not in disliked_pairs:
            add((uidx[u], midx[m], t, 1, SHOWN_POSITIVE_WEIGHT, False, t))
            counts["shown_not_disliked"] += 1
    # One example per disliked (user, movie), weighted by its stored examples' weights, with
    # the features of the moment the model scored it: when the list it was disliked from was
    # shown (else the dislike's own time), the first time for a film disliked more than once.
    pairs: dict[tuple[int, int], list] = {}
    for u, m, t, *_, weight, scored in dislike_rows:
        entry = pairs.setdefault((u, m), [0.0, t, scored, t])
        entry[0] += weight
        entry[1] = max(entry[1], t)
        entry[2] = min(entry[2], scored)
        entry[3] = min(entry[3], t)
    for (u, m), (weight, latest, first, earliest) in pairs.items():
        if m in midx and latest >= cutoff:
            add((uidx[u], midx[m], first, 0, weight, True, earliest))
            counts["negatives_from_dislikes"] += 1
    counts["negative_examples"] = len(dislike_rows)
    users, films, moments, labels, weights, is_dislike, observed = zip(*examples) if examples else ([],) * 7
    columns = (
        np.array(users, dtype=np.int64),
        np.array(films, dtype=np.int64),
        _seconds(moments),
        np.array(labels, dtype=np.int64),
        np.array(weights, dtype=float),
        np.array(is_dislike, dtype=bool),
        _seconds(observed),
    )
    # The examples in an order of their own (user, film, moment, ...), not the order the
    # database returned rows in: the same data give the same sample of dislikes, so the same
    # figures.
    order = np.lexsort(columns[::-1])
    users, films, times, labels, weights, is_dislike, observed = (column[order] for column in columns)
    if len(users):
        # A film shown again is the same (user, film, label) a version may have trained on at
        # its first showing: every row of it takes the moment it was first known.
        key = (users * (int(films.max()) + 1) + films) * 2 + labels
        _, of_key = np.unique(key, return_inverse=True)
        first = np.full(of_key.max() + 1, np.inf)
        np.minimum.at(first, of_key, observed)
        observed = first[of_key]
    film_figures = None
    if not rated_before and len(films):
        # No rating before the cutoff (too little data to split, or a burst of one kind of
        # event): the catalogue's figures count the very ratings that are examples here, and a
        # film's quality would give its own rating away. Each example takes its film's figures
        # as they stood at its moment instead.
        film_figures = _film_figures_as_of(rating_rows, midx, films, times)
    return TrainingData(
        catalog=catalog,
        profiles=profiles,
        users=users,
        movies=films,
        labels=labels,
        weights=weights,
        is_dislike=is_dislike,
        times=times,
        observed=observed,
        dislikes=model.dislike_history(catalog, _dislike_events(catalog, uidx, dislike_rows)),
        seen_by_user={u: np.array(v, dtype=np.int64) for u, v in seen_by_user.items()},
        cutoff=cutoff,
        counts=counts,
        film_figures=film_figures,
    )


def fit_and_evaluate(
    data: TrainingData,
    adjustment_strength: float,
    active: model.TrainedModel | None,
    progress: Callable[[int, str], None] = lambda p, s: None,
    active_since: datetime | None = None,
) -> tuple[model.TrainedModel, dict, dict | None]:
    """Train on every example and evaluate by cross-validation: each example is scored by a
    model trained on the other folds (``FOLDS``, one (user, film) in one fold).

    The candidate is compared with the active model on the examples the active one never saw:
    those observed after ``active_since`` (when it was trained; every example without it).
    Scored on examples it trained on, a model looks better than it is (by 0.004 to 0.02 of AUC
    here, more than the promotion margin), which would hold back every candidate. The
    candidate's figures on those examples are ``metrics["candidate_on_same_holdout"]``, the
    active model's are the returned baseline."""
    progress(45, "building features")
    X, adj = example_features(data)
    y, w = data.labels, data.weights
    rng = np.random.default_rng(SEED)
    pair = data.users * (int(data.movies.max(initial=0)) + 1) + data.movies  # one key per (user, film)
    progress(50, "training")
    trained = model.train(X, y, w, adjustment_strength)
    fold = folds(pair, rng)
    oof = np.full(len(y), np.nan)
    by_fold: dict[int, model.TrainedModel] = {}
    for k in range(FOLDS):
        progress(55 + 5 * k, f"cross-validating ({k + 1} of {FOLDS})")
        test = fold == k
        # A fold whose rest lacks a label (a handful of liked films) is left unscored.
        if not test.any() or len(np.unique(y[~test])) < 2:
            continue
        # From the model of every example: four fifths of them lead to nearly the same one.
        by_fold[k] = model.train(X[~test], y[~test], w[~test], adjustment_strength, start=trained)
        oof[test] = by_fold[k].predict(X[test], adj[test])
    scored = ~np.isnan(oof)
    progress(80, "evaluating")
    metrics = model.evaluate_scores(oof[scored], y[scored], data.users[scored])
    sample = _top10_sample(data, scored, rng)
    (hits,) = _dislike_top10_hits(data, [[by_fold[fold[i]] for i in sample]], sample)
    metrics["dislike_top10_share"] = float(hits.mean()) if len(sample) else None
    if active is None:
        return trained, metrics, None
    compared = scored
    if active_since is not None:
        compared = scored & (data.observed > _seconds([active_since])[0])
    own = model.evaluate_scores(oof[compared], y[compared], data.users[compared])
    by_active = active.predict(X[compared], adj[compared])
    baseline = model.evaluate_scores(by_active, y[compared], data.users[compared])
    # The same sampled dislikes under both: those only the candidate would still put in a top
    # 10, against those only the active version would (McNemar's test of the two).
    sample = _top10_sample(data, compared, rng)
    ours, theirs = _dislike_top10_hits(
        data, [[by_fold[fold[i]] for i in sample], [active] * len(sample)], sample
    )
    own["dislike_top10_share"] = float(ours.mean()) if len(sample) else None
    baseline["dislike_top10_share"] = float(theirs.mean()) if len(sample) else None
    own["since"] = None if active_since is None else active_since.isoformat(sep=" ")
    metrics["candidate_on_same_holdout"] = own
    worse, better = int((ours & ~theirs).sum()), int((theirs & ~ours).sum())
    metrics["dislike_top10_test"] = {
        "candidate_only": worse,
        "active_only": better,
        "p_value": _one_sided_sign_test(worse, better),
    }
    # Whether the gain is more than the luck of this sample (DeLong's test), with one row per
    # (user, film): a film shown in several lists is one observation, not many.
    labels, per_group = by_pair(pair[compared], y[compared])
    metrics["auc_gain"] = model.compare_aucs(labels, per_group(oof[compared]), per_group(by_active))
    return trained, metrics, baseline


def by_pair(pair: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """One observation per (user, film) and label: the observations' labels, and a function
    averaging a score per row into a score per observation. A film shown in several lists is
    one observation; one both liked (rated) and disliked by its user is two, one of each label."""
    _, first, of_group = np.unique(pair * 2 + labels, return_index=True, return_inverse=True)
    size = np.bincount(of_group)

    def per_group(scores: np.ndarray) -> np.ndarray:
        return np.bincount(of_group, weights=scores) / size

    return labels[first], per_group


def _top10_sample(data: TrainingData, scored: np.ndarray, rng) -> np.ndarray:
    rows = np.flatnonzero(scored & data.is_dislike)
    if len(rows) > TOP10_SAMPLE:
        rows = np.sort(rng.choice(rows, TOP10_SAMPLE, replace=False))
    return rows


def _one_sided_sign_test(worse: int, better: int) -> float:
    """The chance of ``worse`` or more of ``worse + better`` discordant pairs falling one way
    when either way is as likely (McNemar's exact test, one-sided)."""
    n = worse + better
    return sum(math.comb(n, k) for k in range(worse, n + 1)) / 2**n if n else 1.0


def _dislike_top10_hits(
    data: TrainingData, models: list[list[model.TrainedModel]], rows: np.ndarray
) -> list[np.ndarray]:
    """Per model (one per row: the model that did not train on it), whether each sampled
    dislike's film would still rank in the user's top 10."""
    all_movies = np.arange(data.catalog.size)
    hits = [np.zeros(len(rows), dtype=bool) for _ in models]
    for n, i in enumerate(rows):
        u = data.users[i]
        Xu, adju = features(
            data, np.full(len(all_movies), u), all_movies, np.full(len(all_movies), data.times[i])
        )
        seen = data.seen_by_user.get(u)
        for j, per_row in enumerate(models):
            scores = per_row[n].predict(Xu, adju)
            if seen is not None and len(seen):
                scores[seen] = -np.inf
            hits[j][n] = 1 + int((scores > scores[data.movies[i]]).sum()) <= 10
    return hits
