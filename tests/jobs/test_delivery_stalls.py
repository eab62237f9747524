"""Stalled and failed deliveries: business-day thresholds across a holiday, one ticket per parcel and problem,
the customer's "we're on it" before the merchant's alert, re-runs that change nothing, holds on review requests
and surveys, Amazon late shipments (tickets and alerts, nothing to the buyer), history estimates.

Expected tickets are written out per timeline from the stated rules and the calendar (Labor Day 2026 is Monday
7 September in the United States), not computed by the code under test.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from plugin import flow_settings, tickets
from plugin.business_days import Calendar
from plugin.delivery_estimates import estimate, refresh, run_refresh, stored_stats, transit_stats, usual_days
from plugin.flows import delivery_stalls, runner
from plugin.messaging import policy
from plugin.messaging.outbox import message_row, schedule
from plugin.models import DeliveryProblem, Message, Parcel, Ticket
from tests.jobs import factory as f

NY = ZoneInfo("America/New_York")
DAY = timedelta(days=1)
_gid = iter(range(1, 10**6))


def ny(y: int, m: int, d: int, h: int = 12) -> datetime:
    """Return a New York wall-clock time as an aware UTC instant."""
    return datetime(y, m, d, h, tzinfo=NY).astimezone(UTC)


def parcel(s, order, *, shipped, last_event=None, status="IN_TRANSIT", delivered=None, estimate_at=None,
           carrier="UPS", tracking=None) -> Parcel:
    """Store a parcel as the delivery ingest does, and the order's fulfilment time with it."""
    n = next(_gid)
    row = Parcel(store_id=order.store_id, order_id=order.id, fulfillment_gid=f"gid://shopify/Fulfillment/{n}",
                 status=status, tracking_company=carrier, tracking_number=tracking or f"1Z{n:06d}",
                 shipped_at=shipped, last_event_at=last_event, delivered_at=delivered,
                 estimated_delivery_at=estimate_at)
    s.add(row)
    order.fulfilled_at = order.fulfilled_at or shipped
    if delivered:
        order.delivered_at = delivered
    s.flush()
    return row


def problems(ctx) -> set[tuple[str, str, int]]:
    with ctx.database.session() as s:
        return {(p.problem, p.subject, s.get(Ticket, p.ticket_id).severity)
                for p in s.scalars(select(DeliveryProblem))}


def counts(ctx) -> tuple[int, int]:
    with ctx.database.session() as s:
        return s.scalar(select(func.count(Ticket.id))), s.scalar(select(func.count(Message.id)))


# -- the calendar ---------------------------------------------------------------------------------------------


def test_business_days_skip_weekends_and_the_store_countrys_holidays():
    us, gb = Calendar.for_store("US", "America/New_York"), Calendar.for_store("GB", "Europe/London")
    friday = ny(2026, 9, 4, 15)
    assert not us.is_business_day(datetime(2026, 9, 7).date())  # Labor Day
    assert gb.is_business_day(datetime(2026, 9, 7).date())
    # Two whole business days after Friday: Tuesday and Wednesday in the US (Monday is a holiday) ...
    assert us.add_business_days(friday, 2) == ny(2026, 9, 10, 0)
    assert us.business_days_between(friday, ny(2026, 9, 9, 23)) == 1
    assert us.business_days_between(friday, ny(2026, 9, 10, 0)) == 2
    # ... Monday and Tuesday in Great Britain, counted in London's days.
    london_wed = datetime(2026, 9, 9, 0, tzinfo=ZoneInfo("Europe/London")).astimezone(UTC)
    assert gb.add_business_days(friday, 2) == london_wed
    assert us.cutoff(ny(2026, 9, 10, 9), 2) == ny(2026, 9, 8, 0)
    assert us.cutoff(ny(2026, 9, 9, 9), 2) == ny(2026, 9, 4, 0)


