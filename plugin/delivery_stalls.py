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

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    String,
    and_,
    bindparam,
    cast,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from plugin.business_days import Calendar
from plugin.config import Config
from plugin.delivery_estimates import stored_stats
from plugin.models import Customer, DeliveryProblem, Order, Parcel, Store, Ticket
from plugin.tickets import sla_due
from plugin.types import UTCDateTime

MAX_AGE_DAYS = 60
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
            .on_conflict_do_nothing(index_elements=["store_id", "problem", "subject"])
            .returning(DeliveryProblem.id, DeliveryProblem.order_id, DeliveryProblem.parcel_id))
    return [tuple(r) for r in session.execute(stmt)]


def _not_recorded(store_id: int, problem: str, subject: Any) -> Any:
    """Skip what was found before in the SELECT itself: re-runs then read the index and write nothing."""
    return ~select(DeliveryProblem.id).where(DeliveryProblem.store_id == store_id, DeliveryProblem.problem == problem,
                                             DeliveryProblem.subject == subject).exists()


def _orders(store_id: int, problem: str, *where: Any) -> Any:
    subject = literal("order=") + cast(Order.id, String)
    return select(Order.id.label("order_id")).where(Order.store_id == store_id, Order.cancelled_at.is_(None),
                                                    _not_recorded(store_id, problem, subject), *where)


def _parcels(store_id: int, problem: str, since: datetime, *where: Any) -> Any:
    subject = literal("parcel=") + cast(Parcel.id, String)
    return (select(Parcel.order_id.label("order_id"))
            .join(Order, Order.id == Parcel.order_id)
            .where(Parcel.store_id == store_id, Parcel.delivered_at.is_(None), Parcel.fulfillment_status != "CANCELLED",
                   Parcel.shipped_at >= since, Order.cancelled_at.is_(None),
                   _not_recorded(store_id, problem, subject), *where))


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
                   ) -> dict[str, list[tuple[int, int, int | None]]]:
    """Record the Shopify store's new delivery problems (one statement per kind); return them per kind."""
    calendar = Calendar.for_store(store.country, store.timezone)
    since = now - timedelta(days=MAX_AGE_DAYS)
    found: dict[str, list[tuple[int, int, int | None]]] = {}
    unfulfilled = calendar.cutoff(now, int(settings["unfulfilled_after_business_days"]))
    found["unfulfilled"] = _record(session, store.id, "unfulfilled", now, _orders(
        store.id, "unfulfilled", Order.fulfilled_at.is_(None), Order.financial_status.in_(PAID),
        Order.created_at_remote < unfulfilled, Order.created_at_remote >= since), per_parcel=False)
    silent_since = func.coalesce(Parcel.last_event_at, Parcel.shipped_at)
    unsettled = or_(Parcel.status.is_(None), Parcel.status.not_in(SETTLED))
    for kind, setting in (("no_scan", "no_scan_after_business_days"), ("lost", "lost_after_business_days")):
        cutoff = calendar.cutoff(now, int(settings[setting]))
        found[kind] = _record(session, store.id, kind, now, _parcels(
            store.id, kind, since, unsettled, silent_since < cutoff), per_parcel=True)
    for kind, status in (("attempted", "ATTEMPTED_DELIVERY"), ("failed", "FAILURE")):
        found[kind] = _record(session, store.id, kind, now, _parcels(store.id, kind, since, Parcel.status == status),
                              per_parcel=True)
    late = calendar.cutoff(now, int(settings["past_estimate_business_days"]))
    found["past_estimate"] = _record(session, store.id, "past_estimate", now, _parcels(
        store.id, "past_estimate", since, unsettled, Parcel.estimated_delivery_at < late), per_parcel=True)
    history = _history_thresholds(session, store.id, now, late, settings)
    if history is not None:
        query = (_parcels(store.id, "past_estimate", since, unsettled, Parcel.estimated_delivery_at.is_(None))
                 .join(Customer, Customer.id == Order.customer_id, isouter=True)
                 .join(history, and_(history.c.country == func.coalesce(Customer.country, ""),
                                     history.c.carrier == func.coalesce(Parcel.tracking_company, "")))
                 .where(Parcel.shipped_at < history.c.before))
        found["past_estimate"] += _record(session, store.id, "past_estimate", now, query, per_parcel=True)
    return found


