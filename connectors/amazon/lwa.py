"""Login with Amazon: exchange the seller's refresh token for access tokens, through the library's hook.

python-amazon-sp-api builds its token client from ``auth_token_client_class``; this subclass of its
``AccessTokenClient`` posts to the configured token URL (the sandbox in tests), with a timeout, bounded
retries, HTTP status checks, and a cache that expires on the injected clock instead of the library's
process-wide cache. An access token is valid for an hour (``expires_in``) and is meant to be reused until then:
the cache keeps it for the run and, through a ``SharedTokens`` store (plugin/sp_api_state.py: encrypted in the
database), for every later run and worker of the seller.
https://developer-docs.amazon.com/sp-api/docs/connecting-to-the-selling-partner-api
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
from sp_api.auth import AccessTokenClient, AccessTokenResponse

from base.clock import Clock
from base.retry import RetryPolicy, call_with_retries

from .errors import AuthError, ServerError

# Refresh a minute early so a token never expires between our check and Amazon's.
EXPIRY_MARGIN = timedelta(seconds=60)


class SharedTokens(Protocol):
    """A seller's access token kept beyond one run, for the refresh token whose fingerprint is given."""

    def load(self, fingerprint: str) -> tuple[str, datetime] | None:
        """Return (access token, expiry) stored for this fingerprint, or None."""
        ...

    def save(self, fingerprint: str, access_token: str, expires_at: datetime) -> None:
        """Keep a freshly issued access token."""
        ...

    def forget(self) -> None:
        """Drop the stored token (Amazon stopped honouring it)."""
        ...


def fingerprint(client_id: str, refresh_token: str) -> str:
    """Name an app + refresh token pair without keeping either (SHA-256 of both)."""
    return hashlib.sha256(f"{client_id}\n{refresh_token}".encode()).hexdigest()


@dataclass
class TokenCache:
    """Access tokens of one job run, shared by every API client of that run, backed by ``shared`` when given."""

    clock: Clock
    shared: SharedTokens | None = None
    entries: dict[str, tuple[AccessTokenResponse, datetime]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    fetched: int = 0  # token requests made through this cache

    def clear(self) -> None:
        """Forget every access token (Amazon stopped honouring one before its expiry)."""
        with self.lock:
            self.entries.clear()
        if self.shared is not None:
            self.shared.forget()


class LwaTokenClient(AccessTokenClient):
    """The library's token client pointed at ``amazon.lwa_token_url`` with timeouts and retries."""

    def __init__(self, refresh_token: str | None = None, credentials: Any = None, proxies: Any = None,
                 verify: bool = True, *, token_url: str, cache: TokenCache, timeout: float,
                 sleep: Callable[[float], None], max_attempts: int = 4, backoff_seconds: float = 1.0):
        super().__init__(refresh_token=refresh_token, credentials=credentials, proxies=proxies, verify=verify)
        parts = urlsplit(token_url)
        self.scheme, self.host, self.path = f"{parts.scheme}://", parts.netloc, parts.path
        self._http = httpx.Client(timeout=timeout, verify=verify)  # verify: the session's shared TLS context
        self._cache = cache
        self._sleep = sleep
        self._retry = RetryPolicy(max_attempts=max_attempts, base_seconds=backoff_seconds, max_seconds=30.0, jitter=0.0)

    def _request(self, url: str, data: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        """POST to the token endpoint; retry network failures and 5xx/429, raise AuthError on refusal."""
        return call_with_retries(lambda: self._attempt(url, data, headers), self._retry, self._sleep,
                                 retry_on=(ServerError,))

    def _attempt(self, url: str, data: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        """POST once; raise ServerError for what another attempt may mend, AuthError for a refusal."""
        return post_token_request(self._http, url, data, headers)

    def get_auth(self) -> AccessTokenResponse:
        """Return a valid access token: this run's, else the stored one, else a new one (kept for later runs)."""
        key = self._get_cache_key()
        cache = self._cache
        now = cache.clock.now()
        with cache.lock:
            entry = cache.entries.get(key)
            if entry and entry[1] - EXPIRY_MARGIN > now:
                return entry[0]
        name = fingerprint(self.cred.client_id, self.cred.refresh_token or "")
        stored = cache.shared.load(name) if cache.shared is not None else None
        if stored is not None and stored[1] - EXPIRY_MARGIN > now:
            token = AccessTokenResponse(access_token=stored[0], token_type="bearer",  # noqa: S106 - a type name
                                        expires_in=int((stored[1] - now).total_seconds()))
            with cache.lock:
                cache.entries[key] = (token, stored[1])
            return token
        body = self._request(self.scheme + self.host + self.path, self.data, self.headers)
        token = AccessTokenResponse(**body)
        expires = now + timedelta(seconds=int(body.get("expires_in") or 3600))
        with cache.lock:
            cache.entries[key] = (token, expires)
            cache.fetched += 1
        if cache.shared is not None:
            cache.shared.save(name, token.access_token, expires)
        return token

    def close(self) -> None:
        """Close the HTTP connections of the token client."""
        self._http.close()
        self._transport.close()


def post_token_request(http: httpx.Client, url: str, data: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    """POST one LWA token request; raise ServerError for what another attempt may mend, AuthError for a refusal."""
    try:
        response = http.post(url, data=data, headers=headers)
    except httpx.TransportError as exc:
        raise ServerError(f"LWA token endpoint unreachable: {exc!r}", operation="lwa") from exc
    if response.status_code == 429 or response.status_code >= 500:
        raise ServerError(f"LWA token endpoint answered {response.status_code}", status=response.status_code,
                          operation="lwa")
    try:
        body = response.json()
    except json.JSONDecodeError:
        raise ServerError("LWA token endpoint sent a malformed body", status=response.status_code,
                          operation="lwa") from None
    if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
        error = body.get("error", "") if isinstance(body, dict) else ""
        detail = body.get("error_description", "") if isinstance(body, dict) else ""
        if error == "invalid_grant":
            message = "LWA refused the refresh token (invalid_grant)"
        elif error == "invalid_client":
            message = ("LWA refused the app credentials (invalid_client): check "
                       "AFTERCARE_LWA_CLIENT_ID and AFTERCARE_LWA_CLIENT_SECRET")
        else:
            message = f"LWA refused the token request ({error or response.status_code}): {detail}"
        raise AuthError(message, error=error, status=response.status_code)
    return body


def refresh_once(token_url: str, client_id: str, client_secret: str, refresh_token: str,
                 timeout: float) -> dict[str, Any]:
    """Exchange a refresh token for an access token once, no cache and no retry (`aftercare check`).

    https://developer-docs.amazon.com/sp-api/docs/connecting-to-the-selling-partner-api#step-1-request-a-login-with-amazon-access-token
    """
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id,
            "client_secret": client_secret}
    with httpx.Client(timeout=timeout) as http:
        return post_token_request(http, token_url, data, {"Accept": "application/json"})
