"""Replenishment reminders: remind a customer ``lead_days`` before a consumable runs out.

Expected run-out = last purchase + cycle × quantity bought, where the cycle (days per unit) is the
customer's own median gap between purchases of the product when there is one, else the product's
learned median across customers (with at least ``min_product_samples`` gaps), else the merchant's
``days_of_supply``; no cycle, no reminder. Gaps shorter than a day are not re-buys (split orders).

A reminder is planned (a ``scheduled`` row with ``scheduled_for`` = reminder time) once it falls
within ``PLAN_AHEAD_DAYS``; the dispatcher sends it when due, through the send policy (marketing:
consent required). Each run first cancels planned reminders whose customer re-ordered the product
("already reordered"). Active subscription (decision): the customer's latest purchase of the product
came in an order tagged like "subscription" — Shopify Subscriptions, ReCharge and most selling-plan
apps tag recurring orders so ("Subscription", "Subscription Recurring Order") — then the reminder row
is written ``cancelled`` with reason "active subscription" instead.

Everything is computed in SQL over the store's purchases (window functions); the median is
``percentile_cont`` on PostgreSQL and a ROW_NUMBER/COUNT middle pick on SQLite (same result).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from jobs.context import JobContext
from jobs.outbox_batch import message_row, open_flow, write_messages
from jobs.review_requests import NO_CONTACT
from plugin.models import Store

FLOW = "replenishment"
PLAN_AHEAD_DAYS = 7
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_GAP_DAYS = 1.0


def _days(dialect: str, column: str) -> str:
    """SQL for a timestamp column as fractional days since 1970-01-01 (UTC)."""
    if dialect == "postgresql":
        return f"(EXTRACT(EPOCH FROM {column}) / 86400.0)"
    return f"(julianday({column}) - 2440587.5)"


def _purchases_sql(dialect: str) -> str:
    """CTEs ``p`` (one row per customer × consumable product × order) and ``g`` (with next purchase)."""
    false = "FALSE" if dialect == "postgresql" else "0"
    tags = "CAST(o.tags AS TEXT)" if dialect == "postgresql" else "o.tags"
    # Only constant, dialect-chosen fragments are interpolated; every value is a bound parameter.
    return f"""
    p AS (
        SELECT o.customer_id AS c, ol.product_id AS p, o.id AS order_id, {_days(dialect, 'o.created_at_remote')} AS t,
               SUM(ol.quantity) AS q, MAX(ol.variant_id) AS variant_id,
               MAX(CASE WHEN LOWER({tags}) LIKE '%subscription%' THEN 1 ELSE 0 END) AS sub
        FROM product pr
        JOIN order_line ol ON ol.store_id = pr.store_id AND ol.product_id = pr.id
        JOIN orders o ON o.id = ol.order_id
        -- Unary + keeps SQLite from driving the join through the orders indexes: walking the consumable
        -- products' lines (ix_order_line_store_product) and fetching orders by key is several times faster.
        WHERE pr.store_id = :store_id AND pr.consumable AND +o.store_id = :store_id AND +o.customer_id IS NOT NULL
          AND o.cancelled_at IS NULL AND o.refunded = {false} AND o.returned = {false} AND ol.quantity > 0
        GROUP BY o.customer_id, ol.product_id, o.id, o.created_at_remote
    ),
    g AS (
        SELECT c, p, order_id, t, q, variant_id, sub,
               LEAD(t) OVER (PARTITION BY c, p ORDER BY t, order_id) AS next_t,
               ROW_NUMBER() OVER (PARTITION BY c, p ORDER BY t DESC, order_id DESC) AS recency
        FROM p
    ),
    gd AS (
        SELECT c, p, order_id, t, q, variant_id, sub, recency,
               CASE WHEN next_t IS NOT NULL AND next_t - t >= {MIN_GAP_DAYS} THEN (next_t - t) / q END AS gap
        FROM g
    ),
    gaps AS (
        SELECT c, p, gap FROM gd WHERE gap IS NOT NULL
    )"""  # noqa: S608


def _pairs_sql(dialect: str) -> str:
    """CTE ``pairs``: per customer × product, the latest purchase and the customer's own median gap.

    One GROUP BY over the purchases (no join of a median table: SQLite would scan it per row).
    """
    last = ", ".join(f"MAX(CASE WHEN recency = 1 THEN {col} END) AS {col}"
                     for col in ("order_id", "t", "q", "variant_id", "sub"))
    if dialect == "postgresql":
        return f"""pairs AS (
            SELECT c, p, {last}, percentile_cont(0.5) WITHIN GROUP (ORDER BY gap) AS own
            FROM gd GROUP BY c, p)"""  # noqa: S608
    # SQLite: number the gaps of each pair (gaps first, NULLs last) and average the one or two middle ones.
    return f"""ranked_gd AS (
            SELECT gd.*, ROW_NUMBER() OVER (PARTITION BY c, p ORDER BY gap IS NULL, gap) AS grn,
                   COUNT(gap) OVER (PARTITION BY c, p) AS gn
            FROM gd),
        pairs AS (
            SELECT c, p, {last},
                   AVG(CASE WHEN gap IS NOT NULL AND grn IN ((gn + 1) / 2, (gn + 2) / 2) THEN gap END) AS own
            FROM ranked_gd GROUP BY c, p)"""  # noqa: S608


def _median_sql(dialect: str, keys: str) -> str:
    """SELECT of ``keys``, the median gap and the sample count from ``gaps`` grouped by ``keys``."""
    if dialect == "postgresql":
        return (f"SELECT {keys}, percentile_cont(0.5) WITHIN GROUP (ORDER BY gap) AS median, COUNT(*) AS n "  # noqa: S608
                f"FROM gaps GROUP BY {keys}")
    # SQLite has no median: number the gaps in each group and average the one or two middle ones.
    return f"""SELECT {keys}, AVG(gap) AS median, MAX(n) AS n FROM (
                 SELECT {keys}, gap, ROW_NUMBER() OVER (PARTITION BY {keys} ORDER BY gap) AS rn,
                        COUNT(*) OVER (PARTITION BY {keys}) AS n
                 FROM gaps) ranked
               WHERE rn IN ((n + 1) / 2, (n + 2) / 2) GROUP BY {keys}"""  # noqa: S608


def _roomy_sorts(session: Session, dialect: str) -> None:
    # The window functions sort every purchase of the store; PostgreSQL's default 4 MB work_mem spills
    # those sorts to disk (3 M orders: ~170 MB on disk, half the run time). Only for this transaction.
    if dialect == "postgresql":
        session.execute(text("SET LOCAL work_mem = '256MB'"))


def product_medians(session: Session, store_id: int) -> dict[int, tuple[float, int]]:
    """Return {product id: (median days per unit between re-buys, number of gaps)} across customers."""
    dialect = session.get_bind().dialect.name
    _roomy_sorts(session, dialect)
    sql = f"WITH {_purchases_sql(dialect)} {_median_sql(dialect, 'p')}"
    return {int(p): (float(m), int(n)) for p, m, n in session.execute(text(sql), {"store_id": store_id})}


def learn_product_cycles(session: Session, store_id: int) -> int:
    """Store each consumable product's learned median cycle and sample count; return products updated."""
    medians = product_medians(session, store_id)
    session.execute(text("UPDATE product SET learned_cycle_days = NULL, learned_cycle_samples = 0 "
                         "WHERE store_id = :store_id AND learned_cycle_samples <> 0"), {"store_id": store_id})
    if medians:
        session.execute(text("UPDATE product SET learned_cycle_days = :days, learned_cycle_samples = :n "
                             "WHERE id = :id"),
                        [{"id": pid, "days": days, "n": n} for pid, (days, n) in medians.items()])
    return len(medians)


