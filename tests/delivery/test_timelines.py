"""Each scripted carrier timeline of the Shopify sandbox, end to end: webhooks → parcels → delivery updates → SMTP.

Default settings (out for delivery, attempted delivery, delayed, delivered, failure; shipped and in transit off),
quiet hours 21:00-08:00 in the customer's zone (UTC here). Every parcel ships at 06:00 UTC; the expected emails
and their times below are worked out by hand from sandbox/shopify/timelines.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import select

from base.clock import FrozenClock
from plugin.models import ParcelNotice
from tests.delivery.harness import delivery_world, tracking_link

START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)  # a Monday, 06:00 UTC
# timeline -> [(subject label, sent at, hours after shipping)]
EXPECTED = {
    "normal": [("Out for delivery", 70), ("Delivered", 77)],
    # The delivery at +236 h is 02:00: held to 08:00 (+242 h).
    "customs_hold": [("Delayed", 60), ("Out for delivery", 230), ("Delivered", 242)],
    "stalled": [],
    # The second "out for delivery" (+74 h) is not told again.
    "attempted_then_delivered": [("Out for delivery", 50), ("Delivery attempted", 58), ("Delivered", 79)],
    "lost": [("Delivery failed", 200)],
}


def test_every_timeline_sends_exactly_the_expected_updates(database_url: str, tmp_path: Path,
                                                          clock: FrozenClock) -> None:
    with delivery_world(database_url, tmp_path, clock, START - timedelta(hours=1)) as world:
        shop = world.env.sandbox.store
        pages: dict[str, str] = {}
        for k, (timeline, expected) in enumerate(EXPECTED.items()):
            shipped_at = START + timedelta(days=14 * k)
            clock.set(shipped_at - timedelta(minutes=30))
            placed = world.order_for(k, time_zone="UTC")
            parcel = world.ship(placed, shipped_at)
            world.play(placed, parcel, timeline, shipped_at)
            world.flush()  # the dispatcher's run when a held update is due
            mails = world.mails_to(shop.customers[k].email)
            got = [(m.message["Subject"], m.received_at) for m in mails]
            assert got == [(f"{label} · {placed.name}", shipped_at + timedelta(hours=h)) for label, h in expected], \
                timeline
            stored, events = world.parcel(parcel.id)
            assert len(events) == len(world.env.sandbox.store.orders_by_id[placed.id].fulfillments[0].events)
            if mails:
                pages[timeline] = httpx.get(tracking_link(mails[-1]), timeout=10).text
            with world.session() as session:
                told = sorted(session.scalars(select(ParcelNotice.milestone).where(
                    ParcelNotice.parcel_id == stored.id)))
            assert told == sorted({"Out for delivery": "OUT_FOR_DELIVERY", "Delivered": "DELIVERED",
                                   "Delayed": "DELAYED", "Delivery attempted": "ATTEMPTED_DELIVERY",
                                   "Delivery failed": "FAILURE"}[label] for label, _ in expected)
            # One email per parcel and milestone: every update went out on its own here (nothing was collapsed).
            assert [m.status for m in world.messages(placed.id)] == ["sent"] * len(expected)

        page = pages["normal"]
        for words in ("Delivered", "Out for delivery", "In transit", "Confirmed by the carrier", "Shipped",
                      "Chicago, United States", "Delivered, front door", shop.products[0].title,
                      shop.products[1].title, "1Z999AA1", "You can return any unused item within", "Refund policy",
                      "Something is wrong"):
            assert words in page, words
        assert "Expected delivery" not in page  # delivered: no estimate any more
        lost = pages["lost"]
        assert "Delivery failed" in lost and "Parcel lost in transit, claim opened" in lost
        assert "Expected delivery" in lost
