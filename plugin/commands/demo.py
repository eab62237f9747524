"""CLI commands: demo (registered on the `aftercare` group by plugin.cli)."""

from __future__ import annotations

import click


def register(main: click.Group) -> None:
    """Add this module's commands to the `aftercare` group."""
