"""Cancellation follow-up: why did a customer cancel, and "your order did not go through" after a declined payment.

Shopify says why an order was cancelled (``Order.cancelReason``,
https://shopify.dev/docs/api/admin-graphql/2025-01/enums/OrderCancelReason). Only two reasons get an email:

- ``CUSTOMER``: the customer cancelled. One question with one-click answers (found it cheaper, ordered by mistake,
  delivery too slow, changed my mind, other + comment) on a signed page, and an offer of help. The answer is
  stored (``cancellation_answer``), charted in the admin, and the answers in ``ticket_reasons`` (default: delivery
  too slow) open a complaint ticket. Feedback class: no offer inside.
- ``DECLINED``: the payment was declined. One transactional "your order did not go through" with a link back to
  the store.

Fraud, inventory, staff and other cancellations get nothing (no row is written). Amazon buyers get nothing either
(channel law): the flow runs for Shopify stores only; Amazon cancellations show in the merchant's analytics.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from plugin import flow_schemas, flow_settings
from plugin.config import Config
from plugin.flows.audience import contact_reason, history_cutoff
from plugin.flows.base import Exit, Flow, FlowRun, Rows, Step
from plugin.messaging.outbox import message_row
from plugin.models import CANCELLATION_ANSWERS, CancellationAnswer, Customer, Message, Order
from plugin.tickets import open_ticket

NAME = "cancellation"
# A cancellation noticed later than this (a backfill, a late sync) is not written to about.
MAX_LATE = timedelta(days=3)
# The step each cancel reason gets; every other reason (FRAUD, INVENTORY, STAFF, OTHER) gets none.
STEP_OF_REASON = {"CUSTOMER": "ask", "DECLINED": "declined"}
TICKET_SEVERITY = 3


def _due(run: FlowRun, step: str, cancel_reason: str) -> Rows:
    """Return a row per order cancelled for ``cancel_reason`` ``delay_hours`` ago that has none for the step."""
    store, now = run.store, run.now
    ready = now - timedelta(hours=run.settings["delay_hours"])
    already = exists().where(Message.order_id == Order.id, Message.flow == NAME, Message.step == step)
    cutoff = history_cutoff(run)
    query = (
        select(Order.id, Order.customer_id, Order.name, Customer.email, Customer.locale)
        .join(Customer, Customer.id == Order.customer_id)
        .where(Order.store_id == store.id, Order.cancelled_at <= ready, Order.cancelled_at > ready - MAX_LATE,
               Order.cancel_reason == cancel_reason, ~already,
               *((Order.cancelled_at >= cutoff,) if cutoff else ()))
        .order_by(Order.id))
    rows = []
    for order_id, customer_id, name, email, locale in run.session.execute(query):
        reason = contact_reason(email, store.protected_data_access)
        extra: dict[str, Any] = {"status": "skipped", "skip_reason": reason} if reason else {}
        rows.append(message_row(store_id=store.id, flow=NAME, step=step, key_parts=(f"order={order_id}",),
                                scheduled_for=now, customer_id=customer_id, order_id=order_id, locale=locale,
                                to_address=email if store.protected_data_access else None,
                                payload={"order_name": name, "cancel_reason": cancel_reason}, **extra))
    return rows


def due_questions(run: FlowRun) -> Rows:
    """Return the "why did you cancel?" rows for orders the customer cancelled."""
    return _due(run, "ask", "CUSTOMER")


def due_declined(run: FlowRun) -> Rows:
    """Return the "your order did not go through" rows for orders cancelled after a declined payment."""
    return _due(run, "declined", "DECLINED")


def record_answer(session: Session, config: Config, message_id: int, reason: str, comment: str | None,
                  now: datetime) -> CancellationAnswer:
    """Store the customer's reason for cancelling (answering again updates it); some reasons open a ticket (once).

    Called by the signed public page; ``reason`` is one of ``CANCELLATION_ANSWERS``.
    """
    message = session.get(Message, message_id)
    if message is None or message.flow != NAME or message.step != "ask":
        raise LookupError(f"message {message_id} is not a cancellation question")
    if reason not in CANCELLATION_ANSWERS:
        raise ValueError(f"unknown cancellation reason {reason!r} (known: {', '.join(CANCELLATION_ANSWERS)})")
    customer = session.get(Customer, message.customer_id) if message.customer_id else None
    if customer is None or customer.redacted_at is not None:
        # customers/redact erased them: a link still in their inbox must not store their words again.
        raise LookupError(f"message {message_id}: the customer was redacted")
    comment = (comment or "").strip()[:5000] or None
    answer = session.scalar(select(CancellationAnswer).where(CancellationAnswer.store_id == message.store_id,
                                                             CancellationAnswer.order_id == message.order_id))
    if answer is None:
        answer = CancellationAnswer(store_id=message.store_id, order_id=message.order_id,
                                    customer_id=message.customer_id, message_id=message.id, reason=reason,
                                    answered_at=now)
        session.add(answer)
    answer.reason, answer.answered_at = reason, now
    if comment is not None:
        answer.comment = comment
    session.flush()
    settings = flow_settings.effective(session, config, message.store_id, NAME)
    opening = set(settings.get("ticket_reasons") or ())
    if reason in opening and answer.ticket_id is None:
        order_name = (message.payload or {}).get("order_name") or ""
        subject = f"Cancelled {order_name}: {reason.replace('_', ' ')}"
        if answer.comment:
            subject += f": {answer.comment[:80]}"
        ticket = open_ticket(session, config, store_id=message.store_id, source="cancellation",
                             severity=TICKET_SEVERITY, subject=subject, now=now, customer_id=message.customer_id,
                             order_id=message.order_id)
        answer.ticket_id = ticket.id
        session.flush()
    return answer


FLOW = Flow(
    name=NAME,
    title="Cancellation follow-up",
    about="Customer cancellations: ask why (one click) and offer help; declined payments: the order did not go "
          "through. Never after fraud, inventory or staff cancellations.",
    flow_class="feedback",
    platforms=("shopify",),
    trigger="due query: orders cancelled delay_hours ago, by cancel reason",
    audience=("customers who cancelled (reason CUSTOMER)", "customers whose payment was declined (DECLINED)",
              "never: FRAUD, INVENTORY, STAFF, OTHER; never Amazon buyers"),
    timing=f"delay_hours after the cancellation; not sent when more than {MAX_LATE.days} days late",
    steps=(
        Step("ask", due_questions, "why did you cancel? one-click reasons and an offer of help", template="ask",
             counter="questions", skipped_counter="skipped", when="ask_enabled"),
        # The notice is transactional (no consent, no offer), inside a feedback flow.
        Step("declined", due_declined, "your order did not go through, with a link back to the store",
             template="declined", counter="declined", skipped_counter="skipped", when="declined_enabled",
             step_class="transactional"),
    ),
    exits=(
        Exit("other_cancel_reason", "fraud, inventory, staff and other cancellations: no row is written"),
        Exit("unsubscribed", "the address is on the suppression list (checked at send time)"),
    ),
    idempotency_key="<store>:cancellation:order=<order id>:step=<ask|declined>",
    settings=flow_schemas.CANCELLATION,
    counts=("questions", "declined", "skipped"),
)
