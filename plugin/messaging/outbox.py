"""The outbox: every outgoing action is a `message` row written once per idempotency key.

This module owns the rows' life: ``schedule`` (the flows' batched insert-if-absent) and ``enqueue`` (one row),
then the dispatcher's ``claim_next`` / ``mark_claimed`` / ``mark_sent`` / ``mark_failed_attempt``, ``skip``,
``reschedule``, ``cancel`` and ``reconcile_stale``. Skip and cancel reasons are codes of
plugin.messaging.reasons.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import BigInteger, Column, Integer, MetaData, Table, and_, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from plugin.models import Message


def unsent() -> Any:
    """Return the condition of rows not yet handed over: waiting, or claimed but not past the last check."""
    return or_(Message.status == "scheduled", and_(Message.status == "sending", Message.handed_at.is_(None)))


def cancel(session: Session, store_id: int, reason: str, now: datetime, *where: Any) -> int:
    """Cancel the store's messages matching ``where`` that were not handed over yet, with a reason; return how many.

    Rows already past the dispatcher's last check (``handed_at``) are on their way and keep their course. Actions
    that forbid a customer's messages hold the hand-over locks first (plugin/messaging/handover.py).
    """
    result = session.execute(
        update(Message).where(Message.store_id == store_id, unsent(), *where)
        .values(status="cancelled", skip_reason=reason, claimed_by=None, updated_at=now)
        .execution_options(synchronize_session=False))
    return int(result.rowcount or 0)


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


# From this many rows PostgreSQL's COPY path pays for its staging round trips (the delivery stall notices: ~6,600
# rows took 3.7 s through insertmanyvalues at 1M orders).
COPY_MIN = 500
COPY_CHUNK = 20_000
_FIELD_SET = frozenset(_FIELDS)
_STAGE_NAME = "aftercare_stage_message"
_COLUMNS = ", ".join(_FIELDS)
# The first staged copy of a key wins, in the batch's order, as the executemany path; ids come from the sequence in
# that order, so sorting them gives the batch's order. (Only module constants are formatted in.)
_INSERT_STAGED = text(f"""
WITH inserted AS (
    INSERT INTO message ({_COLUMNS}, attempts, created_at, updated_at)
    SELECT {_COLUMNS}, 0, :now, :now
    FROM (SELECT DISTINCT ON (idempotency_key) * FROM {_STAGE_NAME} ORDER BY idempotency_key, pos) AS firsts
    ORDER BY pos
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id)
SELECT id FROM inserted ORDER BY id
""").columns(id=BigInteger)  # noqa: S608


def schedule(session: Session, rows: Iterable[dict[str, Any]], now: datetime) -> list[int]:
    """Insert rows unless their idempotency key exists, in batches; return the ids of the new rows.

    Of several rows with one key the first is stored. On PostgreSQL a list of at least ``COPY_MIN`` rows built by
    ``message_row`` goes through a COPYed staging table (``_schedule_copied``): same rows, same ids.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        rows = rows if isinstance(rows, list) else list(rows)
        if len(rows) >= COPY_MIN and all(row.keys() == _FIELD_SET for row in rows):
            return _schedule_copied(session, rows, now)
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


@cache
def _staging() -> tuple[Table, str]:
    """Declare the staging table and its setup script (imported here: plugin.sync imports this module)."""
    from plugin.sync.staging import staging_setup, staging_table

    metadata = MetaData()
    table = staging_table(metadata, _STAGE_NAME, Message.__table__,  # type: ignore[arg-type]
                          _FIELDS, Column("pos", Integer))
    return table, staging_setup(metadata)


