"""Shared helpers for the Amazon sandbox tests: a started sandbox on a frozen clock, tokens, calls."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from base.clock import FrozenClock
from sandbox.amazon import AmazonSandbox

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TIMEOUT = 10


@dataclass
class Env:
    """A running sandbox, its clock and a logged-in seller."""

    sandbox: AmazonSandbox
    clock: FrozenClock
    seller: Any
    refresh_token: str
    token: str

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        """Call the sandbox with the seller's access token (or ``token``)."""
        headers = kwargs.pop("headers", {})
        headers.setdefault("x-amz-access-token", self.token if token is None else token)
        return requests.request(method, self.sandbox.url + path, headers=headers, timeout=TIMEOUT, **kwargs)

    def at(self, when: datetime) -> None:
        """Move the sandbox clock to ``when`` and log in again (tokens live one hour)."""
        self.clock.set(when)
        self.token = lwa_token(self.sandbox, self.refresh_token)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        """GET with the seller's token."""
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        """POST with the seller's token."""
        return self.call("POST", path, **kwargs)


def lwa_token(sandbox: AmazonSandbox, refresh_token: str) -> str:
    """Exchange a refresh token for an access token over HTTP."""
    answer = requests.post(sandbox.lwa_token_url, data={
        "grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret}, timeout=TIMEOUT)
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def make_env(seller_index: int = 0, **options: Any) -> Iterator[Env]:
    """Start a sandbox (small seed data, frozen clock), log a seller in, yield, stop."""
    clock = FrozenClock(NOW)
    options.setdefault("orders", 400)
    options.setdefault("rate_limits", False)
    sandbox = AmazonSandbox(seed=7, clock=clock, **options)
    sandbox.start()
    try:
        seller = sandbox.seller(seller_index)
        refresh = sandbox.issue_refresh_token(seller.seller_id)
        yield Env(sandbox, clock, seller, refresh, lwa_token(sandbox, refresh))
    finally:
        sandbox.stop()


@pytest.fixture(name="env")
def amazon_env() -> Iterator[Env]:
    """A sandbox without rate limits, logged in as the cross-border seller (US, CA, UK, DE, FR, IT, ES)."""
    yield from make_env()
