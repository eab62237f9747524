"""The suppression list: addresses no flow of a store may email again (unsubscribes, bounces, complaints)."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from plugin.models import DeliveryOptOut, Suppression


def normalize(email: str) -> str:
    """Return the address as stored on the list (trimmed, lower-cased)."""
    return email.strip().lower()


def digest(email: str) -> str:
    """Return the SHA-256 a redaction leaves on the list instead of the address (plugin.webhooks.compliance)."""
    return hashlib.sha256(normalize(email).encode("utf-8")).hexdigest()


def is_suppressed(session: Session, store_id: int, email: str) -> bool:
    """Say whether the store may no longer email this address (listed in clear, or as a redaction digest)."""
    keys = [normalize(email), digest(email)]
    return session.scalar(select(Suppression.id).where(Suppression.store_id == store_id,
                                                       Suppression.email.in_(keys)).limit(1)) is not None


def suppress(session: Session, store_id: int, email: str, reason: str, detail: str | None = None,
             now: datetime | None = None) -> bool:
    """Put an address on the store's list (insert-if-absent); return True when it was not there yet."""
    values = {"store_id": store_id, "email": normalize(email), "reason": reason, "detail": detail}
    if now is not None:
        values["created_at"] = now
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(Suppression).values(**values).on_conflict_do_nothing(index_elements=["store_id", "email"])
    return session.execute(stmt.returning(Suppression.id)).scalar_one_or_none() is not None


def delivery_updates_off(session: Session, store_id: int, email: str) -> bool:
    """Say whether this address turned the store's delivery updates off (other mail is not affected)."""
    found = session.scalar(select(DeliveryOptOut.id).where(DeliveryOptOut.store_id == store_id,
                                                           DeliveryOptOut.email == normalize(email)).limit(1))
    return found is not None


def turn_off_delivery_updates(session: Session, store_id: int, email: str, now: datetime) -> bool:
    """Record the address's one-click opt-out of delivery updates; return True when it was not recorded yet."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(DeliveryOptOut).values(store_id=store_id, email=normalize(email), created_at=now) \
        .on_conflict_do_nothing(index_elements=["store_id", "email"])
    return session.execute(stmt.returning(DeliveryOptOut.id)).scalar_one_or_none() is not None
