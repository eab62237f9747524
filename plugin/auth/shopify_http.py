"""HTTP clients for the calls the app makes to a shop (token endpoint, Admin GraphQL).

Libraries such as ``shopifyapp`` build ``https://{shop}/admin/...`` URLs themselves; when
``shopify.admin_base_url`` is set (the sandbox, the demo) the transport below sends those requests to
that base URL instead, keeping ``Host: {shop}`` so the server still knows which shop is meant.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from plugin.config import Config

SHOP_SUFFIX = ".myshopify.com"


class ShopRoutingTransport(httpx.BaseTransport):
    """Send requests addressed to ``*.myshopify.com`` to a fixed base URL with the shop kept as Host."""

    def __init__(self, base_url: str, inner: httpx.BaseTransport | None = None):
        target = httpx.URL(base_url)
        self._scheme = target.scheme
        self._host = target.host
        self._port = target.port
        self._prefix = target.path.rstrip("/")
        self._inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Rewrite the target of shop requests, then send through the inner transport."""
        if request.url.host.endswith(SHOP_SUFFIX):
            # Host was fixed from the original URL when the request was built, so it stays the shop.
            request.url = request.url.copy_with(scheme=self._scheme, host=self._host, port=self._port,
                                                path=self._prefix + request.url.path)
        return self._inner.handle_request(request)

    def close(self) -> None:
        """Close the inner transport."""
        self._inner.close()


def shop_http_client(config: Config, on_response: Callable[[httpx.Response], Any] | None = None) -> httpx.Client:
    """Return a client with the configured timeout that reaches shops (or the configured stand-in)."""
    base = config.get("shopify.admin_base_url").strip()
    timeout = httpx.Timeout(config.get("shopify.request_timeout_seconds"))
    hooks = {"response": [on_response]} if on_response else {}
    transport = ShopRoutingTransport(base) if base else None
    return httpx.Client(timeout=timeout, transport=transport, event_hooks=hooks, follow_redirects=False)


def shop_name(shop_domain: str) -> str:
    """Return the handle of a shop domain (``acme`` for ``acme.myshopify.com``), as shopifyapp expects."""
    return shop_domain[: -len(SHOP_SUFFIX)] if shop_domain.endswith(SHOP_SUFFIX) else shop_domain
