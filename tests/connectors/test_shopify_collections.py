"""The shop's collections over real HTTP from the sandbox: every collection and every product in each, in the
merchant's order, whatever the page sizes (outer pages and a collection's later product pages both read to the end),
and the Product.collections side agreeing with Collection.products."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from base.clock import FrozenClock
from connectors.shopify.client import ShopifyClient
from connectors.shopify.collections import CollectionRecord, fetch_collections
from sandbox.shopify import ShopifySandbox

CLIENT_ID = "collections-test-app"


@pytest.fixture
def sandbox() -> Iterator[tuple[ShopifySandbox, ShopifyClient]]:
    clock = FrozenClock(datetime(2026, 3, 2, 12, 0, tzinfo=UTC))
    sb = ShopifySandbox(seed=9, customers=5, orders=5, clock=clock)
    sb.start()
    sb.register_app(CLIENT_ID, "secret", ["read_products"])
    token = sb.install(CLIENT_ID)["access_token"]
    client = ShopifyClient(sb.shop_domains[0], token, base_url=sb.url, clock=clock,
                           sleep=lambda s: clock.advance(seconds=s), rng=random.Random(2))
    yield sb, client
    sb.stop()


@pytest.mark.parametrize(("page", "products_page"), [(5, 100), (1, 1), (3, 2)])
def test_every_collection_and_every_product_in_it_whatever_the_page_sizes(sandbox, page, products_page):
    sb, client = sandbox
    # One collection with every product, so a small product page needs several later pages.
    everything = sorted(p.id for p in sb.store.products)
    sb.set_collection_products(sb.store.collections[-1].id, list(reversed(everything)))
    want = [CollectionRecord(external_id=str(c.id), title=c.title, handle=c.handle,
                             product_external_ids=tuple(str(p) for p in c.product_ids))
            for c in sorted(sb.store.collections, key=lambda c: c.id)]
    assert len(want) == 4 and want[-1].product_external_ids == tuple(str(p) for p in reversed(everything))
    assert fetch_collections(client, page=page, products_page=products_page) == want


def test_a_product_s_collections_are_the_collections_holding_it(sandbox):
    sb, client = sandbox
    kettle = next(p for p in sb.store.products if p.title == "Pour-Over Kettle")
    data = client.execute("query($id: ID!) { product(id: $id) { collections(first: 10) { nodes { title } } } }",
                          {"id": kettle.gid})
    assert [n["title"] for n in data["product"]["collections"]["nodes"]] == ["Coffee Corner", "Gift Ideas"]
