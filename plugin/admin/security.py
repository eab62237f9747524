"""Who is asking: App Bridge session tokens (embedded) or a signed admin cookie (standalone), CSRF, headers.

Embedded requests carry a session token (``id_token`` on Shopify's first document load, ``Authorization:
Bearer`` on every fetch, navigation included: admin.js fetches pages and swaps them in so the token never
travels in a URL after the first load;
https://shopify.dev/docs/apps/build/authentication-authorization/session-tokens). Standalone requests carry
a signed, HttpOnly, SameSite=Lax cookie holding the admin user's id and a per-session CSRF token checked on
every POST. Either way the request ends up with an ``AdminContext``: the merchant and the ids of its stores,
which every query is scoped by.
"""

from __future__ import annotations

import hmac
import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from threading import Lock
from typing import Any

from flask import Flask, Request, current_app, g, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin import cookies_secure, get_clock, get_config, get_vault
from plugin.auth.install import ShopQueryFailed, ensure_installed, verify_admin_session_token
from plugin.auth.session_tokens import InvalidSessionToken, SessionClaims
from plugin.auth.shop_domain import normalise_shop_domain
from plugin.auth.tokens import TokenRequestFailed, has_valid_token
from plugin.models import AdminUser, Store
from plugin.webhooks.inbox import find_shopify_store

COOKIE_NAME = "aftercare_admin"
COOKIE_MAX_AGE = 12 * 3600
RETRY_HEADER = "X-Shopify-Retry-Invalid-Session-Request"


class NotAuthenticated(Exception):
    """No valid session token or admin cookie; ``reason`` says why in words."""

    def __init__(self, reason: str, shop: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.shop = shop


class InstallFailed(Exception):
    """The token was valid but the embedded install (token exchange) did not succeed."""


@dataclass
class AdminContext:
    """The authenticated merchant, its stores, and the store the merchant is looking at (None: all)."""

    merchant_id: int
    stores: list[Store]
    mode: str  # "embedded" | "standalone"
    shop: str | None = None
    token: str | None = None
    token_expires_at: datetime | None = None
    user_email: str | None = None
    csrf_token: str | None = None
    selected_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def store_ids(self) -> list[int]:
        """Return every store id of the merchant."""
        return [s.id for s in self.stores]

    @property
    def scope_ids(self) -> list[int]:
        """Return the store ids the current page shows (the selected store, or all of them)."""
        return [self.selected_id] if self.selected_id is not None else self.store_ids

    @property
    def selected(self) -> Store | None:
        """Return the selected store, or None when all stores are shown."""
        return next((s for s in self.stores if s.id == self.selected_id), None)

    def single_store(self) -> Store | None:
        """Return the store a per-store page edits: the selected one, else the first (Shopify first)."""
        if self.selected is not None:
            return self.selected
        ordered = sorted(self.stores, key=lambda s: (s.platform != "shopify", s.id))
        return ordered[0] if ordered else None


# -- session tokens ----------------------------------------------------------------------------------------

def bearer_token(req: Request) -> str | None:
    """Return the session token of a request: Authorization Bearer, else ``id_token`` (query or form)."""
    header = req.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    token = req.args.get("id_token")
    if not token and req.method == "POST":
        # Progressive enhancement: without JS the form carries the token as a hidden field.
        token = req.form.get("id_token")
    return token or None


def is_fetch(req: Request) -> bool:
    """Say whether the request comes from our JS (fetch) rather than a document load."""
    return (req.headers.get("Authorization", "").lower().startswith("bearer ")
            or req.headers.get("X-Requested-With") == "fetch"
            or "application/json" in (req.headers.get("Accept") or ""))


def authenticate_embedded(session: Session, token: str) -> AdminContext:
    """Verify a session token and return the merchant's context, installing an unknown shop first."""
    config, clock = get_config(), get_clock()
    try:
        claims: SessionClaims = verify_admin_session_token(config, clock, token)
    except InvalidSessionToken as exc:
        raise NotAuthenticated(str(exc)) from exc
    store = find_shopify_store(session, claims.shop)
    if store is None or not has_valid_token(store, clock.now()):
        try:
            store = ensure_installed(session, config, clock, get_vault(), token)
        except InvalidSessionToken as exc:
            raise NotAuthenticated(str(exc), claims.shop) from exc
        except (TokenRequestFailed, ShopQueryFailed) as exc:
            raise InstallFailed(str(exc)) from exc
    stores = list(session.scalars(select(Store).where(Store.merchant_id == store.merchant_id).order_by(Store.id)))
    return AdminContext(merchant_id=store.merchant_id, stores=stores, mode="embedded", shop=claims.shop,
                        token=token, token_expires_at=claims.expires_at, selected_id=None)


# -- standalone cookie -------------------------------------------------------------------------------------

def _serializer(app: Flask | None = None) -> URLSafeTimedSerializer:
    app = app or current_app
    return URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="aftercare-admin-session")


