"""The Shopify sync run: a store's products, customers and orders, stream by stream.

The first run of a stream (or ``full``) backfills through a bulk operation, later runs read what changed since
the stream's cursor (minus an overlap window). Records are upserted in batches by the owner of the stream's
``record_kind`` (plugin.sync.sinks), each batch in its own transaction with its cursor checkpoint, so a crash
loses at most one batch of progress and a rerun converges to the same rows (the upserts are idempotent).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from connectors.shopify.bulk import BulkOperationGone, BulkResult
from connectors.shopify.client import ShopifyClient
from connectors.shopify.collections import fetch_collections
from connectors.shopify.errors import ShopifyAuthError, ShopifyError
from connectors.shopify.fulfillments import fetch_fulfillment_events
from connectors.shopify.policies import fetch_policies
from connectors.shopify.shop import fetch_shop
from connectors.shopify.streams import DEFAULT_OVERLAP, STREAMS, Record, Stream
from plugin.auth.lifecycle import mark_reinstall_needed
from plugin.auth.tokens import ReinstallNeeded
from plugin.context import JobContext
from plugin.marketplaces import shopify_client
from plugin.messaging.branding import adopt_shop_address
from plugin.models import Parcel, Store
from plugin.sync import collections, parcels
from plugin.sync.sinks import sink_for
from plugin.sync.sql import chunked
from plugin.sync.state import (
    failure_recorded,
    format_cursor,
    get_sync_state,
    mark_sync_failure,
    mark_sync_started,
    mark_sync_success,
    parse_cursor,
)

log = logging.getLogger("aftercare.jobs.sync")

BATCH_SIZE = 500
# The sync_state row that records a failed read of the shop's own details.
SHOP_STREAM = "shop"
# The sync_state row of the parcel-events pass, and how far back parcels still have a story to tell.
EVENTS_STREAM = "parcel_events"
EVENTS_WINDOW = timedelta(days=60)
# The sync_state row of the collection-membership pass.
COLLECTIONS_STREAM = "collections"


def sync_shopify_store(ctx: JobContext, store_id: int, *, full: bool = False, client: ShopifyClient | None = None,
                       streams: Iterable[type[Stream]] = STREAMS) -> dict[str, Any]:
    """Sync products, customers and orders of a Shopify store, then its billing address (the emails' postal
    address); return counts per stream and the client's stats.

    A 401/403 from Shopify marks the store "reinstall needed" (its jobs and sending stop) and ends the run.
    """
    if client is None:
        try:
            client = shopify_client(ctx, store_id)
        except ReinstallNeeded:
            # get_access_token already marked the store and logged why; nothing to sync until reinstall.
            return {"status": "reinstall_needed"}
    result: dict[str, Any] = {"status": "ok"}
    for stream_class in streams:
        stream = stream_class(client, overlap=ctx.extras.get("overlap", DEFAULT_OVERLAP))
        with failure_recorded(ctx, store_id, stream.name):
            try:
                result[stream.name] = sync_stream(ctx, store_id, stream, full=full)
            except ShopifyAuthError as exc:
                _reinstall_needed(ctx, store_id, stream.name, exc)
                result["status"] = "reinstall_needed"
                break
    if result["status"] == "ok":
        _read_collections(ctx, store_id, client, result)
    if result["status"] == "ok":
        _read_parcel_events(ctx, store_id, client, result)
    if result["status"] == "ok":
        _refresh_shop_details(ctx, store_id, client, result)
    result["graphql_calls"] = client.stats.calls
    result["throttled"] = client.stats.throttled
    result["retries"] = client.stats.retries
    return result


def _refresh_shop_details(ctx: JobContext, store_id: int, client: ShopifyClient, result: dict[str, Any]) -> None:
    """Read the shop's details after the records; a failure is recorded on the "shop" row and ends nothing."""
    try:
        with failure_recorded(ctx, store_id, SHOP_STREAM, errors=ShopifyError):
            sync_shop_details(ctx, store_id, client)
    except ShopifyAuthError as exc:
        _reinstall_needed(ctx, store_id, SHOP_STREAM, exc)
        result["status"] = "reinstall_needed"
    except ShopifyError as exc:
        log.warning("shop details not read", extra={"store_id": store_id, "problem": str(exc)})


