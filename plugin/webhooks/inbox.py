"""The webhook inbox: verified deliveries are stored once per ``X-Shopify-Webhook-Id`` and processed later.

An event ends processed (``processed_at``) or failed (``failed_at`` with the reason in ``last_error``): at once
when its body can never be applied (a permanent error: not JSON, a required field missing), or after
``MAX_ATTEMPTS`` tries when the error was transient (the database, a bug fixed by the next release).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from plugin.models import Store, WebhookEvent

MAX_ATTEMPTS = 8
PERMANENT, TRANSIENT = "permanent", "transient"


@dataclass(frozen=True)
class Delivery:
    """The headers of one verified webhook delivery that we keep."""

    shop_domain: str
    topic: str
    webhook_id: str
    event_id: str | None
    api_version: str | None
    triggered_at: datetime | None


def find_shopify_store(session: Session, shop_domain: str) -> Store | None:
    """Return the Shopify store row of a shop domain, if we know the shop."""
    return session.scalar(select(Store).where(Store.platform == "shopify", Store.external_id == shop_domain))


def record_event(session: Session, delivery: Delivery, payload: dict[str, Any] | None, store_id: int | None,
                 received_at: datetime, unreadable: str | None = None) -> WebhookEvent | None:
    """Insert the event unless its webhook id is known; return the new row, or None for a replay.

    ``unreadable``: why the body cannot be read at all (not JSON); the event is stored failed at once, so the
    merchant sees it and Shopify does not retry what can never succeed.
    """
    values = dict(store_id=store_id, shop_domain=delivery.shop_domain, webhook_id=delivery.webhook_id,
                  event_id=delivery.event_id, topic=delivery.topic, api_version=delivery.api_version,
                  triggered_at=delivery.triggered_at, received_at=received_at, attempts=0, payload=payload)
    if unreadable is not None:
        values.update(attempts=1, failed_at=received_at, last_error=failure_reason(PERMANENT, unreadable, 1))
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    # ON CONFLICT DO NOTHING: Shopify's retries and concurrent duplicate deliveries leave one row.
    stmt = insert(WebhookEvent).values(**values).on_conflict_do_nothing(index_elements=["webhook_id"])
    new_id = session.execute(stmt.returning(WebhookEvent.id)).scalar_one_or_none()
    return None if new_id is None else session.get(WebhookEvent, new_id)


def same_event_seen(session: Session, delivery: Delivery) -> bool:
    """Say whether this event id already arrived for the same shop and topic under another webhook id.

    One event can reach the app through several subscriptions, each delivery with its own webhook id
    (https://shopify.dev/docs/apps/build/webhooks/ignore-duplicates).
    """
    if not delivery.event_id:
        return False
    found = session.scalar(select(WebhookEvent.id).where(
        WebhookEvent.shop_domain == delivery.shop_domain, WebhookEvent.topic == delivery.topic,
        WebhookEvent.event_id == delivery.event_id, WebhookEvent.webhook_id != delivery.webhook_id).limit(1))
    return found is not None


def failure_reason(kind: str, error: str, attempts: int) -> str:
    """Say why an event failed, in the words the admin shows (``permanent error: ...``)."""
    if kind == PERMANENT:
        return f"permanent error (the body can never be applied): {error}"[:2000]
    if attempts >= MAX_ATTEMPTS:
        return f"transient error, given up after {attempts} attempts: {error}"[:2000]
    return f"transient error (attempt {attempts} of {MAX_ATTEMPTS}): {error}"[:2000]


@dataclass(frozen=True)
class Failure:
    """What recording one failed attempt left: the attempts so far and whether the event is now given up."""

    attempts: int
    failed: bool
    store_id: int | None
    topic: str


def record_failure(session: Session, event_id: int, kind: str, error: str, now: datetime) -> Failure | None:
    """Count a failed attempt of an event; a permanent error (or the last attempt) marks it failed for good.

    The body is kept: an operator can see what came, and customers/redact and shop/redact erase it like any
    stored body.
    """
    event = session.get(WebhookEvent, event_id, with_for_update=True)
    if event is None:
        return None
    event.attempts += 1
    failed = kind == PERMANENT or event.attempts >= MAX_ATTEMPTS
    event.last_error = failure_reason(kind, error, event.attempts)
    if failed:
        event.failed_at = now
    session.flush()
    return Failure(event.attempts, failed, event.store_id, event.topic)


def failed_events(session: Session, store_ids: list[int], limit: int, before: int | None = None
                  ) -> list[WebhookEvent]:
    """Return the stores' failed events, newest first (``before``: an id to page from)."""
    query = select(WebhookEvent).where(WebhookEvent.store_id.in_(store_ids), WebhookEvent.failed_at.is_not(None))
    if before is not None:
        query = query.where(WebhookEvent.id < before)
    return list(session.scalars(query.order_by(WebhookEvent.id.desc()).limit(limit)))


def failed_count(session: Session, store_ids: list[int]) -> int:
    """Return how many of the stores' events failed for good."""
    return int(session.scalar(select(func.count()).select_from(WebhookEvent).where(
        WebhookEvent.store_id.in_(store_ids), WebhookEvent.failed_at.is_not(None))) or 0)
