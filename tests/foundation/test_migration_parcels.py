"""0010_delivery moves each order's fulfillments JSON into parcel rows and drops the column (SQLite or PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import MetaData, Table, insert, inspect, select

from plugin.db import Database
from plugin.migrate import upgrade
from plugin.models import Parcel, Ticket, TicketNote

BEFORE = "0009_growth"  # the parent of 0010_delivery
SHIPPED = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
ARRIVED = datetime(2026, 5, 3, 14, 0, tzinfo=UTC)


def test_upgrade_keeps_every_parcel_the_json_held(fresh_url: str) -> None:
    upgrade(fresh_url, BEFORE)
    database = Database(fresh_url)
    with database.session() as session:
        tables = MetaData()
        conn = session.connection()
        merchants, stores, orders = (Table(n, tables, autoload_with=conn) for n in ("merchant", "store", "orders"))
        merchant_id = session.execute(insert(merchants).values(name="m", settings={})
                                      .returning(merchants.c.id)).scalar_one()
        store_id = session.execute(insert(stores).values(
            merchant_id=merchant_id, platform="shopify", external_id="old.myshopify.com", marketplace_ids=[],
            name="", currency="USD", timezone="UTC", primary_locale="en", status="active",
            scopes="").returning(stores.c.id)).scalar_one()
        json = [{"id": "11", "status": "SUCCESS", "created_at": SHIPPED.isoformat(),
                 "delivered_at": ARRIVED.isoformat()},
                {"id": "12", "status": "CANCELLED", "created_at": SHIPPED.isoformat(), "delivered_at": None}]
        with_parcels = session.execute(insert(orders).values(
            store_id=store_id, external_id="1001", created_at_remote=SHIPPED, currency="USD", total_price=0,
            total_refunded=0, tags=[], fulfillments=json).returning(orders.c.id)).scalar_one()
        # A ticket with a note: the ticket table is rebuilt (its source CHECK gains "delivery"), the note stays.
        tickets, notes = (Table(n, tables, autoload_with=conn) for n in ("ticket", "ticket_note"))
        ticket_id = session.execute(insert(tickets).values(
            store_id=store_id, source="manual", severity=3, subject="late", status="open", opened_at=SHIPPED,
            sla_due_at=ARRIVED, order_id=with_parcels).returning(tickets.c.id)).scalar_one()
        session.execute(insert(notes).values(ticket_id=ticket_id, author="a", body="called the carrier"))
        session.execute(insert(orders).values(store_id=store_id, external_id="1002", created_at_remote=SHIPPED,
                                              currency="USD", total_price=0, total_refunded=0, tags=[],
                                              fulfillments=None))
    database.dispose()

    upgrade(fresh_url)
    database = Database(fresh_url)
    with database.session() as session:
        parcels = [(p.order_id, p.fulfillment_gid, p.fulfillment_status, p.shipped_at, p.delivered_at, p.status)
                   for p in session.scalars(select(Parcel).order_by(Parcel.fulfillment_gid))]
        columns = {c["name"] for c in inspect(session.connection()).get_columns("orders")}
        kept = session.execute(select(TicketNote.body, Ticket.order_id).join(Ticket, Ticket.id == TicketNote.ticket_id)
                               ).all()
    database.dispose()
    assert parcels == [(with_parcels, "gid://shopify/Fulfillment/11", "SUCCESS", SHIPPED, ARRIVED, None),
                       (with_parcels, "gid://shopify/Fulfillment/12", "CANCELLED", SHIPPED, None, None)]
    assert "fulfillments" not in columns
    assert [tuple(r) for r in kept] == [("called the carrier", with_parcels)]
