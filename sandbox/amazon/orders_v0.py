"""Orders API v0: getOrders (NextToken paging), getOrder, getOrderItems, buyerInfo, address (ordersV0.json)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .context import Ctx
from .http import invalid_input, iso, list_param
from .marketplaces import MARKETPLACES
from .orders import V0_STATUSES, OrderQuery, build_query, page_size, run_query, sort_key
from .paging import decode, encode
from .seed import Order


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
        query = build_query(ctx, args.get("CreatedAfter"), args.get("CreatedBefore"),
                             args.get("LastUpdatedAfter"), args.get("LastUpdatedBefore"), marketplaces,
                             statuses, channels, order_ids,
                             ("CreatedAfter", "CreatedBefore", "LastUpdatedAfter", "LastUpdatedBefore"))
        cursor, size = None, page_size(args.get("MaxResultsPerPage"))
    orders, more = run_query(ctx, query, cursor, size)
    payload: dict[str, Any] = {"Orders": [v0_order(o, ctx.now) for o in orders]}
    if more:
        last = sort_key(orders[-1], query.field, ctx.now)
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
