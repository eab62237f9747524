"""Orders API v0 (getOrders, getOrder, getOrderItems, ...) and 2026-01-01 (searchOrders, getOrder).

Shapes, names and enums follow ordersV0.json and orders_2026-01-01.json of
amzn/selling-partner-api-models. Query rules from the models' parameter descriptions: exactly one of
createdAfter / lastUpdatedAfter; the *Before bound at least two minutes before the request; pages of
1-100; results ordered by (time, order id) and stable across pages (keyset cursor in the token).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .context import Ctx
from .http import invalid_input, iso, list_param, parse_time
from .marketplaces import MARKETPLACES
from .paging import decode, encode
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


def _sort_key(order: Order, field: str, now: datetime) -> tuple[str, str]:
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
        key = _sort_key(order, query.field, now)
        if cursor is not None and key <= tuple(cursor):
            continue
        matches.append((key, order))
    matches.sort(key=lambda pair: pair[0])
    return [order for _, order in matches[:limit]], len(matches) > limit


def _page_size(raw: str | None) -> int:
    if raw is None:
        return 100
    try:
        size = int(raw)
    except ValueError:
        raise invalid_input(f"Invalid maxResultsPerPage: {raw!r}") from None
    if not 1 <= size <= 100:
        raise invalid_input("maxResultsPerPage must be between 1 and 100.")
    return size


def _build_query(ctx: Ctx, created_after: str | None, created_before: str | None, updated_after: str | None,
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


# ---------------------------------------------------------------- v0 representation


def _money(amount: Any, currency: str) -> dict[str, str]:
    return {"CurrencyCode": currency, "Amount": str(amount)}


def v0_order(order: Order, now: datetime) -> dict[str, Any]:
    """Render an order as Orders v0 ``Order``."""
    status = order.status_at(now)
    mp = MARKETPLACES[order.marketplace_id]
    shipped = sum(order.shipped_quantity(i, now) for i in range(len(order.items)))
    unshipped = 0 if status == "Canceled" else sum(i.quantity for i in order.items) - shipped
    body: dict[str, Any] = {
        "AmazonOrderId": order.order_id,
        "PurchaseDate": iso(order.purchase_date),
        "LastUpdateDate": iso(order.last_update_at(now)),
        "OrderStatus": status,
        "FulfillmentChannel": order.fulfillment_channel,
        "SalesChannel": mp.name,
        "ShipServiceLevel": "Std " + mp.country + " Dom" if order.fulfillment_channel == "MFN" else "Standard",
        "NumberOfItemsShipped": shipped,
        "NumberOfItemsUnshipped": unshipped,
        "PaymentMethod": "Other",
        "PaymentMethodDetails": ["Standard"],
        "MarketplaceId": order.marketplace_id,
        "ShipmentServiceLevelCategory": "Standard",
        "OrderType": "StandardOrder",
        "IsReplacementOrder": False,
        "IsBusinessOrder": order.is_business,
        "IsPrime": order.is_prime,
        "IsPremiumOrder": False,
        "IsGlobalExpressEnabled": False,
        "IsSoldByAB": False,
        "IsISPU": False,
        "IsAccessPointOrder": False,
        "BuyerInfo": {"BuyerEmail": order.buyer_email} if status != "Pending" else {},
    }
    if status not in ("Pending", "Canceled"):
        body["OrderTotal"] = _money(order.total, order.currency)
        body["ShippingAddress"] = {"City": order.city, "PostalCode": order.postal_code,
                                   "CountryCode": mp.country, "StateOrRegion": ""}
    if order.fulfillment_channel == "MFN":
        # The model: ship/delivery dates are "only returned for seller-fulfilled orders", and
        # LatestDeliveryDate not for Pending/Canceled ones.
        body["EarliestShipDate"] = iso(order.earliest_ship_date)
        body["LatestShipDate"] = iso(order.latest_ship_date)
        body["EarliestDeliveryDate"] = iso(order.earliest_delivery_date)
        if status not in ("Pending", "Canceled", "PendingAvailability"):
            body["LatestDeliveryDate"] = iso(order.latest_delivery_date)
    return body


def v0_item(order: Order, index: int, now: datetime) -> dict[str, Any]:
    """Render an order line as Orders v0 ``OrderItem``."""
    item = order.items[index]
    status = order.status_at(now)
    body: dict[str, Any] = {
        "ASIN": item.asin, "SellerSKU": item.sku, "OrderItemId": item.order_item_id, "Title": item.title,
        "QuantityOrdered": item.quantity, "QuantityShipped": order.shipped_quantity(index, now),
        "ProductInfo": {"NumberOfItems": "1"}, "IsGift": "false", "ConditionId": "New",
        "ConditionSubtypeId": "New", "IsTransparency": False, "SerialNumberRequired": False,
        "BuyerRequestedCancel": {"IsBuyerRequestedCancel": "false", "BuyerCancelReason": ""},
    }
    if status not in ("Pending", "Canceled"):
        body["ItemPrice"] = _money(item.unit_price * item.quantity, order.currency)
        body["ItemTax"] = _money("0.00", order.currency)
        body["PromotionDiscount"] = _money("0.00", order.currency)
    return body


def get_orders_v0(ctx: Ctx) -> tuple[int, Any]:
    """GET /orders/v0/orders (getOrders)."""
    args = ctx.request.args
    secret = ctx.sandbox.secret
    marketplaces = list_param(args, "MarketplaceIds")
    if not marketplaces:
        raise invalid_input("Missing required 'MarketplaceIds'.", "Invalid Input")
    if args.get("NextToken"):
        state = decode(secret, args["NextToken"], "NextToken")
        if state.get("api") != "v0":
            raise invalid_input("Invalid NextToken.")
        query, cursor, size = OrderQuery.from_state(state["q"]), state["k"], state["n"]
    else:
        statuses = list_param(args, "OrderStatuses")
        bad = [s for s in statuses if s not in V0_STATUSES]
        channels = list_param(args, "FulfillmentChannels")
        if bad or any(c not in ("AFN", "MFN") for c in channels):
            raise invalid_input(f"Invalid filter value: {', '.join(bad) or ', '.join(channels)}")
        order_ids = list_param(args, "AmazonOrderIds")
        if len(order_ids) > 50:
            raise invalid_input("AmazonOrderIds accepts at most 50 values.")
        query = _build_query(ctx, args.get("CreatedAfter"), args.get("CreatedBefore"),
                             args.get("LastUpdatedAfter"), args.get("LastUpdatedBefore"), marketplaces,
                             statuses, channels, order_ids,
                             ("CreatedAfter", "CreatedBefore", "LastUpdatedAfter", "LastUpdatedBefore"))
        cursor, size = None, _page_size(args.get("MaxResultsPerPage"))
    orders, more = run_query(ctx, query, cursor, size)
    payload: dict[str, Any] = {"Orders": [v0_order(o, ctx.now) for o in orders]}
    if more:
        last = _sort_key(orders[-1], query.field, ctx.now)
        payload["NextToken"] = encode(secret, {"api": "v0", "q": query.state(), "k": list(last), "n": size})
    payload["CreatedBefore" if query.field == "created" else "LastUpdatedBefore"] = iso(query.before)
    return 200, {"payload": payload}


def get_order_v0(ctx: Ctx, orderId: str) -> tuple[int, Any]:  # noqa: N803 - path parameter name
    """GET /orders/v0/orders/{orderId} (getOrder)."""
    return 200, {"payload": v0_order(ctx.order(orderId), ctx.now)}


def get_order_items_v0(ctx: Ctx, orderId: str) -> tuple[int, Any]:  # noqa: N803
    """GET /orders/v0/orders/{orderId}/orderItems (getOrderItems); one page holds all lines here."""
    order = ctx.order(orderId)
    if ctx.request.args.get("NextToken"):
        raise invalid_input("Invalid NextToken.")
    items = [v0_item(order, i, ctx.now) for i in range(len(order.items))]
    return 200, {"payload": {"AmazonOrderId": order.order_id, "OrderItems": items}}


def get_order_buyer_info_v0(ctx: Ctx, orderId: str) -> tuple[int, Any]:  # noqa: N803
    """GET /orders/v0/orders/{orderId}/buyerInfo (anonymised email only, no restricted data)."""
    order = ctx.order(orderId)
    return 200, {"payload": {"AmazonOrderId": order.order_id, "BuyerEmail": order.buyer_email}}


def get_order_address_v0(ctx: Ctx, orderId: str) -> tuple[int, Any]:  # noqa: N803
    """GET /orders/v0/orders/{orderId}/address (non-restricted fields only)."""
    order = ctx.order(orderId)
    mp = MARKETPLACES[order.marketplace_id]
    return 200, {"payload": {"AmazonOrderId": order.order_id, "ShippingAddress": {
        "Name": "", "City": order.city, "PostalCode": order.postal_code, "CountryCode": mp.country}}}


# ---------------------------------------------------------------- 2026-01-01 representation


def _money26(amount: Any, currency: str) -> dict[str, str]:
    return {"amount": str(amount), "currencyCode": currency}


def order_2026(order: Order, now: datetime, included: list[str]) -> dict[str, Any]:
    """Render an order as Orders 2026-01-01 ``Order`` with the requested ``includedData`` sets."""
    status = order.status_at(now)
    mp = MARKETPLACES[order.marketplace_id]
    afn = order.fulfillment_channel == "AFN"
    items = []
    for index, item in enumerate(order.items):
        entry: dict[str, Any] = {
            "orderItemId": item.order_item_id, "quantityOrdered": item.quantity,
            "product": {"asin": item.asin, "title": item.title, "sellerSku": item.sku,
                        "condition": {"conditionType": "NEW", "conditionSubtype": "NEW"},
                        "price": {"unitPrice": _money26(item.unit_price, order.currency)}},
        }
        if "PROCEEDS" in included:
            total = item.unit_price * item.quantity
            entry["proceeds"] = {"proceedsTotal": _money26(total, order.currency),
                                 "breakdowns": [{"type": "ITEM", "subtotal": _money26(total, order.currency)}]}
        if "FULFILLMENT" in included:
            done = order.shipped_quantity(index, now)
            entry["fulfillment"] = {"quantityFulfilled": done, "quantityUnfulfilled": item.quantity - done}
        if "CANCELLATION" in included and status == "Canceled":
            entry["cancellation"] = {"cancellationRequest": {"requester": "BUYER",
                                                             "cancelReason": "BUYER_CANCELED"}}
        items.append(entry)
    body: dict[str, Any] = {
        "orderId": order.order_id,
        "createdTime": iso(order.purchase_date),
        "lastUpdatedTime": iso(order.last_update_at(now)),
        "programs": ["PRIME"] if order.is_prime else [],
        "salesChannel": {"channelName": "AMAZON", "marketplaceId": mp.marketplace_id,
                         "marketplaceName": mp.name},
        "orderItems": items,
    }
    if "BUYER" in included:
        body["buyer"] = {"buyerEmail": order.buyer_email}
    if "RECIPIENT" in included and status not in ("Pending", "Canceled"):
        body["recipient"] = {"deliveryAddress": {"city": order.city, "postalCode": order.postal_code,
                                                 "countryCode": mp.country, "addressType": "RESIDENTIAL"}}
    if "PROCEEDS" in included:
        body["proceeds"] = {"grandTotal": _money26(order.total, order.currency)}
    if "FULFILLMENT" in included:
        body["fulfillment"] = {
            "fulfillmentStatus": STATUS_2026[status], "fulfilledBy": "AMAZON" if afn else "MERCHANT",
            "fulfillmentServiceLevel": "STANDARD",
            "shipByWindow": {"earliestDateTime": iso(order.earliest_ship_date),
                             "latestDateTime": iso(order.latest_ship_date)},
            "deliverByWindow": {"earliestDateTime": iso(order.earliest_delivery_date),
                                "latestDateTime": iso(order.latest_delivery_date)},
        }
    if "PACKAGES" in included and status in ("PartiallyShipped", "Shipped"):
        body["packages"] = _packages(order, now)
    return body


def _packages(order: Order, now: datetime) -> list[dict[str, Any]]:
    """Render the order's shipments: one package, or two when a partial shipment went first."""
    events = {status: when for when, status in order.timeline if when <= now}
    lines = list(range(len(order.items)))
    groups = []  # (ship time, line indexes)
    if "PartiallyShipped" in events:
        groups.append((events["PartiallyShipped"], lines[:1]))
        lines = lines[1:]
    if "Shipped" in events and order.status_at(now) == "Shipped":
        groups.append((events["Shipped"], lines))
    delivered = order.delivered_by(now)
    afn = order.fulfillment_channel == "AFN"
    packages = []
    for number, (shipped_at, indexes) in enumerate(groups, start=1):
        state = "DELIVERED" if delivered else "IN_TRANSIT"
        packages.append({
            "packageReferenceId": str(number), "createdTime": iso(shipped_at), "shipTime": iso(shipped_at),
            "carrier": "AMZN" if afn else "UPS", "shippingService": "Standard",
            "trackingNumber": f"TBA{order.order_id.replace('-', '')[:11]}{number}",
            "packageStatus": {"status": state, "detailedStatus": state},
            "packageItems": [{"orderItemId": order.items[i].order_item_id, "quantity": order.items[i].quantity}
                             for i in indexes],
        })
    return packages


