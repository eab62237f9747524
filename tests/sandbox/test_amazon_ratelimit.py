"""Token buckets per operation: burst, 429 body and headers, refill from the clock, scaling, faults."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from sandbox.amazon.marketplaces import US
from tests.sandbox.amazon_support import Env, lwa_token, make_env

QUOTA = {"errors": [{"code": "QuotaExceeded", "message": "You exceeded your quota for the requested resource.",
                     "details": ""}]}


@pytest.fixture
def limited() -> Iterator[Env]:
    """A sandbox with Amazon's default usage plans."""
    yield from make_env(rate_limits=True)


@pytest.fixture
def scaled() -> Iterator[Env]:
    """A sandbox whose rates are 50 times Amazon's."""
    yield from make_env(rate_limits=True, rate_scale=50)


def _actions(env, order_id="111-0000000-0000000"):
    return env.get(f"/solicitations/v1/orders/{order_id}", params={"marketplaceIds": US})


def test_burst_then_429_with_amazons_body_and_headers(limited):
    answers = [_actions(limited) for _ in range(6)]
    assert [a.status_code for a in answers] == [404] * 5 + [429]  # burst 5; unknown order is fine
    assert answers[-1].json() == QUOTA
    for answer in answers:
        assert answer.headers["x-amzn-RateLimit-Limit"] == "1.0"
        assert len(answer.headers["x-amzn-RequestId"]) == 36
    assert len({a.headers["x-amzn-RequestId"] for a in answers}) == 6


def test_bucket_refills_from_the_injected_clock(limited):
    for _ in range(5):
        _actions(limited)
    assert _actions(limited).status_code == 429
    limited.clock.advance(seconds=1)
    assert _actions(limited).status_code == 404
    assert _actions(limited).status_code == 429
    # other operations have their own buckets
    assert limited.get("/messaging/v1/orders/111-0000000-0000000",
                       params={"marketplaceIds": US}).status_code == 404


def test_search_orders_usage_plan_and_rate_header(limited):
    params = {"createdAfter": "2026-02-01T00:00:00Z", "maxResultsPerPage": 1}
    codes = [limited.get("/orders/2026-01-01/orders", params=params).status_code for _ in range(21)]
    assert codes == [200] * 20 + [429]
    limited.clock.advance(seconds=179)  # 0.0056 rps: one token takes ~178.6 s
    answer = limited.get("/orders/2026-01-01/orders", params=params)
    assert answer.status_code == 200 and answer.headers["x-amzn-RateLimit-Limit"] == "0.0056"


def test_rate_scale_multiplies_rates(scaled):
    for _ in range(5):
        _actions(scaled)
    assert _actions(scaled).headers["x-amzn-RateLimit-Limit"] == "50.0"
    scaled.clock.advance(timedelta(milliseconds=20))  # 50 rps: one token per 20 ms
    assert _actions(scaled).status_code == 404


def test_buckets_are_per_seller():
    for env in make_env(rate_limits=True):
        other = env.sandbox.seller(2)
        other_token = lwa_token(env.sandbox, env.sandbox.issue_refresh_token(other.seller_id))
        for _ in range(5):
            _actions(env)
        assert _actions(env).status_code == 429
        assert _actions(env, "111-0000000-0000000").status_code == 429
        assert env.get("/solicitations/v1/orders/111-0000000-0000000", token=other_token,
                       params={"marketplaceIds": US}).status_code == 404


def test_injected_429_faults_carry_amazons_body(limited):
    limited.sandbox.set_faults(1.0, kinds=["429"], seed=1)
    answer = _actions(limited)
    assert answer.status_code == 429 and answer.json() == QUOTA
    assert answer.headers["x-amzn-RequestId"]
    limited.sandbox.set_faults(0.0)
    assert _actions(limited).status_code == 404
    assert limited.sandbox.faults.counts == {"429": 1}


def test_injected_server_errors_carry_amazons_body(limited):
    limited.sandbox.set_faults(1.0, kinds=["500"], seed=3)
    answer = _actions(limited)
    assert answer.status_code == 500
    assert answer.json() == {"errors": [{"code": "InternalFailure", "message": "We encountered an internal "
                                         "error. Please try again.", "details": ""}]}


def test_control_routes_for_out_of_process_use(limited):
    import requests

    base = limited.sandbox.url + "/__sandbox"
    sellers = requests.get(base + "/sellers", timeout=10).json()
    assert [s["seller_id"] for s in sellers] == [s.seller_id for s in limited.sandbox.sellers]
    issued = requests.post(base + "/refresh-token", json={"seller_id": sellers[2]["seller_id"]}, timeout=10).json()
    assert lwa_token(limited.sandbox, issued["refresh_token"]).startswith("Atza|")
    assert requests.post(base + "/faults", json={"rate": 1.0, "kinds": ["503"]}, timeout=10).status_code == 200
    assert _actions(limited).status_code == 503
    assert requests.post(base + "/faults", json={"rate": 0}, timeout=10).status_code == 200
    assert requests.get(base + "/solicitations", timeout=10).json() == []
    assert requests.post(base + "/refresh-token", json={}, timeout=10).status_code == 400
