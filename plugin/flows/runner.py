"""The one flow runner: the preamble every flow shares, then its exits and steps, written through the outbox.

For a store it checks, in order: the store exists, is installed and is on one of the flow's platforms (else
``{"inactive": 1}``); the flow is enabled (else ``{"disabled": 1}``). It then loads the flow's settings once,
typed by its schema, applies the exits that cancel planned rows, runs each step's due query, holds out the
flow's holdout share (rows ``skipped`` with reason ``holdout``) and inserts the rows (insert-if-absent).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from plugin import flow_settings
from plugin.config import Config
from plugin.context import JobContext
from plugin.flows import get_flow
from plugin.flows.base import Flow, FlowRun, Rows, Step
from plugin.flows.delivery_update import link_notices
from plugin.flows.holdout import is_held_out
from plugin.messaging import outbox, reasons
from plugin.models import Store


def refusal(flow: Flow, store: Store | None, settings: Mapping[str, Any]) -> dict[str, int]:
    """Return the counts saying why the flow may not run for the store, or {} when it may."""
    if store is None or store.platform not in flow.platforms or not store.is_sending_allowed:
        return {"inactive": 1}
    if not settings["enabled"]:
        return {"disabled": 1}
    return {}


def load_settings(session: Session, config: Config, flow: Flow, store_id: int) -> Mapping[str, Any]:
    """Return the flow's effective settings for the store, typed by its schema."""
    return flow.settings.load(flow_settings.effective(session, config, store_id, flow.settings_section))


def hold_out(flow: Flow, run: FlowRun, rows: Rows) -> Rows:
    """Mark the rows of held-out customers ``skipped`` with reason ``holdout`` (customer-facing flows only)."""
    percent = float(run.settings.get("holdout_percent", 0) or 0)
    if not flow.customer_facing or not flow.rule.holdout or percent <= 0:
        return rows
    for row in rows:
        if row["status"] == "scheduled" and row["customer_id"] is not None and \
                is_held_out(run.store.id, row["customer_id"], flow.name, percent):
            row["status"], row["skip_reason"] = "skipped", reasons.HOLDOUT
    return rows


# Payload keys that make a message an offer (DESIGN §4: only marketing messages may hold one).
OFFER_KEYS = frozenset({"discount_code", "discount_percent", "discount_amount", "offer"})


def enforce_class(flow: Flow, step: Step, rows: Rows) -> Rows:
    """Apply the class of the step (or of its flow) to every row: marketing rows need consent, others hold no offer.

    A due query that forgets its class cannot send marketing without consent, nor an offer in a service,
    transactional, feedback or review-request message (DESIGN §4's table).
    """
    flow_class = step.step_class or flow.flow_class
    marketing = flow_class == "marketing"
    for row in rows:
        if marketing:
            row["marketing"] = True
        elif row.get("marketing") and not step.offer_makes_marketing:
            raise ValueError(f"flow {flow.name} step {step.name} is {flow_class}: it may not write marketing rows")
        elif OFFER_KEYS & set(row.get("payload") or {}):
            raise ValueError(f"flow {flow.name} step {step.name} is {flow_class}: its messages may hold no offer")
    return rows


def run_steps(flow: Flow, run: FlowRun) -> dict[str, int]:
    """Apply the flow's exits, then write each step's due rows; return the counts the flow declares."""
    run.counts = {name: 0 for name in flow.counts}
    for exit_ in flow.exits:
        if exit_.apply is not None:
            cancelled = exit_.apply(run)
            if exit_.counter:
                run.counts[exit_.counter] += cancelled
    for step in flow.steps:
        if step.when and not run.settings[step.when]:
            continue
        rows = hold_out(flow, run, enforce_class(flow, step, step.due(run)))
        scheduled = [r for r in rows if r["status"] == "scheduled"]
        others = [r for r in rows if r["status"] != "scheduled"]
        new_scheduled = len(outbox.schedule(run.session, scheduled, run.now))
        new_others = len(outbox.schedule(run.session, others, run.now))
        if step.counter:
            run.counts[step.counter] += new_scheduled
            run.counts[step.skipped_counter or step.counter] += new_others
        if step.not_sent_counter:
            run.counts[step.not_sent_counter] += len(others)
    return run.counts


