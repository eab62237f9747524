"""Migrations equal the models (Alembic autogenerate finds nothing) and upgrade an empty database."""

from __future__ import annotations

import subprocess

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from plugin.migrate import head_revision
from plugin.models import Base
from tests.processes import AFTERCARE, project_env


def test_migrations_match_models(engine):
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "render_as_batch": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []


def test_database_is_at_head(engine):
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head_revision()


def test_db_upgrade_command_on_an_empty_sqlite_file(tmp_path):
    db_file = tmp_path / "fresh.sqlite"
    env = {"AFTERCARE_SECRET_KEY": "k" * 32, "AFTERCARE_ENCRYPTION_KEY": "4Ok1U0Tg5m4bVdXqEJ6kQYAqgQd0yXm8Dq1T7r2V2kE=",
           "AFTERCARE_DATABASE_URL": f"sqlite:///{db_file}", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([*AFTERCARE, "db", "upgrade"], env=project_env(env), cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "database at head"
    tables = set(inspect(create_engine(f"sqlite:///{db_file}")).get_table_names())
    assert tables == set(Base.metadata.tables) | {"alembic_version"}
