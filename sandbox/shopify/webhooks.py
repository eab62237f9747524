"""Deliver webhooks exactly as Shopify signs them, with bounded retries.

https://shopify.dev/docs/apps/build/webhooks/subscribe/https : the body is the raw JSON; the header
``X-Shopify-Hmac-Sha256`` is base64(HMAC-SHA256(raw body, app client secret)); a non-2xx answer or a
timeout (Shopify waits 5 s) counts as a failure and is retried. The webhook id stays the same across
retries of one delivery, so receivers can deduplicate on it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests

DELIVERY_TIMEOUT = 5.0
RETRY_DELAYS = (1.0, 5.0, 30.0)  # Shopify retries 8 times over 4 hours; the sandbox keeps it short

COMPLIANCE_TOPICS = ("customers/data_request", "customers/redact", "shop/redact")
TOPICS = ("orders/create", "orders/updated", "orders/fulfilled", "orders/cancelled", "fulfillments/create",
          "fulfillments/update", "fulfillment_events/create", "refunds/create", "customers/update", "app/uninstalled",
          "bulk_operations/finish", "orders/delete", "products/delete", "customers/delete",
          "customers_email_marketing_consent/update",
          *COMPLIANCE_TOPICS)


def sign(body: bytes, secret: str) -> str:
    """Return Shopify's webhook signature: base64 of HMAC-SHA256 of the raw body."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def topic_to_enum(topic: str) -> str:
    """Map ``orders/create`` to the GraphQL enum ``ORDERS_CREATE``."""
    return topic.replace("/", "_").upper()


def enum_to_topic(value: str) -> str:
    """Map ``ORDERS_CREATE`` to ``orders/create`` for the topics the sandbox knows."""
    for topic in TOPICS:
        if topic_to_enum(topic) == value:
            return topic
    raise ValueError(value)


@dataclass
class Attempt:
    """One HTTP attempt: status code (None on timeout/connection error) and error text."""

    status: int | None
    error: str | None = None


@dataclass
class Delivery:
    """A webhook delivery with every attempt made."""

    topic: str
    shop: str
    url: str
    webhook_id: str
    event_id: str
    triggered_at: str
    body: bytes
    headers: dict[str, str]
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def delivered(self) -> bool:
        """Return True once an attempt got a 2xx."""
        return any(a.status is not None and 200 <= a.status < 300 for a in self.attempts)

    @property
    def payload(self) -> Any:
        """Return the decoded body."""
        return json.loads(self.body)


class WebhookSender:
    """Post signed webhooks; retries non-2xx and timeouts through an injectable ``sleep``."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep, timeout: float = DELIVERY_TIMEOUT,
                 retry_delays: tuple[float, ...] = RETRY_DELAYS, session: requests.Session | None = None):
        self.sleep = sleep
        self.timeout = timeout
        self.retry_delays = retry_delays
        self.session = session or requests.Session()
        self.log: list[Delivery] = []
        self._lock = threading.Lock()

    def build(self, url: str, topic: str, shop: str, payload: Any, secret: str, api_version: str,
              triggered_at: datetime, event_id: str | None = None) -> Delivery:
        """Serialize and sign one delivery without sending it."""
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        webhook_id = str(uuid.uuid4())
        event = event_id or str(uuid.uuid4())
        stamp = triggered_at.isoformat().replace("+00:00", "Z")
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": sign(body, secret),
            "X-Shopify-Shop-Domain": shop,
            "X-Shopify-API-Version": api_version,
            "X-Shopify-Webhook-Id": webhook_id,
            "X-Shopify-Event-Id": event,
            "X-Shopify-Triggered-At": stamp,
            "User-Agent": "Shopify-Captain-Hook",
        }
        return Delivery(topic, shop, url, webhook_id, event, stamp, body, headers)

    def send(self, delivery: Delivery) -> Delivery:
        """Post until a 2xx or the retries run out; record every attempt."""
        with self._lock:
            self.log.append(delivery)
        for attempt in range(len(self.retry_delays) + 1):
            if attempt:
                self.sleep(self.retry_delays[attempt - 1])
            try:
                resp = self.session.post(delivery.url, data=delivery.body, headers=delivery.headers,
                                         timeout=self.timeout, allow_redirects=False)
                delivery.attempts.append(Attempt(resp.status_code))
                if 200 <= resp.status_code < 300:
                    break
            except requests.RequestException as exc:
                delivery.attempts.append(Attempt(None, type(exc).__name__))
        return delivery


@dataclass
class Subscription:
    """A webhook subscription created through ``webhookSubscriptionCreate``."""

    id: int
    client_id: str
    shop: str
    topic: str
    callback_url: str
    created_at: datetime
    updated_at: datetime
    include_fields: tuple[str, ...] = ()
    filter: str | None = None
    format: str = "JSON"
