"""Replenishment: cycle choice (own median, learned product median, days of supply), planning horizon,
cancellation on re-order, subscriptions, skips; the SQL median equals Python's statistics.median."""

from __future__ import annotations

import math
import random
import statistics
from datetime import datetime, timedelta

from sqlalchemy import select

from plugin.flows import replenishment_model, replenishment_plan, runner
from plugin.models import Message, Product
from tests.jobs import factory as f

DAY = timedelta(days=1)


def _reminders(ctx):
    with ctx.database.session() as s:
        return {(m.customer_id, m.product_id, m.order_id): (m.status, m.skip_reason, m.scheduled_for)
                for m in s.scalars(select(Message).where(Message.flow == "replenishment"))}


def test_product_median_matches_python_median(ctx):
    rng = random.Random(7)
    now = ctx.clock.now()
    expected: dict[int, list[float]] = {}
    with ctx.database.session() as s:
        st = f.store(s)
        products = [f.product(s, st.id) for _ in range(4)]
        other = f.product(s, st.id, consumable=False)
        for _ in range(40):
            c = f.customer(s, st.id)
            for p in products[: rng.randint(1, 4)]:
                t = now - timedelta(days=rng.randint(200, 300))
                qty = rng.randint(1, 3)
                n = rng.randint(1, 4)
                for i in range(n):
                    f.order(s, st.id, c.id, t, lines=[(p.id, qty), (other.id, 1)])
                    gap = timedelta(days=rng.randint(0, 40), hours=rng.randint(0, 23))
                    if gap >= DAY and i < n - 1:
                        expected.setdefault(p.id, []).append(gap.total_seconds() / 86400 / qty)
                    t += gap
                    qty = rng.randint(1, 3)
        # cancelled orders do not count as purchases
        f.order(s, st.id, c.id, now - 5 * DAY, lines=[(products[0].id, 1)], cancelled_at=now)
        sid = st.id
    with ctx.database.session() as s:
        got = replenishment_plan.product_medians(s, sid)
    # The cancelled order was the last purchase of that customer: it adds no gap.
    assert set(got) == set(expected)
    for pid, gaps in expected.items():
        assert got[pid][1] == len(gaps)
        assert abs(got[pid][0] - statistics.median(gaps)) < 1e-6
    with ctx.database.session() as s:
        assert replenishment_plan.learn_product_cycles(s, sid) == len(expected)
    with ctx.database.session() as s:
        row = s.get(Product, products[0].id)
        assert abs(row.learned_cycle_days - statistics.median(expected[row.id])) < 1e-6
        assert row.learned_cycle_samples == len(expected[row.id])
        assert s.get(Product, other.id).learned_cycle_samples == 0


def _start(t_ago: float, median: float, var: float, q: int = 1, h: float = 7.0) -> float:
    """Days from now to the reminder window's start (the model's definition: sqrt(start·end) = the mode)."""
    mode = median * q * math.exp(-var)
    return max(-t_ago + math.sqrt(h * h + mode * mode) - h, 0.0)


