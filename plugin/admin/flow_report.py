"""Flow lift report: per flow, customers who got it against those held out, in words a merchant can act on.

The figures come from ``plugin.flow_lift`` (its docstring defines the groups, the attribution window and the
intervals). Exposures are counted up to ``attribution_days`` before the count, so every customer's window is
complete; the period before that is chosen on the page (``PERIODS``). One store at a time: revenue is in
the store's currency and is never added across currencies.

The request never counts: the hourly ``overview_figures`` job (and the daily ``metrics_snapshot``) keeps the
sums per store and period (``plugin.store_figures.stored_lift``); the page works the figures out of them and
says "figures as of" the count, or "counting…" before the first one.

The admin speaks English today (no locale switch); every sentence of the report is written here, in one
place, so that a translation only has to add its own ``Words``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import request

from plugin import flow_lift, get_config, store_figures
from plugin.admin.blueprint import bp, ctx, done, page
from plugin.db import get_session

PERIODS = flow_lift.PERIODS
DEFAULT_PERIOD = 90


@dataclass(frozen=True)
class Words:
    """The report's sentences in one language (``str.format`` templates)."""

    more_orders: str = "Customers who got this flow ordered {value} more orders each (95 % interval {low} to {high})."
    fewer_orders: str = "Customers who got this flow ordered {value} fewer orders each (95 % interval {low} to {high})."
    more_revenue: str = "They spent {value} more each (95 % interval {low} to {high})."
    less_revenue: str = "They spent {value} less each (95 % interval {low} to {high})."
    both_sure: str = "Both intervals exclude zero: the difference is unlikely to be chance."
    orders_sure: str = ("The orders interval excludes zero (unlikely to be chance); the revenue interval includes "
                        "zero (could be chance).")
    revenue_sure: str = ("The revenue interval excludes zero (unlikely to be chance); the orders interval includes "
                         "zero (could be chance).")
    unsure: str = ("Both intervals include zero: the difference could be chance. Keep the holdout running to "
                   "learn more.")
    not_enough: str = ("Not enough data yet: each group needs at least {minimum} customers ({exposed} got the flow, "
                       "{held_out} held out).")
    no_holdout: str = ("No customer was held out in this period. Hold out a share of customers in the flow's "
                       "settings to measure what it earns.")
    none_exposed: str = "No customer got this flow in this period."


ENGLISH = Words()
BADGES = {"earns": ("success", "Earns more"), "costs": ("critical", "Costs orders"),
          "unsure": ("neutral", "Could be chance"), "not_enough": ("caution", "Not enough data"),
          "no_holdout": ("neutral", "No holdout"), "none": ("neutral", "Not sent")}


def _number(value: float) -> str:
    return f"{value:,.2f}"


def _money(value: float, currency: str) -> str:
    return f"{value:,.2f} {currency}"


def summary(lift: flow_lift.FlowLift, currency: str, words: Words = ENGLISH,
            minimum: int = flow_lift.MIN_CUSTOMERS) -> list[str]:
    """Return the plain sentences that tell a merchant what a flow's lift says (and how sure it is)."""
    if lift.exposed.customers == 0:
        return [words.none_exposed]
    if lift.held_out.customers == 0:
        return [words.no_holdout]
    orders, revenue = lift.orders_lift, lift.revenue_lift
    if orders is None or revenue is None:
        return [words.not_enough.format(minimum=minimum, exposed=lift.exposed.customers,
                                        held_out=lift.held_out.customers)]
    order_text = words.more_orders if orders.value >= 0 else words.fewer_orders
    revenue_text = words.more_revenue if revenue.value >= 0 else words.less_revenue
    return [
        order_text.format(value=_number(abs(orders.value)), low=_number(orders.low), high=_number(orders.high)),
        revenue_text.format(value=_money(abs(revenue.value), currency), low=_money(revenue.low, currency),
                            high=_money(revenue.high, currency)),
        {(True, True): words.both_sure, (True, False): words.orders_sure, (False, True): words.revenue_sure,
         (False, False): words.unsure}[(orders.excludes_zero, revenue.excludes_zero)],
    ]


def verdict(lift: flow_lift.FlowLift) -> str:
    """Return the badge of a flow: ``earns``, ``costs``, ``unsure``, ``not_enough``, ``no_holdout`` or ``none``."""
    if lift.exposed.customers == 0:
        return "none"
    if lift.held_out.customers == 0:
        return "no_holdout"
    if lift.orders_lift is None or lift.revenue_lift is None:
        return "not_enough"
    signs = {d.value > 0 for d in (lift.orders_lift, lift.revenue_lift) if d.excludes_zero}
    return {frozenset({True}): "earns", frozenset({False}): "costs"}.get(frozenset(signs), "unsure")


def _period() -> int:
    try:
        days = int(request.args.get("days", DEFAULT_PERIOD))
    except ValueError:
        return DEFAULT_PERIOD
    return days if days in PERIODS else DEFAULT_PERIOD


@bp.get("/flows/lift")
def flow_report() -> Any:
    """Show, per flow, orders and revenue per customer of exposed against held-out customers, and the lift."""
    store = ctx().single_store()
    if store is None:
        return done("admin.settings", "Connect a store first; flows run per store.")
    days = _period()
    attribution_days = int(get_config().section("analytics")["attribution_days"])
    figures = store_figures.stored_lift(get_session(), [store], days, attribution_days)
    lifts = figures.lifts if figures is not None else {}
    rows = [{"flow": name, "title": name.replace("_", " ").capitalize(), "lift": lift,
             "summary": summary(lift, store.currency), "verdict": verdict(lift)} for name, lift in lifts.items()]
    return page("admin/flow_report.html", store=store, rows=rows, badges=BADGES, figures=figures, days=days,
                periods=PERIODS, attribution_days=attribution_days, currency=store.currency,
                minimum=flow_lift.MIN_CUSTOMERS)