def detect_amazon(session: Session, store: Store, now: datetime) -> dict[str, list[tuple[int, int, int | None]]]:
    """Record the Amazon store's late seller-fulfilled orders (Amazon's own ship-by and deliver-by dates)."""
    since = now - timedelta(days=MAX_AGE_DAYS)
    mfn = Order.fulfillment_channel == "MFN"
    return {
        "amazon_late_ship": _record(session, store.id, "amazon_late_ship", now, _orders(
            store.id, "amazon_late_ship", mfn, Order.fulfilled_at.is_(None),
            Order.fulfillment_status.in_(("unshipped", "partially_shipped")),
            Order.latest_ship_at < now, Order.latest_ship_at >= since), per_parcel=False),
        "amazon_late_delivery": _record(session, store.id, "amazon_late_delivery", now, _orders(
            store.id, "amazon_late_delivery", mfn, Order.fulfilled_at.is_not(None),
            Order.fulfillment_status.in_(("shipped", "partially_shipped")),
            Order.latest_delivery_at < now, Order.latest_delivery_at >= since), per_parcel=False),
    }


def _subject_line(problem: str, settings: Mapping[str, Any], name: str | None, tracking: str | None) -> str:
    threshold = {"unfulfilled": "unfulfilled_after_business_days", "no_scan": "no_scan_after_business_days",
                 "lost": "lost_after_business_days"}.get(problem)
    words = WORDS[problem].format(n=settings[threshold] if threshold else "")
    parcel = f" (parcel {tracking})" if tracking else ""
    return f"Order {name or ''}{parcel}: {words}".replace("Order :", "Order:")


def open_tickets(session: Session, config: Config, store: Store, settings: Mapping[str, Any], now: datetime,
                 found: dict[str, list[tuple[int, int, int | None]]]) -> list[Found]:
    """Open one ticket per newly recorded problem (severity by kind, SLA clock from now) and link it."""
    new = [(kind, *row) for kind, rows in found.items() for row in rows]
    if not new:
        return []
    orders = {o.id: (o.name, o.customer_id) for o in session.execute(
        select(Order.id, Order.name, Order.customer_id).where(Order.id.in_({r[2] for r in new}))).all()}
    parcel_ids = {r[3] for r in new if r[3] is not None}
    tracking = dict(session.execute(select(Parcel.id, Parcel.tracking_number).where(Parcel.id.in_(parcel_ids))).all()
                    ) if parcel_ids else {}
    due = {s: sla_due(session, config, store.id, s, now) for s in set(SEVERITY.values())}
    # Each new ticket is told apart by (order, subject): the subject names the kind and the parcel, made unique
    # within the run. One executemany INSERT (a cached statement) writes them all, one SELECT of this run's tickets
    # (opened now) reads their ids back: no reliance on the order RETURNING yields rows in, undefined in SQLite.
    subjects: list[str] = []
    taken: set[tuple[int, str]] = set()
    for kind, _, order_id, parcel_id in new:
        subject = _subject_line(kind, settings, orders[order_id][0], tracking.get(parcel_id) or
                                (f"#{parcel_id}" if parcel_id else None))[:500]
        base, n = subject, 2
        while (order_id, subject) in taken:
            subject, n = f"{base} ({n})", n + 1
        taken.add((order_id, subject))
        subjects.append(subject)
    table = Ticket.__table__
    session.connection().execute(insert(table), [
        {"store_id": store.id, "source": "delivery", "severity": SEVERITY[kind], "status": "open",
         "subject": subject, "opened_at": now, "sla_due_at": due[SEVERITY[kind]],
         "customer_id": orders[order_id][1], "order_id": order_id, "created_at": now, "updated_at": now}
        for (kind, _, order_id, _), subject in zip(new, subjects, strict=True)])
    ids_by_key = {(order_id, subject): tid for tid, order_id, subject in session.connection().execute(
        select(table.c.id, table.c.order_id, table.c.subject).where(
            table.c.store_id == store.id, table.c.source == "delivery", table.c.opened_at == now))
        if (order_id, subject) in taken}
    ids = [ids_by_key[(order_id, subject)] for (_, _, order_id, _), subject in zip(new, subjects, strict=True)]
    table = DeliveryProblem.__table__
    # Core executemany: one prepared UPDATE for all rows (the ORM's bulk path wants primary-key-named keys).
    session.connection().execute(update(table).where(table.c.id == bindparam("pid")).values(ticket_id=bindparam("tid")),
                                 [{"pid": row[1], "tid": tid} for row, tid in zip(new, ids, strict=True)])
    return [Found(problem_id, kind, order_id, parcel_id, tid)
            for (kind, problem_id, order_id, parcel_id), tid in zip(new, ids, strict=True)]


def detect(session: Session, config: Config, store: Store, settings: Mapping[str, Any], now: datetime,
           ) -> list[Found]:
    """Find the store's new delivery problems and open their tickets; a re-run finds none."""
    if store.platform == "amazon":
        if not settings["amazon_late_shipments"]:
            return []
        found = detect_amazon(session, store, now)
    else:
        found = detect_shopify(session, store, settings, now)
    return open_tickets(session, config, store, settings, now, found)
