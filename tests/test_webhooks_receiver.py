"""The webhook receiver over real HTTP: signature on the raw body, header checks, size limit, dedup, speed."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import func, select

from plugin.config import DEFAULTS
from plugin.models import Merchant, Store, WebhookEvent
from sandbox.server import ServerThread
from tests.conftest import TEST_SHOPIFY_API_SECRET
from tests.shopify_app_env import body_of, signed_headers

SHOP = "acme-goods.myshopify.com"
ALL_TOPICS = ("orders/create", "orders/updated", "orders/fulfilled", "orders/cancelled", "fulfillments/create",
              "fulfillments/update", "fulfillment_events/create",
              "refunds/create", "customers/update", "app/uninstalled", "bulk_operations/finish",
              "orders/delete", "products/delete", "customers/delete", "customers_email_marketing_consent/update",
              "customers/data_request", "customers/redact", "shop/redact")
LIMIT = 1024 * 1024


@pytest.fixture
def server(app) -> Iterator[str]:
    """Serve the app on a loopback port and return the webhook URL."""
    thread = ServerThread(app).start()
    yield thread.url + "/webhooks"
    thread.stop()


def _events(app) -> list[WebhookEvent]:
    with app.extensions["aftercare.db"].session() as session:
        return list(session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))


def _count(app) -> int:
    with app.extensions["aftercare.db"].session() as session:
        return int(session.scalar(select(func.count()).select_from(WebhookEvent)))


def test_every_subscribed_topic_is_tried_below() -> None:
    shopify = DEFAULTS["shopify"]
    assert set(ALL_TOPICS) == set(shopify["webhook_topics"]) | set(shopify["compliance_topics"])


@pytest.mark.parametrize("topic", ALL_TOPICS)
def test_forged_signature_is_refused_on_every_topic(app, server: str, topic: str) -> None:
    body = body_of({"id": 1, "shop_domain": SHOP})
    forged = signed_headers(body, topic, shop=SHOP, secret="not-the-app-secret")
    answer = httpx.post(server, content=body, headers=forged, timeout=10)
    assert answer.status_code == 401
    tampered = signed_headers(body, topic, shop=SHOP)
    answer = httpx.post(server, content=body + b" ", headers=tampered, timeout=10)
    assert answer.status_code == 401
    assert _count(app) == 0


@pytest.mark.parametrize("missing", ["X-Shopify-Hmac-Sha256", "X-Shopify-Topic", "X-Shopify-Shop-Domain",
                                     "X-Shopify-Webhook-Id"])
def test_missing_header_is_a_bad_request(app, server: str, missing: str) -> None:
    body = body_of({"id": 1})
    headers = signed_headers(body, "orders/create", shop=SHOP)
    del headers[missing]
    answer = httpx.post(server, content=body, headers=headers, timeout=10)
    assert answer.status_code == 400
    assert missing in answer.json()["error"]
    assert _count(app) == 0


def test_body_over_one_mebibyte_is_413_by_content_length(app, server: str) -> None:
    body = body_of({"note": "x" * LIMIT})
    answer = httpx.post(server, content=body, headers=signed_headers(body, "orders/create", shop=SHOP), timeout=10)
    assert answer.status_code == 413
    assert _count(app) == 0


def test_chunked_body_over_one_mebibyte_is_413(app, server: str) -> None:
    body = body_of({"note": "y" * (LIMIT + 10)})
    headers = signed_headers(body, "orders/create", shop=SHOP)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start:start + 64 * 1024]

    # No Content-Length: the limit must hold on the streamed body too.
    answer = httpx.post(server, content=chunks(), headers=headers, timeout=10)
    assert "content-length" not in {k.lower() for k in answer.request.headers if k.lower() == "content-length"}
    assert answer.status_code == 413
    assert _count(app) == 0


def test_body_of_exactly_the_limit_is_accepted(app, server: str) -> None:
    filler = LIMIT - len(body_of({"note": ""}))
    body = body_of({"note": "z" * filler})
    assert len(body) == LIMIT
    answer = httpx.post(server, content=body, headers=signed_headers(body, "orders/create", shop=SHOP), timeout=10)
    assert answer.status_code == 200
    assert _count(app) == 1


def test_a_signed_body_that_is_not_a_json_object_is_stored_failed_once(app, server: str) -> None:
    # Shopify signed it, so no retry will change it: acknowledged (no retries for hours), kept failed with why.
    cases = {b"{not json": "body is not valid JSON", b"\xff\xfe": "body is not valid JSON",
             b"[1, 2]": "body must be a JSON object", b"[" * 100_000 + b"]" * 100_000: "body is not valid JSON"}
    for n, (body, reason) in enumerate(cases.items()):
        headers = signed_headers(body, "orders/create", shop=SHOP, webhook_id=f"poison-{n}")
        # Shopify's retry of the same delivery is a duplicate.
        answers = [httpx.post(server, content=body, headers=headers, timeout=10) for _ in range(2)]
        assert [(a.status_code, a.json()) for a in answers] == [
            (200, {"status": "failed", "error": reason}), (200, {"status": "duplicate"})], body[:20]
    events = _events(app)
    assert [(e.webhook_id, e.topic, e.attempts, e.payload, e.processed_at is None, e.failed_at is not None,
             e.last_error) for e in events] == [
        (f"poison-{n}", "orders/create", 1, None, True, True,
         f"permanent error (the body can never be applied): {reason}") for n, reason in enumerate(cases.values())]


def test_unknown_topic_is_acknowledged_and_not_stored(app, server: str) -> None:
    body = body_of({"id": 5})
    answer = httpx.post(server, content=body, headers=signed_headers(body, "products/create", shop=SHOP), timeout=10)
    assert answer.status_code == 200
    assert answer.json() == {"status": "ignored"}
    assert _count(app) == 0


def test_delivery_is_stored_with_its_headers(app, server: str) -> None:
    with app.extensions["aftercare.db"].session() as session:
        merchant = Merchant(name="Acme", settings={})
        session.add(merchant)
        session.flush()
        store = Store(merchant_id=merchant.id, platform="shopify", external_id=SHOP, marketplace_ids=[])
        session.add(store)
        session.flush()
        store_id = store.id
    body = body_of({"id": 4501, "name": "#1001", "note": "naïve ☕"})
    triggered = datetime(2026, 3, 2, 11, 59, 58, tzinfo=UTC)
    headers = signed_headers(body, "orders/create", shop=SHOP.upper(), webhook_id="wh-1", event_id="ev-1",
                             triggered_at=triggered)
    answer = httpx.post(server, content=body, headers=headers, timeout=10)
    assert answer.status_code == 200
    assert answer.json() == {"status": "stored"}
    [event] = _events(app)
    assert (event.store_id, event.shop_domain, event.topic, event.webhook_id, event.event_id) == (
        store_id, SHOP, "orders/create", "wh-1", "ev-1")
    assert event.api_version == "2025-01"
    assert event.triggered_at == triggered
    assert event.received_at == datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # the app's frozen clock
    assert event.payload == {"id": 4501, "name": "#1001", "note": "naïve ☕"}
    assert event.processed_at is None and event.attempts == 0


def test_replayed_delivery_is_stored_once(app, server: str) -> None:
    body = body_of({"id": 77})
    headers = signed_headers(body, "orders/updated", shop=SHOP, webhook_id="same-webhook", event_id="e-77")
    statuses = [httpx.post(server, content=body, headers=headers, timeout=10).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    # The same event reaching us through another subscription (new webhook id, same event id).
    again = dict(headers, **{"X-Shopify-Webhook-Id": "other-webhook"})
    assert httpx.post(server, content=body, headers=again, timeout=10).json() == {"status": "duplicate"}
    assert [e.webhook_id for e in _events(app)] == ["same-webhook"]


def test_acknowledgement_is_fast(app, server: str) -> None:
    durations = []
    with httpx.Client(timeout=10) as client:
        for number in range(200):
            body = body_of({"id": number, "line_items": [{"id": number, "quantity": 1, "price": "9.90"}] * 20})
            headers = signed_headers(body, "orders/create", shop=SHOP)
            started = time.perf_counter()
            answer = client.post(server, content=body, headers=headers)
            durations.append(time.perf_counter() - started)
            assert answer.status_code == 200
    p95 = statistics.quantiles(durations, n=100)[94]
    print(f"\nwebhook acknowledgement over HTTP: p50={statistics.median(durations) * 1000:.1f} ms "
          f"p95={p95 * 1000:.1f} ms max={max(durations) * 1000:.1f} ms (n=200)")
    assert _count(app) == 200
    assert p95 < 1.0  # Shopify waits 5 s; we answer far inside that


def test_secret_used_is_the_app_secret() -> None:
    # Guard for the tests above: signed_headers signs with the same secret the app is configured with.
    body = b"{}"
    assert signed_headers(body, "orders/create")["X-Shopify-Hmac-Sha256"] == signed_headers(
        body, "orders/create", secret=TEST_SHOPIFY_API_SECRET)["X-Shopify-Hmac-Sha256"]


def test_oversized_headers_are_bad_requests(app, server: str) -> None:
    body = body_of({"id": 1})
    headers = signed_headers(body, "orders/create", shop=SHOP, webhook_id="w" * 256)
    answer = httpx.post(server, content=body, headers=headers, timeout=10)
    assert answer.status_code == 400 and "X-Shopify-Webhook-Id" in answer.json()["error"]
    assert _count(app) == 0
