"""Shopify review requests: an email N days after delivery (fallback: after fulfilment), one reminder.

Who is due is decided by two set-based queries (first request, reminder). Never filtered by survey
score or review sentiment (DESIGN.md §1: no review gating). Cancelled, refunded or returned orders get
a ``skipped`` row with the reason, so the merchant sees why; a customer with an open complaint
ticket waits (no row yet) and is asked once the ticket is resolved (service first, then ask).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session, aliased

from jobs.outbox_batch import message_row, open_flow, write_messages
from plugin.context import JobContext
from plugin.models import Customer, Message, Order, Review, Store, Ticket

FLOW = "review_request"
# Orders whose request became due longer ago than this are not asked any more (e.g. the backfill of
# an old store on install); also bounds the scan to an index range.
MAX_LATE_DAYS = 30
NO_CONTACT = "no contact access"


def run(ctx: JobContext, store_id: int) -> dict[str, Any]:
    """Job: write the review requests and reminders that are due now for one store."""
    now = ctx.clock.now()
    with ctx.database.session() as session:
        gate = open_flow(session, ctx, store_id, FLOW)
        if isinstance(gate, dict):
            return gate
        store, settings = gate
        counts = {"requests": 0, "reminders": 0, "skipped": 0}
        steps = [("requests", due_requests)]
        if settings.get("reminder_enabled", True):
            steps.append(("reminders", due_reminders))
        for label, find in steps:
            rows = find(session, store, settings, now)
            counts[label] += len(write_messages(session, [r for r in rows if r["status"] != "skipped"], now))
            counts["skipped"] += len(write_messages(session, [r for r in rows if r["status"] == "skipped"], now))
        return counts


def _open_ticket(customer_id: Any) -> Any:
    return exists().where(Ticket.customer_id == customer_id, Ticket.status == "open")


def _skip_reason(cancelled_at: datetime | None, refunded: bool, returned: bool, email: str | None,
                 contact_granted: bool) -> str | None:
    if cancelled_at is not None:
        return "order cancelled"
    if refunded:
        return "order refunded"
    if returned:
        return "order returned"
    if not email or not contact_granted:
        return NO_CONTACT
    return None


def due_requests(session: Session, store: Store, settings: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    """Return outbox rows for orders whose first request is due and not yet written."""
    delay = timedelta(days=float(settings.get("delay_days", 7)))
    fallback = timedelta(days=float(settings.get("fallback_after_fulfilment_days", 7)))
    late = timedelta(days=MAX_LATE_DAYS)
    already = exists().where(Message.order_id == Order.id, Message.flow == FLOW, Message.step == "main")
    query = (
        select(Order.id, Order.customer_id, Order.name, Order.cancelled_at, Order.refunded, Order.returned,
               Customer.email, Customer.locale, _open_ticket(Order.customer_id).label("waiting"))
        .join(Customer, Customer.id == Order.customer_id, isouter=True)
        .where(Order.store_id == store.id,
               or_(and_(Order.delivered_at <= now - delay, Order.delivered_at > now - delay - late),
                   and_(Order.delivered_at.is_(None), Order.fulfilled_at <= now - fallback,
                        Order.fulfilled_at > now - fallback - late)),
               ~already)
        .order_by(Order.id))
    return _rows(session, store, query, "main", now)


def due_reminders(session: Session, store: Store, settings: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    """Return reminder rows for sent requests older than the reminder delay with no review since."""
    delay = timedelta(days=float(settings.get("reminder_delay_days", 7)))
    late = timedelta(days=MAX_LATE_DAYS)
    main = aliased(Message)
    reminded = exists().where(Message.order_id == main.order_id, Message.flow == FLOW, Message.step == "reminder")
    reviewed = exists().where(Review.store_id == store.id, Review.created_at_remote >= main.sent_at,
                              or_(Review.order_id == main.order_id, Review.customer_id == main.customer_id))
    query = (
        select(Order.id, Order.customer_id, Order.name, Order.cancelled_at, Order.refunded, Order.returned,
               Customer.email, Customer.locale, _open_ticket(Order.customer_id).label("waiting"))
        .select_from(main)
        .join(Order, Order.id == main.order_id)
        .join(Customer, Customer.id == Order.customer_id, isouter=True)
        .where(main.store_id == store.id, main.flow == FLOW, main.step == "main", main.status == "sent",
               main.sent_at <= now - delay, main.sent_at > now - delay - late, ~reminded, ~reviewed)
        .order_by(Order.id))
    return _rows(session, store, query, "reminder", now)


def _rows(session: Session, store: Store, query: Any, step: str, now: datetime) -> list[dict[str, Any]]:
    rows = []
    for order_id, customer_id, name, cancelled_at, refunded, returned, email, locale, waiting in session.execute(query):
        reason = _skip_reason(cancelled_at, refunded, returned, email, store.protected_data_access)
        if reason is None and waiting:
            continue  # open complaint: ask once it is resolved (the next run after resolution)
        extra: dict[str, Any] = {"status": "skipped", "skip_reason": reason} if reason else {}
        row = message_row(store_id=store.id, flow=FLOW, step=step, key_parts=(f"order={order_id}",),
                          scheduled_for=now, customer_id=customer_id, order_id=order_id, locale=locale,
                          to_address=email if store.protected_data_access else None,
                          payload={"order_name": name}, **extra)
        rows.append(row)
    return rows
