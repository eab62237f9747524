"""The flow lift report shows each flow's exposed and held-out figures and the lift in words, per store.

The page reads the sums the metrics jobs stored (it never counts in the request): it shows the figures of the
last count until the next one, and "counting…" before the first.
"""

from __future__ import annotations

import math
import re
import statistics
from datetime import timedelta
from decimal import Decimal

from jobs.analytics import refresh_store_figures, snapshot_metrics
from plugin.admin.flow_report import summary, verdict
from plugin.flow_lift import Difference, Estimate, FlowLift, Group
from plugin.models import Customer, Message, Order
from plugin.store_figures import LIFT_EVERY
from tests.admin.seed import SHOP_B
from tests.jobs.conftest import make_ctx

Z = statistics.NormalDist().inv_cdf(0.975)


def _get(client, token, path, shop=None, **query):
    minted = token(shop) if shop else token()
    return client.get(path, query_string=query, headers={"Authorization": f"Bearer {minted}"})


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _seed_lift(app, store_id, now, exposed=40, held_out=35, flow="replenishment"):
    """Write ``exposed`` sent and ``held_out`` holdout messages 20 days before the report's end, with orders.

    Got the flow: customer i has i % 3 orders two days after the email, each of 20 + i USD, the first refunded
    by 5.00 when i % 7 == 0. Held out: every fifth has one 15.00 order.
    Returns the per-customer (orders, revenue) of each group, as plain numbers.
    """
    at = now - timedelta(days=27)
    values: dict[str, list[tuple[int, float]]] = {"exposed": [], "held_out": []}
    with app.extensions["aftercare.db"].session() as session:
        for i in range(exposed + held_out):
            group = "exposed" if i < exposed else "held_out"
            c = Customer(store_id=store_id, external_id=f"lift{i}", email=f"lift{i}@example.com", tags=[])
            session.add(c)
            session.flush()
            session.add(Message(store_id=store_id, customer_id=c.id, flow=flow, step="main", channel="email",
                                idempotency_key=f"{store_id}:lift:{flow}:{i}", scheduled_for=at, payload={},
                                status="sent" if group == "exposed" else "skipped",
                                skip_reason=None if group == "exposed" else "holdout",
                                sent_at=at if group == "exposed" else None))
            if group == "exposed":
                orders = [(Decimal(20 + i), Decimal("5.00") if i % 7 == 0 and n == 0 else Decimal(0))
                          for n in range(i % 3)]
            else:
                orders = [(Decimal("15.00"), Decimal(0))] if i % 5 == 0 else []
            for n, (total, refunded) in enumerate(orders):
                session.add(Order(store_id=store_id, external_id=f"lift{i}-{n}", customer_id=c.id,
                                  created_at_remote=at + timedelta(days=2), currency="USD", total_price=total,
                                  total_refunded=refunded, tags=[]))
            values[group].append((len(orders), float(sum((t - r for t, r in orders), Decimal(0)))))
    return values


def _welch(a, b):
    diff = statistics.mean(a) - statistics.mean(b)
    se = math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))
    return diff, diff - Z * se, diff + Z * se


def _recount(app, clock, tmp_path, store_id):
    """Run the hourly job that keeps the store's figures."""
    assert refresh_store_figures(make_ctx(app.extensions["aftercare.db"], clock, tmp_path), store_id)["stores"] == 1


def test_lift_report_shows_groups_and_the_lift_in_words(client, tenants, token, app, clock, tmp_path):
    a, b = tenants
    values = _seed_lift(app, a.store_id, clock.now())
    _recount(app, clock, tmp_path, a.store_id)
    _recount(app, clock, tmp_path, b.store_id)
    flows_page = _get(client, token, "/admin/flows", store=a.store_id).get_data(as_text=True)
    assert f"/admin/flows/lift?store={a.store_id}" in flows_page
    answer = _get(client, token, "/admin/flows/lift", store=a.store_id)
    assert answer.status_code == 200
    page = _text(answer.get_data(as_text=True))
    orders = [float(n) for n, _ in values["exposed"]], [float(n) for n, _ in values["held_out"]]
    revenue = [r for _, r in values["exposed"]], [r for _, r in values["held_out"]]
    d, low, high = _welch(*orders)
    assert d > 0 and low > 0  # the seeded flow earns: 1 order per customer against 0.2
    assert (f"Customers who got this flow ordered {d:,.2f} more orders each "
            f"(95 % interval {low:,.2f} to {high:,.2f}).") in page
    d, low, high = _welch(*revenue)
    assert f"They spent {d:,.2f} USD more each (95 % interval {low:,.2f} USD to {high:,.2f} USD)." in page
    assert "Both intervals exclude zero: the difference is unlikely to be chance." in page
    assert "Earns more" in page and "No holdout" in page
    mean = statistics.mean(revenue[0])
    half = Z * statistics.stdev(revenue[0]) / math.sqrt(len(revenue[0]))
    assert f"Got the flow 40 {statistics.mean(orders[0]):,.2f}" in page
    assert f"{mean:,.2f} USD ({mean - half:,.2f} to {mean + half:,.2f})" in page
    assert f"Held out 35 {statistics.mean(orders[1]):,.2f}" in page
    # The seed's one sent review request (9 days ago, c0) has no held-out customer beside it.
    assert "No customer was held out in this period." in page
    # The 30-day period still covers the exposures (27 days ago, the window ends 7 days ago)...
    assert "ordered" in _text(_get(client, token, "/admin/flows/lift", store=a.store_id, days=30)
                              .get_data(as_text=True))
    # ...and another merchant sees none of it.
    other = _text(_get(client, token, "/admin/flows/lift", shop=SHOP_B).get_data(as_text=True))
    assert "Replenishment" not in other and "more orders each" not in other


