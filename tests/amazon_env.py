"""Helpers for the Amazon connector and job tests: a sandbox sharing the test's clock, a store, a context."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from base.clock import FrozenClock
from plugin.config import load_config
from plugin.crypto import Vault
from plugin.db import Database
from plugin.models import Merchant, Store
from plugin.secrets_store import set_credential
from sandbox.amazon import AmazonSandbox
from sandbox.server import ServerThread
from tests.conftest import TEST_ENCRYPTION_KEY, test_settings

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@dataclass
class AmazonEnv:
    """A started sandbox, the clock it shares with the code under test, and a connected seller's store."""

    sandbox: AmazonSandbox
    clock: FrozenClock
    database: Database
    config: Any
    vault: Vault
    seller: Any
    store_id: int
    recorder: CallRecorder

    def context(self, **extras: Any) -> Any:
        """Return a JobContext whose sleep moves the shared clock (no real waiting)."""
        from plugin.context import JobContext

        return JobContext(config=self.config, database=self.database, vault=self.vault, clock=self.clock,
                          sleep=lambda seconds: self.clock.advance(seconds=seconds), extras=extras)


def amazon_config(database_url: str, instance: Path, sandbox: AmazonSandbox, **amazon: Any) -> Any:
    """Return a Config pointing [amazon] at the sandbox, with the sandbox's LWA app as our app."""
    settings = test_settings(database_url, instance)
    settings["amazon"] = {"endpoint": sandbox.url, "lwa_token_url": sandbox.lwa_token_url,
                          "request_timeout_seconds": 10.0, **amazon}
    settings["secrets"] = {**settings["secrets"], "lwa_client_id": sandbox.client_id,
                           "lwa_client_secret": sandbox.client_secret}
    return load_config(settings, environ={})


def add_store(database: Database, vault: Vault, seller: Any, refresh_token: str, region: str = "na") -> int:
    """Insert a merchant and the seller's Amazon store with its encrypted refresh token; return the id."""
    with database.session() as session:
        merchant = Merchant(name=seller.name)
        session.add(merchant)
        session.flush()
        store = Store(merchant_id=merchant.id, platform="amazon", external_id=f"{seller.seller_id}:{region}",
                      region=region, marketplace_ids=list(seller.marketplace_ids), name=seller.name)
        set_credential(store, vault, "refresh_token_enc", refresh_token)
        session.add(store)
        session.flush()
        return store.id


class CallRecorder:
    """WSGI middleware that notes every request (method, path, query, sandbox time) before serving it."""

    def __init__(self, app: Any, clock: FrozenClock):
        self.app = app
        self.clock = clock
        self.calls: list[tuple[str, str, str, datetime]] = []
        self.answers: list[tuple[str, str, int]] = []  # (method, path, HTTP status) in the order answered
        # Called with (method, path) after the sandbox answered: lets a test act "between two calls".
        self.after: Any = None
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        with self._lock:
            self.calls.append((method, path, environ.get("QUERY_STRING", ""), self.clock.now()))

        def noting(status: str, headers: Any, exc_info: Any = None) -> Any:
            with self._lock:
                self.answers.append((method, path, int(status.split()[0])))
            return start_response(status, headers, exc_info)

        body = list(self.app(environ, noting))
        if self.after is not None:
            self.after(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""))
        return body

    def count(self, method: str, path_prefix: str, status: int | None = None) -> int:
        """Count the answered requests of a method under a path prefix (with a given status, when given)."""
        with self._lock:
            return sum(1 for m, p, code in self.answers
                       if m == method and p.startswith(path_prefix) and (status is None or code == status))


def start_env(database: Database, tmp_path: Path, *, seller_index: int = 0, now: datetime = NOW,
              amazon_settings: dict[str, Any] | None = None, **sandbox_options: Any) -> AmazonEnv:
    """Start a seeded sandbox on a frozen clock and connect one of its sellers as a store."""
    clock = FrozenClock(now)
    sandbox_options.setdefault("orders", 300)
    sandbox = AmazonSandbox(seed=sandbox_options.pop("seed", 11), clock=clock, **sandbox_options)
    recorder = CallRecorder(sandbox.wsgi_app, clock)
    # Serve through the recorder; the sandbox's own `serve` attaches its ServerThread the same way.
    sandbox._server = ServerThread(recorder).start()
    config = amazon_config(database.url, tmp_path / "instance", sandbox, **(amazon_settings or {}))
    vault = Vault(TEST_ENCRYPTION_KEY)
    seller = sandbox.seller(seller_index)
    store_id = add_store(database, vault, seller, sandbox.issue_refresh_token(seller.seller_id))
    return AmazonEnv(sandbox, clock, database, config, vault, seller, store_id, recorder)