def test_unfulfilled_threshold_counts_business_days_across_labor_day(ctx):
    with ctx.database.session() as s:
        st = f.store(s, country="US", timezone="America/New_York")
        c = f.customer(s, st.id)
        o = f.order(s, st.id, c.id, ny(2026, 9, 4, 15), financial_status="PAID")
        sid, subject = st.id, f"order={o.id}"
    ctx.clock.set(ny(2026, 9, 9, 23, ) + timedelta(minutes=59))  # Wednesday 23:59: one business day (Tuesday)
    assert delivery_stalls.run(ctx, sid)["stalls"] == 0
    ctx.clock.set(ny(2026, 9, 10, 0) + timedelta(minutes=1))  # Thursday 00:01: Tuesday and Wednesday
    assert delivery_stalls.run(ctx, sid) == {"notices": 1, "skipped": 0, "stalls": 1, "tickets": 1}
    assert problems(ctx) == {("unfulfilled", subject, 3)}


# -- timelines ------------------------------------------------------------------------------------------------
# Now: Wednesday 16 September 2026, noon in New York. Business days before it, most recent first: Tue 15 (1),
# Mon 14 (2), Fri 11 (3), Thu 10 (4), Wed 9, Tue 8, Fri 4 (Labor Day Mon 7 skipped), Thu 3, Wed 2, Tue 1 (10).
# Defaults: unfulfilled after 2, no scan for 3, lost after 10, 1 past the estimate.
NOW = ny(2026, 9, 16)


def _timelines(s, store_id):
    """Build the store's timelines; return {name: (order, parcel or None)} and the expected (problem, name, sev)."""
    made, expected = {}, set()

    def order(name, created, **kw):
        c = f.customer(s, store_id, locale=kw.pop("locale", "en"), country=kw.pop("country", "US"))
        made[name] = (f.order(s, store_id, c.id, created, financial_status=kw.pop("financial_status", "PAID"),
                              **kw), None)
        return made[name][0]

    def shipped(name, created, **kw):
        o = order(name, created, cancelled_at=kw.pop("cancelled_at", None))
        made[name] = (o, parcel(s, o, **kw))

    order("paid_friday", ny(2026, 9, 11, 10))                      # 2 business days between: Mon, Tue
    expected.add(("unfulfilled", "paid_friday", 3))
    order("paid_monday", ny(2026, 9, 14, 9))                       # 1 (Tue): not yet
    order("unpaid", ny(2026, 9, 1), financial_status="PENDING")    # not paid: not the merchant's delay
    shipped("silent_thursday", ny(2026, 9, 7), shipped=ny(2026, 9, 8), last_event=ny(2026, 9, 10, 18))
    expected.add(("no_scan", "silent_thursday", 3))                # Fri, Mon, Tue
    shipped("silent_friday", ny(2026, 9, 8), shipped=ny(2026, 9, 9), last_event=ny(2026, 9, 11, 8))  # Mon, Tue
    shipped("never_scanned", ny(2026, 9, 8), shipped=ny(2026, 9, 10, 9), status=None)                # Fri, Mon, Tue
    expected.add(("no_scan", "never_scanned", 3))
    shipped("gone", ny(2026, 8, 27), shipped=ny(2026, 8, 28), last_event=ny(2026, 8, 31))            # 11 days
    expected |= {("no_scan", "gone", 3), ("lost", "gone", 2)}
    shipped("late_estimate", ny(2026, 9, 8), shipped=ny(2026, 9, 9), last_event=ny(2026, 9, 15, 8),
            estimate_at=ny(2026, 9, 14, 18))                       # Tue lies between: 1 business day late
    expected.add(("past_estimate", "late_estimate", 3))
    shipped("due_yesterday", ny(2026, 9, 8), shipped=ny(2026, 9, 9), last_event=ny(2026, 9, 15, 8),
            estimate_at=ny(2026, 9, 15, 18))
    shipped("attempted", ny(2026, 9, 8), shipped=ny(2026, 9, 9), last_event=ny(2026, 9, 15, 14),
            status="ATTEMPTED_DELIVERY")
    expected.add(("attempted", "attempted", 3))
    shipped("failed", ny(2026, 9, 1), shipped=ny(2026, 9, 2), last_event=ny(2026, 9, 3), status="FAILURE")
    expected.add(("failed", "failed", 2))                          # settled: no scan expected, so no no_scan
    shipped("delivered", ny(2026, 8, 20), shipped=ny(2026, 8, 21), last_event=ny(2026, 8, 25), status="DELIVERED",
            delivered=ny(2026, 8, 25))
    shipped("cancelled", ny(2026, 8, 27), shipped=ny(2026, 8, 28), last_event=ny(2026, 8, 31),
            cancelled_at=ny(2026, 9, 1))
    return made, expected


