"""Shopify access tokens: token exchange, authorization-code grant, refresh, and the one accessor jobs use.

Expiring offline tokens live one hour and come with a rotating refresh token
(https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/offline-access-tokens).
Token exchange and refresh go through ``shopifyapp``; it stamps expiry with the wall clock, so the
``expires_in`` of each token response is captured here and applied to the injected clock instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from shopify_app import refresh_access_token, token_exchange
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from base.clock import Clock
from plugin.auth.lifecycle import mark_reinstall_needed
from plugin.auth.shopify_http import shop_http_client, shop_name
from plugin.config import Config
from plugin.context import JobContext
from plugin.crypto import Vault
from plugin.models import Store
from plugin.secrets_store import get_credential, set_credential

log = logging.getLogger("aftercare.auth")

REFRESH_MARGIN = timedelta(minutes=5)
TOKEN_PATH = "/admin/oauth/access_token"  # noqa: S105 - a URL path, not a secret
REVOKED_CODES = {"invalid_grant", "refresh_token_expired"}


class ShopifyGrantError(RuntimeError):
    """A problem with the app's grant for a shop (token endpoint); API-call auth errors are
    connectors.shopify.errors.ShopifyAuthError."""


class TokenRequestFailed(ShopifyGrantError):
    """The token endpoint refused or could not be reached; ``code`` says why."""

    def __init__(self, message: str, code: str, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.status = status

    @property
    def revoked(self) -> bool:
        """Say whether Shopify rejected the grant itself (merchant must reinstall)."""
        return self.code in REVOKED_CODES or self.status == 401


class ReinstallNeeded(ShopifyGrantError):
    """The store has no usable grant: its jobs and sending stop until the merchant opens the app again."""

    def __init__(self, store_id: int, reason: str):
        super().__init__(f"store {store_id} needs reinstall: {reason}")
        self.store_id = store_id
        self.reason = reason


@dataclass(frozen=True)
class TokenGrant:
    """What the token endpoint granted, with expiries on the injected clock."""

    access_token: str
    scope: str
    expires_at: datetime | None
    refresh_token: str | None
    refresh_token_expires_at: datetime | None


def client_credentials(config: Config) -> tuple[str, str]:
    """Return (client id, client secret) of the Shopify app."""
    return (config.secrets.shopify_api_key or config.get("shopify.client_id") or "",
            config.secrets.shopify_api_secret)


class _TokenBodies:
    """Keep the JSON of the last successful token response (its ``expires_in`` values)."""

    def __init__(self) -> None:
        self.last: dict[str, Any] = {}

    def __call__(self, response: httpx.Response) -> None:
        if response.request.url.path.endswith(TOKEN_PATH) and response.status_code == 200:
            response.read()
            try:
                body = response.json()
            except ValueError:
                return
            self.last = body if isinstance(body, dict) else {}


def _grant_from_body(body: dict[str, Any], now: datetime) -> TokenGrant:
    def after(seconds: Any) -> datetime | None:
        return now + timedelta(seconds=int(seconds)) if seconds is not None else None

    access = body.get("access_token")
    if not access:
        raise TokenRequestFailed("token response without access_token", code="malformed_response")
    return TokenGrant(access_token=str(access), scope=str(body.get("scope") or ""),
                      expires_at=after(body.get("expires_in")), refresh_token=body.get("refresh_token"),
                      refresh_token_expires_at=after(body.get("refresh_token_expires_in")))


def _call(config: Config, clock: Clock, what: str, fn: Callable[[httpx.Client], Any]) -> TokenGrant:
    bodies = _TokenBodies()
    with shop_http_client(config, on_response=bodies) as client:
        result = fn(client)
    if not result.ok:
        raise TokenRequestFailed(f"{what} failed: {result.log.code}", code=result.log.code,
                                 status=result.response.status if result.response else None)
    return _grant_from_body(bodies.last, clock.now())


def exchange_session_token(config: Config, clock: Clock, shop: str, session_token: str,
                           expiring: bool = True) -> TokenGrant:
    """Exchange a verified App Bridge session token for an (expiring) offline access token.

    https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/token-exchange
    """
    client_id, secret = client_credentials(config)
    id_token = {"exchangeable": True, "token": session_token, "claims": {"dest": f"https://{shop}"}}
    return _call(config, clock, "token exchange", lambda client: token_exchange(
        "offline", {"client_id": client_id, "client_secret": secret}, id_token=id_token, expiring=expiring,
        http_client=client))


def refresh_grant(config: Config, clock: Clock, shop: str, refresh_token: str) -> TokenGrant:
    """Trade a refresh token for a new access token and a new (rotated) refresh token."""
    client_id, secret = client_credentials(config)
    # Empty expiries: the decision to refresh is ours (injected clock), not shopifyapp's wall clock.
    current = {"shop": shop_name(shop), "refresh_token": refresh_token, "expires": "",
               "refresh_token_expires": "", "access_mode": "offline"}
    return _call(config, clock, "token refresh", lambda client: refresh_access_token(
        current, {"client_id": client_id, "client_secret": secret}, http_client=client))


def exchange_authorization_code(config: Config, clock: Clock, shop: str, code: str,
                                expiring: bool = True) -> TokenGrant:
    """Exchange an OAuth authorization code for an offline access token (non-embedded installs).

    https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/authorization-code-grant
    """
    client_id, secret = client_credentials(config)
    body = {"client_id": client_id, "client_secret": secret, "code": code, "expiring": 1 if expiring else 0}
    with shop_http_client(config) as client:
        try:
            response = client.post(f"https://{shop}{TOKEN_PATH}", json=body, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise TokenRequestFailed(f"authorization code exchange failed: {type(exc).__name__}",
                                     code="network_error") from exc
    try:
        data = response.json()
    except ValueError:
        data = {}
    if response.status_code != 200:
        raise TokenRequestFailed(f"authorization code exchange failed: HTTP {response.status_code}",
                                 code=str(data.get("error") or "http_error"), status=response.status_code)
    return _grant_from_body(data if isinstance(data, dict) else {}, clock.now())


def token_values(vault: Vault, grant: TokenGrant) -> dict[str, Any]:
    """Return the store columns that hold a grant (tokens encrypted)."""
    holder = Store()
    set_credential(holder, vault, "access_token_enc", grant.access_token)
    set_credential(holder, vault, "refresh_token_enc", grant.refresh_token)
    return {"access_token_enc": holder.access_token_enc, "access_token_expires_at": grant.expires_at,
            "refresh_token_enc": holder.refresh_token_enc,
            "refresh_token_expires_at": grant.refresh_token_expires_at, "scopes": grant.scope}


def apply_grant(store: Store, vault: Vault, grant: TokenGrant) -> None:
    """Store a grant on the store row: tokens encrypted, expiries, granted scopes."""
    for column, value in token_values(vault, grant).items():
        setattr(store, column, value)


def has_valid_token(store: Store, now: datetime) -> bool:
    """Say whether the store holds an access token that works now (or can be refreshed)."""
    if store.status != "active" or store.access_token_enc is None:
        return False
    if store.access_token_expires_at is None or store.access_token_expires_at > now:
        return True
    return store.refresh_token_enc is not None and (
        store.refresh_token_expires_at is None or store.refresh_token_expires_at > now)


def _expiring_soon(store: Store, now: datetime) -> bool:
    return store.access_token_expires_at is not None and store.access_token_expires_at - now < REFRESH_MARGIN


def _keep_even_if_rolled_back(session: Session, database: Any, store_id: int, values: dict[str, Any]) -> None:
    """Write ``values`` again in a fresh transaction if the caller's transaction is rolled back.

    A rotated refresh token or a revocation must survive a job that fails after asking for a token.
    """
    state = {"committed": False}

    def committed(_session: Session) -> None:
        state["committed"] = True

    def rolled_back(_session: Session) -> None:
        if state["committed"]:
            return
        state["committed"] = True
        with database.session() as fresh:
            fresh.execute(update(Store).where(Store.id == store_id).values(**values))

    event.listen(session, "after_commit", committed, once=True)
    event.listen(session, "after_rollback", rolled_back, once=True)


def get_access_token(session: Session, store: Store, ctx: JobContext) -> str:
    """Return a working access token for the store, refreshing it first when under 5 minutes remain.

    Every Shopify call goes through here. A revoked grant marks the store ``reinstall_needed`` (which
    stops its jobs and sending) and raises ReinstallNeeded; a transient refresh failure while the
    current token still works returns the current token.
    """
    if store.platform != "shopify":
        raise ValueError(f"store {store.id} is not a Shopify store")
    if store.status != "active":
        raise ReinstallNeeded(store.id, f"store is {store.status}")
    now = ctx.clock.now()
    if store.access_token_enc is not None and not _expiring_soon(store, now):
        return str(get_credential(store, ctx.vault, "access_token_enc"))

    # Lock the row so concurrent workers do not both spend the same refresh token.
    store = session.execute(select(Store).where(Store.id == store.id).with_for_update()
                            .execution_options(populate_existing=True)).scalar_one()
    current = get_credential(store, ctx.vault, "access_token_enc")
    if current is not None and not _expiring_soon(store, now):
        return current
    still_valid = current is not None and store.access_token_expires_at is not None \
        and store.access_token_expires_at > now
    refresh = get_credential(store, ctx.vault, "refresh_token_enc")
    expired_refresh = store.refresh_token_expires_at is not None and store.refresh_token_expires_at <= now
    if refresh is None or expired_refresh:
        if still_valid:
            return str(current)  # nothing to refresh with; use the token for its last minutes
        _revoke(session, store, ctx, "refresh token expired" if expired_refresh else "no refresh token")
    try:
        grant = refresh_grant(ctx.config, ctx.clock, store.external_id, str(refresh))
    except TokenRequestFailed as exc:
        if exc.revoked:
            _revoke(session, store, ctx, exc.code)
        log.warning("access token refresh failed", extra={"store_id": store.id, "code": exc.code})
        if still_valid:
            return str(current)
        raise
    values = token_values(ctx.vault, grant)
    for column, value in values.items():
        setattr(store, column, value)
    session.flush()
    _keep_even_if_rolled_back(session, ctx.database, store.id, values)
    log.info("access token refreshed", extra={"store_id": store.id, "expires_at": grant.expires_at})
    return grant.access_token


def _revoke(session: Session, store: Store, ctx: JobContext, reason: str) -> None:
    mark_reinstall_needed(session, store, reason)
    _keep_even_if_rolled_back(session, ctx.database, store.id, {
        "status": "reinstall_needed", "access_token_enc": None, "access_token_expires_at": None,
        "refresh_token_enc": None, "refresh_token_expires_at": None})
    raise ReinstallNeeded(store.id, reason)
