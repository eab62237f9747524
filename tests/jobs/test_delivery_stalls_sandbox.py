"""Stall detection over the Shopify sandbox's scripted carrier timelines, end to end.

Each timeline of sandbox/shopify/timelines.py ships one order; the carrier's reports reach the sandbox as their
time comes, the app syncs them (real GraphQL on loopback) and the hourly job runs at noon and at midnight in
New York for 17 days. What must be found is worked out here from the rules as the README states them, with a
business-day count of our own (weekends, US holidays), never by the code under test.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from sqlalchemy import select

from plugin.flows import delivery_stalls, runner
from plugin.models import DeliveryProblem, Message, Order, Parcel, Store, Ticket
from sandbox.shopify.timelines import TIMELINES, events_for
from tests.conftest import wipe
from tests.shopify_sync_harness import make_harness

NY = ZoneInfo("America/New_York")
US_HOLIDAYS = holidays.country_holidays("US", years=2026)
NO_SCAN, LOST, PAST_ESTIMATE, UNFULFILLED = 3, 10, 1, 2  # the declared defaults
SEVERITY = {"unfulfilled": 3, "no_scan": 3, "lost": 2, "past_estimate": 3, "attempted": 3, "failed": 2}


def _business_days_strictly_between(first: date, last: date) -> int:
    days = [first + timedelta(days=n) for n in range(1, (last - first).days)]
    return sum(1 for d in days if d.weekday() < 5 and d not in US_HOLIDAYS)


def _waited(since: datetime, now: datetime, n: int) -> bool:
    return _business_days_strictly_between(since.astimezone(NY).date(), now.astimezone(NY).date()) >= n


def _expected(shipped_at: datetime, steps, now: datetime, default_estimate: datetime) -> set[str]:
    """The problems a parcel shows at ``now``, by the stated rules."""
    seen = [s for s in steps if s.at <= now]
    latest = seen[-1] if seen else None
    if latest is not None and latest.status == "DELIVERED":
        return set()
    found = set()
    status = latest.status if latest else None
    if status == "ATTEMPTED_DELIVERY":
        found.add("attempted")
    if status == "FAILURE":
        return found | {"failed"}
    silent_since = latest.at if latest else shipped_at
    if _waited(silent_since, now, NO_SCAN):
        found.add("no_scan")
    if _waited(silent_since, now, LOST):
        found.add("lost")
    estimate = next((s.estimated_delivery_at for s in reversed(seen) if s.estimated_delivery_at), default_estimate)
    if _waited(estimate, now, PAST_ESTIMATE):
        found.add("past_estimate")
    return found


@pytest.fixture
def harness(database, tmp_path):
    """A sandbox store with its store row; committed rows are wiped afterwards (the next test installs afresh)."""
    h = make_harness(database, tmp_path, customers=8, orders=0)
    yield h
    h.stop()
    wipe(database.engine)


def test_every_scripted_timeline_opens_exactly_its_tickets_and_notices(harness, database):
    start = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # Monday 09:00 in New York
    harness.clock.set(start)
    with database.session() as s:
        store = s.get(Store, harness.store_id)
        store.country, store.timezone = "US", "America/New_York"
        s.execute(Ticket.__table__.delete())  # nothing of an earlier test
    sb = harness.sandbox
    customers = [c.id for c in sb.store.customers]
    variant = sb.store.products[0].variants[0].id
    plans = {}
    for n, name in enumerate(TIMELINES):
        order = sb.add_order(customers[n], [(variant, 1)])
        fulfilment = sb.fulfil_order(order.id)
        plans[name] = (order, fulfilment.created_at, events_for(name, fulfilment.created_at),
                       fulfilment.estimated_delivery_at)
    waiting = sb.add_order(customers[len(TIMELINES)], [(variant, 1)])  # paid, never shipped
    reported: dict[str, int] = {name: 0 for name in TIMELINES}
    expected: dict[str, set[str]] = {name: set() for name in TIMELINES}
    expected_unfulfilled = False
    opened = 0
    for half_day in range(34):
        now = start + timedelta(hours=3 + 12 * half_day)  # noon and midnight in New York
        for name, (order, _shipped, steps, _estimate) in plans.items():
            for step in steps[reported[name]:]:
                if step.at > now:
                    break
                harness.clock.set(max(step.at, harness.clock.now()))
                sb.add_fulfillment_event(order.id, step.status, step.at, city=step.city, country=step.country,
                                         message=step.message, estimated_delivery_at=step.estimated_delivery_at)
                reported[name] += 1
        harness.clock.set(now)
        harness.sync()
        delivery_stalls.run(harness.ctx, harness.store_id)
        opened += runner.run_ticket_alert(harness.ctx, harness.store_id)["opened"]
        for name, (_order, shipped, steps, estimate) in plans.items():
            expected[name] |= _expected(shipped, steps, now, estimate)
        expected_unfulfilled = expected_unfulfilled or _waited(waiting.created_at, now, UNFULFILLED)

    with database.session() as s:
        external = {o.id: o.external_id.rsplit("/", 1)[-1] for o in s.scalars(select(Order))}
        by_order = {str(order.id): name for name, (order, *_rest) in plans.items()}
        found: dict[str, set[str]] = {name: set() for name in TIMELINES}
        unfulfilled = set()
        for p in s.scalars(select(DeliveryProblem)):
            ticket = s.get(Ticket, p.ticket_id)
            assert (ticket.severity, ticket.source) == (SEVERITY[p.problem], "delivery")
            if external[p.order_id] == str(waiting.id):
                unfulfilled.add(p.problem)
            else:
                found[by_order[external[p.order_id]]].add(p.problem)
                assert s.get(Parcel, p.parcel_id).order_id == p.order_id
        notices = {external[m.order_id] for m in s.scalars(select(Message).where(Message.flow == "delivery_stalls"))}
    assert found == expected
    assert unfulfilled == ({"unfulfilled"} if expected_unfulfilled else set())
    # The scripted cases really exercise the rules: a silent parcel, an attempt, a failure, a clean delivery.
    assert expected["stalled"] >= {"no_scan", "lost", "past_estimate"} and expected["normal"] == set()
    assert "attempted" in expected["attempted_then_delivered"] and "failed" in expected["lost"]
    with_problems = {str(plans[name][0].id) for name in TIMELINES if expected[name]}
    assert notices == with_problems | ({str(waiting.id)} if expected_unfulfilled else set())
    # The merchant was told once per ticket (the 5-minute alert job ran after each detection); re-runs change nothing.
    with database.session() as s:
        assert opened == s.query(Ticket).count() == s.query(DeliveryProblem).count()
    assert delivery_stalls.run(harness.ctx, harness.store_id)["stalls"] == 0
    assert runner.run_ticket_alert(harness.ctx, harness.store_id)["opened"] == 0
