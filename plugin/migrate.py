"""Alembic, driven from code: `aftercare db upgrade`, /healthz and the tests share these helpers."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

# The scripts sit beside this package (installed or checked out); they import plugin.models, so plugin only
# names their folder and never imports them.
MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"


def alembic_config(database_url: str | None = None) -> AlembicConfig:
    """Return an Alembic config pointing at the packaged migrations (and a database, if given)."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if database_url:
        # ConfigParser treats % as interpolation; URLs may contain escaped characters.
        cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate the database to a revision (default: the latest)."""
    command.upgrade(alembic_config(database_url), revision)


def head_revision() -> str | None:
    """Return the latest revision id of the packaged migrations."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(conn: Connection) -> str | None:
    """Return the revision the connected database is at (None when never migrated)."""
    return MigrationContext.configure(conn).get_current_revision()
