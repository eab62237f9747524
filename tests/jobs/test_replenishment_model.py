"""Replenishment model: exact plans on hand-made histories (first-time buyer, overdue, lapsed, split orders,
quantity 3, a regular buyer) against an independent computation of the model's definition (exact normal tail via
math.erfc and its inverse via statistics.NormalDist, the learned spreads from the gaps in plain Python); the MBG/NBD
likelihood against log-gamma, and its fit recovering the parameters of simulated customers."""

from __future__ import annotations

import math
import random
import statistics
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import select

from plugin.flows import replenishment, replenishment_model, replenishment_plan, runner
from plugin.models import Message, Product, ReplenishmentFit
from tests.jobs import factory as f

DAY = timedelta(days=1)
RETURN_DAYS = 365.0  # the run-out is the median next purchase among customers who return within a year
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SETTINGS = {"lead_days": 7, "min_product_samples": 3, "min_probability": 0.1}
LOADED = replenishment.FLOW.settings.load(SETTINGS)
FIT = {"r": 0.6, "alpha": 50.0, "a": 2.0, "b": 1.0}


def _days(when: datetime) -> float:
    return (when - EPOCH).total_seconds() / 86400


def _survival(d: float, mu: float, sd: float) -> float:
    if d <= 0:
        return 1.0
    return 0.5 * math.erfc((math.log(d) - mu) / sd / math.sqrt(2))


def _expected_plan(purchases: list[tuple[float, int]], product: tuple[float, float, float], now: float,
                   h: float = 7.0) -> dict[str, float]:
    """The model's definition for one customer × product: purchases [(day, quantity)], product (median, s_w², s_b²)."""
    median, within, between = product
    own = [(b[0] - a[0]) / a[1] for a, b in zip(purchases, purchases[1:], strict=False)]
    n = len(own)
    k = within / between
    if own:
        mu1 = (k * math.log(median) + n * math.log(statistics.median(own))) / (k + n)
        var = within + within / (k + n)
    else:
        mu1, var = math.log(median), within + between
    t, q = purchases[-1]
    mu, sd = mu1 + math.log(q), math.sqrt(var)
    mode = math.exp(mu - var)
    centre = math.sqrt(h * h + mode * mode)  # the 2h window of highest density: sqrt(start * end) = mode
    start = max(t + centre - h, now)
    # Predicted run-out: median of the next gap given none by now and one within RETURN_DAYS of now.
    mid = (_survival(now - t, mu, sd) + _survival(now - t + RETURN_DAYS, mu, sd)) / 2
    run_out = t + math.exp(mu + sd * -statistics.NormalDist().inv_cdf(mid))
    chance = (_survival(start - t, mu, sd) - _survival(start + 2 * h - t, mu, sd)) / _survival(now - t, mu, sd)
    t0 = purchases[0][0]
    ratio = (FIT["alpha"] + now - t0) / (FIT["alpha"] + t - t0)
    alive = 1 / (1 + FIT["a"] / (FIT["b"] + n) * ratio ** (FIT["r"] + n))
    return {"start": start, "target": start + h, "run_out": run_out, "sd": sd, "probability": alive * chance,
            "alive": alive, "cycle": math.exp(mu1), "catch_up": t + centre - h < now}


def _close_run_out(got: float, want: dict[str, float], t: float) -> bool:
    """Whether a run-out from SQL matches the exact one within the SQL's approximations (log days within 0.005 sd).

    The SQL's normal tail is within 0.3 % (Börjesson & Sundberg) and its inverse within 4.5e-4 in z (Abramowitz &
    Stegun 26.2.23): together under 0.0043 in the standard score of the median.
    """
    return abs(math.log(got - t) - math.log(want["run_out"] - t)) <= 0.005 * want["sd"]


def _learned(gaps: dict[str, list[float]]) -> tuple[float, float, float]:
    """The product's median, pooled within-customer and between-customer variance of log gaps, in plain Python."""
    every = [g for gs in gaps.values() for g in gs]
    logs = {c: [math.log(g) for g in gs] for c, gs in gaps.items()}
    within_ss = sum(sum((y - statistics.fmean(ys)) ** 2 for y in ys) for ys in logs.values())
    within = max(within_ss / sum(len(ys) - 1 for ys in logs.values()), 0.01)  # variances are never below 0.01
    total = statistics.variance([math.log(g) for g in every])
    return statistics.median(every), within, max(total - within, 0.01)


