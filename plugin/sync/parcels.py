"""The owner of parcel and parcel-event rows: every fulfilment and carrier milestone is written here.

Writers: the order sync and order webhooks (``upsert_parcels`` with each order's fulfilments), the
``fulfillments/create``/``fulfillments/update`` and ``fulfillment_events/create`` webhooks
(``plugin.sync.orders.apply_fulfillment``) and the sync's event pass (``ingest_events``).

Rules every writer keeps, so a replayed or out-of-order report changes nothing twice:
- an event is stored once per Shopify event id (``parcel_event`` is unique on it; a replay is ignored);
- a parcel's ``status``, ``last_event_at``, ``delivered_at`` and estimate are derived from the set of its events
  (the latest by ``happened_at``), never from the order reports arrived in;
- a fulfilment report older (``updatedAt``) than the stored one leaves tracking as it is; its status only moves
  forward (connectors.delivery) and of two delivery times the earlier is kept;
- the order follows its parcels (``refresh_orders``): delivered when the last parcel that ships is.
Events, parcels and orders are written in set-based statements (plugin.sync.parcels_staged: on PostgreSQL through
a COPYed staging table); the row-by-row functions here (``bulk=False``) are the reference they are tested against.
Functions take a ``Session`` and never commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from connectors import delivery
from connectors.records import FulfillmentEventRecord, FulfillmentRecord
from plugin.models import Order, Parcel, ParcelEvent
from plugin.sync.parcels_staged import advance_parcels_bulk, refresh_orders_bulk, store_events_staged
from plugin.sync.sql import IN_CHUNK, chunked, insert_for

PARCELS: Table = Parcel.__table__  # type: ignore[assignment]
EVENTS: Table = ParcelEvent.__table__  # type: ignore[assignment]
# Statuses whose parcel is on its way or arrived (connectors.delivery.SHIPS); cancelled ones never count.
SHIPS = delivery.SHIPS


def fulfillment_gid(external_id: str) -> str:
    """Return the global id of a fulfilment from its numeric id."""
    return external_id if external_id.startswith("gid://") else f"gid://shopify/Fulfillment/{external_id}"


def event_gid(external_id: str) -> str:
    """Return the global id of a fulfilment event from its numeric id."""
    return external_id if external_id.startswith("gid://") else f"gid://shopify/FulfillmentEvent/{external_id}"


def as_record(parcel: Parcel) -> FulfillmentRecord:
    """Return a stored parcel as the fulfilment record the order rule (connectors.delivery) reads."""
    return FulfillmentRecord(external_id=parcel.fulfillment_gid.rsplit("/", 1)[-1], status=parcel.fulfillment_status,
                             created_at=parcel.shipped_at, delivered_at=parcel.delivered_at,
                             updated_at=parcel.remote_updated_at, estimated_delivery_at=parcel.estimated_delivery_at)


def stored_records(session: Session, order_id: int) -> tuple[FulfillmentRecord, ...]:
    """Return an order's stored parcels as fulfilment records, in id order."""
    return tuple(as_record(p) for p in session.scalars(
        select(Parcel).where(Parcel.order_id == order_id).order_by(Parcel.id)))


def _newer(report: datetime | None, stored: datetime | None) -> bool:
    return report is None or stored is None or report >= stored


def _merged_values(stored: Parcel | None, report: FulfillmentRecord) -> dict[str, Any]:
    """Return the parcel columns a report sets, merged with the stored row by the module's rules."""
    known = as_record(stored) if stored is not None else None
    merged = delivery.merge_one(known, report)
    values: dict[str, Any] = {
        "fulfillment_status": merged.status if merged.status in _STATUSES else SHIPS,
        "shipped_at": merged.created_at, "delivered_at": merged.delivered_at,
    }
    if stored is not None:
        # A delivery event's time is exact; a report's (REST: its last update) only fills a gap.
        values["delivered_at"] = stored.delivered_at if stored.status == "DELIVERED" else merged.delivered_at
    fresh = stored is None or _newer(report.updated_at, stored.remote_updated_at)
    for name in ("name", "tracking_company", "tracking_number", "tracking_url"):
        value = getattr(report, name)
        if value is not None and fresh:
            values[name] = value
    if report.estimated_delivery_at is not None and fresh and (stored is None or stored.last_event_at is None):
        values["estimated_delivery_at"] = report.estimated_delivery_at  # events, when there are any, say more
    if report.updated_at is not None and (stored is None or _newer(report.updated_at, stored.remote_updated_at)):
        values["remote_updated_at"] = report.updated_at
    return values


