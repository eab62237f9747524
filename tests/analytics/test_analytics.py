"""Analytics figures equal values computed here independently, in plain Python, from the same rows."""

from __future__ import annotations

import random
import statistics
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from plugin.analytics import (
    SegmentRules,
    clv_summary,
    cohorts,
    flow_performance,
    refresh_customer_metrics,
    repurchase_rate,
    segment_counts,
)
from plugin.models import Customer, CustomerMetrics, Merchant, Message, Order, OrderLine, Product, Review, Store

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
RULES = SegmentRules()


def _seed(session, n_customers=120, seed=5):
    rng = random.Random(seed)
    merchant = Merchant(name="M")
    session.add(merchant)
    session.flush()
    store = Store(merchant_id=merchant.id, platform="shopify", external_id="a.myshopify.com", currency="USD")
    other = Store(merchant_id=merchant.id, platform="shopify", external_id="b.myshopify.com", currency="USD")
    session.add_all([store, other])
    session.flush()
    product = Product(store_id=store.id, external_id="p1", title="Coffee", consumable=True)
    session.add(product)
    session.flush()
    orders = []  # (customer index, created, net, cancelled)
    customers = []
    for i in range(n_customers):
        c = Customer(store_id=store.id, external_id=f"c{i}", email=f"c{i}@example.com")
        customers.append(c)
    session.add_all(customers)
    session.flush()
    k = 0
    for i, c in enumerate(customers):
        start = NOW - timedelta(days=rng.randint(5, 700), hours=rng.randint(0, 23))
        n = rng.choice([1, 1, 1, 2, 3, 5, 6])
        t = start
        for _j in range(n):
            if t > NOW:
                break
            total = Decimal(rng.choice(["19.99", "45.00", "120.50", "210.00", "35.25"]))
            refunded = Decimal("10.00") if rng.random() < 0.1 else Decimal("0")
            cancelled = NOW - timedelta(days=1) if rng.random() < 0.05 else None
            o = Order(store_id=store.id, external_id=f"o{k}", customer_id=c.id, created_at_remote=t, currency="USD",
                      total_price=total, total_refunded=refunded, cancelled_at=cancelled)
            k += 1
            session.add(o)
            orders.append((i, t, total - refunded, cancelled is not None, o))
            t = t + timedelta(days=rng.randint(10, 150))
    # A customer of the other store must never leak into this store's figures.
    oc = Customer(store_id=other.id, external_id="x", email="x@example.com")
    session.add(oc)
    session.flush()
    session.add(Order(store_id=other.id, external_id="ox", customer_id=oc.id, created_at_remote=NOW - timedelta(days=3),
                      currency="USD", total_price=Decimal("999")))
    session.flush()
    return store, other, customers, orders, product


def _expected_metrics(customers, orders):
    per = {}
    for i, t, net, cancelled, _o in orders:
        if not cancelled:
            per.setdefault(i, []).append((t, net))
    expected = {}
    for i, rows in per.items():
        rows.sort()
        year = [n for t, n in rows if t >= NOW - timedelta(days=365)]
        total = sum(n for _t, n in rows)
        spent_12m, orders_12m, largest = sum(year, Decimal(0)), len(year), max(n for _t, n in rows)
        last = rows[-1][0]
        if spent_12m > Decimal(RULES.vip_min_spent_12m) and orders_12m >= RULES.vip_min_orders_12m:
            seg = "vip"
        elif last < NOW - timedelta(days=RULES.dormant_after_days):
            seg = "dormant"
        elif largest >= Decimal(RULES.growth_min_order) and len(rows) <= RULES.growth_max_orders:
            seg = "growth"
        else:
            seg = "active"
        clv = total / len(rows) * orders_12m * 3
        predicted = (last + (last - rows[0][0]) / (len(rows) - 1)) if len(rows) > 1 else None
        expected[customers[i].id] = dict(orders_count=len(rows), total_spent=total, spent_12m=spent_12m,
                                         orders_12m=orders_12m, segment=seg, clv=clv, predicted=predicted,
                                         largest=largest)
    return expected


