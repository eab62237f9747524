"""Retention analytics computed in the database (set-based SQL), never by loading orders into Python.

Definitions (shown to the merchant beside each figure):
- Net order value = total price − refunded amount; cancelled orders never count.
- A purchase is a customer's orders within a day of its first order (``plugin.purchases``): a split order is one.
- 90-day repurchase rate = among customers whose first order falls in the last ``cohort_days`` and is at
  least ``repurchase_window_days`` old, the share who made another purchase (an order a day or more after the
  first) within that many days of the first.
  Under 15 % the store lives on acquisition, 15–30 % is hybrid, over 30 % is a loyalty business.
- Cohorts group customers by the UTC month of their first order; cell k is the share who ordered in
  month k after it.
- Segments (first match wins): VIP (12-month spend over the threshold and at least N orders in 12
  months), dormant (no order for ``dormant_after_days``), growth (one order of at least the threshold
  and at most N orders in all), active (everyone else).
- CLV per customer = average net value per purchase × purchases in the last 12 months × expected lifetime years;
  the store's CLV is the mean over customers with an order in the last 12 months.
- Predicted next order = the start of the last purchase + the mean gap between purchases (two purchases or more).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Float,
    and_,
    case,
    cast,
    column,
    delete,
    distinct,
    exists,
    func,
    insert,
    literal,
    select,
    table,
    text,
)
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from plugin.models import CustomerMetrics, Message, Order, OrderLine, Review, SurveyResponse
from plugin.purchases import customer_orders_sql, is_new_purchase
from plugin.purchases import stage as stage_purchases

DAY = 86400.0
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SegmentRules:
    """Thresholds of the RFM segments (merchant-editable)."""

    vip_min_spent_12m: float = 500.0
    vip_min_orders_12m: int = 4
    growth_min_order: float = 200.0
    growth_max_orders: int = 2
    dormant_after_days: int = 182

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> SegmentRules:
        """Build rules from the `[analytics]` settings, ignoring unrelated keys."""
        fields = cls.__dataclass_fields__
        return cls(**{k: type(getattr(cls, k))(v) for k, v in settings.items() if k in fields})


@dataclass(frozen=True)
class RepurchaseStats:
    """The 90-day repurchase rate and the business mode it implies."""

    eligible: int
    repeaters: int
    rate: float | None
    mode: str | None
    recommendation: str


@dataclass(frozen=True)
class CohortRow:
    """One first-order month: its size and the share of it ordering in each later month."""

    month: str
    customers: int
    retention: tuple[float, ...]


@dataclass(frozen=True)
class FlowPerformance:
    """Outcomes of one flow over a period."""

    flow: str
    sent: int
    skipped: int
    clicked: int
    reviews: int
    survey_responses: int
    reorders: int


def epoch(col: Any, dialect: str) -> ColumnElement[float]:
    """Return a column's UTC time as seconds since 1970 on either database."""
    if dialect == "sqlite":
        return (func.julianday(col) - 2440587.5) * DAY
    return cast(func.extract("epoch", col), Float)


def from_epoch(expr: Any, dialect: str) -> ColumnElement[Any]:
    """Return a timestamp from seconds since 1970 on either database."""
    if dialect == "sqlite":
        return func.strftime("%Y-%m-%d %H:%M:%f", expr, "unixepoch")
    return func.to_timestamp(expr)


def month_index(col: Any, dialect: str) -> ColumnElement[int]:
    """Return year × 12 + month of a UTC timestamp (months can then be subtracted)."""
    if dialect == "sqlite":
        return cast(func.strftime("%Y", col), Float) * 12 + cast(func.strftime("%m", col), Float)
    utc = func.timezone("UTC", col)
    return func.extract("year", utc) * 12 + func.extract("month", utc)


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _net() -> ColumnElement[Decimal]:
    return Order.total_price - func.coalesce(Order.total_refunded, 0)


def _counted_orders(store_ids: Sequence[int]) -> list[ColumnElement[bool]]:
    return [Order.store_id.in_(store_ids), Order.customer_id.is_not(None), Order.cancelled_at.is_(None)]


