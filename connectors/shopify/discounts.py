"""Single-use discount codes through ``discountCodeBasicCreate`` (replenishment reminders, come-back offers) and
``discountCodeFreeShippingCreate`` (the VIP welcome's free-shipping perk).

https://shopify.dev/docs/api/admin-graphql/2025-01/mutations/discountCodeBasicCreate and
https://shopify.dev/docs/api/admin-graphql/2025-01/mutations/discountCodeFreeShippingCreate — the code is limited
to one use in total (``usageLimit: 1``), once per customer, and only for the one customer it was made for.
Codes are unique per shop: a retried request whose first attempt went through answers ``TAKEN``, so callers
derive the code from their idempotency key and treat ``TAKEN`` for their own code as already created.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from connectors.shopify import queries
from connectors.shopify.client import ShopifyClient
from connectors.shopify.errors import ShopifyBadResponse, raise_user_errors
from connectors.shopify.parse import to_gid


@dataclass(frozen=True)
class DiscountCode:
    """A created discount code: Shopify's node id and the code the customer types."""

    id: str
    code: str
    title: str
    starts_at: str | None
    ends_at: str | None
    usage_limit: int | None


def _stamp(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("discount dates must be aware datetimes")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def create_discount_code(client: ShopifyClient, code: str, *, customer_external_id: str, starts_at: datetime,
                         percent: float | None = None, amount: Decimal | None = None,
                         ends_at: datetime | None = None, title: str | None = None,
                         minimum_subtotal: Decimal | None = None) -> DiscountCode:
    """Create a single-use code for one customer: ``percent`` off (e.g. 10 for 10 %) or a fixed ``amount`` off.

    ``minimum_subtotal`` makes it a spend-X-save-Y code: it applies only from that subtotal up
    (``minimumRequirement.subtotal``, in the shop's currency).

    Raises ShopifyUserError (``codes`` holds e.g. ``TAKEN``) when Shopify refuses the input.
    """
    if (percent is None) == (amount is None):
        raise ValueError("give exactly one of percent or amount")
    if percent is not None and not 0 < percent <= 100:
        raise ValueError("percent must be in (0, 100]")
    if amount is not None and amount <= 0:
        raise ValueError("amount must be positive")
    value: dict[str, Any] = ({"percentage": round(percent / 100, 4)} if percent is not None
                             else {"discountAmount": {"amount": str(amount), "appliesOnEachItem": False}})
    data = {
        "title": title or code,
        "code": code,
        "startsAt": _stamp(starts_at),
        "endsAt": _stamp(ends_at) if ends_at else None,
        "usageLimit": 1,
        "appliesOncePerCustomer": True,
        "customerSelection": {"customers": {"add": [to_gid("Customer", customer_external_id)]}},
        "customerGets": {"value": value, "items": {"all": True}},
    }
    if minimum_subtotal is not None:
        if minimum_subtotal < 0:
            raise ValueError("minimum_subtotal must not be negative")
        data["minimumRequirement"] = {"subtotal": {"greaterThanOrEqualToSubtotal": str(minimum_subtotal)}}
    return _created(client.execute(queries.DISCOUNT_CODE_CREATE, {"input": data}), "discountCodeBasicCreate", data)


def create_free_shipping_code(client: ShopifyClient, code: str, *, customer_external_id: str, starts_at: datetime,
                              ends_at: datetime | None = None, title: str | None = None,
                              minimum_subtotal: Decimal | None = None, countries: list[str] | None = None,
                              maximum_shipping_price: Decimal | None = None) -> DiscountCode:
    """Create a single-use free-shipping code for one customer (all countries unless ``countries`` names some).

    ``maximum_shipping_price`` makes only rates up to it free (in the shop's currency); ``minimum_subtotal`` as
    for ``create_discount_code``. Raises ShopifyUserError (``codes`` holds e.g. ``TAKEN``) when Shopify refuses.
    """
    if maximum_shipping_price is not None and maximum_shipping_price < 0:
        raise ValueError("maximum_shipping_price must not be negative")
    if countries is not None and not countries:
        raise ValueError("countries, when given, must name at least one country")
    data: dict[str, Any] = {
        "title": title or code,
        "code": code,
        "startsAt": _stamp(starts_at),
        "endsAt": _stamp(ends_at) if ends_at else None,
        "usageLimit": 1,
        "appliesOncePerCustomer": True,
        "customerSelection": {"customers": {"add": [to_gid("Customer", customer_external_id)]}},
        "destination": {"all": True} if countries is None else {"countries": {"add": [c.upper() for c in countries]}},
    }
    if maximum_shipping_price is not None:
        data["maximumShippingPrice"] = str(maximum_shipping_price)
    if minimum_subtotal is not None:
        if minimum_subtotal < 0:
            raise ValueError("minimum_subtotal must not be negative")
        data["minimumRequirement"] = {"subtotal": {"greaterThanOrEqualToSubtotal": str(minimum_subtotal)}}
    return _created(client.execute(queries.FREE_SHIPPING_CODE_CREATE, {"input": data}),
                    "discountCodeFreeShippingCreate", data)


def _created(answer: dict[str, Any], mutation: str, data: dict[str, Any]) -> DiscountCode:
    """Return the discount a create mutation answered (its userErrors raised as ShopifyUserError)."""
    payload = raise_user_errors(answer.get(mutation), mutation)
    node = payload.get("codeDiscountNode") or {}
    discount = node.get("codeDiscount") or {}
    if not node.get("id"):
        raise ShopifyBadResponse(f"{mutation} returned no discount")
    code = data["code"]
    codes = ((discount.get("codes") or {}).get("nodes") or [{}])
    return DiscountCode(id=node["id"], code=codes[0].get("code") or code, title=discount.get("title") or data["title"],
                        starts_at=discount.get("startsAt"), ends_at=discount.get("endsAt"),
                        usage_limit=discount.get("usageLimit"))
