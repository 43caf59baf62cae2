"""Predicted scores nobody gave: impressions and dislikes say whether theirs is known, and the
aggregates count the scored dislikes their score sums are of

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 03:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_FLAGGED = ("impressions", "user_dislikes")
_COUNTED = ("daily_dislikes", "movie_dislike_stats")


def _day() -> str:
    """The day a dislike counts on (its list's, else its own), as daily_dislikes stores it."""
    moment = "COALESCE(s.created_at, d.created_at)"
    return f"date({moment})" if op.get_bind().dialect.name == "sqlite" else f"CAST({moment} AS DATE)"


def upgrade() -> None:
    # A list posted as bare ids (or with items lacking a score), and a dislike sent without a
    # score of a film on no scored list, were stored with score 0 and counted as perfect
    # predictions. A score of exactly 0 stored so far is taken for one nobody gave (a model's
    # score is never exactly 0; a sent 0 is lost to the means, a small price): left as known, a
    # bare list's 0 would also override the real score a later dislike of it sends.
    for table in _FLAGGED:
        op.add_column(table, sa.Column("score_known", sa.Boolean(), nullable=False, server_default=sa.true()))
    for table in _COUNTED:
        op.add_column(
            table, sa.Column("scored", sa.BigInteger(), nullable=False, server_default=sa.text("0"))
        )
        op.execute(sa.text(f"UPDATE {table} SET scored = dislikes"))
    op.execute(sa.text("UPDATE impressions SET score_known = false WHERE predicted_score = 0"))
    op.execute(
        sa.text(
            "UPDATE user_dislikes SET score_known = false WHERE predicted_score = 0 AND ("
            "recommendation_set_id IS NULL OR EXISTS (SELECT 1 FROM impressions i "
            "WHERE i.recommendation_set_id = user_dislikes.recommendation_set_id "
            "AND i.movie_id = user_dislikes.movie_id AND NOT i.score_known))"
        )
    )
    # Those dislikes leave the scored counts and the histogram's first bucket (their sums and
    # high-score counts had them as 0: unchanged).
    lists = "LEFT JOIN recommendation_sets s ON s.recommendation_set_id = d.recommendation_set_id"
    unknown = f"FROM user_dislikes d {lists} WHERE d.retracted_at IS NULL AND NOT d.score_known"
    day, version = _day(), "COALESCE(d.model_version_id, 0)"
    attributed = "CASE WHEN d.recommendation_set_id IS NULL THEN 0 ELSE 1 END"
    on_day = f"{day} AS k1, {version} AS k2, d.reason AS k3"
    by_day = f"{day}, {version}, d.reason"
    for table, grouped, match in (
        (
            "daily_dislikes",
            f"SELECT {on_day}, {attributed} AS k4, COUNT(*) AS n {unknown} GROUP BY {by_day}, {attributed}",
            "t.day = u.k1 AND t.model_version_id = u.k2 AND t.reason = u.k3 AND t.attributed = u.k4",
        ),
        (
            "daily_score_histogram",
            f"SELECT {on_day}, COUNT(*) AS n {unknown} GROUP BY {by_day}",
            "t.day = u.k1 AND t.model_version_id = u.k2 AND t.reason = u.k3 AND t.bucket = 0",
        ),
        (
            "movie_dislike_stats",
            f"SELECT d.movie_id AS k1, COUNT(*) AS n {unknown} GROUP BY d.movie_id",
            "t.movie_id = u.k1",
        ),
    ):
        column = "dislikes" if table == "daily_score_histogram" else "scored"
        op.execute(
            sa.text(f"UPDATE {table} AS t SET {column} = t.{column} - u.n FROM ({grouped}) AS u WHERE {match}")
        )


def downgrade() -> None:
    # Unknown scores were stored as 0, so the sums stay right; their means count them as 0
    # again, and the histogram counts them in its first bucket, as 0010 does: recounted from
    # the live dislikes, on their list's day (daily_dislikes').
    dialect = op.get_bind().dialect.name
    moment = "COALESCE(s.created_at, d.created_at)"
    if dialect == "sqlite":
        day, bucket = f"date({moment})", "MIN(CAST(d.predicted_score * 10 AS INTEGER), 9)"
    else:
        day, bucket = f"CAST({moment} AS DATE)", "LEAST(CAST(FLOOR(d.predicted_score * 10) AS INTEGER), 9)"
    keys = f"{day}, COALESCE(d.model_version_id, 0), d.reason, {bucket}"
    op.execute(sa.text("DELETE FROM daily_score_histogram"))
    op.execute(
        sa.text(
            "INSERT INTO daily_score_histogram (day, model_version_id, reason, bucket, dislikes) "
            f"SELECT {keys}, COUNT(*) FROM user_dislikes d "
            "LEFT JOIN recommendation_sets s ON s.recommendation_set_id = d.recommendation_set_id "
            f"WHERE d.retracted_at IS NULL GROUP BY {keys}"
        )
    )
    for table in _FLAGGED + _COUNTED:
        column = "score_known" if table in _FLAGGED else "scored"
        # (SQLite drops a column in place since 3.35, as PostgreSQL does: no table is copied.)
        op.execute(sa.text(f"ALTER TABLE {table} DROP COLUMN {column}"))
