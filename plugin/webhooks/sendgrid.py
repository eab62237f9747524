"""SendGrid's signed Event Webhook: ECDSA P-256 verification and its bounce and spam-report events.

With signature verification on, each POST carries ``X-Twilio-Email-Event-Webhook-Signature`` (base64 DER ECDSA
signature) and ``X-Twilio-Email-Event-Webhook-Timestamp``; the signature covers the timestamp followed by the raw
body, hashed with SHA-256, under the public key shown in SendGrid's settings (base64 DER SubjectPublicKeyInfo).
https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features
The body is a JSON array of events; ``bounce`` with ``type`` ``bounce`` is hard (``blocked`` is soft),
``spamreport`` is a complaint, ``deferred`` is soft; ``smtp-id`` is the Message-ID header we sent.
https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from plugin.webhooks.mail_events import MailEvent

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"


class SendgridKeyError(ValueError):
    """The configured verification key is not a base64 DER P-256 public key."""


def load_public_key(value: str) -> ec.EllipticCurvePublicKey:
    """Read SendGrid's verification key (base64 of the DER SubjectPublicKeyInfo); raise SendgridKeyError."""
    try:
        key = load_der_public_key(base64.b64decode(value.strip(), validate=True))
    except (binascii.Error, ValueError) as exc:
        raise SendgridKeyError("not a base64 DER public key (copy it from SendGrid's Event Webhook settings)") \
            from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise SendgridKeyError("SendGrid signs with an ECDSA P-256 key; this is another kind of key")
    return key


def is_valid(key: ec.EllipticCurvePublicKey, signature: str, timestamp: str, raw: bytes) -> bool:
    """Say whether the signature header matches timestamp + raw body under SendGrid's key."""
    try:
        der = base64.b64decode(signature.strip(), validate=True)
        key.verify(der, timestamp.encode("utf-8") + raw, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True


def events(raw: bytes) -> list[MailEvent] | None:
    """Return the events of a verified body; None when it is not a JSON array."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(body, list):
        return None
    return [_event(item) for item in body if isinstance(item, dict)]


def _event(item: dict[str, Any]) -> MailEvent:
    name = str(item.get("event") or "")
    address = str(item.get("email") or "")
    header_id = item.get("smtp-id") if isinstance(item.get("smtp-id"), str) else None
    detail = " ".join(str(item[k]) for k in ("status", "reason") if item.get(k))
    if name == "bounce":
        hard = str(item.get("type") or "bounce") == "bounce"
        return MailEvent("sendgrid", "bounce" if hard else "soft", address, detail, header_id)
    if name == "spamreport":
        return MailEvent("sendgrid", "complaint", address, "spam report", header_id)
    return MailEvent("sendgrid", "soft" if name == "deferred" else "other", address, name, header_id)
