"""Stalled and failed deliveries: find them per store in set-based SQL and open one ticket per parcel and problem.

Shopify stores (thresholds in business days of the store's calendar, plugin.business_days):
- ``unfulfilled``: a paid order with no parcel ``unfulfilled_after_business_days`` after it was placed (sev. 3);
- ``no_scan``: an undelivered parcel whose last carrier event (else its shipping) is ``no_scan_after_business_days``
  old (sev. 3), and ``lost`` past ``lost_after_business_days`` (sev. 2);
- ``past_estimate``: an undelivered parcel ``past_estimate_business_days`` past its expected delivery — the
  carrier's estimate, else shipped_at + the 90th percentile of the store's transit days for its destination
  country and carrier (plugin.delivery_estimates, as the daily job last stored them) — (sev. 3);
- ``attempted`` (latest milestone ATTEMPTED_DELIVERY, sev. 3) and ``failed`` (FAILURE, sev. 2).
Amazon stores, seller-fulfilled (MFN) orders only, on Amazon's own dates: ``amazon_late_ship`` (past LatestShipDate
unshipped) and ``amazon_late_delivery`` (past LatestDeliveryDate, shipped, not delivered), both sev. 3. Nothing of
this reaches an Amazon buyer (DESIGN §1): the merchant gets the ticket and its alert.

Each problem kind is one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING`` into ``delivery_problem``:
the unique (store, problem, subject) makes a re-run, or two racing runs, open nothing twice. Only the rows a run
inserted get tickets. Cancelled orders, cancelled parcels and anything older than ``MAX_AGE_DAYS`` are left out
(an install's backfill does not open a ticket for every parcel of last year).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    String,
    and_,
    any_,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    text,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from plugin.business_days import Calendar
from plugin.config import Config
from plugin.delivery_estimates import stored_stats
from plugin.models import Customer, DeliveryProblem, DeliveryStallState, Order, Parcel, StallCheck, Store, Ticket
from plugin.sync.sql import IN_CHUNK, chunked
from plugin.tickets import add_note, sla_due
from plugin.types import UTCDateTime

MAX_AGE_DAYS = 60
# A row that cannot stall until it changes, and a moment every stall of the past is after.
NEVER = datetime(9999, 12, 31, tzinfo=UTC)
LONG_AGO = datetime(1970, 1, 1, tzinfo=UTC)
# Carrier estimates further ahead than this are looked at again when it is reached (the SQL step stays short).
ESTIMATE_AHEAD_DAYS = 60
# Writers stamp updated_at when their transaction starts (PostgreSQL's now()) and commit later: the next run
# reads back this far before the previous one's start, so a change committed while it ran is not missed.
CHANGE_OVERLAP = timedelta(minutes=10)
# Bulk writes of at least this many rows refresh PostgreSQL's statistics before the next statements plan.
ANALYZE_ROWS = 1000
SHOPIFY_KINDS = ("unfulfilled", "no_scan", "lost", "past_estimate", "attempted", "failed")
THRESHOLDS = ("unfulfilled_after_business_days", "no_scan_after_business_days", "lost_after_business_days",
              "past_estimate_business_days")
PAID = ("PAID", "PARTIALLY_PAID", "PARTIALLY_REFUNDED")
# Milestones after which a parcel expects no more carrier scans.
SETTLED = ("DELIVERED", "FAILURE")
SEVERITY = {"unfulfilled": 3, "no_scan": 3, "lost": 2, "past_estimate": 3, "attempted": 3, "failed": 2,
            "amazon_late_ship": 3, "amazon_late_delivery": 3}
WORDS = {
    "unfulfilled": "paid, not fulfilled after {n} business days",
    "no_scan": "no carrier event for {n} business days",
    "lost": "presumed lost: no carrier event for {n} business days",
    "past_estimate": "past its estimated delivery",
    "attempted": "delivery attempted, not delivered",
    "failed": "delivery failed",
    "amazon_late_ship": "Amazon: not shipped by the latest ship date",
    "amazon_late_delivery": "Amazon: not delivered by the latest delivery date",
}


@dataclass(frozen=True)
class Found:
    """A problem this run found first: its row, the order and parcel, and the customer to tell."""

    problem_id: int
    problem: str
    order_id: int
    parcel_id: int | None
    ticket_id: int


def _insert(session: Session) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def _subject(kind: str, column: Any) -> Any:
    return (literal(f"{kind}=") + cast(column, String)).label("subject")


def _record(session: Session, store_id: int, problem: str, now: datetime, query: Any, per_parcel: bool,
            ) -> list[tuple[int, int, int | None]]:
    """Insert one ``delivery_problem`` row per order or parcel the query selects, unless present; return the new."""
    key = Parcel.id if per_parcel else Order.id
    source = query.add_columns(
        literal(store_id).label("store_id"), literal(problem).label("problem"),
        _subject("parcel" if per_parcel else "order", key),
        (Parcel.id if per_parcel else cast(null(), BigInteger)).label("parcel_id"),
        literal(now, UTCDateTime()).label("detected_at"))
    columns = ["order_id", "store_id", "problem", "subject", "parcel_id", "detected_at"]
    stmt = (_insert(session)(DeliveryProblem).from_select(columns, source)
            .on_conflict_do_nothing(index_elements=["store_id", "problem", "subject"],
                                    index_where=DeliveryProblem.resolved_at.is_(None))
            .returning(DeliveryProblem.id, DeliveryProblem.order_id, DeliveryProblem.parcel_id))
    return [tuple(r) for r in session.execute(stmt)]


def _not_recorded(store_id: int, problem: str, subject: Any) -> Any:
    """Skip what was found and is not resolved in the SELECT itself: re-runs then read the index and write nothing."""
    return ~select(DeliveryProblem.id).where(DeliveryProblem.store_id == store_id, DeliveryProblem.problem == problem,
                                             DeliveryProblem.subject == subject,
                                             DeliveryProblem.resolved_at.is_(None)).exists()


def _changed(model: Any, window: Any, store_id: int, since: datetime, changed_since: datetime) -> Any:
    """Select the ids of the rows of the look-back written (``updated_at``) at or after the high-water mark."""
    table = model.__table__
    # The look-back as an expression, not a bare column: the planner then walks (store_id, updated_at), a handful
    # of rows, never the date index over weeks of them (SQLite did, without statistics to tell them apart).
    return select(table.c.id).where(table.c.store_id == store_id, table.c.updated_at >= changed_since,
                                    func.coalesce(window, window) >= since)


KIND_OF = {"orders": "o", "parcel": "p"}


def _due(model: Any, store_id: int, now: datetime) -> Any:
    """Select the ids of the store's orders or parcels whose stored next check has come."""
    return select(StallCheck.subject_id).where(StallCheck.store_id == store_id,
                                               StallCheck.kind == KIND_OF[model.__tablename__],
                                               StallCheck.check_at <= now)


