"""Proof of lift: orders and revenue per customer of a flow's exposed customers against its held-out ones.

Groups. The flow runner holds out a share of eligible customers, chosen deterministically from store,
customer and flow, and writes the message each of them would have had as a ``message`` row with
``status='skipped'`` and ``skip_reason='holdout'``. A customer's *exposure* is their first message of the
flow whose exposure time falls in the range, counting only sent rows and held-out rows (a skip for any
other reason says the customer was not eligible then, so it puts them in neither group):
- exposed: that first message was sent; its exposure time is ``sent_at``;
- held out: that first message was skipped with reason ``holdout``; its exposure time is ``scheduled_for``,
  the time the message would have gone.
Each customer counts once per flow (intent to treat): a later message of the other kind does not move them.

Outcome. The customer's orders in the attribution window after the exposure, following
``plugin.analytics`` (``flow_performance``): placed strictly after the exposure time and at most
``attribution_days`` (``[analytics] attribution_days``) after it, cancelled orders never count, and revenue
is the net order value, total price − refunded amount, in the store's currency. The window's end is compared
exactly (an interval on PostgreSQL, whole milliseconds on SQLite), so an order placed exactly
``attribution_days`` after the exposure counts.

Statistics (normal approximation; the groups are large when the figures are shown at all).
For a group of n customers with per-customer values x: mean x̄ = Σx / n, sample variance
s² = (Σx² − (Σx)² / n) / (n − 1), 95 % interval x̄ ± z·s/√n with z = Φ⁻¹(0.975) ≈ 1.96.
Lift = x̄_exposed − x̄_held_out with Welch's standard error √(s²_e / n_e + s²_h / n_h) and the 95 % interval
lift ± z·√(s²_e / n_e + s²_h / n_h) (Welch 1947, "The generalization of 'Student's' problem when several
different population variances are involved"; for large groups the t quantile is the normal one).
A group of fewer than ``min_customers`` (default 30) customers gets no interval and the flow no lift:
"not enough data" instead of an interval that would mislead.

Computed in the database in one grouped statement: the first exposure of each customer (a window function),
their orders in the window (a join on the ``(store_id, customer_id, created_at_remote)`` index), then count,
Σx and Σx² per flow and group; only those few sums come back to Python.

Stored. On a million customers that statement takes seconds, too long for an admin request, so the metrics
jobs count the sums per store for each period of ``PERIODS`` (``plugin.store_figures``) and the report works
the intervals and the lift out of them (``lifts_from_moments``): the same sums, the same formulas, the same
figures. Sums of stores add up (``add_moments``); revenue only within one currency.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import NormalDist
from typing import Any

from sqlalchemy import Float, Interval, and_, case, cast, func, literal, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from plugin.models import Message, Order

HOLDOUT = "holdout"
PERIODS = (30, 90, 180, 365)
MIN_CUSTOMERS = 30
Z95 = NormalDist().inv_cdf(0.975)
_MS_PER_DAY = 86_400_000


@dataclass(frozen=True)
class Moments:
    """Count, sum and sum of squares of one per-customer value over a group."""

    n: int
    total: float
    total_sq: float

    def mean(self) -> float | None:
        """Return the mean (None for an empty group)."""
        return self.total / self.n if self.n else None

    def variance(self) -> float | None:
        """Return the sample variance (None below two customers); never negative from rounding."""
        if self.n < 2:
            return None
        return max((self.total_sq - self.total * self.total / self.n) / (self.n - 1), 0.0)


# {flow: {"exposed"|"held_out": (orders moments, revenue moments)}}
MomentTable = dict[str, dict[str, tuple[Moments, Moments]]]
_GROUPS = ("exposed", "held_out")


@dataclass(frozen=True)
class Estimate:
    """A mean per customer with its 95 % interval (no interval when the group is too small)."""

    mean: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class Difference:
    """Exposed minus held out, with Welch's 95 % interval."""

    value: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        """Say whether the whole interval lies on one side of zero (the difference is unlikely to be chance)."""
        return self.low > 0 or self.high < 0


@dataclass(frozen=True)
class Group:
    """One group's customers and, per customer, orders and revenue in the attribution window."""

    customers: int
    orders: Estimate
    revenue: Estimate


