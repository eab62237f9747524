"""Adversarial review 4 of the marketplace rules (DESIGN.md §1, §4, §5): redactions, off switches and Amazon buyers
landing where the last check does not look.

Real parts only: the app's database (SQLite and PostgreSQL), the Shopify sandbox over loopback HTTP (its fault
injector runs an action while a call is in flight), the SMTP sandbox (its stage hooks run an action while the
client is at EHLO), the public routes and the compliance code, the flow runner and the dispatcher. The clock is
injected. Each test failed on the code under review and passes with its fix.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from flask import Flask
from sqlalchemy import select

from connectors.records import CustomerRecord, OrderRecord
from plugin import flow_settings
from plugin.analytics import SegmentRules, refresh_customer_metrics
from plugin.context import JobContext
from plugin.flows import birthday, runner, vip
from plugin.messaging import inbound, links
from plugin.messaging.dispatch import dispatch_due
from plugin.models import Customer, Message, Order, Store, Ticket, VipMember, WebhookEvent
from plugin.secrets_store import set_credential
from plugin.sync.orders import upsert_orders
from plugin.tickets import open_ticket
from plugin.webhooks.compliance import redact_customer, redact_shop
from sandbox.smtp import SmtpSandbox
from tests.conftest import TEST_SECRET_KEY, wipe
from tests.jobs import factory as f
from tests.messaging import seed
from tests.messaging.conftest import IN_WINDOW
from tests.review.test_marketplace_rules import DELIVERED, _admin, _answer, _rows, _shop
from tests.shopify_sync_harness import make_harness

BASE_URL = "https://aftercare.test"
DAY = timedelta(days=1)
TAG = "Aftercare VIP"


def _ctx(app: Flask, smtp: SmtpSandbox) -> JobContext:
    return JobContext.from_app(app, sleep=lambda _s: None,
                               extras={"smtp_url": f"smtp://127.0.0.1:{smtp.port}", "base_url": BASE_URL})


# == VIP: tags and welcome of a customer redacted at the worst moment ============================================

def _two_vips(database, harness) -> tuple[int, int, list]:
    """Kim and Lee, each with four $150 orders this year (VIP by the default rules); the segment computed."""
    remote = harness.sandbox.store.customers[:2]
    sid = harness.store_id
    with database.session() as s:
        kim = f.customer(s, sid, email="kim@example.com", time_zone="Europe/London")
        lee = f.customer(s, sid, email="lee@example.com", time_zone="Europe/London")
        for c, r in zip((kim, lee), remote, strict=True):
            c.external_id = str(r.id)
            for i in range(4):
                f.order(s, sid, c.id, IN_WINDOW - (30 + 20 * i) * DAY, total_price=Decimal("150"))
        flow_settings.update(s, harness.ctx.config, sid, "vip", {"tag": TAG})
        ids = (kim.id, lee.id)
    with database.session() as s:
        refresh_customer_metrics(s, sid, IN_WINDOW, SegmentRules())
    return ids[0], ids[1], remote


def _redact(database, store_id: int, external_id: str, email: str) -> None:
    """Apply customers/redact for one customer, as the webhook job does (its own transaction)."""
    with database.session() as s:
        store = s.get(Store, store_id)
        redact_customer(s, store, store.external_id,
                        {"customer": {"id": int(external_id), "email": email}, "orders_to_redact": []}, IN_WINDOW)


def test_review4_vip_tag_is_not_pushed_for_a_customer_redacted_mid_batch(database, tmp_path) -> None:
    """customers/redact for Lee lands while Kim's tagsAdd is in flight: Lee's Shopify customer is never tagged after
    the redaction, his membership row goes, and no welcome row is written about him."""
    harness = make_harness(database, tmp_path, customers=3, orders=2)
    try:
        harness.clock.set(IN_WINDOW)
        kim, lee, remote = _two_vips(database, harness)
        sid = harness.store_id
        done: list[bool] = []
        harness.sandbox.faults.before_request(
            f'Customer/{remote[0].id}"'.encode(),
            lambda: done.append(_redact(database, sid, str(remote[1].id), "lee@example.com") is None))
        counts = vip.run(harness.ctx, sid)
        assert done == [True], "the redaction never ran during Kim's call"
        assert TAG in remote[0].tags
        assert TAG not in remote[1].tags
        assert (counts["tags_added"], counts["tag_errors"]) == (1, 0)
        with database.session() as s:
            assert set(s.scalars(select(VipMember.customer_id))) == {kim}
            assert list(s.scalars(select(Message.customer_id).where(Message.flow == "vip"))) == [kim]
    finally:
        harness.stop()
        wipe(database.engine)


def test_review4_a_redacted_vip_gets_no_membership_and_no_welcome_row(database, tmp_path) -> None:
    """Lee is redacted after the daily segment refresh and before the hourly VIP job: he never becomes a member and
    nothing about him is written to the outbox (his metrics row still says VIP)."""
    harness = make_harness(database, tmp_path, customers=3, orders=2)
    try:
        harness.clock.set(IN_WINDOW)
        kim, lee, remote = _two_vips(database, harness)
        _redact(database, harness.store_id, str(remote[1].id), "lee@example.com")
        counts = vip.run(harness.ctx, harness.store_id)
        assert (counts["entered"], counts["tags_added"], counts["welcomed"], counts["not_sent"]) == (1, 1, 1, 0)
        assert TAG not in remote[1].tags
        with database.session() as s:
            assert set(s.scalars(select(VipMember.customer_id))) == {kim}
            assert list(s.scalars(select(Message.customer_id).where(Message.flow == "vip"))) == [kim]
    finally:
        harness.stop()
        wipe(database.engine)


def test_review4_redaction_removes_an_existing_vip_membership(database, tmp_path) -> None:
    """A member redacted later: the membership row (with any Shopify error text kept about him) is erased, and
    the next hourly run does not bring it back from his metrics row."""
    harness = make_harness(database, tmp_path, customers=3, orders=2)
    try:
        harness.clock.set(IN_WINDOW)
        kim, lee, remote = _two_vips(database, harness)
        vip.run(harness.ctx, harness.store_id)
        _redact(database, harness.store_id, str(remote[1].id), "lee@example.com")
        with database.session() as s:
            assert set(s.scalars(select(VipMember.customer_id))) == {kim}
        harness.clock.advance(hours=1)
        counts = vip.run(harness.ctx, harness.store_id)
        assert (counts["entered"], counts["left"], counts["tags_added"], counts["tags_removed"]) == (0, 0, 0, 0)
        with database.session() as s:
            assert set(s.scalars(select(VipMember.customer_id))) == {kim}
    finally:
        harness.stop()
        wipe(database.engine)


# == payload "vars": nothing a row carries may override the variables the rules depend on ==========================

def test_review4_payload_vars_cannot_strip_the_unsubscribe_link(app, clock, smtp) -> None:
    """A service follow-up whose payload carries ``vars`` that blank the unsubscribe link (and slip in an offer)
    still goes out with its List-Unsubscribe headers and link, and holds no code."""
    clock.set(IN_WINDOW)
    with app.extensions["aftercare.db"].session() as s:
        store = seed.store(s, protected_data_access=True)
        customer = seed.customer(s, store, 1, marketing_consent=False)
        message = seed.message(s, store, customer, flow="ticket_followup", step="followup", when=IN_WINDOW,
                               payload={"resolution": "We now pack every bottle in paper.",
                                        "vars": {"unsubscribe_url": None, "changes": "Use code FREE50 for 50% off",
                                                 "discount_code": "FREE50"}})
        message_id = message.id
    assert dispatch_due(_ctx(app, smtp)) == {"sent": 1}
    (mail,) = smtp.messages
    assert mail.message["List-Unsubscribe"] and "/u/" in mail.message["List-Unsubscribe"]
    assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = mail.message.get_body(("plain",)).get_content()
    assert "FREE50" not in text and "FREE50" not in mail.message.get_body(("html",)).get_content()
    assert "We now pack every bottle in paper." in text
    with app.extensions["aftercare.db"].session() as s:
        assert s.get(Message, message_id).status == "sent"


# == Amazon buyers inside a Shopify store: the relay address Amazon gives its buyers ============================

@pytest.mark.parametrize(("flow", "marketing"), [("review_request", False), ("survey", False),
                                                 ("replenishment", True)])
def test_review4_an_amazon_buyer_imported_into_shopify_gets_no_email(app, clock, smtp, flow, marketing) -> None:
    """An order Amazon's sales channel put into the Shopify store carries the buyer's Amazon relay address
    (``…@marketplace.amazon.co.uk``): Amazon buyers get only Amazon's own solicitation, so no email of any class
    goes to it (skipped ``channel_not_allowed``), while the store's own customer gets hers."""
    clock.set(IN_WINDOW)
    payload = {"product_title": "Lavender soap", "quantity": 1, "run_out_at": "2026-03-10T00:00:00+00:00"} \
        if flow == "replenishment" else {"kind": "nps"} if flow == "survey" else {}
    with app.extensions["aftercare.db"].session() as s:
        store = seed.store(s, protected_data_access=True)
        buyer = seed.customer(s, store, 1, email="8m2q7kd9x4zt1vw@marketplace.amazon.co.uk")
        own = seed.customer(s, store, 2)
        ids = []
        for n, customer in ((1, buyer), (2, own)):
            order = seed.order(s, store, customer, n)
            ids.append(seed.message(s, store, customer, flow=flow, when=IN_WINDOW, order_row=order,
                                    marketing=marketing, payload=dict(payload)).id)
    counts = dispatch_due(_ctx(app, smtp))
    assert counts == {"sent": 1, "skipped": 1, "skipped:channel_not_allowed": 1}
    assert [m.message["To"] for m in smtp.messages] == ["c2@example.com"]
    with app.extensions["aftercare.db"].session() as s:
        assert (s.get(Message, ids[0]).status, s.get(Message, ids[0]).skip_reason) == ("skipped",
                                                                                        "channel_not_allowed")


