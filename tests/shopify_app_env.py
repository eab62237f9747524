"""Test helpers: the Shopify sandbox and our app, each on its own loopback HTTP server, sharing a clock."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
from flask import Flask

from base.clock import FrozenClock
from plugin import create_app
from plugin.context import JobContext
from plugin.webhooks.signature import sign_body
from sandbox.server import ServerThread
from sandbox.shopify import DEFAULT_SHOP, ShopifySandbox, mint_session_token
from tests.conftest import TEST_SHOPIFY_API_KEY, TEST_SHOPIFY_API_SECRET, test_settings, wipe

TIMEOUT = 10
SCOPES = ("read_orders", "read_all_orders", "read_customers", "write_customers", "read_products", "write_discounts")


@dataclass
class ShopifyEnv:
    """A seeded sandbox shop, our app served over HTTP, and the clock both read."""

    sandbox: ShopifySandbox
    app: Flask
    server: ServerThread
    clock: FrozenClock
    shop: str = DEFAULT_SHOP

    @property
    def url(self) -> str:
        """Return our app's base URL."""
        return self.server.url

    def ctx(self) -> JobContext:
        """Return a job context sharing the app's database, vault and clock."""
        return JobContext.from_app(self.app, sleep=lambda _s: None)

    def session_token(self, **kwargs: Any) -> str:
        """Mint an App Bridge session token for the shop, as the Shopify admin would."""
        return mint_session_token(self.shop, TEST_SHOPIFY_API_KEY, TEST_SHOPIFY_API_SECRET, self.clock.now(),
                                  **kwargs)

    def install(self) -> int:
        """Install the shop through token exchange over HTTP; return the store id."""
        answer = requests.post(f"{self.url}/auth/token-exchange", timeout=TIMEOUT,
                               headers={"Authorization": f"Bearer {self.session_token()}"})
        assert answer.status_code == 200, answer.text
        return int(answer.json()["store_id"])


@contextmanager
def shopify_env(database_url: str, tmp_path: Path, clock: FrozenClock, customers: int = 12,
                orders: int = 40, **settings: Any) -> Iterator[ShopifyEnv]:
    """Start the sandbox and our app wired to each other; wipe the database afterwards."""
    sandbox = ShopifySandbox(seed=11, customers=customers, orders=orders, clock=clock)
    sandbox.start()
    shopify_settings = {"admin_base_url": sandbox.url, **settings.pop("shopify", {})}
    app = create_app(test_settings(database_url, tmp_path / "instance", shopify=shopify_settings, **settings),
                     clock=clock)
    server = ServerThread(app).start()
    sandbox.register_app(TEST_SHOPIFY_API_KEY, TEST_SHOPIFY_API_SECRET, SCOPES,
                         webhook_url=server.url + "/webhooks")
    try:
        yield ShopifyEnv(sandbox, app, server, clock)
    finally:
        server.stop()
        sandbox.stop()
        wipe(app.extensions["aftercare.db"].engine)
        app.extensions["aftercare.db"].dispose()


def signed_headers(body: bytes, topic: str, shop: str = DEFAULT_SHOP, secret: str = TEST_SHOPIFY_API_SECRET,
                   webhook_id: str | None = None, event_id: str | None = None,
                   triggered_at: datetime | None = None) -> dict[str, str]:
    """Return the headers Shopify sends with a webhook (signature over the raw body)."""
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign_body(body, secret),
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-API-Version": "2025-01",
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
    }
    if triggered_at is not None:
        headers["X-Shopify-Triggered-At"] = triggered_at.isoformat()
    return headers


def body_of(payload: Any) -> bytes:
    """Serialise a payload the way Shopify does (compact JSON, UTF-8)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
