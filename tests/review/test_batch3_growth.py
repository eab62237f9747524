"""Adversarial review (batch 3): the growth flows' public birthday page under a redaction race (DESIGN §1).

The app's signed public page and its signed compliance webhook, on the app's real database. Attacks that held.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from flask import Flask

from base.clock import FrozenClock
from jobs.dispatch import dispatch_due
from jobs.webhooks import process_pending
from plugin.context import JobContext
from plugin.messaging import links, outbox
from plugin.models import Customer, Message, Store
from sandbox.smtp import SmtpSandbox
from tests.conftest import TEST_SECRET_KEY, wipe
from tests.messaging import seed
from tests.messaging.conftest import IN_WINDOW as RACE_AT
from tests.messaging.test_handover_races import ACTIONS, Scene
from tests.shopify_app_env import body_of, signed_headers
from tests.shopify_sync_harness import make_harness

BASE_URL = "https://aftercare.test"
IN_WINDOW = datetime(2026, 3, 3, 9, 30, tzinfo=UTC)


def _sent_marketing(app: Flask) -> tuple[int, int]:
    """A customer with a marketing email already sent (its footer links to the birthday page); (customer, message)."""
    with app.extensions["aftercare.db"].session() as s:
        shop = seed.store(s, protected_data_access=True)
        customer = seed.customer(s, shop, 1, external_id="1001")
        message = seed.message(s, shop, customer, flow="replenishment", marketing=True, when=IN_WINDOW, key="sent")
        message.status, message.sent_at = "sent", IN_WINDOW
        return customer.id, message.id


def _redact(app: Flask, client) -> None:
    body = body_of({"shop_id": 1, "shop_domain": seed.SHOP, "orders_to_redact": [],
                    "customer": {"id": 1001, "email": "c1@example.com", "phone": None}})
    assert client.post("/webhooks", data=body, headers=signed_headers(body, "customers/redact",
                                                                      shop=seed.SHOP)).status_code == 200
    assert process_pending(JobContext.from_app(app, sleep=lambda _s: None)).get("failed", 0) == 0


def test_a_birthday_form_opened_before_a_redaction_stores_nothing_after_it(app, client, clock) -> None:
    """The form is open in the customer's browser when customers/redact is applied; the submit stores no birthday."""
    clock.set(IN_WINDOW)
    customer_id, message_id = _sent_marketing(app)
    path = urlsplit(links.url(BASE_URL, TEST_SECRET_KEY, clock, "birthday", message_id)).path
    page = client.get(path, base_url="https://localhost")
    assert page.status_code == 200
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    _redact(app, client)
    answer = client.post(path, base_url="https://localhost", data={"csrf": csrf, "month": "7", "day": "14"})
    assert answer.status_code == 410
    assert "c1@example.com" not in answer.get_data(as_text=True)
    with app.extensions["aftercare.db"].session() as s:
        customer = s.get(Customer, customer_id)
        assert (customer.birthday, customer.birthday_changed_at, customer.redacted_at is not None) == (
            None, None, True)
        assert s.get(Store, customer.store_id) is not None


def test_a_birthday_link_of_a_redacted_customer_shows_nothing(app, client, clock) -> None:
    clock.set(IN_WINDOW)
    _customer_id, message_id = _sent_marketing(app)
    path = urlsplit(links.url(BASE_URL, TEST_SECRET_KEY, clock, "birthday", message_id)).path
    _redact(app, client)
    page = client.get(path, base_url="https://localhost")
    assert page.status_code == 410
    assert "Kim1" not in page.get_data(as_text=True)


# == rules 4 and 5: a win-back code being created when the customer withdraws ===================================

@pytest.mark.parametrize("name", ["one_click", "consent_withdrawn", "redacted"])
def test_an_action_while_the_winback_code_is_created_stops_the_email(database, app, client, tmp_path, name) -> None:
    """The win-back's spend-X-save-Y code is created in the Shopify sandbox (over HTTP) first; an unsubscribe, a
    consent withdrawal or a redaction lands during that call: no email leaves, and a retried dispatch makes no
    second code."""
    harness = make_harness(database, tmp_path, customers=2, orders=2)
    try:
        with SmtpSandbox() as smtp:
            clock: FrozenClock = app.extensions["aftercare.clock"]
            clock.set(RACE_AT)
            harness.clock.set(RACE_AT)
            with database.session() as s:
                store = s.get(Store, harness.store_id)
                store.protected_data_access = True
                store.postal_address = store.postal_address or "100 Main Street, Springfield IL 62701, United States"
                shop = store.external_id
                remote = harness.sandbox.store.customers[0]
                customer = Customer(store_id=harness.store_id, external_id=str(remote.id), email="kim@example.com",
                                    first_name="Kim", time_zone="Europe/London", country="GB",
                                    marketing_consent=True)
                s.add(customer)
                s.flush()
                message = outbox.enqueue(s, store_id=harness.store_id, flow="winback", step="main", channel="email",
                                         idempotency_key="winback-race", scheduled_for=RACE_AT,
                                         customer_id=customer.id, marketing=True, to_address=customer.email,
                                         payload={"discount_amount": "30", "discount_min_subtotal": "100",
                                                  "discount_valid_days": 30})
                ids = (customer.id, message.id)
            scene = Scene(app, client, clock, shop, harness.store_id, ids[0], str(remote.id), "kim@example.com",
                          ids[1])
            expected: list[str] = []
            harness.sandbox.faults.before_request(b"discountCodeBasicCreate",
                                                  lambda: expected.append(ACTIONS[name](scene)))
            harness.ctx.extras.update(smtp_url=f"smtp://127.0.0.1:{smtp.port}", base_url=BASE_URL)
            dispatch_due(harness.ctx)
            assert len(expected) == 1, "the discount call never happened"
            assert smtp.messages == []
            with database.session() as s:
                assert s.get(Message, ids[1]).status in ("cancelled", "skipped")
            dispatch_due(harness.ctx)  # a later run: nothing more leaves, no second code
            assert smtp.messages == []
            codes = [d.code for d in harness.sandbox.shop_state().discounts.values()
                     if d.code.startswith("WELCOMEBACK")]
            assert len(codes) <= 1
    finally:
        harness.stop()
        wipe(database.engine)
