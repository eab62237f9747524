"""A fresh install, timed before and after the product's own statistics step (issue 11, item 17).

Every other benchmark runs ``ANALYZE`` after generating its data; a new install never did, and SQLite without
statistics plans the cohort count as a scan of every order per customer. This one does what an operator does:
an empty database, ``plugin.migrate.upgrade`` (``aftercare db upgrade``), then ~49,000 orders written through the
product's own write path (``plugin.sync.orders.upsert_orders``, the sync's owner of order rows, in batches of 500
per transaction as a backfill writes them) — and no ``ANALYZE``. Then it times, side by side with raw scans of the
same rows:

- the cohort count (``analytics.cohort_cells``) and the repurchase count (``analytics.repurchase_counts``);
- the overview counts of the store (``store_figures.count_store``: what the admin request counted live before
  issue 11, what the ``overview_first_counts`` job counts now);
- the daily customer metrics (``analytics.refresh_customer_metrics``, rolled back);
- the admin overview request (``GET /admin/`` in-process with a real session token; no stored counts yet, so
  it answers "counting…" without reading an order);

once on the never-analysed database, once after the product's statistics step (``table_stats.refresh_statistics``
with the sync's tables, as ``sync_store`` runs it after a backfill), and once after a full ``ANALYZE`` (what the
other benchmarks run) for comparison.

    .venv/bin/python bench/fresh_install.py                    # SQLite and PostgreSQL, 49,000 orders
    .venv/bin/python bench/fresh_install.py --databases sqlite --orders 20000
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.fernet import Fernet  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from base.clock import FrozenClock  # noqa: E402
from connectors.records import CustomerRecord, OrderLineRecord, OrderRecord  # noqa: E402
from plugin import analytics, create_app, store_figures  # noqa: E402
from plugin.config import DEFAULTS  # noqa: E402
from plugin.crypto import Vault  # noqa: E402
from plugin.db import Database  # noqa: E402
from plugin.migrate import upgrade  # noqa: E402
from plugin.models import Merchant, Store  # noqa: E402
from plugin.secrets_store import set_credential  # noqa: E402
from plugin.sync.orders import upsert_orders  # noqa: E402
from plugin.table_stats import SYNC_TABLES, refresh_statistics  # noqa: E402
from sandbox.shopify import mint_session_token  # noqa: E402

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SHOP = "fresh-install.myshopify.com"
API_KEY, API_SECRET = "bench-client-id", "bench-client-secret-0123456789abcdef"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/aftercare_bench_fresh"
SETTINGS = dict(DEFAULTS["analytics"])


def records(orders: int, customers: int, seed: int = 11) -> list[OrderRecord]:
    """Return ``orders`` order records over two years: 10 % guest orders, customers' order counts long-tailed,
    4 % of orders followed by a split order a few hours later, 3 % cancelled, one to three lines of 200 products."""
    rng = random.Random(seed)
    result: list[OrderRecord] = []
    k = 0
    while len(result) < orders:
        guest = rng.random() < 0.10
        # Long tail: a few customers order very often, most once or twice (as in real transaction histories).
        who = None if guest else int(customers * rng.random() ** 2.2)
        created = NOW - timedelta(seconds=rng.randint(0, 730 * 86400))
        batch = [created]
        if rng.random() < 0.04:
            batch.append(created + timedelta(hours=rng.randint(1, 20)))
        for when in batch:
            if when > NOW:
                continue
            customer = None if who is None else CustomerRecord(external_id=f"c{who}", email=f"c{who}@example.com",
                                                               first_name=f"C{who}", locale="en", country="GB")
            lines = tuple(OrderLineRecord(external_id=f"l{k}-{n}", quantity=rng.randint(1, 3),
                                          price=Decimal(rng.choice(("4.95", "12.50", "19.99", "32.00"))),
                                          title="Item", product_external_id=f"p{rng.randint(1, 200)}")
                          for n in range(rng.randint(1, 3)))
            total = sum((line.price * line.quantity for line in lines), Decimal("0"))
            result.append(OrderRecord(external_id=f"o{k}", created_at=when, updated_at=when, currency="GBP",
                                      total_price=total, name=f"#{1000 + k}", customer=customer,
                                      cancelled_at=when + timedelta(hours=2) if rng.random() < 0.03 else None,
                                      fulfillment_status="FULFILLED", lines=lines))
            k += 1
    return result[:orders]


def fresh_database(dialect: str, path: str) -> str:
    """Return the URL of an empty database: a new SQLite file, or PostgreSQL's bench database dropped and made anew."""
    if dialect == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(path + suffix).unlink(missing_ok=True)
        return f"sqlite:///{path}"
    target = make_url(PG_URL)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()
    return PG_URL


