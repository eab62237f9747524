"""Orders API 2026-01-01 ``searchOrders`` → OrderRecords, incremental on ``lastUpdatedAfter``.

Why 2026-01-01 and not v0: one call returns the items (v0 needs a getOrderItems call per order, 0.5 rps)
and ``deliverByWindow`` for every order (v0 returns EarliestDeliveryDate/LatestDeliveryDate only for
seller-fulfilled orders, and the solicitation window needs them for FBA orders too).
https://developer-docs.amazon.com/sp-api/docs/orders-api-v2026-01-01-reference
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

from connectors.records import OrderLineRecord, OrderRecord

from .client import OrdersApi, SpApiSession

OPERATION = "orders.searchOrders"
INCLUDED_DATA = ["FULFILLMENT", "PROCEEDS", "PACKAGES", "CANCELLATION"]
PAGE_SIZE = 100
# searchOrders refuses a lastUpdatedBefore later than two minutes before the request (model text).
MIN_LAG = timedelta(minutes=2)
CHANNELS = {"AMAZON": "AFN", "MERCHANT": "MFN"}


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


def _money(node: dict[str, Any] | None) -> tuple[Decimal | None, str | None]:
    if not node:
        return None, None
    return Decimal(str(node.get("amount", "0"))), node.get("currencyCode")


def to_record(order: dict[str, Any]) -> OrderRecord:
    """Map one 2026-01-01 ``Order`` to an OrderRecord (no customer: Amazon buyers have no contact data)."""
    fulfillment = order.get("fulfillment") or {}
    status = fulfillment.get("fulfillmentStatus")
    updated = parse_time(order.get("lastUpdatedTime"))
    lines = []
    currency = None
    line_total = Decimal("0")
    for item in order.get("orderItems") or []:
        product = item.get("product") or {}
        unit, item_currency = _money((product.get("price") or {}).get("unitPrice"))
        currency = currency or item_currency
        quantity = int(item.get("quantityOrdered") or 0)
        line_total += (unit or Decimal("0")) * quantity
        sku = product.get("sellerSku")
        asin = product.get("asin")
        lines.append(OrderLineRecord(external_id=str(item["orderItemId"]), quantity=quantity,
                                     price=unit or Decimal("0"), title=product.get("title") or "", sku=sku,
                                     product_external_id=asin, variant_external_id=sku or asin))
    total, total_currency = _money((order.get("proceeds") or {}).get("grandTotal"))
    window = fulfillment.get("deliverByWindow") or {}
    packages = order.get("packages") or []
    ship_times = [t for t in (parse_time(p.get("shipTime")) for p in packages) if t]
    sales_channel = order.get("salesChannel") or {}
    return OrderRecord(
        external_id=order["orderId"],
        name=order["orderId"],
        created_at=parse_time(order["createdTime"]),  # type: ignore[arg-type]
        processed_at=parse_time(order["createdTime"]),
        updated_at=updated,
        currency=total_currency or currency or "USD",
        total_price=total if total is not None else line_total,
        fulfillment_status=status.lower() if status else None,
        # The model carries no cancellation time; the last update is when the order became CANCELLED.
        cancelled_at=updated if status == "CANCELLED" else None,
        fulfilled_at=min(ship_times) if ship_times else None,
        earliest_delivery_at=parse_time(window.get("earliestDateTime")),
        latest_delivery_at=parse_time(window.get("latestDateTime")),
        fulfillment_channel=CHANNELS.get(fulfillment.get("fulfilledBy") or ""),
        marketplace_id=sales_channel.get("marketplaceId"),
        lines=tuple(lines),
    )


@dataclass
class OrderPage:
    """One page of orders and the upper bound Amazon applied to the search."""

    record_kind: ClassVar[str] = "orders"  # names its sink in plugin.sync
    records: list[OrderRecord]
    upper_bound: datetime | None


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
        yield OrderPage([to_record(o) for o in payload.get("orders") or []], upper)
        token = response.next_token
        if not token:
            return
        # The model: with paginationToken, send the other parameters unchanged.
        params = {**params, "paginationToken": token}
