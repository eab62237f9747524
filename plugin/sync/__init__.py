"""Marketplace records into the database: one owner module per record kind, sync state, and the sync runs.

Owners (each the only writer of its rows; functions take a ``Session`` and never commit):
``customers``, ``products`` (with variants), ``orders`` (with lines; every order write — bulk backfill,
incremental sync, webhooks, Amazon — goes through it), ``reviews``. Shared SQL: ``sql``; cursors and run
bookkeeping: ``state``; record kind → owner: ``sinks``; deletions' tombstones: ``tombstones``.
Runs (they own their transactions, one per batch): ``shopify_run``, ``judgeme_run``, ``amazon_run``, and
``store_run`` (one store of either platform, the scheduled "sync" job).
"""

from plugin.sync.customers import upsert_customers
from plugin.sync.orders import upsert_orders
from plugin.sync.products import upsert_products
from plugin.sync.reviews import upsert_reviews
from plugin.sync.sql import chunked
from plugin.sync.state import get_sync_state, mark_sync_failure, mark_sync_started, mark_sync_success

__all__ = ["chunked", "get_sync_state", "mark_sync_failure", "mark_sync_started", "mark_sync_success",
           "upsert_customers", "upsert_orders", "upsert_products", "upsert_reviews"]
