"""Control API over HTTP (/__sandbox/...), webhook subscriptions, compliance topics, CLI arguments."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from datetime import timedelta

import pytest
import requests

from sandbox.shopify import add_cli_arguments
from sandbox.shopify.models import Store
from tests.sandbox.shopify_support import CLIENT_ID, CLIENT_SECRET, SHOP, TIMEOUT, make_env, start_receiver

SUBS = """{ webhookSubscriptions(first: 10) { nodes { id topic endpoint {
  ... on WebhookHttpEndpoint { callbackUrl } } } } }"""


@pytest.fixture()
def env():
    yield from make_env(customers=15, orders=40)


def _ctl(env, path, body=None, method="POST"):
    return requests.request(method, f"{env.url}/__sandbox/{path}", json=body, timeout=TIMEOUT)


def test_register_install_and_change_data_over_http(env):
    receiver = start_receiver()
    try:
        registered = _ctl(env, "apps", {"client_id": "http-app", "client_secret": "http-secret-0123456789abcdef01",
                                        "scopes": ["read_orders", "read_customers"], "webhook_url": receiver.url})
        assert registered.status_code == 201
        token = _ctl(env, "install", {"client_id": "http-app"}).json()["access_token"]
        store = env.sandbox.store
        customer, variant = store.customers[0], store.products[1].variants[0]
        made = _ctl(env, "orders", {"customer_id": customer.id, "lines": [[variant.id, 3]]})
        assert made.status_code == 201
        order_gid = made.json()["admin_graphql_api_id"]
        env.clock.advance(timedelta(hours=2))
        assert _ctl(env, f"orders/{made.json()['id']}/fulfil").status_code == 200
        assert _ctl(env, f"orders/{made.json()['id']}/deliver").status_code == 200
        assert _ctl(env, f"customers/{customer.id}/consent", {"state": "UNSUBSCRIBED"}).status_code == 200
        assert _ctl(env, "orders/999/deliver").status_code == 404
        assert _ctl(env, "orders", {"customer_id": customer.id}).status_code == 400

        order = env.data("query($id: ID!) { order(id: $id) { displayFulfillmentStatus lineItems(first: 5) "
                         "{ nodes { quantity } } fulfillments(first: 1) { displayStatus } } }",
                         {"id": order_gid}, token=token)["order"]
        assert order == {"displayFulfillmentStatus": "FULFILLED", "lineItems": {"nodes": [{"quantity": 3}]},
                         "fulfillments": [{"displayStatus": "DELIVERED"}]}
        assert receiver.topics() == ["orders/create", "fulfillments/create", "orders/fulfilled", "orders/updated",
                                     "fulfillment_events/create", "fulfillments/update", "orders/updated",
                                     "customers_email_marketing_consent/update", "customers/update"]
        logged = _ctl(env, "webhooks", method="GET").json()
        assert [d["topic"] for d in logged] == receiver.topics()
        assert all(d["delivered"] and d["attempts"] == [200] for d in logged)
        state = _ctl(env, "state", method="GET").json()
        assert state["shops"][SHOP]["orders"] == 41
        assert sorted(state["shops"][SHOP]["installed"]) == sorted([CLIENT_ID, "http-app"])
        assert _ctl(env, "revoke", {"client_id": "http-app"}).json() == {"revoked": 1}
        assert env.gql("{ shop { name } }", token=token).status_code == 401
    finally:
        receiver.server.stop()


def test_webhook_subscriptions_list_and_delete(env):
    create = """mutation($t: WebhookSubscriptionTopic!, $u: URL!) { webhookSubscriptionCreate(topic: $t,
        webhookSubscription: {callbackUrl: $u}) { webhookSubscription { id } userErrors { field message } } }"""
    first = env.data(create, {"t": "ORDERS_UPDATED", "u": "https://hooks.example.com/a"})
    sub_id = first["webhookSubscriptionCreate"]["webhookSubscription"]["id"]
    env.data(create, {"t": "CUSTOMERS_UPDATE", "u": "https://hooks.example.com/a"})
    dup = env.data(create, {"t": "ORDERS_UPDATED", "u": "https://hooks.example.com/a"})["webhookSubscriptionCreate"]
    assert dup["userErrors"] == [{"field": ["webhookSubscription", "callbackUrl"],
                                  "message": "Address for this topic has already been taken"}]
    listed = env.data(SUBS)["webhookSubscriptions"]["nodes"]
    assert [(n["topic"], n["endpoint"]["callbackUrl"]) for n in listed] == [
        ("ORDERS_UPDATED", "https://hooks.example.com/a"), ("CUSTOMERS_UPDATE", "https://hooks.example.com/a")]
    deleted = env.data("mutation($id: ID!) { webhookSubscriptionDelete(id: $id) { deletedWebhookSubscriptionId "
                       "userErrors { message } } }", {"id": sub_id})["webhookSubscriptionDelete"]
    assert deleted == {"deletedWebhookSubscriptionId": sub_id, "userErrors": []}
    assert [n["topic"] for n in env.data(SUBS)["webhookSubscriptions"]["nodes"]] == ["CUSTOMERS_UPDATE"]
    bad_topic = env.gql(create, {"t": "CUSTOMERS_REDACT", "u": "https://hooks.example.com/a"}).json()
    assert bad_topic["errors"][0]["extensions"]["code"] == "INVALID_VARIABLE"


def test_compliance_webhooks(env):
    receiver = start_receiver()
    try:
        env.sandbox.register_app(CLIENT_ID, CLIENT_SECRET, env.sandbox.app(CLIENT_ID).scopes,
                                 webhook_url=receiver.url, webhook_topics=["orders/create"])
        customer = env.sandbox.store.customers[4]
        env.sandbox.request_customer_data(customer.id)
        env.sandbox.update_customer_consent(customer.id, "UNSUBSCRIBED")  # not among the app's topics
        env.sandbox.redact_shop()
        assert receiver.topics() == ["customers/data_request", "shop/redact"]
        request = json.loads(receiver.requests[0]["body"])
        assert request["shop_domain"] == SHOP and request["customer"]["email"] == customer.email
        assert request["orders_requested"] == [o.id for o in env.sandbox.store.customer_orders(customer.id)]
        assert json.loads(receiver.requests[1]["body"]) == {"shop_id": env.sandbox.store.shop.id,
                                                            "shop_domain": SHOP}
    finally:
        receiver.server.stop()


def test_replace_store_swaps_what_graphql_shows_and_keeps_ids_unique(env):
    sandbox = env.sandbox
    old = sandbox.store
    kept = old.orders[:3]
    shown = Store(shop=old.shop, customers=old.customers, products=old.products,
                  orders=[replace(o, tags=("replayed",)) for o in kept])
    shown.next_id = 1  # a stale counter must not make the sandbox reuse ids
    sandbox.replace_store(shown)
    nodes = env.data("{ orders(first: 50) { nodes { id tags } } }")["orders"]["nodes"]
    assert nodes == [{"id": o.gid, "tags": ["replayed"]} for o in kept]
    assert sandbox.store.orders_by_id == {o.id: o for o in shown.orders}
    made = sandbox.add_order(old.customers[0].id, [(old.products[0].variants[0].id, 1)])
    assert made.id > max(o.id for o in old.orders)
    other = Store(shop=replace(old.shop, domain="other.myshopify.com"), customers=[], products=[], orders=[])
    with pytest.raises(ValueError, match="cannot replace"):
        sandbox.replace_store(other)


def test_strict_refresh_rotation_refuses_reuse():
    for env in make_env(customers=5, orders=10, strict_refresh_rotation=True):
        first = env.sandbox.install(CLIENT_ID, expiring=True)
        body = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "grant_type": "refresh_token",
                "refresh_token": first["refresh_token"]}
        url = f"{env.url}/admin/oauth/access_token"
        assert requests.post(url, json=body, headers={"Host": SHOP}, timeout=TIMEOUT).status_code == 200
        again = requests.post(url, json=body, headers={"Host": SHOP}, timeout=TIMEOUT)
        assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")


def test_cli_arguments():
    parser = argparse.ArgumentParser()
    add_cli_arguments(parser)
    args = parser.parse_args(["--port", "9001", "--seed", "42", "--customers", "2000", "--orders", "10000",
                              "--shop", "a.myshopify.com", "--shop", "b.myshopify.com"])
    assert (args.port, args.seed, args.customers, args.orders) == (9001, 42, 2000, 10000)
    assert args.shops == ["a.myshopify.com", "b.myshopify.com"]
