"""Shopify review requests: an email N days after delivery (fallback: after fulfilment), one reminder.

Who is due is decided by two set-based queries (first request, reminder). Never filtered by survey score or
review sentiment (DESIGN §1: no review gating). Cancelled, refunded or returned orders get a ``skipped`` row
with the reason, so the merchant sees why; a customer with an open complaint ticket waits (no row yet) and is
asked once the ticket is resolved (service first, then ask), whatever the request's age: a held request or
reminder is due again for ``MAX_LATE_DAYS`` from the resolution (``was_held``). A ticket holds requests for at
most ``complaint_hold_days`` (14, at most 30) from its opening: one the merchant never resolves would otherwise
mean that a low score or a bad review decided who is never asked (DESIGN §1 over §4's wait). Delivery problems
(about the parcel, not an opinion) hold until resolved. After a reinstall no order
fulfilled or delivered before it is asked about (``plugin.flows.audience.history_cutoff``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import aliased

from plugin import flow_schemas
from plugin.flows.audience import history_cutoff, left_since, order_skip_reason
from plugin.flows.base import Exit, Flow, FlowRun, Rows, Step
from plugin.messaging import reasons
from plugin.messaging.outbox import message_row
from plugin.models import HOLD_UNTIL_RESOLVED_SOURCES, Customer, Message, Order, Review, Ticket
from plugin.sync.sql import IN_CHUNK, chunked

NAME = "review_request"
# Orders whose request became due longer ago than this are not asked any more (e.g. the backfill of
# an old store on install); also bounds the scan to an index range. A request held by a complaint ticket
# has its age counted from the ticket's resolution instead (the hold does not count against it).
MAX_LATE_DAYS = 30

Spans = dict[int, list[tuple[datetime, datetime]]]


def _open_ticket(customer_id: Any, opened_after: datetime) -> Any:
    """Return the condition "the customer has an open ticket that holds their review request"."""
    return exists().where(Ticket.customer_id == customer_id, Ticket.status == "open",
                          or_(Ticket.source.in_(HOLD_UNTIL_RESOLVED_SOURCES), Ticket.opened_at > opened_after))


def hold_start(run: FlowRun) -> datetime:
    """Return the opening time after which an open ticket still holds requests (``complaint_hold_days`` ago)."""
    return run.now - timedelta(days=run.settings["complaint_hold_days"])


def _recently_resolved(run: FlowRun) -> Spans:
    """Return, per customer, the (opened, resolved) times of their tickets resolved within the age limit."""
    spans: Spans = defaultdict(list)
    query = select(Ticket.customer_id, Ticket.opened_at, Ticket.resolved_at).where(
        Ticket.store_id == run.store.id, Ticket.status == "resolved", Ticket.customer_id.is_not(None),
        Ticket.resolved_at > run.now - timedelta(days=MAX_LATE_DAYS))
    for customer_id, opened_at, resolved_at in run.session.execute(query):
        spans[customer_id].append((opened_at, resolved_at))
    return spans


def was_held(spans: list[tuple[datetime, datetime]], due_at: datetime) -> bool:
    """Say whether a ticket held a message due at ``due_at``: open at some moment before it aged out, resolved since.

    Such a message is due again from the resolution, for another ``MAX_LATE_DAYS`` (DESIGN §4: "goes out once the
    ticket is resolved"), so a complaint never costs the customer the review request others got.
    """
    aged_out = due_at + timedelta(days=MAX_LATE_DAYS)
    return any(opened_at <= aged_out and resolved_at >= due_at for opened_at, resolved_at in spans)


def _columns(run: FlowRun, *extra: Any) -> Any:
    return select(Order.id, Order.customer_id, Order.name, Order.cancelled_at, Order.refunded, Order.returned,
                  Customer.email, Customer.locale, _open_ticket(Order.customer_id, hold_start(run)).label("waiting"),
                  *extra)


def due_requests(run: FlowRun) -> Rows:
    """Return outbox rows for orders whose first request is due and not yet written (held ones after resolution)."""
    now = run.now
    delay = timedelta(days=run.settings["delay_days"])
    fallback = timedelta(days=run.settings["fallback_after_fulfilment_days"])
    late = timedelta(days=MAX_LATE_DAYS)
    already = exists().where(Message.order_id == Order.id, Message.flow == NAME, Message.step == "main")
    since = left_since(history_cutoff(run))
    query = (
        _columns(run)
        .join(Customer, Customer.id == Order.customer_id, isouter=True)
        .where(Order.store_id == run.store.id,
               or_(and_(Order.delivered_at <= now - delay, Order.delivered_at > now - delay - late),
                   and_(Order.delivered_at.is_(None), Order.fulfilled_at <= now - fallback,
                        Order.fulfilled_at > now - fallback - late)),
               ~already, *since)
        .order_by(Order.id))
    rows = [tuple(r) for r in run.session.execute(query)]
    spans = _recently_resolved(run)
    if spans:
        seen = {r[0] for r in rows}
        earliest = min(opened for held in spans.values() for opened, _ in held) - late
        for customers in chunked(sorted(spans), IN_CHUNK):
            held = (
                _columns(run, Order.delivered_at, Order.fulfilled_at)
                .join(Customer, Customer.id == Order.customer_id, isouter=True)
                .where(Order.store_id == run.store.id, Order.customer_id.in_(customers),
                       or_(and_(Order.delivered_at <= now - delay, Order.delivered_at >= earliest - delay),
                           and_(Order.delivered_at.is_(None), Order.fulfilled_at <= now - fallback,
                                Order.fulfilled_at >= earliest - fallback)),
                       ~already, *since))
            for *row, delivered_at, fulfilled_at in run.session.execute(held):
                due_at = delivered_at + delay if delivered_at is not None else fulfilled_at + fallback
                if row[0] not in seen and was_held(spans[row[1]], due_at):
                    rows.append(tuple(row))
        rows.sort(key=lambda r: r[0])
    return _rows(run, rows, "main")


def due_reminders(run: FlowRun) -> Rows:
    """Return reminder rows for sent requests older than the reminder delay with no review since."""
    now, store = run.now, run.store
    delay = timedelta(days=run.settings["reminder_delay_days"])
    late = timedelta(days=MAX_LATE_DAYS)
    main = aliased(Message)
    reminded = exists().where(Message.order_id == main.order_id, Message.flow == NAME, Message.step == "reminder")
    reviewed = exists().where(Review.store_id == store.id, Review.created_at_remote >= main.sent_at,
                              or_(Review.order_id == main.order_id, Review.customer_id == main.customer_id))
    since = left_since(history_cutoff(run))

    def sent(*conditions: Any) -> Any:
        return (_columns(run, main.sent_at)
                .select_from(main)
                .join(Order, Order.id == main.order_id)
                .join(Customer, Customer.id == Order.customer_id, isouter=True)
                .where(main.store_id == store.id, main.flow == NAME, main.step == "main", main.status == "sent",
                       main.sent_at <= now - delay, ~reminded, ~reviewed, *since, *conditions))

    rows = [tuple(r)[:-1] for r in run.session.execute(sent(main.sent_at > now - delay - late))]
    spans = _recently_resolved(run)
    if spans:
        seen = {r[0] for r in rows}
        earliest = min(opened for held in spans.values() for opened, _ in held) - late
        for customers in chunked(sorted(spans), IN_CHUNK):
            for *row, sent_at in run.session.execute(sent(main.customer_id.in_(customers),
                                                          main.sent_at >= earliest - delay)):
                if row[0] not in seen and was_held(spans[row[1]], sent_at + delay):
                    rows.append(tuple(row))
        rows.sort(key=lambda r: r[0])
    return _rows(run, rows, "reminder")


def _rows(run: FlowRun, results: Iterable[tuple[Any, ...]], step: str) -> Rows:
    store = run.store
    rows = []
    for order_id, customer_id, name, cancelled_at, refunded, returned, email, locale, waiting in results:
        reason = order_skip_reason(cancelled_at, refunded, returned, email, store.protected_data_access)
        if reason is None and waiting:
            continue  # open complaint: ask once it is resolved (the next run after resolution)
        extra: dict[str, Any] = {"status": "skipped", "skip_reason": reason} if reason else {}
        rows.append(message_row(store_id=store.id, flow=NAME, step=step, key_parts=(f"order={order_id}",),
                                scheduled_for=run.now, customer_id=customer_id, order_id=order_id, locale=locale,
                                to_address=email if store.protected_data_access else None,
                                payload={"order_name": name}, **extra))
    return rows


FLOW = Flow(
    name=NAME,
    title="Review requests",
    about="Ask every customer for a review after delivery, with one reminder.",
    flow_class="review_request",
    platforms=("shopify",),
    trigger="due query: orders delivered delay_days ago (fulfilled, when the carrier gives no delivery date)",
    audience=("every customer of a delivered order (never filtered by score or sentiment)",
              "contact details available to the app"),
    timing="delay_days after delivery; the reminder reminder_delay_days after the request was sent",
    steps=(
        Step("main", due_requests, "the review request", template="main", counter="requests",
             skipped_counter="skipped"),
        Step("reminder", due_reminders, "one reminder when no review arrived", template="reminder",
             counter="reminders", skipped_counter="skipped", when="reminder_enabled"),
    ),
    exits=(
        Exit("reviewed", "a review of the order or by the customer arrived since the request: no reminder"),
        Exit(reasons.ORDER_CANCELLED, "the order was cancelled"),
        Exit(reasons.ORDER_REFUNDED, "the order was refunded"),
        Exit(reasons.ORDER_RETURNED, "the order was returned"),
        Exit("unsubscribed", "the address is on the suppression list (checked at send time)"),
        Exit("open_complaint", "waits while the customer has an open complaint ticket; asked once it is resolved, "
                               "however late (the hold does not count against the age limit), or once the ticket "
                               "has been open complaint_hold_days, resolved or not (no review gating; delivery "
                               "problems hold until resolved)"),
    ),
    idempotency_key="<store>:review_request:order=<order id>:step=<main|reminder>",
    settings=flow_schemas.REVIEW_REQUEST,
    counts=("requests", "reminders", "skipped"),
)

