"""The one retry loop and error tree of the connectors: delays, server delays, permanent errors, bounds."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from base.clock import FrozenClock
from base.retry import RetryBudget, RetryPolicy, call_with_retries
from connectors.amazon.client import Credentials, OrdersApi, SpApiSession
from connectors.amazon.errors import AccessDenied, AmazonError, AuthError, InvalidInput, QuotaExceeded, ServerError
from connectors.amazon.orders import OPERATION
from connectors.errors import AuthRefused, BadResponse, ConnectorError, RateLimited, RequestRejected, TransientError
from connectors.reviews import JudgemeClient, JudgemeRateLimited, JudgemeRequestRejected, JudgemeServerError
from connectors.shopify import queries
from connectors.shopify.client import ShopifyClient
from connectors.shopify.errors import (
    ShopifyAuthError,
    ShopifyBadResponse,
    ShopifyError,
    ShopifyGraphQLError,
    ShopifyServerError,
    ShopifyThrottledError,
    ShopifyUserError,
)
from sandbox.amazon import AmazonSandbox
from sandbox.judgeme import JudgemeSandbox
from sandbox.shopify import ShopifySandbox

SHOP = "calm-coffee.myshopify.com"
TOKEN = "shpjm-private-token-4f1c9a7e"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


class Sleeps:
    """Records the waits asked for instead of sleeping."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class Draws(random.Random):
    """A random generator that hands out chosen numbers, so each jittered delay is known beforehand."""

    def __init__(self, values: list[float]):
        super().__init__(0)
        self._values: Iterator[float] = iter(values)

    def random(self) -> float:
        """Return the next chosen number."""
        return next(self._values)


class Failing:
    """An attempt that raises the given errors in turn, then returns ``"done"``."""

    def __init__(self, *errors: BaseException):
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def test_delays_double_up_to_the_cap_without_jitter():
    policy = RetryPolicy(max_attempts=6, base_seconds=0.5, max_seconds=3.0, jitter=0.0)
    sleeps = Sleeps()
    attempt = Failing(*[TransientError("503") for _ in range(5)])
    assert call_with_retries(attempt, policy, sleeps, retry_on=(ConnectorError,)) == "done"
    assert attempt.calls == 6
    assert sleeps.calls == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_jitter_scales_each_delay_into_the_lower_half_window():
    # With jitter 0.5 a draw r turns the exponential delay d into d * (0.5 + 0.5 r).
    policy = RetryPolicy(max_attempts=5, base_seconds=1.0, max_seconds=4.0, jitter=0.5)
    sleeps = Sleeps()
    attempt = Failing(*[BadResponse("truncated") for _ in range(4)])
    call_with_retries(attempt, policy, sleeps, retry_on=(ConnectorError,), rng=Draws([0.0, 0.5, 0.25, 0.999]))
    assert sleeps.calls == pytest.approx([0.5, 1.5, 2.5, 3.998])


