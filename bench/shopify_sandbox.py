"""Shopify sandbox figures: seeding time and memory, a full bulk export, and paging throughput.

Run: .venv/bin/python bench/shopify_sandbox.py [--orders 100000] [--customers 20000]
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import requests

from base.clock import SystemClock
from sandbox.shopify import ShopifySandbox
from sandbox.shopify.seed import ShopSpec, generate_store

BULK = ("{ orders { edges { node { id name createdAt updatedAt customer { id } "
        "lineItems { edges { node { id sku quantity } } } } } } }")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=20_000)
    args = parser.parse_args()

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    store = generate_store(ShopSpec("bench.myshopify.com"), 42, args.customers, args.orders, SystemClock().now())
    seconds = time.perf_counter() - started
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) * 1024  # ru_maxrss is KiB
    lines = sum(len(o.line_items) for o in store.orders)
    print(f"seed: {len(store.orders)} orders ({lines} lines), {len(store.customers)} customers "
          f"in {seconds:.2f}s, peak RSS growth {peak / 2**20:.0f} MiB ({peak / len(store.orders):.0f} B/order)")

    sandbox = ShopifySandbox(seed=42, customers=args.customers, orders=args.orders, restore_rate=1e9)
    sandbox.register_app("bench", "bench-secret-0123456789abcdef0123", ["read_orders", "read_all_orders",
                                                                          "read_customers"])
    token = sandbox.install("bench")["access_token"]
    server = sandbox.start()
    url = f"{server.url}/admin/api/2025-01/graphql.json"
    headers = {"X-Shopify-Access-Token": token}
    try:
        started = time.perf_counter()
        run = requests.post(url, headers=headers, timeout=60, json={
            "query": "mutation($q: String!) { bulkOperationRunQuery(query: $q) { bulkOperation { id } } }",
            "variables": {"q": BULK}}).json()
        assert run["data"]["bulkOperationRunQuery"]["bulkOperation"], run
        status = {}
        while status.get("status") not in ("COMPLETED", "FAILED"):
            status = requests.post(url, headers=headers, timeout=600, json={
                "query": "{ currentBulkOperation { status objectCount fileSize url } }"}).json()[
                "data"]["currentBulkOperation"]
        body = requests.get(status["url"], timeout=600).content
        seconds = time.perf_counter() - started
        print(f"bulk: {status['objectCount']} objects, {int(status['fileSize']) / 2**20:.1f} MiB JSONL "
              f"in {seconds:.2f}s; first line {json.loads(body.splitlines()[0])['id']}")

        started = time.perf_counter()
        after, pages = None, 0
        while pages < 50:
            page = requests.post(url, headers=headers, timeout=60, json={
                "query": "query($a: String) { orders(first: 50, after: $a, sortKey: UPDATED_AT) { "
                         "pageInfo { hasNextPage endCursor } nodes { id updatedAt "
                         "lineItems(first: 5) { nodes { sku } } } } }", "variables": {"a": after}}).json()
            after = page["data"]["orders"]["pageInfo"]["endCursor"]
            pages += 1
        seconds = time.perf_counter() - started
        print(f"paging: {pages} pages of 50 orders in {seconds:.2f}s ({seconds / pages * 1000:.0f} ms/page)")
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
