"""Shared fixtures: a migrated database (SQLite, or PostgreSQL via AFTERCARE_TEST_DATABASE_URL), the app,
its test client, a session inside a rolled-back transaction, and a controllable clock."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, delete
from sqlalchemy.orm import Session

from base.clock import FrozenClock
from plugin import create_app
from plugin.db import Database
from plugin.models import Base

TEST_SECRET_KEY = "test-secret-key-0123456789abcdef"
TEST_ENCRYPTION_KEY = Fernet.generate_key().decode()
TEST_SHOPIFY_API_KEY = "test-client-id"
TEST_SHOPIFY_API_SECRET = "test-shopify-secret-0123456789abcdef"  # 32+ bytes, as real ones


def _database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("AFTERCARE_TEST_DATABASE_URL")
    if url:
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        worker = os.environ.get("PYTEST_XDIST_WORKER")
        if worker:
            url = _worker_database(url, worker)
        return url
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite'}"


def _worker_database(url: str, worker: str) -> str:
    """Give each pytest-xdist worker its own fresh PostgreSQL database beside the configured one."""
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    name = f"{parsed.database}_{worker}"
    with psycopg.connect(host=parsed.host, port=parsed.port or 5432, user=parsed.username,
                         password=parsed.password, dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return parsed.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Return the test database URL, migrated once per run with Alembic."""
    from plugin.migrate import upgrade

    url = _database_url(tmp_path_factory)
    database = Database(url)
    Base.metadata.drop_all(database.engine)
    with database.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    database.dispose()
    upgrade(url)
    return url


@pytest.fixture
def fresh_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """Return the URL of an empty, unmigrated database of the run's kind (a new SQLite file or PostgreSQL database)."""
    if not database_url.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / 'fresh.sqlite'}"
        return
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    name = f"{url.database}_fresh_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def database(database_url: str) -> Iterator[Database]:
    """Return the session-wide Database."""
    db = Database(database_url)
    yield db
    db.dispose()


@pytest.fixture(scope="session")
def engine(database: Database) -> Engine:
    """Return the session-wide engine."""
    return database.engine


@pytest.fixture
def clock() -> FrozenClock:
    """Return a clock frozen at a fixed instant that tests move explicitly."""
    return FrozenClock(datetime(2026, 3, 2, 12, 0, tzinfo=UTC))


def make_settings(database_url: str, instance_path: Path, **extra: object) -> dict:
    """Return the configuration override the tests use (secrets included, no environment needed)."""
    settings: dict = {
        "app": {"instance_path": str(instance_path), "log_level": "DEBUG"},
        "shopify": {"client_id": TEST_SHOPIFY_API_KEY},
        "database_url": database_url,
        "secrets": {
            "secret_key": TEST_SECRET_KEY,
            "encryption_key": TEST_ENCRYPTION_KEY,
            "shopify_api_key": TEST_SHOPIFY_API_KEY,
            "shopify_api_secret": TEST_SHOPIFY_API_SECRET,
        },
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(settings.get(key), dict):
            settings[key] = {**settings[key], **value}
        else:
            settings[key] = value
    return settings


# Older name kept for callers; __test__ stops pytest from collecting it where it is imported.
test_settings = make_settings
test_settings.__test__ = False


@pytest.fixture
def app(database_url: str, tmp_path: Path, clock: FrozenClock):
    """Return an app on the test database with the frozen clock; committed rows are wiped afterwards."""
    application = create_app(make_settings(database_url, tmp_path / "instance"), clock=clock)
    yield application
    wipe(application.extensions["aftercare.db"].engine)
    application.extensions["aftercare.db"].dispose()


@pytest.fixture
def client(app):
    """Return the Flask test client."""
    return app.test_client()


@pytest.fixture
def db_session(engine: Engine) -> Iterator[Session]:
    """Yield a session inside a transaction that is rolled back at the end of the test."""
    connection = engine.connect()
    transaction = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()
        transaction.rollback()
        connection.close()


def wipe(engine: Engine) -> None:
    """Delete every row of every table (for tests whose work is committed by other threads/processes)."""
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(delete(table))
