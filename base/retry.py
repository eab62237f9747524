"""Bounded retries with exponential backoff and jitter, written once for every connector.

An error says itself whether another attempt can help: it carries ``retryable`` (true for throttling,
server failures, dropped connections, unreadable bodies) and may carry ``retry_after``, the delay the
server asked for (``Retry-After``, a refill time, or 0 when the caller's own pacer already waits).
The loop takes its sleep and random generator from the caller, so tests record the waits instead of
sleeping. https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

Sleep = Callable[[float], None]
OnRetry = Callable[[BaseException, int, float], None]
OnGiveUp = Callable[[BaseException, int], BaseException]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry.

    ``max_attempts`` counts every attempt, the first included. Retry ``n`` (0-based) waits
    ``min(max_seconds, base_seconds * 2**n)`` scaled into ``[1 - jitter, 1)`` by the random generator;
    ``jitter=0`` waits exactly the exponential delay. A server-given delay is honoured, capped at
    ``max_seconds`` so a hostile or broken header cannot park a worker.
    """

    max_attempts: int = 6
    base_seconds: float = 1.0
    max_seconds: float = 30.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be within [0, 1]")

    def delay(self, retry: int, rng: random.Random) -> float:
        """Return the backoff before retry number ``retry`` (0-based), jittered with ``rng``."""
        raw = min(self.max_seconds, self.base_seconds * (2 ** retry))
        if not self.jitter:
            return raw
        return raw * ((1.0 - self.jitter) + self.jitter * rng.random())

    def wait_for(self, error: BaseException, retry: int, rng: random.Random) -> float:
        """Return the wait before retry ``retry`` after ``error``: the server's delay if it gave one, else backoff."""
        server = getattr(error, "retry_after", None)
        if server is not None:
            return min(max(float(server), 0.0), self.max_seconds)
        return self.delay(retry, rng)


def is_retryable(error: BaseException) -> bool:
    """Return whether ``error`` says another attempt can help (its ``retryable`` attribute)."""
    return bool(getattr(error, "retryable", False))


class RetryBudget:
    """The failed attempts of one operation: wait before the next one, or raise once the policy is spent.

    For loops that cannot be one call, such as a download that resumes where it broke off; everything
    else uses ``call_with_retries``.
    """

    def __init__(self, policy: RetryPolicy, sleep: Sleep, *, rng: random.Random | None = None,
                 on_retry: OnRetry | None = None, on_give_up: OnGiveUp | None = None):
        self.policy = policy
        self.failures = 0
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._on_retry = on_retry
        self._on_give_up = on_give_up

    def failed(self, error: BaseException) -> None:
        """Record a failed attempt and wait before the next; raise when ``error`` is permanent or none is left."""
        self.failures += 1
        if not is_retryable(error):
            raise error
        if self.failures >= self.policy.max_attempts:
            final = self._on_give_up(error, self.failures) if self._on_give_up else error
            if final is error or final is error.__cause__:
                raise final  # no "from": it would tie the error to itself through its own cause
            raise final from error
        delay = self.policy.wait_for(error, self.failures - 1, self._rng)
        if self._on_retry is not None:
            self._on_retry(error, self.failures, delay)
        if delay > 0:
            self._sleep(delay)


def call_with_retries(attempt: Callable[[], T], policy: RetryPolicy, sleep: Sleep, *,
                      retry_on: tuple[type[BaseException], ...], rng: random.Random | None = None,
                      on_retry: OnRetry | None = None, on_give_up: OnGiveUp | None = None) -> T:
    """Return ``attempt()``, calling it again after a retryable error of ``retry_on`` while the policy allows.

    Errors outside ``retry_on`` and errors whose ``retryable`` is false propagate at once. ``on_retry``
    hears (error, failed attempts so far, delay) before each wait; ``on_give_up`` may turn the last error
    into the one to raise.
    """
    budget = RetryBudget(policy, sleep, rng=rng, on_retry=on_retry, on_give_up=on_give_up)
    while True:
        try:
            return attempt()
        except retry_on as error:
            budget.failed(error)
