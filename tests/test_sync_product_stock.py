"""Product stock lands with the product sync: Shopify's totalInventory and tracksInventory, as the sandbox
serves them (the recommendations never name a product that is out of stock)."""

from __future__ import annotations

from sqlalchemy import select

from plugin.models import Product
from tests.conftest import wipe
from tests.shopify_sync_harness import make_harness


def test_total_inventory_and_tracking_are_synced(database, tmp_path):
    harness = make_harness(database, tmp_path, customers=5, orders=5)
    try:
        remote = harness.sandbox.store.products
        remote[0].tracks_inventory = False
        for variant in remote[1].variants:
            variant.inventory_quantity = 0
        harness.sync(full=True)
        expected = {str(p.id): (sum(v.inventory_quantity for v in p.variants), p.tracks_inventory) for p in remote}
        with database.session() as s:
            got = {p.external_id: (p.total_inventory, p.tracks_inventory) for p in s.scalars(select(Product))}
        assert got == expected
        assert got[str(remote[1].id)][0] == 0 and got[str(remote[0].id)][1] is False
    finally:
        harness.stop()
        wipe(database.engine)