def _picked(model: Any, window: Any, store_id: int, since: datetime, now: datetime, changed_since: datetime) -> Any:
    """Select the rows an incremental run reads: those whose next check has come, and those changed since.

    Two index ranges (``stall_check (store_id, kind, check_at)``, ``(store_id, updated_at)``) joined by UNION
    ALL: the planner never has to choose between an OR and a scan. The caller keeps to the look-back.
    """
    return union_all(_due(model, store_id, now), _changed(model, window, store_id, since, changed_since))


def _orders(store_id: int, problem: str, picked: Any, *where: Any) -> Any:
    subject = literal("order=") + cast(Order.id, String)
    query = select(Order.id.label("order_id")).where(Order.store_id == store_id, Order.cancelled_at.is_(None),
                                                     _not_recorded(store_id, problem, subject), *where)
    return query if picked is None else query.where(Order.id.in_(picked))


def _parcels(store_id: int, problem: str, since: datetime, picked: Any, *where: Any) -> Any:
    subject = literal("parcel=") + cast(Parcel.id, String)
    query = (select(Parcel.order_id.label("order_id"))
             .join(Order, Order.id == Parcel.order_id)
             .where(Parcel.store_id == store_id, Parcel.delivered_at.is_(None),
                    Parcel.fulfillment_status != "CANCELLED", Parcel.shipped_at >= since, Order.cancelled_at.is_(None),
                    _not_recorded(store_id, problem, subject), *where))
    return query if picked is None else query.where(Parcel.id.in_(picked))


def _history_thresholds(session: Session, store_id: int, now: datetime, cutoff: datetime,
                        settings: Mapping[str, Any]) -> Any | None:
    """Return a derived table (country, carrier, before): a parcel of the group shipped before ``before`` is late."""
    stats = stored_stats(session, store_id, int(settings["min_history_samples"]))
    if not stats:
        return None
    rows = [select(literal(country, String).label("country"), literal(carrier, String).label("carrier"),
                   literal(cutoff - timedelta(days=stat.p90_days), UTCDateTime()).label("before"))
            for (country, carrier), stat in sorted(stats.items())]
    return union_all(*rows).subquery("history") if len(rows) > 1 else rows[0].subquery("history")


