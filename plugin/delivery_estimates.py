"""Delivery estimates from the store's own history, for parcels the carrier gives no estimate for.

Transit time = delivered_at - shipped_at of the store's delivered parcels in the last ``history_days``, grouped
by destination country (the customer's country; "" when unknown) and carrier (``tracking_company``; "" when
none). Per group: the median and the 90th percentile (nearest rank: the value at rank ceil(p·n) in ascending
order), computed in one query with window functions, the same on SQLite and PostgreSQL. The tracking page shows
"usually <low>–<high> days" (``usual_days``); stall detection takes a parcel as late once it is past
shipped_at + p90 (plugin.delivery_stalls). Ranking months of deliveries is a daily job (``refresh``, into
``transit_estimate``); the page and the hourly detection read that table (``stored_stats``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Float, and_, cast, delete, func, insert, literal, select
from sqlalchemy.orm import Session

from plugin import flow_settings
from plugin.config import Config
from plugin.context import JobContext
from plugin.models import Customer, Order, Parcel, Store, TransitEstimate

SECTION = "delivery_stalls"
Group = tuple[str, str]


@dataclass(frozen=True)
class TransitStat:
    """Transit days of one destination country and carrier: median, 90th percentile and how many parcels."""

    median_days: float
    p90_days: float
    samples: int


@dataclass(frozen=True)
class Estimate:
    """When a parcel should arrive: from the carrier, or from the store's history (``low``–``high`` days)."""

    source: str  # "carrier" or "history"
    expected_by: datetime
    low_days: int | None = None
    high_days: int | None = None
    samples: int = 0


def transit_days(session: Session) -> Any:
    """Return the SQL expression of a parcel's transit time in fractional days (dialect-specific arithmetic)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", Parcel.delivered_at - Parcel.shipped_at) / 86400.0
    return cast(func.julianday(Parcel.delivered_at) - func.julianday(Parcel.shipped_at), Float)


def transit_stats(session: Session, store_id: int, now: datetime, history_days: float, min_samples: int = 1,
                  ) -> dict[Group, TransitStat]:
    """Return per (country, carrier) the median and 90th-percentile transit days of the store's recent deliveries."""
    country = func.coalesce(Customer.country, literal(""))
    carrier = func.coalesce(Parcel.tracking_company, literal(""))
    days = transit_days(session)
    base = (select(country.label("country"), carrier.label("carrier"), days.label("days"))
            .select_from(Parcel)
            .join(Order, Order.id == Parcel.order_id)
            .join(Customer, Customer.id == Order.customer_id, isouter=True)
            .where(Parcel.store_id == store_id, Parcel.delivered_at >= now - timedelta(days=history_days),
                   Parcel.delivered_at <= now, Parcel.shipped_at.is_not(None),
                   Parcel.delivered_at >= Parcel.shipped_at)
            .subquery())
    partition = (base.c.country, base.c.carrier)
    ranked = select(base.c.country, base.c.carrier, base.c.days,
                    func.row_number().over(partition_by=partition, order_by=base.c.days).label("rank"),
                    func.count().over(partition_by=partition).label("n")).subquery()
    # Nearest rank in integer arithmetic: ceil(n/2) = (n + 1) / 2, ceil(9n/10) = (9n + 9) / 10.
    median_rank, p90_rank = (ranked.c.n + 1) // 2, (ranked.c.n * 9 + 9) // 10
    query = (select(ranked.c.country, ranked.c.carrier, ranked.c.n, ranked.c.rank, ranked.c.days,
                    (ranked.c.rank == median_rank).label("is_median"))
             .where(ranked.c.n >= min_samples, (ranked.c.rank == median_rank) | (ranked.c.rank == p90_rank)))
    medians: dict[Group, float] = {}
    p90s: dict[Group, float] = {}
    counts: dict[Group, int] = {}
    for group_country, group_carrier, n, rank, value, is_median in session.execute(query):
        group = (group_country, group_carrier)
        counts[group] = int(n)
        if is_median:
            medians[group] = float(value)
        if rank == (int(n) * 9 + 9) // 10:
            p90s[group] = float(value)
    return {g: TransitStat(medians[g], p90s[g], counts[g]) for g in counts if g in medians and g in p90s}


def refresh(session: Session, store_id: int, now: datetime, history_days: float) -> int:
    """Recompute the store's stored transit statistics from its recent deliveries; return how many groups."""
    stats = transit_stats(session, store_id, now, history_days)
    session.execute(delete(TransitEstimate).where(TransitEstimate.store_id == store_id))
    if stats:
        session.execute(insert(TransitEstimate), [
            {"store_id": store_id, "country": country[:2], "carrier": carrier[:255], "median_days": stat.median_days,
             "p90_days": stat.p90_days, "samples": stat.samples, "computed_at": now}
            for (country, carrier), stat in sorted(stats.items())])
    return len(stats)


def stored_stats(session: Session, store_id: int, min_samples: int = 1) -> dict[Group, TransitStat]:
    """Return the store's transit statistics as the daily job last stored them (groups with enough samples)."""
    rows = session.execute(select(TransitEstimate).where(TransitEstimate.store_id == store_id,
                                                         TransitEstimate.samples >= min_samples)).scalars()
    return {(r.country, r.carrier): TransitStat(r.median_days, r.p90_days, r.samples) for r in rows}


def run_refresh(ctx: JobContext, store_id: int) -> dict[str, int]:
    """Job: recompute one store's transit statistics (median and 90th percentile by country and carrier)."""
    with ctx.database.session() as session:
        if session.get(Store, store_id) is None:
            return {"inactive": 1}
        settings = flow_settings.effective(session, ctx.config, store_id, SECTION)
        return {"groups": refresh(session, store_id, ctx.clock.now(), float(settings.get("history_days", 180)))}


def usual_days(stat: TransitStat) -> tuple[int, int]:
    """Return the "usually low–high days" range of a group: the median rounded down, the 90th percentile up."""
    low = max(1, math.floor(stat.median_days))
    return low, max(low, math.ceil(stat.p90_days))


def estimate(session: Session, config: Config, parcel: Parcel, now: datetime,
             stats: dict[Group, TransitStat] | None = None) -> Estimate | None:
    """Return a parcel's expected delivery: the carrier's estimate, else the store's history, else None.

    The tracking page calls this per parcel (statistics as last stored by the daily job unless given); stall
    detection uses the same statistics in SQL.
    """
    if parcel.estimated_delivery_at is not None:
        return Estimate("carrier", parcel.estimated_delivery_at)
    if parcel.shipped_at is None:
        return None
    settings = flow_settings.effective(session, config, parcel.store_id, SECTION)
    if stats is None:
        stats = stored_stats(session, parcel.store_id, int(settings.get("min_history_samples", 20)))
    country = session.scalar(select(func.coalesce(Customer.country, "")).select_from(Order)
                             .join(Customer, Customer.id == Order.customer_id, isouter=True)
                             .where(and_(Order.id == parcel.order_id))) or ""
    stat = stats.get((country, parcel.tracking_company or ""))
    if stat is None or stat.samples < int(settings.get("min_history_samples", 20)):
        return None
    low, high = usual_days(stat)
    return Estimate("history", parcel.shipped_at + timedelta(days=stat.p90_days), low, high, stat.samples)