def _included(ctx: Ctx) -> list[str]:
    values = list_param(ctx.request.args, "includedData")
    bad = [v for v in values if v not in INCLUDED_DATA]
    if bad:
        raise invalid_input(f"Invalid includedData value(s): {', '.join(bad)}", "Invalid Input")
    return values


def search_orders(ctx: Ctx) -> tuple[int, Any]:
    """GET /orders/2026-01-01/orders (searchOrders)."""
    args = ctx.request.args
    secret = ctx.sandbox.secret
    included = _included(ctx)
    if args.get("paginationToken"):
        state = decode(secret, args["paginationToken"], "paginationToken")
        if state.get("api") != "2026":
            raise invalid_input("Invalid paginationToken.")
        query, cursor, size = OrderQuery.from_state(state["q"]), state["k"], state["n"]
    else:
        marketplaces = list_param(args, "marketplaceIds") or list(ctx.seller.marketplace_ids)
        if len(marketplaces) > 50:
            raise invalid_input("marketplaceIds accepts at most 50 values.")
        statuses26 = list_param(args, "fulfillmentStatuses")
        reverse = {}
        for v0, v26 in STATUS_2026.items():
            reverse.setdefault(v26, []).append(v0)
        if any(s not in reverse for s in statuses26):
            raise invalid_input("Invalid fulfillmentStatuses value.", "Invalid Input")
        statuses = [v0 for s in statuses26 for v0 in reverse[s]]
        by = list_param(args, "fulfilledBy")
        if any(b not in ("MERCHANT", "AMAZON") for b in by):
            raise invalid_input("Invalid fulfilledBy value.", "Invalid Input")
        channels = ["AFN" if b == "AMAZON" else "MFN" for b in by]
        query = _build_query(ctx, args.get("createdAfter"), args.get("createdBefore"),
                             args.get("lastUpdatedAfter"), args.get("lastUpdatedBefore"), marketplaces,
                             statuses, channels, [],
                             ("createdAfter", "createdBefore", "lastUpdatedAfter", "lastUpdatedBefore"))
        cursor, size = None, _page_size(args.get("maxResultsPerPage"))
    orders, more = run_query(ctx, query, cursor, size)
    body: dict[str, Any] = {"orders": [order_2026(o, ctx.now, included) for o in orders]}
    if more:
        last = _sort_key(orders[-1], query.field, ctx.now)
        body["pagination"] = {"nextToken": encode(secret, {"api": "2026", "q": query.state(),
                                                           "k": list(last), "n": size})}
    body["createdBefore" if query.field == "created" else "lastUpdatedBefore"] = iso(query.before)
    return 200, body


def get_order_2026(ctx: Ctx, orderId: str) -> tuple[int, Any]:  # noqa: N803
    """GET /orders/2026-01-01/orders/{orderId} (getOrder)."""
    return 200, {"order": order_2026(ctx.order(orderId), ctx.now, _included(ctx))}
