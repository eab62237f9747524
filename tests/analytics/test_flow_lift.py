"""Holdout lift figures equal means, intervals and Welch differences computed here in plain Python from the rows.

The store is made by hand: sent and held-out messages of one flow, orders inside and outside each customer's
attribution window (on its boundaries too), cancelled and partly refunded orders, other skip reasons, other
flows' rows and another store's rows, which must all be left out or counted exactly as the docstring of
``plugin.flow_lift`` says.
"""

from __future__ import annotations

import math
import random
import statistics
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from plugin.flow_lift import flow_lift, lift_by_flow
from plugin.models import Customer, Merchant, Message, Order, Store

START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2026, 3, 1, tzinfo=UTC)
WINDOW = timedelta(days=7)
FLOW = "replenishment"
Z = statistics.NormalDist().inv_cdf(0.975)


class Fixture:
    """Rows written to the database and, beside them, each counted customer's expected values."""

    def __init__(self, session):
        self.session = session
        self.keys = 0
        merchant = Merchant(name="M")
        session.add(merchant)
        session.flush()
        self.store = Store(merchant_id=merchant.id, platform="shopify", external_id="a.myshopify.com",
                           currency="EUR")
        self.other = Store(merchant_id=merchant.id, platform="shopify", external_id="b.myshopify.com",
                           currency="EUR")
        session.add_all([self.store, self.other])
        session.flush()
        # Expected (orders, revenue) per customer id, per group, filled by plain rules below.
        self.expected: dict[str, dict[int, tuple[int, Decimal]]] = {"exposed": {}, "held_out": {}}

    def customer(self, store=None) -> Customer:
        c = Customer(store_id=(store or self.store).id, external_id=f"c{self.keys}", email=f"c{self.keys}@x.test")
        self.keys += 1
        self.session.add(c)
        self.session.flush()
        return c

    def message(self, customer, *, flow=FLOW, status, at, reason=None, store=None, step="main"):
        self.keys += 1
        values = {"sent_at": at} if status == "sent" else {}
        self.session.add(Message(
            store_id=(store or self.store).id, customer_id=customer.id if customer else None, flow=flow, step=step,
            channel="email", idempotency_key=f"k{self.keys}", scheduled_for=at, status=status, skip_reason=reason,
            created_at=at - timedelta(days=1), **values))

    def order(self, customer, at, total, refunded="0", cancelled=False, store=None):
        self.keys += 1
        self.session.add(Order(
            store_id=(store or self.store).id, external_id=f"o{self.keys}", customer_id=customer.id,
            created_at_remote=at, currency="EUR", total_price=Decimal(total), total_refunded=Decimal(refunded),
            cancelled_at=at + timedelta(hours=1) if cancelled else None))


def expected_value(exposed_at, orders):
    """Count orders and net revenue in (exposed_at, exposed_at + 7 days], cancelled ones left out."""
    kept = [(Decimal(total) - Decimal(refunded)) for at, total, refunded, cancelled in orders
            if not cancelled and exposed_at < at <= exposed_at + WINDOW]
    return len(kept), sum(kept, Decimal("0"))