@dataclass(frozen=True)
class FlowLift:
    """Exposed against held-out customers of one flow, and the lift when both groups are large enough."""

    flow: str
    exposed: Group
    held_out: Group
    orders_lift: Difference | None
    revenue_lift: Difference | None

    @property
    def enough_data(self) -> bool:
        """Say whether both groups are large enough for intervals and a lift."""
        return self.orders_lift is not None


def estimate(moments: Moments, min_customers: int = MIN_CUSTOMERS) -> Estimate:
    """Return the mean of a group with its normal-approximation 95 % interval (x̄ ± z·s/√n)."""
    mean = moments.mean()
    variance = moments.variance()
    if mean is None or variance is None or moments.n < min_customers:
        return Estimate(mean, None, None)
    half = Z95 * math.sqrt(variance / moments.n)
    return Estimate(mean, mean - half, mean + half)


def difference(exposed: Moments, held_out: Moments, min_customers: int = MIN_CUSTOMERS) -> Difference | None:
    """Return exposed − held out with Welch's 95 % interval, or None when a group has too few customers."""
    if min(exposed.n, held_out.n) < max(min_customers, 2):
        return None
    value = exposed.total / exposed.n - held_out.total / held_out.n
    se = math.sqrt(exposed.variance() / exposed.n + held_out.variance() / held_out.n)  # type: ignore[operator]
    return Difference(value, value - Z95 * se, value + Z95 * se)


def _within_days(later: Any, earlier: Any, days: int, dialect: str) -> ColumnElement[bool]:
    """Return ``later <= earlier + days``, exact at the boundary on either database."""
    if dialect == "sqlite":
        # julianday() carries whole milliseconds; rounding them back gives integers, compared without float error.
        return (func.round(func.julianday(later) * _MS_PER_DAY)
                - func.round(func.julianday(earlier) * _MS_PER_DAY)) <= days * _MS_PER_DAY
    return later <= earlier + literal(timedelta(days=days), Interval())


def moments_by_flow(session: Session, store_ids: Sequence[int], start: datetime, end: datetime,
                    attribution_days: int = 7,
                    flows: Iterable[str] | None = None) -> MomentTable:
    """Return {flow: {"exposed"|"held_out": (orders moments, revenue moments)}} for exposures in [start, end)."""
    dialect = session.get_bind().dialect.name
    sent = and_(Message.status == "sent", Message.sent_at >= start, Message.sent_at < end)
    held = and_(Message.status == "skipped", Message.skip_reason == HOLDOUT,
                Message.scheduled_for >= start, Message.scheduled_for < end)
    exposed_at = case((Message.status == "sent", Message.sent_at), else_=Message.scheduled_for)
    where = [Message.store_id.in_(store_ids), Message.customer_id.is_not(None), or_(sent, held)]
    if flows is not None:
        where.append(Message.flow.in_(list(flows)))
    ranked = select(
        Message.flow, Message.store_id, Message.customer_id,
        exposed_at.label("exposed_at"),
        case((Message.status == "sent", 0), else_=1).label("held_out"),
        # Partitions in the order of the (store_id, customer_id, sent_at) index, so the rows come sorted.
        func.row_number().over(partition_by=(Message.store_id, Message.customer_id, Message.flow),
                               order_by=(exposed_at, Message.id)).label("rank"),
    ).where(*where).subquery("ranked")
    in_window = and_(
        Order.store_id == ranked.c.store_id, Order.customer_id == ranked.c.customer_id,
        Order.cancelled_at.is_(None), Order.created_at_remote > ranked.c.exposed_at,
        _within_days(Order.created_at_remote, ranked.c.exposed_at, attribution_days, dialect))
    net = Order.total_price - func.coalesce(Order.total_refunded, 0)
    per_customer = (
        select(ranked.c.flow, ranked.c.held_out, func.count(Order.id).label("orders"),
               cast(func.coalesce(func.sum(net), 0), Float).label("revenue"))
        .select_from(ranked.outerjoin(Order, in_window))
        .where(ranked.c.rank == 1)
        .group_by(ranked.c.store_id, ranked.c.customer_id, ranked.c.flow, ranked.c.held_out)
        .subquery("per_customer")
    )
    c = per_customer.c
    rows = session.execute(
        select(c.flow, c.held_out, func.count(), func.sum(c.orders), func.sum(c.orders * c.orders),
               func.sum(c.revenue), func.sum(c.revenue * c.revenue))
        .group_by(c.flow, c.held_out)
    ).all()
    empty = (Moments(0, 0.0, 0.0), Moments(0, 0.0, 0.0))
    result: MomentTable = {}
    for flow, held_out, n, orders, orders_sq, revenue, revenue_sq in rows:
        groups = result.setdefault(flow, {"exposed": empty, "held_out": empty})
        groups["held_out" if held_out else "exposed"] = (
            Moments(int(n), float(orders or 0), float(orders_sq or 0)),
            Moments(int(n), float(revenue or 0), float(revenue_sq or 0)))
    return result


