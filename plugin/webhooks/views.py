"""`POST /webhooks`: verify Shopify's signature on the raw body, store the delivery once, answer fast.

One route serves every subscription (shopify.app.toml points all topics, compliance ones included, at
``shopify.webhook_path``) and dispatches on ``X-Shopify-Topic``; processing happens in
``jobs.webhooks.process_pending``, never in the request (Shopify gives up after 5 s).
https://shopify.dev/docs/apps/build/webhooks/subscribe/https
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from plugin import get_clock, get_config
from plugin.auth.lifecycle import mark_uninstalled
from plugin.auth.shop_domain import normalise_shop_domain
from plugin.db import get_session
from plugin.webhooks.inbox import Delivery, find_shopify_store, record_event, same_event_seen
from plugin.webhooks.signature import is_valid_signature

bp = Blueprint("webhooks", __name__)
log = logging.getLogger("aftercare.webhooks")

REQUIRED_HEADERS = ("X-Shopify-Hmac-Sha256", "X-Shopify-Topic", "X-Shopify-Shop-Domain", "X-Shopify-Webhook-Id")
# Headers are not covered by the signature; keep them within their columns (webhook_event).
HEADER_LIMITS = {"X-Shopify-Webhook-Id": 255, "X-Shopify-Event-Id": 255, "X-Shopify-API-Version": 16}


def init_app(app: Any) -> None:
    """Register the webhook route at the configured path."""
    path = app.config["AFTERCARE"].get("shopify.webhook_path")
    app.add_url_rule(path, endpoint="webhooks.receive", view_func=receive, methods=["POST"])
    app.register_blueprint(bp)


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify(error=message), status


def _parse_triggered_at(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _read_body(limit: int) -> bytes:
    """Read the raw body, refusing more than ``limit`` bytes whatever Content-Length claims."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise RequestEntityTooLarge()
    # A chunked body has no Content-Length: read until the end, stopping as soon as it passes the limit
    # (werkzeug's limited stream may also raise 413 itself once MAX_CONTENT_LENGTH is exceeded).
    parts: list[bytes] = []
    size = 0
    while True:
        part = request.stream.read(64 * 1024)
        if not part:
            return b"".join(parts)
        size += len(part)
        if size > limit:
            raise RequestEntityTooLarge()
        parts.append(part)


def _parse_body(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """Return (the body as a JSON object, None) or (None, why it is not one)."""
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None, "body is not valid JSON"
    if not isinstance(payload, dict):
        return None, "body must be a JSON object"
    return payload, None


def _reinstalled_since(store: Any, delivery: Delivery) -> bool:
    """Say whether the store was installed again after Shopify sent this (late) app/uninstalled."""
    return (store.status == "active" and store.installed_at is not None and delivery.triggered_at is not None
            and store.installed_at > delivery.triggered_at)


def receive() -> tuple[Response, int]:
    """Verify, store and acknowledge one webhook delivery (a signed body that is not a JSON object: stored failed)."""
    config = get_config()
    limit = config.get("app.max_webhook_body_bytes")
    try:
        raw = _read_body(limit)
    except RequestEntityTooLarge:
        return _error(413, f"request body larger than {limit} bytes")
    missing = [name for name in REQUIRED_HEADERS if not request.headers.get(name)]
    if missing:
        return _error(400, f"missing headers: {', '.join(missing)}")
    if not is_valid_signature(raw, request.headers["X-Shopify-Hmac-Sha256"], config.secrets.shopify_api_secret):
        log.warning("webhook signature mismatch", extra={"topic": request.headers["X-Shopify-Topic"],
                                                         "shop": request.headers["X-Shopify-Shop-Domain"]})
        return _error(401, "invalid signature")
    shop = normalise_shop_domain(request.headers["X-Shopify-Shop-Domain"])
    if shop is None:
        return _error(400, "X-Shopify-Shop-Domain is not a myshopify.com domain")
    topic = request.headers["X-Shopify-Topic"].strip().lower()
    known = set(config.get("shopify.webhook_topics")) | set(config.get("shopify.compliance_topics"))
    if topic not in known:
        log.info("webhook topic not subscribed; acknowledged and ignored", extra={"topic": topic, "shop": shop})
        return jsonify(status="ignored"), 200

    too_long = [name for name, most in HEADER_LIMITS.items() if len(request.headers.get(name) or "") > most]
    if too_long:
        return _error(400, f"header too long: {', '.join(too_long)}")
    payload, unreadable = _parse_body(raw)
    delivery = Delivery(shop_domain=shop, topic=topic, webhook_id=request.headers["X-Shopify-Webhook-Id"].strip(),
                        event_id=(request.headers.get("X-Shopify-Event-Id") or "").strip() or None,
                        api_version=request.headers.get("X-Shopify-API-Version"),
                        triggered_at=_parse_triggered_at(request.headers.get("X-Shopify-Triggered-At")))
    session = get_session()
    if same_event_seen(session, delivery):
        log.info("webhook event already received under another webhook id", extra={
            "topic": topic, "shop": shop, "event_id": delivery.event_id})
        return jsonify(status="duplicate"), 200
    store = find_shopify_store(session, shop)
    now = get_clock().now()
    event = record_event(session, delivery, payload, store.id if store else None, now, unreadable=unreadable)
    if event is None:
        return jsonify(status="duplicate"), 200
    if unreadable is not None:
        # Signed by Shopify, so it is theirs, but no retry will make it readable: acknowledged (Shopify would
        # otherwise resend it for hours), kept as a failed event the merchant sees, and logged once.
        log.warning("webhook body can never be applied; marked failed", extra={
            "topic": topic, "shop": shop, "webhook_event_id": event.id, "store_id": store.id if store else None,
            "error": unreadable})
        return jsonify(status="failed", error=unreadable), 200
    if topic == "app/uninstalled" and store is not None and not _reinstalled_since(store, delivery):
        # Sending must stop the moment Shopify says so; the job later cancels queued messages.
        mark_uninstalled(session, store, now)
    log.info("webhook stored", extra={"topic": topic, "shop": shop, "webhook_event_id": event.id,
                                       "store_id": store.id if store else None})
    return jsonify(status="stored"), 200
