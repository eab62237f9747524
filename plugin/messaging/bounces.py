"""Bounces and complaints that arrive after the send, by mail: signed VERP return paths and the reports sent to them.

With ``mail.bounce_mailbox`` set (e.g. ``bounces@mail.example.com``) every email leaves with the envelope sender
(MAIL FROM, which the receiving server keeps as ``Return-Path``) ``bounces+m<id>-<mac>@mail.example.com``: the
message id and an HMAC of it under the app's secret key. A mail server that cannot deliver it later sends its
RFC 3464 report to that address, so the report names exactly one message, hence one store and one recipient
(variable envelope return path, https://cr.yp.to/proto/verp.txt). A feedback loop's RFC 5965 complaint quotes
the original message, whose ``Return-Path`` carries the same token. The token is lower-case hex (mail servers may
change the case of a local part) and short (a local part holds at most 64 octets, RFC 5321 §4.5.3.1.1).

The mailbox's mail must reach ``aftercare unsubscribe-mailbox`` (plugin/messaging/inbound.py), which acts on each
report before it answers: a hard bounce (Action ``failed``, Status 5.x.x) or a complaint suppresses the address at
once and cancels what was still to go to it (plugin.messaging.withdrawals.suppress_undeliverable); a soft bounce
(4.x.x, ``delayed``) changes nothing; a report without a genuine token is refused (550) and changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass

from base.clock import Clock
from plugin.db import Database
from plugin.messaging import reports
from plugin.messaging.withdrawals import suppress_undeliverable
from plugin.models import Customer, Message

log = logging.getLogger("aftercare.messaging.bounces")

MAC_HEX = 20  # 80 bits: guessing one over SMTP is hopeless
_TOKEN = re.compile(rf"^m([0-9]{{1,18}})-([0-9a-f]{{{MAC_HEX}}})$")


def _mac(secret_key: str, message_id: int) -> str:
    digest = hmac.new(secret_key.encode(), f"aftercare.verp:{message_id}".encode(), hashlib.sha256).hexdigest()
    return digest[:MAC_HEX]


def _split(mailbox: str) -> tuple[str, str]:
    local, _, domain = mailbox.strip().lower().rpartition("@")
    if not local or not domain:
        raise ValueError(f"mail.bounce_mailbox must be an address like bounces@mail.example.com, got {mailbox!r}")
    return local, domain


def return_path(secret_key: str, mailbox: str, message_id: int) -> str:
    """Return the signed envelope sender of one message inside the bounce mailbox."""
    local, domain = _split(mailbox)
    return f"{local}+m{message_id}-{_mac(secret_key, message_id)}@{domain}"


def in_mailbox(mailbox: str, address: str) -> bool:
    """Say whether an address is the bounce mailbox or one of its ``+`` addresses."""
    local, domain = _split(mailbox)
    their_local, _, their_domain = address.strip().strip("<>").lower().rpartition("@")
    return their_domain == domain and (their_local == local or their_local.startswith(local + "+"))


def message_of(secret_key: str, mailbox: str, address: str | None) -> int | None:
    """Return the message id a signed return path names; None when it is not one of ours or its MAC is wrong."""
    if not address or not in_mailbox(mailbox, address):
        return None
    local = address.strip().strip("<>").lower().rpartition("@")[0]
    match = _TOKEN.match(local.partition("+")[2])
    if match is None:
        return None
    message_id = int(match.group(1))
    return message_id if hmac.compare_digest(match.group(2), _mac(secret_key, message_id)) else None


@dataclass(frozen=True)
class ReportOutcome:
    """What one report did: the SMTP reply and, when it suppressed, the address, message and cancellations."""

    reply: str
    kind: str | None = None  # bounce | complaint | soft | None
    address: str | None = None
    message_id: int | None = None
    cancelled: int = 0


def process(database: Database, secret_key: str, clock: Clock, mailbox: str, recipient: str, raw: bytes
            ) -> ReportOutcome:
    """Act on one report received for the bounce mailbox; return the SMTP reply."""
    report = reports.parse(raw)
    if report is None:
        return ReportOutcome("550 5.6.0 Not a delivery status notification or feedback report (RFC 3464 / 5965)")
    message_id = message_of(secret_key, mailbox, recipient)
    if message_id is None:
        quoted = [report.original.return_path]
        if isinstance(report, reports.FeedbackReport):
            quoted.insert(0, report.original_mail_from)
        message_id = next((m for m in (message_of(secret_key, mailbox, q) for q in quoted) if m is not None), None)
    if message_id is None:
        return ReportOutcome("550 5.7.1 Return path token not recognised")
    if isinstance(report, reports.DeliveryReport):
        if not report.hard:
            log.info("soft bounce ignored", extra={"message_id": message_id})
            return ReportOutcome("250 2.0.0 Soft bounce or delay noted; nothing changed", kind="soft",
                                 message_id=message_id)
        kind, detail = "bounce", "hard bounce (DSN): " + "; ".join(r.describe() for r in report.hard)
    else:
        if not report.complaint:
            return ReportOutcome(f"250 2.0.0 Feedback type {report.feedback_type or 'unknown'} is not a complaint; "
                                 "nothing changed", message_id=message_id)
        kind, detail = "complaint", f"complaint (feedback report, {report.feedback_type})"
    with database.session() as session:
        message = session.get(Message, message_id)
        if message is None:
            return ReportOutcome("250 2.0.0 The message is no longer held; nothing changed", message_id=message_id)
        address = message.to_address
        if not address and message.customer_id:
            customer = session.get(Customer, message.customer_id)
            address = customer.email if customer else None
        if not address:
            return ReportOutcome("250 2.0.0 Nothing to suppress", message_id=message_id)
        done = suppress_undeliverable(session, address, kind, clock.now(), detail=detail, message_id=message_id)
    log.info("address suppressed by a report", extra={"message_id": message_id, "kind": kind,
                                                      "cancelled": done.cancelled})
    return ReportOutcome(f"250 2.0.0 {'Bounce' if kind == 'bounce' else 'Complaint'} recorded; address suppressed",
                         kind=kind, address=done.address, message_id=message_id, cancelled=done.cancelled)
