"""Alembic, driven from code: `aftercare db upgrade`, /healthz and the tests share these helpers."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from plugin.db import make_engine
from plugin.table_stats import refresh_statistics

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


def upgrade(database_url: str, revision: str = "head") -> list[str]:
    """Migrate the database to a revision (default: the latest), then refresh its statistics; return those analysed.

    A migration may add indexes or reshape tables the planner then knows nothing about, and a fresh install's
    first upgrade is the one moment every operator runs (plugin.table_stats says why it matters).
    """
    command.upgrade(alembic_config(database_url), revision)
    engine = make_engine(database_url, single_use=True)
    try:
        with engine.begin() as conn:
            return refresh_statistics(conn)
    finally:
        engine.dispose()


def head_revision() -> str | None:
    """Return the latest revision id of the packaged migrations."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(conn: Connection) -> str | None:
    """Return the revision the connected database is at (None when never migrated)."""
    return MigrationContext.configure(conn).get_current_revision()
