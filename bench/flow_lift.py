"""How long the flow lift report takes on 1,000,000 customers and 3,000,000 orders, beside raw scans.

Usage:
    .venv/bin/python bench/flow_lift.py sqlite   [--path /tmp/aftercare-bench-lift.sqlite] [--customers N]
    .venv/bin/python bench/flow_lift.py postgres [--url postgresql+psycopg://postgres@127.0.0.1:5432/aftercare_bench_lift]

Data is generated with bulk SQL (a recursive CTE on SQLite, generate_series on PostgreSQL), as bench/flows.py
does: three orders per customer on average over three years (2 % cancelled, 5 % partly refunded); every
customer got one replenishment email in the last 120 days, one in ten of them held out (a ``skipped`` /
``holdout`` row), a quarter of the others a reminder three days later; one in five exposed customers
ordered two days after the email; half the customers also have a sent review request (another flow). The
report's statements run against that (read only) and are printed beside a raw count of the same message
rows and a raw sum over every order.

Then the stored path the admin page takes: the job's recount (``save_store_figures``: the overview counts and
the lift sums of every period, as the hourly ``overview_figures`` job runs it; the lift sums alone are timed
too), and the page request ``GET /admin/flows/lift`` for each period through the Flask app in-process with a
real session token, reading the stored sums (first request, p50 and p95 of ``--requests`` more).
"""

# The data-generation SQL is assembled from integer constants of this script, never from input.
# ruff: noqa: S608, S108

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet
from pg_database import open_database
from sqlalchemy import text

from base.clock import FrozenClock
from plugin import create_app
from plugin.config import DEFAULTS
from plugin.crypto import Vault
from plugin.db import Database
from plugin.flow_lift import PERIODS, flow_lift, lift_by_flow
from plugin.models import Base, StoreMetrics
from plugin.store_figures import count_lift, save_store_figures
from sandbox.shopify import mint_session_token

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SHOP = "bench.myshopify.com"
API_KEY, API_SECRET = "bench-client-id", "bench-client-secret-0123456789abcdef"
START, END = NOW - timedelta(days=120), NOW - timedelta(days=7)


def _sqlite_ts(julian: str) -> str:
    # SQLAlchemy stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' (naive UTC); generate the same text.
    return f"strftime('%Y-%m-%d %H:%M:%f000', {julian})"