def test_exact_plans_first_time_overdue_lapsed_split_and_quantity(ctx):
    now = ctx.clock.now()
    now_d = _days(now)
    with ctx.database.session() as s:
        st = f.store(s)
        soap = f.product(s, st.id, days_of_supply=30)
        mug = f.product(s, st.id, consumable=False)
        history = {  # days before now (quantity 1 unless said): the orders of each customer
            "a": [(300, 1), (272, 1), (240, 1)],
            "b": [(300, 1), (275, 1), (245, 1), (215, 1)],
            "c": [(300, 1), (270, 1), (238, 1), (210, 1)],
            "overdue": [(100, 1), (70, 1)],
            "lapsed": [(400, 1), (370, 1)],
            "split": [(110, 1), (50, 1), (50 - 2 / 24, 1)],  # two orders two hours apart: one purchase of 2
            "first": [(10, 1)],
            "three": [(20, 3)],
            "regular": [(103, 1), (75, 1), (40, 1), (10, 1)],  # own gaps of 28, 35 and 30 days, bought 10 days ago
        }
        customers = {}
        for name, orders in history.items():
            c = f.customer(s, st.id)
            customers[name] = c.id
            for ago, qty in orders:
                f.order(s, st.id, c.id, now - ago * DAY, lines=[(soap.id, qty), (mug.id, 1)])
        sid = st.id
    # Purchases as the rule defines them (orders within 24 h of a purchase's first one are that purchase).
    purchases = {name: [] for name in history}
    for name, orders in history.items():
        for ago, qty in sorted(orders, reverse=True):
            day = now_d - ago
            if purchases[name] and day - purchases[name][-1][0] < 1:
                purchases[name][-1] = (purchases[name][-1][0], purchases[name][-1][1] + qty)
            else:
                purchases[name].append((day, qty))
    assert purchases["split"] == [(now_d - 110, 1), (now_d - 50, 2)]
    gaps = {n: [(b[0] - a[0]) / a[1] for a, b in zip(p, p[1:], strict=False)] for n, p in purchases.items()}
    product = _learned({n: g for n, g in gaps.items() if g})
    assert replenishment_plan.learn(ctx, sid) == {"products": 1, "fitted": False}  # 9 pairs: too few to fit
    with ctx.database.session() as s:
        row = s.get(Product, soap.id)
        assert (row.learned_cycle_days, row.learned_cycle_samples) == (product[0], 14)  # 2+3+3+1+1+1+3 gaps
        assert math.isclose(row.learned_log_within_var, product[1], rel_tol=1e-9)
        assert math.isclose(row.learned_log_between_var, product[2], rel_tol=1e-9)
        s.add(ReplenishmentFit(store_id=sid, pairs=9, log_likelihood=0.0, fitted_at=now, **FIT))
    want = {name: _expected_plan(p, product, now_d) for name, p in purchases.items()}
    # The cases the test is about, in the independent computation:
    assert want["overdue"]["catch_up"] and want["overdue"]["start"] == now_d
    assert not want["first"]["catch_up"] and want["first"]["start"] > now_d
    assert want["lapsed"]["probability"] < 0.1 <= want["overdue"]["probability"]
    # A regular buyer is predicted near their own cycle (bought 10 days ago; own gaps 28–35 days).
    regular = want["regular"]["run_out"] - purchases["regular"][-1][0]
    assert 28 < regular < 35, regular
    # Every customer × consumable has a plan, equal to the definition (the SQL's normal tail is within 0.3 %).
    with ctx.database.session() as s:
        for name, cid in customers.items():
            (plan,) = replenishment_plan.customer_plan(s, sid, cid, LOADED, now)
            w = want[name]
            assert plan["product_id"] == soap.id
            assert _close_run_out(_days(plan["run_out"]), w, purchases[name][-1][0]), name
            assert abs(_days(plan["remind_at"]) - w["start"]) < 1e-6, name
            assert math.isclose(plan["probability"], w["probability"], rel_tol=0.01), name
            assert math.isclose(plan["cycle_days"], w["cycle"], rel_tol=1e-9), name
            assert (plan["catch_up"], plan["remind"]) == (w["catch_up"], w["probability"] >= 0.1), name
            assert plan["quantity"] == purchases[name][-1][1]
        reasons = {name: replenishment_plan.customer_plan(s, sid, cid, LOADED, now)[0]["reason"]
                   for name, cid in customers.items()}
    assert reasons["b"] == "3 own gaps of 25–30 days, product median 30, bought 1"
    assert reasons["split"] == "1 own gap of 60 days, product median 30, bought 2"
    assert reasons["three"] == "product median 30, bought 3"
    # The flow plans exactly the pairs whose reminder falls within the week and whose probability clears the floor.
    due = {n for n, w in want.items() if w["start"] <= now_d + 7 and w["probability"] >= 0.1}
    assert "overdue" in due and "lapsed" not in due
    counts = runner.run_replenishment(ctx, sid)
    assert counts["planned"] == len(due)
    with ctx.database.session() as s:
        rows = {m.customer_id: m for m in s.scalars(select(Message).where(Message.flow == "replenishment"))}
        assert set(rows) == {customers[n] for n in due}
        for name in due:
            m = rows[customers[name]]
            assert abs(_days(m.scheduled_for) - max(want[name]["start"], now_d)) < 1e-5
            assert math.isclose(m.payload["probability"], want[name]["probability"], rel_tol=0.01, abs_tol=1e-4)
            assert abs(_days(datetime.fromisoformat(m.payload["run_out_at"])) - want[name]["target"]) < 1e-5
            assert _close_run_out(_days(datetime.fromisoformat(m.payload["predicted_run_out_at"])), want[name],
                                  purchases[name][-1][0]), name
            assert m.payload["catch_up"] == want[name]["catch_up"]
    # The overdue customer's catch-up is one reminder: a day later nothing more is planned for that purchase.
    ctx.clock.advance(days=1)
    assert runner.run_replenishment(ctx, sid)["planned"] == len(
        {n for n, w in {k: _expected_plan(p, product, now_d + 1) for k, p in purchases.items()}.items()
         if w["start"] <= now_d + 8 and w["probability"] >= 0.1} - due)