# == the delivery-updates off switch and the "we're on it" notice ===============================================

def test_review4_the_delivery_off_switch_during_the_handshake_stops_a_stall_notice(app, client, clock, smtp) -> None:
    """The customer turns delivery updates off (one click in an earlier update) while the SMTP client is at EHLO
    for their claimed "we're on it" notice, which the same switch covers (plugin.messaging.policy.DELIVERY_FLOWS):
    it never leaves."""
    clock.set(IN_WINDOW)
    with app.extensions["aftercare.db"].session() as s:
        store = seed.store(s, protected_data_access=True)
        customer = seed.customer(s, store, 1, marketing_consent=False)
        order = seed.order(s, store, customer, 1)
        earlier = seed.message(s, store, customer, flow="delivery_update", when=IN_WINDOW - DAY, order_row=order,
                               payload={"milestones": ["IN_TRANSIT"], "milestone": "IN_TRANSIT"}, key="update")
        earlier.status, earlier.sent_at = "sent", IN_WINDOW - DAY
        notice = seed.message(s, store, customer, flow="delivery_stalls", step="notice", when=IN_WINDOW,
                              order_row=order, payload={"order_name": "#1001", "problem": "no_scan", "failed": False,
                                                        "carrier": "UPS", "tracking_number": "1Z999AA10123456784"},
                              key="notice")
        earlier_id, notice_id, customer_id = earlier.id, notice.id, customer.id
    path = urlsplit(links.url(BASE_URL, TEST_SECRET_KEY, clock, "unsubscribe", earlier_id)).path
    clicked: list[int] = []
    smtp.on("ehlo", lambda: clicked.append(client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code))
    dispatch_due(_ctx(app, smtp))
    assert clicked == [200]
    assert smtp.messages == []
    with app.extensions["aftercare.db"].session() as s:
        row = s.get(Message, notice_id)
        assert (row.status, row.skip_reason) == ("cancelled", "delivery_updates_off")
        assert s.scalar(select(Customer.email).where(Customer.id == customer_id)) == "c1@example.com"


