"""Solicitations API v1: the review request window and the once-per-order rule.

Window (Amazon's rule, also in DESIGN.md §1): from 5 days after EarliestDeliveryDate to 30 days after
LatestDeliveryDate; canceled orders are not eligible. Error texts are the ones Amazon returns:
- second request for an order: https://github.com/amzn/selling-partner-api-models/issues/19
- outside the window: https://github.com/amzn/selling-partner-api-docs/issues/121
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .context import Ctx
from .http import ApiError
from .seed import Order

ACTION = "productReviewAndSellerFeedback"
WINDOW_START = timedelta(days=5)
WINDOW_END = timedelta(days=30)
NOT_AVAILABLE = "The requested solicitation is not available for this amazonOrderId."
OUTSIDE_WINDOW = ("You can\u2019t use this feature to request a review outside the 5-30 day range after "
                  "the order delivery date.")


@dataclass(frozen=True)
class SolicitationRecord:
    """One solicitation the sandbox accepted: the truth other tests check."""

    order_id: str
    marketplace_id: str
    seller_id: str
    sent_at: datetime


class SolicitationLedger:
    """Thread-safe record of every solicitation sent, one per order at most."""

    def __init__(self) -> None:
        self.records: list[SolicitationRecord] = []
        self._by_order: dict[str, SolicitationRecord] = {}
        self._lock = threading.Lock()

    def sent(self, order_id: str) -> bool:
        """Tell whether a solicitation was already sent for the order."""
        return order_id in self._by_order

    def add(self, record: SolicitationRecord) -> bool:
        """Record a solicitation; return False if the order already had one (race-safe)."""
        with self._lock:
            if record.order_id in self._by_order:
                return False
            self._by_order[record.order_id] = record
            self.records.append(record)
            return True


def window(order: Order) -> tuple[datetime, datetime]:
    """Return the [start, end] instants during which the order can be solicited."""
    return order.earliest_delivery_date + WINDOW_START, order.latest_delivery_date + WINDOW_END


def in_window(order: Order, now: datetime) -> bool:
    """Tell whether ``now`` falls inside the order's solicitation window."""
    start, end = window(order)
    return start <= now <= end


def _eligible(ctx: Ctx, order: Order) -> bool:
    return (order.status_at(ctx.now) not in ("Canceled", "Pending", "PendingAvailability")
            and not ctx.sandbox.solicitations.sent(order.order_id) and in_window(order, ctx.now))


def get_actions(ctx: Ctx, amazonOrderId: str) -> tuple[int, Any]:  # noqa: N803 - path parameter name
    """GET /solicitations/v1/orders/{amazonOrderId}: HAL links to the allowed solicitation types."""
    order = ctx.order(amazonOrderId)
    mp = ctx.one_marketplace(order)
    base = f"/solicitations/v1/orders/{order.order_id}"
    action_href = f"{base}/solicitations/{ACTION}?marketplaceIds={mp}"
    actions, embedded = [], []
    if _eligible(ctx, order):
        actions.append({"href": action_href, "name": ACTION})
        embedded.append({"_links": {"schema": {"href": f"{base}/solicitations/{ACTION}/schema", "name": ACTION},
                                    "self": {"href": action_href, "name": ACTION}},
                         "payload": {"name": ACTION}})
    return 200, {"_links": {"actions": actions, "self": {"href": f"{base}?marketplaceIds={mp}"}},
                 "_embedded": {"actions": embedded}}


def create_solicitation(ctx: Ctx, amazonOrderId: str) -> tuple[int, Any]:  # noqa: N803
    """POST .../solicitations/productReviewAndSellerFeedback: send once, inside the window."""
    order = ctx.order(amazonOrderId)
    mp = ctx.one_marketplace(order)
    if ctx.sandbox.solicitations.sent(order.order_id) or order.status_at(ctx.now) == "Canceled":
        raise ApiError(403, "Unauthorized", NOT_AVAILABLE, "")
    if not in_window(order, ctx.now) or order.status_at(ctx.now) == "Pending":
        raise ApiError(403, "Unauthorized", OUTSIDE_WINDOW, "")
    record = SolicitationRecord(order.order_id, mp, ctx.seller.seller_id, ctx.now)
    if not ctx.sandbox.solicitations.add(record):
        raise ApiError(403, "Unauthorized", NOT_AVAILABLE, "")
    return 201, {}
