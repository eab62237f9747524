"""Incremental Amazon orders sync: searchOrders on ``lastUpdatedAfter`` with an overlap window.

The cursor is the ``lastUpdatedBefore`` Amazon applied (echoed in the first page); the next run asks
again from ``cursor - overlap`` so an order updated at the boundary is never missed, and the upserts
make the re-read harmless. Each page is committed on its own; the cursor moves only after the last one.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from connectors.amazon.errors import AmazonError
from connectors.amazon.orders import PAGE_SIZE, iso, parse_time, search_updated_since
from jobs.amazon_common import amazon_store, open_session
from jobs.context import JobContext
from plugin import sync
from plugin.logs import log_context

log = logging.getLogger("aftercare.amazon.sync")

STREAM = "amazon_orders"


def run(ctx: JobContext, store_id: int, full: bool = False) -> dict[str, Any]:
    """Sync one seller's orders updated since the cursor (``full``: since the backfill horizon)."""
    now = ctx.clock.now()
    with ctx.database.session() as session:
        store = amazon_store(session, store_id)
        state = sync.mark_sync_started(session, store_id, STREAM, now=now)
        cursor = parse_time(state.cursor) if state.cursor and not full else None
        marketplaces = list(store.marketplace_ids or [])
        api = open_session(ctx, store)
    overlap = timedelta(minutes=float(ctx.config.get("amazon.sync_overlap_minutes", 10)))
    since = cursor - overlap if cursor else now - timedelta(days=float(ctx.config.get("amazon.backfill_days", 180)))
    totals = {"pages": 0, "seen": 0, "orders": 0, "lines_written": 0, "lines_deleted": 0, "products": 0,
              "variants": 0}
    upper = None
    with log_context(store_id=store_id), api:
        try:
            page_size = int(ctx.extras.get("amazon_page_size", PAGE_SIZE))
            for page in search_updated_since(api, marketplaces, since, page_size=page_size):
                upper = upper or page.upper_bound
                with ctx.database.session() as session:
                    counts = sync.upsert_orders(session, store_id, page.records)
                totals["pages"] += 1
                for key in ("seen", "orders", "lines_written", "lines_deleted", "products", "variants"):
                    totals[key] += counts.get(key, 0)
        except AmazonError as exc:  # recorded on the stream, then re-raised for the job runner
            with ctx.database.session() as session:
                sync.mark_sync_failure(session, store_id, STREAM, error=f"{type(exc).__name__}: {exc}",
                                       now=ctx.clock.now())
            raise
        # Without an echo, Amazon used its default bound: two minutes before the request.
        new_cursor = upper or (now - timedelta(minutes=2))
        with ctx.database.session() as session:
            sync.mark_sync_success(session, store_id, STREAM, cursor=iso(new_cursor), now=ctx.clock.now(),
                                   records=totals["seen"])
    totals.update(api.stats)
    log.info("amazon orders synced", extra={"store_id": store_id, **totals})
    return totals
