"""Plain records the review connectors yield (no ORM, no Flask): what ``plugin.sync`` upserts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ReviewRecord:
    """One review from a review app, with aware UTC datetimes.

    ``order_external_id`` is None when the app does not say which order a review belongs to (Judge.me's API
    does not); sync then matches the review to an order by reviewer email and product.
    ``language`` is None when the app does not report one (Judge.me does not).
    """

    source: str
    external_id: str
    product_external_id: str | None
    product_handle: str | None
    product_title: str | None
    order_external_id: str | None
    reviewer_external_id: str | None
    reviewer_email: str | None
    reviewer_name: str | None
    rating: int
    title: str | None
    body: str
    language: str | None
    published: bool
    hidden: bool
    verified: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class PostedReply:
    """A public reply the review app accepted."""

    review_external_id: str
    reply_external_id: str | None
    body: str
