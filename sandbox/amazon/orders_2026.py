"""Orders API 2026-01-01: searchOrders (paginationToken paging) and getOrder with ``includedData``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .context import Ctx
from .http import invalid_input, iso, list_param
from .marketplaces import MARKETPLACES
from .orders import INCLUDED_DATA, STATUS_2026, OrderQuery, build_query, page_size, run_query, sort_key
from .paging import decode, encode
from .seed import Order


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
        }
        if order.shows_delivery_window:
            body["fulfillment"]["deliverByWindow"] = {"earliestDateTime": iso(order.earliest_delivery_date),
                                                      "latestDateTime": iso(order.latest_delivery_date)}
    if "PACKAGES" in included and status in ("PartiallyShipped", "Shipped"):
        body["packages"] = _packages(order, now)
    for path, value in order.garbled.items():
        _put(body, path, value)
    return body


def _put(body: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """Set ``body[path[0]][path[1]]...`` to a raw value (list items addressed by their index)."""
    node: Any = body
    for key in path[:-1]:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    if isinstance(node, list):
        node[int(path[-1])] = value
    else:
        node[path[-1]] = value


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
        query = build_query(ctx, args.get("createdAfter"), args.get("createdBefore"),
                             args.get("lastUpdatedAfter"), args.get("lastUpdatedBefore"), marketplaces,
                             statuses, channels, [],
                             ("createdAfter", "createdBefore", "lastUpdatedAfter", "lastUpdatedBefore"))
        cursor, size = None, page_size(args.get("maxResultsPerPage"))
    orders, more = run_query(ctx, query, cursor, size)
    body: dict[str, Any] = {"orders": [order_2026(o, ctx.now, included) for o in orders]}
    if more:
        last = sort_key(orders[-1], query.field, ctx.now)
        body["pagination"] = {"nextToken": encode(secret, {"api": "2026", "q": query.state(),
                                                           "k": list(last), "n": size})}
    body["createdBefore" if query.field == "created" else "lastUpdatedBefore"] = iso(query.before)
    return 200, body


def get_order_2026(ctx: Ctx, orderId: str) -> tuple[int, Any]:  # noqa: N803
    """GET /orders/2026-01-01/orders/{orderId} (getOrder)."""
    return 200, {"order": order_2026(ctx.order(orderId), ctx.now, _included(ctx))}
