"""CLI commands: `aftercare flows list` (every declared flow with its class, trigger and settings)."""

from __future__ import annotations

import click

from plugin.flows import FLOWS


def register(main: click.Group) -> None:
    """Add the `flows` group to the `aftercare` group."""
    main.add_command(flows)


@click.group()
def flows() -> None:
    """Inspect the declared flows (plugin/flows/)."""


@flows.command("list")
def flows_list() -> None:
    """Print every declared flow with its class, trigger, steps and settings (name, type, default)."""
    for flow in FLOWS.values():
        click.echo(f"{flow.name}  [{flow.flow_class}]  {', '.join(flow.platforms)}")
        click.echo(f"  trigger: {flow.trigger}")
        click.echo(f"  consent: {flow.rule.consent}; offers: {flow.offers}")
        if flow.steps:
            names = [step.name + (f" [{step.step_class}]" if step.step_class else "") for step in flow.steps]
            click.echo(f"  steps: {', '.join(names)}")
        click.echo("  settings:")
        for setting in flow.settings:
            click.echo(f"    {setting.name}: {setting.type} = {setting.default!r}")
        click.echo("")
