"""The shop itself: its name, currency, time zone, country and the postal address its emails carry.

The postal address defaults from ``Shop.billingAddress`` (the address in Settings > General of the Shopify
admin), read as Shopify formats it for the country (``formatted``:
https://shopify.dev/docs/api/admin-graphql/2025-01/objects/ShopAddress#field-formatted), one line per part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.shopify import queries
from connectors.shopify.client import ShopifyClient

# Separates the parts of the one-line address written into emails.
ADDRESS_SEPARATOR = ", "


@dataclass(frozen=True, slots=True)
class ShopRecord:
    """The shop's details as the Admin API states them."""

    name: str
    domain: str
    currency: str
    timezone: str
    country: str | None
    postal_address: str | None
    # The shop's refund policy (Settings > Policies), shown on the tracking page; None when the shop has none.
    refund_policy: RefundPolicy | None = None


@dataclass(frozen=True, slots=True)
class RefundPolicy:
    """The shop's refund policy: its title, HTML body (written by the merchant in the Shopify admin) and URL."""

    title: str
    body: str
    url: str | None


def postal_address(billing: dict[str, Any] | None) -> str | None:
    """Return the billing address as one line (``formatted`` parts joined), or None when it is blank."""
    lines = [str(line).strip() for line in (billing or {}).get("formatted") or () if line and str(line).strip()]
    # A country alone is no postal address: nothing would reach the sender by mail.
    if len(lines) < 2:
        return None
    return ADDRESS_SEPARATOR.join(lines)


def shop_record(data: dict[str, Any]) -> ShopRecord:
    """Map the ``shop`` object of the SHOP query."""
    billing = data.get("billingAddress") or {}
    refund = next((p for p in data.get("shopPolicies") or () if p.get("type") == "REFUND_POLICY"), None)
    return ShopRecord(name=str(data.get("name") or ""), domain=str(data.get("myshopifyDomain") or ""),
                      currency=str(data.get("currencyCode") or "USD"), timezone=str(data.get("ianaTimezone") or "UTC"),
                      country=billing.get("countryCodeV2"), postal_address=postal_address(billing),
                      refund_policy=RefundPolicy(title=str(refund.get("title") or ""),
                                                 body=str(refund.get("body") or ""),
                                                 url=refund.get("url") or None) if refund else None)


def fetch_shop(client: ShopifyClient) -> ShopRecord:
    """Ask the Admin API for the shop's details (one query, cost 2)."""
    return shop_record(client.execute(queries.SHOP, estimated_cost=2).get("shop") or {})
