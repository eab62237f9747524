"""Unreadable records: orders (and other records) a marketplace served that a sync could not read, and why.

A bad record never stops a sync (``plugin.sync.rejections``): the run stores the others and notes this one. The
list tells the merchant which records are missing from Aftercare until the marketplace serves them readably.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugin.admin.blueprint import bp, ctx, keyset_page, page
from plugin.db import get_session
from plugin.models import SyncRejection

# What each stream's external id names, for the column heading a merchant reads.
STREAM_LABELS = {"amazon_orders": "Amazon order"}


def rejected_count(session: Session, store_ids: list[int]) -> int:
    """Count the unreadable records noted for these stores."""
    if not store_ids:
        return 0
    return session.scalar(select(func.count()).select_from(SyncRejection)
                          .where(SyncRejection.store_id.in_(store_ids))) or 0


def rejected_page(session: Session, store_ids: list[int], limit: int, before: int | None) -> list[SyncRejection]:
    """Return one keyset page of these stores' unreadable records, newest note first."""
    if not store_ids:
        return []
    query = select(SyncRejection).where(SyncRejection.store_id.in_(store_ids))
    if before is not None:
        query = query.where(SyncRejection.id < before)
    return list(session.scalars(query.order_by(SyncRejection.id.desc()).limit(limit)))


@bp.get("/sync/rejected")
def rejected_records() -> Any:
    """List the selected stores' unreadable records with their reasons (keyset pages)."""
    context = ctx()
    session = get_session()
    rows, more, next_before = keyset_page(lambda limit, before: rejected_page(session, context.scope_ids, limit,
                                                                                before))
    return page("admin/sync_rejections.html", rows=rows, more=more, next_before=next_before,
                total=rejected_count(session, context.scope_ids), labels=STREAM_LABELS,
                store_names={s.id: s.name or s.external_id for s in context.stores})
