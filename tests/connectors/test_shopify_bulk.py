"""Bulk operations over real HTTP: children reassembled by ``__parentId`` whatever their position, a dropped
download resumed without reading a line twice, late children repaired by refetching their parent, and a bulk
operation already in progress waited out."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import requests

from base.clock import FrozenClock
from connectors.shopify import queries
from connectors.shopify.bulk import JsonlReader
from connectors.shopify.client import ShopifyClient
from connectors.shopify.streams import OrdersStream
from sandbox.server import ServerThread
from sandbox.shopify import ShopifySandbox
from sandbox.shopify.models import money

CLIENT_ID = "bulk-test-app"


class FileServer:
    """Serve one JSONL body; the first ``drops`` answers promise the whole body but stop halfway."""

    def __init__(self, lines: list[dict], drops: int = 0):
        self.body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
        self.drops = drops
        self.requests = 0

    def __call__(self, environ, start_response):
        self.requests += 1
        start_response("200 OK", [("Content-Type", "application/jsonl"), ("Content-Length", str(len(self.body)))])
        if self.requests <= self.drops:
            return [self.body[: len(self.body) // 2]]  # the server closes the connection short of Content-Length
        return [self.body]


@pytest.fixture
def serve() -> Iterator:
    servers: list[ServerThread] = []

    def start(app) -> str:
        server = ServerThread(app).start()
        servers.append(server)
        return f"{server.url}/bulk.jsonl"

    yield start
    for server in servers:
        server.stop()


def order(n: int) -> dict:
    return {"id": f"gid://shopify/Order/{n}", "name": f"#{n}"}


def item(n: int, parent: int) -> dict:
    return {"id": f"gid://shopify/LineItem/{n}", "__parentId": f"gid://shopify/Order/{parent}"}


def collect(reader: JsonlReader) -> dict[str, list[str]]:
    return {obj.node["id"].rsplit("/", 1)[1]: [c["id"].rsplit("/", 1)[1] for c in obj.children] for obj in reader}


def test_children_join_their_parent_wherever_they_appear(serve):
    lines = [item(11, 1), order(1), item(12, 1), order(2), item(21, 2), item(13, 1), order(3)]
    reader = JsonlReader(serve(FileServer(lines)), window=10)
    assert collect(reader) == {"1": ["11", "12", "13"], "2": ["21"], "3": []}
    assert reader.late_parents == set()
    assert reader.lines_read == len(lines)


def test_a_child_after_its_parent_left_the_window_is_reported_not_lost(serve):
    lines = [order(1), item(11, 1), order(2), order(3), order(4), item(12, 1), item(41, 4)]
    reader = JsonlReader(serve(FileServer(lines)), window=2)
    assert collect(reader) == {"1": ["11"], "2": [], "3": [], "4": ["41"]}
    assert reader.late_parents == {"gid://shopify/Order/1"}


def test_a_dropped_download_resumes_without_reading_a_line_twice(serve):
    lines = [order(n) for n in range(1, 41)] + [item(100 + n, n) for n in range(1, 41)]
    server = FileServer(lines, drops=2)
    waits: list[float] = []
    reader = JsonlReader(serve(server), window=100, sleep=waits.append)
    got = collect(reader)
    assert got == {str(n): [str(100 + n)] for n in range(1, 41)}
    assert server.requests == 3 and len(waits) == 2
    assert reader.lines_read == len(lines)


@pytest.fixture
def sandbox() -> Iterator[tuple[ShopifySandbox, ShopifyClient]]:
    clock = FrozenClock(datetime(2026, 3, 2, 12, 0, tzinfo=UTC))
    sb = ShopifySandbox(seed=9, customers=20, orders=60, clock=clock)
    sb.start()
    sb.register_app(CLIENT_ID, "secret", ["read_orders", "read_all_orders", "read_customers", "read_products"])
    token = sb.install(CLIENT_ID)["access_token"]
    client = ShopifyClient(sb.shop_domains[0], token, base_url=sb.url, clock=clock,
                           sleep=lambda s: clock.advance(seconds=s), rng=random.Random(2))
    yield sb, client
    sb.stop()


def test_late_children_are_repaired_by_refetching_the_parent(sandbox, serve):
    sb, client = sandbox
    stream = OrdersStream(client)
    result = stream.run_bulk(poll_interval=1.0)
    lines = [json.loads(raw) for raw in requests.get(result.url, timeout=10).text.splitlines()]
    multi = next(o for o in sb.store.orders if len(o.line_items) >= 2)
    late = next(line for line in lines if line["id"] == multi.line_items[-1].gid)
    lines.remove(late)
    lines.append(late)  # long after its order left a window of 5
    result.url = serve(FileServer(lines))
    records = list(stream.bulk_records(result, window=5))
    by_id: dict[str, list] = {}
    for record in records:
        by_id.setdefault(record.external_id, []).append(record)
    assert set(by_id) == {str(o.id) for o in sb.store.orders}
    # The incomplete copy comes first, the refetched complete one last: upserting in order ends complete.
    copies = by_id[str(multi.id)]
    assert len(copies) == 2
    assert len(copies[0].lines) == len(multi.line_items) - 1
    assert [(line.external_id, line.quantity, line.price) for line in copies[1].lines] == [
        (str(li.id), li.quantity, Decimal(money(li.unit_price_cents))) for li in multi.line_items]


def test_a_bulk_operation_already_running_is_waited_out(sandbox):
    sb, client = sandbox
    started = client.execute(queries.BULK_RUN, {"query": queries.bulk_customers()})["bulkOperationRunQuery"]
    assert started["userErrors"] == [] and started["bulkOperation"]["status"] == "CREATED"
    stream = OrdersStream(client)
    result = stream.run_bulk(poll_interval=1.0)
    assert result.id != started["bulkOperation"]["id"]
    records = list(stream.bulk_records(result))
    assert sorted(r.external_id for r in records) == sorted(str(o.id) for o in sb.store.orders)
    assert sum(len(r.lines) for r in records) == sum(len(o.line_items) for o in sb.store.orders)
