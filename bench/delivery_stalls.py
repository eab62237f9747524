"""How long stall detection takes for one store of 1,000,000 orders, beside a raw scan of the same rows.

Usage:
    .venv/bin/python bench/delivery_stalls.py sqlite   [--path /tmp/aftercare-bench-stalls.sqlite] [--orders N]
    .venv/bin/python bench/delivery_stalls.py postgres [--url postgresql+psycopg://postgres@127.0.0.1:5432/aftercare_bench_stalls]

Data (bulk SQL: a recursive CTE on SQLite, generate_series on PostgreSQL): a US store (New York time, US
holidays), 200,000 customers in five countries, orders over the last 365 days, all paid, 1% cancelled; one in 33
never fulfilled, the others shipped a day after the order with one parcel (UPS, DHL or FedEx, 2-8 days transit,
half with a carrier estimate). 0.5% of the parcels are never delivered (the carrier goes silent a day after
shipping), 0.1% end in FAILURE and 0.1% in ATTEMPTED_DELIVERY. Everything older than the look-back
(plugin.delivery_stalls.MAX_AGE_DAYS) has long been delivered or ticketed, as on a live store.

Timed: the daily recomputation of transit estimates, the first detection (it opens every ticket and writes
every notice, and stores every row's next check; rolled back, so it is repeatable), then the detection as it runs
every hour in steady state (the first run committed: nothing new; then 1 and 12 hours later, when stored next
checks come due), the full recompute a threshold change causes, and the raw scans: a count over every order and
every parcel column the detection reads, in the same run.
Limit: detection under 5 s.
"""

# The data-generation SQL is assembled from integer constants of this script, never from input.
# ruff: noqa: S608, S108

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pg_database import open_database
from sqlalchemy import text

from plugin import delivery_estimates
from plugin.config import load_config
from plugin.db import Database
from plugin.flows import delivery_stalls
from plugin.models import Base

NOW = datetime(2026, 9, 16, 16, 0, tzinfo=UTC)  # Wednesday noon in New York, the week after Labor Day
CUSTOMERS = 200_000
LIMIT_SECONDS = 5.0


