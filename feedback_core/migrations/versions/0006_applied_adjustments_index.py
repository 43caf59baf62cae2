"""a person's applied adjustments through a partial index: proposals no longer enter it

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 00:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_APPLIED = sa.text("status = 'applied'")


def upgrade() -> None:
    # (user_id, status) took every proposal (two or three a dislike, each into a page of its
    # own person) for one query: a person's applied adjustments (effects.py). Indexing only
    # the applied ones, a handful, spares every dislike those writes. Listing a person's
    # adjustments by status still has (user_id, created_at).
    op.create_index(
        "ix_feature_adjustments_applied",
        "feature_adjustments",
        ["user_id"],
        sqlite_where=_APPLIED,
        postgresql_where=_APPLIED,
    )
    op.drop_index("ix_feature_adjustments_user", table_name="feature_adjustments")


def downgrade() -> None:
    op.create_index("ix_feature_adjustments_user", "feature_adjustments", ["user_id", "status"])
    op.drop_index("ix_feature_adjustments_applied", table_name="feature_adjustments")
