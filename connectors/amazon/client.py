"""One SP-API session per job run: library clients on the configured endpoint, pacing, retries, errors.

The session lasts one run, what Amazon meters does not: the caller passes the seller's token buckets and access
token store (plugin/sp_api_state.py keeps both in the database) so back-to-back runs and concurrent workers share
one bucket per operation and one access token until it nears expiry.

python-amazon-sp-api's clients are stateful and raise only when a body carries ``errors``; this module
checks every HTTP status itself (``_check_response`` receives the raw httpx response), paces each
operation with its own thread-safe token bucket, and retries 429/5xx/network failures with bounded
backoff through an injected sleep. https://developer-docs.amazon.com/sp-api/docs/error-handling
"""

from __future__ import annotations

import functools
import json
import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from sp_api.api import Reports, Sellers, Solicitations
from sp_api.api.orders.orders_2026_01_01 import OrdersV20260101
from sp_api.base import ApiResponse, Client, Marketplaces
from sp_api.base.credential_provider import FromCodeCredentialProvider

from base.clock import Clock
from base.retry import RetryPolicy, call_with_retries
from connectors.errors import RateLimited

from .errors import AccessDenied, AmazonError, AuthError, InvalidInput, NotFound, QuotaExceeded, ServerError
from .lwa import LwaTokenClient, SharedTokens, TokenCache
from .marketplaces import default_endpoint
from .pacing import BucketStore, Pacer

log = logging.getLogger("aftercare.amazon")

T = TypeVar("T", bound=Client)


class _Throttled(AmazonError, RateLimited):
    """429 from Amazon (internal: retried, then surfaced as QuotaExceeded).

    It carries no delay of its own: the session drains the operation's bucket, so the next acquire
    waits for a fresh token at the rate Amazon states.
    """

    retry_after = 0.0


class _TokenRejected(AmazonError):
    """403 naming the access token (internal): retried once, at once, with a freshly fetched token."""

    retryable = True
    retry_after = 0.0

    def __init__(self, denied: AccessDenied):
        super().__init__(str(denied), status=denied.status, code=denied.code, operation=denied.operation)
        self.denied = denied


def _error_text(body: Any) -> tuple[str | None, str]:
    """Return (code, message) from an SP-API error body of any shape."""
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        message = first.get("message") or ""
        if first.get("details"):
            message = f"{message} ({first['details']})"
        return first.get("code"), message
    if errors:
        return None, str(errors)
    return None, ""


class CheckedMixin:
    """Status and body checks on the raw response, and a correct Host header for any endpoint."""

    operation_prefix = ""

    @property
    def headers(self) -> dict[str, str]:
        """Return the library's request headers with ``host`` taken from the endpoint's netloc."""
        headers = super().headers  # type: ignore[misc]
        headers["host"] = urlsplit(self.endpoint).netloc  # type: ignore[attr-defined]
        return headers

    def _check_response(self, res: httpx.Response, res_no_data: bool = False, bulk: bool = False,
                        wrap_list: bool = False) -> ApiResponse:
        status = res.status_code
        body: Any = None
        if res.content:
            try:
                body = res.json()
            except (json.JSONDecodeError, UnicodeDecodeError):
                if 200 <= status < 300:
                    raise ServerError(f"malformed JSON body with HTTP {status}", status=status) from None
        code, message = _error_text(body)
        text = message or res.reason_phrase or f"HTTP {status}"
        if status == 429:
            raise _Throttled(text, status=status, code=code)
        if status >= 500:
            raise ServerError(text, status=status, code=code)
        if status == 401:
            raise AuthError(text, error=code or "unauthorized", status=status, operation="")
        if status == 403:
            raise AccessDenied(text, status=status, code=code)
        if status == 404:
            raise NotFound(text, status=status, code=code)
        if status >= 300:
            raise InvalidInput(text, status=status, code=code)
        if isinstance(body, dict) and body.get("errors"):
            raise InvalidInput(text, status=status, code=code)
        return super()._check_response(res, res_no_data, bulk, wrap_list)  # type: ignore[misc]


class OrdersApi(CheckedMixin, OrdersV20260101):
    """Orders API 2026-01-01 (searchOrders, getOrder) with checked responses."""


class SolicitationsApi(CheckedMixin, Solicitations):
    """Solicitations API v1 with checked responses."""


class ReportsApi(CheckedMixin, Reports):
    """Reports API 2021-06-30 with checked responses."""


class SellersApi(CheckedMixin, Sellers):
    """Sellers API v1 with checked responses."""


@dataclass(frozen=True)
class Credentials:
    """What one seller connection needs: the app's LWA id/secret and the seller's refresh token."""

    client_id: str
    client_secret: str
    refresh_token: str


@functools.cache
def tls_context() -> ssl.SSLContext:
    """Return one verifying TLS context for every client (building one reads the CA bundle: ~40 ms)."""
    return ssl.create_default_context()


