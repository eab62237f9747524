"""The SP-API session over real HTTP: pacing, bounded retries, typed errors, token refresh, timeouts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from base.clock import FrozenClock
from connectors.amazon.client import Credentials, OrdersApi, SolicitationsApi, SpApiSession
from connectors.amazon.errors import AuthError, InvalidInput, NotFound, QuotaExceeded, ServerError
from connectors.amazon.orders import OPERATION
from sandbox.amazon import AmazonSandbox
from sandbox.server import ServerThread
from tests.amazon_env import CallRecorder

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def box():
    """A sandbox with Amazon's default usage plans on a frozen clock, behind a call recorder."""
    clock = FrozenClock(NOW)
    sandbox = AmazonSandbox(seed=3, orders=400, clock=clock)
    recorder = CallRecorder(sandbox.wsgi_app, clock)
    sandbox._server = ServerThread(recorder).start()
    yield sandbox, clock, recorder
    sandbox.stop()


def session_for(sandbox, clock, refresh_token=None, **options) -> SpApiSession:
    seller = sandbox.seller(0)
    token = refresh_token or sandbox.issue_refresh_token(seller.seller_id)
    return SpApiSession(Credentials(sandbox.client_id, sandbox.client_secret, token), region="na",
                        endpoint=sandbox.url, lwa_token_url=sandbox.lwa_token_url, clock=clock,
                        sleep=lambda s: clock.advance(seconds=s), **options)


def search(session, sandbox, **params):
    api = session.api(OrdersApi)
    params.setdefault("createdAfter", "2025-09-01T00:00:00Z")
    return session.call(OPERATION, api.search_orders, marketplaceIds=sandbox.seller(0).marketplace_ids,
                        maxResultsPerPage=1, **params)


def statuses(recorder, prefix="/orders/"):
    return [path for _m, path, _q, _t in recorder.calls if path.startswith(prefix)]


def test_pacing_follows_rate_and_burst_without_a_single_429(box):
    sandbox, clock, recorder = box
    with session_for(sandbox, clock) as session:
        for _ in range(30):
            search(session, sandbox)
        elapsed = (clock.now() - NOW).total_seconds()
        assert session.stats == {"calls": 30, "throttled": 0, "retries": 0, "token_requests": 1}
    # 20 calls from the burst, then one per 1/0.0056 s: 10 waits of ~178.6 s (plus a 20 ms margin each).
    assert 10 / 0.0056 <= elapsed <= 10 / 0.0056 + 10 * 0.05


def test_a_429_empties_the_bucket_and_the_next_call_waits_one_token(box):
    sandbox, clock, _recorder = box
    with session_for(sandbox, clock) as session:
        search(session, sandbox)
        # Another client of the same seller drained Amazon's bucket meanwhile.
        for _ in range(25):
            sandbox.buckets.take(f"{sandbox.client_id}/{sandbox.seller(0).seller_id}",
                                 "orders_2026-01-01.searchOrders")
        before = clock.now()
        search(session, sandbox)
        assert session.stats["throttled"] == 1
        assert (clock.now() - before).total_seconds() >= 1 / 0.0056


def test_retries_are_bounded_and_typed(box):
    sandbox, clock, recorder = box
    with session_for(sandbox, clock, max_attempts=3) as session:
        search(session, sandbox)  # log in first, so the faults hit the API call
        sandbox.set_faults(1.0, kinds=["429"], seed=1)
        with pytest.raises(QuotaExceeded):
            search(session, sandbox)
        sandbox.set_faults(1.0, kinds=["500", "503", "drop"], seed=1)
        with pytest.raises(ServerError):
            search(session, sandbox)
        sandbox.set_faults(1.0, kinds=["malformed"], seed=1)
        with pytest.raises(ServerError, match="malformed"):
            search(session, sandbox)  # a 200 with a broken body is never taken for an empty page
        sandbox.set_faults(0.0)
    assert len(statuses(recorder)) == 1 + 3 * 3


def test_client_errors_are_not_retried(box):
    sandbox, clock, recorder = box
    with session_for(sandbox, clock) as session:
        api = session.api(OrdersApi)
        with pytest.raises(NotFound):
            session.call("orders.getOrder", api.get_order, "111-0000000-0000000")
        with pytest.raises(InvalidInput, match="two minutes"):
            search(session, sandbox, createdBefore=(NOW + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"))
        sol = session.api(SolicitationsApi)
        with pytest.raises(InvalidInput):
            session.call("solicitations.getSolicitationActionsForOrder", sol.get_solicitation_actions_for_order,
                         sandbox.orders_of(sandbox.seller(0).seller_id)[0].order_id, marketplaceIds="A1VC38T7YXB528")
    assert len(statuses(recorder, "/")) == 4  # one LWA call and three API calls, no retries


def test_lwa_refusal_is_an_auth_error_naming_invalid_grant(box):
    sandbox, clock, _ = box
    with session_for(sandbox, clock, refresh_token="Atzr|forged") as session:
        with pytest.raises(AuthError, match=r"LWA refused the refresh token \(invalid_grant\)"):
            search(session, sandbox)


def test_an_access_token_dropped_early_is_renewed_once(box):
    sandbox, clock, recorder = box
    with session_for(sandbox, clock) as session:
        search(session, sandbox)
        sandbox.lwa.expire_all()
        search(session, sandbox)
        tokens = [p for _m, p, _q, _t in recorder.calls if p == "/auth/o2/token"]
        assert len(tokens) == 2
        clock.advance(hours=2)  # past the token's expires_in: renewed before the call, no 403
        search(session, sandbox)
        assert len([p for _m, p, _q, _t in recorder.calls if p == "/auth/o2/token"]) == 3


def test_every_call_has_a_timeout(box):
    sandbox, clock, _ = box
    with session_for(sandbox, clock, timeout=0.3, max_attempts=2) as session:
        search(session, sandbox)
        sandbox.faults.configure(1.0, ["slow"], slow_seconds=1.0)
        with pytest.raises(ServerError, match="network failure"):
            search(session, sandbox)
        sandbox.faults.configure(0.0)
