"""Review 4: a Judge.me review of a customer Shopify asked us to redact is not stored again by the next sync.

The Shopify sandbox (customers synced over HTTP) and the Judge.me sandbox (reviews over HTTP); the redaction is
the real compliance code, as the webhook job applies it.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import select

from plugin.config import load_config
from plugin.models import Customer, Review, Store
from plugin.secrets_store import set_credential
from plugin.sync.judgeme_run import sync_judgeme_reviews
from plugin.webhooks.compliance import redact_customer
from sandbox.judgeme import JudgemeSandbox
from tests.conftest import test_settings, wipe
from tests.shopify_sync_harness import CLIENT_ID, make_harness

TOKEN = "judgeme-private-token-review4"  # noqa: S105 - sandbox credential
WORDS = "Quetzal-Hernandez here: the lavender soap is lovely"


def test_review4_a_redacted_reviewers_review_is_not_refilled_by_the_next_sync(database, tmp_path) -> None:
    h = make_harness(database, tmp_path, customers=3, orders=4)
    judgeme = None
    try:
        h.sync()
        shop = h.sandbox.shop_domains[0]
        person = h.sandbox.store.customers[0]
        product = h.sandbox.store.products[0]
        judgeme = JudgemeSandbox(seed=4, shops={shop: TOKEN}, clock=h.clock, reviews_per_product=0,
                                 products=[{"id": p.id, "handle": p.handle, "title": p.title}
                                           for p in h.sandbox.store.products], orders=[])
        judgeme.start()
        config = load_config(test_settings(database.url, tmp_path / "instance",
                                           shopify={"client_id": CLIENT_ID, "admin_base_url": h.sandbox.url},
                                           judgeme={"base_url": judgeme.url}), environ={})
        h.ctx = dataclasses.replace(h.ctx, config=config)
        with database.session() as s:
            set_credential(s.get(Store, h.store_id), h.ctx.vault, "review_app_token_enc", TOKEN)
        judgeme.add_review(shop, product_id=product.id, email=person.email, name="Kim Quetzal-Hernandez", rating=5,
                           title="Quetzal-Hernandez loves it", body=WORDS, customer_id=person.id)
        assert sync_judgeme_reviews(h.ctx, h.store_id)["new"] == 1
        with database.session() as s:
            store = s.get(Store, h.store_id)
            linked = s.scalar(select(Review.customer_id))
            assert linked == s.scalar(select(Customer.id).where(Customer.external_id == str(person.id)))
            redact_customer(s, store, store.external_id, {"customer": {"id": person.id, "email": person.email},
                                                          "orders_to_redact": []}, h.clock.now())
        h.clock.advance(minutes=1)
        sync_judgeme_reviews(h.ctx, h.store_id)  # re-reads the last minutes (its overlap): the review comes again
        with database.session() as s:
            (row,) = s.execute(select(Review.title, Review.body, Review.reviewer_name, Review.rating)).all()
        assert tuple(row) == (None, None, None, 5)
    finally:
        if judgeme is not None:
            judgeme.stop()
        h.stop()
        wipe(database.engine)
