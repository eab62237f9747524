"""Adversarial review of the marketplace rules (DESIGN.md §1, §4, §5): findings (strict xfail) and attacks that held.

Every test drives the real parts: the app's database, its public routes and signed webhooks, the flow runner,
the dispatcher and the SMTP sandbox on loopback. A test marked xfail(strict=True) shows a rule being broken on
the current code; it starts passing (and so fails the suite) once the finding is fixed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from flask import Flask
from sqlalchemy import select

from base.clock import FrozenClock
from jobs.webhooks import process_pending
from plugin import flow_settings
from plugin.config import ConfigError
from plugin.context import JobContext
from plugin.flows import get_flow, runner
from plugin.flows.base import Flow, FlowRun, SettingsSchema, Step
from plugin.flows.resend import can_resend
from plugin.messaging import links
from plugin.messaging.dispatch import dispatch_due
from plugin.messaging.outbox import message_row
from plugin.messaging.suppression import suppress
from plugin.models import Customer, Message, Order, Store, Suppression, Ticket
from plugin.secrets_store import set_credential
from plugin.tickets import open_ticket
from sandbox.shopify import mint_session_token
from sandbox.smtp import SmtpSandbox
from tests.conftest import TEST_SECRET_KEY, TEST_SHOPIFY_API_KEY, TEST_SHOPIFY_API_SECRET
from tests.messaging import seed
from tests.shopify_app_env import body_of, signed_headers

BASE_URL = "https://aftercare.test"
DAY = timedelta(days=1)
# Delivered Monday 2026-02-02 09:30 UTC: every "N days later" below lands at 09:30 London, inside the window.
DELIVERED = datetime(2026, 2, 2, 9, 30, tzinfo=UTC)


def _ctx(app: Flask, smtp: SmtpSandbox) -> JobContext:
    return JobContext.from_app(app, sleep=lambda _s: None,
                               extras={"smtp_url": f"smtp://127.0.0.1:{smtp.port}", "base_url": BASE_URL})


def _shop(app: Flask, customers: int, *, platform: str = "shopify", **store: object) -> tuple[int, list[int]]:
    """A store with contact access and ``customers`` customers, each with one order delivered at DELIVERED."""
    with app.extensions["aftercare.db"].session() as s:
        shop = seed.store(s, platform=platform, protected_data_access=True, **store)
        # The embedded admin needs the shop's offline token to accept the merchant's session.
        set_credential(shop, app.extensions["aftercare.vault"], "access_token_enc", "shpat_review_test")
        ids = []
        for n in range(1, customers + 1):
            customer = seed.customer(s, shop, n, external_id=str(1000 + n))
            order = seed.order(s, shop, customer, n)
            order.delivered_at = DELIVERED
            ids.append(customer.id)
        return shop.id, ids


def _rows(app: Flask, **where: object) -> list[Message]:
    with app.extensions["aftercare.db"].session() as s:
        rows = list(s.scalars(select(Message).filter_by(**where).order_by(Message.id)))
        s.expunge_all()
        return rows


def _admin(client, app: Flask, clock: FrozenClock, path: str, data: dict | None = None):
    token = mint_session_token(seed.SHOP, TEST_SHOPIFY_API_KEY, TEST_SHOPIFY_API_SECRET, clock.now())
    return client.post(path, data=data or {}, headers={"Authorization": f"Bearer {token}",
                                                       "Accept": "application/json"})


# == finding 1: holdout on review requests asks only a share of the eligible customers ==========================

# Review finding 1, fixed: a review_request-class flow cannot declare a holdout (plugin.flows.base.ClassRule).

def test_every_eligible_customer_is_asked_and_no_holdout_can_be_set(app, clock) -> None:
    """DESIGN §1 "every eligible customer is asked": review requests take no holdout share at all."""
    store_id, customers = _shop(app, 20)
    config = app.config["AFTERCARE"]
    with app.extensions["aftercare.db"].session() as s, pytest.raises(ConfigError, match="holdout_percent"):
        flow_settings.update(s, config, store_id, "review_request", {"holdout_percent": 50},
                             get_flow("review_request").settings)
    clock.set(DELIVERED + 7 * DAY)
    ctx = JobContext.from_app(app, sleep=lambda _s: None)
    runner.run_review_request(ctx, store_id)
    asked = {m.customer_id for m in _rows(app, flow="review_request", status="scheduled")}
    assert asked == set(customers)


# == finding 2: a survey detractor's review reminder hangs on the complaint ticket, and is lost ==================

def _answer(client, clock: FrozenClock, message_id: int, score: int) -> None:
    path = urlsplit(links.url(BASE_URL, TEST_SECRET_KEY, clock, "score", message_id, s=score)).path
    answer = client.get(path)
    assert answer.status_code == 200, answer.get_data(as_text=True)


# Review finding 2, fixed: a held request or reminder is due again from the ticket's resolution (the hold does not
# count against its age limit, plugin.flows.review_request.was_held).
def test_a_detractor_is_reminded_to_review_like_a_promoter(app, client, clock, smtp) -> None:
    """Defaults everywhere: request at +7 d, survey at +10 d, reminder at +14 d. Promoter and detractor differ only
    in the score they clicked; DESIGN §1 says review requests never depend on a survey score."""
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
    clock.set(DELIVERED + 14 * DAY)
    runner.run_review_request(ctx, store_id)
    dispatch_due(ctx)
    # The merchant resolves the detractor's ticket late (its SLA long passed) ...
    clock.set(DELIVERED + 50 * DAY)
    with app.extensions["aftercare.db"].session() as s:
        ticket = s.scalar(select(Ticket).where(Ticket.customer_id == detractor))
        ticket.status, ticket.resolved_at, ticket.resolution = "resolved", clock.now(), "replaced the soap"
    runner.run_review_request(ctx, store_id)
    # ... and DESIGN §4 says the waiting request "goes out once the ticket is resolved".
    reminded = {m.customer_id for m in _rows(app, flow="review_request", step="reminder")}
    assert reminded == {promoter, detractor}


# == finding 3: merchant alerts of Amazon sellers are refused as if they were buyer emails =====================

# Review finding 3, fixed: channel law is about buyers; the merchant's own alerts go out on Amazon stores too.
def test_an_amazon_sellers_sla_alert_reaches_the_merchant(app, clock, smtp) -> None:
    """Only buyers are off limits on Amazon; the merchant's own SLA alert is an email to the merchant."""
    clock.set(DELIVERED)
    with app.extensions["aftercare.db"].session() as s:
        shop = seed.store(s, platform="amazon", external_id="A1SELLER:na")
        open_ticket(s, app.config["AFTERCARE"], store_id=shop.id, source="manual", severity=1,
                    subject="counterfeit claim", now=clock.now() - 2 * DAY)
        store_id = shop.id
    ctx = _ctx(app, smtp)
    # Severity 1: the urgent alert and (its SLA long passed) the breach alert, both to the merchant.
    assert runner.run_ticket_alert(ctx, store_id) == {"urgent": 1, "alerts": 1, "opened": 0}
    dispatch_due(ctx)
    alerts = _rows(app, flow="ticket_alert")
    assert [(a.step, a.status, a.skip_reason) for a in alerts] == [("urgent", "sent", None), ("main", "sent", None)]
    assert len(smtp.messages_to("owner@calmsoaps.example")) == 2