def learn(ctx: JobContext, store_id: int) -> dict[str, Any]:
    """Job: recompute the learned replenishment cycle of every consumable product of a store."""
    with ctx.database.session() as session:
        return {"products": learn_product_cycles(session, store_id)}


def cancel_reordered(session: Session, store_id: int, now: datetime) -> int:
    """Cancel planned reminders whose customer bought the product again after the purchase they are based on."""
    dialect = session.get_bind().dialect.name
    false = "FALSE" if dialect == "postgresql" else "0"
    result = session.execute(text(f"""
        UPDATE message SET status = 'cancelled', skip_reason = 'already reordered', updated_at = :now
        WHERE store_id = :store_id AND flow = '{FLOW}' AND status = 'scheduled'
          AND EXISTS (
            SELECT 1 FROM orders o2 JOIN order_line l2 ON l2.order_id = o2.id
            WHERE o2.store_id = message.store_id AND o2.customer_id = message.customer_id
              AND l2.product_id = message.product_id AND o2.id <> message.order_id
              AND o2.cancelled_at IS NULL AND o2.refunded = {false} AND o2.returned = {false}
              AND o2.created_at_remote > (SELECT o3.created_at_remote FROM orders o3 WHERE o3.id = message.order_id))
        """),  # noqa: S608
        {"store_id": store_id, "now": _bind_time(dialect, now)})
    return result.rowcount or 0


def discount_code_name(idempotency_key: str) -> str:
    """Return the single-use code for a reminder, derived from its key so a retried create is recognisable."""
    return "REFILL-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:10].upper()


def _bind_time(dialect: str, when: datetime) -> Any:
    # Raw text() binds skip the UTCDateTime type; SQLite columns hold naive UTC strings.
    return when.astimezone(UTC).replace(tzinfo=None) if dialect == "sqlite" else when


