"""Usage guides and care tips: N days after delivery, how to use and look after a product received for the first time.

The merchant writes content blocks per product, collection or product type (plugin.guides, the admin's Guides
page; a product's own block wins over its collections', which win over its type's). When an
order is delivered, each of its products the customer never bought before and that has a block gets that block's
guide; all of them go in one email per order, sent when the first of the order's blocks is due (each block's
``days_after_delivery``, default 2) and in the customer's send window. A product bought in an earlier order (not
cancelled) gets nothing again. Service class: no consent needed while the content holds no offer or
recommendation; a block that holds one is marketing, so a customer without consent gets the order's other guides
only, and an order with nothing but such blocks is a marketing email (the send policy skips it without consent).
Shopify only: Amazon buyers get no email (channel law).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import aliased

from plugin import flow_schemas, guides
from plugin.flows.audience import history_cutoff, left_since, order_skip_reason
from plugin.flows.base import Exit, Flow, FlowRun, Rows, Step
from plugin.messaging import reasons
from plugin.messaging.outbox import message_row
from plugin.models import Customer, Message, Order, OrderLine, Product
from plugin.sync.collections import collections_of

NAME = "usage_guide"


def due_guides(run: FlowRun) -> Rows:
    """Return one row per delivered order whose first guide is due now, with the guides of its new products."""
    store, now, session = run.store, run.now, run.session
    blocks = guides.enabled_blocks(session, store.id)
    if not blocks:
        return []
    index = guides.BlockIndex.of(blocks)
    late = timedelta(days=run.settings["max_late_days"])
    # An order is due when delivery + its first guide's days falls in (now - late, now]: its delivery lies in one of
    # these ranges, one per distinct delay (a 365-day guide does not make every run read a year of orders).
    delivered_in = or_(*(and_(Order.delivered_at > now - timedelta(days=d) - late,
                              Order.delivered_at <= now - timedelta(days=d))
                         for d in sorted({b.days_after_delivery for b in blocks})))
    earlier, earlier_line = aliased(Order), aliased(OrderLine)
    # The customer bought this product before, in an order that was not cancelled (ties on the time go by id).
    owned = exists().where(
        earlier_line.order_id == earlier.id, earlier_line.product_id == OrderLine.product_id,
        earlier.store_id == Order.store_id, earlier.customer_id == Order.customer_id, earlier.id != Order.id,
        earlier.cancelled_at.is_(None),
        or_(earlier.created_at_remote < Order.created_at_remote,
            and_(earlier.created_at_remote == Order.created_at_remote, earlier.id < Order.id)))
    written = exists().where(Message.store_id == store.id, Message.flow == NAME, Message.order_id == Order.id)
    cutoff = history_cutoff(run)
    query = (
        select(Order.id, Order.customer_id, Order.name, Order.delivered_at, Order.refunded, Order.returned,
               Customer.email, Customer.locale, Customer.marketing_consent, Product.id, Product.title,
               Product.product_type)
        .join(Customer, Customer.id == Order.customer_id)
        .join(OrderLine, OrderLine.order_id == Order.id)
        .join(Product, Product.id == OrderLine.product_id)
        .where(Order.store_id == store.id, delivered_in, Order.cancelled_at.is_(None), ~written, ~owned,
               *left_since(cutoff))
        .order_by(Order.id, OrderLine.id))
    found_rows = session.execute(query).all()
    # Collections matter only when some block targets one (then one read of the rows' products' memberships).
    held = (collections_of(session, store.id, (r[9] for r in found_rows)) if index.by_collection else {})
    orders: dict[int, dict[str, Any]] = {}
    for (order_id, customer_id, name, delivered, refunded, returned, email, locale, consent, product_id, title,
         product_type) in found_rows:
        block = index.find(product_id, product_type, held.get(product_id, ()))
        if block is None:
            continue
        entry = orders.setdefault(order_id, {"customer_id": customer_id, "name": name, "delivered": delivered,
                                             "refunded": refunded, "returned": returned, "email": email,
                                             "locale": locale, "consent": consent, "guides": {}})
        entry["guides"].setdefault(product_id, (block, title))
    marketing_of: dict[int, bool] = {}
    rows = []
    for order_id, entry in orders.items():
        found = list(entry["guides"].items())
        due = entry["delivered"] + timedelta(days=min(b.days_after_delivery for _, (b, _t) in found))
        if due > now or due <= now - late:
            continue
        for _, (block, _t) in found:
            if block.id not in marketing_of:
                marketing_of[block.id] = guides.is_marketing(block)
        service = [g for g in found if not marketing_of[g[1][0].id]]
        # Without consent the offer-bearing guides are left out; with none left, it is a marketing email the
        # send policy skips (no_consent), so the reason is recorded.
        chosen = found if entry["consent"] or not service else service
        marketing = any(marketing_of[block.id] for _, (block, _t) in chosen)
        reason = order_skip_reason(None, entry["refunded"], entry["returned"], entry["email"],
                                   store.protected_data_access)
        extra: dict[str, Any] = {"status": "skipped", "skip_reason": reason} if reason else {}
        payload = {"order_name": entry["name"],
                   "guides": [{"block_id": block.id, "product_id": pid, "product_title": title}
                              for pid, (block, title) in chosen]}
        rows.append(message_row(store_id=store.id, flow=NAME, step="main", key_parts=(f"order={order_id}",),
                                scheduled_for=now, customer_id=entry["customer_id"], order_id=order_id,
                                product_id=chosen[0][0], locale=entry["locale"], marketing=marketing,
                                to_address=entry["email"] if store.protected_data_access else None,
                                payload=payload, **extra))
    return rows


FLOW = Flow(
    name=NAME,
    title="Usage guides and care tips",
    about="N days after delivery, how to use and look after each product a customer received for the first time "
          "(one email per order, from the guides you write).",
    flow_class="service",
    platforms=("shopify",),
    trigger="due query: delivered orders holding products with a guide that the customer never bought before",
    audience=("customers receiving a product with a guide for the first time", "contact details available to the "
              "app", "guides holding an offer: customers who consented to marketing"),
    timing="each guide days_after_delivery after delivery (the order's first due guide sends them all); not sent "
           "when more than max_late_days late",
    steps=(Step("main", due_guides, "the order's guides (text, images, video link) in the customer's language",
                template="main", counter="guides", skipped_counter="skipped", offer_makes_marketing=True),),
    exits=(
        Exit("owned_product", "the customer bought the product before: it gets no guide again"),
        Exit(reasons.ORDER_CANCELLED, "the order was cancelled, refunded or returned (checked at send time)"),
        Exit("no_consent", "a guide holding an offer, to a customer without marketing consent (checked at send "
                           "time)"),
        Exit("unsubscribed", "the address is on the suppression list (checked at send time)"),
    ),
    idempotency_key="<store>:usage_guide:order=<order id>:step=main",
    settings=flow_schemas.USAGE_GUIDE,
    counts=("guides", "skipped"),
)
