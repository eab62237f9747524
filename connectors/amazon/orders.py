"""Orders API 2026-01-01 ``searchOrders`` → OrderRecords, incremental on ``lastUpdatedAfter``.

Why 2026-01-01 and not v0: one call returns the items (v0 needs a getOrderItems call per order, 0.5 rps)
and ``deliverByWindow`` for every order (v0 returns EarliestDeliveryDate/LatestDeliveryDate only for
seller-fulfilled orders, and the solicitation window needs them for FBA orders too).
https://developer-docs.amazon.com/sp-api/docs/orders-api-v2026-01-01-reference
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from connectors.records import OrderLineRecord, OrderRecord

from .client import OrdersApi, SpApiSession

OPERATION = "orders.searchOrders"
INCLUDED_DATA = ["FULFILLMENT", "PROCEEDS", "PACKAGES", "CANCELLATION"]
PAGE_SIZE = 100
# searchOrders refuses a lastUpdatedBefore later than two minutes before the request (model text).
MIN_LAG = timedelta(minutes=2)
CHANNELS = {"AMAZON": "AFN", "MERCHANT": "MFN"}
# Money columns hold 14 digits, 3 after the point.
MAX_AMOUNT = Decimal("1e11")


def parse_time(value: str | None) -> datetime | None:
    """Parse an SP-API ISO 8601 timestamp into an aware UTC datetime."""
    if not value:
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def iso(when: datetime) -> str:
    """Format a datetime the way SP-API query parameters expect (UTC, ``Z``)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class MalformedOrder(ValueError):
    """An order whose body cannot be read as the model describes it (a bad amount, time or missing id)."""


@dataclass(frozen=True)
class RejectedOrder:
    """An order of a page that could not be read: its id (as far as it is known) and why."""

    external_id: str
    reason: str


def _money(node: dict[str, Any] | None, name: str) -> tuple[Decimal | None, str | None]:
    """Read a ``Money`` node; its ``amount`` is a decimal string with a dot ("12.99"), nothing else."""
    if not node:
        return None, None
    raw = node.get("amount", "0")
    try:
        amount = Decimal(str(raw))
    except InvalidOperation:
        raise MalformedOrder(f"{name}.amount {raw!r} is not a decimal amount") from None
    if not amount.is_finite() or isinstance(raw, bool):
        raise MalformedOrder(f"{name}.amount {raw!r} is not a decimal amount")
    if abs(amount) >= MAX_AMOUNT:
        raise MalformedOrder(f"{name}.amount {raw!r} is out of range")
    currency = node.get("currencyCode")
    if currency is not None and not (isinstance(currency, str) and len(currency) == 3 and currency.isalpha()):
        raise MalformedOrder(f"{name}.currencyCode {currency!r} is not an ISO 4217 code")
    return amount, currency


def _time(value: Any, name: str) -> datetime | None:
    try:
        return parse_time(value)
    except (ValueError, AttributeError, TypeError):
        raise MalformedOrder(f"{name} {value!r} is not an ISO 8601 time") from None


def _quantity(value: Any, name: str) -> int:
    try:
        quantity = int(value or 0)
    except (ValueError, TypeError):
        raise MalformedOrder(f"{name} {value!r} is not a whole number") from None
    if quantity < 0:
        raise MalformedOrder(f"{name} {value!r} is negative")
    return quantity


def _fulfillment_status(status: str | None, packages: list[Any]) -> str | None:
    """Return the order's fulfillment status lower-cased, or ``delivered`` once every package reports DELIVERED.

    Amazon's FulfillmentStatus stops at SHIPPED; only the packages of seller-fulfilled orders say they arrived
    (``packageStatus.status``, https://developer-docs.amazon.com/sp-api/docs/orders-api-v2026-01-01-reference).
    """
    if status == "SHIPPED" and packages and all(
            isinstance(p, dict) and (p.get("packageStatus") or {}).get("status") == "DELIVERED" for p in packages):
        return "delivered"
    return status.lower() if status else None


