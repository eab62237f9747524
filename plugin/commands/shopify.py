"""CLI commands: shopify (registered on the `aftercare` group by plugin.cli)."""

from __future__ import annotations

import click


def register(main: click.Group) -> None:
    """Add this module's commands to the `aftercare` group."""
    main.add_command(shopify_toml)


@click.command("shopify-toml")
def shopify_toml() -> None:
    """Print Shopify CLI's shopify.app.toml generated from app.toml."""
    from plugin.cli import _config, friendly_errors
    from plugin.shopify_cli_config import render_shopify_app_toml

    click.echo(friendly_errors(lambda: render_shopify_app_toml(_config()))(), nl=False)