def _subjects(made, expected):
    out = set()
    for problem, name, severity in expected:
        o, p = made[name]
        out.add((problem, f"parcel={p.id}" if p is not None else f"order={o.id}", severity))
    return out


def test_each_timeline_opens_exactly_the_expected_tickets_notices_and_alerts(ctx):
    ctx.clock.set(NOW)
    with ctx.database.session() as s:
        st = f.store(s, country="US", timezone="America/New_York", alert_email="alerts@shop.test")
        made, expected = _timelines(s, st.id)
        sid = st.id
        order_ids = {made[name][0].id for _, name, _ in expected}
    result = delivery_stalls.run(ctx, sid)
    assert result == {"notices": len(order_ids), "skipped": 0, "stalls": len(expected), "tickets": len(expected)}
    assert problems(ctx) == _subjects(made, expected)
    assert runner.run_ticket_alert(ctx, sid) == {"urgent": 0, "alerts": 0, "opened": len(expected)}
    with ctx.database.session() as s:
        notices = s.scalars(select(Message).where(Message.flow == "delivery_stalls").order_by(Message.id)).all()
        alerts = s.scalars(select(Message).where(Message.flow == "ticket_alert").order_by(Message.id)).all()
        assert {m.order_id for m in notices} == order_ids  # one per order: "gone" has two tickets, one notice
        assert all(m.step == "notice" and m.status == "scheduled" and not m.marketing for m in notices)
        gone = next(m for m in notices if m.order_id == made["gone"][0].id)
        assert gone.payload["failed"] is False and gone.payload["carrier"] == "UPS"  # the first problem: no scan
        assert {m.to_address for m in alerts} == {"alerts@shop.test"}
        assert {m.ticket_id for m in alerts} == set(s.scalars(select(Ticket.id)))
        # The customer hears first: every notice is older than every alert.
        assert max(m.id for m in notices) < min(m.id for m in alerts)
        opened = s.scalars(select(Ticket)).all()
        assert {t.source for t in opened} == {"delivery"} and {t.status for t in opened} == {"open"}
        for t in opened:  # the SLA clock of its severity (plugin.tickets defaults: 24 h for 2, 72 h for 3)
            assert t.sla_due_at - t.opened_at == timedelta(hours=24 if t.severity == 2 else 72)
    before = counts(ctx)
    for later in (NOW, NOW + timedelta(hours=1)):  # re-runs change nothing
        ctx.clock.set(later)
        assert delivery_stalls.run(ctx, sid) == {"notices": 0, "skipped": 0, "stalls": 0, "tickets": 0}
        assert runner.run_ticket_alert(ctx, sid) == {"urgent": 0, "alerts": 0, "opened": 0}
    assert counts(ctx) == before


def test_notice_is_skipped_without_contact_and_off_when_disabled(ctx):
    ctx.clock.set(NOW)
    with ctx.database.session() as s:
        st = f.store(s, country="US", timezone="America/New_York")
        quiet = f.customer(s, st.id, email=None)
        o = f.order(s, st.id, quiet.id, ny(2026, 9, 10), financial_status="PAID")
        sid, oid = st.id, o.id
    assert delivery_stalls.run(ctx, sid) == {"notices": 0, "skipped": 1, "stalls": 1, "tickets": 1}
    with ctx.database.session() as s:
        m = s.scalar(select(Message).where(Message.order_id == oid))
        assert (m.status, m.skip_reason) == ("skipped", "no_contact_access")
        st2 = f.store(s, country="US", timezone="America/New_York")
        c = f.customer(s, st2.id)
        f.order(s, st2.id, c.id, ny(2026, 9, 10), financial_status="PAID")
        flow_settings.update(s, ctx.config, st2.id, "delivery_stalls", {"customer_notice_enabled": False})
        sid2 = st2.id
    assert delivery_stalls.run(ctx, sid2) == {"notices": 0, "skipped": 0, "stalls": 1, "tickets": 1}


