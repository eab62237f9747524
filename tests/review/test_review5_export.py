"""customers/data_request's export reads a fixed number of statements, however many orders, parcels, carrier events
and tickets the customer has (one export is one webhook: a loyal customer's hundreds of orders were one query each
for lines, one for parcels, one per parcel for its events and one per ticket for its notes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event

from plugin.models import Parcel, ParcelEvent
from plugin.tickets import add_note, open_ticket
from plugin.webhooks.compliance import export_customer
from tests.conftest import wipe
from tests.jobs import factory as f
from tests.jobs.conftest import make_ctx

T0 = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


@pytest.fixture
def ctx(database, clock, tmp_path):
    wipe(database.engine)
    yield make_ctx(database, clock, tmp_path)
    wipe(database.engine)


def _customer_with(ctx, n: int) -> tuple[int, str]:
    """A customer with ``n`` orders, each with one line, two parcels of two events each and a ticket with a note."""
    with ctx.database.session() as s:
        st = f.store(s)
        product = f.product(s, st.id)
        person = f.customer(s, st.id)
        for k in range(n):
            order = f.order(s, st.id, person.id, T0 + timedelta(days=k), lines=[(product.id, 1)])
            for j in range(2):
                parcel = Parcel(store_id=st.id, order_id=order.id,
                                fulfillment_gid=f"gid://shopify/Fulfillment/{order.id}{j}", status="IN_TRANSIT",
                                tracking_company="UPS", tracking_number=f"1Z{order.id}{j}",
                                shipped_at=T0 + timedelta(days=k))
                s.add(parcel)
                s.flush()
                for i in range(2):
                    s.add(ParcelEvent(store_id=st.id, parcel_id=parcel.id,
                                      event_gid=f"gid://shopify/FulfillmentEvent/{parcel.id}{i}",
                                      status="IN_TRANSIT", happened_at=T0 + timedelta(days=k, hours=i),
                                      city=f"City {k}-{j}-{i}"))
            ticket = open_ticket(s, ctx.config, store_id=st.id, source="delivery", severity=3, subject=f"order {k}",
                                 now=T0, customer_id=person.id, order_id=order.id)
            add_note(s, ticket.id, f"note {k}", T0)
        s.flush()
        return st.id, person.external_id


def _export(ctx, store_id: int, external_id: str) -> tuple[dict, int]:
    statements = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    with ctx.database.session() as s:
        event.listen(s.connection(), "before_cursor_execute", count)
        export = export_customer(s, store_id, external_id, None, [])
    return export, len(statements)


def test_the_export_reads_a_fixed_number_of_statements(ctx):
    few, few_reads = _export(ctx, *_customer_with(ctx, 1))
    many, many_reads = _export(ctx, *_customer_with(ctx, 5))
    assert few_reads == many_reads
    # Still everything, in order: each order's parcels by id, each parcel's events by time, each ticket's notes.
    assert [len(o["parcels"]) for o in many["orders"]] == [2] * 5
    assert [e["city"] for o in many["orders"] for p in o["parcels"] for e in p["events"]] == [
        f"City {k}-{j}-{i}" for k in range(5) for j in range(2) for i in range(2)]
    assert [len(o["lines"]) for o in many["orders"]] == [1] * 5
    assert [[n["body"] for n in t["notes"]] for t in many["tickets"]] == [[f"note {k}"] for k in range(5)]
    assert len(few["orders"]) == 1
