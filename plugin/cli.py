"""The app's own commands, in the order `aftercare --help` lists them; aftercare.cli adds those of jobs and demo.

Each module of plugin/commands registers its commands on the group it is given and imports only
plugin/commands/common.py of the command line, so no command module imports another.
"""

from __future__ import annotations

import click

from plugin.commands import admin, amazon, core, flows, mail, shopify


def register(main: click.Group) -> None:
    """Add every command of the app (the `stores` group before `stores add-amazon`) to the `aftercare` group."""
    for module in (core, shopify, amazon, mail, admin, flows):
        module.register(main)
