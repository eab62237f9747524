"""Cost-based throttling: requested/actual cost, the leaky bucket, THROTTLED, refill by the clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.sandbox.shopify_support import CLIENT_ID, make_env

# 2 (connection) + 10 nodes x (1 order + 1 customer + 2 for totalPriceSet{shopMoney}) = 42
QUERY = "{ orders(first: 10) { nodes { id customer { id } totalPriceSet { shopMoney { amount } } } } }"
REQUESTED = 2 + 10 * (1 + 1 + 2)


@pytest.fixture()
def env():
    yield from make_env(customers=30, orders=120, restore_rate=50.0)


def test_cost_is_reported_and_charged(env):
    body = env.gql(QUERY).json()
    cost = body["extensions"]["cost"]
    assert cost["requestedQueryCost"] == REQUESTED
    assert cost["actualQueryCost"] == REQUESTED  # 10 orders exist and each has a customer
    assert cost["throttleStatus"] == {"maximumAvailable": 2000.0, "currentlyAvailable": 2000 - REQUESTED,
                                      "restoreRate": 50.0}


def test_actual_cost_counts_what_came_back(env):
    body = env.gql("{ orders(first: 10, query: \"id:<0\") { nodes { id customer { id } } } }").json()
    assert body["data"]["orders"]["nodes"] == []
    assert body["extensions"]["cost"]["requestedQueryCost"] == 2 + 10 * 2
    assert body["extensions"]["cost"]["actualQueryCost"] == 2
    assert body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 1998  # unused points refunded


def test_drained_bucket_throttles_until_the_clock_refills_it(env):
    env.sandbox.bucket(CLIENT_ID).drain()
    answer = env.gql(QUERY)
    assert answer.status_code == 200
    body = answer.json()
    assert "data" not in body
    assert body["errors"] == [{"message": "Throttled", "extensions": {
        "code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}]
    assert body["extensions"]["cost"]["requestedQueryCost"] == REQUESTED
    assert body["extensions"]["cost"]["actualQueryCost"] is None
    assert body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 0
    # 50 points/s: after 0.8 s there are 40 < 42 points, after 0.84 s there are 42.
    env.clock.advance(timedelta(seconds=0.8))
    assert env.gql(QUERY).json()["errors"][0]["extensions"]["code"] == "THROTTLED"
    env.clock.advance(timedelta(seconds=0.04))
    body = env.gql(QUERY).json()
    assert "errors" not in body
    assert len(body["data"]["orders"]["nodes"]) == 10
    assert body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 0


def test_repeated_queries_drain_the_bucket(env):
    big = "{ orders(first: 120) { nodes { id customer { id } lineItems(first: 3) { nodes { id } } } } }"
    requested = 2 + 120 * (1 + 1 + 2 + 3)
    orders = env.sandbox.store.orders
    actual = 2 + sum(1 + 1 + 2 + min(3, len(o.line_items)) for o in orders)
    available, expected = 2000, []
    for _ in range(4):
        if available >= requested:
            available -= actual
            expected.append(("OK", available))
        else:
            expected.append(("THROTTLED", available))
    seen = []
    for _ in range(4):
        body = env.gql(big).json()
        assert body["extensions"]["cost"]["requestedQueryCost"] == requested
        code = body["errors"][0]["extensions"]["code"] if "errors" in body else "OK"
        seen.append((code, body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"]))
    assert seen == expected
    assert [c for c, _ in seen].count("THROTTLED") >= 1


def test_single_query_above_1000_points_is_refused(env):
    body = env.gql("{ orders(first: 250) { nodes { id lineItems(first: 10) { nodes { id } } } } }").json()
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert error["extensions"]["cost"] == 2 + 250 * (1 + 2 + 10)
    assert body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 2000


def test_mutations_cost_ten(env):
    body = env.gql("""mutation { webhookSubscriptionCreate(topic: ORDERS_CREATE,
        webhookSubscription: {callbackUrl: "https://example.com/hooks"}) { userErrors { message } } }""").json()
    assert body["extensions"]["cost"]["requestedQueryCost"] == 10
    assert body["extensions"]["cost"]["actualQueryCost"] == 10


def test_buckets_are_per_app_and_shop(env):
    env.sandbox.register_app("other-app", "other-secret", ["read_orders"])
    other = env.sandbox.install("other-app")["access_token"]
    env.sandbox.bucket(CLIENT_ID).drain()
    assert env.gql(QUERY).json()["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert "errors" not in env.gql("{ orders(first: 10) { nodes { id } } }", token=other).json()
