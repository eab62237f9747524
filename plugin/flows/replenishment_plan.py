"""The replenishment planner: when each customer will run out of each consumable, and the reminders due.

The model is plugin.flows.replenishment_model: per customer × consumable, a log-normal cycle (days per unit, scaled
by the quantity bought) from the customer's own gaps shrunk toward the product's learned distribution (with at
least ``min_product_samples`` gaps; else the merchant's ``days_of_supply``; no cycle, no reminder), the predicted
run-out its median next purchase given none so far, the reminder at the start of the window with the highest
probability of a reorder, and P(alive) from the store's MBG/NBD fit. Purchases follow plugin.purchases: a
customer's orders of the product within a day of the purchase's first order are one purchase (a split order), their
quantities add up, and the purchase dates from its first order; gaps run between purchases.

A reminder is planned (a ``scheduled`` row with ``scheduled_for`` = reminder time) once it falls
within ``PLAN_AHEAD_DAYS``; the dispatcher sends it when due, through the send policy (marketing:
consent required). Each run first cancels planned reminders whose customer re-ordered the product
(``already_reordered``), looking only at customers with orders written since the previous cancel (its own
watermark, stream ``replenishment_cancel``). Active subscription (decision): the customer's latest purchase of
the product came in an order tagged like "subscription" — Shopify Subscriptions, ReCharge and most selling-plan
apps tag recurring orders so ("Subscription", "Subscription Recurring Order") — then the reminder row
is written ``cancelled`` with reason ``active_subscription`` instead. The flow itself is declared in
plugin.flows.replenishment.

Incremental planner. Two tables derived from the orders are kept current by every run:
``purchase_cycle`` (per customer × consumable product: latest purchase, own median gap, gap count) and
``purchase_gap`` (every re-buy gap, indexed by product and gap). Planning reads ``purchase_cycle``
joined to ``product`` (learned median, days of supply, lead days), and learning picks each product's
median from ``purchase_gap`` by counting and an index-ordered OFFSET, so neither reads the purchase
history. A refresh (``refresh_cycles``, called first by ``due_reminders`` and ``product_medians``):
- first run for a store: full build from the store's consumable purchases (window functions, once);
- products that became consumable are built, products that stopped being consumable are dropped
  (``product.cycles_built`` says which are in the tables);
- customers whose orders were written since the last refresh (``orders.updated_at`` — new orders,
  cancellations, refunds, returns, edits, customer reassignments; lines change only with their order,
  whose remote update time moves on every edit — minus ``CHANGE_OVERLAP`` so
  transactions that committed late and the clock's granularity are covered) have every pair recomputed
  with the same SQL restricted to them. The watermark is the database's clock, kept in ``sync_state``
  (stream ``replenishment_cycles``), so the refresh is independent of the job's clock; when more than
  ``REBUILD_SHARE`` of the pairs would be recomputed (after a backfill) it does a full build instead.
What ``updated_at`` cannot show is reported by its writer (plugin.webhooks.deletions): a deleted order
recomputes its customer (``recompute_customers``), a deleted product drops its rows.
Redacted customers (customers/redact) have no ``purchase_cycle`` rows — they can never be emailed — but
their re-buys stay in ``purchase_gap``: anonymous facts, like their orders, that the learned median counts.

Stored plans. Each purchase_cycle row also holds its plan (``PLAN_COLUMNS``): the model's cycle, log-normal centre
and spread, lead days, the learned median and days of supply it used (the reason's inputs), the reminder's target
and day, the probability and ``due_day`` (indexed with the store), so the hourly run reads only the pairs whose
day has come and scores just those at the current time (``due_plan_sql``: the run-out given no purchase up to
now, and the probability), instead of evaluating the model for every pair. The customer page reads the same columns
(``customer_plan``). A stored plan is a function of the pair's purchases, its product, the store's fit and plan
settings (lead days, re-buys needed, floor) and the plan's reference day — the last refit's
(``learn_product_cycles``, the daily learning job), kept with the settings in ``sync_state`` (stream
``replenishment_plan``) — never of when it was computed, so recomputing only what changed equals recomputing
everything:
- the pairs rebuilt by a refresh (changed customers, products newly consumable, a full build) are replanned with
  them, and so are the customers a deletion webhook recomputes;
- a product whose days of supply or lead days changed (``product.plan_inputs`` says what its plans used) has its
  pairs replanned by the next refresh;
- the refit replans every pair as of its day; a change of the flow's plan settings replans every pair at the next
  hourly run (``ensure_plans``).
``due_day`` is the reminder day less the planning horizon, or NULL when the pair was due (or overdue) on the
reference day with a probability below the floor: a customer who has left is looked at again at the next refit,
not every hour. So between refits the hourly run plans exactly what evaluating every pair would, except a pair
below the floor on the refit's day whose probability rises over it later that day (reminded after the next refit).

The medians are ``percentile_cont`` on PostgreSQL and a ROW_NUMBER/COUNT middle pick on SQLite (same
result); a product's median from the index pick is computed with the same arithmetic.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.orm import Session

from plugin import flow_settings
from plugin.context import JobContext
from plugin.flow_schemas import REPLENISHMENT
from plugin.flows.audience import contact_reason, history_cutoff
from plugin.flows.base import FlowRun, Rows
from plugin.flows.replenishment_model import DEFAULT_LOG_VAR, MIN_LOG_VAR, MIN_SPREAD_DF, fit_mbgnbd
from plugin.messaging import reasons
from plugin.messaging.outbox import message_row
from plugin.models import Product, ReplenishmentFit, SyncState
from plugin.purchases import WINDOW_DAYS, days_sql
from plugin.purchases import stage as stage_purchases
from plugin.sync import get_sync_state
from plugin.types import UTCDateTime

FLOW = "replenishment"
PLAN_AHEAD_DAYS = 7
# The predicted run-out is the median next purchase of the customers who come back within this many days of now
# (plugin.flows.replenishment_model; a year: bench/RESULTS.md has 6 months to 2 years on CDNOW).
RETURN_DAYS = 365.0
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CYCLES_STREAM = "replenishment_cycles"
# The store's plan state (sync_state cursor, JSON): the reference day and the settings the stored plans used.
PLAN_STREAM = "replenishment_plan"
# When the store's last cancel of re-ordered reminders began (sync_state cursor): the next reads only what changed.
CANCEL_STREAM = "replenishment_cancel"
# Orders written up to this long before the last refresh are read again: a writer's transaction that
# started earlier but committed after that refresh stamped its rows with its own start time.
CHANGE_OVERLAP = timedelta(minutes=10)
# A refresh that would recompute more than this share of the store's pairs does a full build instead.
REBUILD_SHARE = 0.25
REBUILD_MIN_CUSTOMERS = 10_000
_TEMP_TABLES = ("rp_changed", "rp_scope", "rp_order", "rp_purchase", "rp_own", "rp_plan", "rp_built")


def _orders_sql(dialect: str, scope: str) -> str:
    """SELECT of one row per customer × consumable product × order: its time in days, quantity, variant, subscription.

    ``scope``: ``store`` (every consumable product), ``products`` (the consumable products in ``:product_ids``)
    or ``customers`` (every consumable product, customers listed in the temp table ``rp_scope``).
    """
    false = "FALSE" if dialect == "postgresql" else "0"
    tags = "CAST(o.tags AS TEXT)" if dialect == "postgresql" else "o.tags"
    valid = (f"o.cancelled_at IS NULL AND o.refunded = {false} AND o.returned = {false} AND ol.quantity > 0 "
             "AND pr.consumable")
    if scope == "customers":
        # CROSS JOIN makes SQLite start from the few customers (a temp table has no statistics there, and it
        # would rather scan every order); PostgreSQL plans it like any join.
        source = f"""FROM rp_scope s
            CROSS JOIN orders o
            JOIN order_line ol ON ol.order_id = o.id
            JOIN product pr ON pr.id = ol.product_id
            WHERE o.store_id = :store_id AND o.customer_id = s.customer_id AND {valid}"""
    else:
        only = "AND pr.id IN :product_ids" if scope == "products" else ""
        # Unary + keeps SQLite from driving the join through the orders indexes: walking the consumable
        # products' lines (ix_order_line_store_product) and fetching orders by key is several times faster.
        source = f"""FROM product pr
            JOIN order_line ol ON ol.store_id = pr.store_id AND ol.product_id = pr.id
            JOIN orders o ON o.id = ol.order_id
            WHERE pr.store_id = :store_id {only} AND +o.store_id = :store_id AND +o.customer_id IS NOT NULL
              AND {valid}"""
    t = days_sql(dialect, "o.created_at_remote")
    # Only constant, dialect-chosen fragments are interpolated; every value is a bound parameter.
    return f"""
        SELECT o.customer_id AS c, ol.product_id AS p, o.id AS order_id, {t} AS t,
               SUM(ol.quantity) AS q, MAX(ol.variant_id) AS variant_id,
               MAX(CASE WHEN LOWER({tags}) LIKE '%subscription%' THEN 1 ELSE 0 END) AS sub
        {source}
        GROUP BY o.customer_id, ol.product_id, o.id, o.created_at_remote"""  # noqa: S608


# One row per customer × product × purchase (its first order, start day, summed quantity) and the next one's start.
PURCHASES_SQL = """
    SELECT c, p, MIN(CASE WHEN t = start_t THEN order_id END) AS order_id, start_t AS t, SUM(q) AS q,
           MAX(variant_id) AS variant_id, MAX(sub) AS sub,
           LEAD(start_t) OVER (PARTITION BY c, p ORDER BY start_t) AS next_t,
           MIN(start_t) OVER (PARTITION BY c, p) AS first_t
    FROM rp_order GROUP BY c, p, start_t"""


CYCLE_COLUMNS = ("customer_id, product_id, store_id, last_order_id, last_purchase_day, last_quantity, variant_id, "
                 "subscription, own_cycle_days, gap_count, first_purchase_day, own_min_gap, own_max_gap")
# The purchase_cycle rows of the staged purchases (``_stage``): each pair's latest purchase with its own gaps.
CYCLE_SELECT = """
        SELECT r.c, r.p, :store_id, r.order_id, r.t, r.q, r.variant_id, r.sub = 1, g.own, COALESCE(g.n, 0),
               r.first_t, g.lo, g.hi
        FROM rp_purchase r
        LEFT JOIN rp_own g ON g.c = r.c AND g.p = r.p
        WHERE r.next_t IS NULL
          AND NOT EXISTS (SELECT 1 FROM customer cu WHERE cu.id = r.c AND cu.redacted_at IS NOT NULL)"""


def _own_median_sql(dialect: str) -> str:
    """SELECT of each customer × product's own median gap and gap count from ``rp_purchase``."""
    # Purchases are a day apart or more by their rule (plugin.purchases): every next purchase is a re-buy.
    gap = "CASE WHEN next_t IS NOT NULL THEN (next_t - t) / q END"
    if dialect == "postgresql":
        return f"""SELECT c, p, percentile_cont(0.5) WITHIN GROUP (ORDER BY gap) AS own, COUNT(*) AS n,
                          MIN(gap) AS lo, MAX(gap) AS hi
                   FROM (SELECT c, p, {gap} AS gap FROM rp_purchase) g WHERE gap IS NOT NULL GROUP BY c, p"""  # noqa: S608
    # SQLite has no median: number the gaps of each pair and average the one or two middle ones.
    return f"""SELECT c, p, AVG(CASE WHEN rn IN ((n + 1) / 2, (n + 2) / 2) THEN gap END) AS own, MAX(n) AS n,
                      MIN(gap) AS lo, MAX(gap) AS hi FROM (
                 SELECT c, p, gap, ROW_NUMBER() OVER (PARTITION BY c, p ORDER BY gap) AS rn,
                        COUNT(*) OVER (PARTITION BY c, p) AS n
                 FROM (SELECT c, p, {gap} AS gap FROM rp_purchase) g WHERE gap IS NOT NULL) ranked
               GROUP BY c, p"""  # noqa: S608


