"""A stand-in "Shopify admin" page, served on the Shopify sandbox's port, that opens the app embedded.

Shopify shows an embedded app inside an iframe of its admin and hands the app a session token on load
(``id_token``), then App Bridge fetches fresh ones (https://shopify.dev/docs/apps/build/admin). This page does
the same with a token minted by the sandbox; the app's pages load the sandbox's App Bridge stand-in
(``/__sandbox/app-bridge.js``), which keeps minting tokens for their fetches.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from sandbox.shopify import ShopifySandbox, mint_session_token

FRAME_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{shop_name} · Apps · {app_name}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 html, body {{ margin: 0; height: 100%; font-family: -apple-system, "Segoe UI", Roboto, sans-serif; }}
 body {{ display: flex; flex-direction: column; background: #f1f1f1; }}
 header {{ background: #1a1a1a; color: #e3e3e3; display: flex; align-items: center; gap: 12px;
          padding: 8px 16px; font-size: 13px; }}
 header b {{ color: #fff; }} header .note {{ margin-left: auto; color: #a8a8a8; }}
 iframe {{ flex: 1; border: 0; width: 100%; background: #fff; }}
</style></head>
<body><header><b>Shopify admin (sandbox)</b><span>{shop_name} · Apps · {app_name}</span>
<span class="note">local stand-in for admin.shopify.com</span></header>
<iframe title="{app_name}" src="{src}"></iframe></body></html>
"""


class AdminFrame:
    """WSGI middleware: ``GET /admin/apps/<client id>`` renders the admin frame; everything else passes."""

    def __init__(self, inner: Callable[..., Iterable[bytes]], sandbox: ShopifySandbox, app_url: Callable[[], str],
                 shop: str, app_name: str = "Aftercare"):
        self.inner = inner
        self.sandbox = sandbox
        self.app_url = app_url
        self.shop = shop
        self.app_name = app_name

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Serve the frame page or hand the request to the sandbox."""
        request = Request(environ)
        prefix = "/admin/apps/"
        if request.method != "GET" or not request.path.startswith(prefix):
            return self.inner(environ, start_response)
        client_id = request.path[len(prefix):].strip("/")
        return self.page(client_id)(environ, start_response)

    def page(self, client_id: str) -> Response:
        """Return the frame page with a freshly minted session token for the app, or 404."""
        app = self.sandbox.apps.get(client_id)
        if app is None:
            return Response("unknown app", status=404, content_type="text/plain")
        store = self.sandbox.shop_state(self.shop).store
        token = mint_session_token(self.shop, app.client_id, app.client_secret, self.sandbox.clock.now())
        handle = self.shop.split(".")[0]
        host = base64.urlsafe_b64encode(f"admin.shopify.com/store/{handle}".encode()).decode().rstrip("=")
        query = urlencode({"embedded": "1", "shop": self.shop, "host": host, "id_token": token})
        body = FRAME_PAGE.format(shop_name=html.escape(store.shop.name), app_name=html.escape(self.app_name),
                                 src=html.escape(f"{self.app_url().rstrip('/')}/admin/?{query}"))
        return Response(body, content_type="text/html; charset=utf-8", headers={"Cache-Control": "no-store"})