def seed(session, n_exposed=60, n_held=45, seed_value=11):
    """Write a store whose flow has ``n_exposed`` exposed and ``n_held`` held-out customers, plus noise."""
    rng = random.Random(seed_value)
    f = Fixture(session)
    for index in range(n_exposed + n_held):
        group = "exposed" if index < n_exposed else "held_out"
        c = f.customer()
        exposed_at = START + timedelta(days=rng.randint(0, 55), minutes=rng.randint(0, 1439))
        if group == "exposed":
            f.message(c, status="sent", at=exposed_at)
            # The reminder of the same flow, later: the customer counts once, from the first message.
            if index % 4 == 0:
                f.message(c, status="sent", at=exposed_at + timedelta(days=3), step="reminder")
        else:
            f.message(c, status="skipped", reason="holdout", at=exposed_at)
        orders = []
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
            at = exposed_at + timedelta(days=rng.uniform(-10, 12))
            total = rng.choice(["19.99", "45.00", "120.50", "35.25", "8.10"])
            refunded = "5.00" if rng.random() < 0.15 else "0"
            orders.append((at, total, refunded, rng.random() < 0.1))
        if group == "exposed" and rng.random() < 0.6:  # what the flow earns: an order two days after the email
            orders.append((exposed_at + timedelta(days=2), "30.00", "0", False))
        if index % 9 == 0:  # on the boundaries: at the exposure (left out) and exactly 7 days after (counted)
            orders.append((exposed_at, "99.00", "0", False))
            orders.append((exposed_at + WINDOW, "11.00", "0", False))
        if index % 11 == 0:  # a cancelled order well inside the window never counts
            orders.append((exposed_at + timedelta(days=1), "500.00", "0", True))
        for at, total, refunded, cancelled in orders:
            f.order(c, at, total, refunded, cancelled)
        f.expected[group][c.id] = expected_value(exposed_at, orders)
    # Skipped for another reason first, then sent: exposed from the sent message.
    c = f.customer()
    f.message(c, status="skipped", reason="no_consent", at=START + timedelta(days=2))
    f.message(c, status="sent", at=START + timedelta(days=20))
    f.order(c, START + timedelta(days=3), "70.00")  # after the consent skip, before the send: not counted
    f.order(c, START + timedelta(days=21), "30.00")
    f.expected["exposed"][c.id] = (1, Decimal("30.00"))
    # Held out first, sent later (the share changed): stays held out, measured from the holdout.
    c = f.customer()
    f.message(c, status="skipped", reason="holdout", at=START + timedelta(days=5))
    f.message(c, status="sent", at=START + timedelta(days=30))
    f.order(c, START + timedelta(days=6), "40.00")
    f.order(c, START + timedelta(days=31), "60.00")
    f.expected["held_out"][c.id] = (1, Decimal("40.00"))
    # Never in either group: only other skips, only scheduled/failed rows, exposures outside the range.
    for status, reason, at in (("skipped", "no_consent", START + timedelta(days=4)),
                               ("scheduled", None, START + timedelta(days=4)),
                               ("failed", None, START + timedelta(days=4)),
                               ("sent", None, START - timedelta(seconds=1)),
                               ("skipped", "holdout", END)):
        c = f.customer()
        f.message(c, status=status, reason=reason, at=at)
        f.order(c, at + timedelta(days=1), "25.00")
    # A merchant test email has no customer.
    f.message(None, status="sent", at=START + timedelta(days=3))
    # Another flow's rows for counted and uncounted customers alike.
    c = f.customer()
    f.message(c, flow="survey", status="sent", at=START + timedelta(days=8))
    f.message(c, flow="survey", status="skipped", reason="holdout", at=START + timedelta(days=9))
    f.order(c, START + timedelta(days=10), "80.00")
    # Another store: same flow, both groups, orders in the window.
    for status, reason in (("sent", None), ("skipped", "holdout")):
        c = f.customer(f.other)
        f.message(c, status=status, reason=reason, at=START + timedelta(days=8), store=f.other)
        f.order(c, START + timedelta(days=9), "300.00", store=f.other)
    session.flush()
    return f


def interval(values):
    """Return (mean, low, high) of plain numbers: mean ± z·s/√n with the sample standard deviation."""
    mean = statistics.mean(values)
    half = Z * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def welch(a, b):
    """Return (difference, low, high): mean(a) − mean(b) ± z·√(s²a/na + s²b/nb)."""
    diff = statistics.mean(a) - statistics.mean(b)
    se = math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))
    return diff, diff - Z * se, diff + Z * se


def _close(actual, expected):
    assert actual == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_groups_means_intervals_and_lift(db_session):
    f = seed(db_session)
    lift = flow_lift(db_session, [f.store.id], FLOW, START, END, attribution_days=7)
    assert lift.enough_data
    for name in ("exposed", "held_out"):
        group = getattr(lift, name)
        values = list(f.expected[name].values())
        assert group.customers == len(values)
        for kind, pick in (("orders", lambda v: float(v[0])), ("revenue", lambda v: float(v[1]))):
            mean, low, high = interval([pick(v) for v in values])
            figure = getattr(group, kind)
            _close(figure.mean, mean)
            _close(figure.low, low)
            _close(figure.high, high)
    exposed, held = f.expected["exposed"].values(), f.expected["held_out"].values()
    for kind, pick in (("orders", lambda v: float(v[0])), ("revenue", lambda v: float(v[1]))):
        diff, low, high = welch([pick(v) for v in exposed], [pick(v) for v in held])
        figure = getattr(lift, f"{kind}_lift")
        _close(figure.value, diff)
        _close(figure.low, low)
        _close(figure.high, high)
        assert figure.excludes_zero == (low > 0 or high < 0)


