"""The per-store, per-stream sync state: cursors, bulk operation in flight, last success and last error."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.context import JobContext
from plugin.models import SyncState
from plugin.sync.sql import SYNC_STATE, insert_for


def parse_cursor(value: str | None) -> datetime | None:
    """Read a stored cursor (ISO-8601) back as an aware datetime."""
    return datetime.fromisoformat(value) if value else None


def format_cursor(value: datetime | None) -> str | None:
    """Store a cursor as ISO-8601 UTC."""
    return value.isoformat() if value else None


def get_sync_state(session: Session, store_id: int, stream: str) -> SyncState:
    """Return the stream's sync_state row, creating it (no cursor yet) when absent."""
    stmt = insert_for(session, SYNC_STATE).values(store_id=store_id, stream=stream, records_synced=0)
    session.execute(stmt.on_conflict_do_nothing(index_elements=["store_id", "stream"]))
    state = session.scalars(select(SyncState).where(SyncState.store_id == store_id, SyncState.stream == stream)
                            .execution_options(populate_existing=True)).one()
    return state


def mark_sync_started(session: Session, store_id: int, stream: str, *, now: datetime,
                      bulk_operation_id: str | None = None) -> SyncState:
    """Record that a run of the stream started (and the bulk operation it waits for, if any)."""
    state = get_sync_state(session, store_id, stream)
    state.last_started_at = now
    state.bulk_operation_id = bulk_operation_id
    session.flush()
    return state


def mark_sync_success(session: Session, store_id: int, stream: str, *, cursor: str | None, now: datetime,
                      records: int = 0) -> SyncState:
    """Record a successful run: move the cursor (None keeps it), clear the error, count the records."""
    state = get_sync_state(session, store_id, stream)
    if cursor is not None:
        state.cursor = cursor
    state.last_success_at = now
    state.last_error = None
    state.last_error_at = None
    state.bulk_operation_id = None
    state.records_synced = (state.records_synced or 0) + records
    session.flush()
    return state


def mark_sync_failure(session: Session, store_id: int, stream: str, *, error: str, now: datetime) -> SyncState:
    """Record a failed run; the cursor stays where the last success left it."""
    state = get_sync_state(session, store_id, stream)
    state.last_error = error[:4000]
    state.last_error_at = now
    session.flush()
    return state



@contextmanager
def failure_recorded(ctx: JobContext, store_id: int, stream: str,
                     errors: type[BaseException] | tuple[type[BaseException], ...] = Exception) -> Iterator[None]:
    """Record an error of the block on the stream (in its own transaction), then let it reach the job runner."""
    try:
        yield
    # Only records and re-raises: the job runner decides what a failure means (it is the one catch-all).
    except errors as exc:
        with ctx.database.session() as session:
            mark_sync_failure(session, store_id, stream, error=f"{type(exc).__name__}: {exc}", now=ctx.clock.now())
        raise
