"""The Amazon sync run: searchOrders on ``lastUpdatedAfter`` with an overlap window, then the returns reports.

The cursor is the ``lastUpdatedBefore`` Amazon applied (echoed in the first page); the next run asks
again from ``cursor - overlap`` so an order updated at the boundary is never missed, and the upserts
make the re-read harmless. Each page is committed on its own; the cursor moves only after the last one. An order
Amazon sends that cannot be read (a malformed amount or time) is noted in ``sync_rejection`` with its id and
reason (plugin/sync/rejections.py) and the sync goes on with the others.

Returns and refunds are not in the Orders API: the returns reports (connectors/amazon/returns.py) set
``returned`` / ``refunded`` on the orders, at most every ``amazon.returns_every_hours``, and an order
re-read later keeps those flags (the Orders API knows nothing that could clear them).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from connectors.amazon.client import SpApiSession
from connectors.amazon.errors import AmazonError, AuthError
from connectors.amazon.orders import PAGE_SIZE, OrderPage, iso, parse_time, search_updated_since
from connectors.amazon.returns import fetch_returns
from plugin.context import JobContext
from plugin.logs import log_context
from plugin.marketplaces import amazon_store, open_session
from plugin.sync.orders import apply_returns, keep_return_flags
from plugin.sync.rejections import clear_read, note_rejected, rejections
from plugin.sync.sinks import sink_for
from plugin.sync.state import (
    failure_recorded,
    get_sync_state,
    mark_sync_failure,
    mark_sync_started,
    mark_sync_success,
)

log = logging.getLogger("aftercare.amazon.sync")

STREAM = "amazon_orders"
RETURNS_STREAM = "amazon_returns"
RETURNS_OVERLAP = timedelta(days=3)


def sync_returns(ctx: JobContext, api: SpApiSession, store_id: int, marketplaces: list[str],
                 now: datetime, force: bool = False) -> dict[str, Any]:
    """Import the returns reports of all the store's marketplaces (one request each) when due."""
    every = timedelta(hours=ctx.config.get("amazon.returns_every_hours"))
    poll = ctx.config.get("amazon.report_poll_seconds")
    max_wait = ctx.config.get("amazon.report_max_wait_seconds")
    backfill = timedelta(days=ctx.config.get("amazon.backfill_days"))
    with ctx.database.session() as session:
        state = get_sync_state(session, store_id, RETURNS_STREAM)
        cursor, last = parse_time(state.cursor), state.last_success_at
    if not marketplaces or (last is not None and now - last < every and not force):
        return {"returns_entries": 0, "returns_orders_changed": 0}
    start = cursor - RETURNS_OVERLAP if cursor else now - backfill
    try:
        entries = fetch_returns(api, marketplaces, start, now, poll_seconds=poll, max_wait_seconds=max_wait)
    except AuthError:
        raise
    except AmazonError as exc:
        # The orders are synced; stale return flags only delay exclusions until the next run.
        with ctx.database.session() as session:
            mark_sync_failure(session, store_id, RETURNS_STREAM, error=f"{type(exc).__name__}: {exc}",
                              now=ctx.clock.now())
        log.warning("returns reports failed", extra={"store_id": store_id, "error": str(exc)})
        return {"returns_entries": 0, "returns_orders_changed": 0, "returns_failed": 1}
    with ctx.database.session() as session:
        changed = apply_returns(session, store_id, entries)
        mark_sync_success(session, store_id, RETURNS_STREAM, cursor=iso(now), now=now, records=len(entries))
    return {"returns_entries": len(entries), "returns_orders_changed": changed}


def sync_amazon_store(ctx: JobContext, store_id: int, full: bool = False, returns: bool = True) -> dict[str, Any]:
    """Sync one seller's orders updated since the cursor (``full``: since the backfill horizon), then its returns.

    The returns reports run when due; ``returns=False`` leaves them out (bench/amazon_sync.py times the orders alone).
    """
    now = ctx.clock.now()
    with ctx.database.session() as session:
        store = amazon_store(session, store_id)
        state = mark_sync_started(session, store_id, STREAM, now=now)
        cursor = parse_time(state.cursor) if state.cursor and not full else None
        marketplaces = list(store.marketplace_ids or [])
        api = open_session(ctx, store)
    overlap = timedelta(minutes=ctx.config.get("amazon.sync_overlap_minutes"))
    since = cursor - overlap if cursor else now - timedelta(days=ctx.config.get("amazon.backfill_days"))
    totals = {"pages": 0, "seen": 0, "orders": 0, "lines_written": 0, "lines_deleted": 0, "products": 0,
              "variants": 0, "rejected": 0, "backfill": int(cursor is None)}
    upper = None
    upsert = sink_for(OrderPage.record_kind).upsert
    with ctx.database.session() as session:
        noted = bool(rejections(session, store_id, STREAM))
    with log_context(store_id=store_id), api:
        with failure_recorded(ctx, store_id, STREAM, AmazonError):
            page_size = int(ctx.extras.get("amazon_page_size", PAGE_SIZE))
            for page in search_updated_since(api, marketplaces, since, page_size=page_size):
                upper = upper or page.upper_bound
                with ctx.database.session() as session:
                    counts = upsert(session, store_id, keep_return_flags(session, store_id, page.records))
                    if noted:
                        clear_read(session, store_id, STREAM, [r.external_id for r in page.records])
                    if page.rejected:
                        noted = True
                        totals["rejected"] += note_rejected(session, store_id, STREAM,
                                                            [(r.external_id, r.reason) for r in page.rejected],
                                                            ctx.clock.now())
                        log.warning("amazon orders could not be read", extra={
                            "store_id": store_id, "orders": {r.external_id: r.reason for r in page.rejected}})
                totals["pages"] += 1
                for key in ("seen", "orders", "lines_written", "lines_deleted", "products", "variants"):
                    totals[key] += counts.get(key, 0)
        # Without an echo, Amazon used its default bound: two minutes before the request.
        new_cursor = upper or (now - timedelta(minutes=2))
        with ctx.database.session() as session:
            mark_sync_success(session, store_id, STREAM, cursor=iso(new_cursor), now=ctx.clock.now(),
                              records=totals["seen"])
        if returns:
            totals.update(sync_returns(ctx, api, store_id, marketplaces, now, force=full))
    totals.update(api.stats)
    log.info("amazon orders synced", extra={"store_id": store_id, **totals})
    return totals
