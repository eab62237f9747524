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
Functions take a ``Session`` and never commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, case, exists, func, or_, select, update
from sqlalchemy.orm import Session

from connectors import delivery
from connectors.records import FulfillmentEventRecord, FulfillmentRecord
from plugin.models import Order, Parcel, ParcelEvent
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
                  batch_size: int = 1000) -> EventIngest:
    """Store carrier events (once per event id), then derive their parcels' and orders' state from them.

    Events of a fulfilment we do not know yet are counted, not stored: the order sync brings the parcel and the
    event pass reads its events again.
    """
    stored = unknown = 0
    parcels: set[int] = set()
    for batch in chunked(events, batch_size):
        gids = sorted({fulfillment_gid(e.fulfillment_id) for e in batch})
        parcel_ids: dict[str, int] = {}
        for chunk in chunked(gids, IN_CHUNK):
            parcel_ids.update(session.execute(select(Parcel.fulfillment_gid, Parcel.id).where(
                Parcel.store_id == store_id, Parcel.fulfillment_gid.in_(chunk))).all())
        rows = {}
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
            continue
        stmt = insert_for(session, EVENTS).on_conflict_do_nothing(index_elements=["store_id", "event_gid"])
        # A replayed event hits the unique key and returns nothing: only new events touch their parcel.
        returned = session.execute(stmt.returning(EVENTS.c.parcel_id), list(rows.values())).scalars().all()
        stored += len(returned)
        parcels |= set(returned)
    orders = refresh_parcels(session, parcels)
    refresh_orders(session, orders)
    return EventIngest(stored=stored, parcels=parcels, orders=orders, unknown_parcel=unknown)


def refresh_parcels(session: Session, parcel_ids: Iterable[int]) -> set[int]:
    """Derive each parcel's status, last event, delivery time and estimate from its stored events; return the
    ids of the parcels' orders.

    One set-based UPDATE per chunk: the latest event by ``happened_at`` (then id) gives the status; the first
    delivery event the delivery time; the latest event carrying an estimate the estimate.
    """
    ids = sorted(set(parcel_ids))
    orders: set[int] = set()
    e = EVENTS.alias("e")
    for chunk in chunked(ids, IN_CHUNK):
        latest = (select(e.c.status).where(e.c.parcel_id == PARCELS.c.id)
                  .order_by(e.c.happened_at.desc(), e.c.id.desc()).limit(1).scalar_subquery())
        last_at = select(func.max(e.c.happened_at)).where(e.c.parcel_id == PARCELS.c.id).scalar_subquery()
        delivered = (select(func.min(e.c.happened_at))
                     .where(e.c.parcel_id == PARCELS.c.id, e.c.status == "DELIVERED").scalar_subquery())
        estimate = (select(e.c.estimated_delivery_at)
                    .where(e.c.parcel_id == PARCELS.c.id, e.c.estimated_delivery_at.is_not(None))
                    .order_by(e.c.happened_at.desc(), e.c.id.desc()).limit(1).scalar_subquery())
        session.execute(update(PARCELS).where(PARCELS.c.id.in_(chunk)).values(
            status=latest, last_event_at=last_at,
            delivered_at=func.coalesce(delivered, PARCELS.c.delivered_at),
            estimated_delivery_at=func.coalesce(estimate, PARCELS.c.estimated_delivery_at)))
        orders.update(session.scalars(select(Parcel.order_id).where(Parcel.id.in_(chunk))))
    return orders


def refresh_orders(session: Session, order_ids: Iterable[int]) -> None:
    """Make each order follow its parcels: fulfilled when the first that ships left, delivered when the last
    arrived, the latest carrier estimate of those still on their way. Orders without a parcel keep their facts.
    """
    ids = sorted(set(order_ids))
    p = PARCELS.alias("p")
    orders: Table = Order.__table__  # type: ignore[assignment]
    for chunk in chunked(ids, IN_CHUNK):
        ships = and_(p.c.order_id == orders.c.id, p.c.fulfillment_status == SHIPS)
        first_shipped = select(func.min(p.c.shipped_at)).where(ships).scalar_subquery()
        waiting = exists().where(ships, p.c.delivered_at.is_(None))
        last_delivered = select(func.max(p.c.delivered_at)).where(ships).scalar_subquery()
        estimate = select(func.max(p.c.estimated_delivery_at)).where(ships).scalar_subquery()
        has_parcel = exists().where(p.c.order_id == orders.c.id)
        values = {
            "fulfilled_at": first_shipped,
            "delivered_at": case((waiting, None), else_=last_delivered),
            "estimated_delivery_at": func.coalesce(estimate, orders.c.estimated_delivery_at),
        }
        # Only orders whose facts differ are written (their updated_at moves: the replenishment planner reads it).
        differs = [orders.c[name].is_distinct_from(expr) for name, expr in values.items()]
        session.execute(update(orders).where(orders.c.id.in_(chunk), has_parcel, or_(*differs)).values(**values))


def parcels_to_read(session: Session, store_id: int, since: datetime, limit: int) -> list[Parcel]:
    """Return parcels whose events the sync should read: shipping, shipped after ``since``, and changed in Shopify
    since their events were last read (or never read)."""
    return list(session.scalars(select(Parcel).where(
        Parcel.store_id == store_id, Parcel.fulfillment_status == SHIPS, Parcel.shipped_at >= since,
        (Parcel.events_synced_at.is_(None)) | (Parcel.remote_updated_at > Parcel.events_synced_at))
        .order_by(Parcel.id).limit(limit)))