def make_cookie_value(user: AdminUser, csrf: str) -> str:
    """Sign the standalone session: user id, a password fingerprint (logout on change) and the CSRF token."""
    return _serializer().dumps({"uid": user.id, "pw": user.password_hash[-12:], "csrf": csrf})


def set_session_cookie(response: Any, value: str) -> None:
    """Set the admin cookie: Secure (except in development), HttpOnly, SameSite=Lax, path /admin."""
    response.set_cookie(COOKIE_NAME, value, max_age=COOKIE_MAX_AGE, secure=cookies_secure(), httponly=True,
                        samesite="Lax", path="/admin")


def clear_session_cookie(response: Any) -> None:
    """Remove the admin cookie."""
    response.delete_cookie(COOKIE_NAME, path="/admin", secure=cookies_secure(), httponly=True, samesite="Lax")


def authenticate_standalone(session: Session, cookie: str) -> AdminContext:
    """Return the context of a signed-in admin user from the cookie."""
    try:
        data = _serializer().loads(cookie, max_age=COOKIE_MAX_AGE)
    except BadSignature as exc:
        raise NotAuthenticated("your sign-in expired") from exc
    user = session.get(AdminUser, int(data.get("uid", 0)))
    if user is None or user.password_hash[-12:] != data.get("pw"):
        raise NotAuthenticated("your sign-in is no longer valid")
    stores = list(session.scalars(select(Store).where(Store.merchant_id == user.merchant_id).order_by(Store.id)))
    return AdminContext(merchant_id=user.merchant_id, stores=stores, mode="standalone", user_email=user.email,
                        csrf_token=str(data.get("csrf")))


def check_csrf(ctx: AdminContext, req: Request) -> bool:
    """Say whether a standalone POST carries this session's CSRF token (form field or header)."""
    sent = req.form.get("csrf_token") or req.headers.get("X-CSRF-Token") or ""
    return bool(ctx.csrf_token) and hmac.compare_digest(sent, ctx.csrf_token or "")


def new_csrf_token() -> str:
    """Return a fresh random CSRF token."""
    return secrets.token_urlsafe(32)


# -- headers -----------------------------------------------------------------------------------------------

def frame_ancestors(shop: str | None, embedded: bool) -> str:
    """Return the CSP frame-ancestors value: the shop and the Shopify admin when embedded, else none."""
    if not embedded:
        return "frame-ancestors 'none'"
    sources = ["https://admin.shopify.com"]
    if shop:
        sources.insert(0, f"https://{shop}")
    # The demo and tests frame the app from the Shopify sandbox's "admin" page, on its own origin.
    stand_in = get_config().get("shopify.admin_base_url").strip().rstrip("/")
    if stand_in:
        sources.append(stand_in)
    return "frame-ancestors " + " ".join(sources)


def security_headers(response: Any) -> Any:
    """Add CSP frame-ancestors, Referrer-Policy and no-store caching to an admin response."""
    ctx: AdminContext | None = g.get("admin")
    config = get_config()
    embedded = bool(config.get("shopify.embedded"))
    if ctx is not None:
        embedded, shop = ctx.mode == "embedded", ctx.shop
    else:
        shop = normalise_shop_domain(request.args.get("shop") or "") if embedded else None
        # The sign-in page is never framed; other unauthenticated pages answer Shopify's frame.
        embedded = embedded and COOKIE_NAME not in request.cookies and request.endpoint != "admin.login"
    response.headers["Content-Security-Policy"] = "; ".join(
        [frame_ancestors(shop, embedded), "object-src 'none'", "base-uri 'self'", "form-action 'self'"])
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers.setdefault("Cache-Control", "no-store")
    return response


# -- login throttling --------------------------------------------------------------------------------------

class LoginThrottle:
    """Failed sign-ins per client address in a sliding window (per process; the account lock is in the DB)."""

    def __init__(self, limit: int = 20, window_seconds: float = 900.0):
        self.limit = limit
        self.window = window_seconds
        self._failures: dict[str, deque[float]] = {}
        self._lock = Lock()

    def _recent(self, address: str, now: float) -> deque[float]:
        entries = self._failures.setdefault(address, deque())
        while entries and entries[0] <= now - self.window:
            entries.popleft()
        return entries

    def blocked(self, address: str, now: float) -> bool:
        """Say whether this address has used up its failed attempts."""
        with self._lock:
            return len(self._recent(address, now)) >= self.limit

    def failed(self, address: str, now: float) -> None:
        """Record a failed attempt from this address."""
        with self._lock:
            self._recent(address, now).append(now)
            if len(self._failures) > 10000:
                # Bound memory under a spray of addresses: forget the quietest ones.
                for key in [k for k, v in self._failures.items() if not v][:5000]:
                    del self._failures[key]

    def succeeded(self, address: str) -> None:
        """Forget an address's failures after a successful sign-in."""
        with self._lock:
            self._failures.pop(address, None)


def login_throttle(app: Flask | None = None) -> LoginThrottle:
    """Return the app's login throttle."""
    return (app or current_app).extensions["aftercare.admin_login_throttle"]