def _ts(pg: bool, days_ago: str) -> str:
    """Return SQL for the instant ``days_ago`` (a SQL expression of fractional days) before NOW, as stored."""
    if pg:
        return f"(timestamptz '{NOW.isoformat()}' - ({days_ago}) * interval '1 day')"
    julian = (NOW - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() / 86400 + 2440587.5
    # SQLAlchemy stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' (naive UTC); generate the same text.
    return f"strftime('%Y-%m-%d %H:%M:%f000', {julian} - ({days_ago}))"


def generate(db: Database, orders: int) -> None:
    """Fill an empty schema with the store, customers, orders and parcels described above."""
    pg = db.dialect == "postgresql"
    false, true = ("false", "true") if pg else ("0", "1")
    least = "least" if pg else "min"
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO merchant (id, name, settings, alert_email) "
                          "VALUES (1, 'Bench', '{}', 'alerts@bench.test')"))
        conn.execute(text("INSERT INTO store (id, merchant_id, platform, external_id, name, currency, timezone, "
                          "primary_locale, country, status, scopes, protected_data_access, marketplace_ids) VALUES "
                          "(1, 1, 'shopify', 'bench.myshopify.com', 'Bench', 'USD', 'America/New_York', 'en', 'US', "
                          "'active', '', :t, '[]'), (2, 1, 'shopify', 'empty.myshopify.com', 'Empty', 'USD', "
                          "'America/New_York', 'en', 'US', 'active', '', :t, '[]')"), {"t": True})
    started = time.perf_counter()
    if pg:
        def seq(n: int) -> str:
            return f"(SELECT g FROM generate_series(1::bigint, {n}) g) seq"
    else:
        def seq(n: int) -> str:
            return (f"(WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {n}) "
                    "SELECT g FROM s) seq")
    # a: days since the order; s: days since shipping (a - 1); t: transit days.
    rows = (f"(SELECT g, (g * 104729 % 31536000) / 86400.0 AS a, 2 + g % 7 + (g % 5) / 10.0 AS t "
            f"FROM {seq(orders)}) r")
    with db.engine.begin() as conn:
        conn.execute(text(f"""
            INSERT INTO customer (id, store_id, external_id, email, locale, country, marketing_consent, tags,
                                  created_at, updated_at)
            SELECT g, 1, 'c' || g, 'c' || g || '@bench.test', 'en',
                   CASE g % 5 WHEN 0 THEN 'US' WHEN 1 THEN 'DE' WHEN 2 THEN 'FR' WHEN 3 THEN 'GB' ELSE 'CA' END,
                   {false}, '[]', '2026-01-01', '2026-01-01'
            FROM {seq(CUSTOMERS)}"""))
        shipped = "(g % 33 <> 0 AND a > 1)"
        delivered = f"({shipped} AND a - 1 - t > 0 AND g % 200 <> 7 AND g % 1000 NOT IN (13, 17))"
        conn.execute(text(f"""
            INSERT INTO orders (id, store_id, external_id, name, customer_id, created_at_remote, currency, total_price,
                                total_refunded, refunded, returned, financial_status, fulfilled_at, delivered_at,
                                cancelled_at, tags, created_at, updated_at)
            SELECT g, 1, 'o' || g, '#' || g, 1 + (g * 7919) % {CUSTOMERS}, {_ts(pg, 'a')}, 'USD', 10, 0, {false},
                   {false}, 'PAID', CASE WHEN {shipped} THEN {_ts(pg, 'a - 1')} END,
                   CASE WHEN {delivered} THEN {_ts(pg, 'a - 1 - t')} END,
                   CASE WHEN g % 100 = 50 THEN {_ts(pg, 'a - 0.1')} END, '[]', '2026-01-01', '2026-01-01'
            FROM {rows}"""))
        conn.execute(text(f"""
            INSERT INTO parcel (id, store_id, order_id, fulfillment_gid, fulfillment_status, status, tracking_company,
                                tracking_number, estimated_delivery_at, shipped_at, last_event_at, delivered_at,
                                created_at, updated_at)
            SELECT g, 1, g, 'gid://shopify/Fulfillment/' || g, 'SUCCESS',
                   CASE WHEN {delivered} THEN 'DELIVERED' WHEN g % 1000 = 13 THEN 'FAILURE'
                        WHEN g % 1000 = 17 THEN 'ATTEMPTED_DELIVERY' ELSE 'IN_TRANSIT' END,
                   CASE g % 3 WHEN 0 THEN 'UPS' WHEN 1 THEN 'DHL' ELSE 'FedEx' END, 'T' || g,
                   CASE WHEN g % 2 = 0 THEN {_ts(pg, 'a - 1 - t - 1')} END, {_ts(pg, 'a - 1')},
                   CASE WHEN {delivered} THEN {_ts(pg, 'a - 1 - t')} ELSE {_ts(pg, f'a - 1 - {least}(a - 1, 1.0)')} END,
                   CASE WHEN {delivered} THEN {_ts(pg, 'a - 1 - t')} END, '2026-01-01', '2026-01-01'
            FROM {rows} WHERE {shipped}"""))
        del true
    print(f"  generated {orders:,} orders and their parcels in {time.perf_counter() - started:.1f} s", flush=True)
    with db.engine.begin() as conn:
        conn.execute(text("ANALYZE"))