def test_thresholds_are_the_merchants_setting(ctx):
    ctx.clock.set(NOW)
    with ctx.database.session() as s:
        st = f.store(s, country="US", timezone="America/New_York")
        c = f.customer(s, st.id)
        o = f.order(s, st.id, c.id, ny(2026, 9, 8))
        p = parcel(s, o, shipped=ny(2026, 9, 9), last_event=ny(2026, 9, 14, 8))  # Tue 15 between: 1 day
        flow_settings.update(s, ctx.config, st.id, "delivery_stalls", {"no_scan_after_business_days": 2})
        sid, pid = st.id, p.id
    assert delivery_stalls.run(ctx, sid)["stalls"] == 0
    with ctx.database.session() as s:
        flow_settings.update(s, ctx.config, sid, "delivery_stalls", {"no_scan_after_business_days": 1})
    assert delivery_stalls.run(ctx, sid)["stalls"] == 1
    assert problems(ctx) == {("no_scan", f"parcel={pid}", 3)}


# -- estimates from the store's history -----------------------------------------------------------------------


def _nearest_rank(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(p * len(ordered)) - 1]


def test_history_estimates_are_the_median_and_90th_percentile_per_country_and_carrier(ctx):
    ctx.clock.set(NOW)
    rng = random.Random(13)
    samples: dict[tuple[str, str], list[float]] = {}
    with ctx.database.session() as s:
        st = f.store(s, country="US", timezone="America/New_York")
        for country, carrier, n in (("DE", "DHL", 25), ("US", "UPS", 7), ("FR", "", 12)):
            for _ in range(n):
                c = f.customer(s, st.id, country=country)
                shipped = NOW - timedelta(days=rng.uniform(15, 120))
                transit = timedelta(hours=rng.randint(20, 240))
                o = f.order(s, st.id, c.id, shipped - DAY, financial_status="PAID")
                parcel(s, o, shipped=shipped, delivered=shipped + transit, status="DELIVERED",
                       carrier=carrier or None, last_event=shipped + transit)
                samples.setdefault((country, carrier), []).append(transit.total_seconds() / 86400)
        old = f.order(s, st.id, f.customer(s, st.id, country="DE").id, NOW - 400 * DAY)
        parcel(s, old, shipped=NOW - 399 * DAY, delivered=NOW - 300 * DAY, status="DELIVERED", carrier="DHL")
        stats = transit_stats(s, st.id, NOW, history_days=180)
        assert set(stats) == set(samples)
        for group, values in samples.items():
            assert stats[group].samples == len(values)
            assert abs(stats[group].median_days - _nearest_rank(values, 0.5)) < 1e-4
            assert abs(stats[group].p90_days - _nearest_rank(values, 0.9)) < 1e-4
        assert set(transit_stats(s, st.id, NOW, history_days=180, min_samples=10)) == {("DE", "DHL"), ("FR", "")}
        de = stats[("DE", "DHL")]
        assert usual_days(de) == (max(1, math.floor(_nearest_rank(samples[("DE", "DHL")], 0.5))),
                                  max(max(1, math.floor(_nearest_rank(samples[("DE", "DHL")], 0.5))),
                                      math.ceil(_nearest_rank(samples[("DE", "DHL")], 0.9))))
        assert refresh(s, st.id, NOW, history_days=180) == 3
        assert stored_stats(s, st.id) == stats
        c = f.customer(s, st.id, country="DE")
        o = f.order(s, st.id, c.id, NOW - 2 * DAY)
        moving = parcel(s, o, shipped=NOW - DAY, last_event=NOW - DAY, carrier="DHL")
        got = estimate(s, ctx.config, moving, NOW)
        assert (got.source, got.low_days, got.high_days, got.samples) == ("history", *usual_days(de), 25)
        assert abs((got.expected_by - moving.shipped_at).total_seconds() / 86400 - de.p90_days) < 1e-4
        us = f.order(s, st.id, f.customer(s, st.id, country="US").id, NOW - 2 * DAY)
        assert estimate(s, ctx.config, parcel(s, us, shipped=NOW - DAY), NOW) is None  # 7 < 20 samples
        carrier_said = parcel(s, us, shipped=NOW - DAY, estimate_at=NOW + DAY)
        assert estimate(s, ctx.config, carrier_said, NOW).source == "carrier"


