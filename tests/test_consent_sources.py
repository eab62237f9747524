"""Where e-mail consent comes from: withdrawals from every Shopify source cancel marketing at once, grants only
from Shopify's consent record (the sync, the consent topic). Sandbox over real HTTP, signed webhooks."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from base.clock import FrozenClock
from jobs.webhooks import process_pending
from plugin.messaging.outbox import enqueue
from plugin.models import Customer, Message
from plugin.sync.store_run import sync_store
from sandbox.shopify.models import Customer as SandboxCustomer
from tests.conftest import TEST_SHOPIFY_API_KEY, TEST_SHOPIFY_API_SECRET
from tests.shopify_app_env import SCOPES, ShopifyEnv, shopify_env


def _backfilled(env: ShopifyEnv) -> int:
    store_id = env.install()
    assert sync_store(env.ctx(), store_id, full=True)["status"] == "ok"
    assert process_pending(env.ctx()) == {"processed": 3, "kept for sync": 3}  # bulk_operations/finish
    return store_id


def _consent(env: ShopifyEnv, person: SandboxCustomer) -> tuple[bool, datetime | None]:
    with env.app.extensions["aftercare.db"].session() as session:
        row = session.execute(select(Customer.marketing_consent, Customer.marketing_consent_at)
                              .where(Customer.external_id == str(person.id))).one()
    return row[0], row[1]


def _plan(env: ShopifyEnv, store_id: int, person: SandboxCustomer, other: SandboxCustomer) -> None:
    """Schedule a reminder (marketing) and a review request for the person, and a reminder for someone else."""
    with env.app.extensions["aftercare.db"].session() as session:
        ids = dict(session.execute(select(Customer.external_id, Customer.id)).all())
        for who, flow, marketing in ((person, "replenishment", True), (person, "review_request", False),
                                     (other, "replenishment", True)):
            enqueue(session, store_id=store_id, flow=flow, channel="email", customer_id=ids[str(who.id)],
                    idempotency_key=f"{store_id}:{flow}:{who.id}", marketing=marketing,
                    scheduled_for=env.clock.now() + timedelta(days=5), to_address=who.email.lower())


def _outcomes(env: ShopifyEnv) -> list[tuple[str, str, str | None]]:
    with env.app.extensions["aftercare.db"].session() as session:
        return [tuple(r) for r in session.execute(select(Message.flow, Message.status, Message.skip_reason)
                                                  .order_by(Message.id))]


WITHDRAWN = [("replenishment", "cancelled", "consent_withdrawn"), ("review_request", "scheduled", None),
             ("replenishment", "scheduled", None)]


def _subscribed_pair(env: ShopifyEnv) -> tuple[SandboxCustomer, SandboxCustomer]:
    person, other = [c for c in env.sandbox.store.customers if c.marketing_state == "SUBSCRIBED"][:2]
    return person, other


def test_a_withdrawal_seen_by_the_sync_cancels_scheduled_marketing_at_once(database_url: str, tmp_path: Path,
                                                                          clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        store_id = _backfilled(env)
        person, other = _subscribed_pair(env)
        assert _consent(env, person)[0] is True
        _plan(env, store_id, person, other)
        # The customer unsubscribes in Shopify and no webhook reaches us (Shopify gave up retrying): only the sync.
        withdrawn_at = clock.advance(hours=1).replace(microsecond=0)
        person.marketing_state, person.opt_in_level = "UNSUBSCRIBED", None
        person.consent_updated_at = person.updated_at = withdrawn_at
        clock.advance(hours=1)
        assert sync_store(env.ctx(), store_id)["status"] == "ok"
        assert _consent(env, person) == (False, withdrawn_at)
        assert _outcomes(env) == WITHDRAWN
        # A second run changes nothing more.
        clock.advance(hours=1)
        assert sync_store(env.ctx(), store_id, full=True)["status"] == "ok"
        assert _outcomes(env) == WITHDRAWN


@pytest.mark.parametrize("api_version", ["2024-10", "2023-10", "2022-01"])
def test_a_withdrawal_in_an_older_customers_update_body_is_honoured(database_url: str, tmp_path: Path,
                                                                   clock: FrozenClock, api_version: str) -> None:
    """2024-10: ``email_marketing_consent`` only; 2023-10: it and the legacy ``accepts_marketing``; 2022-01: only
    the legacy flag."""
    with shopify_env(database_url, tmp_path, clock) as env:
        store_id = _backfilled(env)
        person, other = _subscribed_pair(env)
        _plan(env, store_id, person, other)
        # An app still on an older API version, subscribed to customers/update only (no consent topic).
        env.sandbox.register_app(TEST_SHOPIFY_API_KEY, TEST_SHOPIFY_API_SECRET, SCOPES,
                                 webhook_url=env.url + "/webhooks", webhook_topics=("customers/update",),
                                 api_version=api_version)
        withdrawn_at = clock.advance(hours=1).replace(microsecond=0)
        env.sandbox.update_customer_consent(person.id, "UNSUBSCRIBED")
        [delivery] = [d for d in env.sandbox.deliveries if d.topic != "bulk_operations/finish"]
        assert delivery.topic == "customers/update"
        body = delivery.payload
        assert (body.get("email_marketing_consent") or {}).get("state") == (
            None if api_version < "2022-04" else "unsubscribed")
        assert body.get("accepts_marketing") == (None if api_version >= "2024-01" else False)
        assert process_pending(env.ctx()) == {"processed": 1, "applied": 1}
        assert _consent(env, person) == (False, withdrawn_at)
        assert _outcomes(env) == WITHDRAWN


def test_only_shopifys_consent_record_grants(database_url: str, tmp_path: Path, clock: FrozenClock) -> None:
    """customers/update copies and an order's ``buyer_accepts_marketing`` never grant; the sync and the consent
    topic (Shopify's consent record) do."""
    with shopify_env(database_url, tmp_path, clock) as env:
        store_id = _backfilled(env)
        shop = env.sandbox.store
        person = next(c for c in shop.customers if c.marketing_state == "NOT_SUBSCRIBED")
        assert _consent(env, person)[0] is False
        env.sandbox.register_app(TEST_SHOPIFY_API_KEY, TEST_SHOPIFY_API_SECRET, SCOPES,
                                 webhook_url=env.url + "/webhooks",
                                 webhook_topics=("customers/update", "orders/create"), api_version="2023-10")
        granted_at = clock.advance(hours=1).replace(microsecond=0)
        env.sandbox.update_customer_consent(person.id, "SUBSCRIBED")
        env.sandbox.add_order(person.id, [(shop.products[0].variants[0].id, 1)])
        bodies = {d.topic: d.payload for d in env.sandbox.deliveries if d.topic != "bulk_operations/finish"}
        assert bodies["customers/update"]["email_marketing_consent"]["state"] == "subscribed"
        assert bodies["customers/update"]["accepts_marketing"] is True
        assert bodies["orders/create"]["buyer_accepts_marketing"] is True
        assert bodies["orders/create"]["customer"]["email_marketing_consent"]["state"] == "subscribed"
        assert process_pending(env.ctx()) == {"processed": 2, "applied": 2}
        assert _consent(env, person) == (False, None)

        clock.advance(hours=1)
        assert sync_store(env.ctx(), store_id)["status"] == "ok"
        assert _consent(env, person) == (True, granted_at)