def detect_shopify(session: Session, store: Store, settings: Mapping[str, Any], now: datetime,
                   changed_since: datetime | None = None) -> dict[str, list[tuple[int, int, int | None]]]:
    """Record the Shopify store's new delivery problems (one statement per kind); return them per kind.

    Without ``changed_since`` every order and parcel of the look-back is read; with it only those written since
    then or whose next check (``stall_check``) has come, which is every row that can have stalled since.
    """
    calendar = Calendar.for_store(store.country, store.timezone)
    since = now - timedelta(days=MAX_AGE_DAYS)
    orders = parcels = None
    if changed_since is not None:
        orders = _picked(Order, Order.created_at_remote, store.id, since, now, changed_since)
        parcels = _picked(Parcel, Parcel.shipped_at, store.id, since, now, changed_since)
    found: dict[str, list[tuple[int, int, int | None]]] = {}
    on = enabled(settings)
    if "unfulfilled" in on:
        unfulfilled = calendar.cutoff(now, int(settings["unfulfilled_after_business_days"]))
        found["unfulfilled"] = _record(session, store.id, "unfulfilled", now, _orders(
            store.id, "unfulfilled", orders, Order.fulfilled_at.is_(None), Order.financial_status.in_(PAID),
            Order.created_at_remote < unfulfilled, Order.created_at_remote >= since), per_parcel=False)
    silent_since = func.coalesce(Parcel.last_event_at, Parcel.shipped_at)
    unsettled = or_(Parcel.status.is_(None), Parcel.status.not_in(SETTLED))
    for kind, setting in (("no_scan", "no_scan_after_business_days"), ("lost", "lost_after_business_days")):
        if kind in on:
            cutoff = calendar.cutoff(now, int(settings[setting]))
            found[kind] = _record(session, store.id, kind, now, _parcels(
                store.id, kind, since, parcels, unsettled, silent_since < cutoff), per_parcel=True)
    for kind, status in (("attempted", "ATTEMPTED_DELIVERY"), ("failed", "FAILURE")):
        if kind in on:
            found[kind] = _record(session, store.id, kind, now, _parcels(store.id, kind, since, parcels,
                                                                         Parcel.status == status), per_parcel=True)
    if "past_estimate" not in on:
        return found
    late = calendar.cutoff(now, int(settings["past_estimate_business_days"]))
    found["past_estimate"] = _record(session, store.id, "past_estimate", now, _parcels(
        store.id, "past_estimate", since, parcels, unsettled, Parcel.estimated_delivery_at < late), per_parcel=True)
    history = _history_thresholds(session, store.id, now, late, settings)
    if history is not None:
        query = (_parcels(store.id, "past_estimate", since, parcels, unsettled, Parcel.estimated_delivery_at.is_(None))
                 .join(Customer, Customer.id == Order.customer_id, isouter=True)
                 .join(history, and_(history.c.country == func.coalesce(Customer.country, ""),
                                     history.c.carrier == func.coalesce(Parcel.tracking_company, "")))
                 .where(Parcel.shipped_at < history.c.before))
        found["past_estimate"] += _record(session, store.id, "past_estimate", now, query, per_parcel=True)
    return found


def enabled(settings: Mapping[str, Any]) -> frozenset[str]:
    """Return the Shopify problem kinds the merchant has switched on."""
    return frozenset(k for k in SHOPIFY_KINDS if settings.get(f"detect_{k}", True))


def detect_amazon(session: Session, store: Store, now: datetime) -> dict[str, list[tuple[int, int, int | None]]]:
    """Record the Amazon store's late seller-fulfilled orders (Amazon's own ship-by and deliver-by dates)."""
    since = now - timedelta(days=MAX_AGE_DAYS)
    mfn = Order.fulfillment_channel == "MFN"
    return {
        "amazon_late_ship": _record(session, store.id, "amazon_late_ship", now, _orders(
            store.id, "amazon_late_ship", None, mfn, Order.fulfilled_at.is_(None),
            Order.fulfillment_status.in_(("unshipped", "partially_shipped")),
            Order.latest_ship_at < now, Order.latest_ship_at >= since), per_parcel=False),
        "amazon_late_delivery": _record(session, store.id, "amazon_late_delivery", now, _orders(
            store.id, "amazon_late_delivery", None, mfn, Order.fulfilled_at.is_not(None),
            Order.fulfillment_status.in_(("shipped", "partially_shipped")),
            Order.latest_delivery_at < now, Order.latest_delivery_at >= since), per_parcel=False),
    }


