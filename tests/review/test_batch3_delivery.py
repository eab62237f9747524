"""Adversarial review (batch 3): delivery updates, the tracking page and the one-click off switch (DESIGN §1, §4, §5).

Over the Shopify sandbox (its carrier events and compliance webhooks, signed, to our app over loopback), the SMTP
sandbox and the injected clock (tests/delivery/harness.py). A test marked xfail(strict=True) shows a rule broken on
the code under review; the fix makes it pass (and the marker must go).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import func, select

from base.clock import FrozenClock
from plugin.models import DeliveryOptOut, Message, Order, Ticket, TicketNote
from tests.delivery.harness import delivery_world, tracking_link

DAY_START = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
CITY = "Quetzaltenango"  # a place that appears nowhere but in this parcel's carrier events


def _unsubscribe_target(mail) -> str:
    found = re.search(r"<(https?://[^>]+/u/[^>]+)>", mail.message["List-Unsubscribe"])
    assert found is not None
    return found.group(1)


def _delivered_once(world):
    """Order, ship and deliver one parcel for customer 0 (UTC); return (person, placed, parcel, mail)."""
    person = world.env.sandbox.store.customers[0]
    placed = world.order_for(0, time_zone="UTC")
    parcel = world.ship(placed, DAY_START)
    world.clock.set(DAY_START + timedelta(hours=3))
    world.env.sandbox.add_fulfillment_event(placed.id, "DELIVERED", world.clock.now(), fulfillment_id=parcel.id,
                                            city=CITY, country="Guatemala")
    world.step()
    (mail,) = world.mails_to(person.email)
    return person, placed, parcel, mail


def _order_id(world, placed) -> int:
    with world.session() as session:
        return session.scalar(select(Order.id).where(Order.store_id == world.store_id,
                                                     Order.external_id == str(placed.id)))


# == rule 6: a redacted customer's tracking link =================================================================

def test_a_redacted_customers_tracking_link_shows_nothing_personal(database_url: str, tmp_path: Path,
                                                                   clock: FrozenClock) -> None:
    with delivery_world(database_url, tmp_path, clock, DAY_START - timedelta(hours=1)) as world:
        person, placed, parcel, mail = _delivered_once(world)
        link = tracking_link(mail)
        before = httpx.get(link, timeout=10).text
        title = world.env.sandbox.store.products[0].title
        assert CITY in before and title in before  # the page did show them while the customer was known
        world.env.sandbox.redact_customer(person.id)
        world.step()
        answer = httpx.get(link, timeout=10)
        assert CITY not in answer.text
        assert title not in answer.text
        assert (parcel.tracking_number or "\x00") not in answer.text


def test_a_redacted_customers_tracking_form_stores_nothing(database_url: str, tmp_path: Path,
                                                           clock: FrozenClock) -> None:
    words = "My neighbour Mrs Alvarado at 12 Calle Real took the parcel"
    with delivery_world(database_url, tmp_path, clock, DAY_START - timedelta(hours=1)) as world:
        person, placed, _parcel, mail = _delivered_once(world)
        link = tracking_link(mail)
        opened = httpx.get(link, timeout=10)  # opened before the redaction: the form and its cookie are in hand
        csrf = re.search(r'name="csrf" value="([^"]+)"', opened.text).group(1)
        nonce = opened.cookies.get("aftercare_track_csrf") or re.search(
            r"aftercare_track_csrf=([^;]+)", opened.headers["set-cookie"]).group(1)
        world.env.sandbox.redact_customer(person.id)
        world.step()
        httpx.post(link, data={"csrf": csrf, "problem": words}, headers={"Cookie": f"aftercare_track_csrf={nonce}"},
                   timeout=10)
        with world.session() as session:
            notes = session.scalar(select(func.count(TicketNote.id)).where(TicketNote.body.contains("Alvarado")))
            subjects = session.scalar(select(func.count(Ticket.id)).where(Ticket.subject.contains("Alvarado")))
            assert (notes, subjects) == (0, 0)


def test_redaction_leaves_no_plain_address_in_the_delivery_opt_out(database_url: str, tmp_path: Path,
                                                                    clock: FrozenClock) -> None:
    with delivery_world(database_url, tmp_path, clock, DAY_START - timedelta(hours=1)) as world:
        person, _placed, _parcel, mail = _delivered_once(world)
        assert httpx.post(_unsubscribe_target(mail), data={"List-Unsubscribe": "One-Click"},
                          timeout=10).status_code == 200
        world.env.sandbox.redact_customer(person.id)
        world.step()
        with world.session() as session:
            kept = session.scalars(select(DeliveryOptOut.email)).all()
            assert person.email.lower() not in [e.lower() for e in kept]


# == rule 4: the delivery-updates off switch at the worst moment =================================================

def test_the_off_switch_clicked_while_the_next_update_is_being_handed_over_stops_it(
        database_url: str, tmp_path: Path, clock: FrozenClock) -> None:
    """The next update is claimed and the SMTP client is at EHLO when the one-click off lands: it never leaves."""
    with delivery_world(database_url, tmp_path, clock, DAY_START - timedelta(hours=1)) as world:
        person = world.env.sandbox.store.customers[0]
        placed = world.order_for(0, time_zone="UTC")
        parcel = world.ship(placed, DAY_START)
        world.clock.set(DAY_START + timedelta(hours=2))
        world.env.sandbox.add_fulfillment_event(placed.id, "OUT_FOR_DELIVERY", world.clock.now(),
                                                fulfillment_id=parcel.id)
        world.step()
        (first,) = world.mails_to(person.email)
        target = _unsubscribe_target(first)
        clicked: list[int] = []
        world.smtp.on("ehlo", lambda: clicked.append(
            httpx.post(target, data={"List-Unsubscribe": "One-Click"}, timeout=10).status_code))
        world.clock.set(DAY_START + timedelta(hours=4))
        world.env.sandbox.add_fulfillment_event(placed.id, "DELIVERED", world.clock.now(), fulfillment_id=parcel.id)
        world.step()
        assert clicked == [200]
        assert len(world.mails_to(person.email)) == 1
        order_id = _order_id(world, placed)
        with world.session() as session:
            rows = session.execute(select(Message.status, Message.skip_reason).where(
                Message.order_id == order_id, Message.flow == "delivery_update").order_by(Message.id)).all()
        assert [tuple(r) for r in rows] == [("sent", None), ("cancelled", "delivery_updates_off")]


def test_a_redaction_while_a_delivery_update_is_being_handed_over_stops_it(
        database_url: str, tmp_path: Path, clock: FrozenClock) -> None:
    """customers/redact applied while the SMTP client says EHLO: the claimed delivery update is cancelled."""
    with delivery_world(database_url, tmp_path, clock, DAY_START - timedelta(hours=1)) as world:
        person = world.env.sandbox.store.customers[0]
        placed = world.order_for(0, time_zone="UTC")
        parcel = world.ship(placed, DAY_START)

        def redact() -> None:
            world.env.sandbox.redact_customer(person.id)
            from jobs.webhooks import process_pending
            process_pending(world.ctx())

        world.smtp.on("ehlo", redact)
        world.clock.set(DAY_START + timedelta(hours=2))
        world.env.sandbox.add_fulfillment_event(placed.id, "OUT_FOR_DELIVERY", world.clock.now(),
                                                fulfillment_id=parcel.id, city=CITY)
        world.step()
        assert world.mails_to(person.email) == []
        order_id = _order_id(world, placed)
        with world.session() as session:
            statuses = session.scalars(select(Message.status).where(
                Message.order_id == order_id, Message.flow == "delivery_update")).all()
        assert statuses == ["cancelled"]
