"""Stored overview counts: what the metrics jobs keep per store equals the figures worked out here in Python."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from plugin.analytics import refresh_customer_metrics
from plugin.config import DEFAULTS
from plugin.models import Customer, Order, StoreMetrics
from plugin.store_figures import overview_figures, save_store_figures
from tests.analytics.test_analytics import NOW, RULES, _seed

SETTINGS = dict(DEFAULTS["analytics"])


def _orders_by_customer(session, store_ids):
    """Return {customer id: sorted order times} of counted (not cancelled) orders, read row by row."""
    per: dict[int, list] = {}
    for order in session.query(Order).filter(Order.store_id.in_(store_ids)).all():
        if order.cancelled_at is None and order.customer_id is not None:
            per.setdefault(order.customer_id, []).append(order.created_at_remote)
    return {c: sorted(times) for c, times in per.items()}


def _expected(per, now):
    """Work out repurchase counts, cohort cells and orders per month the way the page defines them."""
    eligible = repeaters = 0
    cells: dict[int, dict[int, int]] = {}
    now_m = now.year * 12 + now.month
    for times in per.values():
        first = times[0]
        if now - timedelta(days=455) < first <= now - timedelta(days=90):
            eligible += 1
            repeaters += any(first < t <= first + timedelta(days=90) for t in times[1:])
        months = {t.year * 12 + t.month for t in times}
        first_m = min(months)
        if first_m > now_m - 12:
            for m in months:
                cells.setdefault(first_m, {}).setdefault(m - first_m, 0)
                cells[first_m][m - first_m] += 1
    orders_per_month = {}
    firsts_per_month = {}
    for times in per.values():
        for t in times:
            m = t.year * 12 + t.month
            if m > now_m - 12:
                orders_per_month[m] = orders_per_month.get(m, 0) + 1
        m = times[0].year * 12 + times[0].month
        if m > now_m - 12:
            firsts_per_month[m] = firsts_per_month.get(m, 0) + 1
    return eligible, repeaters, cells, orders_per_month, firsts_per_month


def _check(figures, expected, now):
    eligible, repeaters, cells, orders_pm, firsts_pm = expected
    assert (figures["stats"].eligible, figures["stats"].repeaters) == (eligible, repeaters)
    assert figures["stats"].rate == pytest.approx(repeaters / eligible)
    assert [r.month for r in figures["cohorts"]] == [f"{(m - 1) // 12:04d}-{(m - 1) % 12 + 1:02d}"
                                                     for m in sorted(cells)]
    for row, m in zip(figures["cohorts"], sorted(cells), strict=True):
        assert row.customers == cells[m][0]
        assert len(row.retention) == now.year * 12 + now.month - m + 1
        for off, count in cells[m].items():
            assert row.retention[off] == pytest.approx(count / cells[m][0])
    now_m = now.year * 12 + now.month
    months = list(range(now_m - 11, now_m + 1))
    assert [label for label, _, _ in figures["monthly"]] == [f"{(m - 1) // 12:04d}-{(m - 1) % 12 + 1:02d}"
                                                              for m in months]
    assert [o for _, o, _ in figures["monthly"]] == [orders_pm.get(m, 0) for m in months]
    assert [f for _, _, f in figures["monthly"]] == [firsts_pm.get(m, 0) for m in months]


def test_stored_counts_of_two_stores_add_up_to_the_figures(db_session):
    store, other, _customers, _orders, _p = _seed(db_session)
    for s in (store, other):
        refresh_customer_metrics(db_session, s.id, NOW, RULES)
        save_store_figures(db_session, s.id, NOW, SETTINGS)
    rows = {r.store_id: r for r in db_session.query(StoreMetrics).all()}
    assert set(rows) == {store.id, other.id} and all(r.computed_at == NOW for r in rows.values())
    # Only counts are kept: the other store's one customer ordered 3 days ago (a February cohort of one).
    assert rows[other.id].figures["repurchase"] == [0, 0]
    assert rows[other.id].figures["cohorts"] == {str(2026 * 12 + 2): {"0": 1}}
    later = NOW + timedelta(hours=3)
    one = overview_figures(db_session, [store.id], later, SETTINGS)
    _check(one, _expected(_orders_by_customer(db_session, [store.id]), NOW), NOW)
    both = overview_figures(db_session, [store.id, other.id], later, SETTINGS)
    _check(both, _expected(_orders_by_customer(db_session, [store.id, other.id]), NOW), NOW)
    assert one["computed_at"] == both["computed_at"] == NOW


def test_page_reads_the_stored_counts_until_they_are_recounted(db_session):
    store, _other, _customers, _orders, _p = _seed(db_session)
    refresh_customer_metrics(db_session, store.id, NOW, RULES)
    save_store_figures(db_session, store.id, NOW, SETTINGS)
    before = _expected(_orders_by_customer(db_session, [store.id]), NOW)
    # A new customer whose first order is 100 days old and who came back 10 days later: eligible, a repeater.
    newcomer = Customer(store_id=store.id, external_id="new", email="new@example.com")
    db_session.add(newcomer)
    db_session.flush()
    for k, days in enumerate((100, 90)):
        db_session.add(Order(store_id=store.id, external_id=f"new{k}", customer_id=newcomer.id, currency="USD",
                             total_price=Decimal("30"), created_at_remote=NOW - timedelta(days=days)))
    db_session.flush()
    later = NOW + timedelta(hours=1)
    stale = overview_figures(db_session, [store.id], later, SETTINGS)
    assert (stale["stats"].eligible, stale["stats"].repeaters) == before[:2]
    assert stale["computed_at"] == NOW
    save_store_figures(db_session, store.id, later, SETTINGS)
    fresh = overview_figures(db_session, [store.id], later, SETTINGS)
    assert (fresh["stats"].eligible, fresh["stats"].repeaters) == (before[0] + 1, before[1] + 1)
    assert fresh["computed_at"] == later
    # Counts made with another repurchase window are not shown, nor counted in the request: the store is "counting".
    wider = {**SETTINGS, "repurchase_window_days": 120}
    waiting = overview_figures(db_session, [store.id], later + timedelta(minutes=5), wider)
    assert waiting["counting"] == [store.id]
    assert (waiting["stats"].eligible, waiting["cohorts"], waiting["flows"]) == (0, [], [])
    assert fresh["counting"] == []


def test_a_store_without_counts_is_left_out_and_listed_as_counting(db_session):
    store, other, _customers, _orders, _p = _seed(db_session)
    save_store_figures(db_session, other.id, NOW, SETTINGS)
    figures = overview_figures(db_session, [store.id, other.id], NOW, SETTINGS)
    assert figures["counting"] == [store.id]
    # Only the other store's one customer (first order 3 days ago) is in the figures.
    assert [(r.month, r.customers) for r in figures["cohorts"]] == [("2026-02", 1)]
    assert figures["stats"].eligible == 0


def test_no_store_gives_empty_figures(db_session):
    figures = overview_figures(db_session, [], NOW, SETTINGS)
    assert figures["stats"].eligible == 0 and figures["stats"].rate is None
    assert figures["cohorts"] == [] and figures["flows"] == []
    assert [o for _, o, _ in figures["monthly"]] == [0] * 12
