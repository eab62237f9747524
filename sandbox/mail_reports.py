"""The reports a receiving mail system sends back later, built the way an MTA builds them, and sent over SMTP.

``dsn`` writes an RFC 3464 delivery status notification about a message the SMTP sandbox accepted (a bounce that
arrives after the 250, as from a relay that queued it); ``arf`` writes an RFC 5965 feedback report (a feedback
loop's spam complaint). Both are ``multipart/report`` (RFC 6522) quoting the original headers, and ``send`` delivers
one with the null reverse path (``MAIL FROM:<>``, RFC 5321 §4.5.5) to the original's envelope sender.
https://www.rfc-editor.org/rfc/rfc3464#appendix-C https://www.rfc-editor.org/rfc/rfc5965#appendix-B
"""

from __future__ import annotations

import smtplib
import uuid
from datetime import datetime
from email.utils import format_datetime, make_msgid

from sandbox.smtp import ReceivedMessage


def _headers_of(original: ReceivedMessage) -> bytes:
    """Return the original's header block with the Return-Path the final MTA adds (RFC 5321 §4.4)."""
    head = original.raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    return b"Return-Path: <" + original.envelope_from.encode() + b">\r\n" + head + b"\r\n"


def _report(kind: str, subject: str, to: str, human: str, machine: str, original: ReceivedMessage,
            when: datetime, sender: str) -> bytes:
    """Write the three parts by hand, as MTAs do (Postfix's bounce daemon, for one), CRLF line ends throughout."""
    boundary = f"{uuid.uuid4().hex}/mx.sandbox.local"
    head = (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {format_datetime(when)}\r\n"
            f"Message-ID: {make_msgid(domain='mx.sandbox.local')}\r\nAuto-Submitted: auto-replied\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type={kind};\r\n"
            f'\tboundary="{boundary}"\r\n\r\nThis is a MIME-encapsulated message.\r\n\r\n')
    parts = [
        "Content-Description: Notification\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        + human.replace("\n", "\r\n"),
        f"Content-Description: {'Delivery report' if kind == 'delivery-status' else 'Feedback report'}\r\n"
        f"Content-Type: message/{kind}\r\n\r\n" + machine,
        "Content-Description: Undelivered Message Headers\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        + _headers_of(original).decode("utf-8", "replace"),
    ]
    body = "".join(f"--{boundary}\r\n{part}\r\n" for part in parts) + f"--{boundary}--\r\n"
    return (head + body).encode("utf-8")


def dsn(original: ReceivedMessage, when: datetime, *, status: str = "5.1.1", action: str = "failed",
        diagnostic: str = "smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown",
        reporting_mta: str = "mx.sandbox.local") -> bytes:
    """Build the DSN a relay sends when it later fails (``failed``) or delays (``delayed``) delivery."""
    rcpt = original.envelope_to[0]
    per_message = (f"Reporting-MTA: dns; {reporting_mta}\r\nArrival-Date: {format_datetime(original.received_at)}"
                   "\r\n")
    per_recipient = (f"Final-Recipient: rfc822; {rcpt}\r\nOriginal-Recipient: rfc822;{rcpt}\r\nAction: {action}\r\n"
                     f"Status: {status}\r\nRemote-MTA: dns; mail.{rcpt.rsplit('@', 1)[-1]}\r\n"
                     f"Diagnostic-Code: {diagnostic.format(rcpt=rcpt)}\r\nLast-Attempt-Date: {format_datetime(when)}"
                     "\r\n")
    human = (f"This is the mail system at host {reporting_mta}.\n\nI'm sorry to have to inform you that your message "
             "could not be delivered to one or more recipients.\n" if action == "failed" else
             f"This is the mail system at host {reporting_mta}.\n\nYour message could not be delivered yet; the mail "
             "system will keep trying.\n")
    subject = "Undelivered Mail Returned to Sender" if action == "failed" else "Delayed Mail (still being retried)"
    return _report("delivery-status", subject, original.envelope_from, human, per_message + "\r\n" + per_recipient,
                   original, when, f"MAILER-DAEMON@{reporting_mta}")


def arf(original: ReceivedMessage, when: datetime, *, feedback_type: str = "abuse", to: str | None = None,
        reporter: str = "fbl.mailbox.example") -> bytes:
    """Build a feedback loop's complaint about a message (sent to ``to``, by default its envelope sender)."""
    machine = (f"Feedback-Type: {feedback_type}\r\nUser-Agent: SomeGenerator/1.0\r\nVersion: 1\r\n"
               f"Original-Mail-From: <{original.envelope_from}>\r\nOriginal-Rcpt-To: <{original.envelope_to[0]}>\r\n"
               f"Arrival-Date: {format_datetime(original.received_at)}\r\nReporting-MTA: dns; {reporter}\r\n")
    human = "This is an email abuse report for an email message received from us.\n"
    return _report("feedback-report", "FW: abuse report", to or original.envelope_from, human, machine, original,
                   when, f"staff@{reporter}")


def send(host: str, port: int, report: bytes, to: str) -> None:
    """Deliver a report over SMTP with the null reverse path; raise smtplib errors the server answers with."""
    with smtplib.SMTP(host, port, timeout=10) as client:
        client.sendmail("<>", [to], report)
