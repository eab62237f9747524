"""What a provider's bounce or complaint event does: find the email it is about, suppress the address at once.

``apply`` finds the message an event names (our signed return path, else our Message-ID, else none) and lets
plugin.messaging.withdrawals suppress the address and cancel its waiting mail. Soft bounces, deliveries and opens
are counted and ignored. Applying the same event twice (providers retry until they get a 2xx) changes nothing more.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugin.messaging import bounces
from plugin.messaging.suppression import normalize
from plugin.messaging.withdrawals import suppress_undeliverable
from plugin.models import Message
from plugin.webhooks.mail_events import MailEvent


def _angle(value: str) -> str:
    value = value.strip()
    return value if value.startswith("<") else f"<{value}>"


def find_message(session: Session, event: MailEvent, secret_key: str, bounce_mailbox: str) -> int | None:
    """Return the id of our email the event is about, when it names one sent to the event's address."""
    candidate: int | None = None
    if bounce_mailbox and event.return_path:
        candidate = bounces.message_of(secret_key, bounce_mailbox, event.return_path)
    if candidate is None and event.message_id_header:
        candidate = session.scalar(select(Message.id).where(Message.provider_id == _angle(event.message_id_header),
                                                            Message.channel == "email").limit(1))
    if candidate is None:
        return None
    address = session.scalar(select(func.lower(Message.to_address)).where(Message.id == candidate))
    # An event about another recipient of a shared id is not about this message: fall back to the address alone.
    return candidate if address == normalize(event.address) else None


def apply(session: Session, events: list[MailEvent], now: datetime, secret_key: str, bounce_mailbox: str
          ) -> Counter[str]:
    """Suppress the addresses of hard bounces and complaints and cancel their mail; return counts per outcome."""
    counts: Counter[str] = Counter()
    for event in events:
        counts[event.kind] += 1
        if event.kind not in ("bounce", "complaint") or "@" not in event.address:
            continue
        message_id = find_message(session, event, secret_key, bounce_mailbox)
        done = suppress_undeliverable(session, event.address, event.kind, now,
                                      detail=f"{event.kind} ({event.provider}): {event.detail}".strip(),
                                      message_id=message_id)
        counts["suppressed"] += done.suppressed
        counts["cancelled"] += done.cancelled
    return counts
