"""Helpers every flow shares: batched, insert-if-absent outbox writes and the flow's store settings."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from plugin import flow_settings
from plugin.context import JobContext
from plugin.messaging.outbox import idempotency_key
from plugin.models import Message, Store

BATCH = 1000
# Columns a flow may set; everything else takes the model's defaults.
_FIELDS = ("store_id", "customer_id", "order_id", "review_id", "ticket_id", "product_id", "flow", "step",
           "channel", "marketing", "locale", "idempotency_key", "scheduled_for", "status", "skip_reason",
           "to_address", "subject", "payload")


def message_row(*, store_id: int, flow: str, step: str, key_parts: tuple[object, ...], scheduled_for: datetime,
                channel: str = "email", **values: Any) -> dict[str, Any]:
    """Build one outbox row whose idempotency key is ``store:flow:<parts>:step=<step>``."""
    row: dict[str, Any] = {name: None for name in _FIELDS}
    row.update(store_id=store_id, flow=flow, step=step, channel=channel, marketing=False, status="scheduled",
               payload={}, scheduled_for=scheduled_for,
               idempotency_key=idempotency_key(store_id, flow, *key_parts, f"step={step}"))
    unknown = set(values) - set(_FIELDS)
    if unknown:
        raise TypeError(f"unknown message fields: {sorted(unknown)}")
    row.update(values)
    return row


def write_messages(session: Session, rows: Iterable[dict[str, Any]], now: datetime) -> list[int]:
    """Insert rows unless their idempotency key exists, in batches; return the ids of the new rows."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    new_ids: list[int] = []
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        if not batch:
            return
        stmt = (insert(Message).on_conflict_do_nothing(index_elements=["idempotency_key"])
                .returning(Message.id))
        new_ids.extend(session.execute(stmt, batch).scalars().all())
        batch.clear()

    for row in rows:
        batch.append({**row, "attempts": 0, "created_at": now, "updated_at": now})
        if len(batch) >= BATCH:
            flush()
    flush()
    return new_ids


def flow_config(session: Session, ctx: JobContext, store_id: int, flow: str) -> dict[str, Any]:
    """Return the store's effective settings of a flow (app.toml defaults overlaid by its own)."""
    return flow_settings.effective(session, ctx.config, store_id, flow)


def open_flow(session: Session, ctx: JobContext, store_id: int,
              flow: str) -> tuple[Store, dict[str, Any]] | dict[str, int]:
    """Return (store, settings) when the flow may run for the store, else the counts saying why not."""
    store = sending_store(session, store_id)
    if store is None:
        return {"inactive": 1}
    settings = flow_config(session, ctx, store_id, flow)
    if not settings.get("enabled", True):
        return {"disabled": 1}
    return store, settings


def sending_store(session: Session, store_id: int, platform: str = "shopify") -> Store | None:
    """Return the store when it exists, is installed and is on the platform; else None."""
    store = session.get(Store, store_id)
    if store is None or store.platform != platform or not store.is_sending_allowed:
        return None
    return store
