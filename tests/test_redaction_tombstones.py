"""A customers/redact that comes before we store the customer is not undone by any later path.

Paths: the bulk backfill (customers and the customers inside orders), an incremental sync that reaches a
customer created after the last one, customers/update and e-mail consent webhooks, orders webhooks carrying
the customer, and a redaction Shopify sent before the shop installed us. Sandbox over real HTTP throughout.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import requests
from sqlalchemy import Engine, func, select

from base.clock import FrozenClock
from jobs.webhooks import process_pending
from plugin.models import Base, ComplianceRequest, Customer, Order
from plugin.sync.store_run import sync_store
from sandbox.shopify.models import Customer as SandboxCustomer
from tests.shopify_app_env import TIMEOUT, ShopifyEnv, body_of, shopify_env, signed_headers

ERASED = (None, None, None, None, None, None, False, None, [])


def _stored(env: ShopifyEnv, external_id: int) -> tuple:
    """Return the customer row's personal fields, consent and tags."""
    with env.app.extensions["aftercare.db"].session() as session:
        row = session.execute(select(Customer.email, Customer.first_name, Customer.locale, Customer.country,
                                     Customer.time_zone, Customer.birthday, Customer.marketing_consent,
                                     Customer.marketing_consent_at, Customer.tags)
                              .where(Customer.external_id == str(external_id))).one()
    return tuple(row)


def _redacted_at(env: ShopifyEnv, external_id: int):
    with env.app.extensions["aftercare.db"].session() as session:
        return session.scalar(select(Customer.redacted_at).where(Customer.external_id == str(external_id)))


def _mentions(engine: Engine, needles: tuple[str, ...]) -> list[tuple[str, str]]:
    """Return (table, column) of every stored value containing one of the needles (lower-cased)."""
    found = []
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(table.select()).mappings():
                for column, value in row.items():
                    if value is None or isinstance(value, bytes | memoryview):
                        continue
                    text = json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)
                    if any(n in text.lower() for n in needles):
                        found.append((table.name, column))
    return found


def _needles(person: SandboxCustomer) -> tuple[str, ...]:
    return (person.email.lower(), f"{person.first_name} {person.last_name}".lower())


def _person_with_orders(env: ShopifyEnv) -> SandboxCustomer:
    """Return a seeded customer with at least one order and a subscribed consent (so consent could come back)."""
    store = env.sandbox.store
    person = next(c for c in store.customers if store.customer_orders(c.id) and c.marketing_state == "SUBSCRIBED")
    return person


def test_redaction_before_the_first_backfill_is_not_undone(database_url: str, tmp_path: Path,
                                                           clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        store_id = env.install()
        person = _person_with_orders(env)
        env.sandbox.redact_customer(person.id)
        assert process_pending(env.ctx()) == {"processed": 1, "redacted": 1}
        redacted_at = clock.now()

        counts = sync_store(env.ctx(), store_id, full=True)
        assert counts["status"] == "ok"
        assert _stored(env, person.id) == ERASED
        assert _redacted_at(env, person.id) == redacted_at
        with env.app.extensions["aftercare.db"].session() as session:
            # Everyone else is stored, and the person's orders are kept (anonymous) on the tombstone row.
            assert session.scalar(select(func.count()).select_from(Customer)) == len(env.sandbox.store.customers)
            tombstone = session.scalar(select(Customer.id).where(Customer.external_id == str(person.id)))
            assert session.scalar(select(func.count()).select_from(Order).where(Order.customer_id == tombstone)) \
                == len(env.sandbox.store.customer_orders(person.id))
            request = session.scalar(select(ComplianceRequest).where(ComplianceRequest.kind == "customers/redact"))
            assert request.result["customer_found"] is False
        engine = env.app.extensions["aftercare.db"].engine
        assert _mentions(engine, _needles(person)) == []

        # Shopify still holds the customer: a consent change, customers/update and orders/create follow.
        env.sandbox.update_customer_consent(person.id, "SUBSCRIBED")
        env.sandbox.add_order(person.id, [(env.sandbox.store.products[0].variants[0].id, 1)])
        assert process_pending(env.ctx()) == {"processed": 6, "kept for sync": 3, "customer redacted": 1,
                                              "unchanged": 1, "applied": 1}
        clock.advance(hours=1)
        assert sync_store(env.ctx(), store_id, full=True)["status"] == "ok"
        assert _stored(env, person.id) == ERASED
        assert _mentions(engine, _needles(person)) == []


def test_redaction_before_the_sync_reaches_a_new_customer(database_url: str, tmp_path: Path,
                                                          clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        store_id = env.install()
        assert sync_store(env.ctx(), store_id, full=True)["status"] == "ok"
        assert process_pending(env.ctx()) == {"processed": 3, "kept for sync": 3}  # bulk_operations/finish
        clock.advance(hours=2)
        store = env.sandbox.store
        # A customer who signs up after the backfill and asks to be forgotten before the next sync.
        now = clock.now().replace(microsecond=0)
        person = dataclasses.replace(store.customers[0], id=store.new_id(), email="late.signup@example.net",
                                     first_name="Ottilie", last_name="Vantongeren", locale="nl",
                                     time_zone="Europe/Amsterdam", country="NL", marketing_state="SUBSCRIBED",
                                     consent_updated_at=now, created_at=now, updated_at=now)
        store.customers.append(person)
        store.reindex()
        env.sandbox.redact_customer(person.id)
        assert process_pending(env.ctx()) == {"processed": 1, "redacted": 1}
        assert _stored(env, person.id) == ERASED

        clock.advance(hours=1)
        counts = sync_store(env.ctx(), store_id)
        assert counts["status"] == "ok" and counts["customers"]["mode_bulk"] == 0
        assert _stored(env, person.id) == ERASED

        env.sandbox.add_order(person.id, [(store.products[0].variants[0].id, 2)])
        env.sandbox.update_customer_consent(person.id, "SUBSCRIBED")
        assert process_pending(env.ctx()) == {"processed": 3, "applied": 1, "customer redacted": 1,
                                              "unchanged": 1}
        clock.advance(hours=1)
        counts = sync_store(env.ctx(), store_id)
        assert counts["status"] == "ok" and counts["customers"]["written"] == 0
        assert _stored(env, person.id) == ERASED
        assert _mentions(env.app.extensions["aftercare.db"].engine, _needles(person) + ("ottilie",)) == []


def test_redaction_sent_before_the_install_is_applied_at_install(database_url: str, tmp_path: Path,
                                                                 clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        person = _person_with_orders(env)
        body = body_of({"shop_id": 1, "shop_domain": env.shop, "customer": {"id": person.id, "email": person.email},
                        "orders_to_redact": []})
        answer = requests.post(f"{env.url}/webhooks", data=body, timeout=TIMEOUT,
                               headers=signed_headers(body, "customers/redact", shop=env.shop))
        assert answer.status_code == 200, answer.text
        assert process_pending(env.ctx()) == {"processed": 1, "redacted": 1}
        redacted_at = clock.now()
        clock.advance(minutes=5)

        store_id = env.install()
        assert _redacted_at(env, person.id) == redacted_at
        assert sync_store(env.ctx(), store_id, full=True)["status"] == "ok"
        assert _stored(env, person.id) == ERASED
        assert _mentions(env.app.extensions["aftercare.db"].engine, _needles(person)) == []
