"""Amazon review requests: plan one ``productReviewAndSellerFeedback`` solicitation per eligible order.

Eligible = inside Amazon's window (5 days after EarliestDeliveryDate, plus the store's optional delay, to
30 days after LatestDeliveryDate) and not cancelled, returned or refunded. Orders Amazon gives no deliver-by
window (many FBA orders: a ship-by date only) get an estimated one: delivery = latest ship date +
``estimated_transit_days`` (a store setting, 3 by default), window = 5 to 30 days after that; the row carries it
in its payload and the channel asks Amazon's actions list daily inside it. Nothing else is looked at: no
rating, complaint, ticket or sentiment, because Amazon forbids selective solicitation
(https://sellercentral.amazon.com/help/hub/reference/external/G1801). This flow only writes the outbox rows;
the dispatcher sends them through the ``amazon_solicitation`` channel
(plugin/messaging/channels/amazon_solicitation.py), which gates each send on Amazon's actions list and
reconciles interrupted sends by asking it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from plugin import flow_schemas, flow_settings
from plugin.context import JobContext
from plugin.flows.base import Exit, Flow
from plugin.marketplaces import amazon_store
from plugin.messaging import reasons
from plugin.messaging.channels.amazon_solicitation import (
    CHANNEL,
    WINDOW_CLOSES,
    WINDOW_OPENS,
    estimated_window,
    window,
)
from plugin.messaging.outbox import enqueue, idempotency_key
from plugin.models import Message, Order

NAME = "amazon_review_request"


def message_key(store_id: int, order_external_id: str) -> str:
    """Return the idempotency key of an order's solicitation."""
    return idempotency_key(store_id, NAME, f"order={order_external_id}")


def plan(session: Session, store_id: int, now: datetime, delay_days: float, transit_days: float = 3.0) -> int:
    """Write a ``scheduled`` row due at its first eligible moment for every order inside its window; count new ones.

    Amazon's window comes from the order's delivery dates; without them, from the latest ship date + transit.
    """
    delay, transit = timedelta(days=delay_days), timedelta(days=transit_days)
    shipped = func.coalesce(Order.latest_ship_at, Order.fulfilled_at)
    inside = or_(
        and_(Order.earliest_delivery_at <= now - WINDOW_OPENS - delay,
             func.coalesce(Order.latest_delivery_at, Order.earliest_delivery_at) >= now - WINDOW_CLOSES),
        # No deliver-by window (many FBA orders): the window estimated from the ship-by date.
        and_(Order.earliest_delivery_at.is_(None), shipped <= now - transit - WINDOW_OPENS - delay,
             shipped >= now - transit - WINDOW_CLOSES))
    query = (select(Order).where(Order.store_id == store_id, inside, Order.cancelled_at.is_(None),
                                 Order.returned.is_(False), Order.refunded.is_(False))
             .order_by(func.coalesce(Order.earliest_delivery_at, shipped), Order.id))
    known = set(session.scalars(select(Message.order_id).where(Message.store_id == store_id, Message.flow == NAME,
                                                                Message.order_id.is_not(None))))
    created = 0
    for order in session.scalars(query):
        if order.id in known:
            continue
        payload: dict[str, Any] = {"amazon_order_id": order.external_id, "marketplace_id": order.marketplace_id}
        bounds = window(order)
        if bounds is None:
            bounds = estimated_window(order, transit)
            if bounds is None:
                continue
            payload["estimated_window"] = [bounds[0].isoformat(), bounds[1].isoformat()]
        row = enqueue(session, store_id=store_id, flow=NAME, channel=CHANNEL, scheduled_for=bounds[0] + delay,
                      idempotency_key=message_key(store_id, order.external_id), order_id=order.id, payload=payload)
        created += row is not None
    return created


def run(ctx: JobContext, store_id: int) -> dict[str, Any]:
    """Plan today's solicitations for one seller (the ``dispatch`` job sends them); safe to run twice at once."""
    with ctx.database.session() as session:
        store = amazon_store(session, store_id)
        settings = flow_settings.effective(session, ctx.config, store_id, NAME)
        if not settings.get("enabled", True) or not store.is_sending_allowed:
            return {"disabled": 1}
        delay_days = float(settings.get("delay_days_after_window_opens", 0) or 0)
        transit_days = float(settings.get("estimated_transit_days", 3))
        return {"planned": plan(session, store_id, ctx.clock.now(), delay_days, transit_days)}


# Declared like every other flow (admin form, `aftercare flows list`, class rules); planned by run() above and
# sent by the dispatcher's amazon_solicitation channel, not by the generic flow runner.
FLOW = Flow(
    name=NAME,
    title="Amazon review solicitations",
    about="Amazon's own review request, once per order inside Amazon's window.",
    flow_class="review_request",
    platforms=("amazon",),
    trigger="due query: orders whose solicitation window (5-30 days after delivery; without a deliver-by window, "
            "after latest ship date + estimated_transit_days) is open",
    audience=("every order (Amazon forbids selective solicitation)",),
    timing="the first day the order is eligible, plus delay_days_after_window_opens",
    steps=(),
    exits=(
        Exit(reasons.ORDER_CANCELLED, "the order was cancelled"),
        Exit(reasons.ORDER_REFUNDED, "the order was refunded"),
        Exit(reasons.ORDER_RETURNED, "the order was returned"),
        Exit("estimated_window_closed", "no deliver-by window, and Amazon never offered it in the estimated window"),
    ),
    idempotency_key="<store>:amazon_review_request:order=<order id>",
    settings=flow_schemas.AMAZON_REVIEW_REQUEST,
    # No holdout: Amazon forbids selective solicitation.
    customer_facing=False,
    runs_here=False,
)