def generate(db: Database, customers: int) -> None:
    """Fill an empty schema with one store's customers, orders and the outbox of two flows."""
    pg = db.dialect == "postgresql"
    orders = customers * 3
    now_jd = (NOW - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() / 86400 + 2440587.5
    if pg:
        def seq(n: int) -> str:
            return f"generate_series(1::bigint, {n}) AS q(g)"

        def ts_ago(seconds: str) -> str:
            return f"timestamptz '{NOW.isoformat()}' - ({seconds}) * interval '1 second'"

        def plus_days(col: str, days: float) -> str:
            return f"{col} + {days} * interval '1 day'"
        false = "false"
    else:
        def seq(n: int) -> str:
            return (f"(WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {n}) "
                    "SELECT g FROM s) AS q")

        def ts_ago(seconds: str) -> str:
            return _sqlite_ts(f"{now_jd} - ({seconds}) / 86400.0")

        def plus_days(col: str, days: float) -> str:
            return _sqlite_ts(f"julianday({col}) + {days}")
        false = "0"
    exposure = ts_ago("10 * 86400 + (g * 7919) % (110 * 86400)")
    started = time.perf_counter()
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO merchant (id, name, settings) VALUES (1, 'Bench', '{}')"))
        conn.execute(text("INSERT INTO store (id, merchant_id, platform, external_id, name, currency, timezone, "
                          "primary_locale, status, scopes, protected_data_access, marketplace_ids) VALUES "
                          "(1, 1, 'shopify', 'bench.myshopify.com', 'Bench', 'USD', 'UTC', 'en', 'active', '', "
                          ":t, '[]')"), {"t": True})
        conn.execute(text(f"""
            INSERT INTO customer (id, store_id, external_id, email, locale, marketing_consent, tags, created_at,
                                  updated_at)
            SELECT g, 1, 'c' || g, 'c' || g || '@bench.test', 'en', {false}, '[]', '2026-01-01', '2026-01-01'
            FROM {seq(customers)}"""))
        conn.execute(text(f"""
            INSERT INTO orders (id, store_id, external_id, customer_id, created_at_remote, currency, total_price,
                                total_refunded, refunded, returned, cancelled_at, tags, created_at, updated_at)
            SELECT g, 1, 'o' || g, 1 + (g * 7919) % {customers}, ts, 'USD', 10 + g % 90,
                   CASE WHEN g % 20 = 0 THEN 5 ELSE 0 END, {false}, {false},
                   CASE WHEN g % 50 = 0 THEN ts END, '[]', '2026-01-01', '2026-01-01'
            FROM (SELECT g, {ts_ago('(g * 104729) % (1095 * 86400)')} AS ts FROM {seq(orders)}) s"""))
        print(f"  generated customers and orders in {time.perf_counter() - started:.1f} s", flush=True)
        started = time.perf_counter()
        conn.execute(text(f"""
            INSERT INTO message (store_id, customer_id, flow, step, channel, marketing, idempotency_key,
                                 scheduled_for, status, skip_reason, attempts, payload, sent_at, created_at,
                                 updated_at)
            SELECT 1, g, 'replenishment', 'main', 'email', {false}, '1:replenishment:customer=' || g, ts,
                   CASE WHEN g % 10 = 0 THEN 'skipped' ELSE 'sent' END,
                   CASE WHEN g % 10 = 0 THEN 'holdout' END, 1, '{{}}',
                   CASE WHEN g % 10 <> 0 THEN ts END, '2026-01-01', '2026-01-01'
            FROM (SELECT g, {exposure} AS ts FROM {seq(customers)}) s"""))
        conn.execute(text(f"""
            INSERT INTO message (store_id, customer_id, flow, step, channel, marketing, idempotency_key,
                                 scheduled_for, status, attempts, payload, sent_at, created_at, updated_at)
            SELECT 1, g, 'replenishment', 'reminder', 'email', {false}, '1:replenishment:reminder=' || g,
                   {plus_days('ts', 3)}, 'sent', 1, '{{}}', {plus_days('ts', 3)}, '2026-01-01', '2026-01-01'
            FROM (SELECT g, {exposure} AS ts FROM {seq(customers)}) s WHERE g % 4 = 1"""))
        conn.execute(text(f"""
            INSERT INTO message (store_id, customer_id, flow, step, channel, marketing, idempotency_key,
                                 scheduled_for, status, attempts, payload, sent_at, created_at, updated_at)
            SELECT 1, g, 'review_request', 'main', 'email', {false}, '1:review_request:customer=' || g,
                   {plus_days('ts', -20)}, 'sent', 1, '{{}}', {plus_days('ts', -20)}, '2026-01-01', '2026-01-01'
            FROM (SELECT g, {exposure} AS ts FROM {seq(customers)}) s WHERE g % 2 = 0"""))
        # What the flow earns: one exposed customer in five orders two days after the email.
        conn.execute(text(f"""
            INSERT INTO orders (id, store_id, external_id, customer_id, created_at_remote, currency, total_price,
                                total_refunded, refunded, returned, tags, created_at, updated_at)
            SELECT {orders} + g, 1, 'e' || g, g, {plus_days('ts', 2)}, 'USD', 40, 0, {false}, {false}, '[]',
                   '2026-01-01', '2026-01-01'
            FROM (SELECT g, {exposure} AS ts FROM {seq(customers)}) s WHERE g % 5 = 1"""))
        conn.execute(text("ANALYZE"))
    print(f"  generated the outbox in {time.perf_counter() - started:.1f} s", flush=True)


def timed(label: str, fn: Callable[[], Any]) -> float:
    """Run ``fn`` once, print its wall time and result, return the time."""
    started = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - started
    print(f"  {label:<58} {elapsed:8.2f} s   {result}", flush=True)
    return elapsed


def run(db: Database) -> None:
    """Time the report's statements beside raw scans of the same rows."""
    params = {"s": START.replace(tzinfo=None) if db.dialect == "sqlite" else START,
              "e": END.replace(tzinfo=None) if db.dialect == "sqlite" else END}
    with db.sessionmaker() as session:
        print("raw figures:")
        timed("SELECT count(*) FROM message (replenishment, in range)", lambda: session.execute(text(
            "SELECT count(*) FROM message WHERE store_id = 1 AND flow = 'replenishment' "
            "AND scheduled_for >= :s AND scheduled_for < :e"), params).scalar_one())
        timed("SELECT count(*), sum(total_price) FROM orders", lambda: tuple(session.execute(text(
            "SELECT count(*), sum(total_price) FROM orders")).one()))
        timed("raw join: messages in range x their customers' orders", lambda: session.execute(text(
            "SELECT count(*) FROM message m JOIN orders o ON o.store_id = m.store_id "
            "AND o.customer_id = m.customer_id WHERE m.store_id = 1 AND m.flow = 'replenishment' "
            "AND m.scheduled_for >= :s AND m.scheduled_for < :e"), params).scalar_one())
        print("report:")

        def one() -> str:
            lift = flow_lift(session, [1], "replenishment", START, END, attribution_days=7)
            return (f"exposed {lift.exposed.customers:,} / held out {lift.held_out.customers:,}; orders lift "
                    f"{lift.orders_lift.value:.3f} ({lift.orders_lift.low:.3f} to {lift.orders_lift.high:.3f})")
        timed("flow_lift: replenishment", one)
        timed("lift_by_flow: every flow (the admin page)", lambda: {
            flow: (lift.exposed.customers, lift.held_out.customers)
            for flow, lift in lift_by_flow(session, [1], START, END, attribution_days=7).items()})
        session.rollback()


def recount(db: Database) -> None:
    """Time the job's recount: the lift sums of every period alone, then the whole store_metrics row."""
    settings = dict(DEFAULTS["analytics"])
    print("job (stored figures):")
    with db.sessionmaker() as session:
        timed(f"count_lift: lift sums of the periods {PERIODS}", lambda: {
            days: len(flows) for days, flows in count_lift(session, 1, NOW, 7)["periods"].items()})
        session.rollback()
    with db.sessionmaker() as session:
        timed("save_store_figures: the hourly job's recount (all counts)", lambda: (
            save_store_figures(session, 1, NOW, settings), session.commit(), "saved")[-1])


def page_requests(url: str, requests: int) -> None:
    """Time GET /admin/flows/lift for each period, reading the stored sums (first, p50, p95 in ms)."""
    vault_key = Fernet.generate_key().decode()
    db = Database(url)
    with db.engine.begin() as conn:  # the session token is accepted only for a store with an access token
        conn.execute(text("UPDATE store SET access_token_enc = :t"), {"t": Vault(vault_key).encrypt("shpat_bench")})
    db.dispose()
    settings = {"database_url": url, "app": {"instance_path": tempfile.mkdtemp(), "log_level": "WARNING"},
                "shopify": {"client_id": API_KEY},
                "secrets": {"secret_key": "bench-secret-key-0123456789abcdef", "encryption_key": vault_key,
                            "shopify_api_key": API_KEY, "shopify_api_secret": API_SECRET}}
    clock = FrozenClock(NOW)
    app = create_app(settings, clock=clock)
    client = app.test_client()
    print("page (reads the stored sums):")
    for days in PERIODS:
        timings = []
        for _ in range(requests + 1):
            token = mint_session_token(SHOP, API_KEY, API_SECRET, clock.now())
            started = time.perf_counter()
            answer = client.get(f"/admin/flows/lift?store=1&days={days}",
                                headers={"Authorization": f"Bearer {token}"})
            timings.append((time.perf_counter() - started) * 1000)
            body = answer.get_data(as_text=True)
            if answer.status_code != 200 or "figures as of" not in body:
                raise SystemExit(f"days={days}: HTTP {answer.status_code}, no stored figures: {body[-600:]}")
        cold, warm = timings[0], sorted(timings[1:])
        p95 = warm[max(0, int(round(0.95 * len(warm))) - 1)]
        print(f"  GET /admin/flows/lift?days={days:<4} first {cold:7.1f} ms   p50 {statistics.median(warm):7.1f} ms"
              f"   p95 {p95:7.1f} ms", flush=True)
    app.extensions["aftercare.db"].dispose()


def main() -> None:
    """Generate (unless --reuse) and time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dialect", choices=["sqlite", "postgres"])
    parser.add_argument("--path", default="/tmp/aftercare-bench-lift.sqlite")
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/aftercare_bench_lift")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true", help="keep existing data (skip generation)")
    parser.add_argument("--requests", type=int, default=20, help="timed page requests per period (after one)")
    args = parser.parse_args()
    url, db = open_database(args.dialect, args.path, args.url, args.reuse)
    print(f"{db.dialect}: {args.customers:,} customers, {args.customers * 3:,} orders", flush=True)
    if not args.reuse:
        Base.metadata.drop_all(db.engine)
        Base.metadata.create_all(db.engine)
        generate(db, args.customers)
    run(db)
    with db.sessionmaker() as session:
        session.query(StoreMetrics).delete()
        session.commit()
    recount(db)
    db.dispose()
    page_requests(url, args.requests)


if __name__ == "__main__":
    main()
