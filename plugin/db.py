"""Engine and session factory for SQLite (embedded) and PostgreSQL (production, psycopg 3).

Domain code takes a ``Session`` and never commits; the request teardown (``init_app``) or the job
runner owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool


def make_engine(url: str, echo: bool = False, pool_size: int = 5, busy_timeout_ms: int = 15000,
                single_use: bool = False) -> Engine:
    """Create an engine with the settings each database needs to be safe under concurrency."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        extra: dict[str, Any] = {"poolclass": NullPool} if single_use else {}
        engine = create_engine(url, echo=echo, connect_args={"timeout": busy_timeout_ms / 1000}, **extra)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # pysqlite's own transaction handling defers BEGIN; we issue BEGIN ourselves (below)
            # so SELECT ... then UPDATE in one transaction cannot deadlock on lock upgrade.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # IMMEDIATE takes the write lock up front: concurrent writers wait (busy_timeout)
            # instead of failing with "database is locked" halfway through.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if single_use:
        return create_engine(url, echo=echo, poolclass=NullPool)
    return create_engine(url, echo=echo, pool_size=pool_size, max_overflow=pool_size,
                         pool_pre_ping=True)


class Database:
    """An engine plus its session factory."""

    def __init__(self, url: str, **engine_options: Any):
        self.url = url
        self.engine = make_engine(url, **engine_options)
        self.sessionmaker = sessionmaker(bind=self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        """Return the dialect name (``sqlite`` or ``postgresql``)."""
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Open a session in a transaction committed on success and rolled back on error."""
        with self.sessionmaker() as session, session.begin():
            yield session

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def get_db(app: Flask | None = None) -> Database:
    """Return the Database of the current (or given) app."""
    return (app or current_app).extensions["aftercare.db"]


def get_session() -> Session:
    """Return the request's session, opening it on first use."""
    if "db_session" not in g:
        g.db_session = get_db().sessionmaker()
    return g.db_session


def init_app(app: Flask, database: Database) -> None:
    """Attach the database to the app and own the per-request session lifecycle."""
    app.extensions["aftercare.db"] = database

    @app.after_request
    def _commit(response: Any) -> Any:
        session: Session | None = g.pop("db_session", None)
        if session is not None:
            try:
                if response.status_code < 400:
                    session.commit()
                else:
                    session.rollback()
            finally:
                session.close()
        return response

    @app.teardown_request
    def _close(_exc: BaseException | None) -> None:
        session: Session | None = g.pop("db_session", None)
        if session is not None:
            session.rollback()
            session.close()
