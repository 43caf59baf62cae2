"""The scoring model: interpretable features, weighted logistic regression, offline metrics.

Pure numpy/scipy/scikit-learn over plain arrays; storage code builds the inputs.

For a (user, movie) pair the features are the user's affinity to the movie's genres, cast and
franchise (from films they liked), their aversion to the same (from their own dislikes, each
feature value weighted ``min(count / 3, 1) * decay`` like the dislike weight), the movie's
popularity and quality, and whether the user has any history. Learned weights combine them;
the user's applied feature adjustments add ``adjustment_strength * sum(weight - 1)`` over the
movie's features to the logit, so an approved "-0.15 Horror" lowers Horror films at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from scipy import sparse

from feedback_core.policy import TOP_CAST

FEATURES = (
    "genre_affinity",
    "cast_affinity",
    "franchise_affinity",
    "genre_aversion",
    "cast_aversion",
    "franchise_aversion",
    "popularity",
    "quality",
    "has_history",
)
KINDS = ("genre", "cast", "franchise")
LIKED_RATING = 4.0
QUALITY_PRIOR_COUNT = 5.0


# ------------------------------------------------------------------ catalogue


@dataclass
class Catalog:
    """The movie catalogue as sparse feature matrices (movies x vocabulary)."""

    movie_ids: np.ndarray
    titles: list[str]
    genres: list[list[str]]
    matrices: dict[str, sparse.csr_matrix]
    vocab: dict[str, dict[str, int]]
    popularity: np.ndarray
    quality: np.ndarray
    index: dict[int, int] = field(default_factory=dict)
    sizes: dict[str, np.ndarray] = field(default_factory=dict)  # feature values per movie

    @property
    def size(self) -> int:
        """Return the number of movies."""
        return len(self.movie_ids)


def build_catalog(rows: Iterable[Sequence]) -> Catalog:
    """Build a catalogue from ``(movie_id, title, genres, cast, franchise, rating_count, rating_sum)``."""
    rows = list(rows)
    vocab: dict[str, dict[str, int]] = {k: {} for k in KINDS}
    coords: dict[str, tuple[list[int], list[int]]] = {k: ([], []) for k in KINDS}
    ids, titles, genres_out, counts, sums = [], [], [], [], []
    for i, (movie_id, title, genres, cast, franchise, rating_count, rating_sum) in enumerate(rows):
        ids.append(int(movie_id))
        titles.append(title)
        genres = list(genres or [])
        genres_out.append(genres)
        counts.append(float(rating_count or 0))
        sums.append(float(rating_sum or 0.0))
        values = {
            "genre": genres,
            "cast": list(cast or [])[:TOP_CAST],
            "franchise": [franchise] if franchise else [],
        }
        for kind, names in values.items():
            for name in dict.fromkeys(names):
                j = vocab[kind].setdefault(name, len(vocab[kind]))
                coords[kind][0].append(i)
                coords[kind][1].append(j)
    n = len(rows)
    matrices = {
        k: sparse.csr_matrix(
            (np.ones(len(coords[k][0])), (coords[k][0], coords[k][1])), shape=(n, max(len(vocab[k]), 1))
        )
        for k in KINDS
    }
    popularity, quality = popularity_and_quality(np.array(counts), np.array(sums))
    return Catalog(
        movie_ids=np.array(ids, dtype=np.int64),
        titles=titles,
        genres=genres_out,
        matrices=matrices,
        vocab=vocab,
        popularity=popularity,
        quality=quality,
        index={m: i for i, m in enumerate(ids)},
        sizes={k: np.asarray(matrices[k].sum(axis=1)).ravel() for k in KINDS},
    )


def popularity_and_quality(
    counts: np.ndarray, sums: np.ndarray, most: float | None = None, prior: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return each film's popularity (log rating count, 0..1) and quality (mean rating shrunk
    towards the catalogue's mean by ``QUALITY_PRIOR_COUNT`` ratings, / 5) from its ratings.

    ``most`` (the count popularity 1 stands for) and ``prior`` (the catalogue's mean rating)
    default to what ``counts`` and ``sums`` say: give them when these are not one per film."""
    counts, sums = np.asarray(counts, dtype=float), np.asarray(sums, dtype=float)
    if most is None:
        most = counts.max() if len(counts) else math.e - 1  # log1p: 1
    popularity = np.log1p(counts) / max(math.log1p(most), 1e-9)
    if prior is None:
        total = counts.sum()
        prior = sums.sum() / total if total else 3.5
    quality = ((sums + prior * QUALITY_PRIOR_COUNT) / (counts + QUALITY_PRIOR_COUNT)) / 5.0
    return popularity, quality


