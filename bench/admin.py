"""Benchmark: p95 latency of every admin page with 1,000,000 orders, on SQLite and PostgreSQL.

Data is generated with set-based SQL (recursive CTE on SQLite, generate_series on PostgreSQL): one merchant
with a Shopify store, 250,000 customers, 1,000,000 orders with one line each, 200,000 messages, 20,000 reviews
and 2,000 tickets. The metrics snapshot (``jobs.analytics.snapshot_metrics``, daily) and the overview counts
(``jobs.analytics.refresh_store_figures``, hourly) run first, as in production; both are timed, and so is the
first overview request after each of five hourly recounts (the admin's per-process cache is stale then).
Requests go through the Flask app in-process with a real session token, so the figures are the server's own
time (routing, authentication, queries, templates), not the network's.

    .venv/bin/python bench/admin.py                       # both databases, 1,000,000 orders
    .venv/bin/python bench/admin.py --orders 100000 --databases sqlite
"""

# ruff: noqa: S608 - the SQL below interpolates only integers and constants chosen in this file, never input.
from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.fernet import Fernet  # noqa: E402
from sqlalchemy import text  # noqa: E402

from base.clock import FrozenClock  # noqa: E402
from jobs.analytics import refresh_store_figures, snapshot_metrics  # noqa: E402
from plugin import create_app  # noqa: E402
from plugin.context import JobContext  # noqa: E402
from plugin.models import Base  # noqa: E402
from sandbox.shopify import mint_session_token  # noqa: E402

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SHOP = "bench-store.myshopify.com"
API_KEY, API_SECRET = "bench-client-id", "bench-client-secret-0123456789abcdef"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PG_NAME = "aftercare_bench_admin"


def _series(dialect: str, n: int, body: str) -> str:
    """Wrap an INSERT ... SELECT over x = 1..n in the dialect's row generator."""
    if dialect == "postgresql":
        return body.replace("{FROM}", f"FROM generate_series(1::bigint, {n}) AS s(x)")
    return f"WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < {n}) " + \
        body.replace("{FROM}", "FROM s")


def _ts(dialect: str, seconds_ago: str) -> str:
    """SQL for NOW minus an integer expression of seconds."""
    epoch = int(NOW.timestamp())
    if dialect == "postgresql":
        return f"to_timestamp({epoch} - ({seconds_ago}))"
    return f"strftime('%Y-%m-%d %H:%M:%S', {epoch} - ({seconds_ago}), 'unixepoch')"


