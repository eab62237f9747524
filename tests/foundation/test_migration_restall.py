"""0019_restall on delivery problems of the earlier schema (SQLite or PostgreSQL): which count as resolved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import MetaData, Table, insert, select
from sqlalchemy.exc import IntegrityError

from plugin.db import Database
from plugin.migrate import upgrade
from plugin.models import DeliveryProblem

BEFORE = "0018_collections"  # the parent of 0019_restall, the migration under test
FOUND = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
CLOSED = FOUND + timedelta(days=2)


def test_upgrade_resolves_the_problems_aftercare_resolved_and_keeps_the_others_open(fresh_url: str) -> None:
    upgrade(fresh_url, BEFORE)
    database = Database(fresh_url)
    with database.session() as session:
        tables = MetaData()
        t = {name: Table(name, tables, autoload_with=session.connection())
             for name in ("merchant", "store", "orders", "ticket", "delivery_problem")}
        merchant_id = session.execute(insert(t["merchant"]).values(name="m", settings={})
                                      .returning(t["merchant"].c.id)).scalar_one()
        store_id = session.execute(insert(t["store"]).values(
            merchant_id=merchant_id, platform="shopify", external_id="old.myshopify.com", marketplace_ids=[],
            name="", currency="USD", timezone="UTC", primary_locale="en", status="active", scopes="",
            protected_data_access=True).returning(t["store"].c.id)).scalar_one()
        order_id = session.execute(insert(t["orders"]).values(
            store_id=store_id, external_id="1", name="#1001", created_at_remote=FOUND - timedelta(days=9),
            currency="USD", tags=[], total_price=0, total_refunded=0).returning(t["orders"].c.id)).scalar_one()
        cases = {  # subject: (ticket status, resolution)
            "parcel=1": ("resolved", "Resolved automatically: a new carrier event moved it on."),
            "parcel=2": ("resolved", "Called the carrier"),  # closed by the merchant: the cause may hold
            "parcel=3": ("open", None),
        }
        for subject, (status, resolution) in cases.items():
            ticket_id = session.execute(insert(t["ticket"]).values(
                store_id=store_id, source="delivery", severity=3, status=status, subject=subject,
                opened_at=FOUND, sla_due_at=FOUND + timedelta(days=1), order_id=order_id,
                resolved_at=CLOSED if status == "resolved" else None, resolution=resolution)
                .returning(t["ticket"].c.id)).scalar_one()
            session.execute(insert(t["delivery_problem"]).values(
                store_id=store_id, problem="no_scan", subject=subject, order_id=order_id, ticket_id=ticket_id,
                detected_at=FOUND))
    database.dispose()

    upgrade(fresh_url)
    database = Database(fresh_url)
    with database.session() as session:
        assert dict(session.execute(select(DeliveryProblem.subject, DeliveryProblem.resolved_at)).all()) == {
            "parcel=1": CLOSED, "parcel=2": None, "parcel=3": None}
        # A resolved problem frees its subject; an unresolved one does not.
        session.add(DeliveryProblem(store_id=store_id, problem="no_scan", subject="parcel=1", order_id=order_id,
                                    detected_at=CLOSED + timedelta(days=3)))
        session.flush()
    with pytest.raises(IntegrityError), database.session() as session:
        session.add(DeliveryProblem(store_id=store_id, problem="no_scan", subject="parcel=2", order_id=order_id,
                                    detected_at=CLOSED + timedelta(days=3)))
        session.flush()
    database.dispose()
