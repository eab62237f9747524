"""Delivery care's off switches each suppress exactly what they name and nothing else: every stall kind, the
"we're on it" notice, every milestone of the delivery updates, and the customer's one-click opt-out.

Expectations are the hand-written timelines of tests/jobs/test_delivery_stalls.py (their problems worked out from
the rules and the US calendar) minus what the switch turns off.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from base.clock import FrozenClock
from plugin import flow_settings
from plugin.flows import delivery_stalls, runner
from plugin.flows.delivery_update import SETTING_OF
from plugin.messaging.withdrawals import stop_delivery_updates
from plugin.models import Customer, DeliveryProblem, Message, Order, Parcel, ParcelNotice, Store, Ticket
from tests.conftest import wipe
from tests.delivery.harness import delivery_world
from tests.jobs import factory as f
from tests.jobs.conftest import make_ctx
from tests.jobs.test_delivery_stalls import NOW, _subjects, _timelines, problems

KINDS = ("unfulfilled", "no_scan", "lost", "past_estimate", "attempted", "failed")


@pytest.fixture
def ctx(database, clock, tmp_path):
    """Return a job context on a wiped database (as tests/jobs does)."""
    wipe(database.engine)
    yield make_ctx(database, clock, tmp_path)
    wipe(database.engine)


@pytest.mark.parametrize("switch", [None, "customer_notice_enabled", *(f"detect_{k}" for k in KINDS)])
def test_each_stall_switch_turns_off_its_kind_only(ctx, switch):
    ctx.clock.set(NOW)
    with ctx.database.session() as s:
        st = f.store(s, country="US", timezone="America/New_York", alert_email="alerts@shop.test")
        made, expected = _timelines(s, st.id)
        if switch is not None:
            flow_settings.update(s, ctx.config, st.id, "delivery_stalls", {switch: False})
        sid = st.id
    kept = {(problem, name, sev) for problem, name, sev in expected if switch != f"detect_{problem}"}
    assert len(kept) == len(expected) - (0 if switch in (None, "customer_notice_enabled") else
                                         sum(1 for p, _, _ in expected if f"detect_{p}" == switch))
    told = {made[name][0].id for _, name, _ in kept} if switch != "customer_notice_enabled" else set()
    assert delivery_stalls.run(ctx, sid) == {"notices": len(told), "skipped": 0, "stalls": len(kept),
                                             "tickets": len(kept)}
    assert problems(ctx) == _subjects(made, kept)
    assert runner.run_ticket_alert(ctx, sid) == {"urgent": 0, "alerts": 0, "opened": len(kept)}
    with ctx.database.session() as s:
        assert set(s.scalars(select(Message.order_id).where(Message.flow == "delivery_stalls"))) == told
        alerted = set(s.scalars(select(Message.ticket_id).where(Message.flow == "ticket_alert")))
        assert alerted == set(s.scalars(select(Ticket.id))) and len(alerted) == len(kept)
    # A later run does not bring the switched-off kind back.
    ctx.clock.set(NOW + timedelta(hours=1))
    assert delivery_stalls.run(ctx, sid)["stalls"] == 0


DAY = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)  # Tuesday; customers in UTC, quiet hours 21:00-08:00
TIMELINES = (("IN_TRANSIT", "DELAYED", "OUT_FOR_DELIVERY", "ATTEMPTED_DELIVERY", "DELIVERED"),
             ("IN_TRANSIT", "FAILURE"))


def _notices(world, order_ids) -> set[tuple[int, str]]:
    """Return the (sandbox order id, milestone) pairs the customer was told of."""
    with world.session() as s:
        return {(int(ext), m) for ext, m in s.execute(
            select(Order.external_id, ParcelNotice.milestone).join(Parcel, Parcel.id == ParcelNotice.parcel_id)
            .join(Order, Order.id == Parcel.order_id).where(Order.external_id.in_([str(o) for o in order_ids])))}


def test_each_milestone_switch_silences_that_milestone_only(database_url: str, tmp_path: Path,
                                                            clock: FrozenClock) -> None:
    with delivery_world(database_url, tmp_path, clock, DAY - timedelta(hours=2)) as world:
        people = world.env.sandbox.store.customers
        for k, (milestone, setting) in enumerate(sorted(SETTING_OF.items())):
            # Rounds lie further apart than max_late_hours (48): a milestone switched off in one round is too old to
            # be told when the next round switches it back on.
            start = DAY + timedelta(days=3 * k)
            clock.set(start - timedelta(hours=1))
            with world.session() as s:
                flow_settings.update(s, world.ctx().config, world.store_id, "delivery_update",
                                     {name: name != setting for name in SETTING_OF.values()})
            placed = [world.order_for(0, time_zone="UTC") for _ in TIMELINES]
            parcels = [world.ship(order, start) for order in placed]
            for n in range(max(len(t) for t in TIMELINES)):
                clock.set(start + timedelta(hours=n + 1))
                for order, parcel, timeline in zip(placed, parcels, TIMELINES, strict=True):
                    if n < len(timeline):
                        world.env.sandbox.add_fulfillment_event(order.id, timeline[n], clock.now(),
                                                                fulfillment_id=parcel.id)
                world.step()
            expected = {(o.id, m) for o, t in zip(placed, TIMELINES, strict=True) for m in ("SHIPPED", *t)
                        if m != milestone}
            assert _notices(world, [o.id for o in placed]) == expected, milestone
            subjects = [m.message["Subject"] for m in world.mails_to(people[0].email)]
            assert not any(s.startswith(_words(milestone)) and s.endswith(o.name) for s in subjects for o in placed)
        # Every milestone but the one switched off was emailed, one email each: 7 rounds of 9 milestones less 1.
        with world.session() as s:
            sent = s.scalars(select(Message).where(Message.flow == "delivery_update", Message.status == "sent")).all()
        assert len(sent) == sum(sum(1 for t in TIMELINES for m in ("SHIPPED", *t) if m != milestone)
                                for milestone in SETTING_OF)


def _words(milestone: str) -> str:
    return {"SHIPPED": "Shipped", "IN_TRANSIT": "In transit", "OUT_FOR_DELIVERY": "Out for delivery",
            "ATTEMPTED_DELIVERY": "Delivery attempted", "DELAYED": "Delayed", "DELIVERED": "Delivered",
            "FAILURE": "Delivery failed"}[milestone] + " ·"


def test_the_customers_opt_out_stops_their_delivery_mail_only(database_url: str, tmp_path: Path,
                                                              clock: FrozenClock) -> None:
    with delivery_world(database_url, tmp_path, clock, DAY - timedelta(hours=2)) as world:
        people = world.env.sandbox.store.customers
        with world.session() as s:
            store = s.get(Store, world.store_id)
            store.country, store.timezone = "US", "America/New_York"
            store.merchant.alert_email = "alerts@shop.test"
            stop_delivery_updates(s, world.store_id, people[0].email, DAY - timedelta(hours=2))
        placed = [world.order_for(k, time_zone="UTC") for k in (0, 1)]
        parcels = [world.ship(o, DAY) for o in placed]
        clock.set(DAY + timedelta(hours=3))
        for o, p in zip(placed, parcels, strict=True):
            world.env.sandbox.add_fulfillment_event(o.id, "ATTEMPTED_DELIVERY", clock.now(), fulfillment_id=p.id)
        world.step()
        assert delivery_stalls.run(world.ctx(), world.store_id) == {"notices": 2, "skipped": 0, "stalls": 2,
                                                                    "tickets": 2}
        assert runner.run_ticket_alert(world.ctx(), world.store_id)["opened"] == 2
        world.step()
        # Opted out: neither the update nor the "we're on it" notice reaches them; the other customer gets both.
        assert world.mails_to(people[0].email) == []
        subjects = sorted(m.message["Subject"] for m in world.mails_to(people[1].email))
        assert len(subjects) == 2 and f"Delivery attempted · {placed[1].name}" in subjects
        with world.session() as s:
            ids = {int(c.external_id): c.id for c in s.scalars(select(Customer))}
            skipped = {(m.flow, m.skip_reason) for m in s.scalars(select(Message).where(
                Message.customer_id == ids[people[0].id]))}
            assert skipped == {("delivery_update", "delivery_updates_off"), ("delivery_stalls", "delivery_updates_off")}
            # The merchant still hears of both problems, and both tickets stay open for them.
            assert {m.status for m in s.scalars(select(Message).where(Message.flow == "ticket_alert"))} == {"sent"}
            assert len(s.scalars(select(Message).where(Message.flow == "ticket_alert")).all()) == 2
            assert {t.status for t in s.scalars(select(Ticket))} == {"open"}
            assert s.scalar(select(DeliveryProblem.id).limit(1)) is not None
