"""The Amazon SP-API sandbox: seeded state, the WSGI app and the control methods tests use.

Every SP-API answer carries ``x-amzn-RequestId`` and ``x-amzn-RateLimit-Limit``; the gateway checks run in
Amazon's order: access token (403), then the operation's token bucket (429), then the operation.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from base.clock import Clock, SystemClock

from .. import faults as fault_module
from ..server import ServerThread
from . import control, messaging, orders, orders_2026, orders_v0, reports, solicitations, tokens
from .context import Ctx
from .http import ApiError, json_response
from .lwa import Lwa
from .marketplaces import MARKETPLACES
from .ratelimit import TokenBuckets, format_rate
from .seed import Feedback, Order, Return, generate, make_order
from .static import StaticCases

Handler = Callable[..., tuple[int, Any]]
STATIC_HOSTS = ("sandbox.sellingpartnerapi-na.amazon.com", "sandbox.sellingpartnerapi-eu.amazon.com",
                "sandbox.sellingpartnerapi-fe.amazon.com")
ACCESS_DENIED = "Access to requested resource is denied."
# 500 wording as reported in https://github.com/saleweaver/python-amazon-sp-api/issues/943; the 503
# wording is an assumption (no public sample found).
SERVER_ERRORS = {
    500: {"errors": [{"code": "InternalFailure", "message": "We encountered an internal error. Please try again.",
                      "details": ""}]},
    503: {"errors": [{"code": "ServiceUnavailable", "message": "Service temporarily unavailable. Please try "
                      "again.", "details": ""}]},
}
QUOTA_BODY = {"errors": [{"code": "QuotaExceeded", "message": "You exceeded your quota for the requested "
                          "resource.", "details": ""}]}

MESSAGE_OPERATIONS = {
    "confirmCustomizationDetails": "confirmCustomizationDetails",
    "confirmDeliveryDetails": "createConfirmDeliveryDetails",
    "legalDisclosure": "createLegalDisclosure",
    "confirmOrderDetails": "createConfirmOrderDetails",
    "confirmServiceDetails": "createConfirmServiceDetails",
    "warranty": "CreateWarranty",
    "digitalAccessKey": "createDigitalAccessKey",
    "unexpectedProblem": "createUnexpectedProblem",
    "invoice": "sendInvoice",
}


def _routes() -> list[tuple[str, str, str, Handler]]:
    """Return (method, path, operation key, handler) for every operation served."""
    o26, v0, sol, msg, rep = ("orders_2026-01-01", "ordersV0", "solicitations", "messaging",
                              "reports_2021-06-30")
    routes = [
        ("GET", "/orders/2026-01-01/orders", f"{o26}.searchOrders", orders_2026.search_orders),
        ("GET", "/orders/2026-01-01/orders/<orderId>", f"{o26}.getOrder", orders_2026.get_order_2026),
        ("GET", "/orders/v0/orders", f"{v0}.getOrders", orders_v0.get_orders_v0),
        ("GET", "/orders/v0/orders/<orderId>", f"{v0}.getOrder", orders_v0.get_order_v0),
        ("GET", "/orders/v0/orders/<orderId>/orderItems", f"{v0}.getOrderItems", orders_v0.get_order_items_v0),
        ("GET", "/orders/v0/orders/<orderId>/buyerInfo", f"{v0}.getOrderBuyerInfo", orders_v0.get_order_buyer_info_v0),
        ("GET", "/orders/v0/orders/<orderId>/address", f"{v0}.getOrderAddress", orders_v0.get_order_address_v0),
        ("GET", "/solicitations/v1/orders/<amazonOrderId>", f"{sol}.getSolicitationActionsForOrder",
         solicitations.get_actions),
        ("POST", "/solicitations/v1/orders/<amazonOrderId>/solicitations/productReviewAndSellerFeedback",
         f"{sol}.createProductReviewAndSellerFeedbackSolicitation", solicitations.create_solicitation),
        ("GET", "/messaging/v1/orders/<amazonOrderId>", f"{msg}.getMessagingActionsForOrder",
         messaging.get_actions),
        ("GET", "/messaging/v1/orders/<amazonOrderId>/attributes", f"{msg}.GetAttributes",
         messaging.get_attributes),
        ("GET", "/reports/2021-06-30/reports", f"{rep}.getReports", reports.get_reports),
        ("POST", "/reports/2021-06-30/reports", f"{rep}.createReport", reports.create_report),
        ("GET", "/reports/2021-06-30/reports/<reportId>", f"{rep}.getReport", reports.get_report),
        ("DELETE", "/reports/2021-06-30/reports/<reportId>", f"{rep}.cancelReport", reports.cancel_report),
        ("GET", "/reports/2021-06-30/documents/<reportDocumentId>", f"{rep}.getReportDocument",
         reports.get_report_document),
        ("POST", "/tokens/2021-03-01/restrictedDataToken", "tokens_2021-03-01.createRestrictedDataToken",
         tokens.create_rdt),
    ]
    for kind, operation in MESSAGE_OPERATIONS.items():
        routes.append(("POST", f"/messaging/v1/orders/<amazonOrderId>/messages/{kind}", f"{msg}.{operation}",
                       messaging.send(kind)))
    return routes


class AmazonSandbox:
    """A seeded SP-API + LWA stand-in served over real HTTP (see ``start``)."""

    def __init__(self, seed: int = 7, orders: int = 5000, clock: Clock | None = None, rate_scale: float = 1.0,
                 rate_limits: bool = True, static: bool = False, gzip_threshold: int = 2048,
                 client_id: str | None = None, client_secret: str | None = None):
        self.clock: Clock = clock or SystemClock()
        self.seed = seed
        self._rng = random.Random(seed ^ 0x5A17)
        self.secret = f"aftercare-amazon-sandbox-{seed}".encode()
        data = generate(seed, orders, self.clock.now())
        self.sellers = data.sellers
        self.products = data.products
        self.orders: list[Order] = data.orders
        self.returns: list[Return] = data.returns
        self.feedback: list[Feedback] = data.feedback
        self.orders_by_id = {o.order_id: o for o in self.orders}
        self._orders_by_seller: dict[str, list[Order]] = {}
        for order in self.orders:
            self._orders_by_seller.setdefault(order.seller_id, []).append(order)
        self.lwa = Lwa(self.clock)
        # The default LWA app; pass the credentials the app is configured with (AFTERCARE_LWA_CLIENT_*).
        self.client_id, self.client_secret = self.lwa.register_app(client_id, client_secret)
        self.buckets = TokenBuckets(self.clock, rate_scale, rate_limits)
        self.solicitations = solicitations.SolicitationLedger()
        self.messages = messaging.MessageLog()
        self.reports = reports.ReportStore()
        self.static_cases = StaticCases()
        self.static = static
        # seller id -> path prefixes whose role the seller did not grant this app (403 like Amazon).
        self.withheld: dict[str, set[str]] = {}
        self.gzip_threshold = gzip_threshold
        self._lock = threading.Lock()
        self._map = Map([Rule(path, methods=[method], endpoint=(key, handler))
                         for method, path, key, handler in _routes()])
        self.faults = fault_module.FaultInjector(self._dispatch, rate_limited_body=self._quota_answer,
                                                 server_error_body=self._server_error_answer)
        self._server: ServerThread | None = None

    # ------------------------------------------------------------------ serving

    @property
    def wsgi_app(self) -> Callable:
        """Return the WSGI application (fault injection included)."""
        return self.faults

    def start(self, port: int = 0) -> ServerThread:
        """Serve on 127.0.0.1 (port 0 = a free port) in a thread and return the started server."""
        self._server = ServerThread(self.wsgi_app, port=port).start()
        return self._server

    def stop(self) -> None:
        """Stop the server started by ``start``."""
        if self._server:
            self._server.stop()
            self._server = None

    @property
    def url(self) -> str:
        """Return the SP-API endpoint of the started server."""
        if self._server is None:
            raise RuntimeError("sandbox not started")
        return self._server.url

    @property
    def lwa_token_url(self) -> str:
        """Return the LWA token endpoint of the started server."""
        return self.url + "/auth/o2/token"

    def public_url(self, request: Request) -> str:
        """Return the base URL clients reach this server at (the Host header may be the real one's)."""
        if self._server is not None:
            return self._server.url
        return f"http://{request.environ.get('SERVER_NAME', '127.0.0.1')}:{request.environ.get('SERVER_PORT', '80')}"

    # ------------------------------------------------------------------ control methods

    def seller(self, index_or_id: int | str = 0) -> Any:
        """Return a seller by position or by seller id."""
        if isinstance(index_or_id, int):
            return self.sellers[index_or_id]
        return next(s for s in self.sellers if s.seller_id == index_or_id)

    def orders_of(self, seller_id: str) -> list[Order]:
        """Return the seller's orders (all, including ones not yet visible at the clock's time)."""
        return self._orders_by_seller.get(seller_id, [])

    def register_app(self, client_id: str | None = None, client_secret: str | None = None) -> tuple[str, str]:
        """Register another LWA app and return its (client_id, client_secret)."""
        return self.lwa.register_app(client_id, client_secret)

    def issue_refresh_token(self, seller_id: str, client_id: str | None = None) -> str:
        """Self-authorise the (default) app for a seller and return the refresh token."""
        return self.lwa.issue_refresh_token(client_id or self.client_id, seller_id)

    def issue_auth_code(self, seller_id: str, client_id: str | None = None) -> str:
        """Return an ``spapi_oauth_code`` the app can exchange (authorization_code grant)."""
        return self.lwa.issue_auth_code(client_id or self.client_id, seller_id)

    def withhold_role(self, seller_id: str, path_prefix: str) -> None:
        """Make the seller's authorisation lack the role of an API (e.g. ``/orders/``): its calls get 403."""
        self.withheld.setdefault(seller_id, set()).add(path_prefix)

    def operation_of(self, method: str, path: str) -> str | None:
        """Name the SP-API operation a request calls (``orders_2026-01-01.searchOrders``), ``lwa`` for the token
        endpoint, None for anything else (report documents, control routes)."""
        if path == "/auth/o2/token":
            return "lwa.token"
        try:
            (key, _handler), _args = self._map.bind("sandbox").match(path, method=method)
        except (NotFound, MethodNotAllowed):
            return None
        return key

    def set_faults(self, rate: float, kinds: Iterable[str] | None = None, seed: int | None = None) -> None:
        """Inject faults into a fraction of answers (see sandbox/faults.py)."""
        self.faults.configure(rate, kinds, seed)

    def load_static_cases(self, model: dict[str, Any]) -> int:
        """Add the static sandbox cases of one parsed model (used by static mode)."""
        return self.static_cases.load(model)

    def add_order(self, seller_id: str, marketplace_id: str, purchase_date: datetime | None = None,
                  fulfillment_channel: str | None = None) -> Order:
        """Create a new order (Pending now, shipping later on its own timeline) and return it."""
        with self._lock:
            order = make_order(self._rng, seller_id, marketplace_id, purchase_date or self.clock.now(),
                               self.products[marketplace_id], set(self.orders_by_id))
            if fulfillment_channel:
                order.fulfillment_channel = fulfillment_channel
            self.orders.append(order)
            self.orders_by_id[order.order_id] = order
            self._orders_by_seller.setdefault(seller_id, []).append(order)
        return order

    def set_status(self, order_id: str, status: str, at: datetime | None = None) -> None:
        """Move an order to ``status`` at ``at`` (default now), dropping later scheduled changes."""
        if status not in orders.V0_STATUSES:
            raise ValueError(f"unknown OrderStatus {status}")
        order = self.orders_by_id[order_id]
        when = at or self.clock.now()
        with self._lock:
            order.timeline = [e for e in order.timeline if e[0] < when] + [(when, status)]
            if status == "Canceled" or (order.delivered_at and order.delivered_at > when and status != "Shipped"):
                order.delivered_at = None

    def garble(self, order_id: str, path: str, value: Any) -> None:
        """Serve ``value`` at a dotted JSON path of the order's 2026-01-01 body (``proceeds.grandTotal.amount``).

        Amazon's bodies are not always what the model says; this lets tests serve a malformed one among good ones.
        """
        self.orders_by_id[order_id].garbled[tuple(path.split("."))] = value

    def hide_delivery_window(self, order_id: str) -> None:
        """Leave ``deliverByWindow`` out of the order's body, as Amazon does for many FBA orders.

        The solicitation window still follows the order's (hidden) delivery dates: Amazon knows them.
        """
        self.orders_by_id[order_id].shows_delivery_window = False

    def cancel_order(self, order_id: str, at: datetime | None = None) -> None:
        """Cancel an order now (or at ``at``)."""
        self.set_status(order_id, "Canceled", at)

    def add_return(self, order_id: str, reason: str = "DEFECTIVE", at: datetime | None = None,
                   refund: bool = True) -> Return:
        """Record a return (and refund) for the first line of an order."""
        order = self.orders_by_id[order_id]
        item = order.items[0]
        when = at or self.clock.now()
        record = Return(order.order_id, item.order_item_id, order.seller_id, order.marketplace_id, when, reason,
                        1, item.unit_price, when if refund else None)
        with self._lock:
            self.returns.append(record)
        return record

    def add_feedback(self, order_id: str, rating: int, comments: str, at: datetime | None = None,
                     response: str = "", answers: tuple[bool | None, bool | None, bool | None] = (None, None, None),
                     ) -> Feedback:
        """Record seller feedback (``answers``: arrived on time, item as described, customer service)."""
        if not 1 <= rating <= 5:
            raise ValueError("rating must be 1-5")
        order = self.orders_by_id[order_id]
        record = Feedback(order.seller_id, order.marketplace_id, order.order_id,
                          (at or self.clock.now()).replace(microsecond=0), rating, comments, response,
                          order.buyer_email, *answers)
        with self._lock:
            self.feedback.append(record)
        return record

    # ------------------------------------------------------------------ WSGI

    def _headers(self, key: str | None) -> dict[str, str]:
        headers = {"x-amzn-RequestId": str(uuid.uuid4())}
        if key is not None:
            headers["x-amzn-RateLimit-Limit"] = format_rate(self.buckets.limit(key))
        return headers

    def _quota_answer(self) -> tuple[dict[str, str], bytes]:
        headers = {"Content-Type": "application/json", "x-amzn-RequestId": str(uuid.uuid4())}
        return headers, json_response(429, QUOTA_BODY).get_data()

    def _server_error_answer(self, status: int) -> tuple[dict[str, str], bytes]:
        headers = {"Content-Type": "application/json", "x-amzn-RequestId": str(uuid.uuid4())}
        return headers, json_response(status, SERVER_ERRORS[status]).get_data()

    def _error(self, exc: ApiError, key: str | None) -> Response:
        return json_response(exc.status, exc.body(), self._headers(key))

    def _dispatch(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        return self._respond(request)(environ, start_response)

    def _respond(self, request: Request) -> Response:
        path = request.path
        if path == "/auth/o2/token":
            return self.lwa.token_endpoint(request)
        if path.startswith("/__documents/"):
            return reports.serve_document(self, request, path.removeprefix("/__documents/"))
        if path.startswith("/__sandbox/"):
            return control.answer(self, request, path.removeprefix("/__sandbox/"))
        adapter = self._map.bind_to_environ(request.environ)
        try:
            (key, handler), path_args = adapter.match(path, method=request.method)
        except NotFound:
            key, handler, path_args = None, None, {}
        except MethodNotAllowed:
            return json_response(405, {"errors": [{"code": "MethodNotAllowed", "message": "Method not allowed.",
                                                   "details": ""}]}, self._headers(None))
        token = request.headers.get("x-amz-access-token", "")
        record = self.lwa.lookup(token)
        grantless_ok = path.startswith("/notifications/")  # grantless operations take an app-only token
        if (not token or record is None or record.expires_at <= self.clock.now()
                or (record.seller_id is None and not grantless_ok) or not record.allows(request.method, path)):
            details = ""
            if token and record is None:
                details = "The access token you provided is revoked, malformed or invalid."
            elif record is not None and record.expires_at <= self.clock.now():
                details = "The access token you provided has expired."
            return self._error(ApiError(403, "Unauthorized", ACCESS_DENIED, details), None)
        if any(path.startswith(p) for p in self.withheld.get(record.seller_id or "", ())):
            return self._error(ApiError(403, "Unauthorized", ACCESS_DENIED, ""), key)
        static = self.static or request.host.split(":")[0] in STATIC_HOSTS
        if static:
            return self._static_answer(request, key)
        if handler is None:
            return json_response(404, {"errors": [{"code": "NotFound", "message": "Resource not found.",
                                                   "details": f"{request.method} {path} is not served here."}]},
                                 self._headers(None))
        if record.seller_id is None:
            return json_response(404, {"errors": [{"code": "NotFound", "message": "Resource not found.",
                                                   "details": ""}]}, self._headers(None))
        if not self.buckets.take(f"{record.client_id}/{record.seller_id}", key):
            return json_response(429, QUOTA_BODY, self._headers(key))
        ctx = Ctx(self, request, self.seller(record.seller_id), self.clock.now(), record.client_id)
        try:
            status, body = handler(ctx, **path_args)
        except ApiError as exc:
            return self._error(exc, key)
        content_type = "application/hal+json" if "_links" in (body or {}) else "application/json"
        return json_response(status, body, self._headers(key), content_type)

    def _static_answer(self, request: Request, key: str | None) -> Response:
        try:
            case, known = self.static_cases.answer(request)
        except ApiError as exc:
            return self._error(exc, key)
        if case is None:
            status = 400 if known else 404
            message = "No static sandbox case matches the request." if known else "Resource not found."
            return json_response(status, {"errors": [{"code": "InvalidInput" if known else "NotFound",
                                                      "message": message, "details": ""}]}, self._headers(key))
        return json_response(case.status, case.response, self._headers(key))

def serve(port: int = 9002, seed: int = 7, orders: int = 5000, host: str = "127.0.0.1", rate_scale: float = 1.0,
          client_id: str | None = None, client_secret: str | None = None) -> None:
    """Run the sandbox in the foreground (``aftercare sandbox amazon``), printing credentials to use."""
    sandbox = AmazonSandbox(seed=seed, orders=orders, rate_scale=rate_scale, client_id=client_id,
                            client_secret=client_secret)
    server = ServerThread(sandbox.wsgi_app, host=host, port=port)
    sandbox._server = server  # so document URLs name the real port
    print(f"Amazon SP-API sandbox on {server.url}  (LWA token URL {server.url}/auth/o2/token)")
    print(f"LWA client id:     {sandbox.client_id}\nLWA client secret: {sandbox.client_secret}")
    for seller in sandbox.sellers:
        names = ",".join(MARKETPLACES[m].country for m in seller.marketplace_ids)
        print(f"seller {seller.seller_id} ({seller.name}; {names}) refresh token: "
              f"{sandbox.issue_refresh_token(seller.seller_id)}")
    server.serve_forever()

