"""Build the database bench/scale.py measures on: 10 million impressions and 1 million dislikes.

    .venv/bin/python bench/scale_data.py                      # the cached SQLite file, built if missing
    .venv/bin/python bench/scale_data.py --pg postgresql+psycopg://postgres:postgres@localhost/feedback_test_c
    .venv/bin/python bench/scale_data.py --impressions 1000000 --dislikes 100000   # a smaller one

Never through the library's writers: numpy draws the rows and they go in with executemany
(SQLite) or COPY (PostgreSQL), in one transaction. The world is bench/prefill.py's (20,000
users with heavy-tailed activity, 10,000 films with a popular head, 180 days). Lists of 10
films are shown at random moments, each served by the version active then (a retraining every
30 days); three quarters of the dislikes are of a shown item (its list, version and predicted
score), the rest arrive without a list, like prefill.py's. Every negative example but the last
few is used by a retraining, proposals older than two weeks are decided (about 2% applied, the
rest rejected, each decision audited as the application does), and the aggregates are then
computed from the raw rows with GROUP BY (bench/prefill.py's statements plus the impressions),
so every maintained table agrees with the events; ``check_consistency`` proves it after a build.

The SQLite file is cached under ``bench/.cache/`` keyed by sizes and generator version; on
PostgreSQL the data lives in the schema ``bench_scale_<dislikes>_<impressions>`` of the given
database, reused while its comment names the same generator version. Either is brought to the
current schema revision (``upgrade_database``) before use.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from prefill import (
    CACHE,
    DAYS,
    DISLIKE_COLS,
    EXAMPLE_COLS,
    MOVIE_COLS,
    MOVIES,
    REASON_SHARES,
    REASONS,
    TEXTS,
    USERS,
    World,
    _bulk_load_pragmas,
    aggregate_sql,
    bulk_insert,
    remove_sqlite,
)
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

from feedback_core import Settings, policy
from feedback_core.db import make_engine, upgrade_database
from feedback_core.model import prior_model
from feedback_core.settings import BLAMES

GENERATOR_VERSION = 1  # bump when the data changes, so cached databases are rebuilt
SET_SIZE = 10
ATTRIBUTED_SHARE = 0.75  # dislikes of a shown item; the rest arrive without a list
APPLIED_SHARE = 0.02  # of the decided proposals; the rest were rejected
APPROVERS = ("alice@example.com", "bob@example.com", "carol@example.com")
CHUNK_SETS = 100_000  # lists generated and written per step

SET_COLS = ("recommendation_set_id", "user_id", "model_version_id", "source", "created_at")
IMPRESSION_COLS = ("impression_id", "recommendation_set_id", "user_id", "movie_id", "rank")
IMPRESSION_COLS += ("predicted_score", "model_version_id", "shown_at")
VERSION_COLS = ("version_id", "parent_id", "status", "active_slot", "trigger", "created_at")
VERSION_COLS += ("created_by", "activated_at", "settings", "weights", "metrics", "examples", "accuracy")
JOB_COLS = ("job_id", "status", "trigger", "requested_by", "created_at", "started_at", "finished_at")
JOB_COLS += ("heartbeat_at", "worker_id", "progress", "stage", "result_version_id", "examples_claimed")
PROPOSAL_COLS = ("adjustment_id", "dislike_id", "user_id", "feature_type", "feature_value")
PROPOSAL_COLS += ("proposed_magnitude", "magnitude", "reason", "status", "created_at", "decided_by")
PROPOSAL_COLS += ("decided_at", "applied_at")
AUDIT_COLS = ("audit_id", "at", "actor", "action", "entity_type", "entity_id", "outcome", "details")
WEIGHT_COLS = ("user_id", "feature_type", "feature_value", "adjustment_sum", "updated_at")
IMPACT_COLS = ("impact_id", "dislike_id", "adjustment_id", "user_id", "feature_type", "feature_value")
IMPACT_COLS += ("adjustment", "weight_before", "weight_after", "model_version_id", "action", "actor")
IMPACT_COLS += ("created_at",)
SEQUENCES = {
    "model_versions": "version_id",
    "recommendation_sets": "recommendation_set_id",
    "impressions": "impression_id",
    "user_dislikes": "dislike_id",
    "negative_examples": "example_id",
    "feature_adjustments": "adjustment_id",
    "retrain_jobs": "job_id",
    "audit_log": "audit_id",
    "dislike_feedback_impact": "impact_id",
}


def say(message: str) -> None:
    """Print build progress to stderr."""
    print(message, file=sys.stderr, flush=True)


def ts_text(moments: np.ndarray) -> list[str]:
    """Return datetime64 values as the text SQLAlchemy stores on SQLite (PostgreSQL reads it too)."""
    return [s.replace("T", " ") for s in np.datetime_as_string(moments, unit="us").tolist()]


def fmt(moment: datetime) -> str:
    """Return one datetime as the text SQLAlchemy stores on SQLite."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


