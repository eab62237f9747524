"""``discountCodeBasicCreate`` and ``discountCodeFreeShippingCreate``: single-use codes, unique per shop.

https://shopify.dev/docs/api/admin-graphql/2025-01/mutations/discountCodeBasicCreate
https://shopify.dev/docs/api/admin-graphql/2025-01/mutations/discountCodeFreeShippingCreate
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sandbox.shopify.models import gid, money


@dataclass
class DiscountCode:
    """A code discount with one redeem code: basic (percentage or fixed amount) or free shipping."""

    id: int
    code_id: int
    title: str
    code: str
    starts_at: datetime
    ends_at: datetime | None
    usage_limit: int | None
    applies_once_per_customer: bool
    percentage: float | None
    amount_cents: int | None
    customer_ids: tuple[str, ...]
    created_at: datetime
    # minimumRequirement.subtotal.greaterThanOrEqualToSubtotal in cents; None: no minimum.
    minimum_subtotal_cents: int | None = None
    # A DiscountCodeFreeShipping: shipping is free to ``countries`` (None: all countries), rates up to the cap.
    free_shipping: bool = False
    countries: tuple[str, ...] | None = None
    include_rest_of_world: bool = False
    maximum_shipping_cents: int | None = None

    @property
    def gid(self) -> str:
        """Return the DiscountCodeNode id."""
        return gid("DiscountCodeNode", self.id)

    def status(self, now: datetime) -> str:
        """Return ACTIVE, SCHEDULED or EXPIRED at ``now``."""
        if self.starts_at > now:
            return "SCHEDULED"
        if self.ends_at is not None and self.ends_at <= now:
            return "EXPIRED"
        return "ACTIVE"

    def summary(self) -> str:
        """Return a merchant-facing summary like Shopify's."""
        limit = " • One use per customer" if self.applies_once_per_customer else ""
        minimum = f" • Minimum purchase of {money(self.minimum_subtotal_cents)}" \
            if self.minimum_subtotal_cents is not None else ""
        if self.free_shipping:
            where = "For all countries" if self.countries is None else \
                f"For {len(self.countries)} countr{'y' if len(self.countries) == 1 else 'ies'}"
            cap = f" • Applies to shipping rates under {money(self.maximum_shipping_cents)}" \
                if self.maximum_shipping_cents is not None else ""
            return f"Free shipping on all products • {where}{minimum}{cap}{limit}"
        value = f"{self.percentage * 100:g}% off" if self.percentage is not None else \
            f"{money(self.amount_cents or 0)} off"
        return f"{value} entire order{minimum}{limit}"


def _head_errors(data: dict[str, Any], existing_codes: set[str], err: Any) -> None:
    """Add the errors every code discount input can have first (code, title, start, customers)."""
    code = (data.get("code") or "").strip()
    if not code:
        err(["code"], "Code can't be blank", "BLANK")
    elif len(code) > 255:
        err(["code"], "Code is too long (maximum is 255 characters)", "TOO_LONG")
    elif code.lower() in existing_codes:
        err(["code"], "Code must be unique. Please try a different code.", "TAKEN")
    if not data.get("title"):
        err(["title"], "Title can't be blank", "BLANK")
    if data.get("startsAt") is None:
        err(["startsAt"], "Starts at can't be blank", "BLANK")
    if data.get("customerSelection") is None:
        err(["customerSelection"], "Customer selection can't be blank", "BLANK")


def _tail_errors(data: dict[str, Any], err: Any) -> None:
    """Add the errors every code discount input can have last (minimum requirement, usage limit)."""
    minimum = data.get("minimumRequirement") or {}
    if minimum.get("quantity") and minimum.get("subtotal"):
        err(["minimumRequirement"], "Only one of quantity or subtotal is allowed", "INVALID")
    subtotal = (minimum.get("subtotal") or {}).get("greaterThanOrEqualToSubtotal")
    if subtotal is not None and Decimal(str(subtotal)) < 0:
        err(["minimumRequirement", "subtotal", "greaterThanOrEqualToSubtotal"],
            "Minimum subtotal must be greater than or equal to 0", "GREATER_THAN_OR_EQUAL_TO")
    if data.get("usageLimit") is not None and data["usageLimit"] < 1:
        err(["usageLimit"], "Usage limit must be greater than 0", "GREATER_THAN")


def _collector(root: str, errors: list[dict[str, Any]]) -> Any:
    def err(path: list[str], message: str, code: str) -> None:
        errors.append({"field": [root, *path], "message": message, "code": code, "extraInfo": None})
    return err


def validate_input(data: dict[str, Any], existing_codes: set[str]) -> list[dict[str, Any]]:
    """Return Shopify-style userErrors for a DiscountCodeBasicInput (empty when valid)."""
    errors: list[dict[str, Any]] = []
    err = _collector("basicCodeDiscount", errors)
    _head_errors(data, existing_codes, err)
    gets = data.get("customerGets")
    value = (gets or {}).get("value") or {}
    if gets is None:
        err(["customerGets"], "Customer gets can't be blank", "BLANK")
    elif ("percentage" in value) == ("discountAmount" in value):
        err(["customerGets", "value"], "Only one of percentage or discountAmount is allowed", "INVALID")
    elif "percentage" in value and not 0 < float(value["percentage"]) <= 1:
        err(["customerGets", "value", "percentage"], "Value must be between 0.0 and 1.0",
            "VALUE_OUTSIDE_RANGE")
    _tail_errors(data, err)
    return errors


def validate_free_shipping_input(data: dict[str, Any], existing_codes: set[str]) -> list[dict[str, Any]]:
    """Return Shopify-style userErrors for a DiscountCodeFreeShippingInput (empty when valid)."""
    errors: list[dict[str, Any]] = []
    err = _collector("freeShippingCodeDiscount", errors)
    _head_errors(data, existing_codes, err)
    destination = data.get("destination")
    if destination is None:
        err(["destination"], "Destination can't be blank", "BLANK")
    elif bool(destination.get("all")) == (destination.get("countries") is not None):
        err(["destination"], "Only one of all or countries is allowed", "INVALID")
    elif destination.get("countries") is not None:
        countries = destination["countries"]
        if not countries.get("add") and not countries.get("includeRestOfWorld"):
            err(["destination", "countries", "add"], "Countries can't be blank", "BLANK")
    cap = data.get("maximumShippingPrice")
    if cap is not None and Decimal(str(cap)) < 0:
        err(["maximumShippingPrice"], "Maximum shipping price must be greater than or equal to 0",
            "GREATER_THAN_OR_EQUAL_TO")
    _tail_errors(data, err)
    return errors
