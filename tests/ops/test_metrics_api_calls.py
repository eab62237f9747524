"""Marketplace API counters on /metrics: after a Shopify and an Amazon sync through their sandboxes (with
injected 429s and a drained Shopify cost bucket), the figures equal what the sandboxes themselves answered."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from base.clock import FrozenClock
from jobs.schedule import run_named
from plugin import create_app
from plugin.context import JobContext
from sandbox.server import ServerThread
from sandbox.shopify import DEFAULT_SHOP, ShopifySandbox, mint_session_token
from tests.amazon_env import NOW, start_env
from tests.conftest import TEST_SHOPIFY_API_KEY, TEST_SHOPIFY_API_SECRET, make_settings, wipe
from tests.shopify_app_env import SCOPES

TOKEN = "metrics-token-0123456789abcdef"  # noqa: S105 - a test value


class Answers:
    """WSGI middleware noting each answer: (method, path, HTTP status, whether the body says THROTTLED)."""

    def __init__(self, app: Any):
        self.app = app
        self.seen: list[tuple[str, str, int, bool]] = []
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        status: list[int] = []

        def noting(line: str, headers: Any, exc_info: Any = None) -> Any:
            status.append(int(line.split()[0]))
            return start_response(line, headers, exc_info)

        body = b"".join(self.app(environ, noting))
        with self._lock:
            self.seen.append((environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), status[0],
                              b'"THROTTLED"' in body))
        return [body]

    def clear(self) -> None:
        """Forget what was seen so far."""
        with self._lock:
            self.seen.clear()


def _scrape(app) -> dict[tuple[str, str], float]:
    answer = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200
    out = {}
    for family in text_string_to_metric_families(answer.get_data(as_text=True)):
        for sample in family.samples:
            if sample.name.startswith("aftercare_api_"):
                out[(sample.name, sample.labels["api"])] = sample.value
    return out


def test_shopify_and_amazon_calls_throttles_and_429s(database_url: str, database, tmp_path: Path) -> None:
    clock = FrozenClock(NOW)
    sandbox = ShopifySandbox(seed=11, customers=6, orders=12, clock=clock)
    answers = Answers(sandbox.wsgi_app)
    sandbox.wsgi_app = answers
    sandbox.start()
    app = create_app(make_settings(database_url, tmp_path / "instance", shopify={"admin_base_url": sandbox.url},
                                   metrics={"enabled": True}, secrets={"metrics_token": TOKEN}), clock=clock)
    server = ServerThread(app).start()
    amazon = None
    try:
        sandbox.register_app(TEST_SHOPIFY_API_KEY, TEST_SHOPIFY_API_SECRET, SCOPES,
                             webhook_url=server.url + "/webhooks")
        token = mint_session_token(DEFAULT_SHOP, TEST_SHOPIFY_API_KEY, TEST_SHOPIFY_API_SECRET, clock.now())
        installed = requests.post(f"{server.url}/auth/token-exchange", timeout=10,
                                  headers={"Authorization": f"Bearer {token}"})
        assert installed.status_code == 200, installed.text
        store_id = int(installed.json()["store_id"])
        answers.clear()  # the install's own calls are the web app's, not a job's

        # The job waits on the shared clock, so the cost bucket refills while it "sleeps".
        ctx = JobContext.from_app(app, sleep=lambda seconds: clock.advance(seconds=seconds))
        sandbox.bucket(TEST_SHOPIFY_API_KEY).drain()
        sandbox.set_faults(0.3, kinds=["429"], seed=5)
        result = run_named(ctx, "sync", store_id)
        assert result.ok, result.failures
        sandbox.set_faults(0.0)

        graphql = [a for a in answers.seen if a[1].endswith("/graphql.json")]
        shopify_429 = sum(1 for a in graphql if a[2] == 429)
        shopify_throttled = sum(1 for a in graphql if a[3])
        assert shopify_429 >= 1 and shopify_throttled >= 1  # both kinds happened

        amazon = start_env(database, tmp_path, orders=8)
        amazon.sandbox.set_faults(0.3, kinds=["429"], seed=3)
        amazon_ctx = amazon.context()
        amazon_result = run_named(amazon_ctx, "sync", amazon.store_id)
        assert amazon_result.ok, amazon_result.failures
        # The sandbox's own record of what it answered (tests/amazon_env.py CallRecorder), LWA token calls aside.
        sp_api = [a for a in amazon.recorder.answers if not a[1].startswith("/auth/o2/token")]
        amazon_429 = sum(1 for a in sp_api if a[2] == 429)
        assert amazon_429 >= 1

        figures = _scrape(app)
        assert figures == {
            ("aftercare_api_calls_total", "shopify"): len(graphql),
            ("aftercare_api_throttled_total", "shopify"): shopify_429 + shopify_throttled,
            ("aftercare_api_http_429_total", "shopify"): shopify_429,
            # Every refused attempt was tried again (the sync succeeded).
            ("aftercare_api_retries_total", "shopify"): shopify_429 + shopify_throttled,
            ("aftercare_api_calls_total", "amazon"): len(sp_api),
            ("aftercare_api_throttled_total", "amazon"): amazon_429,
            ("aftercare_api_http_429_total", "amazon"): amazon_429,
            ("aftercare_api_retries_total", "amazon"): amazon_429,
        }
    finally:
        if amazon is not None:
            amazon.sandbox.stop()
        server.stop()
        sandbox.stop()
        wipe(app.extensions["aftercare.db"].engine)
        app.extensions["aftercare.db"].dispose()
