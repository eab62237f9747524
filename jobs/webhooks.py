"""Process stored Shopify webhooks, oldest first, each in its own transaction.

The receiver (`plugin.webhooks.views`) only verifies and stores; this job applies the events. A failing
event never blocks the ones after it: a body that can never be applied is marked failed at once with one log
line, a transient error is retried on later runs (``attempts`` / ``last_error``) up to ``MAX_ATTEMPTS``
(plugin.webhooks.inbox), its traceback logged once.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from sqlalchemy import select

from plugin.context import JobContext
from plugin.logs import log_context
from plugin.models import WebhookEvent
from plugin.webhooks.inbox import MAX_ATTEMPTS, PERMANENT, record_failure
from plugin.webhooks.processing import failure_kind, process_event

log = logging.getLogger("aftercare.jobs.webhooks")


def pending_ids(ctx: JobContext, limit: int) -> list[int]:
    """Return the ids of events waiting to be processed, oldest first."""
    with ctx.database.session() as session:
        return list(session.scalars(
            select(WebhookEvent.id).where(WebhookEvent.processed_at.is_(None), WebhookEvent.failed_at.is_(None),
                                          WebhookEvent.attempts < MAX_ATTEMPTS)
            .order_by(WebhookEvent.received_at, WebhookEvent.id).limit(limit)))


def process_pending(ctx: JobContext, limit: int = 500) -> dict[str, Any]:
    """Apply up to ``limit`` stored webhook events; return counts per outcome plus ``processed``/``failed``."""
    counts: Counter[str] = Counter()
    for event_id in pending_ids(ctx, limit):
        try:
            with ctx.database.session() as session:
                # SKIP LOCKED (PostgreSQL): several workers share the queue without taking the same event.
                event = session.scalar(select(WebhookEvent).where(
                    WebhookEvent.id == event_id, WebhookEvent.processed_at.is_(None), WebhookEvent.failed_at.is_(None))
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
    kind = failure_kind(exc)
    with ctx.database.session() as session:
        failure = record_failure(session, event_id, kind, f"{type(exc).__name__}: {exc}", ctx.clock.now())
    if failure is None:
        return
    extra = {"store_id": failure.store_id, "webhook_event_id": event_id, "topic": failure.topic,
             "attempts": failure.attempts, "error": f"{type(exc).__name__}: {exc}"[:500]}
    if kind == PERMANENT:
        # Retrying cannot help and its traceback says nothing the reason does not: one line.
        log.warning("webhook body can never be applied; marked failed", extra=extra)
    elif failure.failed:
        log.error("webhook processing failed %d times; given up", failure.attempts, extra=extra)
    else:
        # The traceback once, on the first attempt; the retries say only that they failed again.
        log.warning("webhook processing failed; will retry", exc_info=exc if failure.attempts == 1 else None,
                    extra=extra)