# == the birthday metafield pass: a redaction while the page of metafields is in flight ==========================

def test_review4_a_birthday_read_during_a_redaction_is_not_written_back(database, tmp_path) -> None:
    """The metafield pass reads a page of customers, asks Shopify for their birthdays, and customers/redact for one
    of them lands while that call is in flight: the erased customer's birthday stays erased (the other one's is
    stored)."""
    harness = make_harness(database, tmp_path, customers=3, orders=2)
    try:
        harness.clock.set(IN_WINDOW)
        remote = harness.sandbox.store.customers[:2]
        for r in remote:
            r.metafields["facts.birth_date"] = ("date", "1990-04-01")
        sid = harness.store_id
        with database.session() as s:
            rows = []
            for n, r in enumerate(remote):
                c = f.customer(s, sid, email=f"bd{n}@example.com")
                c.external_id = str(r.id)
                rows.append(c)
            flow_settings.update(s, harness.ctx.config, sid, "birthday", {"metafield": "facts.birth_date"})
            ids = [c.id for c in rows]
        done: list[bool] = []
        harness.sandbox.faults.before_request(
            f'Customer/{remote[0].id}"'.encode(),
            lambda: done.append(_redact(database, sid, str(remote[0].id), "bd0@example.com") is None))
        counts = birthday.read_metafields(harness.ctx, sid)
        assert done == [True], "the redaction never ran during the metafield call"
        assert counts == {"read": 2, "set": 1}
        with database.session() as s:
            got = {c.id: (c.birthday, c.redacted_at is not None)
                   for c in s.scalars(select(Customer).where(Customer.id.in_(ids)))}
        assert got == {ids[0]: (None, True), ids[1]: (date(2000, 4, 1), False)}
    finally:
        harness.stop()
        wipe(database.engine)


