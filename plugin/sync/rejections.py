"""Remote records a sync could not read: kept per record (store, stream, external id) with the reason.

A bad record never stops a sync: the run writes the others, moves its cursor, and notes the bad one here, where
the admin and ``aftercare`` can show it. The note goes away when a later run reads the record cleanly.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from plugin.models import SyncRejection
from plugin.sync.sql import IN_CHUNK, chunked, insert_for

REJECTIONS = SyncRejection.__table__


def note_rejected(session: Session, store_id: int, stream: str, rejected: Iterable[tuple[str, str]],
                  now: datetime) -> int:
    """Record (external id, reason) pairs a run could not read; a record seen again keeps its first time."""
    rows = [{"store_id": store_id, "stream": stream, "external_id": external_id[:255], "reason": reason[:2000],
             "first_seen_at": now, "last_seen_at": now, "times_seen": 1}
            for external_id, reason in dict(rejected).items()]
    if not rows:
        return 0
    stmt = insert_for(session, REJECTIONS)
    stmt = stmt.on_conflict_do_update(
        index_elements=["store_id", "stream", "external_id"],
        set_={"reason": stmt.excluded.reason, "last_seen_at": stmt.excluded.last_seen_at,
              "times_seen": REJECTIONS.c.times_seen + 1})
    session.execute(stmt, rows)
    return len(rows)


def clear_read(session: Session, store_id: int, stream: str, external_ids: Iterable[str]) -> None:
    """Forget the rejections of records a run has now read cleanly."""
    for ids in chunked(external_ids, IN_CHUNK):
        session.execute(delete(SyncRejection).where(SyncRejection.store_id == store_id,
                                                    SyncRejection.stream == stream,
                                                    SyncRejection.external_id.in_(ids)))


def rejections(session: Session, store_id: int, stream: str | None = None) -> list[SyncRejection]:
    """Return a store's unreadable records (of one stream, or all), most recently seen first."""
    query = select(SyncRejection).where(SyncRejection.store_id == store_id)
    if stream is not None:
        query = query.where(SyncRejection.stream == stream)
    return list(session.scalars(query.order_by(SyncRejection.last_seen_at.desc(), SyncRejection.id)))
