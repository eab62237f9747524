"""Shared helpers for the Shopify sandbox tests: a started sandbox, an app, GraphQL calls, a receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests
from werkzeug.wrappers import Request, Response

from base.clock import FrozenClock
from sandbox.server import ServerThread
from sandbox.shopify import ShopifySandbox

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
TIMEOUT = 10
SHOP = "aftercare-demo.myshopify.com"
CLIENT_ID = "test-client"
CLIENT_SECRET = "shpss_0123456789abcdef0123456789abcdef"
ALL_SCOPES = ("read_orders", "read_all_orders", "read_customers", "read_products", "write_discounts")


@dataclass
class Env:
    """A running sandbox, its clock, and an installed app's offline token."""

    sandbox: ShopifySandbox
    clock: FrozenClock
    token: str
    server: ServerThread

    @property
    def url(self) -> str:
        """Return the sandbox base URL."""
        return self.server.url

    def gql(self, query: str, variables: dict[str, Any] | None = None, token: str | None = None,
            shop: str | None = SHOP) -> requests.Response:
        """POST a GraphQL document as the app, naming the shop by Host like Shopify clients do."""
        headers = {"X-Shopify-Access-Token": self.token if token is None else token}
        if shop:
            headers["Host"] = shop
        return requests.post(f"{self.url}/admin/api/2025-01/graphql.json", headers=headers,
                             json={"query": query, "variables": variables or {}}, timeout=TIMEOUT)

    def data(self, query: str, variables: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        """Return ``data`` of a successful answer (asserting there are no errors)."""
        answer = self.gql(query, variables, **kwargs)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert "errors" not in body, body["errors"]
        return body["data"]


def make_env(customers: int = 60, orders: int = 300, scopes: tuple[str, ...] = ALL_SCOPES,
             protected: bool = True, **options: Any) -> Iterator[Env]:
    """Start a small seeded sandbox on a frozen clock with one installed app; yield; stop."""
    clock = FrozenClock(NOW)
    sandbox = ShopifySandbox(seed=7, customers=customers, orders=orders, clock=clock, **options)
    sandbox.register_app(CLIENT_ID, CLIENT_SECRET, scopes, protected_customer_data=protected)
    token = sandbox.install(CLIENT_ID)["access_token"]
    server = sandbox.start()
    try:
        yield Env(sandbox, clock, token, server)
    finally:
        sandbox.stop()


@dataclass
class Receiver:
    """A real HTTP endpoint that records webhook requests and answers with scripted statuses."""

    statuses: list[int] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    server: ServerThread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        with self._lock:
            self.requests.append({"headers": dict(request.headers), "body": request.get_data(),
                                  "path": request.path})
            status = self.statuses.pop(0) if self.statuses else 200
        return Response(json.dumps({"ok": status < 300}), status=status)(environ, start_response)

    @property
    def url(self) -> str:
        """Return the receiver's URL."""
        assert self.server is not None
        return self.server.url + "/webhooks"

    def topics(self) -> list[str]:
        """Return the topics received, in order."""
        return [r["headers"]["X-Shopify-Topic"] for r in self.requests]


def start_receiver() -> Receiver:
    """Start a webhook receiver on a free loopback port."""
    receiver = Receiver()
    receiver.server = ServerThread(receiver).start()
    return receiver