def test_an_amazon_sellers_test_email_reaches_the_merchant(app, clock, smtp) -> None:
    """The admin's "send a test" on an Amazon store queues a ``test`` email to the merchant: it is sent."""
    from plugin.messaging.outbox import enqueue, idempotency_key

    clock.set(DELIVERED)
    with app.extensions["aftercare.db"].session() as s:
        shop = seed.store(s, platform="amazon", external_id="A2SELLER:eu")
        # What plugin/admin/flows.py:test_send queues.
        enqueue(s, store_id=shop.id, flow="test", channel="email", scheduled_for=clock.now(),
                idempotency_key=idempotency_key(shop.id, "test", "flow=review_request", f"at={clock.now()}"),
                to_address="owner@calmsoaps.example", payload={"about_flow": "review_request"})
    dispatch_due(_ctx(app, smtp))
    [row] = _rows(app, flow="test")
    assert (row.status, row.skip_reason) == ("sent", None)
    assert len(smtp.messages_to("owner@calmsoaps.example")) == 1


# == attacks that held ==========================================================================================

def _consent_webhook(client, app: Flask, clock: FrozenClock, external_id: str, email: str, state: str) -> None:
    body = body_of({"customer_id": int(external_id), "email_address": email,
                    "email_marketing_consent": {"state": state, "opt_in_level": "single_opt_in",
                                                "consent_updated_at": clock.now().isoformat()}})
    answer = client.post("/webhooks", data=body,
                         headers=signed_headers(body, "customers_email_marketing_consent/update", shop=seed.SHOP))
    assert answer.status_code == 200
    assert process_pending(JobContext.from_app(app, sleep=lambda _s: None)).get("failed", 0) == 0