def due_reminders(session: Session, store: Store, settings: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    """Return the reminder rows to plan now: run-out still ahead, reminder time within the planning horizon."""
    dialect = session.get_bind().dialect.name
    _roomy_sorts(session, dialect)
    now_days = (now - EPOCH).total_seconds() / 86400.0
    sql = f"""
    WITH {_purchases_sql(dialect)},
    {_pairs_sql(dialect)},
    choice AS (
        SELECT g.c, g.p, g.order_id, g.t, g.q, g.variant_id, g.sub, g.own AS own_cycle,
               CASE WHEN g.own IS NOT NULL THEN g.own
                    WHEN pr.learned_cycle_samples >= :min_samples THEN pr.learned_cycle_days
                    ELSE pr.days_of_supply END AS cycle,
               CASE WHEN g.own IS NOT NULL THEN 'customer'
                    WHEN pr.learned_cycle_samples >= :min_samples THEN 'product'
                    ELSE 'days_of_supply' END AS cycle_source,
               COALESCE(pr.reminder_lead_days, :lead_days) AS lead
        FROM pairs g
        JOIN product pr ON pr.id = g.p
    )
    SELECT ch.c, ch.p, ch.order_id, ch.q, ch.variant_id, ch.sub, ch.cycle, ch.cycle_source,
           ch.t + ch.cycle * ch.q AS run_out, ch.t + ch.cycle * ch.q - ch.lead AS remind,
           cu.email, cu.locale, v.external_id AS variant_external_id, pr.title
    FROM choice ch
    JOIN customer cu ON cu.id = ch.c
    JOIN product pr ON pr.id = ch.p
    LEFT JOIN variant v ON v.id = ch.variant_id
    WHERE ch.cycle IS NOT NULL
      AND ch.t + ch.cycle * ch.q > :now_days
      AND ch.t + ch.cycle * ch.q - ch.lead <= :horizon
      AND NOT EXISTS (SELECT 1 FROM message m WHERE m.order_id = ch.order_id AND m.flow = '{FLOW}'
                      AND m.product_id = ch.p AND m.customer_id = ch.c)
    ORDER BY ch.c, ch.p
    """  # noqa: S608
    params = {"store_id": store.id, "min_samples": int(settings.get("min_product_samples", 5)),
              "lead_days": float(settings.get("lead_days", 7)), "now_days": now_days,
              "horizon": now_days + PLAN_AHEAD_DAYS}
    discount = settings.get("discount_percent") if settings.get("discount_enabled") else None
    rows = []
    for (customer_id, product_id, order_id, qty, variant_id, sub, cycle, source, run_out, remind, email, locale,
         variant_external_id, title) in session.execute(text(sql), params):
        reason, status = None, "scheduled"
        if sub:
            reason, status = "active subscription", "cancelled"
        elif not email or not store.protected_data_access:
            reason, status = NO_CONTACT, "skipped"
        run_out_at = EPOCH + timedelta(days=float(run_out))
        remind_at = max(EPOCH + timedelta(days=float(remind)), now)
        payload = {"product_title": title, "quantity": int(qty), "variant_id": variant_id,
                   "variant_external_id": variant_external_id, "run_out_at": run_out_at.isoformat(),
                   "cycle_days": round(float(cycle), 3), "cycle_source": source,
                   "subscribe_offer": bool(settings.get("subscribe_offer_enabled", True))}
        row = message_row(
            store_id=store.id, flow=FLOW, step="main",
            key_parts=(f"customer={customer_id}", f"product={product_id}", f"order={order_id}"),
            scheduled_for=remind_at, customer_id=customer_id, order_id=order_id, product_id=product_id,
            marketing=True, locale=locale, to_address=email if store.protected_data_access else None,
            payload=payload, status=status, skip_reason=reason)
        if discount is not None and status == "scheduled":
            # Created (connectors.shopify.discounts.create_discount_code) when the reminder is sent, so a
            # cancelled reminder leaves no live code behind; the name derives from the key (TAKEN = ours).
            payload.update(discount_percent=discount, discount_code=discount_code_name(row["idempotency_key"]))
        rows.append(row)
    return rows


def run(ctx: JobContext, store_id: int) -> dict[str, Any]:
    """Job: cancel reminders made moot by a re-order, then plan the reminders now within the horizon."""
    now = ctx.clock.now()
    with ctx.database.session() as session:
        gate = open_flow(session, ctx, store_id, FLOW)
        if isinstance(gate, dict):
            return gate
        store, settings = gate
        cancelled = cancel_reordered(session, store_id, now)
        rows = due_reminders(session, store, settings, now)
        planned = write_messages(session, rows, now)
        return {"cancelled": cancelled, "planned": len(planned),
                "not_sent": sum(1 for r in rows if r["status"] != "scheduled")}
