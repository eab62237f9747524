"""What Amazon meters per seller outlives a job run: one LWA access token until it nears expiry, and token
buckets shared by back-to-back runs and concurrent workers (the sandbox's own buckets answer 429 otherwise)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from base.clock import FrozenClock
from connectors.amazon.solicitations import review_request_offered
from plugin.marketplaces import open_session
from plugin.models import LwaAccessToken, Store
from plugin.sp_api_state import DatabaseBuckets
from plugin.sync.amazon_run import sync_amazon_store
from tests.amazon_env import NOW, start_env
from tests.conftest import wipe

TOKEN = "/auth/o2/token"


@pytest.fixture
def env(database, tmp_path):
    """A 600-order sandbox with Amazon's rate limits, the first seller connected."""
    environment = start_env(database, tmp_path, orders=600)
    yield environment
    environment.sandbox.stop()
    wipe(database.engine)


def test_back_to_back_runs_share_one_access_token_until_it_nears_expiry(env):
    first = sync_amazon_store(env.context(), env.store_id)
    second = sync_amazon_store(env.context(), env.store_id)
    assert env.recorder.count("POST", TOKEN) == 1
    assert (first["token_requests"], second["token_requests"]) == (1, 0)
    # Stored encrypted: the row holds no clear text, and the vault opens it to the token the sandbox issued.
    issued = [t for t, record in env.sandbox.lwa.access_tokens.items() if record.seller_id == env.seller.seller_id]
    with env.database.session() as session:
        row = session.get(LwaAccessToken, env.store_id)
        assert len(issued) == 1 and issued[0].encode() not in row.token_enc
        assert env.vault.decrypt(row.token_enc) == issued[0]
        issued_at = env.sandbox.lwa.access_tokens[issued[0]].expires_at - timedelta(hours=1)
    # A run later than a minute before the hour is up fetches the next one, and the run after reuses that.
    env.clock.set(issued_at + timedelta(seconds=3600 - 59))
    sync_amazon_store(env.context(), env.store_id)
    sync_amazon_store(env.context(), env.store_id)
    assert env.recorder.count("POST", TOKEN) == 2


def test_a_reconnected_seller_never_reuses_the_old_token(env):
    sync_amazon_store(env.context(), env.store_id)
    from plugin.secrets_store import set_credential

    with env.database.session() as session:
        set_credential(session.get(Store, env.store_id), env.vault, "refresh_token_enc",
                       env.sandbox.issue_refresh_token(env.seller.seller_id))
    sync_amazon_store(env.context(), env.store_id)
    assert env.recorder.count("POST", TOKEN) == 2


def test_back_to_back_runs_get_no_429(env):
    """The first run spends searchOrders' burst (20); the next one, at once, waits for Amazon's refill."""
    first = sync_amazon_store(env.context(amazon_page_size=15), env.store_id)
    assert first["pages"] > 20  # the burst is spent
    finished = env.clock.now()
    second = sync_amazon_store(env.context(amazon_page_size=15), env.store_id)
    assert env.recorder.count("GET", "/orders/", 429) == 0
    assert (first["throttled"], second["throttled"]) == (0, 0)
    # Its first call waited for the token the first run's last calls had not left (one per 1/0.0056 s).
    first_call = next(when for method, path, _q, when in env.recorder.calls
                      if path.startswith("/orders/") and when >= finished)
    assert first_call > finished


def test_two_concurrent_workers_stay_inside_one_bucket(env):
    """Two workers ask the actions list 6 times each at once: burst 5, 1 per second, no 429 from the sandbox."""
    sync_amazon_store(env.context(), env.store_id)
    orders = [o for o in env.sandbox.orders_of(env.seller.seller_id) if o.purchase_date <= env.clock.now()]
    barrier = threading.Barrier(2)
    answers: list[tuple[int, dict]] = []
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            ctx = env.context()
            with env.database.session() as session:
                store = session.get(Store, env.store_id)
            with open_session(ctx, store) as api:
                barrier.wait(timeout=10)
                for order in orders[n * 6:(n + 1) * 6]:
                    review_request_offered(api, order.order_id, order.marketplace_id)
                answers.append((n, dict(api.stats)))
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert env.recorder.count("GET", "/solicitations/", 429) == 0
    assert env.recorder.count("GET", "/solicitations/", 200) == 12
    assert sorted((n, s["calls"], s["throttled"]) for n, s in answers) == [(0, 6, 0), (1, 6, 0)]


@pytest.mark.parametrize("threads", [2, 4])
def test_concurrent_reservations_never_hand_out_a_token_twice(database, tmp_path, threads):
    """At one frozen instant, N workers take 8 tokens each from a bucket of 5 at 2 per second: 5 go at once and
    the others are due exactly 0.5 s apart, each due time once (the bucket's state is one atomic update)."""
    env = start_env(database, tmp_path, orders=10)
    env.sandbox.stop()
    try:
        clock = FrozenClock(NOW)
        waits: list[float] = []
        lock = threading.Lock()
        barrier = threading.Barrier(threads)

        def worker() -> None:
            buckets = DatabaseBuckets(env.database, env.store_id, clock)
            barrier.wait(timeout=10)
            for _ in range(8):
                wait = buckets.reserve("solicitations.getSolicitationActionsForOrder", 2.0, 5)
                with lock:
                    waits.append(round(wait, 6))

        pool = [threading.Thread(target=worker) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(60)
        total = 8 * threads
        assert sorted(waits) == [0.0] * 5 + [round(k / 2.0 + 0.02, 6) for k in range(1, total - 5 + 1)]
    finally:
        wipe(database.engine)


def test_the_bucket_refills_across_runs_at_amazons_rate(database, tmp_path):
    """A bucket left empty by one run holds exactly the tokens its rate refilled when the next one starts."""
    env = start_env(database, tmp_path, orders=10)
    env.sandbox.stop()
    try:
        clock = FrozenClock(NOW)
        run = DatabaseBuckets(env.database, env.store_id, clock)
        assert [run.reserve("orders.searchOrders", 0.0056, 20) for _ in range(20)] == [0.0] * 20
        clock.advance(seconds=3 / 0.0056)  # three tokens' time
        later = DatabaseBuckets(env.database, env.store_id, clock)  # another run, another process
        waits = [later.reserve("orders.searchOrders", 0.0056, 20) for _ in range(4)]
        assert waits[:3] == [0.0, 0.0, 0.0] and waits[3] == pytest.approx(1 / 0.0056 + 0.02)
        with env.database.session() as session:
            assert session.scalars(select(LwaAccessToken)).all() == []
    finally:
        wipe(database.engine)
