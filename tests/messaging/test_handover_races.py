"""Nothing leaves that the rules no longer allow (DESIGN.md §5, plugin/messaging/handover.py).

Each test lets the dispatcher claim a message, then makes an action commit at one exact point before the
hand-over — right after the claim commit, while the SMTP client says EHLO, while it logs in, while the
Shopify discount code is being created — through the action's real entry point: the one-click and the
confirmed unsubscribe pages, the admin's suppression form, and the signed webhooks for consent withdrawal,
uninstall and customers/redact (stored by the receiver, applied by the webhook job). Nothing may arrive at the
SMTP server, and the message must end cancelled with the action's reason. The last tests pin down what remains:
an action after the last check (at MAIL FROM) no longer stops the message, and a claim that never reached the
last check is resent after a crash without any duplicate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select

from base.clock import FrozenClock
from jobs.webhooks import process_pending
from plugin import flow_settings
from plugin.auth.lifecycle import SKIP_UNINSTALLED
from plugin.context import JobContext
from plugin.db import Database
from plugin.messaging import links, outbox
from plugin.messaging.dispatch import dispatch_due
from plugin.models import Customer, Message, Store, Suppression
from plugin.secrets_store import set_credential
from plugin.webhooks.compliance import REDACTED_SKIP_REASON
from plugin.webhooks.processing import SKIP_CONSENT_WITHDRAWN
from sandbox.shopify import mint_session_token
from sandbox.smtp import SmtpSandbox
from tests.conftest import TEST_SECRET_KEY, TEST_SHOPIFY_API_KEY, TEST_SHOPIFY_API_SECRET, wipe
from tests.messaging import seed
from tests.messaging.conftest import IN_WINDOW
from tests.shopify_app_env import body_of, signed_headers
from tests.shopify_sync_harness import make_harness

BASE_URL = "https://aftercare.test"
REFILL = {"product_title": "Lavender soap", "quantity": 1, "run_out_at": "2026-03-10T00:00:00+00:00"}


@dataclass
class Scene:
    """The app, the message about to be raced, and the customer it goes to."""

    app: Flask
    client: FlaskClient
    clock: FrozenClock
    shop: str
    store_id: int
    customer_id: int
    customer_external_id: str
    email: str
    message_id: int
    done: list[str] = field(default_factory=list)

    def webhook(self, topic: str, payload: dict[str, Any]) -> None:
        """Deliver a signed webhook to the app and run the webhook job, as production does."""
        body = body_of(payload)
        answer = self.client.post("/webhooks", data=body, headers=signed_headers(body, topic, shop=self.shop))
        assert answer.status_code == 200, answer.get_data(as_text=True)
        processed = process_pending(JobContext.from_app(self.app, sleep=lambda _s: None))
        assert processed.get("failed", 0) == 0, processed


def one_click(scene: Scene) -> str:
    """RFC 8058 one-click unsubscribe from the message's own List-Unsubscribe URL."""
    path = urlsplit(links.url(BASE_URL, TEST_SECRET_KEY, scene.clock, "unsubscribe", scene.message_id)).path
    assert scene.client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    return "unsubscribed"


def confirmed(scene: Scene) -> str:
    """The unsubscribe page's confirm button."""
    path = urlsplit(links.url(BASE_URL, TEST_SECRET_KEY, scene.clock, "unsubscribe", scene.message_id)).path
    answer = scene.client.post(path, data={})
    assert answer.status_code == 200 and "unsubscribe" in answer.get_data(as_text=True).lower()
    return "unsubscribed"