def test_floor_zero_reminds_everyone_whose_window_is_near_and_the_floor_one_nobody(ctx):
    now = ctx.clock.now()
    with ctx.database.session() as s:
        st = f.store(s)
        soap = f.product(s, st.id, days_of_supply=30)
        for ago in (25, 40, 400):  # days of supply 30, no learned spread yet: DEFAULT_LOG_VAR
            f.order(s, st.id, f.customer(s, st.id).id, now - ago * DAY, lines=[(soap.id, 1)])
        sid = st.id
    with ctx.database.session() as s:
        everyone = replenishment_plan.due_reminders(f.plan_run(s, s.get(type(st), sid),
                                                               {**SETTINGS, "min_probability": 0}, now))
        nobody = replenishment_plan.due_reminders(f.plan_run(s, s.get(type(st), sid),
                                                             {**SETTINGS, "min_probability": 1}, now))
    mu, var = math.log(30), replenishment_model.DEFAULT_LOG_VAR
    centre = math.sqrt(49 + math.exp(2 * (mu - var)))
    # 25 days ago: the window starts at centre − 7 − 25 days from now, inside the week; 40 and 400: overdue, now.
    assert sorted(round(_days(r["scheduled_for"]) - _days(now), 6) for r in everyone) == sorted(
        [0.0, 0.0, round(max(centre - 7 - 25, 0), 6)])
    assert nobody == []


def test_mbgnbd_likelihood_equals_log_gamma_form_and_the_fit_recovers_simulated_parameters():
    rows = [(0, 0.0, 30.0, 1), (1, 12.0, 40.0, 1), (4, 80.0, 90.0, 1), (2, 5.5, 200.0, 1)]
    r, alpha, a, b = 0.7, 20.0, 0.9, 2.5
    want = 0.0
    for x, tx, big_t, _w in rows:
        a1 = math.lgamma(r + x) - math.lgamma(r) + r * math.log(alpha)
        a2 = math.lgamma(a + b) + math.lgamma(b + x + 1) - math.lgamma(b) - math.lgamma(a + b + x + 1)
        want += a1 + a2 + math.log((alpha + big_t) ** -(r + x) + a / (b + x) * (alpha + tx) ** -(r + x))
    data = np.array(rows, dtype=float)
    got = replenishment_model.mbgnbd_log_likelihood((r, alpha, a, b), data[:, 0].astype(int), data[:, 1],
                                                    data[:, 2], data[:, 3])
    assert math.isclose(got, want, rel_tol=1e-12)
    # Simulate MBG/NBD customers (Batislam et al. 2007: drop-out right after each purchase, the first included).
    rng = random.Random(5)
    true = (0.8, 30.0, 0.6, 2.0)
    simulated = []
    for _ in range(6000):
        lam, p = rng.gammavariate(true[0], 1 / true[1]), rng.betavariate(true[2], true[3])
        big_t, t, x, tx = 365.0, 0.0, 0, 0.0
        while rng.random() >= p:  # still active after the last purchase
            t += rng.expovariate(lam)
            if t > big_t:
                break
            x, tx = x + 1, t
        simulated.append((x, tx, big_t, 1))
    fit = replenishment_model.fit_mbgnbd(simulated)
    assert fit is not None and fit.pairs == 6000
    for got_value, true_value in zip((fit.r, fit.alpha, fit.a, fit.b), true, strict=True):
        assert abs(got_value - true_value) / true_value < 0.35
    # P(alive) in closed form falls with the time since the last purchase.
    assert replenishment_model.p_alive(fit, 2, 50, 60) > replenishment_model.p_alive(fit, 2, 50, 300)
    assert replenishment_model.fit_mbgnbd(simulated[:50]) is None
