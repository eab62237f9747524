"""Client-side token buckets that follow Amazon's usage plans, thread-safe, on an injectable clock.

Amazon meters each operation with a token bucket (rate per second + burst) per application and selling
partner, and reports the rate applied to the caller in ``x-amzn-RateLimit-Limit``; the burst is only documented
in the models' "Usage Plan" tables. https://developer-docs.amazon.com/sp-api/docs/usage-plans-and-rate-limits-in-the-sp-api

Amazon's bucket outlives a job run, so ours must too: the Pacer keeps its buckets in a ``BucketStore``. The
default (``MemoryBuckets``) lives as long as the session; plugin/sp_api_state.py keeps them in the database,
shared by every run and worker of a seller.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

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


class BucketStore(Protocol):
    """Where a seller's buckets live; each method refills the bucket up to now first, atomically."""

    def reserve(self, operation: str, rate: float, burst: int) -> float:
        """Take one token (possibly in advance) and return the seconds to wait before using it."""
        ...

    def drain(self, operation: str, rate: float, burst: int) -> None:
        """Empty the bucket (Amazon answered 429: its bucket is empty)."""
        ...

    def set_rate(self, operation: str, rate: float, burst: int) -> None:
        """Adopt the rate Amazon reports for this caller."""
        ...


class MemoryBuckets:
    """Buckets held by this object only (one session, or tests of the pacing itself)."""

    def __init__(self, clock: Clock):
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def bucket(self, operation: str, rate: float, burst: int) -> TokenBucket:
        """Return the bucket of an operation, created full on first use."""
        with self._lock:
            if operation not in self._buckets:
                self._buckets[operation] = TokenBucket(rate, burst, self._clock)
            return self._buckets[operation]

    def reserve(self, operation: str, rate: float, burst: int) -> float:
        """Take one token and return the wait (see ``TokenBucket.reserve``)."""
        return self.bucket(operation, rate, burst).reserve()

    def drain(self, operation: str, rate: float, burst: int) -> None:
        """Empty the operation's bucket."""
        self.bucket(operation, rate, burst).drain()

    def set_rate(self, operation: str, rate: float, burst: int) -> None:
        """Adopt Amazon's rate for the operation."""
        self.bucket(operation, rate, burst).set_rate(rate)


class Pacer:
    """The buckets of one seller's calls, in a store, starting from the default plans."""

    def __init__(self, clock: Clock, sleep: Callable[[float], None], store: BucketStore | None = None):
        self._sleep = sleep
        self.store: BucketStore = store if store is not None else MemoryBuckets(clock)
        # The rate Amazon last reported per operation: the store is written only when it changes.
        self._rates: dict[str, float] = {}
        self._lock = threading.Lock()

    def plan(self, operation: str) -> tuple[float, int]:
        """Return the (rate, burst) this caller uses for an operation (``orders.searchOrders``)."""
        rate, burst = DEFAULT_PLANS.get(operation, FALLBACK_PLAN)
        with self._lock:
            return self._rates.get(operation, rate), burst

    def acquire(self, operation: str) -> float:
        """Wait (through the injected sleep) until a call of ``operation`` is allowed; return the wait."""
        wait = self.store.reserve(operation, *self.plan(operation))
        if wait > 0:
            self._sleep(wait)
        return wait

    def drain(self, operation: str) -> None:
        """Empty an operation's bucket after a 429, so the next call waits a token's time."""
        self.store.drain(operation, *self.plan(operation))

    def observe(self, operation: str, rate_header: str | None) -> None:
        """Learn the caller's rate from ``x-amzn-RateLimit-Limit`` when Amazon sends it."""
        if not rate_header:
            return
        try:
            rate = float(rate_header)
        except ValueError:
            return
        if rate <= 0 or self.plan(operation)[0] == rate:
            return
        with self._lock:
            self._rates[operation] = rate
        self.store.set_rate(operation, *self.plan(operation))