def test_past_the_history_estimate_opens_a_ticket(ctx):
    ctx.clock.set(NOW)
    with ctx.database.session() as s:
        st = f.store(s, country="US", timezone="America/New_York")
        # 20 DHL parcels to Germany: 10 took 3 days, 8 took 4, 2 took 6 -> median 3, 90th percentile 4 days.
        for days in [3] * 10 + [4] * 8 + [6] * 2:
            o = f.order(s, st.id, f.customer(s, st.id, country="DE").id, NOW - 40 * DAY)
            parcel(s, o, shipped=NOW - 30 * DAY, delivered=NOW - (30 - days) * DAY, status="DELIVERED",
                   carrier="DHL")
        late = f.order(s, st.id, f.customer(s, st.id, country="DE").id, ny(2026, 9, 7))
        p_late = parcel(s, late, shipped=ny(2026, 9, 8), last_event=ny(2026, 9, 14), carrier="DHL")  # due Sat 12
        on_time = f.order(s, st.id, f.customer(s, st.id, country="DE").id, ny(2026, 9, 11))
        parcel(s, on_time, shipped=ny(2026, 9, 12), last_event=ny(2026, 9, 14), carrier="DHL")     # due Wed 16
        other = f.order(s, st.id, f.customer(s, st.id, country="FR").id, ny(2026, 9, 7))
        parcel(s, other, shipped=ny(2026, 9, 8), last_event=ny(2026, 9, 14), carrier="DHL")  # no FR history
        sid, pid = st.id, p_late.id
    assert delivery_stalls.run(ctx, sid)["stalls"] == 0  # no statistics stored yet: the carrier's estimates only
    assert run_refresh(ctx, sid) == {"groups": 1}
    assert delivery_stalls.run(ctx, sid)["stalls"] == 1
    assert problems(ctx) == {("past_estimate", f"parcel={pid}", 3)}


# -- holds: review requests and surveys wait while a delivery problem is open --------------------------------


def test_review_requests_and_surveys_wait_for_the_delivery_problem_then_go_however_late(ctx):
    t0 = NOW
    ctx.clock.set(t0)
    with ctx.database.session() as s:
        st = f.store(s, country="US", timezone="America/New_York")
        held, free = f.customer(s, st.id), f.customer(s, st.id)
        oh = f.order(s, st.id, held.id, t0 - 10 * DAY, delivered_at=t0, fulfilled_at=t0 - 5 * DAY)
        of = f.order(s, st.id, free.id, t0 - 10 * DAY, delivered_at=t0, fulfilled_at=t0 - 5 * DAY)
        ticket = tickets.open_ticket(s, ctx.config, store_id=st.id, source="delivery", severity=3,
                                     subject="no scan", now=t0 - 2 * DAY, customer_id=held.id, order_id=oh.id)
        sid, tid = st.id, ticket.id

    def flows_for(order_id):
        with ctx.database.session() as s:
            return {(m.flow, m.step) for m in s.scalars(select(Message).where(Message.order_id == order_id))}

    ctx.clock.set(t0 + 12 * DAY)  # review request due at +7, survey at +10
    runner.run_review_request(ctx, sid)
    runner.run_survey(ctx, sid)
    assert flows_for(of.id) == {("review_request", "main"), ("survey", "main")}
    assert flows_for(oh.id) == set()
    with ctx.database.session() as s:
        tickets.resolve_ticket(s, tid, "parcel found, delivered", t0 + 45 * DAY)
    ctx.clock.set(t0 + 45 * DAY)  # both are past the 30-day age limit now: the hold does not count against them
    runner.run_review_request(ctx, sid)
    runner.run_survey(ctx, sid)
    assert flows_for(oh.id) == {("review_request", "main"), ("survey", "main")}


