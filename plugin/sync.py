"""Idempotent, set-based upserts of connector records, and the per-store, per-stream sync cursors.

Every upsert is ``INSERT ... ON CONFLICT (store_id, external_id) DO UPDATE ... WHERE <something changed>``
(SQLite and PostgreSQL), executed as one batched ``executemany`` per table and batch. The ``WHERE`` keeps
rows whose data did not change untouched, so a second sync of the same data writes nothing and no
``updated_at`` moves. External ids are mapped to internal ids with one ``SELECT ... IN`` per batch.
Orders (the bulk of a backfill) take a faster road with the same rules: on PostgreSQL each batch is
COPYed into temporary staging tables and written by one ``INSERT ... SELECT ... ON CONFLICT`` per table,
foreign ids resolved in SQL; on SQLite rows the batch's read found absent go in with a plain INSERT.

Rules every writer relies on (connectors, webhooks, Amazon):
- the merchant's product settings (``consumable``, ``days_of_supply``, ``reminder_lead_days``, learned
  cycles) are never written by a connector; new products start with the defaults;
- a customer whose ``redacted_at`` is set is never updated again, so personal data cannot come back;
- an older copy of an object (``updated_at`` before the stored one) never overwrites a newer one, so a
  slow backfill cannot undo a webhook that arrived meanwhile;
- an order's lines are kept equal to the record's: new lines inserted, changed ones updated, removed
  ones deleted.

Functions take a ``Session`` and never commit (the job runner owns the transaction).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    any_,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.schema import CreateIndex, CreateTable

from connectors.records import CustomerRecord, OrderRecord, ProductRecord, ReviewRecord
from plugin.models import Customer, DeletedRecord, Order, OrderLine, Product, Review, SyncState, Variant
from plugin.types import UTCDateTime

T = TypeVar("T")

CUSTOMERS: Table = Customer.__table__  # type: ignore[assignment]
PRODUCTS: Table = Product.__table__  # type: ignore[assignment]
VARIANTS: Table = Variant.__table__  # type: ignore[assignment]
ORDERS: Table = Order.__table__  # type: ignore[assignment]
LINES: Table = OrderLine.__table__  # type: ignore[assignment]
REVIEWS: Table = Review.__table__  # type: ignore[assignment]
SYNC_STATE: Table = SyncState.__table__  # type: ignore[assignment]

CUSTOMER_FIELDS = ("email", "first_name", "locale", "country", "time_zone", "marketing_consent",
                   "marketing_consent_at", "birthday", "tags", "remote_created_at", "remote_updated_at")
# Fields an order's embedded customer may fill in without erasing what the customer stream knows.
CUSTOMER_MERGE_FIELDS = ("email", "first_name", "locale", "country", "time_zone", "birthday", "remote_created_at")
# Connector-owned product fields; the replenishment settings are the merchant's and never appear here.
PRODUCT_FIELDS = ("title", "handle", "product_type", "vendor", "status", "remote_updated_at")
VARIANT_FIELDS = ("product_id", "sku", "title", "price")
ORDER_FIELDS = ("name", "customer_id", "created_at_remote", "processed_at", "remote_updated_at", "currency",
                "total_price", "subtotal_price", "total_refunded", "financial_status", "fulfillment_status",
                "cancelled_at", "refunded", "returned", "fulfilled_at", "estimated_delivery_at", "delivered_at",
                "earliest_delivery_at", "latest_delivery_at", "fulfillment_channel", "marketplace_id", "tags")
LINE_FIELDS = ("product_id", "variant_id", "sku", "title", "quantity", "price")
# Review fields a review app owns; reply_* and ticket links are ours and never overwritten.
REVIEW_FIELDS = ("product_id", "order_id", "customer_id", "rating", "title", "body", "language", "reviewer_name",
                 "created_at_remote")
# SQLAlchemy's IN with an expanding parameter: keep each list well under SQLite's variable limit.
IN_CHUNK = 900


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Yield lists of at most ``size`` items, consuming ``items`` lazily."""
    if size < 1:
        raise ValueError("batch size must be at least 1")
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _insert(session: Session, table: Table) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return pg_insert(table)
    if dialect == "sqlite":
        return sqlite_insert(table)
    raise NotImplementedError(f"upserts support sqlite and postgresql, not {dialect}")