def _marketing(app: Flask, store_id: int, customer_id: int, when: datetime, key: str) -> int:
    with app.extensions["aftercare.db"].session() as s:
        shop, customer = s.get(Store, store_id), s.get(Customer, customer_id)
        return seed.message(s, shop, customer, flow="replenishment", marketing=True, when=when, key=key,
                            payload={"product_title": "Lavender soap", "quantity": 1,
                                     "run_out_at": "2026-03-10T00:00:00+00:00"}).id


def test_a_resend_whose_consent_was_withdrawn_again_sends_nothing(app, client, clock, smtp) -> None:
    """no_consent skip → consent given → admin resend → consent withdrawn again (webhook) → nothing leaves."""
    clock.set(DELIVERED)
    store_id, (customer_id,) = _shop(app, 1)
    with app.extensions["aftercare.db"].session() as s:
        s.get(Customer, customer_id).marketing_consent = False
    message_id = _marketing(app, store_id, customer_id, DELIVERED, "refill-1")
    ctx = _ctx(app, smtp)
    assert dispatch_due(ctx) == {"skipped": 1, "skipped:no_consent": 1}
    clock.advance(timedelta(minutes=1))
    _consent_webhook(client, app, clock, "1001", "c1@example.com", "subscribed")
    assert _admin(client, app, clock, f"/admin/messages/{message_id}/resend").status_code in (200, 302)
    clock.advance(timedelta(minutes=1))
    _consent_webhook(client, app, clock, "1001", "c1@example.com", "unsubscribed")
    dispatch_due(ctx)
    assert smtp.messages == []
    [resent] = [m for m in _rows(app, flow="replenishment") if m.id != message_id]
    assert (resent.status, resent.skip_reason) == ("cancelled", "consent_withdrawn")


def test_a_resend_of_a_suppressed_message_is_refused_while_suppressed_again(app, client, clock, smtp) -> None:
    """suppressed skip → suppression removed → suppressed again → the admin refuses the resend; nothing leaves."""
    clock.set(DELIVERED)
    store_id, (customer_id,) = _shop(app, 1)
    with app.extensions["aftercare.db"].session() as s:
        suppress(s, store_id, "c1@example.com", "manual", now=clock.now())
    message_id = _marketing(app, store_id, customer_id, DELIVERED, "refill-2")
    ctx = _ctx(app, smtp)
    assert dispatch_due(ctx) == {"skipped": 1, "skipped:suppressed": 1}
    with app.extensions["aftercare.db"].session() as s:
        s.execute(Suppression.__table__.delete())
        suppress(s, store_id, "c1@example.com", "bounce", now=clock.now())
    answer = _admin(client, app, clock, f"/admin/messages/{message_id}/resend")
    assert [m.id for m in _rows(app, flow="replenishment")] == [message_id]
    dispatch_due(ctx)
    assert smtp.messages == []
    assert answer.status_code == 400
    assert "cannot be sent again" in answer.get_data(as_text=True)