def _subject_line(problem: str, settings: Mapping[str, Any], name: str | None, tracking: str | None) -> str:
    threshold = {"unfulfilled": "unfulfilled_after_business_days", "no_scan": "no_scan_after_business_days",
                 "lost": "lost_after_business_days"}.get(problem)
    words = WORDS[problem].format(n=settings[threshold] if threshold else "")
    parcel = f" (parcel {tracking})" if tracking else ""
    return f"Order {name or ''}{parcel}: {words}".replace("Order :", "Order:")


def _id_in(session: Session, column: Any, ids: set[int]) -> Any:
    """Return ``column IN ids``; on PostgreSQL as one array parameter (``= ANY``), not thousands of bound values."""
    if session.get_bind().dialect.name == "postgresql":
        # A first run names ~8,000 orders: psycopg's parsing of that many placeholders cost ~0.3 s alone.
        return column == any_(bindparam("id_list", sorted(ids), type_=postgresql.ARRAY(BigInteger)))
    return column.in_(ids)


def open_tickets(session: Session, config: Config, store: Store, settings: Mapping[str, Any], now: datetime,
                 found: dict[str, list[tuple[int, int, int | None]]]) -> list[Found]:
    """Open one ticket per newly recorded problem (severity by kind, SLA clock from now) and link it."""
    new = [(kind, *row) for kind, rows in found.items() for row in rows]
    if not new:
        return []
    orders, redacted = {}, set()
    for o in session.execute(select(Order.id, Order.name, Order.customer_id, Customer.redacted_at)
                             .join(Customer, Customer.id == Order.customer_id, isouter=True)
                             .where(_id_in(session, Order.id, {r[2] for r in new}))):
        orders[o.id] = (o.name, o.customer_id)
        if o.redacted_at is not None:
            # A redacted customer's parcel is named by its id: a fulfilment update after customers/redact brings
            # the tracking number back to the parcel (the daily sweep erases it there), and a ticket must not keep it.
            redacted.add(o.id)
    parcel_ids = {r[3] for r in new if r[3] is not None and r[2] not in redacted}
    tracking = dict(session.execute(select(Parcel.id, Parcel.tracking_number).where(
        _id_in(session, Parcel.id, parcel_ids))).all()) if parcel_ids else {}
    due = {s: sla_due(session, config, store.id, s, now) for s in set(SEVERITY.values())}
    # The tickets' ids are taken first (PostgreSQL: the table's sequence; SQLite: past the largest, under the write
    # lock this transaction holds since it recorded the problems): one executemany INSERT with the ids, one
    # executemany UPDATE linking each problem, no reading back.
    ids = _ticket_ids(session, len(new))
    rows = [{"id": tid, "store_id": store.id, "source": "delivery", "severity": SEVERITY[kind], "status": "open",
             "subject": _subject_line(kind, settings, orders[order_id][0], tracking.get(parcel_id) or
                                      (f"#{parcel_id}" if parcel_id else None))[:500],
             "opened_at": now, "sla_due_at": due[SEVERITY[kind]],
             "customer_id": orders[order_id][1], "order_id": order_id, "created_at": now, "updated_at": now}
            for (kind, _, order_id, parcel_id), tid in zip(new, ids, strict=True)]
    pairs = [(row[1], tid) for row, tid in zip(new, ids, strict=True)]
    if session.get_bind().dialect.name == "postgresql":
        _write_tickets_pg(session, store.id, now, rows, pairs)
    else:
        # SQLite runs an executemany in-process: one prepared statement each.
        session.connection().execute(insert(Ticket.__table__), rows)
        table = DeliveryProblem.__table__
        session.connection().execute(update(table).where(table.c.id == bindparam("pid"))
                                     .values(ticket_id=bindparam("tid")), [{"pid": p, "tid": t} for p, t in pairs])
    if len(new) >= ANALYZE_ROWS and session.get_bind().dialect.name == "postgresql":
        # Thousands of rows at once (an install's first run): the notice step's join plans on fresh statistics.
        session.execute(text("ANALYZE ticket, delivery_problem"))
    return [Found(problem_id, kind, order_id, parcel_id, tid)
            for (kind, problem_id, order_id, parcel_id), tid in zip(new, ids, strict=True)]