def test_a_survey_already_planned_waits_at_dispatch_while_a_delivery_problem_is_open(ctx):
    ctx.clock.set(NOW)
    with ctx.database.session() as s:
        st = f.store(s, country="US", timezone="America/New_York")
        c = f.customer(s, st.id)
        o = f.order(s, st.id, c.id, NOW - 12 * DAY, delivered_at=NOW - 10 * DAY)
        [mid] = schedule(s, [message_row(store_id=st.id, flow="survey", step="main", key_parts=(f"order={o.id}",),
                                         scheduled_for=NOW, customer_id=c.id, order_id=o.id, to_address=c.email,
                                         payload={"kind": "nps"})], NOW)
        tickets.open_ticket(s, ctx.config, store_id=st.id, source="delivery", severity=3, subject="late",
                            now=NOW, customer_id=c.id, order_id=o.id)
        decision = policy.evaluate(s, ctx.config, s.get(Message, mid), NOW)
        assert (decision.action, decision.reason) == ("reschedule", "open_delivery_problem")


# -- Amazon: late seller-fulfilled shipments become tickets and alerts, nothing goes to the buyer ----------------


def test_amazon_late_shipments_open_tickets_and_alert_the_merchant_only(ctx):
    ctx.clock.set(NOW)
    with ctx.database.session() as s:
        st = f.store(s, platform="amazon", country="US", timezone="America/Los_Angeles",
                     alert_email="seller@shop.test")

        def amazon(name, **kw):
            return f.order(s, st.id, None, NOW - 10 * DAY, **kw)

        unshipped = amazon("111-1", fulfillment_channel="MFN", fulfillment_status="unshipped",
                           latest_ship_at=NOW - DAY)
        amazon("111-2", fulfillment_channel="MFN", fulfillment_status="unshipped", latest_ship_at=NOW + DAY)
        undelivered = amazon("111-3", fulfillment_channel="MFN", fulfillment_status="shipped",
                             fulfilled_at=NOW - 6 * DAY, latest_ship_at=NOW - 7 * DAY,
                             latest_delivery_at=NOW - 2 * DAY)
        amazon("111-4", fulfillment_channel="MFN", fulfillment_status="delivered", fulfilled_at=NOW - 6 * DAY,
               latest_delivery_at=NOW - 2 * DAY)
        amazon("111-5", fulfillment_channel="AFN", fulfillment_status="unshipped", latest_ship_at=NOW - DAY)
        amazon("111-6", fulfillment_channel="MFN", fulfillment_status="canceled", cancelled_at=NOW - 3 * DAY,
               latest_ship_at=NOW - DAY)
        sid, late_ship, late_delivery = st.id, unshipped.id, undelivered.id
    assert delivery_stalls.run(ctx, sid) == {"notices": 0, "skipped": 0, "stalls": 2, "tickets": 2}
    assert problems(ctx) == {("amazon_late_ship", f"order={late_ship}", 3),
                             ("amazon_late_delivery", f"order={late_delivery}", 3)}
    assert runner.run_ticket_alert(ctx, sid) == {"urgent": 0, "alerts": 0, "opened": 2}
    with ctx.database.session() as s:
        sent = s.scalars(select(Message)).all()
        assert {(m.flow, m.step, m.to_address, m.customer_id) for m in sent} == {
            ("ticket_alert", "opened", "seller@shop.test", None)}
    assert delivery_stalls.run(ctx, sid) == {"notices": 0, "skipped": 0, "stalls": 0, "tickets": 0}
