"""WSGI app of the Judge.me sandbox: the review and reply endpoints of Judge.me's REST API v1.

Reference: https://judge.me/api/docs (OpenAPI at https://judge.me/api/docs.yaml).
Authentication is per shop: ``shop_domain`` as a query parameter plus the shop's private token, either as the
``api_token`` query parameter (the classic form) or the ``X-Api-Token`` header (the form the current docs use
for ``POST /replies``). A wrong or missing pair answers 401 with Judge.me's ``{"error": ...}`` body.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from base.clock import Clock
from sandbox.judgeme.store import JudgemeStore, ReviewNotFound, Shop

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 10
# Judge.me serves at most this many pages: asking for page 101 returns page 100 again (current_page=100),
# as integrators have observed; clients must notice instead of looping.
DEFAULT_MAX_PAGE = 100


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload, ensure_ascii=False), status=status, mimetype="application/json")


def _error(message: str, status: int) -> Response:
    return _json({"error": message}, status)


class JudgemeApp:
    """The Judge.me API over a ``JudgemeStore``; control routes live under ``/__sandbox``."""

    def __init__(self, store: JudgemeStore, clock: Clock, max_page: int = DEFAULT_MAX_PAGE,
                 configure_faults: Callable[[dict[str, Any]], None] | None = None,
                 add_review: Callable[[dict[str, Any]], dict[str, Any]] | None = None):
        self.store = store
        self.clock = clock
        self.max_page = max_page
        self._configure_faults = configure_faults
        self._add_review = add_review
        self.url_map = Map([
            Rule("/api/v1/reviews", endpoint="reviews_index", methods=["GET"]),
            Rule("/api/v1/reviews/count", endpoint="reviews_count", methods=["GET"]),
            Rule("/api/v1/reviews/<int:review_id>", endpoint="reviews_show", methods=["GET"]),
            Rule("/api/v1/replies", endpoint="replies_create", methods=["POST"]),
            Rule("/api/v1/products/<int(signed=True):product_id>", endpoint="products_show", methods=["GET"]),
            Rule("/__sandbox/faults", endpoint="control_faults", methods=["POST"]),
            Rule("/__sandbox/reviews", endpoint="control_add_review", methods=["POST"]),
            Rule("/__sandbox/replies", endpoint="control_replies", methods=["GET"]),
        ])

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        """Dispatch one WSGI request."""
        request = Request(environ)
        try:
            endpoint, args = self.url_map.bind_to_environ(environ).match()
            response = getattr(self, endpoint)(request, **args)
        except NotFound:
            response = _error("Not found", 404)
        except HTTPException as exc:
            response = _error(exc.description or exc.name, exc.code or 400)
        return response(environ, start_response)

    # -- auth and parameters ----------------------------------------------------------------------------
    def _shop(self, request: Request, body: dict[str, Any] | None = None) -> Shop | None:
        body = body or {}
        domain = request.args.get("shop_domain") or body.get("shop_domain")
        token = (request.headers.get("X-Api-Token") or request.args.get("api_token")
                 or body.get("api_token"))
        shop = self.store.shops.get(domain or "")
        if shop is None or not token or token != shop.api_token:
            return None
        return shop

    @staticmethod
    def _int_arg(request: Request, name: str, default: int | None = None) -> int | None:
        raw = request.args.get(name)
        if raw in (None, ""):
            return default
        try:
            return int(raw)
        except ValueError:
            raise _BadParam(f"{name} must be an integer") from None

    # -- Judge.me API -----------------------------------------------------------------------------------
    def reviews_index(self, request: Request) -> Response:
        """``GET /api/v1/reviews``: newest first, ``page``/``per_page`` (max 100), filters."""
        shop = self._shop(request)
        if shop is None:
            return _error("Unauthorized: invalid shop_domain or api_token", 401)
        try:
            page = max(1, self._int_arg(request, "page", 1) or 1)
            per_page = min(MAX_PER_PAGE, max(1, self._int_arg(request, "per_page", DEFAULT_PER_PAGE) or 1))
            reviews = self._filtered(request, shop)
        except _BadParam as exc:
            return _error(str(exc), 422)
        page = min(page, self.max_page)
        chunk = reviews[(page - 1) * per_page: page * per_page]
        return _json({"current_page": page, "per_page": per_page, "reviews": [r.to_json() for r in chunk]})

    def reviews_count(self, request: Request) -> Response:
        """``GET /api/v1/reviews/count``: ``{"count": n}`` with the same filters as the index."""
        shop = self._shop(request)
        if shop is None:
            return _error("Unauthorized: invalid shop_domain or api_token", 401)
        try:
            return _json({"count": len(self._filtered(request, shop))})
        except _BadParam as exc:
            return _error(str(exc), 422)

    def _filtered(self, request: Request, shop: Shop) -> list:
        published_raw = request.args.get("published")
        published = None if published_raw in (None, "") else published_raw.lower() == "true"
        rating = self._int_arg(request, "rating")
        if rating is not None and not 1 <= rating <= 5:
            raise _BadParam("rating must be between 1 and 5")
        return self.store.listed(shop.domain, product_id=self._int_arg(request, "product_id"), rating=rating,
                                 reviewer_id=self._int_arg(request, "reviewer_id"), published=published)

    def reviews_show(self, request: Request, review_id: int) -> Response:
        """``GET /api/v1/reviews/{id}``: ``{"review": {...}}``."""
        shop = self._shop(request)
        if shop is None:
            return _error("Unauthorized: invalid shop_domain or api_token", 401)
        try:
            return _json({"review": self.store.review(shop.domain, review_id).to_json()})
        except ReviewNotFound:
            return _error("Review not found", 404)

    def products_show(self, request: Request, product_id: int) -> Response:
        """``GET /api/v1/products/{id}``; id ``-1`` looks the product up by ``external_id`` or ``handle``."""
        shop = self._shop(request)
        if shop is None:
            return _error("Unauthorized: invalid shop_domain or api_token", 401)
        products = list(shop.products.values())
        if product_id == -1:
            external_id, handle = request.args.get("external_id"), request.args.get("handle")
            match = [p for p in products if (external_id and str(p.external_id) == external_id)
                     or (handle and p.handle == handle)]
        else:
            match = [p for p in products if p.id == product_id]
        if not match:
            return _error("Product not found", 404)
        product = match[0]
        return _json({"product": {"id": product.id, "external_id": product.external_id,
                                  "handle": product.handle, "title": product.title}})

    def replies_create(self, request: Request) -> Response:
        """``POST /api/v1/replies``: ``{"review_id", "send_reply_email", "reply": {"content"}}``."""
        body: dict[str, Any]
        if request.mimetype == "application/json":
            try:
                body = json.loads(request.get_data(as_text=True) or "{}")
            except ValueError:
                return _error("Malformed JSON body", 400)
            if not isinstance(body, dict):
                return _error("Malformed JSON body", 400)
        else:
            form = request.form
            body = {"review_id": form.get("review_id"), "send_reply_email": form.get("send_reply_email"),
                    "reply": {"content": form.get("reply[content]")}, "shop_domain": form.get("shop_domain"),
                    "api_token": form.get("api_token")}
        shop = self._shop(request, body)
        if shop is None:
            return _error("Unauthorized: invalid shop_domain or api_token", 401)
        reply = body.get("reply") if isinstance(body.get("reply"), dict) else {}
        content = reply.get("content")
        try:
            review_id = int(body.get("review_id"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return _error("review_id is required", 422)
        if not isinstance(content, str) or not content.strip():
            return _error("Reply content can't be blank", 422)
        send_email = body.get("send_reply_email")
        send_email = send_email if isinstance(send_email, bool) else str(send_email).lower() == "true"
        try:
            received = self.store.record_reply(shop.domain, review_id, content, send_email, self.clock.now())
        except ReviewNotFound:
            return _error("Review not found", 422)
        return _json({"reply": {"id": received.id, "review_id": review_id, "content": content,
                                "created_at": received.received_at.replace(microsecond=0).isoformat()}})

    # -- control routes (not part of Judge.me) --------------------------------------------------------
    def control_faults(self, request: Request) -> Response:
        """Switch fault injection: ``{"rate": 0.1, "kinds": [...], "seed": 1}``."""
        if self._configure_faults is None:
            return _error("fault injection is not enabled", 404)
        try:
            self._configure_faults(request.get_json(force=True))
        except (ValueError, TypeError) as exc:
            return _error(str(exc), 400)
        return _json({"ok": True})

    def control_add_review(self, request: Request) -> Response:
        """Add a review (same keywords as ``JudgemeSandbox.add_review``) and return its API JSON."""
        if self._add_review is None:
            return _error("adding reviews is not enabled", 404)
        try:
            return _json({"review": self._add_review(request.get_json(force=True))}, 201)
        except (KeyError, ValueError, TypeError) as exc:
            return _error(f"bad review: {exc}", 400)

    def control_replies(self, request: Request) -> Response:
        """List every reply received, oldest first."""
        with self.store.lock:
            replies = list(self.store.replies)
        return _json({"replies": [{"id": r.id, "shop_domain": r.shop_domain, "review_id": r.review_id,
                                   "content": r.content, "send_reply_email": r.send_reply_email,
                                   "received_at": r.received_at.isoformat()} for r in replies]})


class _BadParam(ValueError):
    """A query parameter that cannot be parsed."""