_STATUSES = frozenset({"PENDING", "OPEN", "SUCCESS", "CANCELLED", "ERROR", "FAILURE"})


def upsert_parcels(session: Session, store_id: int, reports: Sequence[tuple[int, FulfillmentRecord]]) -> set[int]:
    """Insert or update the parcels of (order id, fulfilment report) pairs; return the ids of orders whose parcels
    changed (their facts need ``refresh_orders``)."""
    if not reports:
        return set()
    gids = {fulfillment_gid(r.external_id) for _, r in reports}
    stored: dict[str, Parcel] = {}
    for chunk in chunked(sorted(gids), IN_CHUNK):
        stored.update((p.fulfillment_gid, p) for p in session.scalars(select(Parcel).where(
            Parcel.store_id == store_id, Parcel.fulfillment_gid.in_(chunk))))
    changed: set[int] = set()
    new: dict[str, dict[str, Any]] = {}
    for order_id, report in reports:
        gid = fulfillment_gid(report.external_id)
        row = stored.get(gid)
        if row is None and gid in new:
            new[gid].update({k: v for k, v in _merged_values(None, report).items() if v is not None})
            continue
        values = _merged_values(row, report)
        if row is None:
            new[gid] = {"store_id": store_id, "order_id": order_id, "fulfillment_gid": gid, **values}
            changed.add(order_id)
            continue
        diff = {k: v for k, v in values.items() if getattr(row, k) != v}
        if row.order_id != order_id:
            diff["order_id"] = order_id
        for key, value in diff.items():
            setattr(row, key, value)
        if set(diff) - {"remote_updated_at"}:  # a newer copy saying the same is bookkeeping, not a change
            changed.add(order_id)
    if new:
        columns = ("store_id", "order_id", "fulfillment_gid", "name", "fulfillment_status", "tracking_company",
                   "tracking_number", "tracking_url", "estimated_delivery_at", "shipped_at", "delivered_at",
                   "remote_updated_at")
        session.execute(insert_for(session, PARCELS), [{c: row.get(c) for c in columns} for row in new.values()])
    session.flush()
    return changed


@dataclass(frozen=True)
class EventIngest:
    """What an event ingest did: events newly stored, parcels and orders refreshed, events of unknown parcels."""

    stored: int
    parcels: set[int]
    orders: set[int]
    unknown_parcel: int


def ingest_events(session: Session, store_id: int, events: Iterable[FulfillmentEventRecord], *,
                  batch_size: int = 1000, bulk: bool = True) -> EventIngest:
    """Store carrier events (once per event id), then derive their parcels' and orders' state from them.

    Events of a fulfilment we do not know yet are counted, not stored: the order sync brings the parcel and the
    event pass reads its events again. Parcels and orders are moved on in set-based statements, on PostgreSQL
    after the batch went through a staging table (plugin.sync.parcels_staged); ``bulk=False`` takes the row path
    (the reference the bulk path is tested against: same rules, same rows).
    """
    staged = bulk and session.get_bind().dialect.name == "postgresql"
    stored = unknown = 0
    parcels: set[int] = set()
    orders: set[int] = set()
    for batch in chunked(events, batch_size):
        if staged:
            returned, missing = store_events_staged(session, store_id, _staging_rows(batch))
        else:
            # The set-based advance reads the new events by id; the row path moves parcels on from their values.
            returned, missing = _store_events(session, store_id, batch, values=not bulk)
        unknown += missing
        stored += len(returned)
        new: dict[int, list[Any]] = {}
        for row in returned:
            new.setdefault(row.parcel_id, []).append(row)
        parcels |= set(new)
        orders |= advance_parcels_bulk(session, new) if bulk else advance_parcels(session, new)
    refresh_orders(session, orders, bulk=bulk)
    return EventIngest(stored=stored, parcels=parcels, orders=orders, unknown_parcel=unknown)


