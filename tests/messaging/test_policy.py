"""The send policy (DESIGN §5): each refusal is a recorded reason; window refusals reschedule, never drop."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from plugin import flow_settings
from plugin.config import Config, load_config
from plugin.messaging import policy
from plugin.messaging.suppression import suppress
from plugin.models import Message, Suppression, Ticket
from tests.conftest import test_settings
from tests.messaging import seed
from tests.messaging.conftest import IN_WINDOW


@pytest.fixture
def config(database_url: str, tmp_path: Path) -> Config:
    """Return the test configuration (without an app: the data lives in the rolled-back db_session)."""
    return load_config(test_settings(database_url, tmp_path / "instance"), environ={})


def decide(session: Session, config, message: Message, now: datetime = IN_WINDOW) -> policy.Decision:
    return policy.evaluate(session, config, message, now)


def test_in_window_customer_is_sent_in_their_locale(db_session: Session, config) -> None:
    store = seed.store(db_session, primary_locale="de")
    customer = seed.customer(db_session, store, 1, locale="fr-FR")
    message = seed.message(db_session, store, customer, when=IN_WINDOW)
    assert decide(db_session, config, message) == policy.Decision("send", locale="fr", address="c1@example.com")
    other = seed.customer(db_session, store, 2, locale=None)
    assert decide(db_session, config, seed.message(db_session, store, other, when=IN_WINDOW)).locale == "de"


def test_uninstalled_store_and_disabled_flow(db_session: Session, config) -> None:
    store = seed.store(db_session)
    customer = seed.customer(db_session, store, 1)
    message = seed.message(db_session, store, customer, when=IN_WINDOW)
    flow_settings.update(db_session, config, store.id, "review_request", {"enabled": False})
    assert decide(db_session, config, message).reason == "flow_disabled"
    store.status, store.uninstalled_at = "uninstalled", IN_WINDOW
    db_session.flush()
    assert decide(db_session, config, message) == policy.Decision("skip", "store_not_installed")


def test_amazon_buyers_get_no_email(db_session: Session, config) -> None:
    store = seed.store(db_session, platform="amazon", external_id="A1SELLER:eu", region="eu")
    customer = seed.customer(db_session, store, 1)
    message = seed.message(db_session, store, customer, when=IN_WINDOW)
    assert decide(db_session, config, message) == policy.Decision("skip", "channel_not_allowed")


def test_consent_suppression_and_contact_access(db_session: Session, config) -> None:
    store = seed.store(db_session)
    no_consent = seed.customer(db_session, store, 1, marketing_consent=False)
    marketing = seed.message(db_session, store, no_consent, flow="replenishment", marketing=True, when=IN_WINDOW)
    assert decide(db_session, config, marketing).reason == "no_consent"
    # A review request is not marketing: consent is not needed, but the suppression list always applies.
    request = seed.message(db_session, store, no_consent, when=IN_WINDOW)
    assert decide(db_session, config, request).action == "send"
    suppress(db_session, store.id, "C1@Example.com", "unsubscribe")
    assert decide(db_session, config, request).reason == "suppressed"
    # A redacted customer leaves only a SHA-256 of the address: a new record with that address is still off-limits.
    other = seed.customer(db_session, store, 2)
    db_session.add(Suppression(store_id=store.id, email=hashlib.sha256(b"c2@example.com").hexdigest(),
                               reason="redact"))
    db_session.flush()
    assert decide(db_session, config, seed.message(db_session, store, other, when=IN_WINDOW)).reason == "suppressed"
    store.protected_data_access = False
    db_session.flush()
    assert decide(db_session, config, request).reason == "no_contact_access"


def test_open_complaint_makes_the_review_request_wait(db_session: Session, config) -> None:
    store = seed.store(db_session)
    customer = seed.customer(db_session, store, 1)
    message = seed.message(db_session, store, customer, when=IN_WINDOW)
    ticket = Ticket(store_id=store.id, customer_id=customer.id, source="survey", severity=2, subject="broken",
                    opened_at=IN_WINDOW, sla_due_at=IN_WINDOW + timedelta(hours=24))
    db_session.add(ticket)
    db_session.flush()
    assert decide(db_session, config, message) == policy.Decision(
        "reschedule", "open_complaint", at=IN_WINDOW + timedelta(hours=6))
    ticket.status = "resolved"
    db_session.flush()
    assert decide(db_session, config, message).action == "send"


def test_cancelled_order_and_duplicate(db_session: Session, config) -> None:
    store = seed.store(db_session)
    customer = seed.customer(db_session, store, 1)
    order = seed.order(db_session, store, customer, 1)
    first = seed.message(db_session, store, customer, when=IN_WINDOW, order_row=order)
    second = seed.message(db_session, store, customer, when=IN_WINDOW, order_row=order, key="legacy-key")
    assert decide(db_session, config, second).action == "send"
    first.status, first.sent_at = "sent", IN_WINDOW - timedelta(days=1)
    db_session.flush()
    assert decide(db_session, config, second) == policy.Decision("skip", "duplicate")
    order.refunded = True
    db_session.flush()
    assert decide(db_session, config, second).reason == "order_cancelled"


def test_frequency_cap_counts_sent_marketing_of_the_last_7_days(db_session: Session, config) -> None:
    store = seed.store(db_session)
    customer = seed.customer(db_session, store, 1)
    for i, days_ago in enumerate((1, 6, 8)):
        sent = seed.message(db_session, store, customer, flow="replenishment", marketing=True, key=f"old-{i}",
                            when=IN_WINDOW - timedelta(days=days_ago))
        sent.status, sent.sent_at = "sent", IN_WINDOW - timedelta(days=days_ago)
    transactional = seed.message(db_session, store, customer, key="request", when=IN_WINDOW)
    transactional.status, transactional.sent_at = "sent", IN_WINDOW - timedelta(hours=1)
    db_session.flush()
    third = seed.message(db_session, store, customer, flow="replenishment", marketing=True, key="new",
                         when=IN_WINDOW)
    assert decide(db_session, config, third) == policy.Decision("skip", "frequency_cap")
    # A week later both the 1- and the 6-day-old sends are older than 7 days.
    later = IN_WINDOW + timedelta(days=7)
    assert decide(db_session, config, third, later).action == "send"
    # Not marketing: the cap does not apply.
    request = seed.message(db_session, store, customer, key="request-2", when=IN_WINDOW)
    assert decide(db_session, config, request).action == "send"


def test_outside_window_reschedules_to_the_customer_morning(db_session: Session, config) -> None:
    store = seed.store(db_session)
    ny = seed.customer(db_session, store, 1, time_zone=None, country="US")
    message = seed.message(db_session, store, ny, when=IN_WINDOW)
    # 09:30 UTC is 04:30 in New York: wait for 09:00 EST = 14:00 UTC.
    assert decide(db_session, config, message) == policy.Decision(
        "reschedule", "outside_window", at=datetime(2026, 3, 3, 14, 0, tzinfo=UTC))
    # No zone and no country: the store's zone (London) applies, and 09:30 there is inside the window.
    nowhere = seed.customer(db_session, store, 2, time_zone=None, country=None)
    assert decide(db_session, config, seed.message(db_session, store, nowhere, when=IN_WINDOW)).action == "send"


def test_ramadan_only_for_promotions_to_configured_countries(db_session: Session, config) -> None:
    store = seed.store(db_session)
    flow_settings.update(db_session, config, store.id, "policy", {"ramadan_countries": ["SA"]})
    riyadh = seed.customer(db_session, store, 1, time_zone="Asia/Riyadh", country="SA")
    now = datetime(2026, 3, 3, 6, 30, tzinfo=UTC)  # 09:30 in Riyadh, 14 Ramadan 1447
    promo = seed.message(db_session, store, riyadh, flow="replenishment", marketing=True, when=now)
    assert decide(db_session, config, promo, now) == policy.Decision(
        "reschedule", "ramadan_daytime", at=datetime(2026, 3, 3, 16, 0, tzinfo=UTC))
    request = seed.message(db_session, store, riyadh, when=now)
    assert decide(db_session, config, request, now).action == "send"


def test_holiday_of_the_customer_country(db_session: Session, config) -> None:
    store = seed.store(db_session)
    berlin = seed.customer(db_session, store, 1, time_zone="Europe/Berlin", country="DE")
    now = datetime(2026, 12, 25, 8, 30, tzinfo=UTC)
    message = seed.message(db_session, store, berlin, when=now)
    assert decide(db_session, config, message, now) == policy.Decision(
        "reschedule", "holiday", at=datetime(2026, 12, 27, 8, 0, tzinfo=UTC))


def test_merchant_alerts_skip_customer_rules(db_session: Session, config) -> None:
    store = seed.store(db_session)
    alert = seed.message(db_session, store, None, flow="ticket_alert", to_address="owner@calmsoaps.example",
                         when=datetime(2026, 3, 3, 23, 0, tzinfo=UTC))
    assert decide(db_session, config, alert, datetime(2026, 3, 3, 23, 0, tzinfo=UTC)) == policy.Decision(
        "send", locale="en", address="owner@calmsoaps.example")
