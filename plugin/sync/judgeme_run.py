"""The Judge.me sync run: a Shopify store's reviews created or updated since the stream's cursor."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import select

from connectors.reviews.judgeme import JudgemeClient
from plugin.context import JobContext
from plugin.models import Store
from plugin.secrets_store import get_credential
from plugin.sync.sinks import sink_for
from plugin.sync.sql import chunked
from plugin.sync.state import (
    failure_recorded,
    format_cursor,
    get_sync_state,
    mark_sync_started,
    mark_sync_success,
    parse_cursor,
)

BATCH_SIZE = 500
JUDGEME_STREAM = "judgeme_reviews"
REVIEW_OVERLAP = timedelta(minutes=10)


def sync_judgeme_reviews(ctx: JobContext, store_id: int) -> dict[str, int]:
    """Pull the store's Judge.me reviews created or updated since the cursor into ``review`` rows."""
    with ctx.database.session() as session:
        store = session.scalars(select(Store).where(Store.id == store_id)).one()
        token = get_credential(store, ctx.vault, "review_app_token_enc")
        shop = store.external_id
        cursor = parse_cursor(get_sync_state(session, store_id, JUDGEME_STREAM).cursor)
        mark_sync_started(session, store_id, JUDGEME_STREAM, now=ctx.clock.now())
    if not token:
        return {"records": 0, "new": 0}
    counts = {"records": 0, "new": 0}
    newest = cursor
    client = JudgemeClient(shop, token, base_url=ctx.config.get("judgeme.base_url"),
                           timeout=ctx.config.get("judgeme.request_timeout_seconds"), sleep=ctx.sleep,
                           rng=random.Random(store_id))  # noqa: S311 - jitter only
    sink = sink_for(JudgemeClient.record_kind)
    with failure_recorded(ctx, store_id, JUDGEME_STREAM):
        try:
            since = cursor - REVIEW_OVERLAP if cursor else None
            # Judge.me lists newest first, so the cursor only moves once every page is stored.
            for batch in chunked(client.iter_reviews(since=since), BATCH_SIZE):
                with ctx.database.session() as session:
                    counts["new"] += sink.write(session, store_id, batch, ctx.clock.now())
                counts["records"] += len(batch)
                for review in batch:
                    stamp = review.updated_at or review.created_at
                    if newest is None or stamp > newest:
                        newest = stamp
        finally:
            client.close()
    with ctx.database.session() as session:
        mark_sync_success(session, store_id, JUDGEME_STREAM, cursor=format_cursor(newest), now=ctx.clock.now(),
                          records=counts["records"])
    return counts