def _staging_rows(batch: Sequence[FulfillmentEventRecord]) -> Iterator[tuple[Any, ...]]:
    """Yield a batch's events as rows of the staging table (plugin.sync.parcels_staged.STAGE_EVENTS)."""
    for pos, e in enumerate(batch):
        yield (event_gid(e.external_id), e.status, e.happened_at, e.estimated_delivery_at, e.city, e.province,
               e.country, e.message, fulfillment_gid(e.fulfillment_id), pos)


def _store_events(session: Session, store_id: int, batch: Sequence[FulfillmentEventRecord],
                  values: bool = True) -> tuple[list[Any], int]:
    """Store one batch of events row by row; return the rows newly stored (parcel_id, id and, with ``values``,
    status, happened_at, estimated_delivery_at) and how many named an unknown parcel."""
    gids = sorted({fulfillment_gid(e.fulfillment_id) for e in batch})
    parcel_ids: dict[str, int] = {}
    for chunk in chunked(gids, IN_CHUNK):
        parcel_ids.update(session.execute(select(Parcel.fulfillment_gid, Parcel.id).where(
            Parcel.store_id == store_id, Parcel.fulfillment_gid.in_(chunk))).all())
    rows = {}
    unknown = 0
    for e in batch:
        parcel_id = parcel_ids.get(fulfillment_gid(e.fulfillment_id))
        if parcel_id is None:
            unknown += 1
            continue
        rows[event_gid(e.external_id)] = {
            "store_id": store_id, "parcel_id": parcel_id, "event_gid": event_gid(e.external_id),
            "status": e.status, "happened_at": e.happened_at, "estimated_delivery_at": e.estimated_delivery_at,
            "city": e.city, "province": e.province, "country": e.country, "message": e.message}
    if not rows:
        return [], unknown
    stmt = insert_for(session, EVENTS).on_conflict_do_nothing(index_elements=["store_id", "event_gid"])
    if not values and session.get_bind().dialect.name == "sqlite":
        # Without RETURNING SQLite's driver runs the executemany itself (a raw insert's cost). Its transactions
        # begin IMMEDIATE, so no other writer adds rows meanwhile: the rows stored are those past the largest id.
        after = session.scalar(select(func.coalesce(func.max(EVENTS.c.id), 0)))
        session.execute(stmt, list(rows.values()))
        return list(session.execute(select(EVENTS.c.parcel_id, EVENTS.c.id).where(EVENTS.c.id > after)
                                    .order_by(EVENTS.c.id)).all()), unknown
    # A replayed event hits the unique key and returns nothing: only new events touch their parcel.
    extra = (EVENTS.c.status, EVENTS.c.happened_at, EVENTS.c.estimated_delivery_at) if values else ()
    returned = session.execute(stmt.returning(EVENTS.c.parcel_id, EVENTS.c.id, *extra), list(rows.values())).all()
    return list(returned), unknown


def advance_parcels(session: Session, new: dict[int, list[Any]]) -> set[int]:
    """Move parcels on by the events just stored for them; return the orders whose delivery or estimate moved.

    Events that come after everything the parcel knew (the usual case: carriers report in order) advance it from
    its stored state; a parcel that got an earlier event than its last one, or a delivery, is derived again from
    all its events (``refresh_parcels``), so the result never depends on the order events arrived in.
    """
    if not new:
        return set()
    orders: set[int] = set()
    again: list[int] = []
    changes = []
    for chunk in chunked(sorted(new), IN_CHUNK):
        for row in session.execute(select(PARCELS.c.id, PARCELS.c.order_id, PARCELS.c.last_event_at,
                                          PARCELS.c.estimated_delivery_at).where(PARCELS.c.id.in_(chunk))):
            events = sorted(new[row.id], key=lambda e: (e.happened_at, e.id))
            if any(e.status == "DELIVERED" for e in events) or (
                    row.last_event_at is not None and events[0].happened_at < row.last_event_at):
                again.append(row.id)
                continue
            estimates = [e.estimated_delivery_at for e in events if e.estimated_delivery_at is not None]
            estimate = estimates[-1] if estimates else row.estimated_delivery_at
            changes.append({"pid": row.id, "status": events[-1].status, "last_event_at": events[-1].happened_at,
                            "estimated_delivery_at": estimate})
            if estimate != row.estimated_delivery_at:
                orders.add(row.order_id)
    if changes:
        session.execute(update(PARCELS).where(PARCELS.c.id == bindparam("pid"))
                        .values(status=bindparam("status"), last_event_at=bindparam("last_event_at"),
                                estimated_delivery_at=bindparam("estimated_delivery_at"), updated_at=func.now())
                        .execution_options(synchronize_session=False), changes)
    return orders | refresh_parcels(session, again)