def sync_shop_details(ctx: JobContext, store_id: int, client: ShopifyClient) -> None:
    """Take the shop's billing address as the store's postal address again (unless the merchant set one), and
    its refund policy (the tracking page shows it), contact address and policies (the first-order welcome quotes
    them)."""
    shop = fetch_shop(client)
    policies = fetch_policies(client)
    with ctx.database.session() as session:
        store = session.get(Store, store_id)
        if store is not None:
            adopt_shop_address(store, shop.postal_address)
            policy = shop.refund_policy
            store.refund_policy = ({"title": policy.title, "body": policy.body, "url": policy.url}
                                   if policy is not None else None)
            store.contact_email = policies.contact_email
            store.shop_policies = policies.as_json()


def _read_collections(ctx: JobContext, store_id: int, client: ShopifyClient, result: dict[str, Any]) -> None:
    """Read the shop's collections and replace the products' memberships (webhooks carry none: read every run).

    A failure is recorded on the "collections" row and keeps the memberships of the last good read.
    """
    try:
        with failure_recorded(ctx, store_id, COLLECTIONS_STREAM, errors=ShopifyError):
            found = fetch_collections(client)
            with ctx.database.session() as session:
                result[COLLECTIONS_STREAM] = {"collections": len(found),
                                              "memberships": collections.replace_memberships(session, store_id,
                                                                                             found)}
    except ShopifyAuthError as exc:
        _reinstall_needed(ctx, store_id, COLLECTIONS_STREAM, exc)
        result["status"] = "reinstall_needed"
    except ShopifyError as exc:
        log.warning("collections not read", extra={"store_id": store_id, "problem": str(exc)})


def _read_parcel_events(ctx: JobContext, store_id: int, client: ShopifyClient, result: dict[str, Any]) -> None:
    """Read the carrier events of parcels that changed in Shopify since their events were last read.

    Webhooks bring each milestone as it happens; this pass catches what they missed (an app that was not
    installed yet, a webhook given up on). Parcels shipped more than EVENTS_WINDOW ago are left alone: their
    story is told. Each parcel is one transaction, so a failure loses only that parcel's read (it is read again).
    """
    now = ctx.clock.now()
    counts = {"parcels": 0, "events": 0}
    try:
        with failure_recorded(ctx, store_id, EVENTS_STREAM, errors=ShopifyError):
            while todo := _parcels_to_read(ctx, store_id, now):
                for parcel_id, order_id, gid in todo:
                    found = fetch_fulfillment_events(client, gid)
                    with ctx.database.session() as session:
                        if found is not None:
                            report, events = found
                            parcels.upsert_parcels(session, store_id, [(order_id, report)])
                            counts["events"] += parcels.ingest_events(session, store_id, events).stored
                            parcels.refresh_orders(session, [order_id])
                        parcel = session.get(Parcel, parcel_id)
                        if parcel is not None:
                            parcel.events_synced_at = max(now, parcel.remote_updated_at or now)
                    counts["parcels"] += 1
    except ShopifyAuthError as exc:
        _reinstall_needed(ctx, store_id, EVENTS_STREAM, exc)
        result["status"] = "reinstall_needed"
    except ShopifyError as exc:
        log.warning("parcel events not read", extra={"store_id": store_id, "problem": str(exc)})
    result[EVENTS_STREAM] = counts


def _parcels_to_read(ctx: JobContext, store_id: int, now: datetime) -> list[tuple[int, int, str]]:
    with ctx.database.session() as session:
        return [(p.id, p.order_id, p.fulfillment_gid) for p in
                parcels.parcels_to_read(session, store_id, now - EVENTS_WINDOW, limit=100)]


def _reinstall_needed(ctx: JobContext, store_id: int, stream: str, exc: ShopifyAuthError) -> None:
    with ctx.database.session() as session:
        store = session.get(Store, store_id)
        if store is not None:
            mark_reinstall_needed(session, store, f"Shopify answered {exc.status}")
        mark_sync_failure(session, store_id, stream, error=str(exc), now=ctx.clock.now())
    log.warning("shopify refused the token; store needs reinstalling", extra={"store_id": store_id})


