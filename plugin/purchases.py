"""What a purchase is: a customer's orders placed within 24 hours of the purchase's first order, taken together.

A shopper who splits a basket (a forgotten item, a second card, a checkout that splits by fulfilment) places two
orders for one purchase. Every figure that asks "did they buy again, and when?" counts purchases, by this rule:
the replenishment planner (quantities of one purchase add up; gaps run between purchases), the repurchase rate
(coming back is a purchase after the first one), the customer's predicted next order (the mean gap between
purchases) and CLV (value per purchase × purchases in 12 months). Order counts, revenue and the cohort grid by month
still count orders.

The grouping is anchored on the purchase's first order, not chained: orders at 0 h, 20 h, 30 h and 45 h are two
purchases (0 h + 20 h, then 30 h + 45 h), because 30 h is more than a day after the first purchase began. So the
first purchase of a customer is always their first order and every order up to a day later, and any order a day
or more after it starts a new purchase (``is_new_purchase``).

``stage`` labels a set of orders with the start of their purchase in a temporary table, in SQL on either database:
a window pass starts a purchase at every order a day or more after the previous one, which settles everything
except runs of orders each less than a day apart spanning more than a day; those take one more pass per purchase
inside the run (rare: a run of daily orders), each pass a set-based UPDATE, so no order is read into Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

WINDOW_DAYS = 1.0


def days_sql(dialect: str, column: str) -> str:
    """SQL for a timestamp column as fractional days since 1970-01-01 (UTC)."""
    if dialect == "postgresql":
        return f"(EXTRACT(EPOCH FROM {column}) / 86400.0)"
    return f"(julianday({column}) - 2440587.5)"


def customer_orders_sql(dialect: str) -> str:
    """SELECT of a store's (``:store_id``) orders that count (not cancelled) as ``c``, ``order_id``, ``t``."""
    t = days_sql(dialect, "created_at_remote")
    return (f"SELECT customer_id AS c, id AS order_id, {t} AS t FROM orders "  # noqa: S608
            "WHERE store_id = :store_id AND customer_id IS NOT NULL AND cancelled_at IS NULL")


def is_new_purchase(days_after_first_order: Any) -> Any:
    """Return the condition that an order this many days after a purchase's first order begins another purchase."""
    return days_after_first_order >= WINDOW_DAYS


def stage(session: Session, name: str, source_sql: str, params: dict[str, Any], keys: Sequence[str],
          expanding: Sequence[str] = ()) -> int:
    """Create temp table ``name``: the rows of ``source_sql`` and ``start_t``, the day their purchase began.

    Return how many extra passes runs of close orders took (0 when the window pass settled every order).

    ``source_sql`` selects one row per order with the columns named in ``keys`` (whose orders are grouped:
    a customer, or a customer and a product), ``order_id`` and ``t`` (the order's time in fractional days);
    its other columns are kept. Orders of equal ``t`` are taken in ``order_id`` order. ``expanding`` names the
    parameters that are lists (``IN :name``).
    """
    dialect = session.get_bind().dialect.name
    part = ", ".join(keys)
    session.execute(text(f"DROP TABLE IF EXISTS {name}"))
    # Only identifiers chosen by the callers' code are interpolated; every value is a bound parameter.
    create = text(f"""
        CREATE TEMP TABLE {name} AS
        SELECT src.*, ROW_NUMBER() OVER (ORDER BY {part}, t, order_id) AS rid,
               CASE WHEN prev_t IS NULL OR t - prev_t >= {WINDOW_DAYS} THEN t END AS start_t
        FROM (SELECT s.*, LAG(s.t) OVER (PARTITION BY {part} ORDER BY s.t, s.order_id) AS prev_t
              FROM ({source_sql}) s) src""")  # noqa: S608
    for param in expanding:
        create = create.bindparams(bindparam(param, expanding=True))
    session.execute(create, params)
    session.execute(text(f"CREATE INDEX {name}_ix ON {name} ({part}, t, order_id)"))
    if dialect == "postgresql":
        session.execute(text(f"ANALYZE {name}"))
    same = " AND ".join(f"s.{key} = {name}.{key}" for key in keys)
    latest_start = f"(SELECT MAX(s.start_t) FROM {name} s WHERE {same} AND s.t <= {name}.t)"  # noqa: S608
    left = text(f"SELECT 1 FROM {name} WHERE start_t IS NULL LIMIT 1")  # noqa: S608
    passes = 0
    while session.execute(left).first():
        # An order less than a day after the latest purchase begun before it belongs to that purchase (rows this
        # statement assigns can only carry that purchase or an earlier one, so the order it goes in is harmless).
        within = f"t - {latest_start} < {WINDOW_DAYS}"
        session.execute(text(f"UPDATE {name} SET start_t = {latest_start} WHERE start_t IS NULL AND {within}"))  # noqa: S608
        if not session.execute(left).first():
            break
        # The earliest order still without one is a day or more after that purchase began: it begins the next.
        # The ids are picked by an uncorrelated subquery, evaluated before the first row changes.
        passes += 1
        session.execute(text(f"""
            UPDATE {name} SET start_t = t WHERE rid IN (
                SELECT rid FROM (SELECT rid, ROW_NUMBER() OVER (PARTITION BY {part} ORDER BY t, order_id) AS rn
                                 FROM {name} WHERE start_t IS NULL) first_left WHERE rn = 1)"""))  # noqa: S608
    return passes
