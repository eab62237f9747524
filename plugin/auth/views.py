"""Install routes: `/auth/install` + `/auth/callback` (authorization code) and `/auth/token-exchange` (embedded)."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from flask import Blueprint, Response, jsonify, redirect, request, session

from plugin import get_clock, get_config, get_vault
from plugin.auth.install import ShopQueryFailed, ensure_installed, install_from_grant
from plugin.auth.oauth import (
    CallbackRejected,
    authorize_url,
    check_callback,
    clean_shop_domain,
    new_state,
    query_params,
)
from plugin.auth.session_tokens import InvalidSessionToken
from plugin.auth.tokens import TokenRequestFailed, client_credentials, exchange_authorization_code
from plugin.db import get_session

bp = Blueprint("auth", __name__, url_prefix="/auth")
log = logging.getLogger("aftercare.auth")

STATE_KEY = "shopify_oauth"


def _redirect_uri() -> str:
    config = get_config()
    return config.get("shopify.application_url").rstrip("/") + config.get("shopify.redirect_path")


@bp.get("/install")
def install() -> Response | tuple[Response, int]:
    """Start the authorization-code grant: redirect the merchant to Shopify's grant screen."""
    shop = clean_shop_domain(request.args.get("shop"))
    if shop is None:
        return jsonify(error="shop must be a *.myshopify.com domain"), 400
    state = new_state()
    session[STATE_KEY] = {"state": state, "shop": shop}
    return redirect(authorize_url(get_config(), shop, state, _redirect_uri()), code=302)


@bp.get("/callback")
def callback() -> Response | tuple[Response, int]:
    """Finish the authorization-code grant: check the callback, exchange the code, record the install."""
    config = get_config()
    expected = session.pop(STATE_KEY, None) or {}
    try:
        shop = check_callback(config, query_params(request.args.to_dict(flat=False)), expected.get("state"),
                              expected.get("shop"), get_clock().now())
    except CallbackRejected as exc:
        log.warning("oauth callback rejected", extra={"reason": str(exc), "shop": request.args.get("shop")})
        return jsonify(error=f"install rejected: {exc}"), 400
    try:
        grant = exchange_authorization_code(config, get_clock(), shop, request.args["code"],
                                            expiring=bool(config.get("shopify.expiring_offline_tokens")))
        store = install_from_grant(get_session(), config, get_clock(), get_vault(), shop, grant)
    except (TokenRequestFailed, ShopQueryFailed) as exc:
        log.warning("install failed", extra={"shop": shop, "reason": str(exc)})
        return jsonify(error="Shopify did not grant access; start the install again"), 502
    if config.get("shopify.embedded"):
        client_id, _ = client_credentials(config)
        return redirect(f"https://{shop}/admin/apps/{client_id}", code=302)
    return redirect(config.get("shopify.application_url").rstrip("/") + "/?" + urlencode(
        {"shop": shop, "store": store.id}), code=302)


@bp.post("/token-exchange")
def token_exchange_view() -> tuple[Response, int]:
    """Install or renew an embedded store from the App Bridge session token in ``Authorization: Bearer``."""
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else request.args.get("id_token", "")
    try:
        store = ensure_installed(get_session(), get_config(), get_clock(), get_vault(), token)
    except InvalidSessionToken as exc:
        return jsonify(error=str(exc)), 401
    except TokenRequestFailed as exc:
        log.warning("token exchange failed", extra={"code": exc.code})
        status = 401 if exc.code == "invalid_subject_token" else 502
        return jsonify(error=f"token exchange failed: {exc.code}"), status
    except ShopQueryFailed as exc:
        log.warning("shop query failed after token exchange", extra={"reason": str(exc)})
        return jsonify(error="could not read the shop's details"), 502
    return jsonify(shop=store.external_id, store_id=store.id, status=store.status), 200