def timed(label: str, fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - started
    print(f"  {label:<58} {elapsed:7.2f} s   {result}", flush=True)
    return elapsed, result


def run(db: Database) -> None:
    """Time the raw scans, the first detection (rolled back) and the steady-state detection."""
    config = load_config({"database_url": db.url, "secrets": {"secret_key": "bench-secret-key-0123456789",
                                                               "encryption_key": _fernet()}}, environ={})

    def raw_orders() -> Any:
        with db.engine.connect() as conn:
            return conn.execute(text(
                "SELECT count(*), count(fulfilled_at), count(cancelled_at), max(created_at_remote), "
                "count(financial_status) FROM orders WHERE store_id = 1")).one()

    def raw_parcels() -> Any:
        with db.engine.connect() as conn:
            return conn.execute(text(
                "SELECT count(*), count(delivered_at), max(last_event_at), max(shipped_at), "
                "count(estimated_delivery_at), count(status), count(tracking_company) FROM parcel "
                "WHERE store_id = 1")).one()

    def detect(commit: bool, at: datetime = NOW, full: bool = False) -> Callable[[], Any]:
        def call() -> Any:
            with db.sessionmaker() as session:
                if full:  # what a threshold or calendar change does: the stored next checks no longer hold
                    session.execute(text("DELETE FROM delivery_stall_state"))
                counts = delivery_stalls.run_for_store(session, config, 1, at)
                if commit:
                    session.commit()
                else:
                    session.rollback()
                return counts
        return call

    def refresh() -> Any:
        with db.sessionmaker() as session:
            groups = delivery_estimates.refresh(session, 1, NOW, 180)
            session.commit()
            return {"groups": groups}

    t_orders, _ = timed("raw scan: every order of the store", raw_orders)
    t_parcels, _ = timed("raw scan: every parcel of the store", raw_parcels)
    # The process's first statements build SQLAlchemy's compiled-statement cache; a long-running scheduler has it.
    timed("warm-up: detection for an empty store", lambda: _warm_up(db, config))
    with db.engine.connect() as conn:
        recorded = conn.execute(text("SELECT count(*) FROM delivery_problem")).scalar_one()
    first = 0.0
    if recorded:
        print(f"  {recorded:,} problems recorded by an earlier run (--reuse): steady state only", flush=True)
    else:
        timed("daily: transit estimates by country and carrier (committed)", refresh)
        first, _ = timed("detection, first run (every ticket and notice; rolled back)", detect(False))
        timed("detection, first run again (committed)", detect(True))
    timed("detection, steady state (re-run, nothing new; rolled back)", detect(False))
    steady, _ = timed("detection, steady state again", detect(False))
    hourly = [timed(f"detection, {h} h later (deadlines come due; rolled back)",
                    detect(False, NOW + timedelta(hours=h)))[0] for h in (1, 12)]
    full, _ = timed("full recompute: thresholds changed (rolled back)", detect(False, full=True))
    timed("check: 12 h later incremental, then full, in one transaction",
          lambda: _check(db, config, NOW + timedelta(hours=12)))
    worst = max(first, steady, *hourly, full)
    print(f"  raw scans {t_orders + t_parcels:.2f} s; detection first {first:.2f} s, steady {steady:.2f} s, "
          f"hourly {max(hourly):.2f} s, full recompute {full:.2f} s; limit {LIMIT_SECONDS:.1f} s: "
          f"{'within' if worst < LIMIT_SECONDS else 'OVER'}; load {os.getloadavg()[0]:.1f}", flush=True)


def _check(db: Database, config: Any, at: datetime) -> Any:
    """Run the incremental detection, then the full recompute on its result: the full one must find nothing more."""
    with db.sessionmaker() as session:
        try:
            incremental = delivery_stalls.run_for_store(session, config, 1, at)
            session.execute(text("DELETE FROM delivery_stall_state"))
            full = delivery_stalls.run_for_store(session, config, 1, at)
            if full["stalls"] or full.get("resolved"):
                raise SystemExit(f"the full recompute found more than the incremental run: {full}")
            return {"incremental": incremental["stalls"], "full found after it": full["stalls"]}
        finally:
            session.rollback()


def _warm_up(db: Database, config: Any) -> Any:
    with db.sessionmaker() as session:
        try:
            return delivery_stalls.run_for_store(session, config, 2, NOW)
        finally:
            session.rollback()


def _fernet() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def main() -> None:
    """Build (or reuse) the database, then print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dialect", choices=("sqlite", "postgres"))
    parser.add_argument("--path", default="/tmp/aftercare-bench-stalls.sqlite")
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/aftercare_bench_stalls")
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true", help="keep the generated data of an earlier run")
    args = parser.parse_args()
    url, db = open_database(args.dialect, args.path, args.url, args.reuse)
    from plugin.migrate import upgrade

    if args.reuse:
        upgrade(url)  # data generated by an earlier revision gets this one's columns (all NULL: every row checked)
    else:
        Base.metadata.drop_all(db.engine)
        with db.engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        upgrade(url)
        generate(db, args.orders)
    print(f"{args.dialect}: {args.orders:,} orders, now {NOW.isoformat()}", flush=True)
    run(db)
    db.dispose()


if __name__ == "__main__":
    main()
