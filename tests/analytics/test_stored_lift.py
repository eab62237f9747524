"""Stored flow lift: the sums the metrics jobs keep give exactly the figures ``flow_lift`` counts live.

Same hand-made store as ``test_flow_lift`` (sent and held-out customers, boundary, cancelled and refunded
orders, other flows, another store). The recount is made 7 days after the fixture's END, so each period
ends at END and the 30-day period cuts the fixture's exposures in two.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from plugin.config import DEFAULTS
from plugin.flow_lift import PERIODS, add_moments, lift_by_flow, moments_by_flow, period_range
from plugin.models import Customer, Message, Store, StoreMetrics
from plugin.store_figures import save_store_figures, stored_lift
from tests.analytics.test_flow_lift import END, FLOW, START, interval, seed, welch

SETTINGS = dict(DEFAULTS["analytics"])
ATTRIBUTION = int(SETTINGS["attribution_days"])
COUNTED_AT = END + timedelta(days=ATTRIBUTION)


def test_stored_sums_give_exactly_the_live_figures_for_every_period(db_session):
    f = seed(db_session)
    save_store_figures(db_session, f.store.id, COUNTED_AT, SETTINGS)
    for days in PERIODS:
        start, end = period_range(COUNTED_AT, days, ATTRIBUTION)
        assert end == END and start == END - timedelta(days=days)
        live = lift_by_flow(db_session, [f.store.id], start, end, attribution_days=ATTRIBUTION)
        figures = stored_lift(db_session, [f.store], days, ATTRIBUTION)
        assert figures is not None
        assert (figures.start, figures.end, figures.computed_at) == (start, end, COUNTED_AT)
        assert figures.lifts == live  # the same floats, not merely close ones
        assert sorted(live) == (["replenishment"] if days == 30 else ["replenishment", "survey"])
    # 30 days (from Jan 30) keeps only part of the fixture's exposures; 90 days and more keep all of them,
    # which the plain-Python figures of the fixture pin down (the test's own rule, not the code's).
    assert stored_lift(db_session, [f.store], 30, ATTRIBUTION).lifts[FLOW].exposed.customers < len(
        f.expected["exposed"])
    lift = stored_lift(db_session, [f.store], 90, ATTRIBUTION).lifts[FLOW]
    # The fixture's out-of-range sent message (START − 1 s) falls inside 90 days: one more exposed customer.
    assert lift.held_out.customers == len(f.expected["held_out"])
    held = [float(v[1]) for v in f.expected["held_out"].values()]
    mean, low, high = interval(held)
    assert lift.held_out.revenue.mean == pytest.approx(mean, rel=1e-12)
    assert lift.held_out.revenue.low == pytest.approx(low, rel=1e-12)
    assert lift.held_out.revenue.high == pytest.approx(high, rel=1e-12)
    assert lift.exposed.customers == len(f.expected["exposed"]) + 1
    exposed = [float(v[0]) for v in f.expected["exposed"].values()] + [1.0]  # its one order, a day later
    diff, low, high = welch(exposed, [float(v[0]) for v in f.expected["held_out"].values()])
    assert (lift.orders_lift.value, lift.orders_lift.low, lift.orders_lift.high) == pytest.approx(
        (diff, low, high), rel=1e-12)


def test_stores_of_one_currency_add_up_and_other_currencies_never(db_session):
    f = seed(db_session)
    for store in (f.store, f.other):
        save_store_figures(db_session, store.id, COUNTED_AT, SETTINGS)
    start, end = period_range(COUNTED_AT, 90, ATTRIBUTION)
    live = lift_by_flow(db_session, [f.store.id, f.other.id], start, end, attribution_days=ATTRIBUTION)
    both = stored_lift(db_session, [f.store, f.other], 90, ATTRIBUTION)
    assert sorted(both.lifts) == sorted(live)
    for flow, lift in live.items():
        got = both.lifts[flow]
        for name in ("exposed", "held_out"):
            assert getattr(got, name).customers == getattr(lift, name).customers
            for kind in ("orders", "revenue"):
                a, b = getattr(getattr(got, name), kind), getattr(getattr(lift, name), kind)
                for x, y in ((a.mean, b.mean), (a.low, b.low), (a.high, b.high)):
                    assert x == y if y is None else x == pytest.approx(y, rel=1e-12)
    # The per-store sums add up to the sums of both stores counted at once.
    per_store = add_moments(moments_by_flow(db_session, [s.id], start, end, ATTRIBUTION) for s in (f.store, f.other))
    together = moments_by_flow(db_session, [f.store.id, f.other.id], start, end, ATTRIBUTION)
    assert {k: {g: (o.n, r.n) for g, (o, r) in v.items()} for k, v in per_store.items()} == {
        k: {g: (o.n, r.n) for g, (o, r) in v.items()} for k, v in together.items()}
    usd = Store(merchant_id=f.store.merchant_id, platform="shopify", external_id="c.myshopify.com", currency="USD")
    db_session.add(usd)
    db_session.flush()
    with pytest.raises(ValueError, match="currencies"):
        stored_lift(db_session, [f.store, usd], 90, ATTRIBUTION)


def test_no_stored_sums_means_counting_not_a_live_count(db_session):
    f = seed(db_session)
    assert stored_lift(db_session, [f.store], 90, ATTRIBUTION) is None
    save_store_figures(db_session, f.store.id, COUNTED_AT, SETTINGS)
    # Counts of another attribution window are not shown as if they were the configured one's.
    assert stored_lift(db_session, [f.store], 90, ATTRIBUTION + 1) is None
    assert stored_lift(db_session, [f.store], 90, ATTRIBUTION) is not None
    # A store of several without its own sums makes the whole view wait.
    assert stored_lift(db_session, [f.store, f.other], 90, ATTRIBUTION) is None
    # Counts written before the lift sums were kept (no "lift" key) wait for the next job as well.
    row = db_session.get(StoreMetrics, f.store.id)
    row.figures = {k: v for k, v in row.figures.items() if k != "lift"}
    db_session.flush()
    assert stored_lift(db_session, [f.store], 90, ATTRIBUTION) is None


def test_stored_figures_stay_until_the_next_recount(db_session):
    f = seed(db_session)
    save_store_figures(db_session, f.store.id, COUNTED_AT, SETTINGS)
    before = stored_lift(db_session, [f.store], 90, ATTRIBUTION).lifts[FLOW].held_out.customers
    for i in range(3):
        c = Customer(store_id=f.store.id, external_id=f"late{i}", email=f"late{i}@x.test")
        db_session.add(c)
        db_session.flush()
        db_session.add(Message(store_id=f.store.id, customer_id=c.id, flow=FLOW, step="main", channel="email",
                               idempotency_key=f"late{i}", scheduled_for=START + timedelta(days=10),
                               status="skipped", skip_reason="holdout"))
    db_session.flush()
    assert stored_lift(db_session, [f.store], 90, ATTRIBUTION).lifts[FLOW].held_out.customers == before
    later = COUNTED_AT + timedelta(hours=1)
    save_store_figures(db_session, f.store.id, later, SETTINGS)
    after = stored_lift(db_session, [f.store], 90, ATTRIBUTION)
    # The period moved on by the hour too, and took in the fixture's held-out customer of END.
    assert after.lifts[FLOW].held_out.customers == before + 3 + 1 and after.computed_at == later
    assert after.end == END + timedelta(hours=1)
