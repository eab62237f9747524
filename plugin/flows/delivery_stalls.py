"""Stalled and failed deliveries: detect (plugin.delivery_stalls), open tickets, tell the customer "we're on it".

A run for one store: the runner's preamble (installed, on the platform, enabled, settings typed), then detection
opens one ticket per new problem and resolves those whose cause went away (reading only the orders and parcels
that changed or whose next check came: plugin.delivery_stalls), then the ``notice`` step writes the customer's
"we're on it" email (one per order, transactional, in the customer's language; Shopify only, never to Amazon
buyers). The merchant's alert for each new ticket is the ticket_alert flow's ``opened`` step, which runs after
this one has written the customer's notice. Review requests and surveys wait while the ticket is open
(plugin.flows.review_request, plugin.flows.survey).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import exists, select

from plugin import delivery_stalls, flow_schemas
from plugin.context import JobContext
from plugin.flows.audience import contact_reason
from plugin.flows.base import Exit, Flow, FlowRun, Rows, Step
from plugin.messaging.outbox import message_row
from plugin.models import Customer, DeliveryProblem, Message, Order, Parcel, Store, Ticket

NAME = "delivery_stalls"
# Problems a run found are told about on that run; this bounds the look-back should a run have failed after.
NOTICE_WINDOW = timedelta(days=2)
FAILED_KINDS = frozenset({"lost", "failed", "attempted"})


def due_notices(run: FlowRun) -> Rows:
    """Return one "we're on it" row per order with a delivery problem found recently whose ticket is still open."""
    store, now = run.store, run.now
    if store.platform != "shopify":
        return []
    # Orders told already are left out here, not by the outbox's key: the hourly re-run then writes nothing.
    told = exists().where(Message.order_id == DeliveryProblem.order_id, Message.flow == NAME, Message.step == "notice")
    query = (select(DeliveryProblem.order_id, DeliveryProblem.problem, DeliveryProblem.ticket_id, Order.name,
                    Order.customer_id, Customer.email, Customer.locale, Parcel.tracking_company,
                    Parcel.tracking_number, Customer.redacted_at)
             .join(Order, Order.id == DeliveryProblem.order_id)
             .join(Ticket, Ticket.id == DeliveryProblem.ticket_id)
             .join(Customer, Customer.id == Order.customer_id, isouter=True)
             .join(Parcel, Parcel.id == DeliveryProblem.parcel_id, isouter=True)
             .where(DeliveryProblem.store_id == store.id, DeliveryProblem.detected_at >= now - NOTICE_WINDOW,
                    Ticket.status == "open", ~told)
             .order_by(DeliveryProblem.order_id, DeliveryProblem.id))
    rows, seen = [], set()
    for (order_id, problem, ticket_id, name, customer_id, email, locale, carrier, tracking,
         redacted_at) in run.session.execute(query):
        if redacted_at is not None:
            tracking = None  # back on the parcel after customers/redact (a fulfilment update), never in a message
        if order_id in seen:
            continue  # one notice per order, about its first problem
        seen.add(order_id)
        reason = contact_reason(email, store.protected_data_access)
        extra: dict[str, Any] = {"status": "skipped", "skip_reason": reason} if reason else {}
        rows.append(message_row(
            store_id=store.id, flow=NAME, step="notice", key_parts=(f"order={order_id}",), scheduled_for=now,
            customer_id=customer_id, order_id=order_id, ticket_id=ticket_id, locale=locale,
            to_address=email if store.protected_data_access else None,
            payload={"order_name": name, "problem": problem, "failed": problem in FAILED_KINDS,
                     "carrier": carrier or "", "tracking_number": tracking or ""}, **extra))
    return rows


def run_for_store(session: Any, config: Any, store_id: int, now: Any) -> dict[str, int]:
    """Detect the store's new delivery problems, open their tickets, then write the customer notices; counts."""
    from plugin.flows import runner  # the runner imports the flow catalogue, which imports this module

    settings = runner.load_settings(session, config, FLOW, store_id)
    store = session.get(Store, store_id)
    refused = runner.refusal(FLOW, store, settings)
    if refused:
        return refused
    outcome = delivery_stalls.detect(session, config, store, settings, now)
    flow_run = FlowRun(session=session, config=config, store=store, settings=settings, now=now)
    counts = runner.run_steps(FLOW, flow_run)
    counts["stalls"] = len(outcome.found)
    counts["tickets"] = len({f.ticket_id for f in outcome.found})
    if outcome.resolved:
        counts["resolved"] = len(outcome.resolved)
    return counts


def run(ctx: JobContext, store_id: int) -> dict[str, int]:
    """Job: detect stalled and failed deliveries of one store and act on them, in one transaction."""
    with ctx.database.session() as session:
        return run_for_store(session, ctx.config, store_id, ctx.clock.now())


FLOW = Flow(
    name=NAME,
    title="Delivery problems",
    about="Find stalled, late and failed deliveries; open a ticket, alert the merchant, tell the customer first.",
    flow_class="transactional",
    platforms=("shopify", "amazon"),
    trigger="scheduled detection: paid but unfulfilled, no carrier scan, presumed lost, past the estimate, "
            "attempted or failed delivery (Shopify); late seller-fulfilled shipments (Amazon)",
    audience=("Shopify customers whose order has a new delivery problem (never Amazon buyers)",
              "the merchant, through the ticket's alert"),
    timing="every hour; thresholds in business days of the store's calendar (its country's holidays, weekends)",
    steps=(Step("notice", due_notices, "\"we're on it\" to the customer, once per order", template="notice",
                counter="notices", skipped_counter="skipped", when="customer_notice_enabled"),),
    exits=(Exit("resolved", "the problem's ticket was resolved before the notice was written (by the merchant, or "
                            "automatically once the parcel was delivered, the order fulfilled, or a carrier event "
                            "moved it on)"),),
    idempotency_key="<store>:delivery_stalls:order=<order id>:step=notice",
    settings=flow_schemas.DELIVERY_STALLS,
    counts=("notices", "skipped"),
)