def test_cycle_choice_horizon_reorder_subscription_and_skips(ctx):
    now = ctx.clock.now()
    with ctx.database.session() as s:
        st = f.store(s)
        soap = f.product(s, st.id, days_of_supply=30)
        tea = f.product(s, st.id)  # no days of supply: only own or learned cycles
        mug = f.product(s, st.id, consumable=False, days_of_supply=30)
        x, y, z, w, v, u = (f.customer(s, st.id) for _ in range(6))
        nomail = f.customer(s, st.id, email=None)
        ox = f.order(s, st.id, x.id, now - 25 * DAY, lines=[(soap.id, 1), (mug.id, 1)])  # overdue: catch-up now
        f.order(s, st.id, y.id, now - 40 * DAY, lines=[(soap.id, 1)])
        oy = f.order(s, st.id, y.id, now - 20 * DAY, lines=[(soap.id, 2)])  # own cycle 20/unit x 2: now too
        oz = f.order(s, st.id, z.id, now - 25 * DAY, lines=[(soap.id, 1)], tags=["Subscription Recurring Order"])
        f.order(s, st.id, w.id, now - 25 * DAY, lines=[(tea.id, 1)])  # no cycle at all
        ov = f.order(s, st.id, v.id, now - 40 * DAY, lines=[(soap.id, 1)])  # run-out long passed: catch-up now
        ou = f.order(s, st.id, u.id, now - 1 * DAY, lines=[(soap.id, 1)])  # window starts in ~16 days
        on = f.order(s, st.id, nomail.id, now - 25 * DAY, lines=[(soap.id, 1)])
        sid = st.id
    var = replenishment_model.DEFAULT_LOG_VAR  # days of supply, nothing learned: the assumed spread
    assert _start(25, 30, var) == _start(20, 20, 2 * var, q=2) == _start(40, 30, var) == 0.0
    assert 7 < _start(1, 30, var) < 20
    counts = runner.run_replenishment(ctx, sid)
    assert counts == {"cancelled": 0, "planned": 5, "not_sent": 2}
    assert _reminders(ctx) == {
        (x.id, soap.id, ox.id): ("scheduled", None, now),
        (y.id, soap.id, oy.id): ("scheduled", None, now),
        (v.id, soap.id, ov.id): ("scheduled", None, now),
        (z.id, soap.id, oz.id): ("cancelled", "active_subscription", now),
        (nomail.id, soap.id, on.id): ("skipped", "no_contact_access", now),
    }
    with ctx.database.session() as s:
        m = s.scalar(select(Message).where(Message.customer_id == x.id))
        assert (m.marketing, m.to_address, m.payload["cycle_source"], m.payload["quantity"]) == (True, x.email,
                                                                                                 "days_of_supply", 1)
        assert m.payload["run_out_at"] == (now + 7 * DAY).isoformat() and m.payload["catch_up"] is True
    # u's window opens in _start days: its reminder enters the 7-day planning horizon then, not before.
    ahead = _start(1, 30, var) - 7
    ctx.clock.advance(days=math.floor(ahead))
    assert runner.run_replenishment(ctx, sid)["planned"] == 0
    ctx.clock.advance(days=1)
    assert runner.run_replenishment(ctx, sid)["planned"] == 1
    (status, reason, when) = _reminders(ctx)[(u.id, soap.id, ou.id)]
    assert (status, reason) == ("scheduled", None)
    assert abs(when - (now + (ahead + 7) * DAY)) < timedelta(seconds=1)
    # y re-orders before the reminder goes out: it is cancelled; the new purchase plans its own.
    with ctx.database.session() as s:
        f.order(s, sid, y.id, ctx.clock.now(), lines=[(soap.id, 1)])
    counts = runner.run_replenishment(ctx, sid)
    assert counts["cancelled"] == 1
    assert _reminders(ctx)[(y.id, soap.id, oy.id)][:2] == ("cancelled", "already_reordered")
    # v re-orders a day later and the daily learning refreshes the pairs before the next hourly run: the cancel
    # reads the orders written since the previous cancel, not since that refresh, so v's reminder is cancelled.
    ctx.clock.advance(days=1)
    with ctx.database.session() as s:
        f.order(s, sid, v.id, ctx.clock.now(), lines=[(soap.id, 1)])
    replenishment_plan.learn(ctx, sid)
    assert runner.run_replenishment(ctx, sid)["cancelled"] == 1
    assert _reminders(ctx)[(v.id, soap.id, ov.id)][:2] == ("cancelled", "already_reordered")
    # Sent reminders are history: a later order does not rewrite them.
    with ctx.database.session() as s:
        s.scalar(select(Message).where(Message.customer_id == x.id)).status = "sent"
        f.order(s, sid, x.id, ctx.clock.now(), lines=[(soap.id, 1)])
    assert runner.run_replenishment(ctx, sid)["cancelled"] == 0
    assert _reminders(ctx)[(x.id, soap.id, ox.id)][0] == "sent"


