"""Shopify sync figures in one run.

1. Bulk backfill of N orders (default 100,000, with their lines) from a Shopify sandbox running in its own
   process, into SQLite and into PostgreSQL: orders/s of the consume phase (JSONL download, parse, upserts)
   and end to end (including the sandbox building the bulk file), beside the raw insert rate of the same
   final rows (executemany of plain INSERTs into empty tables), and the backfill's peak memory (ru_maxrss of
   the process doing it, plus tracemalloc's peak of Python allocations in a separate SQLite pass).
2. An incremental sync of 10,000 orders through paged GraphQL with cost-aware pacing: GraphQL calls and
   THROTTLED answers (the sandbox and the client share a simulated clock, so pacing waits cost no real time).

Usage: .venv/bin/python bench/shopify_sync.py [--orders 100000] [--customers 20000] [--pg URL]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import requests
from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pg_database import ensure_database  # noqa: E402

from base.clock import FrozenClock  # noqa: E402
from connectors.shopify.streams import CustomersStream, OrdersStream, ProductsStream  # noqa: E402
from plugin.config import load_config  # noqa: E402
from plugin.context import JobContext  # noqa: E402
from plugin.crypto import Vault, generate_key  # noqa: E402
from plugin.db import Database  # noqa: E402
from plugin.models import Base, Merchant, Order, OrderLine, Store  # noqa: E402
from plugin.secrets_store import set_credential  # noqa: E402
from plugin.sync.shopify_run import sync_stream  # noqa: E402

CLIENT_ID = "bench-app"
SCOPES = ["read_orders", "read_all_orders", "read_customers", "read_products"]
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/aftercare_bench_sync"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sandbox(orders: int, customers: int) -> tuple[subprocess.Popen, str, str]:
    """Start the sandbox in its own process (its memory is not ours) and install the bench app."""
    port = free_port()
    code = (f"from sandbox.shopify import serve; serve(port={port}, seed=42, customers={customers}, "
            f"orders={orders})")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(1200):
        try:
            requests.get(f"{url}/__sandbox/state", timeout=2)
            break
        except requests.ConnectionError:
            time.sleep(0.25)
    else:
        proc.kill()
        raise RuntimeError("sandbox did not start")
    requests.post(f"{url}/__sandbox/apps", json={"client_id": CLIENT_ID, "client_secret": "bench-secret",
                                                 "scopes": SCOPES}, timeout=10).raise_for_status()
    token = requests.post(f"{url}/__sandbox/install", json={"client_id": CLIENT_ID}, timeout=10).json()
    return proc, url, token["access_token"]


def fresh_schema(url: str) -> Database:
    database = Database(url)
    Base.metadata.drop_all(database.engine)
    Base.metadata.create_all(database.engine)
    return database


def make_store(database: Database, vault: Vault, shop: str, token: str) -> int:
    with database.session() as session:
        merchant = Merchant(name="bench")
        session.add(merchant)
        session.flush()
        store = Store(merchant_id=merchant.id, platform="shopify", external_id=shop)
        set_credential(store, vault, "access_token_enc", token)
        session.add(store)
        session.flush()
        return store.id


def backfill_child(db_url: str, sandbox_url: str, token: str, shop: str, measure_tracemalloc: bool) -> dict:
    """Backfill every stream through bulk operations; time the orders stream; report peak memory."""
    key = generate_key()
    config = load_config({"database_url": db_url,
                          "shopify": {"admin_base_url": sandbox_url, "request_timeout_seconds": 900.0},
                          "secrets": {"secret_key": "b" * 32, "encryption_key": key}}, environ={})
    database = fresh_schema(db_url)
    vault = Vault(key)
    store_id = make_store(database, vault, shop, token)
    ctx = JobContext(config=config, database=database, vault=vault, extras={"bulk_poll_interval": 0.2})
    from plugin.marketplaces import shopify_client

    client = shopify_client(ctx, store_id)
    if measure_tracemalloc:
        tracemalloc.start()
    for stream_class in (ProductsStream, CustomersStream):
        sync_stream(ctx, store_id, stream_class(client), full=True)
    orders = OrdersStream(client)
    started = time.perf_counter()
    bulk = orders.run_bulk(poll_interval=0.2)
    file_ready = time.perf_counter()
    from plugin.sync.shopify_run import consume_bulk

    counts = consume_bulk(ctx, store_id, orders, bulk)
    done = time.perf_counter()
    peak_traced = tracemalloc.get_traced_memory()[1] if measure_tracemalloc else None
    if measure_tracemalloc:
        tracemalloc.stop()
    maxrss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with database.session() as session:
        n_orders = session.scalar(select(func.count()).select_from(Order))
        n_lines = session.scalar(select(func.count()).select_from(OrderLine))
    result = {"orders": n_orders, "lines": n_lines, "records": counts["records"],
              "bulk_wait_s": file_ready - started, "consume_s": done - file_ready, "end_to_end_s": done - started,
              "maxrss_mb": maxrss_kb / 1024, "tracemalloc_peak_mb": (peak_traced / 2**20) if peak_traced else None}
    if not measure_tracemalloc:
        result["raw_insert_s"] = raw_insert_seconds(database, db_url)
    database.dispose()
    return result


def raw_insert_seconds(database: Database, db_url: str) -> float:
    """Copy the backfill's final orders and lines into empty tables with plain executemany INSERTs."""
    with database.engine.connect() as conn:
        orders = [dict(r._mapping) for r in conn.execute(select(Order.__table__).order_by(Order.id))]
        lines = [dict(r._mapping) for r in conn.execute(select(OrderLine.__table__).order_by(OrderLine.id))]
        parents = {name: [dict(r._mapping) for r in conn.execute(select(Base.metadata.tables[name]))]
                   for name in ("merchant", "store", "customer", "product", "variant")}
    target_url = raw_target(db_url)
    target = fresh_schema(target_url)
    with target.engine.begin() as conn:
        for name, rows in parents.items():
            if rows:
                conn.execute(insert(Base.metadata.tables[name]), rows)
    started = time.perf_counter()
    orders_table, lines_table = Order.__table__, OrderLine.__table__
    by_order: dict[int, list[dict]] = {}
    for line in lines:
        by_order.setdefault(line["order_id"], []).append(line)
    # Same batch size and one transaction per batch, like the sync; plain INSERTs, ids given.
    for start in range(0, len(orders), 500):
        batch = orders[start:start + 500]
        batch_lines = [line for o in batch for line in by_order.get(o["id"], ())]
        with target.engine.begin() as conn:
            conn.execute(insert(orders_table), batch)
            conn.execute(insert(lines_table), batch_lines)
    seconds = time.perf_counter() - started
    target.dispose()
    return seconds


