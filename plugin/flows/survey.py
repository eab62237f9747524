"""Feedback surveys (NPS or CSAT): the survey email after delivery, answers and detractor tickets.

Answers arrive through the hosted survey page (plugin.public), which calls ``record_answer``. A detractor
(NPS 0-6, CSAT 1-2) opens a complaint ticket; once it is resolved the complaint follow-through
(plugin.flows.ticket_followup) sends "what we changed" and the come-back offer, as for every ticket. Surveys are
Shopify-only (Amazon forbids custom messages). After a reinstall no order fulfilled or delivered before it is
surveyed (``plugin.flows.audience.history_cutoff``).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session

from plugin import flow_schemas
from plugin.config import Config
from plugin.flows.audience import history_cutoff, left_since, order_skip_reason
from plugin.flows.base import Exit, Flow, FlowRun, Rows, Step
from plugin.flows.review_request import Spans, was_held
from plugin.messaging import reasons
from plugin.messaging.outbox import message_row
from plugin.models import Customer, Message, Order, SurveyResponse, Ticket
from plugin.sync.sql import IN_CHUNK, chunked
from plugin.tickets import open_ticket, severity_for

NAME = "survey"
MAX_LATE_DAYS = 30
SCALES = {"nps": (0, 10), "csat": (1, 5)}


def is_detractor(kind: str, score: int) -> bool:
    """Say whether an answer is a detractor: NPS 0-6 or CSAT 1-2."""
    return score <= 6 if kind == "nps" else score <= 2


def _delivery_problem(customer_id: Any) -> Any:
    return exists().where(Ticket.customer_id == customer_id, Ticket.status == "open", Ticket.source == "delivery")


def _resolved_delivery_problems(run: FlowRun) -> Spans:
    """Return, per customer, the (opened, resolved) times of delivery tickets resolved within the age limit."""
    spans: Spans = defaultdict(list)
    query = select(Ticket.customer_id, Ticket.opened_at, Ticket.resolved_at).where(
        Ticket.store_id == run.store.id, Ticket.source == "delivery", Ticket.status == "resolved",
        Ticket.customer_id.is_not(None), Ticket.resolved_at > run.now - timedelta(days=MAX_LATE_DAYS))
    for customer_id, opened_at, resolved_at in run.session.execute(query):
        spans[customer_id].append((opened_at, resolved_at))
    return spans


def due_surveys(run: FlowRun) -> Rows:
    """Return survey rows for orders delivered ``delay_days`` ago (fulfilled, when no delivery date).

    While the customer has an open delivery problem (plugin.delivery_stalls) the survey waits, as a review request
    waits for a complaint; once it is resolved the survey goes out whatever its age (``was_held``).
    """
    store, now = run.store, run.now
    delay = timedelta(days=run.settings["delay_days"])
    late = timedelta(days=MAX_LATE_DAYS)
    kind = run.settings["kind"]
    already = exists().where(Message.order_id == Order.id, Message.flow == NAME, Message.step == "main")
    since = left_since(history_cutoff(run))

    def surveys(*extra: Any) -> Any:
        return (select(Order.id, Order.customer_id, Order.name, Order.cancelled_at, Order.refunded, Order.returned,
                       Customer.email, Customer.locale, _delivery_problem(Order.customer_id).label("waiting"), *extra)
                .join(Customer, Customer.id == Order.customer_id, isouter=True))

    query = (surveys()
             .where(Order.store_id == store.id,
                    or_(and_(Order.delivered_at <= now - delay, Order.delivered_at > now - delay - late),
                        and_(Order.delivered_at.is_(None), Order.fulfilled_at <= now - delay,
                             Order.fulfilled_at > now - delay - late)),
                    ~already, *since)
             .order_by(Order.id))
    results = [tuple(r) for r in run.session.execute(query)]
    spans = _resolved_delivery_problems(run)
    if spans:
        seen = {r[0] for r in results}
        earliest = min(opened for held in spans.values() for opened, _ in held) - late - delay
        for customers in chunked(sorted(spans), IN_CHUNK):
            held = surveys(Order.delivered_at, Order.fulfilled_at).where(
                Order.store_id == store.id, Order.customer_id.in_(customers),
                or_(and_(Order.delivered_at <= now - delay, Order.delivered_at >= earliest),
                    and_(Order.delivered_at.is_(None), Order.fulfilled_at <= now - delay,
                         Order.fulfilled_at >= earliest)),
                ~already, *since)
            for *row, delivered_at, fulfilled_at in run.session.execute(held):
                due_at = (delivered_at or fulfilled_at) + delay
                if row[0] not in seen and was_held(spans[row[1]], due_at):
                    results.append(tuple(row))
        results.sort(key=lambda r: r[0])
    rows = []
    for order_id, customer_id, name, cancelled_at, refunded, returned, email, locale, waiting in results:
        reason = order_skip_reason(cancelled_at, refunded, returned, email, store.protected_data_access)
        if reason is None and waiting:
            continue  # open delivery problem: survey once it is resolved
        extra: dict[str, Any] = {"status": "skipped", "skip_reason": reason} if reason else {}
        rows.append(message_row(store_id=store.id, flow=NAME, step="main", key_parts=(f"order={order_id}",),
                                scheduled_for=now, customer_id=customer_id, order_id=order_id, locale=locale,
                                to_address=email if store.protected_data_access else None,
                                payload={"kind": kind, "order_name": name}, **extra))
    return rows


def record_answer(session: Session, message_id: int, score: int, comment: str | None, now: datetime,
                  config: Config) -> SurveyResponse:
    """Store a survey answer for the survey email ``message_id``; a detractor opens a ticket (once).

    Called by the hosted survey page; answering again (e.g. adding a comment) updates the same row.
    """
    message = session.get(Message, message_id)
    if message is None or message.flow != NAME or message.step != "main":
        raise LookupError(f"message {message_id} is not a survey")
    kind = str((message.payload or {}).get("kind", "nps"))
    low, high = SCALES[kind]
    if isinstance(score, bool) or not isinstance(score, int) or not low <= score <= high:
        raise ValueError(f"a {kind.upper()} score must be an integer from {low} to {high}")
    comment = (comment or "").strip()[:5000] or None
    response = session.scalar(select(SurveyResponse).where(
        SurveyResponse.store_id == message.store_id, SurveyResponse.order_id == message.order_id,
        SurveyResponse.kind == kind))
    if response is None:
        response = SurveyResponse(store_id=message.store_id, order_id=message.order_id,
                                  customer_id=message.customer_id, message_id=message.id, kind=kind)
        session.add(response)
    response.score, response.answered_at = score, now
    if comment is not None:
        response.comment = comment
    session.flush()
    if is_detractor(kind, score) and response.ticket_id is None:
        ticket = open_ticket(session, config, store_id=message.store_id, source="survey",
                             severity=severity_for(response.comment),
                             subject=f"{kind.upper()} {score}: {(response.comment or '')[:80]}".rstrip(": "),
                             now=now, customer_id=message.customer_id, order_id=message.order_id)
        response.ticket_id = ticket.id
        session.flush()
    return response


FLOW = Flow(
    name=NAME,
    title="Feedback survey",
    about="NPS or CSAT after delivery; detractors open a ticket (followed through like every ticket).",
    flow_class="feedback",
    platforms=("shopify",),
    trigger="due query: orders delivered delay_days ago",
    audience=("every customer of a delivered order", "contact details available to the app"),
    timing="delay_days after delivery (a detractor's ticket is followed through by ticket_followup)",
    steps=(
        Step("main", due_surveys, "the one-click NPS or CSAT survey", template="main", counter="surveys",
             skipped_counter="skipped"),
    ),
    exits=(
        Exit(reasons.ORDER_CANCELLED, "the order was cancelled"),
        Exit(reasons.ORDER_REFUNDED, "the order was refunded"),
        Exit(reasons.ORDER_RETURNED, "the order was returned"),
        Exit("unsubscribed", "the address is on the suppression list (checked at send time)"),
        Exit("open_delivery_problem", "waits while the customer has an open delivery problem; surveyed once it is "
                                      "resolved, however late (the hold does not count against the age limit)"),
    ),
    idempotency_key="<store>:survey:order=<order id>:step=main",
    settings=flow_schemas.SURVEY,
    counts=("surveys", "skipped"),
)