def refresh_customer_metrics(session: Session, store_id: int, now: datetime, rules: SegmentRules,
                             lifetime_years: float = 3.0) -> int:
    """Recompute `customer_metrics` for one store in two statements; return the number of customers."""
    dialect = _dialect(session)
    year_ago = now - timedelta(days=365)
    dormant_before = now - timedelta(days=rules.dormant_after_days)
    net = _net()
    in_year = Order.created_at_remote >= year_ago
    agg = (
        select(
            Order.customer_id.label("customer_id"),
            func.count().label("orders_count"),
            func.sum(net).label("total_spent"),
            func.sum(case((in_year, net), else_=0)).label("spent_12m"),
            func.sum(case((in_year, 1), else_=0)).label("orders_12m"),
            func.max(net).label("largest_order"),
            func.min(Order.created_at_remote).label("first_order_at"),
            func.max(Order.created_at_remote).label("last_order_at"),
        )
        .where(*_counted_orders([store_id]))
        .group_by(Order.customer_id)
        .subquery("agg")
    )
    segment = case(
        (and_(agg.c.spent_12m > rules.vip_min_spent_12m, agg.c.orders_12m >= rules.vip_min_orders_12m), "vip"),
        (agg.c.last_order_at < dormant_before, "dormant"),
        (and_(agg.c.largest_order >= rules.growth_min_order, agg.c.orders_count <= rules.growth_max_orders),
         "growth"),
        else_="active",
    )
    # Mean gap between purchases projected from the last one's start; unknown with a single purchase. Split orders
    # are one purchase (plugin.purchases): two orders an hour apart are no gap of zero days.
    stage_purchases(session, "cm_order", customer_orders_sql(dialect), {"store_id": store_id}, keys=("c",))
    year_ago_days = (year_ago - EPOCH).total_seconds() / DAY
    staged = table("cm_order", column("c"), column("start_t"))
    bought = (
        select(staged.c.c.label("customer_id"), func.count(distinct(staged.c.start_t)).label("purchases"),
               func.count(distinct(case((staged.c.start_t >= year_ago_days, staged.c.start_t)))).label(
                   "purchases_12m"),
               func.min(staged.c.start_t).label("first_day"), func.max(staged.c.start_t).label("last_day"))
        .group_by(staged.c.c)
        .subquery("bought")
    )
    predicted = case(
        (bought.c.purchases > 1,
         from_epoch((bought.c.last_day + (bought.c.last_day - bought.c.first_day) / (bought.c.purchases - 1)) * DAY,
                    dialect)),
        else_=None,
    )
    # Per purchase (plugin.purchases), not per order: a split basket is one purchase of their summed value.
    clv = (agg.c.total_spent / func.coalesce(bought.c.purchases, agg.c.orders_count)
           * func.coalesce(bought.c.purchases_12m, 0) * literal(lifetime_years))
    rows = select(
        agg.c.customer_id, literal(store_id), agg.c.orders_count, agg.c.total_spent, agg.c.spent_12m,
        agg.c.orders_12m, agg.c.largest_order, agg.c.first_order_at, agg.c.last_order_at,
        func.ntile(5).over(order_by=(agg.c.last_order_at, agg.c.customer_id)),
        func.ntile(5).over(order_by=(agg.c.orders_count, agg.c.customer_id)),
        func.ntile(5).over(order_by=(agg.c.total_spent, agg.c.customer_id)),
        segment, predicted, clv, literal(now, type_=CustomerMetrics.computed_at.type),
    ).select_from(agg.outerjoin(bought, bought.c.customer_id == agg.c.customer_id))
    columns = ["customer_id", "store_id", "orders_count", "total_spent", "spent_12m", "orders_12m",
               "largest_order", "first_order_at", "last_order_at", "r_score", "f_score", "m_score", "segment",
               "predicted_next_order_at", "clv", "computed_at"]
    session.execute(delete(CustomerMetrics).where(CustomerMetrics.store_id == store_id))
    session.execute(insert(CustomerMetrics).from_select(columns, rows))
    session.execute(text("DROP TABLE IF EXISTS cm_order"))
    # rowcount of INSERT ... SELECT is not reported by every driver; count what landed.
    return session.scalar(select(func.count()).where(CustomerMetrics.store_id == store_id)) or 0


