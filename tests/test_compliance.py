"""Shopify's compliance webhooks from the sandbox: export, customer redaction, shop redaction."""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from base.clock import FrozenClock
from jobs.schedule import run_named
from jobs.webhooks import process_pending
from plugin.messaging.outbox import enqueue
from plugin.models import (
    Base,
    ComplianceRequest,
    Customer,
    Message,
    Order,
    Parcel,
    ParcelEvent,
    Review,
    Store,
    Suppression,
    SurveyResponse,
    Ticket,
    TicketNote,
    WebhookEvent,
)
from tests.shopify_app_env import ShopifyEnv, shopify_env

FIRST_NAME = "Zephyrine"
EMAIL = "Zephyrine.Quill@example.org"
MARKERS = ("zephyrine", "quill")


def _rows_mentioning(engine: Engine, markers: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """Return (table, column, value) for every stored value that contains one of the markers."""
    found = []
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(table.select()).mappings():
                for column, value in row.items():
                    if value is None or isinstance(value, bytes | memoryview):
                        continue
                    text = json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)
                    if any(m in text.lower() for m in markers):
                        found.append((table.name, column, text[:80]))
    return found


def _seed_customer(env: ShopifyEnv) -> tuple[int, int, int]:
    """Give a sandbox customer recognisable personal data, place orders, and write what flows would write.

    Returns (store id, the customer's sandbox id, another customer's sandbox id).
    """
    store_id = env.install()
    shop = env.sandbox.store
    person, other = shop.customers[3], shop.customers[4]
    person.first_name, person.email, person.tags = FIRST_NAME, EMAIL, ("vip-zephyrine",)
    variant = shop.products[0].variants[0]
    first = env.sandbox.add_order(person.id, [(variant.id, 1)])
    env.sandbox.add_order(person.id, [(variant.id, 3)])
    env.sandbox.add_order(other.id, [(variant.id, 2)])
    assert process_pending(env.ctx()) == {"processed": 3, "applied": 3}
    now = env.clock.now()
    with env.app.extensions["aftercare.db"].session() as session:
        customer = session.scalar(select(Customer).where(Customer.external_id == str(person.id)))
        customer.birthday = date(1990, 5, 17)
        # Tags come by the sync (2025-01 webhook customer payloads carry none); stored as it would store them.
        customer.tags = list(person.tags)
        order_id = session.scalar(select(Order.id).where(Order.external_id == str(first.id)))
        review = Review(store_id=store_id, source="judgeme", external_id="r-1", customer_id=customer.id,
                        order_id=order_id, rating=2, title="Zephyrine is disappointed", body="Quill here: broken",
                        reviewer_name="Zephyrine Q.", created_at_remote=now, reply_body="Sorry Zephyrine!")
        survey = SurveyResponse(store_id=store_id, order_id=order_id, customer_id=customer.id, kind="nps", score=4,
                                comment="write me at zephyrine.quill@example.org", answered_at=now)
        session.add_all([review, survey])
        session.flush()
        ticket = Ticket(store_id=store_id, customer_id=customer.id, order_id=order_id, review_id=review.id,
                        source="review", severity=2, subject="Broken item for Zephyrine", opened_at=now,
                        sla_due_at=now + timedelta(hours=24))
        session.add(ticket)
        session.flush()
        session.add(TicketNote(ticket_id=ticket.id, author="merchant", body="Called Zephyrine, sent new one"))
        enqueue(session, store_id=store_id, flow="review_request", channel="email", idempotency_key="k-sent",
                scheduled_for=now, customer_id=customer.id, order_id=order_id, to_address=EMAIL.lower(),
                payload={"first_name": FIRST_NAME}).status = "sent"
        enqueue(session, store_id=store_id, flow="replenishment", channel="email", idempotency_key="k-next",
                scheduled_for=now + timedelta(days=3), customer_id=customer.id, to_address=EMAIL.lower(),
                payload={"first_name": FIRST_NAME})
        session.add(Suppression(store_id=store_id, email=EMAIL.lower(), reason="unsubscribe", created_at=now))
    return store_id, person.id, other.id