def generate(engine, orders: int) -> dict[str, int]:
    """Fill the database with one store's worth of data; return the row counts."""
    dialect = engine.dialect.name
    customers, products = orders // 4, 50
    messages, reviews, tickets = orders // 5, orders // 50, orders // 500
    true, false = ("TRUE", "FALSE") if dialect == "postgresql" else ("1", "0")
    day = 86400
    statements = [
        "INSERT INTO merchant (id, name, settings, alert_email) VALUES (1, 'Bench Inc', '{}', 'ops@bench.example')",
        "INSERT INTO store (id, merchant_id, platform, external_id, marketplace_ids, name, currency, timezone, "
        "primary_locale, country, status, scopes, protected_data_access, access_token_enc) VALUES "
        f"(1, 1, 'shopify', '{SHOP}', '[]', 'Bench Store', 'USD', 'America/New_York', 'en', 'US', 'active', '', "
        f"{true}, :token)",
        _series(dialect, products, "INSERT INTO product (id, store_id, external_id, title, consumable, days_of_supply, "
                "learned_cycle_samples) SELECT x, 1, 'p' || x, 'Product ' || x, " + true + ", 30, 0 {FROM}"),
        _series(dialect, customers, "INSERT INTO customer (id, store_id, external_id, email, first_name, locale, "
                "country, marketing_consent, tags) SELECT x, 1, 'c' || x, 'customer' || x || '@example.com', "
                "'Name' || x, 'en', 'US', CASE WHEN x % 3 = 0 THEN " + false + " ELSE " + true + " END, '[]' {FROM}"),
        # Customer (x * 7) mod C: every customer gets about four orders spread over two years.
        _series(dialect, orders, "INSERT INTO orders (id, store_id, external_id, name, customer_id, created_at_remote, "
                "currency, total_price, total_refunded, refunded, returned, fulfillment_status, delivered_at, tags) "
                f"SELECT x, 1, 'o' || x, '#' || (1000 + x), ((x * 7) % {customers}) + 1, "
                f"{_ts(dialect, f'(x * 7919) % (730 * {day})')}, 'USD', 20 + (x % 180), 0, {false}, {false}, "
                f"'FULFILLED', {_ts(dialect, f'((x * 7919) % (730 * {day})) - 3 * {day}')}, '[]' {{FROM}}"),
        _series(dialect, orders, "INSERT INTO order_line (id, order_id, store_id, external_id, product_id, "
                f"quantity, price, title) SELECT x, x, 1, 'l' || x, (x % {products}) + 1, 1, 20 + (x % 180), "
                "'Product' {FROM}"),
        _series(dialect, messages, "INSERT INTO message (id, store_id, customer_id, order_id, flow, step, channel, "
                "marketing, idempotency_key, scheduled_for, status, skip_reason, attempts, payload, to_address, "
                "sent_at, created_at, updated_at) SELECT x, 1, ((x * 7) % " + str(customers) + ") + 1, x * 5, "
                "CASE x % 3 WHEN 0 THEN 'review_request' WHEN 1 THEN 'survey' ELSE 'replenishment' END, 'main', "
                "'email', " + false + ", '1:bench:' || x, " + _ts(dialect, "x * 60") + ", "
                "CASE WHEN x % 10 = 0 THEN 'skipped' ELSE 'sent' END, CASE WHEN x % 10 = 0 THEN 'no_consent' END, "
                "1, '{}', 'customer' || (((x * 7) % " + str(customers) + ") + 1) || '@example.com', "
                + _ts(dialect, "x * 60") + ", " + _ts(dialect, "x * 60") + ", " + _ts(dialect, "x * 60") + " {FROM}"),
        _series(dialect, reviews, "INSERT INTO review (id, store_id, source, external_id, product_id, order_id, "
                "customer_id, rating, title, body, created_at_remote, reply_status, reply_body) SELECT x, 1, "
                "'judgeme', 'r' || x, (x % 50) + 1, x * 50, ((x * 350) % " + str(customers) + ") + 1, "
                "(x % 5) + 1, 'Review ' || x, 'Body of review ' || x, " + _ts(dialect, "x * 3600") + ", "
                "CASE WHEN x % 5 < 3 THEN 'draft' ELSE 'sent' END, 'Thank you!' {FROM}"),
        _series(dialect, tickets, "INSERT INTO ticket (id, store_id, customer_id, review_id, source, severity, "
                "subject, status, opened_at, sla_due_at) SELECT x, 1, ((x * 3500) % " + str(customers) + ") + 1, "
                "x * 10, 'review', (x % 3) + 1, 'Complaint ' || x, CASE WHEN x % 4 = 0 THEN 'open' "
                "ELSE 'resolved' END, " + _ts(dialect, "x * 3600") + ", " + _ts(dialect, "x * 3600 - 86400") +
                " {FROM}"),
    ]
    return {"customers": customers, "orders": orders, "messages": messages, "reviews": reviews,
            "tickets": tickets, "_statements": statements}  # type: ignore[dict-item]


def _vault_token(vault_key: str) -> bytes:
    from plugin.crypto import Vault

    return Vault(vault_key).encrypt("shpat_bench")


def build(url: str, orders: int, vault_key: str) -> float:
    """Create the schema and the data; return the seconds it took."""
    from plugin.db import Database

    database = Database(url)
    Base.metadata.drop_all(database.engine)
    Base.metadata.create_all(database.engine)
    started = time.perf_counter()
    plan = generate(database.engine, orders)
    token = _vault_token(vault_key)
    with database.engine.begin() as conn:
        for statement in plan["_statements"]:
            conn.execute(text(statement), {"token": token} if ":token" in statement else {})
        if database.engine.dialect.name == "postgresql":
            for table in ("customer", "orders", "order_line", "message", "review", "ticket", "product", "store",
                          "merchant"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                  f"(SELECT MAX(id) FROM {table}))"))
    with database.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    database.dispose()
    return time.perf_counter() - started


