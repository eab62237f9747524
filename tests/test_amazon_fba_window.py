"""FBA orders without a deliver-by window: asked daily from an estimate (latest ship date + transit + 5 days) until
Amazon offers the solicitation or the estimated window closes; sent only when Amazon's actions list offers it."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from plugin import flow_settings
from plugin.flows import amazon_review_request
from plugin.models import Order
from plugin.sync.amazon_run import sync_amazon_store
from sandbox.amazon.solicitations import SolicitationRecord
from tests.amazon_env import start_env
from tests.conftest import wipe
from tests.test_amazon_reviews import dispatch, ledger, messages, solicitation_calls, window

DAY = timedelta(days=1)
TRANSIT = timedelta(days=3)  # the setting's default


@pytest.fixture
def env(database, tmp_path):
    """A 300-order sandbox whose FBA orders of the first seller show no deliver-by window (as Amazon often does)."""
    environment = start_env(database, tmp_path, orders=300)
    for order in environment.sandbox.orders_of(environment.seller.seller_id):
        if order.fulfillment_channel == "AFN":
            environment.sandbox.hide_delivery_window(order.order_id)
    yield environment
    environment.sandbox.stop()
    wipe(database.engine)


def estimated(order) -> tuple[datetime, datetime]:
    """The estimated window, from the sandbox's latest ship date (independently of the planner's code)."""
    return order.latest_ship_date + TRANSIT + timedelta(days=5), order.latest_ship_date + TRANSIT + timedelta(days=30)


def run_days(env, days: int) -> list[datetime]:
    """Each day: sync, plan, dispatch; an hour later the dispatcher runs again (it runs every minute in production)."""
    start, times = env.clock.now(), []
    for k in range(days):
        env.clock.set(start + k * DAY)
        times.append(env.clock.now())
        sync_amazon_store(env.context(), env.store_id)
        amazon_review_request.run(env.context(), env.store_id)
        dispatch(env)
        env.clock.set(start + k * DAY + timedelta(hours=1))
        dispatch(env)
    return times


def amazon_eligible(env, order, t: datetime) -> bool:
    returned = [r.return_date for r in env.sandbox.returns if r.order_id == order.order_id]
    start, end = window(order)
    return (start <= t <= end and order.purchase_date <= t and order.status_at(t) not in ("Canceled", "Pending")
            and not (returned and min(returned) <= t))


def test_fba_orders_without_a_window_are_asked_from_the_estimate_and_sent_when_offered(env):
    hidden = [o for o in env.sandbox.orders_of(env.seller.seller_id) if not o.shows_delivery_window]
    assert len(hidden) > 60
    # The seller already asked from Seller Central for one order planned midway: Amazon never offers it again.
    start = env.clock.now()
    asked_elsewhere = next(o for o in sorted(hidden, key=lambda o: o.order_id)
                           if start + 2 * DAY < estimated(o)[0] < start + 5 * DAY
                           and amazon_eligible(env, o, estimated(o)[0] + DAY))
    env.sandbox.solicitations.add(SolicitationRecord(asked_elsewhere.order_id, asked_elsewhere.marketplace_id,
                                                     env.seller.seller_id, start))
    times = run_days(env, 40)

    sent = ledger(env)
    with env.database.session() as session:
        stored = {o.external_id: o for o in session.scalars(select(Order).where(Order.store_id == env.store_id))}
    # Synced as Amazon sends them: no delivery window, the ship-by date kept.
    assert all(stored[o.order_id].earliest_delivery_at is None and
               stored[o.order_id].latest_ship_at == o.latest_ship_date for o in hidden if o.order_id in stored)
    # Every FBA order whose estimated window met a day Amazon offered it was solicited (once, see ledger()) ...
    expected = {o.order_id for o in hidden if o.order_id != asked_elsewhere.order_id
                and any(estimated(o)[0] <= t <= estimated(o)[1] and amazon_eligible(env, o, t) for t in times)}
    assert len(expected) > 15
    orders = env.sandbox.orders_by_id
    assert {k for k in sent if not orders[k].shows_delivery_window} - {asked_elsewhere.order_id} == expected
    calls = solicitation_calls(env)
    for order_id in expected:
        first_day = min(t for t in times if estimated(orders[order_id])[0] <= t and
                        amazon_eligible(env, orders[order_id], t))
        assert first_day <= sent[order_id] < first_day + DAY + timedelta(hours=2), order_id
    # ... never outside Amazon's window, and each POST right after an actions check that offered it.
    for method, order_id, when in calls:
        if orders[order_id].shows_delivery_window is False:
            lo, hi = estimated(orders[order_id])
            assert lo <= when <= hi + timedelta(hours=2), (method, order_id, when)
    for order_id in (o.order_id for o in hidden if o is not asked_elsewhere):
        mine = [c[0] for c in calls if c[1] == order_id]
        if order_id in sent:
            assert mine[-2:] == ["GET", "POST"] and mine.count("POST") == 1
            start_w, end_w = window(orders[order_id])
            assert start_w <= sent[order_id] <= end_w
        else:
            assert "POST" not in mine
    # The order Amazon never offered: asked every day of its estimated window, then recorded for what happened.
    lo, hi = estimated(asked_elsewhere)
    asks = [when for method, order_id, when in calls if order_id == asked_elsewhere.order_id]
    assert asks and lo <= asks[0] < lo + DAY and hi - DAY - timedelta(hours=2) < asks[-1] <= hi
    assert all(DAY <= b - a <= DAY + timedelta(hours=2) for a, b in zip(asks, asks[1:], strict=False))
    row = messages(env)[asked_elsewhere.order_id]
    assert (row.status, row.skip_reason) == ("skipped", "estimated_window_closed")
    assert "did not offer the solicitation on any day of the estimated window" in row.last_error


def test_the_transit_setting_moves_the_first_ask(env):
    with env.database.session() as session:
        flow_settings.update(session, env.config, env.store_id, "amazon_review_request", {"estimated_transit_days": 6})
    sync_amazon_store(env.context(), env.store_id)
    amazon_review_request.run(env.context(), env.store_id)
    now = env.clock.now()
    rows = {k: m for k, m in messages(env).items() if not env.sandbox.orders_by_id[k].shows_delivery_window}
    due = {o.order_id: o.latest_ship_date + timedelta(days=6 + 5)
           for o in env.sandbox.orders_of(env.seller.seller_id)
           if not o.shows_delivery_window and o.status_at(now) not in ("Canceled",) and o.purchase_date <= now
           and o.latest_ship_date + timedelta(days=6 + 5) <= now <= o.latest_ship_date + timedelta(days=6 + 30)
           and not any(r.order_id == o.order_id and r.return_date <= now for r in env.sandbox.returns)}
    assert len(due) > 10
    assert {k: m.scheduled_for for k, m in rows.items()} == due
    assert {tuple(m.payload["estimated_window"]) for m in rows.values()} == {
        ((d).isoformat(), (d + timedelta(days=25)).isoformat()) for d in due.values()}
