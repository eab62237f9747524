"""Webhooks from the Shopify sandbox (real HTTP, signed like Shopify) stored by our app and applied by the job."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import delete, select

from base.clock import FrozenClock
from jobs.webhooks import process_pending
from plugin.admin.messages import reason_words
from plugin.messaging.outbox import enqueue
from plugin.models import Customer, Message, Order, OrderLine, Store, WebhookEvent
from plugin.webhooks.inbox import MAX_ATTEMPTS
from plugin.webhooks.processing import EMAIL_CONSENT_TOPIC, bulk_finish_event
from sandbox.shopify.models import FulfillmentEvent
from sandbox.shopify.payloads import PayloadBuilder
from tests.conftest import TEST_SHOPIFY_API_KEY
from tests.shopify_app_env import ShopifyEnv, body_of, shopify_env, signed_headers


def _order(env: ShopifyEnv, external_id: int) -> tuple[Order, list[OrderLine], Customer | None]:
    with env.app.extensions["aftercare.db"].session() as session:
        order = session.scalar(select(Order).where(Order.external_id == str(external_id)))
        assert order is not None
        lines = list(session.scalars(select(OrderLine).where(OrderLine.order_id == order.id)
                                     .order_by(OrderLine.external_id)))
        customer = session.get(Customer, order.customer_id) if order.customer_id else None
        return order, lines, customer


def _topics(env: ShopifyEnv) -> list[str]:
    with env.app.extensions["aftercare.db"].session() as session:
        return list(session.scalars(select(WebhookEvent.topic).order_by(WebhookEvent.id)))


def test_order_lifecycle_from_webhooks(database_url: str, tmp_path: Path, clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        env.install()
        shop = env.sandbox.store
        person = shop.customers[0]
        variant_a, variant_b = shop.products[0].variants[0], shop.products[1].variants[0]
        placed = env.sandbox.add_order(person.id, [(variant_a.id, 2), (variant_b.id, 1)])
        assert _topics(env) == ["orders/create"]
        assert process_pending(env.ctx()) == {"processed": 1, "applied": 1}

        order, lines, customer = _order(env, placed.id)
        expected_total = Decimal(variant_a.price_cents * 2 + variant_b.price_cents) / 100
        assert (order.name, order.currency, order.total_price) == (placed.name, shop.shop.currency, expected_total)
        assert order.created_at_remote == placed.created_at
        assert order.financial_status == "PAID" and order.fulfillment_status == "UNFULFILLED"
        assert [(ln.external_id, ln.quantity, ln.sku) for ln in lines] == sorted(
            [(str(li.id), li.quantity, li.sku) for li in placed.line_items])
        assert customer is not None and customer.external_id == str(person.id)
        assert (customer.email, customer.first_name, customer.locale) == (person.email, person.first_name,
                                                                          person.locale)

        shipped_at = clock.advance(hours=5).replace(microsecond=0)
        env.sandbox.fulfil_order(placed.id)
        delivered_at = clock.advance(days=3).replace(microsecond=0)
        env.sandbox.deliver_order(placed.id)
        assert _topics(env)[1:] == ["fulfillments/create", "orders/fulfilled", "orders/updated",
                                    "fulfillment_events/create", "fulfillments/update", "orders/updated"]
        counts = process_pending(env.ctx())
        assert counts["processed"] == 6 and "failed" not in counts
        order, _, _ = _order(env, placed.id)
        assert order.fulfillment_status == "FULFILLED"
        assert order.fulfilled_at == shipped_at
        assert order.delivered_at == delivered_at

        cancelled_at = clock.advance(hours=2).replace(microsecond=0)
        env.sandbox.cancel_order(placed.id)
        counts = process_pending(env.ctx())
        assert counts["processed"] == 3 and "failed" not in counts
        order, _, _ = _order(env, placed.id)
        assert order.cancelled_at == cancelled_at
        # The refund is in the cancelled order's body already: refunds/create must not count it twice.
        assert order.total_refunded == expected_total
        assert order.refunded is True and order.financial_status == "REFUNDED"

        with env.app.extensions["aftercare.db"].session() as session:
            events = list(session.scalars(select(WebhookEvent)))
            assert all(e.processed_at is not None and e.payload is None for e in events)


def test_a_partly_delivered_order_waits_for_its_last_parcel(database_url: str, tmp_path: Path,
                                                            clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        env.install()
        shop = env.sandbox.store
        placed = env.sandbox.add_order(shop.customers[0].id, [(shop.products[0].variants[0].id, 3)])
        clock.advance(hours=2)
        first = env.sandbox.fulfil_order(placed.id, quantity=1)
        clock.advance(hours=1)
        second = env.sandbox.fulfil_order(placed.id)
        assert "failed" not in process_pending(env.ctx())
        clock.advance(days=2)
        env.sandbox.deliver_order(placed.id, fulfillment_id=first.id)
        assert _topics(env)[-3:] == ["fulfillment_events/create", "fulfillments/update", "orders/updated"]
        assert process_pending(env.ctx()) == {"processed": 3, "applied": 2, "unchanged": 1}
        order, _, _ = _order(env, placed.id)
        assert (order.fulfilled_at, order.delivered_at) == (first.created_at, None)  # the second is in transit

        # A carrier event alone (the fulfilment and order bodies come later) for the second parcel: in transit
        # is a new milestone of the parcel (the order stays undelivered), delivered completes the order at the
        # carrier's time (not at the fulfilment's update).
        url = env.url + "/webhooks"
        builder = PayloadBuilder(env.sandbox.store, True)
        transit = body_of(builder.fulfillment_event(placed, second, FulfillmentEvent(
            7_000_001, "IN_TRANSIT", clock.now().replace(microsecond=0), clock.now().replace(microsecond=0))))
        assert httpx.post(url, content=transit, headers=signed_headers(transit, "fulfillment_events/create"),
                          timeout=10).status_code == 200
        assert process_pending(env.ctx()) == {"processed": 1, "applied": 1}
        assert _order(env, placed.id)[0].delivered_at is None
        clock.advance(days=1)
        arrived = clock.now().replace(microsecond=0) - timedelta(hours=6)
        env.sandbox.deliver_order(placed.id, fulfillment_id=second.id, delivered_at=arrived)
        assert process_pending(env.ctx()) == {"processed": 3, "applied": 2, "unchanged": 1}
        order, _, _ = _order(env, placed.id)
        assert (order.fulfilled_at, order.delivered_at) == (first.created_at, arrived)
        # A late retry of the first parcel's in-transit update changes nothing.
        stale = builder.fulfillment(placed, first)
        stale.update(shipment_status="in_transit", updated_at=first.created_at.isoformat())
        late = body_of(stale)
        assert httpx.post(url, content=late, headers=signed_headers(late, "fulfillments/update"),
                          timeout=10).status_code == 200
        assert process_pending(env.ctx()) == {"processed": 1, "unchanged": 1}
        order, _, _ = _order(env, placed.id)
        assert order.delivered_at == arrived

        # Another order: its only other parcel was cancelled, so the delivered one completes it.
        other = env.sandbox.add_order(shop.customers[1].id, [(shop.products[1].variants[0].id, 2)])
        clock.advance(hours=1)
        env.sandbox.fulfil_order(other.id, quantity=1)
        env.sandbox.cancel_fulfillment(other.id)
        kept = env.sandbox.fulfil_order(other.id)
        clock.advance(days=1)
        env.sandbox.deliver_order(other.id)
        assert "failed" not in process_pending(env.ctx())
        order, _, _ = _order(env, other.id)
        assert (order.fulfilled_at, order.delivered_at) == (kept.created_at, kept.delivered_at)


def test_older_orders_updated_does_not_overwrite_newer(database_url: str, tmp_path: Path,
                                                       clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        env.install()
        shop = env.sandbox.store
        placed = env.sandbox.add_order(shop.customers[1].id, [(shop.products[0].variants[0].id, 1)])
        builder = PayloadBuilder(shop, True)
        placed.updated_at = datetime(2026, 3, 2, 12, 10, tzinfo=UTC)
        placed.tags = ("old-copy",)
        older = builder.order(placed)
        placed.updated_at = datetime(2026, 3, 2, 12, 20, tzinfo=UTC)
        placed.tags = ("new-copy", "vip")
        newer = builder.order(placed)
        url = env.url + "/webhooks"
        for payload in (newer, older):  # delivered out of order
            body = body_of(payload)
            assert httpx.post(url, content=body, headers=signed_headers(body, "orders/updated"),
                              timeout=10).status_code == 200
        counts = process_pending(env.ctx())
        assert counts == {"processed": 3, "applied": 2, "stale": 1}
        order, _, _ = _order(env, placed.id)
        assert order.tags == ["new-copy", "vip"]
        assert order.remote_updated_at == datetime(2026, 3, 2, 12, 20, tzinfo=UTC)


def _customer(env: ShopifyEnv, external_id: int) -> Customer:
    with env.app.extensions["aftercare.db"].session() as session:
        customer = session.scalar(select(Customer).where(Customer.external_id == str(external_id)))
        assert customer is not None
        return customer


def _post(env: ShopifyEnv, topic: str, payload: object) -> None:
    """Deliver a body as a new Shopify delivery (fresh webhook and event ids), e.g. a late retry."""
    body = body_of(payload)
    answer = httpx.post(env.url + "/webhooks", content=body, headers=signed_headers(body, topic), timeout=10)
    assert answer.status_code == 200


def _last_body(env: ShopifyEnv, topic: str) -> dict:
    return [d for d in env.sandbox.deliveries if d.topic == topic][-1].payload


def test_consent_arrives_by_its_own_topic_and_customer_bodies_keep_it(database_url: str, tmp_path: Path,
                                                                     clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        env.install()
        shop = env.sandbox.store
        person = next(c for c in shop.customers if c.marketing_state != "SUBSCRIBED")
        env.sandbox.add_order(person.id, [(shop.products[0].variants[0].id, 1)])
        process_pending(env.ctx())
        assert _customer(env, person.id).marketing_consent is False  # a new customer starts without consent

        consent_at = clock.advance(minutes=30).replace(microsecond=0)
        env.sandbox.update_customer_consent(person.id, "SUBSCRIBED")
        assert _topics(env)[-2:] == [EMAIL_CONSENT_TOPIC, "customers/update"]
        assert process_pending(env.ctx()) == {"processed": 2, "applied": 2}
        customer = _customer(env, person.id)
        assert (customer.marketing_consent, customer.marketing_consent_at) == (True, consent_at)
        assert customer.locale == person.locale  # not in the REST customer body: kept, not erased

        # customers/update and order bodies (2025-01) carry no consent and no tags: both stay as stored.
        with env.app.extensions["aftercare.db"].session() as session:
            session.scalar(select(Customer).where(Customer.id == customer.id)).tags = ["vip"]
        clock.advance(hours=1)
        person.first_name = "Renamed"
        person.updated_at = clock.now().replace(microsecond=0)
        update = PayloadBuilder(shop, True).customer(person)
        assert "email_marketing_consent" not in update and "tags" not in update
        _post(env, "customers/update", update)
        env.sandbox.add_order(person.id, [(shop.products[1].variants[0].id, 1)])
        assert process_pending(env.ctx()) == {"processed": 2, "applied": 2}
        customer = _customer(env, person.id)
        assert customer.first_name == "Renamed"
        assert (customer.marketing_consent, customer.marketing_consent_at, customer.tags) == (True, consent_at,
                                                                                               ["vip"])


def test_consent_withdrawal_cancels_scheduled_marketing_at_once(database_url: str, tmp_path: Path,
                                                                clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        store_id = env.install()
        shop = env.sandbox.store
        person, other = [c for c in shop.customers if c.marketing_state != "SUBSCRIBED"][:2]
        for someone in (person, other):
            env.sandbox.add_order(someone.id, [(shop.products[0].variants[0].id, 1)])
        clock.advance(minutes=5)
        for someone in (person, other):
            env.sandbox.update_customer_consent(someone.id, "SUBSCRIBED")
        subscribed_body = [d for d in env.sandbox.deliveries if d.topic == EMAIL_CONSENT_TOPIC][0].payload
        assert process_pending(env.ctx()) == {"processed": 6, "applied": 6}
        customer_id, other_id = _customer(env, person.id).id, _customer(env, other.id).id

        with env.app.extensions["aftercare.db"].session() as session:
            def planned(who: int, flow: str, key: str, marketing: bool, status: str = "scheduled") -> None:
                row = enqueue(session, store_id=store_id, flow=flow, channel="email", customer_id=who,
                              idempotency_key=f"{store_id}:{flow}:{key}", marketing=marketing,
                              scheduled_for=clock.now() + timedelta(days=5))
                row.status = status
            planned(customer_id, "replenishment", "mine", marketing=True)
            planned(customer_id, "replenishment", "mine-sent", marketing=True, status="sent")
            planned(customer_id, "review_request", "mine", marketing=False)
            planned(other_id, "replenishment", "other", marketing=True)

        withdrawn_at = clock.advance(days=1).replace(microsecond=0)
        env.sandbox.update_customer_consent(person.id, "UNSUBSCRIBED")
        withdrawal_body = _last_body(env, EMAIL_CONSENT_TOPIC)
        assert withdrawal_body["email_marketing_consent"]["state"] == "unsubscribed"
        assert process_pending(env.ctx()) == {"processed": 2, "applied": 2}

        def state() -> tuple:
            with env.app.extensions["aftercare.db"].session() as session:
                rows = session.execute(select(Message.idempotency_key, Message.status, Message.skip_reason)
                                       .order_by(Message.id)).all()
                people = [session.get(Customer, i) for i in (customer_id, other_id)]
                return ([(p.marketing_consent, p.marketing_consent_at) for p in people], [tuple(r) for r in rows])

        consents, messages = state()
        assert consents[0] == (False, withdrawn_at)
        assert consents[1][0] is True
        assert messages == [
            (f"{store_id}:replenishment:mine", "cancelled", "consent_withdrawn"),
            (f"{store_id}:replenishment:mine-sent", "sent", None),
            (f"{store_id}:review_request:mine", "scheduled", None),  # not marketing: needs no consent
            (f"{store_id}:replenishment:other", "scheduled", None),
        ]
        assert reason_words("consent_withdrawn") == "The customer withdrew consent to marketing emails in Shopify."
        before = state()

        # The older subscription, delivered again late (a retried delivery), and the withdrawal once more.
        _post(env, EMAIL_CONSENT_TOPIC, subscribed_body)
        _post(env, EMAIL_CONSENT_TOPIC, withdrawal_body)
        assert process_pending(env.ctx()) == {"processed": 2, "stale": 1, "unchanged": 1}
        assert state() == before


@pytest.mark.parametrize("state_name", ["PENDING", "NOT_SUBSCRIBED"])
def test_only_subscribed_counts_as_consent(database_url: str, tmp_path: Path, clock: FrozenClock,
                                           state_name: str) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        store_id = env.install()
        shop = env.sandbox.store
        person = next(c for c in shop.customers if c.marketing_state == "SUBSCRIBED")
        env.sandbox.add_order(person.id, [(shop.products[0].variants[0].id, 1)])
        clock.advance(minutes=5)
        env.sandbox.update_customer_consent(person.id, "SUBSCRIBED")
        process_pending(env.ctx())
        with env.app.extensions["aftercare.db"].session() as session:
            enqueue(session, store_id=store_id, flow="replenishment", channel="email", marketing=True,
                    customer_id=_customer(env, person.id).id, idempotency_key=f"{store_id}:replenishment:1",
                    scheduled_for=clock.now() + timedelta(days=3))
        changed_at = clock.advance(hours=2).replace(microsecond=0)
        env.sandbox.update_customer_consent(person.id, state_name)
        assert process_pending(env.ctx()) == {"processed": 2, "applied": 2}
        customer = _customer(env, person.id)
        assert (customer.marketing_consent, customer.marketing_consent_at) == (False, changed_at)
        with env.app.extensions["aftercare.db"].session() as session:
            assert session.execute(select(Message.status, Message.skip_reason)).one() == ("cancelled",
                                                                                         "consent_withdrawn")


def test_older_withdrawal_does_not_undo_newer_consent(database_url: str, tmp_path: Path,
                                                      clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        store_id = env.install()
        shop = env.sandbox.store
        person = next(c for c in shop.customers if c.marketing_state != "SUBSCRIBED")
        env.sandbox.add_order(person.id, [(shop.products[0].variants[0].id, 1)])
        process_pending(env.ctx())
        clock.advance(minutes=5)
        env.sandbox.update_customer_consent(person.id, "UNSUBSCRIBED")
        older_withdrawal = _last_body(env, EMAIL_CONSENT_TOPIC)
        subscribed_at = clock.advance(minutes=5).replace(microsecond=0)
        env.sandbox.update_customer_consent(person.id, "SUBSCRIBED")
        newer = _last_body(env, EMAIL_CONSENT_TOPIC)
        # Shopify delivers the newer state first and the older withdrawal late: drop the in-order copies.
        with env.app.extensions["aftercare.db"].session() as session:
            session.execute(delete(WebhookEvent).where(WebhookEvent.topic == EMAIL_CONSENT_TOPIC))
        _post(env, EMAIL_CONSENT_TOPIC, newer)
        assert process_pending(env.ctx()) == {"processed": 3, "applied": 3}  # with the two customers/update
        with env.app.extensions["aftercare.db"].session() as session:
            enqueue(session, store_id=store_id, flow="replenishment", channel="email", marketing=True,
                    customer_id=_customer(env, person.id).id, idempotency_key=f"{store_id}:replenishment:1",
                    scheduled_for=clock.now() + timedelta(days=3))
        _post(env, EMAIL_CONSENT_TOPIC, older_withdrawal)
        assert process_pending(env.ctx()) == {"processed": 1, "stale": 1}
        customer = _customer(env, person.id)
        assert (customer.marketing_consent, customer.marketing_consent_at) == (True, subscribed_at)
        with env.app.extensions["aftercare.db"].session() as session:
            assert session.execute(select(Message.status)).scalar_one() == "scheduled"



def test_consent_before_the_customer_is_known_creates_them(database_url: str, tmp_path: Path,
                                                           clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        env.install()
        shop = env.sandbox.store
        person = next(c for c in shop.customers if not shop.customer_orders(c.id))
        subscribed_at = clock.advance(minutes=5).replace(microsecond=0)
        env.sandbox.update_customer_consent(person.id, "SUBSCRIBED")  # consent first, then customers/update
        assert _topics(env) == [EMAIL_CONSENT_TOPIC, "customers/update"]
        assert process_pending(env.ctx()) == {"processed": 2, "applied": 2}
        customer = _customer(env, person.id)
        assert (customer.email, customer.first_name, customer.locale) == (person.email, person.first_name, None)
        assert (customer.marketing_consent, customer.marketing_consent_at) == (True, subscribed_at)


def test_uninstall_stops_sending_at_once(database_url: str, tmp_path: Path, clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        store_id = env.install()
        with env.app.extensions["aftercare.db"].session() as session:
            for number in range(3):
                enqueue(session, store_id=store_id, flow="review_request", channel="email",
                        idempotency_key=f"{store_id}:review_request:{number}",
                        scheduled_for=clock.now() + timedelta(days=number + 1))
            sent = enqueue(session, store_id=store_id, flow="review_request", channel="email",
                           idempotency_key=f"{store_id}:review_request:sent", scheduled_for=clock.now())
            sent.status = "sent"
        env.sandbox.revoke(TEST_SHOPIFY_API_KEY)
        with env.app.extensions["aftercare.db"].session() as session:
            store = session.get(Store, store_id)
            # Before any processing: the receiver already stopped the store.
            assert (store.status, store.uninstalled_at) == ("uninstalled", clock.now())
            assert store.access_token_enc is None and store.refresh_token_enc is None
            assert store.is_sending_allowed is False
        assert process_pending(env.ctx()) == {"processed": 1, "applied": 1}
        with env.app.extensions["aftercare.db"].session() as session:
            rows = session.execute(select(Message.idempotency_key, Message.status, Message.skip_reason)
                                   .order_by(Message.id)).all()
        assert [tuple(r) for r in rows] == [
            (f"{store_id}:review_request:0", "cancelled", "store_uninstalled"),
            (f"{store_id}:review_request:1", "cancelled", "store_uninstalled"),
            (f"{store_id}:review_request:2", "cancelled", "store_uninstalled"),
            (f"{store_id}:review_request:sent", "sent", None),
        ]


def test_bulk_finish_is_kept_for_the_sync(database_url: str, tmp_path: Path, clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        store_id = env.install()
        payload = {"admin_graphql_api_id": "gid://shopify/BulkOperation/9001", "completed_at": None,
                   "created_at": "2026-03-02T11:00:00Z", "error_code": None, "status": "completed",
                   "type": "query"}
        body = body_of(payload)
        answer = httpx.post(env.url + "/webhooks", content=body, timeout=10,
                            headers=signed_headers(body, "bulk_operations/finish"))
        assert answer.status_code == 200
        assert process_pending(env.ctx()) == {"processed": 1, "kept for sync": 1}
        with env.app.extensions["aftercare.db"].session() as session:
            event = bulk_finish_event(session, store_id, "gid://shopify/BulkOperation/9001")
            assert event is not None and event.payload == payload
            assert bulk_finish_event(session, store_id, "gid://shopify/BulkOperation/1") is None


def _failure_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("aftercare") and r.levelno >= logging.WARNING]


def test_a_poison_body_fails_once_with_its_reason_and_one_log_line(database_url: str, tmp_path: Path,
                                                                   clock: FrozenClock,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        store_id = env.install()
        url = env.url + "/webhooks"
        bad = body_of({"id": 1, "currency": "EUR"})  # an order without created_at / total_price
        headers = signed_headers(bad, "orders/create", webhook_id="poison-order")
        assert httpx.post(url, content=bad, headers=headers, timeout=10).status_code == 200
        shop = env.sandbox.store
        placed = env.sandbox.add_order(shop.customers[2].id, [(shop.products[0].variants[0].id, 1)])
        failed_at = clock.now()
        caplog.clear()
        with caplog.at_level(logging.INFO):
            assert process_pending(env.ctx()) == {"processed": 1, "applied": 1, "failed": 1}
            clock.advance(minutes=5)
            assert process_pending(env.ctx()) == {}  # never tried again
        lines = _failure_lines(caplog)
        assert [(r.getMessage(), r.exc_info, r.webhook_event_id) for r in lines] == [
            ("webhook body can never be applied; marked failed", None, lines[0].webhook_event_id)]
        reason = "permanent error (the body can never be applied): PayloadError: order without created_at"
        with env.app.extensions["aftercare.db"].session() as session:
            event = session.scalar(select(WebhookEvent).where(WebhookEvent.webhook_id == "poison-order"))
            assert (event.id, event.attempts, event.processed_at, event.failed_at, event.last_error) == (
                lines[0].webhook_event_id, 1, None, failed_at, reason)
            assert event.payload == {"id": 1, "currency": "EUR"}  # what came is kept for the operator
        _order(env, placed.id)

        # A body that is not JSON at all fails at the door: acknowledged, stored failed, one line.
        caplog.clear()
        junk = b"<html>oops</html>"
        with caplog.at_level(logging.INFO):
            answer = httpx.post(url, content=junk, timeout=10,
                                headers=signed_headers(junk, "customers/update", webhook_id="poison-html"))
            assert answer.status_code == 200 and answer.json() == {"status": "failed",
                                                                   "error": "body is not valid JSON"}
            assert process_pending(env.ctx()) == {}
        assert [r.getMessage() for r in _failure_lines(caplog)] == ["webhook body can never be applied; marked failed"]

        # Both are in the admin's failed-webhooks list, with their reasons; the settings page points to it.
        client = env.app.test_client()
        auth = {"Authorization": f"Bearer {env.session_token()}"}
        html = client.get("/admin/webhooks/failed", headers=auth).get_data(as_text=True)
        rows = re.findall(r"<s-table-row>\s*<s-table-cell class=\"nowrap\">.*?</s-table-row>", html, flags=re.S)
        assert len(rows) == 2
        assert "customers/update" in rows[0] and "permanent error (the body can never be applied): body is not " \
            "valid JSON" in rows[0] and "poison-html" in rows[0]
        assert "orders/create" in rows[1] and reason in rows[1] and "poison-order" in rows[1]
        settings = client.get("/admin/settings", headers=auth).get_data(as_text=True)
        assert "2 updates from Shopify could not be applied." in settings
        with env.app.extensions["aftercare.db"].session() as session:
            assert session.get(Store, store_id) is not None


def _break_customer_writes(engine, on: bool) -> None:
    """Make every new customer row fail as a busy database would (a serialization failure), or stop it."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            if on:
                conn.exec_driver_sql("CREATE FUNCTION busy() RETURNS trigger LANGUAGE plpgsql AS "
                                     "$$ BEGIN RAISE EXCEPTION 'database busy' USING ERRCODE = '40001'; END $$")
                conn.exec_driver_sql("CREATE TRIGGER busy BEFORE INSERT ON customer FOR EACH ROW "
                                     "EXECUTE FUNCTION busy()")
            else:
                conn.exec_driver_sql("DROP TRIGGER busy ON customer")
                conn.exec_driver_sql("DROP FUNCTION busy()")
        elif on:
            conn.exec_driver_sql("CREATE TRIGGER busy BEFORE INSERT ON customer "
                                 "BEGIN SELECT RAISE(ABORT, 'database busy'); END")
        else:
            conn.exec_driver_sql("DROP TRIGGER busy")


