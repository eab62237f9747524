"""CLI commands: shopify-toml (listed in plugin.cli)."""

from __future__ import annotations

import click

from plugin.commands.common import command_config, friendly_errors


def register(main: click.Group) -> None:
    """Add this module's commands to the `aftercare` group."""
    main.add_command(shopify_toml)


@click.command("shopify-toml")
def shopify_toml() -> None:
    """Print Shopify CLI's shopify.app.toml generated from app.toml."""
    from plugin.shopify_cli_config import render_shopify_app_toml

    click.echo(friendly_errors(lambda: render_shopify_app_toml(command_config()))(), nl=False)
