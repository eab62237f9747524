"""The redaction-tombstone migration on a database holding the old bug's results (SQLite or PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import MetaData, Table, insert, select

from plugin.db import Database
from plugin.messaging.outbox import enqueue
from plugin.migrate import upgrade
from plugin.models import ComplianceRequest, Customer, Message

BEFORE = "0003_gating"  # the parent of 0004_custdata, the migration under test
ASKED = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
SYNCED = datetime(2026, 5, 2, 4, 0, tzinfo=UTC)


def test_upgrade_erases_customers_a_sync_brought_back_and_adds_missing_tombstones(fresh_url: str) -> None:
    upgrade(fresh_url, BEFORE)
    database = Database(fresh_url)
    with database.session() as session:
        # Merchant and store as the schema had them then (later migrations add columns the models know).
        tables = MetaData()
        merchants = Table("merchant", tables, autoload_with=session.connection())
        stores = Table("store", tables, autoload_with=session.connection())
        merchant_id = session.execute(insert(merchants).values(name="m", settings={})
                                      .returning(merchants.c.id)).scalar_one()
        store = session.execute(insert(stores).values(
            merchant_id=merchant_id, platform="shopify", external_id="old.myshopify.com", marketplace_ids=[],
            name="", currency="USD", timezone="UTC", primary_locale="en", status="active",
            scopes="").returning(stores.c.id, stores.c.external_id)).one()
        # Redacted before the backfill, then stored again by it (the bug), with a reminder scheduled.
        customers = Table("customer", tables, autoload_with=session.connection())
        back_id = session.execute(insert(customers).values(
            store_id=store.id, external_id="101", email="back@example.org", first_name="Back", locale="de",
            country="DE", time_zone="Europe/Berlin", marketing_consent=True, marketing_consent_at=SYNCED,
            tags=["vip"]).returning(customers.c.id)).scalar_one()
        kept_id = session.execute(insert(customers).values(
            store_id=store.id, external_id="103", email="kept@example.org", first_name="Kept", tags=[])
            .returning(customers.c.id)).scalar_one()
        enqueue(session, store_id=store.id, flow="replenishment", channel="email", idempotency_key="k-back",
                scheduled_for=SYNCED, customer_id=back_id, to_address="back@example.org", marketing=True,
                payload={"first_name": "Back"})
        enqueue(session, store_id=store.id, flow="replenishment", channel="email", idempotency_key="k-kept",
                scheduled_for=SYNCED, customer_id=kept_id, to_address="kept@example.org", marketing=True,
                payload={"first_name": "Kept"})
        for external_id in ("101", "102"):  # 102: redacted before the sync reached them, not stored since
            session.add(ComplianceRequest(store_id=store.id, shop_domain=store.external_id, kind="customers/redact",
                                          customer_external_id=external_id, requested_at=ASKED, completed_at=ASKED,
                                          result={"customer_found": False}))
        store_id = store.id
    database.dispose()

    upgrade(fresh_url)
    database = Database(fresh_url)
    with database.session() as session:
        rows = {c.external_id: (c.email, c.first_name, c.locale, c.country, c.time_zone, c.marketing_consent,
                                c.marketing_consent_at, c.tags, c.redacted_at)
                for c in session.scalars(select(Customer).where(Customer.store_id == store_id))}
        messages = {m.idempotency_key: (m.status, m.skip_reason, m.to_address, m.payload)
                    for m in session.scalars(select(Message))}
    database.dispose()
    assert rows == {
        "101": (None, None, None, None, None, False, None, [], ASKED),
        "102": (None, None, None, None, None, False, None, [], ASKED),
        "103": ("kept@example.org", "Kept", None, None, None, False, None, [], None),
    }
    assert messages == {"k-back": ("cancelled", "customer_redacted", None, {}),
                        "k-kept": ("scheduled", None, "kept@example.org", {"first_name": "Kept"})}
