"""The 10,000-order sandbox store: a full sync leaves exactly the sandbox's data, a second run writes nothing.

Marked slow (about 30-50 s on a shared 2-core machine); still part of CI.
"""

from __future__ import annotations

import time

import pytest

from tests.conftest import wipe
from tests.shopify_sync_harness import assert_mirrors, make_harness
from tests.test_sync_shopify import freeze_updated_at, moved


@pytest.mark.slow
def test_backfill_of_ten_thousand_orders(database, tmp_path):
    h = make_harness(database, tmp_path, customers=2000, orders=10000)
    try:
        started = time.perf_counter()
        result = h.sync()
        seconds = time.perf_counter() - started
        assert result["status"] == "ok"
        assert result["orders"]["records"] == 10000
        assert_mirrors(database, h.store_id, h.sandbox)
        freeze_updated_at(database)
        h.clock.advance(hours=1)
        again = h.sync()
        assert [again[s]["written"] for s in ("products", "customers", "orders")] == [0, 0, 0]
        assert moved(database) == {"customer": 0, "product": 0, "variant": 0, "orders": 0}
        print(f"10,000-order backfill: {seconds:.1f} s")  # noqa: T201 - shown with -s
    finally:
        h.stop()
        wipe(database.engine)
