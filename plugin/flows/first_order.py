"""First-order welcome: a thank-you after a customer's first order that says what happens next.

Shopify's order confirmation already lists what was bought and what it cost, so this email repeats none of it.
It says when orders of this store usually ship and arrive (medians of the store's own recent orders), how to
reach the store (the shop's contact address, else the sender's reply-to) and the refund policy in plain words
with a link (``Shop.shopPolicies``, connectors.shopify.policies). Transactional: no offer, no consent needed.
A customer gets it once, for the first order they ever placed with the store; a repeat buyer never does.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from statistics import median
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session, aliased

from plugin import flow_schemas
from plugin.flows.audience import history_cutoff, order_skip_reason
from plugin.flows.base import Exit, Flow, FlowRun, Rows, Step
from plugin.messaging import reasons
from plugin.messaging.outbox import message_row
from plugin.models import Customer, Merchant, Message, Order

NAME = "first_order"
# A welcome that would arrive more than this long after the order is not sent at all (a backfill, a late sync).
MAX_LATE = timedelta(days=3)
# The shipping history a run reads: the newest fulfilled orders of the store, at most this many.
HISTORY_ORDERS = 2000
# Fewer samples than this and the email says nothing about timing rather than guess.
MIN_HISTORY = 5


def shipping_history(session: Session, store_id: int, now: datetime, days: int) -> dict[str, int | None]:
    """Return the store's median whole days from order to shipment and to delivery over its recent orders.

    Read from the newest ``HISTORY_ORDERS`` orders fulfilled in the last ``days`` days (an index range on
    ``(store_id, fulfilled_at)``); each median is rounded up and None below ``MIN_HISTORY`` samples.
    """
    rows = session.execute(
        select(Order.created_at_remote, Order.fulfilled_at, Order.delivered_at)
        .where(Order.store_id == store_id, Order.fulfilled_at >= now - timedelta(days=days),
               Order.fulfilled_at <= now, Order.cancelled_at.is_(None))
        .order_by(Order.fulfilled_at.desc()).limit(HISTORY_ORDERS)).all()
    ship = [(f - c).total_seconds() / 86400 for c, f, _ in rows if f >= c]
    arrive = [(d - c).total_seconds() / 86400 for c, _, d in rows if d is not None and d >= c]

    def days_of(values: list[float]) -> int | None:
        return max(1, math.ceil(median(values))) if len(values) >= MIN_HISTORY else None
    return {"ship_days": days_of(ship), "arrive_days": days_of(arrive)}


def contact_address(session: Session, run: FlowRun) -> str | None:
    """Return where a customer reaches the store: the shop's contact email, else the merchant's reply-to/sender."""
    if run.store.contact_email:
        return run.store.contact_email
    merchant = session.get(Merchant, run.store.merchant_id)
    return (merchant.reply_to or merchant.sender_email) if merchant else None


def due_welcomes(run: FlowRun) -> Rows:
    """Return one welcome row per customer whose first order was placed ``delay_hours`` ago (and not too long)."""
    store, now, session = run.store, run.now, run.session
    ready = now - timedelta(hours=run.settings["delay_hours"])
    earlier = aliased(Order)
    # An earlier order (not cancelled) makes this one a repeat purchase; ties on the time go by id.
    repeat = exists().where(
        earlier.store_id == Order.store_id, earlier.customer_id == Order.customer_id, earlier.id != Order.id,
        earlier.cancelled_at.is_(None),
        or_(earlier.created_at_remote < Order.created_at_remote,
            and_(earlier.created_at_remote == Order.created_at_remote, earlier.id < Order.id)))
    welcomed = exists().where(Message.store_id == store.id, Message.customer_id == Order.customer_id,
                              Message.flow == NAME)
    cutoff = history_cutoff(run)
    query = (
        select(Order.id, Order.customer_id, Order.name, Order.refunded, Order.returned, Customer.email,
               Customer.locale)
        .join(Customer, Customer.id == Order.customer_id)
        .where(Order.store_id == store.id, Order.created_at_remote <= ready,
               Order.created_at_remote > ready - MAX_LATE, Order.cancelled_at.is_(None), ~repeat, ~welcomed,
               *((Order.created_at_remote >= cutoff,) if cutoff else ()))
        .order_by(Order.id))
    found = session.execute(query).all()
    if not found:
        return []
    history = shipping_history(session, store.id, now, run.settings["history_days"])
    policies = store.shop_policies or {}
    refund = policies.get("REFUND_POLICY")
    payload_base: dict[str, Any] = {**history, "contact_email": contact_address(session, run),
                                    "refund_policy": refund,
                                    "shipping_policy_url": (policies.get("SHIPPING_POLICY") or {}).get("url")}
    rows, seen = [], set()
    for order_id, customer_id, name, refunded, returned, email, locale in found:
        if customer_id in seen:  # two first orders at the same moment: the lower id is the first
            continue
        seen.add(customer_id)
        reason = order_skip_reason(None, refunded, returned, email, store.protected_data_access)
        extra: dict[str, Any] = {"status": "skipped", "skip_reason": reason} if reason else {}
        rows.append(message_row(store_id=store.id, flow=NAME, step="main", key_parts=(f"customer={customer_id}",),
                                scheduled_for=now, customer_id=customer_id, order_id=order_id, locale=locale,
                                to_address=email if store.protected_data_access else None,
                                payload={**payload_base, "order_name": name}, **extra))
    return rows


FLOW = Flow(
    name=NAME,
    title="First-order welcome",
    about="After a customer's first order: what happens next, how to reach the store, the refund policy.",
    flow_class="transactional",
    platforms=("shopify",),
    trigger="due query: orders placed delay_hours ago that are their customer's first",
    audience=("customers placing their first order (no earlier order that was not cancelled)",
              "contact details available to the app"),
    timing=f"delay_hours after the order; not sent when more than {MAX_LATE.days} days late",
    steps=(Step("main", due_welcomes, "the welcome (shipping times, contact, refund policy)", template="main",
                counter="welcomes", skipped_counter="skipped"),),
    exits=(
        Exit(reasons.ORDER_CANCELLED, "the order was cancelled before the welcome went (checked at send time)"),
        Exit("repeat_buyer", "the customer ordered before: no welcome row is written"),
        Exit("unsubscribed", "the address is on the suppression list (checked at send time)"),
    ),
    idempotency_key="<store>:first_order:customer=<customer id>:step=main",
    settings=flow_schemas.FIRST_ORDER,
    counts=("welcomes", "skipped"),
)
