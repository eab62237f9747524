"""The owner of order and order-line rows: every order write goes through here.

Writers: the Shopify bulk backfill and incremental sync (``upsert_orders``), the Shopify order webhooks
(``upsert_webhook_order``, ``apply_fulfillment`` for fulfilments and their carrier events, ``apply_refund``),
``orders/delete`` (``delete_order``) and the Amazon sync (``upsert_orders`` with ``keep_return_flags``, and
``apply_returns``).

Rules every writer keeps:
- an older copy of an order (``updated_at`` before the stored one) never overwrites a newer one, so a slow
  backfill cannot undo a webhook that arrived meanwhile;
- an order's lines are kept equal to the record's: new lines inserted, changed ones updated, removed ones
  deleted;
- an order the platform deleted (a tombstone, plugin.sync.tombstones) is not re-added by a late copy.

``upsert_orders`` takes a fast road per dialect with the same rules: on PostgreSQL each batch is COPYed into
staging tables (plugin.sync.orders_staged), on SQLite rows the batch's read found absent go in with a plain
INSERT (plugin.sync.orders_generic). Functions take a ``Session`` and never commit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from connectors import delivery
from connectors.records import FulfillmentEventRecord, FulfillmentRecord, OrderRecord
from plugin.models import Customer, DeletedRecord, Order
from plugin.sync import parcels
from plugin.sync.orders_generic import upsert_orders_generic
from plugin.sync.orders_staged import upsert_orders_staged
from plugin.sync.sql import ORDERS, chunked, ids_by_external
from plugin.sync.tombstones import add_tombstone, is_deleted

if TYPE_CHECKING:  # the SP-API client library is heavy; webhook processing needs none of it
    from connectors.amazon.returns import ReturnEntry


def upsert_orders(session: Session, store_id: int, records: Iterable[OrderRecord], *,
                  batch_size: int = 500) -> dict[str, int]:
    """Insert or update orders with their embedded customers and lines; return counts of what was written.

    Keys of the result: ``seen`` (records read), ``orders`` (order rows new or changed), ``customers``
    (customer rows created or filled in), ``products`` / ``variants`` (catalog rows created from line ids),
    ``lines_written`` (new or changed lines), ``lines_deleted`` (lines no longer in their order), and
    ``parcels`` (orders whose parcels changed) when there were any.
    An order whose stored copy is newer than the record keeps its data and its lines.
    """
    totals = dict.fromkeys(("seen", "orders", "customers", "products", "variants", "lines_written",
                            "lines_deleted"), 0)
    # PostgreSQL takes the staged path, which needs no custom_plans: its lookups go through unique indexes in
    # any plan, and forcing custom plans would re-plan the foreign-key check of every row it writes.
    staged = session.get_bind().dialect.name == "postgresql"
    # A copy read before the platform deleted the order (a bulk file, a page, a retried webhook) is not
    # re-added: plugin.webhooks.deletions leaves a tombstone. Most stores have none: one probe, not a lookup
    # per batch (that lookup cost a backfill 5 %).
    tombstones = session.scalar(select(DeletedRecord.external_id).where(
        DeletedRecord.store_id == store_id, DeletedRecord.kind == "order").limit(1)) is not None
    # A redacted customer's orders keep no tags (customers/redact erased them: they can name the person), whatever
    # copy comes later. One probe for the store, as for tombstones: most stores have no redacted customer.
    redacted = session.scalar(select(Customer.id).where(Customer.store_id == store_id,
                                                        Customer.redacted_at.is_not(None)).limit(1)) is not None
    for batch in chunked(records, batch_size):
        batch = list({r.external_id: r for r in batch}.values())
        totals["seen"] += len(batch)
        gone = set(session.scalars(select(DeletedRecord.external_id).where(
            DeletedRecord.store_id == store_id, DeletedRecord.kind == "order",
            DeletedRecord.external_id.in_([r.external_id for r in batch])))) if tombstones else set()
        if gone:
            batch = [r for r in batch if r.external_id not in gone]
            totals["deleted_skipped"] = totals.get("deleted_skipped", 0) + len(gone)
            if not batch:
                continue
        if staged:
            upsert_orders_staged(session, store_id, batch, totals)
        else:
            upsert_orders_generic(session, store_id, batch, totals)
        if redacted:
            session.execute(update(Order).where(
                Order.store_id == store_id, Order.external_id.in_([r.external_id for r in batch]),
                Order.customer_id.in_(select(Customer.id).where(Customer.store_id == store_id,
                                                                Customer.redacted_at.is_not(None))))
                .values(tags=[]).execution_options(synchronize_session=False))
        changed = _write_parcels(session, store_id, batch)
        if changed:
            totals["parcels"] = totals.get("parcels", 0) + changed
    return totals


def _write_parcels(session: Session, store_id: int, batch: list[OrderRecord]) -> int:
    """Write the parcels the batch's records list (plugin.sync.parcels); return how many orders' parcels changed."""
    listed = [r for r in batch if r.fulfillments]
    if not listed:
        return 0
    ids = ids_by_external(session, ORDERS, store_id, [r.external_id for r in listed])
    changed = parcels.upsert_parcels(session, store_id, [(ids[r.external_id], f) for r in listed
                                                         if r.external_id in ids for f in r.fulfillments or ()])
    # The record's facts came from the same fulfilments; the stored events may know a delivery they do not.
    parcels.refresh_orders(session, changed)
    return len(changed)


# -- Shopify webhooks: REST bodies mapped to the same records, and the partial updates of their topics -------


def _with_stored_order_facts(session: Session, store_id: int, record: OrderRecord) -> OrderRecord:
    """Fill the fields REST bodies lack with what the database already knows, instead of erasing them.

    The body's fulfilments are merged with the stored parcels (connectors.delivery): a delivery time a delivery
    event gave is kept over the REST body's, which only knows the fulfilment's last update.
    """
    stored = session.execute(select(Order.estimated_delivery_at, Order.returned, Order.id).where(
        Order.store_id == store_id, Order.external_id == record.external_id)).first()
    if stored is None:
        return record
    fulfillments = record.fulfillments
    if fulfillments is not None:
        fulfillments = delivery.merge(parcels.stored_records(session, stored[2]), fulfillments, complete=True)
    return dataclasses.replace(record, estimated_delivery_at=record.estimated_delivery_at or stored[0],
                               returned=record.returned or bool(stored[1]), fulfillments=fulfillments,
                               fulfilled_at=delivery.fulfilled_at(fulfillments or ()) if fulfillments is not None
                               else record.fulfilled_at,
                               delivered_at=delivery.delivered_at(fulfillments or ()) if fulfillments is not None
                               else record.delivered_at)


def upsert_webhook_order(session: Session, store_id: int, record: OrderRecord) -> str:
    """Apply an order body of an ``orders/*`` webhook; return the outcome (applied, stale, deleted in Shopify)."""
    if is_deleted(session, store_id, "order", record.external_id):
        return "deleted in Shopify"  # a retried delivery sent before the orders/delete
    stored_updated = session.scalar(select(Order.remote_updated_at).where(
        Order.store_id == store_id, Order.external_id == record.external_id))
    if stored_updated is not None and record.updated_at is not None and record.updated_at < stored_updated:
        return "stale"
    upsert_orders(session, store_id, [_with_stored_order_facts(session, store_id, record)])
    return "applied"


def apply_fulfillment(session: Session, store_id: int, order_external_id: str, report: FulfillmentRecord,
                      event: FulfillmentEventRecord | None = None) -> str:
    """Apply what a ``fulfillments/create``, ``fulfillments/update`` or ``fulfillment_events/create`` says of one
    of an order's parcels (and the carrier event, if any); return the outcome.

    The parcel is merged by plugin.sync.parcels' rules and the order is delivered when its last parcel is. A
    replayed report or event finds everything as it left it ("unchanged").
    """
    order_id = session.scalar(select(Order.id).where(Order.store_id == store_id,
                                                     Order.external_id == order_external_id))
    if order_id is None:
        return "order unknown"
    changed = bool(parcels.upsert_parcels(session, store_id, [(order_id, report)]))
    if event is not None:
        changed = parcels.ingest_events(session, store_id, [event]).stored > 0 or changed
    if not changed:
        return "unchanged"
    parcels.refresh_orders(session, [order_id])
    return "applied"


def apply_refund(session: Session, store_id: int, order_external_id: str, amount: Decimal,
                 created_at: datetime | None) -> str:
    """Apply a ``refunds/create``: add the amount unless the stored order copy was taken after the refund."""
    order = session.scalar(select(Order).where(Order.store_id == store_id, Order.external_id == order_external_id))
    if order is None:
        return "order unknown"
    if created_at is not None and order.remote_updated_at is not None and order.remote_updated_at >= created_at:
        return "already in order"  # the stored order copy was taken after this refund
    order.total_refunded = (order.total_refunded or 0) + amount
    order.refunded = order.total_refunded >= order.total_price
    order.financial_status = "REFUNDED" if order.refunded else "PARTIALLY_REFUNDED"
    return "applied"


class DeletedOrder(NamedTuple):
    """The stored order a deletion found: its id and its customer's."""

    id: int
    customer_id: int | None


def tombstone_order(session: Session, store_id: int, external_id: str, now: datetime) -> DeletedOrder | None:
    """Record that the platform deleted an order and return the stored one, if any (still in place)."""
    add_tombstone(session, store_id, "order", external_id, now)
    row = session.execute(select(Order.id, Order.customer_id).where(
        Order.store_id == store_id, Order.external_id == external_id)).first()
    return DeletedOrder(*row) if row is not None else None


def delete_order(session: Session, order_id: int) -> None:
    """Delete an order row; ON DELETE CASCADE takes the lines, SET NULL detaches messages, reviews, tickets."""
    session.execute(delete(Order).where(Order.id == order_id))


# -- Amazon: returns and refunds come from the returns reports, not from the Orders API ----------------------


def keep_return_flags(session: Session, store_id: int, records: list[OrderRecord]) -> list[OrderRecord]:
    """Carry the stored returned/refunded state into re-read orders (the Orders API does not know it)."""
    ids = [r.external_id for r in records]
    known = {row.external_id: row for row in session.execute(
        select(Order.external_id, Order.returned, Order.refunded, Order.total_refunded)
        .where(Order.store_id == store_id, Order.external_id.in_(ids),
               (Order.returned.is_(True)) | (Order.refunded.is_(True))))}
    if not known:
        return records
    return [dataclasses.replace(r, returned=known[r.external_id].returned, refunded=known[r.external_id].refunded,
                                total_refunded=known[r.external_id].total_refunded)
            if r.external_id in known else r for r in records]


def apply_returns(session: Session, store_id: int, entries: list[ReturnEntry]) -> int:
    """Mark the orders of the returns reports returned (and refunded, with the amount); return rows changed."""
    refunds: dict[str, Decimal] = {}
    for entry in entries:
        if entry.refunded_amount is not None:
            refunds[entry.order_id] = refunds.get(entry.order_id, Decimal("0")) + entry.refunded_amount
    changed = 0
    returned = sorted({e.order_id for e in entries})
    if returned:
        changed += session.execute(update(Order).where(Order.store_id == store_id, Order.external_id.in_(returned),
                                                       Order.returned.is_(False)).values(returned=True)).rowcount
    for order_id, amount in refunds.items():
        changed += session.execute(update(Order).where(
            Order.store_id == store_id, Order.external_id == order_id,
            (Order.refunded.is_(False)) | (Order.total_refunded != amount)).values(
                refunded=True, total_refunded=amount)).rowcount
    return changed


def erase_tags(session: Session, order_ids: list[int]) -> int:
    """Clear the tags of these orders (customers/redact: tags can hold personal data); return how many."""
    if not order_ids:
        return 0
    result = session.execute(update(Order).where(Order.id.in_(order_ids)).values(tags=[])
                             .execution_options(synchronize_session="fetch"))
    return int(result.rowcount or 0)
