"""The owner of review rows: reviews from a review app (Judge.me) or Amazon seller feedback.

Links use external ids (product, order) and the reviewer's e-mail (customer, case-insensitive, never a
redacted customer). Our reply fields and ticket links are never overwritten by the review app's copy.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from connectors.records import ReviewRecord
from plugin.messaging.suppression import digest, normalize
from plugin.models import Suppression
from plugin.sync.sql import (
    CUSTOMERS,
    IN_CHUNK,
    LINES,
    ORDERS,
    PRODUCTS,
    REVIEWS,
    chunked,
    custom_plans,
    ids_by_external,
    upsert,
)

# Review fields a review app owns; reply_* and ticket links are ours and never overwritten.
REVIEW_FIELDS = ("product_id", "order_id", "customer_id", "rating", "title", "body", "language", "reviewer_name",
                 "created_at_remote")


def upsert_reviews(session: Session, store_id: int, records: Iterable[ReviewRecord], *,
                   batch_size: int = 500) -> list[int]:
    """Insert or update reviews linked to product, order and customer; return the ids of new reviews.

    Links use external ids (product, order) and the reviewer's e-mail (customer, case-insensitive, never a
    redacted customer). Our reply fields are never overwritten by the review app's copy.
    """
    custom_plans(session)
    new_ids: list[int] = []
    for batch in chunked(records, batch_size):
        batch = list({(r.source, r.external_id): r for r in batch}.values())
        products = ids_by_external(session, PRODUCTS, store_id, (r.product_external_id for r in batch
                                                                  if r.product_external_id))
        orders = ids_by_external(session, ORDERS, store_id, (r.order_external_id for r in batch
                                                              if r.order_external_id))
        by_handle = _products_by_handle(session, store_id, (r.product_handle for r in batch
                                                             if r.product_handle and not r.product_external_id))
        customers = _customers_by_email(session, store_id, (r.reviewer_email for r in batch if r.reviewer_email))
        customers_by_id = ids_by_external(session, CUSTOMERS, store_id, (r.reviewer_external_id for r in batch
                                                                          if r.reviewer_external_id))
        erased = _redacted_reviewers(session, store_id, batch)
        keys = [(r.source, r.external_id) for r in batch]
        known: set[tuple[str, str]] = set()
        for part in chunked(keys, IN_CHUNK):
            query = select(REVIEWS.c.source, REVIEWS.c.external_id).where(
                REVIEWS.c.store_id == store_id, tuple_(REVIEWS.c.source, REVIEWS.c.external_id).in_(part))
            known.update(session.execute(query).all())
        rows = [{
            "store_id": store_id, "source": r.source, "external_id": r.external_id,
            "product_id": _review_product(r, products, by_handle),
            "order_id": orders.get(r.order_external_id) if r.order_external_id else None,
            "customer_id": _review_customer(r, customers_by_id, customers),
            "rating": r.rating, "created_at_remote": r.created_at, "language": r.language,
            # A reviewer Shopify asked us to redact: the review app's copy never brings their words back.
            **({"title": None, "body": None, "reviewer_name": None} if _erased(r, erased)
               else {"title": r.title, "body": r.body, "reviewer_name": r.reviewer_name}),
        } for r in batch]
        _infer_review_orders(session, store_id, rows)
        written = upsert(session, REVIEWS, rows, keys=("store_id", "source", "external_id"), update=REVIEW_FIELDS,
                          returning=("id", "source", "external_id"))
        new_ids.extend(row[0] for row in written if (row[1], row[2]) not in known)
    return new_ids


def _redacted_reviewers(session: Session, store_id: int, batch: list[ReviewRecord]) -> set[str]:
    """Return the reviewer ids and lower-cased e-mails of the batch whose customer was redacted (customers/redact).

    By id: the redacted customer row keeps its external id. By e-mail: the redaction left the address's digest on
    the suppression list (the address itself is gone).
    """
    ids = sorted({r.reviewer_external_id for r in batch if r.reviewer_external_id})
    found: set[str] = set()
    for part in chunked(ids, IN_CHUNK):
        found.update(session.scalars(select(CUSTOMERS.c.external_id).where(
            CUSTOMERS.c.store_id == store_id, CUSTOMERS.c.external_id.in_(part), CUSTOMERS.c.redacted_at.is_not(None))))
    digests = {digest(r.reviewer_email): normalize(r.reviewer_email) for r in batch if r.reviewer_email}
    for part in chunked(sorted(digests), IN_CHUNK):
        found.update(digests[d] for d in session.scalars(select(Suppression.email).where(
            Suppression.store_id == store_id, Suppression.reason == "redact", Suppression.email.in_(part))))
    return found


def _erased(record: ReviewRecord, erased: set[str]) -> bool:
    return bool((record.reviewer_external_id and record.reviewer_external_id in erased)
                or (record.reviewer_email and normalize(record.reviewer_email) in erased))


def _infer_review_orders(session: Session, store_id: int, rows: list[dict[str, Any]]) -> None:
    """Link a review the app did not tie to an order (Judge.me never does) to the reviewer's latest order of
    that product placed before the review, so "has this order been reviewed" has an answer."""
    open_rows = [r for r in rows if r["order_id"] is None and r["customer_id"] and r["product_id"]]
    if not open_rows:
        return
    candidates: dict[tuple[int, int], list[tuple[datetime, int]]] = {}
    customer_ids = sorted({r["customer_id"] for r in open_rows})
    product_ids = sorted({r["product_id"] for r in open_rows})
    for part in chunked(customer_ids, IN_CHUNK):
        query = (select(ORDERS.c.customer_id, LINES.c.product_id, ORDERS.c.created_at_remote, ORDERS.c.id)
                 .join(LINES, LINES.c.order_id == ORDERS.c.id)
                 .where(ORDERS.c.store_id == store_id, ORDERS.c.customer_id.in_(part),
                        LINES.c.product_id.in_(product_ids)))
        for customer_id, product_id, created, order_id in session.execute(query):
            candidates.setdefault((customer_id, product_id), []).append((created, order_id))
    for row in open_rows:
        before = [c for c in candidates.get((row["customer_id"], row["product_id"]), ())
                  if c[0] <= row["created_at_remote"]]
        if before:
            row["order_id"] = max(before)[1]


def _review_product(record: ReviewRecord, by_id: dict[str, int], by_handle: dict[str, int]) -> int | None:
    if record.product_external_id:
        return by_id.get(record.product_external_id)
    return by_handle.get(record.product_handle) if record.product_handle else None


def _review_customer(record: ReviewRecord, by_id: dict[str, int], by_email: dict[str, int]) -> int | None:
    """Link by the platform's customer id when the review app knows it, else by e-mail."""
    if record.reviewer_external_id and record.reviewer_external_id in by_id:
        return by_id[record.reviewer_external_id]
    return by_email.get(record.reviewer_email.strip().lower()) if record.reviewer_email else None


def _products_by_handle(session: Session, store_id: int, handles: Iterable[str]) -> dict[str, int]:
    """Map product handles to product ids."""
    found: dict[str, int] = {}
    for part in chunked(sorted(set(handles)), IN_CHUNK):
        query = select(PRODUCTS.c.handle, PRODUCTS.c.id).where(PRODUCTS.c.store_id == store_id,
                                                                PRODUCTS.c.handle.in_(part))
        found.update(session.execute(query).all())
    return found


def _customers_by_email(session: Session, store_id: int, emails: Iterable[str]) -> dict[str, int]:
    """Map lower-cased e-mails to customer ids (the oldest customer wins when several share one)."""
    wanted = sorted({e.strip().lower() for e in emails if e.strip()})
    found: dict[str, int] = {}
    for part in chunked(wanted, IN_CHUNK):
        email = func.lower(CUSTOMERS.c.email)
        query = (select(email, CUSTOMERS.c.id)
                 .where(CUSTOMERS.c.store_id == store_id, CUSTOMERS.c.redacted_at.is_(None), email.in_(part))
                 .order_by(CUSTOMERS.c.id.desc()))
        found.update(session.execute(query).all())
    return found

