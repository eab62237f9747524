"""Ticket alerts: one email to the merchant per open complaint ticket whose SLA has passed, and one per new
delivery-problem ticket when it opens (``opened``: plugin.delivery_stalls found a stalled or failed delivery).

The ticket domain (severity, SLA due time, resolution) is plugin.tickets; this flow only tells the merchant.
Its settings are the tickets' SLA targets (section ``tickets``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import exists, select, update

from plugin import flow_schemas
from plugin.flows.base import Flow, FlowRun, Rows, Step
from plugin.messaging import reasons
from plugin.messaging.outbox import message_row
from plugin.models import DeliveryProblem, Merchant, Message, Ticket
from plugin.tickets import SETTINGS_SECTION

NAME = "ticket_alert"
# A delivery ticket is announced on the first run after it opened; older ones (a failed run) still within this.
OPENED_WINDOW = timedelta(days=2)


def _merchant_address(run: FlowRun) -> str | None:
    merchant = run.session.get(Merchant, run.store.merchant_id)
    return (merchant.alert_email or merchant.sender_email) if merchant else None


def due_alerts(run: FlowRun) -> Rows:
    """Return one ticket_alert row per newly breached ticket, and stamp the tickets as alerted."""
    session, store, now = run.session, run.store, run.now
    merchant = session.get(Merchant, store.merchant_id)
    address = (merchant.alert_email or merchant.sender_email) if merchant else None
    due = session.execute(
        select(Ticket.id, Ticket.severity, Ticket.subject, Ticket.sla_due_at, Ticket.customer_id, Ticket.order_id)
        .where(Ticket.store_id == store.id, Ticket.status == "open", Ticket.sla_due_at < now,
               Ticket.sla_alerted_at.is_(None))).all()
    rows = []
    for ticket_id, severity, subject, due_at, customer_id, order_id in due:
        extra: dict[str, Any] = {} if address else {"status": "skipped", "skip_reason": reasons.NO_MERCHANT_ADDRESS}
        rows.append(message_row(
            store_id=store.id, flow=NAME, step="main", key_parts=(f"ticket={ticket_id}",),
            scheduled_for=now, ticket_id=ticket_id, order_id=order_id, to_address=address,
            locale=store.primary_locale,
            subject=f"SLA breached: ticket #{ticket_id} (severity {severity})",
            payload={"ticket_id": ticket_id, "severity": severity, "ticket_subject": subject,
                     "sla_due_at": due_at.isoformat(), "customer_id": customer_id}, **extra))
    if due:
        session.execute(update(Ticket).where(Ticket.id.in_([r[0] for r in due])).values(sla_alerted_at=now)
                        .execution_options(synchronize_session=False))
    return rows


def due_opened(run: FlowRun) -> Rows:
    """Return one alert per delivery-problem ticket opened recently and still open (once per ticket, by its key)."""
    session, store, now = run.session, run.store, run.now
    address = _merchant_address(run)
    alerted = exists().where(Message.ticket_id == Ticket.id, Message.flow == NAME, Message.step == "opened")
    from_stalls = exists().where(DeliveryProblem.ticket_id == Ticket.id)
    due = session.execute(
        select(Ticket.id, Ticket.severity, Ticket.subject, Ticket.sla_due_at, Ticket.customer_id, Ticket.order_id)
        .where(Ticket.store_id == store.id, Ticket.status == "open", Ticket.source == "delivery",
               Ticket.opened_at >= now - OPENED_WINDOW, from_stalls, ~alerted)
        .order_by(Ticket.id)).all()
    rows = []
    for ticket_id, severity, subject, due_at, customer_id, order_id in due:
        extra: dict[str, Any] = {} if address else {"status": "skipped", "skip_reason": reasons.NO_MERCHANT_ADDRESS}
        rows.append(message_row(
            store_id=store.id, flow=NAME, step="opened", key_parts=(f"ticket={ticket_id}",),
            scheduled_for=now, ticket_id=ticket_id, order_id=order_id, to_address=address,
            locale=store.primary_locale, subject=f"Delivery problem: ticket #{ticket_id} (severity {severity})",
            payload={"ticket_id": ticket_id, "severity": severity, "ticket_subject": subject,
                     "sla_due_at": due_at.isoformat(), "customer_id": customer_id}, **extra))
    return rows


def due_urgent(run: FlowRun) -> Rows:
    """Return one alert row per open severity-1 ticket (counterfeit or safety) that has none, at once."""
    session, store, now = run.session, run.store, run.now
    merchant = session.get(Merchant, store.merchant_id)
    address = (merchant.alert_email or merchant.sender_email) if merchant else None
    alerted = exists().where(Message.ticket_id == Ticket.id, Message.flow == NAME, Message.step == "urgent")
    due = session.execute(
        select(Ticket.id, Ticket.subject, Ticket.sla_due_at, Ticket.customer_id, Ticket.order_id)
        .where(Ticket.store_id == store.id, Ticket.status == "open", Ticket.severity == 1, ~alerted)
        .order_by(Ticket.id)).all()
    rows = []
    for ticket_id, subject, due_at, customer_id, order_id in due:
        extra: dict[str, Any] = {} if address else {"status": "skipped", "skip_reason": reasons.NO_MERCHANT_ADDRESS}
        rows.append(message_row(
            store_id=store.id, flow=NAME, step="urgent", key_parts=(f"ticket={ticket_id}",),
            scheduled_for=now, ticket_id=ticket_id, order_id=order_id, to_address=address,
            locale=store.primary_locale,
            payload={"ticket_id": ticket_id, "severity": 1, "ticket_subject": subject,
                     "sla_due_at": due_at.isoformat(), "customer_id": customer_id}, **extra))
    return rows


FLOW = Flow(
    name=NAME,
    title="Complaint tickets",
    about="Service-level targets for resolving complaints, by severity; the merchant is alerted on a breach.",
    flow_class="transactional",
    platforms=("shopify", "amazon"),
    trigger="due query: open tickets past their SLA due time, not alerted yet; open severity-1 tickets",
    audience=("the merchant (alert or sender address), not customers",),
    timing="severity 1 (counterfeit, safety): on the first run after the ticket opens (every 5 minutes); "
           "every severity: on the first run after the SLA passes; a delivery ticket: on the first run after it opens",
    steps=(Step("urgent", due_urgent, "severity-1 alert to the merchant, at once", template="urgent",
                counter="urgent"),
           Step("main", due_alerts, "SLA-breach email to the merchant", counter="alerts"),
           Step("opened", due_opened, "new delivery-problem ticket: one email to the merchant", template="opened",
                counter="opened")),
    exits=(),
    idempotency_key="<store>:ticket_alert:ticket=<ticket id>:step=<urgent|main|opened>",
    settings=flow_schemas.TICKETS,
    counts=("urgent", "alerts", "opened"),
    customer_facing=False,
    section=SETTINGS_SECTION,
)
