"""daily_impressions sums the predicted scores of what was shown, and counts those with one

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 03:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A version's mean error (the mean score it gave what was disliked) says little without the
    # mean score it gave everything it showed. Counted from the impressions stored so far, by the
    # day each was shown, as recording counts them.
    op.add_column("daily_impressions", sa.Column("score_sum", sa.Float(), nullable=False, server_default=sa.text("0")))
    op.add_column("daily_impressions", sa.Column("scored", sa.BigInteger(), nullable=False, server_default=sa.text("0")))
    day = "date(i.shown_at)" if op.get_bind().dialect.name == "sqlite" else "CAST(i.shown_at AS DATE)"
    known = "CASE WHEN i.score_known THEN i.predicted_score ELSE 0 END"
    op.execute(
        sa.text(
            "UPDATE daily_impressions SET score_sum = counted.score_sum, scored = counted.scored FROM ("
            f"SELECT {day} AS day, COALESCE(i.model_version_id, 0) AS version, SUM({known}) AS score_sum, "
            "SUM(CASE WHEN i.score_known THEN 1 ELSE 0 END) AS scored FROM impressions i GROUP BY 1, 2"
            ") AS counted WHERE daily_impressions.day = counted.day "
            "AND daily_impressions.model_version_id = counted.version"
        )
    )


def downgrade() -> None:
    for column in ("scored", "score_sum"):
        op.execute(sa.text(f"ALTER TABLE daily_impressions DROP COLUMN {column}"))
