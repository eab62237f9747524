"""Client-side token buckets that follow Amazon's usage plans, thread-safe, on an injectable clock.

Amazon meters each operation with a token bucket (rate per second + burst) and reports the rate
applied to the caller in ``x-amzn-RateLimit-Limit``; the burst is only documented in the models'
"Usage Plan" tables. https://developer-docs.amazon.com/sp-api/docs/usage-plans-and-rate-limits-in-the-sp-api
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from base.clock import Clock

# Default usage plans (rate per second, burst) from the official models' "Usage Plan" tables.
DEFAULT_PLANS: dict[str, tuple[float, int]] = {
    "orders.searchOrders": (0.0056, 20),
    "orders.getOrder": (0.5, 30),
    "solicitations.getSolicitationActionsForOrder": (1.0, 5),
    "solicitations.createProductReviewAndSellerFeedbackSolicitation": (1.0, 5),
    "reports.createReport": (0.0167, 15),
    "reports.getReport": (2.0, 15),
    "reports.getReportDocument": (0.0167, 15),
    "sellers.getMarketplaceParticipations": (0.016, 15),
}
FALLBACK_PLAN = (1.0, 5)
# Start slightly after the bucket should hold a token: our clock and Amazon's never agree exactly.
SAFETY_SECONDS = 0.02


class TokenBucket:
    """One operation's bucket; ``reserve`` returns how long the caller must wait before calling."""

    def __init__(self, rate: float, burst: int, clock: Clock):
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock.now()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock.now()
        elapsed = max(0.0, (now - self._last).total_seconds())
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        self._last = now

    def reserve(self) -> float:
        """Take one token (possibly in advance) and return the seconds to wait before using it."""
        with self._lock:
            self._refill()
            self._tokens -= 1.0
            if self._tokens >= 0:
                return 0.0
            return -self._tokens / self.rate + SAFETY_SECONDS

    def set_rate(self, rate: float) -> None:
        """Adopt the rate Amazon reports for this caller (``x-amzn-RateLimit-Limit``)."""
        if rate > 0:
            with self._lock:
                self._refill()
                self.rate = rate

    def drain(self) -> None:
        """Empty the bucket after a 429: Amazon's bucket is empty, so ours must be too."""
        with self._lock:
            self._refill()
            self._tokens = min(self._tokens, 0.0)


class Pacer:
    """The buckets of one client, created on first use from the default plans."""

    def __init__(self, clock: Clock, sleep: Callable[[float], None]):
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def bucket(self, operation: str) -> TokenBucket:
        """Return the bucket of an operation (``orders.searchOrders``)."""
        with self._lock:
            if operation not in self._buckets:
                rate, burst = DEFAULT_PLANS.get(operation, FALLBACK_PLAN)
                self._buckets[operation] = TokenBucket(rate, burst, self._clock)
            return self._buckets[operation]

    def acquire(self, operation: str) -> float:
        """Wait (through the injected sleep) until a call of ``operation`` is allowed; return the wait."""
        wait = self.bucket(operation).reserve()
        if wait > 0:
            self._sleep(wait)
        return wait

    def observe(self, operation: str, rate_header: str | None) -> None:
        """Learn the caller's rate from ``x-amzn-RateLimit-Limit`` when Amazon sends it."""
        if not rate_header:
            return
        try:
            rate = float(rate_header)
        except ValueError:
            return
        self.bucket(operation).set_rate(rate)
