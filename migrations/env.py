"""Alembic environment: the models' metadata, the URL from the caller's config or the app's."""

from alembic import context

from plugin.db import make_engine
from plugin.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from plugin.config import load_config

    return load_config().database_url


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                          compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(_url(), single_use=True)
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # SQLite's batch migrations copy a table and drop the old one; with foreign keys on, that DROP deletes
            # every row referencing it first (ON DELETE CASCADE / SET NULL: a ticket's notes, an order's parcels).
            # The pragma only takes effect outside a transaction, so it is set on the driver connection before
            # Alembic's begins, and the references are checked once the migrations are done.
            # https://alembic.sqlalchemy.org/en/latest/batch.html#dealing-with-referencing-foreign-keys
            conn.connection.dbapi_connection.execute("PRAGMA foreign_keys=OFF")
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True,
                          compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
        if sqlite:
            broken = conn.connection.dbapi_connection.execute("PRAGMA foreign_key_check").fetchall()
            conn.connection.dbapi_connection.execute("PRAGMA foreign_keys=ON")
            if broken:
                raise RuntimeError(f"migrations left rows referencing missing ones: {broken[:5]}")
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
