"""Shopify Admin GraphQL client over ``requests``: timeouts, typed errors, cost-aware pacing, bounded retries.

Rate limits: https://shopify.dev/docs/api/usage/limits#graphql-admin-api-rate-limits — every response carries
``extensions.cost.throttleStatus`` (maximumAvailable, currentlyAvailable, restoreRate); a request whose cost
exceeds what the bucket holds is refused with the GraphQL error code ``THROTTLED``.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests

from base.clock import Clock, SystemClock
from base.retry import RetryPolicy, call_with_retries
from connectors.shopify.errors import (
    ShopifyAuthError,
    ShopifyBadResponse,
    ShopifyError,
    ShopifyGraphQLError,
    ShopifyServerError,
    ShopifyThrottledError,
)

log = logging.getLogger("aftercare.connectors.shopify")

DEFAULT_API_VERSION = "2025-01"
# Network failures worth another attempt: the request may not have reached Shopify, or its answer was lost.
RETRYABLE_EXCEPTIONS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                        requests.exceptions.ContentDecodingError)


@dataclass
class ClientStats:
    """What a client did: calls sent, THROTTLED/429 answers (429s alone too), retries, seconds waited."""

    calls: int = 0
    throttled: int = 0
    http_429: int = 0
    retries: int = 0
    waited_seconds: float = 0.0
    paced_waits: int = 0


@dataclass
class ThrottleStatus:
    """The cost bucket as last reported, and when we saw it."""

    maximum: float
    available: float
    restore_rate: float
    observed_at: datetime

    def predicted(self, now: datetime) -> float:
        """Return how many points the bucket should hold at ``now`` (it refills at ``restore_rate``)."""
        elapsed = max((now - self.observed_at).total_seconds(), 0.0)
        return min(self.maximum, self.available + elapsed * self.restore_rate)


# Retry n waits min(30, 2**n) seconds times [0.5, 1); eight attempts in all.
DEFAULT_RETRY = RetryPolicy(max_attempts=8, base_seconds=1.0, max_seconds=30.0, jitter=0.5)


def admin_base_url(configured: str, shop: str) -> str:
    """Return the Admin API origin: the configured one (``{shop}`` is substituted) or ``https://<shop>``."""
    if not configured:
        return f"https://{shop}"
    return configured.replace("{shop}", shop).rstrip("/")


