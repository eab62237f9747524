"""The seeded store: deterministic for a seed, exact sizes, and realistic in the ways the flows rely on."""

from __future__ import annotations

import statistics
import time
from collections import Counter, defaultdict
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from sandbox.shopify.seed import ShopSpec, generate_store
from tests.sandbox.shopify_support import NOW

SPEC = ShopSpec("seed-test.myshopify.com")


SEEDING_SECONDS: list[float] = []


@pytest.fixture(scope="module")
def store():
    started = time.perf_counter()
    generated = generate_store(SPEC, 42, 2000, 10000, NOW)
    SEEDING_SECONDS.append(time.perf_counter() - started)
    return generated


def test_ten_thousand_orders_in_a_few_seconds(store):
    # about 0.5 s on an idle core; the bound leaves room for a loaded CI machine
    assert SEEDING_SECONDS[0] < 10.0, f"10,000 orders took {SEEDING_SECONDS[0]:.1f}s"


def test_same_seed_same_store():
    a = generate_store(SPEC, 42, 300, 1500, NOW)
    b = generate_store(SPEC, 42, 300, 1500, NOW)
    assert (a.shop, a.customers, a.products, a.orders) == (b.shop, b.customers, b.products, b.orders)
    c = generate_store(SPEC, 43, 300, 1500, NOW)
    assert [o.created_at for o in c.orders] != [o.created_at for o in a.orders]
    assert [cu.locale for cu in c.customers] != [cu.locale for cu in a.customers]


def test_exact_sizes_and_unique_ids(store):
    assert len(store.customers) == 2000
    assert len(store.orders) == 10000
    ids = [c.id for c in store.customers] + [o.id for o in store.orders] + [p.id for p in store.products] + \
        [v.id for p in store.products for v in p.variants] + [li.id for o in store.orders for li in o.line_items]
    assert len(ids) == len(set(ids))
    assert [o.number for o in store.orders] == list(range(1001, 11001))
    assert len({v.sku for p in store.products for v in p.variants}) == sum(len(p.variants) for p in store.products)


def test_customers_have_locales_countries_time_zones_and_consent(store):
    locales = Counter(c.locale for c in store.customers)
    assert {"en", "de", "fr", "es", "it", "pt-BR", "ja", "zh-CN", "zh-TW", "ar"} <= set(locales)
    for c in store.customers:
        ZoneInfo(c.time_zone)  # a real IANA zone
        assert len(c.country) == 2
        if c.marketing_state == "SUBSCRIBED":
            assert c.consent_updated_at is not None and c.consent_updated_at >= c.created_at
        if c.marketing_state == "NOT_SUBSCRIBED":
            assert c.consent_updated_at is None
    states = Counter(c.marketing_state for c in store.customers)
    assert states["SUBSCRIBED"] > 0 and states["NOT_SUBSCRIBED"] > 0 and states["UNSUBSCRIBED"] > 0
    assert len({c.email for c in store.customers}) == len(store.customers)


def test_two_years_of_orders_up_to_now(store):
    assert min(o.created_at for o in store.orders) >= NOW - timedelta(days=730)
    assert max(o.created_at for o in store.orders) <= NOW
    assert max(o.updated_at for o in store.orders) <= NOW
    assert all(o.updated_at >= o.created_at for o in store.orders)
    assert sum(1 for o in store.orders if len(o.line_items) > 1) > 1000


def test_consumables_are_rebought_on_personal_cycles(store):
    products = {p.id: p for p in store.products}
    assert {p.days_of_supply for p in products.values() if p.consumable} >= {30, 45, 60}
    assert any(not p.consumable for p in products.values())
    ratios = []
    by_customer = defaultdict(list)
    for o in store.orders:
        by_customer[o.customer_id].append(o)
    for orders in by_customer.values():
        staple = orders[0].line_items[0]
        buys = [(o.created_at, li.quantity) for o in orders for li in o.line_items[:1]
                if li.product_id == staple.product_id]
        if len(buys) < 4:
            continue
        dos = products[staple.product_id].days_of_supply
        gaps = [(b[0] - a[0]).total_seconds() / 86400 / (a[1] * dos) for a, b in zip(buys, buys[1:], strict=False)]
        ratios.append(statistics.median(gaps))
    assert len(ratios) > 300
    within = sum(1 for r in ratios if 0.6 <= r <= 1.5)
    assert within / len(ratios) > 0.7  # most re-buy near their personal cycle; heavy buyers are compressed


def test_fulfilment_and_after_sale_events(store):
    fulfilled = [o for o in store.orders if o.fulfillments]
    delivered = [f for o in fulfilled for f in o.fulfillments if f.delivered_at]
    undated = [f for o in fulfilled for f in o.fulfillments if f.delivered_at is None]
    assert len(delivered) > 0.7 * len(fulfilled) and len(undated) > 0
    assert all(f.delivered_at <= NOW and f.delivered_at >= f.created_at for f in delivered)
    assert any(f.estimated_delivery_at is None for f in undated)
    cancelled = [o for o in store.orders if o.cancelled_at]
    assert cancelled and all(not o.fulfillments and o.financial_status == "REFUNDED" for o in cancelled)
    assert any(o.financial_status == "PARTIALLY_REFUNDED" for o in store.orders)
    assert any(o.returns and o.return_status == "RETURNED" for o in store.orders)
    assert any(o.fulfillment_status == "UNFULFILLED" and not o.cancelled_at for o in store.orders)
