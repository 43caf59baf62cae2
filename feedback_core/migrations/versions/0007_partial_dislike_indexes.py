"""idempotency keys and recommendation sets of dislikes indexed only where they are set

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 02:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_WITH_KEY = sa.text("idempotency_key IS NOT NULL")
_WITH_SET = sa.text("recommendation_set_id IS NOT NULL")

# user_dislikes as 0001 created it, without the table constraint on idempotency keys.
_COLUMNS = (
    "dislike_id, user_id, movie_id, movie_title, recommendation_set_id, model_version_id, "
    "predicted_score, reason, feedback_text, genres, \"cast\", franchise, idempotency_key, "
    "created_at, retracted_at"
)
_TABLE = (
    "CREATE TABLE {name} (\n"
    "\tdislike_id INTEGER NOT NULL, \n"
    "\tuser_id INTEGER NOT NULL, \n"
    "\tmovie_id INTEGER NOT NULL, \n"
    "\tmovie_title VARCHAR(300) NOT NULL, \n"
    "\trecommendation_set_id INTEGER, \n"
    "\tmodel_version_id INTEGER, \n"
    "\tpredicted_score FLOAT NOT NULL, \n"
    "\treason VARCHAR(32) NOT NULL, \n"
    "\tfeedback_text TEXT NOT NULL, \n"
    "\tgenres JSON NOT NULL, \n"
    '\t"cast" JSON NOT NULL, \n'
    "\tfranchise VARCHAR(200), \n"
    "\tidempotency_key VARCHAR(200), \n"
    "\tcreated_at DATETIME NOT NULL, \n"
    "\tretracted_at DATETIME, \n"
    "\tCONSTRAINT pk_user_dislikes PRIMARY KEY (dislike_id), \n"
    "\tCONSTRAINT fk_user_dislikes_model_version_id_model_versions FOREIGN KEY(model_version_id) "
    "REFERENCES model_versions (version_id), \n"
    "\tCONSTRAINT fk_user_dislikes_movie_id_movies FOREIGN KEY(movie_id) REFERENCES movies (movie_id), \n"
    "\tCONSTRAINT fk_user_dislikes_recommendation_set_id_recommendation_sets FOREIGN KEY(recommendation_set_id) "
    "REFERENCES recommendation_sets (recommendation_set_id){constraint}\n"
    ")"
)
_CONSTRAINT = ", \n\tCONSTRAINT uq_user_dislikes_idempotency UNIQUE (user_id, idempotency_key)"
_INDEXES = {
    "ix_user_dislikes_user_created": ["user_id", "created_at", "dislike_id"],
    "ix_user_dislikes_user_movie": ["user_id", "movie_id", "created_at"],
    "ix_user_dislikes_created": ["created_at"],
}


def _rebuild_sqlite(with_constraint: bool) -> None:
    """Copy user_dislikes into a table with or without the constraint (SQLite cannot drop one)."""
    bind = op.get_bind()
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        # Dropping the table with foreign keys on would delete every example, proposal and
        # impact row's parent: SQLite's procedure for rebuilding a table needs them off.
        raise RuntimeError(
            "migration 0007 rebuilds user_dislikes and needs SQLite's foreign keys off: "
            "run it through `feedback-core init`"
        )
    op.execute(_TABLE.format(name="user_dislikes_rebuilt", constraint=_CONSTRAINT if with_constraint else ""))
    op.execute(f"INSERT INTO user_dislikes_rebuilt ({_COLUMNS}) SELECT {_COLUMNS} FROM user_dislikes")
    op.execute("DROP TABLE user_dislikes")  # its indexes go with it
    op.execute("ALTER TABLE user_dislikes_rebuilt RENAME TO user_dislikes")
    for name, columns in _INDEXES.items():
        op.create_index(name, "user_dislikes", columns)
    children = [
        row[0]
        for row in bind.exec_driver_sql(
            "SELECT DISTINCT m.name FROM sqlite_master AS m, pragma_foreign_key_list(m.name) AS f "
            "WHERE m.type = 'table' AND f.\"table\" = 'user_dislikes'"
        )
    ]
    for table in ["user_dislikes", *children]:
        broken = bind.exec_driver_sql(f'PRAGMA foreign_key_check("{table}")').first()
        if broken is not None:
            raise RuntimeError(f"rebuilding user_dislikes broke a reference of {table}: {tuple(broken)}")


def upgrade() -> None:
    # Four dislikes in five come without an idempotency key and seven in ten without a list,
    # yet every dislike entered both indexes: the key's (user_id, idempotency_key) one at its
    # person's page, the lists' one at the end of its NULLs: two more pages written by each
    # dislike's COMMIT (about 15% of the SQL of recording one). Both only ever look up set
    # values, which is what these partial indexes hold. The key stays unique per person.
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite(with_constraint=False)
    else:
        op.drop_constraint("uq_user_dislikes_idempotency", "user_dislikes", type_="unique")
        op.drop_index("ix_user_dislikes_set", table_name="user_dislikes")
    op.create_index(
        "uq_user_dislikes_idempotency",
        "user_dislikes",
        ["user_id", "idempotency_key"],
        unique=True,
        sqlite_where=_WITH_KEY,
        postgresql_where=_WITH_KEY,
    )
    op.create_index(
        "ix_user_dislikes_set",
        "user_dislikes",
        ["recommendation_set_id"],
        sqlite_where=_WITH_SET,
        postgresql_where=_WITH_SET,
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite(with_constraint=True)
    else:
        op.drop_index("uq_user_dislikes_idempotency", table_name="user_dislikes")
        op.drop_index("ix_user_dislikes_set", table_name="user_dislikes")
        op.create_unique_constraint("uq_user_dislikes_idempotency", "user_dislikes", ["user_id", "idempotency_key"])
    op.create_index("ix_user_dislikes_set", "user_dislikes", ["recommendation_set_id"])
