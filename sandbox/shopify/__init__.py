"""Shopify sandbox: a seeded store behind Admin GraphQL, OAuth and signed webhooks on loopback HTTP.

Typical use (tests, the demo)::

    sandbox = ShopifySandbox(seed=42, customers=200, orders=1000, clock=FrozenClock())
    server = sandbox.start()                      # ServerThread on a free port
    sandbox.register_app("client", "secret", ["read_orders", "read_customers"], webhook_url=...)
    token = sandbox.install("client")["access_token"]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from sandbox.server import ServerThread
from sandbox.shopify.assembly import ShopifySandbox
from sandbox.shopify.seed import ShopSpec
from sandbox.shopify.session_token import mint_session_token, verify_session_token
from sandbox.shopify.state import DEFAULT_SHOP
from sandbox.shopify.webhooks import sign as sign_webhook

__all__ = ["DEFAULT_SHOP", "ShopSpec", "ShopifySandbox", "add_cli_arguments", "mint_session_token",
           "run_from_args", "serve", "sign_webhook", "verify_session_token"]


def serve(port: int = 9001, seed: int = 42, customers: int = 2000, orders: int = 10000,
          shops: Sequence[str] | None = None, host: str = "127.0.0.1", app: dict[str, Any] | None = None) -> None:
    """Serve a seeded sandbox in the foreground until interrupted (``aftercare sandbox shopify``).

    ``app`` (keys of :meth:`ShopifySandbox.register_app`) registers an app at start; more can be
    registered through ``POST /__sandbox/apps``.
    """
    sandbox = ShopifySandbox(seed=seed, customers=customers, orders=orders, shops=shops, async_webhooks=True)
    if app:
        sandbox.register_app(**app)
    server = ServerThread(sandbox.wsgi_app, host=host, port=port)
    sandbox.server = server
    print(f"Shopify sandbox on {server.url} shops={', '.join(sandbox.shop_domains)} "  # noqa: T201
          f"customers={customers} orders={orders} seed={seed}", flush=True)
    server.serve_forever()


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``aftercare sandbox shopify`` options to an argparse parser."""
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--orders", type=int, default=10000)
    parser.add_argument("--shop", action="append", dest="shops",
                        help="myshopify domain to seed (repeatable); default " + DEFAULT_SHOP)
    parser.add_argument("--client-id", help="register this app at start (secret from --client-secret)")
    parser.add_argument("--client-secret", default="")
    parser.add_argument("--scopes", default="read_orders,read_all_orders,read_customers,write_customers,read_products,"
                                            "write_discounts")
    parser.add_argument("--webhook-url", default=None, help="where the registered app receives webhooks")


def run_from_args(args: argparse.Namespace) -> None:
    """Run the sandbox from parsed CLI arguments."""
    app = None
    if args.client_id:
        app = {"client_id": args.client_id, "client_secret": args.client_secret, "scopes": args.scopes,
               "webhook_url": args.webhook_url}
    serve(port=args.port, seed=args.seed, customers=args.customers, orders=args.orders,
          shops=args.shops, host=args.host, app=app)
