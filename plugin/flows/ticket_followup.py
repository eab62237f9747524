"""Complaint follow-through: after any ticket is resolved, "what we changed" (+7 days) and a come-back offer (+30).

Every resolved ticket with a customer is followed through, whatever opened it: a review, a survey answer, seller
feedback, a delivery problem, a cancellation reason. The follow-up quotes what the merchant wrote when resolving
(``ticket.resolution``) and, for a severity-1 ticket, names the remedy they chose (refund, replacement,
compensation, VIP). It is service mail: no offer inside, no consent needed. The come-back offer is marketing:
consent required (the send policy checks it at dispatch) and a single-use code for that customer, created in
Shopify when the offer is sent (``discountCodeBasicCreate``, named from the message's key, so a retried dispatch
never creates a second one). Shopify only: Amazon buyers get no email (channel law).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import exists, select

from plugin import flow_schemas
from plugin.flows.audience import contact_reason
from plugin.flows.base import Exit, Flow, FlowRun, Rows, Step
from plugin.messaging.outbox import message_row
from plugin.models import Customer, Message, Ticket

NAME = "ticket_followup"
MAX_LATE_DAYS = 30


def _due_after_resolution(run: FlowRun, step: str, days: float) -> Rows:
    """Return follow-up ("followup") or come-back offer ("comeback") rows for tickets resolved ``days`` ago."""
    store, now = run.store, run.now
    wait, late = timedelta(days=days), timedelta(days=MAX_LATE_DAYS)
    already = exists().where(Message.ticket_id == Ticket.id, Message.flow == NAME, Message.step == step)
    query = (
        select(Ticket.id, Ticket.source, Ticket.severity, Ticket.resolution, Ticket.remedy, Ticket.order_id,
               Ticket.customer_id, Customer.email, Customer.locale)
        .join(Customer, Customer.id == Ticket.customer_id)
        .where(Ticket.store_id == store.id, Ticket.status == "resolved", Ticket.resolved_at <= now - wait,
               Ticket.resolved_at > now - wait - late, ~already)
        .order_by(Ticket.id))
    percent = run.settings["comeback_discount_percent"]
    rows = []
    for ticket_id, source, severity, resolution, remedy, order_id, customer_id, email, locale in \
            run.session.execute(query):
        reason = contact_reason(email, store.protected_data_access)
        extra: dict[str, Any] = {"status": "skipped", "skip_reason": reason} if reason else {}
        payload: dict[str, Any] = {"resolution": resolution, "remedy": remedy, "source": source,
                                   "severity": severity}
        if step == "comeback" and percent:
            # The dispatcher creates the single-use code in Shopify (discountCodeBasicCreate) when it sends.
            payload["discount_percent"] = percent
        rows.append(message_row(store_id=store.id, flow=NAME, step=step, key_parts=(f"ticket={ticket_id}",),
                                scheduled_for=now, customer_id=customer_id, order_id=order_id, ticket_id=ticket_id,
                                locale=locale, to_address=email if store.protected_data_access else None,
                                payload=payload, **extra))
    return rows


def due_followups(run: FlowRun) -> Rows:
    """Return the "what we changed" notes due ``followup_days`` after a ticket was resolved."""
    return _due_after_resolution(run, "followup", run.settings["followup_days"])


def due_comebacks(run: FlowRun) -> Rows:
    """Return the come-back offers due ``comeback_days`` after a ticket was resolved."""
    return _due_after_resolution(run, "comeback", run.settings["comeback_days"])


FLOW = Flow(
    name=NAME,
    title="Complaint follow-through",
    about="Every resolved ticket: what the store changed (+7 days), then an invitation to try again with a "
          "single-use code (+30 days, marketing consent required).",
    flow_class="service",
    platforms=("shopify",),
    trigger="due query: resolved tickets with a customer (any source: review, survey, seller feedback, delivery, "
            "cancellation)",
    audience=("customers whose complaint ticket was resolved", "come-back offer: customers who consented to "
              "marketing (checked at send time)"),
    timing="follow-up followup_days and come-back offer comeback_days after the ticket's resolution; not sent "
           f"when more than {MAX_LATE_DAYS} days late",
    steps=(
        Step("followup", due_followups, "\"what we changed\" (and the remedy of a severity-1 ticket)",
             template="followup", counter="followups", skipped_counter="skipped", when="followup_enabled"),
        # A marketing message inside a service flow: the row is marked marketing, so consent is required.
        Step("comeback", due_comebacks, "come-back offer with a single-use code (marketing: consent required)",
             template="comeback", counter="comebacks", skipped_counter="skipped", when="comeback_enabled",
             step_class="marketing"),
    ),
    exits=(
        Exit("no_consent", "come-back offer: the customer has not consented to marketing (checked at send time)"),
        Exit("unsubscribed", "the address is on the suppression list (checked at send time)"),
    ),
    idempotency_key="<store>:ticket_followup:ticket=<ticket id>:step=<followup|comeback>",
    settings=flow_schemas.TICKET_FOLLOWUP,
    counts=("followups", "comebacks", "skipped"),
)
