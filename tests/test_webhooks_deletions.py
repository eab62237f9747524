"""Deletions in Shopify reach our database by webhook: the sandbox deletes over its HTTP control API and sends
``orders/delete`` / ``products/delete`` / ``customers/delete`` signed like Shopify to our app over HTTP; the
webhook job applies them."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from base.clock import FrozenClock
from jobs.webhooks import process_pending
from plugin.messaging.outbox import enqueue
from plugin.models import (
    Customer,
    DeletedRecord,
    Message,
    Order,
    OrderLine,
    Product,
    Suppression,
    Variant,
    WebhookEvent,
)
from sandbox.shopify.payloads import PayloadBuilder
from tests.shopify_app_env import ShopifyEnv, body_of, shopify_env, signed_headers


def _control(env: ShopifyEnv, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    """Call the sandbox's control API over HTTP, as a test or the demo drives Shopify."""
    return httpx.post(f"{env.sandbox.url}/__sandbox/{path}", json=body or {}, timeout=10)


def _message(env: ShopifyEnv, store_id: int, key: str, status: str, **refs: Any) -> int:
    with env.app.extensions["aftercare.db"].session() as session:
        row = enqueue(session, store_id=store_id, flow=refs.pop("flow", "review_request"), channel="email",
                      idempotency_key=f"{store_id}:{key}", scheduled_for=env.clock.now() + timedelta(days=2),
                      to_address=refs.pop("to_address", "buyer@example.com"), payload={"note": "x"}, **refs)
        row.subject = "Hello"
        row.status = status
        if status == "sent":
            row.sent_at = env.clock.now()
        return row.id


def _messages(env: ShopifyEnv) -> dict[int, tuple[Any, ...]]:
    with env.app.extensions["aftercare.db"].session() as session:
        return {m.id: (m.status, m.skip_reason, m.order_id, m.product_id, m.customer_id, m.to_address)
                for m in session.scalars(select(Message))}


def _count(env: ShopifyEnv, model: Any, *where: Any) -> int:
    with env.app.extensions["aftercare.db"].session() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)))


