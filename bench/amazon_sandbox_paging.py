"""Page through every seeded order of the Amazon sandbox (searchOrders, 100 per page) and print figures.

Run: .venv/bin/python bench/amazon_sandbox_paging.py [orders]
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

import requests

from base.clock import FrozenClock
from sandbox.amazon import AmazonSandbox


def main(orders: int = 5000) -> None:
    clock = FrozenClock(datetime(2026, 3, 1, 12, tzinfo=UTC))
    started = time.perf_counter()
    sandbox = AmazonSandbox(seed=7, orders=orders, clock=clock, rate_limits=False)
    seeded = time.perf_counter() - started
    sandbox.start()
    latencies, total = [], 0
    with requests.Session() as http:
        for seller in sandbox.sellers:
            refresh = sandbox.issue_refresh_token(seller.seller_id)
            token = http.post(sandbox.lwa_token_url, data={
                "grant_type": "refresh_token", "refresh_token": refresh, "client_id": sandbox.client_id,
                "client_secret": sandbox.client_secret}, timeout=10).json()["access_token"]
            params = {"createdAfter": (clock.now() - timedelta(days=130)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                      "maxResultsPerPage": 100, "includedData": "FULFILLMENT,PROCEEDS,PACKAGES"}
            while True:
                t0 = time.perf_counter()
                body = http.get(sandbox.url + "/orders/2026-01-01/orders", params=params, timeout=30,
                                headers={"x-amz-access-token": token}).json()
                latencies.append(time.perf_counter() - t0)
                total += len(body["orders"])
                token_next = body.get("pagination", {}).get("nextToken")
                if not token_next:
                    break
                params = {"paginationToken": token_next, "includedData": params["includedData"]}
    sandbox.stop()
    elapsed = sum(latencies)
    print(f"seeded {orders} orders in {seeded:.2f} s")
    print(f"paged {total} orders in {len(latencies)} pages: {elapsed:.2f} s, {total / elapsed:.0f} orders/s")
    print(f"page latency p50 {statistics.median(latencies) * 1000:.1f} ms, "
          f"p95 {statistics.quantiles(latencies, n=20)[18] * 1000:.1f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
