"""The scheduled "sync" job: one store of either platform, and its Judge.me reviews when it has a token.

A run that backfilled or wrote at least ``database.analyze_after_rows`` rows ends by refreshing the planner's
statistics of the tables it wrote (plugin.table_stats): the metrics jobs that follow count the new rows.
"""

from __future__ import annotations

import logging
from typing import Any

from plugin.context import JobContext
from plugin.models import Store
from plugin.sync.amazon_run import sync_amazon_store
from plugin.sync.judgeme_run import sync_judgeme_reviews
from plugin.sync.shopify_run import sync_shopify_store
from plugin.table_stats import SYNC_TABLES, is_large_sync, refresh_statistics

log = logging.getLogger("aftercare.jobs.sync")

# Amazon's run counts rows by kind; Shopify's per stream ("written"), Judge.me's as "new".
AMAZON_WRITTEN = ("orders", "lines_written", "lines_deleted", "products", "variants")


def rows_written(counts: dict[str, Any]) -> int:
    """Return how many rows a sync run wrote, from its counts (either platform, reviews included)."""
    total = sum(int(counts.get(key, 0) or 0) for key in AMAZON_WRITTEN if not isinstance(counts.get(key), dict))
    for key, value in counts.items():
        if isinstance(value, dict):
            total += int(value.get("new" if key == "reviews" else "written", 0) or 0)
    return total


def _is_backfill(counts: dict[str, Any]) -> bool:
    return any(isinstance(v, dict) and v.get("mode_bulk") for v in counts.values()) or bool(counts.get("backfill"))


def sync_store(ctx: JobContext, store_id: int, full: bool = False) -> dict[str, Any]:
    """Sync one store of either platform; Shopify stores with a Judge.me token also get their reviews."""
    with ctx.database.session() as session:
        store = session.get(Store, store_id)
        if store is None:
            raise LookupError(f"store {store_id} does not exist")
        platform, has_reviews = store.platform, store.review_app_token_enc is not None
    if platform == "amazon":
        counts = sync_amazon_store(ctx, store_id, full=full)
    else:
        counts = sync_shopify_store(ctx, store_id, full=full)
        if has_reviews and counts.get("status") == "ok":
            counts["reviews"] = sync_judgeme_reviews(ctx, store_id)
    summary = {"backfill": _is_backfill(counts), "rows_written": rows_written(counts)}
    if is_large_sync(summary, ctx.config.get("database.analyze_after_rows")):
        with ctx.database.engine.begin() as conn:
            counts["statistics"] = refresh_statistics(conn, SYNC_TABLES)
        log.info("table statistics refreshed after a large sync",
                 extra={"store_id": store_id, "tables": counts["statistics"], **summary})
    return counts


def sync_store_full(ctx: JobContext, store_id: int) -> dict[str, Any]:
    """Backfill one store from scratch (``aftercare sync --full``)."""
    return sync_store(ctx, store_id, full=True)
