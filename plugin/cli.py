"""The `aftercare` command line: one group, one-line help per command, clear one-line errors."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from plugin.config import Config, ConfigError, load_config


def friendly_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn expected operator mistakes into one line on stderr and a non-zero exit, no traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            raise click.ClickException(f"configuration: {exc}") from None
        except OperationalError as exc:
            reason = str(exc.orig).splitlines()[0] if exc.orig else str(exc).splitlines()[0]
            raise click.ClickException(f"database unreachable: {reason}") from None

    return wrapper


def _config(dev: bool = False) -> Config:
    return load_config({"app": {"development": True}} if dev else None)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="aftercare")
def main() -> None:
    """Aftercare: after-sales retention for Shopify stores and Amazon sellers."""


@main.group()
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


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option("--dev", is_flag=True, help="Development mode: generate local secrets if missing.")
@friendly_errors
def serve(host: str, port: int, dev: bool) -> None:
    """Run the development web server (production: gunicorn 'plugin:create_app()')."""
    from plugin import create_app
    from plugin.migrate import upgrade

    cfg = _config(dev)
    if cfg.database_url.startswith("sqlite"):
        upgrade(cfg.database_url)  # the embedded default should just work
    app = create_app(cfg)
    click.echo(f"Aftercare on http://{host}:{port}  (database: {app.extensions['aftercare.db'].dialect})")
    app.run(host=host, port=port, debug=False, use_reloader=False)


@main.group()
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


@main.group()
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


def run() -> None:
    """Entry point that never shows a traceback for a click usage error."""
    sys.exit(main(standalone_mode=True))


def _register_subsystem_commands() -> None:
    from plugin.commands import admin, amazon, demo, jobs, mail, sandbox, shopify

    for module in (shopify, amazon, jobs, mail, sandbox, demo, admin):
        module.register(main)
    from plugin.commands import flows  # registered beside the others (one line each while cli.py is restructured)
    flows.register(main)


_register_subsystem_commands()
