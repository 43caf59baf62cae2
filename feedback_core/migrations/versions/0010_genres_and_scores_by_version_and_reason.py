"""daily_reason_genre and daily_score_histogram by version and reason, on the list's day

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 17:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _version() -> list[sa.Column]:
    return [sa.Column("model_version_id", Id, autoincrement=False, nullable=False)]


def _reason() -> list[sa.Column]:
    return [sa.Column("reason", sa.String(length=32), nullable=False)]


def _create(with_dimensions: bool) -> None:
    """Create both tables, with (or without) the version and reason of every row."""
    op.create_table(
        "daily_reason_genre",
        sa.Column("day", sa.Date(), nullable=False),
        *(_version() if with_dimensions else []),
        *_reason(),
        sa.Column("genre", sa.String(length=200), nullable=False),
        sa.Column("dislikes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            *(
                ["day", "model_version_id", "reason", "genre"]
                if with_dimensions
                else ["day", "reason", "genre"]
            ),
            name=op.f("pk_daily_reason_genre"),
        ),
    )
    op.create_table(
        "daily_score_histogram",
        sa.Column("day", sa.Date(), nullable=False),
        *_version(),
        *(_reason() if with_dimensions else []),
        sa.Column("bucket", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("dislikes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            *(
                ["day", "model_version_id", "reason", "bucket"]
                if with_dimensions
                else ["day", "model_version_id", "bucket"]
            ),
            name=op.f("pk_daily_score_histogram"),
        ),
    )


def _recount(with_dimensions: bool) -> None:
    """Fill both tables from the live dislikes: with the dimensions, on the day their list was
    shown (as daily_dislikes counts them); without, on the day they were made."""
    dialect = op.get_bind().dialect.name
    moment = "COALESCE(s.created_at, d.created_at)" if with_dimensions else "d.created_at"
    if dialect == "sqlite":
        day = f"date({moment})"
        bucket = "MIN(CAST(d.predicted_score * 10 AS INTEGER), 9)"  # aggregates.bucket_of
        genres, genre = ", json_each(d.genres) AS g", "g.value"
    else:
        day = f"CAST({moment} AS DATE)"
        bucket = "LEAST(CAST(FLOOR(d.predicted_score * 10) AS INTEGER), 9)"
        listed = "CASE WHEN json_typeof(d.genres) = 'array' THEN d.genres ELSE '[]'::json END"
        genres, genre = f", json_array_elements_text({listed}) AS g(value)", "g.value"
    lists = "LEFT JOIN recommendation_sets s ON s.recommendation_set_id = d.recommendation_set_id"
    version = "COALESCE(d.model_version_id, 0)"
    if with_dimensions:
        bucket_keys = f"{day}, {version}, d.reason"
        genre_columns, bucket_columns = "day, model_version_id, reason", "day, model_version_id, reason"
        per_dislike = f"d.dislike_id, {day} AS day, {version} AS model_version_id, d.reason"
        outer = "day, model_version_id, reason"
    else:
        bucket_keys = f"{day}, {version}"
        genre_columns, bucket_columns = "day, reason", "day, model_version_id"
        per_dislike = f"d.dislike_id, {day} AS day, d.reason"
        outer = "day, reason"
    # A genre listed twice for one film counts once, as recording counts it.
    op.execute(
        sa.text(
            f"INSERT INTO daily_reason_genre ({genre_columns}, genre, dislikes) "
            f"SELECT {outer}, genre, COUNT(*) FROM ("
            f"SELECT DISTINCT {per_dislike}, {genre} AS genre "
            f"FROM user_dislikes d {lists}{genres} "
            f"WHERE d.retracted_at IS NULL AND {genre} IS NOT NULL"
            f") AS listed GROUP BY {outer}, genre"
        )
    )
    op.execute(
        sa.text(
            f"INSERT INTO daily_score_histogram ({bucket_columns}, bucket, dislikes) "
            f"SELECT {bucket_keys}, {bucket}, COUNT(*) FROM user_dislikes d {lists} "
            f"WHERE d.retracted_at IS NULL GROUP BY {bucket_keys}, {bucket}"
        )
    )


def _rebuild(with_dimensions: bool) -> None:
    op.drop_table("daily_reason_genre")
    op.drop_table("daily_score_histogram")
    _create(with_dimensions)
    _recount(with_dimensions)


def upgrade() -> None:
    # The reason x genre heatmap ignored the version filter and the score histogram the reason
    # filter, and both counted a dislike on the day it was made while the rates beside them
    # count it on its list's day: near a window's edges the panels of one page disagreed.
    _rebuild(with_dimensions=True)


def downgrade() -> None:
    _rebuild(with_dimensions=False)
