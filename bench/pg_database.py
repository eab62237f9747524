"""The benchmarks' databases: a fresh SQLite file or a PostgreSQL database created when missing (bench scripts)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from plugin.db import Database


def ensure_database(url: str) -> None:
    """Create the database the URL names on its server unless it exists (connects to ``postgres`` to do it)."""
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}):
                conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    finally:
        admin.dispose()


def open_database(dialect: str, path: str, url: str, reuse: bool) -> tuple[str, Database]:
    """Return the URL and Database of a bench run: SQLite starts from an empty file unless ``reuse``."""
    if dialect == "sqlite":
        if not reuse:
            for suffix in ("", "-wal", "-shm"):
                Path(path + suffix).unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    else:
        ensure_database(url)
    return url, Database(url)
