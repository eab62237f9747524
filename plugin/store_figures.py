"""Overview figures per store: counted by the metrics jobs into ``store_metrics``, merged for the admin.

On a store with a million orders the repurchase rate, the retention cohorts, the orders per month and the
flow outcomes each scan every order or message of the store (seconds each); the admin page must answer in
well under 300 ms. So the metrics jobs count them (``count_store``) and keep the counts per store; the page
adds the counts of the stores in view and works out the shares when it is drawn. Counts, never shares, are
stored so that the "all stores" view adds up exactly. A store without stored counts (just installed), or
whose counts were made with other ``[analytics]`` windows than the ones now configured, is never counted in
the request: the page says "counting…" for it (``overview_figures`` lists it under ``counting``) and the
``overview_first_counts`` job counts it within minutes (``needs_count``).

The flow lift report is never counted live: the jobs also keep, per period of ``flow_lift.PERIODS``, the
lift sums of every flow and group (``count_lift``, under ``figures["lift"]``), and the report reads them
(``stored_lift``); a store without them shows "counting…" until the next job.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from plugin import analytics, flow_lift
from plugin.models import CancellationAnswer, CustomerMetrics, Order, Store, StoreMetrics, Ticket

FORMAT = 1
FLOW_FIELDS = ("sent", "skipped", "clicked", "reviews", "survey_responses", "reorders")
COHORT_MONTHS = 12
FLOW_PERIOD_DAYS = 90


# How old stored lift sums may grow before the hourly recount counts them again.
LIFT_EVERY = timedelta(hours=24)


def params(settings: dict[str, Any]) -> dict[str, int]:
    """Return the ``[analytics]`` windows the counts depend on (stored with them to spot stale counts)."""
    return {"format": FORMAT, "window_days": int(settings["repurchase_window_days"]),
            "cohort_days": int(settings["cohort_days"]), "attribution_days": int(settings["attribution_days"])}


def month_start(now: datetime, months_back: int) -> tuple[int, datetime]:
    """Return the month index (year × 12 + month) and the first instant of the month ``months_back`` ago."""
    index = now.year * 12 + now.month - months_back
    year, month0 = divmod(index - 1, 12)
    return index, now.replace(year=year, month=month0 + 1, day=1, hour=0, minute=0, second=0, microsecond=0)


def monthly_counts(session: Session, store_ids: Sequence[int], now: datetime,
                   months: int = COHORT_MONTHS) -> dict[int, list[int]]:
    """Return {month index: [orders, first orders of new customers]} for the last ``months`` months."""
    dialect = session.get_bind().dialect.name
    _, start = month_start(now, months - 1)
    idx = analytics.month_index(Order.created_at_remote, dialect)
    orders = session.execute(
        select(idx, func.count()).where(Order.store_id.in_(store_ids), Order.cancelled_at.is_(None),
                                        Order.created_at_remote >= start).group_by(idx)).all()
    fidx = analytics.month_index(CustomerMetrics.first_order_at, dialect)
    firsts = session.execute(
        select(fidx, func.count()).where(and_(CustomerMetrics.store_id.in_(store_ids),
                                              CustomerMetrics.first_order_at >= start)).group_by(fidx)).all()
    table: dict[int, list[int]] = {}
    for month, count in orders:
        table.setdefault(int(month), [0, 0])[0] = int(count)
    for month, count in firsts:
        table.setdefault(int(month), [0, 0])[1] = int(count)
    return table


def service_counts(session: Session, store_id: int, now: datetime,
                   days: int = FLOW_PERIOD_DAYS) -> dict[str, dict[str, Any]]:
    """Count the last ``days`` days' cancellations (platform:reason), cancellation answers, tickets and remedies.

    Amazon orders carry no Shopify cancel reason: they count as ``amazon:`` (Amazon buyers get no email, the
    merchant still sees them here). Tickets by source: [opened, resolved].
    """
    since = now - timedelta(days=days)
    platform = session.scalar(select(Store.platform).where(Store.id == store_id)) or "shopify"
    cancellations = {f"{platform}:{reason or ''}": int(n) for reason, n in session.execute(
        select(Order.cancel_reason, func.count()).where(Order.store_id == store_id, Order.cancelled_at >= since)
        .group_by(Order.cancel_reason))}
    answers = {reason: int(n) for reason, n in session.execute(
        select(CancellationAnswer.reason, func.count()).where(CancellationAnswer.store_id == store_id,
                                                              CancellationAnswer.answered_at >= since)
        .group_by(CancellationAnswer.reason))}
    tickets: dict[str, list[int]] = {}
    for source, n in session.execute(select(Ticket.source, func.count()).where(
            Ticket.store_id == store_id, Ticket.opened_at >= since).group_by(Ticket.source)):
        tickets.setdefault(source, [0, 0])[0] = int(n)
    for source, n in session.execute(select(Ticket.source, func.count()).where(
            Ticket.store_id == store_id, Ticket.resolved_at >= since).group_by(Ticket.source)):
        tickets.setdefault(source, [0, 0])[1] = int(n)
    remedies = {remedy: int(n) for remedy, n in session.execute(
        select(Ticket.remedy, func.count()).where(Ticket.store_id == store_id, Ticket.resolved_at >= since,
                                                  Ticket.remedy.is_not(None)).group_by(Ticket.remedy))}
    return {"cancellations": cancellations, "answers": answers, "tickets": tickets, "remedies": remedies}


def count_store(session: Session, store_id: int, now: datetime, settings: dict[str, Any]) -> dict[str, Any]:
    """Count one store's overview figures as of ``now`` (JSON-ready; keys are strings)."""
    p = params(settings)
    eligible, repeaters = analytics.repurchase_counts(session, [store_id], now, p["window_days"], p["cohort_days"])
    cells = analytics.cohort_cells(session, [store_id], now, months=COHORT_MONTHS)
    flows = analytics.flow_performance(session, [store_id], now - timedelta(days=FLOW_PERIOD_DAYS),
                                       attribution_days=p["attribution_days"])
    return {
        "params": p,
        "repurchase": [eligible, repeaters],
        "cohorts": {str(m): {str(k): n for k, n in row.items()} for m, row in cells.items()},
        "monthly": {str(m): pair for m, pair in monthly_counts(session, [store_id], now).items()},
        "flows": {f.flow: [getattr(f, name) for name in FLOW_FIELDS] for f in flows},
        "service": service_counts(session, store_id, now),
    }