def _custom_plans(session: Session) -> None:
    """Make PostgreSQL plan each lookup for its actual ids in this transaction.

    psycopg prepares statements run five times; PostgreSQL may then switch to a generic plan costed while the
    tables were still empty (a sequential scan), and a backfill slows down as the tables grow.
    https://www.postgresql.org/docs/current/runtime-config-query.html#GUC-PLAN-CACHE-MODE
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


def _differs(table: Table, excluded: Any, fields: Sequence[str]) -> ColumnElement[bool]:
    """Return ``stored.f IS DISTINCT FROM new.f OR ...`` (JSON compared as text: PostgreSQL's json has no =)."""
    parts = []
    for name in fields:
        stored, new = table.c[name], excluded[name]
        if name == "tags":
            stored, new = cast(stored, Text), cast(new, Text)
        parts.append(stored.is_distinct_from(new))
    return or_(*parts)


def _not_older(table: Table, excluded: Any) -> ColumnElement[bool]:
    """Accept the incoming copy unless both sides are dated and the stored one is newer."""
    stored, new = table.c.remote_updated_at, excluded.remote_updated_at
    return or_(stored.is_(None), new.is_(None), new >= stored)


def _on_conflict(stmt: Any, table: Table, *, keys: Sequence[str], update: Sequence[str], where: Any = None,
                 merge: Sequence[str] = ()) -> Any:
    """Add the upsert's ``ON CONFLICT`` clause: update differing rows only, or do nothing without fields."""
    excluded = stmt.excluded
    set_: dict[str, Any] = {name: excluded[name] for name in update}
    set_.update({name: func.coalesce(excluded[name], table.c[name]) for name in merge})
    if not set_:
        return stmt.on_conflict_do_nothing(index_elements=list(keys))
    # ON CONFLICT DO UPDATE ignores Column.onupdate, so the bookkeeping column is set here.
    if "updated_at" in table.c:
        set_["updated_at"] = func.now()
    differences = [_differs(table, excluded, update)] if update else []
    differences += [and_(excluded[m].is_not(None), table.c[m].is_distinct_from(excluded[m])) for m in merge]
    changed = or_(*differences)
    condition = changed if where is None else and_(where(excluded), changed)
    return stmt.on_conflict_do_update(index_elements=list(keys), set_=set_, where=condition)


def _upsert(session: Session, table: Table, rows: list[dict[str, Any]], *, keys: Sequence[str],
            update: Sequence[str], where: Any = None, merge: Sequence[str] = (),
            returning: Sequence[str] = ("id",)) -> list[Any]:
    """Insert ``rows`` or update the differing ones; return the ``returning`` columns of rows written.

    ``update`` columns take the incoming value; ``merge`` columns take it only when it is not NULL.
    Rows skipped by the ``WHERE`` (nothing changed, older copy, redacted) are not returned.
    """
    if not rows:
        return []
    stmt = _on_conflict(_insert(session, table), table, keys=keys, update=update, where=where, merge=merge)
    if not returning:
        session.execute(stmt, rows)
        return []
    stmt = stmt.returning(*(table.c[name] for name in returning))
    return list(session.execute(stmt, rows).all())


def _insert_new_then_upsert(session: Session, table: Table, new: list[dict[str, Any]], stored: list[dict[str, Any]],
                            **upsert: Any) -> None:
    """Write rows that were absent from this transaction's earlier read (``new``) and rows that were there.

    On SQLite the new rows go in with a plain INSERT: transactions start with BEGIN IMMEDIATE, so no other
    writer can have added them since that read, and SQLite's upsert costs about two thirds more per row than
    a plain INSERT even when nothing conflicts. Elsewhere a webhook may insert the same row meanwhile, so
    every row goes through ON CONFLICT.
    """
    if session.get_bind().dialect.name == "sqlite":
        if new:
            session.execute(insert(table), new)
        new = []
    _upsert(session, table, new + stored, returning=(), **upsert)


def _ids_by_external(session: Session, table: Table, store_id: int, external_ids: Iterable[str]) -> dict[str, int]:
    """Map external ids to internal ids with one SELECT ... IN per chunk."""
    wanted = sorted(set(external_ids))
    found: dict[str, int] = {}
    for part in chunked(wanted, IN_CHUNK):
        query = select(table.c.external_id, table.c.id).where(table.c.store_id == store_id,
                                                               table.c.external_id.in_(part))
        found.update(session.execute(query).all())
    return found


# -- customers ---------------------------------------------------------------------------------------------


def _customer_row(store_id: int, record: CustomerRecord) -> dict[str, Any]:
    return {
        "store_id": store_id, "external_id": record.external_id,
        "email": record.email.strip() if record.email else None, "first_name": record.first_name,
        "locale": record.locale, "country": record.country.upper() if record.country else None,
        "time_zone": record.time_zone, "marketing_consent": bool(record.marketing_consent),
        "marketing_consent_at": record.marketing_consent_at, "birthday": record.birthday,
        "tags": list(record.tags), "remote_created_at": record.created_at, "remote_updated_at": record.updated_at,
    }


def _dedupe(rows: Iterable[dict[str, Any]], key: str = "external_id") -> list[dict[str, Any]]:
    """Keep the last row per key: one statement may not touch the same row twice (PostgreSQL refuses)."""
    return list({row[key]: row for row in rows}.values())


def _not_redacted(excluded: Any) -> ColumnElement[bool]:
    return CUSTOMERS.c.redacted_at.is_(None)


def _customer_not_redacted_and_newer(excluded: Any) -> ColumnElement[bool]:
    return and_(CUSTOMERS.c.redacted_at.is_(None), _not_older(CUSTOMERS, excluded))


def upsert_customers(session: Session, store_id: int, records: Iterable[CustomerRecord], *,
                     batch_size: int = 1000) -> int:
    """Insert or update customers; return how many rows were written (new or changed).

    A redacted customer (``redacted_at`` set) is never updated, so a sync cannot bring back erased data.
    """
    _custom_plans(session)
    written = 0
    for batch in chunked(records, batch_size):
        rows = _dedupe(_customer_row(store_id, r) for r in batch)
        written += len(_upsert(session, CUSTOMERS, rows, keys=("store_id", "external_id"), update=CUSTOMER_FIELDS,
                               where=_customer_not_redacted_and_newer))
    return written


def _embedded_customers(session: Session, store_id: int, records: list[CustomerRecord]) -> tuple[dict[str, int], int]:
    """Return ids of an order batch's customers, creating missing ones and filling blanks of older copies.

    A customer already stored at least as recently as the order's copy is left alone (the customer stream
    owns it); this keeps a backfill from rewriting every customer once per order.
    """
    rows = _dedupe(_customer_row(store_id, r) for r in records)
    ids: dict[str, int] = {}
    stored: dict[str, Any] = {}
    for part in chunked(sorted(r["external_id"] for r in rows), IN_CHUNK):
        query = select(CUSTOMERS.c.external_id, CUSTOMERS.c.id, CUSTOMERS.c.remote_updated_at).where(
            CUSTOMERS.c.store_id == store_id, CUSTOMERS.c.external_id.in_(part))
        for ext, customer_id, updated in session.execute(query):
            ids[ext] = customer_id
            stored[ext] = updated
    todo = [r for r in rows if r["external_id"] not in ids
            or (r["remote_updated_at"] is not None and (stored[r["external_id"]] is None
                                                        or r["remote_updated_at"] > stored[r["external_id"]]))]
    written = _upsert(session, CUSTOMERS, todo, keys=("store_id", "external_id"), update=(),
                      merge=CUSTOMER_MERGE_FIELDS, where=_not_redacted, returning=("id", "external_id"))
    ids.update((ext, customer_id) for customer_id, ext in written)
    missing = [r["external_id"] for r in todo if r["external_id"] not in ids]
    if missing:
        ids.update(_ids_by_external(session, CUSTOMERS, store_id, missing))
    return ids, len(written)


# -- products and variants ---------------------------------------------------------------------------------


def upsert_products(session: Session, store_id: int, records: Iterable[ProductRecord], *,
                    batch_size: int = 500) -> int:
    """Insert or update products and their variants; return how many product and variant rows were written.

    Only connector-owned fields are written; the merchant's replenishment settings are left alone.
    """
    _custom_plans(session)
    written = 0
    for batch in chunked(records, batch_size):
        rows = _dedupe({"store_id": store_id, "external_id": r.external_id, "title": r.title or "",
                        "handle": r.handle, "product_type": r.product_type, "vendor": r.vendor,
                        "status": r.status, "remote_updated_at": r.updated_at} for r in batch)
        written += len(_upsert(session, PRODUCTS, rows, keys=("store_id", "external_id"), update=PRODUCT_FIELDS,
                               where=lambda excluded: _not_older(PRODUCTS, excluded)))
        product_ids = _ids_by_external(session, PRODUCTS, store_id, (r.external_id for r in batch))
        variant_rows = _dedupe({"store_id": store_id, "external_id": v.external_id,
                                "product_id": product_ids[r.external_id], "sku": v.sku, "title": v.title or "",
                                "price": v.price} for r in batch for v in r.variants)
        written += len(_upsert(session, VARIANTS, variant_rows, keys=("store_id", "external_id"),
                               update=VARIANT_FIELDS))
    return written


def _ensure_catalog(session: Session, store_id: int, orders: Sequence[OrderRecord]) -> tuple[
        dict[str, int], dict[str, int], int, int]:
    """Create the products/variants order lines name but the catalog does not have yet (e.g. Amazon ASIN/SKU).

    Returns (product ids, variant ids, products created, variants created). A line with a variant but no
    product id gets a product of the same external id, since a variant row needs a product.
    """
    product_titles: dict[str, str] = {}
    variant_specs: dict[str, tuple[str, str | None, str]] = {}
    for order in orders:
        for line in order.lines:
            product_ext = line.product_external_id or line.variant_external_id
            if product_ext:
                product_titles.setdefault(product_ext, line.title or "")
            if line.variant_external_id:
                variant_specs.setdefault(line.variant_external_id, (product_ext, line.sku, line.title or ""))
    product_ids = _ids_by_external(session, PRODUCTS, store_id, product_titles)
    missing = [{"store_id": store_id, "external_id": ext, "title": title}
               for ext, title in product_titles.items() if ext not in product_ids]
    created_products = len(_upsert(session, PRODUCTS, missing, keys=("store_id", "external_id"), update=()))
    if missing:
        product_ids.update(_ids_by_external(session, PRODUCTS, store_id, (r["external_id"] for r in missing)))
    variant_ids = _ids_by_external(session, VARIANTS, store_id, variant_specs)
    missing = [{"store_id": store_id, "external_id": ext, "product_id": product_ids[product_ext], "sku": sku,
                "title": title} for ext, (product_ext, sku, title) in variant_specs.items() if ext not in variant_ids]
    created_variants = len(_upsert(session, VARIANTS, missing, keys=("store_id", "external_id"), update=()))
    if missing:
        variant_ids.update(_ids_by_external(session, VARIANTS, store_id, (r["external_id"] for r in missing)))
    return product_ids, variant_ids, created_products, created_variants


# -- orders and lines --------------------------------------------------------------------------------------


def _order_row(store_id: int, record: OrderRecord, customer_id: int | None) -> dict[str, Any]:
    return {
        "store_id": store_id, "external_id": record.external_id, "name": record.name, "customer_id": customer_id,
        "created_at_remote": record.created_at, "processed_at": record.processed_at,
        "remote_updated_at": record.updated_at, "currency": record.currency, "total_price": record.total_price,
        "subtotal_price": record.subtotal_price, "total_refunded": record.total_refunded,
        "financial_status": record.financial_status, "fulfillment_status": record.fulfillment_status,
        "cancelled_at": record.cancelled_at, "refunded": record.refunded, "returned": record.returned,
        "fulfilled_at": record.fulfilled_at, "estimated_delivery_at": record.estimated_delivery_at,
        "delivered_at": record.delivered_at, "earliest_delivery_at": record.earliest_delivery_at,
        "latest_delivery_at": record.latest_delivery_at, "fulfillment_channel": record.fulfillment_channel,
        "marketplace_id": record.marketplace_id, "tags": list(record.tags),
    }


def upsert_orders(session: Session, store_id: int, records: Iterable[OrderRecord], *,
                  batch_size: int = 500) -> dict[str, int]:
    """Insert or update orders with their embedded customers and lines; return counts of what was written.

    Keys of the result: ``seen`` (records read), ``orders`` (order rows new or changed), ``customers``
    (customer rows created or filled in), ``products`` / ``variants`` (catalog rows created from line ids),
    ``lines_written`` (new or changed lines), ``lines_deleted`` (lines no longer in their order).
    An order whose stored copy is newer than the record keeps its data and its lines.
    """
    totals = dict.fromkeys(("seen", "orders", "customers", "products", "variants", "lines_written",
                            "lines_deleted"), 0)
    # PostgreSQL takes the staged path, which needs no _custom_plans: its lookups go through unique indexes in
    # any plan, and forcing custom plans would re-plan the foreign-key check of every row it writes.
    staged = session.get_bind().dialect.name == "postgresql"
    # A copy read before the platform deleted the order (a bulk file, a page, a retried webhook) is not
    # re-added: plugin.webhooks.deletions leaves a tombstone. Most stores have none: one probe, not a lookup
    # per batch (that lookup cost a backfill 5 %).
    tombstones = session.scalar(select(DeletedRecord.external_id).where(
        DeletedRecord.store_id == store_id, DeletedRecord.kind == "order").limit(1)) is not None
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
            _upsert_orders_staged(session, store_id, batch, totals)
            continue
        customer_ids, merged = _embedded_customers(session, store_id, [r.customer for r in batch if r.customer])
        totals["customers"] += merged
        product_ids, variant_ids, new_products, new_variants = _ensure_catalog(session, store_id, batch)
        totals["products"] += new_products
        totals["variants"] += new_variants
        # One read of the stored copies decides which records are current, which changed and which orders
        # may already have lines; only changed rows are sent (no RETURNING: PostgreSQL executemany stays fast).
        stored = _stored_orders(session, store_id, (r.external_id for r in batch))
        current = [r for r in batch if _is_current(r, stored.get(r.external_id))]
        rows = [_order_row(store_id, r, customer_ids.get(r.customer.external_id) if r.customer else None)
                for r in current]
        changed = [row for row in rows if _order_changed(row, stored.get(row["external_id"]))]
        _insert_new_then_upsert(session, ORDERS, [row for row in changed if row["external_id"] not in stored],
                                [row for row in changed if row["external_id"] in stored],
                                keys=("store_id", "external_id"), update=ORDER_FIELDS,
                                where=lambda excluded: _not_older(ORDERS, excluded))
        totals["orders"] += len(changed)
        order_ids = {ext: row[0] for ext, row in stored.items()}
        missing = [r.external_id for r in current if r.external_id not in order_ids]
        if missing:
            order_ids.update(_ids_by_external(session, ORDERS, store_id, missing))
        known = {order_ids[r.external_id] for r in current if r.external_id in stored}
        lines_written, lines_deleted = _sync_lines(session, store_id, current, order_ids, known, product_ids,
                                                   variant_ids)
        totals["lines_written"] += lines_written
        totals["lines_deleted"] += lines_deleted
    return totals


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


def _sync_lines(session: Session, store_id: int, records: list[OrderRecord], order_ids: dict[str, int],
                known: set[int], product_ids: dict[str, int], variant_ids: dict[str, int]) -> tuple[int, int]:
    """Make each order's stored lines equal to its record's: upsert new/changed ones, delete removed ones.

    Only orders in ``known`` (stored before this batch) can have lines already, so only they are read back.
    """
    if not records:
        return 0, 0
    wanted: dict[tuple[int, str], dict[str, Any]] = {}
    for record in records:
        order_id = order_ids[record.external_id]
        for line in record.lines:
            product_ext = line.product_external_id or line.variant_external_id
            wanted[(order_id, line.external_id)] = {
                "order_id": order_id, "store_id": store_id, "external_id": line.external_id,
                "product_id": product_ids.get(product_ext) if product_ext else None,
                "variant_id": variant_ids.get(line.variant_external_id) if line.variant_external_id else None,
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
    # Lines absent from the read above may still meet a webhook's copy (see _insert_new_then_upsert).
    new = [row for row in changed if (row["order_id"], row["external_id"]) not in existing]
    _insert_new_then_upsert(session, LINES, new, [row for row in changed if (row["order_id"], row["external_id"])
                                                  in existing], keys=("order_id", "external_id"), update=LINE_FIELDS)
    for part in chunked(removed, IN_CHUNK):
        session.execute(delete(LINES).where(LINES.c.id.in_(part)))
    return len(changed), len(removed)


# -- orders on PostgreSQL: COPY into staging tables, then set-based statements -----------------------------

# Temporary tables private to the connection, emptied at every commit; never part of the schema (own MetaData).
_STAGING = MetaData()


def _staging_table(name: str, source: Table, columns: Sequence[str], *extra: Column[Any]) -> Table:
    return Table(name, _STAGING, *(Column(c, source.c[c].type) for c in columns), *extra,
                 prefixes=["TEMPORARY"], postgresql_on_commit="DELETE ROWS")


_ORDER_STAGE_FIELDS = tuple(f for f in ORDER_FIELDS if f != "customer_id")
STAGE_CUSTOMERS = _staging_table("aftercare_stage_customer", CUSTOMERS, ("external_id", *CUSTOMER_FIELDS),
                                 Column("pos", Integer))
STAGE_ORDERS = _staging_table("aftercare_stage_order", ORDERS, ("external_id", *_ORDER_STAGE_FIELDS),
                              Column("customer_external_id", String(255)), Column("pos", Integer))
STAGE_LINES = _staging_table("aftercare_stage_line", LINES, ("external_id", "sku", "title", "quantity", "price"),
                             Column("order_external_id", String(255)), Column("order_updated_at", UTCDateTime()),
                             Column("product_external_id", String(255)), Column("variant_external_id", String(255)),
                             Column("pos", Integer))
# The removed-lines check probes the staged lines of each order.
Index("aftercare_stage_line_key", STAGE_LINES.c.order_external_id, STAGE_LINES.c.external_id)
STAGE_PRODUCTS = _staging_table("aftercare_stage_product", PRODUCTS, ("external_id", "title"),
                                Column("pos", Integer))
STAGE_VARIANTS = _staging_table("aftercare_stage_variant", VARIANTS, ("external_id", "sku", "title"),
                                Column("product_external_id", String(255)), Column("pos", Integer))


# Create the staging tables on a connection's first batch and empty them on later batches of one transaction.
_STAGING_SETUP = ";\n".join(
    [str(ddl.compile(dialect=postgresql.dialect()))
     for table in _STAGING.tables.values()
     for ddl in (CreateTable(table, if_not_exists=True), *(CreateIndex(i, if_not_exists=True) for i in table.indexes))]
    + [str(delete(table).compile(dialect=postgresql.dialect())) for table in _STAGING.tables.values()])


def _copy(session: Session, table: Table, rows: Iterable[tuple[Any, ...]]) -> None:
    """COPY ``rows`` (tuples in the table's column order) into a staging table."""
    cursor = session.connection().connection.cursor()
    try:
        with cursor.copy(f"COPY {table.name} ({', '.join(c.name for c in table.c)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    finally:
        cursor.close()


def _stage_batch(session: Session, store_id: int, batch: list[OrderRecord]) -> None:
    """Fill the staging tables with one batch: customers deduplicated (last copy wins), lines deduplicated per
    order (last copy wins, first position kept, as _sync_lines) and the catalog rows the lines name (first
    mention wins, as _ensure_catalog)."""
    cursor = session.connection().connection.cursor()
    try:
        # Parameterless, so psycopg sends it as one simple query: one round trip per batch.
        cursor.execute(_STAGING_SETUP)
    finally:
        cursor.close()
    customers = {r.customer.external_id: r.customer for r in batch if r.customer}
    _copy(session, STAGE_CUSTOMERS, (
        (row["external_id"], *(json.dumps(row[f]) if f == "tags" else row[f] for f in CUSTOMER_FIELDS), pos)
        for pos, row in enumerate(_customer_row(store_id, c) for c in customers.values())))
    _copy(session, STAGE_ORDERS, (
        (row["external_id"], *(json.dumps(row[f]) if f == "tags" else row[f] for f in _ORDER_STAGE_FIELDS),
         r.customer.external_id if r.customer else None, pos)
        for pos, (r, row) in enumerate((r, _order_row(store_id, r, None)) for r in batch)))
    lines: dict[tuple[str, str], tuple[Any, ...]] = {}
    products: dict[str, str] = {}
    variants: dict[str, tuple[str | None, str, str]] = {}
    for record in batch:
        for line in record.lines:
            product_ext = line.product_external_id or line.variant_external_id
            lines[(record.external_id, line.external_id)] = (
                line.external_id, line.sku, line.title or "", line.quantity, line.price, record.external_id,
                record.updated_at, product_ext, line.variant_external_id)
            if product_ext:
                products.setdefault(product_ext, line.title or "")
            if line.variant_external_id:
                variants.setdefault(line.variant_external_id, (line.sku, line.title or "", product_ext))
    _copy(session, STAGE_LINES, ((*row, pos) for pos, row in enumerate(lines.values())))
    _copy(session, STAGE_PRODUCTS, ((ext, title, pos) for pos, (ext, title) in enumerate(products.items())))
    _copy(session, STAGE_VARIANTS, ((ext, *spec, pos) for pos, (ext, spec) in enumerate(variants.items())))


def _rowcount(session: Session, stmt: Any) -> int:
    """Execute ``stmt`` and return how many rows it inserted, updated or deleted."""
    # SQLAlchemy only keeps an INSERT's rowcount when asked to.
    return int(session.execute(stmt.execution_options(preserve_rowcount=True)).rowcount)


def _lookup(table: Table, store_id: int, external_id: Any, column: Any = None) -> Any:
    """A correlated scalar subquery through the table's (store_id, external_id) unique index.

    Unlike a join, it keeps its index plan when the tables a backfill is filling have stale statistics (the
    planner then believes a store has a handful of rows and hashes all of them for every batch).
    """
    return (select(table.c.id if column is None else column)
            .where(table.c.store_id == store_id, table.c.external_id == external_id).scalar_subquery())


def _current_order(store_id: int, external_id: Any, updated_at: Any) -> Any:
    """The id of the stored order when the staged copy is current (the same test as _is_current), else NULL.

    Asked after the order upsert: a current copy is then the stored one, an older copy is still older.
    """
    return (select(ORDERS.c.id)
            .where(ORDERS.c.store_id == store_id, ORDERS.c.external_id == external_id,
                   or_(updated_at.is_(None), ORDERS.c.remote_updated_at.is_(None),
                       updated_at >= ORDERS.c.remote_updated_at))
            .scalar_subquery())


def _upsert_orders_staged(session: Session, store_id: int, batch: list[OrderRecord],
                          totals: dict[str, int]) -> None:
    """Upsert one deduplicated batch on PostgreSQL with the same rules and counts as the generic path.

    Each statement runs once per batch; rows keep the batch order (ids are assigned deterministically) and the
    ON CONFLICT clauses are the generic path's.
    """
    _stage_batch(session, store_id, batch)
    store = literal(store_id, BigInteger)
    keys = ("store_id", "external_id")
    sc, so, sl, sp, sv = STAGE_CUSTOMERS, STAGE_ORDERS, STAGE_LINES, STAGE_PRODUCTS, STAGE_VARIANTS
    # Customers: create missing ones, fill blanks of older stored copies (as _embedded_customers).
    stored_newer = (select(and_(sc.c.remote_updated_at.is_not(None),
                                or_(CUSTOMERS.c.remote_updated_at.is_(None),
                                    sc.c.remote_updated_at > CUSTOMERS.c.remote_updated_at)))
                    .where(CUSTOMERS.c.store_id == store_id, CUSTOMERS.c.external_id == sc.c.external_id)
                    .scalar_subquery())
    todo = (select(store, sc.c.external_id, *(sc.c[f] for f in CUSTOMER_FIELDS))
            .where(func.coalesce(stored_newer, True)).order_by(sc.c.pos))
    stmt = _on_conflict(pg_insert(CUSTOMERS).from_select(["store_id", "external_id", *CUSTOMER_FIELDS], todo),
                        CUSTOMERS, keys=keys, update=(), merge=CUSTOMER_MERGE_FIELDS, where=_not_redacted)
    totals["customers"] += _rowcount(session, stmt)
    # Catalog rows the lines name but the catalog lacks (as _ensure_catalog).
    missing = (select(store, sp.c.external_id, sp.c.title)
               .where(_lookup(PRODUCTS, store_id, sp.c.external_id).is_(None)).order_by(sp.c.pos))
    stmt = pg_insert(PRODUCTS).from_select(["store_id", "external_id", "title"], missing)
    totals["products"] += _rowcount(session, stmt.on_conflict_do_nothing(index_elements=list(keys)))
    missing = (select(store, sv.c.external_id, _lookup(PRODUCTS, store_id, sv.c.product_external_id), sv.c.sku,
                      sv.c.title)
               .where(_lookup(VARIANTS, store_id, sv.c.external_id).is_(None)).order_by(sv.c.pos))
    stmt = pg_insert(VARIANTS).from_select(["store_id", "external_id", "product_id", "sku", "title"], missing)
    totals["variants"] += _rowcount(session, stmt.on_conflict_do_nothing(index_elements=list(keys)))
    # Orders: never an older copy, only rows that differ.
    rows = (select(store, so.c.external_id, _lookup(CUSTOMERS, store_id, so.c.customer_external_id),
                   *(so.c[f] for f in _ORDER_STAGE_FIELDS))
            .order_by(so.c.pos))
    stmt = _on_conflict(pg_insert(ORDERS).from_select(["store_id", "external_id", "customer_id",
                                                        *_ORDER_STAGE_FIELDS], rows),
                        ORDERS, keys=keys, update=ORDER_FIELDS, where=lambda excluded: _not_older(ORDERS, excluded))
    # xmax = 0 marks a row this statement inserted (an ON CONFLICT update sets it): when every staged order is
    # new, no stored line of theirs can exist and the removed-lines DELETE below has nothing to find.
    inserted = session.execute(stmt.returning(literal_column("xmax = 0"))).scalars().all()
    totals["orders"] += len(inserted)
    all_new = len(inserted) == len(batch) and all(inserted)
    # Lines of current orders only. Each id is looked up once per staged order, product and variant (not once
    # per line: a batch has ~2.6 lines per order and a few dozen products), then joined among the staged rows.
    order_ids = (select(so.c.external_id, _current_order(store_id, so.c.external_id, so.c.remote_updated_at)
                        .label("order_id"))
                 .cte("staged_order_ids").prefix_with("MATERIALIZED"))
    product_ids = (select(sp.c.external_id, _lookup(PRODUCTS, store_id, sp.c.external_id).label("id"))
                   .cte("staged_product_ids").prefix_with("MATERIALIZED"))
    variant_ids = (select(sv.c.external_id, _lookup(VARIANTS, store_id, sv.c.external_id).label("id"))
                   .cte("staged_variant_ids").prefix_with("MATERIALIZED"))
    rows = (select(order_ids.c.order_id, store, sl.c.external_id, product_ids.c.id, variant_ids.c.id,
                   sl.c.sku, sl.c.title, sl.c.quantity, sl.c.price)
            .select_from(sl.join(order_ids, order_ids.c.external_id == sl.c.order_external_id)
                         .outerjoin(product_ids, product_ids.c.external_id == sl.c.product_external_id)
                         .outerjoin(variant_ids, variant_ids.c.external_id == sl.c.variant_external_id))
            .where(order_ids.c.order_id.is_not(None)).order_by(sl.c.pos))
    stmt = _on_conflict(pg_insert(LINES).from_select(["order_id", "store_id", "external_id", *LINE_FIELDS], rows),
                        LINES, keys=("order_id", "external_id"), update=LINE_FIELDS)
    totals["lines_written"] += _rowcount(session, stmt)
    # Stored lines of current orders that the staged copy no longer has (none when every order is new).
    if all_new:
        return
    kept = exists().where(sl.c.order_external_id == order_ids.c.external_id, sl.c.external_id == LINES.c.external_id)
    # "= ANY(array)" keeps the probe on the order_id index whatever the statistics say (a join may seq-scan);
    # the cast makes PostgreSQL read the subquery as one array value rather than as a set of rows.
    current = cast(select(func.array_agg(order_ids.c.order_id)).scalar_subquery(), ARRAY(BigInteger))
    stmt = delete(LINES).where(LINES.c.order_id == any_(current), LINES.c.order_id == order_ids.c.order_id, ~kept)
    totals["lines_deleted"] += _rowcount(session, stmt)


# -- reviews -----------------------------------------------------------------------------------------------


def upsert_reviews(session: Session, store_id: int, records: Iterable[ReviewRecord], *,
                   batch_size: int = 500) -> list[int]:
    """Insert or update reviews linked to product, order and customer; return the ids of new reviews.

    Links use external ids (product, order) and the reviewer's e-mail (customer, case-insensitive, never a
    redacted customer). Our reply fields are never overwritten by the review app's copy.
    """
    _custom_plans(session)
    new_ids: list[int] = []
    for batch in chunked(records, batch_size):
        batch = list({(r.source, r.external_id): r for r in batch}.values())
        products = _ids_by_external(session, PRODUCTS, store_id, (r.product_external_id for r in batch
                                                                  if r.product_external_id))
        orders = _ids_by_external(session, ORDERS, store_id, (r.order_external_id for r in batch
                                                              if r.order_external_id))
        by_handle = _products_by_handle(session, store_id, (r.product_handle for r in batch
                                                             if r.product_handle and not r.product_external_id))
        customers = _customers_by_email(session, store_id, (r.reviewer_email for r in batch if r.reviewer_email))
        customers_by_id = _ids_by_external(session, CUSTOMERS, store_id, (r.reviewer_external_id for r in batch
                                                                          if r.reviewer_external_id))
        keys = [(r.source, r.external_id) for r in batch]
        known: set[tuple[str, str]] = set()
        for part in chunked(keys, IN_CHUNK):
            query = select(REVIEWS.c.source, REVIEWS.c.external_id).where(
                REVIEWS.c.store_id == store_id, tuple_(REVIEWS.c.source, REVIEWS.c.external_id).in_(part))
            known.update(session.execute(query).all())
        rows = [{
            "store_id": store_id, "source": r.source, "external_id": r.external_id,
            "product_id": _review_product(r, products, by_handle),
            "order_id": orders.get(r.order_external_id) if r.order_external_id else None,
            "customer_id": _review_customer(r, customers_by_id, customers),
            "rating": r.rating, "title": r.title, "body": r.body, "language": r.language,
            "reviewer_name": r.reviewer_name, "created_at_remote": r.created_at,
        } for r in batch]
        _infer_review_orders(session, store_id, rows)
        written = _upsert(session, REVIEWS, rows, keys=("store_id", "source", "external_id"), update=REVIEW_FIELDS,
                          returning=("id", "source", "external_id"))
        new_ids.extend(row[0] for row in written if (row[1], row[2]) not in known)
    return new_ids


def _infer_review_orders(session: Session, store_id: int, rows: list[dict[str, Any]]) -> None:
    """Link a review the app did not tie to an order (Judge.me never does) to the reviewer's latest order of
    that product placed before the review, so "has this order been reviewed" has an answer."""
    open_rows = [r for r in rows if r["order_id"] is None and r["customer_id"] and r["product_id"]]
    if not open_rows:
        return
    candidates: dict[tuple[int, int], list[tuple[datetime, int]]] = {}
    customer_ids = sorted({r["customer_id"] for r in open_rows})
    product_ids = sorted({r["product_id"] for r in open_rows})
    for part in chunked(customer_ids, IN_CHUNK):
        query = (select(ORDERS.c.customer_id, LINES.c.product_id, ORDERS.c.created_at_remote, ORDERS.c.id)
                 .join(LINES, LINES.c.order_id == ORDERS.c.id)
                 .where(ORDERS.c.store_id == store_id, ORDERS.c.customer_id.in_(part),
                        LINES.c.product_id.in_(product_ids)))
        for customer_id, product_id, created, order_id in session.execute(query):
            candidates.setdefault((customer_id, product_id), []).append((created, order_id))
    for row in open_rows:
        before = [c for c in candidates.get((row["customer_id"], row["product_id"]), ())
                  if c[0] <= row["created_at_remote"]]
        if before:
            row["order_id"] = max(before)[1]


def _review_product(record: ReviewRecord, by_id: dict[str, int], by_handle: dict[str, int]) -> int | None:
    if record.product_external_id:
        return by_id.get(record.product_external_id)
    return by_handle.get(record.product_handle) if record.product_handle else None


def _review_customer(record: ReviewRecord, by_id: dict[str, int], by_email: dict[str, int]) -> int | None:
    """Link by the platform's customer id when the review app knows it, else by e-mail."""
    if record.reviewer_external_id and record.reviewer_external_id in by_id:
        return by_id[record.reviewer_external_id]
    return by_email.get(record.reviewer_email.strip().lower()) if record.reviewer_email else None


def _products_by_handle(session: Session, store_id: int, handles: Iterable[str]) -> dict[str, int]:
    """Map product handles to product ids."""
    found: dict[str, int] = {}
    for part in chunked(sorted(set(handles)), IN_CHUNK):
        query = select(PRODUCTS.c.handle, PRODUCTS.c.id).where(PRODUCTS.c.store_id == store_id,
                                                                PRODUCTS.c.handle.in_(part))
        found.update(session.execute(query).all())
    return found


def _customers_by_email(session: Session, store_id: int, emails: Iterable[str]) -> dict[str, int]:
    """Map lower-cased e-mails to customer ids (the oldest customer wins when several share one)."""
    wanted = sorted({e.strip().lower() for e in emails if e.strip()})
    found: dict[str, int] = {}
    for part in chunked(wanted, IN_CHUNK):
        email = func.lower(CUSTOMERS.c.email)
        query = (select(email, CUSTOMERS.c.id)
                 .where(CUSTOMERS.c.store_id == store_id, CUSTOMERS.c.redacted_at.is_(None), email.in_(part))
                 .order_by(CUSTOMERS.c.id.desc()))
        found.update(session.execute(query).all())
    return found


# -- sync state --------------------------------------------------------------------------------------------


def get_sync_state(session: Session, store_id: int, stream: str) -> SyncState:
    """Return the stream's sync_state row, creating it (no cursor yet) when absent."""
    stmt = _insert(session, SYNC_STATE).values(store_id=store_id, stream=stream, records_synced=0)
    session.execute(stmt.on_conflict_do_nothing(index_elements=["store_id", "stream"]))
    state = session.scalars(select(SyncState).where(SyncState.store_id == store_id, SyncState.stream == stream)
                            .execution_options(populate_existing=True)).one()
    return state


def mark_sync_started(session: Session, store_id: int, stream: str, *, now: datetime,
                      bulk_operation_id: str | None = None) -> SyncState:
    """Record that a run of the stream started (and the bulk operation it waits for, if any)."""
    state = get_sync_state(session, store_id, stream)
    state.last_started_at = now
    state.bulk_operation_id = bulk_operation_id
    session.flush()
    return state


def mark_sync_success(session: Session, store_id: int, stream: str, *, cursor: str | None, now: datetime,
                      records: int = 0) -> SyncState:
    """Record a successful run: move the cursor (None keeps it), clear the error, count the records."""
    state = get_sync_state(session, store_id, stream)
    if cursor is not None:
        state.cursor = cursor
    state.last_success_at = now
    state.last_error = None
    state.last_error_at = None
    state.bulk_operation_id = None
    state.records_synced = (state.records_synced or 0) + records
    session.flush()
    return state


def mark_sync_failure(session: Session, store_id: int, stream: str, *, error: str, now: datetime) -> SyncState:
    """Record a failed run; the cursor stays where the last success left it."""
    state = get_sync_state(session, store_id, stream)
    state.last_error = error[:4000]
    state.last_error_at = now
    session.flush()
    return state