# ------------------------------------------------------------------ user profiles


@dataclass
class Profiles:
    """Per-user feature-value statistics (users x vocabulary, sparse)."""

    user_index: dict[int, int]
    liked: dict[str, sparse.csr_matrix]  # counts of liked films having the value
    n_liked: np.ndarray
    aversion: dict[str, sparse.csr_matrix]  # decayed dislikes / (decayed dislikes + likes + 1)
    adjust: dict[str, sparse.csr_matrix]  # effective weight - 1


def decay_of(days: np.ndarray) -> np.ndarray:
    """Vectorised ``max(0.5, 1 - days / 180)``."""
    return np.maximum(0.5, 1.0 - np.maximum(days, 0.0) / 180.0)


def build_profiles(
    catalog: Catalog,
    liked_pairs: Iterable[tuple[int, int]],
    patterns: Iterable[tuple[int, str, str, int, datetime | None]],
    adjustments: Iterable[tuple[int, str, str, float]],
    now: datetime,
    weight_bounds: tuple[float, float] = (0.1, 2.0),
    users: Iterable[int] = (),
) -> Profiles:
    """Build profiles from liked (user, movie) pairs, dislike patterns and adjustment sums."""
    liked_pairs = [(int(u), int(m)) for u, m in liked_pairs if int(m) in catalog.index]
    patterns = list(patterns)
    adjustments = list(adjustments)
    user_ids = sorted(
        {u for u, _ in liked_pairs}
        | {int(p[0]) for p in patterns}
        | {int(a[0]) for a in adjustments}
        | set(users)
    )
    uidx = {u: i for i, u in enumerate(user_ids)}
    n_users = max(len(user_ids), 1)
    rows = [uidx[u] for u, _ in liked_pairs]
    cols = [catalog.index[m] for _, m in liked_pairs]
    like_matrix = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_users, max(catalog.size, 1)))
    liked = {k: (like_matrix @ catalog.matrices[k]).tocsr() for k in KINDS}
    n_liked = np.asarray(like_matrix.sum(axis=1)).ravel()

    # Aversion to a feature value: decayed dislikes against likes, d / (d + likes + 1) with
    # d = count * decay, the decay of the dislike weight.
    aversion = {}
    for kind in KINDS:
        r, c, cnt, days = [], [], [], []
        vocab = catalog.vocab[kind]
        for user, ptype, value, count, last in patterns:
            if ptype != kind or value not in vocab or count <= 0:
                continue
            r.append(uidx[int(user)])
            c.append(vocab[value])
            cnt.append(float(count))
            days.append((now - last).total_seconds() / 86400.0 if last is not None else 0.0)
        d = np.array(cnt) * decay_of(np.array(days))
        likes = np.asarray(liked[kind][r, c]).ravel() if r else np.zeros(0)
        aversion[kind] = sparse.csr_matrix(
            (d / (d + likes + 1.0), (r, c)), shape=(n_users, max(len(vocab), 1))
        )

    low, high = weight_bounds
    adjust = {}
    for kind in KINDS:
        r, c, v = [], [], []
        vocab = catalog.vocab[kind]
        for user, ftype, value, total in adjustments:
            if ftype != kind or value not in vocab:
                continue
            r.append(uidx[int(user)])
            c.append(vocab[value])
            v.append(min(max(1.0 + total, low), high) - 1.0)
        adjust[kind] = sparse.csr_matrix((v, (r, c)), shape=(n_users, max(len(vocab), 1)))
    return Profiles(uidx, liked, n_liked, aversion, adjust)


# ------------------------------------------------------------------ features


