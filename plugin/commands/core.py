"""CLI commands of the app itself: db upgrade, serve, stores list, keys generate|rotate."""

from __future__ import annotations

import click
from sqlalchemy import select

from plugin.commands.common import command_config, friendly_errors
from plugin.config import load_config


def register(main: click.Group) -> None:
    """Add this module's commands to the `aftercare` group."""
    for command in (db, serve, stores, keys):
        main.add_command(command)


@click.group()
def db() -> None:
    """Manage the database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@friendly_errors
def db_upgrade(revision: str) -> None:
    """Migrate the database to the latest schema."""
    from plugin.migrate import upgrade

    cfg = load_config()
    upgrade(cfg.database_url, revision)
    click.echo(f"database at {revision}")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option("--dev", is_flag=True, help="Development mode: generate local secrets if missing.")
@friendly_errors
def serve(host: str, port: int, dev: bool) -> None:
    """Run the development web server (production: gunicorn 'plugin:create_app()')."""
    from plugin import create_app
    from plugin.migrate import upgrade

    cfg = command_config(dev)
    if cfg.database_url.startswith("sqlite"):
        upgrade(cfg.database_url)  # the embedded default should just work
    app = create_app(cfg)
    click.echo(f"Aftercare on http://{host}:{port}  (database: {app.extensions['aftercare.db'].dialect})")
    app.run(host=host, port=port, debug=False, use_reloader=False)


@click.group()
def stores() -> None:
    """List and connect stores."""


@stores.command("list")
@friendly_errors
def stores_list() -> None:
    """List connected stores with their platform and status."""
    from plugin.db import Database
    from plugin.models import Store

    cfg = load_config()
    database = Database(cfg.database_url)
    with database.session() as session:
        rows = session.scalars(select(Store).order_by(Store.id)).all()
        if not rows:
            click.echo("no stores connected")
            return
        click.echo(f"{'ID':>4}  {'PLATFORM':8}  {'STATUS':16}  {'EXTERNAL ID':40}  NAME")
        for s in rows:
            click.echo(f"{s.id:>4}  {s.platform:8}  {s.status:16}  {s.external_id:40}  {s.name}")
    database.dispose()


@click.group()
def keys() -> None:
    """Manage the encryption keys of stored credentials."""


@keys.command("generate")
def keys_generate() -> None:
    """Print a new Fernet key for AFTERCARE_ENCRYPTION_KEY."""
    from plugin.crypto import generate_key

    click.echo(generate_key())


@keys.command("rotate")
@friendly_errors
def keys_rotate() -> None:
    """Re-encrypt every stored credential with the first key of AFTERCARE_ENCRYPTION_KEY."""
    from plugin.crypto import Vault
    from plugin.db import Database
    from plugin.secrets_store import rotate_all

    cfg = load_config()
    database = Database(cfg.database_url)
    with database.session() as session:
        count = rotate_all(session, Vault(cfg.secrets.encryption_key))
    database.dispose()
    click.echo(f"re-encrypted {count} credentials with the primary key; old keys can now be removed")
