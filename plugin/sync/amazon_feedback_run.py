"""Amazon seller feedback into the inbox: one report per marketplace, 1-3★ entries open tickets.

Amazon offers no reply API for seller feedback (DESIGN.md §1), so negative and neutral feedback becomes
a ``review`` (source ``amazon_feedback``, keyed by order id) and a ``ticket`` with a severity from
keywords and the SLA of ``[flows.tickets]``. A re-import updates the review and opens no second ticket.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from connectors.amazon.errors import AmazonError, AuthError
from connectors.amazon.feedback import fetch_feedback, to_records
from connectors.amazon.orders import iso, parse_time
from plugin import sync
from plugin.context import JobContext
from plugin.logs import log_context
from plugin.marketplaces import amazon_store, open_session
from plugin.models import Review
from plugin.tickets import open_ticket, severity_for

log = logging.getLogger("aftercare.amazon.feedback")

STREAM = "amazon_feedback"
# Feedback can be left (and shows up in the report) some days after its date: re-read a margin.
OVERLAP = timedelta(days=3)


def import_reviews(session: Any, ctx: JobContext, store_id: int, records: list) -> dict[str, int]:
    """Upsert feedback reviews and open a ticket for each new 1-3★ one; return counts."""
    new_ids = sync.upsert_reviews(session, store_id, records)
    tickets = 0
    now = ctx.clock.now()
    if new_ids:
        for review in session.scalars(select(Review).where(Review.id.in_(new_ids), Review.rating <= 3)):
            severity = severity_for(review.title, review.body)
            subject = f"Amazon feedback {review.rating}★ on order {review.external_id}"
            if review.body:
                subject += f": {review.body}"
            open_ticket(session, ctx.config, store_id=store_id, source="feedback", severity=severity,
                        subject=subject, now=now, order_id=review.order_id, review_id=review.id)
            tickets += 1
    return {"reviews_new": len(new_ids), "tickets_opened": tickets}


def run(ctx: JobContext, store_id: int) -> dict[str, Any]:
    """Import each marketplace's feedback report since its cursor; one marketplace's failure spares the others."""
    now = ctx.clock.now()
    with ctx.database.session() as session:
        store = amazon_store(session, store_id)
        marketplaces = list(store.marketplace_ids or [])
        cursors = {mp: sync.get_sync_state(session, store_id, f"{STREAM}:{mp}").cursor for mp in marketplaces}
        api = open_session(ctx, store)
    first_days = ctx.config.get("amazon.feedback_days")
    poll = ctx.config.get("amazon.report_poll_seconds")
    max_wait = ctx.config.get("amazon.report_max_wait_seconds")
    counts: dict[str, Any] = {"marketplaces": 0, "entries": 0, "reviews_new": 0, "tickets_opened": 0, "failed": []}
    with log_context(store_id=store_id), api:
        for mp in marketplaces:
            stream = f"{STREAM}:{mp}"
            cursor = parse_time(cursors[mp])
            start = cursor - OVERLAP if cursor else now - timedelta(days=first_days)
            try:
                entries = fetch_feedback(api, mp, start, now, poll_seconds=poll, max_wait_seconds=max_wait)
            except AuthError:
                raise
            except AmazonError as exc:
                counts["failed"].append(mp)
                with ctx.database.session() as session:
                    sync.mark_sync_failure(session, store_id, stream, error=f"{type(exc).__name__}: {exc}",
                                           now=ctx.clock.now())
                log.warning("feedback report failed", extra={"store_id": store_id, "marketplace": mp,
                                                             "error": str(exc)})
                continue
            with ctx.database.session() as session:
                result = import_reviews(session, ctx, store_id, to_records(entries, mp))
                sync.mark_sync_success(session, store_id, stream, cursor=iso(now), now=ctx.clock.now(),
                                       records=len(entries))
            counts["marketplaces"] += 1
            counts["entries"] += len(entries)
            counts["reviews_new"] += result["reviews_new"]
            counts["tickets_opened"] += result["tickets_opened"]
    log.info("amazon feedback imported", extra={"store_id": store_id, **{k: v for k, v in counts.items()
                                                                            if k != "failed"}})
    return counts
