"""Postmark's bounce and spam-complaint webhooks: Basic auth on the URL and the two record types.

Postmark signs nothing; its webhook URL carries credentials (``https://user:password@host/webhooks/mail/postmark``)
that arrive as HTTP Basic auth. ``RecordType`` ``Bounce`` with ``Type`` ``HardBounce`` (or ``BadEmailAddress``) is a
hard bounce, other bounce types are soft; ``RecordType`` ``SpamComplaint`` is a complaint.
https://postmarkapp.com/developer/webhooks/bounce-webhook https://postmarkapp.com/developer/webhooks/spam-complaint-webhook
https://postmarkapp.com/developer/api/bounce-api#bounce-types
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json

from plugin.webhooks.mail_events import MailEvent

HARD_TYPES = frozenset({"HardBounce", "BadEmailAddress"})


def is_authorized(header: str | None, user: str, password: str) -> bool:
    """Say whether an Authorization header carries exactly the configured Basic credentials."""
    if not header or not user or not password:
        return False
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = f"{user}:{password}".encode()
    return hmac.compare_digest(given, expected)


def events(raw: bytes) -> list[MailEvent] | None:
    """Return the event of a Postmark webhook body (one record per POST); None when it is not a JSON object."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(body, dict):
        return None
    record = body.get("RecordType")
    address = str(body.get("Email") or "")
    detail = " ".join(str(body[k]) for k in ("Type", "Description", "Details") if body.get(k))
    if record == "Bounce":
        kind = "bounce" if body.get("Type") in HARD_TYPES else "soft"
        return [MailEvent("postmark", kind, address, detail)]
    if record == "SpamComplaint":
        return [MailEvent("postmark", "complaint", address, detail)]
    return [MailEvent("postmark", "other", address, str(record))]
