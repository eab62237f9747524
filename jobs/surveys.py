"""Feedback surveys (NPS or CSAT): the survey email after delivery, answers, detractor tickets, follow-ups.

Answers arrive through the hosted survey page (plugin.public), which calls ``record_answer``. A
detractor (NPS 0-6, CSAT 1-2) opens a complaint ticket; once it is resolved the customer gets a
"what we changed" follow-up (+7 days) and a come-back offer (+30 days, marketing: consent needed,
enforced by the send policy at dispatch). Surveys are Shopify-only (Amazon forbids custom messages).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session

from jobs.outbox_batch import message_row, open_flow, write_messages
from jobs.review_requests import NO_CONTACT
from jobs.tickets import open_ticket, severity_for
from plugin.config import Config
from plugin.context import JobContext
from plugin.models import Customer, Message, Order, Store, SurveyResponse, Ticket

FLOW = "survey"
MAX_LATE_DAYS = 30
SCALES = {"nps": (0, 10), "csat": (1, 5)}


def is_detractor(kind: str, score: int) -> bool:
    """Say whether an answer is a detractor: NPS 0-6 or CSAT 1-2."""
    return score <= 6 if kind == "nps" else score <= 2


def run(ctx: JobContext, store_id: int) -> dict[str, Any]:
    """Job: write due survey emails and post-resolution follow-ups for one store."""
    now = ctx.clock.now()
    with ctx.database.session() as session:
        gate = open_flow(session, ctx, store_id, FLOW)
        if isinstance(gate, dict):
            return gate
        store, settings = gate
        rows = due_surveys(session, store, settings, now)
        counts = {"surveys": len(write_messages(session, [r for r in rows if r["status"] == "scheduled"], now)),
                  "skipped": len(write_messages(session, [r for r in rows if r["status"] == "skipped"], now))}
        counts["followups"] = len(write_messages(session, due_followups(session, store, settings, now, "followup"),
                                                 now))
        counts["comebacks"] = len(write_messages(session, due_followups(session, store, settings, now, "comeback"),
                                                 now))
        return counts


def due_surveys(session: Session, store: Store, settings: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    """Return survey rows for orders delivered ``delay_days`` ago (fulfilled, when no delivery date)."""
    delay = timedelta(days=float(settings.get("delay_days", 10)))
    late = timedelta(days=MAX_LATE_DAYS)
    kind = str(settings.get("kind", "nps"))
    already = exists().where(Message.order_id == Order.id, Message.flow == FLOW, Message.step == "main")
    query = (
        select(Order.id, Order.customer_id, Order.name, Order.cancelled_at, Order.refunded, Order.returned,
               Customer.email, Customer.locale)
        .join(Customer, Customer.id == Order.customer_id, isouter=True)
        .where(Order.store_id == store.id,
               or_(and_(Order.delivered_at <= now - delay, Order.delivered_at > now - delay - late),
                   and_(Order.delivered_at.is_(None), Order.fulfilled_at <= now - delay,
                        Order.fulfilled_at > now - delay - late)),
               ~already)
        .order_by(Order.id))
    rows = []
    for order_id, customer_id, name, cancelled_at, refunded, returned, email, locale in session.execute(query):
        reason = ("order cancelled" if cancelled_at else "order refunded" if refunded else
                  "order returned" if returned else NO_CONTACT if not email or not store.protected_data_access
                  else None)
        extra: dict[str, Any] = {"status": "skipped", "skip_reason": reason} if reason else {}
        rows.append(message_row(store_id=store.id, flow=FLOW, step="main", key_parts=(f"order={order_id}",),
                                scheduled_for=now, customer_id=customer_id, order_id=order_id, locale=locale,
                                to_address=email if store.protected_data_access else None,
                                payload={"kind": kind, "order_name": name}, **extra))
    return rows


def due_followups(session: Session, store: Store, settings: dict[str, Any], now: datetime,
                  step: str) -> list[dict[str, Any]]:
    """Return follow-up ("followup") or come-back offer ("comeback") rows for resolved detractor tickets."""
    days = float(settings.get("followup_days" if step == "followup" else "comeback_days",
                              7 if step == "followup" else 30))
    wait, late = timedelta(days=days), timedelta(days=MAX_LATE_DAYS)
    already = exists().where(Message.ticket_id == Ticket.id, Message.flow == FLOW, Message.step == step)
    query = (
        select(Ticket.id, Ticket.resolution, SurveyResponse.order_id, SurveyResponse.customer_id, Customer.email,
               Customer.locale)
        .join(SurveyResponse, SurveyResponse.ticket_id == Ticket.id)
        .join(Customer, Customer.id == SurveyResponse.customer_id, isouter=True)
        .where(Ticket.store_id == store.id, Ticket.status == "resolved", Ticket.resolved_at <= now - wait,
               Ticket.resolved_at > now - wait - late, ~already)
        .order_by(Ticket.id))
    rows = []
    for ticket_id, resolution, order_id, customer_id, email, locale in session.execute(query):
        extra: dict[str, Any] = ({"status": "skipped", "skip_reason": NO_CONTACT}
                                 if not email or not store.protected_data_access else {})
        payload: dict[str, Any] = {"resolution": resolution}
        percent = settings.get("comeback_discount_percent", 10)
        if step == "comeback" and percent:
            # The dispatcher creates the single-use code in Shopify (discountCodeBasicCreate) when it sends.
            payload["discount_percent"] = percent
        rows.append(message_row(store_id=store.id, flow=FLOW, step=step, key_parts=(f"ticket={ticket_id}",),
                                scheduled_for=now, customer_id=customer_id, order_id=order_id, ticket_id=ticket_id,
                                locale=locale, marketing=(step == "comeback"),
                                to_address=email if store.protected_data_access else None, payload=payload,
                                **extra))
    return rows


def record_answer(session: Session, message_id: int, score: int, comment: str | None, now: datetime,
                  config: Config | None = None) -> SurveyResponse:
    """Store a survey answer for the survey email ``message_id``; a detractor opens a ticket (once).

    Called by the hosted survey page; answering again (e.g. adding a comment) updates the same row.
    ``config`` defaults to the current Flask app's configuration.
    """
    message = session.get(Message, message_id)
    if message is None or message.flow != FLOW or message.step != "main":
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
        if config is None:
            from plugin import get_config

            config = get_config()
        ticket = open_ticket(session, config, store_id=message.store_id, source="survey",
                             severity=severity_for(response.comment),
                             subject=f"{kind.upper()} {score}: {(response.comment or '')[:80]}".rstrip(": "),
                             now=now, customer_id=message.customer_id, order_id=message.order_id)
        response.ticket_id = ticket.id
        session.flush()
    return response