def _ship_with_a_personal_event(env: ShopifyEnv, person_id: int) -> str:
    """Ship the customer's first order and have the carrier report a delivery naming them; return its tracking."""
    first = env.sandbox.store.customer_orders(person_id)[0]
    fulfillment = env.sandbox.fulfil_order(first.id)
    env.sandbox.add_fulfillment_event(first.id, "DELIVERED", city="Quillbury", country="United Kingdom",
                                      message="Left with Zephyrine at the side door")
    # fulfillments/create, orders/fulfilled, orders/updated; fulfillment_events/create, fulfillments/update,
    # orders/updated; the orders/updated right after orders/fulfilled carries the same order (unchanged).
    assert process_pending(env.ctx()) == {"processed": 6, "applied": 5, "unchanged": 1}
    return fulfillment.tracking_number


def test_data_request_exports_everything_we_hold(database_url: str, tmp_path: Path, clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        store_id, person_id, _ = _seed_customer(env)
        tracking = _ship_with_a_personal_event(env, person_id)
        env.sandbox.request_customer_data(person_id)
        assert process_pending(env.ctx()) == {"processed": 1, "exported": 1}
        with env.app.extensions["aftercare.db"].session() as session:
            request = session.scalar(select(ComplianceRequest))
            assert (request.kind, request.store_id, request.customer_external_id) == (
                "customers/data_request", store_id, str(person_id))
            assert request.completed_at == clock.now()
            export: dict[str, Any] = request.result
        assert export["customer"]["email"] == EMAIL and export["customer"]["first_name"] == FIRST_NAME
        assert export["customer"]["birthday"] == "1990-05-17"
        assert export["customer"]["tags"] == ["vip-zephyrine"]
        orders = env.sandbox.store.customer_orders(person_id)
        assert [o["external_id"] for o in export["orders"]] == [str(o.id) for o in orders]
        assert [line["quantity"] for o in export["orders"] for line in o["lines"]] == [1, 3]
        [parcel] = export["orders"][0]["parcels"]
        assert (parcel["tracking_company"], parcel["tracking_number"], parcel["status"]) == ("UPS", tracking,
                                                                                              "DELIVERED")
        assert [(e["status"], e["city"], e["country"], e["message"]) for e in parcel["events"]] == [
            ("DELIVERED", "Quillbury", "United Kingdom", "Left with Zephyrine at the side door")]
        assert export["orders"][1]["parcels"] == []
        assert sorted(m["flow"] for m in export["messages"]) == ["replenishment", "review_request"]
        assert [(r["rating"], r["body"], r["reviewer_name"]) for r in export["reviews"]] == [
            (2, "Quill here: broken", "Zephyrine Q.")]
        assert [(s["kind"], s["score"]) for s in export["survey_responses"]] == [("nps", 4)]
        assert [t["subject"] for t in export["tickets"]] == ["Broken item for Zephyrine"]
        assert export["tickets"][0]["notes"][0]["body"] == "Called Zephyrine, sent new one"
        assert [s["reason"] for s in export["suppressions"]] == ["unsubscribe"]


def test_customer_redaction_leaves_no_personal_data(database_url: str, tmp_path: Path, clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        store_id, person_id, other_id = _seed_customer(env)
        engine = env.app.extensions["aftercare.db"].engine
        tracking = _ship_with_a_personal_event(env, person_id)
        env.sandbox.request_customer_data(person_id)  # an earlier export holds the data too
        process_pending(env.ctx())
        assert {t for t, _, _ in _rows_mentioning(engine, MARKERS)} >= {
            "customer", "review", "survey_response", "ticket", "ticket_note", "message", "suppression",
            "compliance_request", "parcel_event"}
        assert _rows_mentioning(engine, (tracking.lower(),)) != []

        env.sandbox.redact_customer(person_id)
        assert process_pending(env.ctx()) == {"processed": 1, "redacted": 1}
        assert _rows_mentioning(engine, MARKERS) == []
        assert _rows_mentioning(engine, (tracking.lower(),)) == []

        with env.app.extensions["aftercare.db"].session() as session:
            customer = session.scalar(select(Customer).where(Customer.external_id == str(person_id)))
            assert customer.redacted_at == clock.now()
            assert (customer.email, customer.first_name, customer.birthday, customer.tags) == (None, None, None, [])
            # Anonymous facts stay: orders and their totals, the rating, the score.
            totals = session.scalars(select(Order.total_price).where(Order.customer_id == customer.id)
                                     .order_by(Order.id)).all()
            assert len(totals) == 2 and all(t > 0 for t in totals)
            assert session.scalar(select(Review.rating)) == 2
            assert session.scalar(select(SurveyResponse.score)) == 4
            [suppression] = session.scalars(select(Suppression).where(Suppression.store_id == store_id)).all()
            digest = hashlib.sha256(EMAIL.lower().encode()).hexdigest()
            assert (suppression.email, suppression.reason) == (digest, "redact")
            statuses = dict(session.execute(select(Message.idempotency_key, Message.status)).all())
            assert statuses == {"k-sent": "sent", "k-next": "cancelled"}
            redaction = session.scalar(select(ComplianceRequest).where(ComplianceRequest.kind == "customers/redact"))
            assert redaction.result["customer_found"] is True and redaction.result["orders"] == 2
            # Where the parcel went and who signed go; the carrier, the milestones and their times stay.
            assert redaction.result["parcel_events"] == 1
            assert session.execute(select(Parcel.tracking_company, Parcel.tracking_number, Parcel.tracking_url,
                                          Parcel.status)).all() == [("UPS", None, None, "DELIVERED")]
            [event] = session.execute(select(ParcelEvent.status, ParcelEvent.happened_at, ParcelEvent.city,
                                             ParcelEvent.country, ParcelEvent.message)).all()
            assert (event.status, event.city, event.country, event.message) == ("DELIVERED", None, None, None)
            assert event.happened_at is not None
            # The other customer is untouched.
            other = session.scalar(select(Customer).where(Customer.external_id == str(other_id)))
            assert other.email is not None and other.redacted_at is None

        # Shopify still holds the data and sends an update later: it must not come back.
        env.sandbox.update_customer_consent(person_id, "SUBSCRIBED")
        env.sandbox.add_order(person_id, [(env.sandbox.store.products[1].variants[0].id, 1)])
        counts = process_pending(env.ctx())
        assert counts["processed"] == 3 and "failed" not in counts  # consent, customers/update, orders/create
        assert counts["customer redacted"] == 1
        assert _rows_mentioning(engine, MARKERS) == []

        # The carrier reports on their order after the redaction: stored as sent, then erased by the daily sweep.
        first = env.sandbox.store.customer_orders(person_id)[0]
        env.sandbox.add_fulfillment_event(first.id, "DELIVERED", city="Quillbury", message="Signed: Zephyrine")
        process_pending(env.ctx())
        assert {t for t, _, _ in _rows_mentioning(engine, MARKERS)} == {"parcel_event"}
        def sweep() -> dict[str, int]:
            return run_named(env.ctx(), "redaction_sweep", store_id).results[store_id]

        # The two orders of before and the one Shopify sent.
        assert sweep() == {"orders": 3, "parcel_events": 1, "tickets": 0, "messages": 0}
        assert _rows_mentioning(engine, MARKERS) == []
        assert sweep() == {"orders": 3, "parcel_events": 0, "tickets": 0, "messages": 0}


def test_shop_redaction_deletes_the_store(database_url: str, tmp_path: Path, clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        store_id, person_id, _ = _seed_customer(env)
        env.sandbox.request_customer_data(person_id)
        process_pending(env.ctx())
        env.sandbox.redact_shop()
        assert process_pending(env.ctx()) == {"processed": 1, "redacted": 1}
        engine = env.app.extensions["aftercare.db"].engine
        with env.app.extensions["aftercare.db"].session() as session:
            for table in Base.metadata.sorted_tables:
                count = session.scalar(select(func.count()).select_from(table))
                if table.name == "compliance_request":
                    assert count == 2
                elif table.name == "webhook_event":
                    assert count == 1  # the shop/redact delivery itself, without body, for replay detection
                else:
                    assert count == 0, table.name
            records = session.scalars(select(ComplianceRequest).order_by(ComplianceRequest.id)).all()
            assert [(r.kind, r.store_id) for r in records] == [("customers/data_request", None),
                                                               ("shop/redact", None)]
            assert records[0].result is None and records[1].result == {"store_deleted": True}
            event = session.scalar(select(WebhookEvent))
            assert (event.topic, event.store_id, event.payload) == ("shop/redact", None, None)
            assert session.get(Store, store_id) is None
        assert _rows_mentioning(engine, MARKERS + (env.sandbox.store.customers[4].email.lower(),)) == []
        # A replay of the same delivery is recognised and changes nothing.
        delivery = env.sandbox.deliveries[-1]
        env.sandbox.webhooks.send(delivery)
        assert process_pending(env.ctx()) == {}
