"""dislike_patterns counts a dislike against the feature values its reason blames

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 09:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# What each reason blames (feedback_core.settings.BLAMES at this revision; written out so that
# the migration keeps meaning what it meant when later code changes).
BLAMED_BY = {
    "genre": ("wrong_genre", "not_interested", "irrelevant"),
    "cast": ("poor_quality",),
    "franchise": ("poor_quality", "not_interested"),
}
EVERY_REASON = ("wrong_genre", "poor_quality", "already_watched", "not_interested", "irrelevant", "other")
TOP_CAST = 5  # the cast members counted: the first five billed (feedback_core.policy.TOP_CAST)


def _values(kind: str, dialect: str) -> tuple[str, str, str]:
    """Return (FROM clause addition, value expression, position expression from 0) listing one
    dislike's values of ``kind``."""
    if kind == "franchise":  # recording counts a franchise that is neither NULL nor empty
        return "", "NULLIF(d.franchise, '')", "0"
    column = "d.genres" if kind == "genre" else 'd."cast"'
    if dialect == "sqlite":  # json_each lists nothing for a NULL or a scalar
        return f", json_each({column}) AS v", "v.value", "v.key"
    listed = f"CASE WHEN json_typeof({column}) = 'array' THEN {column} ELSE '[]'::json END"
    return f", json_array_elements_text({listed}) WITH ORDINALITY AS v(value, n)", "v.value", "v.n - 1"


def _recount(blamed_by: dict[str, tuple[str, ...]], top_cast: bool) -> None:
    """Rebuild the genre, cast and franchise rows from the live dislikes whose reasons blame
    them (``top_cast``: of the cast, only the first ``TOP_CAST`` count)."""
    dialect = op.get_bind().dialect.name
    op.execute(sa.text("DELETE FROM dislike_patterns WHERE pattern_type IN ('genre', 'cast', 'franchise')"))
    for kind, reasons in blamed_by.items():
        source, value, position = _values(kind, dialect)
        first = f" AND {position} < {TOP_CAST}" if kind == "cast" and top_cast else ""
        listed = ", ".join(f"'{r}'" for r in reasons)
        # A value listed twice in one dislike counts once, as recording counts it.
        op.execute(
            sa.text(
                "INSERT INTO dislike_patterns "
                "(user_id, pattern_type, pattern_value, dislike_count, score_sum, last_disliked_at) "
                f"SELECT user_id, '{kind}', value, COUNT(*), SUM(predicted_score), MAX(created_at) FROM ("
                f"SELECT DISTINCT d.dislike_id, d.user_id, {value} AS value, d.predicted_score, d.created_at "
                f"FROM user_dislikes d{source} "
                f"WHERE d.retracted_at IS NULL AND d.reason IN ({listed}) AND {value} IS NOT NULL{first}"
                ") AS blamed GROUP BY user_id, value"
            )
        )


def upgrade() -> None:
    # A dislike said "the film itself disappointed" (poor_quality) counted against the film's
    # genres too, and "seen it" (already_watched) against everything: people's aversions,
    # which the model scores with, grew from dislikes that did not blame those features. Of
    # the cast, those billed after the fifth counted too, though the model knows none of them.
    _recount(BLAMED_BY, top_cast=True)


def downgrade() -> None:
    _recount({kind: EVERY_REASON for kind in BLAMED_BY}, top_cast=False)
