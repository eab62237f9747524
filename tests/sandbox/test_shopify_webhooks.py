"""Webhooks: signed like Shopify, REST-shaped bodies, retries, and changes visible to incremental sync too."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from shopify_app.verify.webhook import verify_webhook_req

from tests.sandbox.shopify_support import CLIENT_ID, CLIENT_SECRET, SHOP, make_env, start_receiver

HEADERS = {"X-Shopify-Topic", "X-Shopify-Hmac-Sha256", "X-Shopify-Shop-Domain", "X-Shopify-Api-Version",
           "X-Shopify-Webhook-Id", "X-Shopify-Event-Id", "X-Shopify-Triggered-At"}


@pytest.fixture()
def setup():
    sleeps: list[float] = []
    receiver = start_receiver()
    for env in make_env(customers=20, orders=80, webhook_sleep=sleeps.append):
        env.sandbox.register_app(CLIENT_ID, CLIENT_SECRET, env.sandbox.app(CLIENT_ID).scopes,
                                 webhook_url=receiver.url)
        yield env, receiver, sleeps
    receiver.server.stop()


def _verify(request):
    result = verify_webhook_req({"method": "POST", "headers": request["headers"], "url": "https://app/webhooks",
                                 "body": request["body"].decode()}, {"client_id": CLIENT_ID,
                                                                     "client_secret": CLIENT_SECRET})
    return result.ok


def test_consent_change_arrives_signed_and_by_incremental_sync(setup):
    env, receiver, _ = setup
    customer = next(c for c in env.sandbox.store.customers if c.marketing_state == "SUBSCRIBED")
    before = env.clock.now()
    env.clock.advance(timedelta(minutes=5))
    env.sandbox.update_customer_consent(customer.id, "UNSUBSCRIBED")

    consent, update = receiver.requests
    assert [consent["headers"]["X-Shopify-Topic"], update["headers"]["X-Shopify-Topic"]] == [
        "customers_email_marketing_consent/update", "customers/update"]
    for hook in (consent, update):
        assert HEADERS <= set(hook["headers"])
        assert hook["headers"]["X-Shopify-Shop-Domain"] == SHOP
        assert hook["headers"]["X-Shopify-Api-Version"] == "2025-01"
        expected = base64.b64encode(hmac.new(CLIENT_SECRET.encode(), hook["body"], hashlib.sha256).digest()).decode()
        assert hook["headers"]["X-Shopify-Hmac-Sha256"] == expected
        assert _verify(hook)
    tampered = dict(consent, body=consent["body"].replace(b"unsubscribed", b"subscribed"))
    assert not _verify(tampered)

    # The sample payload of customers_email_marketing_consent/update in Shopify's webhook reference.
    assert json.loads(consent["body"]) == {
        "customer_id": customer.id, "email_address": customer.email,
        "email_marketing_consent": {"state": "unsubscribed", "opt_in_level": "single_opt_in",
                                    "consent_updated_at": "2026-01-15T07:05:00-05:00"}}
    body = json.loads(update["body"])
    assert body["id"] == customer.id
    assert body["admin_graphql_api_id"] == customer.gid
    assert body["email"] == customer.email
    assert body["default_address"]["country_code"] == customer.country
    # API 2025-01: customer payloads in webhooks no longer carry consent, tags or the purchasing summary.
    removed = {"email_marketing_consent", "sms_marketing_consent", "tags", "last_order_id", "last_order_name",
               "orders_count", "total_spent", "accepts_marketing"}
    assert removed.isdisjoint(body)

    since = before.isoformat().replace("+00:00", "Z")
    data = env.data("query($q: String) { customers(first: 50, query: $q, sortKey: UPDATED_AT) { nodes { id "
                    "emailMarketingConsent { marketingState } } } }", {"q": f"updated_at:>'{since}'"})
    assert data["customers"]["nodes"] == [{"id": customer.gid,
                                           "emailMarketingConsent": {"marketingState": "UNSUBSCRIBED"}}]


def test_customer_inside_order_webhooks_follows_2025_01(setup):
    env, receiver, _ = setup
    store = env.sandbox.store
    customer = next(c for c in store.customers if c.marketing_state == "SUBSCRIBED")
    customer.tags = ("vip",)
    env.sandbox.add_order(customer.id, [(store.products[0].variants[0].id, 1)])
    (created,) = receiver.requests
    embedded = json.loads(created["body"])["customer"]
    assert embedded["id"] == customer.id and embedded["email"] == customer.email
    assert {"email_marketing_consent", "sms_marketing_consent", "tags", "last_order_id",
            "last_order_name"}.isdisjoint(embedded)
    # The order's own marketing flag and tags are order fields, still in the body.
    assert json.loads(created["body"])["buyer_accepts_marketing"] is True
    data = env.data("query($id: ID!) { customer(id: $id) { tags emailMarketingConsent { marketingState } } }",
                    {"id": customer.gid})["customer"]
    assert data == {"tags": ["vip"], "emailMarketingConsent": {"marketingState": "SUBSCRIBED"}}


def test_order_lifecycle_sends_rest_payloads(setup):
    env, receiver, _ = setup
    store = env.sandbox.store
    customer = store.customers[0]
    variant = store.products[0].variants[1]
    order = env.sandbox.add_order(customer.id, [(variant.id, 2)])
    env.clock.advance(timedelta(days=1))
    env.sandbox.fulfil_order(order.id)
    env.clock.advance(timedelta(days=3))
    env.sandbox.deliver_order(order.id)
    env.sandbox.refund_order(order.id, amount_cents=500, note="Dented bag")
    env.sandbox.cancel_order(order.id, "CUSTOMER")
    assert receiver.topics() == ["orders/create", "fulfillments/create", "orders/fulfilled", "orders/updated",
                                 "fulfillment_events/create", "fulfillments/update", "orders/updated",
                                 "refunds/create", "orders/updated", "orders/cancelled", "refunds/create",
                                 "orders/updated"]
    assert all(_verify(r) for r in receiver.requests)

    created = json.loads(receiver.requests[0]["body"])
    amount = f"{variant.price_cents * 2 // 100}.{variant.price_cents * 2 % 100:02d}"
    assert created["id"] == order.id and created["admin_graphql_api_id"] == order.gid
    assert created["total_price"] == amount
    assert created["total_price_set"] == {"shop_money": {"amount": amount, "currency_code": "USD"},
                                          "presentment_money": {"amount": amount, "currency_code": "USD"}}
    (line,) = created["line_items"]
    assert (line["variant_id"], line["sku"], line["quantity"]) == (variant.id, variant.sku, 2)
    assert created["customer"]["id"] == customer.id
    assert created["financial_status"] == "paid" and created["fulfillment_status"] is None

    event = json.loads(receiver.requests[4]["body"])
    fulfillment = order.fulfillments[0]
    assert (event["order_id"], event["fulfillment_id"], event["status"]) == (order.id, fulfillment.id, "delivered")
    assert datetime.fromisoformat(event["happened_at"]) == fulfillment.delivered_at
    delivered = json.loads(receiver.requests[5]["body"])
    assert delivered["order_id"] == order.id and delivered["shipment_status"] == "delivered"
    refund = json.loads(receiver.requests[7]["body"])
    assert refund["transactions"][0]["amount"] == "5.00"
    cancelled = json.loads(receiver.requests[9]["body"])
    assert cancelled["cancel_reason"] == "customer" and cancelled["financial_status"] == "refunded"

    # the same changes are visible to an incremental sync by updatedAt
    data = env.data("query($id: ID!) { order(id: $id) { updatedAt cancelledAt displayFinancialStatus "
                    "fulfillments(first: 5) { deliveredAt } } }", {"id": order.gid})["order"]
    now = env.clock.now().isoformat().replace("+00:00", "Z")
    assert data == {"updatedAt": now, "cancelledAt": now, "displayFinancialStatus": "REFUNDED",
                    "fulfillments": [{"deliveredAt": now}]}


def test_non_2xx_is_retried_with_the_same_webhook_id(setup):
    env, receiver, sleeps = setup
    receiver.statuses = [500, 503]
    env.sandbox.add_order(env.sandbox.store.customers[1].id, [(env.sandbox.store.products[0].variants[0].id, 1)])
    assert len(receiver.requests) == 3
    assert len({r["headers"]["X-Shopify-Webhook-Id"] for r in receiver.requests}) == 1
    assert sleeps == [1.0, 5.0]
    (delivery,) = env.sandbox.deliveries
    assert [a.status for a in delivery.attempts] == [500, 503, 200] and delivery.delivered


def test_retries_are_bounded_when_the_endpoint_is_down(setup):
    env, _, sleeps = setup
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/webhooks"
    env.sandbox.register_app(CLIENT_ID, CLIENT_SECRET, env.sandbox.app(CLIENT_ID).scopes, webhook_url=dead)
    env.sandbox.add_order(env.sandbox.store.customers[1].id, [(env.sandbox.store.products[0].variants[0].id, 1)])
    (delivery,) = env.sandbox.deliveries
    assert [a.status for a in delivery.attempts] == [None] * 4
    assert not delivery.delivered and sleeps == [1.0, 5.0, 30.0]


def test_protected_fields_are_absent_from_webhooks_without_access(setup):
    env, receiver, _ = setup
    env.sandbox.register_app(CLIENT_ID, CLIENT_SECRET, env.sandbox.app(CLIENT_ID).scopes,
                             protected_customer_data=False, webhook_url=receiver.url)
    customer = env.sandbox.store.customers[2]
    env.sandbox.update_customer_consent(customer.id, "UNSUBSCRIBED")
    consent, body = (json.loads(r["body"]) for r in receiver.requests)
    assert (consent["customer_id"], consent["email_address"]) == (customer.id, None)
    assert consent["email_marketing_consent"]["state"] == "unsubscribed"  # the state itself is not protected
    assert (body["email"], body["first_name"], body["last_name"], body["phone"]) == (None, None, None, None)
    assert body["id"] == customer.id


def test_graphql_subscription_and_uninstall_and_compliance(setup):
    env, receiver, _ = setup
    second = start_receiver()
    try:
        created = env.data("""mutation($url: URL!) { webhookSubscriptionCreate(topic: ORDERS_CREATE,
            webhookSubscription: {callbackUrl: $url, format: JSON}) { webhookSubscription { id topic
            endpoint { ... on WebhookHttpEndpoint { callbackUrl } } } userErrors { field message } } }""",
                           {"url": second.url})["webhookSubscriptionCreate"]
        assert created["userErrors"] == []
        assert created["webhookSubscription"]["endpoint"] == {"callbackUrl": second.url}
        env.sandbox.add_order(env.sandbox.store.customers[0].id, [(env.sandbox.store.products[0].variants[0].id, 1)])
        assert receiver.topics() == ["orders/create"] and second.topics() == ["orders/create"]

        env.sandbox.redact_customer(env.sandbox.store.customers[0].id)
        env.sandbox.revoke(CLIENT_ID)
        assert receiver.topics()[1:] == ["customers/redact", "app/uninstalled"]
        uninstalled = json.loads(receiver.requests[-1]["body"])
        assert uninstalled["myshopify_domain"] == SHOP and uninstalled["id"] == env.sandbox.store.shop.id
        redact = json.loads(receiver.requests[1]["body"])
        assert redact["customer"]["id"] == env.sandbox.store.customers[0].id
        assert redact["orders_to_redact"] == [o.id for o in env.sandbox.store.customer_orders(
            env.sandbox.store.customers[0].id)]
        # after uninstall nothing more is sent
        env.sandbox.update_customer_consent(env.sandbox.store.customers[0].id, "SUBSCRIBED")
        assert len(receiver.requests) == 3
    finally:
        second.server.stop()


def test_a_multi_currency_order_is_served_in_both_currencies(setup):
    env, receiver, _ = setup
    store = env.sandbox.store
    variant = store.products[0].variants[0]  # priced in the shop's USD
    order = env.sandbox.add_order(store.customers[0].id, [(variant.id, 2)], presentment_currency="EUR",
                                  presentment_rate="0.85")
    env.sandbox.refund_order(order.id, amount_cents=1000)
    # Each buyer price converted half up (12.90 USD is 10.965, shown as 10.97 EUR); the total is their sum.
    usd, eur = variant.price_cents * 2, int(Decimal(variant.price_cents * 85 / 100).quantize(0, ROUND_HALF_UP)) * 2

    def bag(shop_cents: int, buyer_cents: int, key: str = "currencyCode") -> dict:
        return {"amount": f"{shop_cents / 100:.2f}", key: "USD"}, {"amount": f"{buyer_cents / 100:.2f}", key: "EUR"}

    data = env.data("query($id: ID!) { order(id: $id) { currencyCode presentmentCurrencyCode "
                    "totalPriceSet { shopMoney { amount currencyCode } presentmentMoney { amount currencyCode } } "
                    "totalRefundedSet { shopMoney { amount currencyCode } presentmentMoney { amount currencyCode } } "
                    "refunds(first: 5) { totalRefundedSet { shopMoney { amount } presentmentMoney { amount } } } "
                    "lineItems(first: 5) { nodes { originalUnitPriceSet { presentmentMoney { amount currencyCode } } "
                    "} } } }", {"id": order.gid})["order"]
    shop_total, buyer_total = bag(usd, eur)
    shop_refund, buyer_refund = bag(1000, 850)
    assert data == {
        "currencyCode": "USD", "presentmentCurrencyCode": "EUR",
        "totalPriceSet": {"shopMoney": shop_total, "presentmentMoney": buyer_total},
        "totalRefundedSet": {"shopMoney": shop_refund, "presentmentMoney": buyer_refund},
        "refunds": [{"totalRefundedSet": {"shopMoney": {"amount": "10.00"}, "presentmentMoney": {"amount": "8.50"}}}],
        "lineItems": {"nodes": [{"originalUnitPriceSet": {"presentmentMoney": {
            "amount": f"{eur / 200:.2f}", "currencyCode": "EUR"}}}]}}

    created, refund, updated = (json.loads(r["body"]) for r in receiver.requests)
    shop_total, buyer_total = bag(usd, eur, "currency_code")
    assert (created["currency"], created["presentment_currency"], created["total_price"]) == ("USD", "EUR",
                                                                                             shop_total["amount"])
    assert created["total_price_set"] == {"shop_money": shop_total, "presentment_money": buyer_total}
    (transaction,) = refund["transactions"]
    assert (transaction["amount"], transaction["currency"]) == ("8.50", "EUR")  # the buyer's money
    (adjustment,) = refund["order_adjustments"]
    assert adjustment["amount_set"] == {"shop_money": {"amount": "-10.00", "currency_code": "USD"},
                                        "presentment_money": {"amount": "-8.50", "currency_code": "EUR"}}
    assert updated["refunds"] == [refund]