def refresh_parcels(session: Session, parcel_ids: Iterable[int]) -> set[int]:
    """Derive each parcel's status, last event, delivery time and estimate from its stored events; return the
    ids of the orders whose parcels' delivery or estimate moved (they need ``refresh_orders``).

    The latest event by ``happened_at`` (then id) gives the status; the first delivery event the delivery time;
    the latest event carrying an estimate the estimate. Read per chunk in one query, written only where a value
    differs (one executemany).
    """
    ids = sorted(set(parcel_ids))
    orders: set[int] = set()
    for chunk in chunked(ids, IN_CHUNK):
        derived: dict[int, dict[str, Any]] = {}
        for parcel_id, status, happened, estimate in session.execute(
                select(EVENTS.c.parcel_id, EVENTS.c.status, EVENTS.c.happened_at, EVENTS.c.estimated_delivery_at)
                .where(EVENTS.c.parcel_id.in_(chunk)).order_by(EVENTS.c.parcel_id, EVENTS.c.happened_at,
                                                               EVENTS.c.id)):
            d = derived.setdefault(parcel_id, {"status": None, "last_event_at": None, "delivered": None,
                                               "estimate": None})
            d["status"], d["last_event_at"] = status, happened
            if status == "DELIVERED" and d["delivered"] is None:
                d["delivered"] = happened
            if estimate is not None:
                d["estimate"] = estimate
        changes = []
        for row in session.execute(select(PARCELS.c.id, PARCELS.c.order_id, PARCELS.c.status, PARCELS.c.last_event_at,
                                          PARCELS.c.delivered_at, PARCELS.c.estimated_delivery_at)
                                   .where(PARCELS.c.id.in_(chunk))):
            d = derived.get(row.id)
            if d is None:
                continue
            new = {"status": d["status"], "last_event_at": d["last_event_at"],
                   "delivered_at": d["delivered"] or row.delivered_at,
                   "estimated_delivery_at": d["estimate"] or row.estimated_delivery_at}
            old = {"status": row.status, "last_event_at": row.last_event_at, "delivered_at": row.delivered_at,
                   "estimated_delivery_at": row.estimated_delivery_at}
            if new != old:
                changes.append({"pid": row.id, **new})
                if (new["delivered_at"], new["estimated_delivery_at"]) != (old["delivered_at"],
                                                                            old["estimated_delivery_at"]):
                    orders.add(row.order_id)
        if changes:
            session.execute(update(PARCELS).where(PARCELS.c.id == bindparam("pid"))
                            .values(status=bindparam("status"), last_event_at=bindparam("last_event_at"),
                                    delivered_at=bindparam("delivered_at"),
                                    estimated_delivery_at=bindparam("estimated_delivery_at"),
                                    updated_at=func.now())
                            .execution_options(synchronize_session=False), changes)
    return orders