class ShopifyClient:
    """Send Admin GraphQL requests for one shop, pacing them by query cost and retrying transient failures.

    Why not ShopifyAPI's ``shopify.GraphQL().execute``: it sends through urllib with no timeout (a stalled
    connection hangs the worker forever) and has no throttle handling — it neither reads
    ``throttleStatus`` to pace requests nor retries THROTTLED/429/5xx answers. This client does both, raises
    typed errors, and takes its clock, sleep and random generator from the caller so tests never sleep.
    """

    def __init__(self, shop: str, access_token: str, *, api_version: str = DEFAULT_API_VERSION,
                 base_url: str = "", timeout: float = 30.0, session: requests.Session | None = None,
                 clock: Clock | None = None, sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None, retry: RetryPolicy | None = None,
                 default_cost: int = 50):
        self.shop = shop
        self.api_version = api_version
        self.origin = admin_base_url(base_url, shop)
        self.endpoint = f"{self.origin}/admin/api/{api_version}/graphql.json"
        self.timeout = timeout
        self.http = session or requests.Session()
        self.clock = clock or SystemClock()
        self.sleep = sleep
        self.rng = rng or random.Random(0)  # noqa: S311 - jitter, not security
        self.retry = retry or DEFAULT_RETRY
        self.default_cost = default_cost
        self.stats = ClientStats()
        self.throttle: ThrottleStatus | None = None
        self._requested_cost: dict[str, int] = {}
        self.headers = {"X-Shopify-Access-Token": access_token, "Content-Type": "application/json",
                        "Accept": "application/json", "User-Agent": "Aftercare (+https://github.com/aftercare)"}
        if base_url:
            # A sandbox (or proxy) in front of Shopify tells shops apart by Host, as Shopify itself does.
            self.headers["Host"] = shop

    @classmethod
    def from_config(cls, config: Any, shop: str, access_token: str, **kwargs: Any) -> ShopifyClient:
        """Build a client from ``[shopify]`` settings (api_version, admin_base_url, request_timeout_seconds)."""
        return cls(shop, access_token, api_version=config.get("shopify.api_version"),
                   base_url=config.get("shopify.admin_base_url"),
                   timeout=config.get("shopify.request_timeout_seconds"), **kwargs)

    # -- pacing ------------------------------------------------------------------------------------------

    def _wait(self, seconds: float) -> None:
        if seconds <= 0:
            return
        self.stats.waited_seconds += seconds
        self.sleep(seconds)

    def _pace(self, estimated: int) -> None:
        """Wait until the bucket should hold ``estimated`` points, so the request is not THROTTLED."""
        status = self.throttle
        if status is None or status.restore_rate <= 0:
            return
        needed = min(float(estimated), status.maximum)
        available = status.predicted(self.clock.now())
        if needed > available:
            self.stats.paced_waits += 1
            self._wait((needed - available) / status.restore_rate)

    def _note_cost(self, key: str, body: dict[str, Any]) -> dict[str, Any] | None:
        cost = (body.get("extensions") or {}).get("cost")
        if not isinstance(cost, dict):
            return None
        status = cost.get("throttleStatus") or {}
        try:
            self.throttle = ThrottleStatus(maximum=float(status["maximumAvailable"]),
                                           available=float(status["currentlyAvailable"]),
                                           restore_rate=float(status["restoreRate"]), observed_at=self.clock.now())
        except (KeyError, TypeError, ValueError):
            pass
        requested = cost.get("requestedQueryCost")
        if isinstance(requested, int | float):
            self._requested_cost[key] = int(requested)
        return cost

    # -- requests ----------------------------------------------------------------------------------------

    def execute(self, query: str, variables: dict[str, Any] | None = None, *,
                estimated_cost: int | None = None) -> dict[str, Any]:
        """Send one GraphQL document and return its ``data``; raise a ShopifyError subclass on failure.

        THROTTLED, 429, 5xx, timeouts, dropped connections and malformed bodies are retried (bounded);
        401/403 raise ShopifyAuthError at once; GraphQL errors raise ShopifyGraphQLError.
        """
        key = hashlib.sha1(query.encode(), usedforsecurity=False).hexdigest()
        payload = {"query": query, "variables": variables or {}}
        return call_with_retries(lambda: self._attempt(key, payload, estimated_cost), self.retry, self._wait,
                                 retry_on=(ShopifyError,), rng=self.rng, on_retry=self._note_retry,
                                 on_give_up=self._give_up)

    def _attempt(self, key: str, payload: dict[str, Any], estimated_cost: int | None) -> dict[str, Any]:
        """Send the request once; raise a retryable ShopifyError for what another attempt may mend."""
        self._pace(self._requested_cost.get(key) or estimated_cost or self.default_cost)
        self.stats.calls += 1
        try:
            response = self.http.post(self.endpoint, json=payload, headers=self.headers, timeout=self.timeout)
        except RETRYABLE_EXCEPTIONS as exc:
            raise ShopifyServerError(f"{type(exc).__name__}: {exc}") from exc
        status_code = response.status_code
        if status_code in (401, 403):
            raise ShopifyAuthError(f"Shopify refused the access token for {self.shop} ({status_code})", status_code)
        if status_code == 429:
            self.stats.throttled += 1
            self.stats.http_429 += 1
            raise ShopifyThrottledError("HTTP 429", status=429, retry_after=_retry_after(response))
        if status_code >= 500:
            raise ShopifyServerError(f"HTTP {status_code}", status_code)
        try:
            body = response.json()
        except ValueError:
            raise ShopifyBadResponse(f"malformed JSON (HTTP {status_code})") from None
        if not isinstance(body, dict):
            raise ShopifyBadResponse(f"unexpected body (HTTP {status_code})")
        cost = self._note_cost(key, body)
        errors = body.get("errors")
        if errors:
            errors = errors if isinstance(errors, list) else [{"message": str(errors)}]
            if any((e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors if isinstance(e, dict)):
                self.stats.throttled += 1
                raise ShopifyThrottledError("THROTTLED", retry_after=self._refill_seconds(cost))
            messages = "; ".join(str(e.get("message")) if isinstance(e, dict) else str(e) for e in errors)
            raise ShopifyGraphQLError(f"Shopify GraphQL error for {self.shop}: {messages}",
                                      [e if isinstance(e, dict) else {"message": str(e)} for e in errors])
        if status_code >= 400:
            raise ShopifyError(f"Shopify answered HTTP {status_code} for {self.shop}")
        data = body.get("data")
        if not isinstance(data, dict):
            raise ShopifyBadResponse("response without data")
        return data

    def _refill_seconds(self, cost: dict[str, Any] | None) -> float | None:
        """Return how long until the bucket holds the refused request's cost; None when Shopify did not say."""
        status = self.throttle
        requested = (cost or {}).get("requestedQueryCost")
        if status is None or status.restore_rate <= 0 or not isinstance(requested, int | float):
            return None
        needed = min(float(requested), status.maximum) - status.available
        # A small margin so the retry does not arrive a hair before the refill.
        return min(max(needed, 0.0) / status.restore_rate, self.retry.max_seconds) + 0.05

    def _note_retry(self, error: BaseException, failures: int, delay: float) -> None:
        self.stats.retries += 1
        log.info("shopify request retry", extra={"shop": self.shop, "problem": str(error), "attempt": failures,
                                                 "delay_seconds": round(delay, 3)})

    def _give_up(self, error: BaseException, attempts: int) -> BaseException:
        """Name the shop and the attempts in the error that ends the retries, keeping its kind and status."""
        message = f"Shopify request for {self.shop} failed after {attempts} attempts: {error}"
        if isinstance(error, ShopifyServerError):
            return ShopifyServerError(message, error.status)
        return type(error)(message)


def _retry_after(response: requests.Response) -> float | None:
    """Return the ``Retry-After`` header in seconds, None when absent or an HTTP-date (then backoff decides)."""
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
