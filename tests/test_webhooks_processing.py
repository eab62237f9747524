"""Webhooks from the Shopify sandbox (real HTTP, signed like Shopify) stored by our app and applied by the job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
from sqlalchemy import select

from jobs.webhooks import process_pending
from plugin.clock import FrozenClock
from plugin.messaging.outbox import enqueue
from plugin.models import Customer, Message, Order, OrderLine, Store, WebhookEvent
from plugin.webhooks.processing import bulk_finish_event
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
        assert _topics(env)[1:] == ["orders/fulfilled", "orders/updated", "fulfillments/update", "orders/updated"]
        counts = process_pending(env.ctx())
        assert counts["processed"] == 4 and "failed" not in counts
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


def test_customer_update_keeps_what_rest_bodies_lack(database_url: str, tmp_path: Path,
                                                     clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        env.install()
        shop = env.sandbox.store
        person = next(c for c in shop.customers if c.marketing_state != "SUBSCRIBED")
        env.sandbox.add_order(person.id, [(shop.products[0].variants[0].id, 1)])
        process_pending(env.ctx())
        consent_at = clock.advance(minutes=30).replace(microsecond=0)
        env.sandbox.update_customer_consent(person.id, "SUBSCRIBED")
        assert process_pending(env.ctx()) == {"processed": 1, "applied": 1}
        with env.app.extensions["aftercare.db"].session() as session:
            customer = session.scalar(select(Customer).where(Customer.external_id == str(person.id)))
            assert customer.marketing_consent is True
            assert customer.marketing_consent_at == consent_at
            assert customer.locale == person.locale  # not in the REST customer body: kept, not erased


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
            (f"{store_id}:review_request:0", "cancelled", "store uninstalled"),
            (f"{store_id}:review_request:1", "cancelled", "store uninstalled"),
            (f"{store_id}:review_request:2", "cancelled", "store uninstalled"),
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


def test_a_bad_event_fails_alone_and_is_retried(database_url: str, tmp_path: Path, clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        env.install()
        url = env.url + "/webhooks"
        bad = body_of({"id": 1, "currency": "EUR"})  # an order without created_at / total_price
        assert httpx.post(url, content=bad, headers=signed_headers(bad, "orders/create"), timeout=10).status_code == 200
        shop = env.sandbox.store
        placed = env.sandbox.add_order(shop.customers[2].id, [(shop.products[0].variants[0].id, 1)])
        assert process_pending(env.ctx()) == {"processed": 1, "applied": 1, "failed": 1}
        assert process_pending(env.ctx()) == {"failed": 1}
        with env.app.extensions["aftercare.db"].session() as session:
            failed = session.scalar(select(WebhookEvent).where(WebhookEvent.processed_at.is_(None)))
            assert failed.attempts == 2
            assert failed.last_error.startswith("PayloadError: order without created_at")
            assert failed.payload == {"id": 1, "currency": "EUR"}  # kept for the next attempt
        _order(env, placed.id)


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