def _drop_temp(session: Session) -> None:
    # Only after success: a failed transaction takes its temp tables with it (and PostgreSQL would refuse
    # any statement before the rollback, hiding the real error).
    for name in _TEMP_TABLES:
        session.execute(text(f"DROP TABLE IF EXISTS {name}"))


def _temp_table(session: Session, dialect: str, name: str, select_sql: str, params: dict[str, Any],
                index: str | None = None) -> None:
    """Create temp table ``name`` from a SELECT (column types as the query computes them)."""
    session.execute(text(f"DROP TABLE IF EXISTS {name}"))
    create = text(f"CREATE TEMP TABLE {name} AS {select_sql}")
    if "product_ids" in params:
        create = create.bindparams(bindparam("product_ids", expanding=True))
    session.execute(create, params)
    if index:
        session.execute(text(f"CREATE INDEX {name}_ix ON {name} ({index})"))
    if dialect == "postgresql":
        # Temp tables have no statistics until analysed; the joins below need them.
        session.execute(text(f"ANALYZE {name}"))


def _stage(session: Session, dialect: str, store_id: int, scope: str, product_ids: list[int] | None = None) -> None:
    """Create ``rp_order`` (orders with their purchase), ``rp_purchase`` (purchases) and ``rp_own`` (own medians)."""
    params: dict[str, Any] = {"store_id": store_id}
    if scope == "products":
        params["product_ids"] = product_ids
    stage_purchases(session, "rp_order", _orders_sql(dialect, scope), params, keys=("c", "p"),
                    expanding=("product_ids",) if scope == "products" else ())
    _temp_table(session, dialect, "rp_purchase", PURCHASES_SQL, {})
    _temp_table(session, dialect, "rp_own", _own_median_sql(dialect), {}, index="c, p")


def _build(session: Session, dialect: str, store_id: int, scope: str, product_ids: list[int] | None = None
           ) -> int:
    """Insert the purchase_gap and purchase_cycle rows of ``scope`` (rows already deleted); return pairs."""
    _stage(session, dialect, store_id, scope, product_ids)
    session.execute(text("""
        INSERT INTO purchase_gap (order_id, product_id, customer_id, store_id, gap)
        SELECT order_id, p, c, :store_id, (next_t - t) / q FROM rp_purchase
        WHERE next_t IS NOT NULL"""), {"store_id": store_id})
    _, state = _load_plan_state(session, store_id)
    if state is None:  # never planned: the first hourly run plans every pair
        pairs = session.execute(text(f"INSERT INTO purchase_cycle ({CYCLE_COLUMNS}) {CYCLE_SELECT}"),  # noqa: S608
                                {"store_id": store_id}).rowcount
        return pairs or 0
    # Planned as they are written (under the stored plan state): one insert, no update of the rows after it.
    session.execute(text("DROP TABLE IF EXISTS rp_built"))
    session.execute(text("CREATE TEMP TABLE rp_built AS SELECT * FROM purchase_cycle WHERE 1 = 0"))
    session.execute(text(f"INSERT INTO rp_built ({CYCLE_COLUMNS}) {CYCLE_SELECT}"), {"store_id": store_id})  # noqa: S608
    if dialect == "postgresql":
        session.execute(text("ANALYZE rp_built"))
    session.execute(text("DROP TABLE IF EXISTS rp_plan"))
    session.execute(text(f"CREATE TEMP TABLE rp_plan AS {stored_plan_sql(dialect, '', 'rp_built')}"),
                    _state_params(store_id, state, store_fit(session, store_id)))
    planned = ", ".join(f"pl.{col}" for col in PLAN_COLUMNS)
    pairs = session.execute(text(f"""
        INSERT INTO purchase_cycle ({CYCLE_COLUMNS}, {", ".join(PLAN_COLUMNS)})
        SELECT {", ".join("b." + col.strip() for col in CYCLE_COLUMNS.split(","))}, {planned}
        FROM rp_built b LEFT JOIN rp_plan pl ON pl.c = b.customer_id AND pl.p = b.product_id"""),  # noqa: S608
                            {"store_id": store_id}).rowcount
    session.execute(text("DROP TABLE rp_built"))
    session.execute(text("DROP TABLE rp_plan"))
    return pairs or 0


