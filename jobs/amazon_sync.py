"""Incremental Amazon orders sync: searchOrders on ``lastUpdatedAfter`` with an overlap window, then returns.

The cursor is the ``lastUpdatedBefore`` Amazon applied (echoed in the first page); the next run asks
again from ``cursor - overlap`` so an order updated at the boundary is never missed, and the upserts
make the re-read harmless. Each page is committed on its own; the cursor moves only after the last one.

Returns and refunds are not in the Orders API: the returns reports (connectors/amazon/returns.py) set
``returned`` / ``refunded`` on the orders, at most every ``amazon.returns_every_hours``, and an order
re-read later keeps those flags (the Orders API knows nothing that could clear them).
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from connectors.amazon.client import SpApiSession
from connectors.amazon.errors import AmazonError, AuthError
from connectors.amazon.orders import PAGE_SIZE, iso, parse_time, search_updated_since
from connectors.amazon.returns import ReturnEntry, fetch_returns
from connectors.records import OrderRecord
from jobs.amazon_common import amazon_store, open_session
from plugin import sync
from plugin.context import JobContext
from plugin.logs import log_context
from plugin.models import Order

log = logging.getLogger("aftercare.amazon.sync")

STREAM = "amazon_orders"
RETURNS_STREAM = "amazon_returns"
RETURNS_OVERLAP = timedelta(days=3)


def keep_return_flags(session: Session, store_id: int, records: list[OrderRecord]) -> list[OrderRecord]:
    """Carry the stored returned/refunded state into re-read orders (the Orders API does not know it)."""
    ids = [r.external_id for r in records]
    known = {row.external_id: row for row in session.execute(
        select(Order.external_id, Order.returned, Order.refunded, Order.total_refunded)
        .where(Order.store_id == store_id, Order.external_id.in_(ids),
               (Order.returned.is_(True)) | (Order.refunded.is_(True))))}
    if not known:
        return records
    return [dataclasses.replace(r, returned=known[r.external_id].returned, refunded=known[r.external_id].refunded,
                                total_refunded=known[r.external_id].total_refunded)
            if r.external_id in known else r for r in records]


def apply_returns(session: Session, store_id: int, entries: list[ReturnEntry]) -> int:
    """Mark the orders of the returns reports returned (and refunded, with the amount); return rows changed."""
    refunds: dict[str, Decimal] = {}
    for entry in entries:
        if entry.refunded_amount is not None:
            refunds[entry.order_id] = refunds.get(entry.order_id, Decimal("0")) + entry.refunded_amount
    changed = 0
    returned = sorted({e.order_id for e in entries})
    if returned:
        changed += session.execute(update(Order).where(Order.store_id == store_id, Order.external_id.in_(returned),
                                                       Order.returned.is_(False)).values(returned=True)).rowcount
    for order_id, amount in refunds.items():
        changed += session.execute(update(Order).where(
            Order.store_id == store_id, Order.external_id == order_id,
            (Order.refunded.is_(False)) | (Order.total_refunded != amount)).values(
                refunded=True, total_refunded=amount)).rowcount
    return changed


def sync_returns(ctx: JobContext, api: SpApiSession, store_id: int, marketplaces: list[str],
                 now: datetime, force: bool = False) -> dict[str, Any]:
    """Import the returns reports of all the store's marketplaces (one request each) when due."""
    every = timedelta(hours=ctx.config.get("amazon.returns_every_hours"))
    poll = ctx.config.get("amazon.report_poll_seconds")
    max_wait = ctx.config.get("amazon.report_max_wait_seconds")
    backfill = timedelta(days=ctx.config.get("amazon.backfill_days"))
    with ctx.database.session() as session:
        state = sync.get_sync_state(session, store_id, RETURNS_STREAM)
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
            sync.mark_sync_failure(session, store_id, RETURNS_STREAM, error=f"{type(exc).__name__}: {exc}",
                                   now=ctx.clock.now())
        log.warning("returns reports failed", extra={"store_id": store_id, "error": str(exc)})
        return {"returns_entries": 0, "returns_orders_changed": 0, "returns_failed": 1}
    with ctx.database.session() as session:
        changed = apply_returns(session, store_id, entries)
        sync.mark_sync_success(session, store_id, RETURNS_STREAM, cursor=iso(now), now=now, records=len(entries))
    return {"returns_entries": len(entries), "returns_orders_changed": changed}


def run(ctx: JobContext, store_id: int, full: bool = False) -> dict[str, Any]:
    """Sync one seller's orders updated since the cursor (``full``: since the backfill horizon)."""
    now = ctx.clock.now()
    with ctx.database.session() as session:
        store = amazon_store(session, store_id)
        state = sync.mark_sync_started(session, store_id, STREAM, now=now)
        cursor = parse_time(state.cursor) if state.cursor and not full else None
        marketplaces = list(store.marketplace_ids or [])
        api = open_session(ctx, store)
    overlap = timedelta(minutes=ctx.config.get("amazon.sync_overlap_minutes"))
    since = cursor - overlap if cursor else now - timedelta(days=ctx.config.get("amazon.backfill_days"))
    totals = {"pages": 0, "seen": 0, "orders": 0, "lines_written": 0, "lines_deleted": 0, "products": 0,
              "variants": 0}
    upper = None
    with log_context(store_id=store_id), api:
        try:
            page_size = int(ctx.extras.get("amazon_page_size", PAGE_SIZE))
            for page in search_updated_since(api, marketplaces, since, page_size=page_size):
                upper = upper or page.upper_bound
                with ctx.database.session() as session:
                    records = keep_return_flags(session, store_id, page.records)
                    counts = sync.upsert_orders(session, store_id, records)
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
        totals.update(sync_returns(ctx, api, store_id, marketplaces, now, force=full))
    totals.update(api.stats)
    log.info("amazon orders synced", extra={"store_id": store_id, **totals})
    return totals
