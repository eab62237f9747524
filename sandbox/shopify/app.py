"""HTTP layer of the Shopify sandbox (WSGI): which shop is asked, who asks, and the routes.

Like Shopify, the shop is the request's Host (``<shop>.myshopify.com``). Clients that reach the sandbox
at ``127.0.0.1:PORT`` either send that Host header, or the ``X-Shopify-Shop-Domain`` header, or get the
single seeded shop.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from sandbox.faults import FaultConfig, FaultInjector
from sandbox.shopify import oauth
from sandbox.shopify.auth import INVALID_TOKEN_MESSAGE
from sandbox.shopify.execution import GraphQLEndpoint, run_graphql
from sandbox.shopify.session_token import mint_session_token
from sandbox.shopify.state import ShopState
from sandbox.shopify.world import ShopWorld

LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
SUPPORTED_VERSIONS = ("2024-10", "2025-01", "2025-04", "2025-07", "2025-10", "unstable")

URLS = Map([
    Rule("/admin/api/<version>/graphql.json", endpoint="graphql", methods=["POST"]),
    Rule("/admin/oauth/access_token", endpoint="access_token", methods=["POST"]),
    Rule("/admin/oauth/authorize", endpoint="authorize", methods=["GET"]),
    Rule("/__bulk/<int:op_id>.jsonl", endpoint="bulk_file", methods=["GET"]),
    Rule("/__sandbox/state", endpoint="ctl_state", methods=["GET"]),
    Rule("/__sandbox/apps", endpoint="ctl_register", methods=["POST"]),
    Rule("/__sandbox/install", endpoint="ctl_install", methods=["POST"]),
    Rule("/__sandbox/revoke", endpoint="ctl_revoke", methods=["POST"]),
    Rule("/__sandbox/faults", endpoint="ctl_faults", methods=["POST"]),
    Rule("/__sandbox/webhooks", endpoint="ctl_webhooks", methods=["GET"]),
    Rule("/__sandbox/customers/<int:customer_id>/consent", endpoint="ctl_consent", methods=["POST"]),
    Rule("/__sandbox/orders", endpoint="ctl_add_order", methods=["POST"]),
    Rule("/__sandbox/orders/<int:order_id>/<action>", endpoint="ctl_order_action", methods=["POST"]),
    Rule("/__sandbox/products/<int:product_id>/delete", endpoint="ctl_delete_product", methods=["POST"]),
    Rule("/__sandbox/customers/<int:customer_id>/delete", endpoint="ctl_delete_customer", methods=["POST"]),
    Rule("/__sandbox/app-bridge.js", endpoint="app_bridge_js", methods=["GET"]),
    Rule("/__sandbox/session-token", endpoint="ctl_session_token", methods=["GET"]),
])


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(payload, ensure_ascii=False), status=status, headers=headers,
                    content_type="application/json; charset=utf-8")


def resolve_shop(sandbox: ShopWorld, request: Request) -> ShopState | None:
    """Pick the shop from Host, then X-Shopify-Shop-Domain, then the single seeded shop."""
    host = (request.host or "").lower()
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    if name.endswith(".myshopify.com"):
        return sandbox.shops.get(name)
    header = (request.headers.get("X-Shopify-Shop-Domain") or "").lower().strip()
    if header:
        return sandbox.shops.get(header)
    if len(sandbox.shops) == 1:
        return next(iter(sandbox.shops.values()))
    return None


def _body(request: Request) -> dict[str, Any] | None:
    """Parse a JSON or form body; None when it is neither."""
    raw = request.get_data(cache=True)
    ctype = request.mimetype
    if ctype == "application/x-www-form-urlencoded":
        return dict(parse_qsl(raw.decode("utf-8", "replace")))
    if ctype == "application/graphql":
        return {"query": raw.decode("utf-8", "replace")}
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def make_wsgi_app(sandbox: ShopWorld, endpoint: GraphQLEndpoint, faults: FaultConfig) -> FaultInjector:
    """Return the sandbox's WSGI application behind its fault injector (which ``/__sandbox/faults`` sets)."""

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        adapter = URLS.bind_to_environ(environ)
        try:
            name, values = adapter.match()
            response = handlers[name](sandbox, request, **values)
        except NotFound:
            response = _json({"errors": "Not Found"}, 404)
        except HTTPException as exc:
            response = _json({"errors": exc.description}, exc.code or 400)
        return response(environ, start_response)

    injector = FaultInjector(app, faults, rate_limited_body=_rate_limited_body)
    handlers = {**HANDLERS, "graphql": partial(graphql, endpoint=endpoint),
                "bulk_file": partial(bulk_file, files=endpoint.bulk.files),
                "ctl_faults": partial(ctl_faults, faults=injector)}
    return injector