@contextmanager
def _roomy_memory(session: Session, dialect: str) -> Iterator[None]:
    """Give a full build memory for its sorts and index writes, for this transaction only."""
    if dialect == "postgresql":
        # The default 4 MB work_mem spills the sorts of every purchase to disk (3 M orders: ~170 MB, half the time).
        session.execute(text("SET LOCAL work_mem = '256MB'"))
        with _index_probes(session, dialect):
            yield
        return
    # SQLite's default 2 MB page cache thrashes on the random-order inserts into the new tables' indexes and
    # the lookups into orders (3 M orders: 45 s instead of 20 s); the setting is the connection's, so restored.
    previous = session.execute(text("PRAGMA cache_size")).scalar_one()
    session.execute(text("PRAGMA cache_size = -262144"))
    try:
        yield
    finally:
        session.execute(text(f"PRAGMA cache_size = {int(previous)}"))


@contextmanager
def _index_probes(session: Session, dialect: str) -> Iterator[None]:
    """Let PostgreSQL price an index probe near a sequential read while the block runs (then as before).

    The default random_page_cost (4, for spinning disks) makes ~10 k index probes into orders, order_line,
    purchase_cycle and purchase_gap look dearer than scanning them whole, so an hour's refresh and cancel read
    every order (measured, 1 M customers: 3 s of seq scans where the probes take 0.1 s). Their pages are hot.
    """
    if dialect != "postgresql":
        yield
        return
    previous = session.execute(text("SELECT current_setting('random_page_cost')")).scalar_one()
    session.execute(text("SELECT set_config('random_page_cost', '1.1', true)"))
    try:
        yield
    finally:
        session.execute(text("SELECT set_config('random_page_cost', :v, true)"), {"v": previous})


def _database_now(session: Session) -> datetime:
    """Return the database's clock (what ``updated_at`` columns are stamped with), aware UTC."""
    value = session.execute(text("SELECT CURRENT_TIMESTAMP")).scalar_one()
    if isinstance(value, str):  # SQLite: 'YYYY-MM-DD HH:MM:SS' in UTC
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _delete_rows(session: Session, where: str, params: dict[str, Any], expanding: bool = False) -> None:
    for table in ("purchase_cycle", "purchase_gap"):
        stmt = text(f"DELETE FROM {table} WHERE {where}")  # noqa: S608 - constant fragments only
        if expanding:
            stmt = stmt.bindparams(bindparam("product_ids", expanding=True))
        session.execute(stmt, params)


def _full_build(session: Session, dialect: str, store_id: int) -> dict[str, int]:
    _delete_rows(session, "store_id = :store_id", {"store_id": store_id})
    pairs = _build(session, dialect, store_id, "store")
    if dialect == "postgresql":
        # Every row is new: without fresh statistics the next refreshes' joins are planned as full scans.
        session.execute(text("ANALYZE purchase_cycle, purchase_gap"))
    session.execute(update(Product).where(Product.store_id == store_id)
                    .values(cycles_built=Product.consumable).execution_options(synchronize_session=False))
    return {"full": 1, "pairs": pairs}


def _refresh_products(session: Session, dialect: str, store_id: int) -> dict[str, int]:
    """Drop the rows of products no longer consumable; build those of products newly consumable."""
    rows = session.execute(select(Product.id, Product.consumable).where(
        Product.store_id == store_id, Product.consumable != Product.cycles_built)).all()
    dropped = [pid for pid, consumable in rows if not consumable]
    added = [pid for pid, consumable in rows if consumable]
    where = "store_id = :store_id AND product_id IN :product_ids"
    if dropped:
        _delete_rows(session, where, {"store_id": store_id, "product_ids": dropped}, expanding=True)
    pairs = 0
    if added:
        # Rows of these products can only exist from an earlier consumable spell that was dropped.
        _delete_rows(session, where, {"store_id": store_id, "product_ids": added}, expanding=True)
        pairs = _build(session, dialect, store_id, "products", added)
    if rows:
        session.execute(update(Product).where(Product.id.in_([pid for pid, _ in rows]))
                        .values(cycles_built=Product.consumable).execution_options(synchronize_session=False))
    return {"products_dropped": len(dropped), "products_built": len(added), "product_pairs": pairs}


def _refresh_customers(session: Session, dialect: str, store_id: int, since: datetime) -> dict[str, int] | None:
    """Recompute every pair of the customers whose orders were written at or after ``since``.

    Return None, having changed nothing, when so many customers changed that a full build is cheaper.
    """
    session.execute(text("DROP TABLE IF EXISTS rp_changed"))
    session.execute(text("CREATE TEMP TABLE rp_changed AS SELECT id AS order_id, customer_id FROM orders "
                         "WHERE store_id = :store_id AND updated_at >= :since").bindparams(
        bindparam("since", type_=UTCDateTime())), {"store_id": store_id, "since": since})
    if dialect == "postgresql":
        # Without statistics the planner hashes all of purchase_cycle and purchase_gap for a few changed orders.
        session.execute(text("ANALYZE rp_changed"))
    # An order moved to another customer leaves its old customer's pairs stale: they are found through the
    # purchase rows that still point at the order.
    _temp_table(session, dialect, "rp_scope", """
        SELECT customer_id FROM rp_changed WHERE customer_id IS NOT NULL
        UNION SELECT pc.customer_id FROM rp_changed ch CROSS JOIN purchase_cycle pc WHERE pc.last_order_id = ch.order_id
        UNION SELECT g.customer_id FROM rp_changed ch CROSS JOIN purchase_gap g WHERE g.order_id = ch.order_id""",
                {}, index="customer_id")
    customers = session.execute(text("SELECT COUNT(*) FROM rp_scope")).scalar_one()
    if not customers:
        return {"customers": 0, "pairs": 0}
    # Counting stops past the pairs that would keep the share under REBUILD_SHARE (not every pair is read).
    enough = int(customers / REBUILD_SHARE) + 1
    if customers > REBUILD_MIN_CUSTOMERS and customers > REBUILD_SHARE * session.execute(text(
            "SELECT COUNT(*) FROM (SELECT 1 FROM purchase_cycle WHERE store_id = :store_id LIMIT :enough) pairs"),
            {"store_id": store_id, "enough": enough}).scalar_one():
        # After a backfill most customers changed: one full build is cheaper than per-customer lookups.
        return None
    _delete_rows(session, "customer_id IN (SELECT customer_id FROM rp_scope)", {})
    pairs = _build(session, dialect, store_id, "customers")
    return {"customers": int(customers), "pairs": pairs}


def _lock_state(session: Session, store_id: int, stream: str = CYCLES_STREAM) -> SyncState:
    """Return the store's planner state row, locked: refreshes (or cancels) of one store run one after the other."""
    get_sync_state(session, store_id, stream)
    return session.scalars(select(SyncState).where(SyncState.store_id == store_id, SyncState.stream == stream)
                           .with_for_update().execution_options(populate_existing=True)).one()


