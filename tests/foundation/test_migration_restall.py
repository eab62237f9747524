"""0019_restall on delivery problems of the earlier schema (SQLite or PostgreSQL): which count as resolved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import MetaData, Table, insert, select, update
from sqlalchemy.exc import IntegrityError

from plugin.db import Database
from plugin.migrate import upgrade
from plugin.models import DeliveryProblem

BEFORE = "0018_collections"  # the parent of 0019_restall, the migration under test
FOUND = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
CLOSED = FOUND + timedelta(days=2)


def _old_store(session, t: dict[str, Table]) -> int:
    """Insert a merchant and a Shopify store through the earlier schema's tables; return the store's id."""
    merchant_id = session.execute(insert(t["merchant"]).values(name="m", settings={})
                                  .returning(t["merchant"].c.id)).scalar_one()
    return session.execute(insert(t["store"]).values(
        merchant_id=merchant_id, platform="shopify", external_id="old.myshopify.com", marketplace_ids=[],
        name="", currency="USD", timezone="UTC", primary_locale="en", status="active", scopes="",
        protected_data_access=True).returning(t["store"].c.id)).scalar_one()


def test_upgrade_resolves_the_problems_aftercare_resolved_and_keeps_the_others_open(fresh_url: str) -> None:
    upgrade(fresh_url, BEFORE)
    database = Database(fresh_url)
    with database.session() as session:
        tables = MetaData()
        t = {name: Table(name, tables, autoload_with=session.connection())
             for name in ("merchant", "store", "orders", "ticket", "delivery_problem")}
        store_id = _old_store(session, t)
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


def test_the_first_run_after_the_upgrade_looks_at_every_problem_again(fresh_url: str, tmp_path) -> None:
    """Before 0019 a problem's subject stayed taken for good, and nothing re-checked a closed ticket's cause: a
    parcel whose problem Aftercare resolved could stall again unseen (no next check: its moment had passed), and
    one whose ticket the merchant closed could be delivered since. The first run after the upgrade must find the
    first and resolve the second, though neither row changes after the upgrade."""
    from base.clock import FrozenClock
    from plugin.delivery_stalls import fingerprint, stored_stats
    from plugin.flows import delivery_stalls, runner
    from plugin.models import Store, Ticket
    from tests.jobs.conftest import make_ctx

    now = datetime(2026, 6, 24, 15, 0, tzinfo=UTC)  # a Wednesday
    old = FOUND - timedelta(days=1)  # when the order was last written
    upgrade(fresh_url, BEFORE)
    database = Database(fresh_url)
    with database.session() as session:
        tables = MetaData()
        t = {name: Table(name, tables, autoload_with=session.connection())
             for name in ("merchant", "store", "orders", "parcel", "ticket", "delivery_problem",
                          "delivery_stall_state")}
        store_id = _old_store(session, t)
        order_id = session.execute(insert(t["orders"]).values(
            store_id=store_id, external_id="1", name="#1001", created_at_remote=FOUND - timedelta(days=9),
            currency="USD", tags=[], total_price=0, total_refunded=0, financial_status="PAID",
            fulfilled_at=FOUND - timedelta(days=8), updated_at=old).returning(t["orders"].c.id)).scalar_one()
        parcels = {}
        # Parcel 1: a scan on June 17 (its problem resolved), silent since: 5 business days on the 24th (3 < 5 < 10).
        # Parcel 2: delivered after the merchant closed its ticket.
        for n, (status, last, delivered) in enumerate((("IN_TRANSIT", now - timedelta(days=7), None),
                                                       ("DELIVERED", CLOSED + timedelta(days=1),
                                                        CLOSED + timedelta(days=1))), 1):
            parcels[n] = session.execute(insert(t["parcel"]).values(
                store_id=store_id, order_id=order_id, fulfillment_gid=f"gid://shopify/Fulfillment/{n}",
                fulfillment_status="SUCCESS", status=status, tracking_company="UPS",
                shipped_at=FOUND - timedelta(days=8), last_event_at=last, delivered_at=delivered, updated_at=last)
                .returning(t["parcel"].c.id)).scalar_one()
        for n, resolution in ((1, "Resolved automatically: a new carrier event moved it on."),
                              (2, "Called the carrier")):
            ticket_id = session.execute(insert(t["ticket"]).values(
                store_id=store_id, source="delivery", severity=3, status="resolved", subject=f"parcel {n}",
                opened_at=FOUND, sla_due_at=FOUND + timedelta(days=1), order_id=order_id, resolved_at=CLOSED,
                resolution=resolution).returning(t["ticket"].c.id)).scalar_one()
            session.execute(insert(t["delivery_problem"]).values(
                store_id=store_id, problem="no_scan", subject=f"parcel={parcels[n]}", order_id=order_id,
                parcel_id=parcels[n], ticket_id=ticket_id, detected_at=FOUND))
        session.execute(insert(t["delivery_stall_state"]).values(store_id=store_id, fingerprint="",
                                                                 checked_at=now - timedelta(hours=1),
                                                                 changed_since=now - timedelta(hours=1)))
    database.dispose()

    upgrade(fresh_url)
    database = Database(fresh_url)
    ctx = make_ctx(database, FrozenClock(now), tmp_path)
    with database.session() as session:
        # What the last run before the upgrade computed under (thresholds, calendar, estimates): nothing changed.
        settings = runner.load_settings(session, ctx.config, delivery_stalls.FLOW, store_id)
        store = session.get(Store, store_id)
        digest = fingerprint(store, settings, stored_stats(session, store_id, int(settings["min_history_samples"])))
        session.execute(update(DeliveryProblem.__table__.metadata.tables["delivery_stall_state"])
                        .values(fingerprint=digest))
    counts = delivery_stalls.run(ctx, store_id)
    assert (counts["stalls"], counts["tickets"]) == (1, 1)  # parcel 1: no_scan
    with database.session() as session:
        rows = session.execute(select(DeliveryProblem.parcel_id, DeliveryProblem.resolved_at, Ticket.status)
                               .join(Ticket, Ticket.id == DeliveryProblem.ticket_id)
                               .order_by(DeliveryProblem.id)).all()
        assert [tuple(r) for r in rows] == [(parcels[1], CLOSED, "resolved"), (parcels[2], now, "resolved"),
                                            (parcels[1], None, "open")]
    database.dispose()