def admin_suppression(scene: Scene) -> str:
    """The merchant suppresses the address on the customer page of the embedded admin."""
    token = mint_session_token(scene.shop, TEST_SHOPIFY_API_KEY, TEST_SHOPIFY_API_SECRET, scene.clock.now())
    answer = scene.client.post(f"/admin/customers/{scene.customer_id}/suppression", data={"action": "add"},
                               headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return "unsubscribed"


def consent_withdrawn(scene: Scene) -> str:
    """Shopify's customers_email_marketing_consent/update with the state ``unsubscribed``."""
    scene.webhook("customers_email_marketing_consent/update", {
        "customer_id": int(scene.customer_external_id), "email_address": scene.email,
        "email_marketing_consent": {"state": "unsubscribed", "opt_in_level": "single_opt_in",
                                    "consent_updated_at": scene.clock.now().isoformat()}})
    return SKIP_CONSENT_WITHDRAWN


def uninstalled(scene: Scene) -> str:
    """Shopify's app/uninstalled."""
    scene.webhook("app/uninstalled", {"id": 1, "name": "Calm Soaps", "domain": scene.shop,
                                      "myshopify_domain": scene.shop})
    return SKIP_UNINSTALLED


def redacted(scene: Scene) -> str:
    """Shopify's customers/redact for the customer."""
    scene.webhook("customers/redact", {"shop_id": 1, "shop_domain": scene.shop, "orders_to_redact": [],
                                       "customer": {"id": int(scene.customer_external_id), "email": scene.email,
                                                    "phone": None}})
    return REDACTED_SKIP_REASON


ACTIONS: dict[str, Callable[[Scene], str]] = {
    "one_click": one_click, "confirmed": confirmed, "admin_suppression": admin_suppression,
    "consent_withdrawn": consent_withdrawn, "uninstalled": uninstalled, "redacted": redacted,
}


def _seed(app: Flask, *, flow: str = "replenishment", marketing: bool = True, shop: str = seed.SHOP,
          others: int = 0, store_id: int | None = None) -> tuple[int, int, str, str, int]:
    """Create the store (unless given), ``others`` unrelated customers with a due email each, then the target."""
    database: Database = app.extensions["aftercare.db"]
    with database.session() as s:
        store = seed.store(s, external_id=shop) if store_id is None else None
        if store is not None:
            # The embedded admin needs the shop's offline token to accept the merchant's session.
            set_credential(store, app.extensions["aftercare.vault"], "access_token_enc", "shpat_race_test")
        sid = store.id if store is not None else store_id
        for n in range(others):
            other = seed.customer(s, _store(s, sid), 10 + n, external_id=str(2000 + n))
            seed.message(s, _store(s, sid), other, flow=flow, marketing=marketing, payload=dict(REFILL),
                         when=IN_WINDOW - timedelta(minutes=5), key=f"other-{n}")
        customer = seed.customer(s, _store(s, sid), 1, external_id="1001")
        message = seed.message(s, _store(s, sid), customer, flow=flow, marketing=marketing, when=IN_WINDOW,
                               payload=dict(REFILL), key="target")
        return sid, customer.id, customer.external_id, customer.email, message.id


def _store(session: Any, store_id: int) -> Store:
    return session.get(Store, store_id)


def _outcome(app: Flask, message_id: int) -> tuple[str, str | None]:
    with app.extensions["aftercare.db"].session() as s:
        message = s.get(Message, message_id)
        return message.status, message.skip_reason


def _dispatcher(app: Flask, smtp_url: str) -> JobContext:
    """A dispatcher with its own engine, so hooks on its sessions never see the actions' sessions."""
    base = JobContext.from_app(app)
    return JobContext(config=base.config, database=Database(base.config.database_url), vault=base.vault,
                      clock=base.clock, sleep=lambda _s: None, extras={"smtp_url": smtp_url, "base_url": BASE_URL})


@pytest.fixture
def auth_smtp() -> Iterator[SmtpSandbox]:
    """An SMTP server that requires STARTTLS and AUTH (so the race can land during the login)."""
    with SmtpSandbox(tls=True, require_tls=True, auth={"mailer": "secret"}) as server:
        yield server


def _after_claim(ctx: JobContext, message_id: int, action: Callable[[], None]) -> None:
    """Run ``action`` once, right after the dispatcher's claim of ``message_id`` commits."""
    maker = ctx.database.sessionmaker

    @event.listens_for(maker, "after_flush")
    def note(session: Any, _flush: Any) -> None:
        if any(isinstance(o, Message) and o.id == message_id and o.status == "sending" for o in session.dirty):
            session.info["claimed"] = True

    @event.listens_for(maker, "after_commit")
    def act(session: Any) -> None:
        if session.info.pop("claimed", False):
            action()


@pytest.mark.parametrize("stage", ["after_claim", "ehlo", "auth", "open_connection"])
@pytest.mark.parametrize("name", list(ACTIONS))
def test_an_action_committing_before_hand_over_stops_the_message(app, client, clock, auth_smtp, stage, name) -> None:
    clock.set(IN_WINDOW)
    # "open_connection": an earlier message of the batch opened the connection; the race lands between the
    # target's claim and its hand-over, with nothing left to set up.
    others = 1 if stage == "open_connection" else 0
    store_id, customer_id, external_id, email, message_id = _seed(app, others=others)
    scene = Scene(app, client, clock, seed.SHOP, store_id, customer_id, external_id, email, message_id)
    ctx = _dispatcher(app, f"smtp+starttls://mailer:secret@127.0.0.1:{auth_smtp.port}?verify=false")
    expected: list[str] = []

    def act() -> None:
        expected.append(ACTIONS[name](scene))

    if stage in ("after_claim", "open_connection"):
        _after_claim(ctx, message_id, act)
    else:
        auth_smtp.on(stage, act)
    try:
        counts = dispatch_due(ctx)
    finally:
        ctx.database.dispose()
    assert len(expected) == 1, "the action did not run at the forced point"
    assert auth_smtp.messages_to(email) == []
    assert len(auth_smtp.messages) == others
    assert _outcome(app, message_id) == ("cancelled", expected[0])
    assert (counts.get("sent", 0), counts.get("cancelled")) == (others, 1)


@pytest.mark.parametrize("name", ["one_click", "admin_suppression", "consent_withdrawn", "uninstalled", "redacted"])
def test_an_action_during_the_discount_call_stops_the_message(database, app, client, tmp_path, name) -> None:
    """The Shopify discount code is created first (over HTTP, the sandbox); the action lands during that call."""
    harness = make_harness(database, tmp_path, customers=2, orders=2)
    try:
        with SmtpSandbox() as smtp:
            clock: FrozenClock = app.extensions["aftercare.clock"]
            clock.set(IN_WINDOW)
            harness.clock.set(IN_WINDOW)
            with database.session() as s:
                store = _store(s, harness.store_id)
                store.protected_data_access = True
                shop = store.external_id
                remote = harness.sandbox.store.customers[0]
                customer = Customer(store_id=harness.store_id, external_id=str(remote.id), email="kim@example.com",
                                    first_name="Kim", time_zone="Europe/London", country="GB",
                                    marketing_consent=True)
                s.add(customer)
                s.flush()
                message = outbox.enqueue(s, store_id=harness.store_id, flow="replenishment", channel="email",
                                         idempotency_key="refill-race", scheduled_for=IN_WINDOW,
                                         customer_id=customer.id, marketing=True, to_address=customer.email,
                                         payload={**REFILL, "discount_percent": 15, "discount_code": "REFILL-RACE1"})
                ids = (customer.id, message.id)
            scene = Scene(app, client, clock, shop, harness.store_id, ids[0], str(remote.id), "kim@example.com",
                          ids[1])
            expected: list[str] = []
            harness.sandbox.faults.before_request(b"discountCodeBasicCreate",
                                                  lambda: expected.append(ACTIONS[name](scene)))
            harness.ctx.extras.update(smtp_url=f"smtp://127.0.0.1:{smtp.port}", base_url=BASE_URL)
            counts = dispatch_due(harness.ctx)
            assert len(expected) == 1, "the discount call never happened"
            assert [d.code for d in harness.sandbox.shop_state().discounts.values()] == ["REFILL-RACE1"]
            assert smtp.messages == []
            assert counts.get("sent", 0) == 0
            assert _outcome(app, ids[1]) == ("cancelled", expected[0])
    finally:
        harness.stop()
        wipe(database.engine)


def test_a_service_email_already_claimed_is_cancelled_by_an_unsubscribe(app, client, clock, smtp) -> None:
    """Unsubscribing cancels every email of the address still waiting for hand-over, not only marketing."""
    clock.set(IN_WINDOW)
    store_id, customer_id, external_id, email, message_id = _seed(app, flow="review_request", marketing=False)
    scene = Scene(app, client, clock, seed.SHOP, store_id, customer_id, external_id, email, message_id)
    ctx = _dispatcher(app, f"smtp://127.0.0.1:{smtp.port}")
    smtp.on("ehlo", lambda: one_click(scene))
    try:
        dispatch_due(ctx)
    finally:
        ctx.database.dispose()
    assert smtp.messages == []
    assert _outcome(app, message_id) == ("cancelled", "unsubscribed")


def test_what_no_action_cancels_is_caught_by_the_last_check(app, client, clock, smtp) -> None:
    """A flow switched off, or a suppression written by another path, during the handshake: skipped with the code."""
    clock.set(IN_WINDOW)
    store_id, *_rest, message_id = _seed(app)
    database: Database = app.extensions["aftercare.db"]
    config = app.config["AFTERCARE"]

    def switch_off() -> None:
        with database.session() as s:
            flow_settings.update(s, config, store_id, "replenishment", {"enabled": False})

    ctx = _dispatcher(app, f"smtp://127.0.0.1:{smtp.port}")
    smtp.on("ehlo", switch_off)
    try:
        counts = dispatch_due(ctx)
    finally:
        ctx.database.dispose()
    assert smtp.messages == []
    assert counts == {"withheld": 1, "withheld:flow_disabled": 1}
    assert _outcome(app, message_id) == ("skipped", "flow_disabled")


def test_an_action_after_the_last_check_is_the_window_that_remains(app, client, clock, smtp) -> None:
    """At MAIL FROM the message has passed its last check: it is delivered, and the unsubscribe still holds after."""
    clock.set(IN_WINDOW)
    store_id, customer_id, external_id, email, message_id = _seed(app)
    scene = Scene(app, client, clock, seed.SHOP, store_id, customer_id, external_id, email, message_id)
    ctx = _dispatcher(app, f"smtp://127.0.0.1:{smtp.port}")
    smtp.on("mail", lambda: one_click(scene))
    try:
        assert dispatch_due(ctx) == {"sent": 1}
    finally:
        ctx.database.dispose()
    assert len(smtp.messages_to(email)) == 1
    with database_session(app) as s:
        message = s.get(Message, message_id)
        assert (message.status, message.handed_at is not None) == ("sent", True)
        assert s.scalar(select(Suppression.reason)) == "unsubscribe"


def test_a_claim_that_never_reached_the_last_check_is_resent_without_a_duplicate(app, clock, smtp) -> None:
    """A dispatcher that died before hand-over left ``handed_at`` empty: reconciliation says nothing was sent."""
    clock.set(IN_WINDOW)
    _store_id, *_rest, message_id = _seed(app)
    database: Database = app.extensions["aftercare.db"]
    with database.session() as s:
        message = s.get(Message, message_id)
        outbox.mark_claimed(message, "dead-worker", IN_WINDOW)
    clock.advance(timedelta(hours=1))
    with database.session() as s:
        assert outbox.reconcile_stale(s, clock.now(), timedelta(minutes=10), max_attempts=5) == 1
    with database.session() as s:
        message = s.get(Message, message_id)
        assert message.status == "scheduled"
        assert message.last_error == ("dispatcher dead-worker stopped before handing it over "
                                      "(claimed 2026-03-03 09:30:00 UTC); nothing was sent")
    ctx = _dispatcher(app, f"smtp://127.0.0.1:{smtp.port}")
    try:
        assert dispatch_due(ctx) == {"sent": 1}
    finally:
        ctx.database.dispose()
    assert len(smtp.messages) == 1


def database_session(app: Flask) -> Any:
    """Open a session on the app's database."""
    return app.extensions["aftercare.db"].session()

