"""CLI commands: sandbox (registered on the `aftercare` group by plugin.cli)."""

from __future__ import annotations

import click


@click.group("sandbox")
def sandbox_group() -> None:
    """Run a local stand-in for an external service (loopback only)."""


@sandbox_group.command("judgeme")
@click.option("--port", default=9003, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--host", default="127.0.0.1", show_default=True)
def sandbox_judgeme(port: int, seed: int, host: str) -> None:
    """Serve the Judge.me API sandbox with seeded multilingual reviews."""
    from sandbox.judgeme import serve

    serve(port=port, seed=seed, host=host)


@sandbox_group.command("smtp")
@click.option("--port", default=2525, show_default=True, type=int)
@click.option("--outbox", "outbox_dir", type=click.Path(file_okay=False), default=None,
              help="Also write every message received there as an .eml file.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--starttls", is_flag=True, help="Offer STARTTLS with a self-signed certificate.")
def sandbox_smtp(port: int, outbox_dir: str | None, host: str, starttls: bool) -> None:
    """Serve an SMTP server that keeps what it receives."""
    from sandbox.smtp import serve

    serve(port=port, outbox_dir=outbox_dir, host=host, tls=starttls)


def register(main: click.Group) -> None:
    """Add this module's commands to the `aftercare` group."""
    main.add_command(sandbox_group)