def install_and_seed(url: str, orders: int, customers: int, vault_key: str) -> tuple[int, float]:
    """Migrate the empty database and write the orders through the sync's owner; return (store id, seconds)."""
    upgrade(url)
    database = Database(url)
    with database.session() as session:
        merchant = Merchant(name="Fresh install")
        session.add(merchant)
        session.flush()
        store = Store(merchant_id=merchant.id, platform="shopify", external_id=SHOP, name="Fresh", currency="GBP",
                      timezone="Europe/London", primary_locale="en", country="GB", status="active",
                      installed_at=NOW, marketplace_ids=[], protected_data_access=True)
        set_credential(store, Vault(vault_key), "access_token_enc", "shpat_bench")
        session.add(store)
        session.flush()
        store_id = store.id
    started = time.perf_counter()
    data = records(orders, customers)
    for offset in range(0, len(data), 500):
        with database.session() as session:
            upsert_orders(session, store_id, data[offset:offset + 500])
    seeded = time.perf_counter() - started
    database.dispose()
    return store_id, seeded


def _timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def measure(url: str, store_id: int, vault_key: str) -> dict[str, float]:
    """Time each figure once on a new connection (seconds); writes are rolled back so every state sees one data set."""
    database = Database(url)
    figures: dict[str, float] = {}
    with database.sessionmaker() as session:
        figures["raw: SELECT count(*) FROM orders"] = _timed(
            lambda: session.execute(text("SELECT count(*) FROM orders")).scalar_one())
        figures["raw: orders grouped by customer"] = _timed(lambda: session.execute(text(
            "SELECT count(*) FROM (SELECT customer_id, min(created_at_remote) FROM orders "
            "WHERE store_id = :s GROUP BY customer_id) g"), {"s": store_id}).scalar_one())
        figures["cohort count (analytics.cohort_cells)"] = _timed(
            lambda: analytics.cohort_cells(session, [store_id], NOW))
        figures["repurchase count (analytics.repurchase_counts)"] = _timed(
            lambda: analytics.repurchase_counts(session, [store_id], NOW))
        figures["overview counts (store_figures.count_store)"] = _timed(
            lambda: store_figures.count_store(session, store_id, NOW, SETTINGS))
        figures["customer metrics (refresh_customer_metrics)"] = _timed(
            lambda: analytics.refresh_customer_metrics(session, store_id, NOW, analytics.SegmentRules()))
        session.rollback()
    database.dispose()
    settings = {"database_url": url, "app": {"instance_path": tempfile.mkdtemp(), "log_level": "WARNING"},
                "shopify": {"client_id": API_KEY},
                "secrets": {"secret_key": "bench-secret-key-0123456789abcdef", "encryption_key": vault_key,
                            "shopify_api_key": API_KEY, "shopify_api_secret": API_SECRET}}
    app = create_app(settings, clock=FrozenClock(NOW))
    client = app.test_client()

    def overview() -> None:
        answer = client.get("/admin/", headers={
            "Authorization": f"Bearer {mint_session_token(SHOP, API_KEY, API_SECRET, NOW)}"})
        if answer.status_code != 200 or "counting…" not in answer.get_data(as_text=True):
            raise SystemExit(f"overview: HTTP {answer.status_code}")
    figures["admin overview request (no stored counts: counting…)"] = _timed(overview)
    app.extensions["aftercare.db"].dispose()
    return figures


def statistics_step(url: str, full: bool) -> tuple[float, list[str]]:
    """Run the product's statistics step (or a plain full ANALYZE); return its seconds and the tables analysed."""
    database = Database(url)
    started = time.perf_counter()
    with database.engine.begin() as conn:
        if full:
            conn.execute(text("ANALYZE"))
            tables = ["(all)"]
        else:
            tables = refresh_statistics(conn, SYNC_TABLES)
    elapsed = time.perf_counter() - started
    database.dispose()
    return elapsed, tables


def run(dialect: str, orders: int, customers: int, path: str) -> None:
    """Install, seed and time one database; print a Markdown table."""
    vault_key = Fernet.generate_key().decode()
    url = fresh_database(dialect, path)
    store_id, seeded = install_and_seed(url, orders, customers, vault_key)
    print(f"\n### {dialect}: {orders:,} orders written through upsert_orders in {seeded:.1f} s", flush=True)
    before = measure(url, store_id, vault_key)
    step_s, tables = statistics_step(url, full=False)
    after = measure(url, store_id, vault_key)
    full_s, _ = statistics_step(url, full=True)
    analysed = measure(url, store_id, vault_key)
    print(f"\nstatistics step (refresh_statistics, {', '.join(tables)}): {step_s:.2f} s; "
          f"full ANALYZE: {full_s:.2f} s\n")
    print("| figure | never analysed (s) | after the product's statistics step (s) | after a full ANALYZE (s) |")
    print("|---|---:|---:|---:|")
    for name in before:
        print(f"| {name} | {before[name]:.3f} | {after[name]:.3f} | {analysed[name]:.3f} |")
    sys.stdout.flush()


def main() -> None:
    """Parse the arguments and run each database."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=49_000)
    parser.add_argument("--customers", type=int, default=None, help="default: a quarter of the orders")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--sqlite-path", default=os.path.join(tempfile.gettempdir(), "aftercare-bench-fresh.sqlite"))
    args = parser.parse_args()
    customers = args.customers or args.orders // 4
    print(f"machine: {platform.machine()} · {os.cpu_count()} cores · Python {platform.python_version()} · "
          f"load {os.getloadavg()[0]:.1f} · {args.orders:,} orders, up to {customers:,} customers")
    for dialect in args.databases.split(","):
        run(dialect, args.orders, customers, args.sqlite_path)


if __name__ == "__main__":
    main()
