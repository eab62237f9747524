"""Orders on SQLite: one read of the stored copies per batch, plain INSERTs of new rows, upserts of changed ones."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from connectors.records import OrderRecord
from plugin.sync.customers import embedded_customers
from plugin.sync.order_rows import LINE_FIELDS, ORDER_FIELDS, order_row
from plugin.sync.products import ensure_catalog
from plugin.sync.sql import IN_CHUNK, LINES, ORDERS, chunked, ids_by_external, insert_new_then_upsert, not_older


def upsert_orders_generic(session: Session, store_id: int, batch: list[OrderRecord], totals: dict[str, int]) -> None:
    """Upsert one deduplicated batch with its customers, catalog rows and lines, adding to ``totals``."""
    customer_ids, merged = embedded_customers(session, store_id, [r.customer for r in batch if r.customer])
    totals["customers"] += merged
    product_ids, variant_ids, new_products, new_variants, line_products = ensure_catalog(session, store_id, batch)
    totals["products"] += new_products
    totals["variants"] += new_variants
    # One read of the stored copies decides which records are current, which changed and which orders
    # may already have lines; only changed rows are sent (no RETURNING: PostgreSQL executemany stays fast).
    stored = _stored_orders(session, store_id, (r.external_id for r in batch))
    current = [r for r in batch if _is_current(r, stored.get(r.external_id))]
    rows = [order_row(store_id, r, customer_ids.get(r.customer.external_id) if r.customer else None)
            for r in current]
    changed = [row for row in rows if _order_changed(row, stored.get(row["external_id"]))]
    insert_new_then_upsert(session, ORDERS, [row for row in changed if row["external_id"] not in stored],
                            [row for row in changed if row["external_id"] in stored],
                            keys=("store_id", "external_id"), update=ORDER_FIELDS,
                            where=lambda excluded: not_older(ORDERS, excluded))
    totals["orders"] += len(changed)
    order_ids = {ext: row[0] for ext, row in stored.items()}
    missing = [r.external_id for r in current if r.external_id not in order_ids]
    if missing:
        order_ids.update(ids_by_external(session, ORDERS, store_id, missing))
    known = {order_ids[r.external_id] for r in current if r.external_id in stored}
    lines_written, lines_deleted = _sync_lines(session, store_id, current, order_ids, known,
                                               Catalog(product_ids, variant_ids, line_products))
    totals["lines_written"] += lines_written
    totals["lines_deleted"] += lines_deleted


def _stored_orders(session: Session, store_id: int, external_ids: Iterable[str]) -> dict[str, tuple[Any, ...]]:
    """Map external ids of stored orders to (id, *ORDER_FIELDS)."""
    found: dict[str, tuple[Any, ...]] = {}
    columns = [ORDERS.c.external_id, ORDERS.c.id, *(ORDERS.c[f] for f in ORDER_FIELDS)]
    for part in chunked(sorted(set(external_ids)), IN_CHUNK):
        query = select(*columns).where(ORDERS.c.store_id == store_id, ORDERS.c.external_id.in_(part))
        found.update((row[0], tuple(row[1:])) for row in session.execute(query))
    return found


_UPDATED_AT = 1 + ORDER_FIELDS.index("remote_updated_at")
_MONEY = Decimal("0.001")


def _is_current(record: OrderRecord, stored: tuple[Any, ...] | None) -> bool:
    """Say whether the record is at least as new as the stored copy (an older copy changes nothing)."""
    if stored is None or record.updated_at is None or stored[_UPDATED_AT] is None:
        return True
    return record.updated_at >= stored[_UPDATED_AT]


def _comparable(value: Any) -> Any:
    """Normalise a value the way the column stores it (money has three decimals)."""
    if isinstance(value, Decimal):
        return value.quantize(_MONEY)
    return value


def _order_changed(row: dict[str, Any], stored: tuple[Any, ...] | None) -> bool:
    """Say whether an order row differs from its stored copy (or is new)."""
    if stored is None:
        return True
    return any(_comparable(row[name]) != _comparable(stored[i + 1]) for i, name in enumerate(ORDER_FIELDS))


class Catalog(NamedTuple):
    """The catalog ids a batch's lines point at, and the products of its variant-only lines."""

    product_ids: dict[str, int]
    variant_ids: dict[str, int]
    line_products: dict[str, str]


def _sync_lines(session: Session, store_id: int, records: list[OrderRecord], order_ids: dict[str, int],
                known: set[int], catalog: Catalog) -> tuple[int, int]:
    """Make each order's stored lines equal to its record's: upsert new/changed ones, delete removed ones.

    Only orders in ``known`` (stored before this batch) can have lines already, so only they are read back.
    """
    if not records:
        return 0, 0
    wanted: dict[tuple[int, str], dict[str, Any]] = {}
    for record in records:
        order_id = order_ids[record.external_id]
        for line in record.lines:
            product_ext = line.product_external_id or catalog.line_products.get(line.variant_external_id or "")
            wanted[(order_id, line.external_id)] = {
                "order_id": order_id, "store_id": store_id, "external_id": line.external_id,
                "product_id": catalog.product_ids.get(product_ext) if product_ext else None,
                "variant_id": catalog.variant_ids.get(line.variant_external_id) if line.variant_external_id
                else None,
                "sku": line.sku, "title": line.title or "", "quantity": line.quantity, "price": line.price,
            }
    existing: dict[tuple[int, str], tuple[Any, ...]] = {}
    columns = [LINES.c.id, LINES.c.order_id, LINES.c.external_id, *(LINES.c[f] for f in LINE_FIELDS)]
    for part in chunked(sorted(known), IN_CHUNK):
        for row in session.execute(select(*columns).where(LINES.c.order_id.in_(part))):
            existing[(row[1], row[2])] = row
    changed = []
    for key, row in wanted.items():
        stored = existing.get(key)
        if stored is None or any(_comparable(a) != _comparable(row[f]) for a, f in zip(stored[3:], LINE_FIELDS,
                                                                                          strict=True)):
            changed.append(row)
    removed = [row[0] for key, row in existing.items() if key not in wanted]
    # Lines absent from the read above may still meet a webhook's copy (see insert_new_then_upsert).
    new = [row for row in changed if (row["order_id"], row["external_id"]) not in existing]
    insert_new_then_upsert(session, LINES, new, [row for row in changed if (row["order_id"], row["external_id"])
                                                  in existing], keys=("order_id", "external_id"), update=LINE_FIELDS)
    for part in chunked(removed, IN_CHUNK):
        session.execute(delete(LINES).where(LINES.c.id.in_(part)))
    return len(changed), len(removed)