def _schedule_copied(session: Session, rows: list[dict[str, Any]], now: datetime) -> list[int]:
    """Insert rows on PostgreSQL by COPY into a staging table and one INSERT ... SELECT per chunk; return new ids."""
    if now.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column; pass an aware datetime")
    from plugin.sync.staging import copy_rows, prepare_staging

    stage, setup = _staging()
    new_ids: list[int] = []
    for start in range(0, len(rows), COPY_CHUNK):
        chunk = rows[start:start + COPY_CHUNK]
        for row in chunk:
            # COPY bypasses the column type's check (plugin.types.UTCDateTime): make it here.
            if row["scheduled_for"].tzinfo is None:
                raise ValueError("naive datetime given to a UTC column; pass an aware datetime")
        prepare_staging(session, setup)
        copy_rows(session, stage, (
            (*(json.dumps(row[f]) if f == "payload" else row[f] for f in _FIELDS), pos)
            for pos, row in enumerate(chunk)))
        new_ids.extend(session.execute(_INSERT_STAGED, {"now": now}).scalars().all())
    return new_ids


def find(session: Session, key: str) -> Message | None:
    """Return the message with this idempotency key, if any."""
    return session.scalar(select(Message).where(Message.idempotency_key == key))


# -- the dispatcher's side: claim, result, reconcile ----------------------------------------------------------
# A claim is committed before the send and the result after it. Between the two, only the crash of the
# dispatcher can leave a row in ``sending``; ``reconcile_stale`` hands such rows back after the claim timeout
# (see plugin/messaging/dispatch.py for why that costs at most one duplicate per crash).


def claim_next(session: Session, now: datetime, channels: list[str], skip_ids: set[int] | None = None,
               ) -> Message | None:
    """Lock and return the next due scheduled message of these channels (SKIP LOCKED on PostgreSQL)."""
    query = (select(Message)
             .where(Message.status == "scheduled", Message.scheduled_for <= now, Message.channel.in_(channels))
             .order_by(Message.scheduled_for, Message.id).limit(1))
    if skip_ids:
        query = query.where(Message.id.not_in(skip_ids))
    if session.get_bind().dialect.name == "postgresql":
        # Several dispatchers: each takes rows the others have not locked. SQLite serialises writers
        # with BEGIN IMMEDIATE (plugin/db.py), which gives the same guarantee one transaction at a time.
        query = query.with_for_update(skip_locked=True)
    return session.scalar(query)


def mark_claimed(message: Message, worker_id: str, now: datetime) -> None:
    """Take the message for sending: ``sending``, who and when, one more attempt."""
    message.status = "sending"
    message.claimed_by = worker_id
    message.claimed_at = now
    message.handed_at = None
    message.attempts = (message.attempts or 0) + 1


def _by_claim(message_id: int, worker_id: str) -> Any:
    return update(Message).where(Message.id == message_id, Message.status == "sending",
                                 Message.claimed_by == worker_id).execution_options(synchronize_session=False)


def mark_sent(session: Session, message_id: int, worker_id: str, now: datetime, provider_id: str | None = None
              ) -> bool:
    """Record a delivery; False when the claim was lost meanwhile (reconciled as presumed crashed)."""
    values: dict[str, Any] = {"status": "sent", "sent_at": now, "skip_reason": None, "last_error": None,
                              "updated_at": now}
    if provider_id is not None:
        values["provider_id"] = provider_id
    return session.execute(_by_claim(message_id, worker_id).values(**values)).rowcount == 1


def retry_delay(attempts: int, base_seconds: float, max_seconds: float) -> timedelta:
    """Exponential backoff: base, 2×base, 4×base ... capped at max_seconds."""
    return timedelta(seconds=min(base_seconds * (2 ** max(attempts - 1, 0)), max_seconds))


def mark_failed_attempt(session: Session, message: Message, worker_id: str, now: datetime, error: str, *,
                        permanent: bool, max_attempts: int, base_seconds: float, max_seconds: float) -> str:
    """Record a failed send: back to ``scheduled`` with backoff, or ``failed`` when permanent or out of attempts."""
    if permanent or message.attempts >= max_attempts:
        status, when = "failed", message.scheduled_for
        if not permanent:
            error = f"gave up after {message.attempts} attempts: {error}"
    else:
        status, when = "scheduled", now + retry_delay(message.attempts, base_seconds, max_seconds)
    session.execute(_by_claim(message.id, worker_id).values(
        status=status, scheduled_for=when, last_error=error[:2000], claimed_by=None, updated_at=now))
    return status


