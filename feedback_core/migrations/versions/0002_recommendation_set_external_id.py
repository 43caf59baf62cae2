"""recommendation sets remember their id in the system an import came from

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 15:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # A plain ADD COLUMN and a unique index: no table rebuild, even on SQLite.
    op.add_column("recommendation_sets", sa.Column("external_id", Id, nullable=True))
    op.create_index(
        "ix_recommendation_sets_external_id", "recommendation_sets", ["external_id"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_recommendation_sets_external_id", table_name="recommendation_sets")
    with op.batch_alter_table("recommendation_sets") as batch:
        batch.drop_column("external_id")
