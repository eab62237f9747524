"""A stand-in "Shopify admin" page, served on the Shopify sandbox's port, that opens the app embedded.

Shopify shows an embedded app inside an iframe of its admin and hands the app a session token on load
(``id_token``); App Bridge then fetches fresh ones and carries what the app declares to the admin: its sidebar
items (``s-app-nav``), the title bar (``s-page`` heading and actions), the contextual save bar (``data-save-bar``
forms), toasts and leave confirmations (https://shopify.dev/docs/api/app-home). This page does the same with a
token minted by the sandbox: the app's pages load the sandbox's App Bridge stand-in (``/__sandbox/app-bridge.js``),
which talks to this page (``/__sandbox/admin-frame.js``) over ``postMessage``, so a browser test drives the app
as a merchant would.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from werkzeug.wrappers import Request, Response

from sandbox.shopify.assembly import ShopifySandbox
from sandbox.shopify.session_token import mint_session_token

STATIC = Path(__file__).with_name("static")
PREFIX = "/admin/apps/"

FRAME_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{shop_name} · Apps · {app_name}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/__sandbox/admin-frame.css">
</head>
<body>
<header class="topbar"><b>Shopify admin (sandbox)</b><span>{shop_name}</span>
<span class="note">local stand-in for admin.shopify.com</span></header>
<div id="save-bar" class="save-bar" role="region" aria-label="Unsaved changes" hidden>
  <span class="save-bar-text">Unsaved changes</span>
  <button id="save-bar-discard" type="button">Discard</button>
  <button id="save-bar-save" type="button" class="primary">Save</button>
</div>
<div class="layout">
  <aside class="sidebar">
    <nav aria-label="Shopify admin">
      <ul class="admin-items"><li><span>Home</span></li><li><span>Orders</span></li><li><span>Products</span></li>
        <li><span>Customers</span></li><li><span>Analytics</span></li></ul>
      <p class="apps-label">Apps</p>
    </nav>
    <a id="app-home" class="app-home" href="{frame_path}">{app_name}</a>
    <nav aria-label="{app_name}"><ul id="app-nav-items" class="app-items"></ul></nav>
  </aside>
  <main class="main">
    <div id="title-bar" class="title-bar" hidden>
      <div id="title-bar-breadcrumb" class="tb-crumbs"></div>
      <h1 id="title-bar-heading"></h1>
      <div id="title-bar-actions" class="tb-actions"></div>
    </div>
    <iframe id="app-frame" title="{app_name}" src="{src}"></iframe>
  </main>
</div>
<div id="toasts" class="toasts" role="status" aria-live="polite"></div>
<dialog id="confirm" aria-labelledby="confirm-heading">
  <form method="dialog">
    <h2 id="confirm-heading"></h2><p id="confirm-text"></p>
    <div class="dialog-actions"><button id="confirm-stay" value="stay"></button>
      <button id="confirm-leave" value="leave" class="critical"></button></div>
  </form>
</dialog>
<script type="application/json" id="frame-config">{config}</script>
<script src="/__sandbox/admin-frame.js"></script>
</body></html>
"""


class AdminFrame:
    """WSGI middleware: ``GET /admin/apps/<client id>[/<path>]`` renders the admin frame; everything else passes."""

    def __init__(self, inner: Callable[..., Iterable[bytes]], sandbox: ShopifySandbox, app_url: Callable[[], str],
                 shop: str, app_name: str = "Aftercare"):
        self.inner = inner
        self.sandbox = sandbox
        self.app_url = app_url
        self.shop = shop
        self.app_name = app_name

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Serve the frame page and its assets, or hand the request to the sandbox."""
        request = Request(environ)
        if request.method == "GET" and request.path in ("/__sandbox/admin-frame.js", "/__sandbox/admin-frame.css"):
            return self.asset(request.path.rsplit("/", 1)[1])(environ, start_response)
        if request.method != "GET" or not request.path.startswith(PREFIX):
            return self.inner(environ, start_response)
        client_id, _, rest = request.path[len(PREFIX):].partition("/")
        return self.page(client_id, rest, request.query_string.decode("ascii", "replace"))(environ, start_response)

    @staticmethod
    def asset(name: str) -> Response:
        """Return the frame page's script or stylesheet."""
        kind = "text/javascript" if name.endswith(".js") else "text/css"
        return Response((STATIC / name).read_bytes(), content_type=f"{kind}; charset=utf-8",
                        headers={"Cache-Control": "no-store"})

    def page(self, client_id: str, path: str = "", query: str = "") -> Response:
        """Return the frame page opening ``/admin/<path>`` of the app with a freshly minted session token, or 404."""
        app = self.sandbox.apps.get(client_id)
        if app is None:
            return Response("unknown app", status=404, content_type="text/plain")
        store = self.sandbox.shop_state(self.shop).store
        token = mint_session_token(self.shop, app.client_id, app.client_secret, self.sandbox.clock.now())
        handle = self.shop.split(".")[0]
        host = base64.urlsafe_b64encode(f"admin.shopify.com/store/{handle}".encode()).decode().rstrip("=")
        params = urlencode({"embedded": "1", "shop": self.shop, "host": host, "id_token": token})
        app_url = self.app_url().rstrip("/")
        src = f"{app_url}/admin/{path}?{query + '&' if query else ''}{params}"
        parts = urlsplit(app_url)
        config = {"appOrigin": f"{parts.scheme}://{parts.netloc}", "framePath": f"{PREFIX}{client_id}",
                  "appName": self.app_name, "shopName": store.shop.name}
        body = FRAME_PAGE.format(shop_name=html.escape(store.shop.name), app_name=html.escape(self.app_name),
                                 src=html.escape(src), frame_path=html.escape(f"{PREFIX}{client_id}"),
                                 config=json.dumps(config).replace("</", "<\\/"))
        return Response(body, content_type="text/html; charset=utf-8", headers={"Cache-Control": "no-store"})
