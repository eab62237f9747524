"""Process stored Shopify webhooks, oldest first, each in its own transaction.

The receiver (`plugin.webhooks.views`) only verifies and stores; this job applies the events. A failing
event is retried on later runs (``attempts`` / ``last_error``) and never blocks the ones after it.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from sqlalchemy import select, update

from plugin.context import JobContext
from plugin.logs import log_context
from plugin.models import WebhookEvent
from plugin.webhooks.processing import process_event

log = logging.getLogger("aftercare.jobs.webhooks")

MAX_ATTEMPTS = 8


def pending_ids(ctx: JobContext, limit: int) -> list[int]:
    """Return the ids of events waiting to be processed, oldest first."""
    with ctx.database.session() as session:
        return list(session.scalars(
            select(WebhookEvent.id).where(WebhookEvent.processed_at.is_(None), WebhookEvent.attempts < MAX_ATTEMPTS)
            .order_by(WebhookEvent.received_at, WebhookEvent.id).limit(limit)))


def process_pending(ctx: JobContext, limit: int = 500) -> dict[str, Any]:
    """Apply up to ``limit`` stored webhook events; return counts per outcome plus ``processed``/``failed``."""
    counts: Counter[str] = Counter()
    for event_id in pending_ids(ctx, limit):
        try:
            with ctx.database.session() as session:
                # SKIP LOCKED (PostgreSQL): several workers share the queue without taking the same event.
                event = session.scalar(select(WebhookEvent).where(
                    WebhookEvent.id == event_id, WebhookEvent.processed_at.is_(None))
                    .with_for_update(skip_locked=True))
                if event is None:
                    continue
                with log_context(store_id=event.store_id, webhook_event_id=event.id, topic=event.topic):
                    outcome = process_event(session, event, ctx.clock.now(), ctx)
            counts["processed"] += 1
            counts[outcome] += 1
        except Exception as exc:  # noqa: BLE001 - job runner: one bad event must not stop the others
            counts["failed"] += 1
            _record_failure(ctx, event_id, exc)
    return dict(counts)


def _record_failure(ctx: JobContext, event_id: int, exc: BaseException) -> None:
    with ctx.database.session() as session:
        session.execute(update(WebhookEvent).where(WebhookEvent.id == event_id).values(
            attempts=WebhookEvent.attempts + 1, last_error=f"{type(exc).__name__}: {exc}"[:2000]))
        store_id = session.scalar(select(WebhookEvent.store_id).where(WebhookEvent.id == event_id))
    log.warning("webhook processing failed", exc_info=exc,
                extra={"store_id": store_id, "webhook_event_id": event_id})
