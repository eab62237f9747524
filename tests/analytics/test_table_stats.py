"""The product keeps the planner's statistics itself: a migration and a large sync leave analysed tables behind.

The row counts the statistics hold are compared with counts read here, so a stale or missing analysis fails.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import event, func, select, text

from plugin.analytics import cohort_cells
from plugin.db import Database
from plugin.migrate import upgrade
from plugin.models import Merchant, Order, Store
from tests.conftest import wipe
from tests.shopify_sync_harness import make_harness


def _stat_rows(conn, table: str) -> int | None:
    """Return the row count the planner's statistics hold for a table (None when it has none)."""
    if conn.dialect.name == "sqlite":
        if not conn.execute(text("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'")).first():
            return None
        stat = conn.execute(text("SELECT stat FROM sqlite_stat1 WHERE tbl = :t ORDER BY idx LIMIT 1"),
                            {"t": table}).scalar()
        return int(stat.split()[0]) if stat else None
    tuples = conn.execute(text("SELECT reltuples FROM pg_class WHERE relname = :t AND relkind = 'r'"),
                          {"t": table}).scalar()
    return None if tuples is None or tuples < 0 else int(tuples)


def _one_store(session) -> Store:
    """Add one merchant with one Shopify store and return the store (flushed)."""
    merchant = Merchant(name="M")
    session.add(merchant)
    session.flush()
    store = Store(merchant_id=merchant.id, platform="shopify", external_id="s.myshopify.com")
    session.add(store)
    session.flush()
    return store


def test_migrating_analyses_every_table_that_was_never_analysed(fresh_url):
    upgrade(fresh_url)
    database = Database(fresh_url)
    try:
        with database.session() as session:
            store = _one_store(session)
            session.add_all([Order(store_id=store.id, external_id=f"o{i}", currency="USD", total_price=Decimal("5"),
                                   created_at_remote=datetime(2026, 1, 1 + i, tzinfo=UTC)) for i in range(7)])
        with database.engine.connect() as conn:
            before = _stat_rows(conn, "orders")
        # SQLite: no statistics for a table that was empty when analysed; PostgreSQL: analysed empty (0 rows).
        assert before in (None, 0)
        analysed = upgrade(fresh_url)  # already at head: only the statistics step has work to do
        with database.engine.connect() as conn:
            after = _stat_rows(conn, "orders")
        if database.dialect == "sqlite":
            assert after == 7
            assert {"orders", "store", "merchant"} <= set(analysed)
        else:
            # PostgreSQL analysed every table at the first upgrade (empty); autovacuum keeps them from then on.
            assert after is not None and _never_analysed_pg(database) == []
    finally:
        database.dispose()


def _never_analysed_pg(database: Database) -> list[str]:
    with database.engine.connect() as conn:
        return list(conn.execute(text("SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                                      "WHERE relkind = 'r' AND nspname = current_schema() AND reltuples < 0"))
                    .scalars())


def test_a_backfill_leaves_statistics_of_what_it_wrote(database, tmp_path):
    harness = make_harness(database, tmp_path, customers=12, orders=30)
    try:
        first = harness.sync()
        with database.engine.connect() as conn:
            orders = conn.execute(select(func.count()).select_from(Order)).scalar_one()
            lines = conn.execute(text("SELECT COUNT(*) FROM order_line")).scalar_one()
            assert orders >= 30
            assert (_stat_rows(conn, "orders"), _stat_rows(conn, "order_line")) == (orders, lines)
        assert {"orders", "order_line", "customer", "product"} <= set(first["statistics"])
        # An incremental run that changed nothing (far under database.analyze_after_rows) leaves them alone.
        second = harness.sync()
        assert "statistics" not in second
    finally:
        harness.stop()
        wipe(database.engine)


def test_the_cohort_count_joins_by_customer_even_on_a_never_analysed_sqlite_database(fresh_url):
    if not fresh_url.startswith("sqlite"):
        pytest.skip("a SQLite planner rule: PostgreSQL estimates rows from a table's pages even before ANALYZE")
    upgrade(fresh_url)
    database = Database(fresh_url)
    statements: list[tuple[str, tuple]] = []

    def record(_conn, _cursor, statement, parameters, _context, _many):
        statements.append((statement, parameters))

    event.listen(database.engine, "before_cursor_execute", record)
    try:
        with database.session() as session:
            cohort_cells(session, [1], datetime(2026, 3, 2, tzinfo=UTC))
            statement, parameters = statements[-1]
            plan = " ".join(row[-1] for row in session.connection().exec_driver_sql(
                "EXPLAIN QUERY PLAN " + statement, parameters))
    finally:
        event.remove(database.engine, "before_cursor_execute", record)
        database.dispose()
    # "customer_id>?" is the IS NOT NULL range: every order of the store read again for each customer.
    assert "customer_id=?" in plan and "customer_id>?)" not in plan.split("SCAN first", 1)[1]


def test_a_fresh_postgresql_backfill_looks_customers_up_by_their_unique_key_from_its_first_batch(fresh_url):
    """A migrated, never-written database: after the first batch the staged lookups use the unique indexes.

    Before, the planner (no column statistics yet) picked ``(store_id, email)`` for the customer lookup and read
    every customer of the store once per order, quadratic over a first backfill (bench/fresh_install.py). Tables
    of a few thousand rows, so that an index plan is the right one once statistics exist.
    """
    if not fresh_url.startswith("postgresql"):
        pytest.skip("the staged upsert is PostgreSQL's path; SQLite's is covered by the cohort test above")
    from connectors.records import CustomerRecord, OrderRecord
    from plugin.sync.orders import upsert_orders

    upgrade(fresh_url)
    database = Database(fresh_url)
    try:
        with database.session() as session:
            store_id = _one_store(session).id
        when = datetime(2026, 1, 5, tzinfo=UTC)
        batch = [OrderRecord(external_id=f"gid://shopify/Order/{i}", name=f"#{i}", created_at=when, updated_at=when,
                             currency="USD", total_price=Decimal("5"),
                             customer=CustomerRecord(external_id=f"gid://shopify/Customer/{i // 2}",
                                                     email=f"c{i // 2}@example.com", updated_at=when))
                 for i in range(4000)]
        with database.session() as session:
            totals = upsert_orders(session, store_id, batch)
        assert (totals["orders"], totals["customers"]) == (4000, 2000)
        with database.engine.connect() as conn:
            plans = {table: " ".join(row[0] for row in conn.execute(text(
                f"EXPLAIN SELECT id FROM {table} WHERE store_id = :s AND external_id = :e"),  # noqa: S608
                {"s": store_id, "e": "gid://shopify/x/7"}))
                for table in ("customer", "orders")}
        assert "uq_customer_store_id_external_id" in plans["customer"], plans["customer"]
        assert "uq_orders_store_id_external_id" in plans["orders"], plans["orders"]
    finally:
        database.dispose()
