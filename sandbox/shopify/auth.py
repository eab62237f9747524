"""Apps, installations and the access/refresh tokens Shopify issues to them.

Expiring offline tokens live 3600 s and come with a 90-day refresh token that rotates: the previous
refresh token stays usable until its replacement is first used, then it is retired
(https://shopify.dev/changelog/more-resilient-refreshes-for-expiring-offline-access-tokens).
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

ACCESS_TTL = timedelta(seconds=3600)
ONLINE_TTL = timedelta(seconds=86399)
REFRESH_TTL = timedelta(days=90)
INVALID_TOKEN_MESSAGE = "[API] Invalid API key or access token (unrecognized login or wrong password)"  # noqa: S105


@dataclass
class AppRecord:
    """A registered app: credentials, granted scopes, protected-data access and webhook endpoint."""

    client_id: str
    client_secret: str
    scopes: tuple[str, ...]
    protected_customer_data: bool = True
    webhook_url: str | None = None
    webhook_topics: tuple[str, ...] | None = None  # None: every topic the sandbox emits
    api_version: str = "2025-01"

    def has_scope(self, scope: str) -> bool:
        """Return True if granted; a ``write_`` scope implies its ``read_`` twin."""
        if scope in self.scopes:
            return True
        if scope.startswith("read_"):
            return "write_" + scope[len("read_"):] in self.scopes
        return False


@dataclass
class AccessToken:
    """An issued access token."""

    token: str
    client_id: str
    shop: str
    mode: str  # "offline" | "online"
    expires_at: datetime | None
    revoked: bool = False
    user_id: int | None = None


@dataclass
class RefreshToken:
    """A refresh token; ``predecessor`` is retired the first time this one is used."""

    token: str
    client_id: str
    shop: str
    expires_at: datetime
    retired: bool = False
    predecessor: RefreshToken | None = None
    issued: list[str] = field(default_factory=list)


class TokenStore:
    """Issue, look up, rotate and revoke tokens (thread-safe)."""

    def __init__(self) -> None:
        self._access: dict[str, AccessToken] = {}
        self._refresh: dict[str, RefreshToken] = {}
        self._codes: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()

    def issue(self, client_id: str, shop: str, now: datetime, mode: str = "offline", expiring: bool = False,
              user_id: int | None = None, predecessor: RefreshToken | None = None
              ) -> tuple[AccessToken, RefreshToken | None]:
        """Issue an access token (and a refresh token for expiring offline access)."""
        prefix = "shpua_" if mode == "online" else "shpat_"
        expires = now + ONLINE_TTL if mode == "online" else (now + ACCESS_TTL if expiring else None)
        access = AccessToken(prefix + secrets.token_hex(16), client_id, shop, mode, expires, user_id=user_id)
        refresh = None
        if mode == "offline" and expiring:
            refresh = RefreshToken("shprt_" + secrets.token_hex(16), client_id, shop, now + REFRESH_TTL,
                                   predecessor=predecessor)
        with self._lock:
            self._access[access.token] = access
            if refresh:
                self._refresh[refresh.token] = refresh
        return access, refresh

    def lookup(self, token: str, now: datetime) -> AccessToken | None:
        """Return a live access token, or None if unknown, revoked or expired."""
        with self._lock:
            access = self._access.get(token)
        if access is None or access.revoked or (access.expires_at is not None and access.expires_at <= now):
            return None
        return access

    def use_refresh(self, token: str, client_id: str, shop: str, now: datetime,
                    strict: bool = False) -> RefreshToken | None:
        """Validate a refresh token for rotation and retire its predecessor; None when unusable.

        ``strict`` retires the token itself at once (the pre-2026 rule: no retry of a used token).
        """
        with self._lock:
            refresh = self._refresh.get(token)
            if (refresh is None or refresh.retired or refresh.client_id != client_id or refresh.shop != shop
                    or refresh.expires_at <= now):
                return None
            if refresh.predecessor is not None:
                refresh.predecessor.retired = True
                refresh.predecessor = None
            if strict:
                refresh.retired = True
            return refresh

    def new_code(self, client_id: str, shop: str) -> str:
        """Return a one-time authorization code."""
        code = secrets.token_hex(16)
        with self._lock:
            self._codes[code] = (client_id, shop)
        return code

    def take_code(self, code: str) -> tuple[str, str] | None:
        """Consume an authorization code; None if unknown or already used."""
        with self._lock:
            return self._codes.pop(code, None)

    def revoke(self, client_id: str, shop: str) -> int:
        """Revoke every access and refresh token of an app on a shop; return how many were live."""
        count = 0
        with self._lock:
            for access in self._access.values():
                if access.client_id == client_id and access.shop == shop and not access.revoked:
                    access.revoked = True
                    count += 1
            for refresh in self._refresh.values():
                if refresh.client_id == client_id and refresh.shop == shop:
                    refresh.retired = True
        return count

    def expire(self, token: str) -> None:
        """Mark an access token as already expired (tests, the demo)."""
        with self._lock:
            access = self._access.get(token)
            if access is not None:
                access.expires_at = datetime(1970, 1, 1, tzinfo=UTC)