def test_lift_report_says_not_enough_data_for_small_groups(client, tenants, token, app, clock, tmp_path):
    a, _ = tenants
    _seed_lift(app, a.store_id, clock.now(), exposed=40, held_out=12)
    _recount(app, clock, tmp_path, a.store_id)
    page = _text(_get(client, token, "/admin/flows/lift", store=a.store_id).get_data(as_text=True))
    assert ("Not enough data yet: each group needs at least 30 customers (40 got the flow, 12 held out).") in page
    assert "more orders each" not in page and "Not enough data" in page


def test_lift_report_says_counting_before_the_first_count_and_keeps_figures_until_the_next(
        client, tenants, token, app, clock, tmp_path):
    a, _ = tenants
    _seed_lift(app, a.store_id, clock.now(), exposed=40, held_out=35)
    page = _text(_get(client, token, "/admin/flows/lift", store=a.store_id).get_data(as_text=True))
    assert "counting… (the hourly job has not run yet)" in page
    assert "Replenishment" not in page and "more orders each" not in page
    # The daily snapshot keeps the sums too.
    snapshot_metrics(make_ctx(app.extensions["aftercare.db"], clock, tmp_path), a.store_id)
    counted_at = clock.now()
    page = _text(_get(client, token, "/admin/flows/lift", store=a.store_id).get_data(as_text=True))
    assert f"figures as of {counted_at.strftime('%b %d, %Y %H:%M')} UTC" in page
    assert "Got the flow 40 " in page and "Held out 35 " in page and "counting…" not in page
    # Five more held-out customers after the count: the page keeps the counted figures...
    clock.advance(timedelta(minutes=30))
    with app.extensions["aftercare.db"].session() as session:
        for i in range(5):
            c = Customer(store_id=a.store_id, external_id=f"late{i}", email=f"late{i}@example.com", tags=[])
            session.add(c)
            session.flush()
            session.add(Message(store_id=a.store_id, customer_id=c.id, flow="replenishment", step="main",
                                channel="email", idempotency_key=f"late:{i}", payload={}, status="skipped",
                                skip_reason="holdout", scheduled_for=clock.now() - timedelta(days=20)))
    page = _text(_get(client, token, "/admin/flows/lift", store=a.store_id).get_data(as_text=True))
    assert f"figures as of {counted_at.strftime('%b %d, %Y %H:%M')} UTC" in page and "Held out 35 " in page
    # The hourly recount keeps the lift sums while they are under a day old (they are the heavy part)...
    clock.advance(timedelta(minutes=30))
    _recount(app, clock, tmp_path, a.store_id)
    page = _text(_get(client, token, "/admin/flows/lift", store=a.store_id).get_data(as_text=True))
    assert f"figures as of {counted_at.strftime('%b %d, %Y %H:%M')} UTC" in page and "Held out 35 " in page
    # ...and counts them again once they are (or at once, the daily snapshot).
    clock.advance(LIFT_EVERY)
    _recount(app, clock, tmp_path, a.store_id)
    page = _text(_get(client, token, "/admin/flows/lift", store=a.store_id).get_data(as_text=True))
    assert f"figures as of {clock.now().strftime('%b %d, %Y %H:%M')} UTC" in page and "Held out 40 " in page


def test_summary_words_for_a_flow_that_costs_orders():
    exposed = Group(500, Estimate(1.0, 0.9, 1.1), Estimate(40.0, 35.0, 45.0))
    held_out = Group(80, Estimate(1.21, 1.05, 1.37), Estimate(46.5, 41.0, 52.0))
    lift = FlowLift("win_back", exposed, held_out, Difference(-0.21, -0.37, -0.05),
                    Difference(-6.5, -13.25, 0.25))
    assert summary(lift, "EUR") == [
        "Customers who got this flow ordered 0.21 fewer orders each (95 % interval -0.37 to -0.05).",
        "They spent 6.50 EUR less each (95 % interval -13.25 EUR to 0.25 EUR).",
        "The orders interval excludes zero (unlikely to be chance); the revenue interval includes zero (could be "
        "chance).",
    ]
    assert verdict(lift) == "costs"
    unsure = FlowLift("win_back", exposed, held_out, Difference(0.02, -0.1, 0.14), Difference(1.0, -2.0, 4.0))
    assert summary(unsure, "EUR")[-1].startswith("Both intervals include zero: the difference could be chance.")
    assert verdict(unsure) == "unsure"