def test_learned_product_cycle_used_when_enough_samples(ctx):
    now = ctx.clock.now()
    with ctx.database.session() as s:
        st = f.store(s)
        tea = f.product(s, st.id)
        for _ in range(5):  # five customers re-buying every 10 days: learned median 10, 5 samples
            c = f.customer(s, st.id)
            f.order(s, st.id, c.id, now - 200 * DAY, lines=[(tea.id, 1)])
            f.order(s, st.id, c.id, now - 190 * DAY, lines=[(tea.id, 1)])
        newbie = f.customer(s, st.id)
        o = f.order(s, st.id, newbie.id, now - 5 * DAY, lines=[(tea.id, 1)])  # run-out +5 with the learned 10
        sid = st.id
    # Nothing learned yet and no days of supply: only the five with own gaps are planned (overdue: catch-ups; too
    # few customers to fit who is still active, so all count as active); the newbie has nothing to go on.
    assert runner.run_replenishment(ctx, sid)["planned"] == 5
    assert replenishment_plan.learn(ctx, sid) == {"products": 1, "fitted": False}
    assert runner.run_replenishment(ctx, sid)["planned"] == 1
    with ctx.database.session() as s:
        m = s.scalar(select(Message).where(Message.order_id == o.id))
        assert (m.payload["cycle_source"], m.payload["cycle_days"]) == ("product", 10.0)



def test_own_median_even_and_odd_gap_counts(ctx):
    now = ctx.clock.now()
    with ctx.database.session() as s:
        st = f.store(s)
        soap = f.product(s, st.id, days_of_supply=90)
        even, odd = f.customer(s, st.id), f.customer(s, st.id)
        # even: per-unit gaps 10, 30, 20, then (80 days − 2 h) / 2 = 39.96 to the last purchase: a split order (two
        # orders two hours apart, one unit each) is one purchase of 2 units dated by its first order -> median 25;
        # run-out = that first order (now − 37 d − 2 h) + 25 × 2 = now + 13 d − 2 h, due within the week's horizon.
        t = now - 177 * DAY
        for gap in (10, 30, 20):
            f.order(s, st.id, even.id, t, lines=[(soap.id, 1)])
            t += gap * DAY
        f.order(s, st.id, even.id, t, lines=[(soap.id, 2)])
        last_even = f.order(s, st.id, even.id, t + 80 * DAY - timedelta(hours=2), lines=[(soap.id, 1)])
        f.order(s, st.id, even.id, t + 80 * DAY, lines=[(soap.id, 1)])
        # odd: per-unit gaps 5, 9 (18 days for 2 units), 7 -> 7
        t = now - 30 * DAY
        for gap, qty in ((5, 1), (18, 2), (7, 1)):
            f.order(s, st.id, odd.id, t, lines=[(soap.id, qty)])
            t += gap * DAY
        last_odd = f.order(s, st.id, odd.id, t, lines=[(soap.id, 1)])
        sid = st.id
    with ctx.database.session() as s:
        rows = {r["customer_id"]: r for r in replenishment_plan.due_reminders(
            f.plan_run(s, s.get(type(st), sid), {"lead_days": 7, "min_product_samples": 100}, now))}
    assert set(rows) == {even.id, odd.id}
    assert (rows[even.id]["payload"]["cycle_days"], rows[even.id]["order_id"]) == (25.0, last_even.id)
    assert rows[even.id]["payload"]["quantity"] == 2
    # Own median 25 per unit x 2 from 37 days ago: overdue (window start has passed), so a catch-up window from now.
    run_out = datetime.fromisoformat(rows[even.id]["payload"]["run_out_at"])
    assert rows[even.id]["payload"]["catch_up"] and abs(run_out - (now + 7 * DAY)) < timedelta(seconds=1)
    assert (rows[odd.id]["payload"]["cycle_days"], rows[odd.id]["order_id"]) == (7.0, last_odd.id)
    assert rows[odd.id]["payload"]["cycle_source"] == "customer"