def measure(url: str, vault_key: str,
            requests_per_page: int) -> tuple[dict[str, float], list[tuple[str, float, float, float]]]:
    """Run the metrics jobs, then time every page; return (job and recount timings, [(page, cold, p50, p95) ms])."""
    clock = FrozenClock(NOW)
    settings = {"database_url": url, "app": {"instance_path": tempfile.mkdtemp(), "log_level": "WARNING"},
                "shopify": {"client_id": API_KEY},
                "secrets": {"secret_key": "bench-secret-key-0123456789abcdef", "encryption_key": vault_key,
                            "shopify_api_key": API_KEY, "shopify_api_secret": API_SECRET}}
    app = create_app(settings, clock=clock)
    ctx = JobContext.from_app(app, sleep=lambda _s: None)
    started = time.perf_counter()
    snapshot_metrics(ctx, 1)
    jobs = {"snapshot_s": time.perf_counter() - started}
    clock.advance(timedelta(minutes=5))
    started = time.perf_counter()
    refresh_store_figures(ctx, 1)
    jobs["hourly_counts_s"] = time.perf_counter() - started
    client = app.test_client()
    pages = ["/admin/", "/admin/flows", "/admin/flows/review_request", "/admin/reviews",
             "/admin/reviews?status=draft&rating=1", "/admin/tickets", "/admin/tickets/4", "/admin/messages",
             "/admin/messages?q=customer8%40example.com", "/admin/messages?q=%23501000", "/admin/customers",
             "/admin/customers?segment=vip", "/admin/customers?segment=dormant",
             "/admin/customers?q=customer8%40example.com", "/admin/customers?q=ustomer1234",
             "/admin/customers?q=nobody-matches", "/admin/customers/8",
             "/admin/settings"]
    results = []
    for path in pages:
        timings = []
        for _ in range(requests_per_page + 1):
            token = mint_session_token(SHOP, API_KEY, API_SECRET, clock.now())
            t0 = time.perf_counter()
            answer = client.get(path, headers={"Authorization": f"Bearer {token}"})
            timings.append((time.perf_counter() - t0) * 1000)
            if answer.status_code != 200:
                raise SystemExit(f"{path}: HTTP {answer.status_code}: {answer.get_data(as_text=True)[:300]}")
        cold, warm = timings[0], sorted(timings[1:])
        p95 = warm[max(0, int(round(0.95 * len(warm))) - 1)]
        results.append((path, cold, statistics.median(warm), p95))
    # The first overview request after the hourly recount: the per-process cache is stale, the counts are new.
    after = []
    for _ in range(5):
        clock.advance(timedelta(hours=1))
        refresh_store_figures(ctx, 1)
        token = mint_session_token(SHOP, API_KEY, API_SECRET, clock.now())
        t0 = time.perf_counter()
        answer = client.get("/admin/", headers={"Authorization": f"Bearer {token}"})
        after.append((time.perf_counter() - t0) * 1000)
        assert answer.status_code == 200, answer.status_code
    jobs["overview_after_recount_max_ms"] = max(after)
    app.extensions["aftercare.db"].dispose()
    return jobs, results


def main() -> None:
    """Build each database, measure, print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=20, help="timed requests per page (after one cold one)")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--sqlite-path", default=None, help="keep the SQLite database in this file")
    parser.add_argument("--reuse", action="store_true", help="measure the existing databases without rebuilding")
    args = parser.parse_args()
    vault_key = Fernet.generate_key().decode()
    print(f"machine: {platform.machine()} {platform.processor() or ''} · {_cpu()} · Python "
          f"{platform.python_version()} · {args.orders:,} orders")
    for name in args.databases.split(","):
        if name == "sqlite":
            url = f"sqlite:///{args.sqlite_path or tempfile.mkdtemp() + '/bench-admin.sqlite'}"
        elif not args.reuse:
            subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", PG_NAME], check=True)
            subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", PG_NAME], check=True)
        if name != "sqlite":
            url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{PG_NAME}"
        if args.reuse:
            from plugin.db import Database

            reused = Database(url)
            Base.metadata.create_all(reused.engine)  # tables added to the models since the build
            for table in Base.metadata.sorted_tables:  # indexes added to the models since the build
                for index in table.indexes:
                    index.create(reused.engine, checkfirst=True)
            with reused.engine.begin() as conn:
                conn.execute(text("UPDATE store SET access_token_enc = :token"), {"token": _vault_token(vault_key)})
            reused.dispose()
            built = 0.0
        else:
            built = build(url, args.orders, vault_key)
        jobs, results = measure(url, vault_key, args.requests)
        print(f"\n### {name}: data generated in {built:.1f} s, metrics snapshot (daily) {jobs['snapshot_s']:.1f} s, "
              f"overview counts (hourly) {jobs['hourly_counts_s']:.1f} s; first overview request after a recount "
              f"(worst of 5) {jobs['overview_after_recount_max_ms']:.0f} ms\n")
        print("| page | first request (ms) | p50 (ms) | p95 (ms) |")
        print("|---|---:|---:|---:|")
        for path, cold, p50, p95 in results:
            print(f"| `{path}` | {cold:.0f} | {p50:.0f} | {p95:.0f} |")
        sys.stdout.flush()


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), "")
    except OSError:
        model = ""
    import os

    return f"{os.cpu_count()} cores {model}".strip()


if __name__ == "__main__":
    main()
