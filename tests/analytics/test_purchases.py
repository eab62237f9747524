"""One rule for a purchase everywhere: a customer's orders within a day of the purchase's first order.

Every expected figure below is worked out by hand in the comments from the orders the test writes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import text

from plugin.analytics import SegmentRules, refresh_customer_metrics, repurchase_rate
from plugin.models import Customer, CustomerMetrics, Merchant, Order, Store
from plugin.purchases import customer_orders_sql, stage

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def _store(session):
    merchant = Merchant(name="M")
    session.add(merchant)
    session.flush()
    store = Store(merchant_id=merchant.id, platform="shopify", external_id="split.myshopify.com", currency="USD")
    session.add(store)
    session.flush()
    return store


def _customer_with_orders(session, store, name, times, cancelled=()):
    customer = Customer(store_id=store.id, external_id=name, email=f"{name}@example.com")
    session.add(customer)
    session.flush()
    orders = []
    for k, when in enumerate(times):
        order = Order(store_id=store.id, external_id=f"{name}-{k}", customer_id=customer.id, currency="USD",
                      total_price=Decimal("20"), created_at_remote=when,
                      cancelled_at=NOW if k in cancelled else None)
        session.add(order)
        orders.append(order)
    session.flush()
    return customer, [o.id for o in orders]


def test_a_purchase_is_anchored_on_its_first_order_not_chained(db_session):
    store = _store(db_session)
    base = NOW - 30 * DAY
    # a: 0 h and 20 h are one purchase; 30 h is 30 h after its first order: a new one, with 45 h; 80 h a third.
    # (Chaining orders less than a day apart would make 0, 20, 30 and 45 h one purchase.)
    _, a = _customer_with_orders(db_session, store, "a", [base + h * HOUR for h in (0, 20, 30, 45, 80)])
    # b: two orders at the same instant and one at 23:59 are one purchase; exactly 24 h after the first begins one.
    # The cancelled order is no order at all.
    _, b = _customer_with_orders(db_session, store, "b", [base, base, base + 23 * HOUR + 59 * timedelta(minutes=1),
                                                          base + DAY, base + 2 * HOUR], cancelled=(4,))
    dialect = db_session.get_bind().dialect.name
    passes = stage(db_session, "test_purchase", customer_orders_sql(dialect), {"store_id": store.id}, keys=("c",))
    rows = db_session.execute(text("SELECT c, order_id, start_t FROM test_purchase")).all()
    db_session.execute(text("DROP TABLE test_purchase"))
    groups: dict[tuple[int, float], set[int]] = {}
    for customer_id, order_id, start in rows:
        groups.setdefault((customer_id, float(start)), set()).add(order_id)
    assert sorted(sorted(g) for g in groups.values()) == sorted(
        [[a[0], a[1]], [a[2], a[3]], [a[4]], [b[0], b[1], b[2]], [b[3]]])
    assert passes == 1  # one extra pass settled a's run of orders less than a day apart (0, 20, 30, 45 h)


def test_repurchase_rate_and_next_order_count_a_split_order_once(db_session):
    store = _store(db_session)
    first = NOW - 100 * DAY
    # split: a second order 3 h after the first is the same purchase -> eligible, no repeater, no next order.
    split, _ = _customer_with_orders(db_session, store, "split", [first, first + 3 * HOUR])
    # back: 25 h later is a new purchase -> a repeater; two purchases 25 h apart -> next order 25 h after the last.
    back, _ = _customer_with_orders(db_session, store, "back", [first, first + 25 * HOUR])
    # twice: a split first purchase 200 days ago, again 50 days later -> a repeater (50 ≤ 90 days); purchases at
    # −200 d and −150 d -> next order −150 d + 50 d = −100 d (counting orders: gaps 2 h and 50 d - 2 h -> −125 d).
    twice, _ = _customer_with_orders(db_session, store, "twice",
                                     [NOW - 200 * DAY, NOW - 200 * DAY + 2 * HOUR, NOW - 150 * DAY])
    # once: one order 120 days ago -> eligible, no repeater.
    once, _ = _customer_with_orders(db_session, store, "once", [NOW - 120 * DAY])
    stats = repurchase_rate(db_session, [store.id], NOW)
    assert (stats.eligible, stats.repeaters, stats.rate) == (4, 2, 0.5)
    assert refresh_customer_metrics(db_session, store.id, NOW, SegmentRules()) == 4
    metrics = {m.customer_id: m for m in db_session.query(CustomerMetrics).filter_by(store_id=store.id)}
    assert metrics[split.id].predicted_next_order_at is None
    assert metrics[split.id].orders_count == 2  # still two orders
    assert metrics[once.id].predicted_next_order_at is None
    expected = {back.id: first + 50 * HOUR, twice.id: NOW - 100 * DAY}
    for customer_id, when in expected.items():
        assert abs(metrics[customer_id].predicted_next_order_at - when) < timedelta(seconds=1)
