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


def upgrade() -> None:
    # A list posted as bare ids, and a dislike sent without a score of a film on no scored list,
    # were stored with score 0 and counted as perfect predictions. The rows stored so far keep
    # the score they were counted with (which were guesses cannot be told apart from a sent 0):
    # every aggregate row's dislikes are scored ones. Adding a column with a constant default
    # rewrites no row on either backend.
    for table in _FLAGGED:
        op.add_column(table, sa.Column("score_known", sa.Boolean(), nullable=False, server_default=sa.true()))
    for table in _COUNTED:
        op.add_column(
            table, sa.Column("scored", sa.BigInteger(), nullable=False, server_default=sa.text("0"))
        )
        op.execute(sa.text(f"UPDATE {table} SET scored = dislikes"))


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