def segment_counts(session: Session, store_ids: Sequence[int]) -> dict[str, int]:
    """Return how many customers are in each segment (from the last metrics refresh)."""
    rows = session.execute(
        select(CustomerMetrics.segment, func.count())
        .where(CustomerMetrics.store_id.in_(store_ids))
        .group_by(CustomerMetrics.segment)
    ).all()
    return {segment or "unknown": count for segment, count in rows}


def repurchase_counts(session: Session, store_ids: Sequence[int], now: datetime, window_days: int = 90,
                      cohort_days: int = 365) -> tuple[int, int]:
    """Return (eligible first-time customers, those who ordered again within ``window_days``)."""
    dialect = _dialect(session)
    first = (
        select(Order.store_id, Order.customer_id, func.min(Order.created_at_remote).label("first_at"))
        .where(*_counted_orders(store_ids))
        .group_by(Order.store_id, Order.customer_id)
        .subquery("first")
    )
    later = aliased(Order)
    came_back = exists().where(
        later.customer_id == first.c.customer_id,
        later.store_id == first.c.store_id,
        later.cancelled_at.is_(None),
        # The first purchase is the first order and every order less than a day after it: the next begins after.
        is_new_purchase((epoch(later.created_at_remote, dialect) - epoch(first.c.first_at, dialect)) / DAY),
        epoch(later.created_at_remote, dialect) - epoch(first.c.first_at, dialect) <= window_days * DAY,
    )
    eligible_where = and_(first.c.first_at <= now - timedelta(days=window_days),
                          first.c.first_at > now - timedelta(days=window_days + cohort_days))
    eligible, repeaters = session.execute(
        select(func.count(), func.coalesce(func.sum(case((came_back, 1), else_=0)), 0)).where(eligible_where)
    ).one()
    return int(eligible), int(repeaters)


def repurchase_stats(eligible: int, repeaters: int, acquisition_below: float = 0.15,
                     loyalty_above: float = 0.30) -> RepurchaseStats:
    """Turn repurchase counts into the rate, the business mode it implies and the advice that follows."""
    if not eligible:
        return RepurchaseStats(0, 0, None, None, "Not enough first-time customers yet to judge repurchase.")
    rate = repeaters / eligible
    if rate < acquisition_below:
        mode, advice = "acquisition", ("Most revenue comes from new customers: focus on converting first-time "
                                       "buyers (review requests, post-purchase care) before loyalty perks.")
    elif rate > loyalty_above:
        mode, advice = "loyalty", ("Customers come back: invest in replenishment reminders, VIP perks and "
                                   "win-back; retention drives revenue.")
    else:
        mode, advice = "hybrid", ("Balance acquisition and retention: replenishment reminders for consumables "
                                  "and a come-back offer for one-time buyers.")
    return RepurchaseStats(int(eligible), int(repeaters), rate, mode, advice)


def repurchase_rate(session: Session, store_ids: Sequence[int], now: datetime, window_days: int = 90,
                    cohort_days: int = 365, acquisition_below: float = 0.15,
                    loyalty_above: float = 0.30) -> RepurchaseStats:
    """Compute the repurchase rate within ``window_days`` of the first order and the mode it implies."""
    eligible, repeaters = repurchase_counts(session, store_ids, now, window_days, cohort_days)
    return repurchase_stats(eligible, repeaters, acquisition_below, loyalty_above)


def cohort_cells(session: Session, store_ids: Sequence[int], now: datetime,
                 months: int = 12) -> dict[int, dict[int, int]]:
    """Return {first-order month index: {months after it: customers ordering then}} for the last ``months``."""
    dialect = _dialect(session)
    first = (
        select(Order.store_id, Order.customer_id,
               func.min(month_index(Order.created_at_remote, dialect)).label("first_month"))
        .where(*_counted_orders(store_ids))
        .group_by(Order.store_id, Order.customer_id)
        .subquery("first")
    )
    offset = (month_index(Order.created_at_remote, dialect) - first.c.first_month).label("offset")
    now_month = now.year * 12 + now.month
    rows = session.execute(
        select(first.c.first_month, offset, func.count(distinct(first.c.customer_id)))
        .join(first, and_(first.c.customer_id == Order.customer_id, first.c.store_id == Order.store_id))
        # No "customer_id IS NOT NULL" here (the join already needs one): without statistics SQLite would walk the
        # index by that range, every order per customer, instead of customer_id = ? (plugin.table_stats).
        .where(Order.store_id.in_(store_ids), Order.cancelled_at.is_(None), first.c.first_month > now_month - months)
        .group_by(first.c.first_month, offset)
    ).all()
    table: dict[int, dict[int, int]] = {}
    for first_month, off, count in rows:
        table.setdefault(int(first_month), {})[int(off)] = int(count)
    return table


