"""Regenerate the initial migration from schema.py (only while no database depends on it)."""

import pathlib
import tempfile

from alembic import command

from feedback_core.db import _alembic_config, make_engine
from feedback_core.settings import Settings

versions = pathlib.Path("feedback_core/migrations/versions")
for old in versions.glob("0001_*.py"):
    old.unlink()
with tempfile.TemporaryDirectory() as tmp:
    engine = make_engine(Settings(database_url=f"sqlite:///{tmp}/gen.db"))
    with engine.connect() as conn, conn.begin():
        command.revision(_alembic_config(conn), message="initial schema", autogenerate=True, rev_id="0001")
