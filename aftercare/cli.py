"""The `aftercare` command line: one group, one-line help per command, clear one-line errors.

The app (plugin), the jobs, the demo and the sandboxes each bring their own commands; only this module
knows all of them, so no layer imports one above it to reach the command line.
"""

from __future__ import annotations

import sys

import click

import demo.commands
import jobs.commands
import plugin.cli
import sandbox.commands
from plugin.commands.common import CONTEXT_SETTINGS


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="aftercare")
def main() -> None:
    """Aftercare: after-sales retention for Shopify stores and Amazon sellers."""


for _module in (plugin.cli, jobs.commands, sandbox.commands, demo.commands):
    _module.register(main)


def run() -> None:
    """Entry point that never shows a traceback for a click usage error."""
    sys.exit(main(standalone_mode=True, prog_name="aftercare"))