def test_pinned_figures_of_the_seeded_store(db_session):
    f = seed(db_session)
    lift = flow_lift(db_session, [f.store.id], FLOW, START, END)
    # Seed 11 gives 66 orders / 2,160.46 EUR over 61 exposed and 19 / 665.75 over 46 held out; pinned so that a
    # change of the fixture's rules cannot slip by through the expected values computed above.
    assert sum(v[0] for v in f.expected["exposed"].values()) == 66
    assert sum(v[1] for v in f.expected["held_out"].values()) == Decimal("665.75")
    assert (lift.exposed.customers, lift.held_out.customers) == (61, 46)
    _close(lift.exposed.orders.mean, 66 / 61)
    _close(lift.exposed.revenue.mean, 2160.46 / 61)
    _close(lift.held_out.orders.mean, 19 / 46)
    _close(lift.held_out.revenue.mean, 665.75 / 46)
    assert round(lift.orders_lift.low, 4) == 0.3803 and round(lift.orders_lift.high, 4) == 0.9576
    assert round(lift.revenue_lift.low, 2) == 7.72 and round(lift.revenue_lift.high, 2) == 34.17
    assert lift.orders_lift.excludes_zero and lift.revenue_lift.excludes_zero


def test_a_set_of_stores_and_every_flow_at_once(db_session):
    f = seed(db_session)
    both = lift_by_flow(db_session, [f.store.id, f.other.id], START, END, min_customers=1)
    assert sorted(both) == ["replenishment", "survey"]
    assert both[FLOW].exposed.customers == len(f.expected["exposed"]) + 1
    assert both[FLOW].held_out.customers == len(f.expected["held_out"]) + 1
    exposed = [float(v[1]) for v in f.expected["exposed"].values()] + [300.0]
    _close(both[FLOW].exposed.revenue.mean, statistics.mean(exposed))
    # The survey customer was sent first (day 8), so the later holdout row does not make a held-out group.
    survey = both["survey"]
    assert (survey.exposed.customers, survey.held_out.customers) == (1, 0)
    assert survey.exposed.orders.mean == 1.0 and survey.held_out.orders.mean is None
    assert survey.orders_lift is None
    only_first = lift_by_flow(db_session, [f.store.id], START, END, flows=[FLOW])
    assert list(only_first) == [FLOW]


def test_small_groups_report_not_enough_data(db_session):
    f = seed(db_session, n_exposed=40, n_held=20)
    lift = flow_lift(db_session, [f.store.id], FLOW, START, END)
    assert lift.held_out.customers == 21 and not lift.enough_data
    assert lift.orders_lift is None and lift.revenue_lift is None
    assert lift.held_out.orders.low is None and lift.held_out.revenue.high is None
    assert lift.exposed.orders.low is not None  # 41 exposed customers: their own interval is shown
    assert flow_lift(db_session, [f.store.id], "win_back", START, END).exposed.customers == 0


def test_attribution_days_follow_the_setting(db_session):
    f = Fixture(db_session)
    at = START + timedelta(days=1)
    c = f.customer()
    f.message(c, status="sent", at=at)
    f.order(c, at + timedelta(days=2), "10.00")
    f.order(c, at + timedelta(days=3), "20.00")
    f.order(c, at + timedelta(days=3, milliseconds=1), "40.00")
    db_session.flush()
    three = flow_lift(db_session, [f.store.id], FLOW, START, END, attribution_days=3, min_customers=1)
    assert three.exposed.orders.mean == 2 and three.exposed.revenue.mean == 30.0
    two = flow_lift(db_session, [f.store.id], FLOW, START, END, attribution_days=2, min_customers=1)
    assert two.exposed.orders.mean == 1 and two.exposed.revenue.mean == 10.0