def test_a_transient_failure_is_retried_until_it_passes(database_url: str, tmp_path: Path, clock: FrozenClock,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        env.install()
        engine = env.app.extensions["aftercare.db"].engine
        person = env.sandbox.store.customers[3]
        _break_customer_writes(engine, True)
        try:
            env.sandbox.update_customer_consent(person.id, "SUBSCRIBED")  # consent + customers/update, both new
            caplog.clear()
            with caplog.at_level(logging.INFO):
                assert process_pending(env.ctx()) == {"failed": 2}
                assert process_pending(env.ctx()) == {"failed": 2}
        finally:
            _break_customer_writes(engine, False)
        lines = _failure_lines(caplog)
        assert [(r.getMessage(), r.attempts, r.exc_info is not None) for r in lines] == [
            ("webhook processing failed; will retry", 1, True), ("webhook processing failed; will retry", 1, True),
            ("webhook processing failed; will retry", 2, False), ("webhook processing failed; will retry", 2, False)]
        with env.app.extensions["aftercare.db"].session() as session:
            events = list(session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))
            assert [(e.attempts, e.failed_at, e.processed_at) for e in events] == [(2, None, None)] * 2
            assert all(e.last_error.startswith("transient error (attempt 2 of 8): ") and "database busy" in e.last_error
                       for e in events)
        assert process_pending(env.ctx()) == {"processed": 2, "applied": 2}
        with env.app.extensions["aftercare.db"].session() as session:
            customer = session.scalar(select(Customer).where(Customer.external_id == str(person.id)))
            assert customer is not None and customer.marketing_consent is True
            events = list(session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))
            assert [(e.attempts, e.failed_at, e.last_error, e.processed_at) for e in events] == [
                (3, None, None, clock.now())] * 2


