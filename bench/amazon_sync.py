"""Amazon orders sync against the searchOrders usage plan: measured time beside the minimum it allows.

The sandbox runs on the wall clock with its token buckets scaled by ``--scale`` (searchOrders: 0.0056 rps
and burst 20 at scale 1, as in the official model). Pages are 100 orders, so syncing N orders needs
P = ceil(N / 100) searchOrders calls; the first ``burst`` go at once, every further one waits 1/rate:
the lower bound is (P - burst) / rate seconds. The orders sync is timed alone (``returns=False``); the returns
reports the sync job runs after it are timed separately. Every request the sandbox answers is counted under
its operation (searchOrders, createReport, getReport, ..., the LWA token endpoint), with its 429s.
The script prints the measured time, the bound, their ratio (target >= 0.9), and the calls per operation.

Usage: .venv/bin/python bench/amazon_sync.py [--orders 10000] [--scale 50] [--seed 7]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from base.clock import SystemClock  # noqa: E402
from plugin.config import load_config  # noqa: E402
from plugin.context import JobContext  # noqa: E402
from plugin.crypto import Vault  # noqa: E402
from plugin.db import Database  # noqa: E402
from plugin.marketplaces import open_session  # noqa: E402
from plugin.models import Base, Merchant, Order, OrderLine, Store  # noqa: E402
from plugin.secrets_store import set_credential  # noqa: E402
from plugin.sync.amazon_run import sync_amazon_store, sync_returns  # noqa: E402
from sandbox.amazon import AmazonSandbox  # noqa: E402
from sandbox.amazon.ratelimit import RATE_TABLE  # noqa: E402
from sandbox.server import ServerThread  # noqa: E402

OPERATION = "orders_2026-01-01.searchOrders"


class CallCounter:
    """WSGI middleware noting (operation, HTTP status) of every answer, in order; ``phase`` labels the rows."""

    def __init__(self, app, sandbox):
        self.app = app
        self.sandbox = sandbox
        self.phase = ""
        self.calls: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        operation = self.sandbox.operation_of(method, path) or ("report document" if path.startswith("/__documents/")
                                                                else f"{method} {path}")

        def spy(status, headers, exc_info=None):
            with self._lock:
                self.calls.append((self.phase, operation, int(status.split()[0])))
            return start_response(status, headers, exc_info)

        return self.app(environ, spy)

    def table(self, phase: str) -> list[tuple[str, int, int]]:
        """Return (operation, calls, 429s) of one phase, most called first."""
        calls = Counter(op for p, op, _ in self.calls if p == phase)
        throttled = Counter(op for p, op, status in self.calls if p == phase and status == 429)
        return [(op, n, throttled[op]) for op, n in calls.most_common()]


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10000, help="orders seeded in the sandbox (all sellers)")
    parser.add_argument("--scale", type=float, default=50.0, help="factor applied to the sandbox's rates")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    clock = SystemClock()
    sandbox = AmazonSandbox(seed=args.seed, orders=args.orders, clock=clock, rate_scale=args.scale)
    counter = CallCounter(sandbox.wsgi_app, sandbox)
    server = ServerThread(counter).start()
    sandbox._server = server  # as sandbox.amazon.serve does: document URLs name this server
    seller = sandbox.seller(0)
    now = clock.now()
    n_orders = sum(1 for o in sandbox.orders_of(seller.seller_id) if o.purchase_date <= now)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite'}"
        key = Fernet.generate_key().decode()
        config = load_config({"database_url": url, "app": {"instance_path": tmp},
                              "amazon": {"endpoint": server.url, "lwa_token_url": server.url + "/auth/o2/token"},
                              "secrets": {"secret_key": "bench", "encryption_key": key,
                                          "lwa_client_id": sandbox.client_id,
                                          "lwa_client_secret": sandbox.client_secret}}, environ={})
        database = Database(url)
        Base.metadata.create_all(database.engine)
        vault = Vault(key)
        with database.session() as session:
            merchant = Merchant(name="bench")
            session.add(merchant)
            session.flush()
            store = Store(merchant_id=merchant.id, platform="amazon", external_id=f"{seller.seller_id}:na",
                          region="na", marketplace_ids=list(seller.marketplace_ids), name="bench")
            set_credential(store, vault, "refresh_token_enc", sandbox.issue_refresh_token(seller.seller_id))
            session.add(store)
            session.flush()
            store_id = store.id
        ctx = JobContext(config=config, database=database, vault=vault, clock=clock, sleep=time.sleep)
        counter.phase = "orders"
        started = time.perf_counter()
        result = sync_amazon_store(ctx, store_id, returns=False)
        elapsed = time.perf_counter() - started
        with database.session() as session:
            stored = session.scalar(select(func.count()).select_from(Order))
            lines = session.scalar(select(func.count()).select_from(OrderLine))
            store = session.get(Store, store_id)
        # What the sync job runs next: the returns reports (createReport, polling, the document), timed apart.
        counter.phase = "returns"
        started = time.perf_counter()
        with open_session(ctx, store) as api:
            returns = sync_returns(ctx, api, store_id, list(seller.marketplace_ids), clock.now(), force=True)
        returns_elapsed = time.perf_counter() - started
        database.dispose()
    server.stop()

    base_rate, burst = RATE_TABLE[OPERATION]
    rate = base_rate * args.scale
    pages = math.ceil(n_orders / 100)
    bound = max(0, pages - burst) / rate
    searches = sum(n for op, n, _ in counter.table("orders") if op == OPERATION)
    load = os.getloadavg()
    print(f"machine: {platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, SQLite; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    print(f"sandbox: {args.orders} orders seeded, seller 0 has {n_orders}; searchOrders rate "
          f"{base_rate} rps x {args.scale:g} = {rate:.4g} rps, burst {burst}")
    print(f"orders sync alone: {stored} orders, {lines} lines in {result['pages']} pages "
          f"({searches} searchOrders calls, {result['retries']} retries)")
    print(f"time: {elapsed:.1f} s; lower bound from rate and burst: {bound:.1f} s; "
          f"ratio bound/time = {bound / elapsed if elapsed else 0:.3f} (target >= 0.9)")
    for phase in ("orders", "returns"):
        print(f"calls during the {phase} phase (operation: calls, 429s):")
        for op, n, limited in counter.table(phase):
            print(f"  {op}: {n}, {limited}")
    print(f"returns reports (not in the time above): {returns_elapsed:.1f} s, "
          f"{returns.get('returns_entries', 0)} entries")
    if stored != n_orders:
        raise SystemExit(f"MISMATCH: synced {stored} orders, sandbox has {n_orders}")
    if searches != result["pages"]:
        raise SystemExit(f"MISMATCH: {searches} searchOrders calls for {result['pages']} pages")


if __name__ == "__main__":
    main()