def raw_target(db_url: str) -> str:
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        return db_url.replace(".sqlite", "-raw.sqlite")
    return str(url.set(database=f"{url.database}_raw").render_as_string(hide_password=False))


def ensure_pg(url: str) -> bool:
    try:
        ensure_database(url)
        ensure_database(raw_target(url))
        return True
    except Exception as exc:  # noqa: BLE001 - a benchmark reports a missing server and goes on
        print(f"PostgreSQL unavailable ({exc}); skipping", file=sys.stderr)
        return False


def run_child(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def incremental(orders: int, customers: int) -> dict:
    """Sync `orders` orders page by page against an in-process sandbox on a shared simulated clock."""
    from sandbox.shopify import ShopifySandbox

    clock = FrozenClock(datetime(2026, 3, 2, 12, 0, tzinfo=UTC))
    sandbox = ShopifySandbox(seed=42, customers=customers, orders=orders, clock=clock, restore_rate=100.0)
    sandbox.start()
    try:
        sandbox.register_app(CLIENT_ID, "bench-secret", SCOPES)
        token = sandbox.install(CLIENT_ID)["access_token"]
        key = generate_key()
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/incremental.sqlite"
            config = load_config({"database_url": url, "shopify": {"admin_base_url": sandbox.url},
                                  "secrets": {"secret_key": "b" * 32, "encryption_key": key}}, environ={})
            database = fresh_schema(url)
            vault = Vault(key)
            store_id = make_store(database, vault, sandbox.shop_domains[0], token)
            simulated = []

            def sleep(seconds: float) -> None:
                simulated.append(seconds)
                clock.advance(seconds=seconds)

            ctx = JobContext(config=config, database=database, vault=vault, clock=clock, sleep=sleep)
            from plugin.marketplaces import shopify_client

            client = shopify_client(ctx, store_id)
            # A cursor older than every order: the incremental read returns all of them.
            from plugin import sync

            with database.session() as session:
                sync.mark_sync_success(session, store_id, "orders", cursor="2000-01-01T00:00:00+00:00",
                                       now=clock.now())
            started = time.perf_counter()
            counts = sync_stream(ctx, store_id, OrdersStream(client))
            seconds = time.perf_counter() - started
            database.dispose()
        return {"orders": counts["records"], "calls": client.stats.calls, "throttled": client.stats.throttled,
                "paced_waits": client.stats.paced_waits, "retries": client.stats.retries,
                "simulated_wait_s": sum(simulated), "wall_s": seconds}
    finally:
        sandbox.stop()


def machine() -> dict:
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cores": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version}


def pg_version(url: str) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.scalar(text("SHOW server_version"))
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--incremental-orders", type=int, default=10_000)
    parser.add_argument("--pg", default=os.environ.get("AFTERCARE_BENCH_PG", PG_DEFAULT))
    parser.add_argument("--only", choices=("sqlite", "postgresql"), default=None,
                        help="Backfill into one database only (skips the traced pass and the incremental run).")
    parser.add_argument("--child", nargs=5, metavar=("DB", "SANDBOX", "TOKEN", "SHOP", "TRACE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        db, sandbox_url, token, shop, trace = args.child
        print(json.dumps(backfill_child(db, sandbox_url, token, shop, trace == "1")))
        return

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    info = machine()
    print(f"machine: {info['cores']} cores, {info['cpu']}, Python {info['python']}, SQLite {info['sqlite']}")
    t0 = time.perf_counter()
    proc, url, token = start_sandbox(args.orders, args.customers)
    print(f"sandbox: {args.orders} orders, {args.customers} customers, ready in {time.perf_counter() - t0:.1f} s")
    shop = "aftercare-demo.myshopify.com"
    results: dict[str, dict] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            sqlite_url = f"sqlite:///{tmp}/backfill.sqlite"
            if args.only in (None, "sqlite"):
                results["SQLite"] = run_child(["--child", sqlite_url, url, token, shop, "0"])
            if args.only in (None, "postgresql") and ensure_pg(args.pg):
                results[f"PostgreSQL {pg_version(args.pg)}"] = run_child(["--child", args.pg, url, token, shop, "0"])
            traced = None if args.only else run_child(["--child", f"sqlite:///{tmp}/traced.sqlite", url, token,
                                                      shop, "1"])
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    print()
    print(f"Bulk backfill of {args.orders} orders")
    header = (f"{'database':24} {'orders':>7} {'lines':>7} {'bulk file wait':>14} {'consume':>9} "
              f"{'orders/s':>9} {'end-to-end/s':>12} {'raw INSERT/s':>12} {'ratio':>6} {'peak RSS':>9}")
    print(header)
    for name, r in results.items():
        rate = r["orders"] / r["consume_s"]
        raw = r["orders"] / r["raw_insert_s"]
        print(f"{name:24} {r['orders']:>7} {r['lines']:>7} {r['bulk_wait_s']:>13.1f}s {r['consume_s']:>8.1f}s "
              f"{rate:>9.0f} {r['orders'] / r['end_to_end_s']:>12.0f} {raw:>12.0f} {rate / raw:>6.2f} "
              f"{r['maxrss_mb']:>7.0f}MB")
    if traced is None:
        return
    print(f"tracemalloc peak of Python allocations during a SQLite backfill: {traced['tracemalloc_peak_mb']:.1f} MB "
          f"(RSS of that traced run {traced['maxrss_mb']:.0f} MB)")

    inc = incremental(args.incremental_orders, max(args.incremental_orders // 5, 10))
    print()
    print(f"Incremental sync of {inc['orders']} orders (paged GraphQL, restore rate 100 points/s)")
    print(f"GraphQL calls {inc['calls']}, THROTTLED answers {inc['throttled']}, paced waits {inc['paced_waits']}, "
          f"retries {inc['retries']}, simulated waiting {inc['simulated_wait_s']:.0f} s, wall {inc['wall_s']:.1f} s")


if __name__ == "__main__":
    main()
