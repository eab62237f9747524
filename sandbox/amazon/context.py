"""What a handler gets: the sandbox state, the request, the calling seller and the current time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from werkzeug.wrappers import Request

from .http import ApiError, invalid_input, list_param
from .seed import Order, Seller


@dataclass
class Ctx:
    """Per-request context handed to every operation handler."""

    sandbox: Any  # AmazonSandbox (kept untyped to avoid an import cycle)
    request: Request
    seller: Seller
    now: datetime
    client_id: str = ""

    def order(self, order_id: str) -> Order:
        """Return the caller's order, or raise 404 (another seller's order is just as unknown)."""
        order = self.sandbox.orders_by_id.get(order_id)
        if order is None or order.seller_id != self.seller.seller_id or order.purchase_date > self.now:
            raise ApiError(404, "NotFound", f"The requested order {order_id} was not found.", "")
        return order

    def one_marketplace(self, order: Order | None = None) -> str:
        """Read the required single ``marketplaceIds`` query parameter (Solicitations, Messaging)."""
        values = list_param(self.request.args, "marketplaceIds")
        if not values:
            raise invalid_input("Missing or invalid request parameters: [marketplaceIds]", "")
        if len(values) > 1:
            raise invalid_input("Only one marketplace can be specified: [marketplaceIds]", "")
        if values[0] not in self.seller.marketplace_ids or (order and order.marketplace_id != values[0]):
            raise invalid_input(f"Invalid marketplaceIds: {values[0]}", "")
        return values[0]
