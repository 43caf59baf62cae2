"""drop two indexes no query uses from the tables every dislike writes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 18:50:00
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every dislike inserts into both tables, and each index is one more tree to update and
    # one more page to write at commit (about 1% of recording a dislike each, bench/record.py).
    # No query filters dislikes by version alone (the dashboard reads the daily aggregates),
    # and a job's claimed examples are found through (status, example_id).
    op.drop_index("ix_user_dislikes_version", table_name="user_dislikes")
    op.drop_index("ix_negative_examples_job", table_name="negative_examples")


def downgrade() -> None:
    op.create_index("ix_negative_examples_job", "negative_examples", ["job_id"])
    op.create_index("ix_user_dislikes_version", "user_dislikes", ["model_version_id"])
