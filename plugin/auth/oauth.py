"""The authorization-code grant for installs that start outside the Shopify admin.

https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/authorization-code-grant
The callback is trusted only when its query HMAC, state nonce, shop domain and timestamp all check out.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from datetime import datetime

import shopify
from shopify.utils.shop_url import sanitize_shop_domain

from plugin.auth.shop_domain import normalise_shop_domain
from plugin.auth.tokens import client_credentials
from plugin.config import Config

MAX_CALLBACK_AGE_SECONDS = 90


class CallbackRejected(ValueError):
    """The OAuth callback failed a check; the message says which."""


def clean_shop_domain(value: str | None) -> str | None:
    """Return a valid ``*.myshopify.com`` domain from user input (``acme`` or a URL), else None."""
    sanitized = sanitize_shop_domain(value) if value else None
    return normalise_shop_domain(sanitized)


def _app_session_class(config: Config) -> type[shopify.Session]:
    """Return ShopifyAPI's Session bound to this app's credentials without touching its global state."""
    client_id, secret = client_credentials(config)
    return type("AftercareShopifySession", (shopify.Session,), {"api_key": client_id, "secret": secret})


def new_state() -> str:
    """Return a fresh state nonce for one install attempt."""
    return secrets.token_urlsafe(24)


def authorize_url(config: Config, shop: str, state: str, redirect_uri: str) -> str:
    """Return Shopify's grant screen URL for an offline-token install of ``shop``."""
    session = _app_session_class(config)(shop, config.get("shopify.api_version"))
    # Offline access: no grant_options[]=per-user (that would ask for an online, per-user token).
    return session.create_permission_url(list(config.get("shopify.scopes")), redirect_uri, state=state)


def query_params(args: Mapping[str, list[str]]) -> dict[str, object]:
    """Flatten a multi-dict of query arguments the way ShopifyAPI's HMAC check expects."""
    params: dict[str, object] = {}
    for key, values in args.items():
        params[key] = list(values) if key.endswith("[]") else (values[-1] if values else "")
    return params


def check_callback(config: Config, params: Mapping[str, object], expected_state: str | None,
                   expected_shop: str | None, now: datetime) -> str:
    """Validate an OAuth callback and return its shop domain; raise CallbackRejected otherwise."""
    if not isinstance(params.get("hmac"), str) or not params.get("hmac"):
        raise CallbackRejected("missing hmac")
    if not _app_session_class(config).validate_hmac(dict(params)):
        raise CallbackRejected("hmac mismatch")
    shop = clean_shop_domain(str(params.get("shop") or ""))
    if shop is None or shop != str(params.get("shop")).lower():
        raise CallbackRejected("invalid shop domain")
    state = str(params.get("state") or "")
    if not expected_state or not hmac.compare_digest(state.encode(), expected_state.encode()):
        raise CallbackRejected("state mismatch")
    if expected_shop and expected_shop != shop:
        raise CallbackRejected("shop differs from the one that started the install")
    try:
        stamp = int(str(params.get("timestamp")))
    except ValueError as exc:
        raise CallbackRejected("invalid timestamp") from exc
    if abs(now.timestamp() - stamp) > MAX_CALLBACK_AGE_SECONDS:
        raise CallbackRejected("timestamp outside 90 seconds")
    if not params.get("code"):
        raise CallbackRejected("missing code")
    return shop
