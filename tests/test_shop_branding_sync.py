"""The shop's billing address and the products' featured images come from Shopify (the sandbox, over real HTTP).

The install (token exchange) and every sync read ``shop.billingAddress`` into the store's postal address unless
the merchant set one; a shop without a usable address leaves none (marketing waits, the admin says so). The
products sync keeps each product's featured image and its alt text, on the bulk backfill and incremental runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from base.clock import FrozenClock
from plugin.models import Product, Store
from tests.conftest import wipe
from tests.shopify_app_env import TIMEOUT, shopify_env
from tests.shopify_sync_harness import make_harness

# The sandbox's seeded billing address (sandbox/shopify/seed.py), as Shopify formats a US address.
SEEDED_ADDRESS = "100 Main Street, Suite 4, Springfield IL 62701, United States"


def _store(env_or_db, store_id: int | None = None) -> Store:
    database = env_or_db.app.extensions["aftercare.db"] if hasattr(env_or_db, "app") else env_or_db
    with database.session() as session:
        if store_id is None:
            return session.scalar(select(Store))
        return session.get(Store, store_id)


def test_install_takes_the_shops_billing_address(database_url: str, tmp_path: Path, clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        store_id = env.install()
        store = _store(env, store_id)
        assert (store.postal_address, store.postal_address_edited) == (SEEDED_ADDRESS, False)


def test_a_shop_without_an_address_leaves_none_and_the_admin_says_so(database_url: str, tmp_path: Path,
                                                                     clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        # Only the country is filled in: nothing a letter could be sent to.
        env.sandbox.set_billing_address(address1=None, address2=None, city=None, province_code=None, zip=None)
        store_id = env.install()
        assert _store(env, store_id).postal_address is None
        page = requests.get(f"{env.url}/admin/", params={"shop": env.shop}, timeout=TIMEOUT,
                            headers={"Authorization": f"Bearer {env.session_token()}"})
        assert page.status_code == 200
        assert page.text.count('data-banner="no-postal-address"') == 1
        assert "Marketing emails are paused for" in page.text


@pytest.fixture
def harness(database, tmp_path):
    h = make_harness(database, tmp_path, customers=6, orders=12)
    yield h
    h.stop()
    wipe(database.engine)


def test_every_sync_takes_the_billing_address_until_the_merchant_sets_one(harness, database) -> None:
    assert harness.sync()["status"] == "ok"
    assert _store(database, harness.store_id).postal_address == SEEDED_ADDRESS

    harness.sandbox.set_billing_address(company="Sync Test Inc.", address1="7 Harbour Road", address2=None)
    harness.sync()
    assert _store(database, harness.store_id).postal_address == \
        "Sync Test Inc., 7 Harbour Road, Springfield IL 62701, United States"

    with database.session() as session:
        store = session.get(Store, harness.store_id)
        store.postal_address, store.postal_address_edited = "PO Box 12, Springfield IL 62705, United States", True
    harness.sandbox.set_billing_address(address1="9 Other Street")
    harness.sync()
    assert _store(database, harness.store_id).postal_address == "PO Box 12, Springfield IL 62705, United States"


def test_products_keep_their_featured_image_through_bulk_and_incremental_syncs(harness, database) -> None:
    products = harness.sandbox.store.products
    assert harness.sync()["products"]["mode_bulk"] == 1
    with database.session() as session:
        stored = {p.external_id: (p.image_url, p.image_alt) for p in session.scalars(select(Product))}
    assert stored == {str(p.id): (f"https://cdn.shopify.com/s/files/1/0000/0001/files/{p.handle}.jpg",
                                  f"{p.title}, product photo") for p in products}

    first, second = products[0], products[1]
    harness.clock.advance(minutes=5)
    harness.sandbox.set_product_image(first.id, "https://cdn.shopify.com/s/files/1/0000/0001/files/new.png", None)
    harness.sandbox.set_product_image(second.id, None)
    harness.clock.advance(minutes=1)
    assert harness.sync()["products"]["mode_bulk"] == 0
    with database.session() as session:
        rows = {p.external_id: (p.image_url, p.image_alt) for p in session.scalars(select(Product))}
    assert rows[str(first.id)] == ("https://cdn.shopify.com/s/files/1/0000/0001/files/new.png", None)
    assert rows[str(second.id)] == (None, None)
    assert rows[str(products[2].id)] == stored[str(products[2].id)]
