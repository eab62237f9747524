"""The sync job pulls a store's Judge.me reviews (Judge.me sandbox over real HTTP) into review rows linked to the
products, customers and orders that the Shopify sync stored."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import aliased

from plugin.config import load_config
from plugin.models import Customer, Order, OrderLine, Product, Review, Store, SyncState
from plugin.secrets_store import set_credential
from plugin.sync.judgeme_run import sync_judgeme_reviews
from sandbox.judgeme import JudgemeSandbox
from tests.conftest import test_settings, wipe
from tests.shopify_sync_harness import CLIENT_ID, make_harness

JUDGEME_TOKEN = "judgeme-private-token-test"  # noqa: S105 - sandbox credential


@pytest.fixture
def stores(database, tmp_path):
    """A synced Shopify sandbox store and a Judge.me sandbox seeded with its products and buyers."""
    h = make_harness(database, tmp_path, customers=25, orders=80)
    h.sync()
    shop = h.sandbox.shop_domains[0]
    store = h.sandbox.store
    customers = store.customers_by_id
    orders = [{"id": o.id, "email": customers[o.customer_id].email, "name": customers[o.customer_id].first_name,
               "customer_id": o.customer_id, "product_ids": sorted({li.product_id for li in o.line_items})}
              for o in store.orders if o.customer_id]
    judgeme = JudgemeSandbox(seed=4, shops={shop: JUDGEME_TOKEN}, clock=h.clock, reviews_per_product=2,
                             products=[{"id": p.id, "handle": p.handle, "title": p.title} for p in store.products],
                             orders=orders)
    judgeme.start()
    config = load_config(test_settings(database.url, tmp_path / "instance",
                                       shopify={"client_id": CLIENT_ID, "admin_base_url": h.sandbox.url},
                                       judgeme={"base_url": judgeme.url}), environ={})
    h.ctx = dataclasses.replace(h.ctx, config=config)
    with database.session() as session:
        set_credential(session.get(Store, h.store_id), h.ctx.vault, "review_app_token_enc", JUDGEME_TOKEN)
    yield h, judgeme
    judgeme.stop()
    h.stop()
    wipe(database.engine)


def test_reviews_land_linked_and_a_rerun_adds_nothing(stores, database):
    h, judgeme = stores
    shop = h.sandbox.shop_domains[0]
    seeded = judgeme.reviews(shop)
    counts = sync_judgeme_reviews(h.ctx, h.store_id)
    assert counts == {"records": len(seeded), "new": len(seeded)}
    buyer, product, placed = aliased(Customer), aliased(Product), aliased(Order)
    with database.session() as session:
        rows = {r[0]: tuple(r[1:]) for r in session.execute(
            select(Review.external_id, Review.rating, Review.title, Review.body, product.external_id,
                   buyer.external_id, placed.id, Review.source)
            .outerjoin(product, product.id == Review.product_id).outerjoin(buyer, buyer.id == Review.customer_id)
            .outerjoin(placed, placed.id == Review.order_id))}
        expected = {str(r.id): (r.rating, r.title or None, r.body, str(r.product.external_id),
                                str(r.reviewer.external_id)) for r in seeded}
        assert {k: v[:5] for k, v in rows.items()} == expected
        assert {v[6] for v in rows.values()} == {"judgeme"}
        # Judge.me does not say which order a review is about: the reviewer's latest order of that product
        # placed before the review is linked, and only such an order.
        linked = 0
        for external_id, row in rows.items():
            order_id = row[5]
            review = next(r for r in seeded if str(r.id) == external_id)
            if order_id is None:
                continue
            linked += 1
            order = session.get(Order, order_id)
            products = set(session.scalars(select(Product.external_id).join(OrderLine, OrderLine.product_id ==
                                                                            Product.id)
                                           .where(OrderLine.order_id == order_id)))
            assert session.get(Customer, order.customer_id).external_id == str(review.reviewer.external_id)
            assert str(review.product.external_id) in products
            assert order.created_at_remote <= review.created_at
        assert linked > 0
        session.execute(update(Review).values(reply_body="Thanks", reply_status="sent"))
        cursor = session.scalar(select(SyncState.cursor).where(SyncState.stream == "judgeme_reviews"))
    assert cursor is not None

    again = sync_judgeme_reviews(h.ctx, h.store_id)
    assert again["new"] == 0
    customer = h.sandbox.store.customers[0]
    h.clock.advance(hours=1)
    fresh = judgeme.add_review(shop, product_id=h.sandbox.store.products[0].id, email=customer.email,
                               name=customer.first_name, rating=2, body="Arrived damaged", customer_id=customer.id)
    third = sync_judgeme_reviews(h.ctx, h.store_id)
    assert third["new"] == 1
    with database.session() as session:
        assert session.scalar(select(Review.rating).where(Review.external_id == str(fresh.id))) == 2
        assert set(session.scalars(select(Review.reply_status).where(Review.external_id != str(fresh.id)))) == {
            "sent"}


def test_sync_store_includes_reviews_when_the_store_has_a_token(stores, database):
    h, judgeme = stores
    result = h.sync()
    assert result["status"] == "ok"
    assert result["reviews"]["new"] == len(judgeme.reviews(h.sandbox.shop_domains[0]))