def _write_tickets_pg(session: Session, store_id: int, now: datetime, rows: list[dict[str, Any]],
                      pairs: list[tuple[int, int]]) -> None:
    """Insert the tickets and link their problems in two statements of a few array parameters each (unnest):
    thousands of rows without thousands of bound values to compile and convert."""
    session.execute(text(
        "INSERT INTO ticket (id, store_id, source, severity, status, subject, opened_at, sla_due_at, customer_id, "
        "order_id, created_at, updated_at) "
        "SELECT t.id, :store, 'delivery', t.severity, 'open', t.subject, :now, t.due, t.customer, t.ord, :now, :now "
        "FROM unnest(CAST(:ids AS bigint[]), CAST(:severities AS int[]), CAST(:subjects AS text[]), "
        "CAST(:dues AS timestamptz[]), CAST(:customers AS bigint[]), CAST(:orders AS bigint[])) "
        "AS t(id, severity, subject, due, customer, ord)"),
        {"store": store_id, "now": now, "ids": [r["id"] for r in rows], "severities": [r["severity"] for r in rows],
         "subjects": [r["subject"] for r in rows], "dues": [r["sla_due_at"] for r in rows],
         "customers": [r["customer_id"] for r in rows], "orders": [r["order_id"] for r in rows]})
    session.execute(text(
        "UPDATE delivery_problem SET ticket_id = link.tid "
        "FROM unnest(CAST(:pids AS bigint[]), CAST(:tids AS bigint[])) AS link(pid, tid) "
        "WHERE delivery_problem.id = link.pid"),
        {"pids": [p for p, _ in pairs], "tids": [t for _, t in pairs]})


def _ticket_ids(session: Session, n: int) -> list[int]:
    """Reserve ``n`` new ticket ids."""
    if session.get_bind().dialect.name == "postgresql":
        return list(session.scalars(text("SELECT nextval(pg_get_serial_sequence('ticket', 'id')) "
                                         "FROM generate_series(1, :n)"), {"n": n}))
    first = int(session.scalar(select(func.coalesce(func.max(Ticket.id), 0)))) + 1
    return list(range(first, first + n))


# -- next checks: when each order and parcel would stall, so that hourly runs read only those due -------------


def _least(session: Session, *values: Any) -> Any:
    return (func.least if session.get_bind().dialect.name == "postgresql" else func.min)(*values)


def _step(x: Any, edges: list[datetime], values: list[datetime]) -> Any:
    """A balanced CASE over ``x``: ``values[j]`` where ``edges[j-1] <= x < edges[j]`` (a binary search in SQL)."""
    def build(lo: int, hi: int) -> Any:
        if lo == hi:
            return literal(values[lo], UTCDateTime())
        mid = (lo + hi + 1) // 2
        return case((x < literal(edges[mid - 1], UTCDateTime()), build(lo, mid - 1)), else_=build(mid, hi))
    return type_coerce(build(0, len(values) - 1), UTCDateTime())


def deadline_expr(x: Any, calendar: Calendar, n: int, now: datetime, ahead_days: int,
                  shift: timedelta = timedelta(0)) -> Any:
    """SQL for the first instant after ``now`` at which ``x + shift`` has waited ``n`` business days (else NEVER).

    The moment depends only on the local day of ``x + shift`` (``Calendar.add_business_days``), so it is a step
    function over a few days: from the day of ``cutoff(now, n)`` (anything earlier has stalled already: LONG_AGO)
    to ``ahead_days`` past today (anything later gets that day's end, earlier than its true moment: it is looked
    at again then, never too late). ``x`` NULL: NEVER.
    """
    first = calendar.local_day(calendar.cutoff(now, n))
    last = calendar.local_day(now) + timedelta(days=ahead_days)
    days = [first + timedelta(days=k) for k in range((last - first).days + 1)]
    edges = [calendar.day_start(d) - shift for d in days] + [calendar.day_start(last + timedelta(days=1)) - shift]
    values = [LONG_AGO, *(calendar.add_business_days(calendar.day_start(d), n) for d in days),
              calendar.day_start(last + timedelta(days=1))]
    # Only moments still to come are next checks; one that has passed was this run's to find (NEVER here).
    values = [v if v > now else NEVER for v in values]
    return case((x.is_(None), literal(NEVER, UTCDateTime())), else_=_step(x, edges, values))