def test_deleted_order_goes_with_its_lines_and_its_scheduled_messages(database_url: str, tmp_path: Path,
                                                                      clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        store_id = env.install()
        shop = env.sandbox.store
        person = shop.customers[2]
        lines = [(shop.products[0].variants[0].id, 2), (shop.products[1].variants[0].id, 1)]
        doomed = env.sandbox.add_order(person.id, lines)
        kept = env.sandbox.add_order(person.id, lines)
        assert process_pending(env.ctx()) == {"processed": 2, "applied": 2}
        with env.app.extensions["aftercare.db"].session() as session:
            order_id, kept_id = (session.scalar(select(Order.id).where(Order.external_id == str(o.id)))
                                 for o in (doomed, kept))
            customer_id = session.scalar(select(Customer.id).where(Customer.external_id == str(person.id)))
        scheduled = _message(env, store_id, "rr:doomed", "scheduled", order_id=order_id, customer_id=customer_id)
        sent = _message(env, store_id, "rr:doomed:sent", "sent", order_id=order_id, customer_id=customer_id)
        other = _message(env, store_id, "rr:kept", "scheduled", order_id=kept_id, customer_id=customer_id)

        # Shopify only deletes cancelled or archived orders.
        assert _control(env, f"orders/{doomed.id}/delete").status_code == 422
        assert _control(env, f"orders/{doomed.id}/cancel").status_code == 200
        assert _control(env, f"orders/{doomed.id}/delete").status_code == 200
        [delivery] = [d for d in env.sandbox.deliveries if d.topic == "orders/delete"]
        assert delivery.delivered and delivery.payload == {"id": doomed.id}
        assert doomed.id not in shop.orders_by_id

        counts = process_pending(env.ctx())
        assert counts["deleted"] == 1 and "failed" not in counts
        assert _count(env, Order, Order.id == order_id) == 0
        assert _count(env, OrderLine, OrderLine.order_id == order_id) == 0
        assert _count(env, OrderLine, OrderLine.order_id == kept_id) == 2
        messages = _messages(env)
        assert messages[scheduled][:3] == ("cancelled", "order_deleted", None)
        assert messages[sent][:3] == ("sent", None, None)  # the log keeps what went out, detached
        assert messages[other][:3] == ("scheduled", None, kept_id)


def test_deleted_product_goes_with_its_variants_and_lines_keep_their_history(database_url: str, tmp_path: Path,
                                                                             clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        store_id = env.install()
        shop = env.sandbox.store
        product = next(p for p in shop.products if len(p.variants) >= 2)
        survivor = next(p for p in shop.products if p.id != product.id)
        person = shop.customers[3]
        placed = env.sandbox.add_order(person.id, [(product.variants[0].id, 3), (survivor.variants[0].id, 1)])
        process_pending(env.ctx())
        with env.app.extensions["aftercare.db"].session() as session:
            product_id = session.scalar(select(Product.id).where(Product.external_id == str(product.id)))
            variant_ids = set(session.scalars(select(Variant.id).where(Variant.product_id == product_id)))
            customer_id = session.scalar(select(Customer.id).where(Customer.external_id == str(person.id)))
        assert product_id is not None and variant_ids
        reminder = _message(env, store_id, "rep:doomed", "scheduled", flow="replenishment", marketing=True,
                            product_id=product_id, customer_id=customer_id)
        reminded = _message(env, store_id, "rep:doomed:sent", "sent", flow="replenishment", marketing=True,
                            product_id=product_id, customer_id=customer_id)

        assert _control(env, f"products/{product.id}/delete").status_code == 200
        assert _control(env, f"products/{product.id}/delete").status_code == 404
        [delivery] = [d for d in env.sandbox.deliveries if d.topic == "products/delete"]
        assert delivery.payload == {"id": product.id}

        counts = process_pending(env.ctx())
        assert counts["deleted"] == 1 and "failed" not in counts
        assert _count(env, Product, Product.id == product_id) == 0
        assert _count(env, Variant, Variant.id.in_(variant_ids)) == 0
        messages = _messages(env)
        assert messages[reminder][:4] == ("cancelled", "product_deleted", None, None)
        assert messages[reminded][:4] == ("sent", None, None, None)

        # Lines keep quantity, price, title and SKU; a later order update (now without the product) leaves
        # them detached and does not recreate the product.
        env.sandbox.refund_order(placed.id, amount_cents=100)
        assert "failed" not in process_pending(env.ctx())
        with env.app.extensions["aftercare.db"].session() as session:
            rows = session.execute(select(OrderLine.external_id, OrderLine.product_id, OrderLine.variant_id,
                                          OrderLine.quantity, OrderLine.price, OrderLine.sku)
                                   .join(Order).where(Order.external_id == str(placed.id))).all()
            gone, stays = placed.line_items
            survivor_id = session.scalar(select(Product.id).where(Product.external_id == str(survivor.id)))
            survivor_variant = session.scalar(select(Variant.id).where(Variant.external_id == str(stays.variant_id)))
        assert {tuple(r) for r in rows} == {
            (str(gone.id), None, None, 3, Decimal(gone.unit_price_cents) / 100, gone.sku),
            (str(stays.id), survivor_id, survivor_variant, 1, Decimal(stays.unit_price_cents) / 100, stays.sku)}
        assert _count(env, Product, Product.external_id == str(product.id)) == 0


def test_deleted_customer_is_erased_and_stays_erased(database_url: str, tmp_path: Path, clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        store_id = env.install()
        shop = env.sandbox.store
        person = next(c for c in shop.customers if not shop.customer_orders(c.id))
        buyer = next(c for c in shop.customers if shop.customer_orders(c.id))
        env.sandbox.update_customer_consent(person.id, "SUBSCRIBED")  # consent topic, then customers/update
        stale_update = body_of(PayloadBuilder(shop, True).customer(person))
        assert process_pending(env.ctx()) == {"processed": 2, "applied": 2}
        with env.app.extensions["aftercare.db"].session() as session:
            customer_id = session.scalar(select(Customer.id).where(Customer.external_id == str(person.id)))
            session.add(Suppression(store_id=store_id, email=person.email.lower(), reason="unsubscribe",
                                    created_at=clock.now()))
        waiting = _message(env, store_id, "rep:person", "scheduled", flow="replenishment", marketing=True,
                           customer_id=customer_id, to_address=person.email)
        sent = _message(env, store_id, "rep:person:sent", "sent", flow="replenishment", marketing=True,
                        customer_id=customer_id, to_address=person.email)

        # Shopify refuses to delete a customer who has orders.
        assert _control(env, f"customers/{buyer.id}/delete").status_code == 422
        deleted_at = clock.advance(minutes=5)
        assert _control(env, f"customers/{person.id}/delete").status_code == 200
        [delivery] = [d for d in env.sandbox.deliveries if d.topic == "customers/delete"]
        assert delivery.payload["id"] == person.id and "email" not in delivery.payload

        assert process_pending(env.ctx()) == {"processed": 1, "deleted": 1}
        with env.app.extensions["aftercare.db"].session() as session:
            customer = session.get(Customer, customer_id)
            assert (customer.email, customer.first_name, customer.locale, customer.country, customer.time_zone,
                    customer.marketing_consent, customer.tags) == (None, None, None, None, None, False, [])
            assert customer.redacted_at == deleted_at
            # The unsubscribe keeps holding; deleting a record adds no suppression of its own.
            assert [(s.email, s.reason) for s in session.scalars(select(Suppression))] == [
                (person.email.lower(), "unsubscribe")]
            sent_row = session.get(Message, sent)
            assert (sent_row.subject, sent_row.payload) == (None, {})
        messages = _messages(env)
        assert messages[waiting] == ("cancelled", "customer_deleted", None, None, customer_id, None)
        assert messages[sent] == ("sent", None, None, None, customer_id, None)

        # A late retry of an older customers/update cannot bring the data back.
        answer = httpx.post(env.url + "/webhooks", content=stale_update, timeout=10,
                            headers=signed_headers(stale_update, "customers/update"))
        assert answer.status_code == 200
        assert process_pending(env.ctx()) == {"processed": 1, "unchanged": 1}
        with env.app.extensions["aftercare.db"].session() as session:
            assert session.get(Customer, customer_id).email is None


def test_replayed_delete_is_stored_once_and_a_second_one_changes_nothing(database_url: str, tmp_path: Path,
                                                                         clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        env.install()
        shop = env.sandbox.store
        placed = env.sandbox.add_order(shop.customers[4].id, [(shop.products[0].variants[0].id, 1)])
        env.sandbox.cancel_order(placed.id)
        process_pending(env.ctx())
        env.sandbox.delete_order(placed.id)
        [delivery] = [d for d in env.sandbox.deliveries if d.topic == "orders/delete"]
        # Shopify retries with the same webhook id: acknowledged, stored once.
        for _ in range(2):
            answer = httpx.post(delivery.url, content=delivery.body, headers=delivery.headers, timeout=10)
            assert (answer.status_code, answer.json()) == (200, {"status": "duplicate"})
        with env.app.extensions["aftercare.db"].session() as session:
            assert session.scalar(select(func.count()).select_from(WebhookEvent)
                                  .where(WebhookEvent.topic == "orders/delete")) == 1
        assert process_pending(env.ctx()) == {"processed": 1, "deleted": 1}
        # The same deletion again under a new webhook and event id: nothing left to delete, nothing fails.
        again = body_of({"id": placed.id})
        httpx.post(env.url + "/webhooks", content=again, headers=signed_headers(again, "orders/delete"), timeout=10)
        assert process_pending(env.ctx()) == {"processed": 1, "order unknown": 1}
        assert _count(env, Order, Order.external_id == str(placed.id)) == 0


def test_a_late_retried_update_never_brings_a_deleted_order_back(database_url: str, tmp_path: Path,
                                                                  clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        env.install()
        shop = env.sandbox.store
        placed = env.sandbox.add_order(shop.customers[5].id, [(shop.products[0].variants[0].id, 1)])
        env.sandbox.cancel_order(placed.id)
        # The orders/updated of the cancellation: Shopify's first delivery of it "failed"; it retries later.
        [late] = [d for d in env.sandbox.deliveries if d.topic == "orders/updated"][-1:]
        env.sandbox.delete_order(placed.id)
        with env.app.extensions["aftercare.db"].session() as session:
            session.execute(WebhookEvent.__table__.delete().where(WebhookEvent.topic == "orders/updated"))
        counts = process_pending(env.ctx())
        assert counts["deleted"] == 1 and "failed" not in counts
        assert _count(env, Order, Order.external_id == str(placed.id)) == 0
        answer = httpx.post(late.url, content=late.body, headers=late.headers, timeout=10)
        assert answer.status_code == 200 and answer.json() != {"status": "duplicate"}
        assert process_pending(env.ctx()) == {"processed": 1, "deleted in Shopify": 1}
        assert _count(env, Order, Order.external_id == str(placed.id)) == 0
        with env.app.extensions["aftercare.db"].session() as session:
            assert session.scalar(select(func.count()).select_from(DeletedRecord)) == 1