def sync_stream(ctx: JobContext, store_id: int, stream: Stream, *, full: bool = False) -> dict[str, int]:
    """Sync one stream: bulk backfill when there is no cursor yet (or ``full``), else incremental pages."""
    now = ctx.clock.now()
    with ctx.database.session() as session:
        state = get_sync_state(session, store_id, stream.name)
        cursor, pending = parse_cursor(state.cursor), state.bulk_operation_id
        mark_sync_started(session, store_id, stream.name, now=now, bulk_operation_id=pending)
    if full or cursor is None or pending:
        bulk = _bulk_result(ctx, store_id, stream, pending, now)
        try:
            counts = consume_bulk(ctx, store_id, stream, bulk)
        except BulkOperationGone:
            if bulk.id != pending:
                raise
            # The earlier operation's file expired: what was stored stays (idempotent), read a fresh one.
            bulk = _bulk_result(ctx, store_id, stream, None, now)
            counts = consume_bulk(ctx, store_id, stream, bulk)
        # Everything updated before the operation started is in the file; the overlap covers clock skew.
        new_cursor = bulk.created_at or now
        counts["mode_bulk"] = 1
    else:
        counts = _upsert_batches(ctx, store_id, stream, _paged_batches(stream, cursor), checkpoint=True)
        new_cursor = max(cursor, counts.pop("_newest", None) or cursor)
        counts["mode_bulk"] = 0
    with ctx.database.session() as session:
        mark_sync_success(session, store_id, stream.name, cursor=format_cursor(new_cursor),
                          now=ctx.clock.now(), records=counts.get("records", 0))
    return counts


def _bulk_result(ctx: JobContext, store_id: int, stream: Stream, pending: str | None, now: datetime) -> BulkResult:
    """Return the finished bulk operation to consume: the one an earlier run left (a crash or a restart while
    Shopify was still running it, or before its file was read) if it can still give a result, else a new one.

    The new operation's id is committed before waiting, so a run that dies while Shopify works resumes it
    instead of starting another (and waiting for this one to end first: one bulk query per shop at a time).
    """
    poll_interval = float(ctx.extras.get("bulk_poll_interval", 2.0))
    if pending:
        result = stream.resume_bulk(pending, poll_interval=poll_interval)
        if result is not None:
            log.info("resuming bulk operation", extra={"store_id": store_id, "stream": stream.name,
                                                       "operation": pending})
            return result
    operation_id = stream.start_bulk()
    with ctx.database.session() as session:
        mark_sync_started(session, store_id, stream.name, now=now, bulk_operation_id=operation_id)
    return stream.wait_bulk(operation_id, poll_interval=poll_interval)


def consume_bulk(ctx: JobContext, store_id: int, stream: Stream, bulk: BulkResult) -> dict[str, Any]:
    """Stream a finished bulk operation's records into batched upserts, one transaction per batch."""
    counts = _upsert_batches(ctx, store_id, stream, _batched(stream.bulk_records(bulk), BATCH_SIZE))
    counts.pop("_newest", None)
    return counts


def _batched(records: Iterable[Record], size: int) -> Iterator[tuple[list[Record], datetime | None]]:
    for batch in chunked(records, size):
        yield batch, None


def _paged_batches(stream: Stream, cursor: datetime) -> Iterator[tuple[list[Record], datetime | None]]:
    """Group pages into batches of about BATCH_SIZE records, each with the newest update time it covers."""
    batch: list[Record] = []
    newest: datetime | None = None
    for records, page_newest in stream.pages(cursor):
        batch.extend(records)
        newest = page_newest or newest
        if len(batch) >= BATCH_SIZE:
            yield batch, newest
            batch = []
    if batch:
        yield batch, newest


def _upsert_batches(ctx: JobContext, store_id: int, stream: Stream,
                    batches: Iterable[tuple[list[Record], datetime | None]], checkpoint: bool = False
                    ) -> dict[str, Any]:
    sink = sink_for(stream.record_kind)
    counts: dict[str, Any] = {"records": 0, "written": 0}
    for batch, newest in batches:
        with ctx.database.session() as session:
            written = sink.write(session, store_id, batch, ctx.clock.now())
            if checkpoint and newest is not None:
                # Sorted by updated_at: everything up to ``newest`` is stored once this commits.
                get_sync_state(session, store_id, stream.name).cursor = format_cursor(newest)
        counts["records"] += len(batch)
        counts["written"] += written
        if newest is not None:
            counts["_newest"] = newest
    return counts
