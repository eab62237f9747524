"""Reading the reports mail systems send back: RFC 3464 delivery status notifications and RFC 5965 (ARF) feedback.

Both are ``multipart/report`` (RFC 6522): a human-readable part, a machine-readable part
(``message/delivery-status`` or ``message/feedback-report``) and the original message or its headers
(``message/rfc822`` or ``text/rfc822-headers``). Only the machine-readable fields are trusted; the prose part
differs per mail server and is never parsed. Python's email package splits ``message/delivery-status`` into its
per-message and per-recipient field blocks itself.
https://www.rfc-editor.org/rfc/rfc3464 https://www.rfc-editor.org/rfc/rfc5965
"""

from __future__ import annotations

from dataclasses import dataclass
from email import policy
from email.message import Message as MimeMessage
from email.parser import BytesParser, HeaderParser

# Feedback types that mean "this recipient does not want our mail" (RFC 5965 §7.3); ``not-spam`` (RFC 6650) and
# ``auth-failure`` (RFC 6591, a report about authentication) are not complaints.
COMPLAINT_TYPES = frozenset({"abuse", "fraud", "virus", "other"})


@dataclass(frozen=True)
class RecipientStatus:
    """One per-recipient block of a DSN: who, what happened (Action) and the RFC 3463 status code."""

    final_recipient: str | None
    original_recipient: str | None
    action: str
    status: str
    diagnostic: str | None

    @property
    def hard(self) -> bool:
        """Say whether this is a hard bounce: delivery failed with a permanent (5.x.x) status."""
        return self.action == "failed" and self.status.startswith("5.")

    def describe(self) -> str:
        """Return the block in one line for the message log (status, action, diagnostic)."""
        return " ".join(part for part in (self.status, self.action, self.diagnostic) if part)


@dataclass(frozen=True)
class Original:
    """What a report quotes of the message it is about (either report kind)."""

    message_id: str | None = None
    return_path: str | None = None
    to: str | None = None


@dataclass(frozen=True)
class DeliveryReport:
    """An RFC 3464 delivery status notification."""

    recipients: tuple[RecipientStatus, ...]
    original: Original

    @property
    def hard(self) -> tuple[RecipientStatus, ...]:
        """Return the recipients that bounced for good (soft bounces and delays are left out)."""
        return tuple(r for r in self.recipients if r.hard)


@dataclass(frozen=True)
class FeedbackReport:
    """An RFC 5965 feedback report (a complaint forwarded by a mailbox provider's feedback loop)."""

    feedback_type: str
    original_mail_from: str | None
    original_rcpt_to: str | None
    original: Original

    @property
    def complaint(self) -> bool:
        """Say whether the report is a complaint about our mail (abuse, fraud, virus, other)."""
        return self.feedback_type in COMPLAINT_TYPES


def parse(raw: bytes) -> DeliveryReport | FeedbackReport | None:
    """Parse a received email as a DSN or a feedback report; None when it is neither."""
    mail = BytesParser(policy=policy.compat32).parsebytes(raw)
    if mail.get_content_type() != "multipart/report" or not mail.is_multipart():
        return None
    report_type = (mail.get_param("report-type") or "").lower()
    parts = [part for part in mail.get_payload() if isinstance(part, MimeMessage)]
    original = _original(parts)
    if report_type == "delivery-status":
        status = next((p for p in parts if p.get_content_type() == "message/delivery-status"), None)
        if status is None:
            return None
        blocks = _blocks(status)
        return DeliveryReport(recipients=tuple(_recipient(b) for b in blocks[1:] if _has_recipient(b)),
                              original=original)
    if report_type == "feedback-report":
        feedback = next((p for p in parts if p.get_content_type() == "message/feedback-report"), None)
        if feedback is None:
            return None
        fields = _blocks(feedback)
        if not fields:
            return None
        first = fields[0]
        return FeedbackReport(feedback_type=str(first.get("Feedback-Type", "")).strip().lower(),
                              original_mail_from=_address(first.get("Original-Mail-From")),
                              original_rcpt_to=_address(first.get("Original-Rcpt-To")), original=original)
    return None


def _blocks(part: MimeMessage) -> list[MimeMessage]:
    """Return the field blocks of a machine-readable part, however the parser represented it."""
    payload = part.get_payload()
    if isinstance(payload, list) and all(isinstance(b, MimeMessage) for b in payload):
        return list(payload)
    # A part the parser kept as text (e.g. an unexpected transfer encoding): its fields are RFC 822 headers.
    text = part.get_payload(decode=True) or b""
    return [HeaderParser().parsestr(block) for block in text.decode("utf-8", "replace").replace("\r\n", "\n")
            .split("\n\n") if block.strip()]


def _has_recipient(block: MimeMessage) -> bool:
    return bool(block.get("Final-Recipient") or block.get("Original-Recipient"))


def _recipient(block: MimeMessage) -> RecipientStatus:
    status = str(block.get("Status", "")).strip().split(" ", 1)[0]
    diagnostic = " ".join(str(block.get("Diagnostic-Code") or "").split()) or None
    return RecipientStatus(final_recipient=_typed_address(block.get("Final-Recipient")),
                           original_recipient=_typed_address(block.get("Original-Recipient")),
                           action=str(block.get("Action", "")).strip().lower(), status=status,
                           diagnostic=diagnostic[:500] if diagnostic else None)


def _typed_address(value: object) -> str | None:
    """Read ``rfc822; someone@example.com`` (address-type; address)."""
    if value is None:
        return None
    text = str(value)
    kind, _, address = text.partition(";")
    if not address:
        address, kind = kind, "rfc822"
    return _address(address) if kind.strip().lower() == "rfc822" else None


def _address(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip().strip("<>").strip()
    return text.lower() or None


def _original(parts: list[MimeMessage]) -> Original:
    for part in parts:
        kind = part.get_content_type()
        if kind == "message/rfc822":
            inner = part.get_payload()
            headers = inner[0] if isinstance(inner, list) and inner else None
        elif kind == "text/rfc822-headers":
            headers = HeaderParser().parsestr((part.get_payload(decode=True) or b"").decode("utf-8", "replace"))
        else:
            continue
        if headers is not None:
            return Original(message_id=(str(headers.get("Message-ID") or "").strip() or None),
                            return_path=_address(headers.get("Return-Path")), to=_address(headers.get("To")))
    return Original()
