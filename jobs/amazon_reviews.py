"""Amazon review requests: one ``productReviewAndSellerFeedback`` solicitation per eligible order.

Eligible = inside Amazon's window (5 days after EarliestDeliveryDate, plus the store's optional delay,
to 30 days after LatestDeliveryDate) and not cancelled, returned or refunded. Nothing else is looked at:
no rating, complaint, ticket or sentiment, because Amazon forbids selective solicitation
(https://sellercentral.amazon.com/help/hub/reference/external/G1801). No other message type is sent.

Outbox life of a request (``message`` row, channel ``amazon_solicitation``, key store+flow+order):
``scheduled`` → ``sending`` (claim committed BEFORE any call, by a conditional UPDATE that only one
concurrent run can win) → ``sent``. Amazon answering 403 "not available" to the send is recorded as
``skipped`` with reason ``already solicited`` and never retried (``sent`` stays reserved for requests
this system made). A row left in ``sending`` by a killed run is reconciled after the claim timeout by
asking getSolicitationActionsForOrder, never by re-sending blindly: still offered → send now; no longer
offered → ``sent`` (our interrupted call reached Amazon).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from connectors.amazon.client import SpApiSession
from connectors.amazon.errors import AmazonError, AuthError, ServerError
from connectors.amazon.solicitations import review_request_offered, send_review_request
from plugin import flow_settings
from plugin.context import JobContext
from plugin.logs import log_context
from plugin.marketplaces import amazon_store, open_session
from plugin.messaging.outbox import enqueue, idempotency_key
from plugin.models import Message, Order

log = logging.getLogger("aftercare.amazon.solicitations")

FLOW = "amazon_review_request"
CHANNEL = "amazon_solicitation"
WINDOW_OPENS = timedelta(days=5)
WINDOW_CLOSES = timedelta(days=30)
ALREADY_SOLICITED = "already solicited"
RETRY_NOT_OFFERED = timedelta(days=1)


def message_key(store_id: int, order_external_id: str) -> str:
    """Return the idempotency key of an order's solicitation."""
    return idempotency_key(store_id, FLOW, f"order={order_external_id}")


def window(order: Order, delay_days: float = 0) -> tuple[datetime, datetime] | None:
    """Return when the order may be solicited ([opens + delay, closes]), or None without delivery dates."""
    if order.earliest_delivery_at is None:
        return None
    latest = order.latest_delivery_at or order.earliest_delivery_at
    return order.earliest_delivery_at + WINDOW_OPENS + timedelta(days=delay_days), latest + WINDOW_CLOSES


def excluded_reason(order: Order) -> str | None:
    """Return why an order may not be solicited (the only three reasons there are), or None."""
    if order.cancelled_at is not None:
        return "cancelled"
    if order.returned:
        return "returned"
    if order.refunded:
        return "refunded"
    return None


def plan(session: Session, store_id: int, now: datetime, delay_days: float) -> int:
    """Write a ``scheduled`` outbox row for every order inside its window; return how many were new."""
    opens_before = now - WINDOW_OPENS - timedelta(days=delay_days)
    closes_after = now - WINDOW_CLOSES
    query = (select(Order).where(Order.store_id == store_id, Order.earliest_delivery_at <= opens_before,
                                 func.coalesce(Order.latest_delivery_at, Order.earliest_delivery_at) >= closes_after,
                                 Order.cancelled_at.is_(None), Order.returned.is_(False), Order.refunded.is_(False))
             .order_by(Order.earliest_delivery_at, Order.id))
    known = set(session.scalars(select(Message.order_id).where(Message.store_id == store_id, Message.flow == FLOW,
                                                                Message.order_id.is_not(None))))
    created = 0
    for order in session.scalars(query):
        if order.id in known:
            continue
        row = enqueue(session, store_id=store_id, flow=FLOW, channel=CHANNEL, scheduled_for=now,
                      idempotency_key=message_key(store_id, order.external_id), order_id=order.id,
                      payload={"amazon_order_id": order.external_id, "marketplace_id": order.marketplace_id})
        created += row is not None
    return created


def _claim(ctx: JobContext, message_id: int, run_id: str, now: datetime, *, stale_before: datetime | None) -> bool:
    """Move one row to ``sending`` for this run and commit; False when another run got it first."""
    with ctx.database.session() as session:
        stmt = update(Message).where(Message.id == message_id)
        if stale_before is None:
            stmt = stmt.where(Message.status == "scheduled", Message.scheduled_for <= now)
        else:
            stmt = stmt.where(Message.status == "sending", Message.claimed_at < stale_before)
        result = session.execute(stmt.values(status="sending", claimed_by=run_id, claimed_at=now,
                                             attempts=Message.attempts + 1, updated_at=now)
                                 .execution_options(synchronize_session=False))
        return result.rowcount == 1


def _finish(ctx: JobContext, message_id: int, run_id: str, **values: Any) -> None:
    """Record the outcome of this run's claim (guarded: only the claimant writes it)."""
    values.setdefault("updated_at", ctx.clock.now())
    with ctx.database.session() as session:
        session.execute(update(Message)
                        .where(Message.id == message_id, Message.status == "sending", Message.claimed_by == run_id)
                        .values(**values).execution_options(synchronize_session=False))


