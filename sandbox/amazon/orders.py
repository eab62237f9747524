"""What both Orders APIs share: status enums, the order search, its validation and keyset paging.

Shapes, names and enums of each version live in orders_v0.py and orders_2026.py (ordersV0.json and
orders_2026-01-01.json of amzn/selling-partner-api-models). Query rules from the models' parameter
descriptions: exactly one of createdAfter / lastUpdatedAfter; the *Before bound at least two minutes
before the request; pages of 1-100; results ordered by (time, order id) and stable across pages (keyset
cursor in the token).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .context import Ctx
from .http import invalid_input, iso, parse_time
from .seed import Order

V0_STATUSES = ("PendingAvailability", "Pending", "Unshipped", "PartiallyShipped", "Shipped", "Canceled",
               "Unfulfillable", "InvoiceUnconfirmed")
STATUS_2026 = {"PendingAvailability": "PENDING_AVAILABILITY", "Pending": "PENDING", "Unshipped": "UNSHIPPED",
               "PartiallyShipped": "PARTIALLY_SHIPPED", "Shipped": "SHIPPED", "Canceled": "CANCELLED",
               "Unfulfillable": "UNFULFILLABLE", "InvoiceUnconfirmed": "SHIPPED"}
INCLUDED_DATA = ("BUYER", "RECIPIENT", "PROCEEDS", "EXPENSE", "PROMOTION", "CANCELLATION", "FULFILLMENT",
                 "PACKAGES", "TAX", "PAYMENT", "FULFILLMENT_ORDERS")
MIN_LAG = timedelta(minutes=2)


@dataclass
class OrderQuery:
    """A normalised order search: which time field, the bounds and the filters."""

    field: str  # "created" or "updated"
    after: datetime
    before: datetime
    marketplaces: list[str]
    statuses: list[str]  # v0 OrderStatus values
    channels: list[str]  # AFN / MFN
    order_ids: list[str]

    def state(self) -> dict[str, Any]:
        """Return a JSON-able form to carry in the pagination token."""
        return {"f": self.field, "a": iso(self.after), "b": iso(self.before), "m": self.marketplaces,
                "s": self.statuses, "c": self.channels, "o": self.order_ids}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> OrderQuery:
        """Rebuild a query from a token's state."""
        return cls(state["f"], parse_time(state["a"], "token"), parse_time(state["b"], "token"),
                   state["m"], state["s"], state["c"], state["o"])


def sort_key(order: Order, field: str, now: datetime) -> tuple[str, str]:
    """Return the (time, order id) key results are ordered and paged by."""
    when = order.purchase_date if field == "created" else order.last_update_at(now)
    return iso(when), order.order_id


def run_query(ctx: Ctx, query: OrderQuery, cursor: list[str] | None, limit: int) -> tuple[list[Order], bool]:
    """Return one page of the caller's orders after ``cursor`` and whether more follow."""
    now = ctx.now
    matches = []
    for order in ctx.sandbox.orders_of(ctx.seller.seller_id):
        if order.purchase_date > now or order.marketplace_id not in query.marketplaces:
            continue
        when = order.purchase_date if query.field == "created" else order.last_update_at(now)
        if not (query.after <= when <= query.before):
            continue
        if query.statuses and order.status_at(now) not in query.statuses:
            continue
        if query.channels and order.fulfillment_channel not in query.channels:
            continue
        if query.order_ids and order.order_id not in query.order_ids:
            continue
        key = sort_key(order, query.field, now)
        if cursor is not None and key <= tuple(cursor):
            continue
        matches.append((key, order))
    matches.sort(key=lambda pair: pair[0])
    return [order for _, order in matches[:limit]], len(matches) > limit


def page_size(raw: str | None) -> int:
    """Validate a page size parameter (1-100, default 100)."""
    if raw is None:
        return 100
    try:
        size = int(raw)
    except ValueError:
        raise invalid_input(f"Invalid maxResultsPerPage: {raw!r}") from None
    if not 1 <= size <= 100:
        raise invalid_input("maxResultsPerPage must be between 1 and 100.")
    return size


def build_query(ctx: Ctx, created_after: str | None, created_before: str | None, updated_after: str | None,
                 updated_before: str | None, marketplaces: list[str], statuses: list[str],
                 channels: list[str], order_ids: list[str], names: tuple[str, str, str, str]) -> OrderQuery:
    """Validate the time window like Amazon does and return the query."""
    ca, cb, ua, ub = names
    if order_ids and not (created_after or updated_after):
        created_after = "1970-01-01T00:00:00Z"
    if bool(created_after) == bool(updated_after):
        raise invalid_input(f"Exactly one of {ca} and {ua} must be specified.", "Invalid Input")
    if created_after and (updated_before or updated_after):
        raise invalid_input(f"{ua} and {ub} cannot be set when {ca} is specified.", "Invalid Input")
    if updated_after and created_before:
        raise invalid_input(f"{ca} and {cb} cannot be set when {ua} is specified.", "Invalid Input")
    latest = ctx.now - MIN_LAG
    field = "created" if created_after else "updated"
    after_name, before_name = (ca, cb) if created_after else (ua, ub)
    after = parse_time(created_after or updated_after or "", after_name)
    raw_before = created_before if created_after else updated_before
    before = parse_time(raw_before, before_name) if raw_before else latest
    if before > latest:
        raise invalid_input(f"{before_name} must be at least two minutes before the time of the request.",
                            "Invalid Input")
    if after > latest:
        raise invalid_input(f"{after_name} must be at least two minutes before the time of the request.",
                            "Invalid Input")
    if before < after:
        raise invalid_input(f"{before_name} must be equal to or after {after_name}.", "Invalid Input")
    for mp in marketplaces:
        if mp not in ctx.seller.marketplace_ids:
            raise invalid_input(f"Invalid marketplace id: {mp}", "Invalid Input")
    return OrderQuery(field, after, before, marketplaces, statuses, channels, order_ids)
