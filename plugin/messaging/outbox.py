"""The outbox: every outgoing action is a `message` row written once per idempotency key."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from plugin.models import Message


def idempotency_key(store_id: int, flow: str, *parts: object) -> str:
    """Build the key that makes a message unique, e.g. ``7:review_request:order=123:step=main``."""
    return ":".join([str(store_id), flow, *(str(p) for p in parts)])


def enqueue(session: Session, *, store_id: int, flow: str, channel: str, idempotency_key: str,
            scheduled_for: datetime, step: str = "main", customer_id: int | None = None,
            order_id: int | None = None, review_id: int | None = None, ticket_id: int | None = None,
            product_id: int | None = None, marketing: bool = False, locale: str | None = None,
            to_address: str | None = None, payload: dict[str, Any] | None = None,
            status: str = "scheduled", skip_reason: str | None = None) -> Message | None:
    """Insert a message unless its key exists; return the new row, or None when it was already there."""
    values = dict(store_id=store_id, flow=flow, step=step, channel=channel, idempotency_key=idempotency_key,
                  scheduled_for=scheduled_for, customer_id=customer_id, order_id=order_id, review_id=review_id,
                  ticket_id=ticket_id, product_id=product_id, marketing=marketing, locale=locale,
                  to_address=to_address, payload=payload or {}, status=status, skip_reason=skip_reason,
                  attempts=0)
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    # ON CONFLICT DO NOTHING: two job runs racing on the same key both succeed, one row results.
    stmt = insert(Message).values(**values).on_conflict_do_nothing(index_elements=["idempotency_key"])
    result = session.execute(stmt.returning(Message.id))
    new_id = result.scalar_one_or_none()
    if new_id is None:
        return None
    return session.get(Message, new_id)


def find(session: Session, key: str) -> Message | None:
    """Return the message with this idempotency key, if any."""
    return session.scalar(select(Message).where(Message.idempotency_key == key))