def _open(model: Any, window: Any, settled_at: Any, store_id: int, since: datetime) -> Any:
    """Select the rows a full recompute looks at: not yet fulfilled (orders) or delivered (parcels), or with a
    stored next check. A fulfilled order or delivered parcel without one cannot stall: nothing to compute."""
    table = model.__table__
    return union_all(
        select(table.c.id).where(table.c.store_id == store_id, settled_at.is_(None), window >= since),
        select(StallCheck.subject_id).where(StallCheck.store_id == store_id,
                                            StallCheck.kind == KIND_OF[model.__tablename__]))


def _store_checks(session: Session, table: Any, store_id: int, chosen: Any, window: Any, since: datetime,
                  next_check: Any) -> None:
    """Upsert the chosen rows' next checks (those that have one) into ``stall_check``: one INSERT ... SELECT."""
    computed = (select(table.c.id.label("subject_id"), next_check.label("check_at"))
                .where(table.c.id.in_(chosen), window >= since).subquery("computed"))
    source = select(literal(KIND_OF[table.name]).label("kind"), computed.c.subject_id,
                    literal(store_id).label("store_id"), computed.c.check_at).where(computed.c.check_at.is_not(None))
    stmt = _insert(session)(StallCheck).from_select(["kind", "subject_id", "store_id", "check_at"], source)
    session.execute(stmt.on_conflict_do_update(index_elements=["kind", "subject_id"],
                                               set_={"check_at": stmt.excluded.check_at,
                                                     "store_id": stmt.excluded.store_id}))


def update_next_checks(session: Session, store: Store, settings: Mapping[str, Any], now: datetime,
                       changed_since: datetime | None) -> None:
    """Store each read order's and parcel's next check: the earliest moment a problem not yet found could arise.

    Kinds whose moment has passed were recorded by this run (or are blocked by the row's state, which a change
    clears), so only future moments count; none: no entry until the row changes, as for rows past the look-back.
    A full recompute reads only the rows not fulfilled or delivered and those with a stored check.
    """
    full = changed_since is None
    calendar = Calendar.for_store(store.country, store.timezone)
    since = now - timedelta(days=MAX_AGE_DAYS)
    never = literal(NEVER, UTCDateTime())
    orders, parcels = Order.__table__, Parcel.__table__
    if store.platform != "shopify":
        return
    on = enabled(settings)
    n_unfulfilled = int(settings["unfulfilled_after_business_days"])
    blocked = or_(orders.c.cancelled_at.is_not(None), orders.c.fulfilled_at.is_not(None),
                  orders.c.financial_status.is_(None), orders.c.financial_status.not_in(PAID))
    order_next = case((blocked, never), else_=deadline_expr(
        orders.c.created_at_remote, calendar, n_unfulfilled, now, 2)) if "unfulfilled" in on else never
    order_next = func.nullif(order_next, never)
    chosen = (_picked(Order, orders.c.created_at_remote, store.id, since, now, changed_since) if not full else
              _open(Order, orders.c.created_at_remote, orders.c.fulfilled_at, store.id, since))
    _store_checks(session, orders, store.id, chosen, orders.c.created_at_remote, since, order_next)
    silent = func.coalesce(parcels.c.last_event_at, parcels.c.shipped_at)
    candidates = [deadline_expr(silent, calendar, int(settings[f"{kind}_after_business_days"]), now, 2)
                  for kind in ("no_scan", "lost") if kind in on]
    n_late = int(settings["past_estimate_business_days"])
    by_history: Any = never
    stats = stored_stats(session, store.id, int(settings["min_history_samples"]))
    if stats:
        country = (select(func.coalesce(Customer.country, "")).select_from(orders)
                   .join(Customer, Customer.id == orders.c.customer_id)
                   .where(orders.c.id == parcels.c.order_id).scalar_subquery())
        group = func.coalesce(country, "") + literal("|") + func.coalesce(parcels.c.tracking_company, "")
        by_history = case(
            {f"{c}|{k}": deadline_expr(parcels.c.shipped_at, calendar, n_late, now, 2 + math.ceil(stat.p90_days),
                                       shift=timedelta(days=stat.p90_days))
             for (c, k), stat in sorted(stats.items())}, value=group, else_=never)
    if "past_estimate" in on:
        candidates.append(case(
            (parcels.c.estimated_delivery_at.is_not(None),
             deadline_expr(parcels.c.estimated_delivery_at, calendar, n_late, now, ESTIMATE_AHEAD_DAYS)),
            else_=by_history))
    settled = or_(parcels.c.delivered_at.is_not(None), parcels.c.fulfillment_status == "CANCELLED",
                  parcels.c.status.in_(SETTLED))
    # attempted and failed come with a carrier event, which marks the parcel changed: no moment to wait for.
    parcel_next = (case((settled, never), else_=_least(session, *candidates) if len(candidates) > 1 else candidates[0])
                   if candidates else never)
    parcel_next = func.nullif(parcel_next, never)
    chosen = (_picked(Parcel, parcels.c.shipped_at, store.id, since, now, changed_since) if not full else
              _open(Parcel, parcels.c.shipped_at, parcels.c.delivered_at, store.id, since))
    _store_checks(session, parcels, store.id, chosen, parcels.c.shipped_at, since, parcel_next)
    # Every moment just stored is still to come: what is due now was read and needs nothing more (it stalled,
    # cannot any more, or left the look-back). An entry of a row that can no longer stall stays until its moment,
    # which then reads the row once for nothing.
    session.execute(delete(StallCheck).where(StallCheck.store_id == store.id, StallCheck.check_at <= now))


