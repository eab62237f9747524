"""The owner of customer rows: the customer stream's upsert, the customers embedded in orders, tombstones.

A customer whose ``redacted_at`` is set is never updated again, so personal data cannot come back; an older
copy (``updated_at`` before the stored one) never overwrites a newer one. A ``customers/redact`` for someone
we have not stored yet (it came before the first sync, or before the sync reached them) leaves an empty
redacted row, the tombstone, so the backfill, a later sync and every webhook body meet ``redacted_at`` too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.orm import Session

from connectors.records import CustomerRecord
from plugin.messaging import handover
from plugin.messaging.withdrawals import CONSENT_WITHDRAWN, withdraw_consents
from plugin.sync.sql import CUSTOMERS, IN_CHUNK, chunked, custom_plans, dedupe, ids_by_external, not_older, upsert

# Consent is dated by its own time, not the customer's updatedAt: the consent webhook sets it without moving
# remote_updated_at, so a copy read before a withdrawal but written after it must not bring consent back.
CONSENT_DATED = {"marketing_consent": "marketing_consent_at", "marketing_consent_at": "marketing_consent_at"}
CUSTOMER_FIELDS = ("email", "first_name", "locale", "country", "time_zone", "marketing_consent",
                   "marketing_consent_at", "birthday", "tags", "remote_created_at", "remote_updated_at")
# Fields an order's embedded customer may fill in without erasing what the customer stream knows.
CUSTOMER_MERGE_FIELDS = ("email", "first_name", "locale", "country", "time_zone", "birthday", "remote_created_at")


def customer_row(store_id: int, record: CustomerRecord) -> dict[str, Any]:
    """Return the ``customer`` row of a record (e-mail trimmed, country upper-cased)."""
    return {
        "store_id": store_id, "external_id": record.external_id,
        "email": record.email.strip() if record.email else None, "first_name": record.first_name,
        "locale": record.locale, "country": record.country.upper() if record.country else None,
        "time_zone": record.time_zone, "marketing_consent": bool(record.marketing_consent),
        "marketing_consent_at": record.marketing_consent_at, "birthday": record.birthday,
        "tags": list(record.tags), "remote_created_at": record.created_at, "remote_updated_at": record.updated_at,
    }


def not_redacted(excluded: Any) -> ColumnElement[bool]:
    """Return the upsert condition that leaves redacted customers alone."""
    return CUSTOMERS.c.redacted_at.is_(None)


def _customer_not_redacted_and_newer(excluded: Any) -> ColumnElement[bool]:
    return and_(CUSTOMERS.c.redacted_at.is_(None), not_older(CUSTOMERS, excluded))


def upsert_customers(session: Session, store_id: int, records: Iterable[CustomerRecord], *, now: datetime,
                     batch_size: int = 1000) -> int:
    """Insert or update customers; return how many rows were written (new or changed).

    A redacted customer (``redacted_at`` set) is never updated, so a sync cannot bring back erased data. A
    customer whose consent this write takes away (the sync or a webhook saw a withdrawal) has their marketing
    that has not left yet cancelled at once (``consent_withdrawn``), not skipped later at dispatch.
    """
    custom_plans(session)
    written = 0
    for batch in chunked(records, batch_size):
        rows = dedupe(customer_row(store_id, r) for r in batch)
        consenting = _consenting(session, store_id, [r["external_id"] for r in rows if not r["marketing_consent"]])
        # The hand-over locks before the row locks, the order redaction and unsubscribes take them in.
        handover.lock_recipients(session, store_id, consenting)
        written += len(upsert(session, CUSTOMERS, rows, keys=("store_id", "external_id"), update=CUSTOMER_FIELDS,
                               where=_customer_not_redacted_and_newer, dated=CONSENT_DATED))
        if consenting:
            # A copy older than the stored consent leaves it as it is (CONSENT_DATED): only real withdrawals.
            withdrawn = session.scalars(select(CUSTOMERS.c.id).where(CUSTOMERS.c.id.in_(consenting),
                                                                     CUSTOMERS.c.marketing_consent.is_(False)))
            withdraw_consents(session, store_id, list(withdrawn), CONSENT_WITHDRAWN, now)
    return written


def _consenting(session: Session, store_id: int, external_ids: list[str]) -> list[int]:
    """Return the ids of these customers who hold marketing consent now."""
    found: list[int] = []
    for part in chunked(sorted(external_ids), IN_CHUNK):
        found.extend(session.scalars(select(CUSTOMERS.c.id).where(
            CUSTOMERS.c.store_id == store_id, CUSTOMERS.c.external_id.in_(part),
            CUSTOMERS.c.marketing_consent.is_(True))))
    return found


def embedded_customers(session: Session, store_id: int, records: list[CustomerRecord]) -> tuple[dict[str, int], int]:
    """Return ids of an order batch's customers, creating missing ones and filling blanks of older copies.

    A customer already stored at least as recently as the order's copy is left alone (the customer stream
    owns it); this keeps a backfill from rewriting every customer once per order.
    """
    rows = dedupe(customer_row(store_id, r) for r in records)
    ids: dict[str, int] = {}
    stored: dict[str, Any] = {}
    for part in chunked(sorted(r["external_id"] for r in rows), IN_CHUNK):
        query = select(CUSTOMERS.c.external_id, CUSTOMERS.c.id, CUSTOMERS.c.remote_updated_at).where(
            CUSTOMERS.c.store_id == store_id, CUSTOMERS.c.external_id.in_(part))
        for ext, customer_id, updated in session.execute(query):
            ids[ext] = customer_id
            stored[ext] = updated
    todo = [r for r in rows if r["external_id"] not in ids
            or (r["remote_updated_at"] is not None and (stored[r["external_id"]] is None
                                                        or r["remote_updated_at"] > stored[r["external_id"]]))]
    written = upsert(session, CUSTOMERS, todo, keys=("store_id", "external_id"), update=(),
                      merge=CUSTOMER_MERGE_FIELDS, where=not_redacted, returning=("id", "external_id"))
    ids.update((ext, customer_id) for customer_id, ext in written)
    missing = [r["external_id"] for r in todo if r["external_id"] not in ids]
    if missing:
        ids.update(ids_by_external(session, CUSTOMERS, store_id, missing))
    return ids, len(written)



def add_redaction_tombstones(session: Session, store_id: int, redacted: Mapping[str, datetime]) -> int:
    """Store an empty row, redacted when given, for each external id not stored yet; return how many were added.

    Rows already stored are left as they are (the redaction erases those itself).
    """
    rows = [{"store_id": store_id, "external_id": ext, "tags": [], "marketing_consent": False, "redacted_at": when}
            for ext, when in sorted(redacted.items())]
    return len(upsert(session, CUSTOMERS, rows, keys=("store_id", "external_id"), update=()))