def test_customer_metrics_and_segments(db_session):
    store, _other, customers, orders, _p = _seed(db_session)
    count = refresh_customer_metrics(db_session, store.id, NOW, RULES, lifetime_years=3.0)
    expected = _expected_metrics(customers, orders)
    assert count == len(expected)
    rows = {m.customer_id: m for m in db_session.scalars(select(CustomerMetrics).where(
        CustomerMetrics.store_id == store.id))}
    assert set(rows) == set(expected)
    for cid, exp in expected.items():
        m = rows[cid]
        assert m.orders_count == exp["orders_count"]
        assert m.total_spent == exp["total_spent"]
        assert m.spent_12m == exp["spent_12m"]
        assert m.orders_12m == exp["orders_12m"]
        assert m.largest_order == exp["largest"]
        assert m.segment == exp["segment"]
        assert float(m.clv) == pytest.approx(float(exp["clv"]), abs=0.01)
        if exp["predicted"] is None:
            assert m.predicted_next_order_at is None
        else:
            assert abs((m.predicted_next_order_at - exp["predicted"]).total_seconds()) < 2
        assert 1 <= m.r_score <= 5 and 1 <= m.f_score <= 5 and 1 <= m.m_score <= 5
    counts = {}
    for exp in expected.values():
        counts[exp["segment"]] = counts.get(exp["segment"], 0) + 1
    assert segment_counts(db_session, [store.id]) == counts
    # Recency quintiles: the most recent fifth of customers gets 5.
    by_recency = sorted(rows.values(), key=lambda m: (m.last_order_at, m.customer_id))
    assert [m.r_score for m in by_recency[-(len(by_recency) // 5):]] == [5] * (len(by_recency) // 5)
    # A second refresh replaces, never duplicates.
    assert refresh_customer_metrics(db_session, store.id, NOW, RULES) == len(expected)


def test_repurchase_rate_and_mode(db_session):
    store, _other, _customers, orders, _p = _seed(db_session)
    per = {}
    for i, t, _net, cancelled, _o in orders:
        if not cancelled:
            per.setdefault(i, []).append(t)
    eligible = repeaters = 0
    for times in per.values():
        times.sort()
        first = times[0]
        if NOW - timedelta(days=455) < first <= NOW - timedelta(days=90):
            eligible += 1
            if any(first < t <= first + timedelta(days=90) for t in times[1:]):
                repeaters += 1
    stats = repurchase_rate(db_session, [store.id], NOW)
    assert (stats.eligible, stats.repeaters) == (eligible, repeaters)
    rate = repeaters / eligible
    assert stats.rate == pytest.approx(rate)
    assert stats.mode == ("acquisition" if rate < 0.15 else "loyalty" if rate > 0.30 else "hybrid")


def test_cohorts(db_session):
    store, _other, _customers, orders, _p = _seed(db_session)
    per = {}
    for i, t, _net, cancelled, _o in orders:
        if not cancelled:
            per.setdefault(i, []).append(t.year * 12 + t.month)
    now_m = NOW.year * 12 + NOW.month
    expected = {}
    for months in per.values():
        first = min(months)
        if first > now_m - 12:
            cell = expected.setdefault(first, {})
            for off in set(m - first for m in months):
                cell[off] = cell.get(off, 0) + 1
    rows = cohorts(db_session, [store.id], NOW, months=12)
    assert [r.month for r in rows] == [f"{(m - 1) // 12:04d}-{(m - 1) % 12 + 1:02d}" for m in sorted(expected)]
    for row, m in zip(rows, sorted(expected), strict=True):
        assert row.customers == expected[m][0]
        assert row.retention[0] == 1.0
        for off, count in expected[m].items():
            assert row.retention[off] == pytest.approx(count / expected[m][0])


def test_clv_summary_and_ratio(db_session):
    store, _other, customers, orders, _p = _seed(db_session)
    refresh_customer_metrics(db_session, store.id, NOW, RULES)
    expected = _expected_metrics(customers, orders)
    active = [float(e["clv"]) for e in expected.values() if e["orders_12m"] > 0]
    summary = clv_summary(db_session, [store.id], Decimal("40"))
    assert summary["customers"] == len(active)
    assert float(summary["clv"]) == pytest.approx(statistics.mean(active), abs=0.01)
    assert summary["clv_to_cac"] == pytest.approx(float(summary["clv"]) / 40)
    assert clv_summary(db_session, [store.id], None)["clv_to_cac"] is None


def test_flow_performance_attribution(db_session):
    store, _other, customers, orders, product = _seed(db_session, n_customers=10)
    c = customers[0]
    order = next(o for i, _t, _n, cancelled, o in orders if i == 0)
    sent_at = NOW - timedelta(days=20)

    def msg(key, flow, **kw):
        m = Message(store_id=store.id, customer_id=c.id, flow=flow, channel="email", idempotency_key=key,
                    scheduled_for=sent_at, created_at=sent_at, **kw)
        db_session.add(m)
        return m

    msg("r1", "review_request", status="sent", sent_at=sent_at, order_id=order.id, clicked_at=sent_at)
    msg("r2", "review_request", status="skipped", skip_reason="suppressed", order_id=order.id)
    msg("p1", "replenishment", status="sent", sent_at=sent_at, product_id=product.id)
    msg("p2", "replenishment", status="sent", sent_at=sent_at - timedelta(days=60), product_id=product.id)
    db_session.flush()
    db_session.add(Review(store_id=store.id, source="judgeme", external_id="rv1", order_id=order.id, rating=5,
                          created_at_remote=sent_at + timedelta(days=2)))
    reorder = Order(store_id=store.id, external_id="re1", customer_id=c.id, currency="USD", total_price=Decimal(20),
                    created_at_remote=sent_at + timedelta(days=3))
    db_session.add(reorder)
    db_session.flush()
    db_session.add(OrderLine(order_id=reorder.id, store_id=store.id, external_id="l1", product_id=product.id,
                             quantity=1, price=Decimal(20)))
    db_session.flush()
    perf = {p.flow: p for p in flow_performance(db_session, [store.id], NOW - timedelta(days=90))}
    assert perf["review_request"].sent == 1 and perf["review_request"].skipped == 1
    assert perf["review_request"].clicked == 1 and perf["review_request"].reviews == 1
    # p1 is followed by a reorder within 7 days; p2 (60 days earlier) is not (its reorder came 63 days later).
    assert perf["replenishment"].sent == 2 and perf["replenishment"].reorders == 1


def test_clv_counts_purchases_not_orders(db_session):
    """A split basket (two orders two hours apart) is one purchase: CLV = value per purchase × purchases a year."""
    store, _other, _customers, _orders, _p = _seed(db_session, n_customers=1)
    c = Customer(store_id=store.id, external_id="split", email="split@example.com")
    db_session.add(c)
    db_session.flush()
    for k, (ago, total) in enumerate(((400.0, "60.00"), (40.0, "30.00"), (40.0 - 2 / 24, "10.00"), (10.0, "20.00"))):
        db_session.add(Order(store_id=store.id, external_id=f"s{k}", customer_id=c.id, currency="USD",
                             created_at_remote=NOW - timedelta(days=ago), total_price=Decimal(total)))
    db_session.flush()
    refresh_customer_metrics(db_session, store.id, NOW, RULES, lifetime_years=3.0)
    m = db_session.get(CustomerMetrics, c.id)
    assert (m.orders_count, m.orders_12m) == (4, 3)  # order counts stay order counts
    # 3 purchases worth 120 (40 each), 2 of them in the last 12 months, 3 years; by orders it would be 120/4 × 3 × 3.
    assert float(m.clv) == pytest.approx(120 / 3 * 2 * 3)