def skip(message: Message, reason: str, now: datetime) -> None:
    """Skip a message for good, keeping the reason."""
    message.status = "skipped"
    message.skip_reason = reason
    message.updated_at = now


def reschedule(message: Message, when: datetime, reason: str, now: datetime) -> None:
    """Move a message to its next allowed slot; it stays scheduled and keeps why it waits."""
    message.scheduled_for = when
    message.skip_reason = reason
    message.updated_at = now


def reconcile_stale(session: Session, now: datetime, claim_timeout: timedelta, max_attempts: int,
                    channels: list[str] | None = None) -> int:
    """Hand back messages of these channels left in ``sending`` by a crashed dispatcher; return how many.

    Only channels without a ``reconcile`` hook: those that can ask their provider (``amazon_solicitation``)
    have their rows taken over with ``take_stale`` and decided by the hook instead of resent.

    The delivery of such a message is unknown (the SMTP server may have accepted it just before the crash),
    so it is resent once with the same Message-ID. Each claim counts as an attempt, so a message that kills
    its dispatcher every time ends ``failed`` after ``max_attempts`` instead of looping.
    """
    query = (select(Message).where(Message.status == "sending", Message.claimed_at < now - claim_timeout)
             .order_by(Message.id))
    if channels is not None:
        query = query.where(Message.channel.in_(channels))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    stale = list(session.scalars(query))
    for message in stale:
        note = (f"dispatcher {message.claimed_by} stopped mid-send (claimed {message.claimed_at:%Y-%m-%d %H:%M:%S}"
                " UTC); delivery unknown")
        if message.handed_at is None:
            # It never passed the last check, so nothing of it reached the channel: resending duplicates nothing.
            note = (f"dispatcher {message.claimed_by} stopped before handing it over (claimed "
                    f"{message.claimed_at:%Y-%m-%d %H:%M:%S} UTC); nothing was sent")
        if message.attempts >= max_attempts:
            message.status = "failed"
            message.last_error = f"gave up after {message.attempts} attempts: {note}"
        else:
            message.status = "scheduled"
            message.last_error = note if message.handed_at is None else f"{note}; resending with the same Message-ID"
        message.claimed_by = None
        message.updated_at = now
    return len(stale)


# -- channels that answer for themselves: not sent, unconfirmed, reconciled by asking the provider ----------------


def settle_claim(session: Session, message_id: int, worker_id: str, now: datetime, **values: Any) -> bool:
    """Write what became of this worker's claim (any message columns); False when the claim was lost meanwhile."""
    return session.execute(_by_claim(message_id, worker_id).values(updated_at=now, **values)).rowcount == 1


def take_stale(session: Session, now: datetime, claim_timeout: timedelta, channel: str, worker_id: str,
               ) -> Message | None:
    """Take over the oldest claim of ``channel`` left in ``sending`` past the timeout, for ``worker_id``.

    Returns a detached copy of the row as the crashed claimant left it (its ``claimed_at`` says when the lost
    send began); the row itself now carries the new claim, so no other dispatcher takes it meanwhile.
    """
    query = (select(Message).where(Message.status == "sending", Message.channel == channel,
                                   Message.claimed_at < now - claim_timeout).order_by(Message.id).limit(1))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    message = session.scalar(query)
    if message is None:
        return None
    session.expunge(message)
    session.execute(update(Message).where(Message.id == message.id)
                    .values(claimed_by=worker_id, claimed_at=now, updated_at=now)
                    .execution_options(synchronize_session=False))
    return message
