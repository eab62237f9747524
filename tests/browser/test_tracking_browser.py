"""The tracking page in headless Chromium at a phone's size: English, the "something is wrong" button, Arabic.

One browser session, three page loads (the English page, its form's answer, the Arabic page); screenshots in
test-artifacts/screenshots. The links come from the delivery updates the SMTP sandbox received.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import expect, sync_playwright
from sqlalchemy import select

from base.clock import FrozenClock
from plugin.models import Order, Ticket, TicketNote
from tests.browser.support import ARGS, CHROMIUM, SHOTS, WAIT_CEILING_SECONDS, shot
from tests.delivery.harness import delivery_world, tracking_link

SHIPPED = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def test_tracking_page_in_english_and_arabic_on_a_phone(database_url: str, tmp_path: Path,
                                                        clock: FrozenClock) -> None:
    with delivery_world(database_url, tmp_path, clock, SHIPPED - timedelta(hours=1)) as world:
        shop = world.env.sandbox.store
        english = world.order_for(0, time_zone="America/New_York", locale="en")
        arabic = world.order_for(1, time_zone="Asia/Riyadh", locale="ar")
        clock.set(SHIPPED)
        parcels = [world.env.sandbox.fulfil_order(o.id) for o in (english, arabic)]
        world.step()
        world.play(english, parcels[0], "customs_hold", SHIPPED, upto=3)  # ... held by customs
        world.play(arabic, parcels[1], "attempted_then_delivered", SHIPPED + timedelta(hours=61), upto=4)
        world.flush()
        en_link = tracking_link(world.mails_to(shop.customers[0].email)[-1])
        ar_link = tracking_link(world.mails_to(shop.customers[1].email)[-1])

        SHOTS.mkdir(parents=True, exist_ok=True)
        expect.set_options(timeout=WAIT_CEILING_SECONDS * 1000)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=WAIT_CEILING_SECONDS * 1000)
            context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                          device_scale_factor=2)
            context.set_default_timeout(WAIT_CEILING_SECONDS * 1000)
            page = context.new_page()

            page.goto(en_link)
            expect(page.locator("html")).to_have_attribute("dir", "ltr")
            expect(page.get_by_role("heading", level=1)).to_have_text(f"Your order {english.name}")
            parcel = page.locator("section.parcel")
            expect(parcel.locator(".status")).to_have_text("Delayed")
            expect(parcel.locator(".timeline li")).to_have_count(4)  # delayed, in transit, confirmed, shipped
            expect(parcel.locator(".timeline li").first).to_contain_text("Held by customs for inspection")
            expect(parcel.locator(".expected")).to_contain_text("Expected delivery")
            expect(page.locator(".items li")).to_have_count(2)
            expect(page.get_by_role("heading", name="Refund policy")).to_be_visible()
            # Mobile-first: nothing is wider than the phone's screen.
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            shot(page, "tracking-en-mobile")

            page.get_by_label("What happened? (optional)").fill("The box has been in customs for a week")
            page.get_by_role("button", name="Something is wrong").click()
            expect(page.get_by_role("status")).to_contain_text("We have your message")
            shot(page, "tracking-en-problem-sent")

            page.goto(ar_link)
            expect(page.locator("html")).to_have_attribute("dir", "rtl")
            expect(page.locator("html")).to_have_attribute("lang", "ar")
            expect(page.get_by_role("heading", level=1)).to_have_text(f"طلبك {arabic.name}")
            expect(page.locator("section.parcel .status")).to_have_text("محاولة توصيل")
            assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
            expect(page.get_by_role("button", name="هناك مشكلة")).to_be_visible()
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            shot(page, "tracking-ar-mobile")
            context.close()
            browser.close()

        with world.session() as session:
            order_id = session.scalar(select(Order.id).where(Order.external_id == str(english.id)))
            (ticket,) = session.scalars(select(Ticket).where(Ticket.source == "delivery")).all()
            assert (ticket.order_id, ticket.status) == (order_id, "open")
            notes = session.scalars(select(TicketNote.body).where(TicketNote.ticket_id == ticket.id)).all()
            assert notes == ["The box has been in customs for a week"]
