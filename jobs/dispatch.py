"""Job: send the due outbox messages (email, review replies) through the dispatcher.

Unlike per-store flow jobs it works across stores: the outbox is one queue, and the send policy applies each
store's own settings. Several dispatchers may run at once on PostgreSQL (rows are claimed with SKIP LOCKED).
"""

from __future__ import annotations

from plugin.context import JobContext
from plugin.messaging.dispatch import dispatch_due as _dispatch_due


def dispatch_due(ctx: JobContext, limit: int | None = None, worker_id: str | None = None,
                 channels: list[str] | None = None) -> dict[str, int]:
    """Send up to ``limit`` due messages of ``channels`` (default: all registered); return counts by outcome."""
    return _dispatch_due(ctx, limit=limit, worker_id=worker_id, channels=channels)