def recompute_customers(session: Session, store_id: int, customer_ids: list[int]) -> int:
    """Recompute the given customers' rows now; return their pairs. For writes ``updated_at`` cannot show.

    An order deleted (orders/delete) leaves no row whose ``updated_at`` a refresh could find, so its writer
    calls this. A store not built yet is left alone: its first refresh builds everything.
    """
    dialect = session.get_bind().dialect.name
    if _lock_state(session, store_id).cursor is None or not customer_ids:
        return 0
    session.execute(text("DROP TABLE IF EXISTS rp_scope"))
    session.execute(text("CREATE TEMP TABLE rp_scope (customer_id BIGINT PRIMARY KEY)"))
    session.execute(text("INSERT INTO rp_scope (customer_id) VALUES (:c)"),
                    [{"c": c} for c in sorted(set(customer_ids))])
    _delete_rows(session, "customer_id IN (SELECT customer_id FROM rp_scope)", {})
    pairs = _build(session, dialect, store_id, "customers")
    _drop_temp(session)
    return pairs


def customer_plan(session: Session, store_id: int, customer_id: int, settings: dict[str, Any], now: datetime
                  ) -> list[dict[str, Any]]:
    """Return the plan of each consumable a customer bought, for the admin's customer page (due or not).

    The stored plans (``PLAN_COLUMNS``, kept current by the hourly run and the daily refit), scored now as the
    hourly run scores a due pair (``stored_now_sql``): what the flow would plan if the pair were due now. A pair
    whose orders changed since the last refresh shows its plan after the next hourly run. Each entry: product id,
    last purchase, quantity, cycle, predicted run-out, reminder time and its target, probability, whether it clears
    the floor, whether it is a catch-up, and the reason in words.
    """
    dialect = session.get_bind().dialect.name
    params = plan_params(store_id, settings, now, store_fit(session, store_id))
    params["customer_id"] = customer_id
    where = "AND g.customer_id = :customer_id AND g.plan_mu IS NOT NULL"
    rows = session.execute(text(stored_now_sql(dialect, where) + " ORDER BY run_out"), params).mappings().all()
    result = []
    for r in rows:
        probability = float(r["alive"]) * float(r["chance"])
        result.append({
            "product_id": int(r["p"]), "last": EPOCH + timedelta(days=float(r["t"])), "quantity": int(r["q"]),
            "cycle_days": float(r["cycle"]), "run_out": EPOCH + timedelta(days=float(r["run_out"])),
            "remind_at": max(EPOCH + timedelta(days=float(r["start_day"])), now),
            "target": EPOCH + timedelta(days=float(r["target"])),
            "probability": probability, "alive": float(r["alive"]),
            "remind": probability >= settings["min_probability"],
            "catch_up": bool(r["overdue"]),
            "reason": reason_words(int(r["n"]), r["lo"], r["hi"], r["learned"], r["supply"], int(r["q"]))})
    return result


def refresh_cycles(session: Session, store_id: int, *, full: bool = False) -> dict[str, int]:
    """Bring the store's purchase_cycle and purchase_gap rows up to date; return what was recomputed.

    The first refresh of a store (or ``full``) builds everything; later ones only the products whose
    consumable flag changed and the customers whose orders were written since the previous refresh.
    """
    dialect = session.get_bind().dialect.name
    state = _lock_state(session, store_id)
    started = _database_now(session)
    with _roomy_memory(session, dialect):
        customers = None
        if not full and state.cursor is not None:
            counts = _refresh_products(session, dialect, store_id)
            since = datetime.fromisoformat(state.cursor) - CHANGE_OVERLAP
            customers = _refresh_customers(session, dialect, store_id, since)
        if customers is None:
            counts = _full_build(session, dialect, store_id)
        else:
            counts.update(customers)
        _, plan_state = _load_plan_state(session, store_id)
        if plan_state is not None:
            _replan_changed_products(session, store_id, plan_state)
    _drop_temp(session)
    state.cursor = started.isoformat()
    return counts