def period_range(now: datetime, days: int, attribution_days: int) -> tuple[datetime, datetime]:
    """Return the exposure range [start, end) of a period: ``days`` long, ending ``attribution_days`` before now."""
    end = now - timedelta(days=attribution_days)
    return end - timedelta(days=days), end


def moments_to_json(table: MomentTable) -> dict[str, dict[str, list[float]]]:
    """Return the sums as JSON-ready lists: {flow: {group: [n, Σorders, Σorders², Σrevenue, Σrevenue²]}}."""
    return {flow: {name: [orders.n, orders.total, orders.total_sq, revenue.total, revenue.total_sq]
                   for name, (orders, revenue) in groups.items()}
            for flow, groups in table.items()}


def moments_from_json(data: dict[str, dict[str, list[float]]]) -> MomentTable:
    """Return the sums written by ``moments_to_json``."""
    table: MomentTable = {}
    for flow, groups in data.items():
        table[flow] = {}
        for name in _GROUPS:
            n, orders, orders_sq, revenue, revenue_sq = groups.get(name, [0, 0.0, 0.0, 0.0, 0.0])
            table[flow][name] = (Moments(int(n), float(orders), float(orders_sq)),
                                 Moments(int(n), float(revenue), float(revenue_sq)))
    return table


def _add(a: Moments, b: Moments) -> Moments:
    return Moments(a.n + b.n, a.total + b.total, a.total_sq + b.total_sq)


def add_moments(tables: Iterable[MomentTable]) -> MomentTable:
    """Add up the sums of several stores (customers of different stores are different customers)."""
    empty = (Moments(0, 0.0, 0.0), Moments(0, 0.0, 0.0))
    total: MomentTable = {}
    for table in tables:
        for flow, groups in table.items():
            target = total.setdefault(flow, {"exposed": empty, "held_out": empty})
            for name, (orders, revenue) in groups.items():
                target[name] = (_add(target[name][0], orders), _add(target[name][1], revenue))
    return total


def _lift(flow: str, groups: dict[str, tuple[Moments, Moments]], min_customers: int) -> FlowLift:
    def group(name: str) -> Group:
        orders, revenue = groups[name]
        return Group(orders.n, estimate(orders, min_customers), estimate(revenue, min_customers))

    (e_orders, e_revenue), (h_orders, h_revenue) = groups["exposed"], groups["held_out"]
    return FlowLift(flow, group("exposed"), group("held_out"), difference(e_orders, h_orders, min_customers),
                    difference(e_revenue, h_revenue, min_customers))


def lift_by_flow(session: Session, store_ids: Sequence[int], start: datetime, end: datetime,
                 attribution_days: int = 7, flows: Iterable[str] | None = None,
                 min_customers: int = MIN_CUSTOMERS) -> dict[str, FlowLift]:
    """Return the lift of every flow with an exposure in [start, end) in the stores (one statement)."""
    return lifts_from_moments(moments_by_flow(session, store_ids, start, end, attribution_days, flows),
                              min_customers)


def lifts_from_moments(table: MomentTable, min_customers: int = MIN_CUSTOMERS) -> dict[str, FlowLift]:
    """Return the lift of every flow of a table of sums (counted now or stored by the metrics jobs)."""
    return {flow: _lift(flow, groups, min_customers) for flow, groups in sorted(table.items())}


def flow_lift(session: Session, store_ids: Sequence[int], flow: str, start: datetime, end: datetime,
              attribution_days: int = 7, min_customers: int = MIN_CUSTOMERS) -> FlowLift:
    """Return exposed against held-out customers of one flow for exposures in [start, end)."""
    table = moments_by_flow(session, store_ids, start, end, attribution_days, [flow])
    empty = (Moments(0, 0.0, 0.0), Moments(0, 0.0, 0.0))
    return _lift(flow, table.get(flow, {"exposed": empty, "held_out": empty}), min_customers)
