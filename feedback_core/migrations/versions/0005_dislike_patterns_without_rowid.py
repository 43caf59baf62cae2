"""dislike_patterns without a rowid on SQLite: a person's rows stored together, one tree

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 22:10:00
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_COLUMNS = "user_id, pattern_type, pattern_value, dislike_count, score_sum, last_disliked_at"


def _rebuild(without_rowid: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return  # PostgreSQL has no rowid: its table stays as it is
    # A rowid table keeps the rows in insertion order and the primary key in a second tree:
    # every dislike updated ~5 rows of one person scattered over ~5 pages plus the key's pages
    # (about a fifth of the pages a dislike writes). Without a rowid the rows live in the
    # primary key's own tree, ordered by person. SQLite cannot alter this: copy the table.
    op.execute(
        "CREATE TABLE dislike_patterns_rebuilt (\n"
        "\tuser_id INTEGER NOT NULL, \n"
        "\tpattern_type VARCHAR(16) NOT NULL, \n"
        "\tpattern_value VARCHAR(200) NOT NULL, \n"
        "\tdislike_count INTEGER NOT NULL, \n"
        "\tscore_sum FLOAT NOT NULL, \n"
        "\tlast_disliked_at DATETIME, \n"
        "\tCONSTRAINT pk_dislike_patterns PRIMARY KEY (user_id, pattern_type, pattern_value)\n"
        ")" + (" WITHOUT ROWID" if without_rowid else "")
    )
    op.execute(
        f"INSERT INTO dislike_patterns_rebuilt ({_COLUMNS}) SELECT {_COLUMNS} FROM dislike_patterns "
        "ORDER BY user_id, pattern_type, pattern_value"
    )
    op.execute("DROP TABLE dislike_patterns")
    op.execute("ALTER TABLE dislike_patterns_rebuilt RENAME TO dislike_patterns")


def upgrade() -> None:
    _rebuild(without_rowid=True)


def downgrade() -> None:
    _rebuild(without_rowid=False)
