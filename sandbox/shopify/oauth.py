"""``/admin/oauth/authorize`` and ``/admin/oauth/access_token``: code grant, token exchange, refresh.

https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/token-exchange
https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/authorization-code-grant
https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/offline-access-tokens
Errors are OAuth-style JSON (``{"error": ..., "error_description": ...}``) with HTTP 400, which is what
``shopifyapp`` keys on (``invalid_subject_token``, ``invalid_client``, ``invalid_grant``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any
from urllib.parse import urlencode

import jwt

from sandbox.shopify.session_token import verify_session_token
from sandbox.shopify.world import ShopWorld

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 - a URN, not a secret
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105 - a URN, not a secret
OFFLINE = "urn:shopify:params:oauth:token-type:offline-access-token"
ONLINE = "urn:shopify:params:oauth:token-type:online-access-token"


def _oauth_error(error: str, description: str, status: int = 400) -> tuple[int, dict[str, Any]]:
    return status, {"error": error, "error_description": description}


def _truthy(value: Any) -> bool:
    return str(value).lower() in ("1", "true")


def access_token(sandbox: ShopWorld, shop: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Handle one POST to the token endpoint; return (HTTP status, JSON body)."""
    client_id = str(params.get("client_id") or "")
    app = sandbox.apps.get(client_id)
    if app is None or not hmac.compare_digest(str(params.get("client_secret") or ""), app.client_secret):
        return _oauth_error("invalid_client", "Client authentication failed due to unknown client, "
                            "no client authentication included, or unsupported authentication method.")
    grant = params.get("grant_type")
    if grant == TOKEN_EXCHANGE:
        return _token_exchange(sandbox, shop, params)
    if grant == "refresh_token":
        return _refresh(sandbox, shop, params)
    if grant in (None, "", "authorization_code"):
        code = str(params.get("code") or "")
        issued = sandbox.tokens.take_code(code) if code else None
        if issued is None or issued != (client_id, shop):
            return _oauth_error("invalid_request", "The authorization code was not found or was already used")
        return 200, sandbox.issue_token_response(client_id, shop, expiring=_truthy(params.get("expiring")))
    return _oauth_error("unsupported_grant_type", f"Grant type {grant!r} is not supported")


def _token_exchange(sandbox: ShopWorld, shop: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    app = sandbox.apps[str(params["client_id"])]
    if params.get("subject_token_type") != ID_TOKEN:
        return _oauth_error("invalid_request", "subject_token_type must be " + ID_TOKEN)
    requested = params.get("requested_token_type") or OFFLINE
    if requested not in (OFFLINE, ONLINE):
        return _oauth_error("invalid_request", f"Unsupported requested_token_type {requested!r}")
    try:
        claims = verify_session_token(str(params.get("subject_token") or ""), app.client_id, app.client_secret,
                                      sandbox.clock.now())
    except jwt.InvalidTokenError as exc:
        return _oauth_error("invalid_subject_token", f"The session token is invalid: {exc}")
    if claims["dest"].removeprefix("https://") != shop:
        return _oauth_error("invalid_subject_token", "The session token was issued for another shop")
    mode = "online" if requested == ONLINE else "offline"
    expiring = _truthy(params.get("expiring")) if mode == "offline" else True
    return 200, sandbox.issue_token_response(app.client_id, shop, mode=mode, expiring=expiring,
                                             user_id=int(claims["sub"]) if str(claims["sub"]).isdigit() else 1)


def _refresh(sandbox: ShopWorld, shop: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    client_id = str(params["client_id"])
    refresh = sandbox.tokens.use_refresh(str(params.get("refresh_token") or ""), client_id, shop,
                                         sandbox.clock.now(), strict=sandbox.strict_refresh_rotation)
    if refresh is None:
        return _oauth_error("invalid_grant", "Token has been expired or revoked.")
    return 200, sandbox.issue_token_response(client_id, shop, expiring=True, predecessor=refresh)


def authorize_redirect(sandbox: ShopWorld, shop: str, args: dict[str, str]) -> tuple[int, str | dict]:
    """Approve an install as the merchant would and return the redirect URL Shopify would send."""
    app = sandbox.apps.get(args.get("client_id", ""))
    redirect_uri = args.get("redirect_uri")
    if app is None or not redirect_uri:
        return 400, {"errors": "Oauth error invalid_request: The redirect_uri and client_id are required"}
    code = sandbox.tokens.new_code(app.client_id, shop)
    handle = shop.removesuffix(".myshopify.com")
    params = {"code": code, "host": base64.b64encode(f"admin.shopify.com/store/{handle}".encode()).decode(),
              "shop": shop, "state": args.get("state", secrets.token_hex(8)),
              "timestamp": str(int(sandbox.clock.now().timestamp()))}
    params["hmac"] = query_hmac(params, app.client_secret)
    return 302, f"{redirect_uri}?{urlencode(params)}"


def query_hmac(params: dict[str, str], secret: str) -> str:
    """Return Shopify's hex HMAC of sorted query parameters (without ``hmac``/``signature``)."""
    message = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in ("hmac", "signature"))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
