"""Replenishment reminders: remind a customer ``lead_days`` before a consumable runs out (marketing).

The planner (who runs out when, incrementally kept current) is plugin.flows.replenishment_plan; this module
declares the flow around it. A reminder is planned as a ``scheduled`` row once its time falls within the
planning horizon; the dispatcher sends it when due through the send policy (marketing consent required).
"""

from __future__ import annotations

from plugin import flow_schemas
from plugin.flows.base import Exit, Flow, Step
from plugin.flows.replenishment_plan import FLOW as NAME
from plugin.flows.replenishment_plan import PLAN_AHEAD_DAYS, cancel_reordered_in, due_reminders
from plugin.messaging import reasons

FLOW = Flow(
    name=NAME,
    title="Replenishment reminders",
    about="Remind customers who agreed to marketing before a consumable runs out.",
    flow_class="marketing",
    platforms=("shopify",),
    trigger=f"due query: customer x consumable product whose reminder time falls within {PLAN_AHEAD_DAYS} days",
    audience=("customers who bought a consumable product", "marketing consent (checked at send time)",
              "no active subscription for the product"),
    timing="lead_days before the expected run-out (last purchase + cycle x quantity)",
    steps=(
        Step("main", due_reminders, "the reorder reminder with a one-click cart link", template="main",
             counter="planned", not_sent_counter="not_sent"),
    ),
    exits=(
        Exit(reasons.ALREADY_REORDERED, "the customer bought the product again: the planned reminder is cancelled",
             apply=cancel_reordered_in, counter="cancelled"),
        Exit(reasons.ACTIVE_SUBSCRIPTION, "the customer's latest purchase came in a subscription order"),
        Exit("no_consent", "no marketing consent (checked at send time)"),
        Exit(reasons.NO_POSTAL_ADDRESS, "the store has no postal address for the email (checked at send time)"),
        Exit("unsubscribed", "the address is on the suppression list (checked at send time)"),
    ),
    idempotency_key="<store>:replenishment:customer=<id>:product=<id>:order=<last order id>:step=main",
    settings=flow_schemas.REPLENISHMENT,
    counts=("cancelled", "planned", "not_sent"),
)
