"""A bounce or complaint event of a sending provider, as each provider's module reads it (ses.py, sendgrid.py,
postmark.py). What an event does to our records is plugin/webhooks/undeliverable.py.
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("bounce", "complaint", "soft", "other")


@dataclass(frozen=True)
class MailEvent:
    """One provider event about one recipient: hard ``bounce``, ``complaint``, ``soft`` bounce, or ``other``."""

    provider: str
    kind: str
    address: str
    detail: str = ""
    message_id_header: str | None = None  # the RFC 5322 Message-ID we gave the email
    return_path: str | None = None  # the envelope sender the provider saw (our signed VERP address)