def test_a_transient_failure_is_given_up_after_the_last_attempt(database_url: str, tmp_path: Path,
                                                                clock: FrozenClock,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        env.install()
        engine = env.app.extensions["aftercare.db"].engine
        body = body_of(PayloadBuilder(env.sandbox.store, True).customer(env.sandbox.store.customers[4]))
        assert httpx.post(env.url + "/webhooks", content=body, timeout=10,
                          headers=signed_headers(body, "customers/update")).status_code == 200
        _break_customer_writes(engine, True)
        try:
            caplog.clear()
            with caplog.at_level(logging.INFO):
                for _ in range(MAX_ATTEMPTS):
                    assert process_pending(env.ctx()) == {"failed": 1}
                assert process_pending(env.ctx()) == {}
        finally:
            _break_customer_writes(engine, False)
        assert process_pending(env.ctx()) == {}  # given up: not tried again once the database is fine
        lines = _failure_lines(caplog)
        assert len(lines) == MAX_ATTEMPTS
        assert (lines[-1].getMessage(), lines[-1].levelno) == (f"webhook processing failed {MAX_ATTEMPTS} times; "
                                                               "given up", logging.ERROR)
        with env.app.extensions["aftercare.db"].session() as session:
            event = session.scalar(select(WebhookEvent))
            assert (event.attempts, event.failed_at, event.processed_at) == (MAX_ATTEMPTS, clock.now(), None)
            assert event.last_error.startswith(f"transient error, given up after {MAX_ATTEMPTS} attempts: ")


def test_late_uninstall_from_before_a_reinstall_is_ignored(database_url: str, tmp_path: Path,
                                                           clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        store_id = env.install()
        body = body_of(PayloadBuilder(env.sandbox.store, True).shop_resource())
        sent_before_install = clock.now() - timedelta(hours=1)
        answer = httpx.post(env.url + "/webhooks", content=body, timeout=10,
                            headers=signed_headers(body, "app/uninstalled", triggered_at=sent_before_install))
        assert answer.status_code == 200
        assert process_pending(env.ctx()) == {"processed": 1, "reinstalled since": 1}
        with env.app.extensions["aftercare.db"].session() as session:
            store = session.get(Store, store_id)
            assert (store.status, store.uninstalled_at) == ("active", None)
            assert store.access_token_enc is not None
