"""Tombstones of orders and products the platform deleted, so that a late copy of one is not re-added.

Shopify retries a failed delivery for up to 48 hours and does not promise order, so an ``orders/updated``
sent before an ``orders/delete`` can arrive after it (as can a bulk file or a page read just before).
https://shopify.dev/docs/apps/build/webhooks/ignore-duplicates
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from plugin.models import DeletedRecord


def add_tombstone(session: Session, store_id: int, kind: str, external_id: str, now: datetime) -> None:
    """Record that the platform deleted this order or product (once)."""
    if session.get(DeletedRecord, (store_id, kind, external_id)) is None:
        session.add(DeletedRecord(store_id=store_id, kind=kind, external_id=external_id, deleted_at=now))
        session.flush()


def is_deleted(session: Session, store_id: int, kind: str, external_id: str) -> bool:
    """Say whether the platform deleted this order or product (a late copy of it must not be re-added)."""
    return session.get(DeletedRecord, (store_id, kind, external_id)) is not None
