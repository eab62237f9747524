"""A sync job that dies while Shopify runs its bulk query resumes that same operation on the next run (through
``node(id:)``), takes the result of one that finished meanwhile, and starts a new one only when the old one can
no longer give a result. Real HTTP to the sandbox; the job "dies" in its injected sleep while it waits."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from connectors.shopify.streams import CustomersStream, OrdersStream, ProductsStream
from plugin.marketplaces import shopify_client
from plugin.models import SyncState
from plugin.sync.shopify_run import sync_stream
from tests.conftest import wipe
from tests.shopify_sync_harness import CLIENT_ID, assert_mirrors, make_harness


class Killed(BaseException):
    """The process died (BaseException: nothing in the job may catch it)."""


@pytest.fixture
def harness(database, tmp_path):
    """A 120-order sandbox store; committed rows are wiped afterwards."""
    h = make_harness(database, tmp_path, customers=30, orders=120)
    yield h
    h.stop()
    wipe(database.engine)


def orders_operations(harness) -> list[int]:
    """Ids of the sandbox's bulk operations over orders started by our app, oldest first."""
    ops = harness.sandbox.shop_state().bulk_ops.values()
    return sorted(op.id for op in ops if op.client_id == CLIENT_ID and "lineItems" in op.query)


def pending(database, store_id) -> str | None:
    with database.session() as session:
        return session.scalar(select(SyncState.bulk_operation_id).where(SyncState.store_id == store_id,
                                                                        SyncState.stream == "orders"))


def die_while_waiting(harness) -> None:
    """Run the orders backfill and kill it the first time it waits for Shopify's bulk query."""
    def sleep(seconds: float) -> None:
        raise Killed

    keep = harness.ctx.sleep
    harness.ctx.sleep = sleep
    try:
        with pytest.raises(Killed):
            sync_stream(harness.ctx, harness.store_id, OrdersStream(shopify_client(harness.ctx, harness.store_id)))
    finally:
        harness.ctx.sleep = keep


def backfill_catalog(harness) -> None:
    """Products and customers first (so only the orders bulk query is left running when the job dies)."""
    client = shopify_client(harness.ctx, harness.store_id)
    for stream_class in (ProductsStream, CustomersStream):
        sync_stream(harness.ctx, harness.store_id, stream_class(client), full=True)


def test_a_job_killed_while_shopify_runs_the_query_resumes_that_operation(harness, database):
    backfill_catalog(harness)
    die_while_waiting(harness)
    [started] = orders_operations(harness)
    assert pending(database, harness.store_id) == f"gid://shopify/BulkOperation/{started}"
    assert harness.sandbox.shop_state().bulk_ops[started].status == "RUNNING"

    result = harness.sync()

    assert result["status"] == "ok" and result["orders"]["mode_bulk"] == 1
    assert orders_operations(harness) == [started]  # no second bulk query
    assert pending(database, harness.store_id) is None
    assert_mirrors(database, harness.store_id, harness.sandbox)


def test_an_operation_that_completed_meanwhile_is_consumed_not_rerun(harness, database):
    backfill_catalog(harness)
    die_while_waiting(harness)
    [started] = orders_operations(harness)
    harness.sandbox.finish_bulk_operations(CLIENT_ID)
    assert harness.sandbox.shop_state().bulk_ops[started].status == "COMPLETED"

    assert harness.sync()["status"] == "ok"

    assert orders_operations(harness) == [started]
    assert pending(database, harness.store_id) is None
    assert_mirrors(database, harness.store_id, harness.sandbox)


def test_an_operation_shopify_no_longer_knows_is_replaced_by_a_new_one(harness, database):
    backfill_catalog(harness)
    # Left by a run against another install (Shopify answers node(id:) with null for it).
    with database.session() as session:
        state = session.scalars(select(SyncState).where(SyncState.store_id == harness.store_id,
                                                        SyncState.stream == "orders")).first()
        if state is None:
            state = SyncState(store_id=harness.store_id, stream="orders", records_synced=0)
            session.add(state)
        state.bulk_operation_id = "gid://shopify/BulkOperation/987654321"

    assert harness.sync()["status"] == "ok"

    assert len(orders_operations(harness)) == 1
    assert pending(database, harness.store_id) is None
    assert_mirrors(database, harness.store_id, harness.sandbox)


def test_an_expired_result_file_starts_a_new_operation(harness, database):
    backfill_catalog(harness)
    die_while_waiting(harness)
    [started] = orders_operations(harness)
    harness.sandbox.finish_bulk_operations(CLIENT_ID)
    # The pre-signed URL expired: the file is gone although the operation reads COMPLETED.
    harness.sandbox.bulk.files.pop(started)

    assert harness.sync()["status"] == "ok"

    operations = orders_operations(harness)
    assert len(operations) == 2 and operations[0] == started
    assert pending(database, harness.store_id) is None
    assert_mirrors(database, harness.store_id, harness.sandbox)