def cohort_rows(table: dict[int, dict[int, int]], now: datetime, months: int = 12) -> list[CohortRow]:
    """Turn cohort cells into rows of retention shares (oldest first, months up to ``now``)."""
    now_month = now.year * 12 + now.month
    result = []
    for m in sorted(k for k in table if k > now_month - months):
        size = table[m].get(0, 0)
        span = now_month - m
        year, month = divmod(m - 1, 12)
        retention = tuple((table[m].get(k, 0) / size) if size else 0.0 for k in range(span + 1))
        result.append(CohortRow(month=f"{year:04d}-{month + 1:02d}", customers=size, retention=retention))
    return result


def cohorts(session: Session, store_ids: Sequence[int], now: datetime, months: int = 12) -> list[CohortRow]:
    """Return retention by first-order month for the last ``months`` months (oldest first)."""
    return cohort_rows(cohort_cells(session, store_ids, now, months), now, months)


def clv_summary(session: Session, store_ids: Sequence[int], cac: Decimal | None) -> dict[str, Any]:
    """Return the mean CLV of customers active in the last 12 months and CLV:CAC when CAC is known."""
    avg_clv, customers = session.execute(
        select(func.avg(CustomerMetrics.clv), func.count())
        .where(CustomerMetrics.store_id.in_(store_ids), CustomerMetrics.orders_12m > 0)
    ).one()
    clv = Decimal(str(round(float(avg_clv), 2))) if avg_clv is not None else None
    ratio = float(clv / cac) if clv is not None and cac else None
    return {"clv": clv, "customers": int(customers), "cac": cac, "clv_to_cac": ratio}


def flow_performance(session: Session, store_ids: Sequence[int], since: datetime,
                     attribution_days: int = 7) -> list[FlowPerformance]:
    """Return per-flow outcomes of messages created since a date (reviews, answers, reorders attributed)."""
    dialect = _dialect(session)
    window = attribution_days * DAY
    in_scope = and_(Message.store_id.in_(store_ids), Message.created_at >= since)
    sent = Message.status == "sent"
    review_after = exists().where(
        Review.order_id == Message.order_id, Review.store_id == Message.store_id,
        Review.source != "survey", Review.created_at_remote >= Message.sent_at)
    answered = exists().where(SurveyResponse.message_id == Message.id)
    reorder = exists().where(
        Order.customer_id == Message.customer_id, Order.store_id == Message.store_id,
        Order.cancelled_at.is_(None), Order.created_at_remote > Message.sent_at,
        epoch(Order.created_at_remote, dialect) - epoch(Message.sent_at, dialect) <= window,
        exists().where(OrderLine.order_id == Order.id, OrderLine.product_id == Message.product_id))
    rows = session.execute(
        select(
            Message.flow,
            func.sum(case((sent, 1), else_=0)),
            func.sum(case((Message.status == "skipped", 1), else_=0)),
            func.sum(case((and_(sent, Message.clicked_at.is_not(None)), 1), else_=0)),
            func.sum(case((and_(sent, Message.order_id.is_not(None), review_after), 1), else_=0)),
            func.sum(case((and_(sent, answered), 1), else_=0)),
            func.sum(case((and_(sent, Message.product_id.is_not(None), reorder), 1), else_=0)),
        ).where(in_scope).group_by(Message.flow).order_by(Message.flow)
    ).all()
    return [FlowPerformance(flow, *(int(v or 0) for v in values)) for flow, *values in rows]