def product_medians(session: Session, store_id: int) -> dict[int, tuple[float, int]]:
    """Return {product id: (median days per unit between re-buys, number of gaps)} across customers."""
    refresh_cycles(session, store_id)
    postgres = session.get_bind().dialect.name == "postgresql"
    counts = session.execute(text("SELECT product_id, COUNT(*) FROM purchase_gap WHERE store_id = :store_id "
                                  "GROUP BY product_id"), {"store_id": store_id}).all()
    pick = text("SELECT gap FROM purchase_gap WHERE store_id = :store_id AND product_id = :product_id "
                "ORDER BY gap LIMIT :k OFFSET :skip")
    medians = {}
    for product_id, n in counts:
        # The one or two middle gaps, read in index order (no sort of the product's gaps).
        middle = [float(g) for g in session.execute(pick, {"store_id": store_id, "product_id": product_id,
                                                            "k": 2 - n % 2, "skip": (n - 1) // 2}).scalars()]
        lo, hi = middle[0], middle[-1]
        # The same arithmetic as percentile_cont (PostgreSQL) and AVG of the middle pair (SQLite).
        medians[int(product_id)] = (lo + (hi - lo) * 0.5 if postgres else (lo + hi) / 2, int(n))
    return medians


def log_spreads(session: Session, store_id: int) -> dict[int, tuple[float | None, float | None]]:
    """Return {product id: (within-customer variance, between-customer variance)} of log days per unit.

    Within: the pooled variance of each customer's log gaps around their own mean (``MIN_SPREAD_DF`` degrees of
    freedom at least, else None); between: the variance of all the product's log gaps less the within part, at
    least ``MIN_LOG_VAR``. Set-based over ``purchase_gap`` (one pass grouped by customer, then by product).
    """
    rows = session.execute(text("""
        SELECT product_id, SUM(k), SUM(s), SUM(ss), SUM(ss - s * s / k), SUM(k - 1) FROM (
            SELECT product_id, customer_id, COUNT(*) AS k, SUM(LN(gap)) AS s, SUM(LN(gap) * LN(gap)) AS ss
            FROM purchase_gap WHERE store_id = :store_id GROUP BY product_id, customer_id) per_customer
        GROUP BY product_id"""), {"store_id": store_id}).all()
    spreads: dict[int, tuple[float | None, float | None]] = {}
    for product_id, k, s, ss, within_ss, df in rows:
        k, s, ss, within_ss, df = int(k), float(s), float(ss), float(within_ss), int(df)
        within = max(within_ss / df, MIN_LOG_VAR) if df >= MIN_SPREAD_DF else None
        total = (ss - s * s / k) / (k - 1) if k > 1 else None
        between = None if within is None or total is None else max(total - within, MIN_LOG_VAR)
        spreads[int(product_id)] = (within, between)
    return spreads


def fit_rows(session: Session, store_id: int, now: datetime) -> list[tuple[int, float, float, int]]:
    """Return the store's pairs grouped by (repeats x, recency t_x, age T in whole days) with their counts."""
    now_days = (now - EPOCH).total_seconds() / 86400.0
    rows = session.execute(text("""
        SELECT gap_count, ROUND(last_purchase_day - first_purchase_day), ROUND(:now_days - first_purchase_day),
               COUNT(*)
        FROM purchase_cycle WHERE store_id = :store_id AND first_purchase_day IS NOT NULL
          AND first_purchase_day <= :now_days
        GROUP BY gap_count, ROUND(last_purchase_day - first_purchase_day), ROUND(:now_days - first_purchase_day)"""),
        {"store_id": store_id, "now_days": now_days}).all()
    return [(int(x), float(tx), float(big_t), int(n)) for x, tx, big_t, n in rows]


def fit_store(session: Session, store_id: int, now: datetime) -> ReplenishmentFit | None:
    """Fit the store's MBG/NBD (still-active probability) and keep it; with too little data, forget any old fit."""
    fit = fit_mbgnbd(fit_rows(session, store_id, now))
    row = session.get(ReplenishmentFit, store_id)
    if fit is None:
        if row is not None:
            session.delete(row)
        return None
    if row is None:
        row = ReplenishmentFit(store_id=store_id)
        session.add(row)
    row.r, row.alpha, row.a, row.b = fit.r, fit.alpha, fit.a, fit.b
    row.pairs, row.log_likelihood, row.fitted_at = fit.pairs, fit.log_likelihood, now
    session.flush()
    return row


def learn_product_cycles(session: Session, store_id: int, now: datetime | None = None,
                         settings: Any | None = None) -> int:
    """Store each consumable product's learned median cycle, sample count and spread; return products updated.

    With ``now``, also refit the store's still-active model (``fit_store``): that is the refit, and ``now``
    becomes the stored plans' reference day. Then every pair is replanned (the learned values changed), under
    ``settings`` (the flow's) or else the settings of the stored plans; a store never planned and given no
    settings is planned by its first hourly run.
    """
    medians = product_medians(session, store_id)
    spreads = log_spreads(session, store_id)
    session.execute(text("UPDATE product SET learned_cycle_days = NULL, learned_cycle_samples = 0, "
                         "learned_log_within_var = NULL, learned_log_between_var = NULL "
                         "WHERE store_id = :store_id AND (learned_cycle_samples <> 0 "
                         "OR learned_log_within_var IS NOT NULL)"), {"store_id": store_id})
    if medians:
        session.execute(text("UPDATE product SET learned_cycle_days = :days, learned_cycle_samples = :n, "
                             "learned_log_within_var = :within, learned_log_between_var = :between WHERE id = :id"),
                        [{"id": pid, "days": days, "n": n, "within": spreads.get(pid, (None, None))[0],
                          "between": spreads.get(pid, (None, None))[1]} for pid, (days, n) in medians.items()])
    if now is not None:
        fit_store(session, store_id, now)
    row, state = _load_plan_state(session, store_id)
    ref = (now - EPOCH).total_seconds() / 86400.0 if now is not None else state["ref"] if state else None
    if settings is not None and ref is not None:
        _replan_all(session, store_id, row, _wanted_state(settings, ref))
    elif state is not None:
        _replan_all(session, store_id, row, {**state, "ref": ref})
    return len(medians)


def learn(ctx: JobContext, store_id: int) -> dict[str, Any]:
    """Job: relearn every consumable product's cycle and spread, and refit the store's still-active model."""
    with ctx.database.session() as session:
        settings = REPLENISHMENT.load(flow_settings.effective(session, ctx.config, store_id, FLOW))
        products = learn_product_cycles(session, store_id, ctx.clock.now(), settings)
        return {"products": products, "fitted": store_fit(session, store_id) is not None}


def cancel_reordered(session: Session, store_id: int, now: datetime) -> int:
    """Cancel planned reminders whose customer bought the product again after the purchase they are based on.

    The reminder names the purchase's first order; an order less than a day after it is part of that purchase
    (plugin.purchases), not a re-order.
    """
    dialect = session.get_bind().dialect.name
    false = "FALSE" if dialect == "postgresql" else "0"
    params: dict[str, Any] = {"store_id": store_id, "now": _bind_time(dialect, now),
                              "reason": reasons.ALREADY_REORDERED}
    state = _lock_state(session, store_id, CANCEL_STREAM)
    started = _database_now(session)
    scheduled = f"message.store_id = :store_id AND message.flow = '{FLOW}' AND message.status = 'scheduled'"
    if state.cursor is not None:
        # A reminder is planned after the run's own cancel began, from pairs refreshed after it, so a re-order
        # it has not seen was written after that cancel began: only customers with orders written since the
        # previous cancel (less the refresh's overlap, for late commits) can have one. The first time, all are read.
        session.execute(text("DROP TABLE IF EXISTS rp_cancel"))
        # Not DISTINCT (SQLite would walk the (store, customer) index over every order for it); IN ignores repeats.
        session.execute(text("CREATE TEMP TABLE rp_cancel AS SELECT customer_id FROM orders "
                             "WHERE store_id = :store_id AND updated_at >= :since AND customer_id IS NOT NULL"
                             ).bindparams(bindparam("since", type_=UTCDateTime())),
                        {"store_id": store_id, "since": datetime.fromisoformat(state.cursor) - CHANGE_OVERLAP})
        if dialect == "postgresql":
            session.execute(text("ANALYZE rp_cancel"))
        # Driven from the few changed customers (CROSS JOIN: SQLite keeps that order) through the (store, customer)
        # index. Unary + keeps SQLite off the (store, flow) and status indexes here: without statistics it rates
        # them the same and breaks the tie by the order the indexes were created in, and through (store, flow) it
        # reads every planned reminder per changed customer (measured on CDNOW: minutes instead of a second).
        plus = "+" if dialect == "sqlite" else ""
        scheduled = f"""message.id IN (SELECT message.id FROM rp_cancel ch CROSS JOIN message
                                       WHERE message.customer_id = ch.customer_id AND message.store_id = :store_id
                                         AND {plus}message.flow = '{FLOW}' AND {plus}message.status = 'scheduled')"""  # noqa: S608
    with _index_probes(session, dialect):
        result = session.execute(text(f"""
        UPDATE message SET status = 'cancelled', skip_reason = :reason, updated_at = :now
        WHERE {scheduled}
          AND EXISTS (
            SELECT 1 FROM orders o2 JOIN order_line l2 ON l2.order_id = o2.id
            WHERE o2.store_id = message.store_id AND o2.customer_id = message.customer_id
              AND l2.product_id = message.product_id AND o2.id <> message.order_id
              -- Implied by the day below; in this form the (store, customer, created) index skips the earlier orders.
              AND o2.created_at_remote > (SELECT o4.created_at_remote FROM orders o4 WHERE o4.id = message.order_id)
              AND o2.cancelled_at IS NULL AND o2.refunded = {false} AND o2.returned = {false}
              AND {days_sql(dialect, 'o2.created_at_remote')} - (SELECT {days_sql(dialect, 'o3.created_at_remote')}
                                                              FROM orders o3 WHERE o3.id = message.order_id)
                  >= {WINDOW_DAYS})
        """), params)  # noqa: S608
    session.execute(text("DROP TABLE IF EXISTS rp_cancel"))
    state.cursor = started.isoformat()
    return result.rowcount or 0


def discount_code_name(idempotency_key: str) -> str:
    """Return the single-use code for a reminder, derived from its key so a retried create is recognisable."""
    return "REFILL-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:10].upper()


def _bind_time(dialect: str, when: datetime) -> Any:
    # Raw text() binds skip the UTCDateTime type; SQLite columns hold naive UTC strings.
    return when.astimezone(UTC).replace(tzinfo=None) if dialect == "sqlite" else when


def cancel_reordered_in(run: FlowRun) -> int:
    """Exit of the flow: cancel the store's planned reminders whose customer re-ordered (``already_reordered``)."""
    return cancel_reordered(run.session, run.store.id, run.now)


def _greatest(dialect: str) -> tuple[str, str]:
    return ("GREATEST", "LEAST") if dialect == "postgresql" else ("MAX", "MIN")


def _z(dialect: str, days: str) -> str:
    """SQL of the standard score of log(``days``) under the pair's log-normal (``mu``, ``sd``), clamped to ±30."""
    hi, lo = _greatest(dialect)
    # Clamped so exp() never underflows (PostgreSQL raises on underflow) and LN never sees 0.
    return f"{lo}({hi}((LN({hi}({days}, 0.001)) - mu) / sd, -30.0), 30.0)"


def _survival(z: str) -> str:
    """SQL of 1 − Φ(z) for a standard-score column, accurate in the far tail.

    Börjesson & Sundberg's approximation (1979, "Simple approximations of the error function Q(x) for
    communications applications", IEEE Trans. Commun. 27(3)): Q(z) = φ(z) / (0.661 z + 0.339 √(z² + 5.51)) for
    z ≥ 0, relative error under 0.3 % for every z — an overdue customer's chance is a ratio of two tails.
    """
    # 2.5066... = sqrt(2 pi)
    q = f"(EXP(-0.5 * {z} * {z}) / (2.5066282746310002 * (0.661 * ABS({z}) + 0.339 * SQRT({z} * {z} + 5.51))))"
    return f"(CASE WHEN {z} >= 0 THEN {q} ELSE 1.0 - {q} END)"


def _model_ctes(dialect: str, source: str, where: str, materialize: bool = True) -> str:
    """CTEs ``base``, ``est``, ``win`` of the time-free part of the plan of each pair of ``source`` (see plan_sql).

    ``win`` adds to purchase_cycle's columns (renamed) ``mu1`` (log cycle per unit, NULL when no cycle), ``mu``
    (quantity included), ``sd``, ``centre`` (days from the last purchase to the best window's centre) and
    ``remind_day`` (the window's start). ``win`` is materialized (else every score below re-evaluates the model)
    unless the caller materializes a narrower projection of it.
    """
    hi, _ = _greatest(dialect)
    materialized = "MATERIALIZED" if materialize else ""
    # Only constant, dialect-chosen fragments and table names of this module are interpolated; values are bound.
    return f"""
    base AS (
        SELECT g.customer_id AS c, g.product_id AS p, g.last_order_id AS order_id, g.last_purchase_day AS t,
               g.last_quantity AS q, g.variant_id, g.subscription AS sub, g.own_cycle_days AS own, g.gap_count AS n,
               COALESCE(g.first_purchase_day, g.last_purchase_day) AS t0, g.own_min_gap AS lo, g.own_max_gap AS hi,
               CASE WHEN pr.learned_cycle_samples >= :min_samples THEN pr.learned_cycle_days END AS learned,
               pr.days_of_supply AS supply,
               CASE WHEN pr.learned_cycle_samples >= :min_samples AND pr.learned_log_within_var IS NOT NULL
                    THEN pr.learned_log_within_var ELSE :default_var END AS wv,
               CASE WHEN pr.learned_cycle_samples >= :min_samples AND pr.learned_log_between_var IS NOT NULL
                    THEN pr.learned_log_between_var ELSE :default_var END AS bv,
               {hi}(COALESCE(pr.reminder_lead_days, :lead_days), 1) AS h
        FROM {source} g
        JOIN product pr ON pr.id = g.product_id
        WHERE g.store_id = :store_id {where}
    ), est AS (
        SELECT base.*,
               CASE WHEN own IS NULL THEN LN(COALESCE(learned, supply))
                    WHEN learned IS NULL THEN LN(own)
                    ELSE ((wv / bv) * LN(learned) + n * LN(own)) / (wv / bv + n) END AS mu1,
               CASE WHEN own IS NOT NULL AND learned IS NOT NULL THEN wv + wv / (wv / bv + n)
                    WHEN own IS NOT NULL THEN wv + wv / n
                    WHEN learned IS NOT NULL THEN wv + bv
                    ELSE wv END AS var
        FROM base
    ), cen AS (
        SELECT est.*, mu1 + LN(q) AS mu, SQRT(var) AS sd,
               SQRT(h * h + EXP(2 * (mu1 + LN(q) - var))) AS centre
        FROM est
    ), win AS {materialized} (
        SELECT cen.*, t + centre - h AS remind_day FROM cen
    )"""  # noqa: S608


def _inverse_survival(s: str, tail: str) -> str:
    """SQL of the standard score z with 1 − Φ(z) = ``s`` (``tail``: min(s, 1 − s) > 0), absolute error < 4.5e-4.

    Hastings' rational approximation (Abramowitz & Stegun, *Handbook of Mathematical Functions*, 1964, 26.2.23):
    for 0 < p ≤ ½, z = w − (c0 + c1 w + c2 w²) / (1 + d1 w + d2 w² + d3 w³) with w = √(−2 ln p); the upper half by
    symmetry. Plain arithmetic, so SQLite and PostgreSQL compute the same.
    """
    w = f"SQRT(-2.0 * LN({tail}))"
    ratio = (f"((2.515517 + 0.802853 * {w} + 0.010328 * {w} * {w}) / "
             f"(1.0 + 1.432788 * {w} + 0.189269 * {w} * {w} + 0.001308 * {w} * {w} * {w}))")
    return f"((CASE WHEN {s} <= 0.5 THEN 1.0 ELSE -1.0 END) * ({w} - {ratio}))"


def _run_out_ctes(dialect: str, source: str, day: str) -> str:
    """CTEs ending in ``median``: ``source``'s pairs (t, mu, sd) with ``run_out``, the predicted next purchase.

    ``run_out`` is the median of the pair's log-normal next gap G given none up to ``a`` (the later of ``day`` and
    the last purchase) and one within ``RETURN_DAYS`` (``:return_days``, H) of it: the g with
    S(g) = (S(a − t) + S(a − t + H)) / 2, S the log-normal survival (plugin.flows.replenishment_model).
    """
    hi, lo = _greatest(dialect)
    return f"""
    anchored AS (
        SELECT {source}.*, {hi}({day}, t) AS anchor FROM {source}
    ), tails AS MATERIALIZED (
        SELECT anchored.*, {_z(dialect, "anchor - t")} AS z_anchor, {_z(dialect, "anchor - t + :return_days")} AS z_hor
        FROM anchored
    ), halfway AS (
        SELECT tails.*, ({_survival("z_anchor")} + {_survival("z_hor")}) / 2 AS s_mid FROM tails
    ), tailed AS MATERIALIZED (
        -- The smaller tail of s_mid, never 0 (1 − Φ rounds to 1 for a pair bought a moment ago).
        SELECT halfway.*, {hi}({lo}(s_mid, 1.0 - s_mid), 1e-300) AS s_mid_tail FROM halfway
    ), median AS (
        SELECT tailed.*, t + EXP(mu + sd * {_inverse_survival("s_mid", "s_mid_tail")}) AS run_out FROM tailed
    )"""  # noqa: S608


def _score_ctes(dialect: str, source: str, day: str) -> str:
    """CTEs ``timed`` and ``scored``: ``source``'s pairs (t, t0, n, mu, sd, h, remind_day) as seen on ``day``.

    ``ev`` is that day, ``start_day`` the reminder's start (the window's start, or that day when it has passed)
    and ``z_start``, ``z_end``, ``z_now`` the standard scores the probability (``_alive``, ``_chance``) needs.
    """
    hi, _ = _greatest(dialect)
    return f"""
    timed AS (
        SELECT {source}.*, {day} AS ev, {hi}(remind_day, {day}) AS start_day FROM {source}
    ), scored AS MATERIALIZED (
        SELECT timed.*, {_z(dialect, "start_day - t")} AS z_start, {_z(dialect, "start_day + 2 * h - t")} AS z_end,
               {_z(dialect, "ev - t")} AS z_now
        FROM timed
    )"""  # noqa: S608


# P(alive) on day ``ev`` (MBG/NBD when fitted, else 1) and the chance of the next purchase in the window given
# none so far, over the ``scored`` CTE.
_ALIVE = ("(CASE WHEN :fitted = 1 THEN 1.0 / (1.0 + :fit_a / (:fit_b + n) * EXP((:fit_r + n) * "
          "LN((:fit_alpha + ev - t0) / (:fit_alpha + t - t0)))) ELSE 1.0 END)")


def _chance(dialect: str) -> str:
    hi, _ = _greatest(dialect)
    return f"(({_survival('z_start')} - {_survival('z_end')}) / {hi}({_survival('z_now')}, 1e-200))"


def plan_sql(dialect: str, source: str) -> str:
    """SELECT of every pair's plan in ``source`` (purchase_cycle's columns): run-out, reminder day, probability.

    The model (plugin.flows.replenishment_model): log-normal days per unit, the customer's own median shrunk
    toward the product's learned median by the learned spreads, scaled by the quantity; the best window of
    ``2h`` days (h = lead days) is centred ``sqrt(h² + mode²)`` after the last purchase; the reminder goes at its
    start or now, whichever is later; the probability is P(alive) (MBG/NBD, when fitted) times the chance the next
    purchase falls in the window given none so far. Times are days since 1970.
    """
    return f"""
    WITH {_model_ctes(dialect, source, "")}, planned AS (SELECT * FROM win WHERE mu1 IS NOT NULL),
    {_run_out_ctes(dialect, "planned", ":now_days")}, {_score_ctes(dialect, "median", ":now_days")}
    SELECT c, p, order_id, t, q, variant_id, sub, own, n, lo, hi, learned, supply, h,
           EXP(mu1) AS cycle, start_day, start_day + h AS target, run_out, remind_day < :now_days AS overdue,
           {_ALIVE} AS alive, {_chance(dialect)} AS chance
    FROM scored
    """  # noqa: S608


PLAN_COLUMNS = ("plan_cycle_days", "plan_mu", "plan_sd", "plan_lead_days", "plan_learned", "plan_supply",
                "run_out_day", "remind_day", "plan_probability", "due_day")


def stored_plan_sql(dialect: str, where: str, source: str = "purchase_cycle") -> str:
    """SELECT of the stored plan columns (``PLAN_COLUMNS``) of the pairs of ``source`` that ``where`` selects.

    Everything is as of the plan's reference day ``:ref_day`` (the last refit), or the pair's last purchase when
    that is later, so a pair's stored row depends on its purchases, its product, the store's fit and settings and
    that day — never on when it was computed. ``run_out_day`` is the reminder's target (the window's centre): the
    predicted run-out depends on the time it is asked at, so it is computed when a plan is scored (``stored_now_sql``),
    not stored. ``due_day``: the reminder day less the planning horizon; NULL when
    there is no cycle, or when the reminder day is within the horizon (or past) on the reference day and the
    probability is below the floor then: a customer who has left is not looked at again until the next refit.
    """
    hi, _ = _greatest(dialect)
    return f"""
    WITH {_model_ctes(dialect, source, where, materialize=False)},
    slim AS MATERIALIZED (SELECT c, p, t, t0, n, mu1, mu, sd, h, learned, supply, remind_day FROM win),
    {_score_ctes(dialect, "slim", f"{hi}(:ref_day, t)")},
    prob AS (SELECT scored.*, {_ALIVE} * {_chance(dialect)} AS probability FROM scored)
    SELECT c, p, EXP(mu1) AS plan_cycle_days, mu AS plan_mu, sd AS plan_sd, h AS plan_lead_days,
           learned AS plan_learned, supply AS plan_supply, remind_day + h AS run_out_day, remind_day,
           probability AS plan_probability,
           CASE WHEN mu1 IS NULL THEN NULL
                WHEN remind_day - {PLAN_AHEAD_DAYS} > ev OR probability >= :floor THEN remind_day - {PLAN_AHEAD_DAYS}
           END AS due_day
    FROM prob
    """  # noqa: S608


def _state_params(store_id: int, state: dict[str, Any], fit: ReplenishmentFit | None) -> dict[str, Any]:
    params = plan_params(store_id, {"min_product_samples": state["min_samples"], "lead_days": state["lead"]},
                         EPOCH + timedelta(days=state["ref"]), fit)
    params.update(ref_day=state["ref"], floor=state["floor"])
    return params


def _replan(session: Session, store_id: int, state: dict[str, Any], where: str = "",
            params: dict[str, Any] | None = None) -> int:
    """Recompute the stored plan of the store's pairs ``where`` selects (all by default); return the pairs."""
    dialect = session.get_bind().dialect.name
    bound = {**_state_params(store_id, state, store_fit(session, store_id)), **(params or {})}
    create = text(f"CREATE TEMP TABLE rp_plan AS {stored_plan_sql(dialect, where)}")
    if "product_ids" in bound:
        create = create.bindparams(bindparam("product_ids", expanding=True))
    session.execute(text("DROP TABLE IF EXISTS rp_plan"))
    session.execute(create, bound)
    assign = ", ".join(f"{col} = rp_plan.{col}" for col in PLAN_COLUMNS)
    pairs = session.execute(text(f"""
        UPDATE purchase_cycle SET {assign} FROM rp_plan
        WHERE purchase_cycle.customer_id = rp_plan.c AND purchase_cycle.product_id = rp_plan.p"""  # noqa: S608
                                 )).rowcount or 0
    session.execute(text("DROP TABLE rp_plan"))
    return pairs


def _plan_inputs(days_of_supply: int | None, lead_days: int | None) -> str:
    return f"{days_of_supply}|{lead_days}"


def _load_plan_state(session: Session, store_id: int) -> tuple[SyncState, dict[str, Any] | None]:
    row = get_sync_state(session, store_id, PLAN_STREAM)
    return row, (json.loads(row.cursor) if row.cursor else None)


def _replan_all(session: Session, store_id: int, row: SyncState, state: dict[str, Any]) -> int:
    """Replan every pair of the store under ``state`` and keep it; mark every product's inputs as planned."""
    pairs = _replan(session, store_id, state)
    if session.get_bind().dialect.name == "postgresql":
        # Every row changed: the hourly run's index range on due_day is planned from fresh statistics.
        session.execute(text("ANALYZE purchase_cycle"))
    for product in session.scalars(select(Product).where(Product.store_id == store_id)):
        product.plan_inputs = _plan_inputs(product.days_of_supply, product.reminder_lead_days)
    row.cursor = json.dumps(state, sort_keys=True)
    session.flush()
    return pairs


def _replan_changed_products(session: Session, store_id: int, state: dict[str, Any]) -> int:
    """Replan the pairs of products whose days of supply or lead days changed since their plans were stored."""
    changed = [p for p in session.scalars(select(Product).where(Product.store_id == store_id))
               if p.plan_inputs != _plan_inputs(p.days_of_supply, p.reminder_lead_days)]
    if not changed:
        return 0
    pairs = _replan(session, store_id, state, "AND g.product_id IN :product_ids",
                    {"product_ids": [p.id for p in changed]})
    for product in changed:
        product.plan_inputs = _plan_inputs(product.days_of_supply, product.reminder_lead_days)
    session.flush()
    return pairs


def _wanted_state(settings: Any, ref_day: float) -> dict[str, Any]:
    return {"ref": ref_day, "lead": float(settings["lead_days"]), "min_samples": int(settings["min_product_samples"]),
            "floor": float(settings["min_probability"])}


def ensure_plans(session: Session, store_id: int, settings: Any, now: datetime) -> int:
    """Replan every pair when the store's plan settings changed (or it was never planned); return pairs replanned.

    The reference day stays the last refit's (``learn_product_cycles``); a store never planned starts at ``now``.
    """
    row, state = _load_plan_state(session, store_id)
    ref = state["ref"] if state else (now - EPOCH).total_seconds() / 86400.0
    wanted = _wanted_state(settings, ref)
    if state == wanted:
        return 0
    return _replan_all(session, store_id, row, wanted)


def plan_params(store_id: int, settings: dict[str, Any], now: datetime, fit: ReplenishmentFit | None
                ) -> dict[str, Any]:
    """Return the bound values of ``plan_sql`` for a store's settings, the time and its fitted model."""
    return {"store_id": store_id, "min_samples": settings["min_product_samples"],
            "lead_days": settings["lead_days"], "default_var": DEFAULT_LOG_VAR,
            "now_days": (now - EPOCH).total_seconds() / 86400.0, "return_days": RETURN_DAYS,
            "fitted": 1 if fit else 0,
            "fit_r": fit.r if fit else 1.0, "fit_alpha": fit.alpha if fit else 1.0,
            "fit_a": fit.a if fit else 1.0, "fit_b": fit.b if fit else 1.0}


def reason_words(n: int, lo: float | None, hi: float | None, learned: float | None, supply: int | None,
                 quantity: int) -> str:
    """Say what a plan rests on: "3 own gaps of 28–35 days, product median 30, bought 2"."""
    parts = []
    if n:
        span = f"{lo:.0f} days" if round(lo or 0) == round(hi or 0) else f"{lo:.0f}–{hi:.0f} days"
        parts.append(f"{n} own gap{'s' if n > 1 else ''} of {span}")
    if learned is not None:
        parts.append(f"product median {learned:.0f}")
    elif not n and supply is not None:
        parts.append(f"days of supply {supply}")
    parts.append(f"bought {quantity}")
    return ", ".join(parts)


def store_fit(session: Session, store_id: int) -> ReplenishmentFit | None:
    """Return the store's fitted still-active model, if the learning has fitted one."""
    return session.get(ReplenishmentFit, store_id)


def stored_now_sql(dialect: str, where: str) -> str:
    """SELECT of the stored plans of the store's pairs that ``where`` selects, scored now; the columns of ``plan_sql``.

    From the stored plan columns (the model's centre, spread and reminder day): only the run-out and the
    probability, which depend on the time, are computed, for these pairs.
    """
    return f"""
    WITH due AS (
        SELECT g.customer_id AS c, g.product_id AS p, g.last_order_id AS order_id, g.last_purchase_day AS t,
               g.last_quantity AS q, g.variant_id, g.subscription AS sub, g.own_cycle_days AS own, g.gap_count AS n,
               COALESCE(g.first_purchase_day, g.last_purchase_day) AS t0, g.own_min_gap AS lo, g.own_max_gap AS hi,
               g.plan_learned AS learned, g.plan_supply AS supply, g.plan_lead_days AS h, g.plan_mu AS mu,
               g.plan_sd AS sd, g.plan_cycle_days AS cycle, g.remind_day
        FROM purchase_cycle g
        WHERE g.store_id = :store_id {where}
    ), {_run_out_ctes(dialect, "due", ":now_days")}, {_score_ctes(dialect, "median", ":now_days")}
    SELECT c, p, order_id, t, q, variant_id, sub, own, n, lo, hi, learned, supply, h, cycle, start_day,
           start_day + h AS target, run_out, remind_day < :now_days AS overdue, {_ALIVE} AS alive,
           {_chance(dialect)} AS chance
    FROM scored
    """  # noqa: S608


def due_plan_sql(dialect: str) -> str:
    """SELECT of the plans of the pairs whose stored day has come (``due_day`` ≤ now), not yet planned, scored now."""
    return stored_now_sql(dialect, """AND g.due_day <= :now_days
          -- Planned already (the key names the purchase): most due pairs after the first hour, not scored. Looked
          -- up by the unique key alone (message_row's format), which the index answers without reading the row.
          AND NOT EXISTS (SELECT 1 FROM message m WHERE m.idempotency_key = CAST(:key_prefix AS TEXT)
                          || g.customer_id || '\\:product=' || g.product_id || '\\:order=' || g.last_order_id
                          || '\\:step=main')""")


def due_reminders(run: FlowRun) -> Rows:
    """Return the reminder rows to plan now: reminder day within the planning horizon, probability over the floor.

    An overdue customer (the window's start has passed) is reminded now, once per purchase (the key names it),
    while the probability of a reorder in the coming window stays over ``min_probability``.
    """
    session, store, settings, now = run.session, run.store, run.settings, run.now
    refresh_cycles(session, store.id)
    ensure_plans(session, store.id, settings, now)
    dialect = session.get_bind().dialect.name
    params = plan_params(store.id, settings, now, store_fit(session, store.id))
    params.update(horizon=params["now_days"] + PLAN_AHEAD_DAYS, floor=settings["min_probability"],
                  key_prefix=f"{store.id}:{FLOW}:customer=")
    cutoff = history_cutoff(run)
    # After a reinstall, nothing about a purchase fulfilled or delivered before it (history_cutoff says why).
    since = ("" if cutoff is None else
             "AND NOT EXISTS (SELECT 1 FROM orders lo WHERE lo.id = pl.order_id "
             "AND (lo.fulfilled_at < :cutoff OR lo.delivered_at < :cutoff))")
    if cutoff is not None:
        params["cutoff"] = _bind_time(dialect, cutoff)
    sql = f"""
    WITH pl AS ({due_plan_sql(dialect)})
    SELECT pl.*, cu.email, cu.locale, v.external_id AS variant_external_id, pr.title
    FROM pl
    JOIN customer cu ON cu.id = pl.c
    JOIN product pr ON pr.id = pl.p
    LEFT JOIN variant v ON v.id = pl.variant_id
    WHERE pl.start_day <= :horizon AND pl.alive * pl.chance >= :floor
      {since}
    ORDER BY pl.c, pl.p
    """  # noqa: S608
    discount = settings["discount_percent"] if settings["discount_enabled"] else None
    rows = []
    for r in session.execute(text(sql), params).mappings():
        reason, status = None, "scheduled"
        if r["sub"]:
            reason, status = reasons.ACTIVE_SUBSCRIPTION, "cancelled"
        elif contact_reason(r["email"], store.protected_data_access):
            reason, status = reasons.NO_CONTACT_ACCESS, "skipped"
        remind_at = max(EPOCH + timedelta(days=float(r["start_day"])), now)
        source = "customer" if r["own"] is not None else "product" if r["learned"] is not None else "days_of_supply"
        probability = float(r["alive"]) * float(r["chance"])
        payload = {"product_title": r["title"], "quantity": int(r["q"]), "variant_id": r["variant_id"],
                   "variant_external_id": r["variant_external_id"],
                   # The date the email names: the centre of the reminder's window (its target).
                   "run_out_at": (EPOCH + timedelta(days=float(r["target"]))).isoformat(),
                   "predicted_run_out_at": (EPOCH + timedelta(days=float(r["run_out"]))).isoformat(),
                   "cycle_days": round(float(r["cycle"]), 3), "cycle_source": source,
                   "probability": round(probability, 4), "catch_up": bool(r["overdue"]),
                   "reason": reason_words(int(r["n"]), r["lo"], r["hi"], r["learned"], r["supply"], int(r["q"])),
                   "subscribe_offer": settings["subscribe_offer_enabled"]}
        row = message_row(
            store_id=store.id, flow=FLOW, step="main",
            key_parts=(f"customer={r['c']}", f"product={r['p']}", f"order={r['order_id']}"),
            scheduled_for=remind_at, customer_id=r["c"], order_id=r["order_id"], product_id=r["p"],
            marketing=True, locale=r["locale"], to_address=r["email"] if store.protected_data_access else None,
            payload=payload, status=status, skip_reason=reason)
        if discount is not None and status == "scheduled":
            # Created (connectors.shopify.discounts.create_discount_code) when the reminder is sent, so a
            # cancelled reminder leaves no live code behind; the name derives from the key (TAKEN = ours).
            payload.update(discount_percent=discount, discount_code=discount_code_name(row["idempotency_key"]))
        rows.append(row)
    return rows
