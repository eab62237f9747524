"""The unsubscribe mailbox: an SMTP server (aiosmtpd) that honours ``mailto:`` unsubscribes the moment they arrive.

``List-Unsubscribe`` carries ``<mailto:{mail.unsubscribe_mailto}?subject=unsubscribe%20{token}>`` only when that
mailbox is configured (RFC 2369; the HTTPS one-click link of RFC 8058 is always there). Mail clients that
prefer the mailto send an email with that subject; a mailbox nobody reads would break the rule that an
unsubscribe is honoured at once, so the address must be delivered here: point the mailbox domain's MX (or a
forwarding rule of the mail host) at ``aftercare unsubscribe-mailbox``. The token in the subject is the same
signed, per-message token as the unsubscribe page's, so a forged or altered one changes nothing; the reply is
given in the SMTP session (250 done, 550 refused), so nothing is ever sent back to a possibly forged sender.

The same server receives the bounce mailbox's mail when ``mail.bounce_mailbox`` is set: delivery status
notifications and feedback reports sent to the signed return paths (plugin/messaging/bounces.py).
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from base.clock import Clock
from base.smtp_listener import AnyPortController
from plugin.db import Database
from plugin.messaging import bounces, links
from plugin.messaging.suppression import suppress
from plugin.messaging.withdrawals import unsubscribe_address
from plugin.models import Customer, Message, Store

log = logging.getLogger("aftercare.messaging.inbound")

# An unsubscribe request is a few hundred bytes; a bounce report may quote the whole original message.
MAX_BYTES = 1024 * 1024
TOKEN = re.compile(r"\bunsubscribe\s+([A-Za-z0-9_\-.]{20,})", re.IGNORECASE)


@dataclass(frozen=True)
class Outcome:
    """What one received email did: the SMTP reply and, when it unsubscribed, the address and message."""

    reply: str
    address: str | None = None
    message_id: int | None = None
    cancelled: int = 0


def process(database: Database, secret_key: str, clock: Clock, raw: bytes) -> Outcome:
    """Unsubscribe the address of the message named by the token in the subject; return the SMTP reply."""
    parsed = BytesParser(policy=policy.default).parsebytes(raw, headersonly=True)
    match = TOKEN.search(str(parsed.get("Subject") or ""))
    if match is None:
        return Outcome("550 5.6.0 No unsubscribe token in the subject; use the link in our email")
    try:
        payload = links.read_token(secret_key, clock, "unsubscribe", match.group(1))
    except links.LinkExpired:
        return Outcome("550 5.7.0 This unsubscribe request has expired; use the link in a newer email")
    except links.LinkInvalid:
        return Outcome("550 5.7.1 Unsubscribe token not recognised")
    now = clock.now()
    with database.session() as session:
        message = session.get(Message, payload["m"])
        if message is None:
            # A shop/redact after a reinstall erased it; the token still names the store and the address's digest.
            store = session.get(Store, payload["st"]) if isinstance(payload.get("st"), int) else None
            if store is None or not payload.get("a"):
                return Outcome("550 5.7.0 This unsubscribe request refers to an email we no longer hold")
            suppress(session, store.id, str(payload["a"]), "unsubscribe", detail="mailto, erased message", now=now)
            return Outcome("250 2.0.0 Unsubscribed", message_id=payload["m"])
        address = message.to_address
        if not address and message.customer_id:
            customer = session.get(Customer, message.customer_id)
            address = customer.email if customer else None
        if not address:
            return Outcome("250 2.0.0 Nothing to unsubscribe", message_id=message.id)
        cancelled = unsubscribe_address(session, message.store_id, address, "unsubscribe", now,
                                        detail=f"mailto, message {message.id}", customer_id=message.customer_id)
        store_id = message.store_id
    log.info("unsubscribed by mail", extra={"store_id": store_id, "message_id": payload["m"], "cancelled": cancelled})
    return Outcome("250 2.0.0 Unsubscribed", address=address, message_id=payload["m"], cancelled=cancelled)


class UnsubscribeHandler:
    """aiosmtpd handler: accept mail for the unsubscribe and bounce mailboxes only and act on it before answering."""

    def __init__(self, database: Database, secret_key: str, clock: Clock, mailbox: str, bounce_mailbox: str = ""):
        self.database = database
        self.secret_key = secret_key
        self.clock = clock
        self.mailbox = mailbox.strip().lower()
        self.bounce_mailbox = bounce_mailbox.strip().lower()
        self.outcomes: list[Outcome | bounces.ReportOutcome] = []

    def _is_bounce(self, address: str) -> bool:
        return bool(self.bounce_mailbox) and bounces.in_mailbox(self.bounce_mailbox, address)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,  # noqa: N802
                          rcpt_options: list[str]) -> str:
        """Refuse every recipient but the two mailboxes (this is not a general mail server)."""
        if not ((self.mailbox and address.strip().lower() == self.mailbox) or self._is_bounce(address)):
            return f"550 5.1.1 <{address}>: not a mailbox of this server"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        """Process the email (in a worker thread: the database is blocking) and answer with its outcome."""
        raw = envelope.original_content or b""
        loop = asyncio.get_running_loop()
        report_to = next((rcpt for rcpt in envelope.rcpt_tos if self._is_bounce(rcpt)), None)
        outcome: Outcome | bounces.ReportOutcome
        if report_to is not None:
            outcome = await loop.run_in_executor(None, bounces.process, self.database, self.secret_key, self.clock,
                                                 self.bounce_mailbox, report_to, raw)
        else:
            outcome = await loop.run_in_executor(None, process, self.database, self.secret_key, self.clock, raw)
        self.outcomes.append(outcome)
        return outcome.reply


class MailboxServer(AnyPortController):
    """The unsubscribe mailbox's SMTP listener in a background thread (port 0 picks a free port)."""

    def __init__(self, handler: UnsubscribeHandler, host: str = "127.0.0.1", port: int = 2525, **kwargs: Any):
        super().__init__(handler, hostname=host, port=port, data_size_limit=MAX_BYTES, **kwargs)
