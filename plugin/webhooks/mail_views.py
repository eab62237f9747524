"""``POST /webhooks/mail/<provider>``: the sending providers' bounce and complaint events, verified first.

Each endpoint authenticates the body before reading it (SES: the SNS signature and an allowed topic; SendGrid:
the ECDSA signature; Postmark: Basic auth), refuses a forgery with 401 and a body over
``app.max_webhook_body_bytes`` with 413, changing nothing either way, and answers 404 while its provider is not
configured. A genuine hard bounce or complaint is applied in the request: suppressing an address is one short
transaction, and it must hold before the next dispatcher run (plugin/webhooks/undeliverable.py). Replays change
nothing more and get 200, so a provider's retry stops.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from plugin import get_clock, get_config
from plugin.db import get_session
from plugin.webhooks import postmark, sendgrid, ses, sns
from plugin.webhooks.mail_events import MailEvent
from plugin.webhooks.undeliverable import apply
from plugin.webhooks.views import _read_body

bp = Blueprint("mail_events", __name__, url_prefix="/webhooks/mail")
log = logging.getLogger("aftercare.webhooks.mail")
CERTIFICATES = "aftercare.sns_certificates"


def init_app(app: Flask) -> None:
    """Register the routes and the SNS certificate cache of this app."""
    app.extensions[CERTIFICATES] = sns.CertificateCache(app.config["AFTERCARE"].get("mail.sns_fetch_base_url"))
    app.register_blueprint(bp)


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify(error=message), status


def _body() -> bytes:
    return _read_body(get_config().get("app.max_webhook_body_bytes"))


def _applied(provider: str, events: list[MailEvent]) -> tuple[Response, int]:
    config = get_config()
    counts = apply(get_session(), events, get_clock().now(), config.secrets.secret_key,
                   config.get("mail.bounce_mailbox"))
    log.info("mail events applied", extra={"provider": provider, **counts})
    return jsonify(status="ok", **counts), 200


@bp.post("/ses")
def ses_events() -> tuple[Response, int]:
    """Receive an SNS message for SES: confirm the subscription, or apply its bounce or complaint."""
    config = get_config()
    topics = set(config.get("mail.ses_topic_arns"))
    if not topics:
        return _error(404, "SES events are not configured (mail.ses_topic_arns)")
    try:
        raw = _body()
    except RequestEntityTooLarge:
        return _error(413, "request body too large")
    try:
        envelope: Any = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        envelope = None
    if not isinstance(envelope, dict):
        return _error(401, "not a signed SNS message")
    try:
        verified = sns.verify(envelope, current_app.extensions[CERTIFICATES])
    except sns.SnsRejected as exc:
        log.warning("SNS message refused", extra={"error": str(exc)})
        return _error(401, f"invalid SNS message: {exc}")
    if verified.topic_arn not in topics:
        log.warning("SNS message from a topic not allowed", extra={"topic": verified.topic_arn})
        return _error(401, "topic not allowed (mail.ses_topic_arns)")
    if verified.type == "SubscriptionConfirmation":
        status = sns.confirm_subscription(verified, config.get("mail.sns_fetch_base_url"))
        if status != 200:
            return _error(502, f"confirming the subscription failed (HTTP {status})")
        log.info("SNS subscription confirmed", extra={"topic": verified.topic_arn})
        return jsonify(status="confirmed"), 200
    if verified.type == "UnsubscribeConfirmation":
        return jsonify(status="ignored"), 200
    return _applied("ses", ses.events(verified.message))


@bp.post("/sendgrid")
def sendgrid_events() -> tuple[Response, int]:
    """Receive a batch of SendGrid events signed with the Event Webhook key."""
    public_key = get_config().get("mail.sendgrid_public_key")
    if not public_key:
        return _error(404, "SendGrid events are not configured (mail.sendgrid_public_key)")
    try:
        raw = _body()
    except RequestEntityTooLarge:
        return _error(413, "request body too large")
    signature = request.headers.get(sendgrid.SIGNATURE_HEADER, "")
    timestamp = request.headers.get(sendgrid.TIMESTAMP_HEADER, "")
    if not signature or not timestamp or not sendgrid.is_valid(sendgrid.load_public_key(public_key), signature,
                                                                timestamp, raw):
        log.warning("SendGrid event signature mismatch")
        return _error(401, "invalid signature")
    events = sendgrid.events(raw)
    if events is None:
        return _error(400, "body must be a JSON array of events")
    return _applied("sendgrid", events)


@bp.post("/postmark")
def postmark_events() -> tuple[Response, int]:
    """Receive one Postmark bounce or spam-complaint record (Basic auth on the webhook URL)."""
    config = get_config()
    user = config.get("mail.postmark_webhook_user")
    if not user:
        return _error(404, "Postmark events are not configured (mail.postmark_webhook_user)")
    if not postmark.is_authorized(request.headers.get("Authorization"), user,
                                  config.secrets.postmark_webhook_password):
        log.warning("Postmark webhook credentials refused")
        return _error(401, "invalid credentials")
    try:
        raw = _body()
    except RequestEntityTooLarge:
        return _error(413, "request body too large")
    events = postmark.events(raw)
    if events is None:
        return _error(400, "body must be a JSON object")
    return _applied("postmark", events)
