"""Installing a shop: turn a token grant into `merchant` + `store` rows with the shop's details.

Embedded installs use token exchange (https://shopify.dev/docs/apps/build/authentication-authorization/
access-tokens/token-exchange): the admin page loads with an App Bridge session token, and the first
time (or whenever the store has no working token) it is exchanged for an expiring offline token.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx
from shopify_app import admin_graphql_request
from sqlalchemy import select
from sqlalchemy.orm import Session

from base.clock import Clock
from connectors.shopify import queries
from connectors.shopify.shop import postal_address
from plugin.auth.session_tokens import SessionClaims, verify_session_token
from plugin.auth.shopify_http import shop_http_client, shop_name
from plugin.auth.tokens import (
    TokenGrant,
    TokenRequestFailed,
    apply_grant,
    client_credentials,
    exchange_session_token,
    has_valid_token,
)
from plugin.config import Config
from plugin.crypto import Vault
from plugin.messaging.branding import adopt_shop_address
from plugin.models import ComplianceRequest, Merchant, Store
from plugin.webhooks.compliance import carry_earlier_redactions
from plugin.webhooks.inbox import find_shopify_store

log = logging.getLogger("aftercare.auth")

SHOP_QUERY = ("\nquery AftercareShopDetails {\n"
              f"  shop {{ name currencyCode ianaTimezone {queries.SHOP_ADDRESS_FIELDS} }}\n"
              "  shopLocales(published: true) { locale primary }\n}\n")


@dataclass(frozen=True)
class ShopDetails:
    """What we keep about a shop."""

    name: str
    currency: str
    timezone: str
    country: str | None
    primary_locale: str | None = None
    postal_address: str | None = None


class ShopQueryFailed(RuntimeError):
    """The shop details query did not succeed."""


def fetch_shop_details(config: Config, shop: str, access_token: str) -> ShopDetails:
    """Ask the Admin GraphQL API for the shop's name, currency, IANA time zone, country, primary locale and
    billing address (the default postal address of its emails)."""
    with shop_http_client(config) as client:
        try:
            result = admin_graphql_request(SHOP_QUERY, shop_name(shop), access_token,
                                           config.get("shopify.api_version"), max_retries=0, http_client=client)
        except httpx.HTTPError as exc:
            raise ShopQueryFailed(f"shop query failed: {type(exc).__name__}") from exc
    if not result.ok or not result.data:
        raise ShopQueryFailed(f"shop query failed: {result.log.code}")
    data: dict[str, Any] = result.data.get("shop") or {}
    address = data.get("billingAddress") or {}
    primary = next((loc.get("locale") for loc in result.data.get("shopLocales") or () if loc.get("primary")), None)
    return ShopDetails(name=str(data.get("name") or shop), currency=str(data.get("currencyCode") or "USD"),
                       timezone=str(data.get("ianaTimezone") or "UTC"), country=address.get("countryCodeV2"),
                       primary_locale=primary, postal_address=postal_address(address))


def was_redacted(session: Session, shop: str) -> bool:
    """Say whether a shop/redact erased an earlier install of the shop (its record outlives the store)."""
    return session.scalar(select(ComplianceRequest.id).where(
        ComplianceRequest.kind == "shop/redact", ComplianceRequest.shop_domain == shop).limit(1)) is not None


def install_from_grant(session: Session, config: Config, clock: Clock, vault: Vault, shop: str,
                       grant: TokenGrant) -> Store:
    """Create or refresh the shop's merchant and store rows from a fresh grant; return the store."""
    now = clock.now()
    store = find_shopify_store(session, shop)
    # Not the shop's first install: it uninstalled (or revoked our grant), or shop/redact erased its rows.
    returning = store.status != "active" if store is not None else was_redacted(session, shop)
    if store is None:
        merchant = Merchant(name=shop_name(shop), settings={})
        session.add(merchant)
        session.flush()
        store = Store(merchant_id=merchant.id, platform="shopify", external_id=shop, marketplace_ids=[])
        session.add(store)
        session.flush()
        carry_earlier_redactions(session, store)
    reinstalled = store.status != "active" or store.installed_at is None
    apply_grant(store, vault, grant)
    store.status = "active"
    if reinstalled:
        store.installed_at = now
        store.uninstalled_at = None
    if returning:
        # The message log may be gone (shop/redact): orders from before now are never messaged again.
        store.reinstalled_at = now
    details = fetch_shop_details(config, shop, grant.access_token)
    store.name = details.name
    store.currency = details.currency
    store.timezone = details.timezone
    store.country = details.country
    if details.primary_locale:
        store.primary_locale = details.primary_locale
    adopt_shop_address(store, details.postal_address)
    session.flush()
    merchant = session.get(Merchant, store.merchant_id)
    if merchant is not None and merchant.name == shop_name(shop):
        merchant.name = details.name
    log.info("store installed" if reinstalled else "store tokens renewed",
             extra={"store_id": store.id, "shop": shop, "scopes": grant.scope, "returning": returning})
    session.flush()
    return store


def verify_admin_session_token(config: Config, clock: Clock, token: str) -> SessionClaims:
    """Verify an App Bridge session token for this app (raises InvalidSessionToken)."""
    client_id, secret = client_credentials(config)
    return verify_session_token(token, client_id, secret, clock.now())


def ensure_installed(session: Session, config: Config, clock: Clock, vault: Vault, session_token: str) -> Store:
    """Return the store of a verified session token, exchanging it for an offline token when needed.

    Raises InvalidSessionToken for a bad token and TokenRequestFailed when Shopify refuses the exchange.
    """
    claims = verify_admin_session_token(config, clock, session_token)
    store = find_shopify_store(session, claims.shop)
    if store is not None and has_valid_token(store, clock.now()):
        return store
    grant = exchange_session_token(config, clock, claims.shop, claims.token,
                                   expiring=bool(config.get("shopify.expiring_offline_tokens")))
    return install_from_grant(session, config, clock, vault, claims.shop, grant)


__all__ = ["ShopDetails", "ShopQueryFailed", "TokenRequestFailed", "ensure_installed", "fetch_shop_details",
           "install_from_grant", "verify_admin_session_token"]