def refresh_orders(session: Session, order_ids: Iterable[int], *, bulk: bool = True) -> None:
    """Make each order follow its parcels: fulfilled when the first that ships left, delivered when the last
    arrived, the latest carrier estimate of those that ship. Orders without a parcel keep their facts; only
    orders whose facts differ are written (their updated_at moves: the replenishment planner reads it).

    One set-based UPDATE (plugin.sync.parcels_staged) unless ``bulk=False`` (the row path: read, compare, write).
    """
    ids = sorted(set(order_ids))
    if bulk:
        refresh_orders_bulk(session, ids, SHIPS)
        return
    orders: Table = Order.__table__  # type: ignore[assignment]
    for chunk in chunked(ids, IN_CHUNK):
        facts: dict[int, list[tuple[Any, Any, Any]]] = {}
        listed: set[int] = set()
        for order_id, status, shipped, delivered, estimate in session.execute(
                select(PARCELS.c.order_id, PARCELS.c.fulfillment_status, PARCELS.c.shipped_at,
                       PARCELS.c.delivered_at, PARCELS.c.estimated_delivery_at)
                .where(PARCELS.c.order_id.in_(chunk))):
            listed.add(order_id)
            if status == SHIPS:
                facts.setdefault(order_id, []).append((shipped, delivered, estimate))
        changes = []
        for row in session.execute(select(orders.c.id, orders.c.fulfilled_at, orders.c.delivered_at,
                                          orders.c.estimated_delivery_at).where(orders.c.id.in_(sorted(listed)))):
            ships = facts.get(row.id, [])
            shipped = [s for s, _, _ in ships if s is not None]
            delivered = [d for _, d, _ in ships]
            estimates = [e for _, _, e in ships if e is not None]
            new = {"fulfilled_at": min(shipped) if shipped else None,
                   "delivered_at": max(delivered) if delivered and None not in delivered else None,  # type: ignore[type-var]
                   "estimated_delivery_at": max(estimates) if estimates else row.estimated_delivery_at}
            if new != {"fulfilled_at": row.fulfilled_at, "delivered_at": row.delivered_at,
                       "estimated_delivery_at": row.estimated_delivery_at}:
                changes.append({"oid": row.id, **new})
        if changes:
            session.execute(update(orders).where(orders.c.id == bindparam("oid"))
                            .values(fulfilled_at=bindparam("fulfilled_at"), delivered_at=bindparam("delivered_at"),
                                    estimated_delivery_at=bindparam("estimated_delivery_at"), updated_at=func.now())
                            .execution_options(synchronize_session=False), changes)


def erase_delivery_details(session: Session, order_ids: Sequence[int]) -> int:
    """Erase what the orders' parcels say of where and to whom they went (customers/redact); return events erased.

    Tracking numbers and links lead to the delivery address; a carrier's event can name the city and the person who
    signed ("Left with J. Doe"). What stays is anonymous: carrier, statuses and times (the transit estimates use them).
    Rows already erased are not written again, so the daily sweep (plugin.webhooks.compliance.sweep_redacted) costs
    only the reads.
    """
    erased = 0
    places = (EVENTS.c.city, EVENTS.c.province, EVENTS.c.country, EVENTS.c.message)
    for chunk in chunked(sorted(set(order_ids)), IN_CHUNK):
        parcel_ids = select(PARCELS.c.id).where(PARCELS.c.order_id.in_(chunk)).scalar_subquery()
        session.execute(update(PARCELS).where(PARCELS.c.order_id.in_(chunk), or_(
            PARCELS.c.tracking_number.is_not(None), PARCELS.c.tracking_url.is_not(None)))
                        .values(tracking_number=None, tracking_url=None))
        erased += int(session.execute(update(EVENTS).where(EVENTS.c.parcel_id.in_(parcel_ids),
                                                           or_(*(c.is_not(None) for c in places)))
                                      .values(city=None, province=None, country=None, message=None)).rowcount or 0)
    return erased


def parcels_to_read(session: Session, store_id: int, since: datetime, limit: int) -> list[Parcel]:
    """Return parcels whose events the sync should read: shipping, shipped after ``since``, and changed in Shopify
    since their events were last read (or never read)."""
    return list(session.scalars(select(Parcel).where(
        Parcel.store_id == store_id, Parcel.fulfillment_status == SHIPS, Parcel.shipped_at >= since,
        (Parcel.events_synced_at.is_(None)) | (Parcel.remote_updated_at > Parcel.events_synced_at))
        .order_by(Parcel.id).limit(limit)))