def run_for_store(session: Session, config: Config, flow: Flow, store_id: int, now: datetime) -> dict[str, int]:
    """Run a flow for one store inside the caller's transaction; return its counts."""
    if not flow.runs_here:
        raise ValueError(f"flow {flow.name} is run by its own job, not by the flow runner")
    settings = load_settings(session, config, flow, store_id)
    store = session.get(Store, store_id)
    refused = refusal(flow, store, settings)
    if refused:
        return refused
    return run_steps(flow, FlowRun(session=session, config=config, store=store, settings=settings, now=now))


def run(ctx: JobContext, store_id: int, flow: str) -> dict[str, int]:
    """Job: run the named flow for one store in its own transaction."""
    declared = get_flow(flow)
    with ctx.database.session() as session:
        return run_for_store(session, ctx.config, declared, store_id, ctx.clock.now())


def run_review_request(ctx: JobContext, store_id: int) -> dict[str, int]:
    """Job: write the review requests and reminders due now for one store."""
    return run(ctx, store_id, "review_request")


def run_survey(ctx: JobContext, store_id: int) -> dict[str, int]:
    """Job: write due survey emails and post-resolution follow-ups for one store."""
    return run(ctx, store_id, "survey")


def run_replenishment(ctx: JobContext, store_id: int) -> dict[str, int]:
    """Job: cancel reminders made moot by a re-order, then plan the reminders within the horizon."""
    return run(ctx, store_id, "replenishment")


def run_review_reply(ctx: JobContext, store_id: int) -> dict[str, int]:
    """Job: answer new Judge.me reviews of one store (auto-reply, or draft + complaint ticket)."""
    return run(ctx, store_id, "review_reply")


def run_winback(ctx: JobContext, store_id: int) -> dict[str, int]:
    """Job: cancel win-backs of customers who ordered again, then write due win-backs and reminders."""
    return run(ctx, store_id, "winback")


def run_birthday(ctx: JobContext, store_id: int) -> dict[str, int]:
    """Job: write the birthday emails whose local moment has come."""
    return run(ctx, store_id, "birthday")


def run_shopping_calendar(ctx: JobContext, store_id: int) -> dict[str, int]:
    """Job: write the shopping-calendar event emails whose local moment has come."""
    return run(ctx, store_id, "shopping_calendar")


def run_ticket_alert(ctx: JobContext, store_id: int) -> dict[str, int]:
    """Job: email the merchant once per open ticket whose SLA has passed."""
    return run(ctx, store_id, "ticket_alert")


def run_delivery_update(ctx: JobContext, store_id: int) -> dict[str, int]:
    """Job: write the delivery updates of new parcel milestones for one store, and link each told milestone to
    its message."""
    with ctx.database.session() as session:
        counts = run_for_store(session, ctx.config, get_flow("delivery_update"), store_id, ctx.clock.now())
        link_notices(session, store_id)
        return counts


def run_first_order(ctx: JobContext, store_id: int) -> dict[str, int]:
    """Job: write the first-order welcomes due now for one store."""
    return run(ctx, store_id, "first_order")


def run_cancellation(ctx: JobContext, store_id: int) -> dict[str, int]:
    """Job: write the cancellation questions and declined-payment notices due now for one store."""
    return run(ctx, store_id, "cancellation")


def run_usage_guide(ctx: JobContext, store_id: int) -> dict[str, int]:
    """Job: write the usage guides due after delivery for one store."""
    return run(ctx, store_id, "usage_guide")


def run_ticket_followup(ctx: JobContext, store_id: int) -> dict[str, int]:
    """Job: write the follow-ups and come-back offers due after resolved tickets of one store."""
    return run(ctx, store_id, "ticket_followup")
