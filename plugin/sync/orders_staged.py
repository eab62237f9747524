"""Orders on PostgreSQL: each batch COPYed into temporary staging tables, then one set-based statement per table.

The rules are the generic path's (plugin.sync.orders_generic): customers created or filled in, catalog rows the
lines name created, never an older copy, only differing rows written, lines kept equal to the record's. Foreign
ids are resolved in SQL. bench/shopify_sync.py measures this path.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    any_,
    cast,
    delete,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from connectors.records import OrderRecord
from plugin.sync.customers import CUSTOMER_FIELDS, CUSTOMER_MERGE_FIELDS, customer_row, not_redacted
from plugin.sync.order_rows import LINE_FIELDS, ORDER_FIELDS, order_row
from plugin.sync.products import line_products
from plugin.sync.sql import CUSTOMERS, LINES, ORDERS, PRODUCTS, VARIANTS, not_older, on_conflict
from plugin.sync.staging import copy_rows, prepare_staging, rowcount, staging_setup, staging_table
from plugin.table_stats import analyse_first_rows
from plugin.types import UTCDateTime

_STAGING = MetaData()


def _staging_table(name: str, source: Table, columns: Sequence[str], *extra: Column[Any]) -> Table:
    return staging_table(_STAGING, name, source, columns, *extra)


_ORDER_STAGE_FIELDS = tuple(f for f in ORDER_FIELDS if f != "customer_id")
_JSON_FIELDS = ("tags",)
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


_STAGING_SETUP = staging_setup(_STAGING)


def _stage_batch(session: Session, store_id: int, batch: list[OrderRecord]) -> None:
    """Fill the staging tables with one batch: customers deduplicated (last copy wins), lines deduplicated per
    order (last copy wins, first position kept, as the generic path) and the catalog rows the lines name (first
    mention wins, as products.ensure_catalog)."""
    prepare_staging(session, _STAGING_SETUP)
    customers = {r.customer.external_id: r.customer for r in batch if r.customer}
    copy_rows(session, STAGE_CUSTOMERS, (
        (row["external_id"], *(json.dumps(row[f]) if f == "tags" else row[f] for f in CUSTOMER_FIELDS), pos)
        for pos, row in enumerate(customer_row(store_id, c) for c in customers.values())))
    copy_rows(session, STAGE_ORDERS, (
        (row["external_id"], *(json.dumps(row[f]) if f in _JSON_FIELDS else row[f] for f in _ORDER_STAGE_FIELDS),
         r.customer.external_id if r.customer else None, pos)
        for pos, (r, row) in enumerate((r, order_row(store_id, r, None)) for r in batch)))
    lines: dict[tuple[str, str], tuple[Any, ...]] = {}
    products: dict[str, str] = {}
    variants: dict[str, tuple[str | None, str, str]] = {}
    resolved = line_products(session, store_id, batch)
    for record in batch:
        for line in record.lines:
            product_ext = line.product_external_id or resolved.get(line.variant_external_id or "")
            lines[(record.external_id, line.external_id)] = (
                line.external_id, line.sku, line.title or "", line.quantity, line.price, record.external_id,
                record.updated_at, product_ext, line.variant_external_id)
            if product_ext:
                products.setdefault(product_ext, line.title or "")
                if line.variant_external_id:
                    variants.setdefault(line.variant_external_id, (line.sku, line.title or "", product_ext))
    copy_rows(session, STAGE_LINES, ((*row, pos) for pos, row in enumerate(lines.values())))
    copy_rows(session, STAGE_PRODUCTS, ((ext, title, pos) for pos, (ext, title) in enumerate(products.items())))
    copy_rows(session, STAGE_VARIANTS, ((ext, *spec, pos) for pos, (ext, spec) in enumerate(variants.items())))


def _lookup(table: Table, store_id: int, external_id: Any, column: Any = None) -> Any:
    """A correlated scalar subquery through the table's (store_id, external_id) unique index.

    Unlike a join, it keeps its index plan when the tables a backfill is filling have stale statistics (the
    planner then believes a store has a handful of rows and hashes all of them for every batch).
    """
    return (select(table.c.id if column is None else column)
            .where(table.c.store_id == store_id, table.c.external_id == external_id).scalar_subquery())


def _current_order(store_id: int, external_id: Any, updated_at: Any) -> Any:
    """The id of the stored order when the staged copy is current (the generic path's test), else NULL.

    Asked after the order upsert: a current copy is then the stored one, an older copy is still older.
    """
    return (select(ORDERS.c.id)
            .where(ORDERS.c.store_id == store_id, ORDERS.c.external_id == external_id,
                   or_(updated_at.is_(None), ORDERS.c.remote_updated_at.is_(None),
                       updated_at >= ORDERS.c.remote_updated_at))
            .scalar_subquery())


def upsert_orders_staged(session: Session, store_id: int, batch: list[OrderRecord],
                          totals: dict[str, int]) -> None:
    """Upsert one deduplicated batch on PostgreSQL with the same rules and counts as the generic path.

    Each statement runs once per batch; rows keep the batch order (ids are assigned deterministically) and the
    ON CONFLICT clauses are the generic path's.
    """
    _stage_batch(session, store_id, batch)
    _write_batch(session, store_id, batch, totals)
    # The lookups above rely on the unique indexes, which the planner finds only once a table has statistics.
    analyse_first_rows(session.connection(), _WRITTEN)


# The tables a staged batch writes.
_WRITTEN = tuple(t.name for t in (CUSTOMERS, PRODUCTS, VARIANTS, ORDERS, LINES))


def _write_batch(session: Session, store_id: int, batch: list[OrderRecord], totals: dict[str, int]) -> None:
    """Write the staged batch: customers, catalog rows, orders, then lines (one statement each)."""
    store = literal(store_id, BigInteger)
    keys = ("store_id", "external_id")
    sc, so, sl, sp, sv = STAGE_CUSTOMERS, STAGE_ORDERS, STAGE_LINES, STAGE_PRODUCTS, STAGE_VARIANTS
    # Customers: create missing ones, fill blanks of older stored copies (as customers.embedded_customers).
    stored_newer = (select(and_(sc.c.remote_updated_at.is_not(None),
                                or_(CUSTOMERS.c.remote_updated_at.is_(None),
                                    sc.c.remote_updated_at > CUSTOMERS.c.remote_updated_at)))
                    .where(CUSTOMERS.c.store_id == store_id, CUSTOMERS.c.external_id == sc.c.external_id)
                    .scalar_subquery())
    todo = (select(store, sc.c.external_id, *(sc.c[f] for f in CUSTOMER_FIELDS))
            .where(func.coalesce(stored_newer, True)).order_by(sc.c.pos))
    stmt = on_conflict(pg_insert(CUSTOMERS).from_select(["store_id", "external_id", *CUSTOMER_FIELDS], todo),
                        CUSTOMERS, keys=keys, update=(), merge=CUSTOMER_MERGE_FIELDS, where=not_redacted)
    totals["customers"] += rowcount(session, stmt)
    # Catalog rows the lines name but the catalog lacks (as products.ensure_catalog).
    missing = (select(store, sp.c.external_id, sp.c.title)
               .where(_lookup(PRODUCTS, store_id, sp.c.external_id).is_(None)).order_by(sp.c.pos))
    stmt = pg_insert(PRODUCTS).from_select(["store_id", "external_id", "title"], missing)
    totals["products"] += rowcount(session, stmt.on_conflict_do_nothing(index_elements=list(keys)))
    missing = (select(store, sv.c.external_id, _lookup(PRODUCTS, store_id, sv.c.product_external_id), sv.c.sku,
                      sv.c.title)
               .where(_lookup(VARIANTS, store_id, sv.c.external_id).is_(None)).order_by(sv.c.pos))
    stmt = pg_insert(VARIANTS).from_select(["store_id", "external_id", "product_id", "sku", "title"], missing)
    totals["variants"] += rowcount(session, stmt.on_conflict_do_nothing(index_elements=list(keys)))
    # Orders: never an older copy, only rows that differ.
    rows = (select(store, so.c.external_id, _lookup(CUSTOMERS, store_id, so.c.customer_external_id),
                   *(so.c[f] for f in _ORDER_STAGE_FIELDS))
            .order_by(so.c.pos))
    stmt = on_conflict(pg_insert(ORDERS).from_select(["store_id", "external_id", "customer_id",
                                                        *_ORDER_STAGE_FIELDS], rows),
                        ORDERS, keys=keys, update=ORDER_FIELDS, where=lambda excluded: not_older(ORDERS, excluded))
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
    stmt = on_conflict(pg_insert(LINES).from_select(["order_id", "store_id", "external_id", *LINE_FIELDS], rows),
                        LINES, keys=("order_id", "external_id"), update=LINE_FIELDS)
    totals["lines_written"] += rowcount(session, stmt)
    # Stored lines of current orders that the staged copy no longer has (none when every order is new).
    if all_new:
        return
    kept = exists().where(sl.c.order_external_id == order_ids.c.external_id, sl.c.external_id == LINES.c.external_id)
    # "= ANY(array)" keeps the probe on the order_id index whatever the statistics say (a join may seq-scan);
    # the cast makes PostgreSQL read the subquery as one array value rather than as a set of rows.
    current = cast(select(func.array_agg(order_ids.c.order_id)).scalar_subquery(), ARRAY(BigInteger))
    stmt = delete(LINES).where(LINES.c.order_id == any_(current), LINES.c.order_id == order_ids.c.order_id, ~kept)
    totals["lines_deleted"] += rowcount(session, stmt)