# == review gating through a ticket nobody resolves =============================================================

def test_review4_a_detractor_whose_ticket_is_never_resolved_is_still_asked(app, client, clock, smtp) -> None:
    """Promoter and detractor differ only in the score they clicked. The merchant never resolves the detractor's
    ticket: it holds the detractor's reminder for complaint_hold_days (14) from its opening, then both are asked."""
    store_id, (promoter, detractor) = _shop(app, 2)
    ctx = _ctx(app, smtp)
    clock.set(DELIVERED + 7 * DAY)
    runner.run_review_request(ctx, store_id)
    assert dispatch_due(ctx).get("sent") == 2
    clock.set(DELIVERED + 10 * DAY)
    runner.run_survey(ctx, store_id)
    assert dispatch_due(ctx).get("sent") == 2
    surveys = {m.customer_id: m.id for m in _rows(app, flow="survey", step="main")}
    _answer(client, clock, surveys[promoter], 10)
    _answer(client, clock, surveys[detractor], 2)
    with app.extensions["aftercare.db"].session() as s:
        (opened,) = s.scalars(select(Ticket.opened_at).where(Ticket.customer_id == detractor)).all()
    first_day = {}
    for day in range(14, 45):
        clock.set(DELIVERED + day * DAY)
        runner.run_review_request(ctx, store_id)
        dispatch_due(ctx)
        for m in _rows(app, flow="review_request", step="reminder"):
            first_day.setdefault(m.customer_id, day)
    assert set(first_day) == {promoter, detractor}
    assert first_day[promoter] == 14
    # Held while the ticket is younger than 14 days, asked at the first run once it is 14 days old.
    assert first_day[detractor] == min(d for d in range(14, 45) if DELIVERED + d * DAY >= opened + 14 * DAY)
    assert {m.customer_id for m in _rows(app, flow="review_request", step="reminder") if m.status == "sent"} == \
        {promoter, detractor}


def test_review4_a_scheduled_request_waits_for_a_young_ticket_only(app, client, clock, smtp) -> None:
    """A review request already in the outbox meets an open ticket at send time: it is put back every six hours
    while the ticket is younger than complaint_hold_days (here 3), then goes out with the ticket still open."""
    clock.set(IN_WINDOW)
    with app.extensions["aftercare.db"].session() as s:
        store = seed.store(s, protected_data_access=True)
        flow_settings.update(s, app.config["AFTERCARE"], store.id, "review_request", {"complaint_hold_days": 3})
        customer = seed.customer(s, store, 1)
        order = seed.order(s, store, customer, 1)
        seed.message(s, store, customer, flow="review_request", when=IN_WINDOW, order_row=order)
        open_ticket(s, app.config["AFTERCARE"], store_id=store.id, source="survey", severity=2, subject="NPS 3",
                    now=IN_WINDOW - timedelta(hours=1), customer_id=customer.id, order_id=order.id)
    ctx = _ctx(app, smtp)
    for day in range(3):
        clock.set(IN_WINDOW + day * DAY)
        assert dispatch_due(ctx).get("sent", 0) == 0, day
        with app.extensions["aftercare.db"].session() as s:
            (row,) = s.scalars(select(Message).where(Message.flow == "review_request")).all()
            assert (row.status, row.skip_reason) == ("scheduled", "open_complaint")
            assert row.scheduled_for == clock.now() + timedelta(hours=6)
    clock.set(IN_WINDOW + 3 * DAY)  # the ticket is 3 days and an hour old, still open: it holds no longer
    assert dispatch_due(ctx) == {"sent": 1}
    with app.extensions["aftercare.db"].session() as s:
        assert s.scalar(select(Ticket.status)) == "open"