def _rate_limited_body() -> tuple[dict[str, str], bytes]:
    """Return the headers and body of Shopify's REST-style 429 (the shape a throttled call gets)."""
    body = (b'{"errors":"Exceeded 2 calls per second for api client. '
            b'Reduce request rates to resume uninterrupted service."}')
    return {"Content-Type": "application/json", "Retry-After": "1"}, body


def graphql(sandbox: ShopWorld, request: Request, version: str, *, endpoint: GraphQLEndpoint) -> Response:
    """Serve ``POST /admin/api/<version>/graphql.json``."""
    state = resolve_shop(sandbox, request)
    if state is None:
        return _json({"errors": "Not Found"}, 404)
    if version not in SUPPORTED_VERSIONS:
        return _json({"errors": "Not Found"}, 404)
    token = request.headers.get("X-Shopify-Access-Token", "")
    access = sandbox.tokens.lookup(token, sandbox.clock.now()) if token else None
    domain = state.store.shop.domain
    if access is None or access.shop != domain or access.client_id not in state.installed:
        return _json({"errors": INVALID_TOKEN_MESSAGE}, 401)
    body = _body(request)
    if body is None:
        return _json({"errors": {"query": "Required parameter missing or invalid"}}, 400)
    payload = run_graphql(sandbox, endpoint, state, sandbox.apps[access.client_id], body, _own_url(request))
    return _json(payload, headers={"X-Shopify-API-Version": version, "X-Request-Id": _request_id()})


def access_token(sandbox: ShopWorld, request: Request) -> Response:
    """Serve ``POST /admin/oauth/access_token``."""
    state = resolve_shop(sandbox, request)
    if state is None:
        return _json({"errors": "Not Found"}, 404)
    body = _body(request)
    if body is None:
        return _json({"error": "invalid_request", "error_description": "Malformed JSON body"}, 400)
    status, payload = oauth.access_token(sandbox, state.store.shop.domain, body)
    return _json(payload, status)


def authorize(sandbox: ShopWorld, request: Request) -> Response:
    """Serve ``GET /admin/oauth/authorize``: the merchant approves at once and is redirected back."""
    state = resolve_shop(sandbox, request)
    if state is None:
        return _json({"errors": "Not Found"}, 404)
    status, result = oauth.authorize_redirect(sandbox, state.store.shop.domain, dict(request.args))
    if status != 302:
        return _json(result, status)
    return Response("", status=302, headers={"Location": str(result)})


def bulk_file(sandbox: ShopWorld, request: Request, op_id: int, *, files: dict[int, bytes]) -> Response:
    """Serve a bulk operation's JSONL result."""
    body = files.get(op_id)
    if body is None:
        return _json({"errors": "Not Found"}, 404)
    return Response(body, content_type="application/jsonl")


def _own_url(request: Request) -> str:
    """Return the address this server listens on (not the shop Host), for bulk result URLs."""
    env = request.environ
    return f"{request.scheme}://{env.get('SERVER_NAME', '127.0.0.1')}:{env.get('SERVER_PORT', '80')}"


def _request_id() -> str:
    return str(uuid.uuid4())


# -- control routes ----------------------------------------------------------------------------------------

def _shop_param(body: dict[str, Any]) -> str | None:
    return body.get("shop") or None


def ctl_state(sandbox: ShopWorld, request: Request) -> Response:
    """Summarize the sandbox: shops, counts, apps."""
    return _json({
        "shops": {d: {"customers": len(s.store.customers), "orders": len(s.store.orders),
                      "products": len(s.store.products), "installed": sorted(s.installed)}
                  for d, s in sandbox.shops.items()},
        "apps": sorted(sandbox.apps), "now": sandbox.clock.now().isoformat()})


