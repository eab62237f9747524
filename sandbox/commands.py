"""CLI commands: sandbox shopify|amazon|judgeme|smtp (registered on the `aftercare` group by aftercare.cli)."""

from __future__ import annotations

import click


@click.group("sandbox")
def sandbox_group() -> None:
    """Run a local stand-in for an external service (loopback only)."""


@sandbox_group.command("shopify")
@click.option("--port", default=9001, show_default=True, type=int)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--customers", default=2000, show_default=True, type=int)
@click.option("--orders", default=10000, show_default=True, type=int)
@click.option("--shop", "shops", multiple=True, help="myshopify domain to seed (repeatable).")
@click.option("--client-id", default=None, envvar="AFTERCARE_SHOPIFY_API_KEY",
              help="Register this app at start (default: AFTERCARE_SHOPIFY_API_KEY).")
@click.option("--client-secret", default="", envvar="AFTERCARE_SHOPIFY_API_SECRET",
              help="Its secret (default: AFTERCARE_SHOPIFY_API_SECRET).")
@click.option("--scopes", default="read_orders,read_all_orders,read_customers,write_customers,read_products,"
                                  "write_discounts",
              show_default=True)
@click.option("--webhook-url", default=None, help="Where the registered app receives webhooks.")
def sandbox_shopify(port: int, host: str, seed: int, customers: int, orders: int, shops: tuple[str, ...],
                    client_id: str | None, client_secret: str, scopes: str, webhook_url: str | None) -> None:
    """Serve the Shopify sandbox: a seeded store behind Admin GraphQL, OAuth and signed webhooks."""
    import argparse

    from sandbox.shopify import run_from_args

    run_from_args(argparse.Namespace(port=port, host=host, seed=seed, customers=customers, orders=orders,
                                     shops=list(shops) or None, client_id=client_id, client_secret=client_secret,
                                     scopes=scopes, webhook_url=webhook_url))


@sandbox_group.command("amazon")
@click.option("--port", default=9002, show_default=True, type=int)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--seed", default=7, show_default=True, type=int)
@click.option("--orders", default=5000, show_default=True, type=int)
@click.option("--rate-scale", default=1.0, show_default=True, type=float,
              help="Multiply every SP-API rate and burst (tests and benchmarks run faster).")
def sandbox_amazon(port: int, host: str, seed: int, orders: int, rate_scale: float) -> None:
    """Serve the Amazon SP-API sandbox (LWA app from AFTERCARE_LWA_CLIENT_ID/SECRET when set)."""
    import os

    from sandbox.amazon import serve

    serve(port=port, seed=seed, orders=orders, host=host, rate_scale=rate_scale,
          client_id=os.environ.get("AFTERCARE_LWA_CLIENT_ID") or None,
          client_secret=os.environ.get("AFTERCARE_LWA_CLIENT_SECRET") or None)


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