def to_record(order: dict[str, Any]) -> OrderRecord:
    """Map one 2026-01-01 ``Order`` to an OrderRecord; raise MalformedOrder naming the field it cannot read.

    No customer: Amazon buyers have no contact data.
    """
    if not isinstance(order.get("orderId"), str) or not order["orderId"] or len(order["orderId"]) > 64:
        raise MalformedOrder(f"orderId {order.get('orderId')!r} is not an Amazon order id")
    created = _time(order.get("createdTime"), "createdTime")
    if created is None:
        raise MalformedOrder("the order has no createdTime")
    fulfillment = order.get("fulfillment") or {}
    status = fulfillment.get("fulfillmentStatus")
    updated = _time(order.get("lastUpdatedTime"), "lastUpdatedTime")
    lines = []
    currency = None
    line_total = Decimal("0")
    for item in order.get("orderItems") or []:
        product = item.get("product") or {}
        unit, item_currency = _money((product.get("price") or {}).get("unitPrice"),
                                     "orderItems.product.price.unitPrice")
        currency = currency or item_currency
        quantity = _quantity(item.get("quantityOrdered"), "orderItems.quantityOrdered")
        if not item.get("orderItemId"):
            raise MalformedOrder("an order item has no orderItemId")
        if unit is not None and unit < 0:
            raise MalformedOrder(f"orderItems.product.price.unitPrice.amount {str(unit)!r} is negative")
        line_total += (unit or Decimal("0")) * quantity
        sku = product.get("sellerSku")
        asin = product.get("asin")
        lines.append(OrderLineRecord(external_id=str(item["orderItemId"]), quantity=quantity,
                                     price=unit or Decimal("0"), title=product.get("title") or "", sku=sku,
                                     product_external_id=asin, variant_external_id=sku or asin))
    total, total_currency = _money((order.get("proceeds") or {}).get("grandTotal"), "proceeds.grandTotal")
    if total is not None and total < 0:
        raise MalformedOrder(f"proceeds.grandTotal.amount {str(total)!r} is negative")
    window = fulfillment.get("deliverByWindow") or {}
    ship_by = fulfillment.get("shipByWindow") or {}
    packages = order.get("packages") or []
    ship_times = [t for t in (_time(p.get("shipTime"), "packages.shipTime") for p in packages) if t]
    sales_channel = order.get("salesChannel") or {}
    return OrderRecord(
        external_id=order["orderId"],
        name=order["orderId"],
        created_at=created,
        processed_at=created,
        updated_at=updated,
        currency=total_currency or currency or "USD",
        total_price=total if total is not None else line_total,
        fulfillment_status=_fulfillment_status(status, packages),
        # The model carries no cancellation time; the last update is when the order became CANCELLED.
        cancelled_at=updated if status == "CANCELLED" else None,
        fulfilled_at=min(ship_times) if ship_times else None,
        earliest_delivery_at=_time(window.get("earliestDateTime"), "deliverByWindow.earliestDateTime"),
        latest_delivery_at=_time(window.get("latestDateTime"), "deliverByWindow.latestDateTime"),
        latest_ship_at=_time(ship_by.get("latestDateTime"), "shipByWindow.latestDateTime"),
        fulfillment_channel=CHANNELS.get(fulfillment.get("fulfilledBy") or ""),
        marketplace_id=sales_channel.get("marketplaceId"),
        lines=tuple(lines),
    )


@dataclass
class OrderPage:
    """One page of orders, the orders of it that could not be read, and the upper bound Amazon applied."""

    record_kind: ClassVar[str] = "orders"  # names its sink in plugin.sync
    records: list[OrderRecord]
    upper_bound: datetime | None
    rejected: list[RejectedOrder] = field(default_factory=list)


def read_page(orders: list[Any]) -> tuple[list[OrderRecord], list[RejectedOrder]]:
    """Map a page's orders to records; an order that cannot be read is set aside with its reason, not raised.

    One unreadable order must not stop the sync: the page's other orders are written and the cursor moves on.
    """
    records, rejected = [], []
    for index, order in enumerate(orders):
        order_id = order.get("orderId") if isinstance(order, dict) else None
        label = order_id if isinstance(order_id, str) and order_id else f"(order #{index + 1} of its page)"
        if not isinstance(order, dict):
            rejected.append(RejectedOrder(label, "the order is not a JSON object"))
            continue
        try:
            records.append(to_record(order))
        except MalformedOrder as exc:
            rejected.append(RejectedOrder(label, str(exc)))
        except (KeyError, TypeError, AttributeError) as exc:
            # A shape the model does not allow (a list where an object belongs, a missing key).
            rejected.append(RejectedOrder(label, f"unexpected shape: {type(exc).__name__}: {exc}"))
    return records, rejected


def search_updated_since(session: SpApiSession, marketplace_ids: list[str], since: datetime,
                         page_size: int = PAGE_SIZE) -> Iterator[OrderPage]:
    """Yield every page of orders updated at or after ``since`` (``lastUpdatedBefore`` left to Amazon).

    Amazon fills in ``lastUpdatedBefore`` (two minutes before the request) and echoes it in the first
    page; that echo is the next cursor, so the clocks of Amazon and this host never need to agree.
    """
    api = session.api(OrdersApi)
    params: dict[str, Any] = {"lastUpdatedAfter": iso(since), "marketplaceIds": list(marketplace_ids),
                              "includedData": list(INCLUDED_DATA), "maxResultsPerPage": page_size}
    upper: datetime | None = None
    while True:
        response = session.call(OPERATION, api.search_orders, **params)
        payload = response.payload or {}
        upper = upper or parse_time(payload.get("lastUpdatedBefore"))
        records, rejected = read_page(list(payload.get("orders") or []))
        yield OrderPage(records, upper, rejected)
        token = response.next_token
        if not token:
            return
        # The model: with paginationToken, send the other parameters unchanged.
        params = {**params, "paginationToken": token}
