"""The webhook inbox: verified deliveries are stored once per ``X-Shopify-Webhook-Id`` and processed later."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from plugin.models import Store, WebhookEvent


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
                 received_at: datetime) -> WebhookEvent | None:
    """Insert the event unless its webhook id is known; return the new row, or None for a replay."""
    values = dict(store_id=store_id, shop_domain=delivery.shop_domain, webhook_id=delivery.webhook_id,
                  event_id=delivery.event_id, topic=delivery.topic, api_version=delivery.api_version,
                  triggered_at=delivery.triggered_at, received_at=received_at, attempts=0, payload=payload)
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