def count_lift(session: Session, store_id: int, now: datetime, attribution_days: int) -> dict[str, Any]:
    """Count one store's flow lift sums for each period of the report, as of ``now`` (JSON-ready)."""
    periods = {}
    for days in flow_lift.PERIODS:
        start, end = flow_lift.period_range(now, days, attribution_days)
        periods[str(days)] = flow_lift.moments_to_json(
            flow_lift.moments_by_flow(session, [store_id], start, end, attribution_days))
    return {"attribution_days": attribution_days, "periods": periods, "computed_at": now.isoformat()}


def save_store_figures(session: Session, store_id: int, now: datetime, settings: dict[str, Any], *,
                       lift: bool = True) -> StoreMetrics:
    """Count one store's overview figures (and flow lift sums) and keep them in ``store_metrics`` (one row a store).

    The lift sums are the heavy part (a grouped scan per report period) and move slowly, so the hourly recount
    passes ``lift=False``: it keeps the stored sums unless there are none yet or they are older than LIFT_EVERY.
    """
    figures = count_store(session, store_id, now, settings)
    row = session.get(StoreMetrics, store_id)
    previous = (row.figures or {}).get("lift") if row is not None else None
    attribution = figures["params"]["attribution_days"]
    if lift or not _lift_fresh(previous, now, attribution):
        figures["lift"] = count_lift(session, store_id, now, attribution)
    else:
        figures["lift"] = previous
    if row is None:
        row = StoreMetrics(store_id=store_id, figures=figures, computed_at=now)
        session.add(row)
    else:
        row.figures, row.computed_at = figures, now
    session.flush()
    return row


def _lift_fresh(lift: dict[str, Any] | None, now: datetime, attribution_days: int) -> bool:
    if not lift or "computed_at" not in lift or lift.get("attribution_days") != attribution_days:
        return False
    return now - datetime.fromisoformat(lift["computed_at"]) < LIFT_EVERY


def needs_count(row: StoreMetrics | None, settings: dict[str, Any]) -> bool:
    """Tell whether a store's stored counts are missing or were made with other ``[analytics]`` windows."""
    return row is None or row.figures.get("params") != params(settings)


def stored(session: Session, store_ids: Sequence[int]) -> dict[int, StoreMetrics]:
    """Return the stored counts of the given stores, by store id."""
    rows = session.scalars(select(StoreMetrics).where(StoreMetrics.store_id.in_(store_ids)))
    return {row.store_id: row for row in rows}