def fingerprint(store: Store, settings: Mapping[str, Any], stats: Mapping[Any, Any]) -> str:
    """Digest what the stored next checks depend on: thresholds, the store's calendar, the transit estimates."""
    facts = [store.platform, store.country, store.timezone, MAX_AGE_DAYS,
             *(settings[k] for k in THRESHOLDS), settings["min_history_samples"], sorted(enabled(settings)),
             sorted([c, k, round(stat.p90_days, 6)] for (c, k), stat in stats.items())]
    return hashlib.sha256(json.dumps(facts, default=str).encode()).hexdigest()


# -- auto-resolve: a problem whose cause went away closes its ticket ------------------------------------------


def cause_gone(problem: str, row: Any, cutoffs: Mapping[str, datetime]) -> str | None:
    """Say why a recorded problem no longer holds (a note for its ticket), or None while it does."""
    if row.cancelled_at is not None:
        return "the order was cancelled"
    if problem == "unfulfilled":
        if row.fulfilled_at is not None:
            return "the order was fulfilled"
        if row.financial_status not in PAID:
            return f"the order is no longer paid ({row.financial_status})"
        return None
    if row.fulfillment_status == "CANCELLED":
        return "the parcel's fulfilment was cancelled"
    if row.delivered_at is not None or row.status == "DELIVERED":
        return "the parcel was delivered"
    if problem in ("attempted", "failed"):
        wanted = "ATTEMPTED_DELIVERY" if problem == "attempted" else "FAILURE"
        return None if row.status == wanted else f"a new carrier event moved it on ({row.status or 'none'})"
    if row.status in SETTLED:
        return f"a new carrier event moved it on ({row.status})"
    if problem in ("no_scan", "lost"):
        silent = row.last_event_at or row.shipped_at
        return None if silent is not None and silent < cutoffs[problem] else "a new carrier event moved it on"
    if problem == "past_estimate" and row.estimated_delivery_at is not None \
            and row.estimated_delivery_at >= cutoffs["past_estimate"]:
        return "the carrier gave a later estimate"
    return None


