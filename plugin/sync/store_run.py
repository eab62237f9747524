"""The scheduled "sync" job: one store of either platform, and its Judge.me reviews when it has a token."""

from __future__ import annotations

from typing import Any

from plugin.context import JobContext
from plugin.models import Store
from plugin.sync.amazon_run import sync_amazon_store
from plugin.sync.judgeme_run import sync_judgeme_reviews
from plugin.sync.shopify_run import sync_shopify_store


def sync_store(ctx: JobContext, store_id: int, full: bool = False) -> dict[str, Any]:
    """Sync one store of either platform; Shopify stores with a Judge.me token also get their reviews."""
    with ctx.database.session() as session:
        store = session.get(Store, store_id)
        if store is None:
            raise LookupError(f"store {store_id} does not exist")
        platform, has_reviews = store.platform, store.review_app_token_enc is not None
    if platform == "amazon":
        return sync_amazon_store(ctx, store_id, full=full)
    counts = sync_shopify_store(ctx, store_id, full=full)
    if has_reviews and counts.get("status") == "ok":
        counts["reviews"] = sync_judgeme_reviews(ctx, store_id)
    return counts


def sync_store_full(ctx: JobContext, store_id: int) -> dict[str, Any]:
    """Backfill one store from scratch (``aftercare sync --full``)."""
    return sync_store(ctx, store_id, full=True)