# ---------------------------------------------------------------- the build


def build(engine, world: World, dislikes: int, impressions: int, now: datetime, seed: int = 23) -> None:
    """Fill a freshly migrated database with the lists, dislikes and everything they imply."""
    rng = np.random.default_rng(seed)
    pg = engine.dialect.name == "postgresql"
    settings = Settings(database_url="sqlite://")  # the defaults the application records with
    started = time.perf_counter()
    start, end = now - timedelta(days=DAYS), now - timedelta(hours=1)
    start64, span_us = np.datetime64(start, "us"), int((end - start).total_seconds() * 1e6)
    n_sets = impressions // SET_SIZE
    n_attributed = min(int(round(dislikes * ATTRIBUTED_SHARE)), n_sets * SET_SIZE)
    picked: list[dict[str, np.ndarray]] = []  # the shown items that will be disliked
    with engine.begin() as conn:
        bulk_insert(
            conn,
            "movies",
            MOVIE_COLS,
            (
                (*m[:2], json.dumps(m[2]), json.dumps(m[3]), *m[4:], 0, 0.0, 0, fmt(start))
                for m in world.movies
            ),
        )
        unattributed = dislikes - n_attributed
        loose_at = start64 + np.sort(rng.integers(0, span_us, unattributed)).astype("timedelta64[us]")
        # A retraining every 30 days; the last one two minutes before the end, so a handful of
        # dislikes (about eight) wait for the next one, below the threshold.
        version_at = [start64 - np.timedelta64(1, "D")]
        version_at += [start64 + np.timedelta64(d, "D") for d in range(30, DAYS, 30)]
        version_at.append(start64 + np.timedelta64(span_us - 120_000_000, "us"))
        versions = np.array(version_at, dtype="datetime64[us]")
        bulk_insert(conn, "model_versions", VERSION_COLS, _version_rows(rng, versions))

        set_at = start64 + np.sort(rng.integers(0, span_us, n_sets)).astype("timedelta64[us]")
        served_by = np.searchsorted(versions, set_at, side="right")  # 1-based: active at that moment
        set_users = rng.choice(USERS, size=n_sets, p=world.user_p) + 1
        share = n_attributed / max(n_sets * SET_SIZE, 1)
        # Indexes built once after the load cost a fraction of keeping them up row by row.
        restore = _drop_indexes(conn, ("impressions", "audit_log")) if pg else []
        for first in range(0, n_sets, CHUNK_SETS):
            last = min(first + CHUNK_SETS, n_sets)
            n = last - first
            items = _distinct_items(rng, world.movie_p, n)
            scores = np.round(-np.sort(-rng.beta(5, 2, size=(n, SET_SIZE)), axis=1), 3)
            set_ids = np.arange(first + 1, last + 1)
            at_text = ts_text(set_at[first:last])
            bulk_insert(
                conn,
                "recommendation_sets",
                SET_COLS,
                zip(
                    set_ids.tolist(),
                    set_users[first:last].tolist(),
                    served_by[first:last].tolist(),
                    ["import"] * n,
                    at_text,
                    strict=True,
                ),
            )
            flat = n * SET_SIZE
            bulk_insert(
                conn,
                "impressions",
                IMPRESSION_COLS,
                zip(
                    range(first * SET_SIZE + 1, first * SET_SIZE + flat + 1),
                    np.repeat(set_ids, SET_SIZE).tolist(),
                    np.repeat(set_users[first:last], SET_SIZE).tolist(),
                    items.ravel().tolist(),
                    np.tile(np.arange(1, SET_SIZE + 1), n).tolist(),
                    scores.ravel().tolist(),
                    np.repeat(served_by[first:last], SET_SIZE).tolist(),
                    [t for t in at_text for _ in range(SET_SIZE)],
                    strict=True,
                ),
            )
            # The disliked ones: a uniform sample of this chunk's items, as many as its share.
            k = int(round(share * (last * SET_SIZE))) - sum(len(p["set"]) for p in picked)
            chosen = np.sort(rng.choice(flat, size=min(max(k, 0), flat), replace=False))
            rows, cols = chosen // SET_SIZE, chosen % SET_SIZE
            picked.append(
                {
                    "set": set_ids[rows],
                    "user": set_users[first:last][rows],
                    "movie": items[rows, cols],
                    "score": scores[rows, cols],
                    "version": served_by[first:last][rows],
                    "shown": set_at[first:last][rows],
                }
            )
            say(f"  lists: {last * SET_SIZE:,} / {n_sets * SET_SIZE:,} impressions ({_since(started)})")

        # ------------------------------------------------ dislikes, examples, proposals
        shown = {key: np.concatenate([p[key] for p in picked]) for key in picked[0]}
        # Disliked some minutes after the list was shown, and before the end.
        room = (np.datetime64(end, "us") - shown["shown"]).astype("int64")
        delay = rng.exponential(600e6, len(room))
        delay = np.where(delay < room, delay, rng.random(len(room)) * room).astype("int64")
        attributed_at = shown["shown"] + delay.astype("timedelta64[us]")
        loose = world.sample(rng, unattributed)
        at = np.concatenate([attributed_at, loose_at])
        order = np.argsort(at, kind="stable")
        at = at[order]
        users = np.concatenate([shown["user"], loose["user"]])[order]
        movie_ids = np.concatenate([shown["movie"], loose["movie"]])[order]
        scores = np.concatenate([shown["score"], loose["score"]])[order]
        set_of = np.concatenate([shown["set"], np.zeros(unattributed, dtype="int64")])[order]
        version_of = np.concatenate([shown["version"], np.zeros(unattributed, dtype="int64")])[order]
        reasons = rng.choice(len(REASONS), size=dislikes, p=REASON_SHARES)
        texts = rng.choice(len(TEXTS), size=dislikes, p=(0.9, 0.02, 0.02, 0.02, 0.02, 0.02))
        used_by = np.searchsorted(versions, at, side="left") + 1  # the first version trained after it
        pending = used_by > len(versions)
        at_text = ts_text(at)
        decided_at = at + np.timedelta64(1, "D")
        decided_text = ts_text(decided_at)
        active_then = np.searchsorted(versions, decided_at, side="right")
        version_text = ts_text(versions)
        decided_before = np.datetime64(now - timedelta(days=14), "us")

        movie_json = {m[0]: (m[1], json.dumps(m[2]), json.dumps(m[3]), m[4]) for m in world.movies}
        proposal_cache: dict[tuple[int, int], list] = {}
        weights: dict[tuple, float] = defaultdict(float)
        counters = {"adjustment": 0, "audit": 0, "impact": 0}
        audit_rows, impact_rows = [], []
        for chunk in range(0, dislikes, 100_000):
            stop = min(chunk + 100_000, dislikes)
            dislike_rows, example_rows, proposal_rows = [], [], []
            for i in range(chunk, stop):
                movie_id, user_id, reason = int(movie_ids[i]), int(users[i]), int(reasons[i])
                title, genres, cast, franchise = movie_json[movie_id]
                score = float(scores[i])
                dislike_id = i + 1
                dislike_rows.append(
                    (
                        dislike_id,
                        user_id,
                        movie_id,
                        title,
                        int(set_of[i]) or None,
                        int(version_of[i]) or None,
                        score,
                        REASONS[reason],
                        TEXTS[texts[i]],
                        genres,
                        cast,
                        franchise,
                        None,
                        at_text[i],
                        None,
                    )
                )
                used = not pending[i]
                version = int(used_by[i]) if used else None
                example_rows.append(
                    (
                        dislike_id,
                        dislike_id,
                        user_id,
                        movie_id,
                        settings.DISLIKE_WEIGHT_MULTIPLIER,
                        score,
                        at_text[i],
                        "used" if used else "pending",
                        version,
                        version_text[version - 1] if used else None,
                    )
                )
                key = (reason, movie_id)
                if key not in proposal_cache:
                    m = world.movies[movie_id - 1]
                    proposal_cache[key] = policy.propose_adjustments(
                        settings.reason_policy[REASONS[reason]], m[2], m[3], m[4]
                    )
                decided = at[i] < decided_before
                for p in proposal_cache[key]:
                    counters["adjustment"] += 1
                    adjustment_id = counters["adjustment"]
                    if not decided:
                        proposal_rows.append(
                            (adjustment_id, dislike_id, user_id, p.feature_type, p.feature_value)
                            + (p.magnitude, p.magnitude, REASONS[reason], "proposed", at_text[i])
                            + (None, None, None)
                        )
                        continue
                    when = decided_text[i]
                    actor = APPROVERS[adjustment_id % len(APPROVERS)]
                    feature = f"{p.feature_type}:{p.feature_value}"
                    details = {"user_id": user_id, "feature": feature, "status_before": "proposed"}
                    applied = rng.random() < APPLIED_SHARE
                    if applied:
                        wkey = (user_id, p.feature_type, p.feature_value)
                        before = policy.effective_weight(
                            weights[wkey], settings.weight_min, settings.weight_max
                        )
                        weights[wkey] += p.magnitude
                        after = policy.effective_weight(
                            weights[wkey], settings.weight_min, settings.weight_max
                        )
                        counters["impact"] += 1
                        impact_rows.append(
                            (counters["impact"], dislike_id, adjustment_id, user_id, p.feature_type)
                            + (p.feature_value, p.magnitude, before, after, int(active_then[i]))
                            + ("applied", actor, when)
                        )
                        details |= {"magnitude": p.magnitude, "weight_before": before, "weight_after": after}
                    details["status_after"] = "applied" if applied else "rejected"
                    proposal_rows.append(
                        (adjustment_id, dislike_id, user_id, p.feature_type, p.feature_value)
                        + (p.magnitude, p.magnitude, REASONS[reason], "applied" if applied else "rejected")
                        + (at_text[i], actor, when, when if applied else None)
                    )
                    counters["audit"] += 1
                    audit_rows.append(
                        (counters["audit"], when, actor)
                        + ("adjustment.approved" if applied else "adjustment.rejected", "adjustment")
                        + (str(adjustment_id), "ok", json.dumps(details))
                    )
            bulk_insert(conn, "user_dislikes", DISLIKE_COLS, dislike_rows)
            bulk_insert(conn, "negative_examples", EXAMPLE_COLS, example_rows)
            bulk_insert(conn, "feature_adjustments", PROPOSAL_COLS, proposal_rows)
            say(f"  dislikes: {stop:,} / {dislikes:,} ({_since(started)})")

        # ------------------------------------------------ retrainings and their audit
        job_rows = []
        for v in range(1, len(versions) + 1):
            made = versions[v - 1].astype(datetime)
            trained = int((used_by == v).sum())
            conn.execute(
                text("UPDATE model_versions SET examples = :e WHERE version_id = :v"),
                {"e": json.dumps({"new_negative_examples": trained}), "v": v},
            )
            audit_at = [(made, "model.activated", "model_version", v, {"previous_version_id": v - 1 or None})]
            if v > 1:
                job_rows.append(
                    (v - 1, "succeeded", "threshold", "system", fmt(made - timedelta(minutes=5)))
                    + (fmt(made - timedelta(minutes=4)), fmt(made), fmt(made), "bench:1", 100, "done", v)
                    + (trained,)
                )
                audit_at.insert(0, (made, "retrain.succeeded", "retrain_job", v - 1, {"version_id": v}))
            for when, action, entity, entity_id, details in audit_at:
                counters["audit"] += 1
                audit_rows.append(
                    (counters["audit"], fmt(when), "system", action, entity, str(entity_id), "ok")
                    + (json.dumps(details),)
                )
        bulk_insert(conn, "retrain_jobs", JOB_COLS, job_rows)
        audit_rows.sort(key=lambda r: r[1])
        bulk_insert(conn, "audit_log", AUDIT_COLS, [(i + 1, *r[1:]) for i, r in enumerate(audit_rows)])
        bulk_insert(conn, "dislike_feedback_impact", IMPACT_COLS, impact_rows)
        bulk_insert(
            conn,
            "user_feature_weights",
            WEIGHT_COLS,
            [(u, k, v, s, fmt(now - timedelta(days=14))) for (u, k, v), s in sorted(weights.items())],
        )
        say(f"  versions, jobs, {len(audit_rows):,} audit records ({_since(started)})")

        for statement in restore:
            conn.execute(text(statement))
        if restore:
            say(f"  indexes rebuilt ({_since(started)})")

        # ------------------------------------------------ the aggregates, from the raw rows
        for statement in [*aggregate_sql(pg), daily_impressions_sql(pg)]:
            conn.execute(text(statement))
            say(f"  aggregate: {statement.split('(')[0].removeprefix('INSERT INTO ')} ({_since(started)})")
        if pg:
            for table, column in SEQUENCES.items():
                conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                        f"(SELECT coalesce(max({column}), 1) FROM {table}))"
                    )
                )