def ctl_register(sandbox: ShopWorld, request: Request) -> Response:
    """Register an app: client_id, client_secret, scopes, protected_customer_data, webhook_url."""
    body = _body(request) or {}
    try:
        app = sandbox.register_app(body["client_id"], body["client_secret"], body.get("scopes", ()),
                                   bool(body.get("protected_customer_data", True)), body.get("webhook_url"),
                                   body.get("webhook_topics"))
    except KeyError as exc:
        return _json({"errors": f"missing {exc.args[0]}"}, 400)
    return _json({"client_id": app.client_id, "scopes": list(app.scopes)}, 201)


def ctl_install(sandbox: ShopWorld, request: Request) -> Response:
    """Install an app on a shop and return its token response."""
    body = _body(request) or {}
    if body.get("client_id") not in sandbox.apps:
        return _json({"errors": "unknown client_id"}, 400)
    return _json(sandbox.install(body["client_id"], _shop_param(body), bool(body.get("expiring"))))


def ctl_revoke(sandbox: ShopWorld, request: Request) -> Response:
    """Uninstall an app from a shop (revokes tokens, sends app/uninstalled)."""
    body = _body(request) or {}
    if body.get("client_id") not in sandbox.apps:
        return _json({"errors": "unknown client_id"}, 400)
    return _json({"revoked": sandbox.revoke(body["client_id"], _shop_param(body))})


def ctl_faults(sandbox: ShopWorld, request: Request, *, faults: FaultInjector) -> Response:
    """Set the fault rate and kinds."""
    body = _body(request) or {}
    try:
        faults.configure(float(body.get("rate", 0)), body.get("kinds"), body.get("seed"), body.get("slow_seconds"))
    except ValueError as exc:
        return _json({"errors": str(exc)}, 400)
    return _json({"rate": faults.config.rate, "kinds": list(faults.config.kinds)})


def ctl_webhooks(sandbox: ShopWorld, request: Request) -> Response:
    """List webhook deliveries made so far."""
    return _json([{"topic": d.topic, "shop": d.shop, "url": d.url, "webhook_id": d.webhook_id,
                   "delivered": d.delivered, "attempts": [a.status for a in d.attempts]}
                  for d in sandbox.deliveries])


def ctl_consent(sandbox: ShopWorld, request: Request, customer_id: int) -> Response:
    """Change a customer's e-mail marketing consent."""
    body = _body(request) or {}
    try:
        sandbox.update_customer_consent(customer_id, body.get("state", "SUBSCRIBED"),
                                        body.get("opt_in_level", "SINGLE_OPT_IN"), _shop_param(body))
    except KeyError:
        return _json({"errors": "Not Found"}, 404)
    return _json({"ok": True})


def ctl_add_order(sandbox: ShopWorld, request: Request) -> Response:
    """Create an order: {customer_id, lines: [[variant_id, qty], ...], presentment_currency?, presentment_rate?}."""
    body = _body(request) or {}
    try:
        order = sandbox.add_order(int(body["customer_id"]), [(int(v), int(q)) for v, q in body["lines"]],
                                  _shop_param(body), presentment_currency=body.get("presentment_currency"),
                                  presentment_rate=body.get("presentment_rate"))
    except (KeyError, ValueError, TypeError) as exc:
        return _json({"errors": f"bad order: {exc}"}, 400)
    return _json({"id": order.id, "admin_graphql_api_id": order.gid, "name": order.name}, 201)