class SpApiSession:
    """All SP-API calls of one job run for one seller; close it when the run ends."""

    def __init__(self, credentials: Credentials, *, region: str, endpoint: str = "", lwa_token_url: str,
                 clock: Clock, sleep: Callable[[float], None], timeout: float = 30.0, max_attempts: int = 6,
                 backoff_seconds: float = 1.0, backoff_max_seconds: float = 60.0,
                 buckets: BucketStore | None = None, shared_tokens: SharedTokens | None = None):
        self.credentials = credentials
        self.endpoint = (endpoint or default_endpoint(region)).rstrip("/")
        self.clock = clock
        self.sleep = sleep
        self.timeout = timeout
        # No jitter: the per-operation token buckets already spread the calls of one seller.
        self.retry = RetryPolicy(max_attempts=max(1, max_attempts), base_seconds=backoff_seconds,
                                 max_seconds=backoff_max_seconds, jitter=0.0)
        self.pacer = Pacer(clock, sleep, buckets)
        self._tokens = TokenCache(clock, shared_tokens)
        self._token_client = functools.partial(LwaTokenClient, token_url=lwa_token_url, cache=self._tokens,
                                               timeout=timeout, sleep=sleep)
        self._clients: dict[type, Client] = {}
        self._lock = threading.Lock()
        self.stats = {"calls": 0, "throttled": 0, "retries": 0, "token_requests": 0}

    @classmethod
    def from_config(cls, config: Any, credentials: Credentials, region: str, clock: Clock,
                    sleep: Callable[[float], None], buckets: BucketStore | None = None,
                    shared_tokens: SharedTokens | None = None) -> SpApiSession:
        """Build a session from ``[amazon]`` settings (endpoint, lwa_token_url, timeouts, retries)."""
        return cls(credentials, region=region, endpoint=config.get("amazon.endpoint"),
                   lwa_token_url=config.get("amazon.lwa_token_url"), clock=clock, sleep=sleep,
                   timeout=config.get("amazon.request_timeout_seconds"),
                   max_attempts=config.get("amazon.max_attempts"),
                   backoff_seconds=config.get("amazon.backoff_seconds"), buckets=buckets,
                   shared_tokens=shared_tokens)

    def api(self, cls: type[T]) -> T:
        """Return this run's instance of a library client class, pointed at the configured endpoint."""
        with self._lock:
            client = self._clients.get(cls)
            if client is None:
                client = cls(Marketplaces.US, refresh_token=self.credentials.refresh_token,
                             credentials={"lwa_app_id": self.credentials.client_id,
                                          "lwa_client_secret": self.credentials.client_secret},
                             credential_providers=(FromCodeCredentialProvider,), timeout=self.timeout,
                             verify=tls_context(),
                             auth_token_client_class=self._token_client)
                client.endpoint = self.endpoint
                self._clients[cls] = client
            return client  # type: ignore[return-value]

    def call(self, operation: str, fn: Callable[..., ApiResponse], *args: Any, retry_ambiguous: bool = True,
             **kwargs: Any) -> ApiResponse:
        """Call ``fn`` paced as ``operation``; retry 429s, and 5xx/network failures when ``retry_ambiguous``.

        A request that may have reached Amazon (5xx, timeout, dropped connection) is retried only when
        repeating it is harmless; callers of non-idempotent operations pass ``retry_ambiguous=False``.
        """
        token_renewed = False

        def attempt() -> ApiResponse:
            nonlocal token_renewed
            self.pacer.acquire(operation)
            self.stats["calls"] += 1
            try:
                response = fn(*args, **kwargs)
            except httpx.TransportError as exc:
                raise ServerError(f"{operation}: network failure: {exc!r}", operation=operation) from exc
            except _Throttled:
                self.stats["throttled"] += 1
                self.pacer.drain(operation)
                raise
            except AccessDenied as exc:
                exc.operation = exc.operation or operation
                # Amazon says 403 for an access token it no longer honours (revoked or expired early), with
                # details naming the token; a fresh token then works. Any other 403 is a missing role.
                if token_renewed or "access token" not in str(exc).lower():
                    raise
                token_renewed = True
                self._tokens.clear()
                raise _TokenRejected(exc) from exc
            finally:
                self.stats["token_requests"] = self._tokens.fetched
            self.pacer.observe(operation, (response.headers or {}).get("x-amzn-RateLimit-Limit"))
            return response

        def note_retry(error: BaseException, failures: int, delay: float) -> None:
            if isinstance(error, _TokenRejected):
                return  # a token renewal, not a retry of a failure
            self.stats["retries"] += 1
            if delay > 0:
                log.info("retrying %s after %s", operation, error, extra={"operation": operation,
                                                                          "attempt": failures})

        def give_up(error: BaseException, attempts: int) -> BaseException:
            if isinstance(error, _Throttled):
                return QuotaExceeded(f"{operation}: still throttled after {attempts} attempts", status=429,
                                     operation=operation)
            if isinstance(error, _TokenRejected):
                return error.denied
            return error

        def classify() -> ApiResponse:
            try:
                return attempt()
            except AmazonError as exc:
                exc.operation = exc.operation or operation
                if isinstance(exc, ServerError) and not retry_ambiguous:
                    exc.retryable = False  # the request may have reached Amazon: repeating it is not harmless
                raise

        return call_with_retries(classify, self.retry, self.sleep, retry_on=(AmazonError,), on_retry=note_retry,
                                 on_give_up=give_up)

    def close(self) -> None:
        """Close every HTTP connection of this run."""
        for client in self._clients.values():
            client.close()
            auth = getattr(client, "_auth", None)
            if isinstance(auth, LwaTokenClient):
                auth.close()
        self._clients.clear()

    def __enter__(self) -> SpApiSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