# == an unsubscribe link whose message a shop/redact erased ====================================================

@pytest.mark.parametrize("how", ["one_click", "confirm_page", "mailto"])
def test_review4_unsubscribing_after_a_late_shop_redact_is_honoured(app, client, clock, smtp, how) -> None:
    """The merchant reinstalled, then Shopify's late shop/redact erased the old install's messages. A customer
    clicks unsubscribe in an email the old install sent: the link still works (not a 410), and the new install
    never emails that address."""
    clock.set(IN_WINDOW)
    with app.extensions["aftercare.db"].session() as s:
        store = seed.store(s, protected_data_access=True, reinstalled_at=IN_WINDOW - 30 * DAY)
        customer = seed.customer(s, store, 1)
        seed.message(s, store, customer, flow="review_request", when=IN_WINDOW, order_row=seed.order(s, store,
                                                                                                   customer, 1))
        store_id = store.id
    assert dispatch_due(_ctx(app, smtp)) == {"sent": 1}
    (mail,) = smtp.messages
    target = urlsplit(mail.message["List-Unsubscribe"].split("<", 1)[1].split(">", 1)[0]).path
    assert target.startswith("/u/")
    with app.extensions["aftercare.db"].session() as s:
        redact_shop(s, s.get(Store, store_id), seed.SHOP, IN_WINDOW + DAY)
    with app.extensions["aftercare.db"].session() as s:
        assert s.scalar(select(Message.id).limit(1)) is None, "the shop/redact kept the old messages"
    clock.set(IN_WINDOW + 2 * DAY)
    if how == "one_click":
        assert client.post(target, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    elif how == "mailto":
        raw = f"From: c1@example.com\r\nTo: leave@calm.example\r\nSubject: unsubscribe {target[3:]}\r\n\r\n".encode()
        outcome = inbound.process(app.extensions["aftercare.db"], TEST_SECRET_KEY, clock, raw)
        assert outcome.reply.startswith("250 2.0.0 Unsubscribed"), outcome.reply
    else:
        page = client.get(target)
        assert page.status_code == 200 and "Calm Soaps" in page.get_data(as_text=True)
        done = client.post(target, data={"confirm": "1"})
        assert done.status_code == 200 and "You are unsubscribed" in done.get_data(as_text=True)
    # The new install syncs the customer again and plans a request for a new order.
    with app.extensions["aftercare.db"].session() as s:
        store = s.get(Store, store_id)
        again = seed.customer(s, store, 1)
        seed.message(s, store, again, flow="review_request", when=clock.now(), order_row=seed.order(s, store, again, 2))
    smtp.clear()
    assert dispatch_due(_ctx(app, smtp)) == {"skipped": 1, "skipped:suppressed": 1}
    assert smtp.messages == []


# == customers/redact and the merchant's ticket alerts about them =================================================

def test_review4_redaction_erases_the_customers_words_from_ticket_alerts(app, client, clock, smtp) -> None:
    """A detractor's words open a severity-1 ticket; its urgent alert (to the merchant) and, hours later, its SLA
    alert are written with the ticket's subject in their payload. customers/redact erases the customer's words
    from every row, the alert rows included, and an alert still due goes out without them."""
    words = "counterfeit soap gave me a rash, Kim Quetzal-Hernandez"
    clock.set(IN_WINDOW)
    with app.extensions["aftercare.db"].session() as s:
        store = seed.store(s, protected_data_access=True)
        customer = seed.customer(s, store, 1, external_id="1001")
        order = seed.order(s, store, customer, 1)
        open_ticket(s, app.config["AFTERCARE"], store_id=store.id, source="survey", severity=1,
                    subject=f"NPS 1: {words}", now=IN_WINDOW, customer_id=customer.id, order_id=order.id)
        store_id = store.id
    ctx = _ctx(app, smtp)
    runner.run_ticket_alert(ctx, store_id)
    assert dispatch_due(ctx).get("sent") == 1  # the urgent alert, to the merchant
    clock.set(IN_WINDOW + timedelta(hours=2))  # the 1-hour SLA has passed: the SLA alert is written
    runner.run_ticket_alert(ctx, store_id)
    with app.extensions["aftercare.db"].session() as s:
        assert s.scalar(select(Message.status).where(Message.step == "main", Message.flow == "ticket_alert")) \
            == "scheduled"
    _redact(app.extensions["aftercare.db"], store_id, "1001", "c1@example.com")
    with app.extensions["aftercare.db"].session() as s:
        kept = [(m.step, m.subject, m.payload) for m in s.scalars(select(Message).order_by(Message.id))]
    assert kept and all("Quetzal" not in repr(row) for row in kept), kept
    smtp.clear()
    clock.set(IN_WINDOW + timedelta(days=1))  # inside the merchant's send window
    assert dispatch_due(ctx) == {"sent": 1}  # the SLA alert still reaches the merchant
    (alert,) = smtp.messages
    assert alert.message["To"] == "owner@calmsoaps.example"
    assert "Quetzal" not in alert.raw.decode("utf-8", "replace")


# == customers/redact and the errors kept on their messages ======================================================

@pytest.mark.parametrize("permanent", [False, True])
def test_review4_redaction_erases_the_address_from_send_errors(app, clock, smtp, permanent) -> None:
    """The customer's mail server refused the address (a 451 retried later, or a 550 bounce): the error kept on
    the message quotes the address. customers/redact erases it there too."""
    clock.set(IN_WINDOW)
    with app.extensions["aftercare.db"].session() as s:
        store = seed.store(s, protected_data_access=True)
        customer = seed.customer(s, store, 1, external_id="1001", email="kim.quetzal@example.com")
        message = seed.message(s, store, customer, when=IN_WINDOW, order_row=seed.order(s, store, customer, 1))
        store_id, message_id = store.id, message.id
    smtp.reject("kim.quetzal@example.com", permanent=permanent)
    dispatch_due(_ctx(app, smtp))
    with app.extensions["aftercare.db"].session() as s:
        assert "kim.quetzal@example.com" in (s.get(Message, message_id).last_error or "")
    _redact(app.extensions["aftercare.db"], store_id, "1001", "kim.quetzal@example.com")
    with app.extensions["aftercare.db"].session() as s:
        row = s.get(Message, message_id)
        assert "quetzal" not in repr((row.last_error, row.to_address, row.subject, row.payload)).lower()


# == a redaction by e-mail address: "_" and "%" are characters of an address, not wildcards ========================

def _two_lookalikes(app: Flask) -> tuple[int, dict[str, tuple[int, int]]]:
    """john@ and jo_n@-like customers (the "_" of one matches any character in a LIKE pattern), each with a request."""
    with app.extensions["aftercare.db"].session() as s:
        store = seed.store(s, protected_data_access=True)
        seed.customer(s, store, 9, external_id="1009")  # keeps the store's customer ids apart from the order numbers
        made = {}
        for n, email in ((1, "john@example.com"), (2, "a_b@example.com"), (3, "axb@example.com")):
            customer = seed.customer(s, store, n, external_id=str(1000 + n), email=email)
            made[email] = (customer.id, seed.message(s, store, customer, when=IN_WINDOW + DAY,
                                                     order_row=seed.order(s, store, customer, n)).id)
        return store.id, made


def _untouched(app: Flask, customer_id: int, message_id: int, email: str) -> None:
    with app.extensions["aftercare.db"].session() as s:
        customer, message = s.get(Customer, customer_id), s.get(Message, message_id)
        assert (customer.email, customer.redacted_at) == (email, None)
        assert (message.status, message.to_address) == ("scheduled", email)


def test_review4_a_redaction_by_address_never_erases_a_lookalike_customer(app, clock) -> None:
    """customers/redact for an address with "_" (its customer not stored yet, or stored): the customer whose address
    differs in that one character keeps their data and their planned email."""
    clock.set(IN_WINDOW)
    store_id, made = _two_lookalikes(app)
    database = app.extensions["aftercare.db"]
    _redact(database, store_id, "4242", "jo_n@example.com")  # not stored: found by address, if at all
    _untouched(app, *made["john@example.com"], "john@example.com")
    _redact(database, store_id, "1002", "a_b@example.com")  # stored: a_b's own messages go, axb's stay
    _untouched(app, *made["axb@example.com"], "axb@example.com")
    with database.session() as s:
        assert s.get(Customer, made["a_b@example.com"][0]).redacted_at is not None
        assert s.get(Message, made["a_b@example.com"][1]).status == "cancelled"


def test_review4_the_admins_erase_by_address_never_erases_a_lookalike_customer(app, client, clock) -> None:
    """The merchant types an address with "_" into Settings → erase a customer: nobody else is erased."""
    clock.set(IN_WINDOW)
    store_id, made = _two_lookalikes(app)
    with app.extensions["aftercare.db"].session() as s:
        set_credential(s.get(Store, store_id), app.extensions["aftercare.vault"], "access_token_enc", "shpat_review4")
    answer = _admin(client, app, clock, "/admin/settings/delete-customer", {"email": "jo_n@example.com",
                                                                             "confirm": "erase"})
    assert answer.status_code == 400 and "No customer with this email address" in answer.get_data(as_text=True)
    _untouched(app, *made["john@example.com"], "john@example.com")


def test_review4_a_redaction_keeps_the_pending_webhooks_of_a_longer_address(app, clock) -> None:
    """customers/redact for ohn@example.com erases the stored webhook bodies that mention that address, not the
    pending order webhook of john@example.com (whose address merely ends with it)."""
    clock.set(IN_WINDOW)
    with app.extensions["aftercare.db"].session() as s:
        store = seed.store(s, protected_data_access=True)
        seed.customer(s, store, 2, external_id="1002", email="ohn@example.com")
        for n, email in ((1, "john@example.com"), (2, "ohn@example.com")):
            s.add(WebhookEvent(store_id=store.id, shop_domain=seed.SHOP, webhook_id=f"wh-{n}", topic="orders/create",
                               received_at=IN_WINDOW, payload={"id": 7000 + n, "email": email,
                                                               "note": f"call {email} before noon"}))
        store_id = store.id
    _redact(app.extensions["aftercare.db"], store_id, "1002", "ohn@example.com")
    with app.extensions["aftercare.db"].session() as s:
        kept = {e.webhook_id: (e.payload is not None, e.processed_at is None) for e in s.scalars(select(WebhookEvent))}
    assert kept == {"wh-1": (True, True), "wh-2": (False, False)}


# == customers/redact and a later copy of the customer's order ===================================================

def test_review4_a_later_copy_of_a_redacted_customers_order_brings_no_tags_back(database) -> None:
    """customers/redact clears the tags of the customer's orders (they can name the person); the next copy of such
    an order (a page, a bulk file, a webhook) keeps them cleared, while another customer's order keeps its tags."""
    def copy(n: int, customer: str, at) -> OrderRecord:
        return OrderRecord(external_id=f"o{n}", created_at=IN_WINDOW - 5 * DAY, updated_at=at, currency="EUR",
                           total_price=Decimal("25"), customer=CustomerRecord(external_id=customer,
                                                                              email=f"{customer}@example.com"),
                           tags=("gift for Kim Quetzal", "vip"))

    try:
        with database.session() as s:
            store = seed.store(s)
            store_id = store.id
            upsert_orders(s, store_id, [copy(1, "501", IN_WINDOW - 5 * DAY), copy(2, "502", IN_WINDOW - 5 * DAY)])
        _redact(database, store_id, "501", "501@example.com")
        with database.session() as s:
            upsert_orders(s, store_id, [copy(1, "501", IN_WINDOW), copy(2, "502", IN_WINDOW)])
        with database.session() as s:
            tags = {o.external_id: list(o.tags) for o in s.scalars(select(Order).where(Order.store_id == store_id))}
        assert tags == {"o1": [], "o2": ["gift for Kim Quetzal", "vip"]}
    finally:
        wipe(database.engine)
