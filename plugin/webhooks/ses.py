"""Amazon SES bounce and complaint notifications (delivered through SNS) as mail events.

SES publishes ``notificationType`` (feedback notifications) or ``eventType`` (configuration-set event publishing)
``Bounce`` / ``Complaint`` with the ``mail`` object of the original send; ``mail.source`` is the envelope MAIL FROM
we gave (our signed return path). A ``Permanent`` bounce is hard; ``Transient`` and ``Undetermined`` are soft.
https://docs.aws.amazon.com/ses/latest/dg/notification-contents.html
"""

from __future__ import annotations

import json
from typing import Any

from plugin.webhooks.mail_events import MailEvent


def events(message: str) -> list[MailEvent]:
    """Return the events of one SES notification (the ``Message`` of a verified SNS notification)."""
    try:
        body = json.loads(message)
    except (json.JSONDecodeError, RecursionError):
        return []
    if not isinstance(body, dict):
        return []
    kind = body.get("notificationType") or body.get("eventType")
    mail = body.get("mail") if isinstance(body.get("mail"), dict) else {}
    source = mail.get("source") if isinstance(mail.get("source"), str) else None
    header_id = _message_id(mail)
    if kind == "Bounce" and isinstance(body.get("bounce"), dict):
        bounce = body["bounce"]
        hard = bounce.get("bounceType") == "Permanent"
        found = []
        for recipient in _list(bounce.get("bouncedRecipients")):
            detail = " ".join(str(recipient.get(k)) for k in ("status", "diagnosticCode") if recipient.get(k))
            found.append(MailEvent("ses", "bounce" if hard else "soft", str(recipient.get("emailAddress") or ""),
                                   f"{bounce.get('bounceType')}/{bounce.get('bounceSubType')} {detail}".strip(),
                                   header_id, source))
        return found
    if kind == "Complaint" and isinstance(body.get("complaint"), dict):
        complaint = body["complaint"]
        feedback = complaint.get("complaintFeedbackType") or complaint.get("complaintSubType") or "complaint"
        return [MailEvent("ses", "complaint", str(r.get("emailAddress") or ""), str(feedback), header_id, source)
                for r in _list(complaint.get("complainedRecipients"))]
    return [MailEvent("ses", "other", "", str(kind))]


def _list(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _message_id(mail: dict[str, Any]) -> str | None:
    """Return the Message-ID header we sent (SES's own ``mail.messageId`` is another id)."""
    for header in _list(mail.get("headers")):
        if str(header.get("name", "")).lower() == "message-id" and header.get("value"):
            return str(header["value"])
    common = mail.get("commonHeaders")
    if isinstance(common, dict) and isinstance(common.get("messageId"), str):
        return common["messageId"]
    return None