def _process(ctx: JobContext, api: SpApiSession, message_id: int, run_id: str, delay_days: float,
             reconciling: bool, after_send: Callable[[str], None] | None) -> str:
    """Handle one claimed row end to end and return its outcome for the run's counts."""
    now = ctx.clock.now()
    with ctx.database.session() as session:
        message = session.get(Message, message_id)
        order = session.get(Order, message.order_id) if message and message.order_id else None
        if order is None:
            outcome = {"status": "skipped", "skip_reason": "order deleted"}
        else:
            reason = excluded_reason(order)
            bounds = window(order, delay_days)
            order_id, marketplace_id = order.external_id, order.marketplace_id
            outcome = None
            if reason:
                outcome = {"status": "skipped", "skip_reason": reason}
            elif bounds is None or now > bounds[1]:
                outcome = {"status": "skipped", "skip_reason": "outside window"}
            elif now < bounds[0]:
                outcome = {"status": "scheduled", "scheduled_for": bounds[0]}
    if outcome is not None:
        _finish(ctx, message_id, run_id, **outcome)
        return outcome["status"]
    try:
        offered = review_request_offered(api, order_id, marketplace_id)
    except AuthError:
        _finish(ctx, message_id, run_id, status="scheduled" if not reconciling else "sending",
                last_error="LWA refused the seller's credentials")
        raise
    except AmazonError as exc:
        # Nothing was sent: hand the row back so the next run asks again.
        _finish(ctx, message_id, run_id, status="scheduled" if not reconciling else "sending",
                last_error=f"{type(exc).__name__}: {exc}"[:2000])
        return "deferred"
    if not offered:
        if reconciling:
            # Our interrupted call reached Amazon: the request is no longer offered because it was sent.
            _finish(ctx, message_id, run_id, status="sent", sent_at=ctx.clock.now(),
                    last_error="reconciled: no longer offered after an interrupted send")
            return "reconciled"
        next_try = now + RETRY_NOT_OFFERED
        if bounds is not None and next_try > bounds[1]:
            _finish(ctx, message_id, run_id, status="skipped", skip_reason="not offered by Amazon in the window")
            return "skipped"
        _finish(ctx, message_id, run_id, status="scheduled", scheduled_for=next_try,
                last_error="not offered by Amazon yet")
        return "not_offered"
    try:
        result = send_review_request(api, order_id, marketplace_id)
    except ServerError as exc:
        # Maybe recorded by Amazon: stay in "sending" and let reconciliation ask, never resend blindly.
        _finish(ctx, message_id, run_id, status="sending", last_error=f"ambiguous: {exc}"[:2000])
        return "ambiguous"
    except AmazonError as exc:
        _finish(ctx, message_id, run_id, status="scheduled", last_error=f"{type(exc).__name__}: {exc}"[:2000])
        return "deferred"
    if result.outcome == "sent":
        if after_send is not None:
            after_send(order_id)
        _finish(ctx, message_id, run_id, status="sent", sent_at=ctx.clock.now(), last_error=None)
        return "sent"
    _finish(ctx, message_id, run_id, status="skipped", skip_reason=ALREADY_SOLICITED, last_error=result.message[:2000])
    return "already_solicited"


def run(ctx: JobContext, store_id: int) -> dict[str, Any]:
    """Plan and send today's solicitations for one seller; safe to run twice at once or after a crash."""
    now = ctx.clock.now()
    run_id = f"amazon-solicitations:{uuid.uuid4()}"
    counts: dict[str, Any] = {"planned": 0}
    with ctx.database.session() as session:
        store = amazon_store(session, store_id)
        settings = flow_settings.effective(session, ctx.config, store_id, FLOW)
        if not settings.get("enabled", True) or not store.is_sending_allowed:
            return {"disabled": 1}
        delay_days = float(settings.get("delay_days_after_window_opens", 0) or 0)
        counts["planned"] = plan(session, store_id, now, delay_days)
        timeout = timedelta(minutes=ctx.config.get("amazon.solicitation_claim_timeout_minutes"))
        stale = session.scalars(select(Message.id).where(
            Message.store_id == store_id, Message.flow == FLOW, Message.status == "sending",
            Message.claimed_at < now - timeout).order_by(Message.id)).all()
        due = session.scalars(select(Message.id).where(
            Message.store_id == store_id, Message.flow == FLOW, Message.status == "scheduled",
            Message.scheduled_for <= now).order_by(Message.scheduled_for, Message.id)).all()
        api = open_session(ctx, store)
    after_send = ctx.extras.get("after_solicitation_sent")
    with log_context(store_id=store_id), api:
        for message_id, reconciling in [(m, True) for m in stale] + [(m, False) for m in due]:
            claim_time = ctx.clock.now()
            if not _claim(ctx, message_id, run_id, claim_time,
                          stale_before=claim_time - timeout if reconciling else None):
                counts["claimed_elsewhere"] = counts.get("claimed_elsewhere", 0) + 1
                continue
            outcome = _process(ctx, api, message_id, run_id, delay_days, reconciling, after_send)
            counts[outcome] = counts.get(outcome, 0) + 1
    counts.update({f"api_{k}": v for k, v in api.stats.items()})
    log.info("amazon solicitations run", extra={"store_id": store_id, **counts})
    return counts
