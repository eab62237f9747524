"""Delivery updates' rules over the sandboxes: replayed and out-of-order events, quiet hours across time zones
(with collapsing), the one-click off switch, cancelled orders."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import delete, func, select

from base.clock import FrozenClock
from plugin.messaging.suppression import is_suppressed
from plugin.models import DeliveryOptOut, Order, ParcelEvent, WebhookEvent
from sandbox.shopify.payloads import PayloadBuilder
from tests.delivery.harness import delivery_world, text_of
from tests.shopify_app_env import body_of, signed_headers

DAY_START = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)


def _post(world, payload: dict, topic: str) -> None:
    body = body_of(payload)
    answer = httpx.post(world.env.url + "/webhooks", content=body, headers=signed_headers(body, topic), timeout=10)
    assert answer.status_code == 200


def test_replayed_and_out_of_order_events_change_nothing_twice(database_url: str, tmp_path: Path,
                                                               clock: FrozenClock) -> None:
    with delivery_world(database_url, tmp_path, clock, DAY_START - timedelta(hours=1)) as world:
        person = world.env.sandbox.store.customers[0]
        placed = world.order_for(0, time_zone="UTC")
        parcel = world.ship(placed, DAY_START)
        out = DAY_START + timedelta(hours=2)
        arrived = DAY_START + timedelta(hours=5)
        clock.set(arrived)
        world.env.sandbox.add_fulfillment_event(placed.id, "OUT_FOR_DELIVERY", out, fulfillment_id=parcel.id,
                                                city="Chicago", country="United States")
        world.env.sandbox.add_fulfillment_event(placed.id, "DELIVERED", arrived, fulfillment_id=parcel.id,
                                                city="Chicago", country="United States")
        # Shopify's deliveries of these never made it; the carrier's events arrive late, newest first.
        with world.session() as session:
            session.execute(delete(WebhookEvent).where(WebhookEvent.processed_at.is_(None)))
        builder = PayloadBuilder(world.env.sandbox.store, True)
        order = world.env.sandbox.store.orders_by_id[placed.id]
        bodies = [builder.fulfillment_event(order, parcel, e) for e in reversed(parcel.events)]
        for payload in bodies:
            _post(world, payload, "fulfillment_events/create")
        counts = world.step()
        assert counts["webhooks"] == {"processed": 2, "applied": 2}
        stored, events = world.parcel(parcel.id)
        assert [(e.status, e.happened_at) for e in events] == [("OUT_FOR_DELIVERY", out), ("DELIVERED", arrived)]
        assert (stored.status, stored.delivered_at, stored.last_event_at) == ("DELIVERED", arrived, arrived)
        with world.session() as session:
            assert session.scalar(select(Order.delivered_at).where(Order.external_id == str(placed.id))) == arrived
        # Both milestones were found together: one email, headed by the latest, listing both.
        (mail,) = world.mails_to(person.email)
        assert mail.message["Subject"] == f"Delivered · {placed.name}"
        assert "Out for delivery" in text_of(mail) and "Delivered" in text_of(mail)

        # Replayed (new webhook ids, the same events, both orders): nothing changes, nothing is sent.
        for payload in [*bodies, *reversed(bodies)]:
            _post(world, payload, "fulfillment_events/create")
        clock.advance(hours=1)
        counts = world.step()
        assert counts["webhooks"] == {"processed": 4, "unchanged": 4}
        assert counts["planned"] == {"updates": 0, "skipped": 0}
        assert len(world.mails_to(person.email)) == 1
        assert len(world.parcel(parcel.id)[1]) == 2
        assert [m.status for m in world.messages(placed.id)] == ["sent"]


def test_quiet_hours_follow_each_customers_zone(database_url: str, tmp_path: Path, clock: FrozenClock) -> None:
    shipped = datetime(2026, 3, 3, 1, 0, tzinfo=UTC)
    delayed = datetime(2026, 3, 3, 13, 0, tzinfo=UTC)  # 22:00 Tokyo, 05:00 Los Angeles, 14:00 Berlin
    with delivery_world(database_url, tmp_path, clock, shipped - timedelta(hours=1)) as world:
        shop = world.env.sandbox.store
        zones = ("Asia/Tokyo", "America/Los_Angeles", "Europe/Berlin")
        orders = [world.order_for(k, time_zone=zone) for k, zone in enumerate(zones)]
        clock.set(shipped)
        parcels = [world.env.sandbox.fulfil_order(o.id) for o in orders]
        world.step()
        clock.set(delayed)
        for o, p in zip(orders, parcels, strict=True):
            world.env.sandbox.add_fulfillment_event(o.id, "DELAYED", delayed, fulfillment_id=p.id)
        world.step()
        # Berlin is awake; Tokyo and Los Angeles are held to 08:00 their time.
        assert [len(world.mails_to(shop.customers[k].email)) for k in range(3)] == [0, 0, 1]
        held = {k: world.messages(orders[k].id)[0] for k in (0, 1)}
        assert {k: (m.status, m.skip_reason, m.scheduled_for) for k, m in held.items()} == {
            0: ("scheduled", "quiet_hours", datetime(2026, 3, 3, 23, 0, tzinfo=UTC)),
            1: ("scheduled", "quiet_hours", datetime(2026, 3, 3, 16, 0, tzinfo=UTC))}

        # 23:30 in Tokyo the parcel goes out for delivery: that is news now, and it takes the held one along.
        out = datetime(2026, 3, 3, 14, 30, tzinfo=UTC)
        clock.set(out)
        world.env.sandbox.add_fulfillment_event(orders[0].id, "OUT_FOR_DELIVERY", out, fulfillment_id=parcels[0].id)
        world.step()
        (tokyo,) = world.mails_to(shop.customers[0].email)
        assert (tokyo.message["Subject"], tokyo.received_at) == (f"Out for delivery · {orders[0].name}", out)
        assert "Delayed" in text_of(tokyo)
        assert [(m.status, m.skip_reason) for m in world.messages(orders[0].id)] == [
            ("cancelled", "collapsed"), ("sent", None)]

        world.flush()
        (angeles,) = world.mails_to(shop.customers[1].email)
        assert (angeles.message["Subject"], angeles.received_at) == (
            f"Delayed · {orders[1].name}", datetime(2026, 3, 3, 16, 0, tzinfo=UTC))
        # Times in each email are the customer's own: 22:00 in Tokyo, 14:00 in Berlin.
        assert re.search(r"\b22:00\b|10:00\s*PM", text_of(tokyo))
        (berlin,) = world.mails_to(shop.customers[2].email)
        assert re.search(r"\b14:00\b|2:00\s*PM", text_of(berlin))


def test_one_click_turns_delivery_updates_off_and_nothing_else(database_url: str, tmp_path: Path,
                                                               clock: FrozenClock) -> None:
    with delivery_world(database_url, tmp_path, clock, DAY_START - timedelta(hours=1)) as world:
        person = world.env.sandbox.store.customers[0]
        placed = world.order_for(0, time_zone="UTC")
        parcel = world.ship(placed, DAY_START)
        world.play(placed, parcel, "attempted_then_delivered", DAY_START, upto=3)  # ... out for delivery
        (first,) = world.mails_to(person.email)
        assert first.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        target = re.search(r"<(https?://[^>]+/u/[^>]+)>", first.message["List-Unsubscribe"]).group(1)
        answer = httpx.post(target, data={"List-Unsubscribe": "One-Click"}, timeout=10)
        assert answer.status_code == 200
        page = httpx.get(target, timeout=10).text
        assert "Turn off delivery updates" in page

        clock.advance(hours=8)
        world.env.sandbox.add_fulfillment_event(placed.id, "ATTEMPTED_DELIVERY", clock.now(),
                                                fulfillment_id=parcel.id)
        world.step()
        assert len(world.mails_to(person.email)) == 1
        assert [(m.status, m.skip_reason) for m in world.messages(placed.id)] == [
            ("sent", None), ("skipped", "delivery_updates_off")]
        with world.session() as session:
            assert session.scalar(select(func.count(DeliveryOptOut.id))) == 1
            # Only this kind is off: the address is not on the suppression list.
            assert not is_suppressed(session, world.store_id, person.email)


def test_a_cancelled_orders_parcel_sends_nothing(database_url: str, tmp_path: Path, clock: FrozenClock) -> None:
    with delivery_world(database_url, tmp_path, clock, DAY_START - timedelta(hours=1)) as world:
        person = world.env.sandbox.store.customers[0]
        placed = world.order_for(0, time_zone="UTC")
        parcel = world.ship(placed, DAY_START)
        world.env.sandbox.cancel_order(placed.id)
        world.step()
        world.play(placed, parcel, "normal", DAY_START)
        assert world.mails_to(person.email) == []
        with world.session() as session:
            assert session.scalar(select(func.count(ParcelEvent.id))) == 4  # recorded all the same
