"""Amazon orders sync against the SP-API sandbox over HTTP: exact orders and items, idempotent, fault-proof."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from plugin.models import Order, OrderLine, SyncRejection, SyncState, Variant
from plugin.sync.amazon_run import sync_amazon_store
from sandbox.amazon.orders import STATUS_2026
from tests.amazon_env import NOW, start_env
from tests.conftest import wipe


@pytest.fixture
def env(database, tmp_path, request):
    """A sandbox (600 orders over three sellers, or the count given indirectly) with rate limits; seller 0 connected."""
    environment = start_env(database, tmp_path, orders=getattr(request, "param", 600))
    yield environment
    environment.sandbox.stop()
    wipe(database.engine)


def expected_orders(env) -> dict[str, tuple]:
    """Compute, from the sandbox's seeded data, what the seller's orders must look like once synced."""
    now = env.clock.now()
    out = {}
    for o in env.sandbox.orders_of(env.seller.seller_id):
        if o.purchase_date > now:
            continue
        status = o.status_at(now)
        out[o.order_id] = (o.marketplace_id, o.fulfillment_channel, o.currency, o.total.quantize(Decimal("0.001")),
                           # Amazon's status stops at SHIPPED; the packages say when it arrived.
                           "delivered" if status == "Shipped" and o.delivered_by(now) else STATUS_2026[status].lower(),
                           status == "Canceled", o.purchase_date,
                           o.last_update_at(now), o.earliest_delivery_date, o.latest_delivery_date,
                           sorted((i.order_item_id, i.asin, i.sku, i.quantity, i.unit_price.quantize(Decimal("0.001")))
                                  for i in o.items))
    return out


def stored_orders(env) -> dict[str, tuple]:
    """Read the same facts back from the database."""
    out = {}
    with env.database.session() as session:
        orders = session.scalars(select(Order).where(Order.store_id == env.store_id)).all()
        variants = dict(session.execute(select(Variant.id, Variant.external_id)).all())
        for o in orders:
            lines = session.scalars(select(OrderLine).where(OrderLine.order_id == o.id)).all()
            from plugin.models import Product
            products = dict(session.execute(select(Product.id, Product.external_id)).all())
            out[o.external_id] = (o.marketplace_id, o.fulfillment_channel, o.currency, o.total_price,
                                  o.fulfillment_status, o.cancelled_at is not None, o.created_at_remote,
                                  o.remote_updated_at, o.earliest_delivery_at, o.latest_delivery_at,
                                  sorted((ln.external_id, products[ln.product_id], variants[ln.variant_id],
                                          ln.quantity, ln.price) for ln in lines))
    return out


def counts(env) -> tuple[int, int]:
    with env.database.session() as session:
        return (session.scalar(select(func.count()).select_from(Order)),
                session.scalar(select(func.count()).select_from(OrderLine)))


@pytest.mark.parametrize("env", [5000], indirect=True, ids=["5000 orders"])
def test_first_sync_gives_exactly_the_sellers_orders_and_items(env):
    result = sync_amazon_store(env.context(), env.store_id)
    # 31 pages: 20 from the burst, then one per 1/0.0056 s; the sandbox clock moves ~33 minutes while
    # paging, so orders that changed after the run's lastUpdatedBefore are the next run's business.
    assert result["pages"] == 31 and result["throttled"] == 0
    assert (env.clock.now() - NOW).total_seconds() >= 11 / 0.0056
    unsettled = assert_exact_up_to(env, cursor(env))
    assert result["seen"] == len(stored_orders(env)) >= len(expected_orders(env)) - unsettled
    sync_amazon_store(env.context(), env.store_id)
    expected = expected_orders(env)
    assert len(expected) > 3000  # the first seller holds most of the 5,000 seeded orders
    assert stored_orders(env) == expected
    assert counts(env) == (len(expected), sum(len(v[-1]) for v in expected.values()))
    with env.database.session() as session:
        state = session.scalar(select(SyncState).where(SyncState.store_id == env.store_id,
                                                       SyncState.stream == "amazon_orders"))
        # The cursor is the lastUpdatedBefore Amazon applied: two minutes before the run's first request.
        assert state.cursor.endswith("Z") and state.last_error is None
        flags = {o.external_id: (o.returned, o.refunded, o.total_refunded)
                 for o in session.scalars(select(Order)) if o.returned or o.refunded}
    # Returns and refunds, from the sandbox's seeded returns: FBA returns show no refund, MFN ones do.
    now = env.clock.now()
    mine = [r for r in env.sandbox.returns if r.seller_id == env.seller.seller_id and r.return_date <= now]
    expected_flags = {}
    for r in mine:
        mfn_refund = env.sandbox.orders_by_id[r.order_id].fulfillment_channel == "MFN" and r.refunded_at
        expected_flags[r.order_id] = (True, bool(mfn_refund),
                                      r.refund_amount.quantize(Decimal("0.001")) if mfn_refund else Decimal("0"))
    assert len(expected_flags) >= 3
    assert flags == expected_flags


def test_rerun_changes_nothing_and_reads_only_the_overlap(env):
    sync_amazon_store(env.context(), env.store_id)
    before = stored_orders(env)
    second = sync_amazon_store(env.context(), env.store_id)
    assert second["orders"] == 0 and second["lines_written"] == 0 and second["lines_deleted"] == 0
    assert stored_orders(env) == before


def test_incremental_run_picks_up_changes_after_the_cursor(env):
    sync_amazon_store(env.context(), env.store_id)
    env.clock.advance(hours=6)
    new = env.sandbox.add_order(env.seller.seller_id, env.seller.marketplace_ids[0],
                                purchase_date=env.clock.now().replace(microsecond=0))
    shipped = next(o for o in env.sandbox.orders_of(env.seller.seller_id)
                   if o.status_at(env.clock.now()) == "Shipped")
    env.sandbox.cancel_order(shipped.order_id)
    env.clock.advance(minutes=5)
    result = sync_amazon_store(env.context(), env.store_id)
    assert stored_orders(env) == expected_orders(env)
    with env.database.session() as session:
        cancelled = session.scalar(select(Order).where(Order.external_id == shipped.order_id))
        assert cancelled.fulfillment_status == "cancelled" and cancelled.cancelled_at is not None
        assert session.scalar(select(Order).where(Order.external_id == new.order_id)) is not None
    # Only the orders updated since the cursor (minus the overlap) were read.
    assert result["seen"] < 20


def cursor(env):
    with env.database.session() as session:
        state = session.scalar(select(SyncState).where(SyncState.store_id == env.store_id))
        return datetime.fromisoformat(state.cursor.replace("Z", "+00:00"))


def assert_exact_up_to(env, bound):
    """Every order last updated by ``bound`` is stored exactly as the sandbox has it now.

    Retries and 429 waits move the shared clock, so orders can change while a run pages; those changed
    after the run's lastUpdatedBefore belong to the next run (its overlap window starts before them).
    """
    expected, stored = expected_orders(env), stored_orders(env)
    settled = {k for k, v in expected.items() if v[7] <= bound}
    assert {k: stored.get(k) for k in settled} == {k: expected[k] for k in settled}
    assert set(stored) <= set(expected)
    return len(expected) - len(settled)


def test_ten_percent_faults_converge_exactly(env):
    env.sandbox.set_faults(0.10, seed=3)
    result = sync_amazon_store(env.context(amazon_page_size=10), env.store_id)
    assert sum(env.sandbox.faults.counts.values()) > 0
    assert result["retries"] > 0
    assert_exact_up_to(env, cursor(env))
    sync_amazon_store(env.context(amazon_page_size=10), env.store_id)
    assert_exact_up_to(env, cursor(env))
    env.sandbox.set_faults(0.0)
    env.clock.advance(hours=1)
    sync_amazon_store(env.context(), env.store_id)
    assert stored_orders(env) == expected_orders(env)


def rejections_of(env) -> dict[str, tuple[str, int]]:
    with env.database.session() as session:
        rows = session.scalars(select(SyncRejection).where(SyncRejection.store_id == env.store_id,
                                                           SyncRejection.stream == "amazon_orders")).all()
        return {r.external_id: (r.reason, r.times_seen) for r in rows}


def test_an_unreadable_order_is_noted_with_its_reason_and_the_sync_goes_on(env):
    """Amazon serves two malformed amounts among good orders: both are noted, every other order is stored."""
    now = env.clock.now()
    mine = sorted((o for o in env.sandbox.orders_of(env.seller.seller_id) if o.purchase_date <= now),
                  key=lambda o: (o.last_update_at(now), o.order_id))
    comma, word = mine[5].order_id, mine[len(mine) // 2].order_id  # on the first page, and on a later one
    env.sandbox.garble(comma, "proceeds.grandTotal.amount", "12,99")
    env.sandbox.garble(word, "orderItems.0.product.price.unitPrice.amount", "abc")
    result = sync_amazon_store(env.context(amazon_page_size=50), env.store_id)
    expected = expected_orders(env)
    assert result["rejected"] == 2 and result["pages"] == -(-len(expected) // 50)
    assert stored_orders(env) == {k: v for k, v in expected.items() if k not in (comma, word)}
    assert rejections_of(env) == {
        comma: ("proceeds.grandTotal.amount '12,99' is not a decimal amount", 1),
        word: ("orderItems.product.price.unitPrice.amount 'abc' is not a decimal amount", 1),
    }
    with env.database.session() as session:
        state = session.scalar(select(SyncState).where(SyncState.store_id == env.store_id,
                                                       SyncState.stream == "amazon_orders"))
        assert (state.cursor, state.last_error) == ("2026-03-02T11:58:00Z", None)  # the cursor moved on
    # Amazon mends one order (a later update): the next run stores it and forgets its note; the other stays noted.
    env.sandbox.orders_by_id[comma].garbled.clear()
    env.clock.advance(hours=1)
    env.sandbox.cancel_order(comma)
    env.clock.advance(minutes=5)
    sync_amazon_store(env.context(), env.store_id)
    assert rejections_of(env) == {word: ("orderItems.product.price.unitPrice.amount 'abc' is not a decimal amount",
                                         1)}
    assert stored_orders(env) == {k: v for k, v in expected_orders(env).items() if k != word}