def _pair_values(
    user_matrix: sparse.csr_matrix, u: np.ndarray, movie_matrix: sparse.csr_matrix, m: np.ndarray
):
    """Gather, for each pair i, the user's values at the movie's feature columns.

    Returns ``(values, rows)``: ``rows`` is the movie submatrix whose ``indptr`` delimits each
    pair's values (a movie's entries are 1, so values are the user's values as they are).
    """
    if u[0] == u[-1] and np.all(u == u[0]):
        # One user against many movies (recommendation): a dense lookup.
        whole = len(m) == movie_matrix.shape[0] and m[0] == 0 and np.all(np.diff(m) == 1)
        rows = movie_matrix if whole else movie_matrix[m]
        vec = user_matrix[u[0]].toarray().ravel()
        return vec[rows.indices] * rows.data, rows
    rows = movie_matrix[m]
    owners = np.repeat(u, np.diff(rows.indptr))
    values = np.asarray(user_matrix[owners, rows.indices]).ravel() * rows.data
    return values, rows


def _reduce(ufunc, values: np.ndarray, rows: sparse.csr_matrix) -> np.ndarray:
    out = np.zeros(rows.shape[0])
    starts = rows.indptr[:-1]
    nonempty = np.diff(rows.indptr) > 0
    if values.size:
        out[nonempty] = ufunc.reduceat(values, starts[nonempty])
    return out


def _rowdot(
    user_matrix: sparse.csr_matrix, u: np.ndarray, movie_matrix: sparse.csr_matrix, m: np.ndarray
) -> np.ndarray:
    """Return, for each pair i, the dot product of user row u[i] and movie row m[i]."""
    if len(u) == 0:
        return np.zeros(0)
    return _reduce(np.add, *_pair_values(user_matrix, u, movie_matrix, m))


def _rowmax(
    user_matrix: sparse.csr_matrix, u: np.ndarray, movie_matrix: sparse.csr_matrix, m: np.ndarray
) -> np.ndarray:
    """Return, for each pair i, the largest user value over the movie's feature values (>= 0)."""
    if len(u) == 0:
        return np.zeros(0)
    return np.maximum(_reduce(np.maximum, *_pair_values(user_matrix, u, movie_matrix, m)), 0.0)