def _drop_indexes(conn, tables: tuple[str, ...]) -> list[str]:
    """Drop the indexes and constraints of tables nothing refers to; return the statements restoring them."""
    conn.execute(text("SET LOCAL maintenance_work_mem = '1GB'"))
    keys, indexes, foreign = [], [], []
    for table in tables:
        constraints = conn.execute(
            text(
                "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = to_regclass(:t) AND contype IN ('p', 'u', 'f')"
            ),
            {"t": table},
        ).all()
        owned = {name for name, _, _ in constraints}
        for name, definition in conn.execute(
            text(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = :t"
            ),
            {"t": table},
        ):
            if name not in owned:
                conn.execute(text(f'DROP INDEX "{name}"'))
                indexes.append(definition)
        for name, kind, definition in constraints:
            conn.execute(text(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"'))
            (foreign if kind == "f" else keys).append(
                f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}'
            )
    return keys + indexes + foreign


def _version_rows(rng: np.random.Generator, versions: np.ndarray) -> list[tuple]:
    """Return one model_versions row per retraining time; the last one is active."""
    rows = []
    prior = prior_model().as_dict()
    for v in range(1, len(versions) + 1):
        made = fmt(versions[v - 1].astype(datetime))
        coefficients = {f: round(c + float(rng.normal(0, 0.1)), 4) for f, c in prior["coefficients"].items()}
        metrics = {"auc": round(0.70 + 0.01 * v, 4), "log_loss": round(0.55 - 0.005 * v, 4)}
        metrics |= {"accuracy": round(0.66 + 0.005 * v, 4), "precision_at_10": round(0.3 + 0.01 * v, 4)}
        metrics["dislike_top10_share"] = round(0.4 - 0.02 * v, 4)
        active = v == len(versions)
        rows.append(
            (v, v - 1 or None, "active" if active else "retired", 1 if active else None)
            + ("initial" if v == 1 else "threshold", made, "bench:scale", made, json.dumps({}))
            + (json.dumps({**prior, "coefficients": coefficients}), json.dumps(metrics), json.dumps({}))
            + (metrics["accuracy"],)
        )
    return rows


def daily_impressions_sql(pg: bool) -> str:
    """Return the statement that derives daily_impressions from the impressions."""
    day = "CAST(i.shown_at AS DATE)" if pg else "substr(i.shown_at, 1, 10)"
    return (
        "INSERT INTO daily_impressions (day, model_version_id, impressions, score_sum, scored) "
        f"SELECT {day}, coalesce(i.model_version_id, 0), count(*), sum(i.predicted_score), count(*) "
        "FROM impressions AS i GROUP BY 1, 2"
    )


def _distinct_items(rng: np.random.Generator, p: np.ndarray, n: int) -> np.ndarray:
    """Draw ``n`` lists of SET_SIZE distinct films (1-based ids), each film with probability ``p``."""
    draws = rng.choice(MOVIES, size=(n, SET_SIZE + 8), p=p) + 1
    order = np.argsort(draws, axis=1, kind="stable")
    ordered = np.take_along_axis(draws, order, axis=1)
    repeat = np.zeros_like(ordered, dtype=bool)
    repeat[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
    first = np.empty_like(repeat)
    np.put_along_axis(first, order, ~repeat, axis=1)
    keep = first & (np.cumsum(first, axis=1) <= SET_SIZE)
    short = keep.sum(axis=1) < SET_SIZE
    for row in np.flatnonzero(short):  # rare: too many repeats of the most popular films
        draws[row, :SET_SIZE] = rng.choice(MOVIES, size=SET_SIZE, replace=False, p=p) + 1
        keep[row] = np.arange(draws.shape[1]) < SET_SIZE
    return draws[keep].reshape(n, SET_SIZE)


def _since(started: float) -> str:
    return f"{time.perf_counter() - started:.0f} s"


# ---------------------------------------------------------------- consistency


CHECKS = {
    "impressions per day and version": (
        "SELECT {day_i}, coalesce(model_version_id, 0), count(*) FROM impressions GROUP BY 1, 2",
        "SELECT day, model_version_id, impressions FROM daily_impressions",
    ),
    "dislikes per day, version, reason, attributed": (
        "SELECT {day_d}, coalesce(d.model_version_id, 0), d.reason, "
        "CASE WHEN d.recommendation_set_id IS NULL THEN 0 ELSE 1 END, count(*) "
        "FROM user_dislikes AS d LEFT JOIN recommendation_sets AS s "
        "ON s.recommendation_set_id = d.recommendation_set_id WHERE d.retracted_at IS NULL GROUP BY 1, 2, 3, 4",
        "SELECT day, model_version_id, reason, attributed, dislikes FROM daily_dislikes WHERE dislikes <> 0",
    ),
    "dislikes per movie": (
        "SELECT movie_id, count(*) FROM user_dislikes WHERE retracted_at IS NULL GROUP BY 1",
        "SELECT movie_id, dislikes FROM movie_dislike_stats WHERE dislikes <> 0",
    ),
    "dislikes per user": (
        "SELECT user_id, count(*) FROM user_dislikes WHERE retracted_at IS NULL GROUP BY 1",
        "SELECT user_id, dislike_count FROM dislike_patterns WHERE pattern_type = 'total' AND dislike_count <> 0",
    ),
    "dislikes per user and genre, of the reasons that blame genres": (
        "SELECT d.user_id, j.value, count(*) FROM user_dislikes AS d CROSS JOIN {genres} "
        "WHERE d.retracted_at IS NULL AND d.reason IN ({genre_reasons}) GROUP BY 1, 2",
        "SELECT user_id, pattern_value, dislike_count FROM dislike_patterns "
        "WHERE pattern_type = 'genre' AND dislike_count <> 0",
    ),
    "attributed dislikes are of a shown item": (
        "SELECT count(*) FROM user_dislikes AS d WHERE d.recommendation_set_id IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM impressions AS i WHERE i.recommendation_set_id = d.recommendation_set_id "
        "AND i.movie_id = d.movie_id AND i.model_version_id = d.model_version_id)",
        "SELECT 0",
    ),
}


def check_consistency(engine) -> list[str]:
    """Compare each maintained aggregate with the same count taken from the raw rows; return mismatches."""
    pg = engine.dialect.name == "postgresql"
    day_i = "CAST(shown_at AS DATE)" if pg else "substr(shown_at, 1, 10)"
    # a dislike of a shown list counts on the list's day
    moment = "coalesce(s.created_at, d.created_at)"
    day_d = f"CAST({moment} AS DATE)" if pg else f"substr({moment}, 1, 10)"
    blanks = {
        "day_i": day_i,
        "day_d": day_d,
        "genres": "json_array_elements_text(d.genres) AS j(value)" if pg else "json_each(d.genres) AS j",
        "genre_reasons": ", ".join(f"'{r}'" for r, kinds in BLAMES.items() if "genre" in kinds),
    }
    problems = []
    with engine.connect() as conn:
        for name, (raw, kept) in CHECKS.items():
            from_raw = {tuple(map(str, r[:-1])): int(r[-1]) for r in conn.execute(text(raw.format(**blanks)))}
            from_kept = {tuple(map(str, r[:-1])): int(r[-1]) for r in conn.execute(text(kept))}
            if from_raw != from_kept:
                diff = set(from_raw.items()) ^ set(from_kept.items())
                problems.append(f"{name}: {len(diff)} rows differ, e.g. {sorted(diff)[:3]}")
    return problems


# ---------------------------------------------------------------- databases per backend


def sqlite_scale_database(world: World, dislikes: int, impressions: int, rebuild: bool = False) -> Path:
    """Return the cached SQLite file of this size (built if missing), at the current schema."""
    CACHE.mkdir(exist_ok=True)
    cached = CACHE / f"scale-sqlite-d{dislikes}-i{impressions}-g{GENERATOR_VERSION}.db"
    if rebuild or not cached.exists():
        building = cached.with_suffix(".building")
        remove_sqlite(building)
        started = time.perf_counter()
        say(f"building {cached.name}: {impressions:,} impressions, {dislikes:,} dislikes (done once)")
        engine = make_engine(Settings(database_url=f"sqlite:///{building}"))
        upgrade_database(engine)
        engine.dispose()
        # A file under construction needs no journal: if the build fails it is thrown away.
        event.listen(engine, "connect", _bulk_load_pragmas)
        build(engine, world, dislikes, impressions, _utcnow())
        engine.dispose()
        raw = sqlite3.connect(building)
        raw.execute("ANALYZE")  # what a long-lived database has; the planner uses it
        raw.execute("PRAGMA journal_mode=WAL")  # what the application's engine sets anyway
        raw.close()
        problems = check_consistency(create_engine(f"sqlite:///{building}"))
        if problems:
            raise SystemExit("the built database is inconsistent:\n  " + "\n  ".join(problems))
        building.replace(cached)
        remove_sqlite(building)
        say(f"built {cached.name} in {_since(started)}; aggregates agree with the raw rows")
    engine = make_engine(Settings(database_url=f"sqlite:///{cached}"))
    upgrade_database(engine)
    engine.dispose()
    return cached


def pg_scale_database(base_url: str, world: World, dislikes: int, impressions: int, rebuild=False) -> str:
    """Return a URL whose search_path is the built schema of this size (built if missing)."""
    schema = f"bench_scale_{dislikes}_{impressions}"
    key = f"scale-g{GENERATOR_VERSION}"
    url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    admin = create_engine(base_url)
    with admin.begin() as conn:
        comment = conn.execute(
            text("SELECT obj_description(to_regnamespace(:s), 'pg_namespace')"), {"s": schema}
        ).scalar()
    if rebuild or comment != key:
        started = time.perf_counter()
        say(f"building schema {schema}: {impressions:,} impressions, {dislikes:,} dislikes (done once)")
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine = make_engine(Settings(database_url=url.render_as_string(hide_password=False)))
        upgrade_database(engine)
        build(engine, world, dislikes, impressions, _utcnow())
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))  # what autovacuum does shortly after a bulk load
        problems = check_consistency(engine)
        engine.dispose()
        if problems:
            raise SystemExit("the built schema is inconsistent:\n  " + "\n  ".join(problems))
        with admin.begin() as conn:
            conn.execute(text(f"COMMENT ON SCHEMA \"{schema}\" IS '{key}'"))
        say(f"built schema {schema} in {_since(started)}; aggregates agree with the raw rows")
    admin.dispose()
    rendered = url.render_as_string(hide_password=False)
    engine = make_engine(Settings(database_url=rendered))
    upgrade_database(engine)
    engine.dispose()
    return rendered


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impressions", type=int, default=10_000_000)
    parser.add_argument("--dislikes", type=int, default=1_000_000)
    parser.add_argument("--pg", help="also build on this PostgreSQL database (a schema of its own)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild even if cached")
    args = parser.parse_args(argv)
    world = World()
    path = sqlite_scale_database(world, args.dislikes, args.impressions, args.rebuild)
    print(f"sqlite: {path}")
    if args.pg:
        print(
            f"postgresql: {pg_scale_database(args.pg, world, args.dislikes, args.impressions, args.rebuild)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
