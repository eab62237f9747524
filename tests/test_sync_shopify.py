"""The Shopify sync job against the sandbox over real HTTP: a backfill mirrors the store exactly, a rerun writes
nothing, changes arrive incrementally, injected faults do not change the outcome, a revoked token marks the store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from plugin.models import Customer, Order, OrderLine, Product, Store, SyncState, Variant
from tests.conftest import wipe
from tests.shopify_sync_harness import CLIENT_ID, assert_mirrors, database_state, make_harness

SENTINEL = datetime(2001, 1, 1, tzinfo=UTC)
TABLES = (Customer, Product, Variant, Order)


@pytest.fixture
def harness(database, tmp_path):
    """A 300-order sandbox store and its store row; committed rows are wiped afterwards."""
    h = make_harness(database, tmp_path, customers=60, orders=300)
    yield h
    h.stop()
    wipe(database.engine)


def freeze_updated_at(database) -> None:
    with database.session() as session:
        for model in TABLES:
            session.execute(update(model).values(updated_at=SENTINEL))


def moved(database) -> dict[str, int]:
    with database.session() as session:
        return {m.__tablename__: session.scalar(select(func.count()).select_from(m).where(m.updated_at != SENTINEL))
                for m in TABLES}


def line_ids(database) -> set[int]:
    with database.session() as session:
        return set(session.scalars(select(OrderLine.id)))


def test_backfill_mirrors_the_sandbox_and_reruns_change_nothing(harness, database):
    first = harness.sync()
    assert first["status"] == "ok"
    assert [first[s]["mode_bulk"] for s in ("products", "customers", "orders")] == [1, 1, 1]
    store = harness.sandbox.store
    with database.session() as session:
        counts = {m.__tablename__: session.scalar(select(func.count()).select_from(m))
                  for m in (Customer, Product, Variant, Order, OrderLine)}
        cursors = dict(session.execute(select(SyncState.stream, SyncState.cursor)).all())
    assert counts == {"customer": len(store.customers), "product": len(store.products),
                      "variant": sum(len(p.variants) for p in store.products), "orders": len(store.orders),
                      "order_line": sum(len(o.line_items) for o in store.orders)}
    assert set(cursors) == {"products", "customers", "orders"} and all(cursors.values())
    assert_mirrors(database, harness.store_id, harness.sandbox)

    freeze_updated_at(database)
    before_lines = line_ids(database)
    harness.clock.advance(hours=1)
    incremental = harness.sync()
    assert [incremental[s]["mode_bulk"] for s in ("products", "customers", "orders")] == [0, 0, 0]
    assert [incremental[s]["written"] for s in ("products", "customers", "orders")] == [0, 0, 0]
    full_again = harness.sync(full=True)
    assert [full_again[s]["written"] for s in ("products", "customers", "orders")] == [0, 0, 0]
    assert moved(database) == {"customer": 0, "product": 0, "variant": 0, "orders": 0}
    assert line_ids(database) == before_lines


def test_changes_in_the_sandbox_arrive_by_incremental_sync(harness, database):
    harness.sync()
    freeze_updated_at(database)
    sb, store = harness.sandbox, harness.sandbox.store
    harness.clock.advance(minutes=30)
    to_cancel = next(o for o in store.orders if not o.cancelled_at and not o.refunds)
    sb.cancel_order(to_cancel.id)
    customer = next(c for c in store.customers if c.marketing_state == "SUBSCRIBED")
    variant = store.products[0].variants[0]
    to_ship = sb.add_order(customer.id, [(variant.id, 1)])
    sb.fulfil_order(to_ship.id, estimated_delivery_at=harness.clock.now() + timedelta(days=3))
    harness.clock.advance(days=2)
    sb.deliver_order(to_ship.id)
    sb.update_customer_consent(customer.id, "UNSUBSCRIBED")
    new_order = sb.add_order(customer.id, [(variant.id, 2)])
    harness.clock.advance(minutes=1)

    result = harness.sync()
    assert result["orders"]["mode_bulk"] == 0
    assert_mirrors(database, harness.store_id, sb)
    changed = moved(database)
    # The cancelled order and the two new ones; the one customer who ordered and unsubscribed.
    assert changed["orders"] == 3
    assert changed["customer"] == 1
    assert changed["product"] == 0 and changed["variant"] == 0
    state = database_state(database, harness.store_id)
    assert state["orders"][str(to_cancel.id)][11] == to_cancel.cancelled_at
    assert state["orders"][str(to_ship.id)][15] == to_ship.fulfillments[-1].delivered_at
    assert state["customers"][str(customer.id)][5] is False
    assert state["lines"][(str(new_order.id), str(new_order.line_items[0].id))][0] == 2


def test_injected_faults_do_not_change_the_outcome(harness, database):
    sb, store = harness.sandbox, harness.sandbox.store
    sb.set_faults(0.10, seed=11)
    first = harness.sync()  # bulk: few GraphQL calls, large downloads
    assert first["status"] == "ok"
    assert_mirrors(database, harness.store_id, sb)
    harness.clock.advance(minutes=10)
    sb.refund_order(next(o for o in store.orders if not o.refunds and not o.cancelled_at).id, amount_cents=100)
    harness.clock.advance(minutes=1)
    with database.session() as session:
        # Send every stream back to the start: the whole store is read again page by page, under faults.
        session.execute(update(SyncState).values(cursor="2000-01-01T00:00:00+00:00"))
    paged = harness.sync()
    assert paged["orders"]["mode_bulk"] == 0 and paged["orders"]["records"] == len(store.orders)
    assert paged["retries"] > 0
    assert_mirrors(database, harness.store_id, sb)
    assert sum(sb.faults.counts.values()) >= paged["retries"]


def test_a_revoked_token_marks_the_store_reinstall_needed(harness, database):
    harness.sandbox.revoke(CLIENT_ID)
    result = harness.sync()
    assert result["status"] == "reinstall_needed"
    with database.session() as session:
        store = session.get(Store, harness.store_id)
        assert store.status == "reinstall_needed"
        assert session.scalar(select(func.count()).select_from(Order)) == 0
        state = session.scalar(select(SyncState).where(SyncState.stream == "products"))
        assert state.last_error and state.cursor is None


def test_a_partly_delivered_order_is_delivered_when_its_last_parcel_is(harness, database):
    harness.sync()
    sb, store = harness.sandbox, harness.sandbox.store
    customer, variant = store.customers[0], store.products[0].variants[0]
    order = sb.add_order(customer.id, [(variant.id, 3)])
    harness.clock.advance(hours=1)
    first = sb.fulfil_order(order.id, quantity=1)
    harness.clock.advance(hours=1)
    second = sb.fulfil_order(order.id, quantity=1)
    third = sb.fulfil_order(order.id)
    harness.clock.advance(days=2)
    sb.deliver_order(order.id, fulfillment_id=first.id)
    sb.cancel_fulfillment(order.id, fulfillment_id=third.id)  # cancelled: never arrives, does not count
    harness.clock.advance(minutes=1)
    harness.sync()
    delivered_at, fulfilled_at = 15, 14
    row = database_state(database, harness.store_id)["orders"][str(order.id)]
    assert (row[fulfilled_at], row[delivered_at]) == (first.created_at, None)  # one parcel still in transit

    harness.clock.advance(days=1)
    arrived = harness.clock.now().replace(microsecond=0) - timedelta(hours=3)
    sb.deliver_order(order.id, fulfillment_id=second.id, delivered_at=arrived)
    harness.clock.advance(minutes=1)
    assert harness.sync()["orders"]["mode_bulk"] == 0
    row = database_state(database, harness.store_id)["orders"][str(order.id)]
    assert (row[fulfilled_at], row[delivered_at]) == (first.created_at, arrived)
    assert_mirrors(database, harness.store_id, sb)
