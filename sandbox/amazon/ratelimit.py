"""Per-operation token buckets with the default usage plans of the official models.

Rates and bursts are the "Usage Plan" tables of each operation's description in
amzn/selling-partner-api-models (a test checks this table against the models); see
https://developer-docs.amazon.com/sp-api/docs/usage-plans-and-rate-limits-in-the-sp-api
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

# operation key (model file stem + operationId) -> (rate per second, burst)
RATE_TABLE: dict[str, tuple[float, int]] = {
    "orders_2026-01-01.searchOrders": (0.0056, 20),
    "orders_2026-01-01.getOrder": (0.5, 30),
    "ordersV0.getOrders": (0.0167, 20),
    "ordersV0.getOrder": (0.5, 30),
    "ordersV0.getOrderItems": (0.5, 30),
    "ordersV0.getOrderBuyerInfo": (0.5, 30),
    "ordersV0.getOrderAddress": (0.5, 30),
    "solicitations.getSolicitationActionsForOrder": (1, 5),
    "solicitations.createProductReviewAndSellerFeedbackSolicitation": (1, 5),
    "messaging.getMessagingActionsForOrder": (1, 5),
    "messaging.confirmCustomizationDetails": (1, 5),
    "messaging.createConfirmDeliveryDetails": (1, 5),
    "messaging.createLegalDisclosure": (1, 5),
    "messaging.createConfirmOrderDetails": (1, 5),
    "messaging.createConfirmServiceDetails": (1, 5),
    "messaging.CreateWarranty": (1, 5),
    "messaging.GetAttributes": (1, 5),
    "messaging.createDigitalAccessKey": (1, 5),
    "messaging.createUnexpectedProblem": (1, 5),
    "reports_2021-06-30.getReports": (0.0222, 10),
    "reports_2021-06-30.createReport": (0.0167, 15),
    "reports_2021-06-30.cancelReport": (0.0222, 10),
    "reports_2021-06-30.getReport": (2, 15),
    "reports_2021-06-30.getReportDocument": (0.0167, 15),
    "tokens_2021-03-01.createRestrictedDataToken": (1, 10),
}
# sendInvoice has no usage plan table in the model; Amazon's docs list 1 rps / burst 5 for Messaging.
FALLBACK_RATE = (1.0, 5)


class TokenBuckets:
    """One bucket per (caller, operation); refills continuously from the injected clock."""

    def __init__(self, clock: Any, scale: float = 1.0, enabled: bool = True):
        self.clock = clock
        self.scale = scale
        self.enabled = enabled
        self._state: dict[tuple[str, str], tuple[float, datetime]] = {}
        self._lock = threading.Lock()

    def limit(self, operation: str) -> float:
        """Return the (scaled) rate advertised in ``x-amzn-RateLimit-Limit``."""
        return RATE_TABLE.get(operation, FALLBACK_RATE)[0] * self.scale

    def take(self, caller: str, operation: str) -> bool:
        """Take one token; return False when the bucket is empty (→ 429)."""
        if not self.enabled:
            return True
        rate, burst = RATE_TABLE.get(operation, FALLBACK_RATE)
        rate *= self.scale
        now = self.clock.now()
        with self._lock:
            tokens, last = self._state.get((caller, operation), (float(burst), now))
            tokens = min(float(burst), tokens + max(0.0, (now - last).total_seconds()) * rate)
            if tokens < 1.0:
                self._state[(caller, operation)] = (tokens, now)
                return False
            self._state[(caller, operation)] = (tokens - 1.0, now)
            return True

    def reset(self) -> None:
        """Refill every bucket."""
        with self._lock:
            self._state.clear()


def format_rate(rate: float) -> str:
    """Format a rate like Amazon's header (``0.0167``, ``1.0``)."""
    return f"{rate:.4f}".rstrip("0").rstrip(".") if rate % 1 else f"{rate:.1f}"