def feature_matrix(
    catalog: Catalog,
    profiles: Profiles,
    users: np.ndarray,
    movies: np.ndarray,
    aversion: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(X, adjustment)`` for pairs given as profile-row and catalogue-row indices.

    ``aversion``: the three aversion columns when the caller has them (training takes them as
    of each example, ``aversion_as_of``); else they come from the profiles.
    """
    n = len(users)
    mats = catalog.matrices
    n_liked = profiles.n_liked[users]
    X = np.zeros((n, len(FEATURES)))
    # Affinity to a film's genres: the share of the user's liked films that have its best genre.
    X[:, 0] = _rowmax(profiles.liked["genre"], users, mats["genre"], movies) / np.maximum(n_liked, 1)
    c_hits = _rowdot(profiles.liked["cast"], users, mats["cast"], movies)
    X[:, 1] = c_hits / (c_hits + 2.0)
    f_hits = _rowdot(profiles.liked["franchise"], users, mats["franchise"], movies)
    X[:, 2] = f_hits / (f_hits + 1.0)
    # A film is disliked when any one of its genres (or cast, franchise) is: the largest aversion.
    if aversion is not None:
        X[:, 3:6] = aversion
    else:
        for col, kind in ((3, "genre"), (4, "cast"), (5, "franchise")):
            X[:, col] = _rowmax(profiles.aversion[kind], users, mats[kind], movies)
    X[:, 6] = catalog.popularity[movies]
    X[:, 7] = catalog.quality[movies]
    X[:, 8] = (n_liked > 0).astype(float)
    adjustment = sum(_rowdot(profiles.adjust[k], users, mats[k], movies) for k in KINDS)
    return X, np.asarray(adjustment, dtype=float)


@dataclass
class DislikeHistory:
    """Users' dislikes of feature values, indexed for aversions as of any moment.

    Per kind: ``codes`` sorts the events by (user and value, time) as ``key_id * span + time
    rank`` (``keys``: the distinct user-and-value keys, ``moments``: the distinct times, so
    ``span = len(moments) + 1``), ``times`` are the events' times in that order.
    """

    keys: dict[str, np.ndarray]
    starts: dict[str, np.ndarray]  # per key: the position of its first event
    codes: dict[str, np.ndarray]
    times: dict[str, np.ndarray]
    moments: dict[str, np.ndarray]


def dislike_history(
    catalog: Catalog, events: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
) -> DislikeHistory:
    """Index ``events[kind] = (profile row, vocabulary index, time in seconds)`` of every dislike."""
    history = DislikeHistory({}, {}, {}, {}, {})
    for kind in KINDS:
        ev_user, ev_value, ev_time = events.get(
            kind, (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
        )
        width = np.int64(max(len(catalog.vocab[kind]), 1))
        ev_key = np.asarray(ev_user, dtype=np.int64) * width + np.asarray(ev_value, dtype=np.int64)
        ev_time = np.asarray(ev_time, dtype=float)
        order = np.lexsort((ev_time, ev_key))
        ev_key, ev_time = ev_key[order], ev_time[order]
        keys, key_id = np.unique(ev_key, return_inverse=True)
        moments, rank = np.unique(ev_time, return_inverse=True)
        span = np.int64(len(moments) + 1)
        history.keys[kind] = keys
        history.starts[kind] = np.searchsorted(ev_key, keys)
        history.codes[kind] = key_id.astype(np.int64) * span + rank  # sorted, as the events are
        history.times[kind] = ev_time
        history.moments[kind] = moments
    return history


def aversion_as_of(
    catalog: Catalog,
    profiles: Profiles,
    history: DislikeHistory,
    users: np.ndarray,
    movies: np.ndarray,
    times: np.ndarray,
) -> np.ndarray:
    """Return the three aversion features of each pair as they stood at the pair's own time.

    ``history`` holds the users' dislikes (``dislike_history``); ``times`` are seconds, like
    its times. A pair sees only the dislikes strictly before its time, with the decay of that
    moment, so a dislike never explains itself and the model learns how past dislikes predict
    the next ones: the relation the live model uses (``build_profiles`` over every dislike up
    to now).
    """
    n = len(users)
    out = np.zeros((n, len(KINDS)))
    for col, kind in enumerate(KINDS):
        keys, starts, codes, ev_time, moments = (
            history.keys[kind],
            history.starts[kind],
            history.codes[kind],
            history.times[kind],
            history.moments[kind],
        )
        if n == 0 or len(keys) == 0:
            continue
        width = np.int64(max(len(catalog.vocab[kind]), 1))
        span = np.int64(len(moments) + 1)
        rows = catalog.matrices[kind][movies]
        pair = np.repeat(np.arange(n), np.diff(rows.indptr))
        q_user, q_value, q_time = users[pair].astype(np.int64), rows.indices.astype(np.int64), times[pair]
        q_key = q_user * width + q_value
        found = np.minimum(np.searchsorted(keys, q_key), len(keys) - 1)
        known = keys[found] == q_key
        first = starts[found]
        # Past its events before the moment: those whose time ranks below the moment's.
        end = np.searchsorted(codes, found * span + np.searchsorted(moments, q_time))
        count = np.where(known, end - first, 0)
        last = ev_time[np.maximum(end - 1, 0)]
        days = (q_time - last) / 86400.0
        d = np.where(count > 0, count * decay_of(days), 0.0)
        likes = np.asarray(profiles.liked[kind][q_user, q_value]).ravel() if len(q_user) else np.zeros(0)
        out[:, col] = np.maximum(_reduce(np.maximum, d / (d + likes + 1.0), rows), 0.0)
    return out


# ------------------------------------------------------------------ training and scoring


@dataclass(frozen=True)
class TrainedModel:
    """Learned weights of one model version."""

    coefficients: dict[str, float]
    intercept: float
    adjustment_strength: float

    def as_dict(self) -> dict:
        """Return the JSON stored with a model version."""
        return {
            "coefficients": self.coefficients,
            "intercept": self.intercept,
            "adjustment_strength": self.adjustment_strength,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "TrainedModel":
        """Rebuild from stored JSON."""
        return cls(
            {k: float(v) for k, v in data["coefficients"].items()},
            float(data["intercept"]),
            float(data.get("adjustment_strength", 3.0)),
        )

    def logits(self, X: np.ndarray, adjustment: np.ndarray) -> np.ndarray:
        """Return the logit of each row."""
        w = np.array([self.coefficients.get(f, 0.0) for f in FEATURES])
        return X @ w + self.intercept + self.adjustment_strength * adjustment

    def predict(self, X: np.ndarray, adjustment: np.ndarray) -> np.ndarray:
        """Return the probability that the user likes each movie."""
        return 1.0 / (1.0 + np.exp(-np.clip(self.logits(X, adjustment), -30, 30)))


def prior_model(adjustment_strength: float = 3.0) -> TrainedModel:
    """Return the hand-set starting point used before any training: popular and good first."""
    coefficients = dict.fromkeys(FEATURES, 0.0)
    coefficients.update(
        genre_affinity=2.0,
        cast_affinity=0.5,
        franchise_affinity=0.5,
        genre_aversion=-2.0,
        cast_aversion=-1.0,
        franchise_aversion=-1.0,
        popularity=1.0,
        quality=2.0,
    )
    return TrainedModel(coefficients, -1.5, adjustment_strength)


# Interpretable signs: liking a film's genres/cast/franchise can only raise its score, disliking
# them can only lower it, and a better film is never worse. Popularity and history are free.
SIGN_BOUNDS = {
    "genre_affinity": (0.0, None),
    "cast_affinity": (0.0, None),
    "franchise_affinity": (0.0, None),
    "genre_aversion": (None, 0.0),
    "cast_aversion": (None, 0.0),
    "franchise_aversion": (None, 0.0),
    "quality": (0.0, None),
}


def train(
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    adjustment_strength: float = 3.0,
    prior: TrainedModel | None = None,
    prior_strength: float = 20.0,
    start: TrainedModel | None = None,
) -> TrainedModel:
    """Fit weighted logistic regression, shrunk towards ``prior`` and with sign constraints.

    The penalty ``prior_strength / 2 * |w - w_prior|^2`` keeps a model trained on little
    evidence close to the sensible starting point; with more evidence the data decide.
    ``start``: where the search begins (the prior when not given), e.g. a model fitted to
    nearly the same data, which it then reaches in a few steps. Raises ValueError when one
    class is missing.
    """
    from scipy.optimize import minimize

    if len(np.unique(y)) < 2:
        raise ValueError("training needs both liked films and negative examples")
    prior = prior or prior_model(adjustment_strength)
    w0 = np.array([prior.coefficients.get(f, 0.0) for f in FEATURES] + [prior.intercept])
    Xb = np.hstack([X, np.ones((len(X), 1))])
    sw = weights / weights.mean()
    penalty = np.r_[np.full(len(FEATURES), prior_strength), 0.0]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = Xb @ w
        # log(1 + e^z) - y z, computed stably
        value = np.sum(sw * (np.logaddexp(0.0, z) - y * z)) + 0.5 * np.sum(penalty * (w - w0) ** 2)
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
        grad = Xb.T @ (sw * (p - y)) + penalty * (w - w0)
        return value, grad

    bounds = [SIGN_BOUNDS.get(f, (None, None)) for f in FEATURES] + [(None, None)]
    first = w0 if start is None else np.array([start.coefficients[f] for f in FEATURES] + [start.intercept])
    first = np.clip(
        first,
        [b[0] if b[0] is not None else -np.inf for b in bounds],
        [b[1] if b[1] is not None else np.inf for b in bounds],
    )
    result = minimize(loss, first, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 500})
    coefficients = {f: float(c) for f, c in zip(FEATURES, result.x[:-1])}
    return TrainedModel(coefficients, float(result.x[-1]), adjustment_strength)


def auc(y: np.ndarray, scores: np.ndarray) -> float | None:
    """Return the area under the ROC curve (Mann-Whitney, ties count half); None with one class."""
    from scipy.stats import rankdata

    positives = int(np.sum(y == 1))
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return None
    ranks = rankdata(scores)
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


MIN_ROWS_PER_LABEL = 10  # fewer, and DeLong's normal approximation says more than the data


def compare_aucs(y: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray) -> dict | None:
    """Compare two models' AUCs on the same rows with DeLong's test (DeLong, DeLong and
    Clarke-Pearson 1988; the midrank form of Sun and Xu 2014).

    Returns the two AUCs (``auc_a``, ``auc_b``), their ``difference``, its ``standard_error``,
    the 95% interval ``low``..``high`` and the two-sided ``p_value``; None with fewer than
    ``MIN_ROWS_PER_LABEL`` rows of a label: on a handful of rows the variance can vanish and call
    any difference certain (two positives and two negatives gave p = 0).
    """
    from scipy.stats import norm, rankdata

    y = np.asarray(y)
    positive = y == 1
    m, n = int(positive.sum()), int((~positive).sum())
    if m < MIN_ROWS_PER_LABEL or n < MIN_ROWS_PER_LABEL:
        return None
    components = []
    for scores in (np.asarray(scores_a, dtype=float), np.asarray(scores_b, dtype=float)):
        every = rankdata(scores)
        x, z = every[positive], every[~positive]
        v10 = (x - rankdata(scores[positive])) / n  # per positive: the share of negatives below it
        v01 = 1.0 - (z - rankdata(scores[~positive])) / m  # per negative: the share of positives above it
        components.append((v10, v01))
    (a10, a01), (b10, b01) = components
    difference = float(a10.mean() - b10.mean())
    d10, d01 = a10 - b10, a01 - b01
    variance = d10.var(ddof=1) / m + d01.var(ddof=1) / n
    se = math.sqrt(max(variance, 0.0))
    if se == 0.0:  # the two differ alike on every pair (say, a perfect ranking against all ties)
        p_value = 1.0 if difference == 0.0 else 0.0
    else:
        p_value = float(2 * norm.sf(abs(difference) / se))
    half = float(norm.ppf(0.975)) * se
    return {
        "auc_a": float(a10.mean()),
        "auc_b": float(b10.mean()),
        "difference": difference,
        "standard_error": se,
        "low": difference - half,
        "high": difference + half,
        "p_value": p_value,
    }


def evaluate(model: TrainedModel, X: np.ndarray, adj: np.ndarray, y: np.ndarray, users: np.ndarray) -> dict:
    """Return AUC, log loss, accuracy and precision@10 (per user) on held-out rows."""
    return evaluate_scores(model.predict(X, adj) if len(y) else np.zeros(0), y, users)


def evaluate_scores(p: np.ndarray, y: np.ndarray, users: np.ndarray) -> dict:
    """``evaluate`` of predictions already made (``p``: the probability of each row's like).

    Beside accuracy and precision@10, what no model at all would score on the same rows:
    ``accuracy_baseline`` by always answering the commoner label, ``precision_at_10_baseline``
    by ranking each user's films at random (the share of them liked). A model is only as good
    as its lead over these: accuracy rises with the share of likes whatever the model does.
    """
    if len(y) == 0:
        return {
            "auc": None,
            "log_loss": None,
            "accuracy": None,
            "accuracy_baseline": None,
            "precision_at_10": None,
            "precision_at_10_baseline": None,
            "held_out": 0,
        }
    clipped = np.clip(p, 1e-7, 1 - 1e-7)
    log_loss = float(-np.mean(y * np.log(clipped) + (1 - y) * np.log(1 - clipped)))
    precisions, by_chance = [], []
    order = np.lexsort((-p, users))
    su, sy = users[order], y[order]
    starts = np.flatnonzero(np.r_[True, su[1:] != su[:-1]])
    ends = np.r_[starts[1:], len(su)]
    for s, e in zip(starts, ends):
        top = sy[s : min(e, s + 10)]
        if sy[s:e].any():
            precisions.append(top.mean())
            by_chance.append(sy[s:e].mean())  # a random top 10's expected share of likes
    liked = float((y == 1).mean())
    return {
        "auc": auc(y, p),
        "log_loss": log_loss,
        "accuracy": float(((p >= 0.5) == (y == 1)).mean()),
        "accuracy_baseline": max(liked, 1.0 - liked),
        "precision_at_10": float(np.mean(precisions)) if precisions else None,
        "precision_at_10_baseline": float(np.mean(by_chance)) if by_chance else None,
        "held_out": int(len(y)),
    }


def top_k(scores: np.ndarray, k: int, excluded: np.ndarray | None = None) -> np.ndarray:
    """Return the indices of the ``k`` best scores (ties by index), skipping excluded rows."""
    scores = scores.copy()
    if excluded is not None and len(excluded):
        scores[excluded] = -np.inf
    k = min(k, int(np.isfinite(scores).sum()))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    # Everything strictly above the k-th best score, then the lowest-index ties at it.
    kth = -np.partition(-scores, k - 1)[k - 1]
    above = np.flatnonzero(scores > kth)
    ties = np.flatnonzero(scores == kth)[: k - len(above)]
    chosen = np.concatenate([above, ties])
    return chosen[np.lexsort((chosen, -scores[chosen]))]