def resolve_gone(session: Session, store: Store, settings: Mapping[str, Any], now: datetime,
                 changed_since: datetime | None) -> list[tuple[int, str]]:
    """Resolve the problems of changed orders and parcels whose cause went away, and their open tickets; return
    the tickets resolved.

    Only a change can take a cause away (time makes a stall older, never younger): the rows written since the
    high-water mark are read; without one (a store's first run), every unresolved problem. A resolved problem frees
    its subject: the same parcel stalling again is found as a new problem. One whose ticket the merchant closed is
    resolved here too, without a note, once its cause is gone.
    """
    if store.platform != "shopify":
        return []
    calendar = Calendar.for_store(store.country, store.timezone)
    since = now - timedelta(days=MAX_AGE_DAYS)
    cutoffs = {"no_scan": calendar.cutoff(now, int(settings["no_scan_after_business_days"])),
               "lost": calendar.cutoff(now, int(settings["lost_after_business_days"])),
               "past_estimate": calendar.cutoff(now, int(settings["past_estimate_business_days"]))}
    query = (select(DeliveryProblem.id, DeliveryProblem.problem, DeliveryProblem.ticket_id,
                    Ticket.status.label("ticket"), Order.cancelled_at, Order.fulfilled_at, Order.financial_status,
                    Parcel.fulfillment_status, Parcel.status, Parcel.delivered_at, Parcel.last_event_at,
                    Parcel.shipped_at, Parcel.estimated_delivery_at)
             .join(Ticket, Ticket.id == DeliveryProblem.ticket_id, isouter=True)
             .join(Order, Order.id == DeliveryProblem.order_id)
             .join(Parcel, Parcel.id == DeliveryProblem.parcel_id, isouter=True)
             .where(DeliveryProblem.store_id == store.id, DeliveryProblem.resolved_at.is_(None))
             .order_by(DeliveryProblem.id))
    if changed_since is not None:
        query = query.where(or_(
            DeliveryProblem.order_id.in_(_changed(Order, Order.created_at_remote, store.id, since, changed_since)),
            DeliveryProblem.parcel_id.in_(_changed(Parcel, Parcel.shipped_at, store.id, since, changed_since))))
    done, gone = [], []
    for row in session.execute(query).all():
        why = cause_gone(row.problem, row, cutoffs)
        if why is None:
            continue
        gone.append(row.id)
        if row.ticket == "open" and _resolve_if_open(session, row.ticket_id, f"Resolved automatically: {why}.", now):
            done.append((row.ticket_id, why))
    for chunk in chunked(gone, IN_CHUNK):
        session.execute(update(DeliveryProblem).where(DeliveryProblem.id.in_(chunk)).values(resolved_at=now))
    return done


def _resolve_if_open(session: Session, ticket_id: int, note: str, now: datetime) -> bool:
    """Resolve the ticket with the note unless it is no longer open; say whether it was.

    One conditional UPDATE: a merchant who resolved it after the run read it (PostgreSQL READ COMMITTED re-checks
    the condition on the row they committed) keeps their resolution, which the customer's follow-up quotes.
    """
    resolved = session.execute(update(Ticket).where(Ticket.id == ticket_id, Ticket.status == "open")
                               .values(status="resolved", resolved_at=now, resolution=note, remedy=None,
                                       updated_at=now)
                               .returning(Ticket.id)).first()
    if resolved is None:
        return False
    add_note(session, ticket_id, note, now, author="Aftercare")
    return True


@dataclass(frozen=True)
class Outcome:
    """What one detection run did: problems found first (with their tickets), tickets resolved, the path taken."""

    found: list[Found]
    resolved: list[tuple[int, str]]
    full: bool


def detect(session: Session, config: Config, store: Store, settings: Mapping[str, Any], now: datetime,
           full: bool = False) -> Outcome:
    """Find the store's new delivery problems, open their tickets, resolve those whose cause went away.

    Incremental unless ``full`` or what the stored next checks were computed under changed (thresholds, calendar,
    transit estimates: see ``fingerprint``): then every row of the look-back is read and its next check
    recomputed. A re-run finds nothing.
    """
    if store.platform == "amazon":
        if not settings["amazon_late_shipments"]:
            return Outcome([], [], True)
        # Amazon's seller-fulfilled orders are few and dated by Amazon: one indexed read of the look-back.
        return Outcome(open_tickets(session, config, store, settings, now, detect_amazon(session, store, now)),
                       [], True)
    # The high-water mark is on the database's clock, as updated_at is (the job's clock may differ: tests).
    started = session.scalar(select(type_coerce(func.now(), UTCDateTime())))
    stats = stored_stats(session, store.id, int(settings["min_history_samples"]))
    digest = fingerprint(store, settings, stats)
    state = session.get(DeliveryStallState, store.id)
    changed_since = state.changed_since if state is not None else None
    full = full or state is None or state.fingerprint != digest
    scope = None if full else changed_since
    found = open_tickets(session, config, store, settings, now, detect_shopify(session, store, settings, now, scope))
    resolved = resolve_gone(session, store, settings, now, changed_since)
    update_next_checks(session, store, settings, now, scope)
    mark = started - CHANGE_OVERLAP
    if state is None:
        session.add(DeliveryStallState(store_id=store.id, fingerprint=digest, checked_at=now, changed_since=mark))
    else:
        state.fingerprint, state.checked_at, state.changed_since = digest, now, mark
    session.flush()
    return Outcome(found, resolved, full)
