"""Adversarial review: unsubscribes, consent changes, uninstall and redaction landing at the worst moment.

Built on the race scene of tests/messaging/test_handover_races.py (its seed, its dispatcher with an engine of its
own, its actions through the real routes and signed webhooks) and the SMTP sandbox's hooks on loopback.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from sqlalchemy import select

from connectors.records import CustomerRecord
from plugin.messaging import links
from plugin.messaging.dispatch import dispatch_due
from plugin.models import Customer, Message, Store, Suppression
from plugin.sync.customers import upsert_customers
from plugin.webhooks.compliance import REDACTED_SKIP_REASON, email_digest
from tests.conftest import TEST_SECRET_KEY
from tests.messaging import seed
from tests.messaging.conftest import IN_WINDOW
from tests.messaging.test_handover_races import (
    BASE_URL,
    REFILL,
    Scene,
    _dispatcher,
    _outcome,
    _seed,
    consent_withdrawn,
    redacted,
    uninstalled,
)


def _scene(app, client, clock, **seed_options) -> Scene:
    clock.set(IN_WINDOW)
    store_id, customer_id, external_id, email, message_id = _seed(app, **seed_options)
    return Scene(app, client, clock, seed.SHOP, store_id, customer_id, external_id, email, message_id)


def _dispatch(app, smtp) -> dict:
    ctx = _dispatcher(app, f"smtp://127.0.0.1:{smtp.port}")
    try:
        return dispatch_due(ctx)
    finally:
        ctx.database.dispose()


# == finding 4: one-click unsubscribe from an address the customer no longer uses ==============================

# Review finding 4, fixed: the unsubscribing customer's current address is suppressed too.
def test_unsubscribing_stops_the_customers_marketing_whatever_address_it_came_to(app, client, clock, smtp) -> None:
    scene = _scene(app, client, clock)
    with app.extensions["aftercare.db"].session() as s:
        store, customer = s.get(Store, scene.store_id), s.get(Customer, scene.customer_id)
        # An earlier reminder went to the address the customer had then; they changed it in Shopify since.
        old = seed.message(s, store, customer, flow="replenishment", marketing=True, payload=dict(REFILL),
                           when=IN_WINDOW - timedelta(days=20), key="earlier")
        old.status, old.sent_at, old.to_address = "sent", IN_WINDOW - timedelta(days=20), "kim.old@example.com"
        old_id = old.id
    path = urlsplit(links.url(BASE_URL, TEST_SECRET_KEY, clock, "unsubscribe", old_id)).path
    assert client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    _dispatch(app, smtp)
    assert smtp.messages == []
    assert _outcome(app, scene.message_id)[0] in ("cancelled", "skipped")


# == finding 6: a sync copy read before a consent withdrawal brings the consent back ===========================

# Review finding 6, fixed: consent is dated by its own time in the customers upsert (plugin/sync/customers.py).
def test_a_stale_sync_copy_does_not_undo_a_consent_withdrawal(app, client, clock, smtp) -> None:
    scene = _scene(app, client, clock)
    read_at = IN_WINDOW - timedelta(minutes=10)
    with app.extensions["aftercare.db"].session() as s:
        customer = s.get(Customer, scene.customer_id)
        customer.remote_updated_at = IN_WINDOW - timedelta(days=30)
        customer.marketing_consent_at = IN_WINDOW - timedelta(days=30)
    # The customer unsubscribes in Shopify; the webhook arrives and is applied.
    consent_withdrawn(scene)
    with app.extensions["aftercare.db"].session() as s:
        assert s.get(Customer, scene.customer_id).marketing_consent is False
        # The sync's page, fetched ten minutes before the withdrawal, commits now (the stream's own writer).
        upsert_customers(s, scene.store_id, [CustomerRecord(
            external_id=scene.customer_external_id, email=scene.email, first_name="Kim1", locale="en", country="GB",
            time_zone="Europe/London", marketing_consent=True,
            marketing_consent_at=IN_WINDOW - timedelta(days=30), updated_at=read_at)], now=clock.now())
    # A new reminder is planned for the customer afterwards.
    with app.extensions["aftercare.db"].session() as s:
        seed.message(s, s.get(Store, scene.store_id), s.get(Customer, scene.customer_id), flow="replenishment",
                     marketing=True, payload=dict(REFILL), when=IN_WINDOW, key="after-sync")
    _dispatch(app, smtp)
    assert smtp.messages == []


# == attacks that held ==========================================================================================

def test_a_consent_withdrawal_written_by_the_sync_during_the_handshake_is_caught(app, client, clock, smtp) -> None:
    """No webhook: the sync's own upsert commits consent=false while the SMTP client says EHLO. The upsert takes
    the hand-over locks and cancels the claimed row at once (issue 11 item 4; it used to wait for the last check)."""
    scene = _scene(app, client, clock)

    def sync_commits() -> None:
        with app.extensions["aftercare.db"].session() as s:
            upsert_customers(s, scene.store_id, [CustomerRecord(
                external_id=scene.customer_external_id, email=scene.email, first_name="Kim1", locale="en",
                country="GB", time_zone="Europe/London", marketing_consent=False,
                marketing_consent_at=IN_WINDOW, updated_at=IN_WINDOW)], now=clock.now())

    smtp.on("ehlo", sync_commits)
    assert _dispatch(app, smtp) == {"cancelled": 1}
    assert smtp.messages == []
    assert _outcome(app, scene.message_id) == ("cancelled", "consent_withdrawn")


def test_uninstall_then_reinstall_during_the_handshake_sends_nothing(app, client, clock, smtp) -> None:
    """The uninstall cancels the claimed row; a reinstall before the last check does not bring it back."""
    scene = _scene(app, client, clock)
    expected: list[str] = []

    def uninstall_then_reinstall() -> None:
        expected.append(uninstalled(scene))
        with app.extensions["aftercare.db"].session() as s:
            store = s.get(Store, scene.store_id)
            store.status, store.uninstalled_at, store.installed_at = "active", None, clock.now()

    smtp.on("ehlo", uninstall_then_reinstall)
    assert _dispatch(app, smtp) == {"cancelled": 1}
    assert smtp.messages == []
    assert _outcome(app, scene.message_id) == ("cancelled", expected[0])
    # The next run finds nothing to send: the cancelled row stays cancelled.
    assert _dispatch(app, smtp) == {}


def test_a_redaction_after_the_last_check_records_the_send_without_personal_data(app, client, clock, smtp) -> None:
    """customers/redact at MAIL FROM (``handed_at`` set): the email was on its way and is recorded sent, but the
    row keeps no address, subject or payload, the customer is erased and the address stays suppressed (digest)."""
    scene = _scene(app, client, clock)
    smtp.on("mail", lambda: redacted(scene))
    assert _dispatch(app, smtp) == {"sent": 1}
    assert len(smtp.messages_to(scene.email)) == 1
    with app.extensions["aftercare.db"].session() as s:
        message = s.get(Message, scene.message_id)
        assert (message.status, message.handed_at is not None, message.to_address, message.subject,
                message.payload) == ("sent", True, None, None, {})
        assert s.get(Customer, scene.customer_id).email is None
        assert s.scalars(select(Suppression.email)).all() == [email_digest(scene.email)]


def test_a_redaction_during_the_handshake_cancels_a_service_email_too(app, client, clock, smtp) -> None:
    """Redaction is not only about marketing: a review request claimed for the customer never leaves."""
    scene = _scene(app, client, clock, flow="review_request", marketing=False)
    smtp.on("ehlo", lambda: redacted(scene))
    assert _dispatch(app, smtp) == {"cancelled": 1}
    assert smtp.messages == []
    assert _outcome(app, scene.message_id) == ("cancelled", REDACTED_SKIP_REASON)