def test_a_review_request_of_an_amazon_store_never_goes_by_email(app, clock, smtp) -> None:
    """An email row for an Amazon buyer (however it got into the outbox) is skipped at claim: channel law first."""
    clock.set(DELIVERED + 7 * DAY)
    store_id, (customer_id,) = _shop(app, 1, platform="amazon", external_id="A2SELLER:na")
    with app.extensions["aftercare.db"].session() as s:
        seed.message(s, s.get(Store, store_id), s.get(Customer, customer_id), flow="review_request",
                     when=clock.now(), key="amazon-email", payload={"order_name": "#1001"})
    assert dispatch_due(_ctx(app, smtp)) == {"skipped": 1, "skipped:channel_not_allowed": 1}
    assert smtp.messages == []


def test_the_survey_comeback_offer_needs_marketing_consent(app, client, clock, smtp) -> None:
    """A detractor's ticket is followed through like every ticket: without consent, no come-back offer."""
    store_id, (customer_id,) = _shop(app, 1)
    with app.extensions["aftercare.db"].session() as s:
        s.get(Customer, customer_id).marketing_consent = False
    ctx = _ctx(app, smtp)
    clock.set(DELIVERED + 10 * DAY)
    runner.run_survey(ctx, store_id)
    dispatch_due(ctx)
    [survey] = _rows(app, flow="survey", step="main")
    _answer(client, clock, survey.id, 1)
    with app.extensions["aftercare.db"].session() as s:
        ticket = s.scalar(select(Ticket).where(Ticket.customer_id == customer_id))
        ticket.status, ticket.resolved_at, ticket.resolution = "resolved", clock.now(), "refunded"
    clock.set(DELIVERED + 40 * DAY)
    runner.run_ticket_followup(ctx, store_id)
    dispatch_due(ctx)
    [comeback] = _rows(app, flow="ticket_followup", step="comeback")
    assert (comeback.marketing, comeback.status, comeback.skip_reason) == (True, "skipped", "no_consent")
    assert [m.envelope_to for m in smtp.messages if b"COMEBACK" in m.raw] == []


def test_an_order_cancelled_before_the_review_request_gets_none(app, clock, smtp) -> None:
    """Cancelled between the runner writing the row and the dispatcher claiming it: skipped order_cancelled."""
    store_id, (customer_id,) = _shop(app, 1)
    ctx = _ctx(app, smtp)
    clock.set(DELIVERED + 7 * DAY)
    runner.run_review_request(ctx, store_id)
    with app.extensions["aftercare.db"].session() as s:
        s.scalar(select(Order).where(Order.customer_id == customer_id)).cancelled_at = clock.now()
    assert dispatch_due(ctx) == {"skipped": 1, "skipped:order_cancelled": 1}
    assert smtp.messages == []


# == finding 7: the flow class is declared, not enforced: a marketing-class step can write non-marketing rows ====

def _winback_flow(flow_class: str, payload: dict) -> Flow:
    """A flow written the documented way (plugin/flows/README "Writing a flow"), whose due query forgets the class."""

    def due(run: FlowRun) -> list[dict]:
        customers = run.session.scalars(select(Customer).where(Customer.store_id == run.store.id)).all()
        return [message_row(store_id=run.store.id, flow="winback", step="main", key_parts=(f"c={c.id}",),
                            scheduled_for=run.now, customer_id=c.id, to_address=c.email, payload=dict(payload))
                for c in customers]

    return Flow(name="winback", title="Win-back", flow_class=flow_class, platforms=("shopify",),
                trigger="due query", audience=("lapsed customers",), timing="now",
                steps=(Step("main", due, "win-back offer", counter="sent"),), exits=(),
                idempotency_key="<store>:winback:c=<customer>:step=main", settings=SettingsSchema(()),
                counts=("sent",), customer_facing=False)


