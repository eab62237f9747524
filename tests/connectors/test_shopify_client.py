"""The Shopify GraphQL client over real HTTP against the sandbox: Host routing, typed errors, cost pacing,
bounded retries on THROTTLED/429/5xx/malformed/dropped/timed-out answers. Time is a FrozenClock shared with the
sandbox; the client's sleep advances it, so nothing here really sleeps (except the sandbox's own slow answers)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from base.clock import FrozenClock
from connectors.shopify import queries
from connectors.shopify.client import RetryPolicy, ShopifyClient, admin_base_url
from connectors.shopify.errors import (
    ShopifyAuthError,
    ShopifyBadResponse,
    ShopifyGraphQLError,
    ShopifyServerError,
    ShopifyThrottledError,
)
from sandbox.shopify import ShopifySandbox

SHOP_A = "alpha-store.myshopify.com"
SHOP_B = "beta-store.myshopify.com"
CLIENT_ID = "client-test-app"
SCOPES = ["read_orders", "read_all_orders", "read_customers", "read_products"]


class Waits:
    """A sleep that records each wait and moves the shared clock instead of sleeping."""

    def __init__(self, clock: FrozenClock):
        self.clock = clock
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.clock.advance(seconds=seconds)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 3, 2, 12, 0, tzinfo=UTC))


@pytest.fixture
def sandbox(clock) -> Iterator[ShopifySandbox]:
    sb = ShopifySandbox(seed=5, customers=30, orders=120, clock=clock, shops=[SHOP_A, SHOP_B], restore_rate=50.0)
    sb.start()
    sb.register_app(CLIENT_ID, "secret", SCOPES)
    yield sb
    sb.stop()


def client_for(sandbox: ShopifySandbox, clock: FrozenClock, shop: str = SHOP_B,
               **kwargs) -> tuple[ShopifyClient, Waits]:
    token = sandbox.install(CLIENT_ID, shop)["access_token"]
    waits = Waits(clock)
    options = {"clock": clock, "sleep": waits, "rng": random.Random(1), "timeout": 5.0}
    options.update(kwargs)
    return ShopifyClient(shop, token, base_url=sandbox.url, **options), waits


def test_base_url_defaults_to_the_shop_and_sandbox_is_reached_by_host(sandbox, clock):
    assert admin_base_url("", SHOP_A) == f"https://{SHOP_A}"
    assert admin_base_url("http://127.0.0.1:9001/", SHOP_A) == "http://127.0.0.1:9001"
    client, _ = client_for(sandbox, clock, SHOP_B)
    assert client.endpoint == f"{sandbox.url}/admin/api/2025-01/graphql.json"
    assert client.execute(queries.SHOP)["shop"]["myshopifyDomain"] == SHOP_B
    assert client.stats.calls == 1


def test_revoked_token_raises_auth_error_without_retry(sandbox, clock):
    client, waits = client_for(sandbox, clock)
    sandbox.revoke(CLIENT_ID, SHOP_B, notify=False)
    with pytest.raises(ShopifyAuthError) as info:
        client.execute(queries.SHOP)
    assert info.value.status == 401
    assert client.stats.calls == 1 and waits.calls == []


def test_invalid_document_raises_graphql_error_without_retry(sandbox, clock):
    client, _ = client_for(sandbox, clock)
    with pytest.raises(ShopifyGraphQLError) as info:
        client.execute("query { shop { noSuchField } }")
    assert info.value.codes == {"undefinedField"}
    assert client.stats.calls == 1


def test_pacing_keeps_a_long_paging_run_free_of_throttling(sandbox, clock):
    client, waits = client_for(sandbox, clock)
    after = None
    seen = 0
    for _ in range(8):  # 8 pages of ~870 requested points each against a 2000-point bucket refilling at 50/s
        data = client.execute(queries.ORDERS, {"first": queries.ORDERS_PAGE, "after": after, "query": None})
        seen += len(data["orders"]["nodes"])
        after = data["orders"]["pageInfo"]["endCursor"]
    assert seen == 8 * queries.ORDERS_PAGE
    assert client.stats.throttled == 0
    assert client.stats.paced_waits > 0 and sum(waits.calls) > 0


def test_throttled_answer_is_waited_out_by_the_refill_time(sandbox, clock):
    client, waits = client_for(sandbox, clock)
    client.execute(queries.SHOP)
    sandbox.bucket(CLIENT_ID, SHOP_B).drain()  # someone else spent the bucket: our estimate is stale
    data = client.execute(queries.CUSTOMERS, {"first": 50, "after": None, "query": None})
    assert len(data["customers"]["nodes"]) == 30
    assert client.stats.throttled == 1 and client.stats.retries == 1
    # 50 customers x 3 + 2 = 152 points at 50 points/s: about 3 s of waiting, not a blind backoff.
    assert 3.0 <= sum(waits.calls) <= 3.2


@pytest.mark.parametrize(("kind", "error", "status"), [
    ("500", ShopifyServerError, 500),
    ("503", ShopifyServerError, 503),
    ("drop", ShopifyServerError, None),
    ("malformed", ShopifyBadResponse, None),
    ("429", ShopifyThrottledError, None),
])
def test_persistent_faults_end_in_a_typed_error_after_bounded_retries(sandbox, clock, kind, error, status):
    client, waits = client_for(sandbox, clock, retry=RetryPolicy(max_attempts=4, base_seconds=1.0, max_seconds=8.0))
    sandbox.set_faults(1.0, kinds=[kind], seed=1)
    with pytest.raises(error) as info:
        client.execute(queries.SHOP)
    assert client.stats.calls == 4
    assert len(waits.calls) == 3  # no wait after the last attempt
    if kind == "429":
        assert waits.calls == [1.0, 1.0, 1.0]  # the sandbox's Retry-After
        assert client.stats.throttled == 4
    else:
        # Exponential with jitter in [0.5, 1): 1, 2, 4 seconds scaled.
        for n, wait in enumerate(waits.calls):
            assert 0.5 * 2 ** n <= wait < 2 ** n
    if error is ShopifyServerError:
        assert info.value.status == status


def test_timeouts_are_retried_then_reported(sandbox, clock):
    client, waits = client_for(sandbox, clock, timeout=0.2, retry=RetryPolicy(max_attempts=2))
    sandbox.set_faults(1.0, kinds=["slow"], slow_seconds=0.6, seed=1)
    with pytest.raises(ShopifyServerError) as info:
        client.execute(queries.SHOP)
    assert "Timeout" in str(info.value)
    assert client.stats.calls == 2 and len(waits.calls) == 1


def test_occasional_faults_are_invisible_to_the_caller(sandbox, clock):
    client, _ = client_for(sandbox, clock)
    sandbox.set_faults(0.3, seed=4)
    names = set()
    after = None
    while True:
        data = client.execute(queries.CUSTOMERS, {"first": 7, "after": after, "query": None})
        names.update(n["id"] for n in data["customers"]["nodes"])
        if not data["customers"]["pageInfo"]["hasNextPage"]:
            break
        after = data["customers"]["pageInfo"]["endCursor"]
    assert len(names) == 30
    assert client.stats.retries > 0


def test_backoff_is_bounded_and_deterministic_for_a_seed():
    policy = RetryPolicy(max_attempts=10, base_seconds=1.0, max_seconds=30.0)
    first = [policy.delay(n, random.Random(7)) for n in range(10)]
    again = [policy.delay(n, random.Random(7)) for n in range(10)]
    assert first == again
    assert all(15.0 <= d < 30.0 for d in first[5:])