def ctl_order_action(sandbox: ShopWorld, request: Request, order_id: int, action: str) -> Response:
    """Fulfil (optionally ``quantity`` units), deliver (optionally ``fulfillment_id``), add a carrier ``event``
    ({status, at?, fulfillment_id?, city?, country?, message?, estimated_delivery_at?}), cancel a fulfilment
    (``cancel_fulfillment``), cancel, refund or delete an order."""
    body = _body(request) or {}
    shop = _shop_param(body)
    when = datetime.fromisoformat(body["at"]) if body.get("at") else None
    actions = {
        "fulfil": lambda: sandbox.fulfil_order(order_id, when, shop, body.get("quantity")),
        "deliver": lambda: sandbox.deliver_order(order_id, when, shop, body.get("fulfillment_id")),
        "event": lambda: sandbox.add_fulfillment_event(
            order_id, str(body.get("status") or ""), when, shop=shop, fulfillment_id=body.get("fulfillment_id"),
            city=body.get("city"), country=body.get("country"), message=body.get("message"),
            estimated_delivery_at=datetime.fromisoformat(body["estimated_delivery_at"])
            if body.get("estimated_delivery_at") else None),
        "cancel_fulfillment": lambda: sandbox.cancel_fulfillment(order_id, body.get("fulfillment_id"), shop),
        "cancel": lambda: sandbox.cancel_order(order_id, body.get("reason", "CUSTOMER"), shop),
        "refund": lambda: sandbox.refund_order(order_id, body.get("amount_cents"), body.get("note"), shop),
        "delete": lambda: sandbox.delete_order(order_id, shop),
    }
    if action not in actions:
        return _json({"errors": "Not Found"}, 404)
    try:
        actions[action]()
    except KeyError:
        return _json({"errors": "Not Found"}, 404)
    except ValueError as exc:
        return _json({"errors": str(exc)}, 422)
    return _json({"ok": True})


def ctl_delete_product(sandbox: ShopWorld, request: Request, product_id: int) -> Response:
    """Delete a product and its variants (sends products/delete)."""
    try:
        sandbox.delete_product(product_id, _shop_param(_body(request) or {}))
    except KeyError:
        return _json({"errors": "Not Found"}, 404)
    return _json({"ok": True})


def ctl_delete_customer(sandbox: ShopWorld, request: Request, customer_id: int) -> Response:
    """Delete a customer without orders (sends customers/delete); 422 when they have orders."""
    try:
        sandbox.delete_customer(customer_id, _shop_param(_body(request) or {}))
    except KeyError:
        return _json({"errors": "Not Found"}, 404)
    except ValueError as exc:
        return _json({"errors": str(exc)}, 422)
    return _json({"ok": True})


# -- App Bridge stand-in ------------------------------------------------------------------------------------
# The embedded admin loads App Bridge from Shopify's CDN, which tests and the demo cannot reach. The stand-in
# (static/app-bridge.js) offers what the admin uses with the real one's contract — ``shopify.idToken()`` backed by
# a route that mints a session token for the shop and app exactly as Shopify would, the authenticated fetch, toasts,
# the save bar, and the navigation and title bar the page declares — and carries them to the sandbox's admin frame
# (sandbox/shopify/admin_frame.py; https://shopify.dev/docs/api/app-home).
APP_BRIDGE_JS = (Path(__file__).with_name("static") / "app-bridge.js").read_text(encoding="utf-8")


def app_bridge_js(sandbox: ShopWorld, request: Request) -> Response:
    """Serve the App Bridge stand-in script, told the admin frame's origin (this server)."""
    return Response(APP_BRIDGE_JS.replace('"__ADMIN_ORIGIN__"', json.dumps(_own_url(request))),
                    content_type="text/javascript; charset=utf-8", headers={"Cache-Control": "no-store"})


def ctl_session_token(sandbox: ShopWorld, request: Request) -> Response:
    """Mint a session token for an installed app on a shop (what the Shopify admin hands App Bridge)."""
    cors = {"Access-Control-Allow-Origin": "*"}
    app = sandbox.apps.get(request.args.get("client_id", ""))
    shop = (request.args.get("shop") or "").lower()
    if app is None or shop not in sandbox.shops:
        return _json({"errors": "unknown app or shop"}, 404, cors)
    token = mint_session_token(shop, app.client_id, app.client_secret, sandbox.clock.now())
    return _json({"token": token}, 200, cors)


HANDLERS = {
    "access_token": access_token, "authorize": authorize,
    "ctl_state": ctl_state, "ctl_register": ctl_register, "ctl_install": ctl_install, "ctl_revoke": ctl_revoke,
    "ctl_webhooks": ctl_webhooks, "ctl_consent": ctl_consent,
    "ctl_add_order": ctl_add_order, "ctl_order_action": ctl_order_action,
    "ctl_delete_product": ctl_delete_product, "ctl_delete_customer": ctl_delete_customer,
    "app_bridge_js": app_bridge_js, "ctl_session_token": ctl_session_token,
}