# Review finding 7, fixed: plugin.flows.runner.enforce_class applies the class to every row.
@pytest.mark.parametrize(("flow_class", "payload"), [
    ("marketing", {}),
    ("service", {"discount_code": "SAVE20", "discount_percent": 20}),
])
def test_the_class_decides_consent_and_offers_for_every_row(app, clock, flow_class, payload) -> None:
    store_id, _customers = _shop(app, 2)
    clock.set(DELIVERED)
    with app.extensions["aftercare.db"].session() as s:
        run = FlowRun(session=s, config=app.config["AFTERCARE"], store=s.get(Store, store_id),
                      settings=SettingsSchema(()).load({}), now=clock.now())
        written = {}
        try:
            runner.run_steps(_winback_flow(flow_class, payload), run)
        except (ValueError, TypeError) as exc:  # a runner that refuses the row is a fix too
            written["refused"] = str(exc)
    rows = _rows(app, flow="winback")
    if "refused" not in written:
        if flow_class == "marketing":
            assert rows and all(m.marketing for m in rows)
        else:
            assert rows and not any("discount_code" in (m.payload or {}) for m in rows)


# == more attacks that held =====================================================================================

def test_a_resend_of_a_failed_email_after_the_customer_was_redacted_sends_nothing(app, client, clock, smtp) -> None:
    """A failed review request may be resent; if customers/redact landed meanwhile, the resend never leaves."""
    clock.set(DELIVERED + 7 * DAY)
    store_id, (customer_id,) = _shop(app, 1)
    ctx = _ctx(app, smtp)
    runner.run_review_request(ctx, store_id)
    with app.extensions["aftercare.db"].session() as s:
        [row] = s.scalars(select(Message)).all()
        row.status, row.last_error, message_id = "failed", "550 mailbox unavailable", row.id
    body = body_of({"shop_id": 1, "shop_domain": seed.SHOP, "orders_to_redact": [],
                    "customer": {"id": 1001, "email": "c1@example.com", "phone": None}})
    assert client.post("/webhooks", data=body, headers=signed_headers(body, "customers/redact",
                                                                      shop=seed.SHOP)).status_code == 200
    assert process_pending(JobContext.from_app(app, sleep=lambda _s: None)).get("failed", 0) == 0
    _admin(client, app, clock, f"/admin/messages/{message_id}/resend")
    dispatch_due(ctx)
    assert smtp.messages == []
    assert [(m.status, m.skip_reason, m.to_address) for m in _rows(app) if m.id != message_id] == [
        ("skipped", "customer_redacted", None)]


def test_an_amazon_solicitation_can_never_be_resent_from_the_admin(app, clock) -> None:
    """Resend is for email only: a skipped or failed solicitation stays as it is (Amazon allows one, by Amazon)."""
    clock.set(DELIVERED)
    store_id, _ = _shop(app, 1, platform="amazon", external_id="A3SELLER:na")
    with app.extensions["aftercare.db"].session() as s:
        row = seed.message(s, s.get(Store, store_id), None, flow="amazon_review_request", when=clock.now(),
                           key="sol-1", channel="amazon_solicitation")
        for status, reason in (("failed", None), ("skipped", "store_not_installed"), ("skipped", "not_offered")):
            row.status, row.skip_reason = status, reason
            assert can_resend(s, app.config["AFTERCARE"], row) is False


def test_no_incentive_setting_exists_for_amazon_solicitations(app) -> None:
    """The incentive (disclosed) is a Shopify review-request setting; the Amazon flow refuses one."""
    amazon = get_flow("amazon_review_request")
    assert amazon.offers == "never" and get_flow("review_request").offers == "disclosed"
    with pytest.raises(ConfigError, match="unknown setting 'flows.amazon_review_request.incentive_text'"):
        amazon.settings.validate("amazon_review_request", {"incentive_text": "10% off for a review"})
