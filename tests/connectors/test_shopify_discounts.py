"""Single-use discount codes through discountCodeBasicCreate against the sandbox over real HTTP."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from base.clock import FrozenClock
from connectors.shopify.client import ShopifyClient
from connectors.shopify.discounts import create_discount_code, create_free_shipping_code
from connectors.shopify.errors import ShopifyUserError
from sandbox.shopify import ShopifySandbox

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def shop():
    clock = FrozenClock(NOW)
    sb = ShopifySandbox(seed=3, customers=5, orders=5, clock=clock)
    sb.start()
    sb.register_app("discount-app", "secret", ["read_customers", "write_discounts", "read_discounts"])
    token = sb.install("discount-app")["access_token"]
    client = ShopifyClient(sb.shop_domains[0], token, base_url=sb.url, clock=clock,
                           sleep=lambda s: clock.advance(seconds=s), rng=random.Random(0))
    yield sb, client
    sb.stop()


def test_percentage_code_is_single_use_for_one_customer(shop):
    sb, client = shop
    customer = sb.store.customers[0]
    created = create_discount_code(client, "AFTER-7-ABC", customer_external_id=str(customer.id), percent=10,
                                   starts_at=NOW, ends_at=NOW + timedelta(days=14), title="Reorder 10%")
    assert created.code == "AFTER-7-ABC" and created.usage_limit == 1 and created.title == "Reorder 10%"
    stored = next(d for d in sb.shop_state().discounts.values() if d.code == "AFTER-7-ABC")
    assert (stored.usage_limit, stored.applies_once_per_customer, stored.percentage, stored.amount_cents) == (
        1, True, 0.1, None)
    assert stored.customer_ids == (f"gid://shopify/Customer/{customer.id}",)
    assert (stored.starts_at, stored.ends_at) == (NOW, NOW + timedelta(days=14))
    assert created.id == f"gid://shopify/DiscountCodeNode/{stored.id}"


def test_amount_code_and_a_taken_code(shop):
    sb, client = shop
    customer = sb.store.customers[1]
    create_discount_code(client, "BACK5", customer_external_id=str(customer.id), amount=Decimal("5.00"),
                         starts_at=NOW)
    stored = next(d for d in sb.shop_state().discounts.values() if d.code == "BACK5")
    assert (stored.amount_cents, stored.percentage) == (500, None)
    with pytest.raises(ShopifyUserError) as info:
        create_discount_code(client, "back5", customer_external_id=str(customer.id), percent=5, starts_at=NOW)
    assert info.value.codes == {"TAKEN"}
    assert len(sb.shop_state().discounts) == 1


def test_bad_arguments_are_refused_before_any_call(shop):
    _sb, client = shop
    for kwargs in ({}, {"percent": 10, "amount": Decimal("1")}, {"percent": 0}, {"percent": 150},
                   {"amount": Decimal("-1")}):
        with pytest.raises(ValueError):
            create_discount_code(client, "X", customer_external_id="1", starts_at=NOW, **kwargs)
    assert client.stats.calls == 0


def test_free_shipping_code_is_single_use_for_one_customer_and_a_retry_is_taken(shop):
    sb, client = shop
    customer = sb.store.customers[2]
    created = create_free_shipping_code(client, "VIP-SHIP-ABC", customer_external_id=str(customer.id),
                                        starts_at=NOW, ends_at=NOW + timedelta(days=60), title="VIP free shipping")
    assert (created.code, created.usage_limit, created.title) == ("VIP-SHIP-ABC", 1, "VIP free shipping")
    (stored,) = sb.shop_state().discounts.values()
    assert (stored.free_shipping, stored.countries, stored.usage_limit, stored.applies_once_per_customer,
            stored.customer_ids, stored.starts_at, stored.ends_at, stored.percentage, stored.amount_cents) == (
        True, None, 1, True, (f"gid://shopify/Customer/{customer.id}",), NOW, NOW + timedelta(days=60), None, None)
    assert created.id == f"gid://shopify/DiscountCodeNode/{stored.id}"
    with pytest.raises(ShopifyUserError) as info:
        create_free_shipping_code(client, "VIP-SHIP-ABC", customer_external_id=str(customer.id), starts_at=NOW)
    assert info.value.codes == {"TAKEN"} and len(sb.shop_state().discounts) == 1
    create_free_shipping_code(client, "VIP-SHIP-DE", customer_external_id=str(customer.id), starts_at=NOW,
                              countries=["de", "AT"], maximum_shipping_price=Decimal("15"))
    stored = next(d for d in sb.shop_state().discounts.values() if d.code == "VIP-SHIP-DE")
    assert (stored.countries, stored.maximum_shipping_cents) == (("DE", "AT"), 1500)
    with pytest.raises(ValueError):
        create_free_shipping_code(client, "X", customer_external_id=str(customer.id), starts_at=NOW, countries=[])
