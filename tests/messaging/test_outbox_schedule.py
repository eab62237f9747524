"""``outbox.schedule``: insert-if-absent by idempotency key, the ids of new rows back, first copy of a key wins.

On PostgreSQL a batch of at least ``COPY_MIN`` rows takes the COPY staging path; smaller ones (and SQLite) the
executemany path. Both must store the same rows and return the same ids in the batch's order.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from plugin.messaging import outbox
from plugin.models import Message
from tests.messaging import seed

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
N = 1_200  # over COPY_MIN: the COPY path on PostgreSQL
COLUMNS = ("flow", "step", "channel", "marketing", "locale", "idempotency_key", "scheduled_for", "status",
           "skip_reason", "to_address", "subject", "payload", "attempts", "created_at", "updated_at")


def _rows(store_id: int) -> list[dict[str, Any]]:
    """Build N rows: keys 0..N-1 except that every 25th row repeats the key of the row 7 before it (with another
    subject and payload), and row 3 takes the key of a message stored beforehand."""
    rows = []
    for i in range(N):
        part = i - 7 if i % 25 == 24 else i
        rows.append(outbox.message_row(
            store_id=store_id, flow="delivery_update", step="main", key_parts=(f"parcel={part}",),
            scheduled_for=NOW + timedelta(minutes=i), status="skipped" if i % 10 == 0 else "scheduled",
            skip_reason="quiet_hours" if i % 10 == 0 else None, locale=("en", "de", "ar")[i % 3],
            to_address=f"c{i}@example.com", subject=f"Subject «{i}» — \\n\t tab", payload={
                "copy": i, "nested": {"list": [1, "zwei", None, True], "text": "quote \" back\\slash ✓"},
                "empty": {}, "none": None}))
    rows[3]["idempotency_key"] = rows[2]["idempotency_key"].replace("parcel=2", "parcel=stored")
    return rows


def _expected(store_id: int, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The rows that must be new, in the batch's order: first copy of each key, not the stored one."""
    seen = {f"{store_id}:delivery_update:parcel=stored:step=main"}
    out = []
    for row in rows:
        if row["idempotency_key"] in seen:
            continue
        seen.add(row["idempotency_key"])
        out.append((*(row[c] for c in COLUMNS[:12]), 0, NOW, NOW))
    return out


def _stored(session: Session, ids: list[int]) -> list[tuple[Any, ...]]:
    found = {m.id: m for m in session.scalars(select(Message).where(Message.id.in_(ids)))}
    return [tuple(getattr(found[i], c) for c in COLUMNS) for i in ids]


def _stage_exists(session: Session) -> bool:
    return session.scalar(text("SELECT to_regclass('pg_temp.aftercare_stage_message') IS NOT NULL")) is True


def test_schedule_returns_new_ids_in_order_and_ignores_duplicates(db_session: Session) -> None:
    """A large batch: duplicates within it and against a stored row are ignored, ids are the new rows' in order."""
    store = seed.store(db_session)
    stored = outbox.enqueue(db_session, store_id=store.id, flow="delivery_update", channel="email",
                            idempotency_key=f"{store.id}:delivery_update:parcel=stored:step=main",
                            scheduled_for=NOW, payload={"original": True})
    assert stored is not None
    rows = _rows(store.id)
    expected = _expected(store.id, rows)
    assert len(expected) == N - N // 25 - 1

    ids = outbox.schedule(db_session, rows, NOW)

    assert len(ids) == len(expected) and ids == sorted(ids) and stored.id not in ids
    assert _stored(db_session, ids) == expected
    db_session.expire_all()
    again = db_session.get(Message, stored.id)
    assert again is not None and again.payload == {"original": True} and again.scheduled_for == NOW
    count = db_session.scalar(select(func.count()).select_from(Message).where(Message.store_id == store.id))
    assert count == len(expected) + 1
    if db_session.get_bind().dialect.name == "postgresql":
        assert _stage_exists(db_session), "the large batch took the COPY path"

    # The same batch again: nothing new.
    assert outbox.schedule(db_session, rows, NOW) == []


def test_copy_path_and_executemany_path_store_the_same_rows(db_session: Session) -> None:
    """The same batch in one call (COPY on PostgreSQL) and in calls below COPY_MIN (executemany) stores the same."""
    one, other = seed.store(db_session), seed.store(db_session, external_id="other-shop.myshopify.com")
    small = outbox.COPY_MIN - 1
    results = {}
    for store, sizes in ((one, [N]), (other, [small, small, N - 2 * small])):
        outbox.enqueue(db_session, store_id=store.id, flow="delivery_update", channel="email",
                       idempotency_key=f"{store.id}:delivery_update:parcel=stored:step=main", scheduled_for=NOW)
        rows = _rows(store.id)
        ids: list[int] = []
        start = 0
        for size in sizes:
            ids += outbox.schedule(db_session, rows[start:start + size], NOW)
            start += size
        assert ids == sorted(ids)
        results[store.id] = [(r[5].split(":", 1)[1], *r[:5], *r[6:]) for r in _stored(db_session, ids)]
    assert results[one.id] == results[other.id]
    assert len(results[one.id]) == len(_expected(one.id, _rows(one.id)))


@pytest.mark.parametrize("size", [3, N])
def test_schedule_refuses_naive_datetimes(db_session: Session, size: int) -> None:
    """A naive scheduled_for is refused on both paths, as the column type refuses it."""
    store = seed.store(db_session)
    rows = _rows(store.id)[:size]
    rows[-1]["scheduled_for"] = datetime(2026, 3, 2, 12, 0)
    with pytest.raises(Exception, match="naive datetime"):
        outbox.schedule(db_session, rows, NOW)
