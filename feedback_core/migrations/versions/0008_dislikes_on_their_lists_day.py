"""daily_dislikes counts a dislike of a shown list on the day the list was shown

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 04:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _recount_attributed(day_of: str) -> None:
    """Recount the attributed rows of daily_dislikes from the live dislikes, on ``day_of``."""
    bind = op.get_bind()
    day = f"date({day_of})" if bind.dialect.name == "sqlite" else f"CAST({day_of} AS DATE)"
    op.execute(sa.text("DELETE FROM daily_dislikes WHERE attributed = 1"))
    op.execute(
        sa.text(
            "INSERT INTO daily_dislikes (day, model_version_id, reason, attributed, dislikes, score_sum) "
            f"SELECT {day}, COALESCE(d.model_version_id, 0), d.reason, 1, COUNT(*), SUM(d.predicted_score) "
            "FROM user_dislikes d JOIN recommendation_sets s "
            "ON s.recommendation_set_id = d.recommendation_set_id "
            "WHERE d.retracted_at IS NULL "
            f"GROUP BY {day}, COALESCE(d.model_version_id, 0), d.reason"
        )
    )


def upgrade() -> None:
    # A day's dislike rate divides the dislikes of the lists shown that day by their
    # impressions. A dislike counted on its own day instead (a list shown at 23:50, disliked at
    # 00:10) left the numerator of one day and entered the next: rates above 100% on a day
    # with few impressions. Dislikes without a list stay on the day they were made.
    _recount_attributed("s.created_at")


def downgrade() -> None:
    _recount_attributed("d.created_at")