def merge(entries: Iterable[tuple[datetime, dict[str, Any]]], settings: dict[str, Any]) -> dict[str, Any]:
    """Add up stores' counts into the overview's figures (stats, cohorts, monthly, flows, as-of times)."""
    entries = list(entries)
    eligible = repeaters = 0
    cells: dict[int, dict[int, int]] = {}
    monthly: dict[int, list[int]] = {}
    flows: dict[str, list[int]] = {}
    service: dict[str, dict[str, Any]] = {"cancellations": {}, "answers": {}, "tickets": {}, "remedies": {}}
    for _, figures in entries:
        # Counts stored before the service journey have none: they add nothing until the next hourly count.
        for part, counts in (figures.get("service") or {}).items():
            target = service[part]
            for key, value in counts.items():
                if isinstance(value, list):
                    target[key] = [a + b for a, b in zip(target.get(key, [0] * len(value)), value, strict=True)]
                else:
                    target[key] = target.get(key, 0) + value
        eligible += figures["repurchase"][0]
        repeaters += figures["repurchase"][1]
        for month, row in figures["cohorts"].items():
            target = cells.setdefault(int(month), {})
            for k, n in row.items():
                target[int(k)] = target.get(int(k), 0) + n
        for month, (orders, firsts) in figures["monthly"].items():
            pair = monthly.setdefault(int(month), [0, 0])
            pair[0] += orders
            pair[1] += firsts
        for flow, values in figures["flows"].items():
            flows[flow] = [a + b for a, b in zip(flows.get(flow, [0] * len(FLOW_FIELDS)), values, strict=True)]
    # Month windows run up to the newest count; "as of" is the oldest one, so the page never claims more.
    newest = max(at for at, _ in entries)
    oldest = min(at for at, _ in entries)
    first_month, _ = month_start(newest, COHORT_MONTHS - 1)
    months = []
    for index in range(first_month, first_month + COHORT_MONTHS):
        year, month0 = divmod(index - 1, 12)
        orders, firsts = monthly.get(index, [0, 0])
        months.append((f"{year:04d}-{month0 + 1:02d}", orders, firsts))
    stats = analytics.repurchase_stats(eligible, repeaters, acquisition_below=float(settings["acquisition_below"]),
                                       loyalty_above=float(settings["loyalty_above"]))
    return {
        "stats": stats,
        "cohorts": analytics.cohort_rows(cells, newest, COHORT_MONTHS),
        "monthly": months,
        "flows": [analytics.FlowPerformance(flow, *values) for flow, values in sorted(flows.items())],
        "service": service,
        "computed_at": oldest,
        "newest_at": newest,
    }


def overview_figures(session: Session, store_ids: Sequence[int], now: datetime,
                     settings: dict[str, Any]) -> dict[str, Any]:
    """Return the merged stored counts of the stores; those without current counts are left out, under "counting".

    Nothing here reads orders or messages: counting a store is the jobs' work (a million orders take seconds,
    and a never-analysed SQLite database minutes), never the request's.
    """
    rows = stored(session, store_ids)
    entries, counting = [], []
    for store_id in store_ids:
        row = rows.get(store_id)
        if needs_count(row, settings):
            counting.append(store_id)
        else:
            entries.append((row.computed_at, row.figures))  # type: ignore[union-attr]
    empty = {"repurchase": [0, 0], "cohorts": {}, "monthly": {}, "flows": {}}
    figures = merge(entries or [(now, empty)], settings)
    figures["counting"] = counting
    return figures


@dataclass(frozen=True)
class StoredLift:
    """The flow lift of the stores in view, worked out of their stored sums, and the range they cover."""

    lifts: dict[str, flow_lift.FlowLift]
    start: datetime
    end: datetime
    computed_at: datetime


def stored_lift(session: Session, stores: Sequence[Store], days: int, attribution_days: int,
                min_customers: int = flow_lift.MIN_CUSTOMERS) -> StoredLift | None:
    """Return the stores' flow lift over a period from their stored sums, or None while any is still uncounted."""
    if not stores:
        raise ValueError("stored_lift needs at least one store")
    if len({store.currency for store in stores}) > 1:
        raise ValueError("revenue lift is never added across currencies")
    rows = stored(session, [store.id for store in stores])
    tables, stamps = [], []
    for store in stores:
        row = rows.get(store.id)
        lift = row.figures.get("lift") if row is not None else None
        if lift is None or lift["attribution_days"] != attribution_days or str(days) not in lift["periods"]:
            return None
        tables.append(flow_lift.moments_from_json(lift["periods"][str(days)]))
        # The lift sums carry their own time: the hourly recount may keep older ones (save_store_figures).
        stamps.append(datetime.fromisoformat(lift["computed_at"]) if "computed_at" in lift
                      else row.computed_at)  # type: ignore[union-attr]
    # "As of" the oldest count, so the page never claims more than every store's figures cover.
    oldest = min(stamps)
    start, end = flow_lift.period_range(oldest, days, attribution_days)
    return StoredLift(flow_lift.lifts_from_moments(flow_lift.add_moments(tables), min_customers), start, end,
                      oldest)