def test_jittered_delays_stay_within_their_bounds_for_any_seed():
    policy = RetryPolicy(max_attempts=9, base_seconds=1.0, max_seconds=30.0, jitter=0.5)
    ceilings = [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    for seed in range(20):
        sleeps = Sleeps()
        with pytest.raises(TransientError):
            call_with_retries(Failing(*[TransientError("x") for _ in range(9)]), policy, sleeps,
                              retry_on=(ConnectorError,), rng=random.Random(seed))
        assert len(sleeps.calls) == 8
        assert all(c / 2 <= d < c for d, c in zip(sleeps.calls, ceilings, strict=True))


def test_the_server_delay_is_honoured_and_capped():
    policy = RetryPolicy(max_attempts=4, base_seconds=1.0, max_seconds=10.0, jitter=0.5)
    sleeps = Sleeps()
    attempt = Failing(RateLimited("429", retry_after=2.5), RateLimited("429", retry_after=600.0),
                      RateLimited("429", retry_after=-3.0))
    call_with_retries(attempt, policy, sleeps, retry_on=(ConnectorError,), rng=Draws([]))
    # 2.5 s as asked, 600 s capped at max_seconds, a negative delay means "now": no sleep at all.
    assert sleeps.calls == [2.5, 10.0]
    assert attempt.calls == 4


def test_permanent_errors_are_raised_at_once():
    for error in (RequestRejected("422"), AuthRefused("401"), ConnectorError("plain")):
        sleeps = Sleeps()
        attempt = Failing(error)
        with pytest.raises(type(error)) as raised:
            call_with_retries(attempt, RetryPolicy(), sleeps, retry_on=(ConnectorError,))
        assert raised.value is error
        assert attempt.calls == 1 and sleeps.calls == []


def test_errors_outside_retry_on_propagate_untouched():
    attempt = Failing(KeyError("x"))
    with pytest.raises(KeyError):
        call_with_retries(attempt, RetryPolicy(), Sleeps(), retry_on=(ConnectorError,))
    assert attempt.calls == 1


def test_attempts_are_bounded_and_the_last_error_can_be_renamed():
    sleeps = Sleeps()
    heard: list[tuple[str, int, float]] = []
    attempt = Failing(*[TransientError(f"503 #{n}") for n in range(1, 10)])

    def give_up(error: BaseException, attempts: int) -> BaseException:
        return RuntimeError(f"gave up after {attempts}: {error}")

    with pytest.raises(RuntimeError, match=r"gave up after 3: 503 #3") as raised:
        call_with_retries(attempt, RetryPolicy(max_attempts=3, base_seconds=2.0, jitter=0.0), sleeps,
                          retry_on=(ConnectorError,), on_retry=lambda e, n, d: heard.append((str(e), n, d)),
                          on_give_up=give_up)
    assert attempt.calls == 3
    assert sleeps.calls == [2.0, 4.0]  # no wait after the last attempt
    assert heard == [("503 #1", 1, 2.0), ("503 #2", 2, 4.0)]
    assert isinstance(raised.value.__cause__, TransientError)


def test_an_error_can_say_for_itself_that_it_is_not_retryable():
    attempt = Failing(TransientError("timeout after the request was sent", retryable=False))
    with pytest.raises(TransientError):
        call_with_retries(attempt, RetryPolicy(), Sleeps(), retry_on=(ConnectorError,))
    assert attempt.calls == 1


def test_a_budget_serves_loops_that_resume():
    sleeps = Sleeps()
    budget = RetryBudget(RetryPolicy(max_attempts=3, base_seconds=1.0, jitter=0.0), sleeps)
    budget.failed(TransientError("drop"))
    budget.failed(BadResponse("half a line"))
    with pytest.raises(TransientError):
        budget.failed(TransientError("drop again"))
    assert sleeps.calls == [1.0, 2.0] and budget.failures == 3


def test_policy_refuses_nonsense():
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(jitter=1.5)


@pytest.mark.parametrize(("error", "kind", "retryable"), [
    (ShopifyAuthError("401", 401), AuthRefused, False),
    (ShopifyThrottledError("THROTTLED"), RateLimited, True),
    (ShopifyServerError("503", 503), TransientError, True),
    (ShopifyBadResponse("no data"), BadResponse, True),
    (ShopifyGraphQLError("bad", []), RequestRejected, False),
    (ShopifyUserError("taken", []), RequestRejected, False),
    (AuthError("invalid_grant", error="invalid_grant"), AuthRefused, False),
    (AccessDenied("no role"), AuthRefused, False),
    (InvalidInput("400"), RequestRejected, False),
    (QuotaExceeded("429"), RateLimited, True),
    (ServerError("500"), TransientError, True),
    (JudgemeRateLimited("429", 1.0), RateLimited, True),
    (JudgemeServerError("502", 502), TransientError, True),
    (JudgemeRequestRejected("404", 404), RequestRejected, False),
])
def test_every_marketplace_error_sits_in_the_one_tree(error, kind, retryable):
    assert isinstance(error, kind) and isinstance(error, ConnectorError)
    assert error.retryable is retryable


def test_marketplace_errors_keep_their_fields():
    assert ShopifyServerError("503", 503).status == 503 and isinstance(ShopifyServerError("x"), ShopifyError)
    assert AmazonError("x").status == 0 and ServerError("x", status=503, code="c", operation="op").operation == "op"
    assert JudgemeRateLimited("429", 7.0).retry_after == 7.0


@pytest.fixture
def judgeme() -> Iterator[JudgemeSandbox]:
    products = [{"id": 7001, "handle": "mug", "title": "Mug"}]
    reviewers = [{"email": "buyer@example.com", "name": "Buyer", "id": 501}]
    with JudgemeSandbox(seed=5, shops={SHOP: TOKEN}, products=products, reviewers=reviewers,
                        reviews_per_product=3, clock=FrozenClock(NOW)) as running:
        yield running


def test_real_5xx_faults_wait_the_exact_jittered_delays(judgeme):
    judgeme.set_faults(1.0, kinds=["500"])
    sleeps = Sleeps()
    policy = RetryPolicy(max_attempts=4, base_seconds=0.5, max_seconds=30.0, jitter=0.5)
    with JudgemeClient(SHOP, TOKEN, base_url=judgeme.url, timeout=5, retry=policy, sleep=sleeps,
                       rng=Draws([0.0, 1 / 2, 1 / 4])) as client, pytest.raises(JudgemeServerError) as failed:
        client.get_review(judgeme.reviews(SHOP)[0].id)
    # 0.5 * 0.5, 1.0 * 0.75, 2.0 * 0.625: three waits between four attempts, each hit by a real 500.
    assert sleeps.calls == pytest.approx([0.25, 0.75, 1.25])
    assert failed.value.status == 500
    assert judgeme.faults.counts == {"500": 4}


def test_a_real_429_waits_the_retry_after_the_sandbox_sends(judgeme):
    judgeme.set_faults(1.0, kinds=["429"])
    sleeps = Sleeps()
    with JudgemeClient(SHOP, TOKEN, base_url=judgeme.url, timeout=5, retry=RetryPolicy(max_attempts=3),
                       sleep=sleeps, rng=Draws([])) as client, pytest.raises(JudgemeRateLimited):
        client.get_review(judgeme.reviews(SHOP)[0].id)
    assert sleeps.calls == [1.0, 1.0]  # the sandbox answers Retry-After: 1, no draw from the generator
    assert judgeme.faults.counts == {"429": 3}


def test_a_real_rejection_is_not_retried(judgeme):
    sleeps = Sleeps()
    judgeme.set_faults(0.0)
    with JudgemeClient(SHOP, TOKEN, base_url=judgeme.url, timeout=5, sleep=sleeps) as client, \
            pytest.raises(JudgemeRequestRejected) as rejected:
        client.get_review(999_999_999)
    assert rejected.value.status == 404 and sleeps.calls == []


def test_shopify_client_waits_the_same_jittered_delays_on_real_503s():
    clock = FrozenClock(NOW)
    sandbox = ShopifySandbox(seed=5, customers=5, orders=10, clock=clock)
    sandbox.start()
    try:
        sandbox.register_app("client-retry", "secret", ["read_orders", "read_customers"])
        token = sandbox.install("client-retry")["access_token"]
        sleeps = Sleeps()
        client = ShopifyClient(sandbox.shop_domains[0], token, base_url=sandbox.url, clock=clock, sleep=sleeps,
                               rng=Draws([0.0, 0.5, 0.25]), timeout=5.0,
                               retry=RetryPolicy(max_attempts=4, base_seconds=1.0, max_seconds=30.0, jitter=0.5))
        sandbox.set_faults(1.0, kinds=["503"], seed=1)
        with pytest.raises(ShopifyServerError, match="failed after 4 attempts: HTTP 503") as failed:
            client.execute(queries.SHOP)
    finally:
        sandbox.stop()
    assert sleeps.calls == pytest.approx([0.5, 1.5, 2.5])  # 1 * 0.5, 2 * 0.75, 4 * 0.625
    assert failed.value.status == 503
    assert client.stats.calls == 4 and client.stats.retries == 3


def test_amazon_session_backs_off_without_jitter_on_real_500s():
    clock = FrozenClock(NOW)
    sandbox = AmazonSandbox(seed=3, orders=20, clock=clock)
    sandbox.start()
    sleeps = Sleeps()
    seller = sandbox.seller(0)
    credentials = Credentials(sandbox.client_id, sandbox.client_secret, sandbox.issue_refresh_token(seller.seller_id))
    try:
        with SpApiSession(credentials, region="na", endpoint=sandbox.url, lwa_token_url=sandbox.lwa_token_url,
                          clock=clock, sleep=sleeps, max_attempts=4, backoff_seconds=1.5,
                          backoff_max_seconds=4.0) as session:
            api = session.api(OrdersApi)

            def search() -> object:
                return session.call(OPERATION, api.search_orders, marketplaceIds=seller.marketplace_ids,
                                    createdAfter="2025-09-01T00:00:00Z", maxResultsPerPage=1)

            search()  # log in first, so the faults hit the API call
            sandbox.set_faults(1.0, kinds=["500"], seed=1)
            with pytest.raises(ServerError) as failed:
                search()
    finally:
        sandbox.stop()
    assert sleeps.calls == [1.5, 3.0, 4.0]  # 1.5 * 2**n capped at 4, no jitter
    assert failed.value.status == 500 and failed.value.operation == OPERATION
    assert session.stats == {"calls": 5, "throttled": 0, "retries": 3, "token_requests": 1}


def test_a_token_renewal_that_uses_the_last_attempt_reports_the_403():
    clock = FrozenClock(NOW)
    sandbox = AmazonSandbox(seed=3, orders=20, clock=clock)
    sandbox.start()
    seller = sandbox.seller(0)
    credentials = Credentials(sandbox.client_id, sandbox.client_secret, sandbox.issue_refresh_token(seller.seller_id))
    try:
        with SpApiSession(credentials, region="na", endpoint=sandbox.url, lwa_token_url=sandbox.lwa_token_url,
                          clock=clock, sleep=Sleeps(), max_attempts=1) as session:
            api = session.api(OrdersApi)
            session.call(OPERATION, api.search_orders, marketplaceIds=seller.marketplace_ids,
                         createdAfter="2025-09-01T00:00:00Z", maxResultsPerPage=1)
            sandbox.lwa.expire_all()
            with pytest.raises(AccessDenied) as denied:
                session.call(OPERATION, api.search_orders, marketplaceIds=seller.marketplace_ids,
                             createdAfter="2025-09-01T00:00:00Z", maxResultsPerPage=1)
    finally:
        sandbox.stop()
    assert denied.value.operation == OPERATION and denied.value.status == 403
    assert session.stats == {"calls": 2, "throttled": 0, "retries": 0, "token_requests": 1}
