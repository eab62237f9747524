"""REST webhook bodies and GraphQL sync nodes of the same sandbox objects map to equal records."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from base.clock import FrozenClock
from connectors.records import OrderRecord
from connectors.shopify import webhook_payloads as payloads
from connectors.shopify.client import ShopifyClient
from connectors.shopify.streams import CustomersStream, OrdersStream
from sandbox.shopify import ShopifySandbox
from sandbox.shopify.payloads import PayloadBuilder

CLIENT_ID, SECRET = "mapper-test-client", "mapper-test-secret-0123456789abcdef"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[ShopifySandbox, ShopifyClient]]:
    """Serve a seeded sandbox with an installed app; yield it and a GraphQL client for the shop."""
    clock = FrozenClock(NOW)
    box = ShopifySandbox(seed=5, customers=30, orders=160, clock=clock)
    box.register_app(CLIENT_ID, SECRET, ["read_orders", "read_all_orders", "read_customers", "read_products"])
    token = box.install(CLIENT_ID)["access_token"]
    box.refund_order(box.store.orders[-1].id, amount_cents=150, note="Partial refund")
    # Bought in EUR at the USD shop: one partly refunded (twice), one cancelled (refunded in full).
    buyer, variant = box.store.customers[0], box.store.products[0].variants[0]
    for rate in ("0.85", "1.0937"):
        euro = box.add_order(buyer.id, [(variant.id, 3)], presentment_currency="EUR", presentment_rate=rate)
        box.refund_order(euro.id, amount_cents=333)
        box.refund_order(euro.id, amount_cents=101)
        box.cancel_order(box.add_order(buyer.id, [(variant.id, 1)], presentment_currency="EUR",
                                       presentment_rate=rate).id)
    server = box.start()
    # Waiting for the cost bucket to refill moves the shared clock instead of sleeping.
    client = ShopifyClient(box.store.shop.domain, token, base_url=server.url, clock=clock,
                           sleep=lambda seconds: clock.advance(seconds=seconds))
    yield box, client
    box.stop()


# What 2025-01 customer payloads in webhooks do not carry, at the record's defaults.
CUSTOMER_BLIND = {"time_zone": None, "marketing_consent": False, "marketing_consent_at": None, "tags": ()}


def _rest_blind(record: OrderRecord) -> OrderRecord:
    """Blank what REST order bodies do not carry (the processor keeps the stored values for these)."""
    customer = record.customer
    if customer is not None:
        customer = dataclasses.replace(customer, **CUSTOMER_BLIND)
    # REST fulfilments carry no carrier estimate either.
    fulfillments = tuple(dataclasses.replace(f, estimated_delivery_at=None) for f in record.fulfillments or ())
    return dataclasses.replace(record, estimated_delivery_at=None, returned=False, customer=customer,
                               fulfillments=fulfillments if record.fulfillments is not None else None)


def test_every_order_maps_to_the_same_record_from_both_apis(sandbox) -> None:
    box, client = sandbox
    builder = PayloadBuilder(box.store, protected_access=True)
    orders = box.store.orders
    from_graphql = {r.external_id: r for r in OrdersStream(client).fetch([o.gid for o in orders])}
    assert len(from_graphql) == len(orders)
    kinds = {"cancelled": 0, "refunded": 0, "delivered": 0, "multi_line": 0, "partial_refund": 0,
             "multi_currency_refund": 0}
    for order in orders:
        from_webhook = payloads.order_record(builder.order(order))
        assert from_webhook == _rest_blind(from_graphql[str(order.id)]), order.id
        kinds["cancelled"] += from_webhook.cancelled_at is not None
        kinds["refunded"] += from_webhook.refunded
        kinds["partial_refund"] += from_webhook.financial_status == "PARTIALLY_REFUNDED"
        kinds["delivered"] += from_webhook.delivered_at is not None
        kinds["multi_line"] += len(from_webhook.lines) > 1
        if order.presentment_currency is not None:
            # Shop money, worked out from the sandbox's own cents, whatever the EUR transactions say.
            assert from_webhook.total_refunded == Decimal(order.refunded_cents) / 100
            assert from_webhook.total_price == Decimal(order.total_cents) / 100
            kinds["multi_currency_refund"] += from_webhook.total_refunded > 0
    # The seeded orders cover the cases that matter.
    assert all(count > 0 for count in kinds.values()), kinds


def test_customers_update_maps_like_the_customer_stream(sandbox) -> None:
    box, client = sandbox
    builder = PayloadBuilder(box.store, protected_access=True)
    stream = {r.external_id: r for r in CustomersStream(client).read()}
    assert len(stream) == len(box.store.customers)
    for customer in box.store.customers:
        from_webhook = payloads.customer_record(builder.customer(customer))
        expected = dataclasses.replace(stream[str(customer.id)], locale=None, **CUSTOMER_BLIND)
        assert from_webhook == expected
    assert set(CUSTOMER_BLIND) | {"locale", "birthday"} == set(payloads.REST_UNKNOWN_CUSTOMER_FIELDS)


def test_email_consent_topic_maps_like_the_customer_stream(sandbox) -> None:
    box, client = sandbox
    builder = PayloadBuilder(box.store, protected_access=True)
    stream = {r.external_id: r for r in CustomersStream(client).read()}
    states = set()
    for customer in box.store.customers:
        update = payloads.email_consent_update(builder.email_marketing_consent(customer))
        synced = stream[str(customer.id)]
        assert update.customer_id == synced.external_id
        assert update.subscribed is synced.marketing_consent
        assert update.state == customer.marketing_state.lower()
        assert update.consent_updated_at == customer.consent_updated_at
        assert update.consent_updated_at == synced.marketing_consent_at
        states.add(update.state)
    assert {"subscribed", "not_subscribed"} <= states, states


@pytest.mark.parametrize(("state", "subscribed"), [("subscribed", True), ("SUBSCRIBED", True), ("pending", False),
                                                   ("unsubscribed", False), ("not_subscribed", False),
                                                   ("redacted", False), ("invalid", False), (None, False)])
def test_only_subscribed_is_consent(state: str | None, subscribed: bool) -> None:
    body = {"customer_id": 706405506930370084, "email_address": "bob@biller.com",
            "email_marketing_consent": {"state": state, "opt_in_level": None, "consent_updated_at": None}}
    update = payloads.email_consent_update(body)
    assert (update.customer_id, update.subscribed, update.consent_updated_at) == ("706405506930370084", subscribed,
                                                                                  None)


@pytest.mark.parametrize("body", [{"email_marketing_consent": {"state": "subscribed"}},
                                  {"customer_id": 1}, {"customer_id": 1, "email_marketing_consent": "subscribed"}])
def test_malformed_email_consent_bodies_are_payload_errors(body: dict) -> None:
    with pytest.raises(payloads.PayloadError):
        payloads.email_consent_update(body)


def test_rest_specific_shapes() -> None:
    body = {
        "id": 820982911946154500, "admin_graphql_api_id": "gid://shopify/Order/820982911946154500",
        "created_at": "2026-02-27T09:15:00-05:00", "updated_at": "2026-02-28T10:00:00+01:00",
        "processed_at": None, "currency": "EUR", "total_price": "59.90", "subtotal_price": "49.90",
        "financial_status": "partially_refunded", "fulfillment_status": "partial", "tags": " gift,  vip ,",
        "name": "#1042", "customer": None, "cancelled_at": None,
        "refunds": [{"transactions": [{"kind": "refund", "status": "success", "amount": "10.00"},
                                      {"kind": "refund", "status": "failure", "amount": "49.90"}]}],
        "fulfillments": [
            {"id": 71, "status": "success", "created_at": "2026-02-28T08:00:00Z",
             "updated_at": "2026-03-01T08:00:00Z", "shipment_status": "delivered"},
            {"id": 70, "status": "cancelled", "created_at": "2026-02-27T20:00:00Z",
             "updated_at": "2026-02-27T21:00:00Z", "shipment_status": None}],
        "line_items": [{"id": 1, "quantity": 2, "price": "24.95", "title": "Tea", "sku": "", "product_id": None,
                        "variant_id": 5}],
    }
    record = payloads.order_record(body)
    assert record.external_id == "820982911946154500"
    assert record.created_at == datetime(2026, 2, 27, 14, 15, tzinfo=UTC)
    assert record.updated_at == datetime(2026, 2, 28, 9, 0, tzinfo=UTC)
    assert (record.total_price, record.subtotal_price, record.total_refunded) == (
        Decimal("59.90"), Decimal("49.90"), Decimal("10.00"))
    assert (record.financial_status, record.fulfillment_status, record.refunded) == (
        "PARTIALLY_REFUNDED", "PARTIALLY_FULFILLED", False)
    assert record.tags == ("gift", "vip")
    assert record.fulfilled_at == datetime(2026, 2, 28, 8, 0, tzinfo=UTC)
    assert record.delivered_at == datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    assert record.lines[0] == payloads.OrderLineRecord(external_id="1", quantity=2, price=Decimal("24.95"),
                                                       title="Tea", sku=None, product_external_id=None,
                                                       variant_external_id="5")
    with pytest.raises(payloads.PayloadError, match="created_at"):
        payloads.order_record({**body, "created_at": None})
    with pytest.raises(payloads.PayloadError, match="invalid amount"):
        payloads.order_record({**body, "total_price": "12,00"})


def _bag(shop: str, presentment: str) -> dict:
    return {"shop_money": {"amount": shop, "currency_code": "USD"},
            "presentment_money": {"amount": presentment, "currency_code": "EUR"}}


def _transaction(amount: str, status: str = "success", currency: str = "EUR") -> dict:
    return {"kind": "refund", "status": status, "amount": amount, "currency": currency}


# A refund of one line (20.00 USD + 1.60 tax = 18.00 + 1.44 EUR) and 5.00 USD (4.50 EUR) of shipping, as an
# order at a USD shop bought in EUR has it (https://shopify.dev/docs/api/admin-rest/2025-01/resources/refund).
LINE_AND_SHIPPING = {
    "id": 509562969, "order_id": 450789469, "created_at": "2026-03-01T10:00:00-05:00",
    "refund_line_items": [{"id": 1, "line_item_id": 2, "quantity": 1, "subtotal": 20.0, "total_tax": 1.6,
                           "subtotal_set": _bag("20.00", "18.00"), "total_tax_set": _bag("1.60", "1.44")}],
    "refund_shipping_lines": [{"id": 3, "subtotal_amount_set": _bag("5.00", "4.50")}],
    "order_adjustments": [{"id": 4, "kind": "shipping_refund", "amount": "-5.00", "amount_set": _bag("-5.00", "-4.50"),
                           "tax_amount_set": _bag("0.00", "0.00")}],
    "total_duties_set": _bag("0.00", "0.00"),
    "transactions": [_transaction("23.94"), _transaction("23.94", status="failure")],
}


def test_a_refund_in_the_buyers_currency_counts_in_shop_money() -> None:
    assert payloads.refund_created(LINE_AND_SHIPPING) == ("450789469", Decimal("26.60"))
    # Only the shipping adjustment (no refund_shipping_lines): the same shipping, counted once.
    older = {**LINE_AND_SHIPPING, "refund_shipping_lines": []}
    assert payloads.refund_created(older)[1] == Decimal("26.60")
    # An amount refunded beyond the lines is a negative discrepancy adjustment.
    extra = {**LINE_AND_SHIPPING, "order_adjustments": [
        {"id": 5, "kind": "refund_discrepancy", "amount": "-2.00", "amount_set": _bag("-2.00", "-1.80")}],
        "transactions": [_transaction("25.74")]}
    assert payloads.refund_created(extra)[1] == Decimal("28.60")
    # Only part of the money went back (10.00 of 23.94 EUR): the parts' own rate converts it.
    part = {**LINE_AND_SHIPPING, "transactions": [_transaction("10.00")]}
    assert payloads.refund_created(part)[1] == (Decimal("10.00") * Decimal("26.60") / Decimal("23.94")).quantize(
        Decimal("0.01"))
    # A single-currency refund is its transactions, as before.
    same = {**LINE_AND_SHIPPING, "transactions": [_transaction("26.60", currency="USD")]}
    assert payloads.refund_created(same)[1] == Decimal("26.60")
    # No money moved: nothing refunded, whatever the lines say.
    assert payloads.refund_created({**LINE_AND_SHIPPING, "transactions": []})[1] == Decimal("0")
    with pytest.raises(payloads.PayloadError, match="without shop-money amounts"):
        payloads.refund_created({"order_id": 1, "transactions": [_transaction("5.00")],
                                 "refund_line_items": [{"subtotal_set": _bag("0.00", "0.00")}]})


@pytest.mark.parametrize("body", [[], "text", {"order_id": 1, "transactions": "x"},
                                  {"order_id": 1, "transactions": [{"kind": "refund", "status": "success",
                                                                    "amount": "ten"}]}])
def test_malformed_refund_bodies_are_payload_errors(body) -> None:
    with pytest.raises(payloads.PayloadError):
        payloads.refund_created(body)
